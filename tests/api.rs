//! The gRPC API contract: mutual TLS, registered credentials only, health, reflection (checked by
//! an independent Python gRPC client), reads and pagination.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;
use ecca::proto::certificate_authority_client::CertificateAuthorityClient;
use ecca::proto::{CertificateStatus, ListCertificatesRequest, ListProfilesRequest};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

#[tokio::test]
async fn a_call_without_a_client_certificate_is_refused() {
    let ca = TestCa::start().await;
    let ca_pem = std::fs::read(ca.data_dir().join("admin/ca.pem")).unwrap();
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    let attempt = async {
        let channel = Channel::from_shared(ca.grpc_url())
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await?;
        CertificateAuthorityClient::new(channel)
            .list_profiles(ListProfilesRequest {})
            .await
            .map_err(|s| Box::new(s) as Box<dyn std::error::Error + Send + Sync>)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    };
    assert!(
        attempt.await.is_err(),
        "a call without a client certificate must fail"
    );
    // The server still serves authenticated callers.
    ca.client.profiles().await.unwrap();
}

#[tokio::test]
async fn a_certificate_that_is_not_a_credential_is_refused() {
    let ca = TestCa::start().await;
    // A client-tls certificate from this very CA: TLS accepts it, the API must not.
    let (key, csr_der) = csr(
        &CsrSpec::cn("merchant-client"),
        &rcgen::PKCS_ECDSA_P256_SHA256,
    );
    let resp = ca.client.issue(csr_der, "client-tls", None).await.unwrap();
    let creds = ca.dir.path().join("merchant-creds");
    std::fs::create_dir(&creds).unwrap();
    let mut chain = vec![resp.certificate.unwrap().der];
    chain.extend(resp.chain_der);
    std::fs::write(
        creds.join("cert.pem"),
        ecca::pemfile::certs_to_pem(chain.iter().map(Vec::as_slice)),
    )
    .unwrap();
    std::fs::write(creds.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::set_permissions(
        creds.join("key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::copy(ca.data_dir().join("admin/ca.pem"), creds.join("ca.pem")).unwrap();
    // The gRPC listener trusts only the credential CA: the handshake itself refuses it.
    assert_refused_at_handshake(&ca.grpc_url(), &creds).await;
}

#[tokio::test]
async fn health_says_serving() {
    let ca = TestCa::start().await;
    let mut health = HealthClient::new(ca.client.channel());
    for service in ["", "ecca.v1.CertificateAuthority"] {
        let resp = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.status(), ServingStatus::Serving, "{service:?}");
    }
}

#[tokio::test]
async fn get_list_and_paginate() {
    let ca = TestCa::start().await;
    let mut serials = Vec::new();
    for i in 0..7 {
        let name = format!("shop{i}.example.cn");
        let r = ca
            .client
            .issue(p256_csr(&CsrSpec::cn(&name).dns(&name)), "server-tls", None)
            .await
            .unwrap();
        serials.push(r.certificate.unwrap().serial);
    }
    ca.client
        .issue(p256_csr(&CsrSpec::cn("api-1")), "client-tls", None)
        .await
        .unwrap();

    let got = ca.client.get(&serials[3].to_uppercase()).await.unwrap();
    assert_eq!(got.serial, serials[3]);
    assert_eq!(got.status(), CertificateStatus::Valid);
    assert_eq!(got.subject_alt_names, vec!["DNS:shop3.example.cn"]);
    match ca.client.get("0123456789abcdef").await.unwrap_err() {
        ecca::Error::Rejected { code, .. } => assert_eq!(code, tonic::Code::NotFound),
        other => panic!("{other:?}"),
    }

    // Pages of 3 over the 7 server-tls certificates, newest first, no overlap.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = ca
            .client
            .list(ListCertificatesRequest {
                profile: "server-tls".into(),
                page_size: 3,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(page.certificates.len() <= 3);
        seen.extend(page.certificates.into_iter().map(|c| c.serial));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    let mut expected = serials.clone();
    expected.reverse();
    assert_eq!(seen, expected);

    let found = ca
        .client
        .list(ListCertificatesRequest {
            name_contains: "SHOP5".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.certificates.len(), 1);
    assert_eq!(found.certificates[0].serial, serials[5]);

    let bad = ca
        .client
        .list(ListCertificatesRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(bad, ecca::Error::Rejected { code, .. } if code == tonic::Code::InvalidArgument),
        "{bad:?}"
    );
}

#[tokio::test]
async fn profiles_and_trust_bundle() {
    let ca = TestCa::start().await;
    let names: Vec<String> = ca
        .client
        .profiles()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(
        names,
        [
            "client-tls",
            "document-signing",
            "merchant-ov",
            "server-tls"
        ]
    );
    let bundle = ca.client.trust_bundle().await.unwrap();
    assert_eq!(bundle.roots_der.len(), 1);
    assert_eq!(bundle.intermediates_der.len(), 1);
    let root = parse(&bundle.roots_der[0]);
    assert_eq!(root.subject(), root.issuer());
    // The HTTP side serves the same certificates.
    let body = http_get(&format!("{}/ca/root.der", ca.http_base())).await;
    assert_eq!(body, bundle.roots_der[0]);
    let health = http_get(&format!("{}/health", ca.http_base())).await;
    assert!(String::from_utf8_lossy(&health).contains("serving"));
}

async fn http_get(url: &str) -> Vec<u8> {
    let (status, _, body) = http("GET", url, b"", None).await;
    assert_eq!(status, 200, "{url}");
    body
}

/// An independent client (Python grpcio) checks health, both reflection versions, and calls
/// ListProfiles using only what reflection told it (no .proto files).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpc_client_uses_health_and_reflection() {
    let python = match std::env::var_os("ECCA_PYTHON") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            common::missing::<()>("ECCA_PYTHON (a Python with grpcio)", "set ECCA_PYTHON");
            return;
        }
    };
    let ca = TestCa::start().await;
    let addr = ca.grpc_url().trim_start_matches("https://").to_string();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/grpc_client_check.py"
    );
    let creds = ca.data_dir().join("admin");
    let (ok, out) = tokio::task::spawn_blocking(move || {
        run(Command::new(python).arg(script).arg(&addr).arg(creds))
    })
    .await
    .unwrap();
    assert!(ok, "python client failed:\n{out}");
    assert!(out.contains("ecca.v1.CertificateAuthority"), "{out}");
    assert!(out.contains("merchant-ov"), "{out}");
}
