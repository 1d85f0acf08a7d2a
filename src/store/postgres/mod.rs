//! The shared store: PostgreSQL, for several `ecca-server` instances behind a load balancer.
//!
//! Writes go through one writer task per instance that commits in groups (as the SQLite store
//! does). Every group transaction first takes one advisory lock: instances append to a single
//! audit chain, revocation positions and CRL numbers advance in commit order, and a CRL number
//! is allocated together with the revocations it lists. Reads use a connection pool.
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::core::serial::Serial;
use crate::core::stats::{EventKey, IssuedKey, RevokedKey};
use crate::error::{Error, Result};
use crate::store::vocab::{self, ACME_COLUMNS, AcmeRow, IssuerCertRow, IssuerRow};
use crate::store::vocab::{CertRow, CredentialRow, CrossRow, PeerRow, PlatformRow, RevokedRow};
use crate::store::write::{QUEUE, Writer};
use crate::store::{
    AcmeKind, AcmeObject, AuditEntry, CertRecord, Checkpoint, Credential, CrlSnapshot, CrossRecord,
    Done, IssuerRecord, ListFilter, Marks, NewCert, NewRevocation, Op, Page, PeerRecord,
    PlatformRecord, Positioned, RECORD_COLUMNS, SharedOcsp, SqlValue, StatsPeriod, Store,
};

mod write;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_ocsp.sql"),
    include_str!("migrations/0003_trust.sql"),
    include_str!("migrations/0004_cross_intent.sql"),
    include_str!("migrations/0005_issuers.sql"),
    include_str!("migrations/0006_ca_ids.sql"),
    include_str!("migrations/0007_pairs.sql"),
    include_str!("migrations/0008_expiry.sql"),
    include_str!("migrations/0009_stats.sql"),
    include_str!("migrations/0010_acme.sql"),
];
/// Advisory lock held by every write transaction (the audit chain is one sequence).
const WRITE_LOCK: i64 = 0x6563_6361_0001;
/// Advisory lock held while the schema is migrated (instances may start together).
const MIGRATE_LOCK: i64 = 0x6563_6361_0002;
/// Pooled connections per instance (readers and the writer).
const POOL_SIZE: usize = 16;
/// How often an instance looks for credential/platform/revocation changes made by others.
pub const AUTH_POLL: Duration = Duration::from_millis(200);

type Args<'a> = [&'a (dyn ToSql + Sync)];

