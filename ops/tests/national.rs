//! The national-algorithm (SM2/SM3) hierarchy end to end, judged from outside: OpenSSL 3
//! (certificates hop by hop with `-vfyopt distid:1234567812345678 -partial_chain`; CRL, OCSP
//! and CMS signatures with `pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:...`, because
//! `openssl crl -verify` and `openssl ocsp` in 3.0 cannot be given the distinguishing ID) and
//! PyPI gmssl (tests/python/sm2_judge.py); pkilint where it understands SM2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::gm::*;
use common::judges::{self, run_blocking};
use common::*;
use der::{Decode, Encode};
use serde_json::Value;

fn crl_parts(what: &str, der: &[u8], signer: &Path) -> Signed {
    let (_, crl) = x509_parser::parse_x509_crl(der).unwrap();
    assert_eq!(
        crl.signature_algorithm.algorithm.to_id_string(),
        "1.2.156.10197.1.501"
    );
    Signed {
        what: what.into(),
        data: crl.tbs_cert_list.as_ref().to_vec(),
        sig: crl.signature_value.data.to_vec(),
        signer: signer.to_path_buf(),
    }
}

fn ocsp_parts(what: &str, der: &[u8], signer: &Path) -> Signed {
    let resp = x509_ocsp::OcspResponse::from_der(der).unwrap();
    let bytes = resp.response_bytes.unwrap();
    let basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    assert_eq!(
        basic.signature_algorithm.oid.to_string(),
        "1.2.156.10197.1.501"
    );
    Signed {
        what: what.into(),
        data: basic.tbs_response_data.to_der().unwrap(),
        sig: basic.signature.raw_bytes().to_vec(),
        signer: signer.to_path_buf(),
    }
}

/// The first signer of a CMS SignedData: (signed attributes DER, signature, algorithm OIDs).
fn cms_parts(what: &str, der: &[u8], signer: &Path) -> (Signed, cms::signed_data::SignedData) {
    let ci = cms::content_info::ContentInfo::from_der(der).unwrap();
    let sd = ci
        .content
        .decode_as::<cms::signed_data::SignedData>()
        .unwrap();
    let si = sd.signer_infos.0.iter().next().unwrap().clone();
    let signed = Signed {
        what: what.into(),
        data: si.signed_attrs.as_ref().unwrap().to_der().unwrap(),
        sig: si.signature.as_bytes().to_vec(),
        signer: signer.to_path_buf(),
    };
    (signed, sd)
}

