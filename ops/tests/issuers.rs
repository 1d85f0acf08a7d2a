//! Issuers as managed objects: the data directory's hierarchy is recorded as `default` (once,
//! across restarts), listed by `ecca issuer`, named by every profile; a profile naming an
//! issuer the CA lacks stops the server before any key is made. Two hierarchies side by
//! side, rotation under load and root rollover, judged by openssl, pkilint and
//! `ecca verify-chain`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::judges;
use common::*;
use ecca::client::Client;
use ecca::config::ServerConfig;
use serde_json::Value;

async fn refused(config: ServerConfig) -> String {
    match ecca::server::start(config).await {
        Ok(_) => panic!("the server started"),
        Err(e) => e.to_string(),
    }
}

fn pem_fingerprint(path: &Path) -> String {
    let certs = ecca::pemfile::parse_certs(&std::fs::read(path).unwrap()).unwrap();
    ecca::core::fingerprint(&certs[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_issuer_is_recorded_once_and_named_by_every_profile() {
    let openssl = common::tools::tool("openssl");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ecca-data");
    let running = ecca::server::start(ServerConfig::loopback(&dir))
        .await
        .unwrap();

    let (code, list, err) = ecca_json(&dir, &["issuer", "list"]).await;
    assert_eq!(code, 0, "{err}");
    let issuers = list.as_array().unwrap();
    assert_eq!(issuers.len(), 1, "{list}");
    let default = &issuers[0];
    assert_eq!(default["name"], "default");
    assert_eq!(default["algorithm"], "p256");
    let certs = default["certificates"].as_array().unwrap();
    let roles: Vec<&str> = certs.iter().map(|c| c["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["root", "issuing"]);
    assert!(certs.iter().all(|c| c["state"] == "active"), "{list}");
    assert_eq!(
        certs[0]["sha256"],
        pem_fingerprint(&dir.join("ca/root.pem"))
    );
    assert_eq!(
        certs[1]["sha256"],
        pem_fingerprint(&dir.join("ca/issuing.pem"))
    );

    let (code, profiles, err) = ecca_json(&dir, &["profiles"]).await;
    assert_eq!(code, 0, "{err}");
    let profiles = profiles.as_array().unwrap();
    assert!(!profiles.is_empty());
    for p in profiles {
        assert_eq!(p["issuer"], "default", "{p}");
    }

    // show --out writes the hierarchy's certificates; openssl checks the issuing CA against the root.
    let chain = tmp.path().join("default.pem");
    let (code, shown, err) = ecca_json(
        &dir,
        &[
            "issuer",
            "show",
            "default",
            "--out",
            chain.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(shown, *default);
    let ders = ecca::pemfile::parse_certs(&std::fs::read(&chain).unwrap()).unwrap();
    assert_eq!(ders.len(), 2);
    let root = tmp.path().join("root.pem");
    let issuing = tmp.path().join("issuing.pem");
    std::fs::write(&root, ecca::pemfile::certs_to_pem([ders[0].as_slice()])).unwrap();
    std::fs::write(&issuing, ecca::pemfile::certs_to_pem([ders[1].as_slice()])).unwrap();
    let out = Command::new(openssl.expect("openssl is required"))
        .args(["verify", "-CAfile"])
        .arg(&root)
        .arg(&issuing)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, _, err) = ecca_json(&dir, &["issuer", "show", "national"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("NotFound") && err.contains("(known: default)"),
        "{err}"
    );

    // A restart records nothing new: one issuer, one audit entry.
    running.shutdown().await;
    let running = ecca::server::start(ServerConfig::loopback(&dir))
        .await
        .unwrap();
    let (code, again, err) = ecca_json(&dir, &["issuer", "list"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(again, list);
    let (code, audit, err) = ecca_json(&dir, &["audit", "search", "--event", "issuer.added"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_naming_an_unknown_issuer_stops_the_first_start_before_any_key() {
    let tmp = tempfile::tempdir().unwrap();
    let profiles = tmp.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    std::fs::write(
        profiles.join("sm2-tls.toml"),
        r#"description = "TLS under a hierarchy this CA does not have"
issuer = "national"
key_algorithms = ["p256"]
max_validity_days = 397
default_validity_days = 90
key_usages = ["digitalSignature"]
extended_key_usages = ["serverAuth"]
[san]
dns = "optional"
"#,
    )
    .unwrap();
    let dir = tmp.path().join("ecca-data");
    let mut config = ServerConfig::loopback(&dir);
    config.profiles_dir = Some(profiles.clone());
    let text = refused(config).await;
    assert!(
        text.contains("sm2-tls") && text.contains("`issuer`") && text.contains("national"),
        "{text}"
    );
    assert!(
        !dir.join("ca").exists(),
        "a key was made before the refusal"
    );

    // A bad issuer name is a profile error naming the key.
    std::fs::write(
        profiles.join("sm2-tls.toml"),
        std::fs::read_to_string(profiles.join("sm2-tls.toml"))
            .unwrap()
            .replace("\"national\"", "\"Nat ional\""),
    )
    .unwrap();
    let mut config = ServerConfig::loopback(&dir);
    config.profiles_dir = Some(profiles);
    let text = refused(config).await;
    assert!(text.contains("issuer"), "{text}");
}

/// The embedded profiles, plus `server-tls-intl` signing under issuer `intl`, and
/// merchant-ov allowed to pick `intl` as well.
fn profiles_with_intl(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/profiles");
    let out = dir.join("profiles");
    std::fs::create_dir_all(&out).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, out.join(path.file_name().unwrap())).unwrap();
    }
    let line = "issuer = \"default\"";
    let tls = std::fs::read_to_string(src.join("server-tls.toml")).unwrap();
    assert!(tls.contains(line));
    std::fs::write(
        out.join("server-tls-intl.toml"),
        tls.replace(line, "issuer = \"intl\""),
    )
    .unwrap();
    let merchant = std::fs::read_to_string(src.join("merchant-ov.toml")).unwrap();
    std::fs::write(
        out.join("merchant-ov.toml"),
        merchant.replace(line, &format!("{line}\nissuers = [\"intl\"]")),
    )
    .unwrap();
    out
}

/// One server, two hierarchies (P-256 `default`, P-384 `intl`): each profile issues under
/// its own; openssl accepts each leaf against its own root only; pkilint is clean on every
/// CA certificate, leaf and CRL of both; a restart shows the same issuers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hierarchies_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let mut ca = Ca::start(&work.join("ecca-data")).await;

    // Every state change is tried first, or confirmed.
    let dry = ca
        .ok(&[
            "issuer",
            "add",
            "--name",
            "intl",
            "--algorithm",
            "p384",
            "--dry-run",
        ])
        .await;
    assert_eq!(dry["dry_run"], true, "{dry}");
    let list = ca.ok(&["issuer", "list"]).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "a dry run made nothing: {list}"
    );
    let (code, _, err) = ecca_json(
        &ca.dir,
        &["issuer", "add", "--name", "intl", "--algorithm", "p384"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--yes"), "{err}");
    let (code, _, err) = ecca_json(
        &ca.dir,
        &[
            "issuer",
            "add",
            "--name",
            "legacy",
            "--algorithm",
            "rsa3072",
            "--yes",
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("rsa3072") && err.contains("p384"), "{err}");
    let add_intl = [
        "issuer",
        "add",
        "--name",
        "intl",
        "--algorithm",
        "p384",
        "--yes",
    ];
    let added = ca.ok(&add_intl).await;
    assert_eq!(added["added"].as_array().unwrap().len(), 2, "{added}");
    assert_eq!(added["issuer"]["algorithm"], "p384");
    let (code, _, err) = ecca_json(&ca.dir, &add_intl).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already exists"), "{err}");

    // Profiles naming the new hierarchy load on the next start.
    ca.restart(Some(profiles_with_intl(work))).await;
    let profiles = ca.ok(&["profiles"]).await;
    let profile = |name: &str| {
        profiles
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(profile("server-tls-intl")["issuer"], "intl");
    assert_eq!(
        profile("merchant-ov")["issuers"],
        serde_json::json!(["default", "intl"])
    );

    let client = ca.client().await;
    let issue = |profile: &'static str, issuer: &'static str, csr: Vec<u8>| {
        let client = client.clone();
        async move {
            let r = client
                .issue_under(csr, profile, None, issuer)
                .await
                .unwrap();
            (r.certificate.unwrap().der, r.chain_der)
        }
    };
    let p256 = &rcgen::PKCS_ECDSA_P256_SHA256;
    let p384 = &rcgen::PKCS_ECDSA_P384_SHA384;
    let (leaf_d, chain_d) = issue("server-tls", "", tls_csr("shop.example.cn", p256)).await;
    let (leaf_i, chain_i) = issue("server-tls-intl", "", tls_csr("intl.example.cn", p384)).await;
    let merchant_csr = {
        let key = rcgen::KeyPair::generate_for(p256).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "CN");
        dn.push(rcgen::DnType::OrganizationName, "Example Trading Co., Ltd.");
        dn.push(
            rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]),
            rcgen::DnValue::PrintableString("91350100M000100Y43".try_into().unwrap()),
        );
        params.distinguished_name = dn;
        params.serialize_request(&key).unwrap().der().to_vec()
    };
    let (leaf_m, chain_m) = issue("merchant-ov", "intl", merchant_csr.clone()).await;
    assert_eq!(chain_m, chain_i, "the request picked intl");
    let refused = client
        .issue_under(merchant_csr, "server-tls", None, "intl")
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("signs under default only"), "{refused}");

    // Each hierarchy's CA certificates, fetched where certificates point.
    let default = ca.ok(&["issuer", "show", "default"]).await;
    let intl = ca.ok(&["issuer", "show", "intl"]).await;
    let mut cas = Vec::new();
    for (issuer, leaf, chain, name) in [
        (&default, &leaf_d, &chain_d, "default"),
        (&intl, &leaf_i, &chain_i, "intl"),
    ] {
        let root_id = &ca_ids(issuer, "root", "active")[0];
        let issuing_id = &ca_ids(issuer, "issuing", "active")[0];
        let root = ca.ca_pem(root_id, work).await;
        let issuing = ca.ca_pem(issuing_id, work).await;
        assert_eq!(
            std::fs::read(&issuing).unwrap(),
            ecca::pemfile::certs_to_pem([chain[0].as_slice()]).into_bytes()
        );
        let leaf = pem_file(work, &format!("{name}-leaf.pem"), &[leaf]);
        cas.push((
            name,
            root_id.clone(),
            issuing_id.clone(),
            root,
            issuing,
            leaf,
        ));
    }
    let merchant = pem_file(work, "merchant.pem", &[&leaf_m]);
    let [
        (_, _, _, root_d, iss_d, leaf_d),
        (_, _, _, root_i, iss_i, leaf_i),
    ] = &cas[..]
    else {
        unreachable!()
    };
    // openssl: each leaf against its own root only.
    assert!(openssl_verify(root_d, &[iss_d], leaf_d).await.0);
    assert!(openssl_verify(root_i, &[iss_i], leaf_i).await.0);
    assert!(openssl_verify(root_i, &[iss_i], &merchant).await.0);
    let (ok, out) = openssl_verify(root_i, &[iss_d], leaf_d).await;
    assert!(!ok, "a default leaf verified against the intl root: {out}");
    let (ok, out) = openssl_verify(root_d, &[iss_i], leaf_i).await;
    assert!(!ok, "an intl leaf verified against the default root: {out}");
    // ... with its CRL fetched from its own distribution point, and OCSP from its AIA.
    for (_, _, _, root, issuing, leaf) in &cas {
        let (ok, out) = judges::verify_with_crl(root, &[issuing], leaf).await;
        assert!(ok, "{out}");
        let url = format!("http://{}/ocsp", ca.http());
        let status = judges::ocsp_status(&url, issuing, root, leaf).await;
        assert!(
            status.contains(": good") && status.contains("Response verify OK"),
            "{status}"
        );
    }
    let der = pem_der(leaf_i);
    let x = x509_parser::parse_x509_certificate(&der).unwrap().1;
    assert_eq!(
        x.signature_algorithm.algorithm.to_id_string(),
        "1.2.840.10045.4.3.3",
        "ecdsa-with-SHA384"
    );

    // pkilint: every CA certificate, leaf and CRL of both hierarchies.
    for (name, root_id, issuing_id, root, issuing, leaf) in &cas {
        lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[root]);
        lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[issuing]);
        lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[leaf]);
        lint_clean("lint_pkix_signer_signee_cert_chain", &[], &[root, issuing]);
        lint_clean("lint_pkix_signer_signee_cert_chain", &[], &[issuing, leaf]);
        for crl in [
            format!("{root_id}.crl"),
            format!("{issuing_id}.crl"),
            format!("{issuing_id}-delta.crl"),
        ] {
            let path = work.join(format!("{name}-{crl}"));
            std::fs::write(&path, ca.get(&format!("/crl/{crl}")).await).unwrap();
            lint_clean(
                "lint_crl",
                &["-t", "CRL", "-p", "PKIX", "-s", "WARNING"],
                &[&path],
            );
        }
    }
    lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[&merchant]);
    // `ecca crl` by hierarchy and by CA id.
    let by_issuer = work.join("by-issuer.crl");
    ca.ok(&[
        "crl",
        "--issuer",
        "intl",
        "--out",
        by_issuer.to_str().unwrap(),
    ])
    .await;
    let by_id = work.join("by-id.crl");
    ca.ok(&["crl", "--ca", &cas[1].1, "--out", by_id.to_str().unwrap()])
        .await;
    let issuer_of = |path: &Path| {
        let der = std::fs::read(path).unwrap();
        let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
        crl.issuer().as_raw().to_vec()
    };
    let intl_issuing = pem_der(&cas[1].4);
    let intl_issuing = x509_parser::parse_x509_certificate(&intl_issuing)
        .unwrap()
        .1;
    assert_eq!(issuer_of(&by_issuer), intl_issuing.subject().as_raw());
    let intl_root = pem_der(&cas[1].3);
    let intl_root = x509_parser::parse_x509_certificate(&intl_root).unwrap().1;
    assert_eq!(issuer_of(&by_id), intl_root.subject().as_raw());

    // A restart shows the same issuers, and the trust bundle both roots.
    let before = ca.ok(&["issuer", "list"]).await;
    ca.restart(Some(work.join("profiles"))).await;
    assert_eq!(ca.ok(&["issuer", "list"]).await, before);
    let roots = ca.client().await.trust_bundle().await.unwrap().roots_der;
    assert_eq!(roots.len(), 2);
    ca.running.take().unwrap().shutdown().await;
}

/// `ecca issuer rotate` while clients issue continuously over gRPC: no request fails,
/// issuance moves to the new CA, certificates from before and after verify; a revocation of
/// an old certificate shows in the retiring CA's CRL and OCSP, not in the new CA's CRL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_under_load() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let ca = Ca::start(&work.join("ecca-data")).await;
    let client = ca.client().await;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (client, stop, done) = (client.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut issued = Vec::new();
                let mut failed = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let name = format!("w{w}-{i}.example.cn");
                    i += 1;
                    match client
                        .issue(
                            tls_csr(&name, &rcgen::PKCS_ECDSA_P256_SHA256),
                            "server-tls",
                            None,
                        )
                        .await
                    {
                        Ok(r) => issued.push((r.certificate.unwrap(), r.chain_der[0].clone())),
                        Err(e) => failed.push(e.to_string()),
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
                (issued, failed)
            })
        })
        .collect();
    let wait_for = |n: usize| {
        let done = done.clone();
        async move {
            while done.load(Ordering::SeqCst) < n {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(40).await;
    let rotated = ca.ok(&["issuer", "rotate", "default", "--yes"]).await;
    let new_id = rotated["added"][0].as_str().unwrap().to_string();
    assert_eq!(
        rotated["retiring"],
        serde_json::json!(["issuing"]),
        "{rotated}"
    );
    let after = done.load(Ordering::SeqCst);
    wait_for(after + 40).await;
    stop.store(true, Ordering::SeqCst);
    let mut issued = Vec::new();
    for w in workers {
        let (ok, failed) = w.await.unwrap();
        assert!(
            failed.is_empty(),
            "requests failed during the rotation: {failed:?}"
        );
        issued.extend(ok);
    }
    let old_ca = ca.get("/ca/issuing.der").await;
    let new_ca = ca.get(&format!("/ca/{new_id}.der")).await;
    let old: Vec<_> = issued.iter().filter(|(_, c)| *c == old_ca).collect();
    let new: Vec<_> = issued.iter().filter(|(_, c)| *c == new_ca).collect();
    assert_eq!(
        old.len() + new.len(),
        issued.len(),
        "every certificate is under one of the two"
    );
    assert!(
        old.len() >= 40 && new.len() >= 30,
        "old {} new {}",
        old.len(),
        new.len()
    );
    println!(
        "{} issued during the rotation: {} under the old CA, {} under the new",
        issued.len(),
        old.len(),
        new.len()
    );

    let root = ca.ca_pem("root", work).await;
    let old_pem = ca.ca_pem("issuing", work).await;
    let new_pem = ca.ca_pem(&new_id, work).await;
    let old_leaf = pem_file(work, "old.pem", &[&old[0].0.der]);
    let new_leaf = pem_file(work, "new.pem", &[&new[0].0.der]);
    assert!(openssl_verify(&root, &[&old_pem], &old_leaf).await.0);
    assert!(openssl_verify(&root, &[&new_pem], &new_leaf).await.0);
    lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[&new_pem]);
    lint_clean(
        "lint_pkix_signer_signee_cert_chain",
        &[],
        &[&root, &new_pem],
    );

    // Revoking an old certificate: the retiring CA's CRL and OCSP say so; the new CA's CRL
    // does not list it.
    let serial = old[0].0.serial.clone();
    client.revoke(&serial, 1, None).await.unwrap();
    let url = format!("http://{}/ocsp", ca.http());
    let status = judges::ocsp_status(&url, &old_pem, &root, &old_leaf).await;
    assert!(
        status.contains("old.pem: revoked") && status.contains("Response verify OK"),
        "{status}"
    );
    let status = judges::ocsp_status(&url, &new_pem, &root, &new_leaf).await;
    assert!(
        status.contains("new.pem: good") && status.contains("Response verify OK"),
        "{status}"
    );
    let mut listed = false;
    for _ in 0..100 {
        let (ok, out) = judges::verify_with_crl(&root, &[&old_pem], &old_leaf).await;
        if !ok && out.contains("certificate revoked") {
            listed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(listed, "the retiring CA's CRL never listed the revocation");
    assert!(judges::crl_serials(&ca.get("/crl/issuing.crl").await).contains(&serial));
    assert!(!judges::crl_serials(&ca.get(&format!("/crl/{new_id}.crl")).await).contains(&serial));
    let (ok, out) = judges::verify_with_crl(&root, &[&new_pem], &new_leaf).await;
    assert!(ok, "{out}");

    // The retiring CA still answers for unexpired certificates: it cannot retire yet.
    let (code, _, err) = ecca_json(&ca.dir, &["issuer", "retire", "default", "--yes"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unexpired"), "{err}");
}

/// Root rollover: a leaf issued before and one issued after verify against the old root
/// and against the new root (openssl with the link certificates as untrusted, and
/// `ecca verify-chain` with revocation checked), and the trust bundle serves both roots and
/// the links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_rollover_keeps_both_generations_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let mut ca = Ca::start(&work.join("ecca-data")).await;
    let client = ca.client().await;
    let issue = |name: &str| {
        let (client, csr) = (
            client.clone(),
            tls_csr(name, &rcgen::PKCS_ECDSA_P256_SHA256),
        );
        async move {
            let r = client.issue(csr, "server-tls", None).await.unwrap();
            (r.certificate.unwrap().der, r.chain_der)
        }
    };
    let (before, before_chain) = issue("before.example.cn").await;

    let dry = ca
        .ok(&["issuer", "rotate", "default", "--root", "--dry-run"])
        .await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        ca_ids(
            &ca.ok(&["issuer", "show", "default"]).await,
            "root",
            "active"
        ),
        ["root"]
    );
    let rolled = ca
        .ok(&["issuer", "rotate", "default", "--root", "--yes"])
        .await;
    assert_eq!(
        rolled["added"].as_array().unwrap().len(),
        4,
        "root, two links, issuing: {rolled}"
    );
    let shown = &rolled["issuer"];
    let new_root = ca_ids(shown, "root", "active").remove(0);
    assert_eq!(ca_ids(shown, "root", "retiring"), ["root"]);
    assert_eq!(ca_ids(shown, "issuing", "retiring"), ["issuing"]);
    let links = ca_ids(shown, "link", "active");
    assert_eq!(links.len(), 2);
    let (after, after_chain) = issue("after.example.cn").await;
    assert_ne!(after_chain, before_chain);

    let old_root = ca.ca_pem("root", work).await;
    let new_root_pem = ca.ca_pem(&new_root, work).await;
    let mut link_files = Vec::new();
    for l in &links {
        link_files.push(ca.ca_pem(l, work).await);
    }
    let links_pem = cat(work, "links.pem", &[&link_files[0], &link_files[1]]);
    let before_pem = pem_file(work, "before.pem", &[&before]);
    let after_pem = pem_file(work, "after.pem", &[&after]);
    let before_chain = pem_file(work, "before-chain.pem", &[&before_chain[0]]);
    let after_chain = pem_file(work, "after-chain.pem", &[&after_chain[0]]);
    for (leaf, chain) in [(&before_pem, &before_chain), (&after_pem, &after_chain)] {
        for root in [&old_root, &new_root_pem] {
            let (ok, out) = openssl_verify(root, &[chain, &links_pem], leaf).await;
            assert!(
                ok,
                "openssl: {} against {}: {out}",
                leaf.display(),
                root.display()
            );
            let (ok, out) = judges::verify_with_crl(root, &[chain, &links_pem], leaf).await;
            assert!(
                ok,
                "openssl -crl_check: {} against {}: {out}",
                leaf.display(),
                root.display()
            );
            let s = |p: &Path| p.to_str().unwrap().to_string();
            let (code, text) = common::cli(
                &ca.dir,
                &[
                    "verify-chain",
                    "--leaf",
                    &s(leaf),
                    "--untrusted",
                    &s(chain),
                    "--untrusted",
                    &s(&links_pem),
                    "--trust",
                    &s(root),
                    "--revocation",
                    "hard",
                ],
            )
            .await;
            assert_eq!(
                code,
                0,
                "verify-chain {} against {}: {text}",
                leaf.display(),
                root.display()
            );
        }
    }
    // Without the links, the new generation is not valid under the old root.
    assert!(
        !openssl_verify(&old_root, &[&after_chain], &after_pem)
            .await
            .0
    );
    for l in &link_files {
        lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[l]);
    }
    lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[&new_root_pem]);

    // Served to relying parties: both roots, the links, both issuing CAs.
    let bundle = client.trust_bundle().await.unwrap();
    assert_eq!(bundle.roots_der.len(), 2);
    for l in &link_files {
        assert!(bundle.intermediates_der.contains(&pem_der(l)));
    }
    let pem = String::from_utf8(ca.get("/ca/bundle.pem").await).unwrap();
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 6, "{pem}");

    // A restart keeps the generations; issuance stays on the new one.
    let states = ca.ok(&["issuer", "list"]).await;
    ca.restart(None).await;
    assert_eq!(ca.ok(&["issuer", "list"]).await, states);
    let (_, chain) = {
        let client = ca.client().await;
        let r = client
            .issue(
                tls_csr("later.example.cn", &rcgen::PKCS_ECDSA_P256_SHA256),
                "server-tls",
                None,
            )
            .await
            .unwrap();
        (r.certificate.unwrap().der, r.chain_der)
    };
    assert_eq!(chain[0], pem_der(&after_chain));
    // The first root stays: it signs cross-certificates and the credential link.
    let (code, _, err) = ecca_json(
        &ca.dir,
        &["issuer", "retire", "default", "--ca", "root", "--yes"],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    ca.running.take().unwrap().shutdown().await;
}

/// Validity is not cut short by an expiring issuing CA: a request it could not cover rotates
/// it first; the maintenance loop rotates an issuing CA before it runs short of its profiles'
/// longest validity, and retires a retiring CA once nothing it issued is unexpired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_issuing_cas_are_rotated_and_spent_ones_retired() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ecca-data");
    let config = |issuing_days: u32, margin: Option<u32>, profiles: Option<PathBuf>| {
        let mut c = ServerConfig::loopback(&dir);
        c.init.issuing_days = issuing_days;
        c.rotate_margin_days = margin;
        c.profiles_dir = profiles;
        c.audit_checkpoint_every = std::time::Duration::from_millis(300);
        c
    };
    // A 30-day issuing CA, no automatic rotation.
    let running = ecca::server::start(config(30, None, None)).await.unwrap();
    running.shutdown().await;
    let running = ecca::server::start(config(3650, None, None)).await.unwrap();
    let client = Client::connect_data_dir(&dir).await.unwrap();
    let r = client
        .issue(
            tls_csr("long.example.cn", &rcgen::PKCS_ECDSA_P256_SHA256),
            "server-tls",
            Some(90),
        )
        .await
        .unwrap();
    let leaf = x509_parser::parse_x509_certificate(&r.certificate.as_ref().unwrap().der)
        .unwrap()
        .1;
    let validity = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert_eq!(validity, 90 * 86_400, "validity kept whole");
    let default = ecca_json(&dir, &["issuer", "show", "default"]).await.1;
    assert_eq!(
        ca_ids(&default, "issuing", "retiring"),
        ["issuing"],
        "{default}"
    );
    let active = ca_ids(&default, "issuing", "active").remove(0);
    let (code, _, err) = ecca_json(
        &dir,
        &[
            "issuer",
            "add",
            "--name",
            "intl",
            "--algorithm",
            "p256",
            "--yes",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    running.shutdown().await;

    // intl's issuing CA is 10 years: fine for its 397-day profile. With 100-day CAs made
    // from now on, a rotation would gain nothing: nothing happens.
    let tmp_profiles = profiles_with_intl(tmp.path());
    let running = ecca::server::start(config(100, Some(30), Some(tmp_profiles.clone())))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let intl = ecca_json(&dir, &["issuer", "show", "intl"]).await.1;
    assert_eq!(ca_ids(&intl, "issuing", "active").len(), 1);
    let rotated = ecca_json(&dir, &["issuer", "rotate", "intl", "--yes"])
        .await
        .1;
    let short = rotated["added"][0].as_str().unwrap().to_string();
    running.shutdown().await;

    // Now intl's active CA (100 days) cannot cover 397 + 30 days: the maintenance loop
    // rotates it, and retires both old intl CAs (they issued nothing).
    let running = ecca::server::start(config(3650, Some(30), Some(tmp_profiles)))
        .await
        .unwrap();
    let mut intl = Value::Null;
    for _ in 0..100 {
        intl = ecca_json(&dir, &["issuer", "show", "intl"]).await.1;
        if ca_ids(&intl, "issuing", "retired").len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ca_ids(&intl, "issuing", "retired").len(), 2, "{intl}");
    let now_active = ca_ids(&intl, "issuing", "active").remove(0);
    assert_ne!(now_active, short);
    let events = ecca_json(
        &dir,
        &["audit", "search", "--object", "intl", "--actor", "ecca"],
    )
    .await
    .1;
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"issuer.certificates_added") && names.contains(&"issuer.state"),
        "{events}"
    );
    // default's retiring CA still answers for the OCSP responder and the first leaf: kept.
    let default = ecca_json(&dir, &["issuer", "show", "default"]).await.1;
    assert_eq!(ca_ids(&default, "issuing", "retiring"), ["issuing"]);
    assert_eq!(ca_ids(&default, "issuing", "active"), [active]);
    running.shutdown().await;
}
