//! Helpers shared by the ops CLI tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ecca::client::Client;
use ecca::config::ServerConfig;
use ecca::server::Running;
use judges::http_get;
use serde_json::Value;

pub mod gm;
#[path = "../../../tests/common/judges.rs"]
pub mod judges;
#[path = "../../../tests/common/pg.rs"]
pub mod pg;
#[path = "../../../tests/common/tools.rs"]
pub mod tools;

/// Runs `ecca --data-dir DIR ARGS...` off the async runtime; returns (exit code, stdout+stderr).
pub async fn cli(dir: &Path, args: &[&str]) -> (i32, String) {
    cli_in(dir, None, args).await
}

/// [`cli`] in a working directory.
pub async fn cli_in(dir: &Path, cwd: Option<&Path>, args: &[&str]) -> (i32, String) {
    let (dir, cwd) = (dir.to_path_buf(), cwd.map(Path::to_path_buf));
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecca"));
        cmd.arg("--data-dir").arg(&dir).args(&args);
        if let Some(cwd) = cwd {
            cmd.current_dir(cwd);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

/// Issues a server-tls certificate for `name` with a fresh key.
pub async fn issue_server(client: &ecca::client::Client, name: &str) -> ecca::proto::Certificate {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap();
    client
        .issue(csr.der().to_vec(), "server-tls", None)
        .await
        .unwrap()
        .certificate
        .unwrap()
}

/// `ecca --data-dir DIR --json ARGS`: (exit code, stdout parsed or Null, stderr).
pub async fn ecca_json(dir: &Path, args: &[&str]) -> (i32, Value, String) {
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

/// A server on a data directory, restarted on the same ports (certificates carry its URLs).
pub struct Ca {
    pub dir: PathBuf,
    pub running: Option<Running>,
}

impl Ca {
    pub async fn start(dir: &Path) -> Self {
        Self::start_with(dir, |_| {}).await
    }

    pub async fn start_with(dir: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig::loopback(dir);
        tweak(&mut config);
        let running = ecca::server::start(config).await.unwrap();
        Ca {
            dir: dir.to_path_buf(),
            running: Some(running),
        }
    }

    pub async fn restart(&mut self, profiles: Option<PathBuf>) {
        let endpoints = self.running.as_ref().unwrap().endpoints.clone();
        self.running.take().unwrap().shutdown().await;
        let mut config = ServerConfig::loopback(&self.dir);
        config.grpc_listen = endpoints.grpc;
        config.http_listen = endpoints.http;
        config.profiles_dir = profiles;
        self.running = Some(ecca::server::start(config).await.unwrap());
    }

    pub fn http(&self) -> std::net::SocketAddr {
        self.running.as_ref().unwrap().endpoints.http
    }

    pub async fn get(&self, path: &str) -> Vec<u8> {
        http_get(self.http(), path).await
    }

    pub async fn client(&self) -> Client {
        Client::connect_data_dir(&self.dir).await.unwrap()
    }

    /// `ecca --json ARGS` that must succeed.
    pub async fn ok(&self, args: &[&str]) -> Value {
        let (code, v, err) = ecca_json(&self.dir, args).await;
        assert_eq!(code, 0, "ecca {args:?}: {err}");
        v
    }

    /// Makes the SM2 hierarchy `gm` (the sm2-* profiles' issuer).
    pub async fn add_gm(&self) -> Value {
        self.ok(&[
            "issuer",
            "add",
            "--name",
            "gm",
            "--algorithm",
            "sm2",
            "--yes",
        ])
        .await
    }

    /// Writes a CA certificate (fetched from /ca/ID.der, as relying parties do) as PEM.
    pub async fn ca_pem(&self, id: &str, out: &Path) -> PathBuf {
        let der = self.get(&format!("/ca/{id}.der")).await;
        let path = out.join(format!("{id}.pem"));
        std::fs::write(&path, ecca::pemfile::certs_to_pem([der.as_slice()])).unwrap();
        path
    }
}

/// The CA ids of an issuer's certificates with a role and state, from `ecca issuer show --json`.
pub fn ca_ids(issuer: &Value, role: &str, state: &str) -> Vec<String> {
    issuer["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["role"] == role && c["state"] == state)
        .map(|c| c["ca_id"].as_str().unwrap().to_string())
        .collect()
}

/// A fresh key and CSR (DER) for a server certificate.
pub fn tls_csr(name: &str, alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&key).unwrap().der().to_vec()
}

pub fn pem_file(dir: &Path, name: &str, ders: &[&[u8]]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, ecca::pemfile::certs_to_pem(ders.iter().copied())).unwrap();
    path
}

pub fn cat(dir: &Path, name: &str, files: &[&Path]) -> PathBuf {
    let mut all = Vec::new();
    for f in files {
        all.extend(std::fs::read(f).unwrap());
    }
    let path = dir.join(name);
    std::fs::write(&path, all).unwrap();
    path
}

pub async fn openssl_verify(roots: &Path, untrusted: &[&Path], leaf: &Path) -> (bool, String) {
    let mut cmd = Command::new(tools::tool("openssl").expect("openssl"));
    cmd.args(["verify", "-CAfile"]).arg(roots);
    for u in untrusted {
        cmd.arg("-untrusted").arg(u);
    }
    cmd.arg(leaf);
    judges::run_blocking(cmd).await
}

pub fn lint_clean(linter: &str, args: &[&str], files: &[&Path]) {
    let (clean, out) = judges::pkilint(linter, args, files).expect("pkilint");
    assert!(clean, "pkilint {linter} {files:?}:\n{out}");
}

pub fn pem_der(path: &Path) -> Vec<u8> {
    ecca::pemfile::parse_certs(&std::fs::read(path).unwrap())
        .unwrap()
        .remove(0)
}
