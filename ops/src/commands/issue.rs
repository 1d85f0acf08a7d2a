//! `ecca issue`: send a CSR, write the certificate (and chain); with `--dual`, a signing and
//! an encryption certificate and the encryption key's envelope.
use std::path::PathBuf;

use clap::Args as ClapArgs;
use ecca::pemfile::certs_to_pem;
use ecca::{Error, Result};

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Example:\n  ecca --data-dir ./ecca-data issue --csr shop.csr --profile server-tls --out shop.pem --chain-out chain.pem --days 30\n  ecca issue --csr shop.csr --profile server-tls --issuer intl --out shop.pem\n  ecca issue --dual --csr sign.csr --profile sm2-merchant-ov --out sign.pem --enc-cert-out enc.pem --envelope-out enc.env\n  ecca keys open --envelope enc.env --key sign.key --out enc.key"
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
    /// Dual certificates (GM/T 0034, profiles with dual = true): --out gets the signing
    /// certificate for the CSR's key; the key management centre makes the encryption key.
    #[arg(long, requires_all = ["enc_cert_out", "envelope_out"])]
    dual: bool,
    /// With --dual: where to write the encryption certificate (PEM).
    #[arg(long, requires = "dual")]
    enc_cert_out: Option<PathBuf>,
    /// With --dual: where to write the encryption private key's envelope (DER), which only
    /// the CSR's key opens (`ecca keys open`).
    #[arg(long, requires = "dual")]
    envelope_out: Option<PathBuf>,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    if a.dual {
        return dual(g, a).await;
    }
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

async fn dual(g: &Global, a: Args) -> Result<()> {
    let (Some(enc_out), Some(env_out)) = (&a.enc_cert_out, &a.envelope_out) else {
        return Err(Error::InvalidArgument(
            "--dual needs --enc-cert-out and --envelope-out".into(),
        ));
    };
    let csr = output::read(&a.csr)?;
    let resp = g
        .client()
        .await?
        .issue_dual(csr, &a.profile, a.days, &a.issuer)
        .await?;
    let missing = || Error::Internal("server returned no certificate".into());
    let signing = resp.signing_certificate.ok_or_else(missing)?;
    let encryption = resp.encryption_certificate.ok_or_else(missing)?;
    output::write(&a.out, certs_to_pem([signing.der.as_slice()]).as_bytes())?;
    output::write(
        enc_out,
        certs_to_pem([encryption.der.as_slice()]).as_bytes(),
    )?;
    // Only the signing key opens it, but it is still the key: private like one.
    ecca::pemfile::write_private(env_out, &resp.envelope)?;
    if let Some(path) = &a.chain_out {
        output::write(
            path,
            certs_to_pem(resp.chain_der.iter().map(Vec::as_slice)).as_bytes(),
        )?;
    }
    if g.json {
        return output::print_json(&serde_json::json!({
            "signing": output::cert_json(&signing),
            "encryption": output::cert_json(&encryption),
            "envelope_type": resp.envelope_type,
            "envelope": env_out,
        }));
    }
    print!("signing certificate\n{}", output::cert_text(&signing));
    print!("encryption certificate\n{}", output::cert_text(&encryption));
    println!(
        "wrote {}, {} and {} ({}); open it with `ecca keys open --envelope {} --key SIGNING.key --out ENC.key`",
        a.out.display(),
        enc_out.display(),
        env_out.display(),
        resp.envelope_type,
        env_out.display()
    );
    Ok(())
}
