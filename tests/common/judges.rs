//! The outside judges of what ecca emits, as the tests call them: openssl (verify with CRLs
//! fetched from the certificate's own distribution point, ocsp against its responder) and
//! pkilint. Shared by the server tests and the CLI tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use super::tools::tool;

/// Runs a command, returning (success, stdout+stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs a command off the async runtime (a server in the same runtime keeps answering it).
pub async fn run_blocking(mut cmd: Command) -> (bool, String) {
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap()
}

/// Runs a pkilint command on files with `-s WARNING`-style args; returns (clean, output).
pub fn pkilint(linter: &str, args: &[&str], files: &[&Path]) -> Option<(bool, String)> {
    let bin = tool(linter)?;
    let mut cmd = Command::new(bin);
    cmd.arg("lint").args(args).args(files);
    Some(run(&mut cmd))
}

/// `openssl verify -crl_check -crl_download` (the leaf's CRL fetched from its own CDP):
/// (verified, output).
pub async fn verify_with_crl(roots: &Path, untrusted: &[&Path], leaf: &Path) -> (bool, String) {
    let mut cmd = Command::new(tool("openssl").expect("openssl"));
    cmd.args(["verify", "-crl_check", "-crl_download", "-CAfile"])
        .arg(roots);
    for u in untrusted {
        cmd.arg("-untrusted").arg(u);
    }
    cmd.arg(leaf);
    run_blocking(cmd).await
}

/// `openssl ocsp -no_nonce` for `leaf`, issued by the CA certificate in `issuer`, asked at
/// `url` and trusting `roots`: its text output ("leaf.pem: good", "Response verify OK").
pub async fn ocsp_status(url: &str, issuer: &Path, roots: &Path, leaf: &Path) -> String {
    let mut cmd = Command::new(tool("openssl").expect("openssl"));
    cmd.args(["ocsp", "-no_nonce", "-issuer"])
        .arg(issuer)
        .arg("-cert")
        .arg(leaf)
        .args(["-url", url, "-CAfile"])
        .arg(roots);
    run_blocking(cmd).await.1
}

/// The serial numbers a DER CRL lists, lowercase hex (as ecca prints serials).
pub fn crl_serials(der: &[u8]) -> Vec<String> {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    crl.iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect()
}

/// GET over plain HTTP/1.1 on loopback, as a relying party fetches a CRL or CA certificate:
/// the body of a 200 answer (anything else fails the test).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = String::from_utf8_lossy(&buf[..split]).into_owned();
    assert!(status.starts_with("HTTP/1.1 200"), "GET {path}: {status}");
    buf[split + 4..].to_vec()
}
