//! Server configuration: an optional TOML file, overridden by command-line flags. Parsed once.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::authority::InitOptions;
use crate::core::keys::CaKeyAlg;
use crate::core::profile::Profiles;
use crate::error::{Error, Result};
use crate::signer::pkcs11::Pkcs11Config;

/// Default gRPC (mTLS) listen address.
pub const DEFAULT_GRPC_LISTEN: &str = "127.0.0.1:7443";
/// Default HTTP listen address (CA certificates, health; CRLs and OCSP later).
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:7080";
/// Default Prometheus metrics listen address (its own listener; "off" disables it).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// The web console's default HTTPS address (loopback: reach it through a tunnel or proxy).
pub const DEFAULT_CONSOLE_LISTEN: &str = "127.0.0.1:9465";
pub const DEFAULT_ACME_LISTEN: &str = "127.0.0.1:9466";
/// Largest gRPC message the CA service accepts.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The `[ca]` table: the hierarchy made at init (algorithm, names), the lifetimes of every
/// root and issuing CA made (at init and by `ecca issuer add|rotate`), and automatic rotation.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    pub algorithm: Option<CaKeyAlg>,
    pub organization: Option<String>,
    pub country: Option<String>,
    pub root_days: Option<u32>,
    pub issuing_days: Option<u32>,
    /// Rotate an issuing CA automatically once it could no longer cover its profiles'
    /// longest validity plus `rotate_margin_days` (default true).
    pub auto_rotate: Option<bool>,
    /// Days of margin for automatic rotation (default 30).
    pub rotate_margin_days: Option<u32>,
    /// Also run a national-algorithm (SM2) hierarchy of this name, made at the first start
    /// that finds it missing (the sm2-* profiles expect `gm`).
    pub national_issuer: Option<String>,
}

/// The `[pkcs11]` table: CA keys in an HSM token. The PIN is read from `pin_file` or
/// $ECCA_PKCS11_PIN when the server starts, never from this file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Section {
    /// The vendor's PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    pub module: PathBuf,
    pub token_label: String,
    pub pin_file: Option<PathBuf>,
}

impl Pkcs11Section {
    /// Reads the PIN and returns what the signer needs.
    pub fn resolve(&self) -> Result<Pkcs11Config> {
        Pkcs11Config::new(
            self.module.clone(),
            self.token_label.clone(),
            self.pin_file.as_deref(),
        )
    }
}

/// The `[limits]` table: what any client, authenticated or not, can hold or ask for.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Longest TLS handshake on the gRPC port, seconds (default 10).
    pub handshake_timeout_secs: Option<u64>,
    /// Longest time to send an HTTP request's headers, seconds (default 10).
    pub header_timeout_secs: Option<u64>,
    /// Connections with nothing in flight are closed after this many seconds (default 60).
    pub idle_timeout_secs: Option<u64>,
    /// Most open connections per listener (default: half the descriptor limit, 16..4096).
    pub max_connections: Option<usize>,
    /// OCSP requests per second per client address (IPv6: per /64); 0 = unlimited (default 200).
    pub ocsp_per_ip: Option<u32>,
    /// Time-stamp requests per second per client address; 0 = unlimited (default 10).
    pub tsa_per_ip: Option<u32>,
    /// ACME requests per second per client address; 0 = unlimited (default 50).
    pub acme_per_ip: Option<u32>,
}

/// Per-client-address request rates on the anonymous HTTP endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// OCSP requests per second (burst: twice that); 0 = unlimited.
    pub ocsp_per_ip: u32,
    /// Time-stamp requests per second (burst: twice that); 0 = unlimited.
    pub tsa_per_ip: u32,
    /// ACME requests per second (burst: twice that); 0 = unlimited.
    pub acme_per_ip: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            ocsp_per_ip: 200,
            tsa_per_ip: 10,
            acme_per_ip: 50,
        }
    }
}

