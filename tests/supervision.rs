//! Bounded and supervised work: a full store queue refuses with RESOURCE_EXHAUSTED instead of
//! growing, a stopped store writer turns health NOT_SERVING (gRPC and /health) and tells the
//! binary to stop, and the server's TLS certificate is renewed without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestCa, eventually, http};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

async fn status(ca: &TestCa, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(ca.client.channel());
    let r = health
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap();
    r.into_inner().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_store_writer_turns_health_not_serving() {
    let mut ca = TestCa::start().await;
    let api = "ecca.v1.CertificateAuthority";
    assert_eq!(status(&ca, api).await, ServingStatus::Serving);
    let health_url = format!("{}/health", ca.http_base());
    assert_eq!(http("GET", &health_url, b"", None).await.0, 200);

    // What a crashed writer looks like to the rest of the server.
    let running = ca.running.as_mut().unwrap();
    let failure = running.failure();
    running.service().store().stop_writer();

    eventually(
        "gRPC health NOT_SERVING",
        Duration::from_secs(10),
        || async {
            let s = (status(&ca, "").await, status(&ca, api).await);
            (s == (ServingStatus::NotServing, ServingStatus::NotServing)).then_some(())
        },
    )
    .await;
    let (code, _, body) = http("GET", &health_url, b"", None).await;
    let body = String::from_utf8(body).unwrap();
    assert!(
        code == 503 && body.contains("not_serving") && body.contains("writer"),
        "{code} {body}"
    );
    // Writes are refused, loudly; reads still work.
    let csr = common::p256_csr(&common::CsrSpec::cn("x.example.cn").dns("x.example.cn"));
    assert!(ca.client.issue(csr, "server-tls", None).await.is_err());
    ca.client.profiles().await.unwrap();
    // The binary is told to stop (it exits non-zero and is restarted on a fresh writer).
    let why = tokio::time::timeout(Duration::from_secs(30), failure)
        .await
        .unwrap();
    assert!(why.contains("writer"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_queue_answers_resource_exhausted() {
    let Some(sqlite3) = common::tool("sqlite3") else {
        return;
    };
    let ca = TestCa::start_with(|c| c.store_queue = 2).await;
    // Another process holds the database's write lock: the writer waits, the queue fills.
    let mut lock = Command::new(sqlite3)
        .arg(ca.data_dir().join("ecca.db"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = lock.stdin.as_mut().unwrap();
    stdin
        .write_all(b"BEGIN EXCLUSIVE;\nSELECT 'locked';\n")
        .unwrap();
    stdin.flush().unwrap();
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(lock.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
    }
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let client = ca.client.clone();
            tokio::spawn(async move {
                let name = format!("q{i}.example.cn");
                let csr = common::p256_csr(&common::CsrSpec::cn(&name).dns(&name));
                client.issue(csr, "server-tls", None).await
            })
        })
        .collect();
    // Refusals come back at once, while the lock is still held.
    let pending = &tasks;
    eventually(
        "a refused write",
        Duration::from_secs(20),
        move || async move { pending.iter().any(|t| t.is_finished()).then_some(()) },
    )
    .await;
    let stdin = lock.stdin.as_mut().unwrap();
    stdin.write_all(b"COMMIT;\n.quit\n").unwrap();
    lock.wait().unwrap();
    let mut exhausted = 0;
    let mut issued = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => issued += 1,
            Err(ecca::Error::Rejected {
                code: tonic::Code::ResourceExhausted,
                message,
            }) => {
                assert!(message.contains("retry"), "{message}");
                exhausted += 1;
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert!(
        exhausted > 0 && issued > 0,
        "exhausted {exhausted}, issued {issued}"
    );
    assert_eq!(status(&ca, "").await, ServingStatus::Serving);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_certificate_is_renewed_without_a_restart() {
    let ca = TestCa::start_with(|c| {
        // Always within the margin: every maintenance round renews.
        c.tls_renew_before_days = 400;
        c.audit_checkpoint_every = Duration::from_millis(200);
    })
    .await;
    let first = std::fs::read(ca.data_dir().join("tls/server.pem")).unwrap();
    eventually(
        "a renewed server certificate",
        Duration::from_secs(20),
        || async {
            let now = std::fs::read(ca.data_dir().join("tls/server.pem")).unwrap();
            (now != first).then_some(())
        },
    )
    .await;
    // New connections get a certificate other than the first one, from the same process.
    let presented = eventually(
        "the renewed certificate presented",
        Duration::from_secs(20),
        || async {
            let client = ecca::client::Client::connect_data_dir(&ca.data_dir())
                .await
                .ok()?;
            client.profiles().await.ok()?;
            let der = common::presented_server_cert(&ca).await;
            let first_der = ecca::pemfile::parse_certs(&first).unwrap().remove(0);
            (der != first_der).then_some(der)
        },
    )
    .await;
    let (_, c) = x509_parser::parse_x509_certificate(&presented).unwrap();
    assert!(c.subject().to_string().contains("localhost"));
}
