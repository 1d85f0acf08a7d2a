//! Trust boundaries of the API: only the credential CA authenticates, and a credential is its
//! whole certificate. Each test is an attack that worked before the credential CA existed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use der::{Decode, Encode};
use ecca::client::{Client, Credentials};
use ecca::proto::{CrossCertifyRequest, RevocationReason, cross_certify_request::Peer};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};

/// The admin credential's certificate (DER) and serial bytes.
fn admin_cert(ca: &TestCa) -> (Vec<u8>, Vec<u8>) {
    let pem = std::fs::read(ca.data_dir().join("admin/cert.pem")).unwrap();
    let der = ecca::pemfile::parse_certs(&pem).unwrap().remove(0);
    let serial = parse(&der).raw_serial().to_vec();
    (der, serial)
}

/// Writes a credential folder: cert.pem (the given chain), key.pem, and the admin's ca.pem.
fn creds_dir(ca: &TestCa, name: &str, chain: &[&[u8]], key_pem: &str) -> PathBuf {
    let dir = ca.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("cert.pem"),
        ecca::pemfile::certs_to_pem(chain.iter().copied()),
    )
    .unwrap();
    std::fs::write(dir.join("key.pem"), key_pem).unwrap();
    std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::copy(ca.data_dir().join("admin/ca.pem"), dir.join("ca.pem")).unwrap();
    dir
}

/// A client certificate that copies the admin credential's serial and subject.
fn forged_client(serial: &[u8], dns: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.serial_number = Some(SerialNumber::from_slice(serial));
    p.distinguished_name.push(DnType::OrganizationName, "ecca");
    p.distinguished_name.push(DnType::CommonName, "ecca admin");
    p.subject_alt_names = vec![SanType::DnsName(dns.try_into().unwrap())];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    p
}

