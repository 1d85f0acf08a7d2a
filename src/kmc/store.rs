//! The KMC's own store (`kmc.db`, SQLite, apart from the CA's): its clients, the escrowed
//! keys (sealed), recoveries with their approvals, and a hash-chained audit log with signed
//! checkpoints. Every change appends its audit entry in the same transaction.
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::core::audit::{AuditEntry, Checkpoint, audit_hash};
use crate::error::{Error, Result};
use crate::kmc::vault::Sealed;

const SCHEMA: &str = "
CREATE TABLE clients (
    cert_sha256 TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('ca', 'officer')),
    name        TEXT NOT NULL,
    cert_der    BLOB NOT NULL,
    added_at    INTEGER NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE escrows (
    id               TEXT PRIMARY KEY,
    algorithm        TEXT NOT NULL,
    spki             BLOB NOT NULL,
    data_key         BLOB NOT NULL,
    sealed           BLOB NOT NULL,
    recipient_sha256 TEXT NOT NULL,
    serial           TEXT UNIQUE,
    cert_der         BLOB,
    subject          TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL
);
CREATE TABLE recoveries (
    id             TEXT PRIMARY KEY,
    escrow_id      TEXT NOT NULL REFERENCES escrows(id),
    reason         TEXT NOT NULL,
    case_reference TEXT NOT NULL,
    recipient_der  BLOB NOT NULL,
    requester      TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    released_at    INTEGER,
    refused_by     TEXT
);
CREATE TABLE approvals (
    recovery_id TEXT NOT NULL REFERENCES recoveries(id),
    officer     TEXT NOT NULL,
    name        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (recovery_id, officer)
);
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    event     TEXT NOT NULL,
    object    TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);
CREATE TABLE checkpoints (
    id        INTEGER PRIMARY KEY,
    upto_id   INTEGER NOT NULL,
    head_hash BLOB NOT NULL,
    at        INTEGER NOT NULL,
    signature BLOB NOT NULL
);
";

/// Who may call the KMC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmcRole {
    /// A CA instance: generates and binds keys, relays recoveries for its admins.
    Ca,
    /// A recovery officer: approves recoveries.
    Officer,
}

impl KmcRole {
    pub fn as_str(self) -> &'static str {
        match self {
            KmcRole::Ca => "ca",
            KmcRole::Officer => "officer",
        }
    }

    /// Who holds the role, for refusals.
    pub fn holders(self) -> &'static str {
        match self {
            KmcRole::Ca => "CA instances",
            KmcRole::Officer => "recovery officers",
        }
    }
}

/// A registered client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRow {
    pub sha256: String,
    pub role: KmcRole,
    pub name: String,
    pub disabled: bool,
}

/// An escrowed key as stored.
#[derive(Clone, Debug)]
pub struct EscrowRow {
    pub id: String,
    pub algorithm: String,
    pub spki: Vec<u8>,
    pub sealed: Sealed,
    pub recipient_sha256: String,
    pub serial: Option<String>,
    pub subject: String,
    pub created_at: i64,
}

/// A recovery request as stored, with its approvals (officer names).
#[derive(Clone, Debug)]
pub struct RecoveryRow {
    pub id: String,
    pub escrow_id: String,
    pub serial: String,
    pub reason: String,
    pub case_reference: String,
    pub recipient_der: Vec<u8>,
    pub requester: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub released_at: Option<i64>,
    /// The officer who refused it (then nothing is ever released).
    pub refused_by: Option<String>,
    pub approvals: Vec<String>,
}

/// What one change writes into the audit log.
#[derive(Clone, Debug)]
pub struct Event<'a> {
    pub actor: &'a str,
    pub event: &'a str,
    pub object: &'a str,
    pub detail: String,
}

/// The KMC's database.
pub struct KmcStore {
    conn: Mutex<Connection>,
    /// Signs a checkpoint over the head in the same transaction as every change, so the log is
    /// vouched for entry by entry at the cost of no extra commit.
    checkpoints: Option<CheckpointSigner>,
}

