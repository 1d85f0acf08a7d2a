//! `ecca`: the ops CLI for the ecca certificate authority.
//!
//! Exit codes: 0 success; 1 the server (or a check) refused; 2 usage or input error;
//! 3 the server could not be reached.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod context;
mod creds;
mod output;

use context::Global;

/// Ops CLI for ecca, the e-commerce certificate authority.
#[derive(Debug, Parser)]
#[command(
    name = "ecca",
    version,
    after_help = "Examples:\n  ecca --data-dir ./ecca-data profiles\n  ecca keygen --out shop.key\n  ecca csr --key shop.key --cn shop.example --dns shop.example --out shop.csr\n  ecca --data-dir ./ecca-data issue --csr shop.csr --profile server-tls --out shop.pem --chain-out chain.pem\n\nExit codes: 0 ok, 1 refused, 2 usage or input error, 3 server unreachable."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a CA in an empty data directory (what ecca-server does on first start).
    Init(commands::init::Args),
    /// Write the CA's root certificates (trust anchors) to a file.
    Roots(commands::roots::Args),
    /// Issue a certificate from a CSR under a profile.
    Issue(commands::issue::Args),
    /// Show one certificate.
    Show(commands::show::Args),
    /// List issued certificates.
    List(commands::list::Args),
    /// Revoke a certificate (permanent; OCSP and CRLs follow within a second).
    Revoke(commands::revoke::Args),
    /// Write the current CRL (full or delta) to a file.
    Crl(commands::crl::Args),
    /// Statistics and evaluation indicators (issued, active, revoked, per platform, ...).
    Stats(commands::stats::Args),
    /// A month's statistics report (JSON, HTML with charts), signed by the CA.
    Report(commands::report::Args),
    /// The read-only web console: `ecca console login` prints a one-time login link.
    Console(commands::console::Args),
    /// Cross-certify another region's CA with our root (admin).
    CrossCertify(commands::cross_certify::Args),
    /// The CA hierarchies (issuers): list, show, add, rotate (issuing CA or root), retire.
    Issuer(commands::issuer::Args),
    /// Manage peer CAs (federation registry).
    Peers(commands::peers::Args),
    /// Build and validate a certificate path offline (exit 0 valid, 1 invalid, 2 error).
    VerifyChain(commands::verify_chain::Args),
    /// Sign a document: detached CMS (CAdES-BES), optionally timestamped (CAdES-T).
    Sign(commands::sign::Args),
    /// Verify a document signature offline (exit 0 valid, 1 invalid, 2 error); --batch for many.
    VerifySignature(commands::verify_signature::Args),
    /// Manage platforms (tenants) and their credentials (admin).
    Platform(commands::platform::Args),
    /// Create read-only auditor credentials (admin).
    Auditor(commands::auditor::Args),
    /// Verify, tail or search the audit log (admin, auditor).
    Audit(commands::audit::Args),
    /// Move an embedded CA into PostgreSQL, verified (for several servers on one database).
    Migrate(commands::migrate::Args),
    /// Measure throughput and latency against a temporary server (build with --release).
    Bench(commands::bench::Args),
    /// List the certificate profiles.
    Profiles(commands::profiles::Args),
    /// Generate a private key (PKCS#8 PEM, mode 0600).
    Keygen(commands::keygen::Args),
    /// Create a certificate signing request (PKCS#10) for a key.
    Csr(commands::csr::Args),
    /// Subscriber keys: open a dual certificate's encryption key envelope.
    Keys(commands::keys::Args),
    /// Key management centre: recovery officers, key recovery (dual control), its audit log.
    Kmc(commands::kmc::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = &cli.global;
    let result = match cli.command {
        Command::Init(a) => commands::init::run(g, a).await,
        Command::Roots(a) => commands::roots::run(g, a).await,
        Command::Issue(a) => commands::issue::run(g, a).await,
        Command::Show(a) => commands::show::run(g, a).await,
        Command::List(a) => commands::list::run(g, a).await,
        Command::Profiles(a) => commands::profiles::run(g, a).await,
        Command::Revoke(a) => commands::revoke::run(g, a).await,
        Command::Crl(a) => commands::crl::run(g, a).await,
        Command::Stats(a) => commands::stats::run(g, a).await,
        Command::Report(a) => commands::report::run(g, a).await,
        Command::Console(a) => commands::console::run(g, a).await,
        Command::CrossCertify(a) => commands::cross_certify::run(g, a).await,
        Command::Peers(a) => commands::peers::run(g, a).await,
        Command::Issuer(a) => commands::issuer::run(g, a).await,
        Command::Bench(a) => commands::bench::run(g, a).await,
        Command::Migrate(a) => commands::migrate::run(g, a).await,
        Command::Platform(a) => commands::platform::run(g, a).await,
        Command::Auditor(a) => commands::auditor::run(g, a).await,
        Command::Audit(a) => match commands::audit::run(g, a).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
        Command::Sign(a) => commands::sign::run(g, a).await,
        Command::VerifySignature(a) => match commands::verify_signature::run(g, a).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
        Command::VerifyChain(a) => match commands::verify_chain::run(g, a).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
        Command::Keygen(a) => commands::keygen::run(g, a),
        Command::Csr(a) => commands::csr::run(g, a),
        Command::Keys(a) => commands::keys::run(g, a),
        Command::Kmc(a) => match commands::kmc::run(g, a).await {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

fn exit_code(e: &ecca::Error) -> u8 {
    use ecca::Error as E;
    match e {
        E::Remote(_) => 3,
        E::Io { .. }
        | E::InvalidArgument(_)
        | E::InvalidField { .. }
        | E::BadCsr(_)
        | E::Config(_) => 2,
        _ => 1,
    }
}