/// Attack 1 of issue 12, exactly: a CA we cross-certified (name-constrained to its own
/// names) mints a client certificate carrying the admin credential's serial and presents it
/// with our cross-certificate. Before and after `peers remove`, it gets nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_certified_peer_cannot_act_as_admin() {
    let ca = TestCa::start().await;
    let peer_key = KeyPair::generate().unwrap();
    let mut peer = CertificateParams::default();
    peer.distinguished_name
        .push(DnType::CommonName, "Region B Root");
    peer.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    peer.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let peer_cert = peer.self_signed(&peer_key).unwrap();
    ca.client
        .add_peer(ecca::proto::AddPeerRequest {
            name: "region-b".into(),
            ca_cert: peer_cert.der().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    let cross = ca
        .client
        .cross_certify(CrossCertifyRequest {
            peer: Some(Peer::CaCert(peer_cert.der().to_vec())),
            peer_name: "region-b".into(),
            permitted_dns: vec!["b.example.cn".into()],
            path_len: Some(1),
            ..Default::default()
        })
        .await
        .unwrap()
        .certificate_der;

    let (_, admin_serial) = admin_cert(&ca);
    let leaf_key = KeyPair::generate().unwrap();
    let issuer = Issuer::from_params(&peer, &peer_key);
    let forged = forged_client(&admin_serial, "admin.b.example.cn")
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    assert_eq!(parse(forged.der()).raw_serial(), admin_serial.as_slice());
    let dir = creds_dir(
        &ca,
        "forged",
        &[forged.der(), &cross, peer_cert.der()],
        &leaf_key.serialize_pem(),
    );
    assert_refused_at_handshake(&ca.grpc_url(), &dir).await;

    // Nor can the peer certify our addresses (it could otherwise impersonate this server to
    // clients that trust our root): its cross-certificate excludes every IP address.
    let mut server_like = CertificateParams::new(vec!["api.b.example.cn".into()]).unwrap();
    server_like
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    server_like.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_like.use_authority_key_identifier_extension = true;
    let impostor = server_like
        .signed_by(&KeyPair::generate().unwrap(), &issuer)
        .unwrap();
    let out = ca
        .client
        .verify(ecca::proto::VerifyCertificateRequest {
            leaf: impostor.der().to_vec(),
            untrusted: vec![cross.clone()],
            revocation: ecca::proto::RevocationMode::Off.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        !out.valid
            && out
                .reasons
                .join(" ")
                .contains("IP:127.0.0.1 is in an excluded subtree"),
        "{out:?}"
    );
    let mut inside = CertificateParams::new(vec!["api.b.example.cn".into()]).unwrap();
    inside.use_authority_key_identifier_extension = true;
    let inside = inside
        .signed_by(&KeyPair::generate().unwrap(), &issuer)
        .unwrap();
    let ok = ca
        .client
        .verify(ecca::proto::VerifyCertificateRequest {
            leaf: inside.der().to_vec(),
            untrusted: vec![cross.clone()],
            revocation: ecca::proto::RevocationMode::Off.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(ok.valid, "{:?}", ok.reasons);

    // Removing the peer revokes the cross-certificate; still nothing.
    ca.client.remove_peer("region-b").await.unwrap();
    assert_refused_at_handshake(&ca.grpc_url(), &dir).await;
    // And the real admin is unaffected.
    ca.client.profiles().await.unwrap();
}

/// The admin credential's exact TBSCertificate (same serial, subject, key) signed by another
/// key: the credential CA did not sign it, so the handshake refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_re_signed_by_another_key_is_refused() {
    let ca = TestCa::start().await;
    let (der, _) = admin_cert(&ca);
    let cert = x509_cert::Certificate::from_der(&der).unwrap();
    let tbs = cert.tbs_certificate.to_der().unwrap();
    let rng = ring::rand::SystemRandom::new();
    let other = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &rng,
        )
        .unwrap()
        .as_ref(),
        &rng,
    )
    .unwrap();
    let sig = other.sign(&rng, &tbs).unwrap();
    let resigned = x509_cert::Certificate {
        tbs_certificate: cert.tbs_certificate.clone(),
        signature_algorithm: cert.signature_algorithm.clone(),
        signature: der::asn1::BitString::from_bytes(sig.as_ref()).unwrap(),
    }
    .to_der()
    .unwrap();
    assert_ne!(resigned, der);
    let key = std::fs::read_to_string(ca.data_dir().join("admin/key.pem")).unwrap();
    let dir = creds_dir(&ca, "resigned", &[&resigned], &key);
    assert_refused_at_handshake(&ca.grpc_url(), &dir).await;
}

/// Defence in depth: a certificate the credential CA did sign, with the admin's serial but
/// another key, passes TLS but is not the registered credential: UNAUTHENTICATED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_is_its_whole_certificate_not_its_serial() {
    let ca = TestCa::start().await;
    let (_, admin_serial) = admin_cert(&ca);
    let key = KeyPair::generate().unwrap();
    use rcgen::PublicKeyData;
    let der = credential_cert(
        &ca.data_dir(),
        &ca.http_base(),
        &ecca::core::serial::Serial::from_der_content(&admin_serial),
        &key.subject_public_key_info(),
        "ecca admin",
        (-86_400, 5 * 86_400),
    );
    let dir = creds_dir(&ca, "twin", &[&der], &key.serialize_pem());
    let client = Client::connect(&ca.grpc_url(), &Credentials::load(&dir).unwrap())
        .await
        .unwrap();
    match client.profiles().await.unwrap_err() {
        ecca::Error::Rejected { code, message } => {
            assert_eq!(code, tonic::Code::Unauthenticated, "{message}");
            assert!(
                message.contains("not a registered ecca credential"),
                "{message}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Platform credentials issued before the credential CA existed keep working (pinned by
/// hash) until rotated; a merchant certificate from the same CA never does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_credentials_are_pinned_until_rotated() {
    let mut ca = TestCa::start().await;
    ca.client
        .add_platform(ecca::proto::AddPlatformRequest {
            name: "shop-l".into(),
            dns_suffixes: vec!["l.example.cn".into()],
            profiles: vec!["client-tls".into(), "server-tls".into()],
            csr: p256_csr(&CsrSpec::cn("platform shop-l")),
            ..Default::default()
        })
        .await
        .unwrap();
    // A legacy platform credential: issued by the issuing CA, registered by its hash, as the
    // 0005 migration pins credentials of older data directories.
    let (key, request) = csr(
        &CsrSpec::cn("api.l.example.cn"),
        &rcgen::PKCS_ECDSA_P256_SHA256,
    );
    let issued = ca.client.issue(request, "client-tls", None).await.unwrap();
    let legacy_der = issued.certificate.unwrap().der;
    let merchant_dir = creds_dir(
        &ca,
        "merchant",
        &[&legacy_der, &issued.chain_der[0]],
        &key.serialize_pem(),
    );
    let legacy_dir = creds_dir(
        &ca,
        "legacy",
        &[&legacy_der, &issued.chain_der[0]],
        &key.serialize_pem(),
    );
    // Unregistered: refused at the handshake (the issuing CA is no API trust).
    assert_refused_at_handshake(&ca.grpc_url(), &merchant_dir).await;
    let db = rusqlite::Connection::open(ca.data_dir().join("ecca.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute(
        "INSERT INTO credentials (serial, role, tenant, disabled, cert_sha256) VALUES (?1, 'platform', 'shop-l', 0, ?2)",
        [
            ecca::core::serial::Serial::from_der_content(parse(&legacy_der).raw_serial()).hex(),
            ecca::core::fingerprint(&legacy_der),
        ],
    )
    .unwrap();
    drop(db);
    restart(&mut ca).await;
    let legacy = Client::connect(&ca.grpc_url(), &Credentials::load(&legacy_dir).unwrap())
        .await
        .unwrap();
    legacy.profiles().await.unwrap();

    // Rotation: the new credential comes from the credential CA, the pinned one stops.
    let (rot_key, rot_csr) = csr(&CsrSpec::cn("x"), &rcgen::PKCS_ECDSA_P256_SHA256);
    let cred = ca.client.rotate_platform("shop-l", rot_csr).await.unwrap();
    let rotated = ca.dir.path().join("rotated");
    std::fs::create_dir_all(&rotated).unwrap();
    std::fs::write(rotated.join("cert.pem"), &cred.cert_pem).unwrap();
    std::fs::write(rotated.join("ca.pem"), &cred.ca_pem).unwrap();
    std::fs::write(rotated.join("key.pem"), rot_key.serialize_pem()).unwrap();
    std::fs::set_permissions(
        rotated.join("key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (code, msg) = match legacy.profiles().await.unwrap_err() {
        ecca::Error::Rejected { code, message } => (code, message),
        other => panic!("{other:?}"),
    };
    assert!(
        code == tonic::Code::PermissionDenied && msg.contains("disabled"),
        "{code}: {msg}"
    );
    Client::connect(&ca.grpc_url(), &Credentials::load(&rotated).unwrap())
        .await
        .unwrap()
        .profiles()
        .await
        .unwrap();
}

/// Stops the server and starts it again on the same data directory and ports.
async fn restart(ca: &mut TestCa) {
    let endpoints = ca.running.as_ref().unwrap().endpoints.clone();
    ca.running.take().unwrap().shutdown().await;
    let mut config = ecca::config::ServerConfig::loopback(ca.data_dir());
    config.grpc_listen = endpoints.grpc;
    config.http_listen = endpoints.http;
    ca.running = Some(ecca::server::start(config).await.unwrap());
    ca.client = Client::connect_data_dir(&ca.data_dir()).await.unwrap();
}

/// An older data directory (no credential CA, credentials by serial) is migrated on start:
/// a credential CA appears, the local admin credential is reissued under it and the old one
/// disabled, the gRPC certificate moves to it, and the database pins old credentials.
/// Certificates issued before keep their CRL and OCSP (openssl at their own URLs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_data_directory_is_migrated_on_start() {
    let mut ca = TestCa::start().await;
    let (old_admin, _) = admin_cert(&ca);
    let (roots, chain) = ca.trust_files().await;
    let kept = ca.write_pem("kept.pem", &ca.issue_tls("kept.example.cn").await);
    let gone_der = ca.issue_tls("gone.example.cn").await;
    let gone = ca.write_pem("gone.pem", &gone_der);
    let gone_serial = ecca::core::serial::Serial::from_der_content(parse(&gone_der).raw_serial());
    ca.client
        .revoke(
            &gone_serial.hex(),
            RevocationReason::KeyCompromise as i32,
            None,
        )
        .await
        .unwrap();
    let endpoints = ca.running.as_ref().unwrap().endpoints.clone();
    ca.running.take().unwrap().shutdown().await;
    let dir = ca.data_dir();
    // Back to the layout and schema of before: no credential CA, schema version 4.
    std::fs::remove_file(dir.join("ca/credential.pem")).unwrap();
    std::fs::remove_file(dir.join("ca/credential.key")).unwrap();
    undo_migration_5(&dir.join("ecca.db"));
    let old_ca = std::fs::read(dir.join("admin/ca.pem")).unwrap();

    let mut config = ecca::config::ServerConfig::loopback(&dir);
    config.grpc_listen = endpoints.grpc;
    config.http_listen = endpoints.http;
    ca.running = Some(ecca::server::start(config).await.unwrap());
    assert!(dir.join("ca/credential.pem").exists());
    let (new_admin, _) = admin_cert(&ca);
    assert_ne!(new_admin, old_admin);
    assert_ne!(std::fs::read(dir.join("admin/ca.pem")).unwrap(), old_ca);
    ca.client = Client::connect_data_dir(&dir).await.unwrap();
    ca.client.profiles().await.unwrap();
    // A client whose ca.pem is still the root verifies the server through the link
    // certificate the server now sends.
    let old_trust = ca.dir.path().join("old-trust");
    std::fs::create_dir_all(&old_trust).unwrap();
    for f in ["cert.pem", "key.pem"] {
        std::fs::copy(dir.join("admin").join(f), old_trust.join(f)).unwrap();
    }
    // (Data directories from before the credential CA gave clients the root as ca.pem.)
    std::fs::copy(dir.join("ca/root.pem"), old_trust.join("ca.pem")).unwrap();
    std::fs::set_permissions(
        old_trust.join("key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    Client::connect(&ca.grpc_url(), &Credentials::load(&old_trust).unwrap())
        .await
        .unwrap()
        .profiles()
        .await
        .unwrap();
    let events: Vec<String> = ca
        .client
        .audit_log()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert!(
        events.iter().any(|e| e == "ca.credential.created"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e == "credential.disabled"),
        "{events:?}"
    );
    // The migration pinned the old admin credential to its certificate, then it was disabled.
    let db = rusqlite::Connection::open(dir.join("ecca.db")).unwrap();
    let (pinned, disabled): (String, bool) = db
        .query_row(
            "SELECT cert_sha256, disabled FROM credentials WHERE serial = ?1",
            [ecca::core::serial::Serial::from_der_content(parse(&old_admin).raw_serial()).hex()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(pinned, ecca::core::fingerprint(&old_admin));
    assert!(disabled);
    ca.client.verify_audit().await.unwrap();
    // What was issued before answers at the URLs it carries, as it did.
    let ocsp = format!("{}/ocsp", ca.http_base());
    let status = common::judges::ocsp_status(&ocsp, &chain, &roots, &kept).await;
    assert!(
        status.contains("kept.pem: good") && status.contains("Response verify OK"),
        "{status}"
    );
    let status = common::judges::ocsp_status(&ocsp, &chain, &roots, &gone).await;
    assert!(status.contains("gone.pem: revoked"), "{status}");
    let (ok, out) = common::judges::verify_with_crl(&roots, &[&chain], &kept).await;
    assert!(ok, "{out}");
    let (ok, out) = common::judges::verify_with_crl(&roots, &[&chain], &gone).await;
    assert!(!ok && out.contains("certificate revoked"), "{out}");
}

/// Takes a database back to schema version 4 (before the trust-boundary migration): every
/// later migration undone.
fn undo_migration_5(db: &Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(
        "DROP TABLE acme_objects;
         DROP TABLE stats_issued;
         DROP TABLE stats_revoked;
         DROP TABLE stats_events;
         DROP TABLE stats_marks;
         DROP INDEX certificates_renewal;
         DROP INDEX certificates_uscc;
         ALTER TABLE certificates DROP COLUMN uscc;
         DROP INDEX certificates_not_after;
         DROP TABLE certificate_pairs;
         DROP INDEX certificates_ca_revoked;
         DROP INDEX certificates_ca_expiry;
         ALTER TABLE cross_certificates DROP COLUMN ca;
         ALTER TABLE certificates DROP COLUMN ca;
         DROP TABLE issuer_certificates;
         DROP TABLE issuers;
         ALTER TABLE cross_certificates DROP COLUMN status;
         DROP INDEX credentials_cert_sha256;
         ALTER TABLE credentials DROP COLUMN cert_sha256;
         ALTER TABLE certificates DROP COLUMN issuer;
         ALTER TABLE platforms DROP COLUMN organizations;
         ALTER TABLE platforms DROP COLUMN usccs;
         ALTER TABLE platforms DROP COLUMN names;
         PRAGMA user_version = 4;",
    )
    .unwrap();
}

/// The database (with its WAL and shared-memory files) and endpoints.json are private.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_private() {
    let ca = TestCa::start().await;
    ca.issue_tls("p.example.cn").await;
    let dir = ca.data_dir();
    for name in ["ecca.db", "ecca.db-wal", "ecca.db-shm", "endpoints.json"] {
        let mode = std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode & 0o077, 0, "{name} is {mode:o}");
    }
}

/// `openssl s_client` against the gRPC port with the admin credential: (success, output).
async fn s_client(ca: &TestCa, version: &'static str) -> Option<(bool, String)> {
    let openssl = tool("openssl")?;
    let addr = ca.running.as_ref().unwrap().endpoints.grpc.to_string();
    let admin = ca.data_dir().join("admin");
    Some(
        tokio::task::spawn_blocking(move || {
            run(std::process::Command::new(openssl)
                .args(["s_client", "-connect", &addr, version, "-alpn", "h2"])
                .arg("-cert")
                .arg(admin.join("cert.pem"))
                .arg("-key")
                .arg(admin.join("key.pem"))
                .arg("-CAfile")
                .arg(admin.join("ca.pem"))
                .stdin(std::process::Stdio::null()))
        })
        .await
        .unwrap(),
    )
}

/// TLS 1.3 only on the gRPC port, unless the operator allows TLS 1.2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_port_speaks_tls_1_3_unless_told_otherwise() {
    let ca = TestCa::start().await;
    let Some((_, out)) = s_client(&ca, "-tls1_3").await else {
        return;
    };
    assert!(
        out.contains("TLSv1.3") && out.contains("Verify return code: 0"),
        "{out}"
    );
    let (ok, out) = s_client(&ca, "-tls1_2").await.unwrap();
    assert!(
        !ok && out.contains("alert protocol version") && out.contains("Cipher is (NONE)"),
        "TLS 1.2 was accepted: {out}"
    );
    let lenient = TestCa::start_with(|c| c.grpc_tls12 = true).await;
    let (_, out) = s_client(&lenient, "-tls1_2").await.unwrap();
    assert!(
        out.contains("TLSv1.2") && out.contains("Verify return code: 0"),
        "{out}"
    );
}
