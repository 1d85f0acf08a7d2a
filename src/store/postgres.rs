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
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::core::revocation::{Reason, RevokedEntry};
use crate::core::serial::Serial;
use crate::error::{Error, Result};
use crate::store::write::{Job, MAX_GROUP, check_revocable, deliver};
use crate::store::{
    AuditEntry, CertRecord, Checkpoint, Credential, CrlSnapshot, CrossRecord, Direction, Done,
    Issuer, ListFilter, Op, Page, PeerRecord, PeerStatus, PlatformRecord, Positioned,
    RECORD_COLUMNS, Revocation, Role, SharedOcsp, SqlValue, Store, audit_hash,
};

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_init.sql"),
    include_str!("migrations/postgres/0002_ocsp.sql"),
    include_str!("migrations/postgres/0003_trust.sql"),
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
    writer: mpsc::UnboundedSender<Job>,
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

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl PgStore {
    /// Connects to `url` (postgres://user:password@host:port/db), applies migrations, and
    /// starts the writer. `?sslmode=require&sslrootcert=ca.pem` connects over TLS and
    /// authenticates the server against that CA (as libpq's verify-full does).
    pub async fn open(url: &str) -> Result<Self> {
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
        let (tx, rx) = mpsc::unbounded_channel();
        let auth_generation = Arc::new(AtomicU64::new(0));
        tokio::spawn(writer_loop(pool.clone(), rx, auth_generation.clone()));
        tokio::spawn(follow_auth(pool.clone(), Arc::downgrade(&auth_generation)));
        Ok(PgStore {
            url: shown,
            pool,
            writer: tx,
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
            .get(0);
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

async fn writer_loop(
    pool: Pool,
    mut rx: mpsc::UnboundedReceiver<Job>,
    auth_generation: Arc<AtomicU64>,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let outcome = commit_group(&pool, &jobs).await;
        deliver(jobs, outcome, &auth_generation);
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
                .map(|r| r.map(|r| r.get::<_, i64>(0)).unwrap_or(0)),
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

/// The audit chain head as the group transaction extends it.
struct Head {
    id: i64,
    hash: Vec<u8>,
}

impl Head {
    /// The entry that would follow this head.
    fn next(&self, at: i64, actor: &str, event: &str, object: &str, detail: &str) -> Head {
        let id = self.id + 1;
        let hash = audit_hash(&self.hash, id, at, actor, event, object, detail);
        Head { id, hash }
    }
}

/// Opens a write transaction: takes the write lock, then reads the audit chain's head (after
/// the lock, so it is the head every other instance sees too).
async fn begin(client: &mut Object) -> Result<(Transaction<'_>, Head)> {
    let tx = client.transaction().await?;
    // Pipelined (prepared statements are sent in poll order, so the lock goes first): the
    // server runs them in order, and the head query's snapshot is taken once the lock is held.
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await?;
    let newest = tx
        .prepare_cached("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
        .await?;
    let (_, head) = tokio::try_join!(
        tx.execute(&lock, &[&WRITE_LOCK]),
        tx.query_opt(&newest, &[])
    )?;
    let head = match head {
        Some(r) => Head {
            id: r.get(0),
            hash: r.get(1),
        },
        None => Head {
            id: 0,
            hash: vec![0; 32],
        },
    };
    Ok((tx, head))
}

async fn commit_group(pool: &Pool, jobs: &[Job]) -> Result<Vec<Result<Done>>> {
    let issuance_only = jobs
        .iter()
        .all(|j| matches!(j.op, Op::Reserve(_) | Op::Complete { .. }));
    if jobs.len() > 1
        && issuance_only
        && let Some(results) = issuance_group(pool, jobs).await?
    {
        return Ok(results);
    }
    one_by_one(pool, jobs).await
}

/// Columns of a group's rows, bound as arrays so one statement writes them all.
#[derive(Default)]
struct Columns {
    serials: Vec<String>,
    profiles: Vec<String>,
    tenants: Vec<String>,
    subjects: Vec<String>,
    sans: Vec<String>,
    not_befores: Vec<i64>,
    not_afters: Vec<i64>,
    issuers: Vec<String>,
    completed: Vec<String>,
    ders: Vec<Vec<u8>>,
    audit_ids: Vec<i64>,
    actors: Vec<String>,
    events: Vec<String>,
    objects: Vec<String>,
    details: Vec<String>,
    prev_hashes: Vec<Vec<u8>>,
    hashes: Vec<Vec<u8>>,
}

impl Columns {
    /// Adds the audit entry after `head` and moves `head` to it.
    fn audit(
        &mut self,
        head: &mut Head,
        at: i64,
        actor: &str,
        event: &str,
        object: &str,
        detail: String,
    ) {
        let next = head.next(at, actor, event, object, &detail);
        self.audit_ids.push(next.id);
        self.actors.push(actor.into());
        self.events.push(event.into());
        self.objects.push(object.into());
        self.details.push(detail);
        self.prev_hashes.push(std::mem::replace(head, next).hash);
        self.hashes.push(head.hash.clone());
    }
}

/// The issuance hot path: a group of reservations and completions written by three array
/// statements instead of two statements per job. None (nothing committed) if any row was
/// refused: the caller then applies the jobs one by one, which finds the culprit.
async fn issuance_group(pool: &Pool, jobs: &[Job]) -> Result<Option<Vec<Result<Done>>>> {
    let mut client = pool.get().await?;
    let (tx, mut head) = begin(&mut client).await?;
    let at = now();
    let mut cols = Columns::default();
    for job in jobs {
        match &job.op {
            Op::Reserve(i) => {
                let serial = i.serial.hex();
                let detail = i.audit_detail();
                cols.audit(
                    &mut head,
                    at,
                    &i.actor,
                    "certificate.signing",
                    &serial,
                    detail,
                );
                cols.serials.push(serial);
                cols.profiles.push(i.profile.clone());
                cols.tenants.push(i.tenant.clone());
                cols.subjects.push(i.subject.clone());
                cols.sans.push(json(&i.sans));
                cols.not_befores.push(i.not_before);
                cols.not_afters.push(i.not_after);
                cols.issuers.push(i.issuer.as_str().into());
            }
            Op::Complete { serial, der, actor } => {
                let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, der));
                let detail = format!("sha256={digest}");
                cols.audit(&mut head, at, actor, "certificate.issued", serial, detail);
                cols.completed.push(serial.clone());
                cols.ders.push(der.clone());
            }
            _ => return Ok(None),
        }
    }
    // Three statements pipelined (prepared, so sent in this order); an empty array writes
    // nothing. If the first fails, the others fail too and the group is redone one by one.
    let insert = tx
        .prepare_cached(
            "INSERT INTO certificates (serial, status, profile, tenant, subject, sans, not_before, not_after, created_at, issuer)
             SELECT s, 'pending', p, t, sub, sa, nb, na, $8, iss
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $9::text[])
                  AS u(s, p, t, sub, sa, nb, na, iss)",
        )
        .await?;
    let complete = tx
        .prepare_cached(
            "UPDATE certificates SET status = 'issued', der = u.d, issued_at = $3
             FROM unnest($1::text[], $2::bytea[]) AS u(s, d)
             WHERE certificates.serial = u.s AND certificates.status = 'pending'",
        )
        .await?;
    let audit = tx
        .prepare_cached(
            "INSERT INTO audit_log (id, at, actor, event, object, detail, prev_hash, hash)
             SELECT id, $2, actor, event, object, detail, prev, hash
             FROM unnest($1::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::bytea[])
                  AS u(id, actor, event, object, detail, prev, hash)",
        )
        .await?;
    let insert_args: &Args = &[
        &cols.serials,
        &cols.profiles,
        &cols.tenants,
        &cols.subjects,
        &cols.sans,
        &cols.not_befores,
        &cols.not_afters,
        &at,
        &cols.issuers,
    ];
    let complete_args: &Args = &[&cols.completed, &cols.ders, &at];
    let audit_args: &Args = &[
        &cols.audit_ids,
        &at,
        &cols.actors,
        &cols.events,
        &cols.objects,
        &cols.details,
        &cols.prev_hashes,
        &cols.hashes,
    ];
    let (inserted, completed, audited) = tokio::join!(
        tx.execute(&insert, insert_args),
        tx.execute(&complete, complete_args),
        tx.execute(&audit, audit_args),
    );
    match inserted {
        Ok(n) if n == cols.serials.len() as u64 => {}
        Ok(_) => return Ok(None),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    if completed? != cols.completed.len() as u64 {
        return Ok(None);
    }
    audited?;
    tx.commit().await?;
    Ok(Some(jobs.iter().map(|_| Ok(Done::Nothing)).collect()))
}

/// Applies a group's jobs in order, each in its own savepoint.
async fn one_by_one(pool: &Pool, jobs: &[Job]) -> Result<Vec<Result<Done>>> {
    let mut client = pool.get().await?;
    let (tx, mut head) = begin(&mut client).await?;
    // A lone job needs no savepoint (its failure rolls the whole transaction back); in a
    // group, each job runs in one, and releasing it shares a round trip with the next.
    let single = jobs.len() == 1;
    if !single {
        tx.batch_execute("SAVEPOINT job").await?;
    }
    let mut results = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        let before = (head.id, head.hash.clone());
        match apply(&tx, &job.op, &mut head).await {
            Ok(done) => results.push(Ok(done)),
            Err(e) if single => return Ok(vec![Err(e)]),
            Err(e) => {
                tx.batch_execute("ROLLBACK TO job").await?;
                (head.id, head.hash) = before;
                results.push(Err(e));
            }
        }
        if !single && i + 1 < jobs.len() {
            tx.batch_execute("RELEASE job; SAVEPOINT job").await?;
        }
    }
    if jobs.iter().any(|j| j.op.affects_auth()) {
        next_number(&tx, "auth").await?;
    }
    tx.commit().await?;
    Ok(results)
}

async fn exec_raw(
    tx: &Transaction<'_>,
    sql: &str,
    args: &Args<'_>,
) -> std::result::Result<u64, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.execute(&stmt, args).await
}

async fn exec(tx: &Transaction<'_>, sql: &str, args: &Args<'_>) -> Result<u64> {
    Ok(exec_raw(tx, sql, args).await?)
}

async fn query(tx: &Transaction<'_>, sql: &str, args: &Args<'_>) -> Result<Vec<Row>> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.query(&stmt, args).await?)
}

