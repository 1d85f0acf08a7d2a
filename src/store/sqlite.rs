//! The embedded store: SQLite in WAL mode with synchronous=FULL.
//!
//! One writer thread owns the write connection and commits in groups: requests that arrive
//! while a commit is in flight share the next transaction (and its fsync), each inside its own
//! savepoint so one failure does not undo the others. Readers use their own connection.
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::core::revocation::{Reason, RevokedEntry};
use crate::core::serial::Serial;
use crate::error::{Error, Result};
use crate::store::write::{Job, MAX_GROUP, check_revocable, deliver};
use crate::store::{
    AuditEntry, CertRecord, Checkpoint, Credential, CrossRecord, Direction, Done, Issuer,
    ListFilter, Op, Page, PeerRecord, PeerStatus, PlatformRecord, Positioned, RECORD_COLUMNS,
    Revocation, Role, SqlValue, Store, audit_hash,
};

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_revocation.sql"),
    include_str!("migrations/0003_federation.sql"),
    include_str!("migrations/0004_tenants_audit.sql"),
    include_str!("migrations/0005_trust.sql"),
];
/// Read connections kept open when idle.
const MAX_IDLE_READERS: usize = 8;

/// SQLite-backed [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<mpsc::Sender<Job>>,
    /// Bumped by the writer whenever credentials, platforms or revocations change.
    auth_generation: Arc<AtomicU64>,
    /// Idle read connections: reads run in parallel (WAL), each on its own connection.
    readers: Arc<Mutex<Vec<Connection>>>,
}

