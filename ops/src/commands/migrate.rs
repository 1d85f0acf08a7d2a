//! `ecca migrate`: move an embedded (SQLite) CA into PostgreSQL so several servers can share
//! it. Every table is copied in one transaction and compared (row counts and SHA-256 digests)
//! before it commits; the audit chain is verified against the signed checkpoints afterwards.
use std::path::PathBuf;

use clap::Args as ClapArgs;
use ecca::core::audit;
use ecca::layout::Layout;
use ecca::store::{PgStore, Store, migrate, postgres};
use ecca::{Error, Result};
use serde_json::json;

use crate::context::Global;
use crate::output::{self, Progress};

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Example (stop the server first):\n  ecca migrate --from ./ecca-data --to postgres://ecca:secret@db.example:5432/ecca\n  ecca-server --data-dir ./ecca-data --database postgres://ecca:secret@db.example:5432/ecca\n  ecca --data-dir ./ecca-data audit verify\n\nThe SQLite file stays in place, untouched, as the fallback copy."
)]
pub struct Args {
    /// Data directory of the CA to move (its server must be stopped).
    #[arg(long)]
    from: PathBuf,
    /// The empty PostgreSQL database to move it into.
    #[arg(long, env = "ECCA_DATABASE")]
    to: String,
}

/// True if a server still answers on the address it recorded in the data directory.
fn server_running(dir: &std::path::Path) -> bool {
    let Ok(url) = ecca::client::Client::data_dir_url(dir) else {
        return false;
    };
    let addr = url.trim_start_matches("https://");
    addr.parse::<std::net::SocketAddr>()
        .is_ok_and(|a| std::net::TcpStream::connect(a).is_ok())
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let layout = Layout::new(&a.from);
    if !layout.is_initialized() {
        return Err(Error::InvalidArgument(format!(
            "{} holds no CA (no ca/root.pem)",
            a.from.display()
        )));
    }
    if server_running(&a.from) {
        return Err(Error::Conflict(format!(
            "a server is still running on {}; stop it first so no write is lost",
            a.from.display()
        )));
    }
    let target = PgStore::open(&a.to).await?;
    let progress = std::cell::OnceCell::new();
    let copied = migrate::sqlite_to_postgres(&layout.database(), &target, |done, total| {
        if !g.json {
            progress
                .get_or_init(|| Progress::new("copying rows", total as usize))
                .set(done as usize);
        }
    })
    .await?;
    // The chain and its signed checkpoints, read back from PostgreSQL.
    let entries = target.audit(0, u32::MAX).await?;
    let checkpoints = target.checkpoints().await?;
    let issuing = ecca::pemfile::parse_certs(&output::read(&layout.issuing_cert())?)?;
    let signer = issuing.first().cloned().unwrap_or_default();
    let verdict = audit::verify(&entries, &checkpoints, |m, s| {
        audit::checkpoint_signature_ok(&signer, m, s)
    });
    if let Some(problem) = &verdict.problem {
        return Err(Error::Storage(format!(
            "copied, but the audit chain does not verify ({problem}); it was already broken in {}",
            layout.database().display()
        )));
    }
    ecca::store::mark_postgres(&layout)?;
    let url = postgres::redact(&a.to);
    if g.json {
        let tables: Vec<_> = copied
            .iter()
            .map(|c| json!({"table": c.table, "rows": c.rows, "sha256": c.digest}))
            .collect();
        return output::print_json(&json!({"database": url, "tables": tables,
            "audit_entries": verdict.entries, "checkpoints": verdict.checkpoints}));
    }
    for c in &copied {
        println!(
            "{:<20} {:>8} rows  sha256 {}  (same in both)",
            c.table, c.rows, c.digest
        );
    }
    println!(
        "audit chain intact: {} entries, {} signed checkpoint(s)",
        verdict.entries, verdict.checkpoints
    );
    println!(
        "moved {} to {url} (the SQLite file stays as the fallback copy)\nnext: ecca-server --data-dir {} --database <the --to URL> (or $ECCA_DATABASE), then `ecca audit verify`",
        layout.database().display(),
        a.from.display(),
    );
    Ok(())
}
