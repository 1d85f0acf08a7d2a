//! The authorization matrix: every RPC for every kind of caller, and tenant isolation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;
use ecca::client::{Client, Credentials};
use ecca::proto::admin_client::AdminClient;
use ecca::proto::certificate_authority_client::CertificateAuthorityClient;
use ecca::proto::{self as pb};
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Writes a credential folder for a new P-256 key and returns (dir, CSR DER).
fn key_and_csr(dir: &Path, cn: &str) -> Vec<u8> {
    std::fs::create_dir_all(dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.serialize_request(&key).unwrap().der().to_vec()
}

/// Adds the platform `req` describes (its credential key made in base/NAME) and connects as it.
async fn platform(ca: &TestCa, mut req: pb::AddPlatformRequest) -> (PathBuf, Client) {
    let dir = ca.dir.path().join(&req.name);
    req.csr = key_and_csr(&dir, &req.name);
    save(&dir, &ca.client.add_platform(req).await.unwrap());
    let client = Client::connect(&ca.grpc_url(), &Credentials::load(&dir).unwrap())
        .await
        .unwrap();
    (dir, client)
}

fn save(dir: &Path, cred: &pb::IssuedCredential) {
    std::fs::write(dir.join("cert.pem"), &cred.cert_pem).unwrap();
    std::fs::write(dir.join("ca.pem"), &cred.ca_pem).unwrap();
}

async fn channel(url: &str, dir: Option<&Path>, ca_pem: &[u8]) -> Option<Channel> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    if let Some(d) = dir {
        let (cert, key) = (
            std::fs::read(d.join("cert.pem")).unwrap(),
            std::fs::read(d.join("key.pem")).unwrap(),
        );
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(url.to_string())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .ok()
}

/// Calls every RPC once; returns (rpc, outcome): Ok(()) or the status code.
async fn call_all(ch: Channel) -> Vec<(&'static str, Result<(), Code>)> {
    let mut ca = CertificateAuthorityClient::new(ch.clone());
    let mut admin = AdminClient::new(ch);
    let code = |r: Result<(), tonic::Status>| r.map_err(|s| s.code());
    // Requests are built so an allowed caller gets past authorization and then fails
    // validation (or finds nothing): no state changes, and any PermissionDenied is authz.
    let csr = b"junk".to_vec();
    let mut out = Vec::new();
    macro_rules! call {
        ($name:expr, $e:expr) => {
            out.push(($name, code($e.await.map(drop))))
        };
    }
    call!(
        "IssueCertificate",
        ca.issue_certificate(pb::IssueCertificateRequest {
            csr: csr.clone(),
            profile: "server-tls".into(),
            ..Default::default()
        })
    );
    call!(
        "IssueCertificates",
        ca.issue_certificates(tokio_stream::iter(vec![pb::IssueCertificatesRequest {
            request: Some(pb::IssueCertificateRequest {
                csr: csr.clone(),
                profile: "server-tls".into(),
                ..Default::default()
            }),
            id: "junk".into(),
        }]))
    );
    call!(
        "GetCertificate",
        ca.get_certificate(pb::GetCertificateRequest {
            serial: "0123456789abcdef".into()
        })
    );
    call!(
        "ListCertificates",
        ca.list_certificates(pb::ListCertificatesRequest::default())
    );
    call!("ListProfiles", ca.list_profiles(pb::ListProfilesRequest {}));
    call!(
        "GetTrustBundle",
        ca.get_trust_bundle(pb::GetTrustBundleRequest {})
    );
    call!(
        "RevokeCertificate",
        ca.revoke_certificate(pb::RevokeCertificateRequest {
            serial: "0123456789abcdef".into(),
            ..Default::default()
        })
    );
    call!(
        "GetRevocationStatus",
        ca.get_revocation_status(pb::GetRevocationStatusRequest {
            serial: "0123456789abcdef".into()
        })
    );
    call!(
        "WatchRevocations",
        ca.watch_revocations(pb::WatchRevocationsRequest {})
    );
    call!("GetCrl", ca.get_crl(pb::GetCrlRequest::default()));
    call!(
        "VerifyCertificate",
        ca.verify_certificate(pb::VerifyCertificateRequest {
            leaf: b"junk".to_vec(),
            ..Default::default()
        })
    );
    call!(
        "Timestamp",
        ca.timestamp(pb::TimestampRequest {
            time_stamp_req: b"junk".to_vec()
        })
    );
    call!(
        "VerifySignature",
        ca.verify_signature(pb::VerifySignatureRequest {
            signature: b"junk".to_vec(),
            ..Default::default()
        })
    );
    call!(
        "GetStatistics",
        ca.get_statistics(pb::GetStatisticsRequest {
            by: "fortnight".into(),
            ..Default::default()
        })
    );
    call!(
        "GetReport",
        admin.get_report(pb::GetReportRequest {
            period: "not-a-month".into(),
            ..Default::default()
        })
    );
    call!(
        "CreateConsoleLogin",
        admin.create_console_login(pb::CreateConsoleLoginRequest {})
    );
    call!(
        "CrossCertify",
        admin.cross_certify(pb::CrossCertifyRequest {
            peer: Some(pb::cross_certify_request::Peer::CaCert(b"junk".to_vec())),
            ..Default::default()
        })
    );
    call!(
        "AddPeer",
        admin.add_peer(pb::AddPeerRequest {
            name: "p".into(),
            ca_cert: b"junk".to_vec(),
            received_cross: vec![]
        })
    );
    call!("ListPeers", admin.list_peers(pb::ListPeersRequest {}));
    call!(
        "GetPeer",
        admin.get_peer(pb::GetPeerRequest {
            name: "nope".into()
        })
    );
    call!(
        "SetPeerStatus",
        admin.set_peer_status(pb::SetPeerStatusRequest {
            name: "nope".into(),
            status: pb::PeerStatus::Suspended.into()
        })
    );
    call!(
        "RemovePeer",
        admin.remove_peer(pb::RemovePeerRequest {
            name: "nope".into()
        })
    );
    call!(
        "AddPlatform",
        admin.add_platform(pb::AddPlatformRequest {
            name: "bad name!".into(),
            ..Default::default()
        })
    );
    call!(
        "ListPlatforms",
        admin.list_platforms(pb::ListPlatformsRequest {})
    );
    call!(
        "RotatePlatformCredential",
        admin.rotate_platform_credential(pb::RotatePlatformCredentialRequest {
            name: "nope".into(),
            csr: vec![]
        })
    );
    call!(
        "SetPlatformDisabled",
        admin.set_platform_disabled(pb::SetPlatformDisabledRequest {
            name: "nope".into(),
            disabled: true
        })
    );
    call!(
        "CreateAcmeKey",
        admin.create_acme_key(pb::CreateAcmeKeyRequest {
            platform: "nope".into()
        })
    );
    call!(
        "AddAuditor",
        admin.add_auditor(pb::AddAuditorRequest {
            name: "x".into(),
            csr: b"junk".to_vec()
        })
    );
    call!(
        "ListAudit",
        admin.list_audit(pb::ListAuditRequest {
            after_id: 0,
            limit: 1
        })
    );
    call!(
        "ListCheckpoints",
        admin.list_checkpoints(pb::ListCheckpointsRequest {})
    );
    call!("ListIssuers", admin.list_issuers(pb::ListIssuersRequest {}));
    call!(
        "GetIssuer",
        admin.get_issuer(pb::GetIssuerRequest {
            name: "default".into()
        })
    );
    // Dry runs: what an admin may do is checked without changing the CA.
    call!(
        "AddIssuer",
        admin.add_issuer(pb::AddIssuerRequest {
            name: "second".into(),
            algorithm: "p384".into(),
            dry_run: true
        })
    );
    call!(
        "RotateIssuer",
        admin.rotate_issuer(pb::RotateIssuerRequest {
            name: "default".into(),
            dry_run: true,
            root: false
        })
    );
    call!(
        "RetireIssuer",
        admin.retire_issuer(pb::RetireIssuerRequest {
            name: "default".into(),
            ca: String::new(),
            dry_run: true
        })
    );
    out
}

const READS: &[&str] = &[
    "GetCertificate",
    "ListCertificates",
    "ListProfiles",
    "GetTrustBundle",
    "GetRevocationStatus",
    "WatchRevocations",
    "GetCrl",
    "VerifyCertificate",
    "VerifySignature",
    "GetStatistics",
];
const AUDITOR_ADMIN_READS: &[&str] = &[
    "ListPeers",
    "GetPeer",
    "ListPlatforms",
    "ListAudit",
    "ListCheckpoints",
    "GetReport",
    "CreateConsoleLogin",
    "ListIssuers",
    "GetIssuer",
];
const PLATFORM_WRITES: &[&str] = &[
    "IssueCertificate",
    "IssueCertificates",
    "RevokeCertificate",
    "Timestamp",
];

fn denied(r: &Result<(), Code>) -> bool {
    matches!(
        r,
        Err(Code::PermissionDenied
            | Code::Unauthenticated
            | Code::Unavailable
            | Code::Unknown
            | Code::Cancelled)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let ca = TestCa::start().await;
    let base = ca.dir.path().to_path_buf();
    let ca_pem = std::fs::read(ca.data_dir().join("admin/ca.pem")).unwrap();
    let mk_platform = |name: &'static str, suffix: &'static str| {
        let client = ca.client.clone();
        let dir = base.join(name);
        async move {
            let csr = key_and_csr(&dir, name);
            let cred = client
                .add_platform(pb::AddPlatformRequest {
                    name: name.into(),
                    dns_suffixes: vec![suffix.into()],
                    profiles: vec!["server-tls".into(), "client-tls".into()],
                    csr,
                    ..Default::default()
                })
                .await
                .unwrap();
            save(&dir, &cred);
            (dir, cred.serial)
        }
    };
    let (a_dir, _) = mk_platform("platform-a", "a.example.cn").await;
    let (b_dir, _) = mk_platform("platform-b", "b.example.cn").await;
    let (disabled_dir, _) = mk_platform("platform-c", "c.example.cn").await;
    ca.client
        .set_platform_disabled("platform-c", true)
        .await
        .unwrap();
    let (revoked_dir, revoked_serial) = mk_platform("platform-d", "d.example.cn").await;
    ca.client.revoke(&revoked_serial, 1, None).await.unwrap();
    let auditor_dir = base.join("auditor");
    let csr = key_and_csr(&auditor_dir, "auditor");
    save(
        &auditor_dir,
        &ca.client.add_auditor("alice", csr).await.unwrap(),
    );
    let expired_dir = expired_credential(&ca, &base.join("expired"));

    let url = ca.grpc_url();
    let admin_dir = ca.data_dir().join("admin");
    let who: Vec<(&str, Option<PathBuf>)> = vec![
        ("no client certificate", None),
        ("expired credential", Some(expired_dir)),
        ("revoked credential", Some(revoked_dir)),
        ("disabled platform", Some(disabled_dir)),
        ("platform A", Some(a_dir.clone())),
        ("platform B", Some(b_dir)),
        ("auditor", Some(auditor_dir)),
        ("admin", Some(admin_dir)),
    ];
    let mut failures = Vec::new();
    for (name, dir) in &who {
        let Some(ch) = channel(&url, dir.as_deref(), &ca_pem).await else {
            // The TLS handshake itself refused: every RPC is denied.
            assert!(
                matches!(*name, "no client certificate" | "expired credential"),
                "{name}: could not connect"
            );
            continue;
        };
        for (rpc, r) in call_all(ch).await {
            let allowed = match *name {
                "admin" => true,
                "auditor" => READS.contains(&rpc) || AUDITOR_ADMIN_READS.contains(&rpc),
                "platform A" | "platform B" => {
                    READS.contains(&rpc) || PLATFORM_WRITES.contains(&rpc)
                }
                _ => false,
            };
            if allowed == denied(&r) {
                failures.push(format!(
                    "{name} / {rpc}: expected {}, got {r:?}",
                    if allowed { "allow" } else { "deny" }
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix mismatches:\n{}",
        failures.join("\n")
    );
}

/// A credential whose certificate has expired, registered like a real one (signed by the
/// credential CA, pinned by its hash).
fn expired_credential(ca: &TestCa, dir: &Path) -> PathBuf {
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    use rcgen::PublicKeyData;
    let serial = ecca::core::serial::Serial::random().unwrap();
    let day = 86_400;
    let der = credential_cert(
        &ca.data_dir(),
        &ca.http_base(),
        &serial,
        &key.subject_public_key_info(),
        "expired",
        (-20 * day, -10 * day),
    );
    std::fs::write(
        dir.join("cert.pem"),
        ecca::pemfile::certs_to_pem([der.as_slice()]),
    )
    .unwrap();
    let db = rusqlite::Connection::open(ca.data_dir().join("ecca.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute(
        "INSERT INTO credentials (serial, role, tenant, disabled, cert_sha256) VALUES (?1, 'admin', '', 0, ?2)",
        [serial.hex(), ecca::core::fingerprint(&der)],
    )
    .unwrap();
    dir.to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platforms_are_isolated_and_rate_limited() {
    let ca = TestCa::start().await;
    let base = ca.dir.path().to_path_buf();
    let mut clients = Vec::new();
    for (name, suffix, rate) in [
        ("shop-a", "a.example.cn", None),
        ("shop-b", "b.example.cn", Some(2)),
    ] {
        let req = pb::AddPlatformRequest {
            name: name.into(),
            dns_suffixes: vec![suffix.into()],
            profiles: vec!["server-tls".into()],
            max_days: Some(30),
            rate_per_minute: rate,
            ..Default::default()
        };
        clients.push(platform(&ca, req).await.1);
    }
    let (a, b) = (&clients[0], &clients[1]);
    let refused = |e: ecca::Error| match e {
        ecca::Error::Rejected { code, message } => (code, message),
        other => panic!("{other:?}"),
    };
    // A issues under its suffix, clamped to its 30 days; not for B's names, nor other profiles.
    let ok = a
        .issue(
            p256_csr(&CsrSpec::cn("shop.a.example.cn").dns("shop.a.example.cn")),
            "server-tls",
            Some(300),
        )
        .await
        .unwrap();
    let cert = ok.certificate.unwrap();
    let days = (cert.not_after.unwrap().seconds - cert.not_before.unwrap().seconds) / 86_400;
    assert_eq!(days, 30);
    let (code, msg) = refused(
        a.issue(
            p256_csr(&CsrSpec::cn("shop.b.example.cn").dns("shop.b.example.cn")),
            "server-tls",
            None,
        )
        .await
        .unwrap_err(),
    );
    assert!(
        code == tonic::Code::PermissionDenied && msg.contains("outside platform shop-a"),
        "{msg}"
    );
    let (code, _) = refused(
        a.issue(p256_csr(&CsrSpec::cn("api")), "client-tls", None)
            .await
            .unwrap_err(),
    );
    assert_eq!(code, tonic::Code::PermissionDenied);
    // B cannot see or revoke A's certificate; its listing holds only its own.
    let (code, _) = refused(b.get(&cert.serial).await.unwrap_err());
    assert_eq!(code, tonic::Code::NotFound);
    let (code, _) = refused(b.revoke(&cert.serial, 1, None).await.unwrap_err());
    assert_eq!(code, tonic::Code::NotFound);
    b.issue(
        p256_csr(&CsrSpec::cn("x.b.example.cn").dns("x.b.example.cn")),
        "server-tls",
        None,
    )
    .await
    .unwrap();
    let listed = b
        .list(pb::ListCertificatesRequest::default())
        .await
        .unwrap();
    assert!(
        listed.certificates.iter().all(|c| c.tenant == "shop-b") && listed.certificates.len() == 1
    );
    assert!(a.get(&cert.serial).await.is_ok());
    // B's rate: 2 per minute (one used above).
    b.issue(
        p256_csr(&CsrSpec::cn("y.b.example.cn").dns("y.b.example.cn")),
        "server-tls",
        None,
    )
    .await
    .unwrap();
    let (code, msg) = refused(
        b.issue(
            p256_csr(&CsrSpec::cn("z.b.example.cn").dns("z.b.example.cn")),
            "server-tls",
            None,
        )
        .await
        .unwrap_err(),
    );
    assert!(
        code == tonic::Code::ResourceExhausted && msg.contains("retry"),
        "{code}: {msg}"
    );
    // Rotation: the old credential stops working at its next call.
    let dir = base.join("shop-a-2");
    let csr = key_and_csr(&dir, "shop-a");
    save(
        &dir,
        &ca.client.rotate_platform("shop-a", csr).await.unwrap(),
    );
    let (code, msg) = refused(a.profiles().await.unwrap_err());
    assert!(
        code == tonic::Code::PermissionDenied && msg.contains("disabled"),
        "{msg}"
    );
    let a2 = Client::connect(&ca.grpc_url(), &Credentials::load(&dir).unwrap())
        .await
        .unwrap();
    a2.profiles().await.unwrap();
}

/// Platform A cannot obtain a certificate whose subject names platform B: a DNS-shaped CN is
/// held to A's suffixes, O and the USCC must be registered to A, other CN/OU values must be
/// among A's registered names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platforms_cannot_name_each_other_in_subjects() {
    let ca = TestCa::start().await;
    let mut clients = Vec::new();
    for (name, suffix, org, uscc) in [
        ("shop-a", "a.example.cn", "Shop A Ltd", "91350100M000100Y43"),
        ("shop-b", "b.example.cn", "ShopB Ltd", "91110000600037341L"),
    ] {
        let req = pb::AddPlatformRequest {
            name: name.into(),
            dns_suffixes: vec![suffix.into()],
            profiles: vec!["client-tls".into(), "merchant-ov".into()],
            organizations: vec![org.into()],
            usccs: vec![uscc.into()],
            names: vec!["api-client-*".into()],
            ..Default::default()
        };
        clients.push(platform(&ca, req).await.1);
    }
    let a = &clients[0];
    let spec = |cn: &str, org: Option<&str>| CsrSpec {
        cn: Some(cn.into()),
        org: org.map(str::to_string),
        ..Default::default()
    };
    // What A may do.
    for s in [
        spec("api.a.example.cn", None),
        spec("api-client-7", Some("Shop A Ltd")),
        spec("API-Client-8", Some("shop a  ltd")),
    ] {
        a.issue(p256_csr(&s), "client-tls", None).await.unwrap();
    }
    let merchant = |org: &str, uscc: &str| CsrSpec {
        cn: Some("api-client-9".into()),
        org: Some(org.into()),
        country: Some("CN".into()),
        serial_number: Some(uscc.into()),
        ..Default::default()
    };
    a.issue(
        p256_csr(&merchant("Shop A Ltd", "91350100M000100Y43")),
        "merchant-ov",
        None,
    )
    .await
    .unwrap();
    // What names B (or anything not A's) is refused, saying which attribute.
    for (s, profile, attr) in [
        (spec("api.shopb.example.cn", None), "client-tls", "CN"),
        (spec("api.b.example.cn", None), "client-tls", "CN"),
        (spec("ShopB Ltd", None), "client-tls", "CN"),
        (spec("api-client-7", Some("ShopB Ltd")), "client-tls", "O"),
        (
            merchant("ShopB Ltd", "91350100M000100Y43"),
            "merchant-ov",
            "O",
        ),
        (
            merchant("Shop A Ltd", "91110000600037341L"),
            "merchant-ov",
            "serialNumber",
        ),
    ] {
        match a.issue(p256_csr(&s), profile, None).await.unwrap_err() {
            ecca::Error::Rejected { code, message } => assert!(
                code == tonic::Code::PermissionDenied
                    && message.contains(&format!("subject {attr}")),
                "{s:?}: {code}: {message}"
            ),
            other => panic!("{other:?}"),
        }
    }
    // The admin changes what A may use; an unknown platform is NOT_FOUND.
    let p = ca
        .client
        .set_platform_subjects(pb::SetPlatformSubjectsRequest {
            name: "shop-a".into(),
            names: vec!["ShopB Ltd".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(p.names, ["ShopB Ltd"]);
    a.issue(p256_csr(&spec("ShopB Ltd", None)), "client-tls", None)
        .await
        .unwrap();
    let err = ca
        .client
        .set_platform_subjects(pb::SetPlatformSubjectsRequest {
            name: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ecca::Error::Rejected { code, .. } if code == tonic::Code::NotFound),
        "{err:?}"
    );
}

/// An open WatchRevocations stream ends once its credential no longer authenticates
/// (rotated away here), saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_end_when_their_credential_goes() {
    let ca = TestCa::start().await;
    let (dir, platform) = platform(
        &ca,
        pb::AddPlatformRequest {
            name: "watcher".into(),
            dns_suffixes: vec!["w.example.cn".into()],
            profiles: vec!["server-tls".into()],
            ..Default::default()
        },
    )
    .await;
    let mut stream = platform.watch_revocations().await.unwrap();
    let next = dir.join("next");
    let csr = key_and_csr(&next, "watcher");
    ca.client.rotate_platform("watcher", csr).await.unwrap();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), stream.message())
        .await
        .expect("the stream ends within seconds");
    let status = ended.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("disabled"), "{status:?}");
}

/// Role checks come before arguments are looked at: a caller without the role learns
/// PERMISSION_DENIED, not what is wrong with its request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_is_checked_before_arguments() {
    let ca = TestCa::start().await;
    let dir = ca.dir.path().join("auditor");
    let csr = key_and_csr(&dir, "auditor");
    save(&dir, &ca.client.add_auditor("bob", csr).await.unwrap());
    let ch = channel(
        &ca.grpc_url(),
        Some(&dir),
        &std::fs::read(dir.join("ca.pem")).unwrap(),
    )
    .await
    .unwrap();
    let mut admin = AdminClient::new(ch.clone());
    let mut cas = CertificateAuthorityClient::new(ch);
    let code = admin
        .cross_certify(pb::CrossCertifyRequest {
            permitted_ip: vec!["not a cidr".into()],
            policy_maps: vec!["nonsense".into()],
            ..Default::default()
        })
        .await
        .unwrap_err()
        .code();
    assert_eq!(code, Code::PermissionDenied);
    let code = cas
        .revoke_certificate(pb::RevokeCertificateRequest {
            serial: "zz".into(),
            reason: 99,
            ..Default::default()
        })
        .await
        .unwrap_err()
        .code();
    assert_eq!(code, Code::PermissionDenied);
    let code = cas
        .timestamp(pb::TimestampRequest {
            time_stamp_req: b"garbage".to_vec(),
        })
        .await
        .unwrap_err()
        .code();
    assert_eq!(code, Code::PermissionDenied);
}

/// IssueCertificates answers every item of a platform's stream on its own: issued within the
/// platform's names and rate, refused with the code IssueCertificate would give otherwise,
/// each answer naming its request; the issued certificates are the platform's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_issuance_answers_each_item_under_the_platforms_policy() {
    let ca = TestCa::start().await;
    let req = pb::AddPlatformRequest {
        name: "bulk-shop".into(),
        dns_suffixes: vec!["bulk.example.cn".into()],
        profiles: vec!["server-tls".into()],
        rate_per_minute: Some(5),
        ..Default::default()
    };
    let (_, shop) = platform(&ca, req).await;
    let mut items: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            let name = format!("m{i}.bulk.example.cn");
            (name.clone(), p256_csr(&CsrSpec::cn(&name).dns(&name)))
        })
        .collect();
    items.insert(2, ("junk".into(), b"not a CSR".to_vec()));
    let outside = "shop.other.example.cn";
    items.insert(
        4,
        (outside.into(), p256_csr(&CsrSpec::cn(outside).dns(outside))),
    );
    let answers = shop
        .issue_many(items.clone(), "server-tls", None, "")
        .await
        .unwrap();
    assert_eq!(answers.len(), items.len());
    let mut seen = vec![false; items.len()];
    let (mut issued, mut exhausted) = (Vec::new(), 0);
    for a in &answers {
        let i = a.index as usize;
        assert!(
            !std::mem::replace(&mut seen[i], true),
            "index {i} answered twice"
        );
        assert_eq!(a.id, items[i].0);
        use pb::issue_certificates_response::Result as R;
        match (a.id.as_str(), a.result.as_ref().unwrap()) {
            ("junk", R::Error(e)) => assert_eq!(Code::from(e.code), Code::InvalidArgument, "{e:?}"),
            (name, R::Error(e)) if name == outside => {
                assert_eq!(Code::from(e.code), Code::PermissionDenied, "{e:?}");
                assert!(e.message.contains("outside platform bulk-shop"), "{e:?}");
            }
            (_, R::Error(e)) => {
                assert_eq!(Code::from(e.code), Code::ResourceExhausted, "{e:?}");
                exhausted += 1;
            }
            (name, R::Issued(r)) => {
                let cert = r.certificate.as_ref().unwrap();
                assert_eq!(cert.subject_alt_names, vec![format!("DNS:{name}")]);
                assert!(!r.chain_der.is_empty());
                issued.push(cert.serial.clone());
            }
        }
    }
    // Six good requests against a rate of five a minute: five issued, one refused.
    assert_eq!((issued.len(), exhausted), (5, 1));
    for serial in &issued {
        assert_eq!(shop.get(serial).await.unwrap().tenant, "bulk-shop");
    }
    // The admin's stream of more items than are in flight at once: all issued.
    let many: Vec<(String, Vec<u8>)> = (0..80)
        .map(|i| {
            let name = format!("n{i}.example.cn");
            (format!("{i}"), p256_csr(&CsrSpec::cn(&name).dns(&name)))
        })
        .collect();
    let answers = ca
        .client
        .issue_many(many, "server-tls", None, "")
        .await
        .unwrap();
    let mut serials: Vec<String> = answers
        .iter()
        .map(|a| match a.result.as_ref().unwrap() {
            pb::issue_certificates_response::Result::Issued(r) => {
                assert_eq!(a.id, a.index.to_string());
                r.certificate.as_ref().unwrap().serial.clone()
            }
            pb::issue_certificates_response::Result::Error(e) => panic!("{e:?}"),
        })
        .collect();
    serials.sort();
    serials.dedup();
    assert_eq!(serials.len(), 80);
}
