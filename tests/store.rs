//! The store conformance suite: one contract, run against the embedded SQLite store and against
//! PostgreSQL (a throwaway cluster this test starts). Every backend must pass it unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use ecca::Error;
use ecca::core::audit;
use ecca::core::revocation::Reason;
use ecca::core::serial::Serial;
use ecca::store::{
    CaId, Credential, CrossRecord, Direction, Done, IssuanceIntent, Issuer, ListFilter, Op,
    PeerRecord, PeerStatus, PgStore, PlatformRecord, RevokeRequest, Role, SqliteStore, Store,
};

fn intent(serial: &Serial, tenant: &str, subject: &str) -> IssuanceIntent {
    IssuanceIntent {
        serial: serial.clone(),
        issuer: Issuer::Issuing,
        ca: CaId::issuing(),
        profile: "server-tls".into(),
        tenant: tenant.into(),
        subject: subject.into(),
        sans: vec![format!("{subject}.example.cn")],
        not_before: 1_000,
        not_after: i64::MAX / 2,
        actor: "test".into(),
    }
}

/// Reserves and completes one certificate; returns its serial.
async fn issue(store: &dyn Store, tenant: &str, subject: &str) -> Serial {
    let serial = Serial::random().unwrap();
    store
        .reserve(intent(&serial, tenant, subject))
        .await
        .unwrap();
    let der = format!("DER of {subject}").into_bytes();
    store.complete(&serial, der, "test").await.unwrap();
    serial
}

fn revoke_req(serial: &Serial, tenant: Option<&str>) -> RevokeRequest {
    RevokeRequest {
        serial: serial.clone(),
        reason: Reason::KeyCompromise,
        invalidity_date: Some(500),
        tenant: tenant.map(str::to_string),
        actor: "test".into(),
    }
}

