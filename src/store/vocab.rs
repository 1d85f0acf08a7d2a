//! The store's vocabulary, written once for every backend (and `ecca migrate`): what each
//! [`Op`] records in the audit log, and how stored rows decode. A backend runs an op's SQL,
//! reports what it did ([`Applied`]), and appends the entry [`Op::audit`] names; it reads
//! columns into the raw rows below and converts them with `TryFrom`, which refuses corrupt
//! values with an error naming the row instead of defaulting.
use crate::core::Issuer;
use crate::core::error::Error as Domain;
use crate::core::keys::CaKeyAlg;
use crate::core::records::{
    CaId, CaRole, CaState, CertRecord, Credential, CrossRecord, Direction, IssuerCert,
    IssuerRecord, PeerRecord, PeerStatus, PlatformRecord, Revocation, Role, WrappedKey,
};
use crate::core::revocation::{Reason, RevokedEntry};
use crate::core::stats::{Marks, Renewal};
use crate::error::{Error, Result};
use crate::store::{AcmeKind, AcmeObject, Done, IssuanceIntent, Op, Positioned};

/// What applying an op's rows did, as its audit entry and its caller need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    Nothing,
    /// A counter's new value.
    Number(u64),
    /// An inclusive range reserved.
    Range(u64, u64),
    /// Rows changed.
    Count(u64),
    /// Serials changed.
    Serials(Vec<String>),
}

/// An audit entry before it is chained (its id, time and hashes come from the backend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub actor: String,
    pub event: String,
    pub object: String,
    pub detail: String,
}

fn entry(actor: &str, event: &str, object: &str, detail: String) -> Option<AuditRecord> {
    Some(AuditRecord {
        actor: actor.into(),
        event: event.into(),
        object: object.into(),
        detail,
    })
}

