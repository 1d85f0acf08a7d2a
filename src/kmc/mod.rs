//! The key management centre (KMC) of the dual-certificate system (GM/T 0034): it generates
//! subscribers' encryption key pairs, escrows the private keys under its own master key, and
//! hands a private key out only inside an envelope addressed to a certificate's key — the
//! subscriber's signing key at issuance, a recovery's requester after M distinct recovery
//! officers approved.
//!
//! It is its own component with its own data directory (by default `DIR/kmc/` of the CA it
//! serves; `ecca-kmc` runs it apart): its credential CA, master key and store never mix with
//! the CA's, and the CA reaches it only over mutual TLS (`ecca.kmc.v1`), so the CA's database
//! and keys yield no escrowed key.
//!
//! ```text
//! KMC-DIR/master.key              the master key (0600; passphrase-encrypted when configured)
//! KMC-DIR/ca.pem, ca.key          the KMC's credential CA: its TLS certificate, its clients'
//!                                 credentials (CA instances, officers), its audit checkpoints
//! KMC-DIR/tls/server.pem, .key    the KMC's TLS certificate
//! KMC-DIR/kmc.db                  escrows (sealed), clients, recoveries, the audit log
//! KMC-DIR/endpoints.json          where a running KMC listens
//! ```
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::core::audit::Verdict;
use crate::core::csr::Attr;
use crate::core::issue::{self, CaView, IssuerRef, LeafSpec, Names, SubjectKey};
use crate::core::keys::{CaKeyAlg, KeyAlg, Signer};
use crate::core::lint::CertKind;
use crate::core::profile::{self, Profile};
use crate::core::serial::Serial;
use crate::error::{Error, Result};
use crate::pemfile;
use crate::signer::SoftwareKey;

pub mod client;
pub mod store;
pub mod vault;

pub use store::{ClientRow, KmcRole, RecoveryRow};
use store::{EscrowRow, Event, KmcStore};
use vault::MasterKey;

/// How recoveries are controlled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmcOptions {
    /// Distinct officers who must approve a recovery (M of the N registered).
    pub approvals: u32,
    /// How long a recovery request stays open, seconds.
    pub recovery_ttl: i64,
}

impl Default for KmcOptions {
    fn default() -> Self {
        KmcOptions {
            approvals: 2,
            recovery_ttl: 24 * 3600,
        }
    }
}

/// A key made and escrowed for a subscriber.
#[derive(Clone, Debug)]
pub struct Generated {
    pub escrow_id: String,
    pub spki_der: Vec<u8>,
    pub envelope: Vec<u8>,
    pub envelope_type: &'static str,
}

/// A recovery as callers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryView {
    pub id: String,
    pub serial: String,
    pub reason: String,
    pub case_reference: String,
    pub requester: String,
    pub state: &'static str,
    pub approvals: Vec<String>,
    pub required: u32,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The envelope kinds.
pub const SM2_ENVELOPED_KEY: &str = "SM2EnvelopedKey";
pub const CMS_ENVELOPED_DATA: &str = "EnvelopedData";

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn random_id() -> Result<String> {
    Ok(hex::encode(&Serial::random()?.as_bytes()[..8]))
}

/// The KMC.
#[derive(Debug)]
pub struct Kmc {
    dir: PathBuf,
    store: KmcStore,
    master: MasterKey,
    ca: CaView,
    ca_key: std::sync::Arc<SoftwareKey>,
    opts: KmcOptions,
}

