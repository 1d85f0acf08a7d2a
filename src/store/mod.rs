//! Durable state behind one trait. SQLite (WAL, synchronous=FULL) is the embedded default; a
//! PostgreSQL store is a second implementation of the same trait.
//!
//! Every write is acknowledged only after its transaction committed; every state change appends
//! to the hash-chained audit log inside the same transaction.
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::core::revocation::{Reason, RevokedEntry};
use crate::core::serial::Serial;
use crate::error::{Error, Result};
use crate::layout::Layout;

pub mod migrate;
pub mod postgres;
pub mod sqlite;
pub mod vocab;
pub mod write;

pub use crate::core::Issuer;
pub use crate::core::audit::{AuditEntry, Checkpoint, audit_hash};
pub use crate::core::records::*;
pub use crate::core::stats::{Marks, NewCert, NewRevocation, StatsPeriod};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use write::{Done, Op};

/// A reserved serial and what will be signed under it: stored before the CA key signs.
#[derive(Clone, Debug)]
pub struct IssuanceIntent {
    pub serial: Serial,
    pub issuer: Issuer,
    /// The CA certificate that will sign it.
    pub ca: CaId,
    pub profile: String,
    pub tenant: String,
    pub subject: String,
    pub sans: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    /// Who asked (for the audit log).
    pub actor: String,
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

/// Marks a data directory whose state lives in PostgreSQL (holds no secret: not the URL).
const POSTGRES_MARKER: &str = "store-is-postgres";

/// Opens the store of a data directory: the embedded SQLite file, or the PostgreSQL database
/// at `database`, with at most `queue` writes waiting. Refuses the combinations that would
/// silently show an empty CA.
pub async fn open(layout: &Layout, database: Option<&str>, queue: usize) -> Result<Arc<dyn Store>> {
    let marker = layout.dir.join(POSTGRES_MARKER);
    match database {
        None if marker.exists() => Err(Error::Config(format!(
            "the CA in {} keeps its data in PostgreSQL: pass --database postgres://... (or `database` in the config file)",
            layout.dir.display()
        ))),
        None => Ok(Arc::new(SqliteStore::open_with_queue(
            &layout.database(),
            queue,
        )?)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            if !marker.exists() && has_sqlite_data(&layout.database())? {
                return Err(Error::Config(format!(
                    "{} already holds this CA's data; move it with `ecca migrate --from {} --to {}` first",
                    layout.database().display(),
                    layout.dir.display(),
                    postgres::redact(url)
                )));
            }
            let store = PgStore::open_with_queue(url, queue).await?;
            mark_postgres(layout)?;
            Ok(Arc::new(store))
        }
        Some(other) => Err(Error::Config(format!(
            "unsupported database {:?}: use postgres://user:password@host:port/db, or omit it for the embedded SQLite",
            postgres::redact(other)
        ))),
    }
}

/// Records that this data directory's state lives in PostgreSQL from now on.
pub fn mark_postgres(layout: &Layout) -> Result<()> {
    let marker = layout.dir.join(POSTGRES_MARKER);
    std::fs::write(
        &marker,
        "this CA's database is PostgreSQL (see --database)\n",
    )
    .map_err(|e| Error::io(&marker, e))
}

/// True if an embedded database exists and records anything.
fn has_sqlite_data(path: &std::path::Path) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let conn = rusqlite::Connection::open(path)?;
    let tables: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_log'",
        [],
        |r| r.get(0),
    )?;
    if tables == 0 {
        return Ok(false);
    }
    let rows: i64 = conn.query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))?;
    Ok(rows > 0)
}

/// A value bound to a query placeholder.
#[derive(Clone, Debug)]
pub enum SqlValue {
    Text(String),
    Int(i64),
}

/// The certificate columns every backend reads, in the order its row mapper expects.
pub const RECORD_COLUMNS: &str =
    "id, serial, profile, tenant, subject, sans, not_before, not_after, issued_at, der,
     revoked_at, revocation_reason, invalidity_date, revocation_seq, issuer, ca";

