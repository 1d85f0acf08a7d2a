//! `ecca issue`: send a CSR, write the certificate (and chain); with `--dual`, a signing and
//! an encryption certificate and the encryption key's envelope; with `--batch`, many CSRs
//! over one IssueCertificates stream.
use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;
use ecca::pemfile::certs_to_pem;
use ecca::proto::issue_certificates_response::Result as Result_;
use ecca::{Error, Result};
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Example:\n  ecca --data-dir ./ecca-data issue --csr shop.csr --profile server-tls --out shop.pem --chain-out chain.pem --days 30\n  ecca issue --csr shop.csr --profile server-tls --issuer intl --out shop.pem\n  ecca issue --dual --csr sign.csr --profile sm2-merchant-ov --out sign.pem --enc-cert-out enc.pem --envelope-out enc.env\n  ecca keys open --envelope enc.env --key sign.key --out enc.key\n  ecca issue --batch csrs.txt --profile server-tls --out-dir certs/      (one CSR file per line; writes certs/NAME.pem)"
)]
pub struct Args {
    /// The CSR (PEM or DER), e.g. from `ecca csr`.
    #[arg(long, required_unless_present = "batch")]
    csr: Option<PathBuf>,
    /// Profile name (see `ecca profiles`).
    #[arg(long)]
    profile: String,
    /// Where to write the certificate (PEM).
    #[arg(long, required_unless_present = "batch")]
    out: Option<PathBuf>,
    /// Bulk issuance: a file listing CSR files, one per line (relative to the list's folder;
    /// blank lines and lines starting with # are skipped), all issued over one stream. Each
    /// certificate goes to --out-dir as the CSR's file name with .pem; one bad CSR fails only
    /// itself (listed, and the exit status is 1).
    #[arg(long, value_name = "LIST", conflicts_with_all = ["csr", "out", "dual"], requires = "out_dir")]
    batch: Option<PathBuf>,
    /// With --batch: the folder certificates are written to (created if missing).
    #[arg(long, requires = "batch")]
    out_dir: Option<PathBuf>,
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
    if let (Some(list), Some(dir)) = (&a.batch, &a.out_dir) {
        return batch(g, list, dir, &a).await;
    }
    let (Some(csr), Some(out)) = (&a.csr, &a.out) else {
        return Err(Error::InvalidArgument(
            "give --csr and --out (or --batch LIST --out-dir DIR)".into(),
        ));
    };
    if a.dual {
        return dual(g, csr, out, &a).await;
    }
    let csr = output::read(csr)?;
    let resp = g
        .client()
        .await?
        .issue_under(csr, &a.profile, a.days, &a.issuer)
        .await?;
    let cert = resp
        .certificate
        .ok_or_else(|| Error::Internal("server returned no certificate".into()))?;
    output::write(out, certs_to_pem([cert.der.as_slice()]).as_bytes())?;
    write_chain(&a, &resp.chain_der)?;
    if g.json {
        return output::print_json(&output::cert_json(&cert));
    }
    print!("{}", output::cert_text(&cert));
    println!("wrote {}", out.display());
    Ok(())
}

fn write_chain(a: &Args, chain: &[Vec<u8>]) -> Result<()> {
    match &a.chain_out {
        Some(path) => output::write(
            path,
            certs_to_pem(chain.iter().map(Vec::as_slice)).as_bytes(),
        ),
        None => Ok(()),
    }
}

/// The CSR files a batch list names, resolved against the list's folder.
fn batch_list(list: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(list).map_err(|e| Error::io(list, e))?;
    let base = list.parent().unwrap_or(Path::new("."));
    let files: Vec<PathBuf> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| base.join(l))
        .collect();
    if files.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} lists no CSR files (one path per line)",
            list.display()
        )));
    }
    Ok(files)
}

