//! Prometheus metrics judged by Prometheus itself: a real `prometheus` (Debian's) scrapes the
//! metrics listener and its query API returns the issued and revoked counts of this test;
//! `promtool check metrics` accepts the exposition; the public HTTP side has no /metrics.
//! Alone in its test binary: the metrics are process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use ecca::proto::RevocationReason;

/// Stops Prometheus when the test ends, however it ends.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Prometheus's answer to an instant query: the first sample's value.
async fn query(port: u16, promql: &str) -> Option<f64> {
    let q: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!("http://127.0.0.1:{port}/api/v1/query?query={q}");
    let (status, _, body) = http("GET", &url, b"", None).await;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_what_was_issued_and_revoked() {
    let (Some(prometheus), Some(promtool)) = (tool("prometheus"), tool("promtool")) else {
        return;
    };
    let ca = TestCa::start().await;
    let metrics = ca
        .running
        .as_ref()
        .unwrap()
        .endpoints
        .metrics
        .expect("a metrics listener");
    const ISSUED: usize = 5;
    let mut first = Vec::new();
    for i in 0..ISSUED {
        let der = ca.issue_tls(&format!("m{i}.example.cn")).await;
        if first.is_empty() {
            first = der;
        }
    }
    let serial = ecca::core::serial::Serial::from_der_content(parse(&first).raw_serial());
    ca.client
        .revoke(&serial.hex(), RevocationReason::KeyCompromise as i32, None)
        .await
        .unwrap();
    // A refused request counts as a request, not as an issued certificate.
    assert!(
        ca.client
            .issue(p256_csr(&CsrSpec::cn("x")), "no-such-profile", None)
            .await
            .is_err()
    );

    // The exposition: on its own listener only, and valid for promtool.
    let (status, headers, body) =
        http("GET", &format!("http://{metrics}/metrics"), b"", None).await;
    assert_eq!(status, 200);
    assert!(
        header(&headers, "content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(body).unwrap();
    for name in [
        "ecca_certificates_issued_total",
        "ecca_revocations_total",
        "ecca_rpc_duration_seconds_bucket",
        "ecca_issuance_stage_duration_seconds_bucket",
        "ecca_crl_age_seconds",
        "ecca_certificates_expiring",
        "ecca_store_commit_duration_seconds_bucket",
        "ecca_signer_duration_seconds_bucket",
        "ecca_build_info",
    ] {
        assert!(text.contains(name), "{name} in\n{text}");
    }
    assert!(
        text.contains(r#"ecca_issuance_requests_total{profile="unknown",result="invalid"} 1"#),
        "{text}"
    );
    let file = ca.dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let checked = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let (status, _, _) = http("GET", &format!("{}/metrics", ca.http_base()), b"", None).await;
    assert_eq!(status, 404, "the public HTTP side serves no metrics");

    // A real Prometheus scrapes it.
    let port = free_port();
    let config = ca.dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ecca\n    static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .unwrap();
    let _prometheus = Prometheus(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                ca.dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let issued = eventually(
        "Prometheus has scraped ecca",
        Duration::from_secs(60),
        || async {
            let ready = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok();
            if !ready {
                return None;
            }
            query(port, "sum(ecca_certificates_issued_total)").await
        },
    )
    .await;
    assert_eq!(issued, ISSUED as f64);
    let revoked = query(port, r#"ecca_revocations_total{reason="keyCompromise"}"#).await;
    assert_eq!(revoked, Some(1.0));
    let up = query(port, r#"up{job="ecca"}"#).await;
    assert_eq!(up, Some(1.0));
}