/// PostgreSQL-backed [`Store`].
pub struct PgStore {
    url: String,
    pool: Pool,
    writer: Writer,
    auth_generation: Arc<AtomicU64>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore").field("url", &self.url).finish()
    }
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Takes libpq's `sslrootcert=FILE` out of the URL's query (tokio-postgres does not know it).
fn split_root_cert(url: &str) -> (String, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut root = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("sslrootcert=") {
            Some(path) => {
                root = Some(PathBuf::from(path));
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, root)
}

/// TLS to PostgreSQL that trusts only the CA certificates in `path` (PEM).
fn tls_connector(path: &Path) -> Result<MakeRustlsConnect> {
    let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut roots = rustls::RootCertStore::empty();
    for der in crate::pemfile::parse_certs(&pem)? {
        roots
            .add(der.into())
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Internal(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl PgStore {
    /// Connects to `url` (postgres://user:password@host:port/db), applies migrations, and
    /// starts the writer. `?sslmode=require&sslrootcert=ca.pem` connects over TLS and
    /// authenticates the server against that CA (as libpq's verify-full does).
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with_queue(url, QUEUE).await
    }

    /// [`PgStore::open`] with at most `queue` writes waiting.
    pub async fn open_with_queue(url: &str, queue: usize) -> Result<Self> {
        let shown = redact(url);
        let (url, root) = split_root_cert(url);
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::Config(format!("database URL {shown}: {e}")))?;
        let recycling = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match root {
            Some(_) if config.get_ssl_mode() == SslMode::Disable => {
                return Err(Error::Config(format!(
                    "database URL {shown}: sslrootcert with sslmode=disable; drop one of them"
                )));
            }
            Some(path) => {
                // Given a CA, TLS is required and the server's name is checked against it.
                config.ssl_mode(SslMode::Require);
                Manager::from_config(config, tls_connector(&path)?, recycling)
            }
            None if config.get_ssl_mode() == SslMode::Require => {
                return Err(Error::Config(format!(
                    "database URL {shown}: sslmode=require needs sslrootcert=FILE (the CA certificate that signed PostgreSQL's), so the server is authenticated"
                )));
            }
            None => Manager::from_config(config, NoTls, recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| Error::Config(format!("database {shown}: {e}")))?;
        let mut client = pool.get().await.map_err(|e| {
            Error::Storage(format!(
                "cannot connect to PostgreSQL at {shown}: {e}; check --database and that the server is running"
            ))
        })?;
        migrate(&mut client).await?;
        drop(client);
        let (writer, rx, alive) = Writer::new(queue);
        let auth_generation = Arc::new(AtomicU64::new(0));
        tokio::spawn(write::writer_loop(
            pool.clone(),
            rx,
            auth_generation.clone(),
            alive,
        ));
        tokio::spawn(supervise_follow_auth(
            pool.clone(),
            Arc::downgrade(&auth_generation),
        ));
        Ok(PgStore {
            url: shown,
            pool,
            writer,
            auth_generation,
        })
    }

    /// The connection pool (for bulk work such as `ecca migrate`).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Where this store lives (password redacted).
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn client(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }

    /// One ACME row by a (kind, text) key.
    async fn acme_one(&self, sql: &str, kind: AcmeKind, key: &str) -> Result<Option<AcmeObject>> {
        let kind = kind.as_str();
        let rows = self.rows(sql, &[&kind, &key]).await?;
        rows.first()
            .map(|r| {
                AcmeRow {
                    kind: r.try_get(0)?,
                    id: r.try_get(1)?,
                    owner: r.try_get(2)?,
                    status: r.try_get(3)?,
                    expires: r.try_get(4)?,
                    lookup: r.try_get(5)?,
                    version: r.try_get(6)?,
                    doc: r.try_get(7)?,
                }
                .try_into()
            })
            .transpose()
    }

    async fn rows(&self, sql: &str, args: &Args<'_>) -> Result<Vec<Row>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        Ok(client.query(&stmt, args).await?)
    }
}

async fn migrate(client: &mut Object) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])
        .await?;
    let result = async {
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS ecca_schema (version INTEGER NOT NULL)")
            .await?;
        let version: i32 = client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM ecca_schema", &[])
            .await?
            .try_get(0)?;
        let version = version as usize;
        if version > MIGRATIONS.len() {
            return Err(Error::Storage(format!(
                "database schema version {version} is newer than this ecca ({}); upgrade ecca",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = client.transaction().await?;
            tx.batch_execute(sql).await?;
            let v = (i + 1) as i32;
            tx.execute("INSERT INTO ecca_schema (version) VALUES ($1)", &[&v])
                .await?;
            tx.commit().await?;
        }
        Ok(())
    }
    .await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK])
        .await?;
    result
}

/// Runs [`follow_auth`], restarting it if it panics: a dead follower would leave this
/// instance trusting credentials another instance revoked.
async fn supervise_follow_auth(pool: Pool, generation: Weak<AtomicU64>) {
    loop {
        match tokio::spawn(follow_auth(pool.clone(), generation.clone())).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "auth follower died; restarting it");
                // Whatever it missed is stale: drop every cached decision.
                if let Some(g) = generation.upgrade() {
                    g.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(AUTH_POLL).await;
            }
        }
    }
}

