//! The data directory: where each file lives. Shared by the server, the store and the CLI;
//! knows paths, not contents (see `authority` for the CA files, `store` for the database).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// URL paths under the public base URL where relying parties fetch what certificates point at.
pub mod paths {
    pub const ROOT_CERT: &str = "/ca/root.der";
    pub const ISSUING_CERT: &str = "/ca/issuing.der";
    pub const BUNDLE: &str = "/ca/bundle.pem";
    pub const CROSS: &str = "/ca/cross.pem";
    pub const ROOT_CRL: &str = "/crl/root.crl";
    pub const ISSUING_CRL: &str = "/crl/issuing.crl";
    pub const ISSUING_DELTA_CRL: &str = "/crl/issuing-delta.crl";
    pub const OCSP: &str = "/ocsp";
    pub const TSA: &str = "/tsa";

    /// Where a CA certificate is served, DER (`/ca/root.der`, `/ca/issuing.der`, `/ca/ID.der`).
    pub fn ca_cert(id: &impl std::fmt::Display) -> String {
        format!("/ca/{id}.der")
    }
    /// A CA's full CRL.
    pub fn crl(id: &impl std::fmt::Display) -> String {
        format!("/crl/{id}.crl")
    }
    /// An issuing CA's delta CRL.
    pub fn delta_crl(id: &impl std::fmt::Display) -> String {
        format!("/crl/{id}-delta.crl")
    }
}

/// Paths inside a data directory.
#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Self {
        Layout {
            dir: dir.to_path_buf(),
        }
    }
    pub fn root_cert(&self) -> PathBuf {
        self.dir.join("ca/root.pem")
    }
    pub fn root_key(&self) -> PathBuf {
        self.dir.join("ca/root.key")
    }
    pub fn issuing_cert(&self) -> PathBuf {
        self.dir.join("ca/issuing.pem")
    }
    pub fn issuing_key(&self) -> PathBuf {
        self.dir.join("ca/issuing.key")
    }
    pub fn credential_cert(&self) -> PathBuf {
        self.dir.join("ca/credential.pem")
    }
    pub fn credential_key(&self) -> PathBuf {
        self.dir.join("ca/credential.key")
    }
    pub fn credential_link(&self) -> PathBuf {
        self.dir.join("ca/credential-link.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("tls/server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("tls/server.key")
    }
    pub fn ocsp_cert(&self) -> PathBuf {
        self.dir.join("ocsp/responder.pem")
    }
    pub fn ocsp_key(&self) -> PathBuf {
        self.dir.join("ocsp/responder.key")
    }
    /// An issuing CA's delegated OCSP responder (certificate, key): the first issuing CA's
    /// are ocsp/responder.*, every later one's ocsp/CA-ID.*.
    pub fn ocsp_responder(&self, ca_id: &str) -> (PathBuf, PathBuf) {
        if ca_id == "issuing" {
            return (self.ocsp_cert(), self.ocsp_key());
        }
        let dir = self.dir.join("ocsp");
        (
            dir.join(format!("{ca_id}.pem")),
            dir.join(format!("{ca_id}.key")),
        )
    }
    /// The national-algorithm (SM2) time-stamping unit (certificate, key).
    pub fn tsa_national(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("tsa/sm2.pem"), self.dir.join("tsa/sm2.key"))
    }
    pub fn tsa_cert(&self) -> PathBuf {
        self.dir.join("tsa/tsa.pem")
    }
    pub fn tsa_key(&self) -> PathBuf {
        self.dir.join("tsa/tsa.key")
    }
    /// The statistics reports' signer: certificate and key.
    pub fn report_signer(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.join("report/signer.pem"),
            self.dir.join("report/signer.key"),
        )
    }
    /// Where the server writes each month's report (reports/YYYY-MM/).
    pub fn reports(&self) -> PathBuf {
        self.dir.join("reports")
    }
    pub fn admin_dir(&self) -> PathBuf {
        self.dir.join("admin")
    }
    /// The key management centre's own directory when the server runs it.
    pub fn kmc_dir(&self) -> PathBuf {
        self.dir.join("kmc")
    }
    /// The CA's credential for the KMC.
    pub fn kmc_client_dir(&self) -> PathBuf {
        self.dir.join("kmc-client")
    }
    pub fn database(&self) -> PathBuf {
        self.dir.join("ecca.db")
    }
    /// The secret ACME External Account Binding keys are derived from (0600).
    pub fn acme_secret(&self) -> PathBuf {
        self.dir.join("acme.key")
    }
    /// Where a running server records its addresses.
    pub fn endpoints(&self) -> PathBuf {
        self.dir.join(ENDPOINTS_FILE)
    }
    /// True once a CA hierarchy exists here.
    pub fn is_initialized(&self) -> bool {
        self.root_cert().exists()
    }
}

/// Where a running server listens; written to `DIR/endpoints.json` for the CLI.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Endpoints {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    /// The Prometheus metrics listener, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SocketAddr>,
    /// The web console's HTTPS listener, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console: Option<SocketAddr>,
    /// The ACME server's HTTPS listener (directory at /acme/directory), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acme: Option<SocketAddr>,
}

/// File name of the endpoints record inside the data directory.
pub const ENDPOINTS_FILE: &str = "endpoints.json";
