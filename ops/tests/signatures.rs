//! Document signatures: `ecca sign` and `ecca verify-signature` against openssl cms, the RFC 3161
//! TSA against openssl ts, timestamps keeping revoked signers' old signatures valid, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use ecca::client::Client;
use ecca::config::ServerConfig;

struct Ca {
    dir: PathBuf,
    work: PathBuf,
    http: String,
    client: Client,
    _running: ecca::server::Running,
    _tmp: tempfile::TempDir,
}

async fn ca() -> Ca {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let c = ServerConfig::loopback(&dir);
    let running = ecca::server::start(c).await.unwrap();
    let http = format!("http://{}", running.endpoints.http);
    let client = Client::connect_data_dir(&dir).await.unwrap();
    let work = tmp.path().to_path_buf();
    Ca {
        dir,
        work,
        http,
        client,
        _running: running,
        _tmp: tmp,
    }
}

/// Runs `ecca ARGS` in the work folder (off the runtime), returning (exit code, output).
async fn ecca(ca: &Ca, args: &[&str]) -> (i32, String) {
    common::cli_in(&ca.dir, Some(&ca.work), args).await
}

/// `ecca verify-signature --in DOC --sig SIG --trust roots.pem [extra]`.
async fn verify_sig(ca: &Ca, doc: &str, sig: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec![
        "verify-signature",
        "--in",
        doc,
        "--sig",
        sig,
        "--trust",
        "roots.pem",
    ];
    args.extend_from_slice(extra);
    ecca(ca, &args).await
}

async fn ok(ca: &Ca, args: &[&str]) -> String {
    let (code, out) = ecca(ca, args).await;
    assert_eq!(code, 0, "ecca {args:?}: {out}");
    out
}