/// Both judges on every signature: openssl pkeyutl, then gmssl in one run.
fn names(profiles: &Value) -> Vec<String> {
    profiles
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An SM2 hierarchy made with `ecca issuer add`; keys, CSRs (ecca's and OpenSSL's),
/// certificates under every sm2-* profile, CRLs, OCSP (SHA-1 and SM3 CertIDs), the delegated
/// responder, the SM2 TSA, GM/T 0010 and RFC 5652 document signatures: every SM2 signature
/// accepted by OpenSSL and by gmssl, pkilint clean where it understands SM2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sm2_hierarchy_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let ca = Ca::start(&work.join("ecca-data")).await;
    let dir = ca.dir.clone();

    // The sm2-* profiles wait for their hierarchy, and say how to make it.
    assert!(
        !names(&ca.ok(&["profiles"]).await)
            .iter()
            .any(|n| n.starts_with("sm2-"))
    );
    let early = work.join("early.key");
    ca.ok(&["keygen", "--alg", "sm2", "--out", s(&early)]).await;
    let early_csr = work.join("early.csr");
    ca.ok(&[
        "csr",
        "--key",
        s(&early),
        "--cn",
        "x.example.cn",
        "--dns",
        "x.example.cn",
        "--out",
        s(&early_csr),
    ])
    .await;
    let (code, _, err) = ecca_json(
        &dir,
        &[
            "issue",
            "--csr",
            s(&early_csr),
            "--profile",
            "sm2-server-tls",
            "--out",
            s(&work.join("x.pem")),
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("issuer add --name gm --algorithm sm2"),
        "{err}"
    );
    let added = ca.add_gm().await;
    assert_eq!(added["issuer"]["algorithm"], "sm2");
    let offered = names(&ca.ok(&["profiles"]).await);
    for p in [
        "sm2-server-tls",
        "sm2-client-tls",
        "sm2-merchant-ov",
        "sm2-document-signing",
    ] {
        assert!(
            offered.iter().any(|n| n == p),
            "{p} not offered: {offered:?}"
        );
    }
    let gm = ca.ok(&["issuer", "show", "gm"]).await;
    let root_id = ca_ids(&gm, "root", "active").remove(0);
    let issuing_id = ca_ids(&gm, "issuing", "active").remove(0);
    let root = ca.ca_pem(&root_id, work).await;
    let issuing = ca.ca_pem(&issuing_id, work).await;

    // Leaves under every SM2 profile, from keys and CSRs ecca makes.
    let mut leaves = Vec::new();
    let requests: [(&str, &[&str]); 4] = [
        (
            "sm2-server-tls",
            &["--cn", "shop.example.cn", "--dns", "shop.example.cn"],
        ),
        ("sm2-client-tls", &["--cn", "api-client-1"]),
        (
            "sm2-merchant-ov",
            &[
                "--cn",
                "Example Trading",
                "--org",
                "Example Trading Co., Ltd.",
                "--country",
                "CN",
                "--uscc",
                "91350100M000100Y43",
            ],
        ),
        ("sm2-document-signing", &["--cn", "Alice Zhang"]),
    ];
    for (profile, subject) in requests {
        let key = work.join(format!("{profile}.key"));
        let csr = work.join(format!("{profile}.csr"));
        let pem = work.join(format!("{profile}.pem"));
        ca.ok(&["keygen", "--alg", "sm2", "--out", s(&key)]).await;
        let mut args = vec!["csr", "--key", s(&key), "--out", s(&csr)];
        args.extend_from_slice(subject);
        ca.ok(&args).await;
        let issued = ca
            .ok(&[
                "issue",
                "--csr",
                s(&csr),
                "--profile",
                profile,
                "--out",
                s(&pem),
            ])
            .await;
        leaves.push((
            profile,
            key,
            pem,
            issued["serial"].as_str().unwrap().to_string(),
        ));
    }
    // A CSR made by OpenSSL with the default ID is accepted; with OpenSSL's own default
    // (the empty ID) it is refused, naming the ID to use.
    let okey = work.join("openssl.key");
    let mut genpkey = openssl();
    genpkey
        .args(["genpkey", "-algorithm", "SM2", "-out"])
        .arg(&okey);
    assert!(run_blocking(genpkey).await.0);
    for (name, with_id) in [("openssl.csr", true), ("empty-id.csr", false)] {
        let mut req = openssl();
        req.args(["req", "-new", "-key"])
            .arg(&okey)
            .args([
                "-sm3",
                "-subj",
                "/CN=o.example.cn",
                "-addext",
                "subjectAltName=DNS:o.example.cn",
                "-out",
            ])
            .arg(work.join(name));
        if with_id {
            req.args(["-sigopt", DISTID]);
        }
        let (ok, out) = run_blocking(req).await;
        assert!(ok, "openssl req: {out}");
    }
    let from_openssl = work.join("openssl.pem");
    ca.ok(&[
        "issue",
        "--csr",
        s(&work.join("openssl.csr")),
        "--profile",
        "sm2-server-tls",
        "--out",
        s(&from_openssl),
    ])
    .await;
    let (code, _, err) = ecca_json(
        &dir,
        &[
            "issue",
            "--csr",
            s(&work.join("empty-id.csr")),
            "--profile",
            "sm2-server-tls",
            "--out",
            s(&work.join("no.pem")),
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("distinguishing ID") && err.contains("1234567812345678"),
        "{err}"
    );

    // ecca's own SM2 certificates: the delegated OCSP responder and the TSA, made by the
    // maintenance loop as soon as the hierarchy appeared.
    let responder = dir.join(format!("ocsp/{issuing_id}.pem"));
    let tsa = dir.join("tsa/sm2.pem");
    for _ in 0..200 {
        if responder.exists() && tsa.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Certificates: OpenSSL hop by hop, then gmssl; pkilint.
    let mut signed = vec![
        cert_parts("root", &root, &root),
        cert_parts("issuing CA", &issuing, &root),
    ];
    assert!(hop(&root, &root).await.0, "root self-signature");
    let (ok, out) = hop(&root, &issuing).await;
    assert!(ok, "issuing CA: {out}");
    lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[&root]);
    lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[&issuing]);
    let mut ee: Vec<(String, PathBuf)> = leaves
        .iter()
        .map(|(p, _, pem, _)| (p.to_string(), pem.clone()))
        .collect();
    ee.push(("openssl CSR".into(), from_openssl.clone()));
    ee.push(("OCSP responder".into(), responder.clone()));
    ee.push(("TSA".into(), tsa.clone()));
    for (what, pem) in &ee {
        let (ok, out) = hop(&issuing, pem).await;
        assert!(ok, "{what}: {out}");
        lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[pem]);
        lint_clean(
            "lint_pkix_signer_signee_cert_chain",
            &["-s", "WARNING"],
            &[&issuing, pem],
        );
        signed.push(cert_parts(what, pem, &issuing));
    }
    // What pkilint cannot evaluate for SM2: the signature itself (a NOTICE, not a finding at
    // WARNING); OpenSSL and gmssl judge it.
    let (_, notice) = judges::pkilint(
        "lint_pkix_signer_signee_cert_chain",
        &[],
        &[&issuing, &from_openssl],
    )
    .unwrap();
    assert!(notice.contains("pkix.unsupported_algorithm"), "{notice}");

    // OCSP through the delegated responder: SHA-1 and SM3 CertIDs; then a revocation.
    let url = format!("http://{}/ocsp", ca.http());
    let server = &leaves[0];
    let ocsp = |hash: &'static str, out: PathBuf| {
        let (issuing, leaf, url) = (issuing.clone(), server.2.clone(), url.clone());
        async move {
            let mut cmd = openssl();
            cmd.args(["ocsp", hash, "-noverify", "-no_nonce", "-issuer"])
                .arg(&issuing)
                .arg("-cert")
                .arg(&leaf)
                .args(["-url", &url, "-respout"])
                .arg(&out);
            let (_, text) = run_blocking(cmd).await;
            (text, std::fs::read(&out).unwrap())
        }
    };
    for hash in ["-sha1", "-sm3"] {
        let (text, resp) = ocsp(hash, work.join(format!("good{hash}.der"))).await;
        assert!(text.contains("sm2-server-tls.pem: good"), "{hash}: {text}");
        signed.push(ocsp_parts(&format!("OCSP good {hash}"), &resp, &responder));
    }
    let client = ca.client().await;
    client.revoke(&server.3, 1, None).await.unwrap();
    let (text, resp) = ocsp("-sm3", work.join("revoked.der")).await;
    assert!(text.contains("sm2-server-tls.pem: revoked"), "{text}");
    signed.push(ocsp_parts("OCSP revoked", &resp, &responder));

    // CRLs: full and delta of the issuing CA (the revocation listed), the root's.
    let mut full = Vec::new();
    for _ in 0..100 {
        full = ca.get(&format!("/crl/{issuing_id}.crl")).await;
        if judges::crl_serials(&full).contains(&server.3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        judges::crl_serials(&full).contains(&server.3),
        "the CRL lists the revocation"
    );
    let delta = ca.get(&format!("/crl/{issuing_id}-delta.crl")).await;
    let root_crl = ca.get(&format!("/crl/{root_id}.crl")).await;
    for (what, der, signer) in [
        ("full CRL", &full, &issuing),
        ("delta CRL", &delta, &issuing),
        ("root CRL", &root_crl, &root),
    ] {
        let path = work.join(format!("{}.crl", what.replace(' ', "-")));
        std::fs::write(&path, der).unwrap();
        lint_clean(
            "lint_crl",
            &["-t", "CRL", "-p", "PKIX", "-s", "WARNING"],
            &[&path],
        );
        signed.push(crl_parts(what, der, signer));
    }

    // Document signatures: GM/T 0010 (default for SM2 keys) and RFC 5652, timestamped by the
    // SM2 TSA over the signature's SM3 digest; ecca verify-signature and gRPC accept both.
    let (_, doc_key, doc_cert, _) = &leaves[3];
    let document = work.join("order-42.txt");
    std::fs::write(&document, b"order 42: 3 crates of tea").unwrap();
    let gm_roots = pem_file(work, "gm-roots.pem", &[&pem_der(&root)]);
    let tsa_url = format!("http://{}/tsa", ca.http());
    for (format, outer, inner, sig_alg) in [
        (
            "gmt0010",
            "1.2.156.10197.6.1.4.2.2",
            "1.2.156.10197.6.1.4.2.1",
            "1.2.156.10197.1.301.1",
        ),
        (
            "rfc5652",
            "1.2.840.113549.1.7.2",
            "1.2.840.113549.1.7.1",
            "1.2.156.10197.1.501",
        ),
    ] {
        let sig = work.join(format!("order-42.{format}.p7s"));
        ca.ok(&[
            "sign",
            "--key",
            s(doc_key),
            "--cert",
            s(doc_cert),
            "--chain",
            s(&issuing),
            "--in",
            s(&document),
            "--out",
            s(&sig),
            "--format",
            format,
            "--timestamp-url",
            &tsa_url,
        ])
        .await;
        let der = std::fs::read(&sig).unwrap();
        let ci = cms::content_info::ContentInfo::from_der(&der).unwrap();
        assert_eq!(ci.content_type.to_string(), outer);
        let (parts, sd) = cms_parts(&format!("CMS {format}"), &der, doc_cert);
        assert_eq!(sd.encap_content_info.econtent_type.to_string(), inner);
        let si = sd.signer_infos.0.iter().next().unwrap();
        assert_eq!(si.digest_alg.oid.to_string(), "1.2.156.10197.1.401", "SM3");
        assert_eq!(si.signature_algorithm.oid.to_string(), sig_alg);
        signed.push(parts);
        // The timestamp token: SM2 over an SM3 imprint, by the SM2 TSA.
        let token = si
            .unsigned_attrs
            .as_ref()
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .values
            .iter()
            .next()
            .unwrap()
            .to_der()
            .unwrap();
        let (token_parts, token_sd) = cms_parts(&format!("timestamp {format}"), &token, &tsa);
        let tst = token_sd
            .encap_content_info
            .econtent
            .as_ref()
            .unwrap()
            .decode_as::<der::asn1::OctetString>()
            .unwrap();
        let tst = x509_tsp::TstInfo::from_der(tst.as_bytes()).unwrap();
        assert_eq!(
            tst.message_imprint.hash_algorithm.oid.to_string(),
            "1.2.156.10197.1.401"
        );
        signed.push(token_parts);
        let (code, out) = common::cli(
            &dir,
            &[
                "verify-signature",
                "--in",
                s(&document),
                "--sig",
                s(&sig),
                "--trust",
                s(&gm_roots),
                "--revocation",
                "hard",
            ],
        )
        .await;
        assert_eq!(code, 0, "verify-signature {format}: {out}");
        assert!(out.contains("timestamp"), "{out}");
        let grpc = client
            .verify_signature(ecca::proto::VerifySignatureRequest {
                signature: der.clone(),
                content: Some(ecca::proto::verify_signature_request::Content::Document(
                    std::fs::read(&document).unwrap(),
                )),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            grpc.valid,
            "gRPC VerifySignature {format}: {:?}",
            grpc.reasons
        );
        // A changed document is refused.
        std::fs::write(work.join("changed.txt"), b"order 42: 30 crates of tea").unwrap();
        let (code, out) = common::cli(
            &dir,
            &[
                "verify-signature",
                "--in",
                s(&work.join("changed.txt")),
                "--sig",
                s(&sig),
                "--trust",
                s(&gm_roots),
            ],
        )
        .await;
        assert_eq!(code, 1, "{out}");
    }

    judge_all(work, &signed).await;
}

/// Remote certification with the national algorithms: region B cross-certifies region A's
/// SM2 root with its own SM2 root, limited to A's names; A's SM2 leaf then verifies at B
/// (`ecca verify-chain --revocation hard`, CRLs and OCSP fetched from both regions and
/// checked with SM2), a name outside A's is refused, and A's revocation is seen at B.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sm2_regions_cross_certified() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let region = |name: &'static str| {
        let dir = work.join(name);
        async move {
            let ca = Ca::start_with(&dir, |c| c.init.organization = format!("{name} EC CA")).await;
            ca.add_gm().await;
            let gm = ca.ok(&["issuer", "show", "gm"]).await;
            let root = ca.ca_pem(&ca_ids(&gm, "root", "active")[0], &dir).await;
            let issuing = ca.ca_pem(&ca_ids(&gm, "issuing", "active")[0], &dir).await;
            (ca, root, issuing)
        }
    };
    let (a, a_root, a_issuing) = region("region-a").await;
    let (b, b_root, _) = region("region-b").await;
    let leaf = |name: &'static str| {
        let (a, work) = (&a, work);
        async move {
            let key = work.join(format!("{name}.key"));
            let csr = work.join(format!("{name}.csr"));
            let pem = work.join(format!("{name}.pem"));
            a.ok(&["keygen", "--alg", "sm2", "--out", s(&key)]).await;
            a.ok(&[
                "csr",
                "--key",
                s(&key),
                "--cn",
                name,
                "--dns",
                name,
                "--out",
                s(&csr),
            ])
            .await;
            let issued = a
                .ok(&[
                    "issue",
                    "--csr",
                    s(&csr),
                    "--profile",
                    "sm2-server-tls",
                    "--out",
                    s(&pem),
                ])
                .await;
            (pem, issued["serial"].as_str().unwrap().to_string())
        }
    };
    let (inside, inside_serial) = leaf("shop.a.example.cn").await;
    let (outside, _) = leaf("shop.b.example.cn").await;

    // B registers A and cross-certifies A's SM2 root with its SM2 root, for A's names.
    b.ok(&[
        "peers",
        "add",
        "--name",
        "region-a",
        "--ca-cert",
        s(&a_root),
    ])
    .await;
    let (code, _, err) = ecca_json(
        &b.dir,
        &[
            "cross-certify",
            "--ca-cert",
            s(&a_root),
            "--peer",
            "region-a",
            "--permitted-dns",
            "a.example.cn",
            "--out",
            s(&work.join("no.pem")),
        ],
    )
    .await;
    assert_eq!(code, 1, "the P-256 root must not certify an SM2 key: {err}");
    assert!(err.contains("e_key_family"), "{err}");
    let cross = work.join("a-by-b.pem");
    b.ok(&[
        "cross-certify",
        "--ca-cert",
        s(&a_root),
        "--peer",
        "region-a",
        "--issuer",
        "gm",
        "--permitted-dns",
        "a.example.cn",
        "--path-len",
        "1",
        "--out",
        s(&cross),
    ])
    .await;
    let (ok, out) = hop(&b_root, &cross).await;
    assert!(
        ok,
        "openssl: the cross-certificate under B's SM2 root: {out}"
    );
    lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[&cross]);
    judge_all(work, &[cert_parts("cross-certificate", &cross, &b_root)]).await;

    let verify = |leaf: PathBuf, name: &'static str| {
        let (b, a_issuing, cross, b_root) = (&b, &a_issuing, &cross, &b_root);
        async move {
            common::cli(
                &b.dir,
                &[
                    "verify-chain",
                    "--leaf",
                    s(&leaf),
                    "--untrusted",
                    s(a_issuing),
                    "--untrusted",
                    s(cross),
                    "--trust",
                    s(b_root),
                    "--purpose",
                    "server",
                    "--dns-name",
                    name,
                    "--revocation",
                    "hard",
                ],
            )
            .await
        }
    };
    let (code, out) = verify(inside.clone(), "shop.a.example.cn").await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("region-a EC CA gm Root CA") && out.contains("region-b EC CA gm Root CA"),
        "{out}"
    );
    let (code, out) = verify(outside, "shop.b.example.cn").await;
    assert_eq!(code, 1, "a name outside A's is refused: {out}");

    // A revokes: B's relying party learns it from A's CRL and OCSP.
    a.client()
        .await
        .revoke(&inside_serial, 1, None)
        .await
        .unwrap();
    let mut last = String::new();
    for _ in 0..100 {
        let (code, out) = verify(inside.clone(), "shop.a.example.cn").await;
        if code == 1 && out.contains("revoked") {
            return;
        }
        last = out;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the revocation was never seen at B:\n{last}");
}

