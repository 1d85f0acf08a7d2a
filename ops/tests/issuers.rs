//! Issuers as managed objects, first step: the data directory's hierarchy is recorded as
//! `default` (once, across restarts), listed by `ecca issuer`, named by every profile; a
//! profile naming an issuer the CA lacks stops the server before any key is made.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use ecca::config::ServerConfig;
use serde_json::Value;

/// `ecca --data-dir DIR --json ARGS`: (exit code, stdout parsed or Null, stderr).
async fn ecca_json(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_ecca"))
            .arg("--data-dir")
            .arg(&dir)
            .arg("--json")
            .args(&args)
            .output()
            .unwrap();
        let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code().unwrap_or(-1), json, stderr)
    })
    .await
    .unwrap()
}

async fn refused(config: ServerConfig) -> String {
    match ecca::server::start(config).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

fn pem_fingerprint(path: &Path) -> String {
    let certs = ecca::pemfile::parse_certs(&std::fs::read(path).unwrap()).unwrap();
    ecca::core::fingerprint(&certs[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_issuer_is_recorded_once_and_named_by_every_profile() {
    let openssl = common::tools::tool("openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ecca-data");
    let running = ecca::server::start(ServerConfig::loopback(&dir))
        .await
        .unwrap();

    let (code, list, err) = ecca_json(&dir, &["issuer", "list"]).await;
    assert_eq!(code, 0, "{err}");
    let issuers = list.as_array().unwrap();
    assert_eq!(issuers.len(), 1, "{list}");
    let default = &issuers[0];
    assert_eq!(default["name"], "default");
    assert_eq!(default["algorithm"], "p256");
    let certs = default["certificates"].as_array().unwrap();
    let roles: Vec<&str> = certs.iter().map(|c| c["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["root", "issuing"]);
    assert!(certs.iter().all(|c| c["state"] == "active"), "{list}");
    assert_eq!(
        certs[0]["sha256"],
        pem_fingerprint(&dir.join("ca/root.pem"))
    );
    assert_eq!(
        certs[1]["sha256"],
        pem_fingerprint(&dir.join("ca/issuing.pem"))
    );

    let (code, profiles, err) = ecca_json(&dir, &["profiles"]).await;
    assert_eq!(code, 0, "{err}");
    let profiles = profiles.as_array().unwrap();
    assert!(!profiles.is_empty());
    for p in profiles {
        assert_eq!(p["issuer"], "default", "{p}");
    }

    // show --out writes the hierarchy's certificates; openssl checks the issuing CA against the root.
    let chain = tmp.path().join("default.pem");
    let (code, shown, err) = ecca_json(
        &dir,
        &[
            "issuer",
            "show",
            "default",
            "--out",
            chain.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(shown, *default);
    let ders = ecca::pemfile::parse_certs(&std::fs::read(&chain).unwrap()).unwrap();
    assert_eq!(ders.len(), 2);
    let root = tmp.path().join("root.pem");
    let issuing = tmp.path().join("issuing.pem");
    std::fs::write(&root, ecca::pemfile::certs_to_pem([ders[0].as_slice()])).unwrap();
    std::fs::write(&issuing, ecca::pemfile::certs_to_pem([ders[1].as_slice()])).unwrap();
    let out = Command::new(openssl.expect("openssl is required"))
        .args(["verify", "-CAfile"])
        .arg(&root)
        .arg(&issuing)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, _, err) = ecca_json(&dir, &["issuer", "show", "national"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("NotFound") && err.contains("(known: default)"),
        "{err}"
    );

    // A restart records nothing new: one issuer, one audit entry.
    running.shutdown().await;
    let running = ecca::server::start(ServerConfig::loopback(&dir))
        .await
        .unwrap();
    let (code, again, err) = ecca_json(&dir, &["issuer", "list"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, list);
    let (code, audit, err) = ecca_json(&dir, &["audit", "search", "--event", "issuer.added"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_naming_an_unknown_issuer_stops_the_first_start_before_any_key() {
    let tmp = tempfile::tempdir().unwrap();
    let profiles = tmp.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    std::fs::write(
        profiles.join("sm2-tls.toml"),
        r#"description = "TLS under a hierarchy this CA does not have"
issuer = "national"
key_algorithms = ["p256"]
max_validity_days = 397
default_validity_days = 90
key_usages = ["digitalSignature"]
extended_key_usages = ["serverAuth"]
[san]
dns = "optional"
"#,
    )
    .unwrap();
    let dir = tmp.path().join("ecca-data");
    let mut config = ServerConfig::loopback(&dir);
    config.profiles_dir = Some(profiles.clone());
    let text = refused(config).await;
    assert!(
        text.contains("sm2-tls") && text.contains("`issuer`") && text.contains("national"),
        "{text}"
    );
    assert!(
        !dir.join("ca").exists(),
        "a key was made before the refusal"
    );

    // A bad issuer name is a profile error naming the key.
    std::fs::write(
        profiles.join("sm2-tls.toml"),
        std::fs::read_to_string(profiles.join("sm2-tls.toml"))
            .unwrap()
            .replace("\"national\"", "\"Nat ional\""),
    )
    .unwrap();
    let mut config = ServerConfig::loopback(&dir);
    config.profiles_dir = Some(profiles);
    let text = refused(config).await;
    assert!(text.contains("issuer"), "{text}");
}
