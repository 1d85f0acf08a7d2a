//! `ecca bench`: throughput and latency of a real server over mTLS gRPC and HTTP, measured in
//! one run beside the in-process ceiling (and, with --with-cfssl, beside cfssl).
//!
//! It starts its own server in a temporary data directory (so build with --release).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;
use ecca::client::Client;
use ecca::config::ServerConfig;
use ecca::core::path::{Cert, Options, build_and_validate};
use ecca::{Error, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{Value, json};

use crate::output::Progress;

mod external;
mod nginx;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Example:\n  cargo run --release --bin ecca -- bench\n  cargo run --release --bin ecca -- bench --quick --json\n  cargo run --release --bin ecca -- bench --with-cfssl      (installs Debian's golang-cfssl if missing)\n  cargo run --release --bin ecca -- bench --with-nginx      (OCSP GET beside nginx serving the same response; installs nginx-light and wrk)"
)]
pub struct Args {
    /// Issuance requests per concurrency level.
    #[arg(long, default_value_t = 4000)]
    requests: usize,
    /// Concurrency levels for issuance and OCSP.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64,256")]
    concurrency: Vec<usize>,
    /// Seconds per OCSP level.
    #[arg(long, default_value_t = 3)]
    ocsp_seconds: u64,
    /// CRL sizes (revoked entries).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    crl_sizes: Vec<usize>,
    /// Smaller runs (a smoke test of the bench itself).
    #[arg(long)]
    quick: bool,
    /// Also measure cfssl serve under the same issuance load.
    #[arg(long)]
    with_cfssl: bool,
    /// Also serve the same OCSP response with nginx from a file and compare GETs (wrk, same
    /// run; installs nginx-light and wrk if missing).
    #[arg(long)]
    with_nginx: bool,
    /// Also measure issuance with the store in this (empty) PostgreSQL database, next to the
    /// embedded SQLite store, at the same concurrency levels.
    #[arg(long, value_name = "postgres://...")]
    postgres: Option<String>,
    /// Internal: measure one CRL rebuild of N entries in a fresh process.
    #[arg(long, hide = true)]
    crl_only: Option<usize>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn p256_csr(name: &str) -> Result<Vec<u8>> {
    let failed = |e: rcgen::Error| Error::Internal(format!("bench CSR: {e}"));
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let mut p = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(failed)?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    Ok(p.serialize_request(&key).map_err(failed)?.der().to_vec())
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// An SM2 CSR (SM3withSM2 with the default distinguishing ID), as `ecca csr` makes it.
fn sm2_csr(name: &str) -> Result<Vec<u8>> {
    let key = ecca::signer::SoftwareKey::generate(ecca::core::keys::CaKeyAlg::Sm2)?;
    let mut p = rcgen::CertificateParams::new(vec![name.to_string()])
        .map_err(|e| Error::Internal(format!("bench CSR: {e}")))?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    Ok(ecca::core::issue::request_der(&p, &key)?)
}

/// A merchant CSR (O, C, USCC) for a fresh key of `alg`: what dual certificates are for.
fn merchant_csr(alg: ecca::core::keys::CaKeyAlg, i: usize) -> Result<Vec<u8>> {
    use rcgen::{DnType, DnValue};
    let failed = |e: rcgen::Error| Error::Internal(format!("bench CSR: {e}"));
    let key = ecca::signer::SoftwareKey::generate(alg)?;
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString("CN".try_into().map_err(failed)?),
    );
    dn.push(DnType::OrganizationName, "Example Trading Co., Ltd.");
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        DnValue::PrintableString("91350100M000100Y43".try_into().map_err(failed)?),
    );
    dn.push(DnType::CommonName, format!("merchant {i}"));
    p.distinguished_name = dn;
    Ok(ecca::core::issue::request_der(&p, &key)?)
}

/// Single and dual issuance under `profile` with merchant CSRs of `alg`, in this run:
/// (single per second, dual per second, dual p50 ms).
async fn dual_levels(
    clients: &[Client],
    alg: ecca::core::keys::CaKeyAlg,
    profile: &'static str,
    n: usize,
    c: usize,
) -> Result<(f64, f64, f64)> {
    let progress = Progress::new(&format!("generating {} merchant CSRs", alg.as_str()), 2 * n);
    let mut csrs = Vec::with_capacity(2 * n);
    for i in 0..2 * n {
        csrs.push(merchant_csr(alg, i)?);
        progress.tick();
    }
    let second = csrs.split_off(n);
    let (one, _, _) = issue_level_under(clients, csrs, c, profile, false).await?;
    let (two, p50, _) = issue_level_under(clients, second, c, profile, true).await?;
    Ok((one, two, p50))
}

