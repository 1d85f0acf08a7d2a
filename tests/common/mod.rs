//! Shared test helpers: a real server on 127.0.0.1 ephemeral ports in a temp data directory,
//! CSR builders, and the external verifiers (openssl, pkilint, Python gRPC).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ecca::client::Client;
use ecca::config::ServerConfig;
use ecca::server::Running;
use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair, SanType};
use tempfile::TempDir;

pub mod judges;
pub mod pg;
pub mod tools;

#[allow(unused_imports)]
pub use judges::{pkilint, run};
#[allow(unused_imports)]
pub use tools::{missing, tool};

/// A running server with its data directory and an admin client.
pub struct TestCa {
    pub dir: TempDir,
    pub running: Option<Running>,
    pub client: Client,
}

impl TestCa {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::loopback(dir.path().join("data"));
        tweak(&mut config);
        let running = ecca::server::start(config).await.expect("server starts");
        let client = Client::connect_data_dir(&dir.path().join("data"))
            .await
            .expect("admin connects");
        TestCa {
            dir,
            running: Some(running),
            client,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn grpc_url(&self) -> String {
        format!("https://{}", self.running.as_ref().unwrap().endpoints.grpc)
    }

    pub fn http_base(&self) -> String {
        format!("http://{}", self.running.as_ref().unwrap().endpoints.http)
    }

    /// Writes roots.pem and chain.pem into the temp dir and returns their paths.
    pub async fn trust_files(&self) -> (PathBuf, PathBuf) {
        write_trust_files(&self.client, self.dir.path()).await
    }

    /// Issues a server-tls certificate for the DNS name `name` (P-256 key); returns its DER.
    pub async fn issue_tls(&self, name: &str) -> Vec<u8> {
        let spec = CsrSpec::cn(name).dns(name);
        let issued = self.client.issue(p256_csr(&spec), "server-tls", None).await;
        issued
            .expect("issues")
            .certificate
            .expect("certificate")
            .der
    }

    pub fn write_pem(&self, name: &str, der: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, ecca::pemfile::certs_to_pem([der])).unwrap();
        path
    }
}

/// Writes a CA's roots.pem and chain.pem into `dir` and returns their paths.
pub async fn write_trust_files(client: &Client, dir: &Path) -> (PathBuf, PathBuf) {
    let bundle = client.trust_bundle().await.unwrap();
    let roots = dir.join("roots.pem");
    let chain = dir.join("chain.pem");
    std::fs::write(
        &roots,
        ecca::pemfile::certs_to_pem(bundle.roots_der.iter().map(Vec::as_slice)),
    )
    .unwrap();
    std::fs::write(
        &chain,
        ecca::pemfile::certs_to_pem(bundle.intermediates_der.iter().map(Vec::as_slice)),
    )
    .unwrap();
    (roots, chain)
}

/// What goes into a test CSR.
#[derive(Default, Clone, Debug)]
pub struct CsrSpec {
    pub cn: Option<String>,
    pub org: Option<String>,
    pub country: Option<String>,
    pub serial_number: Option<String>,
    pub dns: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    pub emails: Vec<String>,
    /// Ask for CA:TRUE in the CSR.
    pub ca: bool,
}

impl CsrSpec {
    pub fn cn(cn: &str) -> Self {
        CsrSpec {
            cn: Some(cn.into()),
            ..Default::default()
        }
    }
    pub fn dns(mut self, d: &str) -> Self {
        self.dns.push(d.into());
        self
    }
}

/// A CSR (DER) built with rcgen for a fresh key of `alg`.
pub fn csr(spec: &CsrSpec, alg: &'static rcgen::SignatureAlgorithm) -> (KeyPair, Vec<u8>) {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(c) = &spec.country {
        dn.push(
            DnType::CountryName,
            DnValue::PrintableString(c.as_str().try_into().unwrap()),
        );
    }
    if let Some(o) = &spec.org {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    if let Some(s) = &spec.serial_number {
        dn.push(
            DnType::CustomDnType(vec![2, 5, 4, 5]),
            DnValue::PrintableString(s.as_str().try_into().unwrap()),
        );
    }
    if let Some(cn) = &spec.cn {
        dn.push(DnType::CommonName, cn.as_str());
    }
    p.distinguished_name = dn;
    for d in &spec.dns {
        p.subject_alt_names
            .push(SanType::DnsName(d.as_str().try_into().unwrap()));
    }
    for ip in &spec.ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for e in &spec.emails {
        p.subject_alt_names
            .push(SanType::Rfc822Name(e.as_str().try_into().unwrap()));
    }
    if spec.ca {
        // basicConstraints { cA TRUE }, critical (rcgen will not put IsCa into a CSR itself).
        let mut bc = rcgen::CustomExtension::from_oid_content(
            &[2, 5, 29, 19],
            vec![0x30, 0x03, 0x01, 0x01, 0xff],
        );
        bc.set_criticality(true);
        p.custom_extensions.push(bc);
    }
    let der = p.serialize_request(&key).unwrap().der().to_vec();
    (key, der)
}

/// A P-256 CSR.
pub fn p256_csr(spec: &CsrSpec) -> Vec<u8> {
    csr(spec, &rcgen::PKCS_ECDSA_P256_SHA256).1
}