impl ListFilter {
    /// The listing as SQL (one more row than the page, to know whether more follow), its
    /// arguments, and the page size. `placeholder(n)` spells the n-th parameter.
    pub fn select(
        &self,
        columns: &str,
        placeholder: impl Fn(usize) -> String,
    ) -> (String, Vec<SqlValue>, u32) {
        let mut sql = format!("SELECT {columns} FROM certificates WHERE status = 'issued'");
        let mut args = Vec::new();
        // Each `?` in a clause binds the value pushed with it.
        let mut clause = |sql: &mut String, text: &str, v: SqlValue| {
            args.push(v);
            sql.push_str(&text.replace('?', &placeholder(args.len())));
        };
        if let Some(p) = &self.profile {
            clause(&mut sql, " AND profile = ?", SqlValue::Text(p.clone()));
        }
        if let Some(t) = &self.tenant {
            clause(&mut sql, " AND tenant = ?", SqlValue::Text(t.clone()));
        }
        if let Some(n) = &self.name_contains {
            let like = format!("%{}%", n.to_lowercase().replace(['%', '_'], ""));
            let text = " AND (lower(subject) LIKE ? OR lower(sans) LIKE ?)";
            clause(&mut sql, text, SqlValue::Text(like));
        }
        if let Some((t, expired)) = self.expired_at {
            let text = if expired {
                " AND not_after <= ?"
            } else {
                " AND not_after > ?"
            };
            clause(&mut sql, text, SqlValue::Int(t));
        }
        if let Some(revoked) = self.revoked {
            sql.push_str(if revoked {
                " AND revoked_at IS NOT NULL"
            } else {
                " AND revoked_at IS NULL"
            });
        }
        if let Some(b) = self.before_id {
            clause(&mut sql, " AND id < ?", SqlValue::Int(b));
        }
        let limit = self.limit.clamp(1, 1000);
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
        (sql, args, limit)
    }
}

/// One page of a listing.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub records: Vec<CertRecord>,
    /// Position to continue from, when more may follow.
    pub next: Option<i64>,
}

impl Page {
    /// A page from up to `limit + 1` rows (position, record), newest first.
    pub fn of(mut rows: Vec<(i64, CertRecord)>, limit: u32) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|(id, _)| *id)
        } else {
            None
        };
        Page {
            records: rows.into_iter().map(|(_, r)| r).collect(),
            next,
        }
    }
}

/// What kind of ACME object a row holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcmeKind {
    Account,
    Order,
    Authz,
    /// An External Account Binding key (owner: its platform; doc: the sealed HMAC key).
    Eab,
}

impl AcmeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AcmeKind::Account => "account",
            AcmeKind::Order => "order",
            AcmeKind::Authz => "authz",
            AcmeKind::Eab => "eab",
        }
    }
}

/// An ACME object as the ACME edge stores it: its own JSON document plus the columns the
/// store looks it up by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeObject {
    pub kind: AcmeKind,
    pub id: String,
    /// The account (orders, authorizations) or the platform (accounts, EAB keys).
    pub owner: String,
    pub status: String,
    /// Unix seconds; 0: does not expire.
    pub expires: i64,
    /// A second unique key within the kind (an account's key thumbprint).
    pub lookup: Option<String>,
    /// Bumped by every write; a write names the version it replaces.
    pub version: i64,
    pub doc: String,
}

