//! `ecca init`: create a CA in an empty data directory, with explicit options.
use clap::Args as ClapArgs;
use ecca::config::{Pkcs11Section, ServerConfig};
use ecca::core::keys::CaKeyAlg;
use ecca::{Error, Result};
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Example:\n  ecca --data-dir ./ecca-data init --alg p384 --org \"Zhejiang E-Commerce CA\" --server-name ca.example.cn\n  ecca --data-dir ./ecca-data init --national gm      (an SM2 hierarchy too; its sm2-* profiles are offered at once)"
)]
pub struct Args {
    /// CA key algorithm.
    #[arg(long, default_value = "p256", value_parser = ["p256", "p384", "ed25519"])]
    alg: String,
    /// Organization in the CA names (the common names are "<org> Root CA", "<org> Issuing CA 1").
    #[arg(long, default_value = "ecca")]
    org: String,
    /// Country code in the CA names.
    #[arg(long, default_value = "CN")]
    country: String,
    /// Root CA validity in days.
    #[arg(long, default_value_t = 7300)]
    root_days: u32,
    /// Issuing CA validity in days (at most the root's).
    #[arg(long, default_value_t = 3650)]
    issuing_days: u32,
    /// Also make a national-algorithm (SM2) hierarchy of this name (the sm2-* profiles use
    /// `gm`), beside the international one.
    #[arg(long, value_name = "NAME")]
    national: Option<String>,
    /// Extra DNS name or IP address for the server's TLS certificate (repeatable).
    #[arg(long = "server-name")]
    server_names: Vec<String>,
    /// Base URL of the HTTP side as relying parties reach it, written into certificates
    /// (CRL, OCSP, CA certificate URLs) [default: http://127.0.0.1:7080].
    #[arg(long)]
    public_base_url: Option<String>,
    /// Generate the root and issuing CA keys inside this PKCS#11 module's token
    /// (non-extractable); the PIN comes from --pkcs11-pin-file or $ECCA_PKCS11_PIN.
    #[arg(long, requires = "pkcs11_token")]
    pkcs11_module: Option<std::path::PathBuf>,
    /// Label of the PKCS#11 token that holds the CA keys.
    #[arg(long, requires = "pkcs11_module")]
    pkcs11_token: Option<String>,
    /// File whose first line is the token's user PIN.
    #[arg(long, requires = "pkcs11_module")]
    pkcs11_pin_file: Option<std::path::PathBuf>,
    /// Keep the CA's state in this (empty) PostgreSQL database instead of SQLite, so several
    /// servers can share it.
    #[arg(long, env = "ECCA_DATABASE", value_name = "postgres://...")]
    database: Option<String>,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let dir = g
        .data_dir
        .clone()
        .ok_or_else(|| Error::InvalidArgument("init needs --data-dir DIR".into()))?;
    if ecca::layout::Layout::new(&dir).is_initialized() {
        return Err(Error::InvalidArgument(format!(
            "{} already holds a CA",
            dir.display()
        )));
    }
    if a.country.len() != 2 || !a.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Error::field("--country", "a two-letter code such as CN"));
    }
    let mut config = ServerConfig::new(&dir);
    config.init.algorithm = CaKeyAlg::parse(&a.alg).unwrap_or_default();
    config.init.organization = a.org;
    config.init.country = a.country;
    config.init.root_days = a.root_days;
    config.init.issuing_days = a.issuing_days;
    config.server_names = a.server_names;
    config.public_base_url = a.public_base_url;
    config.database = a.database;
    if let Some(name) = &a.national {
        ecca::authority::check_name(name)?;
    }
    config.national_issuer = a.national;
    if let (Some(module), Some(token_label)) = (a.pkcs11_module, a.pkcs11_token) {
        config.pkcs11 = Some(Pkcs11Section {
            module,
            token_label,
            pin_file: a.pkcs11_pin_file,
        });
    }
    let base_url = config.base_url(config.http_listen);
    let (service, _) = ecca::server::prepare(&config, &base_url, None).await?;
    let root = &service.authority().root;
    let fingerprint = ecca::core::fingerprint(&root.der);
    if g.json {
        return output::print_json(&json!({"data_dir": dir, "root_sha256": fingerprint}));
    }
    println!("created a CA in {}", dir.display());
    println!(
        "root certificate: {}/ca/root.pem (SHA-256 {fingerprint})",
        dir.display()
    );
    println!("admin credential: {}/admin", dir.display());
    if let Some(name) = &config.national_issuer {
        println!("national-algorithm (SM2) hierarchy: {name} (`ecca issuer show {name}`)");
    }
    match &config.pkcs11 {
        Some(p) => {
            println!(
                "CA keys: in PKCS#11 token {:?} (non-extractable)",
                p.token_label
            );
            println!(
                "next: put this [pkcs11] table in the server's config file, then ecca-server --data-dir {} --config FILE\n\n[pkcs11]\nmodule = {:?}\ntoken_label = {:?}",
                dir.display(),
                p.module,
                p.token_label
            );
            match &p.pin_file {
                Some(f) => println!("pin_file = {f:?}"),
                None => println!("# PIN: set ECCA_PKCS11_PIN for the server, or add pin_file"),
            }
        }
        None => match &config.database {
            Some(url) => println!(
                "CA state: in PostgreSQL at {}\nnext: ecca-server --data-dir {} --database <the same URL> (or `database` in the config file, or $ECCA_DATABASE)",
                ecca::store::postgres::redact(url),
                dir.display()
            ),
            None => println!("next: ecca-server --data-dir {}", dir.display()),
        },
    }
    Ok(())
}
