//! Moving an embedded CA to PostgreSQL: every table copied row for row in one transaction
//! (audit ids and hashes unchanged, so the chain and its signed checkpoints still verify),
//! then each table's row count and content digest compared on both sides.
use std::path::Path;

use rusqlite::types::Value;
use tokio_postgres::types::ToSql;

use crate::error::{Error, Result};
use crate::store::PgStore;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Blob,
    /// 0/1 in SQLite, BOOLEAN in PostgreSQL.
    Bool,
}

struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// Row order on each side (text keys in byte order, as SQLite sorts them).
    sqlite_order: &'static str,
    pg_order: &'static str,
}

use Kind::{Blob, Bool, Int, Text};

const TABLES: &[Table] = &[
    Table {
        name: "certificates",
        columns: &[
            ("id", Int),
            ("serial", Text),
            ("status", Text),
            ("profile", Text),
            ("tenant", Text),
            ("subject", Text),
            ("sans", Text),
            ("not_before", Int),
            ("not_after", Int),
            ("created_at", Int),
            ("issued_at", Int),
            ("der", Blob),
            ("revoked_at", Int),
            ("revocation_reason", Int),
            ("invalidity_date", Int),
            ("revocation_seq", Int),
            ("issuer", Text),
            ("ca", Text),
            ("uscc", Text),
        ],
        sqlite_order: "id",
        pg_order: "id",
    },
    Table {
        name: "credentials",
        columns: &[
            ("serial", Text),
            ("role", Text),
            ("tenant", Text),
            ("disabled", Bool),
            ("cert_sha256", Text),
        ],
        sqlite_order: "rowid",
        pg_order: "added",
    },
    Table {
        name: "audit_log",
        columns: &[
            ("id", Int),
            ("at", Int),
            ("actor", Text),
            ("event", Text),
            ("object", Text),
            ("detail", Text),
            ("prev_hash", Blob),
            ("hash", Blob),
        ],
        sqlite_order: "id",
        pg_order: "id",
    },
    Table {
        name: "crl_numbers",
        columns: &[("ca", Text), ("last", Int)],
        sqlite_order: "ca",
        pg_order: "ca COLLATE \"C\"",
    },
    Table {
        name: "peers",
        columns: &[
            ("name", Text),
            ("ca_cert", Blob),
            ("subject", Text),
            ("status", Text),
            ("added_at", Int),
        ],
        sqlite_order: "name",
        pg_order: "name COLLATE \"C\"",
    },
    Table {
        name: "cross_certificates",
        columns: &[
            ("serial", Text),
            ("peer", Text),
            ("direction", Text),
            ("der", Blob),
            ("not_after", Int),
            ("created_at", Int),
            ("revoked_at", Int),
            ("revocation_reason", Int),
            ("status", Text),
            ("ca", Text),
        ],
        sqlite_order: "direction, serial",
        pg_order: "direction COLLATE \"C\", serial COLLATE \"C\"",
    },
    Table {
        name: "platforms",
        columns: &[
            ("name", Text),
            ("dns_suffixes", Text),
            ("ip_ranges", Text),
            ("profiles", Text),
            ("max_days", Int),
            ("rate_per_min", Int),
            ("disabled", Bool),
            ("created_at", Int),
            ("organizations", Text),
            ("usccs", Text),
            ("names", Text),
        ],
        sqlite_order: "name",
        pg_order: "name COLLATE \"C\"",
    },
    Table {
        name: "audit_checkpoints",
        columns: &[
            ("id", Int),
            ("upto_id", Int),
            ("head_hash", Blob),
            ("at", Int),
            ("signature", Blob),
        ],
        sqlite_order: "id",
        pg_order: "id",
    },
    Table {
        name: "issuers",
        columns: &[("name", Text), ("algorithm", Text), ("created_at", Int)],
        sqlite_order: "name",
        pg_order: "name COLLATE \"C\"",
    },
    Table {
        name: "issuer_certificates",
        columns: &[
            ("sha256", Text),
            ("issuer", Text),
            ("role", Text),
            ("state", Text),
            ("der", Blob),
            ("subject", Text),
            ("serial", Text),
            ("not_after", Int),
            ("added_at", Int),
            ("ca_id", Text),
            ("key_ref", Text),
            ("parent", Text),
            ("wrapped_key", Blob),
        ],
        sqlite_order: "sha256",
        pg_order: "sha256 COLLATE \"C\"",
    },
    Table {
        name: "certificate_pairs",
        columns: &[
            ("signing_serial", Text),
            ("encryption_serial", Text),
            ("escrow_id", Text),
            ("created_at", Int),
        ],
        sqlite_order: "signing_serial",
        pg_order: "signing_serial COLLATE \"C\"",
    },
    Table {
        name: "stats_issued",
        columns: &[
            ("day", Int),
            ("tenant", Text),
            ("profile", Text),
            ("ca", Text),
            ("uscc", Int),
            ("validity", Int),
            ("expiry", Int),
            ("renewal", Text),
            ("n", Int),
        ],
        sqlite_order: "day, tenant, profile, ca, uscc, validity, expiry, renewal",
        pg_order: "day, tenant COLLATE \"C\", profile COLLATE \"C\", ca COLLATE \"C\", uscc, validity, expiry, renewal COLLATE \"C\"",
    },
    Table {
        name: "stats_revoked",
        columns: &[
            ("day", Int),
            ("tenant", Text),
            ("profile", Text),
            ("ca", Text),
            ("reason", Int),
            ("expiry", Int),
            ("n", Int),
        ],
        sqlite_order: "day, tenant, profile, ca, reason, expiry",
        pg_order: "day, tenant COLLATE \"C\", profile COLLATE \"C\", ca COLLATE \"C\", reason, expiry",
    },
    Table {
        name: "stats_events",
        columns: &[
            ("day", Int),
            ("tenant", Text),
            ("kind", Text),
            ("label", Text),
            ("n", Int),
            ("total_ms", Int),
        ],
        sqlite_order: "day, tenant, kind, label",
        pg_order: "day, tenant COLLATE \"C\", kind COLLATE \"C\", label COLLATE \"C\"",
    },
    Table {
        name: "stats_marks",
        columns: &[("name", Text), ("value", Int)],
        sqlite_order: "name",
        pg_order: "name COLLATE \"C\"",
    },
    Table {
        name: "acme_objects",
        columns: &[
            ("kind", Text),
            ("id", Text),
            ("owner", Text),
            ("status", Text),
            ("expires", Int),
            ("lookup", Text),
            ("version", Int),
            ("doc", Text),
        ],
        sqlite_order: "kind, id",
        pg_order: "kind COLLATE \"C\", id COLLATE \"C\"",
    },
];

