//! Helpers shared by the ops CLI tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

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