/// Maps a unique-key violation to `conflict`.
fn unique(
    result: std::result::Result<u64, tokio_postgres::Error>,
    conflict: impl FnOnce() -> Error,
) -> Result<u64> {
    result.map_err(|e| match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => conflict(),
        _ => e.into(),
    })
}

async fn next_number(tx: &Transaction<'_>, name: &str) -> Result<u64> {
    let rows = query(
        tx,
        "INSERT INTO crl_numbers (ca, last) VALUES ($1, 1)
         ON CONFLICT (ca) DO UPDATE SET last = crl_numbers.last + 1 RETURNING last",
        &[&name],
    )
    .await?;
    let n: i64 = rows
        .first()
        .map(|r| r.get(0))
        .ok_or_else(|| Error::Internal(format!("counter {name} not advanced")))?;
    Ok(n as u64)
}

async fn append_audit(
    tx: &Transaction<'_>,
    head: &mut Head,
    at: i64,
    actor: &str,
    event: &str,
    object: &str,
    detail: &str,
) -> Result<()> {
    let next = head.next(at, actor, event, object, detail);
    exec(
        tx,
        "INSERT INTO audit_log (id, at, actor, event, object, detail, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &next.id, &at, &actor, &event, &object, &detail, &head.hash, &next.hash,
        ],
    )
    .await?;
    *head = next;
    Ok(())
}

