//! Remote certification between regions: cross-certification, bridge, byte-exact foreign
//! subjects, revocation learned from the other region, checked by `ecca verify-chain` and openssl.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ecca::client::Client;
use ecca::config::ServerConfig;
use ecca::proto::{CrossCertifyRequest, VerifyCertificateRequest, cross_certify_request::Peer};
use ecca::server::Running;

use common::judges::http_get;

struct Region {
    dir: PathBuf,
    client: Client,
    running: Running,
}

async fn region(tmp: &Path, name: &str) -> Region {
    let dir = tmp.join(name);
    let mut c = ServerConfig::loopback(&dir);
    c.init.organization = format!("{name} EC CA");
    // The regions of this test all run on loopback: let them fetch each other's CRLs/OCSP.
    c.verify_fetch_allow = vec![ecca::verify::Cidr::parse("127.0.0.0/8").unwrap()];
    let running = ecca::server::start(c).await.unwrap();
    let client = Client::connect_data_dir(&dir).await.unwrap();
    Region {
        dir,
        client,
        running,
    }
}

impl Region {
    async fn root(&self) -> Vec<u8> {
        self.client
            .trust_bundle()
            .await
            .unwrap()
            .roots_der
            .remove(0)
    }
    async fn issuing(&self) -> Vec<u8> {
        self.client
            .trust_bundle()
            .await
            .unwrap()
            .intermediates_der
            .remove(0)
    }
    async fn cross_certify(
        &self,
        peer_root: Vec<u8>,
        permitted_dns: &[&str],
        path_len: Option<u32>,
    ) -> Vec<u8> {
        let resp = self
            .client
            .cross_certify(CrossCertifyRequest {
                peer: Some(Peer::CaCert(peer_root)),
                permitted_dns: permitted_dns.iter().map(|s| s.to_string()).collect(),
                path_len,
                days: 365,
                ..Default::default()
            })
            .await
            .unwrap();
        resp.certificate_der
    }
    /// Issues from a CSR made with the CLI's own code path (rcgen) for the given names.
    async fn issue(
        &self,
        profile: &str,
        cn: &str,
        dns: &str,
        org: Option<(&str, &str)>,
    ) -> (String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        if let Some((o, uscc)) = org {
            dn.push(
                rcgen::DnType::CountryName,
                rcgen::DnValue::PrintableString("CN".try_into().unwrap()),
            );
            dn.push(rcgen::DnType::OrganizationName, o);
            dn.push(
                rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]),
                rcgen::DnValue::PrintableString(uscc.try_into().unwrap()),
            );
        }
        dn.push(rcgen::DnType::CommonName, cn);
        p.distinguished_name = dn;
        p.subject_alt_names = vec![rcgen::SanType::DnsName(dns.try_into().unwrap())];
        let csr = p.serialize_request(&key).unwrap().der().to_vec();
        let c = self
            .client
            .issue(csr, profile, None)
            .await
            .unwrap()
            .certificate
            .unwrap();
        (c.serial, c.der)
    }
}

fn write(dir: &Path, name: &str, ders: &[&[u8]]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, ecca::pemfile::certs_to_pem(ders.iter().copied())).unwrap();
    p
}

fn openssl() -> Option<PathBuf> {
    common::tools::tool("openssl")
}

/// `ecca verify-chain ...` → (exit code, stdout).
async fn verify_chain(args: Vec<String>) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_ecca"))
            .arg("verify-chain")
            .args(&args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    })
    .await
    .unwrap()
}