/// Runs openssl in the work folder; None when openssl is absent and not required.
async fn openssl(ca: &Ca, args: &[&str]) -> Option<(bool, String)> {
    let bin = common::tools::tool("openssl")?;
    let work = ca.work.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    Some(
        tokio::task::spawn_blocking(move || {
            let out = Command::new(bin)
                .args(&args)
                .current_dir(work)
                .output()
                .unwrap();
            (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        })
        .await
        .unwrap(),
    )
}

/// A document-signing key and certificate for `name`, in the work folder; returns its serial.
async fn signer(ca: &Ca, name: &str) -> String {
    ok(ca, &["keygen", "--out", &format!("{name}.key")]).await;
    ok(
        ca,
        &[
            "csr",
            "--key",
            &format!("{name}.key"),
            "--cn",
            name,
            "--email",
            &format!("{name}@shop.example.cn"),
            "--out",
            &format!("{name}.csr"),
        ],
    )
    .await;
    let out = ok(
        ca,
        &[
            "--json",
            "issue",
            "--csr",
            &format!("{name}.csr"),
            "--profile",
            "document-signing",
            "--out",
            &format!("{name}.pem"),
            "--chain-out",
            "chain.pem",
        ],
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    ok(ca, &["roots", "--out", "roots.pem"]).await;
    v["serial"].as_str().unwrap().to_string()
}

/// `ecca sign` with `name`'s key and certificate and the chain; timestamped when `tsa` is set.
async fn sign(ca: &Ca, name: &str, doc: &str, out: &str, tsa: Option<&str>) -> String {
    let (key, cert) = (format!("{name}.key"), format!("{name}.pem"));
    let mut args = vec![
        "sign",
        "--key",
        &key,
        "--cert",
        &cert,
        "--chain",
        "chain.pem",
        "--in",
        doc,
        "--out",
        out,
    ];
    if let Some(url) = tsa {
        args.extend(["--timestamp-url", url]);
    }
    ok(ca, &args).await
}

fn write(ca: &Ca, name: &str, data: &[u8]) -> PathBuf {
    let p = ca.work.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecca_and_openssl_accept_each_others_signatures() {
    let ca = ca().await;
    signer(&ca, "alice").await;
    write(&ca, "order.txt", b"order 42: 3 widgets, CNY 129.00\n");
    let tsa = format!("{}/tsa", ca.http);
    let out = sign(&ca, "alice", "order.txt", "order.p7s", Some(&tsa)).await;
    assert!(out.contains("timestamp:"), "{out}");
    let verify = [
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "order.p7s",
        "-content",
        "order.txt",
        "-CAfile",
        "roots.pem",
        "-purpose",
        "any",
        "-out",
        "/dev/null",
    ];
    if let Some((ok_, text)) = openssl(&ca, &verify).await {
        assert!(ok_ && text.contains("Verification successful"), "{text}");
        write(&ca, "order.txt", b"order 42: 300 widgets, CNY 129.00\n");
        let (ok_, text) = openssl(&ca, &verify).await.unwrap();
        assert!(!ok_, "a changed document must fail: {text}");
        let (code, out) = verify_sig(&ca, "order.txt", "order.p7s", &[]).await;
        assert!(
            code == 1 && out.contains("message digest mismatch"),
            "{out}"
        );
        write(&ca, "order.txt", b"order 42: 3 widgets, CNY 129.00\n");

        // The timestamp token inside verifies with openssl ts too (it covers the signature value).
        let signed =
            ecca::core::cms::signed_data(&std::fs::read(ca.work.join("order.p7s")).unwrap())
                .unwrap();
        let signature = ecca::core::cms::first_signature(&signed).unwrap();
        let digest = hex::encode(ecca::core::cms::DigestAlg::Sha256.digest(&signature));
        let token = signed
            .signer_infos
            .0
            .iter()
            .next()
            .unwrap()
            .unsigned_attrs
            .as_ref()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        let token_der = der::Encode::to_der(token.values.iter().next().unwrap()).unwrap();
        write(&ca, "token.der", &token_der);
        let (ok_, text) = openssl(
            &ca,
            &[
                "ts",
                "-verify",
                "-digest",
                &digest,
                "-in",
                "token.der",
                "-token_in",
                "-CAfile",
                "roots.pem",
                "-untrusted",
                "chain.pem",
            ],
        )
        .await
        .unwrap();
        assert!(ok_ && text.contains("Verification: OK"), "{text}");

        // openssl's own signature (with an ecca-issued certificate) verifies with ecca.
        openssl(
            &ca,
            &[
                "cms",
                "-sign",
                "-binary",
                "-in",
                "order.txt",
                "-signer",
                "alice.pem",
                "-inkey",
                "alice.key",
                "-certfile",
                "chain.pem",
                "-outform",
                "DER",
                "-out",
                "openssl.p7s",
            ],
        )
        .await
        .unwrap();
        let out = ok(
            &ca,
            &[
                "verify-signature",
                "--in",
                "order.txt",
                "--sig",
                "openssl.p7s",
                "--trust",
                "roots.pem",
                "--revocation",
                "hard",
            ],
        )
        .await;
        assert!(
            out.starts_with("valid") && out.contains("CN=alice"),
            "{out}"
        );
    }
    let out = ok(
        &ca,
        &[
            "--json",
            "verify-signature",
            "--in",
            "order.txt",
            "--sig",
            "order.p7s",
            "--trust",
            "roots.pem",
            "--revocation",
            "hard",
        ],
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert!(
        v["timestamp_time"].is_string() && v["signing_time"].is_string(),
        "{v}"
    );
    assert_eq!(v["path"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_ts_against_the_tsa() {
    let ca = ca().await;
    signer(&ca, "bob").await;
    write(&ca, "doc.txt", b"contract v7\n");
    let Some((ok_, text)) = openssl(
        &ca,
        &[
            "ts", "-query", "-data", "doc.txt", "-sha256", "-cert", "-out", "q.tsq",
        ],
    )
    .await
    else {
        return;
    };
    assert!(ok_, "{text}");
    let tsq = std::fs::read(ca.work.join("q.tsq")).unwrap();
    let reply = ecca::verify::http_post(
        &format!("{}/tsa", ca.http),
        "application/timestamp-query",
        tsq.clone(),
        1 << 20,
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    write(&ca, "r.tsr", &reply);
    ok(
        &ca,
        &[
            "roots",
            "--out",
            "roots.pem",
            "--intermediates-out",
            "chain.pem",
        ],
    )
    .await;
    let (ok_, text) = openssl(
        &ca,
        &[
            "ts",
            "-verify",
            "-data",
            "doc.txt",
            "-in",
            "r.tsr",
            "-CAfile",
            "roots.pem",
            "-untrusted",
            "chain.pem",
        ],
    )
    .await
    .unwrap();
    assert!(ok_ && text.contains("Verification: OK"), "{text}");
    let (_, text) = openssl(&ca, &["ts", "-reply", "-in", "r.tsr", "-text"])
        .await
        .unwrap();
    assert!(
        text.contains("Granted")
            && text.contains("Nonce")
            && text.contains("Accuracy: 0x01 seconds"),
        "{text}"
    );
    // Serials strictly increase, over HTTP and gRPC alike.
    let serial_of = |text: &str| {
        u64::from_str_radix(
            text.lines()
                .find(|l| l.starts_with("Serial number:"))
                .unwrap()
                .trim_start_matches("Serial number: 0x"),
            16,
        )
        .unwrap()
    };
    let first = serial_of(&text);
    let reply2 = ca.client.timestamp(tsq).await.unwrap();
    write(&ca, "r2.tsr", &reply2);
    let (_, text2) = openssl(&ca, &["ts", "-reply", "-in", "r2.tsr", "-text"])
        .await
        .unwrap();
    assert!(serial_of(&text2) > first, "{text2}");
    // SHA-384 and SHA-512 imprints.
    for h in ["-sha384", "-sha512"] {
        openssl(
            &ca,
            &[
                "ts", "-query", "-data", "doc.txt", h, "-cert", "-out", "q2.tsq",
            ],
        )
        .await
        .unwrap();
        let r = ca
            .client
            .timestamp(std::fs::read(ca.work.join("q2.tsq")).unwrap())
            .await
            .unwrap();
        write(&ca, "r3.tsr", &r);
        let (ok_, text) = openssl(
            &ca,
            &[
                "ts",
                "-verify",
                "-data",
                "doc.txt",
                "-in",
                "r3.tsr",
                "-CAfile",
                "roots.pem",
                "-untrusted",
                "chain.pem",
            ],
        )
        .await
        .unwrap();
        assert!(ok_ && text.contains("Verification: OK"), "{h}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_keep_old_signatures_valid_after_revocation() {
    let ca = ca().await;
    let serial = signer(&ca, "carol").await;
    write(&ca, "invoice.txt", b"invoice 2026-0042\n");
    let tsa = format!("{}/tsa", ca.http);
    sign(&ca, "carol", "invoice.txt", "stamped.p7s", Some(&tsa)).await;
    sign(&ca, "carol", "invoice.txt", "plain.p7s", None).await;
    // Revocation times have one-second resolution: be sure it is after the timestamp.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    ca.client.revoke(&serial, 1, None).await.unwrap();
    let out = ok(
        &ca,
        &[
            "verify-signature",
            "--in",
            "invoice.txt",
            "--sig",
            "stamped.p7s",
            "--trust",
            "roots.pem",
            "--revocation",
            "hard",
        ],
    )
    .await;
    assert!(
        out.starts_with("valid") && out.contains("timestamp:"),
        "timestamped before revocation stays valid: {out}"
    );
    let (code, out) = verify_sig(&ca, "invoice.txt", "plain.p7s", &["--revocation", "hard"]).await;
    assert!(
        code == 1 && out.contains("revoked"),
        "untimestamped is invalid under hard checking: {out}"
    );

    // The same through gRPC.
    let doc = std::fs::read(ca.work.join("invoice.txt")).unwrap();
    let resp = ca
        .client
        .verify_signature(ecca::proto::VerifySignatureRequest {
            signature: std::fs::read(ca.work.join("plain.p7s")).unwrap(),
            content: Some(ecca::proto::verify_signature_request::Content::Document(
                doc.clone(),
            )),
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
    let resp = ca
        .client
        .verify_signature(ecca::proto::VerifySignatureRequest {
            signature: std::fs::read(ca.work.join("stamped.p7s")).unwrap(),
            content: Some(ecca::proto::verify_signature_request::Content::Document(
                doc,
            )),
            revocation: ecca::proto::RevocationMode::Hard.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        resp.valid && resp.timestamp_time.is_some(),
        "{:?}",
        resp.reasons
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_and_requests_get_clear_errors() {
    let ca = ca().await;
    signer(&ca, "dave").await;
    write(&ca, "doc.txt", b"hello\n");
    ok(
        &ca,
        &[
            "sign", "--key", "dave.key", "--cert", "dave.pem", "--in", "doc.txt", "--out",
            "doc.p7s",
        ],
    )
    .await;
    let sig = std::fs::read(ca.work.join("doc.p7s")).unwrap();
    write(&ca, "truncated.p7s", &sig[..sig.len() / 2]);
    let (code, out) = verify_sig(&ca, "doc.txt", "truncated.p7s", &[]).await;
    assert!(code == 2 && out.contains("CMS"), "{out}");
    // A ContentInfo of another type (a certificate's DER is no ContentInfo at all; use data).
    let wrong = der::Encode::to_der(&cms::content_info::ContentInfo {
        content_type: ecca::core::cms::oid::DATA,
        content: <der::asn1::Any as der::Decode>::from_der(&[0x04, 0x01, 0x00]).unwrap(),
    })
    .unwrap();
    write(&ca, "wrong.p7s", &wrong);
    let (code, out) = verify_sig(&ca, "doc.txt", "wrong.p7s", &[]).await;
    assert!(code == 2 && out.contains("is not signedData"), "{out}");
    let (code, out) = verify_sig(&ca, "missing.txt", "doc.p7s", &[]).await;
    assert!(code == 2 && out.contains("missing.txt"), "{out}");

    // TSA: garbage -> badDataFormat; an unsupported hash -> badAlg; still serving.
    let url = format!("{}/tsa", ca.http);
    let post = |body: Vec<u8>| {
        ecca::verify::http_post(
            &url,
            "application/timestamp-query",
            body,
            1 << 20,
            std::time::Duration::from_secs(5),
        )
    };
    let r = post(b"garbage".to_vec()).await.unwrap();
    assert!(
        ecca::core::tsp::token_of(&r)
            .unwrap_err()
            .to_string()
            .contains("badDataFormat")
    );
    let sha1_req = {
        // A TimeStampReq with a SHA-1 imprint (20 bytes).
        let mut req =
            ecca::core::tsp::request(ecca::core::cms::DigestAlg::Sha256, &[7; 32], 5).unwrap();
        let sha256 = [
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        ];
        let pos = req.windows(sha256.len()).position(|w| w == sha256).unwrap();
        // Same length OID: 1.3.14.3.2.26 is shorter, so swap for SHA-224 (2.16.840.1.101.3.4.2.4).
        req[pos + sha256.len() - 1] = 0x04;
        req
    };
    let r = post(sha1_req).await.unwrap();
    assert!(
        ecca::core::tsp::token_of(&r)
            .unwrap_err()
            .to_string()
            .contains("badAlg")
    );
    let good = ecca::core::tsp::request(ecca::core::cms::DigestAlg::Sha256, &[7; 32], 6).unwrap();
    ecca::core::tsp::token_of(&post(good).await.unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_verifies_an_order_archive() {
    let ca = ca().await;
    signer(&ca, "erin").await;
    let mut list = String::new();
    for i in 0..24 {
        let doc = format!("order-{i}.txt");
        write(&ca, &doc, format!("order {i}\n").as_bytes());
        sign(&ca, "erin", &doc, &format!("{doc}.p7s"), None).await;
        list.push_str(&format!("{doc} {doc}.p7s\n"));
    }
    write(&ca, "archive.txt", list.as_bytes());
    let out = ok(
        &ca,
        &[
            "verify-signature",
            "--batch",
            "archive.txt",
            "--trust",
            "roots.pem",
        ],
    )
    .await;
    assert!(
        out.contains("24 of 24 valid") && out.contains("signatures/s"),
        "{out}"
    );
    write(&ca, "order-3.txt", b"tampered\n");
    let (code, out) = ecca(
        &ca,
        &[
            "verify-signature",
            "--batch",
            "archive.txt",
            "--trust",
            "roots.pem",
        ],
    )
    .await;
    assert!(
        code == 1 && out.contains("23 of 24 valid") && out.contains("INVALID"),
        "{out}"
    );
}
