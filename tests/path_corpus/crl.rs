//! CRLs (RFC 5280 §5 and §6.3), judged by `revcheck::from_crl` directly.
use super::conformance::*;
use super::*;
use der::Decode;
use der::asn1::{BitString, OctetString};
use ecca::core::revcheck::{self, Status, When};

// CRLs (RFC 5280 §5 and §6.3), judged by `revcheck::from_crl` directly.

fn crl(issuer: &Node, tweak: impl FnOnce(&mut rcgen::CertificateRevocationListParams)) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    let mut p = rcgen::CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(1),
        crl_number: rcgen::SerialNumber::from(7u64),
        issuing_distribution_point: None,
        revoked_certs: vec![],
        key_identifier_method: KeyIdMethod::Sha256,
    };
    tweak(&mut p);
    let iss = Issuer::from_params(&issuer.params, &issuer.key);
    p.signed_by(&iss).unwrap().der().to_vec()
}

/// `crl_der` with its TBSCertList changed by `f`, signed again by `issuer`.
fn mutate_crl(
    crl_der: &[u8],
    issuer: &Node,
    f: impl FnOnce(&mut x509_cert::crl::TbsCertList),
) -> Vec<u8> {
    let mut c = x509_cert::crl::CertificateList::from_der(crl_der).unwrap();
    f(&mut c.tbs_cert_list);
    let tbs = c.tbs_cert_list.to_der().unwrap();
    let sig = rcgen::SigningKey::sign(&issuer.key, &tbs).unwrap();
    c.signature = BitString::from_bytes(&sig).unwrap();
    c.to_der().unwrap()
}

fn revoked(serial: &[u8], at: OffsetDateTime) -> rcgen::RevokedCertParams {
    rcgen::RevokedCertParams {
        serial_number: rcgen::SerialNumber::from_slice(serial),
        revocation_time: at,
        reason_code: None,
        invalidity_date: None,
    }
}

fn status(
    crl_der: &[u8],
    leaf: &Node,
    issuer: &Node,
    when: When,
) -> Result<Status, revcheck::RevocationError> {
    revcheck::from_crl(crl_der, &cert(leaf), &cert(issuer), when).map(|(s, _)| s)
}

/// The CRL is not used for `leaf`, refused as `kind` (a `RevocationError` variant) for the
/// reason `because` names.
fn crl_refused(crl_der: &[u8], leaf: &Node, issuer: &Node, kind: &str, because: &str) {
    match status(crl_der, leaf, issuer, now_when()) {
        Err(e) => assert!(
            format!("{e:?}").starts_with(kind) && e.to_string().contains(because),
            "expected {kind}({because:?}), got {e:?}"
        ),
        Ok(s) => panic!("expected the CRL to be refused ({because}), got {s:?}"),
    }
}

fn now_when() -> When {
    When::at(OffsetDateTime::now_utc().unix_timestamp())
}

fn serial_of(n: &Node) -> Vec<u8> {
    x509_parser::parse_x509_certificate(&n.der)
        .unwrap()
        .1
        .raw_serial()
        .to_vec()
}

#[test]
fn crl_number_is_required_and_not_critical() {
    // RFC 5280 §5.2.3: conforming CRLs carry CRLNumber, non-critical.
    let r = root("Root");
    let l = issue(&r, "leaf", &leaf("a.example.cn"));
    let good = crl(&r, |_| {});
    assert_eq!(status(&good, &l, &r, now_when()), Ok(Status::Good));
    let none = mutate_crl(&good, &r, |t| {
        if let Some(e) = t.crl_extensions.as_mut() {
            e.retain(|x| x.extn_id != oid("2.5.29.20"));
        }
    });
    crl_refused(&none, &l, &r, "Malformed", "without CRLNumber");
    let critical = mutate_crl(&good, &r, |t| {
        for x in t.crl_extensions.iter_mut().flatten() {
            if x.extn_id == oid("2.5.29.20") {
                x.critical = true;
            }
        }
    });
    crl_refused(&critical, &l, &r, "Malformed", "CRLNumber is critical");
}

#[test]
fn crl_issuer_must_be_allowed_to_sign_crls() {
    // RFC 5280 §6.3.3 (f): with keyUsage, the CRL issuer needs cRLSign.
    let r = root_tweaked("KCS-only Root", |p| {
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign]
    });
    let l = issue(&r, "leaf", &leaf("a.example.cn"));
    // rcgen will not sign a CRL for such an issuer: sign it as if the key allowed cRLSign.
    let mut signer = Node {
        key: clone_key(&r.key),
        params: r.params.clone(),
        der: r.der.clone(),
    };
    signer.params.key_usages.push(KeyUsagePurpose::CrlSign);
    let c = crl(&signer, |_| {});
    crl_refused(&c, &l, &r, "Issuer", "cRLSign");
}

