//! The ops CLI against a real server: the README's five-minute tour, JSON output, exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ecca::config::ServerConfig;

mod common;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ecca(dir: &Path, cwd: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_ecca"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(dir: &Path, cwd: &Path, args: &[&str]) -> String {
    let o = ecca(dir, cwd, args);
    assert_eq!(o.code, 0, "ecca {args:?} failed:\n{}{}", o.stdout, o.stderr);
    o.stdout
}

fn openssl() -> Option<PathBuf> {
    common::tools::tool("openssl")
}

async fn server(dir: &Path) -> ecca::server::Running {
    let config = ServerConfig::loopback(dir);
    ecca::server::start(config).await.unwrap()
}

/// Runs blocking CLI work off the runtime that serves.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_minute_tour_for_every_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ecca-data");
    let _server = server(&dir).await;
    let work = tmp.path().to_path_buf();
    blocking(move || {
        let d = dir.as_path();
        let w = work.as_path();
        let profiles = ok(d, w, &["profiles"]);
        for p in [
            "server-tls",
            "client-tls",
            "merchant-ov",
            "document-signing",
        ] {
            assert!(profiles.contains(p), "{profiles}");
        }
        ok(
            d,
            w,
            &[
                "roots",
                "--out",
                "roots.pem",
                "--intermediates-out",
                "chain.pem",
            ],
        );
        let cases: [(&str, &str, Vec<&str>); 4] = [
            (
                "server-tls",
                "p256",
                vec![
                    "--cn",
                    "shop.example.cn",
                    "--dns",
                    "shop.example.cn",
                    "--ip",
                    "192.0.2.10",
                ],
            ),
            ("client-tls", "p384", vec!["--cn", "api-client-7"]),
            (
                "merchant-ov",
                "p256",
                vec![
                    "--cn",
                    "Example Trading",
                    "--org",
                    "Example Trading Co., Ltd.",
                    "--country",
                    "CN",
                    "--uscc",
                    "91350100M000100Y43",
                ],
            ),
            (
                "document-signing",
                "ed25519",
                vec!["--cn", "Alice Zhang", "--email", "alice@shop.example.cn"],
            ),
        ];
        for (profile, alg, names) in cases {
            let key = format!("{profile}.key");
            let csr = format!("{profile}.csr");
            let cert = format!("{profile}.pem");
            ok(d, w, &["keygen", "--out", &key, "--alg", alg]);
            let mut args = vec!["csr", "--key", &key, "--out", &csr];
            args.extend(names);
            ok(d, w, &args);
            let out = ok(
                d,
                w,
                &[
                    "issue",
                    "--csr",
                    &csr,
                    "--profile",
                    profile,
                    "--out",
                    &cert,
                    "--chain-out",
                    "leaf-chain.pem",
                ],
            );
            assert!(out.contains(&format!("profile:    {profile}")), "{out}");
            if let Some(openssl) = openssl() {
                let v = Command::new(openssl)
                    .args([
                        "verify",
                        "-CAfile",
                        "roots.pem",
                        "-untrusted",
                        "leaf-chain.pem",
                        &cert,
                    ])
                    .current_dir(w)
                    .output()
                    .unwrap();
                let text = String::from_utf8_lossy(&v.stdout);
                assert!(
                    v.status.success() && text.contains(": OK"),
                    "{profile}: {text}"
                );
            }
        }
        // --json for scripts.
        let list: serde_json::Value = serde_json::from_str(&ok(d, w, &["--json", "list"])).unwrap();
        let items = list.as_array().unwrap();
        assert!(items.iter().any(|c| c["profile"] == "merchant-ov"));
        let serial = items.iter().find(|c| c["profile"] == "server-tls").unwrap()["serial"]
            .as_str()
            .unwrap()
            .to_string();
        let shown: serde_json::Value =
            serde_json::from_str(&ok(d, w, &["--json", "show", "--serial", &serial])).unwrap();
        assert_eq!(shown["serial"], serial.as_str());
        assert!(
            shown["subject_alt_names"]
                .to_string()
                .contains("IP:192.0.2.10")
        );
        assert!(
            shown["pem"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let filtered = ok(d, w, &["list", "--profile", "client-tls"]);
        assert!(
            filtered.contains("api-client-7") && !filtered.contains("shop.example.cn"),
            "{filtered}"
        );

        // Revocation: dry run changes nothing; then revoke, and the CRL says so.
        let dry = ok(
            d,
            w,
            &[
                "revoke",
                "--serial",
                &serial,
                "--reason",
                "keyCompromise",
                "--dry-run",
            ],
        );
        assert!(
            dry.contains("would revoke") && dry.contains("status:     valid"),
            "{dry}"
        );
        let out = ok(
            d,
            w,
            &[
                "revoke",
                "--serial",
                &serial,
                "--reason",
                "keyCompromise",
                "--invalidity-date",
                "2026-01-01T00:00:00Z",
            ],
        );
        assert!(
            out.contains("status:     revoked") && out.contains("keyCompromise"),
            "{out}"
        );
        let again = ecca(
            d,
            w,
            &["revoke", "--serial", &serial, "--reason", "keyCompromise"],
        );
        assert_eq!(again.code, 1);
        assert!(again.stderr.contains("already revoked"), "{}", again.stderr);
        let bad = ecca(
            d,
            w,
            &["revoke", "--serial", &serial, "--reason", "certificateHold"],
        );
        assert_eq!(bad.code, 2, "{}", bad.stderr);
        std::thread::sleep(std::time::Duration::from_millis(500));
        ok(d, w, &["crl", "--out", "issuing.crl.pem", "--pem"]);
        let delta = ok(d, w, &["crl", "--delta", "--out", "delta.crl"]);
        assert!(delta.contains("delta CRL number"), "{delta}");
        if let Some(openssl) = openssl() {
            let v = Command::new(openssl)
                .args([
                    "verify",
                    "-crl_check",
                    "-CRLfile",
                    "issuing.crl.pem",
                    "-CAfile",
                    "roots.pem",
                ])
                .args(["-untrusted", "leaf-chain.pem", "server-tls.pem"])
                .current_dir(w)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&v.stdout),
                String::from_utf8_lossy(&v.stderr)
            );
            assert!(
                !v.status.success() && text.contains("certificate revoked"),
                "{text}"
            );
        }
        let shown = ok(d, w, &["show", "--serial", &serial]);
        assert!(
            shown.contains("revoked:") && shown.contains("keyCompromise"),
            "{shown}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_are_documented_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ecca-data");
    let server = server(&dir).await;
    let work = tmp.path().to_path_buf();
    let d2 = dir.clone();
    blocking(move || {
        let (d, w) = (d2.as_path(), work.as_path());
        ok(d, w, &["keygen", "--out", "k.pem"]);
        // Refusing to overwrite a key is an input error.
        assert_eq!(ecca(d, w, &["keygen", "--out", "k.pem"]).code, 2);
        ok(
            d,
            w,
            &[
                "csr",
                "--key",
                "k.pem",
                "--cn",
                "x.example.cn",
                "--dns",
                "x.example.cn",
                "--out",
                "x.csr",
            ],
        );
        // The server refuses: unknown profile -> 1, with the reason.
        let o = ecca(
            d,
            w,
            &[
                "issue",
                "--csr",
                "x.csr",
                "--profile",
                "nope",
                "--out",
                "x.pem",
            ],
        );
        assert_eq!(o.code, 1, "{}", o.stderr);
        assert!(
            o.stderr.contains("NotFound") && o.stderr.contains("nope"),
            "{}",
            o.stderr
        );
        // Missing input file -> 2, naming the file.
        let o = ecca(
            d,
            w,
            &[
                "issue",
                "--csr",
                "missing.csr",
                "--profile",
                "server-tls",
                "--out",
                "x.pem",
            ],
        );
        assert_eq!(o.code, 2);
        assert!(o.stderr.contains("missing.csr"), "{}", o.stderr);
        // A bad USCC is caught before anything is sent.
        let o = ecca(
            d,
            w,
            &[
                "csr",
                "--key",
                "k.pem",
                "--cn",
                "m",
                "--uscc",
                "91350100M000100Y44",
                "--out",
                "m.csr",
            ],
        );
        assert_eq!(o.code, 2);
        assert!(o.stderr.contains("check character"), "{}", o.stderr);
        // Usage error (clap) -> 2.
        assert_eq!(ecca(d, w, &["issue"]).code, 2);
    })
    .await;
    server.shutdown().await;
    let work = tmp.path().to_path_buf();
    blocking(move || {
        let o = ecca(&dir, &work, &["profiles"]);
        assert_eq!(o.code, 3, "server down -> 3: {}", o.stderr);
        assert!(o.stderr.contains("cannot connect"), "{}", o.stderr);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_creates_a_ca_with_options_and_refuses_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("regional");
    let work = tmp.path().to_path_buf();
    let d2 = dir.clone();
    blocking(move || {
        let out = ok(
            &d2,
            &work,
            &[
                "init",
                "--alg",
                "p384",
                "--org",
                "Zhejiang EC CA",
                "--server-name",
                "ca.zj.example.cn",
            ],
        );
        assert!(out.contains("created a CA"), "{out}");
        let o = ecca(&d2, &work, &["init"]);
        assert_eq!(o.code, 2);
        assert!(o.stderr.contains("already holds a CA"), "{}", o.stderr);
    })
    .await;
    let root_pem = std::fs::read(dir.join("ca/root.pem")).unwrap();
    let root_der = ecca::pemfile::parse_certs(&root_pem).unwrap().remove(0);
    let (_, root) = x509_parser::parse_x509_certificate(&root_der).unwrap();
    assert_eq!(
        root.subject().to_string(),
        "C=CN, O=Zhejiang EC CA, CN=Zhejiang EC CA Root CA"
    );
    assert_eq!(
        root.public_key()
            .algorithm
            .parameters
            .as_ref()
            .unwrap()
            .as_oid()
            .unwrap()
            .to_id_string(),
        "1.3.132.0.34"
    );
    let server_pem = std::fs::read_to_string(dir.join("tls/server.pem")).unwrap();
    let server_der = ecca::pemfile::parse_certs(server_pem.as_bytes())
        .unwrap()
        .remove(0);
    let (_, server_cert) = x509_parser::parse_x509_certificate(&server_der).unwrap();
    let san = server_cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    assert!(
        san.contains("ca.zj.example.cn") && san.contains("localhost"),
        "{san}"
    );
    // The server starts on what init made.
    let running = server(&dir).await;
    assert!(!running.initialized);
}

/// The bench command runs end to end (tiny sizes) and reports every measure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_quick_reports_every_measure() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_ecca"))
            .args([
                "--json",
                "bench",
                "--quick",
                "--requests",
                "60",
                "--crl-sizes",
                "1000",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for key in [
        "ceiling_per_second",
        "issuance",
        "ocsp",
        "chains_per_second",
        "signatures_per_second",
        "crl",
        "startup_ms",
        "idle_rss_mib",
        "sm2",
        "dual",
        "metrics",
        "bulk",
        "issuance_in_process",
    ] {
        assert!(!v[key].is_null(), "{key} missing in {v}");
    }
    assert!(v["issuance"][0]["per_second"].as_f64().unwrap() > 0.0);
    // Measured on the separate server process, with its CPU time per issuance.
    assert!(
        v["issuance"][0]["server_cpu_ms_per_issuance"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(v["bulk"][0]["per_second"].as_f64().unwrap() > 0.0);
    assert!(v["sm2"]["issuance"]["per_second"].as_f64().unwrap() > 0.0);
    assert!(v["sm2"]["sign_per_second"].as_f64().unwrap() > 0.0);
}

/// Runs one statement on the server's database with the sqlite3 CLI (an operator's tool, and
/// what a disk fault looks like: bytes the store did not write).
fn sqlite3(dir: &Path, sql: &str) {
    let sqlite3 = common::tools::tool("sqlite3").expect("checked by the caller");
    let out = Command::new(sqlite3)
        .args(["-cmd", ".timeout 10000"])
        .arg(dir.join("ecca.db"))
        .arg(sql)
        .output()
        .expect("the sqlite3 CLI is required (tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_rows_fail_loudly_and_no_wrong_crl_is_signed() {
    if common::tools::tool("sqlite3").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ecca-data");
    let server = server(&dir).await;
    let client = ecca::client::Client::connect_data_dir(&dir).await.unwrap();
    let a = common::issue_server(&client, "a.example.cn").await.serial;
    let b = common::issue_server(&client, "b.example.cn").await.serial;
    let c = common::issue_server(&client, "c.example.cn").await.serial;
    client.revoke(&a, 1, None).await.unwrap();
    let work = tmp.path().to_path_buf();
    let crl_number = |d: PathBuf, w: PathBuf| {
        let out = ok(&d, &w, &["--json", "crl", "--out", "now.crl"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["number"]
            .as_u64()
            .unwrap()
    };
    // The revocation's CRL is out within a second.
    let mut before = 0;
    for _ in 0..40 {
        let (d, w) = (dir.clone(), work.clone());
        before = blocking(move || crl_number(d, w)).await;
        let crl = std::fs::read(work.join("now.crl")).unwrap();
        let (_, parsed) = x509_parser::parse_x509_crl(&crl).unwrap();
        if parsed.iter_revoked_certificates().count() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A corrupt SAN column: `ecca show` refuses with DATA_LOSS naming the row and column.
    let d = dir.clone();
    let b2 = b.clone();
    let w = work.clone();
    let shown = blocking(move || {
        sqlite3(
            &d,
            &format!("UPDATE certificates SET sans = '[' WHERE serial = '{b2}'"),
        );
        ecca(&d, &w, &["show", "--serial", &b2])
    })
    .await;
    let text = format!("{}{}", shown.stdout, shown.stderr);
    assert_eq!(shown.code, 1, "{text}");
    assert!(
        text.contains("DataLoss")
            && text.contains("corrupt certificate row ")
            && text.contains(&format!("(serial {b}): sans"))
            && text.contains("sans"),
        "{text}"
    );

    // A corrupt reason on a revoked row: the next CRL build fails, so no CRL is signed
    // (the published one stays, with the right entry), and `ecca show` names the column.
    let (d, a2, w) = (dir.clone(), a.clone(), work.clone());
    let shown = blocking(move || {
        sqlite3(
            &d,
            &format!("UPDATE certificates SET revocation_reason = 99 WHERE serial = '{a2}'"),
        );
        ecca(&d, &w, &["show", "--serial", &a2])
    })
    .await;
    let text = format!("{}{}", shown.stdout, shown.stderr);
    assert!(
        shown.code == 1 && text.contains("revocation_reason 99"),
        "{text}"
    );
    client.revoke(&c, 4, None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (d, w) = (dir.clone(), work.clone());
    let after = blocking(move || crl_number(d, w)).await;
    assert_eq!(after, before, "a CRL was signed from corrupt rows");
    let crl = std::fs::read(work.join("now.crl")).unwrap();
    let (_, parsed) = x509_parser::parse_x509_crl(&crl).unwrap();
    assert_eq!(parsed.iter_revoked_certificates().count(), 1);
    server.shutdown().await;

    // A corrupt serial: the server refuses to start, naming the row, instead of signing a
    // CRL with an empty serial in it.
    let d = dir.clone();
    let a2 = a.clone();
    blocking(move || {
        sqlite3(
            &d,
            &format!(
                "UPDATE certificates SET serial = 'zz', revocation_reason = 1 WHERE serial = '{a2}'"
            ),
        )
    })
    .await;
    let refused = ecca::server::start(ServerConfig::loopback(&dir))
        .await
        .map(drop)
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("corrupt certificate row with revocation_seq 1 (serial zz)"),
        "{refused}"
    );
}

/// `ecca issue --batch`: every CSR of the list over one stream, certificates written to
/// --out-dir, a bad CSR listed as failed (exit status 1) without stopping the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_batch_writes_each_certificate_and_lists_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ecca-data");
    let _server = server(&dir).await;
    let work = tmp.path().to_path_buf();
    blocking(move || {
        let (d, w) = (dir.as_path(), work.as_path());
        std::fs::create_dir_all(w.join("csrs")).unwrap();
        for name in ["a", "b", "c"] {
            let host = format!("{name}.batch.example.cn");
            ok(d, w, &["keygen", "--out", &format!("{name}.key")]);
            ok(
                d,
                w,
                &[
                    "csr",
                    "--key",
                    &format!("{name}.key"),
                    "--out",
                    &format!("csrs/{name}.csr"),
                    "--cn",
                    &host,
                    "--dns",
                    &host,
                ],
            );
        }
        std::fs::write(w.join("csrs/bad.csr"), "not a CSR").unwrap();
        std::fs::write(
            w.join("csrs/list.txt"),
            "# merchants of the week\na.csr\nbad.csr\n\nb.csr\nc.csr\n",
        )
        .unwrap();
        let out = ecca(
            d,
            w,
            &[
                "--json",
                "issue",
                "--batch",
                "csrs/list.txt",
                "--profile",
                "server-tls",
                "--out-dir",
                "certs",
                "--chain-out",
                "chain.pem",
            ],
        );
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let items = v.as_array().unwrap();
        assert_eq!(items.len(), 4, "{v}");
        assert_eq!(items[1]["code"], "InvalidArgument", "{v}");
        assert!(items[1]["csr"].as_str().unwrap().ends_with("bad.csr"));
        for (i, name) in [(0, "a"), (2, "b"), (3, "c")] {
            assert!(items[i]["serial"].is_string(), "{v}");
            let pem = std::fs::read_to_string(w.join(format!("certs/{name}.pem"))).unwrap();
            let der = pem::parse(&pem).unwrap().into_contents();
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
            assert!(
                cert.subject()
                    .to_string()
                    .contains(&format!("{name}.batch.example.cn"))
            );
        }
        assert!(w.join("chain.pem").exists());
        assert!(
            out.stderr.contains("1 of 4 requests failed"),
            "{}",
            out.stderr
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_acme_key_prints_an_eab_key_id_and_hmac() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ecca-data");
    let _server = server(&dir).await;
    let work = tmp.path().to_path_buf();
    blocking(move || {
        let (d, w) = (dir.as_path(), work.as_path());
        ok(
            d,
            w,
            &[
                "platform",
                "add",
                "shop",
                "--dns-suffix",
                "shop.example.cn",
                "--profiles",
                "server-tls",
                "--out",
                "shop-creds",
            ],
        );
        let json: serde_json::Value =
            serde_json::from_str(&ok(d, w, &["platform", "acme-key", "shop", "--json"])).unwrap();
        let kid = json["kid"].as_str().unwrap();
        let hmac = json["hmac"].as_str().unwrap();
        assert_eq!(json["platform"], "shop");
        assert!(!kid.is_empty());
        // base64url without padding, a 256-bit HMAC key.
        assert!(
            hmac.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        use base64::Engine as _;
        let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(hmac)
            .unwrap();
        assert_eq!(key.len(), 32);
        // Each call makes a new key; the text form names both values and how to use them.
        let text = ok(d, w, &["platform", "acme-key", "shop"]);
        assert!(!text.contains(kid), "a new kid each time");
        assert!(text.contains("kid:") && text.contains("hmac:") && text.contains("--eab-kid"));
        // An unknown platform: a clear error, exit status not 0.
        let o = ecca(d, w, &["platform", "acme-key", "nosuch"]);
        assert_ne!(o.code, 0);
        assert!(o.stderr.contains("ecca platform list"), "{}", o.stderr);
    })
    .await;
}
