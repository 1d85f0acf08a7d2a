//! Bad input gets a precise status and a message that names the problem; the server keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ecca::Error;
use ecca::proto::IssueCertificateRequest;
use ecca::proto::certificate_authority_client::CertificateAuthorityClient;
use tonic::Code;

fn refused(e: Error) -> (String, String) {
    match e {
        Error::Rejected { code, message } => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn still_serving(ca: &TestCa) {
    let spec = CsrSpec::cn("ok.example.cn").dns("ok.example.cn");
    ca.client
        .issue(p256_csr(&spec), "server-tls", None)
        .await
        .expect("server still issues");
}

#[tokio::test]
async fn each_bad_input_is_refused_precisely() {
    let ca = TestCa::start().await;
    let good = CsrSpec::cn("shop.example.cn").dns("shop.example.cn");

    // Garbage instead of a CSR.
    let (code, msg) = refused(
        ca.client
            .issue(b"not a csr".to_vec(), "server-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");
    assert!(msg.contains("invalid CSR"), "{msg}");
    still_serving(&ca).await;

    // A CSR whose signature is broken: flip a bit in the last byte of the signature.
    let mut broken = p256_csr(&good);
    let last = broken.len() - 1;
    broken[last] ^= 1;
    let (code, msg) = refused(
        ca.client
            .issue(broken, "server-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");
    assert!(msg.contains("proof of possession"), "{msg}");
    still_serving(&ca).await;

    // A CSR that asks to be a CA.
    let mut ca_spec = good.clone();
    ca_spec.ca = true;
    let (code, msg) = refused(
        ca.client
            .issue(p256_csr(&ca_spec), "server-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");
    assert!(
        msg.contains("basicConstraints") && msg.contains("cA=TRUE"),
        "{msg}"
    );
    still_serving(&ca).await;

    // Unknown profile.
    let (code, msg) = refused(
        ca.client
            .issue(p256_csr(&good), "no-such-profile", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "NotFound");
    assert!(
        msg.contains("no-such-profile") && msg.contains("ecca profiles"),
        "{msg}"
    );
    still_serving(&ca).await;

    // Wrong USCC check character.
    let mut merchant = profile_samples()
        .into_iter()
        .find(|(p, _)| *p == "merchant-ov")
        .unwrap()
        .1;
    merchant.serial_number = Some("91350100M000100Y44".into());
    let (code, msg) = refused(
        ca.client
            .issue(p256_csr(&merchant), "merchant-ov", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");
    assert!(
        msg.contains("serialNumber") && msg.contains("check character"),
        "{msg}"
    );
    still_serving(&ca).await;

    // Names the profile does not allow.
    let mut with_org = good.clone();
    with_org.org = Some("Unvalidated Org".into());
    let (code, msg) = refused(
        ca.client
            .issue(p256_csr(&with_org), "server-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");
    assert!(
        msg.contains("subject O") && msg.contains("server-tls"),
        "{msg}"
    );
    let (code, msg) = refused(
        ca.client
            .issue(p256_csr(&CsrSpec::cn("x")), "server-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");
    assert!(msg.contains("subjectAltName"), "{msg}");
    let bad_dns = CsrSpec::cn("a_b.example.cn").dns("a_b.example.cn");
    let (code, _) = refused(
        ca.client
            .issue(p256_csr(&bad_dns), "server-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");

    // A key algorithm the profile refuses (Ed25519 for merchant-ov).
    let merchant_ok = profile_samples()
        .into_iter()
        .find(|(p, _)| *p == "merchant-ov")
        .unwrap()
        .1;
    let (_, ed_csr) = csr(&merchant_ok, &rcgen::PKCS_ED25519);
    let (code, msg) = refused(
        ca.client
            .issue(ed_csr, "merchant-ov", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");
    assert!(
        msg.contains("ed25519") && msg.contains("merchant-ov"),
        "{msg}"
    );

    // Zero days.
    let (code, msg) = refused(
        ca.client
            .issue(p256_csr(&good), "server-tls", Some(0))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");
    assert!(msg.contains("validity_days"), "{msg}");

    // A CSR larger than the CSR limit but within the message limit.
    let (code, msg) = refused(
        ca.client
            .issue(vec![0x30; 20_000], "server-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");
    assert!(msg.contains("limit"), "{msg}");
    still_serving(&ca).await;
}

#[tokio::test]
async fn oversized_message_is_refused_before_decoding() {
    let ca = TestCa::start().await;
    let mut raw = CertificateAuthorityClient::new(ca.client.channel());
    let req = IssueCertificateRequest {
        csr: vec![0; 1 << 20],
        profile: "server-tls".into(),
        validity_days: None,
    };
    let status = raw.issue_certificate(req).await.unwrap_err();
    // tonic reports a message over the decoding limit as OUT_OF_RANGE.
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    still_serving(&ca).await;
}

#[tokio::test]
async fn weak_rsa_key_is_refused() {
    let Some(openssl) = tool("openssl") else {
        return;
    };
    let ca = TestCa::start().await;
    let d = ca.dir.path();
    let key = d.join("rsa1024.pem");
    let csr_path = d.join("rsa1024.csr");
    let (ok, out) = run(std::process::Command::new(&openssl)
        .args(["req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout"])
        .arg(&key)
        .args([
            "-subj",
            "/CN=weak.example.cn",
            "-addext",
            "subjectAltName=DNS:weak.example.cn",
            "-out",
        ])
        .arg(&csr_path));
    assert!(ok, "{out}");
    let (code, msg) = refused(
        ca.client
            .issue(std::fs::read(&csr_path).unwrap(), "server-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "InvalidArgument");
    assert!(msg.contains("RSA-1024") && msg.contains("weak"), "{msg}");

    // RSA-2048 from openssl is fine, and verifies.
    let (ok, out) = run(std::process::Command::new(&openssl)
        .args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(d.join("rsa2048.pem"))
        .args([
            "-subj",
            "/CN=rsa.example.cn",
            "-addext",
            "subjectAltName=DNS:rsa.example.cn",
            "-out",
        ])
        .arg(d.join("rsa2048.csr")));
    assert!(ok, "{out}");
    let der = ca
        .client
        .issue(
            std::fs::read(d.join("rsa2048.csr")).unwrap(),
            "server-tls",
            None,
        )
        .await
        .unwrap()
        .certificate
        .unwrap()
        .der;
    let (roots, chain) = ca.trust_files().await;
    let leaf = ca.write_pem("rsa.pem", &der);
    let (ok, out) = openssl_verify(&roots, &chain, &leaf, &[]).unwrap();
    assert!(ok, "{out}");
}
