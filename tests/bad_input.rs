//! Bad input gets a precise status and a message that names the problem; the server keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ecca::Error;
use ecca::proto::IssueCertificateRequest;
use ecca::proto::certificate_authority_client::CertificateAuthorityClient;
use tonic::Code;

fn refused(e: Error) -> (tonic::Code, String) {
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
    assert_eq!(code, tonic::Code::InvalidArgument);
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
    assert_eq!(code, tonic::Code::InvalidArgument);
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
    assert_eq!(code, tonic::Code::InvalidArgument);
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
    assert_eq!(code, tonic::Code::NotFound);
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
    assert_eq!(code, tonic::Code::InvalidArgument);
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
    assert_eq!(code, tonic::Code::InvalidArgument);
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
    assert_eq!(code, tonic::Code::InvalidArgument);
    assert!(msg.contains("subjectAltName"), "{msg}");
    let bad_dns = CsrSpec::cn("a_b.example.cn").dns("a_b.example.cn");
    let (code, _) = refused(
        ca.client
            .issue(p256_csr(&bad_dns), "server-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, tonic::Code::InvalidArgument);

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
    assert_eq!(code, tonic::Code::InvalidArgument);
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
    assert_eq!(code, tonic::Code::InvalidArgument);
    assert!(msg.contains("validity_days"), "{msg}");

    // A CSR larger than the CSR limit but within the message limit.
    let (code, msg) = refused(
        ca.client
            .issue(vec![0x30; 20_000], "server-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, tonic::Code::InvalidArgument);
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
        ..Default::default()
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
    assert_eq!(code, tonic::Code::InvalidArgument);
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

/// Sends raw bytes as a request message.
#[derive(Debug, Clone, Default)]
struct RawCodec;

#[derive(Debug, Clone, Default)]
struct RawEncoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        buf: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        buf.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ecca::proto::ListProfilesResponse;
    type Encoder = RawEncoder;
    type Decoder = <tonic_prost::ProstCodec<(), ecca::proto::ListProfilesResponse> as tonic::codec::Codec>::Decoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        tonic::codec::Codec::decoder(&mut tonic_prost::ProstCodec::<(), _>::default())
    }
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument() {
    let ca = TestCa::start().await;
    let mut grpc = tonic::client::Grpc::new(ca.client.channel());
    grpc.ready().await.unwrap();
    // A length-delimited field (csr, tag 1) that claims more bytes than follow.
    let path =
        http::uri::PathAndQuery::from_static("/ecca.v1.CertificateAuthority/IssueCertificate");
    let status = grpc
        .unary(tonic::Request::new(vec![0x0a, 0x7f, 0x01]), path, RawCodec)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("not a valid protobuf"),
        "{status:?}"
    );
    still_serving(&ca).await;
}

/// DER TLV with a minimal length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match content.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(content);
    out
}

/// Splits a DER SEQUENCE into its header length and content.
fn split(der: &[u8]) -> (usize, &[u8]) {
    let (hl, len) = match der[1] {
        n if n < 0x80 => (2, n as usize),
        0x81 => (3, der[2] as usize),
        0x82 => (4, (der[2] as usize) << 8 | der[3] as usize),
        _ => panic!("long CSR"),
    };
    (hl, &der[hl..hl + len])
}

/// The CSR's CertificationRequestInfo, changed by `f`, signed again with `key`.
fn resign_info(csr: &[u8], key: &rcgen::KeyPair, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let (_, body) = split(csr);
    let (ihl, info_content) = split(body);
    let info_len = ihl + info_content.len();
    let mut info = body[..info_len].to_vec();
    f(&mut info);
    // The signature algorithm follows the info; the signature is recomputed.
    let alg_and_sig = &body[info_len..];
    let (ahl, alg) = split(alg_and_sig);
    let alg = &alg_and_sig[..ahl + alg.len()];
    let sig = rcgen::SigningKey::sign(key, &info).unwrap();
    let mut bits = vec![0u8];
    bits.extend(sig);
    let content = [info, alg.to_vec(), tlv(0x03, &bits)].concat();
    tlv(0x30, &content)
}

#[tokio::test]
async fn csrs_must_be_strict_der_version_1_with_known_extensions() {
    let ca = TestCa::start().await;
    let spec = CsrSpec::cn("shop.example.cn").dns("shop.example.cn");
    let refuse = |csr: Vec<u8>, because: &'static str| {
        let client = ca.client.clone();
        async move {
            let (code, msg) = refused(client.issue(csr, "server-tls", None).await.unwrap_err());
            assert_eq!(code, tonic::Code::InvalidArgument, "{msg}");
            assert!(msg.contains(because), "expected {because:?} in {msg}");
        }
    };
    let (key, good) = csr(&spec, &rcgen::PKCS_ECDSA_P256_SHA256);
    // A BER (non-minimal) length on the outer SEQUENCE: the signature still verifies.
    let (hl, content) = split(&good);
    let mut ber = vec![0x30, 0x83, 0x00];
    ber.extend_from_slice(&(content.len() as u16).to_be_bytes());
    ber.extend_from_slice(content);
    assert_ne!(hl, 5);
    refuse(ber, "DER").await;
    // Version 2 (INTEGER 1), properly signed.
    let v2 = resign_info(&good, &key, |info| {
        let (ihl, _) = split(info);
        assert_eq!(&info[ihl..ihl + 3], [0x02, 0x01, 0x00]);
        info[ihl + 2] = 1;
    });
    refuse(v2, "version 1").await;
    // The same extension twice, and an unknown critical one.
    let dup = {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["shop.example.cn".into()]).unwrap();
        p.custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[2, 5, 29, 17],
                vec![
                    0x30, 0x0f, 0x82, 0x0d, b'x', b'.', b'e', b'x', b'a', b'm', b'p', b'l', b'e',
                    b'.', b'c', b'o', b'm',
                ],
            ));
        p.serialize_request(&key).unwrap().der().to_vec()
    };
    refuse(dup, "requested twice").await;
    let critical = {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["shop.example.cn".into()]).unwrap();
        let mut e = rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 55555, 3],
            vec![0x05, 0x00],
        );
        e.set_criticality(true);
        p.custom_extensions.push(e);
        p.serialize_request(&key).unwrap().der().to_vec()
    };
    refuse(critical, "critical extension 1.3.6.1.4.1.55555.3").await;
    ca.client.issue(good, "server-tls", None).await.unwrap();
}

#[tokio::test]
async fn deceptive_names_are_refused() {
    let ca = TestCa::start().await;
    for (spec, profile, because) in [
        (
            CsrSpec::cn("*.com.cn").dns("*.com.cn"),
            "server-tls",
            "public suffix",
        ),
        (
            CsrSpec::cn("10.0.0.1").dns("10.0.0.1"),
            "server-tls",
            "all digits",
        ),
        (
            CsrSpec::cn("shop.123").dns("shop.123"),
            "server-tls",
            "all digits",
        ),
        (CsrSpec::cn("pay\u{202E}lapyap"), "client-tls", "U+202E"),
        (CsrSpec::cn("sh\u{200B}op"), "client-tls", "U+200B"),
    ] {
        let (code, msg) = refused(
            ca.client
                .issue(p256_csr(&spec), profile, None)
                .await
                .unwrap_err(),
        );
        assert_eq!(code, tonic::Code::InvalidArgument, "{msg}");
        assert!(msg.contains(because), "expected {because:?} in {msg}");
    }
    still_serving(&ca).await;
}
