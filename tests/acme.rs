//! ACME (RFC 8555) judged by real clients: certbot and lego obtain, renew and revoke from
//! ecca with External Account Binding over HTTP-01, TLS-ALPN-01 and DNS-01, and the same
//! scripts run against Debian's pebble as a reference; a small client of our own checks the
//! problem documents of hostile requests. DNS answers come from pebble-challtestsrv.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::judges::{ocsp_status, run_blocking};
use common::{CsrSpec, TestCa, http, p256_csr, tool};
use ecca::proto as pb;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16, what: &str) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not listen on port {port}");
}

/// pebble-challtestsrv as the DNS server (A 127.0.0.1 for every name unless told otherwise),
/// with its management API for TXT, A and CAA records.
struct TestDns {
    _proc: Proc,
    dns: SocketAddr,
    mgmt: String,
}

impl TestDns {
    async fn start() -> TestDns {
        let (dns, mgmt) = (free_port(), free_port());
        let child = Command::new(tool("pebble-challtestsrv").unwrap())
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-management", &format!("127.0.0.1:{mgmt}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv6", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv starts");
        let proc = Proc(child);
        wait_for_port(mgmt, "pebble-challtestsrv").await;
        TestDns {
            _proc: proc,
            dns: format!("127.0.0.1:{dns}").parse().unwrap(),
            mgmt: format!("http://127.0.0.1:{mgmt}"),
        }
    }

    async fn call(&self, path: &str, body: Value) {
        let (status, _, _) = http(
            "POST",
            &format!("{}{path}", self.mgmt),
            body.to_string().as_bytes(),
            Some("application/json"),
        )
        .await;
        assert_eq!(status, 200, "challtestsrv {path}");
    }
}

/// Ports the validators connect to (the clients' standalone servers bind them).
#[derive(Clone, Copy)]
struct ChallengePorts {
    http: u16,
    tls: u16,
}

/// Runs a client command, returning (success, output); prints how long it took, so one run
/// compares ecca with pebble under the same clients (`-- --nocapture`).
async fn client(step: &str, mut cmd: Command, env: &[(&str, &Path)]) -> (bool, String) {
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = std::time::Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(180), run_blocking(cmd))
        .await
        .expect("the ACME client finished within 3 minutes");
    eprintln!(
        "acme timing: {step}: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    out
}

/// The same client script for every ACME server: certbot (HTTP-01, renew, revoke) and lego
/// (HTTP-01, TLS-ALPN-01, DNS-01 with a wildcard). `eab` gives a fresh (kid, hmac) per
/// account. Returns certbot's certificate path (revoked) and its chain.
/// An ACME server the client scripts run against.
struct Target<'a> {
    label: &'a str,
    directory: String,
    ca_bundle: &'a Path,
    work: PathBuf,
    ports: ChallengePorts,
    domain: &'a str,
}