async fn batch(g: &Global, list: &Path, dir: &Path, a: &Args) -> Result<()> {
    let files = batch_list(list)?;
    let mut requests = Vec::with_capacity(files.len());
    for f in &files {
        requests.push((f.display().to_string(), output::read(f)?));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let progress = output::Progress::new("issuing", files.len());
    let mut answers = g
        .client()
        .await?
        .issue_stream(requests, &a.profile, a.days, &a.issuer)
        .await?;
    let mut results = vec![serde_json::Value::Null; files.len()];
    let mut failed = 0;
    let mut chain_written = false;
    while let Some(answer) = answers.message().await.map_err(ecca::client::rejected)? {
        let i = usize::try_from(answer.index).unwrap_or(usize::MAX);
        let Some(file) = files.get(i) else {
            return Err(Error::Remote(format!(
                "answer for request {i}, which was not sent"
            )));
        };
        results[i] = match answer.result {
            Some(Result_::Issued(resp)) => {
                let cert = resp
                    .certificate
                    .ok_or_else(|| Error::Internal("server returned no certificate".into()))?;
                let stem = file
                    .file_stem()
                    .map_or_else(|| format!("{i}"), |s| s.to_string_lossy().into_owned());
                let out = dir.join(format!("{stem}.pem"));
                output::write(&out, certs_to_pem([cert.der.as_slice()]).as_bytes())?;
                if !chain_written {
                    write_chain(a, &resp.chain_der)?;
                    chain_written = true;
                }
                json!({"csr": file, "serial": cert.serial, "out": out})
            }
            Some(Result_::Error(e)) => {
                failed += 1;
                let code = tonic::Code::from(e.code);
                json!({"csr": file, "error": e.message, "code": format!("{code:?}")})
            }
            None => {
                return Err(Error::Remote(format!(
                    "empty answer for {}",
                    file.display()
                )));
            }
        };
        progress.tick();
    }
    if let Some(missing) = results.iter().position(serde_json::Value::is_null) {
        return Err(Error::Remote(format!(
            "the stream ended before {} was answered; nothing after it is known to be issued",
            files[missing].display()
        )));
    }
    if g.json {
        output::print_json(&serde_json::Value::Array(results))?;
    } else {
        for r in &results {
            match r["error"].as_str() {
                Some(e) => println!(
                    "FAILED {}: {} ({e})",
                    r["csr"].as_str().unwrap_or(""),
                    r["code"].as_str().unwrap_or("")
                ),
                None => println!(
                    "issued {} -> {}",
                    r["serial"].as_str().unwrap_or(""),
                    r["out"].as_str().unwrap_or("")
                ),
            }
        }
        println!("{} issued, {failed} failed", files.len() - failed);
    }
    if failed > 0 {
        return Err(Error::Rejected {
            code: tonic::Code::InvalidArgument,
            message: format!("{failed} of {} requests failed (listed above)", files.len()),
        });
    }
    Ok(())
}

async fn dual(g: &Global, csr: &Path, out: &Path, a: &Args) -> Result<()> {
    let (Some(enc_out), Some(env_out)) = (&a.enc_cert_out, &a.envelope_out) else {
        return Err(Error::InvalidArgument(
            "--dual needs --enc-cert-out and --envelope-out".into(),
        ));
    };
    let csr = output::read(csr)?;
    let resp = g
        .client()
        .await?
        .issue_dual(csr, &a.profile, a.days, &a.issuer)
        .await?;
    let missing = || Error::Internal("server returned no certificate".into());
    let signing = resp.signing_certificate.ok_or_else(missing)?;
    let encryption = resp.encryption_certificate.ok_or_else(missing)?;
    output::write(out, certs_to_pem([signing.der.as_slice()]).as_bytes())?;
    output::write(
        enc_out,
        certs_to_pem([encryption.der.as_slice()]).as_bytes(),
    )?;
    // Only the signing key opens it, but it is still the key: private like one.
    ecca::pemfile::write_private(env_out, &resp.envelope)?;
    write_chain(a, &resp.chain_der)?;
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
        out.display(),
        enc_out.display(),
        env_out.display(),
        resp.envelope_type,
        env_out.display()
    );
    Ok(())
}
