//! `ecca kmc`: the key management centre's recovery officers, key recovery with dual control,
//! and its audit log. Officers and the audit log are managed on the KMC's own directory
//! (DATA-DIR/kmc unless --kmc-dir); recoveries are asked for and fetched through the CA
//! (admins) and approved at the KMC with an officer's credential.
use std::path::{Path, PathBuf};

use clap::{Args as ClapArgs, Subcommand};
use ecca::client::Credentials;
use ecca::kmc::client::KmcClient;
use ecca::kmc::{Kmc, KmcOptions, KmcRole};
use ecca::{Error, Result};
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca --data-dir ./ecca-data kmc officer add alice --out ./alice\n  ecca --data-dir ./ecca-data kmc recover --serial 5F1C... --reason \"owner lost the token\" --to admin-enc.pem\n  ecca --data-dir ./ecca-data kmc approve 9a3e0c1b2d4f6a8e --officer ./alice\n  ecca --data-dir ./ecca-data kmc fetch 9a3e0c1b2d4f6a8e --out recovered.env\n  ecca --data-dir ./ecca-data kmc audit verify"
)]
pub struct Args {
    /// The KMC's data directory, for `officer add` and `audit verify` [default: DATA-DIR/kmc].
    #[arg(long, global = true)]
    kmc_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Recovery officers (who approve key recoveries).
    Officer {
        #[command(subcommand)]
        command: OfficerCommand,
    },
    /// Ask for the escrowed key of an encryption certificate (admin); prints the request id.
    /// Nothing is released until enough officers approve.
    Recover {
        /// Serial of the encryption certificate, hex.
        #[arg(long)]
        serial: String,
        /// Why (recorded in both audit logs).
        #[arg(long)]
        reason: String,
        /// A judicial recovery's case reference.
        #[arg(long = "case", default_value = "")]
        case_reference: String,
        /// The certificate (PEM or DER, issued by this CA) whose key the released key is
        /// enveloped to: the requester's own.
        #[arg(long)]
        to: PathBuf,
    },
    /// Approve a recovery as a recovery officer (each officer once).
    Approve {
        id: String,
        /// The officer's credential folder (from `ecca kmc officer add`) [default: --credentials].
        #[arg(long)]
        officer: Option<PathBuf>,
        /// The KMC, https://host:port [default: the one DATA-DIR/kmc says is running].
        #[arg(long)]
        kmc: Option<String>,
    },
    /// Refuse a recovery as a recovery officer: it is closed and nothing is ever released.
    Refuse {
        id: String,
        /// Why (recorded in the KMC's audit log).
        #[arg(long, default_value = "")]
        reason: String,
        /// The officer's credential folder [default: --credentials].
        #[arg(long)]
        officer: Option<PathBuf>,
        /// The KMC, https://host:port [default: the one DATA-DIR/kmc says is running].
        #[arg(long)]
        kmc: Option<String>,
    },
    /// Fetch the released key of an approved recovery (the admin who asked), enveloped to the
    /// recovery's certificate; `ecca keys open` unwraps it.
    Fetch {
        id: String,
        /// Where to write the envelope (DER, mode 0600).
        #[arg(long)]
        out: PathBuf,
    },
    /// Recoveries, newest first (admins and auditors).
    List,
    /// The KMC's own hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OfficerCommand {
    /// Issue a recovery officer's credential (cert.pem, key.pem 0600, ca.pem) into a folder.
    Add {
        name: String,
        #[arg(long)]
        out: PathBuf,
        /// Re-enrol an officer (expiring or lost credential): their earlier ones stop working.
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain and the signed checkpoints (exit 0 intact, 1 tampered).
    Verify,
}

fn kmc_dir(g: &Global, a: &Option<PathBuf>) -> Result<PathBuf> {
    match (a, &g.data_dir) {
        (Some(dir), _) => Ok(dir.clone()),
        (None, Some(data)) => Ok(ecca::layout::Layout::new(data).kmc_dir()),
        (None, None) => Err(Error::InvalidArgument(
            "say where the KMC's directory is: --kmc-dir DIR, or --data-dir of the CA that runs it"
                .into(),
        )),
    }
}

fn open_local(dir: &Path) -> Result<Kmc> {
    if !dir.join("master.key").exists() {
        return Err(Error::InvalidArgument(format!(
            "{} is not a KMC directory (no master.key); start ecca-server or ecca-kmc first",
            dir.display()
        )));
    }
    Kmc::open(dir, KmcOptions::default())
}

fn recovery_json(r: &ecca::proto::KeyRecovery) -> serde_json::Value {
    let t = |t: Option<prost_types::Timestamp>| {
        t.map(|t| output::time_text(t.seconds)).unwrap_or_default()
    };
    json!({
        "id": r.id, "serial": r.serial, "reason": r.reason, "case_reference": r.case_reference,
        "requester": r.requester, "state": r.state, "approvals": r.approvals,
        "required": r.required, "created_at": t(r.created_at), "expires_at": t(r.expires_at),
    })
}

fn recovery_line(
    id: &str,
    serial: &str,
    state: &str,
    approvals: &[String],
    required: u32,
) -> String {
    format!(
        "{id}  serial {serial}  {state}  {}/{required} approvals{}",
        approvals.len(),
        if approvals.is_empty() {
            String::new()
        } else {
            format!(" ({})", approvals.join(", "))
        }
    )
}

/// A connection to the KMC as a recovery officer.
fn officer_client(
    g: &Global,
    kmc_dir_arg: &Option<PathBuf>,
    officer: Option<PathBuf>,
    kmc: Option<String>,
) -> Result<KmcClient> {
    let creds_dir = officer.or_else(|| g.credentials.clone()).ok_or_else(|| {
        Error::InvalidArgument(
            "say which officer: --officer DIR (from `ecca kmc officer add`)".into(),
        )
    })?;
    let creds = Credentials::load(&creds_dir)?;
    let local = kmc_dir(g, kmc_dir_arg).ok();
    // A credential of another CA would only fail the TLS handshake: say so plainly.
    if let Some(dir) = &local
        && let Ok(ca) = std::fs::read(dir.join("ca.pem"))
        && ca != creds.ca_pem()
    {
        return Err(Error::InvalidArgument(format!(
            "{} is not a credential of this KMC; recovery officers get theirs from `ecca kmc officer add NAME --out DIR`",
            creds_dir.display()
        )));
    }
    let url = match (kmc, &local) {
        (Some(url), _) => url,
        (None, Some(dir)) => ecca::server::kmc::kmc_url(dir)?,
        (None, None) => {
            return Err(Error::InvalidArgument(
                "say where the KMC is: --kmc https://HOST:PORT, --kmc-dir DIR or --data-dir".into(),
            ));
        }
    };
    KmcClient::new(&url, &creds)
}

/// Returns whether the checked thing was intact (for `audit verify`; true otherwise).
pub async fn run(g: &Global, a: Args) -> Result<bool> {
    match a.command {
        Command::Officer {
            command: OfficerCommand::Add { name, out, replace },
        } => {
            let kmc = open_local(&kmc_dir(g, &a.kmc_dir)?)?;
            let sha256 = ecca::server::kmc::write_kmc_credential(
                &kmc,
                KmcRole::Officer,
                &name,
                &out,
                "ecca kmc officer add",
                replace,
            )?;
            if g.json {
                output::print_json(
                    &json!({"officer": name, "credentials": out, "sha256": sha256}),
                )?;
            } else {
                println!(
                    "recovery officer {name:?}: credential in {} (sha256 {sha256}); approve with `ecca kmc approve ID --officer {}`",
                    out.display(),
                    out.display()
                );
            }
        }
        Command::Recover {
            serial,
            reason,
            case_reference,
            to,
        } => {
            let r = g
                .client()
                .await?
                .request_key_recovery(ecca::proto::KeyRecoveryRequest {
                    serial,
                    reason,
                    case_reference,
                    recipient_certificate: output::read(&to)?,
                })
                .await?;
            if g.json {
                output::print_json(&recovery_json(&r))?;
            } else {
                println!("{}", r.id);
                eprintln!(
                    "recovery {} of {} opened: {} officer approvals needed (`ecca kmc approve {} --officer DIR`), then `ecca kmc fetch {} --out FILE`",
                    r.id, r.serial, r.required, r.id, r.id
                );
            }
        }
        Command::Approve { id, officer, kmc } => {
            let r = officer_client(g, &a.kmc_dir, officer, kmc)?
                .approve(&id)
                .await?;
            if g.json {
                output::print_json(&json!({
                    "id": r.id, "serial": r.serial, "state": r.state,
                    "approvals": r.approvals, "required": r.required,
                }))?;
            } else {
                println!(
                    "{}",
                    recovery_line(&r.id, &r.serial, &r.state, &r.approvals, r.required)
                );
            }
        }
        Command::Refuse {
            id,
            reason,
            officer,
            kmc,
        } => {
            let r = officer_client(g, &a.kmc_dir, officer, kmc)?
                .refuse(&id, &reason)
                .await?;
            if g.json {
                output::print_json(&json!({"id": r.id, "serial": r.serial, "state": r.state}))?;
            } else {
                println!("recovery {} refused: nothing will be released", r.id);
            }
        }
        Command::Fetch { id, out } => {
            let released = g.client().await?.fetch_key_recovery(&id).await?;
            ecca::pemfile::write_private(&out, &released.envelope)?;
            if g.json {
                output::print_json(&json!({
                    "id": id, "envelope": out, "envelope_type": released.envelope_type,
                    "recovery": released.recovery.as_ref().map(recovery_json),
                }))?;
            } else {
                println!(
                    "wrote the released key of recovery {id} to {} ({}); open it with `ecca keys open --envelope {} --key YOUR.key --out KEY`",
                    out.display(),
                    released.envelope_type,
                    out.display()
                );
            }
        }
        Command::List => {
            let all = g.client().await?.key_recoveries().await?;
            if g.json {
                output::print_json(&serde_json::Value::Array(
                    all.iter().map(recovery_json).collect(),
                ))?;
            } else if all.is_empty() {
                println!("no key recoveries");
            } else {
                for r in &all {
                    println!(
                        "{}",
                        recovery_line(&r.id, &r.serial, &r.state, &r.approvals, r.required)
                    );
                }
            }
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let verdict = open_local(&kmc_dir(g, &a.kmc_dir)?)?.verify_audit()?;
            if g.json {
                output::print_json(&json!({
                    "intact": verdict.problem.is_none(), "entries": verdict.entries,
                    "checkpoints": verdict.checkpoints, "covered_by_checkpoint": verdict.covered,
                    "problem": verdict.problem,
                }))?;
            } else if let Some(p) = &verdict.problem {
                println!("KMC audit log TAMPERED: {p}");
            } else {
                println!(
                    "KMC audit log intact: {} entries, {} signed checkpoint(s), the latest covering entry {}",
                    verdict.entries, verdict.checkpoints, verdict.covered
                );
            }
            return Ok(verdict.problem.is_none());
        }
    }
    Ok(true)
}
