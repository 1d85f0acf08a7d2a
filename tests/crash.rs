//! Crash safety: mixed issue/revoke load against the real `ecca-server` binary, `kill -9` at a
//! random moment, restart, and check every acknowledged operation against the store, the CRL
//! and OCSP; serials are never reused and CRL numbers never go back.
//! Run on the embedded SQLite store and on PostgreSQL (a throwaway cluster).
//! ECCA_CRASH_CYCLES sets the number of cycles (default 50; 20 on PostgreSQL). The kill
//! moments come from a seeded generator: the seed is printed, and ECCA_CRASH_SEED=N replays
//! a run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ecca::client::Client;
use ecca::core::path::Cert;
use ecca::core::revcheck::{self, Status};

/// The generator's state (splitmix64), seeded once per test from ECCA_CRASH_SEED or at random.
static RNG: Mutex<Option<u64>> = Mutex::new(None);

fn seed() -> u64 {
    let seed = match std::env::var("ECCA_CRASH_SEED") {
        Ok(s) => s.parse().expect("ECCA_CRASH_SEED is a number"),
        Err(_) => {
            let mut b = [0u8; 8];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
            u64::from_be_bytes(b)
        }
    };
    eprintln!("crash harness seed: {seed} (replay with ECCA_CRASH_SEED={seed})");
    seed
}

fn random_below(n: u64) -> u64 {
    let mut state = RNG.lock().unwrap();
    let s = state.get_or_insert_with(seed);
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % n
}

/// What certificates name for CRLs and OCSP: fixed, so each restart can bind a fresh port
/// (reusing one invites a collision with an outgoing connection's ephemeral port).
const PUBLIC_BASE_URL: &str = "http://ca.crash.test";

