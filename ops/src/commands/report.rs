//! `ecca report`: a month's statistics report, signed by the CA (GetReport).
use std::path::PathBuf;

use clap::Args as ClapArgs;
use ecca::Result;
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Writes DIR/report.json, DIR/report.html, a detached CMS signature (DER) over each\n(report.json.p7s, report.html.p7s) and DIR/signer.pem (the signer and its CA).\n\nExamples:\n  ecca report --period 2026-11 --out reports/2026-11\n  ecca report --period 2026-11 --platform shop --out reports/shop-2026-11\n\nVerify:\n  openssl cms -verify -binary -inform DER -in DIR/report.json.p7s -content DIR/report.json \\\n    -CAfile ROOT.pem -out /dev/null\n  ecca verify-signature --in DIR/report.json --sig DIR/report.json.p7s"
)]
pub struct Args {
    /// The calendar month (UTC), YYYY-MM.
    #[arg(long)]
    period: String,
    /// The directory to write to (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// One platform (default: all).
    #[arg(long, default_value = "")]
    platform: String,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let r = g.client().await?.report(&a.period, &a.platform).await?;
    std::fs::create_dir_all(&a.out).map_err(|e| ecca::Error::io(&a.out, e))?;
    let files = [
        ("report.json", r.json.as_slice()),
        ("report.json.p7s", r.json_signature.as_slice()),
        ("report.html", r.html.as_slice()),
        ("report.html.p7s", r.html_signature.as_slice()),
        ("signer.pem", r.signer_chain_pem.as_bytes()),
    ];
    for (name, data) in files {
        output::write(&a.out.join(name), data)?;
    }
    if g.json {
        return output::print_json(&json!({
            "out": a.out,
            "files": files.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        }));
    }
    println!(
        "wrote the {} report to {} (report.json, report.html, their .p7s signatures, signer.pem)",
        a.period,
        a.out.display()
    );
    Ok(())
}
