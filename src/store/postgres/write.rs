//! The PostgreSQL writer: one task per instance commits queued ops in groups (as the SQLite
//! writer does), each group under one advisory lock so instances append to a single audit
//! chain. It runs each op's SQL; what the op records in the audit log comes from
//! `store::vocab`.
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use deadpool_postgres::{Object, Pool, Transaction};
use tokio::sync::mpsc;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::{Args, WRITE_LOCK};
use crate::error::{Error, Result};
use crate::store::vocab::{self, Applied, AuditRecord, list_json};
use crate::store::write::{Alive, Job, check_revocable, deliver, group, observe_group};
use crate::store::{Done, Op, audit_hash};

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Serves the queue until it closes; `alive` marks the writer stopped when this returns or
/// panics.
pub(super) async fn writer_loop(
    pool: Pool,
    mut rx: mpsc::Receiver<Job>,
    auth_generation: Arc<AtomicU64>,
    alive: Alive,
) {
    let _alive = alive;
    while let Some(first) = rx.recv().await {
        let jobs = group(first, &mut rx);
        let started = std::time::Instant::now();
        let outcome = commit_group(&pool, &jobs).await;
        observe_group("postgres", started, rx.len());
        deliver(jobs, outcome, &auth_generation);
    }
}

/// The audit chain head as the group transaction extends it.
struct Head {
    id: i64,
    hash: Vec<u8>,
}

impl Head {
    /// The entry that would follow this head.
    fn next(&self, at: i64, e: &AuditRecord) -> Head {
        let id = self.id + 1;
        let hash = audit_hash(&self.hash, id, at, &e.actor, &e.event, &e.object, &e.detail);
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
            id: r.try_get(0)?,
            hash: r.try_get(1)?,
        },
        None => Head {
            id: 0,
            hash: vec![0; 32],
        },
    };
    Ok((tx, head))
}

async fn commit_group(pool: &Pool, jobs: &[Job]) -> Result<Vec<Result<Done>>> {
    let issuance_only = jobs.iter().all(|j| {
        j.op.parts()
            .iter()
            .all(|op| matches!(op, Op::Reserve(_) | Op::Complete { .. }))
    });
    if jobs.iter().map(|j| j.op.parts().len()).sum::<usize>() > 1
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
    cas: Vec<String>,
    usccs: Vec<Option<String>>,
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
    fn audit(&mut self, head: &mut Head, at: i64, e: AuditRecord) {
        let next = head.next(at, &e);
        self.audit_ids.push(next.id);
        self.actors.push(e.actor);
        self.events.push(e.event);
        self.objects.push(e.object);
        self.details.push(e.detail);
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
    for op in jobs.iter().flat_map(|j| j.op.parts()) {
        let Some(entry) = op.audit(&Applied::Nothing) else {
            return Ok(None);
        };
        match op {
            Op::Reserve(i) => {
                cols.serials.push(i.serial.hex());
                cols.profiles.push(i.profile.clone());
                cols.tenants.push(i.tenant.clone());
                cols.subjects.push(i.subject.clone());
                cols.sans.push(list_json(&i.sans)?);
                cols.not_befores.push(i.not_before);
                cols.not_afters.push(i.not_after);
                cols.issuers.push(i.issuer.as_str().into());
                cols.cas.push(i.ca.as_str().into());
                cols.usccs.push(i.uscc());
            }
            Op::Complete { serial, der, .. } => {
                cols.completed.push(serial.clone());
                cols.ders.push(der.clone());
            }
            _ => return Ok(None),
        }
        cols.audit(&mut head, at, entry);
    }
    // Three statements pipelined (prepared, so sent in this order); an empty array writes
    // nothing. If the first fails, the others fail too and the group is redone one by one.
    let insert = tx
        .prepare_cached(
            "INSERT INTO certificates (serial, status, profile, tenant, subject, sans, not_before, not_after, created_at, issuer, ca, uscc)
             SELECT s, 'pending', p, t, sub, sa, nb, na, $8, iss, ca, us
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $9::text[], $10::text[], $11::text[])
                  AS u(s, p, t, sub, sa, nb, na, iss, ca, us)",
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
        &cols.cas,
        &cols.usccs,
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
        next_number(&tx, "auth", 1).await?;
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

/// Advances a durable counter (CRL numbers per CA, time-stamp serials, the auth generation)
/// by `by`.
pub(super) async fn next_number(tx: &Transaction<'_>, name: &str, by: u32) -> Result<u64> {
    let by = i64::from(by);
    let rows = query(
        tx,
        "INSERT INTO crl_numbers (ca, last) VALUES ($1, $2)
         ON CONFLICT (ca) DO UPDATE SET last = crl_numbers.last + $2 RETURNING last",
        &[&name, &by],
    )
    .await?;
    let n: i64 = match rows.first() {
        Some(r) => r.try_get(0)?,
        None => return Err(Error::Internal(format!("counter {name} not advanced"))),
    };
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("counter {name}: {n} is negative")))
}

