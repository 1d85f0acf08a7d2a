//! `ecca-kmc`: the key management centre (GM/T 0034) on its own, for deployments that keep
//! escrowed keys apart from the CA (`ecca-server` otherwise runs one under DIR/kmc/).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ecca::kmc::{Kmc, KmcOptions, KmcRole};
use ecca::server::kmc::{KmcConfig, serve_kmc, write_kmc_credential};

/// Key management centre: generates, escrows and envelopes dual certificates' encryption keys.
///
/// Serves `ecca.kmc.v1` over mutual TLS to CA instances and recovery officers holding its
/// credentials. The master key (DATA-DIR/master.key, 0600) is encrypted with
/// $ECCA_KEY_PASSPHRASE or $ECCA_KEY_PASSPHRASE_FILE when set.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  ecca-kmc --data-dir ./kmc enroll-ca --out ./ca-data/kmc-client\n  ecca-kmc --data-dir ./kmc officer-add alice --out ./alice\n  ecca-kmc --data-dir ./kmc --listen 127.0.0.1:7444 --approvals 2\n  ecca-server --data-dir ./ca-data --config ca.toml   # [kmc] url = \"https://127.0.0.1:7444\""
)]
struct Args {
    /// The KMC's data directory: master key, credential CA, escrow store, audit log.
    #[arg(long, env = "ECCA_KMC_DATA_DIR")]
    data_dir: PathBuf,
    /// Listen address [default: 127.0.0.1:7444].
    #[arg(long, default_value = "127.0.0.1:7444")]
    listen: SocketAddr,
    /// Distinct recovery officers who must approve a key recovery.
    #[arg(long, default_value_t = KmcOptions::default().approvals)]
    approvals: u32,
    /// Hours a recovery request stays open.
    #[arg(long, default_value_t = 24)]
    recovery_hours: u32,
    /// Extra DNS name or IP address for the KMC's TLS certificate (repeatable).
    #[arg(long = "server-name")]
    server_names: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Issues a credential for a CA instance (its `[kmc] credentials` folder) and exits.
    EnrollCa {
        /// A name for the CA instance.
        #[arg(long, default_value = "ca")]
        name: String,
        /// Folder for cert.pem, key.pem (0600) and ca.pem.
        #[arg(long)]
        out: PathBuf,
        /// Replace the credential in --out (renewal).
        #[arg(long)]
        replace: bool,
    },
    /// Issues a recovery officer's credential and exits.
    OfficerAdd {
        name: String,
        /// Folder for cert.pem, key.pem (0600) and ca.pem.
        #[arg(long)]
        out: PathBuf,
        /// Re-enrol an officer: their earlier credentials stop working.
        #[arg(long)]
        replace: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    ecca::server::init_logging();
    let args = Args::parse();
    let options = KmcOptions {
        approvals: args.approvals,
        recovery_ttl: i64::from(args.recovery_hours.max(1)) * 3600,
    };
    if let Some(command) = args.command {
        let (role, name, out, replace) = match command {
            Command::EnrollCa { name, out, replace } => (KmcRole::Ca, name, out, replace),
            Command::OfficerAdd { name, out, replace } => (KmcRole::Officer, name, out, replace),
        };
        let done = Kmc::open(&args.data_dir, options)
            .and_then(|kmc| write_kmc_credential(&kmc, role, &name, &out, "ecca-kmc", replace));
        return match done {
            Ok(sha256) => {
                println!(
                    "ecca-kmc: {} credential {name:?} in {} (sha256 {sha256})",
                    role.as_str(),
                    out.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        };
    }
    let running = match serve_kmc(KmcConfig {
        dir: args.data_dir.clone(),
        listen: args.listen,
        options,
        server_names: args.server_names,
        limits: ecca::listen::Limits::default(),
    })
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    ecca::server::say(format_args!("ecca-kmc: gRPC (mTLS) on {}", running.url()));
    ecca::server::say(format_args!(
        "ecca-kmc: recoveries need {} officer approvals; stop with Ctrl-C",
        options.approvals
    ));
    ecca::server::stop_requested().await;
    running.shutdown().await;
    ExitCode::SUCCESS
}
