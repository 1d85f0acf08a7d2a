//! Revocation as relying parties see it: openssl fetching CRLs from the certificate's own CDP and
//! asking the AIA OCSP responder, pkilint on every CRL and response, restarts, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use ecca::proto::RevocationReason;

/// A CA with one issued server certificate written out for openssl.
struct Fixture {
    ca: TestCa,
    roots: PathBuf,
    chain: PathBuf,
    leaf: PathBuf,
    serial: String,
}

async fn fixture() -> Fixture {
    let ca = TestCa::start().await;
    let (roots, chain) = ca.trust_files().await;
    let (serial, leaf) = issue(&ca, "shop.example.cn").await;
    Fixture {
        ca,
        roots,
        chain,
        leaf,
        serial,
    }
}

async fn issue(ca: &TestCa, name: &str) -> (String, PathBuf) {
    let cert = ca
        .client
        .issue(p256_csr(&CsrSpec::cn(name).dns(name)), "server-tls", None)
        .await
        .unwrap();
    let cert = cert.certificate.unwrap();
    let path = ca.write_pem(&format!("{name}.pem"), &cert.der);
    (cert.serial, path)
}

fn openssl_cmd() -> Option<Command> {
    tool("openssl").map(Command::new)
}

/// Runs a blocking closure without stalling the server that shares this runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

async fn verify_crl_download(f: &Fixture, leaf: &Path) -> Option<(bool, String)> {
    let mut cmd = openssl_cmd()?;
    cmd.args(["verify", "-crl_check", "-crl_download", "-CAfile"])
        .arg(&f.roots)
        .arg("-untrusted")
        .arg(&f.chain)
        .arg(leaf);
    Some(blocking(move || run(&mut cmd)).await)
}

/// `openssl ocsp` against the URL in the certificate; returns its text output.
async fn openssl_ocsp(f: &Fixture, leaf: &Path, extra: &[&str]) -> Option<String> {
    let mut cmd = openssl_cmd()?;
    let url = ocsp_url(&f.ca, leaf);
    cmd.args(["ocsp", "-issuer"])
        .arg(&f.chain)
        .arg("-cert")
        .arg(leaf)
        .args(["-url", &url, "-CAfile"])
        .arg(&f.roots);
    cmd.args(extra);
    let (_, out) = blocking(move || run(&mut cmd)).await;
    Some(out)
}

fn ocsp_url(ca: &TestCa, leaf: &Path) -> String {
    let der = ecca::pemfile::parse_certs(&std::fs::read(leaf).unwrap())
        .unwrap()
        .remove(0);
    let cert = parse(&der);
    let url = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityInfoAccess(aia) => aia
                .accessdescs
                .iter()
                .find(|d| d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1")
                .map(|d| d.access_location.to_string()),
            _ => None,
        })
        .expect("AIA OCSP URL");
    let url = url
        .trim_start_matches("URI(")
        .trim_end_matches(')')
        .to_string();
    assert!(url.starts_with(&ca.http_base()), "{url}");
    url
}

