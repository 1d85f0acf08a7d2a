//! `ecca console`: the server's read-only web console.
use clap::{Args as ClapArgs, Subcommand};
use ecca::Result;
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a one-time https:// login link to the console (admins and auditors; it works
    /// once, within five minutes).
    #[command(
        after_help = "Examples:\n  ecca console login\n  ecca --server https://ca.example:7443 --credentials ./auditor console login\n\nThe console listens on 127.0.0.1:9465 by default (--console-listen); its TLS certificate\nchains to DATA_DIR/admin/ca.pem."
    )]
    Login,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let Command::Login = a.command;
    let login = g.client().await?.console_login().await?;
    let expires = output::time_text(login.expires_at.map_or(0, |t| t.seconds));
    if g.json {
        return output::print_json(&json!({"url": login.url, "expires_at": expires}));
    }
    println!("{}", login.url);
    eprintln!("(works once, until {expires})");
    Ok(())
}
