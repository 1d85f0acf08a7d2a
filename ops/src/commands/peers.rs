//! `ecca peers`: the federation registry (other regions' CAs, a bridge).
use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};
use ecca::proto::{AddPeerRequest, Peer, PeerStatus};
use ecca::{Error, Result};
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
    /// Register a peer CA (and cross-certificates it issued for our root).
    Add {
        #[arg(long)]
        name: String,
        /// The peer's CA certificate (PEM or DER).
        #[arg(long)]
        ca_cert: PathBuf,
        /// A cross-certificate the peer issued for our root (repeatable).
        #[arg(long)]
        received_cross: Vec<PathBuf>,
    },
    /// List peers.
    List,
    /// Show one peer; --out writes its CA and cross-certificates as PEM.
    Show {
        name: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Suspend a peer: its cross-certificates leave the trust bundle.
    Suspend { name: String },
    /// Reactivate a suspended peer.
    Resume { name: String },
    /// Remove a peer and revoke the cross-certificates issued to it.
    Remove {
        name: String,
        /// Confirm; without it nothing changes.
        #[arg(long)]
        yes: bool,
    },
}

fn status(p: &Peer) -> &'static str {
    match p.status() {
        PeerStatus::Active => "active",
        PeerStatus::Suspended => "suspended",
        PeerStatus::Unspecified => "unknown",
    }
}

fn peer_json(p: &Peer) -> serde_json::Value {
    json!({
        "name": p.name, "subject": p.subject, "status": status(p),
        "issued_cross": p.issued_cross_der.len(), "received_cross": p.received_cross_der.len(),
        "ca_sha256": ecca::core::fingerprint(&p.ca_cert_der),
    })
}

fn print_peer(p: &Peer) {
    println!("{}  [{}]", p.name, status(p));
    println!("  subject:        {}", p.subject);
    println!(
        "  CA SHA-256:     {}",
        ecca::core::fingerprint(&p.ca_cert_der)
    );
    println!(
        "  cross-certificates: {} issued by us, {} received",
        p.issued_cross_der.len(),
        p.received_cross_der.len()
    );
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let client = g.client().await?;
    match a.command {
        Command::Add {
            name,
            ca_cert,
            received_cross,
        } => {
            let received = received_cross
                .iter()
                .map(|p| output::read(p))
                .collect::<Result<_>>()?;
            let p = client
                .add_peer(AddPeerRequest {
                    name,
                    ca_cert: output::read(&ca_cert)?,
                    received_cross: received,
                })
                .await?;
            if g.json {
                return output::print_json(&peer_json(&p));
            }
            print_peer(&p);
        }
        Command::List => {
            let peers = client.peers().await?;
            if g.json {
                return output::print_json(&json!(peers.iter().map(peer_json).collect::<Vec<_>>()));
            }
            for p in &peers {
                print_peer(p);
            }
            println!("({} peer(s))", peers.len());
        }
        Command::Show { name, out } => {
            let p = client.peer(&name).await?;
            if let Some(out) = out {
                let all = std::iter::once(&p.ca_cert_der)
                    .chain(&p.issued_cross_der)
                    .chain(&p.received_cross_der);
                output::write(
                    &out,
                    ecca::pemfile::certs_to_pem(all.map(Vec::as_slice)).as_bytes(),
                )?;
            }
            if g.json {
                return output::print_json(&peer_json(&p));
            }
            print_peer(&p);
        }
        Command::Suspend { name } => {
            print_peer(&client.set_peer_status(&name, PeerStatus::Suspended).await?)
        }
        Command::Resume { name } => {
            print_peer(&client.set_peer_status(&name, PeerStatus::Active).await?)
        }
        Command::Remove { name, yes } => {
            if !yes {
                let p = client.peer(&name).await?;
                print_peer(&p);
                return Err(Error::InvalidArgument(format!(
                    "this removes {name} and revokes {} cross-certificate(s); repeat with --yes",
                    p.issued_cross_der.len()
                )));
            }
            let revoked = client.remove_peer(&name).await?;
            if g.json {
                return output::print_json(&json!({"removed": name, "revoked": revoked}));
            }
            println!(
                "removed {name}; revoked {} cross-certificate(s)",
                revoked.len()
            );
        }
    }
    Ok(())
}