/// Polls until `check` passes (revocation reaches CRLs asynchronously); panics after 20 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let mut last = String::new();
    for _ in 0..200 {
        match check().await {
            None => return,
            Some(out) => last = out,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} never happened; last output:\n{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_crl_download_sees_revocation_full_and_delta() {
    let f = fixture().await;
    let Some((ok, out)) = verify_crl_download(&f, &f.leaf).await else {
        return;
    };
    assert!(ok && out.contains(": OK"), "good certificate: {out}");
    let (other_serial, other) = issue(&f.ca, "other.example.cn").await;
    let _ = other_serial;

    // The base full CRL a client holds from before the revocation.
    let base = f.ca.dir.path().join("base.crl");
    let full_url = format!("{}/crl/issuing.crl", f.ca.http_base());
    let (status, headers, body) = http("GET", &full_url, b"", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/pkix-crl")
    );
    std::fs::write(&base, &body).unwrap();

    let revoked =
        f.ca.client
            .revoke(&f.serial, RevocationReason::KeyCompromise as i32, None)
            .await
            .unwrap();
    assert!(revoked.revoked_at.is_some());

    eventually("CRL download reports the revocation", || async {
        let (ok, out) = verify_crl_download(&f, &f.leaf).await.unwrap();
        (ok || !out.contains("certificate revoked")).then_some(out)
    })
    .await;
    let (ok, out) = verify_crl_download(&f, &other).await.unwrap();
    assert!(ok, "an unrevoked certificate stays OK: {out}");

    // Delta in play: the old base CRL plus the new delta CRL says revoked; the leaf's
    // certificate points at the delta through the full CRL's freshestCRL.
    let delta = f.ca.dir.path().join("delta.crl");
    let (status, _, body) = http(
        "GET",
        &format!("{}/crl/issuing-delta.crl", f.ca.http_base()),
        b"",
        None,
    )
    .await;
    assert_eq!(status, 200);
    std::fs::write(&delta, &body).unwrap();
    let crls = f.ca.dir.path().join("base-and-delta.pem");
    let mut pem = String::new();
    for p in [&base, &delta] {
        pem.push_str(&pem::encode(&pem::Pem::new(
            "X509 CRL",
            std::fs::read(p).unwrap(),
        )));
    }
    std::fs::write(&crls, pem).unwrap();
    let (roots, chain, leaf, other) = (
        f.roots.clone(),
        f.chain.clone(),
        f.leaf.clone(),
        other.clone(),
    );
    let (ok, out) = blocking(move || {
        let mut cmd = Command::new(tool("openssl").unwrap());
        cmd.args(["verify", "-crl_check", "-use_deltas", "-CRLfile"])
            .arg(&crls)
            .arg("-CAfile")
            .arg(&roots);
        cmd.arg("-untrusted").arg(&chain).arg(&leaf).arg(&other);
        run(&mut cmd)
    })
    .await;
    assert!(
        !ok && out.contains("certificate revoked"),
        "base + delta: {out}"
    );
    let base_alone = blocking({
        let (roots, chain, leaf, base) = (
            f.roots.clone(),
            f.chain.clone(),
            f.leaf.clone(),
            base.clone(),
        );
        move || {
            let mut cmd = Command::new(tool("openssl").unwrap());
            cmd.args(["verify", "-crl_check", "-CRLfile"])
                .arg(&base)
                .arg("-CAfile")
                .arg(&roots);
            cmd.arg("-untrusted").arg(&chain).arg(&leaf);
            run(&mut cmd)
        }
    })
    .await;
    assert!(
        base_alone.0,
        "the old base alone does not know yet: {}",
        base_alone.1
    );

    // pkilint on both CRLs.
    for crl in [&base, &delta] {
        if let Some((clean, out)) = pkilint(
            "lint_crl",
            &["-t", "CRL", "-p", "PKIX", "-s", "WARNING"],
            &[crl],
        ) {
            assert!(clean, "{}: {out}", crl.display());
        }
    }
    // Delta CRL shape: critical deltaCRLIndicator naming a base no newer than the full CRL.
    let (_, delta_crl) = x509_parser::parse_x509_crl(&body).unwrap();
    let base_ext = delta_crl
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.27")
        .unwrap();
    assert!(base_ext.critical);
    assert_eq!(delta_crl.iter_revoked_certificates().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_ocsp_good_then_revoked_post_and_get_with_and_without_nonce() {
    let f = fixture().await;
    let Some(out) = openssl_ocsp(&f, &f.leaf, &["-resp_text"]).await else {
        return;
    };
    assert!(
        out.contains("Response verify OK") && out.contains(": good"),
        "{out}"
    );
    assert!(out.contains("OCSP Nonce"), "nonce echoed: {out}");
    let out = openssl_ocsp(&f, &f.leaf, &["-no_nonce"]).await.unwrap();
    assert!(
        out.contains("Response verify OK") && out.contains(": good"),
        "{out}"
    );

    let good = f.ca.dir.path().join("good.ocsp");
    openssl_ocsp(
        &f,
        &f.leaf,
        &["-no_nonce", "-respout", good.to_str().unwrap()],
    )
    .await
    .unwrap();
    let unknown = f.ca.dir.path().join("unknown.ocsp");
    let mut cmd = openssl_cmd().unwrap();
    cmd.args(["ocsp", "-issuer"]).arg(&f.chain).args([
        "-serial",
        "0x1234567890abcdef",
        "-url",
        &ocsp_url(&f.ca, &f.leaf),
    ]);
    cmd.arg("-CAfile")
        .arg(&f.roots)
        .arg("-respout")
        .arg(&unknown);
    let (_, out) = blocking(move || run(&mut cmd)).await;
    assert!(out.contains(": unknown"), "{out}");

    f.ca.client
        .revoke(
            &f.serial,
            RevocationReason::KeyCompromise as i32,
            Some(1_700_000_000),
        )
        .await
        .unwrap();
    for extra in [&[][..], &["-no_nonce"][..]] {
        let mut args = vec!["-resp_text"];
        args.extend_from_slice(extra);
        let out = openssl_ocsp(&f, &f.leaf, &args).await.unwrap();
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(
            out.contains(": revoked") && out.contains("Reason: keyCompromise"),
            "{out}"
        );
    }
    let revoked = f.ca.dir.path().join("revoked.ocsp");
    openssl_ocsp(
        &f,
        &f.leaf,
        &["-no_nonce", "-respout", revoked.to_str().unwrap()],
    )
    .await
    .unwrap();

    // GET form (RFC 6960 A.1): openssl writes the request; we GET it base64 in the path.
    let req = f.ca.dir.path().join("req.der");
    let mut cmd = openssl_cmd().unwrap();
    cmd.args(["ocsp", "-no_nonce", "-issuer"])
        .arg(&f.chain)
        .arg("-cert")
        .arg(&f.leaf)
        .arg("-reqout")
        .arg(&req);
    let (ok, out) = blocking(move || run(&mut cmd)).await;
    assert!(ok, "{out}");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&req).unwrap());
    let encoded = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let url = format!("{}/{encoded}", ocsp_url(&f.ca, &f.leaf));
    let (status, headers, body) = http("GET", &url, b"", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/ocsp-response")
    );
    let cache_control = header(&headers, "cache-control").unwrap();
    assert!(
        cache_control.contains("max-age=") && cache_control.contains("public"),
        "{cache_control}"
    );
    assert!(header(&headers, "last-modified").unwrap().ends_with("GMT"));
    assert!(header(&headers, "etag").unwrap().starts_with('"'));
    let got = f.ca.dir.path().join("get.ocsp");
    std::fs::write(&got, &body).unwrap();
    let mut cmd = openssl_cmd().unwrap();
    cmd.args(["ocsp", "-respin"])
        .arg(&got)
        .arg("-issuer")
        .arg(&f.chain)
        .arg("-cert")
        .arg(&f.leaf);
    cmd.arg("-CAfile").arg(&f.roots).arg("-resp_text");
    let (_, out) = blocking(move || run(&mut cmd)).await;
    assert!(
        out.contains("Response verify OK") && out.contains(": revoked"),
        "GET: {out}"
    );
    assert!(
        out.contains("Invalidity Date") || out.contains("Revocation Time"),
        "{out}"
    );

    for (name, path) in [
        ("good", &good),
        ("revoked", &revoked),
        ("unknown", &unknown),
    ] {
        if let Some((clean, out)) = pkilint("lint_ocsp_response", &["-s", "WARNING"], &[path]) {
            assert!(clean, "{name}: {out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuing_ca_is_checked_against_the_root_crl_and_ocsp() {
    let f = fixture().await;
    let Some(mut cmd) = openssl_cmd() else { return };
    // The root has no CDP (a trust anchor needs none); openssl's -crl_check_all still wants a
    // CRL for it, so it comes from the root's published URL by hand.
    let (status, _, root_crl_der) = http(
        "GET",
        &format!("{}/crl/root.crl", f.ca.http_base()),
        b"",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let root_crl_pem = f.ca.dir.path().join("root-crl.pem");
    std::fs::write(
        &root_crl_pem,
        pem::encode(&pem::Pem::new("X509 CRL", root_crl_der)),
    )
    .unwrap();
    cmd.args(["verify", "-crl_check_all", "-crl_download", "-CRLfile"])
        .arg(&root_crl_pem)
        .arg("-CAfile")
        .arg(&f.roots);
    cmd.arg("-untrusted").arg(&f.chain).arg(&f.leaf);
    let (ok, out) = blocking(move || run(&mut cmd)).await;
    assert!(
        ok,
        "whole chain with CRLs (issuing CA checked against the root CRL it points at): {out}"
    );
    let mut cmd = openssl_cmd().unwrap();
    let url = format!("{}/ocsp", f.ca.http_base());
    cmd.args(["ocsp", "-issuer"])
        .arg(&f.roots)
        .arg("-cert")
        .arg(&f.chain)
        .args(["-url", &url, "-CAfile"])
        .arg(&f.roots);
    let (_, out) = blocking(move || run(&mut cmd)).await;
    assert!(
        out.contains("Response verify OK") && out.contains(": good"),
        "{out}"
    );
    let (status, _, body) = http(
        "GET",
        &format!("{}/crl/root.crl", f.ca.http_base()),
        b"",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let root_crl = f.ca.dir.path().join("root.crl");
    std::fs::write(&root_crl, body).unwrap();
    if let Some((clean, out)) = pkilint(
        "lint_crl",
        &["-t", "CRL", "-p", "PKIX", "-s", "WARNING"],
        &[&root_crl],
    ) {
        assert!(clean, "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_revocation_and_ocsp_input_gets_the_right_answer() {
    let f = fixture().await;
    let ocsp = format!("{}/ocsp", f.ca.http_base());
    // Garbage body -> malformedRequest (OCSPResponseStatus 1).
    let (status, _, body) = http("POST", &ocsp, b"garbage", Some("application/ocsp-request")).await;
    assert_eq!(
        (status, body.as_slice()),
        (200, &[0x30, 0x03, 0x0a, 0x01, 0x01][..])
    );
    let (status, _, body) = http("GET", &format!("{ocsp}/!!notbase64!!"), b"", None).await;
    assert_eq!(
        (status, body.as_slice()),
        (200, &[0x30, 0x03, 0x0a, 0x01, 0x01][..])
    );
    // Oversized body -> 413, before any parsing.
    let (status, _, _) = http(
        "POST",
        &ocsp,
        &vec![0x30; 64 * 1024],
        Some("application/ocsp-request"),
    )
    .await;
    assert_eq!(status, 413);
    // A request about another CA -> unauthorized (6).
    let other_ca = TestCa::start().await;
    let (_, other_chain) = other_ca.trust_files().await;
    let (_, other) = issue(&other_ca, "x.example.cn").await;
    if let Some(mut cmd) = openssl_cmd() {
        let req = f.ca.dir.path().join("foreign.der");
        cmd.args(["ocsp", "-no_nonce", "-issuer"])
            .arg(&other_chain)
            .arg("-cert")
            .arg(&other)
            .arg("-reqout")
            .arg(&req);
        let (ok, out) = blocking(move || run(&mut cmd)).await;
        assert!(ok, "{out}");
        let (status, _, body) = http(
            "POST",
            &ocsp,
            &std::fs::read(&req).unwrap(),
            Some("application/ocsp-request"),
        )
        .await;
        assert_eq!(
            (status, body.as_slice()),
            (200, &[0x30, 0x03, 0x0a, 0x01, 0x06][..])
        );
    }
    // Revocation errors.
    let refused = |e: ecca::Error| match e {
        ecca::Error::Rejected { code, message } => (code, message),
        other => panic!("{other:?}"),
    };
    let (code, msg) = refused(
        f.ca.client
            .revoke("0123456789abcdef01", 1, None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, tonic::Code::NotFound, "{msg}");
    let (code, msg) = refused(
        f.ca.client
            .revoke(&f.serial, RevocationReason::CertificateHold as i32, None)
            .await
            .unwrap_err(),
    );
    assert!(
        code == tonic::Code::InvalidArgument && msg.contains("certificateHold"),
        "{msg}"
    );
    let future = time::OffsetDateTime::now_utc().unix_timestamp() + 86_400;
    let (code, msg) = refused(
        f.ca.client
            .revoke(&f.serial, 1, Some(future))
            .await
            .unwrap_err(),
    );
    assert!(
        code == tonic::Code::InvalidArgument && msg.contains("invalidity_date"),
        "{msg}"
    );
    f.ca.client
        .revoke(&f.serial, RevocationReason::Superseded as i32, None)
        .await
        .unwrap();
    let (code, msg) = refused(f.ca.client.revoke(&f.serial, 1, None).await.unwrap_err());
    assert!(
        code == tonic::Code::FailedPrecondition && msg.contains("already revoked"),
        "{msg}"
    );
    // Still serving.
    let status = f.ca.client.revocation_status(&f.serial).await.unwrap();
    assert!(status.revoked);
    assert_eq!(status.reason(), RevocationReason::Superseded);
    issue(&f.ca, "after.example.cn").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platforms_can_watch_revocations() {
    let f = fixture().await;
    let mut stream = f.ca.client.watch_revocations().await.unwrap();
    f.ca.client
        .revoke(
            &f.serial,
            RevocationReason::CessationOfOperation as i32,
            None,
        )
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.serial, f.serial);
    assert_eq!(event.reason(), RevocationReason::CessationOfOperation);
    // And the listing filters by status.
    let revoked =
        f.ca.client
            .list(ecca::proto::ListCertificatesRequest {
                status: ecca::proto::CertificateStatus::Revoked.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    assert_eq!(revoked.certificates.len(), 1);
    assert_eq!(revoked.certificates[0].serial, f.serial);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_revocations_and_crl_numbers_increase() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = |data: &Path, http: std::net::SocketAddr| {
        let mut c = ecca::config::ServerConfig::new(data);
        c.grpc_listen = "127.0.0.1:0".parse().unwrap();
        c.http_listen = http;
        c
    };
    // The first start picks a free HTTP port and reports it; the restart keeps it, so the URLs
    // in issued certificates stay valid.
    let running = ecca::server::start(config(&data, "127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let http_addr = running.endpoints.http;
    let client = ecca::client::Client::connect_data_dir(&data).await.unwrap();
    let cert = client
        .issue(
            p256_csr(&CsrSpec::cn("r.example.cn").dns("r.example.cn")),
            "server-tls",
            None,
        )
        .await
        .unwrap();
    let bundle = client.trust_bundle().await.unwrap();
    let write = |name: &str, ders: &[Vec<u8>]| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            ecca::pemfile::certs_to_pem(ders.iter().map(Vec::as_slice)),
        )
        .unwrap();
        p
    };
    let roots = write("roots.pem", &bundle.roots_der);
    let chain = write("chain.pem", &bundle.intermediates_der);
    let cert = cert.certificate.unwrap();
    let leaf = write("leaf.pem", std::slice::from_ref(&cert.der));
    let serial = cert.serial;
    let ocsp_status = move || {
        let (roots, chain, leaf) = (roots.clone(), chain.clone(), leaf.clone());
        let url = format!("http://{http_addr}/ocsp");
        async move {
            let mut cmd = openssl_cmd()?;
            cmd.args(["ocsp", "-no_nonce", "-issuer"])
                .arg(&chain)
                .arg("-cert")
                .arg(&leaf);
            cmd.args(["-url", &url, "-CAfile"]).arg(&roots);
            let (_, out) = blocking(move || run(&mut cmd)).await;
            assert!(out.contains("Response verify OK"), "{out}");
            out.lines()
                .find(|l| l.contains("leaf.pem:") || l.contains("Reason:"))
                .map(str::to_string)
        }
    };
    client
        .revoke(&serial, RevocationReason::KeyCompromise as i32, None)
        .await
        .unwrap();
    let ocsp_before = ocsp_status().await;
    let before = common::eventually(
        "the CRL to list the revocation",
        Duration::from_secs(20),
        || async {
            let crl = client.crl(false).await.unwrap();
            let (_, parsed) = x509_parser::parse_x509_crl(&crl.der).unwrap();
            (parsed.iter_revoked_certificates().count() > 0).then_some(crl)
        },
    )
    .await;
    let before_delta = client.crl(true).await.unwrap();
    drop(client);
    running.shutdown().await;

    let _running = ecca::server::start(config(&data, http_addr)).await.unwrap();
    let client = ecca::client::Client::connect_data_dir(&data).await.unwrap();
    let status = client.revocation_status(&serial).await.unwrap();
    assert!(status.revoked && status.reason() == RevocationReason::KeyCompromise);
    assert_eq!(
        ocsp_status().await,
        ocsp_before,
        "OCSP answers the same after a restart"
    );
    if let Some(line) = &ocsp_before {
        assert!(line.contains("revoked"), "{line}");
    }
    let after = client.crl(false).await.unwrap();
    let after_delta = client.crl(true).await.unwrap();
    assert!(
        after.number > before_delta.number && before_delta.number > before.number,
        "{} {} {}",
        before.number,
        before_delta.number,
        after.number
    );
    assert!(after_delta.number > after.number);
    let (_, crl) = x509_parser::parse_x509_crl(&after.der).unwrap();
    assert_eq!(
        crl.iter_revoked_certificates()
            .next()
            .unwrap()
            .raw_serial_as_string()
            .replace(':', ""),
        serial
    );
}