/// The `[kmc]` table: the key management centre dual certificates escrow their encryption
/// keys at. Without `url`, ecca-server runs one itself under DIR/kmc/ with its own keys and
/// store; `ecca-kmc` runs one apart.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmcSection {
    /// A separate KMC, https://host:port (default: run one under DIR/kmc/).
    pub url: Option<String>,
    /// The CA's credential for it: cert.pem, key.pem, ca.pem (default DIR/kmc-client).
    pub credentials: Option<PathBuf>,
    /// Distinct recovery officers who must approve a key recovery (the KMC run here;
    /// default 2).
    pub approvals: Option<u32>,
    /// Hours a recovery request stays open (the KMC run here; default 24).
    pub recovery_hours: Option<u32>,
    /// Where the KMC run here listens (default 127.0.0.1 on a port the OS picks; officers
    /// on other hosts need a fixed, reachable address).
    pub listen: Option<SocketAddr>,
}

/// The `[acme]` table: the ACME server (`acme_listen`) and its validator.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSection {
    /// Accounts must be bound to a platform with a key from `ecca platform acme-key`
    /// (default true).
    pub external_account_required: Option<bool>,
    /// The platform accounts without External Account Binding act for (needed when
    /// external_account_required = false).
    pub default_platform: Option<String>,
    /// The profile orders use when they name none (default "server-tls").
    pub default_profile: Option<String>,
    /// Profiles an order's `profile` field may name (default: ["server-tls"]).
    pub profiles: Option<Vec<String>>,
    /// Base URL ACME clients use (default: https://HOST of each request).
    pub base_url: Option<String>,
    /// DNS server every validation lookup goes to (default: the system's resolvers).
    /// Loopback addresses are validated only when this is set.
    pub dns_resolver: Option<SocketAddr>,
    /// Port HTTP-01 validation connects to (default 80).
    pub http01_port: Option<u16>,
    /// Port TLS-ALPN-01 validation connects to (default 443).
    pub tlsalpn01_port: Option<u16>,
    /// CAA issuer domains that name this CA (default ["ecca"]).
    pub caa_identities: Option<Vec<String>>,
}

/// The configuration file, every key optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub grpc_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    /// Where /metrics is served (default 127.0.0.1:9464), or "off".
    pub metrics_listen: Option<String>,
    /// Where the read-only web console is served over HTTPS (default 127.0.0.1:9465), or "off".
    pub console_listen: Option<String>,
    /// Where the ACME server listens over HTTPS (default 127.0.0.1:9466), or "off".
    pub acme_listen: Option<String>,
    #[serde(default)]
    pub acme: AcmeSection,
    /// Write each month's signed statistics report to DATA_DIR/reports/YYYY-MM/ once the
    /// month is over (default true).
    pub monthly_reports: Option<bool>,
    /// Base URL written into certificates for CRLs, OCSP and CA certificates
    /// (default: http://<http_listen>).
    pub public_base_url: Option<String>,
    /// Extra DNS names / IP addresses for the server's TLS certificate.
    pub server_names: Option<Vec<String>>,
    /// Load profiles from this directory instead of the embedded ones.
    pub profiles_dir: Option<PathBuf>,
    pub max_message_bytes: Option<usize>,
    /// The TSA policy OID written into every timestamp (default: the RFC 5612 example arc).
    pub tsa_policy: Option<String>,
    /// Seconds between signed audit checkpoints (default 60).
    pub audit_checkpoint_secs: Option<u64>,
    /// Days before expiry the gRPC server certificate is renewed (default 30).
    pub tls_renew_before_days: Option<u32>,
    /// Writes waiting for the store at most (default 4096).
    pub store_queue: Option<usize>,
    #[serde(default)]
    pub ca: CaSection,
    pub pkcs11: Option<Pkcs11Section>,
    /// postgres://user:password@host:port/db shared by several instances (default: the
    /// embedded SQLite file in the data directory).
    pub database: Option<String>,
    #[serde(default)]
    pub limits: LimitsSection,
    /// Also accept TLS 1.2 on the gRPC port (default: TLS 1.3 only).
    pub grpc_tls12: Option<bool>,
    /// Networks (CIDRs) the server may fetch CRLs and OCSP answers from although they are
    /// loopback, private or link-local (default: none; public addresses are always allowed).
    pub verify_fetch_allow: Option<Vec<String>>,
    #[serde(default)]
    pub kmc: KmcSection,
}