impl std::fmt::Debug for KmcStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KmcStore")
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Appends an entry; returns the new head (id, hash).
fn append(tx: &Transaction<'_>, e: &Event<'_>) -> Result<(i64, Vec<u8>)> {
    let head: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (prev_id, prev_hash) = head.unwrap_or((0, vec![0u8; 32]));
    let (id, at) = (prev_id + 1, now());
    let hash = audit_hash(&prev_hash, id, at, e.actor, e.event, e.object, &e.detail);
    tx.execute(
        "INSERT INTO audit_log (id, at, actor, event, object, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id, at, e.actor, e.event, e.object, e.detail, prev_hash, hash
        ],
    )?;
    Ok((id, hash.to_vec()))
}

/// Signs a checkpoint message (the KMC's credential CA key).
pub type CheckpointSigner = Box<dyn Fn(&[u8]) -> Result<Vec<u8>> + Send + Sync>;

impl KmcStore {
    /// Opens (creating) the database: WAL, synchronous=FULL (an acknowledged escrow is durable).
    pub fn open(path: &Path) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        // Private like the keys; SQLite gives its -wal and -shm files the database's mode.
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::io(path, e))?;
        }
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version == 0 {
            conn.execute_batch(&format!("BEGIN; {SCHEMA} PRAGMA user_version = 1; COMMIT;"))?;
        } else if version != 1 {
            return Err(Error::Config(format!(
                "{}: KMC schema version {version} is newer than this ecca",
                path.display()
            )));
        }
        Ok(KmcStore {
            conn: Mutex::new(conn),
            checkpoints: None,
        })
    }

    /// Signs a checkpoint with every change from now on.
    pub fn with_checkpoints(self, sign: CheckpointSigner) -> Self {
        KmcStore {
            checkpoints: Some(sign),
            ..self
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| Error::Internal("KMC store lock poisoned".into()))?;
        f(&mut conn)
    }

    /// Runs `f` and appends `event` in one transaction.
    fn change<T>(
        &self,
        event: &Event<'_>,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            let (id, hash) = append(&tx, event)?;
            if let Some(sign) = &self.checkpoints {
                let signature = sign(&crate::core::audit::checkpoint_message(id, &hash))?;
                tx.execute(
                    "INSERT INTO checkpoints (upto_id, head_hash, at, signature) VALUES (?1, ?2, ?3, ?4)",
                    params![id, hash, now(), signature],
                )?;
            }
            tx.commit()?;
            Ok(out)
        })
    }

    pub fn client(&self, sha256: &str) -> Result<Option<ClientRow>> {
        self.with(|c| {
            let row = c
                .query_row(
                    "SELECT role, name, disabled FROM clients WHERE cert_sha256 = ?1",
                    [sha256],
                    |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, i64>(2)?)),
                )
                .optional()?;
            row.map(|(role, name, disabled)| {
                let role = match role.as_str() {
                    "ca" => KmcRole::Ca,
                    "officer" => KmcRole::Officer,
                    other => return Err(Error::Corrupt(format!("KMC client role {other:?}"))),
                };
                Ok(ClientRow {
                    sha256: sha256.into(),
                    role,
                    name,
                    disabled: disabled != 0,
                })
            })
            .transpose()
        })
    }

    /// Registers a client; an officer's name is taken once unless `replace` disables the
    /// name's earlier credentials (re-enrolment).
    pub fn add_client(
        &self,
        row: &ClientRow,
        cert_der: &[u8],
        actor: &str,
        replace: bool,
    ) -> Result<()> {
        let event = Event {
            actor,
            event: "kmc.client.added",
            object: &row.name,
            detail: format!(
                "role={} sha256={} replaces_earlier={replace}",
                row.role.as_str(),
                row.sha256
            ),
        };
        self.change(&event, |tx| {
            if replace {
                tx.execute(
                    "UPDATE clients SET disabled = 1 WHERE role = ?1 AND name = ?2",
                    params![row.role.as_str(), row.name],
                )?;
            }
            let taken: i64 = tx.query_row(
                "SELECT COUNT(*) FROM clients WHERE role = ?1 AND name = ?2 AND disabled = 0",
                params![row.role.as_str(), row.name],
                |r| r.get(0),
            )?;
            if taken > 0 && row.role == KmcRole::Officer {
                return Err(Error::Conflict(format!(
                    "officer {:?} exists; `ecca kmc officer add {} --replace` re-enrols them",
                    row.name, row.name
                )));
            }
            tx.execute(
                "INSERT INTO clients (cert_sha256, role, name, cert_der, added_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row.sha256, row.role.as_str(), row.name, cert_der, now()],
            )?;
            Ok(())
        })
    }

    /// Enabled officers.
    pub fn officers(&self) -> Result<usize> {
        self.with(|c| {
            let n: i64 = c.query_row(
                "SELECT COUNT(*) FROM clients WHERE role = 'officer' AND disabled = 0",
                [],
                |r| r.get(0),
            )?;
            Ok(n as usize)
        })
    }

    pub fn insert_escrow(&self, e: &EscrowRow, event: &Event<'_>) -> Result<()> {
        self.change(event, |tx| {
            tx.execute(
                "INSERT INTO escrows (id, algorithm, spki, data_key, sealed, recipient_sha256, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![e.id, e.algorithm, e.spki, e.sealed.data_key, e.sealed.secret, e.recipient_sha256, e.created_at],
            )?;
            Ok(())
        })
    }

    /// Binds an escrow to the certificate issued for its key (once).
    pub fn bind(
        &self,
        id: &str,
        serial: &str,
        cert_der: &[u8],
        subject: &str,
        event: &Event<'_>,
    ) -> Result<()> {
        self.change(event, |tx| {
            let n = tx
                .execute(
                    "UPDATE escrows SET serial = ?2, cert_der = ?3, subject = ?4 WHERE id = ?1 AND serial IS NULL",
                    params![id, serial, cert_der, subject],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        Error::Conflict(format!("certificate {serial} is bound to another escrow"))
                    }
                    e => e.into(),
                })?;
            if n != 1 {
                return Err(Error::Conflict(format!(
                    "escrow {id} does not exist or is bound already"
                )));
            }
            Ok(())
        })
    }

    fn escrow_where(&self, clause: &str, value: &str) -> Result<Option<EscrowRow>> {
        self.with(|c| {
            Ok(c.query_row(
                &format!(
                    "SELECT id, algorithm, spki, data_key, sealed, recipient_sha256, serial, subject, created_at
                     FROM escrows WHERE {clause} = ?1"
                ),
                [value],
                |r| {
                    Ok(EscrowRow {
                        id: r.get(0)?,
                        algorithm: r.get(1)?,
                        spki: r.get(2)?,
                        sealed: Sealed {
                            data_key: r.get(3)?,
                            secret: r.get(4)?,
                        },
                        recipient_sha256: r.get(5)?,
                        serial: r.get(6)?,
                        subject: r.get(7)?,
                        created_at: r.get(8)?,
                    })
                },
            )
            .optional()?)
        })
    }

    pub fn escrow(&self, id: &str) -> Result<Option<EscrowRow>> {
        self.escrow_where("id", id)
    }

    pub fn escrow_by_serial(&self, serial: &str) -> Result<Option<EscrowRow>> {
        self.escrow_where("serial", serial)
    }

    pub fn insert_recovery(&self, r: &RecoveryRow, event: &Event<'_>) -> Result<()> {
        self.change(event, |tx| {
            tx.execute(
                "INSERT INTO recoveries (id, escrow_id, reason, case_reference, recipient_der, requester, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![r.id, r.escrow_id, r.reason, r.case_reference, r.recipient_der, r.requester, r.created_at, r.expires_at],
            )?;
            Ok(())
        })
    }

    fn recovery_rows(c: &Connection, id: Option<&str>) -> Result<Vec<RecoveryRow>> {
        let mut stmt = c.prepare(
            "SELECT r.id, r.escrow_id, COALESCE(e.serial, ''), r.reason, r.case_reference, r.recipient_der,
                    r.requester, r.created_at, r.expires_at, r.released_at, r.refused_by
             FROM recoveries r JOIN escrows e ON e.id = r.escrow_id
             WHERE ?1 IS NULL OR r.id = ?1 ORDER BY r.created_at DESC, r.id",
        )?;
        let rows = stmt
            .query_map([id], |r| {
                Ok(RecoveryRow {
                    id: r.get(0)?,
                    escrow_id: r.get(1)?,
                    serial: r.get(2)?,
                    reason: r.get(3)?,
                    case_reference: r.get(4)?,
                    recipient_der: r.get(5)?,
                    requester: r.get(6)?,
                    created_at: r.get(7)?,
                    expires_at: r.get(8)?,
                    released_at: r.get(9)?,
                    refused_by: r.get(10)?,
                    approvals: Vec::new(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows.len());
        let mut names =
            c.prepare("SELECT name FROM approvals WHERE recovery_id = ?1 ORDER BY at, name")?;
        for mut row in rows {
            row.approvals = names
                .query_map([&row.id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            out.push(row);
        }
        Ok(out)
    }

    pub fn recovery(&self, id: &str) -> Result<Option<RecoveryRow>> {
        self.with(|c| Ok(Self::recovery_rows(c, Some(id))?.pop()))
    }

    pub fn recoveries(&self) -> Result<Vec<RecoveryRow>> {
        self.with(|c| Self::recovery_rows(c, None))
    }

    /// Records an officer's approval; Conflict if this officer approved already.
    pub fn approve(&self, id: &str, officer: &ClientRow, event: &Event<'_>) -> Result<()> {
        self.change(event, |tx| {
            tx.execute(
                "INSERT INTO approvals (recovery_id, officer, name, at) VALUES (?1, ?2, ?3, ?4)",
                params![id, officer.sha256, officer.name, now()],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::Conflict(format!(
                        "officer {} approved recovery {id} already",
                        officer.name
                    ))
                }
                e => e.into(),
            })?;
            Ok(())
        })
    }

    /// Marks a recovery released (once).
    pub fn released(&self, id: &str, event: &Event<'_>) -> Result<()> {
        self.change(event, |tx| {
            let n = tx.execute(
                "UPDATE recoveries SET released_at = ?2 WHERE id = ?1 AND released_at IS NULL",
                params![id, now()],
            )?;
            if n != 1 {
                return Err(Error::Conflict(format!(
                    "recovery {id} was released already"
                )));
            }
            Ok(())
        })
    }

    /// Closes a pending recovery for good: an officer refused it.
    pub fn refuse(&self, id: &str, officer: &ClientRow, event: &Event<'_>) -> Result<()> {
        self.change(event, |tx| {
            let n = tx.execute(
                "UPDATE recoveries SET refused_by = ?2 WHERE id = ?1 AND released_at IS NULL AND refused_by IS NULL",
                params![id, officer.name],
            )?;
            if n != 1 {
                return Err(Error::Conflict(format!("recovery {id} is closed already")));
            }
            Ok(())
        })
    }

    /// Appends an audit entry on its own (a refusal worth recording).
    pub fn audit(&self, event: &Event<'_>) -> Result<()> {
        self.change(event, |_| Ok(()))
    }

    /// The whole log, oldest first, and the checkpoints.
    pub fn audit_log(&self) -> Result<(Vec<AuditEntry>, Vec<Checkpoint>)> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT id, at, actor, event, object, detail, prev_hash, hash FROM audit_log ORDER BY id",
            )?;
            let entries = stmt
                .query_map([], |r| {
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
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut stmt =
                c.prepare("SELECT id, upto_id, head_hash, at, signature FROM checkpoints ORDER BY id")?;
            let checkpoints = stmt
                .query_map([], |r| {
                    Ok(Checkpoint {
                        id: r.get(0)?,
                        upto_id: r.get(1)?,
                        head_hash: r.get(2)?,
                        at: r.get(3)?,
                        signature: r.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((entries, checkpoints))
        })
    }
}