/// The schema every backend's migrations must produce: each table's columns, in order. The
/// one declaration of the data model; `tests/store.rs` checks both backends against it.
pub fn schema() -> Vec<(&'static str, Vec<&'static str>)> {
    TABLES
        .iter()
        .map(|t| (t.name, t.columns.iter().map(|(c, _)| *c).collect()))
        .collect()
}

/// Columns a backend has beyond [`schema`]: PostgreSQL orders credentials by a serial column
/// (SQLite uses its rowid).
pub const BACKEND_ONLY: &[(&str, &str)] = &[("credentials", "added")];

/// Serial columns whose sequences must continue after the copied ids.
const SEQUENCES: &[(&str, &str)] = &[
    ("certificates", "id"),
    ("audit_checkpoints", "id"),
    ("credentials", "added"),
];

/// One table as copied: rows and the SHA-256 of its contents, the same on both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copied {
    pub table: &'static str,
    pub rows: u64,
    pub digest: String,
}

/// Feeds one value into a table digest: a type tag, then a length-prefixed encoding.
fn digest_value(ctx: &mut ring::digest::Context, v: &Value) {
    match v {
        Value::Null => ctx.update(b"N"),
        Value::Integer(i) => {
            ctx.update(b"I");
            ctx.update(&i.to_be_bytes());
        }
        Value::Text(s) => {
            ctx.update(b"T");
            ctx.update(&(s.len() as u64).to_be_bytes());
            ctx.update(s.as_bytes());
        }
        Value::Blob(b) => {
            ctx.update(b"B");
            ctx.update(&(b.len() as u64).to_be_bytes());
            ctx.update(b);
        }
        Value::Real(f) => {
            ctx.update(b"R");
            ctx.update(&f.to_be_bytes());
        }
    }
}

fn column_list(t: &Table) -> String {
    t.columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A SQLite value as the PostgreSQL column expects it.
fn to_pg(kind: Kind, v: Value) -> Result<Box<dyn ToSql + Sync + Send>> {
    Ok(match (kind, v) {
        (Bool, Value::Integer(i)) => Box::new(i != 0),
        (Int, Value::Integer(i)) => Box::new(Some(i)),
        (Int, Value::Null) => Box::new(None::<i64>),
        (Text, Value::Text(s)) => Box::new(Some(s)),
        (Text, Value::Null) => Box::new(None::<String>),
        (Blob, Value::Blob(b)) => Box::new(Some(b)),
        (Blob, Value::Null) => Box::new(None::<Vec<u8>>),
        (kind, v) => {
            return Err(Error::Storage(format!(
                "unexpected value {v:?} in a {kind:?} column"
            )));
        }
    })
}

/// A PostgreSQL value as SQLite holds it (for the digest).
fn from_pg(kind: Kind, row: &tokio_postgres::Row, i: usize) -> Result<Value> {
    let or_null = |v: Option<Value>| v.unwrap_or(Value::Null);
    Ok(match kind {
        Bool => Value::Integer(i64::from(row.try_get::<_, bool>(i)?)),
        Int => or_null(row.try_get::<_, Option<i64>>(i)?.map(Value::Integer)),
        Text => or_null(row.try_get::<_, Option<String>>(i)?.map(Value::Text)),
        Blob => or_null(row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob)),
    })
}

