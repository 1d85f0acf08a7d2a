//! `ecca cross-certify`: sign a cross-certificate for another region's CA (admin).
use std::path::PathBuf;

use clap::Args as ClapArgs;
use ecca::proto::{CrossCertifyRequest, cross_certify_request::Peer};
use ecca::{Error, Result};
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca cross-certify --ca-cert region-a-root.pem --out a-by-b.pem --permitted-dns a.example.cn --path-len 1 --dry-run\n  ecca cross-certify --ca-cert region-a-root.pem --peer region-a --out a-by-b.pem --permitted-dns a.example.cn --policy 1.3.6.1.4.1.55555.1\n  ecca cross-certify --csr peer-ca.csr --out peer.pem --permitted-ip 10.0.0.0/8 --days 365\n  ecca cross-certify --ca-cert region-a-gm-root.pem --issuer gm --out a-gm-by-b.pem --permitted-dns a.example.cn   (SM2 roots)"
)]
pub struct Args {
    /// The peer CA's certificate (PEM or DER).
    #[arg(long, conflicts_with = "csr", required_unless_present = "csr")]
    ca_cert: Option<PathBuf>,
    /// The peer CA's certificate signing request, instead of its certificate.
    #[arg(long)]
    csr: Option<PathBuf>,
    /// Where to write the cross-certificate (PEM).
    #[arg(long, required_unless_present = "dry_run")]
    out: Option<PathBuf>,
    /// Record it under this registered peer (see `ecca peers add`).
    #[arg(long)]
    peer: Option<String>,
    /// Permitted DNS subtree (repeatable).
    #[arg(long)]
    permitted_dns: Vec<String>,
    /// Excluded DNS subtree (repeatable).
    #[arg(long)]
    excluded_dns: Vec<String>,
    /// Permitted IP range, CIDR (repeatable).
    #[arg(long)]
    permitted_ip: Vec<String>,
    /// Path length constraint.
    #[arg(long)]
    path_len: Option<u32>,
    /// Validity in days.
    #[arg(long, default_value_t = 730)]
    days: u32,
    /// Certificate policy OID (repeatable).
    #[arg(long)]
    policy: Vec<String>,
    /// Policy mapping ISSUER_OID=SUBJECT_OID (repeatable).
    #[arg(long)]
    policy_map: Vec<String>,
    /// Print what would be signed and stop.
    #[arg(long)]
    dry_run: bool,
    /// The hierarchy whose root signs (default: `default`); an SM2 peer needs an SM2 one.
    #[arg(long, default_value = "")]
    issuer: String,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let peer = match (&a.ca_cert, &a.csr) {
        (Some(p), _) => Peer::CaCert(output::read(p)?),
        (None, Some(p)) => Peer::Csr(output::read(p)?),
        (None, None) => return Err(Error::InvalidArgument("give --ca-cert or --csr".into())),
    };
    let resp = g
        .client()
        .await?
        .cross_certify(CrossCertifyRequest {
            peer: Some(peer),
            peer_name: a.peer.unwrap_or_default(),
            permitted_dns: a.permitted_dns,
            excluded_dns: a.excluded_dns,
            permitted_ip: a.permitted_ip,
            path_len: a.path_len,
            days: a.days,
            policies: a.policy,
            policy_maps: a.policy_map,
            dry_run: a.dry_run,
            issuer: a.issuer,
        })
        .await?;
    if a.dry_run {
        if g.json {
            return output::print_json(&json!({"dry_run": true, "description": resp.description}));
        }
        print!("{}", resp.description);
        println!("(dry run: nothing was signed)");
        return Ok(());
    }
    let out = a
        .out
        .ok_or_else(|| Error::InvalidArgument("--out is required".into()))?;
    output::write(
        &out,
        ecca::pemfile::certs_to_pem([resp.certificate_der.as_slice()]).as_bytes(),
    )?;
    if g.json {
        return output::print_json(&json!({"serial": resp.serial, "out": out}));
    }
    print!("{}", resp.description);
    println!("serial {}; wrote {}", resp.serial, out.display());
    Ok(())
}
