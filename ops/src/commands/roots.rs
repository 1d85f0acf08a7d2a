//! `ecca roots`: write the trust anchors (and optionally the intermediates) as PEM.
use std::path::PathBuf;

use clap::Args as ClapArgs;
use ecca::Result;
use ecca::pemfile::certs_to_pem;
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Example:\n  ecca --data-dir ./ecca-data roots --out roots.pem --intermediates-out chain.pem"
)]
pub struct Args {
    /// Where to write the root certificates (PEM).
    #[arg(long)]
    out: PathBuf,
    /// Also write the intermediate CA certificates (PEM) here.
    #[arg(long)]
    intermediates_out: Option<PathBuf>,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let bundle = g.client().await?.trust_bundle().await?;
    output::write(
        &a.out,
        certs_to_pem(bundle.roots_der.iter().map(Vec::as_slice)).as_bytes(),
    )?;
    if let Some(path) = &a.intermediates_out {
        output::write(
            path,
            certs_to_pem(bundle.intermediates_der.iter().map(Vec::as_slice)).as_bytes(),
        )?;
    }
    let fingerprints: Vec<String> = bundle
        .roots_der
        .iter()
        .map(|d| ecca::core::fingerprint(d))
        .collect();
    if g.json {
        return output::print_json(&json!({"roots": a.out, "root_sha256": fingerprints}));
    }
    println!(
        "wrote {} root(s) to {}",
        bundle.roots_der.len(),
        a.out.display()
    );
    for f in fingerprints {
        println!("  SHA-256 {f}");
    }
    Ok(())
}
