//! Durable state behind one trait. SQLite (WAL, synchronous=FULL) is the embedded default; a
//! PostgreSQL store is a second implementation of the same trait.
//!
//! Every write is acknowledged only after its transaction committed; every state change appends
//! to the hash-chained audit log inside the same transaction.
use std::fmt;

use async_trait::async_trait;

use crate::core::revocation::{Reason, RevokedEntry};
use crate::core::serial::Serial;
use crate::error::Result;

pub mod sqlite;

pub use sqlite::SqliteStore;

/// A reserved serial and what will be signed under it: stored before the CA key signs.
#[derive(Clone, Debug)]
pub struct IssuanceIntent {
    pub serial: Serial,
    pub profile: String,
    pub tenant: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    /// Who asked (for the audit log).
    pub actor: String,
}

/// An issued certificate as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRecord {
    pub serial: String,
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

/// A revocation to record.
#[derive(Clone, Debug)]
pub struct RevokeRequest {
    pub serial: Serial,
    pub reason: Reason,
    pub invalidity_date: Option<i64>,
    /// Only revoke if the certificate belongs to this tenant (None: any).
    pub tenant: Option<String>,
    pub actor: String,
}

/// Filters for listing certificates. Results are newest first.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub profile: Option<String>,
    pub tenant: Option<String>,
    /// Case-insensitive substring of subject or SANs.
    pub name_contains: Option<String>,
    /// Only certificates whose notAfter is after this (valid) or before it (expired).
    pub expired_at: Option<(i64, bool)>,
    /// Only revoked (true) or only unrevoked (false) certificates.
    pub revoked: Option<bool>,
    /// Continue after this position (from a previous page).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// One page of a listing.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub records: Vec<CertRecord>,
    /// Position to continue from, when more may follow.
    pub next: Option<i64>,
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

/// A client credential (mTLS certificate) registered with the CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// Serial of the credential's certificate, lowercase hex.
    pub serial: String,
    pub role: Role,
    /// The tenant it acts for (empty for admins and auditors).
    pub tenant: String,
    pub disabled: bool,
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub event: String,
    pub object: String,
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
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
}

/// A signed checkpoint of the audit chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub id: i64,
    pub upto_id: i64,
    pub head_hash: Vec<u8>,
    pub at: i64,
    pub signature: Vec<u8>,
}

/// The storage contract every backend implements.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Reserves a serial (unique forever) and audits "signing". Fails if the serial exists.
    async fn reserve(&self, intent: IssuanceIntent) -> Result<()>;
    /// Records the signed certificate for a reserved serial and audits "issued".
    async fn complete(&self, serial: &Serial, der: Vec<u8>, actor: &str) -> Result<()>;
    /// Marks a reserved serial as never issued (the serial stays burnt) and audits why.
    async fn abandon(&self, serial: &Serial, reason: &str, actor: &str) -> Result<()>;
    /// An issued certificate by serial.
    async fn get(&self, serial: &Serial) -> Result<Option<CertRecord>>;
    /// Issued certificates matching a filter.
    async fn list(&self, filter: ListFilter) -> Result<Page>;
    /// Registers a client credential (audited).
    async fn add_credential(&self, cred: Credential, actor: &str) -> Result<()>;
    /// Looks a credential up by its certificate serial.
    async fn credential(&self, serial: &str) -> Result<Option<Credential>>;
    /// The audit log from `after_id` on, oldest first, at most `limit` entries.
    async fn audit(&self, after_id: i64, limit: u32) -> Result<Vec<AuditEntry>>;
    /// Revokes an issued certificate (audited). NotFound for unknown serials (or another
    /// tenant's), Conflict if already revoked. Returns the updated record.
    async fn revoke(&self, req: RevokeRequest) -> Result<CertRecord>;
    /// Revoked certificates not yet expired at `now` whose revocation position is after
    /// `after_seq`, in revocation order; and the highest position overall.
    async fn revoked_since(&self, after_seq: i64, now: i64) -> Result<(Vec<RevokedEntry>, i64)>;
    /// Allocates the next CRL number for a CA (durable; strictly increasing).
    async fn next_crl_number(&self, ca: &str) -> Result<u64>;
    /// Allocates the next time-stamp serial (durable; strictly increasing) and audits the
    /// token about to be signed.
    async fn next_timestamp_serial(&self, imprint_hex: &str) -> Result<u64>;
    /// Adds a peer CA (audited); Conflict if the name is taken.
    async fn add_peer(&self, peer: PeerRecord, actor: &str) -> Result<()>;
    /// All peers, by name.
    async fn peers(&self) -> Result<Vec<PeerRecord>>;
    /// Suspends or reactivates a peer (audited); NotFound for unknown names.
    async fn set_peer_status(&self, name: &str, status: PeerStatus, actor: &str) -> Result<()>;
    /// Removes a peer and revokes the cross-certificates we issued to it (audited); returns
    /// their serials.
    async fn remove_peer(&self, name: &str, actor: &str) -> Result<Vec<String>>;
    /// Records a cross-certificate (audited as a signature when we issued it).
    async fn add_cross(&self, record: CrossRecord, actor: &str) -> Result<()>;
    /// All cross-certificates.
    async fn cross_certs(&self) -> Result<Vec<CrossRecord>>;
    /// Adds a platform (audited); Conflict if it exists.
    async fn add_platform(&self, p: PlatformRecord, actor: &str) -> Result<()>;
    /// All platforms.
    async fn platforms(&self) -> Result<Vec<PlatformRecord>>;
    /// Enables or disables a platform (audited).
    async fn set_platform_disabled(&self, name: &str, disabled: bool, actor: &str) -> Result<()>;
    /// Disables a tenant's credentials except `keep` (audited; used when rotating).
    async fn disable_credentials(&self, tenant: &str, keep: &str, actor: &str) -> Result<()>;
    /// Credentials of a tenant.
    async fn credentials_of(&self, tenant: &str) -> Result<Vec<Credential>>;
    /// The newest audit entry's id and hash ((0, zeros) for an empty log).
    async fn audit_head(&self) -> Result<(i64, Vec<u8>)>;
    /// Appends an event to the audit log (state changes without a row of their own: CRL
    /// signatures, configuration loaded at start).
    async fn audit_event(&self, actor: &str, event: &str, object: &str, detail: &str)
    -> Result<()>;
    /// A counter that changes (before the write is acknowledged) whenever credentials,
    /// platforms or revocations change: authentication results may be cached against it.
    fn auth_generation(&self) -> u64;
    /// Stores a signed checkpoint.
    async fn add_checkpoint(&self, c: Checkpoint) -> Result<()>;
    /// All checkpoints, oldest first.
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>>;
}

/// The audit hash: SHA-256 over the previous hash and the entry's fields, length-prefixed.
pub fn audit_hash(
    prev: &[u8],
    id: i64,
    at: i64,
    actor: &str,
    event: &str,
    object: &str,
    detail: &str,
) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev);
    ctx.update(&id.to_be_bytes());
    ctx.update(&at.to_be_bytes());
    for field in [actor, event, object, detail] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    ctx.finish().as_ref().to_vec()
}