impl Op {
    /// The audit entry this op appends once applied (None: ops that are not state changes
    /// of their own, such as CRL numbers and checkpoints).
    pub fn audit(&self, applied: &Applied) -> Option<AuditRecord> {
        let count = match applied {
            Applied::Count(n) => *n,
            _ => 0,
        };
        match self {
            Op::Reserve(i) => entry(
                &i.actor,
                "certificate.signing",
                &i.serial.hex(),
                i.audit_detail(),
            ),
            Op::Complete { serial, der, actor } => entry(
                actor,
                "certificate.issued",
                serial,
                format!("sha256={}", crate::core::fingerprint(der)),
            ),
            Op::Abandon {
                serial,
                reason,
                actor,
            } => entry(actor, "certificate.abandoned", serial, reason.clone()),
            Op::AddCredential { cred, actor } => {
                entry(actor, "credential.added", &cred.serial, cred.audit_detail())
            }
            Op::Revoke(r) => entry(
                &r.actor,
                "certificate.revoked",
                &r.serial.hex(),
                format!("reason={}", r.reason.name()),
            ),
            Op::NextCrlNumber { .. } | Op::AddCheckpoint(_) => None,
            Op::TimestampBlock { .. } => {
                let Applied::Range(first, last) = applied else {
                    return None;
                };
                entry(
                    "tsa",
                    "timestamp.block",
                    &format!("{first}-{last}"),
                    format!("reserved={}", last - first + 1),
                )
            }
            Op::AddPlatform { p, actor } => {
                entry(actor, "platform.added", &p.name, p.audit_detail())
            }
            Op::PlatformDisabled {
                name,
                disabled,
                actor,
            } => {
                let event = if *disabled {
                    "platform.disabled"
                } else {
                    "platform.enabled"
                };
                entry(actor, event, name, String::new())
            }
            Op::PlatformSubjects {
                name,
                organizations,
                usccs,
                names,
                actor,
            } => entry(
                actor,
                "platform.subjects",
                name,
                format!(
                    "orgs={} usccs={} names={}",
                    organizations.join("|"),
                    usccs.join(","),
                    names.join("|")
                ),
            ),
            Op::DisableCredential { cert_sha256, actor } => entry(
                actor,
                "credential.disabled",
                cert_sha256,
                format!("disabled={count}"),
            ),
            Op::DisableCredentials {
                tenant,
                keep,
                actor,
            } => entry(
                actor,
                "credential.rotated",
                tenant,
                format!("disabled={count} kept={keep}"),
            ),
            Op::Event {
                actor,
                event,
                object,
                detail,
            } => entry(actor, event, object, detail.clone()),
            Op::AddPeer { peer, actor } => {
                entry(actor, "peer.added", &peer.name, peer.audit_detail())
            }
            Op::AddIssuer { record, actor } if count > 0 => {
                entry(actor, "issuer.added", &record.name, record.audit_detail())
            }
            Op::AddIssuer { .. } => None,
            // Not a change of its own: each part is audited as it is applied.
            Op::AddStats { .. } | Op::CountEvents(_) | Op::Together(_) => None,
            Op::AddIssuerCerts {
                issuer,
                certs,
                actor,
                ..
            } => {
                let Applied::Serials(retiring) = applied else {
                    return None;
                };
                let added: Vec<String> = certs
                    .iter()
                    .map(|c| format!("{}:{}:{}", c.role.as_str(), c.ca_id, c.sha256))
                    .collect();
                let detail = format!("added={} retiring={}", added.join(","), retiring.join(","));
                entry(actor, "issuer.certificates_added", issuer, detail)
            }
            Op::SetCaState {
                issuer,
                ca_id,
                from,
                to,
                actor,
            } => entry(
                actor,
                "issuer.state",
                issuer,
                format!("ca={ca_id} from={} to={}", from.as_str(), to.as_str()),
            ),
            Op::PeerStatus {
                name,
                status,
                actor,
            } => entry(actor, "peer.status", name, status.as_str().into()),
            Op::PairCertificates {
                signing,
                encryption,
                escrow_id,
                actor,
            } => entry(
                actor,
                "certificate.paired",
                signing,
                format!("encryption={encryption} escrow={escrow_id}"),
            ),
            Op::RemovePeer { name, actor } => {
                let serials = match applied {
                    Applied::Serials(s) => s.join(","),
                    _ => String::new(),
                };
                entry(actor, "peer.removed", name, format!("revoked={serials}"))
            }
            Op::ReserveCross { record, actor } => entry(
                actor,
                "cross_certificate.signing",
                &record.serial,
                format!(
                    "peer={} direction={}",
                    record.peer,
                    record.direction.as_str()
                ),
            ),
            Op::CompleteCross { serial, der, actor } => entry(
                actor,
                "cross_certificate.issued",
                serial,
                format!("sha256={}", crate::core::fingerprint(der)),
            ),
            Op::AbandonCross {
                serial,
                reason,
                actor,
            } => entry(actor, "cross_certificate.abandoned", serial, reason.clone()),
            Op::AcmePut {
                object,
                event,
                actor,
                ..
            } => entry(
                actor,
                event,
                &format!("{}/{}", object.kind.as_str(), object.id),
                format!("owner={} status={}", object.owner, object.status),
            ),
            Op::AcmePurge { .. } if count == 0 => None,
            Op::AcmePurge { before } => entry(
                "ecca",
                "acme.purged",
                "acme",
                format!("expired_before={before} deleted={count}"),
            ),
            Op::AddCross { record, actor } => entry(
                actor,
                "cross_certificate.stored",
                &record.serial,
                record.audit_detail(),
            ),
        }
    }
}

impl From<Applied> for Done {
    fn from(a: Applied) -> Done {
        match a {
            Applied::Nothing | Applied::Count(_) => Done::Nothing,
            Applied::Number(n) => Done::Number(n),
            Applied::Range(first, last) => Done::Range(first, last),
            Applied::Serials(s) => Done::Serials(s),
        }
    }
}

// What the audit log records about each new row.

impl IssuanceIntent {
    /// The USCC its subject carries (kept in its own column: merchant coverage).
    pub fn uscc(&self) -> Option<String> {
        crate::core::stats::uscc_of(&self.subject)
    }

    pub fn audit_detail(&self) -> String {
        format!(
            "profile={} issuer={} ca={} subject={} sans={}",
            self.profile,
            self.issuer.as_str(),
            self.ca,
            self.subject,
            self.sans.join(",")
        )
    }
}