/// `ecca init --national gm` makes the SM2 hierarchy beside the international one: the first
/// start offers the sm2-* profiles and issues under them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_can_make_the_sm2_hierarchy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ecca-data");
    let (code, out) = common::cli(&dir, &["init", "--national", "gm"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("national-algorithm (SM2) hierarchy: gm"),
        "{out}"
    );
    let other = tmp.path().join("other");
    let (code, _, err) = ecca_json(&other, &["init", "--national", "Bad Name"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a-z, 0-9"), "{err}");
    let ca = Ca::start(&dir).await;
    let list = ca.ok(&["issuer", "list"]).await;
    let algorithms: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap(),
                i["algorithm"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(algorithms, [("default", "p256"), ("gm", "sm2")]);
    assert!(
        names(&ca.ok(&["profiles"]).await)
            .iter()
            .any(|n| n == "sm2-merchant-ov")
    );
    let key = tmp.path().join("m.key");
    let csr = tmp.path().join("m.csr");
    ca.ok(&["keygen", "--alg", "sm2", "--out", s(&key)]).await;
    ca.ok(&[
        "csr",
        "--key",
        s(&key),
        "--cn",
        "Example Trading",
        "--org",
        "Example Trading Co., Ltd.",
        "--country",
        "CN",
        "--uscc",
        "91350100M000100Y43",
        "--out",
        s(&csr),
    ])
    .await;
    ca.ok(&[
        "issue",
        "--csr",
        s(&csr),
        "--profile",
        "sm2-merchant-ov",
        "--out",
        s(&tmp.path().join("m.pem")),
    ])
    .await;
}
