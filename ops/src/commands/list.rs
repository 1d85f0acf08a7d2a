//! `ecca list`: issued certificates, newest first.
use clap::Args as ClapArgs;
use ecca::Result;
use ecca::proto::{CertificateStatus, ListCertificatesRequest};
use serde_json::Value;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Example:\n  ecca --data-dir ./ecca-data list --profile server-tls --name shop.example"
)]
pub struct Args {
    /// Only this profile.
    #[arg(long)]
    profile: Option<String>,
    /// Only certificates whose subject or names contain this text.
    #[arg(long)]
    name: Option<String>,
    /// Only valid or only expired certificates.
    #[arg(long, value_parser = ["valid", "expired"])]
    status: Option<String>,
    /// At most this many (0: all, page by page).
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let client = g.client().await?;
    let status = match a.status.as_deref() {
        Some("valid") => CertificateStatus::Valid,
        Some("expired") => CertificateStatus::Expired,
        _ => CertificateStatus::Unspecified,
    };
    let mut certs = Vec::new();
    let mut token = String::new();
    loop {
        let resp = client
            .list(ListCertificatesRequest {
                profile: a.profile.clone().unwrap_or_default(),
                page_size: 500,
                page_token: token,
                status: status.into(),
                name_contains: a.name.clone().unwrap_or_default(),
            })
            .await?;
        certs.extend(resp.certificates);
        token = resp.next_page_token;
        if token.is_empty() || (a.limit > 0 && certs.len() >= a.limit) {
            break;
        }
    }
    if a.limit > 0 {
        certs.truncate(a.limit);
    }
    if g.json {
        return output::print_json(&Value::Array(certs.iter().map(output::cert_json).collect()));
    }
    println!(
        "{:<34} {:<18} {:<8} {:<20} SUBJECT / NAMES",
        "SERIAL", "PROFILE", "STATUS", "NOT AFTER"
    );
    for c in &certs {
        let v = output::cert_json(c);
        let names = if c.subject_alt_names.is_empty() {
            c.subject.clone()
        } else {
            c.subject_alt_names.join(",")
        };
        println!(
            "{:<34} {:<18} {:<8} {:<20} {}",
            c.serial,
            c.profile,
            output::status_name(c),
            v["not_after"].as_str().unwrap_or_default(),
            names
        );
    }
    println!("({} certificate(s))", certs.len());
    Ok(())
}