/// The highest revocation position, then the unexpired revocations after `after_seq` up to it.
async fn revoked_rows(
    client: &tokio_postgres::Client,
    after_seq: i64,
    now: i64,
) -> Result<(Vec<Positioned>, i64)> {
    let max: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(revocation_seq), 0)::BIGINT FROM certificates",
            &[],
        )
        .await?
        .get(0);
    let rows = client
        .query(
            "SELECT revocation_seq, serial, revoked_at, revocation_reason, invalidity_date
             FROM certificates WHERE revocation_seq > $1 AND revocation_seq <= $2 AND not_after > $3
               AND issuer = 'issuing'
             ORDER BY revocation_seq",
            &[&after_seq, &max, &now],
        )
        .await?;
    let entries = rows
        .iter()
        .map(|r| {
            let serial: String = r.get(1);
            let entry = RevokedEntry {
                serial: hex::decode(serial).unwrap_or_default(),
                revoked_at: r.get(2),
                reason: Reason::from_code(r.get(3)).unwrap_or(Reason::Unspecified),
                invalidity_date: r.get(4),
            };
            (r.get::<_, i64>(0), entry)
        })
        .collect();
    Ok((entries, max))
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Applies one operation with its audit entry, extending `head`.
async fn apply(tx: &Transaction<'_>, op: &Op, head: &mut Head) -> Result<Done> {
    let at = now();
    match op {
        // The issuance path: the row and its audit entry in one statement (one round trip).
        Op::Reserve(i) => {
            let (serial, sans) = (i.serial.hex(), json(&i.sans));
            let detail = i.audit_detail();
            let event = "certificate.signing";
            let next = head.next(at, &i.actor, event, &serial, &detail);
            let inserted = exec_raw(
                tx,
                "WITH c AS (INSERT INTO certificates (serial, status, profile, tenant, subject, sans, not_before, not_after, created_at, issuer)
                            VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $15) RETURNING 1)
                 INSERT INTO audit_log (id, at, actor, event, object, detail, prev_hash, hash)
                 SELECT $9, $8, $10, $11, $1, $12, $13, $14 FROM c",
                &[&serial, &i.profile, &i.tenant, &i.subject, &sans, &i.not_before, &i.not_after, &at,
                  &next.id, &i.actor, &event, &detail, &head.hash, &next.hash, &i.issuer.as_str()],
            )
            .await;
            unique(inserted, || {
                Error::Storage(format!("serial {} already used", i.serial))
            })?;
            *head = next;
        }
        Op::Complete { serial, der, actor } => {
            let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, der));
            let (event, detail) = ("certificate.issued", format!("sha256={digest}"));
            let next = head.next(at, actor, event, serial, &detail);
            let n = exec(
                tx,
                "WITH c AS (UPDATE certificates SET status = 'issued', der = $2, issued_at = $3
                            WHERE serial = $1 AND status = 'pending' RETURNING 1)
                 INSERT INTO audit_log (id, at, actor, event, object, detail, prev_hash, hash)
                 SELECT $4, $3, $5, $6, $1, $7, $8, $9 FROM c",
                &[
                    serial, der, &at, &next.id, actor, &event, &detail, &head.hash, &next.hash,
                ],
            )
            .await?;
            if n != 1 {
                return Err(Error::Internal(format!("serial {serial} was not pending")));
            }
            *head = next;
        }
        Op::Abandon {
            serial,
            reason,
            actor,
        } => {
            exec(
                tx,
                "UPDATE certificates SET status = 'abandoned' WHERE serial = $1 AND status = 'pending'",
                &[serial],
            )
            .await?;
            append_audit(tx, head, at, actor, "certificate.abandoned", serial, reason).await?;
        }
        Op::AddCredential { cred, actor } => {
            exec(
                tx,
                "INSERT INTO credentials (serial, role, tenant, disabled, cert_sha256) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &cred.serial,
                    &cred.role.as_str(),
                    &cred.tenant,
                    &cred.disabled,
                    &cred.cert_sha256,
                ],
            )
            .await?;
            let detail = cred.audit_detail();
            let event = "credential.added";
            append_audit(tx, head, at, actor, event, &cred.serial, &detail).await?;
        }
        Op::Revoke(r) => {
            let serial = r.serial.hex();
            let rows = query(
                tx,
                "SELECT tenant, revoked_at FROM certificates
                 WHERE serial = $1 AND status = 'issued' FOR UPDATE",
                &[&serial],
            )
            .await?;
            let row = rows
                .first()
                .map(|row| (row.get::<_, String>(0), row.get::<_, Option<i64>>(1)));
            check_revocable(&serial, row, r.tenant.as_deref())?;
            // Shared OCSP answers for it are void; the row lock taken above keeps a response
            // signed before the revocation from being shared after it (`share_ocsp`).
            exec(
                tx,
                "DELETE FROM ocsp_responses WHERE serial = $1",
                &[&serial],
            )
            .await?;
            let reason = r.reason as i64;
            exec(
                tx,
                "UPDATE certificates SET revoked_at = $2, revocation_reason = $3, invalidity_date = $4,
                 revocation_seq = (SELECT COALESCE(MAX(revocation_seq), 0) + 1 FROM certificates)
                 WHERE serial = $1",
                &[&serial, &at, &reason, &r.invalidity_date],
            )
            .await?;
            let detail = format!("reason={}", r.reason.name());
            let event = "certificate.revoked";
            append_audit(tx, head, at, &r.actor, event, &serial, &detail).await?;
        }
        Op::NextCrlNumber { ca } => return Ok(Done::Number(next_number(tx, ca).await?)),
        Op::TimestampBlock { size } => {
            let size = i64::from(*size);
            let last: i64 = query(
                tx,
                "INSERT INTO crl_numbers (ca, last) VALUES ('tsa', $1)
                 ON CONFLICT (ca) DO UPDATE SET last = crl_numbers.last + $1 RETURNING last",
                &[&size],
            )
            .await?
            .first()
            .map(|r| r.get(0))
            .ok_or_else(|| Error::Storage("time-stamp counter not updated".into()))?;
            let (first, last) = ((last - size + 1) as u64, last as u64);
            let (object, detail) = Op::timestamp_block_audit(first, last);
            append_audit(tx, head, at, "tsa", "timestamp.block", &object, &detail).await?;
            return Ok(Done::Range(first, last));
        }
        Op::AddPlatform { p, actor } => {
            let max_days = p.max_days.map(i64::from);
            let rate = p.rate_per_min.map(i64::from);
            let (dns, ips, profiles) =
                (json(&p.dns_suffixes), json(&p.ip_ranges), json(&p.profiles));
            let (orgs, usccs, names) = (json(&p.organizations), json(&p.usccs), json(&p.names));
            let inserted = exec_raw(
                tx,
                "INSERT INTO platforms (name, dns_suffixes, ip_ranges, profiles, max_days, rate_per_min, disabled, created_at,
                                        organizations, usccs, names)
                 VALUES ($1, $2, $3, $4, $5, $6, FALSE, $7, $8, $9, $10)",
                &[&p.name, &dns, &ips, &profiles, &max_days, &rate, &at, &orgs, &usccs, &names],
            )
            .await;
            unique(inserted, || {
                Error::Conflict(format!("platform {:?} already exists", p.name))
            })?;
            let detail = p.audit_detail();
            append_audit(tx, head, at, actor, "platform.added", &p.name, &detail).await?;
        }
        Op::PlatformDisabled {
            name,
            disabled,
            actor,
        } => {
            let n = exec(
                tx,
                "UPDATE platforms SET disabled = $2 WHERE name = $1",
                &[name, disabled],
            )
            .await?;
            if n == 0 {
                return Err(Error::NotFound(format!("platform {name:?}")));
            }
            let event = if *disabled {
                "platform.disabled"
            } else {
                "platform.enabled"
            };
            append_audit(tx, head, at, actor, event, name, "").await?;
        }
        Op::PlatformSubjects {
            name,
            organizations,
            usccs,
            names,
            actor,
        } => {
            let n = exec(
                tx,
                "UPDATE platforms SET organizations = $2, usccs = $3, names = $4 WHERE name = $1",
                &[name, &json(organizations), &json(usccs), &json(names)],
            )
            .await?;
            if n == 0 {
                return Err(Error::NotFound(format!("platform {name:?}")));
            }
            let detail = crate::store::platform_subjects_detail(organizations, usccs, names);
            append_audit(tx, head, at, actor, "platform.subjects", name, &detail).await?;
        }
        Op::DisableCredential { cert_sha256, actor } => {
            let n = exec(
                tx,
                "UPDATE credentials SET disabled = TRUE WHERE cert_sha256 = $1 AND disabled = FALSE",
                &[cert_sha256],
            )
            .await?;
            let detail = format!("disabled={n}");
            append_audit(
                tx,
                head,
                at,
                actor,
                "credential.disabled",
                cert_sha256,
                &detail,
            )
            .await?;
        }
        Op::DisableCredentials {
            tenant,
            keep,
            actor,
        } => {
            let n = exec(
                tx,
                "UPDATE credentials SET disabled = TRUE
                 WHERE tenant = $1 AND serial != $2 AND NOT disabled",
                &[tenant, keep],
            )
            .await?;
            let detail = format!("disabled={n} kept={keep}");
            append_audit(tx, head, at, actor, "credential.rotated", tenant, &detail).await?;
        }
        Op::Event {
            actor,
            event,
            object,
            detail,
        } => append_audit(tx, head, at, actor, event, object, detail).await?,
        Op::AddCheckpoint(c) => {
            exec(
                tx,
                "INSERT INTO audit_checkpoints (upto_id, head_hash, at, signature) VALUES ($1, $2, $3, $4)",
                &[&c.upto_id, &c.head_hash, &c.at, &c.signature],
            )
            .await?;
        }
        Op::AddPeer { peer, actor } => {
            let inserted = exec_raw(
                tx,
                "INSERT INTO peers (name, ca_cert, subject, status, added_at) VALUES ($1, $2, $3, $4, $5)",
                &[&peer.name, &peer.ca_cert, &peer.subject, &peer.status.as_str(), &at],
            )
            .await;
            unique(inserted, || {
                Error::Conflict(format!("peer {:?} already exists", peer.name))
            })?;
            let detail = peer.audit_detail();
            append_audit(tx, head, at, actor, "peer.added", &peer.name, &detail).await?;
        }
        Op::PeerStatus {
            name,
            status,
            actor,
        } => {
            let n = exec(
                tx,
                "UPDATE peers SET status = $2 WHERE name = $1",
                &[name, &status.as_str()],
            )
            .await?;
            if n == 0 {
                return Err(Error::NotFound(format!("peer {name:?}")));
            }
            append_audit(tx, head, at, actor, "peer.status", name, status.as_str()).await?;
        }
        Op::RemovePeer { name, actor } => {
            let n = exec(tx, "DELETE FROM peers WHERE name = $1", &[name]).await?;
            if n == 0 {
                return Err(Error::NotFound(format!("peer {name:?}")));
            }
            let serials: Vec<String> = query(
                tx,
                "UPDATE cross_certificates SET revoked_at = $2, revocation_reason = 5
                 WHERE peer = $1 AND direction = 'issued' AND revoked_at IS NULL RETURNING serial",
                &[name, &at],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
            let detail = format!("revoked={}", serials.join(","));
            append_audit(tx, head, at, actor, "peer.removed", name, &detail).await?;
            return Ok(Done::Serials(serials));
        }
        Op::AddCross { record, actor } => {
            exec(
                tx,
                "INSERT INTO cross_certificates (serial, peer, direction, der, not_after, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&record.serial, &record.peer, &record.direction.as_str(), &record.der, &record.not_after, &at],
            )
            .await?;
            let detail = record.audit_detail();
            let event = "cross_certificate.stored";
            append_audit(tx, head, at, actor, event, &record.serial, &detail).await?;
        }
    }
    Ok(Done::Nothing)
}