async fn certificates(store: &dyn Store) {
    let a = issue(store, "shop-a", "alpha").await;
    let got = store.get(&a).await.unwrap().expect("issued certificate");
    assert_eq!(got.serial, a.hex());
    assert_eq!(got.tenant, "shop-a");
    assert_eq!(got.sans, ["alpha.example.cn"]);
    assert_eq!(got.der, b"DER of alpha");
    assert!(got.revocation.is_none());

    // A serial is never reused, not even after it was abandoned.
    let burnt = Serial::random().unwrap();
    store.reserve(intent(&burnt, "", "burnt")).await.unwrap();
    store.abandon(&burnt, "lint refused", "test").await.unwrap();
    assert!(store.get(&burnt).await.unwrap().is_none());
    let again = store.reserve(intent(&burnt, "", "again")).await;
    assert!(again.is_err(), "a burnt serial was reserved again");
    let dup = store.reserve(intent(&a, "", "dup")).await;
    assert!(dup.is_err(), "an issued serial was reserved again");
    // Completing twice is refused.
    assert!(store.complete(&a, b"other".to_vec(), "test").await.is_err());

    // Listing: filters and pages, newest first.
    for i in 0..5 {
        issue(store, "shop-b", &format!("bravo{i}")).await;
    }
    let filter = |limit| ListFilter {
        tenant: Some("shop-b".into()),
        limit,
        ..Default::default()
    };
    let first = store.list(filter(3)).await.unwrap();
    assert_eq!(first.records.len(), 3);
    assert_eq!(first.records[0].subject, "bravo4");
    let next = first.next.expect("a second page");
    let second = store
        .list(ListFilter {
            before_id: Some(next),
            ..filter(3)
        })
        .await
        .unwrap();
    assert_eq!(second.records.len(), 2);
    assert!(second.next.is_none());
    let named = store
        .list(ListFilter {
            name_contains: Some("BRAVO3".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(named.records.len(), 1);
    let expired = store
        .list(ListFilter {
            expired_at: Some((i64::MAX / 4, true)),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(expired.records.is_empty());
}

async fn revocations(store: &dyn Store) {
    let (_, before) = store.revoked_since(0, 0).await.unwrap();
    let a = issue(store, "shop-r", "rev-a").await;
    let b = issue(store, "shop-r", "rev-b").await;
    let generation = store.auth_generation();

    // Another tenant's certificate looks absent; unknown serials are not found.
    let wrong = store.revoke(revoke_req(&a, Some("shop-x"))).await;
    assert!(matches!(wrong, Err(Error::NotFound(_))), "{wrong:?}");
    let unknown = store
        .revoke(revoke_req(&Serial::random().unwrap(), None))
        .await;
    assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");

    let record = store.revoke(revoke_req(&a, Some("shop-r"))).await.unwrap();
    let rev = record.revocation.expect("revoked");
    assert_eq!(rev.reason, Reason::KeyCompromise);
    assert_eq!(rev.invalidity_date, Some(500));
    assert_eq!(rev.seq, before + 1);
    assert_ne!(
        store.auth_generation(),
        generation,
        "revocation changes auth"
    );
    let twice = store.revoke(revoke_req(&a, None)).await;
    assert!(matches!(twice, Err(Error::Conflict(_))), "{twice:?}");
    store.revoke(revoke_req(&b, None)).await.unwrap();

    let (entries, max) = store.revoked_since(before, 0).await.unwrap();
    assert_eq!(max, before + 2);
    let order: Vec<(i64, Vec<u8>)> = entries
        .into_iter()
        .map(|(seq, e)| (seq, e.serial))
        .collect();
    assert_eq!(
        order,
        [
            (before + 1, a.as_bytes().to_vec()),
            (before + 2, b.as_bytes().to_vec())
        ]
    );
    assert!(store.revoked_since(max, 0).await.unwrap().0.is_empty());

    // CRL numbers only go up; a snapshot's numbers come with the revocations they list.
    let n1 = store.next_crl_number("issuing").await.unwrap();
    let snap = store.crl_snapshot("issuing", 2, 0).await.unwrap();
    assert_eq!(snap.numbers, [n1 + 1, n1 + 2]);
    assert_eq!(snap.max_seq, max);
    assert!(snap.revoked.iter().any(|(_, e)| e.serial == b.as_bytes()));
    assert_eq!(store.next_crl_number("root").await.unwrap(), 1);
    // Each CA certificate's CRL lists only what it signed.
    let other = CaId::of_cert(b"another issuing CA");
    let serial = Serial::random().unwrap();
    store
        .reserve(IssuanceIntent {
            ca: other.clone(),
            ..intent(&serial, "shop-r", "rev-c")
        })
        .await
        .unwrap();
    store.complete(&serial, vec![0x30], "test").await.unwrap();
    assert_eq!(store.get(&serial).await.unwrap().unwrap().ca, other);
    store.revoke(revoke_req(&serial, None)).await.unwrap();
    let theirs = store.crl_snapshot(other.as_str(), 1, 0).await.unwrap();
    let listed: Vec<&[u8]> = theirs
        .revoked
        .iter()
        .map(|(_, e)| e.serial.as_slice())
        .collect();
    assert_eq!(listed, [serial.as_bytes()]);
    assert_eq!(theirs.numbers, [1], "numbers per CA");
    let ours = store.crl_snapshot("issuing", 1, 0).await.unwrap();
    assert!(
        !ours
            .revoked
            .iter()
            .any(|(_, e)| e.serial == serial.as_bytes())
    );
    // Time-stamp serials come in blocks that never overlap.
    let (a1, a2) = store.reserve_timestamp_serials(10).await.unwrap();
    assert_eq!(a2 - a1, 9);
    let (b1, b2) = store.reserve_timestamp_serials(5).await.unwrap();
    assert_eq!((b1, b2), (a2 + 1, a2 + 5));
}

async fn credentials_and_platforms(store: &dyn Store) {
    let generation = store.auth_generation();
    let hash = |s: &str| ecca::core::fingerprint(s.as_bytes());
    for serial in ["c1", "c2", "c3"] {
        let cred = Credential {
            serial: serial.into(),
            cert_sha256: hash(serial),
            role: Role::Platform,
            tenant: "shop-c".into(),
            disabled: false,
        };
        store.add_credential(cred, "test").await.unwrap();
    }
    assert_ne!(store.auth_generation(), generation);
    // Found by the hash of the whole certificate, never by serial.
    let c2 = store
        .credential_by_cert(&hash("c2"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c2.role, c2.tenant.as_str(), c2.serial.as_str()),
        (Role::Platform, "shop-c", "c2")
    );
    assert!(store.credential_by_cert("c2").await.unwrap().is_none());
    assert!(
        store
            .credential_by_cert(&hash("nope"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.all_credentials().await.unwrap().len(), 3);
    // The same certificate cannot be registered twice.
    let again = Credential {
        serial: "c4".into(),
        cert_sha256: hash("c1"),
        role: Role::Admin,
        tenant: String::new(),
        disabled: false,
    };
    assert!(store.add_credential(again, "test").await.is_err());
    store.disable_credential(&hash("c1"), "test").await.unwrap();
    assert!(
        store
            .credential_by_cert(&hash("c1"))
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    store
        .disable_credentials("shop-c", "c3", "test")
        .await
        .unwrap();
    let all = store.credentials_of("shop-c").await.unwrap();
    let state: Vec<(&str, bool)> = all
        .iter()
        .map(|c| (c.serial.as_str(), c.disabled))
        .collect();
    assert_eq!(state, [("c1", true), ("c2", true), ("c3", false)]);

    let platform = PlatformRecord {
        name: "shop-c".into(),
        dns_suffixes: vec!["shop-c.cn".into()],
        ip_ranges: vec!["10.0.0.0/8".into()],
        profiles: vec!["server-tls".into()],
        max_days: Some(90),
        rate_per_min: None,
        disabled: false,
        created_at: 0,
        organizations: vec!["Shop C Ltd".into()],
        usccs: vec![],
        names: vec!["api-*".into()],
    };
    store.add_platform(platform.clone(), "test").await.unwrap();
    let dup = store.add_platform(platform, "test").await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
    store
        .set_platform_disabled("shop-c", true, "test")
        .await
        .unwrap();
    let p = store.platforms().await.unwrap();
    assert_eq!(p.len(), 1);
    assert!(p[0].disabled);
    assert_eq!((p[0].max_days, p[0].rate_per_min), (Some(90), None));
    assert_eq!(p[0].ip_ranges, ["10.0.0.0/8"]);
    assert_eq!(
        (p[0].organizations.as_slice(), p[0].names.as_slice()),
        (&["Shop C Ltd".to_string()][..], &["api-*".to_string()][..])
    );
    store
        .set_platform_subjects(
            "shop-c",
            vec![],
            vec!["91350100M000100Y43".into()],
            vec![],
            "test",
        )
        .await
        .unwrap();
    let p = store.platforms().await.unwrap();
    assert!(p[0].organizations.is_empty());
    assert_eq!(p[0].usccs, ["91350100M000100Y43"]);
    let missing = store
        .set_platform_subjects("nope", vec![], vec![], vec![], "test")
        .await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    let missing = store.set_platform_disabled("nope", true, "test").await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}

async fn federation(store: &dyn Store) {
    let peer = PeerRecord {
        name: "region-b".into(),
        ca_cert: b"peer CA".to_vec(),
        subject: "CN=Region B".into(),
        status: PeerStatus::Active,
        added_at: 0,
    };
    store.add_peer(peer.clone(), "test").await.unwrap();
    let dup = store.add_peer(peer, "test").await;
    assert!(matches!(dup, Err(Error::Conflict(_))), "{dup:?}");
    store
        .set_peer_status("region-b", PeerStatus::Suspended, "test")
        .await
        .unwrap();
    assert_eq!(
        store.peers().await.unwrap()[0].status,
        PeerStatus::Suspended
    );
    let record = |serial: &str, direction| CrossRecord {
        serial: serial.into(),
        peer: "region-b".into(),
        direction,
        ca: CaId::root(),
        der: b"cross".to_vec(),
        not_after: 9_999_999_999,
        created_at: 0,
        revoked: None,
    };
    // Ours: reserved (stored, audited) before signing, then completed; or abandoned.
    store
        .reserve_cross(record("0a", Direction::Issued), "test")
        .await
        .unwrap();
    let reused = store
        .reserve_cross(record("0a", Direction::Issued), "test")
        .await;
    assert!(matches!(reused, Err(Error::Storage(_))), "{reused:?}");
    assert!(
        store.cross_certs().await.unwrap().is_empty(),
        "pending is not listed"
    );
    store
        .complete_cross("0a", b"cross".to_vec(), "test")
        .await
        .unwrap();
    store
        .reserve_cross(record("0c", Direction::Issued), "test")
        .await
        .unwrap();
    store
        .abandon_cross("0c", "lint refused", "test")
        .await
        .unwrap();
    store
        .add_cross(record("0b", Direction::Received), "test")
        .await
        .unwrap();
    let listed: Vec<_> = store
        .cross_certs()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.serial)
        .collect();
    assert_eq!(listed, ["0a", "0b"], "abandoned serials are never listed");
    let revoked = store.remove_peer("region-b", "test").await.unwrap();
    assert_eq!(
        revoked,
        ["0a"],
        "only the certificates we issued are revoked"
    );
    let cross = store.cross_certs().await.unwrap();
    let issued = cross.iter().find(|c| c.serial == "0a").unwrap();
    assert_eq!(
        issued.revoked.map(|r| r.1),
        Some(Reason::CessationOfOperation)
    );
    assert!(store.peers().await.unwrap().is_empty());
    let gone = store.remove_peer("region-b", "test").await;
    assert!(matches!(gone, Err(Error::NotFound(_))), "{gone:?}");
}

/// Many concurrent writers: distinct serials, every one stored, one unbroken audit chain.
async fn concurrency(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { issue(store.as_ref(), "shop-p", &format!("p{i}")).await })
        })
        .collect();
    let mut serials = HashSet::new();
    for t in tasks {
        serials.insert(t.await.unwrap().hex());
    }
    assert_eq!(serials.len(), 200);
    let page = store
        .list(ListFilter {
            tenant: Some("shop-p".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.records.len(), 200);

    // One bad write among many concurrent ones fails alone.
    let taken = Serial::parse_hex(&page.records[0].serial).unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = store.clone();
            let serial = if i == 20 {
                taken.clone()
            } else {
                Serial::random().unwrap()
            };
            tokio::spawn(async move { store.reserve(intent(&serial, "shop-q", "q")).await })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        failed += usize::from(t.await.unwrap().is_err());
    }
    assert_eq!(failed, 1, "only the reused serial is refused");
}

async fn audit_chain(store: &dyn Store) {
    store
        .audit_event("test", "test.event", "object", "detail")
        .await
        .unwrap();
    let entries = store.audit(0, u32::MAX).await.unwrap();
    let (head_id, head_hash) = store.audit_head().await.unwrap();
    let last = entries.last().unwrap();
    assert_eq!((last.id, &last.hash), (head_id, &head_hash));
    assert_eq!(last.event, "test.event");
    let checkpoint = ecca::store::Checkpoint {
        id: 0,
        upto_id: head_id,
        head_hash: head_hash.clone(),
        at: 1,
        signature: b"sig".to_vec(),
    };
    store.add_checkpoint(checkpoint).await.unwrap();
    let cps = store.checkpoints().await.unwrap();
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].upto_id, head_id);
    let verdict = audit::verify(&entries, &cps, |_, sig| sig == b"sig");
    assert_eq!(verdict.problem, None, "audit chain broken");
    // Every state change above was audited.
    for event in [
        "certificate.signing",
        "certificate.issued",
        "certificate.abandoned",
        "certificate.revoked",
        "credential.added",
        "credential.rotated",
        "platform.added",
        "platform.disabled",
        "peer.added",
        "peer.status",
        "peer.removed",
        "cross_certificate.signing",
        "cross_certificate.issued",
        "cross_certificate.abandoned",
        "cross_certificate.stored",
        "timestamp.block",
    ] {
        assert!(
            entries.iter().any(|e| e.event == event),
            "no audit entry for {event}"
        );
    }
}

/// Issuers: recorded once whoever records them, read back exactly, each change audited once.
async fn issuers(store: &dyn Store) {
    use ecca::core::keys::CaKeyAlg;
    use ecca::store::{CaRole, CaState, IssuerCert, IssuerRecord};
    let cert = |role, der: &[u8]| IssuerCert {
        sha256: ecca::core::fingerprint(der),
        ca_id: CaId::of_cert(der),
        key_ref: "file:ca/issuers/national/x.key".into(),
        parent: CaId::of_cert(b"root"),
        wrapped_key: None,
        role,
        state: CaState::Active,
        der: der.to_vec(),
        subject: "CN=Test".into(),
        serial: "41".into(),
        not_after: 2_000_000_000,
        added_at: 0,
    };
    let record = IssuerRecord {
        name: "national".into(),
        algorithm: CaKeyAlg::P384,
        created_at: 0,
        certs: vec![
            cert(CaRole::Issuing, b"issuing"),
            cert(CaRole::Root, b"root"),
        ],
    };
    store.add_issuer(record.clone(), "test").await.unwrap();
    // A second instance starting on the same database records nothing more.
    let mut other = record.clone();
    other.certs.truncate(1);
    store.add_issuer(other, "test").await.unwrap();
    let all = store.issuers().await.unwrap();
    let got = all.iter().find(|i| i.name == "national").unwrap();
    assert_eq!(got.algorithm, CaKeyAlg::P384);
    let roles: Vec<CaRole> = got.certs.iter().map(|c| c.role).collect();
    assert_eq!(roles, [CaRole::Root, CaRole::Issuing], "roots first");
    assert_eq!(got.certs[0].der, b"root");
    assert_eq!(got.certs[1].sha256, ecca::core::fingerprint(b"issuing"));
    let entries = store.audit(0, 10_000).await.unwrap();
    let added: Vec<_> = entries
        .iter()
        .filter(|e| e.event == "issuer.added" && e.object == "national")
        .collect();
    assert_eq!(added.len(), 1, "audited once");
    assert!(
        added[0].detail.contains("algorithm=p384"),
        "{}",
        added[0].detail
    );

    // Rotation: the new issuing CA is active, the old one retiring, in one audited step.
    let old = CaId::of_cert(b"issuing");
    let new = cert(CaRole::Issuing, b"issuing 2");
    let rotate = |certs: Vec<IssuerCert>, replaces: Vec<CaId>| Op::AddIssuerCerts {
        issuer: "national".into(),
        certs,
        replaces,
        actor: "test".into(),
    };
    match store
        .write(rotate(vec![new.clone()], vec![old.clone()]))
        .await
        .unwrap()
    {
        Done::Serials(retiring) => assert_eq!(retiring, [old.to_string()]),
        other => panic!("{other:?}"),
    }
    let states = || async {
        let all = store.issuers().await.unwrap();
        let got = all.into_iter().find(|i| i.name == "national").unwrap();
        got.certs
            .into_iter()
            .map(|c| (c.ca_id, c.state))
            .collect::<Vec<_>>()
    };
    let state_of = |states: &[(CaId, CaState)], id: &CaId| {
        states.iter().find(|(i, _)| i == id).map(|(_, s)| *s)
    };
    let now = states().await;
    assert_eq!(state_of(&now, &old), Some(CaState::Retiring));
    assert_eq!(state_of(&now, &new.ca_id), Some(CaState::Active));
    assert_eq!(
        state_of(&now, &CaId::of_cert(b"root")),
        Some(CaState::Active),
        "roots untouched"
    );
    // Another instance rotating from what it saw before: refused, nothing recorded.
    let late = cert(CaRole::Issuing, b"issuing 3");
    let raced = store
        .write(rotate(vec![late.clone()], vec![old.clone()]))
        .await
        .unwrap_err();
    assert!(matches!(raced, ecca::Error::Conflict(_)), "{raced}");
    assert_eq!(states().await, now, "a refused rotation changes nothing");
    // Root rollover: a new root, a link certificate and an issuing CA under the new root
    // replace the active root and issuing CA at once; a sealed key is kept as given.
    let root2 = CaId::of_cert(b"root 2");
    let link = IssuerCert {
        key_ref: String::new(),
        parent: CaId::of_cert(b"root"),
        ..cert(CaRole::Link, b"link")
    };
    let issuing4 = IssuerCert {
        parent: root2.clone(),
        wrapped_key: Some(ecca::core::records::WrappedKey(vec![7; 60])),
        ..cert(CaRole::Issuing, b"issuing 4")
    };
    let generation = vec![
        IssuerCert {
            parent: root2.clone(),
            ..cert(CaRole::Root, b"root 2")
        },
        link.clone(),
        issuing4.clone(),
    ];
    let replaced = vec![CaId::of_cert(b"root"), new.ca_id.clone()];
    match store.write(rotate(generation, replaced)).await.unwrap() {
        Done::Serials(mut retiring) => {
            retiring.sort();
            let mut want = vec![CaId::of_cert(b"root").to_string(), new.ca_id.to_string()];
            want.sort();
            assert_eq!(retiring, want);
        }
        other => panic!("{other:?}"),
    }
    let all = store.issuers().await.unwrap();
    let got = all.iter().find(|i| i.name == "national").unwrap();
    let roles: Vec<&str> = got.certs.iter().map(|c| c.role.as_str()).collect();
    assert_eq!(
        roles,
        ["root", "root", "link", "issuing", "issuing", "issuing"]
    );
    let stored = |id: &CaId| got.certs.iter().find(|c| &c.ca_id == id).unwrap();
    let read_link = stored(&link.ca_id);
    assert_eq!(
        read_link,
        &IssuerCert {
            added_at: read_link.added_at,
            ..link.clone()
        },
        "read back as written (added_at is the store's clock)"
    );
    assert_eq!(stored(&issuing4.ca_id).wrapped_key, issuing4.wrapped_key);
    assert_eq!(stored(&issuing4.ca_id).parent, root2);
    // Retiring: only from the state it is in; a stale request is refused and changes nothing.
    let retire = |from| Op::SetCaState {
        issuer: "national".into(),
        ca_id: old.clone(),
        from,
        to: CaState::Retired,
        actor: "test".into(),
    };
    let stale = store.write(retire(CaState::Active)).await.unwrap_err();
    assert!(matches!(stale, ecca::Error::NotFound(_)), "{stale}");
    store.write(retire(CaState::Retiring)).await.unwrap();
    let entries = store.audit(0, 100_000).await.unwrap();
    let events: Vec<&str> = entries
        .iter()
        .filter(|e| e.object == "national")
        .map(|e| e.event.as_str())
        .collect();
    assert_eq!(
        events,
        [
            "issuer.added",
            "issuer.certificates_added",
            "issuer.certificates_added",
            "issuer.state"
        ]
    );
    // The same CA certificate cannot be recorded twice.
    let again = store
        .write(rotate(vec![issuing4.clone()], vec![issuing4.ca_id.clone()]))
        .await
        .unwrap_err();
    assert!(matches!(again, ecca::Error::Conflict(_)), "{again}");
}

async fn conformance(store: Arc<dyn Store>) {
    certificates(store.as_ref()).await;
    issuers(store.as_ref()).await;
    revocations(store.as_ref()).await;
    credentials_and_platforms(store.as_ref()).await;
    federation(store.as_ref()).await;
    concurrency(store.clone()).await;
    audit_chain(store.as_ref()).await;
}

/// Checks a backend's columns (table -> column names, any order) against the one schema.
fn matches_schema(backend: &str, mut actual: std::collections::BTreeMap<String, Vec<String>>) {
    for (table, columns) in ecca::store::migrate::schema() {
        let mut have = actual
            .remove(table)
            .unwrap_or_else(|| panic!("{backend}: no table {table}"));
        have.retain(|c| !ecca::store::migrate::BACKEND_ONLY.contains(&(table, c.as_str())));
        let mut want: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        have.sort();
        want.sort();
        assert_eq!(
            have, want,
            "{backend}: table {table} differs from the schema"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ecca.db");
    let store = SqliteStore::open(&path).unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let mut tables = std::collections::BTreeMap::new();
    for (table, _) in ecca::store::migrate::schema() {
        let mut stmt = c.prepare(&format!("PRAGMA table_info({table})")).unwrap();
        let cols: Vec<String> = stmt
            .query_map([], |r| r.get(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables.insert(table.to_string(), cols);
    }
    matches_schema("sqlite", tables);
    conformance(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_conforms() {
    let Some(pg) = common::pg::PgCluster::start() else {
        return;
    };
    let url = pg.database("conformance");
    let store = PgStore::open(&url).await.unwrap();
    let rows = store
        .pool()
        .get()
        .await
        .unwrap()
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap();
    let mut tables = std::collections::BTreeMap::<String, Vec<String>>::new();
    for r in rows {
        tables.entry(r.get(0)).or_default().push(r.get(1));
    }
    matches_schema("postgres", tables);
    conformance(Arc::new(store)).await;
    // Reopening migrates nothing and sees everything.
    let again = PgStore::open(&url).await.unwrap();
    assert!(again.audit_head().await.unwrap().0 > 0);
    assert!(
        PgStore::open("postgres://ecca@127.0.0.1:1/none")
            .await
            .is_err()
    );
}

/// A CA and a PostgreSQL server certificate for 127.0.0.1 (PEM): (ca, cert, key).
fn pg_tls_material() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "database CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_authenticates_the_server() {
    let (ca, cert, key) = pg_tls_material();
    let Some(pg) = common::pg::PgCluster::start_tls(&cert, &key) else {
        return;
    };
    let url = pg.database("tls");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("db-ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let tls_url = format!("{url}?sslmode=require&sslrootcert={}", ca_file.display());
    let store = PgStore::open(&tls_url).await.unwrap();
    let client = store.pool().get().await.unwrap();
    let encrypted: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted, "the connection is not TLS");
    issue(&store, "", "over-tls").await;

    // A server the given CA did not certify is refused.
    let (other_ca, _, _) = pg_tls_material();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, other_ca).unwrap();
    let wrong = format!("{url}?sslrootcert={}", other.display());
    assert!(PgStore::open(&wrong).await.is_err());
    // TLS without a CA to check the server against is refused before connecting.
    let unchecked = PgStore::open(&format!("{url}?sslmode=require"))
        .await
        .unwrap_err();
    assert!(unchecked.to_string().contains("sslrootcert"), "{unchecked}");
}

/// Shared OCSP responses (PostgreSQL): stored only while the status they state holds, and
/// dropped by the revocation itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_shares_ocsp_responses_until_revocation() {
    let Some(pg) = common::pg::PgCluster::start() else {
        return;
    };
    let store = PgStore::open(&pg.database("ocsp")).await.unwrap();
    let serial = issue(&store, "", "shared").await;
    let hex = serial.hex();
    let share = |revoked: bool, der: &'static [u8], this_update: i64| ecca::store::SharedOcsp {
        cert_id: b"cert-id",
        serial: &hex,
        revoked,
        der,
        this_update,
    };
    // A "revoked" answer for a good certificate is not kept; a "good" one is.
    store
        .share_ocsp(share(true, b"revoked?", 10))
        .await
        .unwrap();
    assert_eq!(store.shared_ocsp(b"cert-id").await.unwrap(), None);
    store.share_ocsp(share(false, b"good", 10)).await.unwrap();
    assert_eq!(
        store.shared_ocsp(b"cert-id").await.unwrap(),
        Some((b"good".to_vec(), 10))
    );
    // An older response does not replace a newer one.
    store.share_ocsp(share(false, b"older", 5)).await.unwrap();
    assert_eq!(
        store.shared_ocsp(b"cert-id").await.unwrap().unwrap().0,
        b"good"
    );

    store.revoke(revoke_req(&serial, None)).await.unwrap();
    assert_eq!(store.shared_ocsp(b"cert-id").await.unwrap(), None);
    // A "good" answer signed before the revocation can no longer be shared.
    store
        .share_ocsp(share(false, b"stale good", 20))
        .await
        .unwrap();
    assert_eq!(store.shared_ocsp(b"cert-id").await.unwrap(), None);
    store.share_ocsp(share(true, b"revoked", 20)).await.unwrap();
    assert_eq!(
        store.shared_ocsp(b"cert-id").await.unwrap(),
        Some((b"revoked".to_vec(), 20))
    );
}
