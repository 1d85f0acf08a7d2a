//! `ecca issuer`: the CA hierarchies (issuers) and the state of each of their CA
//! certificates; adding a hierarchy, rotating its issuing CA or root, retiring old CAs.
use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};
use ecca::proto::{CaRole, CaState, Issuer, IssuerChange};
use ecca::{Error, Result};
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca issuer list --json\n  ecca issuer show default --out default-chain.pem\n  ecca issuer add --name intl --algorithm p384 --dry-run\n  ecca issuer add --name intl --algorithm p384 --yes\n  ecca issuer rotate default --yes            (new issuing CA; the old one retires)\n  ecca issuer rotate default --root --yes     (root rollover with link certificates)\n  ecca issuer retire default --ca 3f2a9c0d5e6b7a81 --yes\n\nState changes need --yes (or --dry-run to see what would happen)."
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
    /// Make a new hierarchy: a root and an issuing CA (keys in the HSM when configured).
    Add {
        /// 1-32 characters of a-z, 0-9 and '-'; profiles name it in `issuer = "..."`.
        #[arg(long)]
        name: String,
        /// p256, p384 or ed25519 (rsa3072 and sm2 are not in this build).
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Replace a hierarchy's issuing CA (or with --root its root) without stopping issuance.
    Rotate {
        name: String,
        /// Roll the root over: a new root, link certificates both ways, a new issuing CA.
        #[arg(long)]
        root: bool,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Retire a retiring CA certificate once nothing it answers for is unexpired.
    Retire {
        name: String,
        /// The CA id (`ecca issuer show NAME`); may be left out when only one is retiring.
        #[arg(long, default_value = "")]
        ca: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

/// Every state change is confirmed, or only tried.
#[derive(Debug, ClapArgs)]
struct Confirm {
    /// Show what would change and stop.
    #[arg(long, conflicts_with = "yes")]
    dry_run: bool,
    /// Make the change.
    #[arg(long)]
    yes: bool,
}

impl Confirm {
    /// True for a dry run; refuses when neither flag is given.
    fn dry_run(&self, what: &str) -> Result<bool> {
        if !self.dry_run && !self.yes {
            return Err(Error::InvalidArgument(format!(
                "{what} changes the CA: repeat with --dry-run to see what would happen, or --yes to do it"
            )));
        }
        Ok(self.dry_run)
    }
}

fn role(r: CaRole) -> &'static str {
    match r {
        CaRole::Root => "root",
        CaRole::Issuing => "issuing",
        CaRole::Link => "link",
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
                "serial": c.serial, "sha256": c.sha256, "ca_id": c.ca_id, "parent": c.parent,
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
            "  {:<8} {:<9} {:<16} {}  until {}",
            role(c.role()),
            state(c.state()),
            c.ca_id,
            c.subject,
            output::time_text(seconds(&c.not_after))
        );
        println!("           sha256 {}", c.sha256);
    }
}

fn print_change(g: &Global, c: &IssuerChange) -> Result<()> {
    if g.json {
        return output::print_json(&json!({
            "dry_run": c.dry_run, "summary": c.summary, "added": c.added,
            "retiring": c.retiring, "retired": c.retired,
            "issuer": c.issuer.as_ref().map(issuer_json),
        }));
    }
    if let Some(i) = &c.issuer {
        print_issuer(i);
    }
    println!("{}", c.summary);
    if c.dry_run {
        println!("(dry run: nothing changed; repeat with --yes)");
    }
    Ok(())
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
        Command::Add {
            name,
            algorithm,
            confirm,
        } => {
            let dry = confirm.dry_run("issuer add")?;
            print_change(g, &client.add_issuer(&name, &algorithm, dry).await?)?;
        }
        Command::Rotate {
            name,
            root,
            confirm,
        } => {
            let dry = confirm.dry_run("issuer rotate")?;
            print_change(g, &client.rotate_issuer(&name, root, dry).await?)?;
        }
        Command::Retire { name, ca, confirm } => {
            let dry = confirm.dry_run("issuer retire")?;
            print_change(g, &client.retire_issuer(&name, &ca, dry).await?)?;
        }
    }
    Ok(())
}