async fn append_audit(
    tx: &Transaction<'_>,
    head: &mut Head,
    at: i64,
    e: &AuditRecord,
) -> Result<()> {
    let next = head.next(at, e);
    exec(
        tx,
        "INSERT INTO audit_log (id, at, actor, event, object, detail, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &next.id, &at, &e.actor, &e.event, &e.object, &e.detail, &head.hash, &next.hash,
        ],
    )
    .await?;
    *head = next;
    Ok(())
}

/// Applies one op with its audit entry, extending `head`.
async fn apply(tx: &Transaction<'_>, op: &Op, head: &mut Head) -> Result<Done> {
    let at = now();
    match op {
        Op::Together(ops) => {
            let mut done = Done::Nothing;
            for op in ops {
                done = Box::pin(apply(tx, op, head)).await?;
            }
            Ok(done)
        }
        // The issuance path: the row and its audit entry in one statement (one round trip).
        Op::Reserve(i) => {
            let entry = audit_of(op, &Applied::Nothing)?;
            let next = head.next(at, &entry);
            let inserted = exec_raw(
                tx,
                "WITH c AS (INSERT INTO certificates (serial, status, profile, tenant, subject, sans, not_before, not_after, created_at, issuer, ca, uscc)
                            VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $15, $16, $17) RETURNING 1)
                 INSERT INTO audit_log (id, at, actor, event, object, detail, prev_hash, hash)
                 SELECT $9, $8, $10, $11, $1, $12, $13, $14 FROM c",
                &[&i.serial.hex(), &i.profile, &i.tenant, &i.subject, &list_json(&i.sans)?, &i.not_before, &i.not_after, &at,
                  &next.id, &entry.actor, &entry.event, &entry.detail, &head.hash, &next.hash, &i.issuer.as_str(), &i.ca.as_str(), &i.uscc()],
            )
            .await;
            unique(inserted, || {
                Error::Storage(format!("serial {} already used", i.serial))
            })?;
            *head = next;
            Ok(Done::Nothing)
        }
        Op::Complete { serial, der, .. } => {
            let entry = audit_of(op, &Applied::Nothing)?;
            let next = head.next(at, &entry);
            let n = exec(
                tx,
                "WITH c AS (UPDATE certificates SET status = 'issued', der = $2, issued_at = $3
                            WHERE serial = $1 AND status = 'pending' RETURNING 1)
                 INSERT INTO audit_log (id, at, actor, event, object, detail, prev_hash, hash)
                 SELECT $4, $3, $5, $6, $1, $7, $8, $9 FROM c",
                &[
                    serial,
                    der,
                    &at,
                    &next.id,
                    &entry.actor,
                    &entry.event,
                    &entry.detail,
                    &head.hash,
                    &next.hash,
                ],
            )
            .await?;
            if n != 1 {
                return Err(Error::Internal(format!("serial {serial} was not pending")));
            }
            *head = next;
            Ok(Done::Nothing)
        }
        _ => {
            let applied = rows(tx, op, at).await?;
            if let Some(entry) = op.audit(&applied) {
                append_audit(tx, head, at, &entry).await?;
            }
            Ok(applied.into())
        }
    }
}