impl Kmc {
    /// Opens the KMC data directory, making its master key, credential CA and store the first
    /// time.
    pub fn open(dir: &Path, opts: KmcOptions) -> Result<Self> {
        if opts.approvals == 0 {
            return Err(Error::Config(
                "kmc recovery approvals must be at least 1".into(),
            ));
        }
        pemfile::private_dir(dir)?;
        let master = MasterKey::open_or_create(&dir.join("master.key"))?;
        let (ca_pem, ca_keyfile) = (dir.join("ca.pem"), dir.join("ca.key"));
        let (ca_der, ca_key) = if ca_pem.exists() {
            let der =
                pemfile::parse_certs(&std::fs::read(&ca_pem).map_err(|e| Error::io(&ca_pem, e))?)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        Error::Config(format!("{}: no certificate", ca_pem.display()))
                    })?;
            (der, SoftwareKey::load(&ca_keyfile)?)
        } else {
            let key = SoftwareKey::generate(CaKeyAlg::P256)?;
            let attrs = [
                (Attr::Country, "CN".to_string()),
                (Attr::Organization, "ecca".to_string()),
                (Attr::CommonName, "ecca KMC Credential CA".to_string()),
            ];
            let params = crate::authority::ca_params(&attrs, 20 * 365, Some(0))?;
            let der = issue::self_sign_root(&params, &key)?;
            key.save(&ca_keyfile)?;
            pemfile::write_public(&ca_pem, pemfile::certs_to_pem([der.as_slice()]).as_bytes())?;
            (der, key)
        };
        let ca = CaView::from_der(ca_der)?;
        let ca_key = std::sync::Arc::new(ca_key);
        let signer = ca_key.clone();
        let store = KmcStore::open(&dir.join("kmc.db"))?
            .with_checkpoints(Box::new(move |message| Ok(signer.sign(message)?)));
        Ok(Kmc {
            dir: dir.to_path_buf(),
            store,
            master,
            ca,
            ca_key,
            opts,
        })
    }

    /// The KMC's data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The credential CA, DER: what clients trust and what signs their credentials.
    pub fn ca_der(&self) -> &[u8] {
        &self.ca.der
    }

    fn sign_leaf(&self, profile_text: &str, names: &Names, spki_der: &[u8]) -> Result<Vec<u8>> {
        let profile = Profile::parse("kmc", "internal", profile_text)?;
        let now = OffsetDateTime::now_utc();
        let (not_before, not_after) = issue::validity(&profile, None, now, self.ca.not_after)?;
        let params = issue::leaf_params(&LeafSpec {
            profile: &profile,
            names,
            serial: &Serial::random()?,
            not_before,
            not_after,
            spki_der,
            key_enciphers: false,
            urls: None,
        })?;
        let subject = SubjectKey::from_spki(spki_der)?;
        let issuer = IssuerRef::new(&self.ca, self.ca_key.as_ref())?;
        let pass = issue::lint_only(&params, &subject, &issuer, CertKind::EndEntity)?;
        Ok(issue::sign(&issuer, pass)?)
    }

    /// Issues and registers a client credential for `spki_der` (a P-256 key made by its
    /// holder): a CA instance, or a recovery officer. Returns the certificate, DER.
    pub fn add_client(
        &self,
        role: KmcRole,
        name: &str,
        spki_der: &[u8],
        actor: &str,
        replace: bool,
    ) -> Result<Vec<u8>> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(Error::field(
                "name",
                "1-64 letters, digits, '-', '_' and '.'",
            ));
        }
        let names = Names {
            subject: vec![
                (Attr::Organization, "ecca KMC".into()),
                (Attr::OrganizationalUnit, role.as_str().into()),
                (Attr::CommonName, name.into()),
            ],
            ..Names::default()
        };
        let der = self.sign_leaf(profile::INTERNAL_CREDENTIAL, &names, spki_der)?;
        let row = ClientRow {
            sha256: crate::core::fingerprint(&der),
            role,
            name: name.into(),
            disabled: false,
        };
        self.store.add_client(&row, &der, actor, replace)?;
        Ok(der)
    }

    /// The KMC's TLS certificate chain and key (PEM), issued (or renewed within 30 days of its
    /// end) for localhost, 127.0.0.1 and `names`.
    pub fn server_identity(&self, names: &[String]) -> Result<(Vec<Vec<u8>>, String)> {
        let (cert, key) = (
            self.dir.join("tls/server.pem"),
            self.dir.join("tls/server.key"),
        );
        let fresh = std::fs::read(&cert)
            .ok()
            .and_then(|p| pemfile::parse_certs(&p).ok())
            .and_then(|c| c.into_iter().next())
            .filter(|der| {
                x509_parser::parse_x509_certificate(der)
                    .is_ok_and(|(_, c)| c.validity().not_after.timestamp() - 30 * 86_400 > now())
            });
        let der = match (fresh, key.exists()) {
            (Some(der), true) => der,
            _ => {
                let k = SoftwareKey::generate(CaKeyAlg::P256)?;
                let mut n = Names {
                    subject: vec![(Attr::CommonName, "localhost".into())],
                    dns: vec!["localhost".into()],
                    ips: vec![std::net::IpAddr::from([127, 0, 0, 1])],
                    emails: vec![],
                };
                for name in names {
                    match name.parse::<std::net::IpAddr>() {
                        Ok(ip) => n.ips.push(ip),
                        Err(_) => n.dns.push(
                            crate::core::names::dns_name(name, false)
                                .map_err(|e| Error::Config(format!("KMC server name: {e}")))?,
                        ),
                    }
                }
                let der = self.sign_leaf(profile::INTERNAL_SERVER_TLS, &n, &k.spki_der())?;
                k.save(&key)?;
                pemfile::write_public(&cert, pemfile::certs_to_pem([der.as_slice()]).as_bytes())?;
                der
            }
        };
        Ok((vec![der], SoftwareKey::load(&key)?.pkcs8_pem()))
    }

    /// Who is calling: a registered, enabled client, by the hash of its whole certificate.
    pub fn authenticate(&self, leaf_der: Option<&[u8]>) -> Result<ClientRow> {
        let der = leaf_der.ok_or_else(|| Error::Unauthenticated("no client certificate".into()))?;
        match self.store.client(&crate::core::fingerprint(der))? {
            Some(c) if !c.disabled => Ok(c),
            _ => Err(Error::Unauthenticated(
                "the client certificate is not a registered KMC credential".into(),
            )),
        }
    }

    fn only(caller: &ClientRow, role: KmcRole) -> Result<()> {
        if caller.role == role {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "only {} may do this; this credential is {} {:?}",
                role.holders(),
                caller.role.as_str(),
                caller.name
            )))
        }
    }

    /// Generates an encryption key pair of `algorithm`, escrows it and envelopes it to the
    /// subscriber's signing certificate (the CA service).
    pub fn generate(
        &self,
        caller: &ClientRow,
        algorithm: &str,
        recipient_cert_der: &[u8],
        actor: &str,
    ) -> Result<Generated> {
        Self::only(caller, KmcRole::Ca)?;
        let (spki_der, secret) = new_key(algorithm)?;
        let (envelope, envelope_type) = envelope_for(algorithm, recipient_cert_der, &secret)?;
        let id = random_id()?;
        let row = EscrowRow {
            id: id.clone(),
            algorithm: algorithm.into(),
            spki: spki_der.clone(),
            sealed: self.master.seal(&id, &secret)?,
            recipient_sha256: crate::core::fingerprint(recipient_cert_der),
            serial: None,
            subject: String::new(),
            created_at: now(),
        };
        let event = Event {
            actor,
            event: "kmc.key.generated",
            object: &id,
            detail: format!(
                "algorithm={algorithm} envelope={envelope_type} recipient_sha256={} via={}",
                row.recipient_sha256, caller.name
            ),
        };
        self.store.insert_escrow(&row, &event)?;
        Ok(Generated {
            escrow_id: id,
            spki_der,
            envelope,
            envelope_type,
        })
    }

    /// Records the encryption certificate issued for an escrowed key (the CA service); it must
    /// certify exactly that key.
    pub fn bind(
        &self,
        caller: &ClientRow,
        escrow_id: &str,
        cert_der: &[u8],
        actor: &str,
    ) -> Result<(String, String)> {
        Self::only(caller, KmcRole::Ca)?;
        let escrow = self
            .store
            .escrow(escrow_id)?
            .ok_or_else(|| Error::NotFound(format!("escrow {escrow_id}")))?;
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| Error::field("certificate_der", format!("does not parse: {e}")))?;
        if cert.public_key().raw != escrow.spki.as_slice() {
            return Err(Error::field(
                "certificate_der",
                "does not certify the escrowed key",
            ));
        }
        let serial = Serial::from_der_content(cert.raw_serial()).hex();
        let subject = cert.subject().to_string();
        let event = Event {
            actor,
            event: "kmc.key.bound",
            object: escrow_id,
            detail: format!("serial={serial} subject={subject}"),
        };
        self.store
            .bind(escrow_id, &serial, cert_der, &subject, &event)?;
        Ok((serial, subject))
    }

    fn view(&self, r: &RecoveryRow) -> RecoveryView {
        let state = if r.released_at.is_some() {
            "released"
        } else if r.refused_by.is_some() {
            "refused"
        } else if now() >= r.expires_at {
            "expired"
        } else if r.approvals.len() >= self.opts.approvals as usize {
            "approved"
        } else {
            "pending"
        };
        RecoveryView {
            id: r.id.clone(),
            serial: r.serial.clone(),
            reason: r.reason.clone(),
            case_reference: r.case_reference.clone(),
            requester: r.requester.clone(),
            state,
            approvals: r.approvals.clone(),
            required: self.opts.approvals,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }

    /// Opens a recovery of the key certified by encryption certificate `serial`, to be
    /// enveloped to `recipient_cert_der` once approved (the CA service, for `requester`).
    pub fn request_recovery(
        &self,
        caller: &ClientRow,
        serial: &str,
        reason: &str,
        case_reference: &str,
        recipient_cert_der: &[u8],
        requester: &str,
    ) -> Result<RecoveryView> {
        Self::only(caller, KmcRole::Ca)?;
        if reason.trim().is_empty() {
            return Err(Error::field("reason", "say why the key is recovered"));
        }
        let serial = Serial::parse_hex(serial)?.hex();
        let escrow = self
            .store
            .escrow_by_serial(&serial)?
            .ok_or_else(|| Error::NotFound(format!("no escrowed key for certificate {serial}")))?;
        // The recipient must be able to open what will be released.
        envelope_for(&escrow.algorithm, recipient_cert_der, &[])?;
        let officers = self.store.officers()?;
        if officers < self.opts.approvals as usize {
            return Err(Error::Conflict(format!(
                "a recovery needs {} officer approvals and {officers} officers are registered: `ecca kmc officer add NAME --out DIR`",
                self.opts.approvals
            )));
        }
        let at = now();
        let row = RecoveryRow {
            id: random_id()?,
            escrow_id: escrow.id.clone(),
            serial: serial.clone(),
            reason: reason.into(),
            case_reference: case_reference.into(),
            recipient_der: recipient_cert_der.to_vec(),
            requester: requester.into(),
            created_at: at,
            expires_at: at + self.opts.recovery_ttl,
            released_at: None,
            refused_by: None,
            approvals: Vec::new(),
        };
        let kind = if case_reference.is_empty() {
            "owner"
        } else {
            "judicial"
        };
        let event = Event {
            actor: requester,
            event: "kmc.recovery.requested",
            object: &row.id,
            detail: format!(
                "serial={serial} kind={kind} case={case_reference} reason={reason} recipient_sha256={} via={}",
                crate::core::fingerprint(recipient_cert_der),
                caller.name
            ),
        };
        self.store.insert_recovery(&row, &event)?;
        Ok(self.view(&row))
    }

    fn recovery(&self, id: &str) -> Result<RecoveryRow> {
        self.store
            .recovery(id)?
            .ok_or_else(|| Error::NotFound(format!("recovery {id}")))
    }

    /// An officer approves a pending recovery (once per officer).
    pub fn approve(&self, caller: &ClientRow, id: &str) -> Result<RecoveryView> {
        let detail = format!("officer_sha256={}", caller.sha256);
        self.decide(
            caller,
            id,
            "kmc.recovery.approved",
            detail,
            |store, event| store.approve(id, caller, event),
        )
    }

    /// An officer refuses a recovery: it is closed, and nothing is ever released for it.
    pub fn refuse(&self, caller: &ClientRow, id: &str, reason: &str) -> Result<RecoveryView> {
        let detail = format!("officer_sha256={} reason={reason:?}", caller.sha256);
        self.decide(caller, id, "kmc.recovery.denied", detail, |store, event| {
            store.refuse(id, caller, event)
        })
    }

    /// An officer's decision on an open recovery, recorded with its audit entry.
    fn decide(
        &self,
        caller: &ClientRow,
        id: &str,
        event: &str,
        detail: String,
        record: impl FnOnce(&KmcStore, &Event<'_>) -> Result<()>,
    ) -> Result<RecoveryView> {
        Self::only(caller, KmcRole::Officer)?;
        let state = self.view(&self.recovery(id)?).state;
        if matches!(state, "expired" | "released" | "refused") {
            return Err(Error::Conflict(format!(
                "recovery {id} is {state}; it is closed"
            )));
        }
        let event = Event {
            actor: &caller.name,
            event,
            object: id,
            detail,
        };
        record(&self.store, &event)?;
        Ok(self.view(&self.recovery(id)?))
    }

    /// Releases an approved recovery's key, enveloped to its recipient, to the requester who
    /// asked (once). Anything else releases nothing and is audited.
    pub fn fetch(
        &self,
        caller: &ClientRow,
        id: &str,
        requester: &str,
    ) -> Result<(RecoveryView, Vec<u8>, &'static str)> {
        Self::only(caller, KmcRole::Ca)?;
        let r = self.recovery(id)?;
        let view = self.view(&r);
        let refusal = if r.requester != requester {
            Some(Error::PermissionDenied(format!(
                "recovery {id} was requested by someone else"
            )))
        } else if view.state != "approved" {
            Some(Error::Conflict(format!(
                "recovery {id} is {} ({} of {} approvals): nothing is released",
                view.state,
                view.approvals.len(),
                view.required
            )))
        } else {
            None
        };
        if let Some(e) = refusal {
            let event = Event {
                actor: requester,
                event: "kmc.recovery.refused",
                object: id,
                detail: e.to_string(),
            };
            self.store.audit(&event)?;
            return Err(e);
        }
        let escrow = self.store.escrow(&r.escrow_id)?.ok_or_else(|| {
            Error::Corrupt(format!("recovery {id}: escrow {} is gone", r.escrow_id))
        })?;
        let secret = self.master.open(&escrow.id, &escrow.sealed)?;
        let (envelope, kind) = envelope_for(&escrow.algorithm, &r.recipient_der, &secret)?;
        let event = Event {
            actor: requester,
            event: "kmc.recovery.released",
            object: id,
            detail: format!(
                "serial={} approvals={} envelope={kind}",
                r.serial,
                r.approvals.join(",")
            ),
        };
        self.store.released(id, &event)?;
        Ok((self.view(&self.recovery(id)?), envelope, kind))
    }

    /// Recoveries, newest first (CA instances and officers).
    pub fn recoveries(&self, _caller: &ClientRow) -> Result<Vec<RecoveryView>> {
        Ok(self
            .store
            .recoveries()?
            .iter()
            .map(|r| self.view(r))
            .collect())
    }

    /// Verifies the KMC's audit chain and its checkpoints (signed by the credential CA).
    pub fn verify_audit(&self) -> Result<Verdict> {
        let (entries, checkpoints) = self.store.audit_log()?;
        let ca = self.ca.der.clone();
        Ok(crate::core::audit::verify(
            &entries,
            &checkpoints,
            |m, s| crate::core::audit::checkpoint_signature_ok(&ca, m, s),
        ))
    }
}

/// A new encryption key pair of `algorithm`: its SPKI, and the secret the envelope carries
/// (SM2: the 32-byte private scalar; P-256/P-384: the PKCS#8 DER).
fn new_key(algorithm: &str) -> Result<(Vec<u8>, Vec<u8>)> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use pkcs8::{EncodePrivateKey, EncodePublicKey};
    let der = |d: pkcs8::Result<pkcs8::SecretDocument>| -> Result<Vec<u8>> {
        Ok(
            d.map_err(|e| Error::Internal(format!("key encoding: {e}")))?
                .as_bytes()
                .to_vec(),
        )
    };
    let spki = |d: std::result::Result<pkcs8::Document, pkcs8::spki::Error>| -> Result<Vec<u8>> {
        Ok(
            d.map_err(|e| Error::Internal(format!("key encoding: {e}")))?
                .as_bytes()
                .to_vec(),
        )
    };
    match algorithm {
        "sm2" => {
            let secret = sm2::SecretKey::random(&mut pkcs8::rand_core::OsRng);
            let point = secret.public_key().to_encoded_point(false);
            Ok((
                crate::core::sm2::spki_der(point.as_bytes())?,
                secret.to_bytes().to_vec(),
            ))
        }
        "p256" => {
            let secret = p256::SecretKey::random(&mut pkcs8::rand_core::OsRng);
            Ok((
                spki(secret.public_key().to_public_key_der())?,
                der(secret.to_pkcs8_der())?,
            ))
        }
        "p384" => {
            let secret = p384::SecretKey::random(&mut pkcs8::rand_core::OsRng);
            Ok((
                spki(secret.public_key().to_public_key_der())?,
                der(secret.to_pkcs8_der())?,
            ))
        }
        other => Err(Error::field(
            "algorithm",
            format!("{other:?}: encryption keys are sm2, p256 or p384"),
        )),
    }
}

