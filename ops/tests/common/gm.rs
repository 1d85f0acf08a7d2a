//! The outside judges of SM2 signatures, shared by the national-algorithm tests: OpenSSL 3
//! (hop by hop, `pkeyutl` with the distinguishing ID) and PyPI gmssl (tests/python).
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::judges::run_blocking;
use super::pem_der;

pub const DISTID: &str = "distid:1234567812345678";

pub fn openssl() -> Command {
    Command::new(super::tools::tool("openssl").expect("openssl"))
}

/// `openssl verify` of one hop: `cert` against `issuer` alone (OpenSSL 3.0 fails whole SM2
/// chains at depth 1, issue 23471).
pub async fn hop(issuer: &Path, cert: &Path) -> (bool, String) {
    let mut cmd = openssl();
    cmd.args(["verify", "-vfyopt", DISTID, "-partial_chain", "-CAfile"])
        .arg(issuer)
        .arg(cert);
    run_blocking(cmd).await
}

/// `openssl pkeyutl -verify` of an SM2 signature (DER) over `data` by the key of `signer`.
pub async fn pkeyutl(
    work: &Path,
    what: &str,
    signer: &Path,
    data: &[u8],
    sig: &[u8],
) -> (bool, String) {
    let (pubkey, data_file, sig_file) = (
        work.join(format!("{what}.pub")),
        work.join(format!("{what}.tbs")),
        work.join(format!("{what}.sig")),
    );
    let mut x = openssl();
    x.args(["x509", "-noout", "-pubkey", "-in"])
        .arg(signer)
        .arg("-out")
        .arg(&pubkey);
    let (ok, out) = run_blocking(x).await;
    assert!(ok, "{out}");
    std::fs::write(&data_file, data).unwrap();
    std::fs::write(&sig_file, sig).unwrap();
    let mut cmd = openssl();
    cmd.args(["pkeyutl", "-verify", "-pubin", "-inkey"])
        .arg(&pubkey)
        .args(["-rawin", "-digest", "sm3", "-pkeyopt", DISTID, "-in"])
        .arg(&data_file)
        .arg("-sigfile")
        .arg(&sig_file);
    run_blocking(cmd).await
}

/// What was signed, the DER signature, and a name, for both judges.
pub struct Signed {
    pub what: String,
    pub data: Vec<u8>,
    pub sig: Vec<u8>,
    /// The signer's certificate (PEM file).
    pub signer: PathBuf,
}

pub fn point_of(cert_pem: &Path) -> Vec<u8> {
    let der = pem_der(cert_pem);
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    x.public_key().subject_public_key.data.to_vec()
}

pub fn cert_parts(what: &str, cert: &Path, signer: &Path) -> Signed {
    let der = pem_der(cert);
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        x.signature_algorithm.algorithm.to_id_string(),
        "1.2.156.10197.1.501",
        "{what}"
    );
    assert!(
        x.signature_algorithm.parameters.is_none(),
        "{what}: parameters absent"
    );
    Signed {
        what: what.into(),
        data: x.tbs_certificate.as_ref().to_vec(),
        sig: x.signature_value.data.to_vec(),
        signer: signer.to_path_buf(),
    }
}

pub async fn judge_all(work: &Path, all: &[Signed]) {
    for (i, s) in all.iter().enumerate() {
        let (ok, out) = pkeyutl(work, &format!("j{i}"), &s.signer, &s.data, &s.sig).await;
        assert!(
            ok && out.contains("Signature Verified Successfully"),
            "openssl pkeyutl, {}: {out}",
            s.what
        );
    }
    let items: Vec<Value> = all
        .iter()
        .map(|s| {
            json!({"what": s.what, "point": hex::encode(point_of(&s.signer)),
                   "data": hex::encode(&s.data), "sig": hex::encode(&s.sig)})
        })
        .collect();
    let python = std::env::var("ECCA_PYTHON")
        .ok()
        .map(PathBuf::from)
        .or_else(|| super::tools::tool("python3"))
        .expect("python with gmssl");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/sm2_judge.py");
    let input = serde_json::to_vec(&items).unwrap();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(python)
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "gmssl:\n{text}");
    assert!(
        text.contains(&format!(
            "{0}/{0} SM2 signatures verified by gmssl",
            all.len()
        )),
        "{text}"
    );
}

/// PyPI gmssl opens an SM2EnvelopedKey with the SM2 key in `key` (PKCS#8 PEM) and checks the
/// recovered key's point against `point` (tests/python/sm2_envelope_judge.py).
pub async fn envelope_judge(envelope: &Path, key: &Path, point: &[u8]) -> (bool, String) {
    let python = std::env::var("ECCA_PYTHON")
        .ok()
        .map(PathBuf::from)
        .or_else(|| super::tools::tool("python3"))
        .expect("python with gmssl");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/sm2_envelope_judge.py");
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .arg(envelope)
        .arg(key)
        .arg(hex::encode(point));
    run_blocking(cmd).await
}
