//! `ecca verify-chain`: build and validate a path offline (no server), with revocation
//! fetched from the URLs in the certificates. Exit 0 valid, 1 invalid, 2 usage or input error.
use std::path::{Path, PathBuf};

use clap::Args as ClapArgs;
use ecca::core::path::{ExpectedName, Options, Purpose};
use ecca::verify::{FetchLimits, FetchPolicy, Request, RevocationMode, Verifier};
use ecca::{Error, Result};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca verify-chain --leaf shop.pem --untrusted chain.pem --trust roots.pem --dns-name shop.example.cn --purpose server\n  ecca verify-chain --leaf m.pem --untrusted a-chain.pem --untrusted a-by-b.pem --trust b-roots.pem --revocation hard --json\n\nExit codes: 0 valid, 1 invalid (reasons printed), 2 usage or input error."
)]
pub struct Args {
    /// The certificate to verify (PEM or DER; the first certificate).
    #[arg(long)]
    leaf: PathBuf,
    /// Intermediates and cross-certificates, PEM bundles allowed (repeatable).
    #[arg(long)]
    untrusted: Vec<PathBuf>,
    /// Trust anchors (PEM bundle). Default: the root of --data-dir.
    #[arg(long)]
    trust: Option<PathBuf>,
    /// Validation time, RFC 3339 (default: now).
    #[arg(long)]
    at: Option<String>,
    /// The DNS name the leaf must be valid for.
    #[arg(long, conflicts_with_all = ["ip", "email"])]
    dns_name: Option<String>,
    /// The IP address the leaf must be valid for.
    #[arg(long, conflicts_with = "email")]
    ip: Option<std::net::IpAddr>,
    /// The email address the leaf must be valid for.
    #[arg(long)]
    email: Option<String>,
    /// What the leaf must be good for.
    #[arg(long, default_value = "any", value_parser = ["server", "client", "sign", "any"])]
    purpose: String,
    /// CRL files to use before fetching (DER or PEM, repeatable).
    #[arg(long)]
    crl: Vec<PathBuf>,
    /// Revocation checking: off, soft (unavailable is a warning) or hard.
    #[arg(long, default_value = "soft", value_parser = ["off", "soft", "hard"])]
    revocation: String,
}

fn certs(path: &Path) -> Result<Vec<Vec<u8>>> {
    let data = output::read(path)?;
    let certs = ecca::pemfile::parse_certs(&data)?;
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{}: no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn crls(path: &Path) -> Result<Vec<Vec<u8>>> {
    let data = output::read(path)?;
    if data.trim_ascii_start().starts_with(b"-----BEGIN") {
        let blocks = pem::parse_many(&data)
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
        return Ok(blocks
            .into_iter()
            .filter(|b| b.tag() == "X509 CRL")
            .map(pem::Pem::into_contents)
            .collect());
    }
    Ok(vec![data])
}

/// Returns whether the certificate is valid.
pub async fn run(g: &Global, a: Args) -> Result<bool> {
    let leaf = certs(&a.leaf)?.remove(0);
    let mut untrusted = Vec::new();
    for p in &a.untrusted {
        untrusted.extend(certs(p)?);
    }
    let anchors = match (&a.trust, &g.data_dir) {
        (Some(t), _) => certs(t)?,
        (None, Some(dir)) => certs(&ecca::layout::Layout::new(dir).root_cert())?,
        (None, None) => {
            return Err(Error::InvalidArgument(
                "give --trust FILE (the trust anchors)".into(),
            ));
        }
    };
    let mut crl_ders = Vec::new();
    for p in &a.crl {
        crl_ders.extend(crls(p)?);
    }
    let time = match &a.at {
        Some(t) => OffsetDateTime::parse(t, &Rfc3339)
            .map_err(|e| Error::field("--at", format!("{t:?}: {e}")))?
            .unix_timestamp(),
        None => OffsetDateTime::now_utc().unix_timestamp(),
    };
    let mut options = Options::at(time);
    options.purpose = match a.purpose.as_str() {
        "server" => Purpose::ServerAuth,
        "client" => Purpose::ClientAuth,
        "sign" => Purpose::DocumentSigning,
        _ => Purpose::Any,
    };
    options.name = match (a.dns_name, a.ip, a.email) {
        (Some(d), _, _) => Some(ExpectedName::Dns(d)),
        (_, Some(ip), _) => Some(ExpectedName::Ip(ip)),
        (_, _, Some(e)) => Some(ExpectedName::Email(e)),
        _ => None,
    };
    let revocation = RevocationMode::parse(&a.revocation).unwrap_or(RevocationMode::Soft);
    let out = Verifier::new(FetchLimits::default(), FetchPolicy::local_user())
        .verify(&Request {
            leaf,
            untrusted,
            anchors,
            crls: crl_ders,
            options,
            revocation,
            historical: false,
        })
        .await;
    if g.json {
        let path: Vec<_> = out
            .path
            .iter()
            .map(|p| json!({"subject": p.subject, "sha256": p.sha256}))
            .collect();
        output::print_json(
            &json!({"valid": out.valid, "path": path, "reasons": out.reasons, "warnings": out.warnings}),
        )?;
        return Ok(out.valid);
    }
    if out.valid {
        println!("valid");
        for (i, p) in out.path.iter().enumerate() {
            println!("  {i}: {}", p.subject);
        }
    } else {
        println!("invalid");
        for r in &out.reasons {
            println!("  - {r}");
        }
    }
    for w in &out.warnings {
        println!("  warning: {w}");
    }
    Ok(out.valid)
}