/// Envelopes `secret` of an escrowed key of `algorithm` to the key of `recipient_cert_der`:
/// SM2EnvelopedKey to an SM2 key, EnvelopedData to a P-256/P-384 key. With an empty secret,
/// only checks that the recipient can be enveloped to.
fn envelope_for(
    algorithm: &str,
    recipient_cert_der: &[u8],
    secret: &[u8],
) -> Result<(Vec<u8>, &'static str)> {
    let (_, cert) = x509_parser::parse_x509_certificate(recipient_cert_der)
        .map_err(|e| Error::field("recipient_certificate", format!("does not parse: {e}")))?;
    let key = KeyAlg::of_spki(cert.public_key())
        .map_err(|e| Error::field("recipient_certificate", e.to_string()))?;
    match (algorithm, key) {
        ("sm2", KeyAlg::Sm2) => {
            if secret.is_empty() {
                return Ok((Vec::new(), SM2_ENVELOPED_KEY));
            }
            let secret: [u8; 32] = secret
                .try_into()
                .map_err(|_| Error::Corrupt("an escrowed SM2 key is not 32 bytes".into()))?;
            let point = &cert.public_key().subject_public_key.data;
            Ok((
                crate::core::envelope::seal_sm2(point, &secret)?,
                SM2_ENVELOPED_KEY,
            ))
        }
        ("p256" | "p384", KeyAlg::P256 | KeyAlg::P384) => {
            if secret.is_empty() {
                return Ok((Vec::new(), CMS_ENVELOPED_DATA));
            }
            Ok((
                crate::core::envelope::seal_cms(recipient_cert_der, secret)?,
                CMS_ENVELOPED_DATA,
            ))
        }
        (alg, key) => Err(Error::field(
            "recipient_certificate",
            format!(
                "a {alg} key is enveloped to an {} key; this certificate has a {key} key",
                if alg == "sm2" {
                    "SM2"
                } else {
                    "P-256 or P-384"
                }
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A certificate for `spki` (P-256) from a throwaway issuer.
    fn cert_for(spki: &[u8]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::new(
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap(),
            key,
        );
        let subject = rcgen::SubjectPublicKeyInfo::from_der(spki).unwrap();
        rcgen::CertificateParams::new(vec!["x.example".to_string()])
            .unwrap()
            .signed_by(&subject, &issuer)
            .unwrap()
            .der()
            .to_vec()
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        kmc: Kmc,
        ca: ClientRow,
        officers: Vec<ClientRow>,
        /// The requester's key (PKCS#8) and certificate.
        recipient: (SoftwareKey, Vec<u8>),
        serial: String,
        spki: Vec<u8>,
    }

    fn client(kmc: &Kmc, role: KmcRole, name: &str) -> ClientRow {
        let key = SoftwareKey::generate(CaKeyAlg::P256).unwrap();
        let der = kmc
            .add_client(role, name, &key.spki_der(), "test", false)
            .unwrap();
        kmc.authenticate(Some(&der)).unwrap()
    }

    fn fixture(opts: KmcOptions) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let kmc = Kmc::open(&dir.path().join("kmc"), opts).unwrap();
        let ca = client(&kmc, KmcRole::Ca, "ca");
        let officers = ["alice", "bob", "carol"]
            .iter()
            .map(|n| client(&kmc, KmcRole::Officer, n))
            .collect();
        let subscriber = SoftwareKey::generate(CaKeyAlg::P256).unwrap();
        let g = kmc
            .generate(&ca, "p256", &cert_for(&subscriber.spki_der()), "admin:1")
            .unwrap();
        let enc = cert_for(&g.spki_der);
        let (serial, _) = kmc.bind(&ca, &g.escrow_id, &enc, "admin:1").unwrap();
        let requester = SoftwareKey::generate(CaKeyAlg::P256).unwrap();
        let cert = cert_for(&requester.spki_der());
        Fixture {
            _dir: dir,
            kmc,
            ca,
            officers,
            recipient: (requester, cert),
            serial,
            spki: g.spki_der,
        }
    }

    #[test]
    fn a_recovery_releases_only_after_m_officers_and_only_to_its_requester() {
        let f = fixture(KmcOptions::default());
        let (kmc, ca) = (&f.kmc, &f.ca);
        let r = kmc
            .request_recovery(ca, &f.serial, "lost token", "", &f.recipient.1, "admin:1")
            .unwrap();
        assert_eq!((r.state, r.required), ("pending", 2));
        // Officers approve; the CA's credential may not, nor may an officer ask or fetch.
        assert!(matches!(
            kmc.approve(ca, &r.id),
            Err(Error::PermissionDenied(_))
        ));
        assert!(matches!(
            kmc.fetch(&f.officers[0], &r.id, "admin:1"),
            Err(Error::PermissionDenied(_))
        ));
        kmc.approve(&f.officers[0], &r.id).unwrap();
        assert!(matches!(
            kmc.approve(&f.officers[0], &r.id),
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            kmc.fetch(ca, &r.id, "admin:1"),
            Err(Error::Conflict(_))
        ));
        assert_eq!(
            kmc.approve(&f.officers[1], &r.id).unwrap().state,
            "approved"
        );
        // Another admin of the CA gets nothing.
        assert!(matches!(
            kmc.fetch(ca, &r.id, "admin:2"),
            Err(Error::PermissionDenied(_))
        ));
        let (view, envelope, kind) = kmc.fetch(ca, &r.id, "admin:1").unwrap();
        assert_eq!((view.state, kind), ("released", CMS_ENVELOPED_DATA));
        let opened = crate::core::envelope::open(&envelope, &f.recipient.0.pkcs8_der()).unwrap();
        assert_eq!(
            SoftwareKey::from_pkcs8_der(&opened).unwrap().spki_der(),
            f.spki
        );
        // Once.
        assert!(matches!(
            kmc.fetch(ca, &r.id, "admin:1"),
            Err(Error::Conflict(_))
        ));
        assert!(kmc.verify_audit().unwrap().problem.is_none());
    }

    #[test]
    fn refused_and_expired_recoveries_release_nothing() {
        let f = fixture(KmcOptions {
            approvals: 1,
            ..KmcOptions::default()
        });
        let (kmc, ca) = (&f.kmc, &f.ca);
        let r = kmc
            .request_recovery(
                ca,
                &f.serial,
                "court order",
                "case 7",
                &f.recipient.1,
                "admin:1",
            )
            .unwrap();
        assert_eq!(
            kmc.refuse(&f.officers[2], &r.id, "no order attached")
                .unwrap()
                .state,
            "refused"
        );
        assert!(matches!(
            kmc.approve(&f.officers[0], &r.id),
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            kmc.fetch(ca, &r.id, "admin:1"),
            Err(Error::Conflict(_))
        ));

        let f = fixture(KmcOptions {
            approvals: 1,
            recovery_ttl: 0,
        });
        let r = f
            .kmc
            .request_recovery(&f.ca, &f.serial, "lost", "", &f.recipient.1, "admin:1")
            .unwrap();
        assert_eq!(r.state, "expired");
        assert!(matches!(
            f.kmc.approve(&f.officers[0], &r.id),
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            f.kmc.fetch(&f.ca, &r.id, "admin:1"),
            Err(Error::Conflict(_))
        ));
        // Bad input: a recipient that does not parse, an unknown serial, no reason.
        let bad = |e: Error| matches!(e, Error::InvalidField { .. } | Error::NotFound(_));
        assert!(bad(f
            .kmc
            .request_recovery(&f.ca, &f.serial, "x", "", b"junk", "a")
            .unwrap_err()));
        assert!(bad(f
            .kmc
            .request_recovery(&f.ca, "01", "x", "", &f.recipient.1, "a")
            .unwrap_err()));
        assert!(bad(f
            .kmc
            .request_recovery(&f.ca, &f.serial, " ", "", &f.recipient.1, "a")
            .unwrap_err()));
    }

    #[test]
    fn the_audit_chain_reports_tampering() {
        let f = fixture(KmcOptions::default());
        assert!(f.kmc.verify_audit().unwrap().problem.is_none());
        let db = f.kmc.dir().join("kmc.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE audit_log SET detail = 'nothing happened' WHERE id = 2",
            [],
        )
        .unwrap();
        assert!(f.kmc.verify_audit().unwrap().problem.is_some());
    }

    #[test]
    fn a_bound_certificate_must_certify_the_escrowed_key() {
        let f = fixture(KmcOptions::default());
        let other = SoftwareKey::generate(CaKeyAlg::P256).unwrap();
        let g = f
            .kmc
            .generate(&f.ca, "p256", &f.recipient.1, "admin:1")
            .unwrap();
        assert!(matches!(
            f.kmc
                .bind(&f.ca, &g.escrow_id, &cert_for(&other.spki_der()), "admin:1"),
            Err(Error::InvalidField { .. })
        ));
        // An SM2 key cannot be enveloped to a P-256 certificate.
        assert!(matches!(
            f.kmc.generate(&f.ca, "sm2", &f.recipient.1, "admin:1"),
            Err(Error::InvalidField { .. })
        ));
        assert!(matches!(
            f.kmc
                .generate(&f.officers[0], "p256", &f.recipient.1, "admin:1"),
            Err(Error::PermissionDenied(_))
        ));
    }
}
