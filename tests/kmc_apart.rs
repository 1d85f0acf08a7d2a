//! The key management centre run apart (`ecca-kmc`, its own process and directory), the CA
//! reaching it by `[kmc] url` with a credential it enrolled: dual issuance escrows there and
//! nothing under the CA's directory; with the KMC down, dual issuance is UNAVAILABLE and leaves
//! no signing certificate valid without its pair.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;

/// Kills the KMC when the test ends, however it ends.
struct Kmc(Child);

impl Drop for Kmc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn merchant() -> Vec<u8> {
    let (_, spec) = profile_samples()
        .into_iter()
        .find(|(p, _)| *p == "merchant-ov")
        .unwrap();
    p256_csr(&spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_kmc_escrows_and_its_absence_leaves_no_half_pair() {
    let kmc_bin = env!("CARGO_BIN_EXE_ecca-kmc");
    let tmp = tempfile::tempdir().unwrap();
    let (kmc_dir, creds) = (tmp.path().join("kmc"), tmp.path().join("ca-kmc-client"));
    let enrolled = Command::new(kmc_bin)
        .arg("--data-dir")
        .arg(&kmc_dir)
        .arg("enroll-ca")
        .arg("--out")
        .arg(&creds)
        .output()
        .unwrap();
    assert!(enrolled.status.success(), "{enrolled:?}");
    let mut child = Command::new(kmc_bin)
        .arg("--data-dir")
        .arg(&kmc_dir)
        .args(["--listen", "127.0.0.1:0", "--approvals", "1"])
        .env("ECCA_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let kmc = Kmc(child);
    let url = BufReader::new(stdout)
        .lines()
        .map(|l| l.unwrap())
        .find_map(|l| {
            l.strip_prefix("ecca-kmc: gRPC (mTLS) on ")
                .map(str::to_string)
        })
        .expect("ecca-kmc says where it listens");

    let ca = TestCa::start_with(|c| {
        c.kmc.url = Some(url.clone());
        c.kmc.credentials = Some(creds.clone());
    })
    .await;
    let pair = ca
        .client
        .issue_dual(merchant(), "merchant-ov", None, "")
        .await
        .unwrap();
    let enc = pair.encryption_certificate.unwrap();
    assert_eq!(pair.envelope_type, "EnvelopedData");
    assert!(!ca.data_dir().join("kmc").exists(), "no KMC under the CA");
    let store = ecca::kmc::store::KmcStore::open(&kmc_dir.join("kmc.db")).unwrap();
    let escrow = store
        .escrow_by_serial(&enc.serial)
        .unwrap()
        .expect("escrowed apart");
    assert_eq!(escrow.algorithm, "p256");

    // The KMC goes away: nothing half-issued stays valid.
    drop(kmc);
    let err = ca
        .client
        .issue_dual(merchant(), "merchant-ov", None, "")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ecca::Error::Rejected {
                code: tonic::Code::Unavailable,
                ..
            }
        ),
        "{err}"
    );
    let page = ca
        .client
        .list(ecca::proto::ListCertificatesRequest {
            profile: "merchant-ov".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let valid: Vec<_> = page
        .certificates
        .iter()
        .filter(|c| c.revoked_at.is_none())
        .map(|c| c.serial.clone())
        .collect();
    let first_pair = [pair.signing_certificate.unwrap().serial, enc.serial.clone()];
    assert_eq!(valid.len(), 2, "only the first pair is valid: {valid:?}");
    assert!(valid.iter().all(|s| first_pair.contains(s)), "{valid:?}");
}
