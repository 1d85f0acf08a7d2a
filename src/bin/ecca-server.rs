//! `ecca-server`: the CA's gRPC API (mutual TLS) and its HTTP side.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ecca::config::{ConfigFile, ServerConfig};
use ecca::core::keys::CaKeyAlg;

/// Certificate authority for e-commerce: issues over gRPC (mTLS), publishes over HTTP.
///
/// On first start with an empty --data-dir it creates a root CA, an issuing CA, the server's
/// TLS certificate and an admin client credential (DIR/admin), without prompting.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Example:\n  ecca-server --data-dir ./ecca-data\n  ecca --data-dir ./ecca-data profiles"
)]
struct Args {
    /// Data directory: CA keys and certificates, the database, the admin credential.
    #[arg(long, env = "ECCA_DATA_DIR")]
    data_dir: PathBuf,
    /// gRPC (mutual TLS) listen address [default: 127.0.0.1:7443].
    #[arg(long)]
    grpc_listen: Option<SocketAddr>,
    /// HTTP listen address for CA certificates and health [default: 127.0.0.1:7080].
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Prometheus metrics listener, path /metrics, or "off" [default: 127.0.0.1:9464].
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Read-only web console (HTTPS; open it with `ecca console login`), or "off"
    /// [default: 127.0.0.1:9465].
    #[arg(long)]
    console_listen: Option<String>,
    /// ACME server (RFC 8555, HTTPS; directory at /acme/directory; accounts bound to a
    /// platform with `ecca platform acme-key`), or "off" [default: 127.0.0.1:9466].
    #[arg(long)]
    acme_listen: Option<String>,
    /// DNS server every ACME validation lookup (A/AAAA/TXT/CAA) goes to, e.g. 127.0.0.1:8053
    /// (tests, closed networks; loopback names are validated only with it) [default: the
    /// system's resolvers].
    #[arg(long)]
    acme_dns_resolver: Option<SocketAddr>,
    /// Port ACME HTTP-01 validation connects to [default: 80].
    #[arg(long = "acme-http01-port")]
    acme_http01_port: Option<u16>,
    /// Port ACME TLS-ALPN-01 validation connects to [default: 443].
    #[arg(long = "acme-tlsalpn01-port")]
    acme_tlsalpn01_port: Option<u16>,
    /// Base URL of the HTTP side as relying parties reach it; written into every certificate
    /// for CRLs, OCSP and the CA certificates [default: http://<http-listen>].
    #[arg(long)]
    public_base_url: Option<String>,
    /// TOML configuration file (see README "Configuration").
    #[arg(long)]
    config: Option<PathBuf>,
    /// CA key algorithm, used only when the data directory is initialized.
    #[arg(long, value_parser = ["p256", "p384", "ed25519"])]
    algorithm: Option<String>,
    /// Extra DNS name or IP address for the server's TLS certificate (repeatable).
    #[arg(long = "server-name")]
    server_names: Vec<String>,
    /// Shared PostgreSQL database, postgres://user:password@host:port/db (several instances
    /// may use one) [default: SQLite in the data directory].
    #[arg(long, env = "ECCA_DATABASE")]
    database: Option<String>,
    /// A key management centre run apart (`ecca-kmc`), https://host:port [default: run one
    /// under DIR/kmc/].
    #[arg(long, env = "ECCA_KMC")]
    kmc: Option<String>,
    /// The CA's credential for that KMC (from `ecca-kmc enroll-ca`) [default: DIR/kmc-client].
    #[arg(long)]
    kmc_credentials: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    ecca::server::init_logging();
    let args = Args::parse();
    let mut config = ServerConfig::new(&args.data_dir);
    if let Some(path) = &args.config {
        match ConfigFile::load(path).and_then(|file| config.apply_file(file)) {
            Ok(()) => {}
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(a) = args.grpc_listen {
        config.grpc_listen = a;
    }
    if let Some(a) = args.http_listen {
        config.http_listen = a;
    }
    let listens = [
        (
            "metrics_listen",
            &args.metrics_listen,
            &mut config.metrics_listen,
            ecca::config::DEFAULT_METRICS_LISTEN,
        ),
        (
            "console_listen",
            &args.console_listen,
            &mut config.console_listen,
            ecca::config::DEFAULT_CONSOLE_LISTEN,
        ),
        (
            "acme_listen",
            &args.acme_listen,
            &mut config.acme_listen,
            ecca::config::DEFAULT_ACME_LISTEN,
        ),
    ];
    for (key, arg, slot, example) in listens {
        if let Some(m) = arg {
            match ecca::config::parse_listen(key, m, example) {
                Ok(a) => *slot = a,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    if args.acme_dns_resolver.is_some() {
        config.acme.dns_resolver = args.acme_dns_resolver;
    }
    if args.acme_http01_port.is_some() {
        config.acme.http01_port = args.acme_http01_port;
    }
    if args.acme_tlsalpn01_port.is_some() {
        config.acme.tlsalpn01_port = args.acme_tlsalpn01_port;
    }
    if args.public_base_url.is_some() {
        config.public_base_url = args.public_base_url;
    }
    if let Some(alg) = args.algorithm.as_deref().and_then(CaKeyAlg::parse) {
        config.init.algorithm = alg;
    }
    config.server_names.extend(args.server_names);
    if args.database.is_some() {
        config.database = args.database;
    }
    if args.kmc.is_some() {
        config.kmc.url = args.kmc;
    }
    if args.kmc_credentials.is_some() {
        config.kmc.credentials = args.kmc_credentials;
    }

    let mut running = match ecca::server::start(config.clone()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let dir = config.data_dir.display();
    if running.initialized {
        ecca::server::say(format_args!("ecca: created a new CA in {dir}"));
    }
    ecca::server::say(format_args!(
        "ecca: gRPC (mTLS) on https://{}",
        running.endpoints.grpc
    ));
    ecca::server::say(format_args!(
        "ecca: HTTP on http://{}  (/health, /ca/root.der, /ca/bundle.pem)",
        running.endpoints.http
    ));
    ecca::server::say(format_args!(
        "ecca: admin credential in {dir}/admin (cert.pem, key.pem, ca.pem)"
    ));
    if let Some(addr) = running.endpoints.metrics {
        ecca::server::say(format_args!("ecca: metrics on http://{addr}/metrics"));
    }
    if let Some(addr) = running.endpoints.console {
        ecca::server::say(format_args!(
            "ecca: console on https://{addr}/ (sign in with `ecca console login`)"
        ));
    }
    if let Some(addr) = running.endpoints.acme {
        ecca::server::say(format_args!(
            "ecca: ACME on https://{addr}/acme/directory (EAB keys: `ecca platform acme-key NAME`)"
        ));
    }
    if let Some(kmc) = running.kmc() {
        ecca::server::say(format_args!(
            "ecca: key management centre on {} ({dir}/kmc; dual certificates, `ecca kmc`)",
            kmc.url()
        ));
    }
    ecca::server::say(format_args!(
        "ecca: try `ecca --data-dir {dir} profiles`; stop with Ctrl-C"
    ));
    let failure = running.failure();
    tokio::select! {
        _ = ecca::server::stop_requested() => {
            ecca::server::say(format_args!("ecca: stopping"));
            running.shutdown().await;
        }
        why = failure => {
            eprintln!("error: {why}; stopping (restart ecca-server to recover)");
            running.shutdown().await;
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