impl PlatformRecord {
    pub fn audit_detail(&self) -> String {
        format!(
            "dns={} ip={} profiles={} max_days={:?} rate={:?} orgs={} usccs={} names={}",
            self.dns_suffixes.join(","),
            self.ip_ranges.join(","),
            self.profiles.join(","),
            self.max_days,
            self.rate_per_min,
            self.organizations.join("|"),
            self.usccs.join(","),
            self.names.join("|")
        )
    }
}

impl Credential {
    pub fn audit_detail(&self) -> String {
        format!(
            "role={} tenant={} sha256={}",
            self.role.as_str(),
            self.tenant,
            self.cert_sha256
        )
    }
}

impl IssuerRecord {
    pub fn audit_detail(&self) -> String {
        let certs: Vec<String> = self
            .certs
            .iter()
            .map(|c| format!("{}={}", c.role.as_str(), c.sha256))
            .collect();
        format!("algorithm={} {}", self.algorithm.as_str(), certs.join(" "))
    }
}

impl PeerRecord {
    pub fn audit_detail(&self) -> String {
        format!(
            "subject={} sha256={}",
            self.subject,
            crate::core::fingerprint(&self.ca_cert)
        )
    }
}

impl CrossRecord {
    pub fn audit_detail(&self) -> String {
        format!(
            "peer={} direction={} sha256={}",
            self.peer,
            self.direction.as_str(),
            crate::core::fingerprint(&self.der)
        )
    }
}

/// A string list column (JSON array).
pub fn list_json(v: &[String]) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(format!("list encoding: {e}")))
}

// Raw rows, as each backend reads them (typed reads: a column of the wrong type is already
// an error there), and their strict decoding.

fn corrupt(what: String) -> Error {
    Domain::Corrupt(what).into()
}

/// A stored serial: lowercase hex of 1 to 20 octets.
fn serial_bytes(row: &str, serial: &str) -> Result<Vec<u8>> {
    match hex::decode(serial) {
        Ok(b) if !b.is_empty() && b.len() <= 20 => Ok(b),
        _ => Err(corrupt(format!(
            "{row}: serial {serial:?} is not 1 to 20 octets of hex"
        ))),
    }
}

fn reason(row: &str, code: Option<i64>) -> Result<Reason> {
    let code =
        code.ok_or_else(|| corrupt(format!("{row}: revoked without a revocation_reason")))?;
    Reason::from_code(code).map_err(|_| {
        corrupt(format!(
            "{row}: revocation_reason {code} is not a reason ecca writes"
        ))
    })
}

fn list(row: &str, column: &str, text: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|e| {
        corrupt(format!(
            "{row}: {column} is not a JSON list of strings ({e})"
        ))
    })
}

/// The certificate columns (`RECORD_COLUMNS`, in order).
#[derive(Clone, Debug)]
pub struct CertRow {
    pub id: i64,
    pub serial: String,
    pub profile: String,
    pub tenant: String,
    pub subject: String,
    pub sans: String,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: Option<i64>,
    pub der: Option<Vec<u8>>,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<i64>,
    pub invalidity_date: Option<i64>,
    pub revocation_seq: Option<i64>,
    pub issuer: String,
    pub ca: String,
}

impl TryFrom<CertRow> for (i64, CertRecord) {
    type Error = Error;
    fn try_from(r: CertRow) -> Result<Self> {
        let row = format!("certificate row {} (serial {})", r.id, r.serial);
        serial_bytes(&row, &r.serial)?;
        let issuer = Issuer::parse(&r.issuer)
            .map_err(|_| corrupt(format!("{row}: issuer {:?}", r.issuer)))?;
        let ca = CaId::parse(&r.ca).map_err(|_| corrupt(format!("{row}: ca {:?}", r.ca)))?;
        let (Some(issued_at), Some(der)) = (r.issued_at, r.der) else {
            return Err(corrupt(format!("{row}: issued without a certificate")));
        };
        let revocation = match r.revoked_at {
            None => None,
            Some(revoked_at) => Some(Revocation {
                revoked_at,
                reason: reason(&row, r.revocation_reason)?,
                invalidity_date: r.invalidity_date,
                seq: r
                    .revocation_seq
                    .ok_or_else(|| corrupt(format!("{row}: revoked without a revocation_seq")))?,
            }),
        };
        Ok((
            r.id,
            CertRecord {
                sans: list(&row, "sans", &r.sans)?,
                serial: r.serial,
                issuer,
                ca,
                profile: r.profile,
                tenant: r.tenant,
                subject: r.subject,
                not_before: r.not_before,
                not_after: r.not_after,
                issued_at,
                der,
                revocation,
            },
        ))
    }
}

