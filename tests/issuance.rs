//! Issuance over the real server: every profile, checked by independent verifiers
//! (openssl, pkilint, rustls-webpki) and by inspecting the certificate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::ParsedExtension;

#[tokio::test]
async fn every_profile_verifies_with_openssl_and_lints_clean() {
    let ca = TestCa::start().await;
    let (roots, chain) = ca.trust_files().await;
    for (profile, spec) in profile_samples() {
        let resp = ca
            .client
            .issue(p256_csr(&spec), profile, None)
            .await
            .expect(profile);
        let cert = resp.certificate.unwrap();
        assert_eq!(
            resp.chain_der.len(),
            1,
            "{profile}: chain is the issuing CA"
        );
        let leaf = ca.write_pem(&format!("{profile}.pem"), &cert.der);
        if let Some((ok, out)) = openssl_verify(&roots, &chain, &leaf, &["-purpose", "any"]) {
            assert!(ok && out.contains("OK"), "{profile}: openssl verify: {out}");
        }
        if let Some((ok, out)) = pkilint("lint_pkix_cert", &["-s", "WARNING"], &[&leaf]) {
            assert!(ok, "{profile}: pkilint lint_pkix_cert findings:\n{out}");
        }
        if let Some((ok, out)) =
            pkilint("lint_pkix_signer_signee_cert_chain", &[], &[&chain, &leaf])
        {
            assert!(ok, "{profile}: pkilint chain findings:\n{out}");
        }
    }
    // The CA certificates themselves, and the root -> issuing pair.
    let bundle = ca.client.trust_bundle().await.unwrap();
    let root = ca.write_pem("root-only.pem", &bundle.roots_der[0]);
    if let Some((ok, out)) = pkilint("lint_pkix_cert", &["-s", "WARNING"], &[&root]) {
        assert!(ok, "root: {out}");
    }
    if let Some((ok, out)) = pkilint("lint_pkix_cert", &["-s", "WARNING"], &[&chain]) {
        assert!(ok, "issuing CA: {out}");
    }
    if let Some((ok, out)) = pkilint("lint_pkix_signer_signee_cert_chain", &[], &[&root, &chain]) {
        assert!(ok, "root -> issuing: {out}");
    }
}

#[tokio::test]
async fn rustls_webpki_accepts_server_and_client_certificates() {
    let ca = TestCa::start().await;
    let bundle = ca.client.trust_bundle().await.unwrap();
    let root = CertificateDer::from(bundle.roots_der[0].clone());
    let anchors = vec![webpki::anchor_from_trusted_cert(&root).unwrap().to_owned()];
    let inter = vec![CertificateDer::from(bundle.intermediates_der[0].clone())];
    let now = UnixTime::now();
    let algs = webpki::ALL_VERIFICATION_ALGS;

    let der = ca.issue_tls("shop.example.cn").await;
    let der = CertificateDer::from(der);
    let ee = webpki::EndEntityCert::try_from(&der).unwrap();
    ee.verify_for_usage(
        algs,
        &anchors,
        &inter,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .expect("server-tls verifies for serverAuth");
    ee.verify_is_valid_for_subject_name(&ServerName::try_from("shop.example.cn").unwrap())
        .expect("name matches");
    assert!(
        ee.verify_is_valid_for_subject_name(&ServerName::try_from("other.example.cn").unwrap())
            .is_err()
    );
    assert!(
        ee.verify_for_usage(
            algs,
            &anchors,
            &inter,
            now,
            webpki::KeyUsage::client_auth(),
            None,
            None
        )
        .is_err(),
        "server-tls is not a client certificate"
    );

    let der = ca
        .client
        .issue(p256_csr(&CsrSpec::cn("api-7")), "client-tls", None)
        .await
        .unwrap();
    let der = CertificateDer::from(der.certificate.unwrap().der);
    let ee = webpki::EndEntityCert::try_from(&der).unwrap();
    ee.verify_for_usage(
        algs,
        &anchors,
        &inter,
        now,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .expect("client-tls verifies for clientAuth");
}

#[tokio::test]
async fn certificate_comes_from_the_profile_not_the_csr() {
    let ca = TestCa::start().await;
    let spec = CsrSpec::cn("shop.example.cn")
        .dns("Shop.Example.CN")
        .dns("shop.example.cn");
    let (key, csr_der) = csr(&spec, &rcgen::PKCS_ECDSA_P384_SHA384);
    let resp = ca
        .client
        .issue(csr_der, "server-tls", Some(100_000))
        .await
        .unwrap();
    let cert_pb = resp.certificate.unwrap();
    let cert = parse(&cert_pb.der);
    // SPKI byte-exact from the CSR.
    use rcgen::PublicKeyData;
    assert_eq!(
        cert.public_key().raw,
        key.subject_public_key_info().as_slice()
    );
    // Serial: positive, at least 64 bits.
    let raw = cert.raw_serial();
    assert!(raw[0] & 0x80 == 0 && raw.iter().skip_while(|b| **b == 0).count() >= 8);
    // Validity clamped to the profile maximum (397 days).
    let days =
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 397);
    // AKI and SKI present; no CA flag; EKU serverAuth only; names normalised and de-duplicated.
    let (mut aki, mut ski) = (false, false);
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(_) => aki = true,
            ParsedExtension::SubjectKeyIdentifier(_) => ski = true,
            ParsedExtension::BasicConstraints(bc) => assert!(!bc.ca),
            ParsedExtension::ExtendedKeyUsage(e) => {
                assert!(e.server_auth && !e.client_auth && e.other.is_empty());
            }
            _ => {}
        }
    }
    assert!(aki && ski);
    assert_eq!(cert_pb.subject_alt_names, vec!["DNS:shop.example.cn"]);
}