fn sqlite_rows(conn: &rusqlite::Connection, t: &Table) -> Result<Vec<Vec<Value>>> {
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {}",
        column_list(t),
        t.name,
        t.sqlite_order
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map([], |r| {
            (0..t.columns.len())
                .map(|i| r.get::<_, Value>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn digest(rows: &[Vec<Value>]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for row in rows {
        for v in row {
            digest_value(&mut ctx, v);
        }
    }
    hex::encode(ctx.finish())
}

/// Copies the embedded database at `sqlite` into the (empty) PostgreSQL database of `target`.
/// `progress(rows_done, rows_total)` is called as rows are copied. The server using the
/// SQLite file must be stopped.
pub async fn sqlite_to_postgres(
    sqlite: &Path,
    target: &PgStore,
    progress: impl Fn(u64, u64),
) -> Result<Vec<Copied>> {
    if !sqlite.exists() {
        return Err(Error::InvalidArgument(format!(
            "{} does not exist: is this an ecca data directory?",
            sqlite.display()
        )));
    }
    // Through the store: brings the schema up to date and finishes pending WAL.
    drop(crate::store::SqliteStore::open(sqlite)?);
    let mut source = rusqlite::Connection::open(sqlite)?;
    // One snapshot of the source for the copy and the comparison.
    let snapshot = source.transaction()?;
    let tables: Vec<Vec<Vec<Value>>> = TABLES
        .iter()
        .map(|t| sqlite_rows(&snapshot, t))
        .collect::<Result<_>>()?;
    drop(snapshot);

    let mut client = target.pool().get().await?;
    let existing: i64 = client
        .query_one("SELECT COUNT(*) FROM audit_log", &[])
        .await?
        .try_get(0)?;
    if existing > 0 {
        return Err(Error::Conflict(format!(
            "{} already holds a CA ({existing} audit entries); migrate into an empty database",
            target.url()
        )));
    }
    let tx = client.transaction().await?;
    let total: u64 = tables.iter().map(|t| t.len() as u64).sum();
    let mut done = 0;
    for (t, rows) in TABLES.iter().zip(&tables) {
        let placeholders: Vec<String> = (1..=t.columns.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            t.name,
            column_list(t),
            placeholders.join(", ")
        );
        let stmt = tx.prepare(&sql).await?;
        for row in rows {
            let values = t
                .columns
                .iter()
                .zip(row)
                .map(|((_, kind), v)| to_pg(*kind, v.clone()))
                .collect::<Result<Vec<_>>>()?;
            let args: Vec<&(dyn ToSql + Sync)> = values
                .iter()
                .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                .collect();
            tx.execute(&stmt, &args).await?;
            done += 1;
            if done % 500 == 0 {
                progress(done, total);
            }
        }
    }
    progress(total, total);
    for (table, column) in SEQUENCES {
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), GREATEST((SELECT MAX({column}) FROM {table}), 1))"
            ),
            &[],
        )
        .await?;
    }
    // Compare inside the transaction: nothing is committed unless every table matches.
    let mut copied = Vec::new();
    for (t, rows) in TABLES.iter().zip(&tables) {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            column_list(t),
            t.name,
            t.pg_order
        );
        let back: Vec<Vec<Value>> = tx
            .query(&sql, &[])
            .await?
            .iter()
            .map(|r| {
                t.columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, kind))| from_pg(*kind, r, i))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        let (source_digest, target_digest) = (digest(rows), digest(&back));
        if back.len() != rows.len() || source_digest != target_digest {
            return Err(Error::Storage(format!(
                "{}: copied {} of {} rows, digest {target_digest} != {source_digest}; nothing was committed",
                t.name,
                back.len(),
                rows.len()
            )));
        }
        copied.push(Copied {
            table: t.name,
            rows: rows.len() as u64,
            digest: source_digest,
        });
    }
    tx.commit().await?;
    Ok(copied)
}