impl ConfigFile {
    /// Reads and parses a config file; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        // A database password is a secret like a key: the file must be private then.
        if let Some(url) = &file.database
            && crate::store::postgres::redact(url) != *url
        {
            crate::pemfile::check_private(path).map_err(|_| {
                Error::Config(format!(
                    "{}: holds a database password but others can read it; `chmod 600 {}`, or pass the URL in $ECCA_DATABASE",
                    path.display(),
                    path.display()
                ))
            })?;
        }
        Ok(file)
    }
}

/// The effective server configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    /// The Prometheus metrics listener (None: no listener, and nothing counted).
    pub metrics_listen: Option<SocketAddr>,
    /// The web console's HTTPS listener (None: no console).
    pub console_listen: Option<SocketAddr>,
    /// Whether the server writes each finished month's signed report.
    pub monthly_reports: bool,
    pub public_base_url: Option<String>,
    pub server_names: Vec<String>,
    pub profiles_dir: Option<PathBuf>,
    pub max_message_bytes: usize,
    pub tsa_policy: String,
    /// How often the audit chain's head is signed.
    pub audit_checkpoint_every: std::time::Duration,
    /// Renew the gRPC server's TLS certificate this many days before it expires (checked with
    /// every checkpoint; the new one is presented without a restart).
    pub tls_renew_before_days: u32,
    /// Writes waiting for the store at most; more are refused with RESOURCE_EXHAUSTED.
    pub store_queue: usize,
    pub init: InitOptions,
    /// Automatic rotation: an issuing CA is replaced once it could no longer cover its
    /// profiles' longest validity plus this many days (None: off).
    pub rotate_margin_days: Option<u32>,
    /// An SM2 hierarchy to make at start when missing (`[ca] national_issuer`).
    pub national_issuer: Option<String>,
    /// CA keys in an HSM (new CAs generate theirs there; existing ones name theirs by URI).
    pub pkcs11: Option<Pkcs11Section>,
    /// A shared PostgreSQL database (None: SQLite in the data directory).
    pub database: Option<String>,
    /// Timeouts and connection caps of both listeners.
    pub limits: crate::listen::Limits,
    /// Rate limits on /ocsp and /tsa.
    pub rates: RateLimits,
    pub grpc_tls12: bool,
    /// Where VerifyCertificate/VerifySignature may fetch revocation data besides public
    /// addresses.
    pub verify_fetch_allow: Vec<crate::verify::Cidr>,
    /// The key management centre (default: one run here under DIR/kmc/).
    pub kmc: KmcSection,
    /// The ACME listener (None: no ACME).
    pub acme_listen: Option<SocketAddr>,
    pub acme: AcmeSection,
}

