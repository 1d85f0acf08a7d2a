//! CA keys in a PKCS#11 token (SoftHSM2 in a throwaway token directory): the CA is created with
//! its keys (root, issuing, OCSP, TSA) in the token, issues certificates and OCSP responses
//! openssl verifies, restarts from the token, rotates its issuing CA to a new key in the
//! token, keeps the keys sensitive and non-extractable, and survives a lost login.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use ecca::config::Pkcs11Section;
use ecca::signer::Signer;
use ecca::signer::pkcs11::{Pkcs11Key, Token, uri_object};

const TOKEN: &str = "ecca-test";
const PIN: &str = "472913";

/// The SoftHSM2 module, where Debian installs it.
fn softhsm_module() -> Option<PathBuf> {
    let found = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file());
    if found.is_none() {
        return common::missing("SoftHSM2 (libsofthsm2.so)", "apt install softhsm2");
    }
    found
}

/// A fresh SoftHSM2 token directory with one initialized token; returns the config file.
fn init_token(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let util = tool("softhsm2-util").expect("softhsm2-util next to libsofthsm2.so");
    let (ok, out) = run(Command::new(util).env("SOFTHSM2_CONF", &conf).args([
        "--init-token",
        "--free",
        "--label",
        TOKEN,
        "--pin",
        PIN,
        "--so-pin",
        "5847201",
    ]));
    assert!(ok, "softhsm2-util --init-token: {out}");
    std::fs::write(dir.join("pin"), format!("{PIN}\n")).unwrap();
    conf
}

/// SoftHSM2 reads SOFTHSM2_CONF when the module loads, and this crate forbids `unsafe`
/// (so no set_var): the outer test makes a token and runs the real test in a child process
/// of this binary with the variable set.
#[test]
fn ca_keys_in_softhsm() {
    if softhsm_module().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = init_token(dir.path());
    let (ok, out) = run(Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "hsm_child", "--nocapture"])
        .env("SOFTHSM2_CONF", conf)
        .env("ECCA_HSM_TEST_DIR", dir.path()));
    assert!(ok && out.contains("1 passed"), "child test failed:\n{out}");
    if let Some(line) = out.lines().find(|l| l.contains("signatures/s")) {
        eprintln!("{line}");
    }
}

async fn issue_and_verify(ca: &TestCa, cn: &str) {
    let (roots, chain) = ca.trust_files().await;
    let resp = ca
        .client
        .issue(p256_csr(&CsrSpec::cn(cn).dns(cn)), "server-tls", None)
        .await
        .expect("issues with the HSM key");
    let leaf = ca.write_pem(&format!("{cn}.pem"), &resp.certificate.unwrap().der);
    if let Some((ok, out)) = openssl_verify(&roots, &chain, &leaf, &["-purpose", "sslserver"]) {
        assert!(ok && out.contains("OK"), "openssl verify: {out}");
    }
    // The OCSP responder's key is in the token too; openssl checks its response.
    let Some(openssl) = tool("openssl") else {
        return;
    };
    let mut cmd = Command::new(openssl);
    cmd.args(["ocsp", "-issuer"])
        .arg(&chain)
        .arg("-cert")
        .arg(&leaf)
        .args(["-url", &format!("{}/ocsp", ca.http_base()), "-CAfile"])
        .arg(&roots);
    let (ok, out) = tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap();
    assert!(
        ok && out.contains("Response verify OK") && out.contains(": good"),
        "openssl ocsp: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by ca_keys_in_softhsm with SOFTHSM2_CONF set"]
async fn hsm_child() {
    let (Some(module), Some(hsm_dir)) = (softhsm_module(), std::env::var_os("ECCA_HSM_TEST_DIR"))
    else {
        panic!("run through ca_keys_in_softhsm, which prepares the token");
    };
    let section = Pkcs11Section {
        module,
        token_label: TOKEN.into(),
        pin_file: Some(Path::new(&hsm_dir).join("pin")),
    };

    let mut ca = {
        let section = section.clone();
        TestCa::start_with(move |c| c.pkcs11 = Some(section)).await
    };
    issue_and_verify(&ca, "hsm-1.example.cn").await;

    // The data directory holds URIs, not keys; the keys in the token are locked down.
    let layout = ecca::layout::Layout::new(&ca.data_dir());
    let cfg = section.resolve().unwrap();
    let token = Token::open(&cfg).unwrap();
    for path in [
        layout.root_key(),
        layout.issuing_key(),
        layout.ocsp_key(),
        layout.tsa_key(),
    ] {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("pkcs11:token=ecca-test;object=ecca-"),
            "{text}"
        );
        let key = Pkcs11Key::open(token.clone(), &uri_object(&text).unwrap()).unwrap();
        assert_eq!(
            key.protection().unwrap(),
            (true, false),
            "{}: sensitive, not extractable",
            path.display()
        );
    }

    // A restart finds the keys in the token again.
    ca.running.take().unwrap().shutdown().await;
    let dir = ca.data_dir();
    let restarted = {
        let section = section.clone();
        let mut config = ecca::config::ServerConfig::loopback(&dir);
        config.pkcs11 = Some(section);
        ecca::server::start(config)
            .await
            .expect("restarts on the token")
    };
    ca.running = Some(restarted);
    ca.client = ecca::client::Client::connect_data_dir(&dir).await.unwrap();
    issue_and_verify(&ca, "hsm-2.example.cn").await;

    // A rotation makes the new issuing CA's key in the token too; it issues and answers OCSP.
    let change = ca
        .client
        .rotate_issuer("default", false, false)
        .await
        .unwrap();
    let id = &change.added[0];
    let text = std::fs::read_to_string(dir.join(format!("ca/issuers/default/{id}.key"))).unwrap();
    assert!(
        text.starts_with("pkcs11:token=ecca-test;object=ecca-default-issuing-"),
        "{text}"
    );
    let rotated = Pkcs11Key::open(token.clone(), &uri_object(&text).unwrap()).unwrap();
    assert_eq!(rotated.protection().unwrap(), (true, false));
    issue_and_verify(&ca, "hsm-3.example.cn").await;

    // A lost login (HSM reset, failover) costs one retry, not a failed signature.
    let text = std::fs::read_to_string(layout.issuing_key()).unwrap();
    let key = Pkcs11Key::open(token.clone(), &uri_object(&text).unwrap()).unwrap();
    key.sign(b"before").unwrap();
    token.logout().unwrap();
    let sig = key.sign(b"after").expect("retried on a new session");
    let spki = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        key.public_key_raw(),
    );
    spki.verify(b"after", &sig)
        .expect("the retried signature verifies");

    // Report (never assert) token signing speed next to a software key, in this one run.
    let soft = ecca::signer::SoftwareKey::generate(ecca::core::keys::CaKeyAlg::P256).unwrap();
    let rate = |k: &dyn Signer| {
        let t = std::time::Instant::now();
        for i in 0..500u32 {
            k.sign(&i.to_be_bytes()).unwrap();
        }
        500.0 / t.elapsed().as_secs_f64()
    };
    let (hsm_rate, soft_rate) = (rate(&key), rate(&soft));
    eprintln!(
        "P-256 signatures/s, one thread: SoftHSM2 {hsm_rate:.0}, software {soft_rate:.0} (ratio {:.2})",
        hsm_rate / soft_rate
    );

    // Without the token configured, the CA refuses to start and says what is missing.
    let err = ecca::authority::Authority::load(&layout, "http://127.0.0.1:1", None).unwrap_err();
    assert!(err.to_string().contains("[pkcs11]"), "{err}");
}