/// A revocation as CRLs read it.
#[derive(Clone, Debug)]
pub struct RevokedRow {
    pub seq: i64,
    pub serial: String,
    pub revoked_at: i64,
    pub revocation_reason: Option<i64>,
    pub invalidity_date: Option<i64>,
}

impl TryFrom<RevokedRow> for Positioned {
    type Error = Error;
    fn try_from(r: RevokedRow) -> Result<Self> {
        let row = format!(
            "certificate row with revocation_seq {} (serial {})",
            r.seq, r.serial
        );
        Ok((
            r.seq,
            RevokedEntry {
                serial: serial_bytes(&row, &r.serial)?,
                revoked_at: r.revoked_at,
                reason: reason(&row, r.revocation_reason)?,
                invalidity_date: r.invalidity_date,
            },
        ))
    }
}

/// The credential columns.
#[derive(Clone, Debug)]
pub struct CredentialRow {
    pub serial: String,
    pub role: String,
    pub tenant: String,
    pub disabled: bool,
    pub cert_sha256: String,
}

impl TryFrom<CredentialRow> for Credential {
    type Error = Error;
    fn try_from(r: CredentialRow) -> Result<Self> {
        let role = Role::parse(&r.role).ok_or_else(|| {
            corrupt(format!(
                "credential row (serial {}): role {:?}",
                r.serial, r.role
            ))
        })?;
        Ok(Credential {
            serial: r.serial,
            cert_sha256: r.cert_sha256,
            role,
            tenant: r.tenant,
            disabled: r.disabled,
        })
    }
}

/// The peer columns.
#[derive(Clone, Debug)]
pub struct PeerRow {
    pub name: String,
    pub ca_cert: Vec<u8>,
    pub subject: String,
    pub status: String,
    pub added_at: i64,
}

impl TryFrom<PeerRow> for PeerRecord {
    type Error = Error;
    fn try_from(r: PeerRow) -> Result<Self> {
        let status = match r.status.as_str() {
            "active" => PeerStatus::Active,
            "suspended" => PeerStatus::Suspended,
            other => {
                return Err(corrupt(format!("peer row {:?}: status {other:?}", r.name)));
            }
        };
        Ok(PeerRecord {
            name: r.name,
            ca_cert: r.ca_cert,
            subject: r.subject,
            status,
            added_at: r.added_at,
        })
    }
}

/// The cross-certificate columns.
#[derive(Clone, Debug)]
pub struct CrossRow {
    pub serial: String,
    pub peer: String,
    pub direction: String,
    pub ca: String,
    pub der: Vec<u8>,
    pub not_after: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<i64>,
}

impl TryFrom<CrossRow> for CrossRecord {
    type Error = Error;
    fn try_from(r: CrossRow) -> Result<Self> {
        let row = format!("cross-certificate row (serial {})", r.serial);
        serial_bytes(&row, &r.serial)?;
        let direction = match r.direction.as_str() {
            "issued" => Direction::Issued,
            "received" => Direction::Received,
            other => return Err(corrupt(format!("{row}: direction {other:?}"))),
        };
        // Cross-certificates are revoked as cessationOfOperation or keyCompromise, and CA
        // reasons (cACompromise) are valid here too.
        let revoked = match r.revoked_at {
            None => None,
            Some(t) => {
                let code = r
                    .revocation_reason
                    .ok_or_else(|| corrupt(format!("{row}: revoked without a reason")))?;
                let reason = Reason::from_code(code).map_err(|_| {
                    corrupt(format!(
                        "{row}: revocation_reason {code} is not a reason ecca writes"
                    ))
                })?;
                Some((t, reason))
            }
        };
        let ca = CaId::parse(&r.ca).map_err(|_| corrupt(format!("{row}: ca {:?}", r.ca)))?;
        Ok(CrossRecord {
            serial: r.serial,
            peer: r.peer,
            direction,
            ca,
            der: r.der,
            not_after: r.not_after,
            created_at: r.created_at,
            revoked,
        })
    }
}