impl ServerConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            data_dir: data_dir.into(),
            grpc_listen: DEFAULT_GRPC_LISTEN
                .parse()
                .unwrap_or_else(|_| unreachable!()),
            http_listen: DEFAULT_HTTP_LISTEN
                .parse()
                .unwrap_or_else(|_| unreachable!()),
            metrics_listen: Some(
                DEFAULT_METRICS_LISTEN
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
            ),
            console_listen: Some(
                DEFAULT_CONSOLE_LISTEN
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
            ),
            monthly_reports: true,
            public_base_url: None,
            server_names: Vec::new(),
            profiles_dir: None,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            tsa_policy: crate::core::tsp::DEFAULT_POLICY.into(),
            audit_checkpoint_every: std::time::Duration::from_secs(60),
            tls_renew_before_days: 30,
            store_queue: crate::store::write::QUEUE,
            init: InitOptions::default(),
            rotate_margin_days: Some(30),
            national_issuer: None,
            pkcs11: None,
            database: None,
            limits: crate::listen::Limits::default(),
            rates: RateLimits::default(),
            grpc_tls12: false,
            verify_fetch_allow: Vec::new(),
            kmc: KmcSection::default(),
            acme_listen: Some(
                DEFAULT_ACME_LISTEN
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
            ),
            acme: AcmeSection::default(),
        }
    }

    /// Defaults for a data directory, listening on 127.0.0.1 ports the OS picks (tests, bench).
    pub fn loopback(data_dir: impl Into<PathBuf>) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        ServerConfig {
            grpc_listen: any,
            http_listen: any,
            metrics_listen: Some(any),
            console_listen: Some(any),
            acme_listen: Some(any),
            ..Self::new(data_dir)
        }
    }

    /// The public base URL: configured, or the HTTP address the server listens on.
    pub fn base_url(&self, http_addr: SocketAddr) -> String {
        self.public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{http_addr}"))
    }

    /// Applies a config file on top of the defaults.
    pub fn apply_file(&mut self, file: ConfigFile) -> Result<()> {
        let l = &file.limits;
        let secs = std::time::Duration::from_secs;
        let limits = &mut self.limits;
        if let Some(v) = l.handshake_timeout_secs {
            limits.handshake_timeout = secs(v.max(1));
        }
        if let Some(v) = l.header_timeout_secs {
            limits.header_timeout = secs(v.max(1));
        }
        if let Some(v) = l.idle_timeout_secs {
            limits.idle_timeout = secs(v.max(1));
        }
        if let Some(v) = l.max_connections {
            limits.max_connections = v.max(1);
        }
        if let Some(v) = l.ocsp_per_ip {
            self.rates.ocsp_per_ip = v;
        }
        if let Some(v) = l.tsa_per_ip {
            self.rates.tsa_per_ip = v;
        }
        if let Some(v) = l.acme_per_ip {
            self.rates.acme_per_ip = v;
        }
        if let Some(v) = file.grpc_tls12 {
            self.grpc_tls12 = v;
        }
        if let Some(v) = &file.verify_fetch_allow {
            self.verify_fetch_allow = v
                .iter()
                .map(|c| {
                    crate::verify::Cidr::parse(c)
                        .map_err(|e| Error::Config(format!("verify_fetch_allow: {e}")))
                })
                .collect::<Result<_>>()?;
        }
        if let Some(a) = file.grpc_listen {
            self.grpc_listen = a;
        }
        if let Some(a) = file.http_listen {
            self.http_listen = a;
        }
        if let Some(a) = &file.metrics_listen {
            self.metrics_listen = parse_listen("metrics_listen", a, DEFAULT_METRICS_LISTEN)?;
        }
        if let Some(a) = &file.console_listen {
            self.console_listen = parse_listen("console_listen", a, DEFAULT_CONSOLE_LISTEN)?;
        }
        if let Some(a) = &file.acme_listen {
            self.acme_listen = parse_listen("acme_listen", a, DEFAULT_ACME_LISTEN)?;
        }
        self.acme = file.acme.clone();
        if let Some(m) = file.monthly_reports {
            self.monthly_reports = m;
        }
        if file.public_base_url.is_some() {
            self.public_base_url = file.public_base_url;
        }
        if let Some(n) = file.server_names {
            self.server_names = n;
        }
        if file.profiles_dir.is_some() {
            self.profiles_dir = file.profiles_dir;
        }
        if let Some(m) = file.max_message_bytes {
            self.max_message_bytes = m;
        }
        if let Some(p) = file.tsa_policy {
            self.tsa_policy = p;
        }
        if let Some(s) = file.audit_checkpoint_secs {
            self.audit_checkpoint_every = std::time::Duration::from_secs(s.max(1));
        }
        if let Some(d) = file.tls_renew_before_days {
            self.tls_renew_before_days = d;
        }
        if let Some(q) = file.store_queue {
            self.store_queue = q.max(1);
        }
        if file.pkcs11.is_some() {
            self.pkcs11 = file.pkcs11;
        }
        if file.database.is_some() {
            self.database = file.database;
        }
        let k = file.kmc;
        self.kmc = KmcSection {
            url: k.url.or(self.kmc.url.take()),
            credentials: k.credentials.or(self.kmc.credentials.take()),
            approvals: k.approvals.or(self.kmc.approvals),
            recovery_hours: k.recovery_hours.or(self.kmc.recovery_hours),
            listen: k.listen.or(self.kmc.listen),
        };
        let ca = file.ca;
        let init = &mut self.init;
        init.algorithm = ca.algorithm.unwrap_or(init.algorithm);
        init.organization = ca.organization.unwrap_or_else(|| init.organization.clone());
        init.country = ca.country.unwrap_or_else(|| init.country.clone());
        init.root_days = ca.root_days.unwrap_or(init.root_days);
        init.issuing_days = ca.issuing_days.unwrap_or(init.issuing_days);
        if let Some(days) = ca.rotate_margin_days {
            self.rotate_margin_days = Some(days);
        }
        if ca.auto_rotate == Some(false) {
            self.rotate_margin_days = None;
        }
        if ca.national_issuer.is_some() {
            self.national_issuer = ca.national_issuer;
        }
        Ok(())
    }
}