/// Signatures and verifications per second on one thread with a software key of `alg`.
fn sign_verify(alg: ecca::core::keys::CaKeyAlg, n: usize) -> Result<(f64, f64)> {
    use ecca::core::keys::{CaKeyAlg, Signer};
    let key = ecca::signer::SoftwareKey::generate(alg)?;
    let msg = b"tbsCertificate stand-in: 300 bytes of what a CA signs".repeat(6);
    let t = Instant::now();
    let mut sig = Vec::new();
    for _ in 0..n {
        sig = key.sign(&msg)?;
    }
    let signs = n as f64 / t.elapsed().as_secs_f64();
    let point = key.public_key_raw().to_vec();
    let t = Instant::now();
    for _ in 0..n {
        let ok = match alg {
            CaKeyAlg::Sm2 => {
                ecca::core::sm2::verify(&point, ecca::core::sm2::DEFAULT_ID, &msg, &sig).is_ok()
            }
            _ => ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_ASN1,
                &point,
            )
            .verify(&msg, &sig)
            .is_ok(),
        };
        if !ok {
            return Err(Error::Internal("bench signature does not verify".into()));
        }
    }
    Ok((signs, n as f64 / t.elapsed().as_secs_f64()))
}

/// Issuance over gRPC at one concurrency level: (per second, p50 ms, p99 ms).
async fn issue_level(
    clients: &[Client],
    csrs: Vec<Vec<u8>>,
    concurrency: usize,
) -> Result<(f64, f64, f64)> {
    issue_level_under(clients, csrs, concurrency, "server-tls", false).await
}

/// [`issue_level`] under a given profile; `dual`: IssueDualCertificate (two certificates and
/// a KMC escrow per request).
async fn issue_level_under(
    clients: &[Client],
    csrs: Vec<Vec<u8>>,
    concurrency: usize,
    profile: &'static str,
    dual: bool,
) -> Result<(f64, f64, f64)> {
    let total = csrs.len();
    let csrs = Arc::new(csrs);
    let next = Arc::new(AtomicUsize::new(0));
    let progress = Progress::new(&format!("issuance c={concurrency}"), total);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (client, csrs, next, progress) = (
            clients[w % clients.len()].clone(),
            csrs.clone(),
            next.clone(),
            progress.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= csrs.len() {
                    return Ok::<_, Error>(lat);
                }
                let t = Instant::now();
                if dual {
                    client
                        .issue_dual(csrs[i].clone(), profile, None, "")
                        .await?;
                } else {
                    client.issue(csrs[i].clone(), profile, None).await?;
                }
                lat.push(t.elapsed());
                progress.tick();
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.map_err(|e| Error::Internal(e.to_string()))??);
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    Ok((
        total as f64 / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
    ))
}

/// The in-process ceiling: CSR verify + policy + the service's own build/lint/sign pipeline
/// (`service::prepare_leaf`), no store, no network, on `threads`.
fn ceiling(data_dir: &Path, base_url: &str, csrs: &[Vec<u8>], threads: usize) -> Result<f64> {
    use ecca::core::issue;
    let authority = Arc::new(ecca::authority::Authority::load(
        &ecca::layout::Layout::new(data_dir),
        base_url,
        None,
    )?);
    let profiles = Arc::new(ecca::core::profile::Profiles::embedded()?);
    let csrs = Arc::new(csrs.to_vec());
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (authority, profiles, csrs) = (authority.clone(), profiles.clone(), csrs.clone());
            std::thread::spawn(move || -> Result<()> {
                let profile = profiles.get("server-tls")?;
                for csr in csrs.iter().skip(t).step_by(threads) {
                    let v = ecca::core::csr::verify(csr)?;
                    let names = issue::approve_names(profile, &v)?;
                    let leaf = ecca::service::LeafRequest {
                        ca: &authority.issuing.cert,
                        urls: Some(&authority.issuing.urls),
                        profile,
                        names: &names,
                        spki_der: &v.spki_der,
                        key_enciphers: v.key_alg.enciphers(),
                        validity_days: None,
                    };
                    ecca::service::prepare_leaf(&leaf)?.sign(&authority.issuing)?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| Error::Internal("ceiling thread panicked".into()))??;
    }
    Ok(csrs.len() as f64 / start.elapsed().as_secs_f64())
}

/// OCSP POSTs over `connections` keep-alive HTTP/1.1 connections for `secs`.
async fn ocsp_level(
    addr: &str,
    request: Vec<u8>,
    connections: usize,
    secs: u64,
) -> Result<(f64, f64, f64)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (addr, request) = (addr.to_string(), request.clone());
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr)
                .await
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let req = hyper::Request::post("/ocsp")
                    .header(hyper::header::HOST, addr.as_str())
                    .header(hyper::header::CONTENT_TYPE, "application/ocsp-request")
                    .body(Full::new(Bytes::from(request.clone())))
                    .map_err(|e| e.to_string())?;
                let t = Instant::now();
                let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
                resp.into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?;
                lat.push(t.elapsed());
            }
            Ok::<_, String>(lat)
        }));
    }
    let start = Instant::now();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(
            t.await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(Error::Remote)?,
        );
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    Ok((
        lat.len() as f64 / secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
    ))
}