async fn run_clients(
    t: Target<'_>,
    dns: &TestDns,
    eab: &mut dyn FnMut() -> (String, String),
) -> PathBuf {
    let Target {
        label,
        directory,
        ca_bundle,
        work,
        ports,
        domain,
    } = t;
    let directory = directory.as_str();
    let work = work.as_path();
    let certbot_dirs = |cmd: &mut Command| {
        let base = work.join("certbot");
        cmd.arg("--config-dir")
            .arg(base.join("config"))
            .arg("--work-dir")
            .arg(base.join("work"))
            .arg("--logs-dir")
            .arg(base.join("logs"));
    };
    let env = [("REQUESTS_CA_BUNDLE", ca_bundle)];
    // certbot certonly --standalone with EAB over HTTP-01.
    let (kid, hmac) = eab();
    let name = format!("www.{domain}");
    let mut cmd = Command::new(tool("certbot").unwrap());
    cmd.args([
        "certonly",
        "--standalone",
        "--non-interactive",
        "--agree-tos",
    ])
    .args(["-m", &format!("ops@{domain}"), "--server", directory])
    .args(["--http-01-address", "127.0.0.1"])
    .args(["--http-01-port", &ports.http.to_string()])
    .args(["--eab-kid", &kid, "--eab-hmac-key", &hmac, "-d", &name]);
    certbot_dirs(&mut cmd);
    let (ok, out) = client(&format!("{label} certbot certonly"), cmd, &env).await;
    assert!(ok, "[{label}] certbot certonly: {out}");
    let live = work.join("certbot/config/live").join(&name);
    let first = std::fs::read(live.join("cert.pem")).unwrap();
    // certbot renew --force-renewal: a new certificate.
    let mut cmd = Command::new(tool("certbot").unwrap());
    cmd.args([
        "renew",
        "--force-renewal",
        "--no-random-sleep-on-renew",
        "--non-interactive",
    ]);
    certbot_dirs(&mut cmd);
    let (ok, out) = client(&format!("{label} certbot renew"), cmd, &env).await;
    assert!(ok, "[{label}] certbot renew: {out}");
    let renewed = std::fs::read(live.join("cert.pem")).unwrap();
    assert_ne!(first, renewed, "[{label}] renew made a new certificate");
    // certbot revoke (signed by the account key).
    let mut cmd = Command::new(tool("certbot").unwrap());
    cmd.args(["revoke", "--non-interactive", "--no-delete-after-revoke"])
        .args(["--reason", "keycompromise", "--server", directory])
        .arg("--cert-path")
        .arg(live.join("cert.pem"));
    certbot_dirs(&mut cmd);
    let (ok, out) = client(&format!("{label} certbot revoke"), cmd, &env).await;
    assert!(ok, "[{label}] certbot revoke: {out}");

    let lego_env = [("LEGO_CA_CERTIFICATES", ca_bundle)];
    let lego = |path: &str, kid: &str, hmac: &str, domains: &[&str]| {
        let mut cmd = Command::new(tool("lego").unwrap());
        cmd.args(["--server", directory, "--accept-tos"])
            .arg("--path")
            .arg(work.join(path))
            .args(["--email", &format!("ops@{domain}")])
            .args(["--eab", "--kid", kid, "--hmac", hmac]);
        for d in domains {
            cmd.args(["--domains", d]);
        }
        cmd
    };
    // lego over HTTP-01.
    let (kid, hmac) = eab();
    let http_name = format!("http.{domain}");
    let mut cmd = lego("lego-http", &kid, &hmac, &[&http_name]);
    cmd.args([
        "--http",
        "--http.port",
        &format!("127.0.0.1:{}", ports.http),
        "run",
    ]);
    let (ok, out) = client(&format!("{label} lego http-01"), cmd, &lego_env).await;
    assert!(ok, "[{label}] lego http-01: {out}");
    // lego over TLS-ALPN-01.
    let (kid, hmac) = eab();
    let tls_name = format!("tls.{domain}");
    let mut cmd = lego("lego-tls", &kid, &hmac, &[&tls_name]);
    cmd.args([
        "--tls",
        "--tls.port",
        &format!("127.0.0.1:{}", ports.tls),
        "run",
    ]);
    let (ok, out) = client(&format!("{label} lego tls-alpn-01"), cmd, &lego_env).await;
    assert!(ok, "[{label}] lego tls-alpn-01: {out}");
    // lego over DNS-01 (with a wildcard): its exec hook sets the TXT records in the test DNS.
    let hook = work.join("dns-hook.py");
    std::fs::write(
        &hook,
        format!(
            "#!/usr/bin/env python3\nimport json, sys, urllib.request\nop, fqdn = sys.argv[1], sys.argv[2]\nbody = {{'host': fqdn}}\nif op == 'present':\n    body['value'] = sys.argv[3]\nurl = '{}/' + ('set-txt' if op == 'present' else 'clear-txt')\nurllib.request.urlopen(urllib.request.Request(url, json.dumps(body).encode()))\n",
            dns.mgmt
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (kid, hmac) = eab();
    let dns_name = format!("dns.{domain}");
    let wildcard = format!("*.dns.{domain}");
    let mut cmd = lego("lego-dns", &kid, &hmac, &[&dns_name, &wildcard]);
    cmd.args(["--dns", "exec", "--dns.disable-cp"])
        .args(["--dns.resolvers", &dns.dns.to_string(), "run"])
        .env("EXEC_PATH", &hook)
        .env("EXEC_POLLING_INTERVAL", "1")
        .env("EXEC_PROPAGATION_TIMEOUT", "30")
        .env("EXEC_SEQUENCE_INTERVAL", "1");
    let (ok, out) = client(&format!("{label} lego dns-01"), cmd, &lego_env).await;
    assert!(ok, "[{label}] lego dns-01: {out}");
    for (path, name) in [
        ("lego-http", &http_name),
        ("lego-tls", &tls_name),
        ("lego-dns", &dns_name),
    ] {
        let crt = work
            .join(path)
            .join("certificates")
            .join(format!("{name}.crt"));
        assert!(crt.is_file(), "[{label}] lego wrote {}", crt.display());
    }
    live.join("cert.pem")
}

/// A self-signed CA and a 127.0.0.1 certificate for pebble's listener.
fn pebble_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "pebble test listener CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let paths = (
        dir.join("pebble-ca.pem"),
        dir.join("pebble-cert.pem"),
        dir.join("pebble-key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_and_lego_issue_renew_and_revoke_against_ecca_and_pebble() {
    let dns = TestDns::start().await;
    let ports = ChallengePorts {
        http: free_port(),
        tls: free_port(),
    };
    let ca = TestCa::start_with(|c| {
        c.acme.dns_resolver = Some(dns.dns);
        c.acme.http01_port = Some(ports.http);
        c.acme.tlsalpn01_port = Some(ports.tls);
    })
    .await;
    add_platform(&ca.client, "shop", "shop.test", None).await;
    let acme = ca.running.as_ref().unwrap().endpoints.acme.unwrap();
    let directory = format!("https://{acme}/acme/directory");
    let admin_ca = ca.data_dir().join("admin/ca.pem");
    // Keys as `ecca platform acme-key shop` makes them (the CLI is judged in ops/tests/cli.rs).
    let mut ecca_keys = Vec::new();
    for _ in 0..4 {
        let k = ca.client.create_acme_key("shop").await.unwrap();
        ecca_keys.push((k.kid, k.hmac));
    }
    let mut next = ecca_keys.into_iter();
    let mut eab = || next.next().expect("enough ecca EAB keys");
    let work = ca.dir.path().join("clients-ecca");
    std::fs::create_dir_all(&work).unwrap();
    let target = Target {
        label: "ecca",
        directory,
        ca_bundle: &admin_ca,
        work: work.clone(),
        ports,
        domain: "shop.test",
    };
    let revoked = run_clients(target, &dns, &mut eab).await;
    // Relying parties hear of certbot's revocation over OCSP, and the chains verify.
    let (roots, chain) = ca.trust_files().await;
    let status = ocsp_status(
        &format!("{}/ocsp", ca.http_base()),
        &chain,
        &roots,
        &revoked,
    )
    .await;
    assert!(
        status.contains(": revoked"),
        "OCSP after certbot revoke: {status}"
    );
    assert!(status.contains("Reason: keyCompromise"), "{status}");
    let lego_cert = work.join("lego-dns/certificates/dns.shop.test.crt");
    let (ok, out) = common::judges::run(
        Command::new(tool("openssl").unwrap())
            .args(["verify", "-CAfile"])
            .arg(&roots)
            .arg("-untrusted")
            .arg(&lego_cert)
            .arg(&lego_cert),
    );
    assert!(
        ok,
        "openssl verifies lego's certificate with the chain ecca sent: {out}"
    );

    // The same scripts against pebble, the reference server.
    let pebble_ports = ChallengePorts {
        http: free_port(),
        tls: free_port(),
    };
    let (pebble_ca, cert, key) = pebble_tls(ca.dir.path());
    let listen = free_port();
    let mut keys = serde_json::Map::new();
    let mut pebble_keys = Vec::new();
    for i in 0..4 {
        let kid = format!("kid-{i}");
        let hmac = B64.encode(ring::digest::digest(&ring::digest::SHA256, kid.as_bytes()));
        keys.insert(kid.clone(), Value::String(hmac.clone()));
        pebble_keys.push((kid, hmac));
    }
    let config = json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{listen}"),
        "managementListenAddress": format!("127.0.0.1:{}", free_port()),
        "certificate": cert, "privateKey": key,
        "httpPort": pebble_ports.http, "tlsPort": pebble_ports.tls,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": true,
        "externalAccountMACKeys": keys,
    }});
    let config_path = ca.dir.path().join("pebble.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let child = Command::new(tool("pebble").unwrap())
        .arg("-config")
        .arg(&config_path)
        .args(["-dnsserver", &dns.dns.to_string()])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pebble starts");
    let _pebble = Proc(child);
    wait_for_port(listen, "pebble").await;
    let work = ca.dir.path().join("clients-pebble");
    std::fs::create_dir_all(&work).unwrap();
    let mut next = pebble_keys.into_iter();
    let mut eab = || next.next().expect("enough pebble EAB keys");
    let target = Target {
        label: "pebble",
        directory: format!("https://127.0.0.1:{listen}/dir"),
        ca_bundle: &pebble_ca,
        work,
        ports: pebble_ports,
        domain: "pebble.test",
    };
    run_clients(target, &dns, &mut eab).await;
}

