//! `ecca auditor`: read-only credentials for auditors.
use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};
use ecca::Result;

use crate::context::Global;
use crate::creds;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an auditor credential (key made here) in --out.
    Add {
        name: String,
        #[arg(long)]
        out: PathBuf,
    },
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let Command::Add { name, out } = a.command;
    ecca::pemfile::private_dir(&out)?;
    let csr = creds::new_key_and_csr(&out, &format!("auditor {name}"))?;
    let cred = g.client().await?.add_auditor(&name, csr).await?;
    creds::write(&out, &cred)?;
    if g.json {
        return crate::output::print_json(&serde_json::json!({
            "name": name, "serial": cred.serial, "out": out,
        }));
    }
    println!(
        "auditor {name}: credential {} in {}",
        cred.serial,
        out.display()
    );
    Ok(())
}