/// A write of an ACME object that lost to another (or whose id or lookup exists).
pub fn acme_conflict(o: &AcmeObject) -> Error {
    Error::Conflict(format!(
        "acme {} {} changed meanwhile or exists",
        o.kind.as_str(),
        o.id
    ))
}

/// The ACME object columns, in `ACME_COLUMNS` order.
#[derive(Clone, Debug)]
pub struct AcmeRow {
    pub kind: String,
    pub id: String,
    pub owner: String,
    pub status: String,
    pub expires: i64,
    pub lookup: Option<String>,
    pub version: i64,
    pub doc: String,
}

/// The columns an [`AcmeRow`] is read from.
pub const ACME_COLUMNS: &str = "kind, id, owner, status, expires, lookup, version, doc";

impl TryFrom<AcmeRow> for AcmeObject {
    type Error = Error;
    fn try_from(r: AcmeRow) -> Result<Self> {
        let kind = match r.kind.as_str() {
            "account" => AcmeKind::Account,
            "order" => AcmeKind::Order,
            "authz" => AcmeKind::Authz,
            "eab" => AcmeKind::Eab,
            other => {
                return Err(corrupt(format!(
                    "acme object {:?}: unknown kind {other:?}",
                    r.id
                )));
            }
        };
        Ok(AcmeObject {
            kind,
            id: r.id,
            owner: r.owner,
            status: r.status,
            expires: r.expires,
            lookup: r.lookup,
            version: r.version,
            doc: r.doc,
        })
    }
}

/// The platform columns (lists as JSON text).
#[derive(Clone, Debug)]
pub struct PlatformRow {
    pub name: String,
    pub dns_suffixes: String,
    pub ip_ranges: String,
    pub profiles: String,
    pub max_days: Option<i64>,
    pub rate_per_min: Option<i64>,
    pub disabled: bool,
    pub created_at: i64,
    pub organizations: String,
    pub usccs: String,
    pub names: String,
}