// --- a small ACME client for hostile requests ----------------------------------------------

struct Acme {
    base: String,
    tls: tokio_rustls::TlsConnector,
    addr: SocketAddr,
    key: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    kid: Option<String>,
    nonce: Option<String>,
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn problem(&self) -> String {
        self.json()["type"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("urn:ietf:params:acme:error:")
            .to_string()
    }
    fn header(&self, name: &str) -> Option<&str> {
        common::header(&self.headers, name)
    }
}

/// Adds a platform that may issue server-tls under `suffix` (its credential is not used).
async fn add_platform(admin: &ecca::client::Client, name: &str, suffix: &str, rate: Option<u32>) {
    admin
        .add_platform(pb::AddPlatformRequest {
            name: name.into(),
            dns_suffixes: vec![suffix.into()],
            profiles: vec!["server-tls".into()],
            rate_per_minute: rate,
            csr: p256_csr(&CsrSpec::cn(&format!("platform {name}"))),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// The challenge of `kind` in an authorization.
fn challenge_of(authz: &Value, kind: &str) -> Value {
    authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap()
        .clone()
}

fn new_pkcs8() -> Vec<u8> {
    let rng = ring::rand::SystemRandom::new();
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .unwrap()
        .as_ref()
        .to_vec()
}

fn key_of(pkcs8: &[u8]) -> EcdsaKeyPair {
    let rng = ring::rand::SystemRandom::new();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng).unwrap()
}

fn new_key() -> EcdsaKeyPair {
    key_of(&new_pkcs8())
}

fn jwk(key: &EcdsaKeyPair) -> Value {
    let p = key.public_key().as_ref();
    json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&p[1..33]), "y": B64.encode(&p[33..])})
}

fn thumbprint(key: &EcdsaKeyPair) -> String {
    let j = jwk(key);
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        j["x"].as_str().unwrap(),
        j["y"].as_str().unwrap()
    );
    B64.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

fn sign(key: &EcdsaKeyPair, protected: &Value, payload: &str) -> Value {
    let protected = B64.encode(protected.to_string());
    let input = format!("{protected}.{payload}");
    let sig = key
        .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    json!({"protected": protected, "payload": payload, "signature": B64.encode(sig.as_ref())})
}

