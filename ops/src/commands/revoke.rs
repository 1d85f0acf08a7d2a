//! `ecca revoke`: revoke a certificate (permanent).
use clap::Args as ClapArgs;
use ecca::core::revocation::Reason;
use ecca::{Error, Result};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca revoke --serial 5f1c0a... --reason keyCompromise --invalidity-date 2026-11-20T00:00:00Z\n  ecca revoke --serial 5f1c0a... --reason superseded --dry-run\n\nReasons: unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn."
)]
pub struct Args {
    /// Serial number, hexadecimal.
    #[arg(long)]
    serial: String,
    /// RFC 5280 reason.
    #[arg(long, default_value = "unspecified")]
    reason: String,
    /// When the key was (suspected to be) compromised, RFC 3339.
    #[arg(long)]
    invalidity_date: Option<String>,
    /// Show what would be revoked and stop.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let reason = Reason::parse(&a.reason)?;
    let invalidity = match &a.invalidity_date {
        Some(t) => Some(
            OffsetDateTime::parse(t, &Rfc3339)
                .map_err(|e| {
                    Error::field(
                        "--invalidity-date",
                        format!("{t:?}: {e} (use RFC 3339, e.g. 2026-11-20T00:00:00Z)"),
                    )
                })?
                .unix_timestamp(),
        ),
        None => None,
    };
    let client = g.client().await?;
    if a.dry_run {
        let cert = client.get(&a.serial).await?;
        print!("{}", output::cert_text(&cert));
        println!(
            "would revoke with reason {} (dry run: nothing changed)",
            reason.name()
        );
        return Ok(());
    }
    let cert = client.revoke(&a.serial, reason as i32, invalidity).await?;
    if g.json {
        return output::print_json(&output::cert_json(&cert));
    }
    print!("{}", output::cert_text(&cert));
    println!(
        "revoked ({}); OCSP answers now, CRLs within a second",
        reason.name()
    );
    Ok(())
}