impl TryFrom<PlatformRow> for PlatformRecord {
    type Error = Error;
    fn try_from(r: PlatformRow) -> Result<Self> {
        let row = format!("platform row {:?}", r.name);
        let small = |column: &str, v: Option<i64>| -> Result<Option<u32>> {
            v.map(|v| {
                u32::try_from(v).map_err(|_| corrupt(format!("{row}: {column} {v} out of range")))
            })
            .transpose()
        };
        Ok(PlatformRecord {
            dns_suffixes: list(&row, "dns_suffixes", &r.dns_suffixes)?,
            ip_ranges: list(&row, "ip_ranges", &r.ip_ranges)?,
            profiles: list(&row, "profiles", &r.profiles)?,
            max_days: small("max_days", r.max_days)?,
            rate_per_min: small("rate_per_min", r.rate_per_min)?,
            disabled: r.disabled,
            created_at: r.created_at,
            organizations: list(&row, "organizations", &r.organizations)?,
            usccs: list(&row, "usccs", &r.usccs)?,
            names: list(&row, "names", &r.names)?,
            name: r.name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_row() -> CertRow {
        CertRow {
            id: 5,
            serial: "41aa".into(),
            profile: "server-tls".into(),
            tenant: String::new(),
            subject: "CN=x".into(),
            sans: r#"["DNS:x.example.cn"]"#.into(),
            not_before: 1,
            not_after: 2,
            issued_at: Some(1),
            der: Some(vec![0x30]),
            revoked_at: Some(1),
            revocation_reason: Some(1),
            invalidity_date: None,
            revocation_seq: Some(3),
            issuer: "issuing".into(),
            ca: "issuing".into(),
        }
    }

    #[test]
    fn corrupt_rows_are_named_never_defaulted() {
        let ok: (i64, CertRecord) = cert_row().try_into().unwrap();
        assert_eq!(ok.1.sans, ["DNS:x.example.cn"]);
        type Defect = fn(&mut CertRow);
        let cases: [(Defect, &str); 6] = [
            (|r| r.serial = "zz".into(), "serial \"zz\""),
            (|r| r.serial = String::new(), "serial \"\""),
            (|r| r.revocation_reason = Some(99), "revocation_reason 99"),
            (|r| r.sans = "[".into(), "sans is not a JSON list"),
            (|r| r.issuer = "root".into(), "issuer \"root\""),
            (|r| r.ca = "../x".into(), "ca \"../x\""),
        ];
        for (defect, want) in cases {
            let mut r = cert_row();
            defect(&mut r);
            let err = <(i64, CertRecord)>::try_from(r).unwrap_err().to_string();
            assert!(
                err.starts_with("storage error: corrupt certificate row 5") && err.contains(want),
                "{err}"
            );
        }
        let revoked = RevokedRow {
            seq: 3,
            serial: "41aa".into(),
            revoked_at: 1,
            revocation_reason: Some(6),
            invalidity_date: None,
        };
        let err = Positioned::try_from(revoked).unwrap_err().to_string();
        assert!(
            err.contains("revocation_seq 3") && err.contains("revocation_reason 6"),
            "{err}"
        );
    }
}

/// The issuer columns (SELECT name, algorithm, created_at FROM issuers).
#[derive(Clone, Debug)]
pub struct IssuerRow {
    pub name: String,
    pub algorithm: String,
    pub created_at: i64,
}

/// The issuer certificate columns, in [`ISSUER_CERT_COLUMNS`] order.
#[derive(Clone, Debug)]
pub struct IssuerCertRow {
    pub sha256: String,
    pub issuer: String,
    pub role: String,
    pub state: String,
    pub der: Vec<u8>,
    pub subject: String,
    pub serial: String,
    pub not_after: i64,
    pub added_at: i64,
    pub ca_id: String,
    pub key_ref: String,
    pub parent: String,
    pub wrapped_key: Option<Vec<u8>>,
}

/// What both backends select for issuers' certificates: roots first, then by age.
pub const ISSUER_CERTS_SQL: &str =
    "SELECT sha256, issuer, role, state, der, subject, serial, not_after, added_at, ca_id, key_ref,
            parent, wrapped_key
     FROM issuer_certificates ORDER BY issuer, role DESC, added_at, sha256";

/// What both backends select for issuers.
pub const ISSUERS_SQL: &str = "SELECT name, algorithm, created_at FROM issuers ORDER BY name";

impl TryFrom<IssuerCertRow> for (String, IssuerCert) {
    type Error = Error;
    fn try_from(r: IssuerCertRow) -> Result<Self> {
        let row = || format!("issuer certificate row {:?}", r.sha256);
        let role = match r.role.as_str() {
            "root" => CaRole::Root,
            "issuing" => CaRole::Issuing,
            "link" => CaRole::Link,
            other => return Err(corrupt(format!("{}: role {other:?}", row()))),
        };
        let state = match r.state.as_str() {
            "active" => CaState::Active,
            "retiring" => CaState::Retiring,
            "retired" => CaState::Retired,
            other => return Err(corrupt(format!("{}: state {other:?}", row()))),
        };
        if crate::core::fingerprint(&r.der) != r.sha256 {
            return Err(corrupt(format!(
                "{}: the certificate does not hash to its key",
                row()
            )));
        }
        let ca_id = CaId::parse(&r.ca_id)
            .map_err(|_| corrupt(format!("{}: ca_id {:?}", row(), r.ca_id)))?;
        let keyed = r.key_ref.starts_with("file:") || r.key_ref.starts_with("pkcs11:");
        if keyed == (role == CaRole::Link) {
            return Err(corrupt(format!("{}: key_ref {:?}", row(), r.key_ref)));
        }
        let parent = CaId::parse(&r.parent)
            .map_err(|_| corrupt(format!("{}: parent {:?}", row(), r.parent)))?;
        let cert = IssuerCert {
            sha256: r.sha256,
            ca_id,
            key_ref: r.key_ref,
            parent,
            wrapped_key: r.wrapped_key.map(WrappedKey),
            role,
            state,
            der: r.der,
            subject: r.subject,
            serial: r.serial,
            not_after: r.not_after,
            added_at: r.added_at,
        };
        Ok((r.issuer, cert))
    }
}

/// The roles whose active certificate a set of new CA certificates replaces (links replace
/// nothing: every generation's links stay).
pub fn replaced_roles(certs: &[IssuerCert]) -> Vec<CaRole> {
    let mut roles = Vec::new();
    for c in certs {
        if c.state == CaState::Active && c.role != CaRole::Link && !roles.contains(&c.role) {
            roles.push(c.role);
        }
    }
    roles
}

/// Refuses a rotation that raced another: the certificates it moved to retiring must be the
/// ones its caller saw active.
pub fn check_replaced(issuer: &str, retiring: &[String], replaces: &[CaId]) -> Result<()> {
    let mut found: Vec<&str> = retiring.iter().map(String::as_str).collect();
    let mut expected: Vec<&str> = replaces.iter().map(CaId::as_str).collect();
    found.sort_unstable();
    expected.sort_unstable();
    if found == expected {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "issuer {issuer:?} changed meanwhile (active was {}, expected {}); look again with `ecca issuer show {issuer}`",
            found.join(","),
            expected.join(",")
        )))
    }
}