fn open(path: &Path) -> Result<Connection> {
    // The database holds the audit log and every record: private like the keys. SQLite gives
    // its -wal and -shm files the database file's mode.
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
    }
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    // Used by migration 0005 to pin existing credentials to their certificates.
    conn.create_scalar_function(
        "ecca_sha256",
        1,
        rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let der: Vec<u8> = ctx.get(0)?;
            Ok(ring::digest::digest(&ring::digest::SHA256, &der)
                .as_ref()
                .to_vec())
        },
    )?;
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        return Err(Error::Storage(format!(
            "database schema version {version} is newer than this ecca ({}); upgrade ecca",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl SqliteStore {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = open(path)?;
        // Files made by earlier versions were 0644.
        for suffix in ["", "-wal", "-shm"] {
            let f = PathBuf::from(format!("{}{suffix}", path.display()));
            if f.exists() {
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| Error::io(&f, e))?;
            }
        }
        migrate(&mut conn)?;
        let last_hash: Vec<u8> = conn
            .query_row(
                "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_else(|| vec![0; 32]);
        let (tx, rx) = mpsc::channel::<Job>();
        let auth_generation = Arc::new(AtomicU64::new(0));
        thread::Builder::new()
            .name("ecca-store-writer".into())
            .spawn({
                let generation = auth_generation.clone();
                move || writer_loop(conn, rx, last_hash, generation)
            })
            .map_err(|e| Error::Storage(format!("cannot start writer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Mutex::new(tx),
            readers: Arc::new(Mutex::new(vec![open(path)?])),
            auth_generation,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let idle = readers
                .lock()
                .map_err(|_| Error::Storage("reader pool poisoned".into()))?
                .pop();
            let conn = match idle {
                Some(c) => c,
                None => open(&path)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = readers.lock()
                && pool.len() < MAX_IDLE_READERS
            {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| Error::Internal(format!("reader task: {e}")))?
    }
}

fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Job>,
    mut last_hash: Vec<u8>,
    auth_generation: Arc<AtomicU64>,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut results = Vec::with_capacity(jobs.len());
        let committed = (|| -> Result<Vec<u8>> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut hash = last_hash.clone();
            for job in &jobs {
                tx.execute_batch("SAVEPOINT job")?;
                match apply(&tx, &job.op, &hash) {
                    Ok((new_hash, done)) => {
                        tx.execute_batch("RELEASE job")?;
                        hash = new_hash;
                        results.push(Ok(done));
                    }
                    Err(e) => {
                        tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
                        results.push(Err(e));
                    }
                }
            }
            tx.commit()?;
            Ok(hash)
        })();
        let outcome = committed.map(|hash| {
            last_hash = hash;
            results
        });
        deliver(jobs, outcome, &auth_generation);
    }
}

/// Applies one operation (audit included) and returns the new audit chain head.
fn apply(tx: &Connection, op: &Op, prev: &[u8]) -> Result<(Vec<u8>, Done)> {
    let at = now();
    let hash = match op {
        Op::Reserve(i) => {
            let sans =
                serde_json::to_string(&i.sans).map_err(|e| Error::Internal(e.to_string()))?;
            tx.execute(
                "INSERT INTO certificates (serial, status, profile, tenant, subject, sans, not_before, not_after, created_at, issuer)
                 VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![i.serial.hex(), i.profile, i.tenant, i.subject, sans, i.not_before, i.not_after, at, i.issuer.as_str()],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Error::Storage(format!("serial {} already used", i.serial))
                }
                e => e.into(),
            })?;
            let detail = i.audit_detail();
            append_audit(
                tx,
                prev,
                at,
                &i.actor,
                "certificate.signing",
                &i.serial.hex(),
                &detail,
            )?
        }
        Op::Complete { serial, der, actor } => {
            let n = tx.execute(
                "UPDATE certificates SET status = 'issued', der = ?2, issued_at = ?3 WHERE serial = ?1 AND status = 'pending'",
                params![serial, der, at],
            )?;
            if n != 1 {
                return Err(Error::Internal(format!("serial {serial} was not pending")));
            }
            let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, der));
            append_audit(
                tx,
                prev,
                at,
                actor,
                "certificate.issued",
                serial,
                &format!("sha256={digest}"),
            )?
        }
        Op::Abandon {
            serial,
            reason,
            actor,
        } => {
            tx.execute(
                "UPDATE certificates SET status = 'abandoned' WHERE serial = ?1 AND status = 'pending'",
                params![serial],
            )?;
            append_audit(tx, prev, at, actor, "certificate.abandoned", serial, reason)?
        }
        Op::AddCredential { cred, actor } => {
            tx.execute(
                "INSERT INTO credentials (serial, role, tenant, disabled, cert_sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![cred.serial, cred.role.as_str(), cred.tenant, cred.disabled, cred.cert_sha256],
            )?;
            let detail = cred.audit_detail();
            append_audit(
                tx,
                prev,
                at,
                actor,
                "credential.added",
                &cred.serial,
                &detail,
            )?
        }
        Op::Revoke(r) => {
            let serial = r.serial.hex();
            let row: Option<(String, Option<i64>)> = tx
                .query_row(
                    "SELECT tenant, revoked_at FROM certificates WHERE serial = ?1 AND status = 'issued'",
                    [&serial],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            check_revocable(&serial, row, r.tenant.as_deref())?;
            tx.execute(
                "UPDATE certificates SET revoked_at = ?2, revocation_reason = ?3, invalidity_date = ?4,
                 revocation_seq = (SELECT COALESCE(MAX(revocation_seq), 0) + 1 FROM certificates)
                 WHERE serial = ?1",
                params![serial, at, r.reason as i64, r.invalidity_date],
            )?;
            let detail = format!("reason={}", r.reason.name());
            append_audit(
                tx,
                prev,
                at,
                &r.actor,
                "certificate.revoked",
                &serial,
                &detail,
            )?
        }
        Op::NextCrlNumber { ca } => {
            return Ok((prev.to_vec(), Done::Number(next_number(tx, ca)?)));
        }
        Op::TimestampBlock { size } => {
            let last: i64 = tx.query_row(
                "INSERT INTO crl_numbers (ca, last) VALUES ('tsa', ?1)
                 ON CONFLICT (ca) DO UPDATE SET last = last + ?1 RETURNING last",
                [i64::from(*size)],
                |row| row.get(0),
            )?;
            let (first, last) = ((last - i64::from(*size) + 1) as u64, last as u64);
            let (object, detail) = Op::timestamp_block_audit(first, last);
            let hash = append_audit(tx, prev, at, "tsa", "timestamp.block", &object, &detail)?;
            return Ok((hash, Done::Range(first, last)));
        }
        Op::AddPlatform { p, actor } => {
            let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
            tx.execute(
                "INSERT INTO platforms (name, dns_suffixes, ip_ranges, profiles, max_days, rate_per_min, disabled, created_at, organizations, usccs, names)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10)",
                params![p.name, json(&p.dns_suffixes), json(&p.ip_ranges), json(&p.profiles), p.max_days, p.rate_per_min, at,
                        json(&p.organizations), json(&p.usccs), json(&p.names)],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Error::Conflict(format!("platform {:?} already exists", p.name))
                }
                e => e.into(),
            })?;
            let detail = p.audit_detail();
            append_audit(tx, prev, at, actor, "platform.added", &p.name, &detail)?
        }
        Op::PlatformDisabled {
            name,
            disabled,
            actor,
        } => {
            let n = tx.execute(
                "UPDATE platforms SET disabled = ?2 WHERE name = ?1",
                params![name, disabled],
            )?;
            if n == 0 {
                return Err(Error::NotFound(format!("platform {name:?}")));
            }
            let event = if *disabled {
                "platform.disabled"
            } else {
                "platform.enabled"
            };
            append_audit(tx, prev, at, actor, event, name, "")?
        }
        Op::PlatformSubjects {
            name,
            organizations,
            usccs,
            names,
            actor,
        } => {
            let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
            let n = tx.execute(
                "UPDATE platforms SET organizations = ?2, usccs = ?3, names = ?4 WHERE name = ?1",
                params![name, json(organizations), json(usccs), json(names)],
            )?;
            if n == 0 {
                return Err(Error::NotFound(format!("platform {name:?}")));
            }
            let detail = crate::store::platform_subjects_detail(organizations, usccs, names);
            append_audit(tx, prev, at, actor, "platform.subjects", name, &detail)?
        }
        Op::DisableCredential { cert_sha256, actor } => {
            let n = tx.execute(
                "UPDATE credentials SET disabled = 1 WHERE cert_sha256 = ?1 AND disabled = 0",
                params![cert_sha256],
            )?;
            let detail = format!("disabled={n}");
            append_audit(
                tx,
                prev,
                at,
                actor,
                "credential.disabled",
                cert_sha256,
                &detail,
            )?
        }
        Op::DisableCredentials {
            tenant,
            keep,
            actor,
        } => {
            let n = tx.execute(
                "UPDATE credentials SET disabled = 1 WHERE tenant = ?1 AND serial != ?2 AND disabled = 0",
                params![tenant, keep],
            )?;
            append_audit(
                tx,
                prev,
                at,
                actor,
                "credential.rotated",
                tenant,
                &format!("disabled={n} kept={keep}"),
            )?
        }
        Op::Event {
            actor,
            event,
            object,
            detail,
        } => append_audit(tx, prev, at, actor, event, object, detail)?,
        Op::AddCheckpoint(c) => {
            tx.execute(
                "INSERT INTO audit_checkpoints (upto_id, head_hash, at, signature) VALUES (?1, ?2, ?3, ?4)",
                params![c.upto_id, c.head_hash, c.at, c.signature],
            )?;
            prev.to_vec()
        }
        Op::AddPeer { peer, actor } => {
            tx.execute(
                "INSERT INTO peers (name, ca_cert, subject, status, added_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![peer.name, peer.ca_cert, peer.subject, peer.status.as_str(), at],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Error::Conflict(format!("peer {:?} already exists", peer.name))
                }
                e => e.into(),
            })?;
            let detail = peer.audit_detail();
            append_audit(tx, prev, at, actor, "peer.added", &peer.name, &detail)?
        }
        Op::PeerStatus {
            name,
            status,
            actor,
        } => {
            let n = tx.execute(
                "UPDATE peers SET status = ?2 WHERE name = ?1",
                params![name, status.as_str()],
            )?;
            if n == 0 {
                return Err(Error::NotFound(format!("peer {name:?}")));
            }
            append_audit(tx, prev, at, actor, "peer.status", name, status.as_str())?
        }
        Op::RemovePeer { name, actor } => {
            let n = tx.execute("DELETE FROM peers WHERE name = ?1", params![name])?;
            if n == 0 {
                return Err(Error::NotFound(format!("peer {name:?}")));
            }
            let mut stmt = tx.prepare(
                "UPDATE cross_certificates SET revoked_at = ?2, revocation_reason = 5
                 WHERE peer = ?1 AND direction = 'issued' AND revoked_at IS NULL RETURNING serial",
            )?;
            let serials: Vec<String> = stmt
                .query_map(params![name, at], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            drop(stmt);
            let hash = append_audit(
                tx,
                prev,
                at,
                actor,
                "peer.removed",
                name,
                &format!("revoked={}", serials.join(",")),
            )?;
            return Ok((hash, Done::Serials(serials)));
        }
        Op::AddCross { record, actor } => {
            tx.execute(
                "INSERT INTO cross_certificates (serial, peer, direction, der, not_after, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![record.serial, record.peer, record.direction.as_str(), record.der, record.not_after, at],
            )?;
            let detail = record.audit_detail();
            append_audit(
                tx,
                prev,
                at,
                actor,
                "cross_certificate.stored",
                &record.serial,
                &detail,
            )?
        }
    };
    Ok((hash, Done::Nothing))
}

