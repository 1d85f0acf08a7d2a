//! The SQLite writer: one thread owns the write connection and commits in groups (requests
//! that arrive while a commit is in flight share the next transaction and its fsync), each
//! job inside its own savepoint so one failure does not undo the others. It runs each op's
//! SQL; what the op records in the audit log comes from `store::vocab`.
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::store::vocab::{self, Applied, AuditRecord, list_json};
use crate::store::write::{Alive, Job, check_revocable, deliver, group, observe_group};
use crate::store::{Done, Op, audit_hash};

use super::hot;

/// Statements from the connection's cache of prepared statements: the writer runs the same
/// few for every issuance, so each is parsed once, not per call.
pub(super) trait Cached {
    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize>;
    fn row<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Cached for Connection {
    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    fn row<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(p, f)
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Serves the queue until it closes; `alive` marks the writer stopped when this returns or
/// panics.
pub(super) fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    mut last_hash: Vec<u8>,
    auth_generation: Arc<AtomicU64>,
    alive: Alive,
) {
    let _alive = alive;
    while let Some(first) = rx.blocking_recv() {
        let jobs = group(first, &mut rx);
        let started = std::time::Instant::now();
        let mut results = Vec::with_capacity(jobs.len());
        let committed = (|| -> Result<Vec<u8>> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut hash = last_hash.clone();
            for job in &jobs {
                tx.exec("SAVEPOINT job", [])?;
                match apply(&tx, &job.op, &hash) {
                    Ok((new_hash, done)) => {
                        tx.exec("RELEASE job", [])?;
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
        observe_group("sqlite", started, rx.len());
        deliver(jobs, outcome, &auth_generation);
    }
}

/// Applies one op (audit entry included) and returns the new audit chain head.
fn apply(tx: &Connection, op: &Op, prev: &[u8]) -> Result<(Vec<u8>, Done)> {
    if let Op::Together(ops) = op {
        let (mut hash, mut done) = (prev.to_vec(), Done::Nothing);
        for op in ops {
            (hash, done) = apply(tx, op, &hash)?;
        }
        return Ok((hash, done));
    }
    let at = now();
    let applied = rows(tx, op, at)?;
    let hash = match op.audit(&applied) {
        Some(entry) => append_audit(tx, prev, at, &entry)?,
        None => prev.to_vec(),
    };
    Ok((hash, applied.into()))
}

/// A unique-key violation as `conflict`, any other error as it is.
fn unique(e: rusqlite::Error, conflict: impl FnOnce() -> Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            conflict()
        }
        e => e.into(),
    }
}

fn found(n: usize, what: impl FnOnce() -> String) -> Result<Applied> {
    if n == 0 {
        return Err(Error::NotFound(what()));
    }
    Ok(Applied::Nothing)
}

/// An op's rows.
fn rows(tx: &Connection, op: &Op, at: i64) -> Result<Applied> {
    Ok(match op {
        Op::Reserve(i) => {
            tx.exec(
                hot::RESERVE,
                params![i.serial.hex(), i.profile, i.tenant, i.subject, list_json(&i.sans)?, i.not_before, i.not_after, at, i.issuer.as_str(), i.ca.as_str(), i.uscc()],
            )
            .map_err(|e| unique(e, || Error::Storage(format!("serial {} already used", i.serial))))?;
            Applied::Nothing
        }
        Op::Complete { serial, der, .. } => {
            let n = tx.exec(
                hot::COMPLETE,
                params![serial, der, at],
            )?;
            if n != 1 {
                return Err(Error::Internal(format!("serial {serial} was not pending")));
            }
            Applied::Nothing
        }
        Op::Abandon { serial, .. } => {
            tx.exec(
                "UPDATE certificates SET status = 'abandoned' WHERE serial = ?1 AND status = 'pending'",
                params![serial],
            )?;
            Applied::Nothing
        }
        Op::AddCredential { cred, .. } => {
            tx.exec(
                "INSERT INTO credentials (serial, role, tenant, disabled, cert_sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![cred.serial, cred.role.as_str(), cred.tenant, cred.disabled, cred.cert_sha256],
            )?;
            Applied::Nothing
        }
        Op::Revoke(r) => {
            let serial = r.serial.hex();
            let row: Option<(String, Option<i64>)> = tx
                .row(
                    hot::REVOCABLE,
                    [&serial],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            check_revocable(&serial, row, r.tenant.as_deref())?;
            tx.exec(
                hot::REVOKE,
                params![serial, at, r.reason as i64, r.invalidity_date],
            )?;
            Applied::Nothing
        }
        Op::NextCrlNumber { ca } => Applied::Number(next_number(tx, ca, 1)?),
        Op::TimestampBlock { size } => {
            let last = next_number(tx, "tsa", *size)?;
            Applied::Range(last - u64::from(*size) + 1, last)
        }
        Op::AddPlatform { p, .. } => {
            tx.exec(
                "INSERT INTO platforms (name, dns_suffixes, ip_ranges, profiles, max_days, rate_per_min, disabled, created_at, organizations, usccs, names)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, ?10)",
                params![p.name, list_json(&p.dns_suffixes)?, list_json(&p.ip_ranges)?, list_json(&p.profiles)?, p.max_days, p.rate_per_min, at,
                        list_json(&p.organizations)?, list_json(&p.usccs)?, list_json(&p.names)?],
            )
            .map_err(|e| unique(e, || Error::Conflict(format!("platform {:?} already exists", p.name))))?;
            Applied::Nothing
        }
        Op::PlatformDisabled { name, disabled, .. } => found(
            tx.exec(
                "UPDATE platforms SET disabled = ?2 WHERE name = ?1",
                params![name, disabled],
            )?,
            || format!("platform {name:?}"),
        )?,
        Op::PlatformSubjects {
            name,
            organizations,
            usccs,
            names,
            ..
        } => found(
            tx.exec(
                "UPDATE platforms SET organizations = ?2, usccs = ?3, names = ?4 WHERE name = ?1",
                params![
                    name,
                    list_json(organizations)?,
                    list_json(usccs)?,
                    list_json(names)?
                ],
            )?,
            || format!("platform {name:?}"),
        )?,
        Op::DisableCredential { cert_sha256, .. } => Applied::Count(tx.exec(
            "UPDATE credentials SET disabled = 1 WHERE cert_sha256 = ?1 AND disabled = 0",
            params![cert_sha256],
        )? as u64),
        Op::DisableCredentials { tenant, keep, .. } => Applied::Count(tx.exec(
            "UPDATE credentials SET disabled = 1 WHERE tenant = ?1 AND serial != ?2 AND disabled = 0",
            params![tenant, keep],
        )? as u64),
        Op::Event { .. } => Applied::Nothing,
        Op::AddStats { from, rollup } => {
            let marks = {
                let mut stmt = tx.prepare_cached(vocab::STATS_MARKS_SQL)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                vocab::stats_marks(rows)
            };
            vocab::stats_moved(marks, *from)?;
            let mut add = tx.prepare_cached(vocab::STATS_ADD_ISSUED_SQL)?;
            for (k, n) in &rollup.issued {
                add.execute(params![k.day, k.tenant, k.profile, k.ca, k.uscc as i64, k.validity, k.expiry, k.renewal.as_str(), *n as i64])?;
            }
            let mut add = tx.prepare_cached(vocab::STATS_ADD_REVOKED_SQL)?;
            for (k, n) in &rollup.revoked {
                add.execute(params![k.day, k.tenant, k.profile, k.ca, k.reason, k.expiry, *n as i64])?;
            }
            let mut set = tx.prepare_cached(vocab::STATS_SET_MARK_SQL)?;
            for (name, value) in vocab::stats_mark_rows(rollup.to) {
                set.execute(params![name, value])?;
            }
            Applied::Nothing
        }
        Op::AcmePut {
            object: o,
            replaces,
            ..
        } => {
            let n = match replaces {
                None => tx
                    .exec(
                        "INSERT INTO acme_objects (kind, id, owner, status, expires, lookup, version, doc)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)",
                        params![o.kind.as_str(), o.id, o.owner, o.status, o.expires, o.lookup, o.doc],
                    )
                    .map_err(|e| unique(e, || vocab::acme_conflict(o)))?,
                Some(v) => tx.exec(
                    "UPDATE acme_objects SET owner = ?3, status = ?4, expires = ?5, lookup = ?6, version = ?7 + 1, doc = ?8
                     WHERE kind = ?1 AND id = ?2 AND version = ?7",
                    params![o.kind.as_str(), o.id, o.owner, o.status, o.expires, o.lookup, v, o.doc],
                )
                .map_err(|e| unique(e, || vocab::acme_conflict(o)))?,
            };
            if n == 0 {
                return Err(vocab::acme_conflict(o));
            }
            Applied::Nothing
        }
        Op::AcmePurge { before } => Applied::Count(tx.exec(
            "DELETE FROM acme_objects WHERE kind IN ('order', 'authz') AND expires > 0 AND expires < ?1",
            params![before],
        )? as u64),
        Op::Together(_) => {
            return Err(Error::Internal("ops together are applied one by one".into()));
        }
        Op::CountEvents(events) => {
            let mut add = tx.prepare_cached(vocab::STATS_ADD_EVENTS_SQL)?;
            for (k, n, total_ms) in events {
                add.execute(params![k.day, k.tenant, k.kind, k.label, *n as i64, total_ms])?;
            }
            Applied::Nothing
        }
        Op::AddCheckpoint(c) => {
            tx.exec(
                "INSERT INTO audit_checkpoints (upto_id, head_hash, at, signature) VALUES (?1, ?2, ?3, ?4)",
                params![c.upto_id, c.head_hash, c.at, c.signature],
            )?;
            Applied::Nothing
        }
        Op::AddIssuer { record, .. } => {
            let n = tx.exec(
                "INSERT INTO issuers (name, algorithm, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO NOTHING",
                params![record.name, record.algorithm.as_str(), at],
            )?;
            if n > 0 {
                for c in &record.certs {
                    insert_issuer_cert(tx, &record.name, c, at)?;
                }
            }
            Applied::Count(n as u64)
        }
        Op::AddIssuerCerts {
            issuer,
            certs,
            replaces,
            ..
        } => {
            let mut retiring = Vec::new();
            for role in vocab::replaced_roles(certs) {
                let mut stmt = tx.prepare_cached(
                    "UPDATE issuer_certificates SET state = 'retiring'
                     WHERE issuer = ?1 AND role = ?2 AND state = 'active' RETURNING ca_id",
                )?;
                let ids = stmt
                    .query_map(params![issuer, role.as_str()], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                retiring.extend(ids);
            }
            vocab::check_replaced(issuer, &retiring, replaces)?;
            for c in certs {
                insert_issuer_cert(tx, issuer, c, at)?;
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
            tx.exec(
                "UPDATE issuer_certificates SET state = ?4 WHERE issuer = ?1 AND ca_id = ?2 AND state = ?3",
                params![issuer, ca_id.as_str(), from.as_str(), to.as_str()],
            )?,
            || format!("{} CA certificate {ca_id} of issuer {issuer:?}", from.as_str()),
        )?,
        Op::AddPeer { peer, .. } => {
            tx.exec(
                "INSERT INTO peers (name, ca_cert, subject, status, added_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![peer.name, peer.ca_cert, peer.subject, peer.status.as_str(), at],
            )
            .map_err(|e| unique(e, || Error::Conflict(format!("peer {:?} already exists", peer.name))))?;
            Applied::Nothing
        }
        Op::PeerStatus { name, status, .. } => found(
            tx.exec(
                "UPDATE peers SET status = ?2 WHERE name = ?1",
                params![name, status.as_str()],
            )?,
            || format!("peer {name:?}"),
        )?,
        Op::PairCertificates {
            signing,
            encryption,
            escrow_id,
            ..
        } => {
            tx.exec(
                "INSERT INTO certificate_pairs (signing_serial, encryption_serial, escrow_id, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![signing, encryption, escrow_id, at],
            )?;
            Applied::Nothing
        }
        Op::RemovePeer { name, .. } => {
            found(
                tx.exec("DELETE FROM peers WHERE name = ?1", params![name])?,
                || format!("peer {name:?}"),
            )?;
            let mut stmt = tx.prepare(
                "UPDATE cross_certificates SET revoked_at = ?2, revocation_reason = 5
                 WHERE peer = ?1 AND direction = 'issued' AND status = 'issued' AND revoked_at IS NULL
                 RETURNING serial",
            )?;
            let serials = stmt
                .query_map(params![name, at], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Applied::Serials(serials)
        }
        Op::AddCross { record, .. } | Op::ReserveCross { record, .. } => {
            let (status, der) = match op {
                Op::ReserveCross { .. } => ("pending", &[][..]),
                _ => ("issued", record.der.as_slice()),
            };
            tx.exec(
                "INSERT INTO cross_certificates (serial, peer, direction, der, not_after, created_at, status, ca)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![record.serial, record.peer, record.direction.as_str(), der, record.not_after, at, status, record.ca.as_str()],
            )
            .map_err(|e| unique(e, || Error::Storage(format!("cross-certificate serial {} already used", record.serial))))?;
            Applied::Nothing
        }
        Op::CompleteCross { serial, der, .. } => {
            let n = tx.exec(
                "UPDATE cross_certificates SET status = 'issued', der = ?2
                 WHERE serial = ?1 AND direction = 'issued' AND status = 'pending'",
                params![serial, der],
            )?;
            if n != 1 {
                return Err(Error::Internal(format!(
                    "cross-certificate {serial} was not pending"
                )));
            }
            Applied::Nothing
        }
        Op::AbandonCross { serial, .. } => {
            tx.exec(
                "UPDATE cross_certificates SET status = 'abandoned'
                 WHERE serial = ?1 AND direction = 'issued' AND status = 'pending'",
                params![serial],
            )?;
            Applied::Nothing
        }
    })
}

/// Advances a durable counter (CRL numbers per CA, time-stamp serials) by `by`.
fn next_number(tx: &Connection, name: &str, by: u32) -> Result<u64> {
    let n: i64 = tx.row(
        "INSERT INTO crl_numbers (ca, last) VALUES (?1, ?2)
         ON CONFLICT (ca) DO UPDATE SET last = last + ?2 RETURNING last",
        params![name, i64::from(by)],
        |row| row.get(0),
    )?;
    u64::try_from(n).map_err(|_| Error::Corrupt(format!("counter {name}: {n} is negative")))
}

fn append_audit(tx: &Connection, prev: &[u8], at: i64, e: &AuditRecord) -> Result<Vec<u8>> {
    let id: i64 = tx.row(hot::AUDIT_NEXT_ID, [], |r| r.get(0))?;
    let hash = audit_hash(prev, id, at, &e.actor, &e.event, &e.object, &e.detail);
    tx.exec(
        hot::AUDIT_APPEND,
        params![id, at, e.actor, e.event, e.object, e.detail, prev, hash],
    )?;
    Ok(hash)
}

fn insert_issuer_cert(
    tx: &Connection,
    issuer: &str,
    c: &crate::store::IssuerCert,
    at: i64,
) -> Result<()> {
    tx.exec(
        "INSERT INTO issuer_certificates (sha256, issuer, role, state, der, subject, serial, not_after, added_at, ca_id, key_ref, parent, wrapped_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![c.sha256, issuer, c.role.as_str(), c.state.as_str(), c.der, c.subject, c.serial, c.not_after, at, c.ca_id.as_str(), c.key_ref, c.parent.as_str(), c.wrapped_key.as_ref().map(|k| k.0.as_slice())],
    )
    .map_err(|e| unique(e, || Error::Conflict(format!("CA certificate {} already recorded", c.ca_id))))?;
    Ok(())
}
