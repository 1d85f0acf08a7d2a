//! `ecca csr`: a PKCS#10 request for a key, so a platform needs no openssl.
use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args as ClapArgs;
use ecca::core::csr::Attr;
use ecca::core::issue::distinguished_name;
use ecca::signer::SoftwareKey;
use ecca::{Error, Result};
use rcgen::{CertificateParams, SanType};
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca csr --key shop.key --cn shop.example --dns shop.example --dns www.shop.example --out shop.csr\n  ecca csr --key m.key --cn \"Example Trading\" --org \"Example Trading Co., Ltd.\" --country CN --uscc 91350100M000100Y43 --out m.csr"
)]
pub struct Args {
    /// The private key (PKCS#8 PEM: P-256, P-384, Ed25519 or SM2), e.g. from `ecca keygen`.
    #[arg(long)]
    key: PathBuf,
    /// Subject common name.
    #[arg(long)]
    cn: String,
    /// DNS name (repeatable).
    #[arg(long)]
    dns: Vec<String>,
    /// IP address (repeatable).
    #[arg(long)]
    ip: Vec<IpAddr>,
    /// Email address (repeatable).
    #[arg(long)]
    email: Vec<String>,
    /// Organization (O).
    #[arg(long)]
    org: Option<String>,
    /// Organizational unit (OU).
    #[arg(long)]
    ou: Option<String>,
    /// Country code (C), e.g. CN.
    #[arg(long)]
    country: Option<String>,
    /// Unified Social Credit Code (GB 32100-2015), written to subject serialNumber.
    #[arg(long)]
    uscc: Option<String>,
    /// Where to write the CSR (PEM).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(g: &Global, a: Args) -> Result<()> {
    let pem = std::fs::read_to_string(&a.key).map_err(|e| Error::io(&a.key, e))?;
    let key = SoftwareKey::from_pkcs8_pem(&pem)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", a.key.display())))?;
    if let Some(code) = &a.uscc {
        ecca::core::uscc::validate(code).map_err(|e| Error::field("--uscc", e))?;
    }
    let mut attrs = Vec::new();
    let optional = [
        (Attr::Country, a.country),
        (Attr::Organization, a.org),
        (Attr::OrganizationalUnit, a.ou),
        (Attr::SerialNumber, a.uscc),
    ];
    for (attr, v) in optional {
        if let Some(v) = v {
            attrs.push((attr, v));
        }
    }
    attrs.push((Attr::CommonName, a.cn));
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(&attrs)?;
    let ia5 = |s: &String| {
        s.as_str()
            .try_into()
            .map_err(|_| Error::InvalidArgument(format!("{s:?} is not ASCII")))
    };
    for d in &a.dns {
        params.subject_alt_names.push(SanType::DnsName(ia5(d)?));
    }
    for ip in &a.ip {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for e in &a.email {
        params.subject_alt_names.push(SanType::Rfc822Name(ia5(e)?));
    }
    // SM2 keys sign with SM3 and the default distinguishing ID 1234567812345678.
    let csr = ecca::core::issue::request_der(&params, &key)?;
    let pem = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", csr));
    output::write(&a.out, pem.as_bytes())?;
    if g.json {
        return output::print_json(&json!({"csr": a.out}));
    }
    println!("wrote CSR to {}", a.out.display());
    Ok(())
}