/// Advances a durable counter (CRL numbers per CA, time-stamp serials).
fn next_number(tx: &Connection, name: &str) -> Result<u64> {
    let n: i64 = tx.query_row(
        "INSERT INTO crl_numbers (ca, last) VALUES (?1, 1)
         ON CONFLICT (ca) DO UPDATE SET last = last + 1 RETURNING last",
        [name],
        |row| row.get(0),
    )?;
    Ok(n as u64)
}

/// The highest revocation position, then the unexpired revocations after `after_seq` up to it.
fn revoked_rows(c: &Connection, after_seq: i64, now: i64) -> Result<(Vec<Positioned>, i64)> {
    let max: i64 = c.query_row(
        "SELECT COALESCE(MAX(revocation_seq), 0) FROM certificates",
        [],
        |r| r.get(0),
    )?;
    let mut stmt = c.prepare_cached(
        "SELECT revocation_seq, serial, revoked_at, revocation_reason, invalidity_date FROM certificates
         WHERE revocation_seq > ?1 AND revocation_seq <= ?2 AND not_after > ?3 AND issuer = 'issuing'
         ORDER BY revocation_seq",
    )?;
    let rows = stmt
        .query_map(params![after_seq, max, now], |r| {
            let serial: String = r.get(1)?;
            Ok((
                r.get(0)?,
                RevokedEntry {
                    serial: hex::decode(serial).unwrap_or_default(),
                    revoked_at: r.get(2)?,
                    reason: Reason::from_code(r.get(3)?).unwrap_or(Reason::Unspecified),
                    invalidity_date: r.get(4)?,
                },
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, max))
}

fn append_audit(
    tx: &Connection,
    prev: &[u8],
    at: i64,
    actor: &str,
    event: &str,
    object: &str,
    detail: &str,
) -> Result<Vec<u8>> {
    let id: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log", [], |r| {
        r.get(0)
    })?;
    let hash = audit_hash(prev, id, at, actor, event, object, detail);
    tx.execute(
        "INSERT INTO audit_log (id, at, actor, event, object, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![id, at, actor, event, object, detail, prev, hash],
    )?;
    Ok(hash)
}

