//! Dual certificates and the key management centre (GM/T 0034), judged from outside: PyPI
//! gmssl opens the SM2EnvelopedKey (tests/python/sm2_envelope_judge.py), `openssl cms
//! -decrypt` opens the ECDH EnvelopedData, OpenSSL and gmssl verify both certificates of a
//! pair; key recovery needs M distinct officers and releases to its requester alone; a copy
//! of the CA's data holds no escrowed key that opens without the KMC master key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::gm::*;
use common::judges::run_blocking;
use common::*;
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const MERCHANT: [&str; 8] = [
    "--cn",
    "Example Trading",
    "--org",
    "Example Trading Co., Ltd.",
    "--country",
    "CN",
    "--uscc",
    "91350100M000100Y43",
];

/// A key of `alg` and a merchant CSR for it, written as NAME.key and NAME.csr.
async fn merchant_csr(ca: &Ca, work: &Path, name: &str, alg: &str) -> (PathBuf, PathBuf) {
    let (key, csr) = (
        work.join(format!("{name}.key")),
        work.join(format!("{name}.csr")),
    );
    ca.ok(&["keygen", "--alg", alg, "--out", s(&key)]).await;
    let mut args = vec!["csr", "--key", s(&key), "--out", s(&csr)];
    args.extend_from_slice(&MERCHANT);
    ca.ok(&args).await;
    (key, csr)
}

/// `ecca issue --dual`: (signing cert, encryption cert, envelope, JSON reply).
async fn dual(
    ca: &Ca,
    work: &Path,
    name: &str,
    csr: &Path,
    profile: &str,
) -> (PathBuf, PathBuf, PathBuf, Value) {
    let sign = work.join(format!("{name}-sign.pem"));
    let enc = work.join(format!("{name}-enc.pem"));
    let env = work.join(format!("{name}.env"));
    let v = ca
        .ok(&[
            "issue",
            "--dual",
            "--csr",
            s(csr),
            "--profile",
            profile,
            "--out",
            s(&sign),
            "--enc-cert-out",
            s(&enc),
            "--envelope-out",
            s(&env),
        ])
        .await;
    (sign, enc, env, v)
}

fn openssl() -> Command {
    Command::new(common::tools::tool("openssl").expect("openssl"))
}

/// The SubjectPublicKeyInfo of a certificate or private key file, as OpenSSL prints it.
async fn public_key(path: &Path, of_cert: bool) -> String {
    let mut cmd = openssl();
    if of_cert {
        cmd.args(["x509", "-noout", "-pubkey", "-in"]).arg(path);
    } else {
        cmd.args(["pkey", "-pubout", "-in"]).arg(path);
    }
    let (ok, out) = run_blocking(cmd).await;
    assert!(ok, "{out}");
    out
}

fn key_usages(cert: &Path) -> (Vec<String>, Vec<String>) {
    let der = pem_der(cert);
    let (_, x) = x509_parser::parse_x509_certificate(&der).unwrap();
    let ku = x.key_usage().unwrap().unwrap().value;
    let mut names = Vec::new();
    for (on, name) in [
        (ku.digital_signature(), "digitalSignature"),
        (ku.non_repudiation(), "contentCommitment"),
        (ku.key_encipherment(), "keyEncipherment"),
        (ku.data_encipherment(), "dataEncipherment"),
        (ku.key_agreement(), "keyAgreement"),
    ] {
        if on {
            names.push(name.to_string());
        }
    }
    let subject = x.subject().to_string();
    (names, vec![subject])
}

async fn revocation(ca: &Ca, serial: &str) -> String {
    let v = ca.ok(&["show", "--serial", serial]).await;
    format!("{} {}", v["status"], v["revocation_reason"])
}