/// One CRL rebuild of `n` revoked certificates through the real store and publisher (run in
/// its own process, so the peak memory is this measurement's).
async fn crl_only(n: usize) -> Result<()> {
    use ecca::authority::{Authority, InitOptions};
    use ecca::layout::Layout;
    use ecca::publish::{CrlKind, Publisher};
    let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let layout = Layout::new(&dir.path().join("data"));
    let authority = Arc::new(Authority::create(
        &layout,
        &InitOptions::default(),
        "http://ca.example.cn",
        None,
    )?);
    let store = Arc::new(ecca::store::SqliteStore::open(&layout.database())?);
    {
        let mut conn = rusqlite::Connection::open(layout.database())?;
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO certificates (serial, status, profile, subject, sans, not_before, not_after, created_at,
                 issued_at, der, revoked_at, revocation_reason, revocation_seq)
                 VALUES (?1, 'issued', 'server-tls', 'CN=x', '[]', 0, 4102444800, 0, 0, x'30', ?2, 1, ?3)",
            )?;
            for i in 0..n as i64 {
                stmt.execute(rusqlite::params![
                    format!("40{i:030x}"),
                    1_790_000_000 + i,
                    i + 1
                ])?;
            }
        }
        tx.commit()?;
    }
    let publisher = Publisher::new(store, authority);
    let before = peak_rss_mib();
    let t = Instant::now();
    publisher.rebuild_crls().await?;
    let secs = t.elapsed().as_secs_f64();
    let bytes = publisher
        .crl(&ecca::core::records::CaId::issuing(), CrlKind::Full)?
        .der
        .len();
    println!(
        "{}",
        json!({"entries": n, "seconds": secs, "peak_rss_mib": peak_rss_mib(), "rss_before_mib": before, "crl_bytes": bytes})
    );
    Ok(())
}

fn server_binary() -> PathBuf {
    std::env::current_exe()
        .map(|p| p.with_file_name("ecca-server"))
        .unwrap_or_else(|_| PathBuf::from("ecca-server"))
}

/// Start-up time (first start creates the CA; the second reuses it) and idle RSS of the real
/// server binary.
fn startup_and_idle(tmp: &Path) -> Result<(f64, f64, f64)> {
    let dir = tmp.join("startup");
    let mut times = Vec::new();
    let mut rss = 0.0;
    for round in 0..2 {
        let t = Instant::now();
        let server = external::Server::start(&server_binary(), &dir)?;
        times.push(t.elapsed().as_secs_f64());
        if round == 1 {
            std::thread::sleep(Duration::from_secs(1));
            rss = server.rss_mib();
        }
    }
    Ok((times[0], times[1], rss))
}