fn audit_of(op: &Op, applied: &Applied) -> Result<AuditRecord> {
    op.audit(applied)
        .ok_or_else(|| Error::Internal("an issuance op without an audit entry".into()))
}

fn found(n: u64, what: impl FnOnce() -> String) -> Result<Applied> {
    if n == 0 {
        return Err(Error::NotFound(what()));
    }
    Ok(Applied::Nothing)
}

/// An op's rows (every op but the two of the issuance path).
async fn rows(tx: &Transaction<'_>, op: &Op, at: i64) -> Result<Applied> {
    Ok(match op {
        Op::Reserve(_) | Op::Complete { .. } | Op::Together(_) => {
            return Err(Error::Internal("issuance ops are applied with their audit entry".into()));
        }
        Op::Abandon { serial, .. } => {
            exec(
                tx,
                "UPDATE certificates SET status = 'abandoned' WHERE serial = $1 AND status = 'pending'",
                &[serial],
            )
            .await?;
            Applied::Nothing
        }
        Op::AddCredential { cred, .. } => {
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
            Applied::Nothing
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
            let row = match rows.first() {
                Some(row) => Some((row.try_get::<_, String>(0)?, row.try_get::<_, Option<i64>>(1)?)),
                None => None,
            };
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
            Applied::Nothing
        }
        Op::NextCrlNumber { ca } => Applied::Number(next_number(tx, ca, 1).await?),
        Op::TimestampBlock { size } => {
            let last = next_number(tx, "tsa", *size).await?;
            Applied::Range(last - u64::from(*size) + 1, last)
        }
        Op::AddPlatform { p, .. } => {
            let max_days = p.max_days.map(i64::from);
            let rate = p.rate_per_min.map(i64::from);
            let (dns, ips, profiles) = (
                list_json(&p.dns_suffixes)?,
                list_json(&p.ip_ranges)?,
                list_json(&p.profiles)?,
            );
            let (orgs, usccs, names) = (
                list_json(&p.organizations)?,
                list_json(&p.usccs)?,
                list_json(&p.names)?,
            );
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
            Applied::Nothing
        }
        Op::PlatformDisabled { name, disabled, .. } => found(
            exec(
                tx,
                "UPDATE platforms SET disabled = $2 WHERE name = $1",
                &[name, disabled],
            )
            .await?,
            || format!("platform {name:?}"),
        )?,
        Op::PlatformSubjects {
            name,
            organizations,
            usccs,
            names,
            ..
        } => found(
            exec(
                tx,
                "UPDATE platforms SET organizations = $2, usccs = $3, names = $4 WHERE name = $1",
                &[
                    name,
                    &list_json(organizations)?,
                    &list_json(usccs)?,
                    &list_json(names)?,
                ],
            )
            .await?,
            || format!("platform {name:?}"),
        )?,
        Op::DisableCredential { cert_sha256, .. } => Applied::Count(
            exec(
                tx,
                "UPDATE credentials SET disabled = TRUE WHERE cert_sha256 = $1 AND disabled = FALSE",
                &[cert_sha256],
            )
            .await?,
        ),
        Op::DisableCredentials { tenant, keep, .. } => Applied::Count(
            exec(
                tx,
                "UPDATE credentials SET disabled = TRUE
                 WHERE tenant = $1 AND serial != $2 AND NOT disabled",
                &[tenant, keep],
            )
            .await?,
        ),
        Op::Event { .. } => Applied::Nothing,
        Op::AddStats { from, rollup } => {
            let rows = tx.query(vocab::STATS_MARKS_SQL, &[]).await?;
            let marks = rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_>>()?;
            vocab::stats_moved(vocab::stats_marks(marks), *from)?;
            for (k, n) in &rollup.issued {
                let (uscc, n) = (k.uscc as i64, *n as i64);
                exec(tx, vocab::STATS_ADD_ISSUED_SQL, &[&k.day, &k.tenant, &k.profile, &k.ca, &uscc, &k.validity, &k.expiry, &k.renewal.as_str(), &n]).await?;
            }
            for (k, n) in &rollup.revoked {
                let n = *n as i64;
                exec(tx, vocab::STATS_ADD_REVOKED_SQL, &[&k.day, &k.tenant, &k.profile, &k.ca, &k.reason, &k.expiry, &n]).await?;
            }
            for (name, value) in vocab::stats_mark_rows(rollup.to) {
                exec(tx, vocab::STATS_SET_MARK_SQL, &[&name, &value]).await?;
            }
            Applied::Nothing
        }
        Op::AcmePut {
            object: o,
            replaces,
            ..
        } => {
            let kind = o.kind.as_str();
            let n = match replaces {
                None => unique(
                    exec_raw(
                        tx,
                        "INSERT INTO acme_objects (kind, id, owner, status, expires, lookup, version, doc)
                         VALUES ($1, $2, $3, $4, $5, $6, 1, $7)",
                        &[&kind, &o.id, &o.owner, &o.status, &o.expires, &o.lookup, &o.doc],
                    )
                    .await,
                    || vocab::acme_conflict(o),
                )?,
                Some(v) => unique(
                    exec_raw(
                        tx,
                        "UPDATE acme_objects SET owner = $3, status = $4, expires = $5, lookup = $6, version = $7 + 1, doc = $8
                         WHERE kind = $1 AND id = $2 AND version = $7",
                        &[&kind, &o.id, &o.owner, &o.status, &o.expires, &o.lookup, v, &o.doc],
                    )
                    .await,
                    || vocab::acme_conflict(o),
                )?,
            };
            if n == 0 {
                return Err(vocab::acme_conflict(o));
            }
            Applied::Nothing
        }
        Op::AcmePurge { before } => Applied::Count(
            exec(
                tx,
                "DELETE FROM acme_objects WHERE kind IN ('order', 'authz') AND expires > 0 AND expires < $1",
                &[before],
            )
            .await?,
        ),
        Op::CountEvents(events) => {
            for (k, n, total_ms) in events {
                let n = *n as i64;
                exec(tx, vocab::STATS_ADD_EVENTS_SQL, &[&k.day, &k.tenant, &k.kind, &k.label, &n, total_ms]).await?;
            }
            Applied::Nothing
        }
        Op::AddCheckpoint(c) => {
            exec(
                tx,
                "INSERT INTO audit_checkpoints (upto_id, head_hash, at, signature) VALUES ($1, $2, $3, $4)",
                &[&c.upto_id, &c.head_hash, &c.at, &c.signature],
            )
            .await?;
            Applied::Nothing
        }
        Op::AddIssuer { record, .. } => {
            let n = exec(
                tx,
                "INSERT INTO issuers (name, algorithm, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&record.name, &record.algorithm.as_str(), &at],
            )
            .await?;
            if n > 0 {
                for c in &record.certs {
                    insert_issuer_cert(tx, &record.name, c, at).await?;
                }
            }
            Applied::Count(n)
        }
        Op::AddIssuerCerts {
            issuer,
            certs,
            replaces,
            ..
        } => {
            let mut retiring: Vec<String> = Vec::new();
            for role in vocab::replaced_roles(certs) {
                let rows = query(
                    tx,
                    "UPDATE issuer_certificates SET state = 'retiring'
                     WHERE issuer = $1 AND role = $2 AND state = 'active' RETURNING ca_id",
                    &[issuer, &role.as_str()],
                )
                .await?;
                for r in rows {
                    retiring.push(r.try_get(0)?);
                }
            }
            vocab::check_replaced(issuer, &retiring, replaces)?;
            for c in certs {
                insert_issuer_cert(tx, issuer, c, at).await?;
            }
            Applied::Serials(retiring)
        }
        Op::SetCaState {
            issuer,
            ca_id,
            from,
            to,
            ..
        } => found(
            exec(
                tx,
                "UPDATE issuer_certificates SET state = $4 WHERE issuer = $1 AND ca_id = $2 AND state = $3",
                &[issuer, &ca_id.as_str(), &from.as_str(), &to.as_str()],
            )
            .await?,
            || format!("{} CA certificate {ca_id} of issuer {issuer:?}", from.as_str()),
        )?,
        Op::AddPeer { peer, .. } => {
            let inserted = exec_raw(
                tx,
                "INSERT INTO peers (name, ca_cert, subject, status, added_at) VALUES ($1, $2, $3, $4, $5)",
                &[&peer.name, &peer.ca_cert, &peer.subject, &peer.status.as_str(), &at],
            )
            .await;
            unique(inserted, || {
                Error::Conflict(format!("peer {:?} already exists", peer.name))
            })?;
            Applied::Nothing
        }
        Op::PeerStatus { name, status, .. } => found(
            exec(
                tx,
                "UPDATE peers SET status = $2 WHERE name = $1",
                &[name, &status.as_str()],
            )
            .await?,
            || format!("peer {name:?}"),
        )?,
        Op::PairCertificates {
            signing,
            encryption,
            escrow_id,
            ..
        } => {
            exec(
                tx,
                "INSERT INTO certificate_pairs (signing_serial, encryption_serial, escrow_id, created_at)
                 VALUES ($1, $2, $3, $4)",
                &[signing, encryption, escrow_id, &at],
            )
            .await?;
            Applied::Nothing
        }
        Op::RemovePeer { name, .. } => {
            found(
                exec(tx, "DELETE FROM peers WHERE name = $1", &[name]).await?,
                || format!("peer {name:?}"),
            )?;
            let rows = query(
                tx,
                "UPDATE cross_certificates SET revoked_at = $2, revocation_reason = 5
                 WHERE peer = $1 AND direction = 'issued' AND status = 'issued' AND revoked_at IS NULL
                 RETURNING serial",
                &[name, &at],
            )
            .await?;
            let serials = rows
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
            Applied::Serials(serials)
        }
        Op::AddCross { record, .. } | Op::ReserveCross { record, .. } => {
            let (status, der) = match op {
                Op::ReserveCross { .. } => ("pending", &[][..]),
                _ => ("issued", record.der.as_slice()),
            };
            let inserted = exec_raw(
                tx,
                "INSERT INTO cross_certificates (serial, peer, direction, der, not_after, created_at, status, ca)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&record.serial, &record.peer, &record.direction.as_str(), &der, &record.not_after, &at, &status, &record.ca.as_str()],
            )
            .await;
            unique(inserted, || {
                Error::Storage(format!(
                    "cross-certificate serial {} already used",
                    record.serial
                ))
            })?;
            Applied::Nothing
        }
        Op::CompleteCross { serial, der, .. } => {
            let n = exec(
                tx,
                "UPDATE cross_certificates SET status = 'issued', der = $2
                 WHERE serial = $1 AND direction = 'issued' AND status = 'pending'",
                &[serial, der],
            )
            .await?;
            if n != 1 {
                return Err(Error::Internal(format!(
                    "cross-certificate {serial} was not pending"
                )));
            }
            Applied::Nothing
        }
        Op::AbandonCross { serial, .. } => {
            exec(
                tx,
                "UPDATE cross_certificates SET status = 'abandoned'
                 WHERE serial = $1 AND direction = 'issued' AND status = 'pending'",
                &[serial],
            )
            .await?;
            Applied::Nothing
        }
    })
}

async fn insert_issuer_cert(
    tx: &Transaction<'_>,
    issuer: &str,
    c: &crate::store::IssuerCert,
    at: i64,
) -> Result<()> {
    let inserted = exec_raw(
        tx,
        "INSERT INTO issuer_certificates (sha256, issuer, role, state, der, subject, serial, not_after, added_at, ca_id, key_ref, parent, wrapped_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[&c.sha256, &issuer, &c.role.as_str(), &c.state.as_str(), &c.der, &c.subject, &c.serial, &c.not_after, &at, &c.ca_id.as_str(), &c.key_ref, &c.parent.as_str(), &c.wrapped_key.as_ref().map(|k| k.0.as_slice())],
    )
    .await;
    unique(inserted, || {
        Error::Conflict(format!("CA certificate {} already recorded", c.ca_id))
    })?;
    Ok(())
}
