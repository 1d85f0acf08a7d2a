//! `ecca crl`: fetch the current CRL (full or delta).
use std::path::PathBuf;

use clap::Args as ClapArgs;
use ecca::Result;
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca crl --out issuing.crl\n  ecca crl --delta --out issuing-delta.crl\n  ecca crl --issuer intl --out intl.crl\n  ecca crl --ca 3f2a9c0d5e6b7a81 --out retiring.crl   (ids: ecca issuer show NAME)"
)]
pub struct Args {
    /// Where to write the CRL (DER).
    #[arg(long)]
    out: PathBuf,
    /// The delta CRL instead of the full one.
    #[arg(long)]
    delta: bool,
    /// The hierarchy whose active issuing CA's CRL to fetch (default: `default`).
    #[arg(long, default_value = "")]
    issuer: String,
    /// One CA certificate's CRL by id (a retiring CA, or a root), instead of --issuer.
    #[arg(long, default_value = "")]
    ca: String,
    /// Write PEM instead of DER.
    #[arg(long)]
    pem: bool,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let crl = g.client().await?.crl_of(&a.issuer, &a.ca, a.delta).await?;
    let data = if a.pem {
        pem::encode(&pem::Pem::new("X509 CRL", crl.der.clone())).into_bytes()
    } else {
        crl.der.clone()
    };
    output::write(&a.out, &data)?;
    let kind = if a.delta { "delta CRL" } else { "CRL" };
    if g.json {
        return output::print_json(&json!({"out": a.out, "number": crl.number, "delta": a.delta}));
    }
    println!("wrote {kind} number {} to {}", crl.number, a.out.display());
    Ok(())
}