async fn openssl_verify(roots: &Path, untrusted: &Path, leaf: &Path) -> Option<(bool, String)> {
    let openssl = openssl()?;
    let (roots, untrusted, leaf) = (
        roots.to_path_buf(),
        untrusted.to_path_buf(),
        leaf.to_path_buf(),
    );
    Some(
        tokio::task::spawn_blocking(move || {
            let out = Command::new(openssl)
                .arg("verify")
                .arg("-CAfile")
                .arg(&roots)
                .arg("-untrusted")
                .arg(&untrusted)
                .arg(&leaf)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success(), text)
        })
        .await
        .unwrap(),
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_cross_certified_with_a_name_constraint() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let a = region(t, "RegionA").await;
    let b = region(t, "RegionB").await;
    let cross = b
        .cross_certify(a.root().await, &["a.example.cn"], Some(1))
        .await;
    let (serial, merchant) = a
        .issue(
            "merchant-ov",
            "Example Trading",
            "shop.a.example.cn",
            Some(("Example Trading Co., Ltd.", "91350100M000100Y43")),
        )
        .await;
    let (_, outside) = a
        .issue("server-tls", "shop.elsewhere.cn", "shop.elsewhere.cn", None)
        .await;

    let b_roots = write(t, "b-roots.pem", &[&b.root().await]);
    let untrusted = write(t, "a-chain-and-cross.pem", &[&a.issuing().await, &cross]);
    let merchant_pem = write(t, "merchant.pem", &[&merchant]);
    let outside_pem = write(t, "outside.pem", &[&outside]);

    // ecca verify-chain at B: leaf -> A issuing -> A root (via the cross-certificate) -> B root,
    // with hard revocation checking across both regions over HTTP.
    let base = |leaf: &Path| {
        vec![
            "--leaf".into(),
            s(leaf),
            "--untrusted".into(),
            s(&untrusted),
            "--trust".into(),
            s(&b_roots),
        ]
    };
    let mut args = base(&merchant_pem);
    args.extend([
        "--revocation".into(),
        "hard".into(),
        "--purpose".into(),
        "client".into(),
    ]);
    let (code, out) = verify_chain(args.clone()).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("RegionA EC CA Root CA") && out.contains("RegionB EC CA Root CA"),
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_start().starts_with(char::is_numeric))
            .count(),
        4,
        "{out}"
    );
    if let Some((ok, text)) = openssl_verify(&b_roots, &untrusted, &merchant_pem).await {
        assert!(ok, "openssl: {text}");
    }

    // Outside the name constraint: refused by both.
    let (code, out) = verify_chain(base(&outside_pem)).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("outside the permitted subtrees"), "{out}");
    if let Some((ok, text)) = openssl_verify(&b_roots, &untrusted, &outside_pem).await {
        assert!(
            !ok && text.contains("permitted subtree violation"),
            "openssl: {text}"
        );
    }

    // B's gRPC VerifyCertificate agrees (the cross-certificate comes from B's own store).
    let resp = b
        .client
        .verify(VerifyCertificateRequest {
            leaf: merchant.clone(),
            untrusted: vec![a.issuing().await],
            revocation: ecca::proto::RevocationMode::Hard.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(resp.valid, "{:?}", resp.reasons);
    assert_eq!(resp.path.len(), 4);

    // A revokes the merchant certificate: B learns it from A's OCSP/CRL under hard checking.
    a.client.revoke(&serial, 1, None).await.unwrap();
    let (code, out) = verify_chain(args).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("revoked") && out.contains("keyCompromise"),
        "{out}"
    );
    let resp = b
        .client
        .verify(VerifyCertificateRequest {
            leaf: merchant,
            untrusted: vec![a.issuing().await],
            revocation: ecca::proto::RevocationMode::Hard.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        !resp.valid && resp.reasons.iter().any(|r| r.contains("revoked")),
        "{:?}",
        resp.reasons
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_connects_three_regions() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let bridge = region(t, "Bridge").await;
    let r1 = region(t, "Region1").await;
    let r2 = region(t, "Region2").await;
    let r3 = region(t, "Region3").await;
    // The bridge certifies each region's root; each region certifies the bridge's root.
    let mut by_bridge = Vec::new();
    let mut of_bridge = Vec::new();
    for r in [&r1, &r2, &r3] {
        // pathLen: below a region root sit its issuing CA (1); below the bridge root, a region
        // root and its issuing CA (2).
        by_bridge.push(bridge.cross_certify(r.root().await, &[], Some(1)).await);
        of_bridge.push(r.cross_certify(bridge.root().await, &[], Some(2)).await);
    }
    let (_, leaf) = r1
        .issue(
            "server-tls",
            "shop.r1.example.cn",
            "shop.r1.example.cn",
            None,
        )
        .await;
    let leaf_pem = write(t, "leaf.pem", &[&leaf]);
    let r3_roots = write(t, "r3-roots.pem", &[&r3.root().await]);
    // What a relying party in region 3 has: region 1's chain, the bridge's published
    // cross-certificates, and region 3's certificate for the bridge.
    let r1_issuing = r1.issuing().await;
    let mut pool: Vec<&[u8]> = vec![&r1_issuing];
    pool.extend(by_bridge.iter().map(Vec::as_slice));
    pool.push(&of_bridge[2]);
    let untrusted = write(t, "pool.pem", &pool);
    let args = |untrusted: &Path| {
        vec![
            "--leaf".to_string(),
            s(&leaf_pem),
            "--untrusted".into(),
            s(untrusted),
            "--trust".into(),
            s(&r3_roots),
            "--dns-name".into(),
            "shop.r1.example.cn".into(),
            "--purpose".into(),
            "server".into(),
            "--revocation".into(),
            "hard".into(),
        ]
    };
    let (code, out) = verify_chain(args(&untrusted)).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Bridge EC CA Root CA"),
        "path goes through the bridge: {out}"
    );
    if let Some((ok, text)) = openssl_verify(&r3_roots, &untrusted, &leaf_pem).await {
        assert!(ok, "openssl: {text}");
    }
    // With every cross-certificate of the federation in the pool (three certificates named
    // "Bridge Root", two of them leading nowhere region 3 trusts), ecca backtracks to the path.
    let mut noisy = pool.clone();
    noisy.extend(of_bridge[..2].iter().map(Vec::as_slice));
    noisy.reverse();
    let noisy = write(t, "noisy.pem", &noisy);
    let (code, out) = verify_chain(args(&noisy)).await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_openssl_ca_subject_is_kept_byte_exact() {
    let Some(openssl) = openssl() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().to_path_buf();
    let home = region(&t, "Home").await;
    let foreign = t.join("foreign.pem");
    let key = t.join("foreign.key");
    let (f2, k2) = (foreign.clone(), key.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(openssl)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "365"])
            .args(["-multivalue-rdn", "-subj", "/DC=com/DC=example/OU=Payments/OU=Settlement/O=Foreign Pay+L=Macau/CN=Foreign Root"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&k2)
            .arg("-out")
            .arg(&f2)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let foreign_der = ecca::pemfile::parse_certs(&std::fs::read(&foreign).unwrap())
        .unwrap()
        .remove(0);
    let dry = home
        .client
        .cross_certify(CrossCertifyRequest {
            peer: Some(Peer::CaCert(std::fs::read(&foreign).unwrap())),
            permitted_dns: vec!["pay.example.com".into()],
            policies: vec!["1.3.6.1.4.1.55555.1".into()],
            policy_maps: vec!["1.3.6.1.4.1.55555.1=1.3.6.1.4.1.55555.2".into()],
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        dry.certificate_der.is_empty() && dry.description.contains("pay.example.com"),
        "{}",
        dry.description
    );
    let cross = home
        .client
        .cross_certify(CrossCertifyRequest {
            peer: Some(Peer::CaCert(foreign_der.clone())),
            permitted_dns: vec!["pay.example.com".into()],
            policies: vec!["1.3.6.1.4.1.55555.1".into()],
            policy_maps: vec!["1.3.6.1.4.1.55555.1=1.3.6.1.4.1.55555.2".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .certificate_der;
    let (_, f) = x509_parser::parse_x509_certificate(&foreign_der).unwrap();
    let (_, c) = x509_parser::parse_x509_certificate(&cross).unwrap();
    assert_eq!(
        c.subject().as_raw(),
        f.subject().as_raw(),
        "subject DER byte-identical"
    );
    assert_eq!(c.public_key().raw, f.public_key().raw);
    let ski = |x: &x509_parser::certificate::X509Certificate<'_>| {
        x.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            })
    };
    assert_eq!(ski(&c), ski(&f), "SKI reused");
    // The cross-certificate verifies under our root (openssl).
    let roots = write(&t, "home-roots.pem", &[&home.root().await]);
    let cross_pem = write(&t, "cross.pem", &[&cross]);
    let (ok, text) = openssl_verify(&roots, &cross_pem, &cross_pem)
        .await
        .unwrap();
    assert!(ok, "{text}");

    // Registry: add, suspend (leaves the bundle), remove (revokes our cross-certificate).
    home.client
        .add_peer(ecca::proto::AddPeerRequest {
            name: "foreign".into(),
            ca_cert: foreign_der.clone(),
            received_cross: vec![],
        })
        .await
        .unwrap();
    let peers = home.client.peers().await.unwrap();
    assert_eq!(peers.len(), 1);
    let bundle = home.client.trust_bundle().await.unwrap();
    assert!(
        bundle.intermediates_der.contains(&cross),
        "cross-certificate served in the trust bundle"
    );

    // The CLI sees the registry; without --yes, remove changes nothing.
    let (code, out) = common::cli(&home.dir, &["peers", "list"]).await;
    assert!(
        code == 0 && out.contains("foreign") && out.contains("Foreign Root"),
        "{out}"
    );
    let (code, out) = common::cli(&home.dir, &["peers", "remove", "foreign"]).await;
    assert!(code == 2 && out.contains("--yes"), "{out}");

    // A cross-certificate recorded under the peer leaves the bundle while the peer is suspended;
    // removing the peer revokes it, and our root's OCSP says so.
    let cross2 = home
        .client
        .cross_certify(CrossCertifyRequest {
            peer: Some(Peer::CaCert(foreign_der.clone())),
            peer_name: "foreign".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .certificate_der;
    let bundle = home.client.trust_bundle().await.unwrap();
    assert!(bundle.intermediates_der.contains(&cross2));
    home.client
        .set_peer_status("foreign", ecca::proto::PeerStatus::Suspended)
        .await
        .unwrap();
    let bundle = home.client.trust_bundle().await.unwrap();
    assert!(
        !bundle.intermediates_der.contains(&cross2),
        "suspended peer's cross-certificate left the bundle"
    );
    let (code, out) = common::cli(&home.dir, &["peers", "remove", "foreign", "--yes"]).await;
    assert!(code == 0 && out.contains("revoked 1"), "{out}");
    let roots = write(&t, "home-roots2.pem", &[&home.root().await]);
    let cross2_pem = write(&t, "cross2.pem", &[&cross2]);
    let (code, out) = verify_chain(vec![
        "--leaf".into(),
        s(&cross2_pem),
        "--trust".into(),
        s(&roots),
        "--revocation".into(),
        "hard".into(),
    ])
    .await;
    assert!(
        code == 1 && out.contains("revoked") && out.contains("cessationOfOperation"),
        "{out}"
    );

    // The root's CRL lists it too, re-signed within a second of the removal: openssl, given
    // only our root and the root CRL fetched over HTTP, says "certificate revoked".
    let serial = x509_parser::parse_x509_certificate(&cross2)
        .unwrap()
        .1
        .raw_serial()
        .to_vec();
    let http = home.running.endpoints.http;
    let started = std::time::Instant::now();
    let crl = loop {
        let der = http_get(http, "/crl/root.crl").await;
        let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
        if crl
            .iter_revoked_certificates()
            .any(|r| r.raw_serial() == serial.as_slice())
        {
            break der;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "root CRL does not list the revoked cross-certificate after 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let crl_pem = t.join("root-crl.pem");
    std::fs::write(&crl_pem, pem::encode(&pem::Pem::new("X509 CRL", crl))).unwrap();
    if let Some(bin) = crate::openssl() {
        let out = Command::new(bin)
            .arg("verify")
            .arg("-crl_check")
            .arg("-CAfile")
            .arg(&roots)
            .arg("-CRLfile")
            .arg(&crl_pem)
            .arg(&cross2_pem)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && text.contains("certificate revoked"),
            "{text}"
        );
    }
}