/// cfssl serve under the same issuance load (plain HTTP, no storage: cfssl's fastest mode).
async fn cfssl_levels(
    tmp: &Path,
    csrs: &[Vec<u8>],
    levels: &[usize],
    per_level: usize,
) -> Result<Vec<(usize, f64)>> {
    let have = |b: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("cfssl") {
        eprintln!("installing golang-cfssl (Debian) for the comparison");
        let ok = Command::new("sh").args(["-c", "apt-get install -y -qq golang-cfssl || (apt-get update -qq && apt-get install -y -qq golang-cfssl)"]).status().is_ok_and(|s| s.success());
        if !ok || !have("cfssl") {
            return Err(Error::Remote(
                "cfssl is not installed and could not be installed (apt-get install golang-cfssl)"
                    .into(),
            ));
        }
    }
    let dir = tmp.join("cfssl");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    std::fs::write(
        dir.join("csr.json"),
        r#"{"CN":"cfssl bench CA","key":{"algo":"ecdsa","size":256}}"#,
    )
    .map_err(|e| Error::io(&dir, e))?;
    let out = Command::new("sh")
        .current_dir(&dir)
        .args(["-c", "cfssl genkey -initca csr.json | cfssljson -bare ca"])
        .output()
        .map_err(|e| Error::Remote(e.to_string()))?;
    if !out.status.success() {
        return Err(Error::Remote(format!(
            "cfssl genkey: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::io("port", e))?
        .port();
    let mut child = Command::new("cfssl")
        .current_dir(&dir)
        .args([
            "serve",
            "-address",
            "127.0.0.1",
            "-port",
            &port.to_string(),
            "-ca",
            "ca.pem",
            "-ca-key",
            "ca-key.pem",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::Remote(e.to_string()))?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let url = format!("http://127.0.0.1:{port}/api/v1/cfssl/sign");
    let mut results = Vec::new();
    for &c in levels {
        let bodies: Vec<Vec<u8>> = csrs
            .iter()
            .take(per_level)
            .map(|d| json!({"certificate_request": pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", d.clone()))}).to_string().into_bytes())
            .collect();
        let next = Arc::new(AtomicUsize::new(0));
        let bodies = Arc::new(bodies);
        let progress = Progress::new(&format!("cfssl issuance c={c}"), bodies.len());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..c {
            let (url, bodies, next, progress) =
                (url.clone(), bodies.clone(), next.clone(), progress.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= bodies.len() {
                        return Ok::<_, String>(());
                    }
                    ecca::verify::http_post(
                        &url,
                        "application/json",
                        bodies[i].clone(),
                        1 << 20,
                        Duration::from_secs(30),
                    )
                    .await?;
                    progress.tick();
                }
            }));
        }
        for t in tasks {
            t.await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(Error::Remote)?;
        }
        results.push((c, bodies.len() as f64 / start.elapsed().as_secs_f64()));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(results)
}

pub async fn run(g: &crate::context::Global, mut a: Args) -> Result<()> {
    if let Some(n) = a.crl_only {
        return crl_only(n).await;
    }
    if a.quick {
        a.requests = a.requests.min(400);
        a.crl_sizes.retain(|s| *s <= 10_000);
        a.concurrency = vec![1, 16];
        a.ocsp_seconds = 1;
    }
    let tmp = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut report = serde_json::Map::new();

    const BULK_STREAMS: [usize; 2] = [1, 4];
    let total = a.requests * a.concurrency.len();
    let bulk_total = a.requests * BULK_STREAMS.len();
    let progress = Progress::new("generating P-256 CSRs", total + bulk_total + 2000);
    let mut csrs = Vec::with_capacity(total + bulk_total + 2000);
    for i in 0..total + bulk_total + 2000 {
        csrs.push(p256_csr(&format!("b{i}.bench.example.cn"))?);
        progress.tick();
    }
    let ceiling_csrs: Vec<Vec<u8>> = csrs.split_off(total + bulk_total);
    let bulk_csrs: Vec<Vec<u8>> = csrs.split_off(total);

    // Issuance from outside: the real server binary in its own process.
    let ext = external::Server::start(&server_binary(), &tmp.path().join("external"))?;
    let mut ext_clients = Vec::new();
    for _ in 0..4 {
        ext_clients.push(Client::connect_data_dir(&ext.dir).await?);
    }
    let ext_http = ext.http()?;
    let c1 = ceiling(&ext.dir, &format!("http://{ext_http}"), &ceiling_csrs, 1)?;
    let c2 = ceiling(&ext.dir, &format!("http://{ext_http}"), &ceiling_csrs, 2)?;
    rows.push((
        "in-process ceiling (verify+build+lint+sign)".into(),
        format!("{c1:.0}/s 1 thread, {c2:.0}/s 2 threads"),
        format!("{:.3} ms CPU per certificate", 1000.0 / c1),
    ));
    report.insert(
        "ceiling_per_second".into(),
        json!({"threads_1": c1, "threads_2": c2}),
    );
    let per_cert_ms = 1000.0 / c1;
    let mut issuance = Vec::new();
    let mut best_unary = 0.0f64;
    for (k, &c) in a.concurrency.iter().enumerate() {
        let batch = csrs[k * a.requests..(k + 1) * a.requests].to_vec();
        let l = external::unary(&ext, &ext_clients, batch, c).await?;
        best_unary = best_unary.max(l.per_second);
        rows.push((
            format!("issuance c={c} (separate server process, unary)"),
            format!(
                "{:.0}/s  p50 {:.2} ms  p99 {:.2} ms",
                l.per_second, l.p50_ms, l.p99_ms
            ),
            format!(
                "server CPU {:.3} ms/issuance = {:.1}x ceiling",
                l.cpu_ms,
                l.cpu_ms / per_cert_ms
            ),
        ));
        issuance.push(
            json!({"concurrency": c, "per_second": l.per_second, "p50_ms": l.p50_ms,
                             "p99_ms": l.p99_ms, "server_cpu_ms_per_issuance": l.cpu_ms}),
        );
    }
    let mut bulk = Vec::new();
    let mut best_bulk = 0.0f64;
    for (k, &streams) in BULK_STREAMS.iter().enumerate() {
        let batch = bulk_csrs[k * a.requests..(k + 1) * a.requests].to_vec();
        let l = external::bulk(&ext, &ext_clients, batch, streams).await?;
        best_bulk = best_bulk.max(l.per_second);
        rows.push((
            format!("bulk issuance, {streams} IssueCertificates stream(s)"),
            format!("{:.0}/s", l.per_second),
            format!(
                "server CPU {:.3} ms/issuance = {:.1}x ceiling",
                l.cpu_ms,
                l.cpu_ms / per_cert_ms
            ),
        ));
        bulk.push(json!({"streams": streams, "per_second": l.per_second,
                         "server_cpu_ms_per_issuance": l.cpu_ms}));
    }
    rows.push((
        "issuance best vs ceiling (2 threads)".into(),
        format!(
            "unary {:.0} %, bulk {:.0} %",
            100.0 * best_unary / c2,
            100.0 * best_bulk / c2
        ),
        "target unary >= 40 %, bulk >= 70 %".into(),
    ));
    report.insert("issuance".into(), json!(issuance));
    report.insert("bulk".into(), json!(bulk));
    if a.with_nginx {
        // OCSP GETs from the separate server process (pre-signing caught up), beside nginx.
        ext.settle(Duration::from_secs(120)).await;
        let cert = ext_clients[0]
            .issue(p256_csr("ocsp.bench.example.cn")?, "server-tls", None)
            .await?
            .certificate
            .unwrap_or_default();
        ext.settle(Duration::from_secs(10)).await;
        let bundle = ext_clients[0].trust_bundle().await?;
        let request = ecca::core::revcheck::ocsp_request(
            &Cert::parse(&cert.der)?,
            &Cert::parse(&bundle.intermediates_der[0])?,
        )
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let levels: Vec<usize> = a.concurrency.iter().copied().filter(|c| *c <= 64).collect();
        let http = ext_http.to_string();
        let cmp =
            nginx::compare(tmp.path(), &http, &request, &levels, a.ocsp_seconds.max(3)).await?;
        for (c, ours, theirs) in &cmp {
            rows.push((
                format!("OCSP GET c={c} (wrk): ecca process / nginx file"),
                format!("{ours:.0}/s / {theirs:.0}/s"),
                format!("ecca/nginx = {:.2} (target >= 0.90)", ours / theirs),
            ));
        }
        report.insert(
            "ocsp_get_vs_nginx".into(),
            json!(cmp.iter().map(|(c, o, t)| json!({"connections": c, "ecca_per_second": o, "nginx_per_second": t})).collect::<Vec<_>>()),
        );
    }
    if a.with_cfssl {
        // cfssl under the same load, right after ecca's levels (machine speed drifts).
        drop(ext_clients);
        drop(ext);
        let per = a.requests.min(2000);
        let cf = cfssl_levels(tmp.path(), &csrs, &a.concurrency, per).await?;
        for (c, rate) in &cf {
            let ours = issuance
                .iter()
                .find(|x| x["concurrency"] == *c)
                .and_then(|x| x["per_second"].as_f64())
                .unwrap_or(0.0);
            rows.push((
                format!("cfssl serve c={c} (HTTP, not stored)"),
                format!("{rate:.0}/s"),
                format!(
                    "ecca/cfssl unary = {:.2}, bulk (best) = {:.2}",
                    ours / rate,
                    best_bulk / rate
                ),
            ));
        }
        report.insert(
            "cfssl".into(),
            json!(
                cf.iter()
                    .map(|(c, r)| json!({"concurrency": c, "per_second": r}))
                    .collect::<Vec<_>>()
            ),
        );
    }

    // The rest runs against an in-process server (metrics switched off and on in place).
    let data = tmp.path().join("data");
    let mut config = ServerConfig::loopback(&data);
    // The load comes from one address: the per-address OCSP limit would measure itself.
    config.rates.ocsp_per_ip = 0;
    let running = ecca::server::start(config).await?;
    let http = running.endpoints.http.to_string();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Client::connect_data_dir(&data).await?);
    }

    // The same levels in process: the reference for the SM2 and PostgreSQL ratios below.
    let mut in_process = Vec::new();
    for (k, &c) in a.concurrency.iter().enumerate() {
        let batch = csrs[k * a.requests..(k + 1) * a.requests].to_vec();
        let (rate, p50, p99) = issue_level(&clients, batch, c).await?;
        rows.push((
            format!("issuance c={c} (in-process server)"),
            format!("{rate:.0}/s  p50 {p50:.2} ms  p99 {p99:.2} ms"),
            String::new(),
        ));
        in_process
            .push(json!({"concurrency": c, "per_second": rate, "p50_ms": p50, "p99_ms": p99}));
    }
    report.insert("issuance_in_process".into(), json!(in_process));

    // Counting costs nothing measurable: the same level with metrics off and on, interleaved
    // (off, on, off, on) so drift hits both alike.
    let c = a
        .concurrency
        .iter()
        .copied()
        .rfind(|c| *c <= 64)
        .unwrap_or(1);
    let half = (a.requests / 2).max(20);
    let mut rates = [Vec::new(), Vec::new()];
    for round in 0..4 {
        let on = round % 2 == 1;
        let mut batch = Vec::with_capacity(half);
        for i in 0..half {
            batch.push(p256_csr(&format!("m{round}-{i}.bench.example.cn"))?);
        }
        ecca::metrics::set_enabled(on);
        let (rate, _, _) = issue_level(&clients, batch, c).await?;
        rates[usize::from(on)].push(rate);
    }
    ecca::metrics::set_enabled(true);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (off, on) = (mean(&rates[0]), mean(&rates[1]));
    rows.push((
        format!("issuance c={c} metrics off / on"),
        format!("{off:.0}/s / {on:.0}/s"),
        format!("on/off = {:.2} (2 interleaved runs each)", on / off),
    ));
    report.insert(
        "metrics".into(),
        json!({"concurrency": c, "off_per_second": off, "on_per_second": on, "runs": rates}),
    );

    // The national algorithms beside P-256, in this run: SM2 signatures, and SM2 issuance at
    // the largest concurrency level up to 64 (an SM2 hierarchy made for the purpose).
    let n = if a.quick { 300 } else { 3000 };
    let (p256_sign, p256_verify) = sign_verify(ecca::core::keys::CaKeyAlg::P256, n)?;
    let (sm2_sign, sm2_verify) = sign_verify(ecca::core::keys::CaKeyAlg::Sm2, n)?;
    rows.push((
        "SM2 sign / verify (1 thread, software)".into(),
        format!("{sm2_sign:.0}/s / {sm2_verify:.0}/s"),
        format!(
            "P-256 {p256_sign:.0}/s / {p256_verify:.0}/s: SM2/P-256 = {:.2} / {:.2}",
            sm2_sign / p256_sign,
            sm2_verify / p256_verify
        ),
    ));
    clients[0].add_issuer("gm", "sm2", false).await?;
    let (level, c) = a
        .concurrency
        .iter()
        .copied()
        .enumerate()
        .rfind(|(_, c)| *c <= 64)
        .unwrap_or((0, 1));
    let progress = Progress::new("generating SM2 CSRs", a.requests);
    let mut sm2_csrs = Vec::with_capacity(a.requests);
    for i in 0..a.requests {
        sm2_csrs.push(sm2_csr(&format!("g{i}.bench.example.cn"))?);
        progress.tick();
    }
    let (sm2_rate, sm2_p50, sm2_p99) =
        issue_level_under(&clients, sm2_csrs, c, "sm2-server-tls", false).await?;
    let p256_rate = in_process
        .get(level)
        .and_then(|v| v["per_second"].as_f64())
        .unwrap_or(0.0);
    rows.push((
        format!("SM2 issuance gRPC mTLS c={c} (stored, audited)"),
        format!("{sm2_rate:.0}/s  p50 {sm2_p50:.2} ms  p99 {sm2_p99:.2} ms"),
        format!("SM2/P-256 = {:.2}", sm2_rate / p256_rate),
    ));
    report.insert(
        "sm2".into(),
        json!({
            "sign_per_second": sm2_sign, "verify_per_second": sm2_verify,
            "p256_sign_per_second": p256_sign, "p256_verify_per_second": p256_verify,
            "issuance": {"concurrency": c, "per_second": sm2_rate, "p50_ms": sm2_p50, "p99_ms": sm2_p99,
                         "p256_per_second": p256_rate},
        }),
    );
    // Dual certificates (GM/T 0034): a signing and an encryption certificate plus the KMC's
    // key generation, escrow and envelope, against one certificate for the same CSRs.
    let n = (a.requests / 4).max(20);
    let mut duals = Vec::new();
    for (alg, profile) in [
        (ecca::core::keys::CaKeyAlg::Sm2, "sm2-merchant-ov"),
        (ecca::core::keys::CaKeyAlg::P256, "merchant-ov"),
    ] {
        let (one, two, p50) = dual_levels(&clients, alg, profile, n, c).await?;
        rows.push((
            format!(
                "dual issuance {} c={c} (2 certificates + KMC escrow)",
                alg.as_str()
            ),
            format!("{two:.0}/s  p50 {p50:.2} ms"),
            format!("dual/single = {:.2} (single {one:.0}/s)", two / one),
        ));
        duals.push(
            json!({"algorithm": alg.as_str(), "concurrency": c, "requests": n,
                          "single_per_second": one, "dual_per_second": two, "dual_p50_ms": p50}),
        );
    }
    report.insert("dual".into(), json!(duals));
    if let Some(url) = &a.postgres {
        let pg = postgres_levels(tmp.path(), url, &csrs, &a).await?;
        for (level, (c, rate, p50, p99)) in pg.iter().enumerate() {
            let sqlite = in_process[level]["per_second"].as_f64().unwrap_or(0.0);
            rows.push((
                format!("issuance on PostgreSQL c={c}"),
                format!("{rate:.0}/s  p50 {p50:.2} ms  p99 {p99:.2} ms"),
                format!("PostgreSQL/SQLite = {:.2}", rate / sqlite),
            ));
        }
        report.insert(
            "issuance_postgres".into(),
            json!(pg.iter().map(|(c, r, p50, p99)| json!({"concurrency": c, "per_second": r, "p50_ms": p50, "p99_ms": p99})).collect::<Vec<_>>()),
        );
    }

    // OCSP: one issued certificate, pre-signed responses, measured once the pre-signing of
    // what the issuance levels issued has caught up (it would otherwise share the cores).
    if !running.settle(Duration::from_secs(120)).await {
        eprintln!("OCSP pre-signing has not caught up after 120 s; measuring anyway");
    }
    let cert = clients[0]
        .issue(p256_csr("ocsp.bench.example.cn")?, "server-tls", None)
        .await?
        .certificate
        .unwrap_or_default();
    let bundle = clients[0].trust_bundle().await?;
    let issuer = Cert::parse(&bundle.intermediates_der[0])?;
    let leaf = Cert::parse(&cert.der)?;
    let request = ecca::core::revcheck::ocsp_request(&leaf, &issuer)
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let mut ocsp = Vec::new();
    for &c in a.concurrency.iter().filter(|c| **c <= 64) {
        eprintln!("OCSP c={c} for {} s", a.ocsp_seconds);
        let (rate, p50, p99) = ocsp_level(&http, request.clone(), c, a.ocsp_seconds).await?;
        rows.push((
            format!("OCSP POST c={c}"),
            format!("{rate:.0}/s  p50 {p50:.2} ms  p99 {p99:.2} ms"),
            "target >= 50000/s, p99 < 5 ms".into(),
        ));
        ocsp.push(json!({"connections": c, "per_second": rate, "p50_ms": p50, "p99_ms": p99}));
    }
    report.insert("ocsp".into(), json!(ocsp));
    // Chains per second (one core) and signatures per second (batch).
    let anchors = vec![Cert::parse(&bundle.roots_der[0])?];
    let pool = vec![issuer.clone()];
    let opts = Options::at(time::OffsetDateTime::now_utc().unix_timestamp());
    let n = if a.quick { 2000 } else { 20_000 };
    let t = Instant::now();
    for _ in 0..n {
        let leaf = Cert::parse(&cert.der)?;
        build_and_validate(&leaf, &pool, &anchors, &opts)
            .map_err(|f| Error::Internal(f.texts().join("; ")))?;
    }
    let chains = n as f64 / t.elapsed().as_secs_f64();
    rows.push((
        "chain verifications (1 core, no revocation)".into(),
        format!("{chains:.0}/s"),
        String::new(),
    ));
    report.insert("chains_per_second".into(), json!(chains));
    let sigs = signatures(&clients[0], &bundle, if a.quick { 300 } else { 3000 }).await?;
    rows.push((
        "signature verifications (batch, 2 cores)".into(),
        format!("{sigs:.0}/s"),
        String::new(),
    ));
    report.insert("signatures_per_second".into(), json!(sigs));
    drop(clients);
    running.shutdown().await;

    // CRLs, each in its own process so its peak memory is its own.
    let mut crls = Vec::new();
    for &size in &a.crl_sizes {
        eprintln!("CRL of {size} entries");
        let out = Command::new(std::env::current_exe().map_err(|e| Error::io("current_exe", e))?)
            .args(["bench", "--crl-only", &size.to_string()])
            .output()
            .map_err(|e| Error::io("bench --crl-only", e))?;
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            Error::Internal(format!(
                "crl bench: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        })?;
        rows.push((
            format!("CRL {size} entries (full+delta, signed)"),
            format!(
                "{:.2} s, peak {:.0} MiB",
                v["seconds"].as_f64().unwrap_or(0.0),
                v["peak_rss_mib"].as_f64().unwrap_or(0.0)
            ),
            if size >= 1_000_000 {
                "target < 3 s, < 500 MB".into()
            } else {
                String::new()
            },
        ));
        crls.push(v);
    }
    report.insert("crl".into(), json!(crls));

    if server_binary().exists() {
        let (first, warm, rss) = startup_and_idle(tmp.path())?;
        rows.push((
            "server start-up (first: creates the CA / later)".into(),
            format!("{:.0} ms / {:.0} ms", first * 1000.0, warm * 1000.0),
            "target < 500 ms".into(),
        ));
        rows.push((
            "idle server RSS".into(),
            format!("{rss:.1} MiB"),
            "target < 50 MB".into(),
        ));
        report.insert(
            "startup_ms".into(),
            json!({"first": first * 1000.0, "later": warm * 1000.0}),
        );
        report.insert("idle_rss_mib".into(), json!(rss));
    } else {
        eprintln!(
            "{} not found: start-up and idle RSS skipped (cargo build --release --workspace)",
            server_binary().display()
        );
    }

    if g.json {
        return crate::output::print_json(&Value::Object(report));
    }
    println!("\n{:<48} {:<44} TARGET / NOTE", "MEASURE", "RESULT");
    for (m, r, t) in rows {
        println!("{m:<48} {r:<44} {t}");
    }
    Ok(())
}

/// The issuance levels again, on a second server whose store is the PostgreSQL at `url`.
async fn postgres_levels(
    tmp: &Path,
    url: &str,
    csrs: &[Vec<u8>],
    a: &Args,
) -> Result<Vec<(usize, f64, f64, f64)>> {
    let data = tmp.join("data-postgres");
    let mut config = ServerConfig::loopback(&data);
    config.database = Some(url.into());
    let running = ecca::server::start(config).await?;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Client::connect_data_dir(&data).await?);
    }
    let mut levels = Vec::new();
    for (k, &c) in a.concurrency.iter().enumerate() {
        let batch = csrs[k * a.requests..(k + 1) * a.requests].to_vec();
        let (rate, p50, p99) = issue_level(&clients, batch, c).await?;
        levels.push((c, rate, p50, p99));
    }
    drop(clients);
    running.shutdown().await;
    Ok(levels)
}

/// Signs `n` small documents with a fresh document-signing certificate, then verifies them
/// all concurrently (revocation off): signatures per second.
async fn signatures(client: &Client, bundle: &ecca::proto::TrustBundle, n: usize) -> Result<f64> {
    use ecca::core::cms::{self, CmsSigner, SignParams};
    let key = rcgen::KeyPair::generate().map_err(|e| Error::Internal(e.to_string()))?;
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "bench signer");
    let csr = p
        .serialize_request(&key)
        .map_err(|e| Error::Internal(e.to_string()))?
        .der()
        .to_vec();
    let cert = client
        .issue(csr, "document-signing", None)
        .await?
        .certificate
        .unwrap_or_default()
        .der;
    let (alg, _) = key.algorithms();
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let doc = format!("order {i}");
        let digest = alg.digest(doc.as_bytes());
        let sig = cms::sign(
            &SignParams {
                content_type: cms::oid::DATA,
                format: cms::CmsFormat::Rfc5652,
                econtent: None,
                content_digest: &digest,
                signer_cert: &cert,
                chain: &bundle.intermediates_der,
                include_certs: true,
                signing_time: Some(0),
            },
            &key,
        )?;
        items.push((cms::signed_data(&sig)?, digest));
    }
    let verifier = Arc::new(ecca::verify::Verifier::new(
        ecca::verify::FetchLimits::default(),
        ecca::verify::FetchPolicy::local_user(),
    ));
    let anchors = bundle.roots_der.clone();
    let progress = Progress::new("signature verifications", n);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (signed, digest) in items {
        let (verifier, anchors, progress) = (verifier.clone(), anchors.clone(), progress.clone());
        set.spawn(async move {
            let out = verifier
                .verify_signature(ecca::verify::SignatureRequest {
                    signed,
                    content_digest: digest,
                    untrusted: vec![],
                    anchors,
                    crls: vec![],
                    at: None,
                    revocation: ecca::verify::RevocationMode::Off,
                })
                .await;
            progress.tick();
            out.valid
        });
        while set.len() >= 16 {
            if let Some(r) = set.join_next().await
                && !r.unwrap_or(false)
            {
                return Err(Error::Internal(
                    "a benchmark signature did not verify".into(),
                ));
            }
        }
    }
    while let Some(r) = set.join_next().await {
        if !r.unwrap_or(false) {
            return Err(Error::Internal(
                "a benchmark signature did not verify".into(),
            ));
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}