const CREDENTIAL_COLUMNS: &str = "serial, role, tenant, disabled, COALESCE(cert_sha256, '')";

fn credential_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Credential> {
    let role: String = r.get(1)?;
    Ok(Credential {
        serial: r.get(0)?,
        role: Role::parse(&role).ok_or_else(|| corrupt(1, format!("unknown role {role:?}")))?,
        tenant: r.get(2)?,
        disabled: r.get(3)?,
        cert_sha256: r.get(4)?,
    })
}

/// A stored value that does not decode: reported, never replaced by a default.
fn corrupt(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        Box::new(Error::Storage(format!("corrupt row: {what}"))),
    )
}

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, CertRecord)> {
    let sans: String = row.get(5)?;
    let issuer: String = row.get(14)?;
    Ok((
        row.get(0)?,
        CertRecord {
            issuer: Issuer::parse(&issuer).map_err(|e| corrupt(14, e.to_string()))?,
            serial: row.get(1)?,
            profile: row.get(2)?,
            tenant: row.get(3)?,
            subject: row.get(4)?,
            sans: serde_json::from_str(&sans).unwrap_or_default(),
            not_before: row.get(6)?,
            not_after: row.get(7)?,
            issued_at: row.get(8)?,
            der: row.get(9)?,
            revocation: match row.get::<_, Option<i64>>(10)? {
                None => None,
                Some(revoked_at) => Some(Revocation {
                    revoked_at,
                    reason: Reason::from_code(row.get(11)?).unwrap_or(Reason::Unspecified),
                    invalidity_date: row.get(12)?,
                    seq: row.get(13)?,
                }),
            },
        },
    ))
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self, op: Op) -> Result<Done> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .lock()
            .map_err(|_| Error::Storage("writer lock poisoned".into()))?
            .send(Job { op, reply })
            .map_err(|_| Error::Storage("store writer has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Storage("store writer has stopped".into()))?
    }

    async fn get(&self, serial: &Serial) -> Result<Option<CertRecord>> {
        let serial = serial.hex();
        self.read(move |c| {
            let sql = format!(
                "SELECT {RECORD_COLUMNS} FROM certificates WHERE serial = ?1 AND status = 'issued'"
            );
            Ok(c.query_row(&sql, [serial], record)
                .optional()?
                .map(|(_, r)| r))
        })
        .await
    }

    async fn list(&self, f: ListFilter) -> Result<Page> {
        self.read(move |c| {
            let (sql, args, limit) = f.select(RECORD_COLUMNS, |n| format!("?{n}"));
            let args = args.into_iter().map(|v| match v {
                SqlValue::Text(s) => rusqlite::types::Value::Text(s),
                SqlValue::Int(i) => rusqlite::types::Value::Integer(i),
            });
            let mut stmt = c.prepare(&sql)?;
            let rows: Vec<(i64, CertRecord)> = stmt
                .query_map(rusqlite::params_from_iter(args), record)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Page::of(rows, limit))
        })
        .await
    }

    async fn credential_by_cert(&self, cert_sha256: &str) -> Result<Option<Credential>> {
        let hash = cert_sha256.to_string();
        self.read(move |c| {
            let sql =
                format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE cert_sha256 = ?1");
            Ok(c.query_row(&sql, [hash], credential_row).optional()?)
        })
        .await
    }

    async fn all_credentials(&self) -> Result<Vec<Credential>> {
        self.read(move |c| {
            let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY rowid");
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt
                .query_map([], credential_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn audit(&self, after_id: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT id, at, actor, event, object, detail, prev_hash, hash FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![after_id, limit], |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        actor: r.get(2)?,
                        event: r.get(3)?,
                        object: r.get(4)?,
                        detail: r.get(5)?,
                        prev_hash: r.get(6)?,
                        hash: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn revoked_since(&self, after_seq: i64, now: i64) -> Result<(Vec<Positioned>, i64)> {
        self.read(move |c| revoked_rows(c, after_seq, now)).await
    }

    async fn peers(&self) -> Result<Vec<PeerRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT name, ca_cert, subject, status, added_at FROM peers ORDER BY name",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    let status: String = r.get(3)?;
                    Ok(PeerRecord {
                        name: r.get(0)?,
                        ca_cert: r.get(1)?,
                        subject: r.get(2)?,
                        status: if status == "active" {
                            PeerStatus::Active
                        } else {
                            PeerStatus::Suspended
                        },
                        added_at: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn cross_certs(&self) -> Result<Vec<CrossRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT serial, peer, direction, der, not_after, created_at, revoked_at, revocation_reason
                 FROM cross_certificates ORDER BY created_at, serial",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    let direction: String = r.get(2)?;
                    let revoked_at: Option<i64> = r.get(6)?;
                    let reason: Option<i64> = r.get(7)?;
                    Ok(CrossRecord {
                        serial: r.get(0)?,
                        peer: r.get(1)?,
                        direction: if direction == "issued" { Direction::Issued } else { Direction::Received },
                        der: r.get(3)?,
                        not_after: r.get(4)?,
                        created_at: r.get(5)?,
                        revoked: revoked_at.map(|t| (t, Reason::from_code(reason.unwrap_or(0)).unwrap_or(Reason::Unspecified))),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn platforms(&self) -> Result<Vec<PlatformRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT name, dns_suffixes, ip_ranges, profiles, max_days, rate_per_min, disabled, created_at,
                        organizations, usccs, names
                 FROM platforms ORDER BY name",
            )?;
            let list = |r: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<Vec<String>> {
                let s: String = r.get(i)?;
                serde_json::from_str(&s).map_err(|e| corrupt(i, format!("platform list: {e}")))
            };
            let rows = stmt
                .query_map([], |r| {
                    Ok(PlatformRecord {
                        name: r.get(0)?,
                        dns_suffixes: list(r, 1)?,
                        ip_ranges: list(r, 2)?,
                        profiles: list(r, 3)?,
                        max_days: r.get(4)?,
                        rate_per_min: r.get(5)?,
                        disabled: r.get(6)?,
                        created_at: r.get(7)?,
                        organizations: list(r, 8)?,
                        usccs: list(r, 9)?,
                        names: list(r, 10)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn credentials_of(&self, tenant: &str) -> Result<Vec<Credential>> {
        let tenant = tenant.to_string();
        self.read(move |c| {
            let sql = format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE tenant = ?1 ORDER BY rowid"
            );
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt
                .query_map([tenant], credential_row)?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    async fn audit_head(&self) -> Result<(i64, Vec<u8>)> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, vec![0; 32])))
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, upto_id, head_hash, at, signature FROM audit_checkpoints ORDER BY id",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Checkpoint {
                        id: r.get(0)?,
                        upto_id: r.get(1)?,
                        head_hash: r.get(2)?,
                        at: r.get(3)?,
                        signature: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        })
        .await
    }

    fn auth_generation(&self) -> u64 {
        self.auth_generation.load(Ordering::SeqCst)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::database(e.to_string(), e)
    }
}
