//! `ecca audit`: verify the hash-chained audit log against the CA's signed checkpoints, and
//! read it (tail, search). For admins and auditors.
use clap::{Args as ClapArgs, Subcommand};
use ecca::proto::AuditEntry;
use ecca::{Error, Result};
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca audit verify            (exit 0 intact, 1 tampered: the first bad entry is named)\n  ecca audit tail -n 20\n  ecca audit search --event certificate.revoked --object 5f1c"
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check every entry's hash chain and the signed checkpoints.
    Verify,
    /// The newest entries.
    Tail {
        #[arg(short = 'n', default_value_t = 20)]
        n: usize,
    },
    /// Entries matching all the given filters.
    Search {
        #[arg(long)]
        event: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        /// Substring of the object (a serial, a peer or platform name).
        #[arg(long)]
        object: Option<String>,
        /// Only entries at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
    },
}

fn line(e: &AuditEntry) -> String {
    let at =
        e.at.map(|t| output::time_text(t.seconds))
            .unwrap_or_default();
    format!(
        "{:>6}  {at}  {:<28} {:<22} {}  {}",
        e.id, e.event, e.actor, e.object, e.detail
    )
}

fn entry_json(e: &AuditEntry) -> serde_json::Value {
    let at =
        e.at.map(|t| output::time_text(t.seconds))
            .unwrap_or_default();
    json!({"id": e.id, "at": at, "event": e.event, "actor": e.actor, "object": e.object, "detail": e.detail})
}

/// Returns whether the log verified (for `verify`; always true otherwise).
pub async fn run(g: &Global, a: Args) -> Result<bool> {
    let client = g.client().await?;
    match a.command {
        Command::Verify => {
            let verdict = client.verify_audit().await?;
            let covered = verdict.covered;
            if g.json {
                output::print_json(
                    &json!({"intact": verdict.problem.is_none(), "entries": verdict.entries,
                    "checkpoints": verdict.checkpoints, "covered_by_checkpoint": covered, "problem": verdict.problem}),
                )?;
            } else if let Some(p) = &verdict.problem {
                println!("audit log TAMPERED: {p}");
            } else {
                println!(
                    "audit log intact: {} entries, {} signed checkpoint(s), the latest covering entry {covered}",
                    verdict.entries, verdict.checkpoints
                );
            }
            Ok(verdict.problem.is_none())
        }
        Command::Tail { n } => {
            let entries = client.audit_log().await?;
            let start = entries.len().saturating_sub(n);
            if g.json {
                let v: Vec<_> = entries[start..].iter().map(entry_json).collect();
                output::print_json(&json!(v))?;
                return Ok(true);
            }
            for e in &entries[start..] {
                println!("{}", line(e));
            }
            Ok(true)
        }
        Command::Search {
            event,
            actor,
            object,
            since,
        } => {
            let since = since
                .map(|s| {
                    time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                        .map(|t| t.unix_timestamp())
                        .map_err(|e| Error::field("--since", e))
                })
                .transpose()?;
            let entries = client.audit_log().await?;
            let hits = entries.iter().filter(|e| {
                event.as_ref().is_none_or(|v| e.event == *v)
                    && actor.as_ref().is_none_or(|v| e.actor.contains(v.as_str()))
                    && object
                        .as_ref()
                        .is_none_or(|v| e.object.contains(v.as_str()))
                    && since.is_none_or(|t| e.at.is_some_and(|a| a.seconds >= t))
            });
            if g.json {
                output::print_json(&json!(hits.map(entry_json).collect::<Vec<_>>()))?;
                return Ok(true);
            }
            let mut n = 0;
            for e in hits {
                println!("{}", line(e));
                n += 1;
            }
            println!("({n} entries)");
            Ok(true)
        }
    }
}