#[test]
fn crl_authority_key_identifier_must_match() {
    // RFC 5280 §5.2.1 / §6.3.3 (c): the CRL's AKI names the issuer's key.
    let r = root("Root");
    let l = issue(&r, "leaf", &leaf("a.example.cn"));
    let c = mutate_crl(&crl(&r, |_| {}), &r, |t| {
        let aki = x509_cert::ext::pkix::AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(vec![9; 20]).unwrap()),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        for x in t.crl_extensions.iter_mut().flatten() {
            if x.extn_id == oid(AKI) {
                x.extn_value = OctetString::new(aki.to_der().unwrap()).unwrap();
            }
        }
    });
    crl_refused(&c, &l, &r, "Issuer", "not the issuer's key");
}

#[test]
fn crl_scope_must_cover_the_certificate() {
    // RFC 5280 §5.2.5 / §6.3.3 (b): an issuingDistributionPoint limits what a CRL covers.
    let r = root("Root");
    let url = "http://crl.example.cn/a.crl";
    let l = issue_tweaked(&r, "leaf", &leaf("a.example.cn"), |p| {
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec![url.into()],
        }]
    });
    let idp = |uri: &str, scope| rcgen::CrlIssuingDistributionPoint {
        distribution_point: rcgen::CrlDistributionPoint {
            uris: vec![uri.into()],
        },
        scope,
    };
    let same = crl(&r, |p| p.issuing_distribution_point = Some(idp(url, None)));
    assert_eq!(status(&same, &l, &r, now_when()), Ok(Status::Good));
    let other = crl(&r, |p| {
        p.issuing_distribution_point = Some(idp("http://crl.example.cn/b.crl", None))
    });
    crl_refused(&other, &l, &r, "Scope", "issuing distribution point");
    let cas = crl(&r, |p| {
        p.issuing_distribution_point = Some(idp(url, Some(rcgen::CrlScope::CaCertsOnly)))
    });
    crl_refused(&cas, &l, &r, "Scope", "CA certificates only");
}

#[test]
fn crl_entries_with_unknown_critical_extensions_void_the_crl() {
    // RFC 5280 §5.3: a critical entry extension the verifier cannot process makes the CRL
    // unusable for every certificate.
    let r = root("Root");
    let l = issue(&r, "leaf", &leaf("a.example.cn"));
    let now = OffsetDateTime::now_utc();
    let base = crl(&r, |p| {
        p.revoked_certs = vec![revoked(&[1, 2, 3], now - Duration::hours(2))]
    });
    let c = mutate_crl(&base, &r, |t| {
        for e in t.revoked_certificates.iter_mut().flatten() {
            e.crl_entry_extensions = Some(vec![x509_cert::ext::Extension {
                extn_id: oid("1.3.6.1.4.1.55555.9"),
                critical: true,
                extn_value: OctetString::new(vec![0x05, 0x00]).unwrap(),
            }]);
        }
    });
    crl_refused(
        &c,
        &l,
        &r,
        "Unsupported",
        "entry has an unrecognised critical",
    );
}

#[test]
fn crl_freshness_and_listing_at_the_validation_time() {
    // RFC 5280 §6.3.3 (a): the CRL must be current at the validation time; a listed serial is
    // revoked whatever its revocation date (§6.3.3 (i)), except when the path is validated
    // at a time a timestamp proves (then only earlier revocations count).
    let r = root("Root");
    let l = issue(&r, "leaf", &leaf("a.example.cn"));
    let now = OffsetDateTime::now_utc();
    let t = now.unix_timestamp();
    let future = crl(&r, |p| {
        p.this_update = now + Duration::days(1);
        p.next_update = now + Duration::days(2);
    });
    crl_refused(&future, &l, &r, "Stale", "produced after");
    let stale = crl(&r, |p| {
        p.this_update = now - Duration::days(3);
        p.next_update = now - Duration::days(2);
    });
    crl_refused(&stale, &l, &r, "Stale", "stale");
    let listed = crl(&r, |p| {
        p.this_update = now - Duration::minutes(10);
        p.revoked_certs = vec![revoked(&serial_of(&l), now - Duration::minutes(30))];
    });
    assert!(matches!(
        status(&listed, &l, &r, now_when()),
        Ok(Status::Revoked { .. })
    ));
    // Validation one hour ago: revoked anyway under RFC 5280; good for a timestamped path.
    let before = When::at(t - 3600);
    let stale_then = status(&listed, &l, &r, before);
    assert!(
        stale_then.is_err(),
        "the CRL was not current an hour ago: {stale_then:?}"
    );
    assert_eq!(
        status(&listed, &l, &r, When::historical(t - 3600, t)),
        Ok(Status::Good)
    );
}