/// Issuers with their certificates, from the two selects above.
pub fn issuers(rows: Vec<IssuerRow>, certs: Vec<IssuerCertRow>) -> Result<Vec<IssuerRecord>> {
    let mut out = rows
        .into_iter()
        .map(|r| {
            let algorithm = CaKeyAlg::parse(&r.algorithm).ok_or_else(|| {
                corrupt(format!(
                    "issuer row {:?}: algorithm {:?}",
                    r.name, r.algorithm
                ))
            })?;
            Ok(IssuerRecord {
                name: r.name,
                algorithm,
                created_at: r.created_at,
                certs: Vec::new(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    for row in certs {
        let (issuer, cert) = <(String, IssuerCert)>::try_from(row)?;
        let owner = out.iter_mut().find(|i| i.name == issuer).ok_or_else(|| {
            corrupt(format!(
                "issuer certificate row {:?}: unknown issuer {issuer:?}",
                cert.sha256
            ))
        })?;
        owner.certs.push(cert);
    }
    Ok(out)
}

// Statistics: the same SQL on both backends ($n placeholders numbered in order of first use,
// which SQLite binds by position too).

/// Certificates after a roll-up mark, each with the notAfter of its predecessor (the newest
/// earlier certificate of the same platform, profile, subject and names: an index walk back
/// from its issuance, however many certificates share the subject).
pub const STATS_CERTS_SQL: &str = "SELECT c.id, c.status, c.tenant, c.profile, c.ca, c.subject, c.not_before, c.not_after, c.issued_at,
        (SELECT p.not_after FROM certificates p
         WHERE p.tenant = c.tenant AND p.subject = c.subject AND p.issued_at < c.issued_at
           AND p.status = 'issued' AND p.profile = c.profile AND p.sans = c.sans
         ORDER BY p.issued_at DESC LIMIT 1)
 FROM certificates c WHERE c.id > $1 ORDER BY c.id LIMIT $2";
/// Revocations after a roll-up mark, in revocation order.
pub const STATS_REVOCATIONS_SQL: &str =
    "SELECT revocation_seq, id, tenant, profile, ca, revocation_reason, revoked_at, not_after
 FROM certificates WHERE revocation_seq > $1 ORDER BY revocation_seq LIMIT $2";
pub const STATS_MARKS_SQL: &str = "SELECT name, value FROM stats_marks";
pub const STATS_ISSUED_SQL: &str =
    "SELECT day, tenant, profile, ca, uscc, validity, expiry, renewal, n
 FROM stats_issued WHERE day >= $1 AND day < $2 AND (CAST($3 AS TEXT) IS NULL OR tenant = $3)";
pub const STATS_REVOKED_SQL: &str = "SELECT day, tenant, profile, ca, reason, expiry, n
 FROM stats_revoked WHERE day >= $1 AND day < $2 AND (CAST($3 AS TEXT) IS NULL OR tenant = $3)";
pub const STATS_EVENTS_SQL: &str = "SELECT day, tenant, kind, label, n, total_ms
 FROM stats_events WHERE day >= $1 AND day < $2 AND (CAST($3 AS TEXT) IS NULL OR tenant = $3)";
/// Certificates alive at the start of a day (issued before it, expiring on it or later,
/// not revoked before it) by platform and CA.
pub const STATS_ALIVE_SQL: &str = "SELECT tenant, ca, CAST(SUM(n) AS BIGINT) FROM (
   SELECT tenant, ca, n FROM stats_issued WHERE expiry >= $1 AND day < $1 AND (CAST($2 AS TEXT) IS NULL OR tenant = $2)
   UNION ALL
   SELECT tenant, ca, -n FROM stats_revoked WHERE expiry >= $1 AND day < $1 AND (CAST($2 AS TEXT) IS NULL OR tenant = $2)
 ) a GROUP BY tenant, ca";
/// Counted certificates whose notAfter fell on the UTC days [from, to), by platform.
pub const STATS_EXPIRED_SQL: &str = "SELECT tenant, CAST(SUM(n) AS BIGINT) FROM stats_issued
 WHERE expiry >= $1 AND expiry < $2 AND (CAST($3 AS TEXT) IS NULL OR tenant = $3) GROUP BY tenant";
/// Counted certificates up to a roll-up mark whose notAfter is in [from, to), by platform:
/// all, unrevoked.
pub const STATS_ENDING_SQL: &str =
    "SELECT tenant, COUNT(*), COALESCE(SUM(CASE WHEN revocation_seq IS NULL THEN 1 ELSE 0 END), 0)
 FROM certificates WHERE not_after >= $1 AND not_after < $2 AND id <= $3 AND status = 'issued'
   AND ca <> 'credential' AND profile NOT LIKE 'ecca-%' AND (CAST($4 AS TEXT) IS NULL OR tenant = $4) GROUP BY tenant";
pub const STATS_ADD_ISSUED_SQL: &str = "INSERT INTO stats_issued (day, tenant, profile, ca, uscc, validity, expiry, renewal, n)
 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
 ON CONFLICT (day, tenant, profile, ca, uscc, validity, expiry, renewal) DO UPDATE SET n = stats_issued.n + excluded.n";
pub const STATS_ADD_REVOKED_SQL: &str = "INSERT INTO stats_revoked (day, tenant, profile, ca, reason, expiry, n)
 VALUES ($1, $2, $3, $4, $5, $6, $7)
 ON CONFLICT (day, tenant, profile, ca, reason, expiry) DO UPDATE SET n = stats_revoked.n + excluded.n";
pub const STATS_ADD_EVENTS_SQL: &str = "INSERT INTO stats_events (day, tenant, kind, label, n, total_ms)
 VALUES ($1, $2, $3, $4, $5, $6)
 ON CONFLICT (day, tenant, kind, label) DO UPDATE SET n = stats_events.n + excluded.n, total_ms = stats_events.total_ms + excluded.total_ms";
pub const STATS_SET_MARK_SQL: &str = "INSERT INTO stats_marks (name, value) VALUES ($1, $2)
 ON CONFLICT (name) DO UPDATE SET value = excluded.value";

/// The marks from their rows (absent: nothing read yet).
pub fn stats_marks(rows: Vec<(String, i64)>) -> Marks {
    let mut m = Marks::default();
    for (name, value) in rows {
        match name.as_str() {
            "cert_id" => m.cert_id = value,
            "revocation_seq" => m.revocation_seq = value,
            _ => {}
        }
    }
    m
}

/// The marks as rows.
pub fn stats_mark_rows(m: Marks) -> [(&'static str, i64); 2] {
    [("cert_id", m.cert_id), ("revocation_seq", m.revocation_seq)]
}

/// A renewal column value, checked.
pub fn renewal(text: &str) -> Result<Renewal> {
    Renewal::parse(text).ok_or_else(|| corrupt(format!("stats_issued: renewal {text:?}")))
}

/// Another instance rolled up first: this step is dropped (its rows are counted by that one).
pub fn stats_moved(now: Marks, from: Marks) -> Result<()> {
    if now == from {
        return Ok(());
    }
    Err(Error::Conflict(format!(
        "statistics marks moved from {from:?} to {now:?}"
    )))
}
