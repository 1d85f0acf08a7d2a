//! The embedded store: SQLite in WAL mode with synchronous=FULL. One writer thread owns the
//! write connection (`write.rs`); readers use their own connections, in parallel.
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use write::Cached;

use crate::core::serial::Serial;
use crate::core::stats::{EventKey, IssuedKey, RevokedKey};
use crate::error::{Error, Result};
use crate::store::vocab::{self, ACME_COLUMNS, AcmeRow, IssuerCertRow, IssuerRow};
use crate::store::vocab::{CertRow, CredentialRow, CrossRow, PeerRow, PlatformRow, RevokedRow};
use crate::store::write::{QUEUE, Writer};
use crate::store::{
    AcmeKind, AcmeObject, AuditEntry, CertRecord, Checkpoint, Credential, CrossRecord, Done,
    IssuerRecord, ListFilter, Marks, NewCert, NewRevocation, Op, Page, PeerRecord, PlatformRecord,
    Positioned, RECORD_COLUMNS, SqlValue, StatsPeriod, Store,
};

mod write;

/// The statements of the issuance and revocation paths (and the reads each call needs), named
/// so a test can show SQLite answers every one by an index, never by a scan.
mod hot {
    use super::{CREDENTIAL_COLUMNS, RECORD_COLUMNS};

    pub const RESERVE: &str = "INSERT INTO certificates (serial, status, profile, tenant, subject, sans, not_before, not_after, created_at, issuer, ca, uscc)
         VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
    pub const COMPLETE: &str = "UPDATE certificates SET status = 'issued', der = ?2, issued_at = ?3 WHERE serial = ?1 AND status = 'pending'";
    pub const AUDIT_NEXT_ID: &str = "SELECT COALESCE(MAX(id), 0) + 1 FROM audit_log";
    pub const AUDIT_APPEND: &str = "INSERT INTO audit_log (id, at, actor, event, object, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    pub const REVOCABLE: &str =
        "SELECT tenant, revoked_at FROM certificates WHERE serial = ?1 AND status = 'issued'";
    pub const REVOKE: &str =
        "UPDATE certificates SET revoked_at = ?2, revocation_reason = ?3, invalidity_date = ?4,
         revocation_seq = (SELECT COALESCE(MAX(revocation_seq), 0) + 1 FROM certificates)
         WHERE serial = ?1";

    pub fn cert_by_serial() -> String {
        format!("SELECT {RECORD_COLUMNS} FROM certificates WHERE serial = ?1 AND status = 'issued'")
    }

    pub fn credential_by_cert() -> String {
        format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE cert_sha256 = ?1")
    }

    /// Every statement above.
    #[cfg(test)]
    pub fn all() -> Vec<String> {
        let mut v: Vec<String> = [
            RESERVE,
            COMPLETE,
            AUDIT_NEXT_ID,
            AUDIT_APPEND,
            REVOCABLE,
            REVOKE,
        ]
        .map(String::from)
        .to_vec();
        v.extend([cert_by_serial(), credential_by_cert()]);
        v
    }
}

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_revocation.sql"),
    include_str!("migrations/0003_federation.sql"),
    include_str!("migrations/0004_tenants_audit.sql"),
    include_str!("migrations/0005_trust.sql"),
    include_str!("migrations/0006_cross_intent.sql"),
    include_str!("migrations/0007_issuers.sql"),
    include_str!("migrations/0008_ca_ids.sql"),
    include_str!("migrations/0009_pairs.sql"),
    include_str!("migrations/0010_expiry.sql"),
    include_str!("migrations/0011_stats.sql"),
    include_str!("migrations/0012_acme.sql"),
];
/// Read connections kept open when idle.
const MAX_IDLE_READERS: usize = 8;

/// SQLite-backed [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
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
    // Every statement the writer and the readers run stays prepared (there are ~80).
    conn.set_prepared_statement_cache_capacity(128);
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

