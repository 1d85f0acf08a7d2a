//! `ecca issue`: send a CSR, write the certificate (and chain).
use std::path::PathBuf;

use clap::Args as ClapArgs;
use ecca::pemfile::certs_to_pem;
use ecca::{Error, Result};

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Example:\n  ecca --data-dir ./ecca-data issue --csr shop.csr --profile server-tls --out shop.pem --chain-out chain.pem --days 30\n  ecca issue --csr shop.csr --profile server-tls --issuer intl --out shop.pem"
)]
pub struct Args {
    /// The CSR (PEM or DER), e.g. from `ecca csr`.
    #[arg(long)]
    csr: PathBuf,
    /// Profile name (see `ecca profiles`).
    #[arg(long)]
    profile: String,
    /// Where to write the certificate (PEM).
    #[arg(long)]
    out: PathBuf,
    /// Where to write the chain up to the root, excluding it (PEM).
    #[arg(long)]
    chain_out: Option<PathBuf>,
    /// Validity in days (clamped to the profile's maximum).
    #[arg(long)]
    days: Option<u32>,
    /// Sign under this issuer (CA hierarchy) among those the profile allows (default: the
    /// profile's own; `ecca profiles` lists them).
    #[arg(long, default_value = "")]
    issuer: String,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let csr = output::read(&a.csr)?;
    let resp = g
        .client()
        .await?
        .issue_under(csr, &a.profile, a.days, &a.issuer)
        .await?;
    let cert = resp
        .certificate
        .ok_or_else(|| Error::Internal("server returned no certificate".into()))?;
    output::write(&a.out, certs_to_pem([cert.der.as_slice()]).as_bytes())?;
    if let Some(path) = &a.chain_out {
        output::write(
            path,
            certs_to_pem(resp.chain_der.iter().map(Vec::as_slice)).as_bytes(),
        )?;
    }
    if g.json {
        return output::print_json(&output::cert_json(&cert));
    }
    print!("{}", output::cert_text(&cert));
    println!("wrote {}", a.out.display());
    Ok(())
}