/// SM2: the pair verified by OpenSSL and gmssl, the SM2EnvelopedKey opened by gmssl with the
/// signing key; recovery under dual control, judicial case recorded, both audit logs intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sm2_pair_envelope_opened_by_gmssl_and_recovered_under_dual_control() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let ca = Ca::start(&work.join("ecca-data")).await;
    let dir = ca.dir.clone();
    ca.add_gm().await;
    let profiles = ca.ok(&["profiles"]).await;
    let dual_of = |name: &str| {
        profiles
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} offered"))["dual"]
            .clone()
    };
    assert_eq!(dual_of("sm2-merchant-ov"), true);
    assert_eq!(dual_of("merchant-ov"), true);
    assert_eq!(dual_of("server-tls"), false);

    let (sign_key, csr) = merchant_csr(&ca, work, "m", "sm2").await;
    let (sign, enc, env, v) = dual(&ca, work, "m", &csr, "sm2-merchant-ov").await;
    assert_eq!(v["envelope_type"], "SM2EnvelopedKey");
    assert_eq!(v["signing"]["subject"], v["encryption"]["subject"]);
    let enc_serial = v["encryption"]["serial"].as_str().unwrap().to_string();
    let sign_serial = v["signing"]["serial"].as_str().unwrap().to_string();
    let (sign_ku, sign_subject) = key_usages(&sign);
    let (enc_ku, enc_subject) = key_usages(&enc);
    assert_eq!(sign_ku, ["digitalSignature", "contentCommitment"]);
    assert_eq!(
        enc_ku,
        ["keyEncipherment", "dataEncipherment", "keyAgreement"]
    );
    assert_eq!(sign_subject, enc_subject);

    // gmssl opens the envelope with the signing key; the key is the encryption certificate's.
    let (opened, out) = envelope_judge(&env, &sign_key, &point_of(&enc)).await;
    assert!(
        opened && out.contains("SM2EnvelopedKey opened by gmssl"),
        "{out}"
    );
    // ... and the judge can refuse: another key does not open it.
    let (other, _) = merchant_csr(&ca, work, "other", "sm2").await;
    let (opened, out) = envelope_judge(&env, &other, &point_of(&enc)).await;
    assert!(!opened, "{out}");

    // Both certificates, as the SM2 hierarchy's: OpenSSL hop by hop, gmssl on the signatures.
    let gm = ca.ok(&["issuer", "show", "gm"]).await;
    let issuing = ca
        .ca_pem(&ca_ids(&gm, "issuing", "active").remove(0), work)
        .await;
    for cert in [&sign, &enc] {
        let (ok, out) = hop(&issuing, cert).await;
        assert!(ok, "openssl verify {cert:?}: {out}");
    }
    judge_all(
        work,
        &[
            cert_parts("signing certificate", &sign, &issuing),
            cert_parts("encryption certificate", &enc, &issuing),
        ],
    )
    .await;

    // ecca keys open: the same key, 0600.
    let enc_key = work.join("m-enc.key");
    ca.ok(&[
        "keys",
        "open",
        "--envelope",
        s(&env),
        "--key",
        s(&sign_key),
        "--out",
        s(&enc_key),
    ])
    .await;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&enc_key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        public_key(&enc_key, false).await,
        public_key(&enc, true).await
    );

    // Recovery: the admin asks for the key to be enveloped to a certificate whose key it holds.
    let (agent_key, agent_csr) = merchant_csr(&ca, work, "agent", "sm2").await;
    let agent = work.join("agent.pem");
    ca.ok(&[
        "issue",
        "--csr",
        s(&agent_csr),
        "--profile",
        "sm2-merchant-ov",
        "--out",
        s(&agent),
    ])
    .await;
    for officer in ["alice", "bob", "carol"] {
        ca.ok(&[
            "kmc",
            "officer",
            "add",
            officer,
            "--out",
            s(&work.join(officer)),
        ])
        .await;
    }
    // Only encryption certificates of pairs are escrowed; only this CA's certificates receive.
    let (code, _, err) = ecca_json(
        &dir,
        &[
            "kmc",
            "recover",
            "--serial",
            &sign_serial,
            "--reason",
            "x",
            "--to",
            s(&agent),
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    let foreign = pem_file(work, "foreign.pem", &[&tls_cert_of_another_ca()]);
    let (code, _, err) = ecca_json(
        &dir,
        &[
            "kmc",
            "recover",
            "--serial",
            &enc_serial,
            "--reason",
            "x",
            "--to",
            s(&foreign),
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a certificate this CA issued"), "{err}");

    let r = ca
        .ok(&[
            "kmc",
            "recover",
            "--serial",
            &enc_serial,
            "--reason",
            "court order",
            "--case",
            "(2026) Min 01 Xing Chu 123",
            "--to",
            s(&agent),
        ])
        .await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["state"], "pending");
    assert_eq!(r["required"], 2);
    assert_eq!(r["case_reference"], "(2026) Min 01 Xing Chu 123");
    let fetched = work.join("recovered.env");
    let fetch = |out: PathBuf| {
        let (dir, id) = (dir.clone(), id.clone());
        async move { ecca_json(&dir, &["kmc", "fetch", &id, "--out", s(&out)]).await }
    };
    let approve = |who: PathBuf| {
        let (dir, id) = (dir.clone(), id.clone());
        async move { ecca_json(&dir, &["kmc", "approve", &id, "--officer", s(&who)]).await }
    };

    // Nothing before approval, nor after one.
    let (code, _, err) = fetch(fetched.clone()).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("nothing is released"), "{err}");
    let (code, v, err) = approve(work.join("alice")).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["state"], "pending");
    let (code, _, err) = fetch(fetched.clone()).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("1 of 2 approvals"), "{err}");
    assert!(!fetched.exists());
    // One officer counts once; a CA's credential and the admin's are not officers.
    let (code, _, err) = approve(work.join("alice")).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("approved recovery") && err.contains("already"),
        "{err}"
    );
    let (code, _, err) = approve(dir.join("kmc-client")).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("only recovery officers"), "{err}");
    let (code, _, err) = approve(dir.join("admin")).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a credential of this KMC"), "{err}");
    // An auditor may list recoveries but not fetch one.
    let auditor = work.join("auditor");
    ca.ok(&["auditor", "add", "regulator", "--out", s(&auditor)])
        .await;
    let grpc = ecca::client::Client::data_dir_url(&dir).unwrap();
    let as_auditor = |args: Vec<String>| {
        let (grpc, auditor) = (grpc.clone(), auditor.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_ecca"))
                .args(["--server", &grpc, "--credentials", s(&auditor), "--json"])
                .args(&args)
                .output()
                .unwrap()
        })
    };
    let listed = as_auditor(vec!["kmc".into(), "list".into()]).await.unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let denied = as_auditor(vec![
        "kmc".into(),
        "fetch".into(),
        id.clone(),
        "--out".into(),
        s(&fetched).into(),
    ])
    .await
    .unwrap();
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("permission denied"));

    // The second officer: released, to the requester, enveloped to the agent's key.
    let (code, v, err) = approve(work.join("bob")).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["state"], "approved");
    let (code, v, err) = fetch(fetched.clone()).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["envelope_type"], "SM2EnvelopedKey");
    let (opened, out) = envelope_judge(&fetched, &agent_key, &point_of(&enc)).await;
    assert!(opened, "{out}");
    let (opened, out) = envelope_judge(&fetched, &sign_key, &point_of(&enc)).await;
    assert!(!opened, "released to the agent alone: {out}");
    // Once.
    let (code, _, err) = fetch(work.join("again.env")).await;
    assert_eq!(code, 1, "{err}");

    // Both logs verify and tell the story.
    let v = ca.ok(&["audit", "verify"]).await;
    assert_eq!(v["intact"], true, "{v}");
    let v = ca.ok(&["kmc", "audit", "verify"]).await;
    assert_eq!(v["intact"], true, "{v}");
    assert!(v["entries"].as_u64().unwrap() >= 8, "{v}");
    let (_, log) = cli(&dir, &["audit", "search", "--object", &id]).await;
    for event in [
        "kmc.recovery.requested",
        "kmc.recovery.refused",
        "kmc.recovery.released",
    ] {
        assert!(log.contains(event), "{event} in\n{log}");
    }

    // Revoking one of a pair revokes both.
    ca.ok(&[
        "revoke",
        "--serial",
        &sign_serial,
        "--reason",
        "keyCompromise",
    ])
    .await;
    assert_eq!(
        revocation(&ca, &enc_serial).await,
        "\"revoked\" \"superseded\""
    );
}