fn record(row: &Row) -> Result<(i64, CertRecord)> {
    let sans: String = row.get(5);
    let revocation = row.get::<_, Option<i64>>(10).map(|revoked_at| Revocation {
        revoked_at,
        reason: Reason::from_code(row.get::<_, Option<i64>>(11).unwrap_or(0))
            .unwrap_or(Reason::Unspecified),
        invalidity_date: row.get(12),
        seq: row.get::<_, Option<i64>>(13).unwrap_or(0),
    });
    Ok((
        row.get(0),
        CertRecord {
            issuer: Issuer::parse(row.get(14))?,
            serial: row.get(1),
            profile: row.get(2),
            tenant: row.get(3),
            subject: row.get(4),
            sans: serde_json::from_str(&sans).unwrap_or_default(),
            not_before: row.get(6),
            not_after: row.get(7),
            issued_at: row.get::<_, Option<i64>>(8).unwrap_or(0),
            der: row.get::<_, Option<Vec<u8>>>(9).unwrap_or_default(),
            revocation,
        },
    ))
}

const CREDENTIAL_COLUMNS: &str = "serial, role, tenant, disabled, COALESCE(cert_sha256, '')";

fn credential(r: &Row) -> Result<Credential> {
    let role: &str = r.get(1);
    Ok(Credential {
        serial: r.get(0),
        role: Role::parse(role)
            .ok_or_else(|| Error::Storage(format!("corrupt credential row: role {role:?}")))?,
        tenant: r.get(2),
        disabled: r.get(3),
        cert_sha256: r.get(4),
    })
}