/// Bumps the local auth generation when another instance changed credentials, platforms or
/// revocations. Ends when the store is dropped.
async fn follow_auth(pool: Pool, generation: Weak<AtomicU64>) {
    let mut seen: Option<i64> = None;
    loop {
        tokio::time::sleep(AUTH_POLL).await;
        let Some(generation) = generation.upgrade() else {
            return;
        };
        let current = match pool.get().await {
            Ok(c) => c
                .query_opt("SELECT last FROM crl_numbers WHERE ca = 'auth'", &[])
                .await
                .and_then(|r| r.map_or(Ok(0), |r| r.try_get::<_, i64>(0))),
            Err(e) => {
                tracing::warn!(error = %e, "cannot poll for auth changes");
                continue;
            }
        };
        match current {
            Ok(v) if seen.is_some_and(|s| s != v) => {
                generation.fetch_add(1, Ordering::SeqCst);
                seen = Some(v);
            }
            Ok(v) => seen = Some(v),
            Err(e) => tracing::warn!(error = %e, "cannot poll for auth changes"),
        }
    }
}

/// The highest revocation position, then the unexpired revocations after `after_seq` up to it.
/// With `ca`, only those that CA certificate signed.
async fn revoked_rows(
    client: &tokio_postgres::Client,
    after_seq: i64,
    now: i64,
    ca: Option<&str>,
) -> Result<(Vec<Positioned>, i64)> {
    let max: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(revocation_seq), 0)::BIGINT FROM certificates",
            &[],
        )
        .await?
        .try_get(0)?;
    let rows = client
        .query(
            "SELECT revocation_seq, serial, revoked_at, revocation_reason, invalidity_date
             FROM certificates WHERE revocation_seq > $1 AND revocation_seq <= $2 AND not_after > $3
               AND issuer = 'issuing' AND ($4::TEXT IS NULL OR ca = $4)
             ORDER BY revocation_seq",
            &[&after_seq, &max, &now, &ca],
        )
        .await?;
    let entries = rows
        .iter()
        .map(|r| {
            Positioned::try_from(RevokedRow {
                seq: r.try_get(0)?,
                serial: r.try_get(1)?,
                revoked_at: r.try_get(2)?,
                revocation_reason: r.try_get(3)?,
                invalidity_date: r.try_get(4)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok((entries, max))
}

fn record(r: &Row) -> Result<(i64, CertRecord)> {
    CertRow {
        id: r.try_get(0)?,
        serial: r.try_get(1)?,
        profile: r.try_get(2)?,
        tenant: r.try_get(3)?,
        subject: r.try_get(4)?,
        sans: r.try_get(5)?,
        not_before: r.try_get(6)?,
        not_after: r.try_get(7)?,
        issued_at: r.try_get(8)?,
        der: r.try_get(9)?,
        revoked_at: r.try_get(10)?,
        revocation_reason: r.try_get(11)?,
        invalidity_date: r.try_get(12)?,
        revocation_seq: r.try_get(13)?,
        issuer: r.try_get(14)?,
        ca: r.try_get(15)?,
    }
    .try_into()
}

const CREDENTIAL_COLUMNS: &str = "serial, role, tenant, disabled, COALESCE(cert_sha256, '')";

fn credential(r: &Row) -> Result<Credential> {
    CredentialRow {
        serial: r.try_get(0)?,
        role: r.try_get(1)?,
        tenant: r.try_get(2)?,
        disabled: r.try_get(3)?,
        cert_sha256: r.try_get(4)?,
    }
    .try_into()
}

fn checkpoint(r: &Row) -> Result<Checkpoint> {
    Ok(Checkpoint {
        id: r.try_get(0)?,
        upto_id: r.try_get(1)?,
        head_hash: r.try_get(2)?,
        at: r.try_get(3)?,
        signature: r.try_get(4)?,
    })
}

#[async_trait]
impl Store for PgStore {
    async fn write(&self, op: Op) -> Result<Done> {
        self.writer.submit(op).await
    }

    fn health(&self) -> Result<()> {
        self.writer.health()
    }

    fn stop_writer(&self) {
        self.writer.close();
    }

    fn shared(&self) -> bool {
        true
    }

    async fn get(&self, serial: &Serial) -> Result<Option<CertRecord>> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM certificates WHERE serial = $1 AND status = 'issued'"
        );
        let rows = self.rows(&sql, &[&serial.hex()]).await?;
        rows.first().map(|r| record(r).map(|r| r.1)).transpose()
    }

    async fn list(&self, f: ListFilter) -> Result<Page> {
        let (sql, args, limit) = f.select(RECORD_COLUMNS, |n| format!("${n}"));
        let args: Vec<Box<dyn ToSql + Sync + Send>> = args
            .into_iter()
            .map(|v| -> Box<dyn ToSql + Sync + Send> {
                match v {
                    SqlValue::Text(s) => Box::new(s),
                    SqlValue::Int(i) => Box::new(i),
                }
            })
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = self.rows(&sql, &refs).await?;
        Ok(Page::of(
            rows.iter().map(record).collect::<Result<_>>()?,
            limit,
        ))
    }

    async fn credential_by_cert(&self, cert_sha256: &str) -> Result<Option<Credential>> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE cert_sha256 = $1");
        let rows = self.rows(&sql, &[&cert_sha256]).await?;
        rows.first().map(credential).transpose()
    }

    async fn all_credentials(&self) -> Result<Vec<Credential>> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials ORDER BY added");
        let rows = self.rows(&sql, &[]).await?;
        rows.iter().map(credential).collect()
    }

    async fn audit(&self, after_id: i64, limit: u32) -> Result<Vec<AuditEntry>> {
        let limit = i64::from(limit);
        let rows = self
            .rows(
                "SELECT id, at, actor, event, object, detail, prev_hash, hash FROM audit_log
                 WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after_id, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    event: r.try_get(3)?,
                    object: r.try_get(4)?,
                    detail: r.try_get(5)?,
                    prev_hash: r.try_get(6)?,
                    hash: r.try_get(7)?,
                })
            })
            .collect()
    }

    async fn revoked_since(&self, after_seq: i64, now: i64) -> Result<(Vec<Positioned>, i64)> {
        let client = self.client().await?;
        revoked_rows(&client, after_seq, now, None).await
    }

    async fn revoked_by(&self, ca: &str, now: i64) -> Result<(Vec<Positioned>, i64)> {
        let client = self.client().await?;
        revoked_rows(&client, 0, now, Some(ca)).await
    }

    async fn unexpired(&self, ca: &str, now: i64, besides: &str) -> Result<(u64, Option<i64>)> {
        let rows = self
            .rows(
                "SELECT COUNT(*)::BIGINT, MAX(not_after) FROM certificates
                 WHERE ca = $1 AND status <> 'abandoned' AND not_after > $2 AND profile <> $3",
                &[&ca, &now, &besides],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Internal("COUNT returned no row".into()))?;
        Ok((row.try_get::<_, i64>(0)? as u64, row.try_get(1)?))
    }

    async fn expiring(&self, now: i64, until: i64) -> Result<u64> {
        let rows = self
            .rows(
                "SELECT COUNT(*)::BIGINT FROM certificates WHERE not_after > $1 AND not_after <= $2
                 AND status = 'issued' AND issuer = 'issuing' AND revoked_at IS NULL",
                &[&now, &until],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Internal("COUNT returned no row".into()))?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    async fn stats_marks(&self) -> Result<Marks> {
        let rows = self.rows(vocab::STATS_MARKS_SQL, &[]).await?;
        let rows = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        Ok(vocab::stats_marks(rows))
    }

    async fn stats_source(
        &self,
        from: Marks,
        limit: u32,
    ) -> Result<(Vec<NewCert>, Vec<NewRevocation>)> {
        let limit = i64::from(limit);
        let rows = self
            .rows(vocab::STATS_CERTS_SQL, &[&from.cert_id, &limit])
            .await?;
        let certs = rows
            .iter()
            .map(|r| {
                Ok(NewCert {
                    id: r.try_get(0)?,
                    status: r.try_get(1)?,
                    tenant: r.try_get(2)?,
                    profile: r.try_get(3)?,
                    ca: r.try_get(4)?,
                    subject: r.try_get(5)?,
                    not_before: r.try_get(6)?,
                    not_after: r.try_get(7)?,
                    issued_at: r.try_get(8)?,
                    predecessor_not_after: r.try_get(9)?,
                })
            })
            .collect::<Result<_>>()?;
        let rows = self
            .rows(
                vocab::STATS_REVOCATIONS_SQL,
                &[&from.revocation_seq, &limit],
            )
            .await?;
        let revocations = rows
            .iter()
            .map(|r| {
                Ok(NewRevocation {
                    seq: r.try_get(0)?,
                    cert_id: r.try_get(1)?,
                    tenant: r.try_get(2)?,
                    profile: r.try_get(3)?,
                    ca: r.try_get(4)?,
                    reason: r.try_get::<_, Option<i64>>(5)?.unwrap_or(0),
                    revoked_at: r.try_get(6)?,
                    not_after: r.try_get(7)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok((certs, revocations))
    }

    async fn stats_period(
        &self,
        tenant: Option<String>,
        from_day: i64,
        to_day: i64,
    ) -> Result<StatsPeriod> {
        let args: &[&(dyn ToSql + Sync)] = &[&from_day, &to_day, &tenant];
        let issued = self
            .rows(vocab::STATS_ISSUED_SQL, args)
            .await?
            .iter()
            .map(|r| {
                let key = IssuedKey {
                    day: r.try_get(0)?,
                    tenant: r.try_get(1)?,
                    profile: r.try_get(2)?,
                    ca: r.try_get(3)?,
                    uscc: r.try_get::<_, i64>(4)? != 0,
                    validity: r.try_get(5)?,
                    expiry: r.try_get(6)?,
                    renewal: vocab::renewal(r.try_get(7)?)?,
                };
                Ok((key, r.try_get::<_, i64>(8)? as u64))
            })
            .collect::<Result<_>>()?;
        let revoked = self
            .rows(vocab::STATS_REVOKED_SQL, args)
            .await?
            .iter()
            .map(|r| {
                let key = RevokedKey {
                    day: r.try_get(0)?,
                    tenant: r.try_get(1)?,
                    profile: r.try_get(2)?,
                    ca: r.try_get(3)?,
                    reason: r.try_get(4)?,
                    expiry: r.try_get(5)?,
                };
                Ok((key, r.try_get::<_, i64>(6)? as u64))
            })
            .collect::<Result<_>>()?;
        let events = self
            .rows(vocab::STATS_EVENTS_SQL, args)
            .await?
            .iter()
            .map(|r| {
                let key = EventKey {
                    day: r.try_get(0)?,
                    tenant: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    label: r.try_get(3)?,
                };
                Ok((key, r.try_get::<_, i64>(4)? as u64, r.try_get(5)?))
            })
            .collect::<Result<_>>()?;
        Ok(StatsPeriod {
            issued,
            revoked,
            events,
        })
    }

    async fn stats_alive(
        &self,
        tenant: Option<String>,
        day: i64,
    ) -> Result<Vec<(String, String, i64)>> {
        self.rows(vocab::STATS_ALIVE_SQL, &[&day, &tenant])
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    async fn stats_expired(
        &self,
        tenant: Option<String>,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(String, i64)>> {
        self.rows(vocab::STATS_EXPIRED_SQL, &[&from_day, &to_day, &tenant])
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn stats_ending(
        &self,
        tenant: Option<String>,
        from: i64,
        to: i64,
        upto_id: i64,
    ) -> Result<Vec<(String, i64, i64)>> {
        self.rows(vocab::STATS_ENDING_SQL, &[&from, &to, &upto_id, &tenant])
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    async fn merchants_covered(&self, tenant: String, usccs: Vec<String>, now: i64) -> Result<u64> {
        let rows = self
            .rows(
                "SELECT COUNT(DISTINCT uscc)::BIGINT FROM certificates
                 WHERE tenant = $1 AND uscc = ANY($2) AND not_after > $3
                 AND status = 'issued' AND revocation_seq IS NULL",
                &[&tenant, &usccs, &now],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Internal("COUNT returned no row".into()))?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    async fn pair_of(&self, serial: &str) -> Result<Option<String>> {
        let rows = self
            .rows(
                "SELECT CASE WHEN signing_serial = $1 THEN encryption_serial ELSE signing_serial END
                 FROM certificate_pairs WHERE signing_serial = $1 OR encryption_serial = $1",
                &[&serial],
            )
            .await?;
        rows.first().map(|r| Ok(r.try_get(0)?)).transpose()
    }

    async fn issuers(&self) -> Result<Vec<IssuerRecord>> {
        let rows = self.rows(vocab::ISSUERS_SQL, &[]).await?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(IssuerRow {
                    name: r.try_get(0)?,
                    algorithm: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let certs = self.rows(vocab::ISSUER_CERTS_SQL, &[]).await?;
        let certs = certs
            .iter()
            .map(|r| {
                Ok(IssuerCertRow {
                    sha256: r.try_get(0)?,
                    issuer: r.try_get(1)?,
                    role: r.try_get(2)?,
                    state: r.try_get(3)?,
                    der: r.try_get(4)?,
                    subject: r.try_get(5)?,
                    serial: r.try_get(6)?,
                    not_after: r.try_get(7)?,
                    added_at: r.try_get(8)?,
                    ca_id: r.try_get(9)?,
                    key_ref: r.try_get(10)?,
                    parent: r.try_get(11)?,
                    wrapped_key: r.try_get(12)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        vocab::issuers(rows, certs)
    }

    async fn peers(&self) -> Result<Vec<PeerRecord>> {
        let rows = self
            .rows(
                "SELECT name, ca_cert, subject, status, added_at FROM peers ORDER BY name",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                PeerRow {
                    name: r.try_get(0)?,
                    ca_cert: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    status: r.try_get(3)?,
                    added_at: r.try_get(4)?,
                }
                .try_into()
            })
            .collect()
    }

    async fn cross_certs(&self) -> Result<Vec<CrossRecord>> {
        let rows = self
            .rows(
                "SELECT serial, peer, direction, der, not_after, created_at, revoked_at, revocation_reason, ca
                 FROM cross_certificates WHERE status = 'issued' ORDER BY created_at, serial",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                CrossRow {
                    serial: r.try_get(0)?,
                    peer: r.try_get(1)?,
                    direction: r.try_get(2)?,
                    ca: r.try_get(8)?,
                    der: r.try_get(3)?,
                    not_after: r.try_get(4)?,
                    created_at: r.try_get(5)?,
                    revoked_at: r.try_get(6)?,
                    revocation_reason: r.try_get(7)?,
                }
                .try_into()
            })
            .collect()
    }

    async fn acme_get(&self, kind: AcmeKind, id: &str) -> Result<Option<AcmeObject>> {
        let sql = format!("SELECT {ACME_COLUMNS} FROM acme_objects WHERE kind = $1 AND id = $2");
        self.acme_one(&sql, kind, id).await
    }

    async fn acme_find(&self, kind: AcmeKind, lookup: &str) -> Result<Option<AcmeObject>> {
        let sql =
            format!("SELECT {ACME_COLUMNS} FROM acme_objects WHERE kind = $1 AND lookup = $2");
        self.acme_one(&sql, kind, lookup).await
    }

    async fn platforms(&self) -> Result<Vec<PlatformRecord>> {
        let rows = self
            .rows(
                "SELECT name, dns_suffixes, ip_ranges, profiles, max_days, rate_per_min, disabled, created_at,
                        organizations, usccs, names
                 FROM platforms ORDER BY name",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                PlatformRow {
                    name: r.try_get(0)?,
                    dns_suffixes: r.try_get(1)?,
                    ip_ranges: r.try_get(2)?,
                    profiles: r.try_get(3)?,
                    max_days: r.try_get(4)?,
                    rate_per_min: r.try_get(5)?,
                    disabled: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                    organizations: r.try_get(8)?,
                    usccs: r.try_get(9)?,
                    names: r.try_get(10)?,
                }
                .try_into()
            })
            .collect()
    }

    async fn credentials_of(&self, tenant: &str) -> Result<Vec<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE tenant = $1 ORDER BY added"
        );
        let rows = self.rows(&sql, &[&tenant]).await?;
        rows.iter().map(credential).collect()
    }

    async fn audit_head(&self) -> Result<(i64, Vec<u8>)> {
        let rows = self
            .rows(
                "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1",
                &[],
            )
            .await?;
        match rows.first() {
            Some(r) => Ok((r.try_get(0)?, r.try_get(1)?)),
            None => Ok((0, vec![0; 32])),
        }
    }

    async fn checkpoints_after(&self, after_id: i64) -> Result<Vec<Checkpoint>> {
        let rows = self
            .rows(
                "SELECT id, upto_id, head_hash, at, signature FROM audit_checkpoints
                 WHERE id > $1 ORDER BY id",
                &[&after_id],
            )
            .await?;
        rows.iter().map(checkpoint).collect()
    }

    async fn last_checkpoint(&self) -> Result<Option<Checkpoint>> {
        let rows = self
            .rows(
                "SELECT id, upto_id, head_hash, at, signature FROM audit_checkpoints
                 ORDER BY id DESC LIMIT 1",
                &[],
            )
            .await?;
        rows.first().map(checkpoint).transpose()
    }

    fn auth_generation(&self) -> u64 {
        self.auth_generation.load(Ordering::SeqCst)
    }

    async fn crl_snapshot(&self, ca: &str, count: u32, now: i64) -> Result<CrlSnapshot> {
        // Its own transaction, not the writer's: a large CRL's read does not hold up writes.
        // The counter row's lock orders instances' snapshots like their numbers, and each
        // statement reads everything committed before it (READ COMMITTED).
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut numbers = Vec::with_capacity(count as usize);
        for _ in 0..count {
            numbers.push(write::next_number(&tx, ca, 1).await?);
        }
        let (revoked, max_seq) = revoked_rows(tx.client(), 0, now, Some(ca)).await?;
        tx.commit().await?;
        Ok(CrlSnapshot {
            numbers,
            revoked,
            max_seq,
        })
    }

    async fn shared_ocsp(&self, cert_id: &[u8]) -> Result<Option<(Vec<u8>, i64)>> {
        let rows = self
            .rows(
                "SELECT der, this_update FROM ocsp_responses WHERE cert_id = $1",
                &[&cert_id],
            )
            .await?;
        match rows.first() {
            Some(r) => Ok(Some((r.try_get(0)?, r.try_get(1)?))),
            None => Ok(None),
        }
    }

    async fn share_ocsp(&self, response: SharedOcsp<'_>) -> Result<()> {
        // Stored only if the certificate still has the status the response states, under a
        // share lock on its row: a revocation (which locks the row for update and deletes the
        // serial's responses) either comes first and this stores nothing, or comes after and
        // deletes this.
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // A cache entry: not worth waiting for a WAL flush (a lost one is signed again).
        tx.batch_execute("SET LOCAL synchronous_commit TO OFF")
            .await?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO ocsp_responses (cert_id, serial, der, this_update)
                 SELECT $1, serial, $3, $4 FROM certificates
                 WHERE serial = $2 AND status = 'issued' AND (revoked_at IS NOT NULL) = $5
                 FOR SHARE
                 ON CONFLICT (cert_id) DO UPDATE SET der = EXCLUDED.der, this_update = EXCLUDED.this_update
                 WHERE ocsp_responses.this_update <= EXCLUDED.this_update",
            )
            .await?;
        tx.execute(
            &stmt,
            &[
                &response.cert_id,
                &response.serial,
                &response.der,
                &response.this_update,
                &response.revoked,
            ],
        )
        .await?;
        Ok(tx.commit().await?)
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message says what failed; the client error alone says "db error".
        let message = match e.as_db_error() {
            Some(db) => format!("postgres: {}", db.message()),
            None => format!("postgres: {e}"),
        };
        Error::database(message, e)
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Error::database(format!("no database connection: {e}"), e)
    }
}