impl Acme {
    fn new(addr: SocketAddr, ca_pem: &Path) -> Acme {
        let mut roots = rustls::RootCertStore::empty();
        for der in ecca::pemfile::parse_certs(&std::fs::read(ca_pem).unwrap()).unwrap() {
            roots.add(der.into()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let pkcs8 = new_pkcs8();
        Acme {
            base: format!("https://{addr}"),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            addr,
            key: key_of(&pkcs8),
            pkcs8,
            kid: None,
            nonce: None,
        }
    }

    /// The same account, talking to the server at `addr` (another instance).
    fn at(&self, addr: SocketAddr) -> Acme {
        Acme {
            base: self.base.clone(),
            tls: self.tls.clone(),
            addr,
            key: key_of(&self.pkcs8),
            pkcs8: self.pkcs8.clone(),
            kid: self.kid.clone(),
            nonce: None,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    async fn raw(&self, method: &str, url: &str, body: &[u8]) -> Resp {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let path = url.strip_prefix(&self.base).unwrap();
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut s = self.tls.connect(name, tcp).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/jose+json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split_whitespace().nth(1).unwrap();
        Resp {
            status: status.parse().unwrap(),
            headers: lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect(),
            body: buf[split + 4..].to_vec(),
        }
    }

    async fn fresh_nonce(&mut self) -> String {
        match self.nonce.take() {
            Some(n) => n,
            None => {
                let r = self.raw("HEAD", &self.url("/acme/new-nonce"), b"").await;
                r.header("replay-nonce").unwrap().to_string()
            }
        }
    }

    /// POSTs `payload` (None: POST-as-GET) signed with the account (kid) or its jwk.
    async fn post(&mut self, path: &str, payload: Option<Value>) -> Resp {
        let url = self.url(path);
        let nonce = self.fresh_nonce().await;
        self.post_with(&url, &url, &nonce, payload).await
    }

    /// POSTs to `url` a JWS whose header says `signed_url` and `nonce`.
    async fn post_with(
        &mut self,
        url: &str,
        signed_url: &str,
        nonce: &str,
        payload: Option<Value>,
    ) -> Resp {
        let mut protected = json!({"alg": "ES256", "nonce": nonce, "url": signed_url});
        match &self.kid {
            Some(kid) => protected["kid"] = Value::String(kid.clone()),
            None => protected["jwk"] = jwk(&self.key),
        }
        let payload = payload.map_or(String::new(), |p| B64.encode(p.to_string()));
        let body = sign(&self.key, &protected, &payload).to_string();
        let r = self.raw("POST", url, body.as_bytes()).await;
        self.nonce = r.header("replay-nonce").map(str::to_string);
        r
    }

    /// Registers an account bound with (kid, hmac).
    async fn register(&mut self, kid: &str, hmac: &str) -> Resp {
        let url = self.url("/acme/new-account");
        let protected = json!({"alg": "HS256", "kid": kid, "url": url});
        let payload = B64.encode(jwk(&self.key).to_string());
        let protected = B64.encode(protected.to_string());
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &B64.decode(hmac).unwrap()),
            format!("{protected}.{payload}").as_bytes(),
        );
        let eab = json!({"protected": protected, "payload": payload, "signature": B64.encode(mac.as_ref())});
        self.kid = None;
        let r = self
            .post(
                "/acme/new-account",
                Some(json!({"termsOfServiceAgreed": true, "externalAccountBinding": eab})),
            )
            .await;
        if r.status == 201 || r.status == 200 {
            self.kid = r.header("location").map(str::to_string);
        }
        r
    }

    /// Orders `names`, proves each with DNS-01 through the test DNS, and waits for "ready".
    async fn ready_order(&mut self, dns: &TestDns, names: &[&str]) -> Value {
        let ids: Vec<Value> = names
            .iter()
            .map(|n| json!({"type": "dns", "value": n}))
            .collect();
        let r = self
            .post("/acme/new-order", Some(json!({"identifiers": ids})))
            .await;
        assert_eq!(
            r.status,
            201,
            "new-order: {}",
            String::from_utf8_lossy(&r.body)
        );
        let order_url = r.header("location").unwrap().to_string();
        self.ready_order_of(dns, &order_url).await
    }

    /// Proves an existing order's authorizations with DNS-01 and waits for "ready".
    async fn ready_order_of(&mut self, dns: &TestDns, order_url: &str) -> Value {
        let order = self.post(order_url, None).await.json();
        for authz in order["authorizations"].as_array().unwrap() {
            self.prove_dns(dns, authz.as_str().unwrap()).await;
        }
        self.poll(order_url, "ready").await
    }

    /// Answers an authorization's DNS-01 challenge through the test DNS.
    async fn prove_dns(&mut self, dns: &TestDns, authz: &str) {
        let z = self.post(authz, None).await.json();
        let c = challenge_of(&z, "dns-01");
        let key_auth = format!("{}.{}", c["token"].as_str().unwrap(), thumbprint(&self.key));
        let digest = B64.encode(ring::digest::digest(
            &ring::digest::SHA256,
            key_auth.as_bytes(),
        ));
        let host = format!(
            "_acme-challenge.{}.",
            z["identifier"]["value"].as_str().unwrap()
        );
        dns.call("/set-txt", json!({"host": host, "value": digest}))
            .await;
        let r = self.post(c["url"].as_str().unwrap(), Some(json!({}))).await;
        assert_eq!(
            r.status,
            200,
            "challenge: {}",
            String::from_utf8_lossy(&r.body)
        );
    }

    /// Polls `url` (POST-as-GET) until its status is `want` (or panics with the last answer).
    async fn poll(&mut self, url: &str, want: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..60 {
            last = self.post(url, None).await.json();
            if last["status"] == want {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("{url} never became {want}: {last}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_acme_requests_get_problem_documents_and_platform_policy_holds() {
    let dns = TestDns::start().await;
    let ca = TestCa::start_with(|c| {
        c.acme.dns_resolver = Some(dns.dns);
        c.acme.http01_port = Some(free_port());
    })
    .await;
    for (name, suffix, rate) in [
        ("shop", "shop.test", Some(2)),
        ("other", "other.test", None),
    ] {
        add_platform(&ca.client, name, suffix, rate).await;
    }
    let addr = ca.running.as_ref().unwrap().endpoints.acme.unwrap();
    let admin_ca = ca.data_dir().join("admin/ca.pem");
    let key = ca.client.create_acme_key("shop").await.unwrap();
    let mut a = Acme::new(addr, &admin_ca);

    // Without a binding: externalAccountRequired.
    let r = a
        .post(
            "/acme/new-account",
            Some(json!({"termsOfServiceAgreed": true})),
        )
        .await;
    assert_eq!(
        (r.status, r.problem().as_str()),
        (400, "externalAccountRequired")
    );
    // A MAC made with another key: unauthorized; the key stays unused.
    let wrong = B64.encode([7u8; 32]);
    let r = a.register(&key.kid, &wrong).await;
    assert_eq!(
        (r.status, r.problem().as_str()),
        (403, "unauthorized"),
        "{}",
        r.json()
    );
    let r = a.register(&key.kid, &key.hmac).await;
    assert_eq!(r.status, 201, "{}", r.json());
    // One account per key: a second account cannot reuse it.
    let mut b = Acme::new(addr, &admin_ca);
    let r = b.register(&key.kid, &key.hmac).await;
    assert_eq!((r.status, r.problem().as_str()), (403, "unauthorized"));

    // Nonce replay: the first use passes, the second is badNonce.
    let nonce = a.fresh_nonce().await;
    let account_url = a.kid.clone().unwrap();
    let r = a.post_with(&account_url, &account_url, &nonce, None).await;
    assert_eq!(r.status, 200, "{}", r.json());
    let r = a.post_with(&account_url, &account_url, &nonce, None).await;
    assert_eq!((r.status, r.problem().as_str()), (400, "badNonce"));
    assert!(
        r.header("replay-nonce").is_some(),
        "a badNonce answer carries a fresh nonce"
    );
    // A JWS whose url is another resource: unauthorized.
    let nonce = a.fresh_nonce().await;
    let r = a
        .post_with(
            &a.url("/acme/new-order"),
            &account_url,
            &nonce,
            Some(json!({"identifiers": []})),
        )
        .await;
    assert_eq!((r.status, r.problem().as_str()), (403, "unauthorized"));
    // An unknown kid: accountDoesNotExist.
    let mut ghost = Acme::new(addr, &admin_ca);
    ghost.kid = Some(ghost.url("/acme/account/no-such-account"));
    let r = ghost
        .post(
            "/acme/new-order",
            Some(json!({"identifiers": [{"type": "dns", "value": "x.shop.test"}]})),
        )
        .await;
    assert_eq!(
        (r.status, r.problem().as_str()),
        (400, "accountDoesNotExist")
    );

    // Outside the platform's suffixes: rejectedIdentifier, naming the identifier.
    let r = a
        .post(
            "/acme/new-order",
            Some(json!({"identifiers": [{"type": "dns", "value": "www.other.test"}]})),
        )
        .await;
    assert_eq!(
        (r.status, r.problem().as_str()),
        (400, "rejectedIdentifier"),
        "{}",
        r.json()
    );
    assert_eq!(
        r.json()["subproblems"][0]["identifier"]["value"],
        "www.other.test"
    );
    let r = a
        .post(
            "/acme/new-order",
            Some(json!({"identifiers": [{"type": "ip", "value": "10.0.0.1"}]})),
        )
        .await;
    assert_eq!(r.problem(), "unsupportedIdentifier");
    let r = a
        .post(
            "/acme/new-order",
            Some(json!({"identifiers": [{"type": "dns", "value": "a.shop.test"}], "profile": "no-such"})),
        )
        .await;
    assert_eq!(r.problem(), "invalidProfile");

    // A challenge pointing at a private address: the authorization fails with a dns problem
    // and nothing connects there.
    dns.call(
        "/add-a",
        json!({"host": "private.shop.test.", "addresses": ["10.1.2.3"]}),
    )
    .await;
    let r = a
        .post(
            "/acme/new-order",
            Some(json!({"identifiers": [{"type": "dns", "value": "private.shop.test"}]})),
        )
        .await;
    let authz_url = r.json()["authorizations"][0].as_str().unwrap().to_string();
    let z = a.post(&authz_url, None).await.json();
    let http01 = challenge_of(&z, "http-01");
    let r = a
        .post(http01["url"].as_str().unwrap(), Some(json!({})))
        .await;
    assert_eq!(r.status, 200);
    let z = a.poll(&authz_url, "invalid").await;
    let c = challenge_of(&z, "http-01");
    assert_eq!(c["error"]["type"], "urn:ietf:params:acme:error:dns", "{c}");
    assert!(
        c["error"]["detail"].as_str().unwrap().contains("10.1.2.3"),
        "{c}"
    );

    // CAA naming another CA refuses; the order's name is otherwise proven.
    dns.call("/add-caa", json!({"host": "caa.shop.test.", "policies": [{"tag": "issue", "value": "letsencrypt.org"}]})).await;
    let r = a
        .post(
            "/acme/new-order",
            Some(json!({"identifiers": [{"type": "dns", "value": "caa.shop.test"}]})),
        )
        .await;
    let authz_url = r.json()["authorizations"][0].as_str().unwrap().to_string();
    let z = a.post(&authz_url, None).await.json();
    let c = challenge_of(&z, "dns-01");
    let key_auth = format!("{}.{}", c["token"].as_str().unwrap(), thumbprint(&a.key));
    let digest = B64.encode(ring::digest::digest(
        &ring::digest::SHA256,
        key_auth.as_bytes(),
    ));
    dns.call(
        "/set-txt",
        json!({"host": "_acme-challenge.caa.shop.test.", "value": digest}),
    )
    .await;
    a.post(c["url"].as_str().unwrap(), Some(json!({}))).await;
    let z = a.poll(&authz_url, "invalid").await;
    assert!(
        z.to_string().contains("urn:ietf:params:acme:error:caa"),
        "{z}"
    );

    // Two orders made ready first, so that their issuances and the refused order below fall
    // in one minute of the platform's rate window.
    let order = a.ready_order(&dns, &["one.shop.test"]).await;
    let third = a.ready_order(&dns, &["three.shop.test"]).await;
    let second_of_minute = time::OffsetDateTime::now_utc().second();
    if second_of_minute > 40 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second_of_minute))).await;
    }
    // A CSR whose names differ from the order: badCSR; the order stays ready.
    let finalize = order["finalize"].as_str().unwrap().to_string();
    let other = p256_csr(&CsrSpec::cn("two.shop.test").dns("two.shop.test"));
    let r = a
        .post(&finalize, Some(json!({"csr": B64.encode(&other)})))
        .await;
    assert_eq!(
        (r.status, r.problem().as_str()),
        (400, "badCSR"),
        "{}",
        r.json()
    );
    // A CSR for the account's own key: badCSR.
    let account_key = rcgen::KeyPair::try_from(a.pkcs8.as_slice()).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["one.shop.test".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "one.shop.test");
    let same_key = params
        .serialize_request(&account_key)
        .unwrap()
        .der()
        .to_vec();
    let r = a
        .post(&finalize, Some(json!({"csr": B64.encode(&same_key)})))
        .await;
    assert_eq!(
        (r.status, r.problem().as_str()),
        (400, "badCSR"),
        "{}",
        r.json()
    );
    let good = p256_csr(&CsrSpec::cn("one.shop.test").dns("one.shop.test"));
    let r = a
        .post(&finalize, Some(json!({"csr": B64.encode(&good)})))
        .await;
    assert_eq!(r.status, 200, "{}", r.json());
    let done = r.json();
    assert_eq!(done["status"], "valid");
    let cert_url = done["certificate"].as_str().unwrap().to_string();
    let pem = a.post(&cert_url, None).await;
    assert_eq!(
        pem.header("content-type"),
        Some("application/pem-certificate-chain")
    );
    let chain = ecca::pemfile::parse_certs(&pem.body).unwrap();
    assert_eq!(chain.len(), 2, "leaf and issuing CA");
    let leaf = common::parse(&chain[0]);
    assert!(
        leaf.subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .len()
            == 1
    );

    // ARI: the issued certificate's renewal window.
    let aki = ecca::service::acme::aki(&leaf).unwrap();
    let ari = format!("{}.{}", B64.encode(aki), B64.encode(leaf.raw_serial()));
    let r = a
        .raw("GET", &a.url(&format!("/acme/renewal-info/{ari}")), b"")
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.json()["suggestedWindow"]["start"].is_string(),
        "{}",
        r.json()
    );
    assert!(r.header("retry-after").is_some());

    // The platform's rate (2 a minute) counts ACME issuances: one more is allowed, then
    // new orders are rateLimited with Retry-After.
    let csr = p256_csr(&CsrSpec::cn("three.shop.test").dns("three.shop.test"));
    let r = a
        .post(
            third["finalize"].as_str().unwrap(),
            Some(json!({"csr": B64.encode(&csr)})),
        )
        .await;
    assert_eq!(r.json()["status"], "valid", "{}", r.json());
    let r = a
        .post(
            "/acme/new-order",
            Some(json!({"identifiers": [{"type": "dns", "value": "four.shop.test"}]})),
        )
        .await;
    assert_eq!(
        (r.status, r.problem().as_str()),
        (429, "rateLimited"),
        "{}",
        r.json()
    );
    assert!(r.header("retry-after").is_some());

    // Orders survive a restart: the order is still valid, its certificate downloadable.
    let data = ca.data_dir();
    let mut ca = ca;
    ca.running.take().unwrap().shutdown().await;
    let mut config = ecca::config::ServerConfig::loopback(&data);
    config.acme_listen = Some(addr);
    config.acme.dns_resolver = Some(dns.dns);
    let running = ecca::server::start(config).await.unwrap();
    a.nonce = None;
    let r = a.post(&cert_url, None).await;
    assert_eq!(
        r.status,
        200,
        "after restart: {}",
        String::from_utf8_lossy(&r.body)
    );

    // Key rollover: the new key signs, the old one no longer does.
    let new = new_key();
    let inner_protected =
        json!({"alg": "ES256", "jwk": jwk(&new), "url": a.url("/acme/key-change")});
    let inner = sign(
        &new,
        &inner_protected,
        &B64.encode(json!({"account": account_url, "oldKey": jwk(&a.key)}).to_string()),
    );
    let r = a.post("/acme/key-change", Some(inner)).await;
    assert_eq!(r.status, 200, "{}", r.json());
    let r = a.post(&account_url, None).await;
    assert_eq!(
        (r.status, r.problem().as_str()),
        (400, "malformed"),
        "the old key is refused"
    );
    a.key = new;
    assert_eq!(a.post(&account_url, None).await.status, 200);

    // Deactivation: the account can do nothing more.
    let r = a
        .post(&account_url, Some(json!({"status": "deactivated"})))
        .await;
    assert_eq!(r.json()["status"], "deactivated");
    let r = a
        .post(
            "/acme/new-order",
            Some(json!({"identifiers": [{"type": "dns", "value": "five.shop.test"}]})),
        )
        .await;
    assert_eq!((r.status, r.problem().as_str()), (403, "unauthorized"));

    // The server kept serving throughout.
    let r = a.raw("GET", &a.url("/acme/directory"), b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["meta"]["externalAccountRequired"], true);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_moves_between_two_instances_on_one_postgres() {
    let Some(pg) = common::pg::PgCluster::start() else {
        return;
    };
    let database = pg.database("ecca");
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Behind one name, as behind a load balancer: both instances answer for https://acme.test.
    let config = |data: &Path| {
        let mut c = ecca::config::ServerConfig::loopback(data);
        c.database = Some(database.clone());
        c.acme.dns_resolver = Some(dns.dns);
        c.acme.base_url = Some("https://acme.test".into());
        c
    };
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    let running_a = ecca::server::start(config(&dir_a)).await.unwrap();
    let (ok, out) = common::run(Command::new("cp").arg("-a").arg(&dir_a).arg(&dir_b));
    assert!(ok, "cp: {out}");
    let running_b = ecca::server::start(config(&dir_b)).await.unwrap();
    let admin = ecca::client::Client::connect_data_dir(&dir_a)
        .await
        .unwrap();
    add_platform(&admin, "shop", "shop.test", None).await;
    // The key made through instance A binds an account through instance B (same secret).
    let key = admin.create_acme_key("shop").await.unwrap();
    let (addr_a, addr_b) = (
        running_a.endpoints.acme.unwrap(),
        running_b.endpoints.acme.unwrap(),
    );
    let mut b = Acme::new(addr_b, &dir_a.join("admin/ca.pem"));
    b.base = "https://acme.test".into();
    let r = b.register(&key.kid, &key.hmac).await;
    assert_eq!(r.status, 201, "{}", r.json());
    let mut a = b.at(addr_a);
    // Ordered on A, proven and validated through B, finalized on both at once: one wins.
    let r = a
        .post(
            "/acme/new-order",
            Some(json!({"identifiers": [{"type": "dns", "value": "www.shop.test"}]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json());
    let order_url = r.header("location").unwrap().to_string();
    let order = b.ready_order_of(&dns, &order_url).await;
    let csr = p256_csr(&CsrSpec::cn("www.shop.test").dns("www.shop.test"));
    let finalize = order["finalize"].as_str().unwrap().to_string();
    let body = json!({"csr": B64.encode(&csr)});
    let (ra, rb) = tokio::join!(
        a.post(&finalize, Some(body.clone())),
        b.post(&finalize, Some(body))
    );
    let statuses = [ra.status, rb.status];
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "exactly one finalize wins: {} / {}",
        ra.json(),
        rb.json()
    );
    let loser = if ra.status == 200 { &rb } else { &ra };
    assert!(
        matches!(loser.problem().as_str(), "orderNotReady" | "malformed"),
        "{}",
        loser.json()
    );
    let done = a.poll(&order_url, "valid").await;
    let cert = b.post(done["certificate"].as_str().unwrap(), None).await;
    assert_eq!(cert.status, 200);
    assert_eq!(ecca::pemfile::parse_certs(&cert.body).unwrap().len(), 2);
    // One issuance on the platform's books, audited once.
    let listed = admin
        .list(pb::ListCertificatesRequest {
            name_contains: "www.shop.test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.certificates.len(), 1, "one certificate issued");
    running_a.shutdown().await;
    running_b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_alternate_chains_deactivation_revocation_by_key_and_purge() {
    let dns = TestDns::start().await;
    let ca = TestCa::start_with(|c| c.acme.dns_resolver = Some(dns.dns)).await;
    add_platform(&ca.client, "shop", "shop.test", None).await;
    let addr = ca.running.as_ref().unwrap().endpoints.acme.unwrap();
    let key = ca.client.create_acme_key("shop").await.unwrap();
    let mut a = Acme::new(addr, &ca.data_dir().join("admin/ca.pem"));
    assert_eq!(a.register(&key.kid, &key.hmac).await.status, 201);
    let order = |name: &str, profile: Option<&str>| {
        let mut p = json!({"identifiers": [{"type": "dns", "value": name}]});
        if let Some(profile) = profile {
            p["profile"] = Value::String(profile.into());
        }
        p
    };

    // An authorization deactivated by its account: the order can no longer become ready.
    let r = a
        .post("/acme/new-order", Some(order("gone.shop.test", None)))
        .await;
    let order_url = r.header("location").unwrap().to_string();
    let authz = r.json()["authorizations"][0].as_str().unwrap().to_string();
    let z = a.post(&authz, Some(json!({"status": "deactivated"}))).await;
    assert_eq!(z.json()["status"], "deactivated", "{}", z.json());
    a.poll(&order_url, "invalid").await;

    // After a root rollover the certificate comes with an alternate chain through the link
    // certificate (new root certified by the old one); the order echoes its profile.
    ca.client
        .rotate_issuer("default", true, false)
        .await
        .unwrap();
    let r = a
        .post(
            "/acme/new-order",
            Some(order("alt.shop.test", Some("server-tls"))),
        )
        .await;
    assert_eq!(r.json()["profile"], "server-tls", "{}", r.json());
    let order_url = r.header("location").unwrap().to_string();
    let ready = a.ready_order_of(&dns, &order_url).await;
    let (leaf_key, csr) = common::csr(
        &CsrSpec::cn("alt.shop.test").dns("alt.shop.test"),
        &rcgen::PKCS_ECDSA_P256_SHA256,
    );
    let done = a
        .post(
            ready["finalize"].as_str().unwrap(),
            Some(json!({"csr": B64.encode(&csr)})),
        )
        .await
        .json();
    let cert_url = done["certificate"].as_str().unwrap().to_string();
    let main = a.post(&cert_url, None).await;
    let links: Vec<&str> = main
        .headers
        .iter()
        .filter(|(k, v)| k == "link" && v.contains("rel=\"alternate\""))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(links.len(), 1, "{:?}", main.headers);
    let alt_url = links[0]
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let alt = a.post(&alt_url, None).await;
    assert_eq!(alt.status, 200);
    let main_chain = ecca::pemfile::parse_certs(&main.body).unwrap();
    let alt_chain = ecca::pemfile::parse_certs(&alt.body).unwrap();
    assert_eq!(alt_chain.len(), main_chain.len() + 1);
    assert_eq!(alt_chain[..main_chain.len()], main_chain[..]);
    let (issuing, link) = (
        common::parse(&alt_chain[1]),
        common::parse(alt_chain.last().unwrap()),
    );
    assert_eq!(link.subject().as_raw(), issuing.issuer().as_raw());
    assert_ne!(
        link.issuer().as_raw(),
        link.subject().as_raw(),
        "signed by the old root"
    );

    // Another platform's account sees none of this account's objects and cannot revoke its
    // certificate with its own account key.
    add_platform(&ca.client, "rival", "rival.test", None).await;
    let rival_key = ca.client.create_acme_key("rival").await.unwrap();
    let mut rival = Acme::new(addr, &ca.data_dir().join("admin/ca.pem"));
    assert_eq!(
        rival.register(&rival_key.kid, &rival_key.hmac).await.status,
        201
    );
    for url in [&order_url, &cert_url, &authz] {
        let r = rival.post(url, None).await;
        assert_eq!(r.status, 404, "{url}: {}", String::from_utf8_lossy(&r.body));
    }
    let r = rival
        .post(
            ready["finalize"].as_str().unwrap(),
            Some(json!({"csr": B64.encode(&csr)})),
        )
        .await;
    assert_eq!(r.status, 404, "another account's order cannot be finalized");
    let r = rival
        .post(
            "/acme/revoke-cert",
            Some(json!({"certificate": B64.encode(&main_chain[0])})),
        )
        .await;
    assert_eq!((r.status, r.problem().as_str()), (403, "unauthorized"));

    // Revocation signed with the certificate's own key (no account); a stranger's key is
    // refused; twice is alreadyRevoked.
    let mut stranger = Acme::new(addr, &ca.data_dir().join("admin/ca.pem"));
    let payload = json!({"certificate": B64.encode(&main_chain[0]), "reason": 4});
    let r = stranger
        .post("/acme/revoke-cert", Some(payload.clone()))
        .await;
    assert_eq!((r.status, r.problem().as_str()), (403, "unauthorized"));
    let mut holder = Acme::new(addr, &ca.data_dir().join("admin/ca.pem"));
    holder.pkcs8 = leaf_key.serialize_der();
    holder.key = key_of(&holder.pkcs8);
    let r = holder
        .post("/acme/revoke-cert", Some(payload.clone()))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = holder.post("/acme/revoke-cert", Some(payload)).await;
    assert_eq!(r.problem(), "alreadyRevoked");
    let serial = hex::encode(common::parse(&main_chain[0]).raw_serial());
    let record = ca.client.get(&serial).await.unwrap();
    assert!(record.revoked_at.is_some(), "the store has the revocation");

    // Every ACME state change is in the audit chain, next to the issuance it led to, and
    // the certificate is issued as the account's platform.
    let events: Vec<(String, String)> = ca
        .client
        .audit_log()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event, e.actor))
        .collect();
    for wanted in [
        "acme.eab_key.created",
        "acme.eab_key.bound",
        "acme.account.created",
        "acme.order.created",
        "acme.authz.created",
        "acme.challenge.processing",
        "acme.authz.valid",
        "acme.authz.deactivated",
        "acme.order.ready",
        "acme.order.processing",
        "acme.order.valid",
        "certificate.issued",
        "certificate.revoked",
    ] {
        assert!(
            events.iter().any(|(e, _)| e == wanted),
            "audit has {wanted}"
        );
    }
    assert!(
        events
            .iter()
            .any(|(e, actor)| e == "certificate.issued" && actor.starts_with("platform:acme-")),
        "issued as the platform, by the account"
    );
    // Expired orders and authorizations are purged (audited with the count).
    let store = ca.running.as_ref().unwrap().service().store();
    let far = time::OffsetDateTime::now_utc().unix_timestamp() + 30 * 86_400;
    store
        .write(ecca::store::Op::AcmePurge { before: far })
        .await
        .unwrap();
    let r = a.post(&order_url, None).await;
    assert_eq!(
        r.status,
        404,
        "purged: {}",
        String::from_utf8_lossy(&r.body)
    );
    let purged = ca.client.audit_log().await.unwrap();
    assert!(
        purged.iter().any(|e| e.event == "acme.purged"),
        "the purge is audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_required_binding_accounts_act_for_the_default_platform() {
    let ca = TestCa::start_with(|c| {
        c.acme.external_account_required = Some(false);
        c.acme.default_platform = Some("open".into());
    })
    .await;
    add_platform(&ca.client, "open", "open.test", None).await;
    let addr = ca.running.as_ref().unwrap().endpoints.acme.unwrap();
    let mut a = Acme::new(addr, &ca.data_dir().join("admin/ca.pem"));
    let r = a.raw("GET", &a.url("/acme/directory"), b"").await;
    assert_eq!(r.json()["meta"]["externalAccountRequired"], false);
    let r = a
        .post(
            "/acme/new-account",
            Some(json!({"termsOfServiceAgreed": true, "contact": ["mailto:ops@open.test"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.json());
    let kid = r.header("location").map(str::to_string);
    // The same key again: the same account (200, same URL).
    let r = a
        .post(
            "/acme/new-account",
            Some(json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_eq!((r.status, r.header("location")), (200, kid.as_deref()));
    a.kid = kid;
    let order = |name: &str| json!({"identifiers": [{"type": "dns", "value": name}]});
    assert_eq!(
        a.post("/acme/new-order", Some(order("www.open.test")))
            .await
            .status,
        201
    );
    let r = a
        .post("/acme/new-order", Some(order("www.elsewhere.test")))
        .await;
    assert_eq!(r.problem(), "rejectedIdentifier");
    // A contact that is not mailto: is refused with unsupportedContact.
    let mut b = Acme::new(addr, &ca.data_dir().join("admin/ca.pem"));
    let r = b
        .post(
            "/acme/new-account",
            Some(json!({"contact": ["tel:+86100"]})),
        )
        .await;
    assert_eq!(r.problem(), "unsupportedContact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_address_has_an_acme_request_rate() {
    let ca = TestCa::start_with(|c| c.rates.acme_per_ip = 1).await;
    let addr = ca.running.as_ref().unwrap().endpoints.acme.unwrap();
    let a = Acme::new(addr, &ca.data_dir().join("admin/ca.pem"));
    // A burst of two, then rateLimited with Retry-After (nothing read or written).
    let url = a.url("/acme/directory");
    let statuses: Vec<Resp> =
        futures_util::future::join_all((0..4).map(|_| a.raw("GET", &url, b""))).await;
    let limited: Vec<&Resp> = statuses.iter().filter(|r| r.status == 429).collect();
    assert!(!limited.is_empty(), "over the rate");
    assert_eq!(limited[0].problem(), "rateLimited");
    assert!(limited[0].header("retry-after").is_some());
    // After the wait, served again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        a.raw("GET", &a.url("/acme/directory"), b"").await.status,
        200
    );
}