impl SqliteStore {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_queue(path, QUEUE)
    }

    /// [`SqliteStore::open`] with at most `queue` writes waiting.
    pub fn open_with_queue(path: &Path, queue: usize) -> Result<Self> {
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
        let (writer, rx, alive) = Writer::new(queue);
        let auth_generation = Arc::new(AtomicU64::new(0));
        thread::Builder::new()
            .name("ecca-store-writer".into())
            .spawn({
                let generation = auth_generation.clone();
                move || write::writer_loop(conn, rx, last_hash, generation, alive)
            })
            .map_err(|e| Error::Storage(format!("cannot start writer thread: {e}")))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer,
            readers: Arc::new(Mutex::new(vec![open(path)?])),
            auth_generation,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One ACME row by a (kind, text) key.
    async fn acme_one(
        &self,
        sql: String,
        kind: AcmeKind,
        key: String,
    ) -> Result<Option<AcmeObject>> {
        self.read(move |c| {
            let row = c
                .row(&sql, params![kind.as_str(), key], |r| {
                    Ok(AcmeRow {
                        kind: r.get(0)?,
                        id: r.get(1)?,
                        owner: r.get(2)?,
                        status: r.get(3)?,
                        expires: r.get(4)?,
                        lookup: r.get(5)?,
                        version: r.get(6)?,
                        doc: r.get(7)?,
                    })
                })
                .optional()?;
            row.map(AcmeObject::try_from).transpose()
        })
        .await
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

const CREDENTIAL_COLUMNS: &str = "serial, role, tenant, disabled, COALESCE(cert_sha256, '')";

/// Every row of a query, read by `map` (typed reads: a wrong type is an error, not a panic).
fn all<T>(
    c: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt
        .query_map(args, map)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Strict decoding of raw rows (`store::vocab`).
fn decode<R, T: TryFrom<R, Error = Error>>(rows: Vec<R>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

fn cert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertRow> {
    Ok(CertRow {
        id: r.get(0)?,
        serial: r.get(1)?,
        profile: r.get(2)?,
        tenant: r.get(3)?,
        subject: r.get(4)?,
        sans: r.get(5)?,
        not_before: r.get(6)?,
        not_after: r.get(7)?,
        issued_at: r.get(8)?,
        der: r.get(9)?,
        revoked_at: r.get(10)?,
        revocation_reason: r.get(11)?,
        invalidity_date: r.get(12)?,
        revocation_seq: r.get(13)?,
        issuer: r.get(14)?,
        ca: r.get(15)?,
    })
}

fn credential_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok(CredentialRow {
        serial: r.get(0)?,
        role: r.get(1)?,
        tenant: r.get(2)?,
        disabled: r.get(3)?,
        cert_sha256: r.get(4)?,
    })
}

/// The highest revocation position, then the unexpired revocations after `after_seq` up to it.
/// With `ca`, only those that CA certificate signed.
fn revoked_rows(
    c: &Connection,
    after_seq: i64,
    now: i64,
    ca: Option<&str>,
) -> Result<(Vec<Positioned>, i64)> {
    let max: i64 = c.row(
        "SELECT COALESCE(MAX(revocation_seq), 0) FROM certificates",
        [],
        |r| r.get(0),
    )?;
    let rows = all(
        c,
        "SELECT revocation_seq, serial, revoked_at, revocation_reason, invalidity_date FROM certificates
         WHERE revocation_seq > ?1 AND revocation_seq <= ?2 AND not_after > ?3 AND issuer = 'issuing'
           AND (?4 IS NULL OR ca = ?4)
         ORDER BY revocation_seq",
        params![after_seq, max, now, ca],
        |r| {
            Ok(RevokedRow {
                seq: r.get(0)?,
                serial: r.get(1)?,
                revoked_at: r.get(2)?,
                revocation_reason: r.get(3)?,
                invalidity_date: r.get(4)?,
            })
        },
    )?;
    Ok((decode(rows)?, max))
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self, op: Op) -> Result<Done> {
        self.writer.submit(op).await
    }

    fn health(&self) -> Result<()> {
        self.writer.health()
    }

    fn stop_writer(&self) {
        self.writer.close();
    }

    async fn get_many(&self, serials: Vec<Serial>) -> Result<Vec<CertRecord>> {
        // One reader task for the batch, the cached statement once per serial.
        self.read(move |c| {
            let mut found = Vec::with_capacity(serials.len());
            let mut stmt = c.prepare_cached(&hot::cert_by_serial())?;
            for serial in serials {
                if let Some(row) = stmt.query_row([serial.hex()], cert_row).optional()? {
                    found.push(<(i64, CertRecord)>::try_from(row)?.1);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn get(&self, serial: &Serial) -> Result<Option<CertRecord>> {
        let serial = serial.hex();
        self.read(move |c| {
            let row = c
                .row(&hot::cert_by_serial(), [serial], cert_row)
                .optional()?;
            row.map(|r| <(i64, CertRecord)>::try_from(r).map(|(_, r)| r))
                .transpose()
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
            let rows = all(c, &sql, rusqlite::params_from_iter(args), cert_row)?;
            Ok(Page::of(decode(rows)?, limit))
        })
        .await
    }

    async fn credential_by_cert(&self, cert_sha256: &str) -> Result<Option<Credential>> {
        let hash = cert_sha256.to_string();
        self.read(move |c| {
            let row = c
                .row(&hot::credential_by_cert(), [hash], credential_row)
                .optional()?;
            row.map(Credential::try_from).transpose()
        })
        .await
    }

    async fn all_credentials(&self) -> Result<Vec<Credential>> {
        self.read(move |c| {
            let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY rowid");
            decode(all(c, &sql, [], credential_row)?)
        })
        .await
    }

    async fn audit(&self, after_id: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        self.read(move |c| {
            all(
                c,
                "SELECT id, at, actor, event, object, detail, prev_hash, hash FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2",
                params![after_id, limit],
                |r| {
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
                },
            )
        })
        .await
    }

    async fn revoked_since(&self, after_seq: i64, now: i64) -> Result<(Vec<Positioned>, i64)> {
        self.read(move |c| revoked_rows(c, after_seq, now, None))
            .await
    }

    async fn revoked_by(&self, ca: &str, now: i64) -> Result<(Vec<Positioned>, i64)> {
        let ca = ca.to_string();
        self.read(move |c| revoked_rows(c, 0, now, Some(&ca))).await
    }

    async fn unexpired(&self, ca: &str, now: i64, besides: &str) -> Result<(u64, Option<i64>)> {
        let (ca, besides) = (ca.to_string(), besides.to_string());
        self.read(move |c| {
            Ok(c.row(
                "SELECT COUNT(*), MAX(not_after) FROM certificates
                 WHERE ca = ?1 AND status <> 'abandoned' AND not_after > ?2 AND profile <> ?3",
                params![ca, now, besides],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )?)
        })
        .await
    }

    async fn expiring(&self, now: i64, until: i64) -> Result<u64> {
        self.read(move |c| {
            Ok(c.row(
                "SELECT COUNT(*) FROM certificates WHERE not_after > ?1 AND not_after <= ?2
                 AND status = 'issued' AND issuer = 'issuing' AND revoked_at IS NULL",
                params![now, until],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .await
    }

    async fn stats_marks(&self) -> Result<Marks> {
        self.read(|c| {
            let rows = all(c, vocab::STATS_MARKS_SQL, [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok(vocab::stats_marks(rows))
        })
        .await
    }

    async fn stats_source(
        &self,
        from: Marks,
        limit: u32,
    ) -> Result<(Vec<NewCert>, Vec<NewRevocation>)> {
        self.read(move |c| {
            let certs = all(
                c,
                vocab::STATS_CERTS_SQL,
                params![from.cert_id, limit],
                |r| {
                    Ok(NewCert {
                        id: r.get(0)?,
                        status: r.get(1)?,
                        tenant: r.get(2)?,
                        profile: r.get(3)?,
                        ca: r.get(4)?,
                        subject: r.get(5)?,
                        not_before: r.get(6)?,
                        not_after: r.get(7)?,
                        issued_at: r.get(8)?,
                        predecessor_not_after: r.get(9)?,
                    })
                },
            )?;
            let revocations = all(
                c,
                vocab::STATS_REVOCATIONS_SQL,
                params![from.revocation_seq, limit],
                |r| {
                    Ok(NewRevocation {
                        seq: r.get(0)?,
                        cert_id: r.get(1)?,
                        tenant: r.get(2)?,
                        profile: r.get(3)?,
                        ca: r.get(4)?,
                        reason: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                        revoked_at: r.get(6)?,
                        not_after: r.get(7)?,
                    })
                },
            )?;
            Ok((certs, revocations))
        })
        .await
    }

    async fn stats_period(
        &self,
        tenant: Option<String>,
        from_day: i64,
        to_day: i64,
    ) -> Result<StatsPeriod> {
        self.read(move |c| {
            let args = params![from_day, to_day, tenant];
            let issued = all(c, vocab::STATS_ISSUED_SQL, args, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get::<_, i64>(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            })?;
            let revoked = all(c, vocab::STATS_REVOKED_SQL, args, |r| {
                Ok((
                    RevokedKey {
                        day: r.get(0)?,
                        tenant: r.get(1)?,
                        profile: r.get(2)?,
                        ca: r.get(3)?,
                        reason: r.get(4)?,
                        expiry: r.get(5)?,
                    },
                    r.get::<_, i64>(6)? as u64,
                ))
            })?;
            let events = all(c, vocab::STATS_EVENTS_SQL, args, |r| {
                Ok((
                    EventKey {
                        day: r.get(0)?,
                        tenant: r.get(1)?,
                        kind: r.get(2)?,
                        label: r.get(3)?,
                    },
                    r.get::<_, i64>(4)? as u64,
                    r.get(5)?,
                ))
            })?;
            let issued = issued
                .into_iter()
                .map(
                    |(day, tenant, profile, ca, uscc, validity, expiry, renewal, n)| {
                        let renewal = vocab::renewal(&renewal)?;
                        let uscc = uscc != 0;
                        Ok((
                            IssuedKey {
                                day,
                                tenant,
                                profile,
                                ca,
                                uscc,
                                validity,
                                expiry,
                                renewal,
                            },
                            n as u64,
                        ))
                    },
                )
                .collect::<Result<_>>()?;
            Ok(StatsPeriod {
                issued,
                revoked,
                events,
            })
        })
        .await
    }

    async fn stats_alive(
        &self,
        tenant: Option<String>,
        day: i64,
    ) -> Result<Vec<(String, String, i64)>> {
        self.read(move |c| {
            all(c, vocab::STATS_ALIVE_SQL, params![day, tenant], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
        })
        .await
    }

    async fn stats_expired(
        &self,
        tenant: Option<String>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(String, i64)>> {
        self.read(move |c| {
            all(
                c,
                vocab::STATS_EXPIRED_SQL,
                params![from_day, to_day, tenant],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    async fn stats_ending(
        &self,
        tenant: Option<String>,
        from: i64,
        to: i64,
        upto_id: i64,
    ) -> Result<Vec<(String, i64, i64)>> {
        self.read(move |c| {
            all(
                c,
                vocab::STATS_ENDING_SQL,
                params![from, to, upto_id, tenant],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .await
    }

    async fn merchants_covered(&self, tenant: String, usccs: Vec<String>, now: i64) -> Result<u64> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM certificates WHERE tenant = ?1 AND uscc = ?2 AND not_after > ?3
                 AND status = 'issued' AND revocation_seq IS NULL)",
            )?;
            let mut n = 0;
            for u in &usccs {
                if stmt.query_row(params![tenant, u, now], |r| r.get::<_, bool>(0))? {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
    }

    async fn pair_of(&self, serial: &str) -> Result<Option<String>> {
        let serial = serial.to_string();
        self.read(move |c| {
            Ok(c.row(
                "SELECT CASE WHEN signing_serial = ?1 THEN encryption_serial ELSE signing_serial END
                 FROM certificate_pairs WHERE signing_serial = ?1 OR encryption_serial = ?1",
                [serial],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn issuers(&self) -> Result<Vec<IssuerRecord>> {
        self.read(|c| {
            let rows = all(c, vocab::ISSUERS_SQL, [], |r| {
                Ok(IssuerRow {
                    name: r.get(0)?,
                    algorithm: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?;
            let certs = all(c, vocab::ISSUER_CERTS_SQL, [], |r| {
                Ok(IssuerCertRow {
                    sha256: r.get(0)?,
                    issuer: r.get(1)?,
                    role: r.get(2)?,
                    state: r.get(3)?,
                    der: r.get(4)?,
                    subject: r.get(5)?,
                    serial: r.get(6)?,
                    not_after: r.get(7)?,
                    added_at: r.get(8)?,
                    ca_id: r.get(9)?,
                    key_ref: r.get(10)?,
                    parent: r.get(11)?,
                    wrapped_key: r.get(12)?,
                })
            })?;
            vocab::issuers(rows, certs)
        })
        .await
    }

    async fn peers(&self) -> Result<Vec<PeerRecord>> {
        self.read(|c| {
            let rows = all(
                c,
                "SELECT name, ca_cert, subject, status, added_at FROM peers ORDER BY name",
                [],
                |r| {
                    Ok(PeerRow {
                        name: r.get(0)?,
                        ca_cert: r.get(1)?,
                        subject: r.get(2)?,
                        status: r.get(3)?,
                        added_at: r.get(4)?,
                    })
                },
            )?;
            decode(rows)
        })
        .await
    }

    async fn cross_certs(&self) -> Result<Vec<CrossRecord>> {
        self.read(|c| {
            let rows = all(
                c,
                "SELECT serial, peer, direction, der, not_after, created_at, revoked_at, revocation_reason, ca
                 FROM cross_certificates WHERE status = 'issued' ORDER BY created_at, serial",
                [],
                |r| {
                    Ok(CrossRow {
                        serial: r.get(0)?,
                        peer: r.get(1)?,
                        direction: r.get(2)?,
                        ca: r.get(8)?,
                        der: r.get(3)?,
                        not_after: r.get(4)?,
                        created_at: r.get(5)?,
                        revoked_at: r.get(6)?,
                        revocation_reason: r.get(7)?,
                    })
                },
            )?;
            decode(rows)
        })
        .await
    }

    async fn acme_get(&self, kind: AcmeKind, id: &str) -> Result<Option<AcmeObject>> {
        let sql = format!("SELECT {ACME_COLUMNS} FROM acme_objects WHERE kind = ?1 AND id = ?2");
        self.acme_one(sql, kind, id.to_string()).await
    }

    async fn acme_find(&self, kind: AcmeKind, lookup: &str) -> Result<Option<AcmeObject>> {
        let sql =
            format!("SELECT {ACME_COLUMNS} FROM acme_objects WHERE kind = ?1 AND lookup = ?2");
        self.acme_one(sql, kind, lookup.to_string()).await
    }

    async fn platforms(&self) -> Result<Vec<PlatformRecord>> {
        self.read(|c| {
            let rows = all(
                c,
                "SELECT name, dns_suffixes, ip_ranges, profiles, max_days, rate_per_min, disabled, created_at,
                        organizations, usccs, names
                 FROM platforms ORDER BY name",
                [],
                |r| {
                    Ok(PlatformRow {
                        name: r.get(0)?,
                        dns_suffixes: r.get(1)?,
                        ip_ranges: r.get(2)?,
                        profiles: r.get(3)?,
                        max_days: r.get(4)?,
                        rate_per_min: r.get(5)?,
                        disabled: r.get(6)?,
                        created_at: r.get(7)?,
                        organizations: r.get(8)?,
                        usccs: r.get(9)?,
                        names: r.get(10)?,
                    })
                },
            )?;
            decode(rows)
        })
        .await
    }

    async fn credentials_of(&self, tenant: &str) -> Result<Vec<Credential>> {
        let tenant = tenant.to_string();
        self.read(move |c| {
            let sql = format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE tenant = ?1 ORDER BY rowid"
            );
            decode(all(c, &sql, [tenant], credential_row)?)
        })
        .await
    }

    async fn audit_head(&self) -> Result<(i64, Vec<u8>)> {
        self.read(|c| {
            Ok(c.row(
                "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, vec![0; 32])))
        })
        .await
    }

    async fn checkpoints_after(&self, after_id: i64) -> Result<Vec<Checkpoint>> {
        self.read(move |c| {
            all(
                c,
                "SELECT id, upto_id, head_hash, at, signature FROM audit_checkpoints WHERE id > ?1 ORDER BY id",
                [after_id],
                |r| {
                    Ok(Checkpoint {
                        id: r.get(0)?,
                        upto_id: r.get(1)?,
                        head_hash: r.get(2)?,
                        at: r.get(3)?,
                        signature: r.get(4)?,
                    })
                },
            )
        })
        .await
    }

    async fn last_checkpoint(&self) -> Result<Option<Checkpoint>> {
        self.read(|c| {
            Ok(c.row(
                "SELECT id, upto_id, head_hash, at, signature FROM audit_checkpoints ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok(Checkpoint {
                        id: r.get(0)?,
                        upto_id: r.get(1)?,
                        head_hash: r.get(2)?,
                        at: r.get(3)?,
                        signature: r.get(4)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    fn auth_generation(&self) -> u64 {
        self.auth_generation.load(Ordering::SeqCst)
    }

    fn shared(&self) -> bool {
        false
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::database(e.to_string(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each statement of the issuance and revocation paths is answered through an index
    /// (EXPLAIN QUERY PLAN has no full SCAN of a table or index), on the migrated schema.
    #[test]
    fn hot_statements_use_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(&dir.path().join("ecca.db")).unwrap();
        migrate(&mut conn).unwrap();
        for sql in hot::all() {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN")),
                "{sql}\nscans: {plan:?}"
            );
        }
    }
}