/// The storage contract every backend implements: [`Store::write`] applies a state change
/// (the write methods below are built on it) and the read methods query. What each change
/// audits and how rows decode is shared (`vocab`); a backend holds SQL only.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Applies one state change with its audit entry; returns once it is durable.
    async fn write(&self, op: Op) -> Result<Done>;

    /// Reserves a serial (unique forever) and audits "signing". Fails if the serial exists.
    async fn reserve(&self, intent: IssuanceIntent) -> Result<()> {
        self.write(Op::Reserve(intent)).await.map(drop)
    }
    /// Records the signed certificate for a reserved serial and audits "issued".
    async fn complete(&self, serial: &Serial, der: Vec<u8>, actor: &str) -> Result<()> {
        let (serial, actor) = (serial.hex(), actor.into());
        self.write(Op::Complete { serial, der, actor })
            .await
            .map(drop)
    }
    /// Records a signed certificate with its intent in one commit (audits "signing" and
    /// "issued"): for a leaf signed before its intent was durable, acknowledged only after
    /// this returns, so it cannot have left the process without its intent. Fails if the
    /// serial exists.
    async fn record_issued(&self, intent: IssuanceIntent, der: Vec<u8>) -> Result<()> {
        let complete = Op::Complete {
            serial: intent.serial.hex(),
            der,
            actor: intent.actor.clone(),
        };
        self.write(Op::Together(vec![Op::Reserve(intent), complete]))
            .await
            .map(drop)
    }
    /// Records an intent whose signing failed (audits "signing" and "abandoned"; the serial
    /// stays burnt).
    async fn record_abandoned(&self, intent: IssuanceIntent, reason: &str) -> Result<()> {
        let abandon = Op::Abandon {
            serial: intent.serial.hex(),
            reason: reason.into(),
            actor: intent.actor.clone(),
        };
        self.write(Op::Together(vec![Op::Reserve(intent), abandon]))
            .await
            .map(drop)
    }
    /// Marks a reserved serial as never issued (the serial stays burnt) and audits why.
    async fn abandon(&self, serial: &Serial, reason: &str, actor: &str) -> Result<()> {
        let (serial, reason, actor) = (serial.hex(), reason.into(), actor.into());
        let op = Op::Abandon {
            serial,
            reason,
            actor,
        };
        self.write(op).await.map(drop)
    }
    /// An issued certificate by serial.
    async fn get(&self, serial: &Serial) -> Result<Option<CertRecord>>;
    /// The issued certificates among `serials` (those not found are left out).
    async fn get_many(&self, serials: Vec<Serial>) -> Result<Vec<CertRecord>> {
        let mut found = Vec::with_capacity(serials.len());
        for serial in &serials {
            found.extend(self.get(serial).await?);
        }
        Ok(found)
    }
    /// Issued certificates matching a filter.
    async fn list(&self, filter: ListFilter) -> Result<Page>;
    /// Registers a client credential (audited).
    async fn add_credential(&self, cred: Credential, actor: &str) -> Result<()> {
        let actor = actor.into();
        self.write(Op::AddCredential { cred, actor })
            .await
            .map(drop)
    }
    /// Looks a credential up by the SHA-256 (lowercase hex) of its whole certificate.
    async fn credential_by_cert(&self, cert_sha256: &str) -> Result<Option<Credential>>;
    /// Every registered credential, oldest first.
    async fn all_credentials(&self) -> Result<Vec<Credential>>;
    /// The audit log from `after_id` on, oldest first, at most `limit` entries.
    async fn audit(&self, after_id: i64, limit: u32) -> Result<Vec<AuditEntry>>;
    /// Revokes an issued certificate (audited). NotFound for unknown serials (or another
    /// tenant's), Conflict if already revoked. Returns the updated record.
    async fn revoke(&self, req: RevokeRequest) -> Result<CertRecord> {
        let serial = req.serial.clone();
        self.write(Op::Revoke(req)).await?;
        self.get(&serial)
            .await?
            .ok_or_else(|| Error::Internal(format!("revoked certificate {serial} vanished")))
    }
    /// Revoked certificates not yet expired at `now` whose revocation position is after
    /// `after_seq`, in revocation order with their positions; and the highest position overall
    /// (every position up to it is listed: the entries are read after it).
    async fn revoked_since(&self, after_seq: i64, now: i64) -> Result<(Vec<Positioned>, i64)>;
    /// Revoked certificates not yet expired at `now` that one CA certificate signed (its
    /// CRL's entries), and the highest revocation position overall.
    async fn revoked_by(&self, ca: &str, now: i64) -> Result<(Vec<Positioned>, i64)>;
    /// Allocates the next CRL number for a CA (durable; strictly increasing).
    async fn next_crl_number(&self, ca: &str) -> Result<u64> {
        match self.write(Op::NextCrlNumber { ca: ca.into() }).await? {
            Done::Number(n) => Ok(n),
            _ => Err(Error::Internal("CRL number not allocated".into())),
        }
    }
    /// Allocates `count` CRL numbers for a CA, then reads the unexpired revocations they list:
    /// a higher CRL number never lists fewer revocations. This default holds when one process
    /// rebuilds CRLs one at a time; a store shared by instances orders them itself.
    async fn crl_snapshot(&self, ca: &str, count: u32, now: i64) -> Result<CrlSnapshot> {
        let mut numbers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            numbers.push(self.next_crl_number(ca).await?);
        }
        let (revoked, max_seq) = self.revoked_by(ca, now).await?;
        Ok(CrlSnapshot {
            numbers,
            revoked,
            max_seq,
        })
    }
    /// Reserves the next `size` time-stamp serials (durable, never handed out again) with one
    /// audit entry for the block; returns the inclusive range.
    async fn reserve_timestamp_serials(&self, size: u32) -> Result<(u64, u64)> {
        match self.write(Op::TimestampBlock { size }).await? {
            Done::Range(first, last) => Ok((first, last)),
            _ => Err(Error::Internal("time-stamp serials not reserved".into())),
        }
    }
    /// Records a CA hierarchy (audited) unless one of its name exists already.
    async fn add_issuer(&self, record: IssuerRecord, actor: &str) -> Result<()> {
        let actor = actor.into();
        self.write(Op::AddIssuer { record, actor }).await.map(drop)
    }
    /// Unrevoked certificates of the hierarchies (not API credentials) that expire after
    /// `now` and at or before `until`.
    async fn expiring(&self, now: i64, until: i64) -> Result<u64>;
    /// How far the statistics roll-up has read.
    async fn stats_marks(&self) -> Result<Marks>;
    /// What the roll-up reads next: at most `limit` certificates after `from.cert_id` (id
    /// order) and revocations after `from.revocation_seq` (revocation order).
    async fn stats_source(
        &self,
        from: Marks,
        limit: u32,
    ) -> Result<(Vec<NewCert>, Vec<NewRevocation>)>;
    /// The aggregates of one platform (None: all) for the UTC days [from_day, to_day).
    async fn stats_period(
        &self,
        tenant: Option<String>,
        from_day: i64,
        to_day: i64,
    ) -> Result<StatsPeriod>;
    /// Counted certificates alive at the start of `day` by platform and CA.
    async fn stats_alive(
        &self,
        tenant: Option<String>,
        day: i64,
    ) -> Result<Vec<(String, String, i64)>>;
    /// Counted certificates whose notAfter fell on the UTC days [from_day, to_day), by platform.
    async fn stats_expired(
        &self,
        tenant: Option<String>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(String, i64)>>;
    /// Counted certificates with id up to `upto_id` whose notAfter is in [from, to), by
    /// platform: how many, and how many of them are unrevoked.
    async fn stats_ending(
        &self,
        tenant: Option<String>,
        from: i64,
        to: i64,
        upto_id: i64,
    ) -> Result<Vec<(String, i64, i64)>>;
    /// How many of `usccs` hold an unexpired, unrevoked certificate of the platform at `now`.
    async fn merchants_covered(&self, tenant: String, usccs: Vec<String>, now: i64) -> Result<u64>;
    /// The other certificate of a dual pair (by either serial, hex), if it is one.
    async fn pair_of(&self, serial: &str) -> Result<Option<String>>;
    /// Every CA hierarchy by name, each with its CA certificates.
    async fn issuers(&self) -> Result<Vec<IssuerRecord>>;
    /// How many certificates a CA certificate signed are unexpired at `now` (revoked or not:
    /// its CRL and OCSP still answer for them), and when the last of them expires; those under
    /// profile `besides` (its own OCSP responder's) are not counted.
    async fn unexpired(&self, ca: &str, now: i64, besides: &str) -> Result<(u64, Option<i64>)>;
    /// Adds a peer CA (audited); Conflict if the name is taken.
    async fn add_peer(&self, peer: PeerRecord, actor: &str) -> Result<()> {
        let actor = actor.into();
        self.write(Op::AddPeer { peer, actor }).await.map(drop)
    }
    /// All peers, by name.
    async fn peers(&self) -> Result<Vec<PeerRecord>>;
    /// Suspends or reactivates a peer (audited); NotFound for unknown names.
    async fn set_peer_status(&self, name: &str, status: PeerStatus, actor: &str) -> Result<()> {
        let (name, actor) = (name.into(), actor.into());
        let op = Op::PeerStatus {
            name,
            status,
            actor,
        };
        self.write(op).await.map(drop)
    }
    /// Removes a peer and revokes the cross-certificates we issued to it (audited); returns
    /// their serials.
    async fn remove_peer(&self, name: &str, actor: &str) -> Result<Vec<String>> {
        let (name, actor) = (name.into(), actor.into());
        match self.write(Op::RemovePeer { name, actor }).await? {
            Done::Serials(s) => Ok(s),
            _ => Ok(Vec::new()),
        }
    }
    /// Records a cross-certificate a peer issued to us (audited).
    async fn add_cross(&self, record: CrossRecord, actor: &str) -> Result<()> {
        let actor = actor.into();
        self.write(Op::AddCross { record, actor }).await.map(drop)
    }
    /// Reserves the serial of a cross-certificate the root will sign, and audits "signing";
    /// fails if the serial exists.
    async fn reserve_cross(&self, record: CrossRecord, actor: &str) -> Result<()> {
        let actor = actor.into();
        self.write(Op::ReserveCross { record, actor })
            .await
            .map(drop)
    }
    /// Records the signed cross-certificate for a reserved serial and audits "issued".
    async fn complete_cross(&self, serial: &str, der: Vec<u8>, actor: &str) -> Result<()> {
        let (serial, actor) = (serial.into(), actor.into());
        self.write(Op::CompleteCross { serial, der, actor })
            .await
            .map(drop)
    }
    /// Marks a reserved cross-certificate serial as never signed (it stays burnt).
    async fn abandon_cross(&self, serial: &str, reason: &str, actor: &str) -> Result<()> {
        let (serial, reason, actor) = (serial.into(), reason.into(), actor.into());
        let op = Op::AbandonCross {
            serial,
            reason,
            actor,
        };
        self.write(op).await.map(drop)
    }
    /// All cross-certificates.
    async fn cross_certs(&self) -> Result<Vec<CrossRecord>>;
    /// Adds a platform (audited); Conflict if it exists.
    async fn add_platform(&self, p: PlatformRecord, actor: &str) -> Result<()> {
        let actor = actor.into();
        self.write(Op::AddPlatform { p, actor }).await.map(drop)
    }
    /// All platforms.
    async fn platforms(&self) -> Result<Vec<PlatformRecord>>;
    /// One ACME object by kind and id.
    async fn acme_get(&self, kind: AcmeKind, id: &str) -> Result<Option<AcmeObject>>;
    /// One ACME object by its second key.
    async fn acme_find(&self, kind: AcmeKind, lookup: &str) -> Result<Option<AcmeObject>>;
    /// Enables or disables a platform (audited).
    async fn set_platform_disabled(&self, name: &str, disabled: bool, actor: &str) -> Result<()> {
        let (name, actor) = (name.into(), actor.into());
        let op = Op::PlatformDisabled {
            name,
            disabled,
            actor,
        };
        self.write(op).await.map(drop)
    }
    /// Replaces what a platform may put in subjects (audited); NotFound for unknown names.
    async fn set_platform_subjects(
        &self,
        name: &str,
        organizations: Vec<String>,
        usccs: Vec<String>,
        names: Vec<String>,
        actor: &str,
    ) -> Result<()> {
        let op = Op::PlatformSubjects {
            name: name.into(),
            organizations,
            usccs,
            names,
            actor: actor.into(),
        };
        self.write(op).await.map(drop)
    }
    /// Disables a tenant's credentials except `keep` (audited; used when rotating).
    async fn disable_credentials(&self, tenant: &str, keep: &str, actor: &str) -> Result<()> {
        let (tenant, keep, actor) = (tenant.into(), keep.into(), actor.into());
        let op = Op::DisableCredentials {
            tenant,
            keep,
            actor,
        };
        self.write(op).await.map(drop)
    }
    /// Disables one credential, found by its certificate's SHA-256 (audited; replaced
    /// credentials). Disabling one already disabled or unknown changes nothing.
    async fn disable_credential(&self, cert_sha256: &str, actor: &str) -> Result<()> {
        let (cert_sha256, actor) = (cert_sha256.into(), actor.into());
        self.write(Op::DisableCredential { cert_sha256, actor })
            .await
            .map(drop)
    }
    /// Credentials of a tenant.
    async fn credentials_of(&self, tenant: &str) -> Result<Vec<Credential>>;
    /// The newest audit entry's id and hash ((0, zeros) for an empty log).
    async fn audit_head(&self) -> Result<(i64, Vec<u8>)>;
    /// Appends an event to the audit log (state changes without a row of their own: CRL
    /// signatures, configuration loaded at start).
    async fn audit_event(
        &self,
        actor: &str,
        event: &str,
        object: &str,
        detail: &str,
    ) -> Result<()> {
        let op = Op::Event {
            actor: actor.into(),
            event: event.into(),
            object: object.into(),
            detail: detail.into(),
        };
        self.write(op).await.map(drop)
    }
    /// A counter that changes (before the write is acknowledged) whenever credentials,
    /// platforms or revocations change: authentication results may be cached against it.
    fn auth_generation(&self) -> u64;
    /// Stores a signed checkpoint.
    async fn add_checkpoint(&self, c: Checkpoint) -> Result<()> {
        self.write(Op::AddCheckpoint(c)).await.map(drop)
    }
    /// Checkpoints after the one with id `after_id`, oldest first.
    async fn checkpoints_after(&self, after_id: i64) -> Result<Vec<Checkpoint>>;
    /// All checkpoints, oldest first.
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        self.checkpoints_after(0).await
    }
    /// The newest checkpoint.
    async fn last_checkpoint(&self) -> Result<Option<Checkpoint>>;
    /// Ok while writes can be made (the writer runs); the health checks report it.
    fn health(&self) -> Result<()> {
        Ok(())
    }
    /// Stops the writer: queued writes are made, later ones refused (shutdown; also what a
    /// crashed writer looks like to the rest of the server).
    fn stop_writer(&self) {}
    /// True when other processes may write to this store (instances sharing a database), so
    /// changes must be looked for; false when this process is the only writer.
    fn shared(&self) -> bool;
    /// A pre-signed OCSP response another instance shared, by the request's CertID DER: the
    /// response and its thisUpdate. A store serving one instance shares none.
    async fn shared_ocsp(&self, _cert_id: &[u8]) -> Result<Option<(Vec<u8>, i64)>> {
        Ok(None)
    }
    /// Offers a pre-signed OCSP response to the other instances; kept only while the
    /// certificate's status is still the one the response states.
    async fn share_ocsp(&self, _response: SharedOcsp<'_>) -> Result<()> {
        Ok(())
    }
}

/// A pre-signed OCSP response about one of the issuing CA's certificates.
#[derive(Clone, Copy, Debug)]
pub struct SharedOcsp<'a> {
    /// DER of the CertID it answers.
    pub cert_id: &'a [u8],
    /// The certificate's serial, lowercase hex.
    pub serial: &'a str,
    /// Whether it says "revoked" (else "good").
    pub revoked: bool,
    pub der: &'a [u8],
    pub this_update: i64,
}

/// CRL numbers and the revocations (with their positions) they cover.
#[derive(Clone, Debug, Default)]
pub struct CrlSnapshot {
    pub numbers: Vec<u64>,
    /// Unexpired revoked certificates in revocation order, with their positions.
    pub revoked: Vec<Positioned>,
    /// The highest revocation position (0 when nothing was ever revoked).
    pub max_seq: i64,
}

/// A revocation with its position in the order of revocations.
pub type Positioned = (i64, RevokedEntry);
