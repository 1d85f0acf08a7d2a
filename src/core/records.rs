//! What the CA keeps about certificates, credentials, peers and platforms: the records every
//! store backend reads and writes, and the roles a credential carries.
use crate::core::Issuer;
use crate::core::revocation::Reason;

/// An issued certificate as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRecord {
    pub serial: String,
    pub issuer: Issuer,
    /// The CA certificate that signed it: its CRL and OCSP answer for it.
    pub ca: CaId,
    pub profile: String,
    pub tenant: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: i64,
    pub der: Vec<u8>,
    /// Set once the certificate is revoked (it stays revoked).
    pub revocation: Option<Revocation>,
}

/// How and when a certificate was revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub revoked_at: i64,
    pub reason: Reason,
    pub invalidity_date: Option<i64>,
    /// Position in the order of revocations (delta CRLs list those after their base's position).
    pub seq: i64,
}

/// Roles a client credential can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Platform,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Platform => "platform",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "platform" => Some(Role::Platform),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

/// A client credential (mTLS certificate) registered with the CA. It is found by the SHA-256
/// of its whole certificate: a serial (public, and choosable by any other CA) never authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// Serial of the credential's certificate, lowercase hex (for display and the audit log).
    pub serial: String,
    /// SHA-256 of the credential's whole certificate, lowercase hex (its identity).
    pub cert_sha256: String,
    pub role: Role,
    /// The tenant it acts for (empty for admins and auditors).
    pub tenant: String,
    pub disabled: bool,
}

/// Whether a peer CA is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerStatus {
    Active,
    Suspended,
}

impl PeerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerStatus::Active => "active",
            PeerStatus::Suspended => "suspended",
        }
    }
}

/// Names one CA certificate: the store's `certificates.ca`, and the stem of its CRL and
/// certificate URLs. The data directory's first root and issuing CA keep the names they had
/// before hierarchies (`root`, `issuing`, so their URLs stay); the credential CA is
/// `credential`; every later CA certificate is named by the first 16 hex digits of its
/// SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaId(String);

impl CaId {
    pub fn root() -> Self {
        CaId("root".into())
    }
    pub fn issuing() -> Self {
        CaId("issuing".into())
    }
    pub fn credential() -> Self {
        CaId("credential".into())
    }
    /// The name of a CA certificate made after the first hierarchy.
    pub fn of_cert(der: &[u8]) -> Self {
        CaId(crate::core::fingerprint(der)[..16].to_string())
    }
    /// A stored name; anything but the fixed names and 16 hex digits is corrupt.
    pub fn parse(s: &str) -> crate::core::Result<Self> {
        let hex16 = s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if hex16 || matches!(s, "root" | "issuing" | "credential") {
            Ok(CaId(s.into()))
        } else {
            Err(crate::core::Error::Corrupt(format!("CA id {s:?}")))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The issuer the data directory's CA hierarchy is recorded under (made at init).
pub const DEFAULT_ISSUER: &str = "default";

/// What a CA certificate of an issuer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaRole {
    /// The trust anchor relying parties install.
    Root,
    /// Signs end-entity certificates, under the root.
    Issuing,
    /// Joins two generations of roots (root rollover, RFC 4210 §4.4): the new root's key
    /// certified by the old root, or the old root's key by the new one. Signs nothing.
    Link,
}

impl CaRole {
    pub fn as_str(self) -> &'static str {
        match self {
            CaRole::Root => "root",
            CaRole::Issuing => "issuing",
            CaRole::Link => "link",
        }
    }
}

/// A software CA key sealed for the other instances of the CA (AES-256-GCM under a key only
/// copies of the data directory can derive). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey(pub Vec<u8>);

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WrappedKey({} bytes)", self.0.len())
    }
}

/// Where a CA certificate is in its life: active (signs new certificates), retiring (signs
/// only CRLs and OCSP for what it issued), retired (signs nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaState {
    Active,
    Retiring,
    Retired,
}

impl CaState {
    pub fn as_str(self) -> &'static str {
        match self {
            CaState::Active => "active",
            CaState::Retiring => "retiring",
            CaState::Retired => "retired",
        }
    }
}

/// One CA certificate of an issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerCert {
    /// SHA-256 of the DER, hex: the certificate's identity.
    pub sha256: String,
    /// Its name in URLs and in `certificates.ca`.
    pub ca_id: CaId,
    /// Where its key is: `file:PATH` (relative to the data directory; the file holds PKCS#8
    /// or a PKCS#11 URI) or a `pkcs11:` URI. Link certificates have no key of their own.
    pub key_ref: String,
    /// The CA certificate that signed it (a root names itself).
    pub parent: CaId,
    /// A software key made after init, sealed for the instances that lack its file.
    pub wrapped_key: Option<WrappedKey>,
    pub role: CaRole,
    pub state: CaState,
    pub der: Vec<u8>,
    pub subject: String,
    /// Serial, hex.
    pub serial: String,
    pub not_after: i64,
    pub added_at: i64,
}

/// A CA hierarchy: a name, the algorithm of its keys, and its CA certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerRecord {
    pub name: String,
    pub algorithm: crate::core::keys::CaKeyAlg,
    pub created_at: i64,
    /// Roots first, then link certificates, then issuing CAs, each oldest first.
    pub certs: Vec<IssuerCert>,
}

/// A peer CA in the federation registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    pub name: String,
    /// The peer's CA certificate, DER.
    pub ca_cert: Vec<u8>,
    pub subject: String,
    pub status: PeerStatus,
    pub added_at: i64,
}

/// Which way a cross-certificate points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Our root certified the peer's CA.
    Issued,
    /// The peer certified our root.
    Received,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Issued => "issued",
            Direction::Received => "received",
        }
    }
}

/// A stored cross-certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrossRecord {
    pub serial: String,
    pub peer: String,
    pub direction: Direction,
    /// Our root involved: the one that signed it (issued), or the one it certifies
    /// (received). Its CRL and OCSP answer for an issued one.
    pub ca: CaId,
    pub der: Vec<u8>,
    pub not_after: i64,
    pub created_at: i64,
    pub revoked: Option<(i64, Reason)>,
}

/// A platform (tenant) and what it may issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformRecord {
    pub name: String,
    pub dns_suffixes: Vec<String>,
    /// CIDRs.
    pub ip_ranges: Vec<String>,
    pub profiles: Vec<String>,
    pub max_days: Option<u32>,
    pub rate_per_min: Option<u32>,
    pub disabled: bool,
    pub created_at: i64,
    /// Subject O values registered to the platform (the only ones it may put in certificates).
    pub organizations: Vec<String>,
    /// Unified Social Credit Codes registered to the platform (subject serialNumber).
    pub usccs: Vec<String>,
    /// Free-text CN/OU values the platform may use besides its DNS names; a trailing `*`
    /// matches any continuation (e.g. `api-client-*`).
    pub names: Vec<String>,
}
