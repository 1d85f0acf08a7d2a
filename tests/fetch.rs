//! The key-holding server fetches revocation data for callers only from public addresses:
//! VerifyCertificate cannot be turned into a port scanner of the CA's network.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use ecca::core::issue::IssuerUrls;
use ecca::proto::{self as pb};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// A TCP listener on loopback that counts connections and answers each with `reply`.
async fn listener(reply: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    (addr, hits)
}

/// A root and a leaf whose CRL and OCSP locations are under `base`.
fn pki(base: &str) -> (Vec<u8>, Vec<u8>) {
    let root_key = KeyPair::generate().unwrap();
    let mut root = CertificateParams::default();
    root.distinguished_name
        .push(DnType::CommonName, "Caller's Root");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.key_identifier_method = rcgen::KeyIdMethod::Sha256;
    let root_cert = root.self_signed(&root_key).unwrap();
    let mut leaf = CertificateParams::new(vec!["probe.example.cn".into()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "probe.example.cn");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    IssuerUrls {
        crl: format!("{base}/crl"),
        ocsp: format!("{base}/ocsp"),
        ca_issuers: format!("{base}/ca"),
    }
    .apply(&mut leaf)
    .unwrap();
    let leaf_cert = leaf
        .signed_by(
            &KeyPair::generate().unwrap(),
            &Issuer::from_params(&root, &root_key),
        )
        .unwrap();
    (root_cert.der().to_vec(), leaf_cert.der().to_vec())
}

async fn verify(ca: &TestCa, root: &[u8], leaf: &[u8], mode: i32) -> pb::VerifyCertificateResponse {
    ca.client
        .verify(pb::VerifyCertificateRequest {
            leaf: leaf.to_vec(),
            trust_anchors: vec![root.to_vec()],
            revocation: mode,
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_and_private_revocation_urls_are_not_fetched() {
    let ca = TestCa::start().await;
    let (addr, hits) = listener("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    for base in [
        format!("http://{addr}"),
        format!("http://localhost:{}", addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}", addr.port()),
    ] {
        let (root, leaf) = pki(&base);
        // Unset mode means HARD: no status, no validity.
        let out = verify(&ca, &root, &leaf, 0).await;
        assert!(!out.valid, "{base}: {:?}", out.reasons);
        let text = out.reasons.join("; ");
        assert!(text.contains("fetch refused"), "{base}: {text}");
        assert!(
            !text.contains("onnection"),
            "{base}: says what the peer did: {text}"
        );
    }
    // The same leaf under SOFT is valid with a warning, under OFF valid without.
    let (root, leaf) = pki(&format!("http://{addr}"));
    let soft = verify(&ca, &root, &leaf, pb::RevocationMode::Soft.into()).await;
    assert!(soft.valid && !soft.warnings.is_empty(), "{soft:?}");
    let off = verify(&ca, &root, &leaf, pb::RevocationMode::Off.into()).await;
    assert!(off.valid && off.warnings.is_empty(), "{off:?}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the server connected to the port"
    );

    // An unknown mode or purpose is an error, not a silent default.
    for (revocation, purpose) in [(7, 0), (0, 9)] {
        let err = ca
            .client
            .verify(pb::VerifyCertificateRequest {
                leaf: leaf.clone(),
                trust_anchors: vec![root.clone()],
                revocation,
                purpose,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ecca::Error::Rejected { code, .. } if *code == tonic::Code::InvalidArgument),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_networks_are_fetched_without_redirects_or_details() {
    let (target, target_hits) = listener("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    let redirect: &'static str = Box::leak(
        format!("HTTP/1.1 302 Found\r\nLocation: http://{target}/crl\r\nContent-Length: 0\r\n\r\n")
            .into_boxed_str(),
    );
    let (addr, hits) = listener(redirect).await;
    let allowed = "127.0.0.1/32";
    let ca = TestCa::start_with(|c| {
        c.verify_fetch_allow = vec![ecca::verify::Cidr::parse(allowed).unwrap()];
    })
    .await;
    let (root, leaf) = pki(&format!("http://{addr}"));
    let out = verify(&ca, &root, &leaf, pb::RevocationMode::Hard.into()).await;
    assert!(!out.valid);
    let text = out.reasons.join("; ");
    // Fetched (the allow-list names it), the redirect not followed, and the error says only
    // that the fetch failed.
    assert!(hits.load(Ordering::SeqCst) > 0);
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    assert!(text.contains("fetch failed"), "{text}");
    assert!(!text.contains("302") && !text.contains("HTTP"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_urls_are_answered_without_the_network() {
    // This CA's own CRL/OCSP URLs are loopback here; verifying its own leaf needs no fetch.
    let ca = TestCa::start().await;
    let leaf = ca.issue_tls("own.example.cn").await;
    let out = ca
        .client
        .verify(pb::VerifyCertificateRequest {
            leaf: leaf.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(out.valid, "{:?}", out.reasons);
    let serial = ecca::core::serial::Serial::from_der_content(parse(&leaf).raw_serial()).hex();
    ca.client.revoke(&serial, 1, None).await.unwrap();
    let out = ca
        .client
        .verify(pb::VerifyCertificateRequest {
            leaf,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        !out.valid && out.reasons.join(" ").contains("revoked"),
        "{out:?}"
    );
}