/// A certificate no ecca CA issued (a self-signed one).
fn tls_cert_of_another_ca() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["elsewhere.example".to_string()]).unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

/// ECDSA: `openssl cms -decrypt` opens the EnvelopedData with the signing key, the key matches
/// the encryption certificate, pkilint finds both certificates clean; bad input is refused
/// plainly; a copy of the CA's data directory holds no escrowed key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_pair_opens_with_openssl_and_the_ca_copy_yields_no_key() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let ca = Ca::start(&work.join("ecca-data")).await;
    let dir = ca.dir.clone();
    let (sign_key, csr) = merchant_csr(&ca, work, "m", "p256").await;
    let (sign, enc, env, v) = dual(&ca, work, "m", &csr, "merchant-ov").await;
    assert_eq!(v["envelope_type"], "EnvelopedData");
    assert_eq!(key_usages(&enc).0, ["keyAgreement"]);
    assert_eq!(
        key_usages(&sign).0,
        ["digitalSignature", "contentCommitment"]
    );

    let opened = work.join("opened.der");
    let mut cmd = openssl();
    cmd.args(["cms", "-decrypt", "-inform", "DER", "-in"])
        .arg(&env)
        .arg("-recip")
        .arg(&sign)
        .arg("-inkey")
        .arg(&sign_key)
        .arg("-out")
        .arg(&opened);
    let (ok, out) = run_blocking(cmd).await;
    assert!(ok, "openssl cms -decrypt: {out}");
    let opened_pem = work.join("opened.pem");
    let mut cmd = openssl();
    cmd.args(["pkey", "-inform", "DER", "-in"])
        .arg(&opened)
        .arg("-out")
        .arg(&opened_pem);
    let (ok, out) = run_blocking(cmd).await;
    assert!(ok, "{out}");
    assert_eq!(
        public_key(&opened_pem, false).await,
        public_key(&enc, true).await
    );
    let enc_key = work.join("m-enc.key");
    ca.ok(&[
        "keys",
        "open",
        "--envelope",
        s(&env),
        "--key",
        s(&sign_key),
        "--out",
        s(&enc_key),
    ])
    .await;
    assert_eq!(
        public_key(&enc_key, false).await,
        public_key(&enc, true).await
    );

    // Outside judges of both certificates.
    let issuing_id = ca_ids(
        &ca.ok(&["issuer", "show", "default"]).await,
        "issuing",
        "active",
    )
    .remove(0);
    let root_id = ca_ids(
        &ca.ok(&["issuer", "show", "default"]).await,
        "root",
        "active",
    )
    .remove(0);
    let (issuing, root) = (
        ca.ca_pem(&issuing_id, work).await,
        ca.ca_pem(&root_id, work).await,
    );
    for cert in [&sign, &enc] {
        let (ok, out) = openssl_verify(&root, &[&issuing], cert).await;
        assert!(ok, "{out}");
        lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[cert]);
        lint_clean("lint_pkix_signer_signee_cert_chain", &[], &[&issuing, cert]);
    }

    // Bad input: clear errors, nothing written.
    let garbage = work.join("garbage.env");
    std::fs::write(&garbage, b"not an envelope").unwrap();
    let (wrong, _) = merchant_csr(&ca, work, "wrong", "p256").await;
    let (sm2, _) = merchant_csr(&ca, work, "sm2", "sm2").await;
    let refused: [(&Path, &Path, &[&str]); 3] = [
        (&garbage, &sign_key, &["neither an SM2EnvelopedKey"]),
        (&env, &wrong, &["not addressed to this key"]),
        (&env, &sm2, &["EnvelopedData", "SM2"]),
    ];
    for (envelope, key, says) in refused {
        let x = work.join("x.key");
        let (code, _, err) = ecca_json(
            &dir,
            &[
                "keys",
                "open",
                "--envelope",
                s(envelope),
                "--key",
                s(key),
                "--out",
                s(&x),
            ],
        )
        .await;
        assert_eq!(code, 2, "{err}");
        assert!(says.iter().any(|w| err.contains(w)), "{says:?} in {err}");
    }
    assert!(!work.join("x.key").exists());
    // Dual only where the profile allows it, and only for keys an envelope can address.
    let server_key = work.join("srv.key");
    let server_csr = work.join("srv.csr");
    ca.ok(&["keygen", "--out", s(&server_key)]).await;
    ca.ok(&[
        "csr",
        "--key",
        s(&server_key),
        "--cn",
        "shop.example",
        "--dns",
        "shop.example",
        "--out",
        s(&server_csr),
    ])
    .await;
    let out = |n: &str| work.join(n).to_str().unwrap().to_string();
    let (code, _, err) = ecca_json(
        &dir,
        &[
            "issue",
            "--dual",
            "--csr",
            s(&server_csr),
            "--profile",
            "server-tls",
            "--out",
            &out("a"),
            "--enc-cert-out",
            &out("b"),
            "--envelope-out",
            &out("c"),
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not allow dual certificates"), "{err}");
    let rsa_key = work.join("rsa.key");
    let rsa_csr = work.join("rsa.csr");
    let mut cmd = openssl();
    cmd.args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(&rsa_key)
        .args([
            "-subj",
            "/C=CN/O=Example Trading Co./serialNumber=91350100M000100Y43/CN=Example Trading",
            "-outform",
            "DER",
            "-out",
        ])
        .arg(&rsa_csr);
    let (ok, o) = run_blocking(cmd).await;
    assert!(ok, "{o}");
    let (code, _, err) = ecca_json(
        &dir,
        &[
            "issue",
            "--dual",
            "--csr",
            s(&rsa_csr),
            "--profile",
            "merchant-ov",
            "--out",
            &out("a"),
            "--enc-cert-out",
            &out("b"),
            "--envelope-out",
            &out("c"),
        ],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("SM2, P-256 or P-384 signing key"), "{err}");

    // The attacker's copy of the data directory: every file but the KMC's master key (the CA's
    // database and keys, and the KMC's store). The escrowed key appears in no form (raw scalar,
    // hex, PKCS#8 DER or its base64); the KMC's store holds it sealed, tried below.
    let secret = pkcs8_der(&enc_key);
    let scalar = p256_scalar(&secret);
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("scalar", scalar.clone()),
        ("scalar hex", hex::encode(&scalar).into_bytes()),
        ("scalar HEX", hex::encode_upper(&scalar).into_bytes()),
        ("PKCS#8", secret.clone()),
        ("PKCS#8 base64", base64_head(&secret)),
    ];
    let mut files = Vec::new();
    walk(&dir, &mut files);
    let kmc_dir = dir.join("kmc");
    files.retain(|f| *f != kmc_dir.join("master.key"));
    for must in ["ecca.db", "kmc/kmc.db", "ca/issuing.key"] {
        assert!(files.contains(&dir.join(must)), "{must} was searched");
    }
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        for (what, needle) in &needles {
            assert!(
                !contains(&bytes, needle),
                "{what} of the escrowed key in {f:?}"
            );
        }
    }
    let stolen = work.join("stolen");
    std::fs::create_dir(&stolen).unwrap();
    std::fs::copy(kmc_dir.join("kmc.db"), stolen.join("kmc.db")).unwrap();
    for ext in ["kmc.db-wal", "kmc.db-shm"] {
        if kmc_dir.join(ext).exists() {
            std::fs::copy(kmc_dir.join(ext), stolen.join(ext)).unwrap();
        }
    }
    let store = ecca::kmc::store::KmcStore::open(&stolen.join("kmc.db")).unwrap();
    let guessed = ecca::kmc::vault::MasterKey::open_or_create(&stolen.join("master.key")).unwrap();
    let enc_serial = v["encryption"]["serial"].as_str().unwrap();
    let escrow = store
        .escrow_by_serial(enc_serial)
        .unwrap()
        .expect("escrowed");
    assert!(
        guessed.open(&escrow.id, &escrow.sealed).is_err(),
        "a guessed master key opened escrow {}",
        escrow.id
    );
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn pkcs8_der(pem_path: &Path) -> Vec<u8> {
    let text = std::fs::read(pem_path).unwrap();
    pem::parse(text).unwrap().into_contents()
}

/// The private scalar of a P-256 PKCS#8 key.
fn p256_scalar(pkcs8: &[u8]) -> Vec<u8> {
    use p256::pkcs8::DecodePrivateKey;
    p256::SecretKey::from_pkcs8_der(pkcs8)
        .unwrap()
        .to_bytes()
        .to_vec()
}

/// The first line of the key's PEM body: what a text dump of it would contain.
fn base64_head(der: &[u8]) -> Vec<u8> {
    let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.to_vec()));
    pem.lines().nth(1).unwrap().as_bytes().to_vec()
}
