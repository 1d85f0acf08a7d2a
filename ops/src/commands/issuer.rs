//! `ecca issuer`: the CA hierarchies (issuers) and the state of each of their CA certificates.
use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};
use ecca::Result;
use ecca::proto::{CaRole, CaState, Issuer};
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca issuer list --json\n  ecca issuer show default --out default-chain.pem"
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the issuers (the one made at init is `default`).
    List,
    /// Show one issuer; --out writes its CA certificates as PEM.
    Show {
        name: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn role(r: CaRole) -> &'static str {
    match r {
        CaRole::Root => "root",
        CaRole::Issuing => "issuing",
        CaRole::Unspecified => "unknown",
    }
}

fn state(s: CaState) -> &'static str {
    match s {
        CaState::Active => "active",
        CaState::Retiring => "retiring",
        CaState::Retired => "retired",
        CaState::Unspecified => "unknown",
    }
}

fn seconds(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map_or(0, |t| t.seconds)
}

fn issuer_json(i: &Issuer) -> serde_json::Value {
    let certs: Vec<_> = i
        .certificates
        .iter()
        .map(|c| {
            json!({
                "role": role(c.role()), "state": state(c.state()), "subject": c.subject,
                "serial": c.serial, "sha256": c.sha256,
                "not_after": output::time_text(seconds(&c.not_after)),
            })
        })
        .collect();
    json!({
        "name": i.name, "algorithm": i.algorithm,
        "created_at": output::time_text(seconds(&i.created_at)), "certificates": certs,
    })
}

fn print_issuer(i: &Issuer) {
    println!("{}  ({})", i.name, i.algorithm);
    for c in &i.certificates {
        println!(
            "  {:<8} {:<9} {}  until {}",
            role(c.role()),
            state(c.state()),
            c.subject,
            output::time_text(seconds(&c.not_after))
        );
        println!("           sha256 {}", c.sha256);
    }
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let client = g.client().await?;
    match a.command {
        Command::List => {
            let issuers = client.issuers().await?;
            if g.json {
                let v: Vec<_> = issuers.iter().map(issuer_json).collect();
                return output::print_json(&json!(v));
            }
            for i in &issuers {
                print_issuer(i);
            }
        }
        Command::Show { name, out } => {
            let i = client.issuer(&name).await?;
            if let Some(out) = out {
                let ders = i.certificates.iter().map(|c| c.der.as_slice());
                output::write(&out, ecca::pemfile::certs_to_pem(ders).as_bytes())?;
            }
            if g.json {
                return output::print_json(&issuer_json(&i));
            }
            print_issuer(&i);
        }
    }
    Ok(())
}