/// A CSR valid for each public profile.
pub fn profile_samples() -> Vec<(&'static str, CsrSpec)> {
    vec![
        (
            "server-tls",
            CsrSpec::cn("shop.example.cn")
                .dns("shop.example.cn")
                .dns("www.shop.example.cn"),
        ),
        ("client-tls", CsrSpec::cn("api-client-7")),
        (
            "merchant-ov",
            CsrSpec {
                cn: Some("Example Trading".into()),
                org: Some("Example Trading Co., Ltd.".into()),
                country: Some("CN".into()),
                serial_number: Some("91350100M000100Y43".into()),
                ..Default::default()
            },
        ),
        (
            "document-signing",
            CsrSpec {
                cn: Some("Alice Zhang".into()),
                emails: vec!["alice@shop.example.cn".into()],
                ..Default::default()
            },
        ),
    ]
}

/// `openssl verify -CAfile roots -untrusted chain leaf` (with extra args), if openssl exists.
pub fn openssl_verify(
    roots: &Path,
    chain: &Path,
    leaf: &Path,
    extra: &[&str],
) -> Option<(bool, String)> {
    let openssl = tool("openssl")?;
    let mut cmd = Command::new(openssl);
    cmd.arg("verify")
        .args(extra)
        .arg("-CAfile")
        .arg(roots)
        .arg("-untrusted")
        .arg(chain)
        .arg(leaf);
    Some(run(&mut cmd))
}

/// Parses a certificate with x509-parser for assertions.
pub fn parse(der: &[u8]) -> x509_parser::certificate::X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).unwrap().1
}

/// A minimal HTTP/1.1 exchange over loopback: (status, headers lowercased, body).
pub async fn http(
    method: &str,
    url: &str,
    body: &[u8],
    content_type: Option<&str>,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let mut head = format!(
        "{method} /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, buf[split + 4..].to_vec())
}

/// The value of a header.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Connecting with the credential folder `creds` fails in the TLS handshake: the connection
/// or the first call reports a transport error (with TLS 1.3 the server's refusal of a client
/// certificate arrives after the client thinks the handshake is done).
pub async fn assert_refused_at_handshake(url: &str, creds: &Path) {
    let client = match Client::connect(url, &ecca::client::Credentials::load(creds).unwrap()).await
    {
        Err(ecca::Error::Remote(_)) => return,
        Err(e) => panic!("unexpected connect error: {e}"),
        Ok(c) => c,
    };
    match client.profiles().await {
        Err(ecca::Error::Remote(_)) => {}
        Err(ecca::Error::Rejected {
            code: tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled,
            message,
        }) => {
            assert!(
                !message.contains("credential"),
                "refused by the API, not by TLS: {message}"
            )
        }
        other => panic!("expected the TLS handshake to refuse, got {other:?}"),
    }
}

/// A client certificate (subject O=ecca, CN=`cn`) for the key `spki_der`, signed by the
/// credential CA of the data directory `data_dir` through the gate every certificate goes
/// through, with the given serial and validity (seconds from now).
pub fn credential_cert(
    data_dir: &Path,
    http_base: &str,
    serial: &ecca::core::serial::Serial,
    spki_der: &[u8],
    cn: &str,
    (from, until): (i64, i64),
) -> Vec<u8> {
    use ecca::core::issue::{self, LeafSpec, Names, SubjectKey};
    let authority =
        ecca::authority::Authority::load(&ecca::layout::Layout::new(data_dir), http_base, None)
            .unwrap();
    let profile = ecca::core::profile::Profile::parse(
        "test-credential",
        "test",
        "description = \"x\"\nkey_algorithms = [\"p256\"]\nmax_validity_days = 10\ndefault_validity_days = 10\nkey_usages = [\"digitalSignature\"]\nextended_key_usages = [\"clientAuth\"]\n[subject]\ncommon_name = \"required\"\norganization = \"optional\"\n",
    )
    .unwrap();
    let names = Names {
        subject: vec![
            (ecca::core::csr::Attr::Organization, "ecca".into()),
            (ecca::core::csr::Attr::CommonName, cn.into()),
        ],
        ..Names::default()
    };
    let now = time::OffsetDateTime::now_utc();
    let params = issue::leaf_params(&LeafSpec {
        profile: &profile,
        names: &names,
        serial,
        not_before: now + time::Duration::seconds(from),
        not_after: now + time::Duration::seconds(until),
        spki_der,
        key_enciphers: false,
        urls: None,
    })
    .unwrap();
    let subject = SubjectKey::from_spki(spki_der).unwrap();
    let ca = &authority.credential;
    let pass = ca.lint_leaf(&params, &subject).unwrap();
    ca.sign_leaf(pass).unwrap()
}

/// Polls `check` until it returns Some (every 20 ms), failing after `within` with `what`:
/// waits on conditions, never on fixed sleeps.
pub async fn eventually<T, F, Fut>(what: &str, within: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The certificate the gRPC listener presents to a new connection (admin credential).
pub async fn presented_server_cert(ca: &TestCa) -> Vec<u8> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};
    let admin = ca.data_dir().join("admin");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(admin.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let chain: Vec<_> = CertificateDer::pem_file_iter(admin.join("cert.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(admin.join("key.pem")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let addr = ca.running.as_ref().unwrap().endpoints.grpc;
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}