/// openssl-made CSRs: a P-256 key signed with SHA-384 (rcgen#448) and a CSR carrying a
/// subjectKeyIdentifier extension both give a correct certificate.
#[tokio::test]
async fn unusual_but_valid_csrs_are_accepted() {
    let Some(openssl) = tool("openssl") else {
        return;
    };
    let ca = TestCa::start().await;
    let (roots, chain) = ca.trust_files().await;
    let d = ca.dir.path();
    let key = d.join("k.pem");
    let (ok, out) = run(Command::new(&openssl)
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&key));
    assert!(ok, "{out}");
    let pkcs8 = d.join("k8.pem");
    let (ok, out) = run(Command::new(&openssl)
        .args(["pkcs8", "-topk8", "-nocrypt", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&pkcs8));
    assert!(ok, "{out}");
    for (name, extra) in [
        ("sha384", vec!["-sha384"]),
        (
            "ski",
            vec!["-sha256", "-addext", "subjectKeyIdentifier=hash"],
        ),
    ] {
        let csr_path = d.join(format!("{name}.csr"));
        let mut cmd = Command::new(&openssl);
        cmd.args(["req", "-new", "-key"]).arg(&key).args([
            "-subj",
            "/CN=shop.example.cn",
            "-addext",
            "subjectAltName=DNS:shop.example.cn",
        ]);
        cmd.args(&extra).arg("-out").arg(&csr_path);
        let (ok, out) = run(&mut cmd);
        assert!(ok, "{out}");
        let resp = ca
            .client
            .issue(std::fs::read(&csr_path).unwrap(), "server-tls", None)
            .await
            .expect(name);
        let der = resp.certificate.unwrap().der;
        let leaf = ca.write_pem(&format!("{name}.pem"), &der);
        let (ok, out) = openssl_verify(&roots, &chain, &leaf, &[]).unwrap();
        assert!(ok, "{name}: {out}");
        // The certificate holds the key of the openssl key file.
        let (ok, spki) = run(Command::new(&openssl)
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&pkcs8)
            .arg("-out")
            .arg(d.join("pub.der")));
        assert!(ok, "{spki}");
        assert_eq!(
            parse(&der).public_key().raw,
            std::fs::read(d.join("pub.der")).unwrap().as_slice(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn ed25519_and_p384_cas_issue_verifiable_chains() {
    for alg in [
        ecca::core::keys::CaKeyAlg::Ed25519,
        ecca::core::keys::CaKeyAlg::P384,
    ] {
        let ca = TestCa::start_with(|c| c.init.algorithm = alg).await;
        let (roots, chain) = ca.trust_files().await;
        let der = ca.issue_tls("shop.example.cn").await;
        let leaf = ca.write_pem("leaf.pem", &der);
        if let Some((ok, out)) = openssl_verify(&roots, &chain, &leaf, &[]) {
            assert!(ok, "{alg:?}: {out}");
        }
        if let Some((ok, out)) =
            pkilint("lint_pkix_signer_signee_cert_chain", &[], &[&chain, &leaf])
        {
            assert!(ok, "{alg:?}: {out}");
        }
    }
}