/// A metrics listen address, or "off".
pub fn parse_listen(key: &str, s: &str, example: &str) -> Result<Option<SocketAddr>> {
    if s == "off" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        Error::Config(format!(
            "{key} {s:?} is neither an address such as {example} nor \"off\""
        ))
    })
}

/// Every `*.toml` in a directory as a profile; the file stem is the profile name.
pub fn load_profiles(dir: &Path) -> Result<Profiles> {
    let mut texts = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        texts.push((name.to_string(), path.display().to_string(), text));
    }
    if texts.is_empty() {
        return Err(Error::Config(format!(
            "{}: no *.toml profiles found",
            dir.display()
        )));
    }
    Ok(Profiles::from_texts(texts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_needs_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecca.toml");
        std::fs::write(&path, "database = \"postgres://ecca:secret@db/ecca\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ConfigFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(ConfigFile::load(&path).unwrap().database.is_some());
        // Without a password the URL is no secret.
        std::fs::write(&path, "database = \"postgres://ecca@db/ecca\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(ConfigFile::load(&path).is_ok());
    }

    #[test]
    fn deploy_example_parses() {
        let file: ConfigFile = toml::from_str(include_str!("../ops/deploy/ecca.toml")).unwrap();
        let mut config = ServerConfig::new("/tmp/x");
        config.apply_file(file).unwrap();
        assert_eq!(config.init.country, "CN");
        assert_eq!(config.server_names, ["ca.example.cn"]);
        assert_eq!(config.rates.tsa_per_ip, 10);
        assert_eq!(
            config.limits.idle_timeout,
            std::time::Duration::from_secs(60)
        );
        assert!(!config.grpc_tls12);
    }

    #[test]
    fn limits_and_fetch_networks_parse_or_say_why() {
        let file: ConfigFile = toml::from_str(
            "verify_fetch_allow = [\"10.0.0.0/8\"]\n[limits]\nmax_connections = 8\nocsp_per_ip = 0\n",
        )
        .unwrap();
        let mut config = ServerConfig::new("/tmp/x");
        config.apply_file(file).unwrap();
        assert_eq!(config.limits.max_connections, 8);
        assert_eq!(config.rates.ocsp_per_ip, 0);
        assert_eq!(config.verify_fetch_allow.len(), 1);
        let bad: ConfigFile = toml::from_str("verify_fetch_allow = [\"10.0.0.0\"]").unwrap();
        let err = ServerConfig::new("/tmp/x")
            .apply_file(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("verify_fetch_allow"), "{err}");
        assert!(toml::from_str::<ConfigFile>("[limits]\nbogus = 1\n").is_err());
    }
}