fn spawn(dir: &Path, database: Option<&str>) -> Child {
    let _ = std::fs::remove_file(dir.join("endpoints.json"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecca-server"));
    if let Some(url) = database {
        cmd.args(["--database", url]);
    }
    // Every start's errors go to one log beside the data directory, shown if a start fails.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(server_log(dir))
        .unwrap();
    cmd.arg("--data-dir")
        .arg(dir)
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--console-listen",
            "127.0.0.1:0",
            "--acme-listen",
            "127.0.0.1:0",
        ])
        .args(["--public-base-url", PUBLIC_BASE_URL])
        .env("ECCA_LOG", "error")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The HTTP address the server reported in its endpoints file.
fn reported_http(dir: &Path) -> String {
    let text = std::fs::read(dir.join("endpoints.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    v["http"].as_str().unwrap().to_string()
}

fn server_log(dir: &Path) -> std::path::PathBuf {
    dir.with_extension("server.log")
}

/// Waits for the server to report its endpoints and accept a client; fails with its log if
/// it exits or does not come up within a generous deadline (a hang, not a slow machine).
async fn connect(dir: &Path, child: &mut Child) -> Client {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let log = std::fs::read_to_string(server_log(dir)).unwrap_or_default();
            panic!("the server exited ({status}) while starting; its log:\n{log}");
        }
        if dir.join("endpoints.json").exists()
            && let Ok(c) = Client::connect_data_dir(dir).await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let log = std::fs::read_to_string(server_log(dir)).unwrap_or_default();
    panic!("server did not come up; its log:\n{log}");
}

#[derive(Default)]
struct Acks {
    issued: HashMap<String, Vec<u8>>,
    revoked: HashSet<String>,
    /// Revocations acknowledged since the last check (checked against OCSP once).
    fresh_revoked: Vec<String>,
}

fn cycles(default: usize) -> usize {
    std::env::var("ECCA_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_loses_nothing_acknowledged() {
    crash_cycles(cycles(50), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_minus_nine_loses_nothing_acknowledged_on_postgres() {
    let Some(pg) = pg::PgCluster::start() else {
        return;
    };
    crash_cycles(cycles(20), Some(&pg.database("crash"))).await;
}

async fn crash_cycles(cycles: usize, database: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let acks = Arc::new(Mutex::new(Acks::default()));
    let mut last_crl_number = 0u64;
    let mut ever_issued: HashSet<String> = HashSet::new();

    for cycle in 0..cycles {
        let mut child = spawn(&dir, database);
        let client = connect(&dir, &mut child).await;
        let http = reported_http(&dir);
        check(
            &client,
            &acks,
            &http,
            &mut last_crl_number,
            &mut ever_issued,
            cycle,
        )
        .await;

        // Load: three issuers and a revoker, until the kill.
        let mut tasks = Vec::new();
        for w in 0..3 {
            let (client, acks) = (client.clone(), acks.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("c{cycle}-w{w}-{i}.example.cn");
                    let csr = p256_csr(&CsrSpec::cn(&name).dns(&name));
                    match client.issue(csr, "server-tls", None).await {
                        Ok(r) => {
                            let c = r.certificate.unwrap();
                            acks.lock().unwrap().issued.insert(c.serial, c.der);
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        // Set once the server is killed: the revoker, which may have nothing left to revoke
        // and so never hear from the dead server, stops too.
        let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let (client, acks, killed) = (client.clone(), acks.clone(), killed.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let target = {
                        let a = acks.lock().unwrap();
                        a.issued.keys().find(|s| !a.revoked.contains(*s)).cloned()
                    };
                    match target {
                        Some(serial) => match client.revoke(&serial, 1, None).await {
                            Ok(_) => {
                                let mut a = acks.lock().unwrap();
                                a.revoked.insert(serial.clone());
                                a.fresh_revoked.push(serial);
                            }
                            Err(ecca::Error::Rejected {
                                code: tonic::Code::FailedPrecondition,
                                ..
                            }) => {}
                            Err(_) => return,
                        },
                        None if killed.load(std::sync::atomic::Ordering::SeqCst) => return,
                        None => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(30 + random_below(220))).await;
        child.kill().unwrap(); // SIGKILL: no shutdown path runs
        child.wait().unwrap();
        killed.store(true, std::sync::atomic::Ordering::SeqCst);
        for t in tasks {
            let _ = t.await;
        }
    }
    // A last restart checks the final cycle's acknowledgements.
    let mut child = spawn(&dir, database);
    let client = connect(&dir, &mut child).await;
    let http = reported_http(&dir);
    check(
        &client,
        &acks,
        &http,
        &mut last_crl_number,
        &mut ever_issued,
        cycles,
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let a = acks.lock().unwrap();
    eprintln!(
        "{cycles} kill -9 cycles: {} acknowledged issuances, {} acknowledged revocations, 0 lost",
        a.issued.len(),
        a.revoked.len()
    );
    assert!(a.issued.len() > cycles, "the load did run");
}

/// Every acknowledged issuance is stored byte for byte, every acknowledged revocation is in the
/// store, the CRL and OCSP, serials are unique, CRL numbers only grow.
async fn check(
    client: &Client,
    acks: &Mutex<Acks>,
    http: &str,
    last_crl: &mut u64,
    ever: &mut HashSet<String>,
    cycle: usize,
) {
    let mut stored: HashMap<String, (Vec<u8>, bool)> = HashMap::new();
    let mut token = String::new();
    loop {
        let page = client
            .list(ecca::proto::ListCertificatesRequest {
                page_size: 1000,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap();
        for c in page.certificates {
            let revoked = c.revoked_at.is_some();
            assert!(
                stored.insert(c.serial.clone(), (c.der, revoked)).is_none(),
                "cycle {cycle}: serial {} listed twice",
                c.serial
            );
        }
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let crl = client.crl(false).await.unwrap();
    assert!(
        crl.number > *last_crl,
        "cycle {cycle}: CRL number went from {} to {}",
        *last_crl,
        crl.number
    );
    *last_crl = crl.number;
    let (_, parsed) = x509_parser::parse_x509_crl(&crl.der).unwrap();
    let on_crl: HashSet<String> = parsed
        .iter_revoked_certificates()
        .map(|r| r.raw_serial_as_string().replace(':', ""))
        .collect();

    let fresh = {
        let mut a = acks.lock().unwrap();
        for (serial, der) in &a.issued {
            let (got, _) = stored
                .get(serial)
                .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged issuance {serial} lost"));
            assert_eq!(got, der, "cycle {cycle}: certificate {serial} changed");
            ever.insert(serial.clone());
        }
        for serial in &a.revoked {
            assert!(
                stored.get(serial).is_some_and(|(_, r)| *r),
                "cycle {cycle}: acknowledged revocation of {serial} lost"
            );
            assert!(
                on_crl.contains(serial),
                "cycle {cycle}: {serial} revoked but not on the CRL"
            );
        }
        std::mem::take(&mut a.fresh_revoked)
    };
    // OCSP for the revocations acknowledged just before the crash.
    let bundle = client.trust_bundle().await.unwrap();
    let issuer = Cert::parse(&bundle.intermediates_der[0]).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for serial in fresh {
        let der = acks.lock().unwrap().issued[&serial].clone();
        let cert = Cert::parse(&der).unwrap();
        let req = revcheck::ocsp_request(&cert, &issuer).unwrap();
        let resp = ecca::verify::http_post(
            &format!("http://{http}/ocsp"),
            "application/ocsp-request",
            req,
            1 << 16,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let (status, _) =
            revcheck::from_ocsp(&resp, &cert, &issuer, revcheck::When::at(now)).unwrap();
        assert!(
            matches!(status, Status::Revoked { .. }),
            "cycle {cycle}: OCSP says {status:?} for revoked {serial}"
        );
    }
}