#[async_trait]
impl Store for PgStore {
    async fn write(&self, op: Op) -> Result<Done> {
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(Job { op, reply })
            .map_err(|_| Error::Storage("store writer has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Storage("store writer has stopped".into()))?
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
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                event: r.get(3),
                object: r.get(4),
                detail: r.get(5),
                prev_hash: r.get(6),
                hash: r.get(7),
            })
            .collect())
    }

    async fn revoked_since(&self, after_seq: i64, now: i64) -> Result<(Vec<Positioned>, i64)> {
        let client = self.client().await?;
        revoked_rows(&client, after_seq, now).await
    }

    async fn peers(&self) -> Result<Vec<PeerRecord>> {
        let rows = self
            .rows(
                "SELECT name, ca_cert, subject, status, added_at FROM peers ORDER BY name",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PeerRecord {
                name: r.get(0),
                ca_cert: r.get(1),
                subject: r.get(2),
                status: if r.get::<_, &str>(3) == "active" {
                    PeerStatus::Active
                } else {
                    PeerStatus::Suspended
                },
                added_at: r.get(4),
            })
            .collect())
    }

    async fn cross_certs(&self) -> Result<Vec<CrossRecord>> {
        let rows = self
            .rows(
                "SELECT serial, peer, direction, der, not_after, created_at, revoked_at, revocation_reason
                 FROM cross_certificates ORDER BY created_at, serial",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let reason = r.get::<_, Option<i64>>(7).unwrap_or(0);
                CrossRecord {
                    serial: r.get(0),
                    peer: r.get(1),
                    direction: if r.get::<_, &str>(2) == "issued" {
                        Direction::Issued
                    } else {
                        Direction::Received
                    },
                    der: r.get(3),
                    not_after: r.get(4),
                    created_at: r.get(5),
                    revoked: r
                        .get::<_, Option<i64>>(6)
                        .map(|t| (t, Reason::from_code(reason).unwrap_or(Reason::Unspecified))),
                }
            })
            .collect())
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
        let list = |s: &str| {
            serde_json::from_str::<Vec<String>>(s)
                .map_err(|e| Error::Storage(format!("corrupt platform row: {e}")))
        };
        let small = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
        rows.iter()
            .map(|r| {
                Ok(PlatformRecord {
                    name: r.get(0),
                    dns_suffixes: list(r.get(1))?,
                    ip_ranges: list(r.get(2))?,
                    profiles: list(r.get(3))?,
                    max_days: small(r.get(4)),
                    rate_per_min: small(r.get(5)),
                    disabled: r.get(6),
                    created_at: r.get(7),
                    organizations: list(r.get(8))?,
                    usccs: list(r.get(9))?,
                    names: list(r.get(10))?,
                })
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
        Ok(rows
            .first()
            .map(|r| (r.get(0), r.get(1)))
            .unwrap_or((0, vec![0; 32])))
    }

    async fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let rows = self
            .rows(
                "SELECT id, upto_id, head_hash, at, signature FROM audit_checkpoints ORDER BY id",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Checkpoint {
                id: r.get(0),
                upto_id: r.get(1),
                head_hash: r.get(2),
                at: r.get(3),
                signature: r.get(4),
            })
            .collect())
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
            numbers.push(next_number(&tx, ca).await?);
        }
        let (revoked, max_seq) = revoked_rows(tx.client(), 0, now).await?;
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
        Ok(rows.first().map(|r| (r.get(0), r.get(1))))
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
