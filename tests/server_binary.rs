//! The `ecca-server` binary as a user runs it: first start initializes with no prompts and
//! prints where things are; later starts reuse everything; unsafe or invalid setups refuse to start.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use ecca::client::Client;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server_cmd(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecca-server"));
    cmd.arg("--data-dir").arg(dir).args([
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
    ]);
    cmd
}

/// Starts the binary and returns it with the lines it printed up to the credential line.
fn start(dir: &Path) -> (Server, Vec<String>) {
    let mut child = server_cmd(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.contains("admin credential");
        lines.push(line);
        if done {
            return (server, lines);
        }
    }
    panic!("server exited early: {lines:?}");
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_initializes_and_restart_reuses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ecca-data");
    let (server, lines) = start(&dir);
    let text = lines.join("\n");
    assert!(text.contains("created a new CA"), "{text}");
    assert!(text.contains("gRPC (mTLS) on https://127.0.0.1:"), "{text}");
    assert!(text.contains(&format!("{}/admin", dir.display())), "{text}");
    for key in [
        "ca/root.key",
        "ca/issuing.key",
        "tls/server.key",
        "admin/key.pem",
    ] {
        assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
    }
    for d in ["", "ca", "tls", "admin"] {
        assert_eq!(mode(&dir.join(d)), 0o700, "{d:?}");
    }
    let client = Client::connect_data_dir(&dir).await.unwrap();
    let root_before = client.trust_bundle().await.unwrap().roots_der;
    let issued = client
        .issue(
            common::p256_csr(&common::CsrSpec::cn("a.example.cn").dns("a.example.cn")),
            "server-tls",
            None,
        )
        .await
        .unwrap()
        .certificate
        .unwrap();
    drop(client);
    drop(server);

    let (_server, lines) = start(&dir);
    assert!(
        !lines.join("\n").contains("created a new CA"),
        "restart must reuse the CA"
    );
    let client = Client::connect_data_dir(&dir).await.unwrap();
    assert_eq!(client.trust_bundle().await.unwrap().roots_der, root_before);
    assert_eq!(
        client.get(&issued.serial).await.unwrap().der,
        issued.der,
        "issuance survived the restart"
    );
}

#[test]
fn refuses_world_readable_keys_and_says_how_to_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    drop(start(&dir));
    let key = dir.join("ca/issuing.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = server_cmd(&dir).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("issuing.key") && err.contains("chmod 600"),
        "{err}"
    );
}

#[test]
fn invalid_profile_or_config_is_a_startup_error_naming_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let profiles = tmp.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    let good = include_str!("../certs/profiles/server-tls.toml");
    std::fs::write(profiles.join("server-tls.toml"), good).unwrap();
    std::fs::write(
        profiles.join("broken.toml"),
        good.replace("max_validity_days", "max_valdity_days"),
    )
    .unwrap();
    let config = tmp.path().join("ecca.toml");
    std::fs::write(
        &config,
        format!("profiles_dir = {:?}\n", profiles.display().to_string()),
    )
    .unwrap();
    let out = server_cmd(&tmp.path().join("d"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.toml") && err.contains("max_valdity_days"),
        "{err}"
    );
    assert!(
        !tmp.path().join("d/ca/root.key").exists(),
        "no key is made when profiles are invalid"
    );

    std::fs::write(
        profiles.join("broken.toml"),
        good.replace("\"serverAuth\"", "\"serverAuthh\""),
    )
    .unwrap();
    let out = server_cmd(&tmp.path().join("d2"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("broken.toml") && err.contains("extended_key_usages"),
        "{err}"
    );

    std::fs::write(
        &config,
        "grpc_listen = \"127.0.0.1:0\"\nlisten_everywhere = true\n",
    )
    .unwrap();
    let out = server_cmd(&tmp.path().join("d3"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("ecca.toml") && err.contains("listen_everywhere"),
        "{err}"
    );
}

#[test]
fn keys_can_be_encrypted_at_rest_with_a_passphrase_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let pass = "correct horse battery staple";
    let mut child = server_cmd(&dir)
        .env("ECCA_KEY_PASSPHRASE", pass)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("admin credential") {
            break;
        }
    }
    drop(server);
    for key in [
        "ca/root.key",
        "ca/issuing.key",
        "tls/server.key",
        "ocsp/responder.key",
        "tsa/tsa.key",
    ] {
        let text = std::fs::read_to_string(dir.join(key)).unwrap();
        assert!(text.contains("ENCRYPTED PRIVATE KEY"), "{key} is encrypted");
    }
    // The admin's client key stays plain PKCS#8: TLS clients read it directly.
    assert!(
        std::fs::read_to_string(dir.join("admin/key.pem"))
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );

    let out = server_cmd(&dir)
        .env_remove("ECCA_KEY_PASSPHRASE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("ECCA_KEY_PASSPHRASE"),
        "{err}"
    );
    let out = server_cmd(&dir)
        .env("ECCA_KEY_PASSPHRASE", "not the passphrase!")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("wrong key passphrase"),
        "{err}"
    );
    assert!(!err.contains(pass), "the passphrase is never printed");

    // From a file (0600) instead of the environment.
    let file = tmp.path().join("pass");
    std::fs::write(&file, format!("{pass}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = server_cmd(&dir)
        .env("ECCA_KEY_PASSPHRASE_FILE", &file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let started = BufReader::new(stdout)
        .lines()
        .any(|l| l.unwrap().contains("admin credential"));
    assert!(started, "server starts with the passphrase from a file");
}
