//! One failing and one passing vector per certificate lint id: a certificate ecca would issue
//! (or its own CA certificate, linted as a root, a subordinate and a cross-certificate) passes;
//! each case changes exactly what its lint is about and must be refused by that lint.
use der::asn1::{Any, BitString, OctetString, SetOfVec};
use der::{Decode, Encode, Tag};
use x509_cert::TbsCertificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use super::*;
use crate::core::issue::{
    CaView, IssuerRef, LeafSpec, Names, SubjectKey, leaf_params, lint_only, sign,
};
use crate::core::profile::Profiles;
use crate::core::serial::Serial;
use crate::core::testing::test_ca;

const SKI: &str = "2.5.29.14";
const AKI: &str = "2.5.29.35";
const KU: &str = "2.5.29.15";
const BC: &str = "2.5.29.19";
const EKU: &str = "2.5.29.37";
const SAN: &str = "2.5.29.17";

fn tbs_of(cert_der: &[u8]) -> TbsCertificate {
    x509_cert::Certificate::from_der(cert_der)
        .unwrap()
        .tbs_certificate
}

/// A server-tls leaf issued by the test CA, as the signing path makes it.
fn leaf(ca: &CaView, key: &dyn crate::core::keys::Signer) -> TbsCertificate {
    let profile = Profiles::embedded()
        .unwrap()
        .get("server-tls")
        .unwrap()
        .clone();
    let subject = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let spki = rcgen::PublicKeyData::subject_public_key_info(&subject);
    let now = time::OffsetDateTime::now_utc();
    let names = Names {
        dns: vec!["shop.example.cn".into()],
        ..Names::default()
    };
    let serial = Serial::random().unwrap();
    let params = leaf_params(&LeafSpec {
        profile: &profile,
        names: &names,
        serial: &serial,
        not_before: now,
        not_after: now + time::Duration::days(30),
        spki_der: &spki,
        key_enciphers: false,
        urls: None,
    })
    .unwrap();
    let issuer = IssuerRef::new(ca, key).unwrap();
    let subject = SubjectKey::from_spki(&spki).unwrap();
    let pass = lint_only(&params, &subject, &issuer, CertKind::EndEntity).unwrap();
    let der = sign(&issuer, pass).unwrap();
    tbs_of(&der)
}

fn exts(t: &mut TbsCertificate) -> &mut Vec<Extension> {
    t.extensions.get_or_insert_with(Vec::new)
}

fn set_ext(t: &mut TbsCertificate, oid: &str, critical: bool, value: &[u8]) {
    let ext = Extension {
        extn_id: oid.parse().unwrap(),
        critical,
        extn_value: OctetString::new(value).unwrap(),
    };
    let all = exts(t);
    match all.iter_mut().find(|e| e.extn_id == ext.extn_id) {
        Some(e) => *e = ext,
        None => all.push(ext),
    }
}

fn drop_ext(t: &mut TbsCertificate, oid: &str) {
    let id: const_oid::ObjectIdentifier = oid.parse().unwrap();
    exts(t).retain(|e| e.extn_id != id);
}

fn set_critical(t: &mut TbsCertificate, oid: &str, critical: bool) {
    let id: const_oid::ObjectIdentifier = oid.parse().unwrap();
    for e in exts(t).iter_mut().filter(|e| e.extn_id == id) {
        e.critical = critical;
    }
}

/// A name of one attribute, its value encoded with `tag`.
fn name_of(oid: &str, tag: Tag, value: &[u8]) -> Name {
    let atv = AttributeTypeAndValue {
        oid: oid.parse().unwrap(),
        value: Any::new(tag, value).unwrap(),
    };
    RdnSequence(vec![RelativeDistinguishedName(
        SetOfVec::try_from(vec![atv]).unwrap(),
    )])
}

/// The TBS with its serial INTEGER's content replaced byte for byte (x509-cert would
/// normalise it).
fn with_serial(t: &TbsCertificate, content: &[u8]) -> Vec<u8> {
    let der = t.to_der().unwrap();
    let mut r = der::SliceReader::new(&der).unwrap();
    let body = der::Reader::sequence(&mut r, |r| {
        let version = der::Reader::tlv_bytes(r)?.to_vec();
        der::Reader::tlv_bytes(r)?; // the serial being replaced
        let rest = der::Reader::read_slice(r, der::Reader::remaining_len(r))?.to_vec();
        Ok((version, rest))
    })
    .unwrap();
    let serial = Any::new(Tag::Integer, content).unwrap().to_der().unwrap();
    let inner = [body.0, serial, body.1].concat();
    let mut out = der::Header::new(Tag::Sequence, der::Length::try_from(inner.len()).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    out.extend(inner);
    out
}

struct Setup {
    ca: CaView,
    leaf: TbsCertificate,
    ca_tbs: TbsCertificate,
}

fn setup() -> Setup {
    let (ca, key) = test_ca();
    Setup {
        leaf: leaf(&ca, &key),
        ca_tbs: tbs_of(&ca.der),
        ca,
    }
}

fn policy(ca: &CaView, kind: CertKind) -> LintPolicy<'_> {
    LintPolicy {
        kind,
        issuer_name: &ca.subject_der,
        issuer_key_id: &ca.key_id,
        issuer_not_after: ca.not_after.unix_timestamp(),
        issuer_alg: crate::core::keys::CaKeyAlg::P256,
    }
}

fn refused_by(tbs: &[u8], policy: &LintPolicy<'_>) -> &'static str {
    match lint_tbs(tbs, policy) {
        Err(Error::LintFailed { lint, .. }) => lint,
        other => format!("{other:?}").leak(),
    }
}

type Defect = fn(&mut TbsCertificate);

#[test]
fn every_kind_passes_as_issued() {
    let s = setup();
    lint_tbs(
        &s.leaf.to_der().unwrap(),
        &policy(&s.ca, CertKind::EndEntity),
    )
    .unwrap();
    for kind in [CertKind::Root, CertKind::SubCa, CertKind::CrossCa] {
        lint_tbs(&s.ca_tbs.to_der().unwrap(), &policy(&s.ca, kind)).unwrap();
    }
}

#[test]
fn each_end_entity_lint_refuses_its_defect() {
    let s = setup();
    let cases: Vec<(&str, Defect)> = vec![
        ("e_version_v3", |t| t.version = x509_cert::Version::V2),
        ("e_validity_order", |t| {
            t.validity.not_after = t.validity.not_before
        }),
        ("e_subject_attribute_string", |t| {
            t.subject = name_of("2.5.4.3", Tag::Integer, &[1])
        }),
        ("e_subject_attribute_known", |t| {
            t.subject = name_of("2.5.4.12", Tag::Utf8String, b"Director")
        }),
        ("e_subject_attribute_length", |t| {
            t.subject = name_of("2.5.4.3", Tag::Utf8String, &[b'a'; 65])
        }),
        ("e_subject_attribute_printable", |t| {
            t.subject = name_of("2.5.4.6", Tag::Utf8String, b"CN")
        }),
        ("e_subject_attribute_encoding", |t| {
            t.subject = name_of("2.5.4.3", Tag::Ia5String, b"shop.example.cn")
        }),
        ("e_country_code", |t| {
            t.subject = name_of("2.5.4.6", Tag::PrintableString, b"cn")
        }),
        ("e_signature_algorithm", |t| {
            t.signature = crate::core::sm2::signature_algorithm()
        }),
        ("e_signature_algorithm_parameters", |t| {
            t.signature.parameters = Some(Any::null())
        }),
        ("e_key_family", |t| {
            let point = t
                .subject_public_key_info
                .subject_public_key
                .raw_bytes()
                .to_vec();
            let sm2 = crate::core::sm2::spki_der(&point).unwrap();
            t.subject_public_key_info =
                x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(&sm2).unwrap()
        }),
        ("e_spki_algorithm", |t| {
            t.subject_public_key_info.algorithm.oid = "1.2.840.10040.4.1".parse().unwrap()
        }),
        ("e_unique_identifiers", |t| {
            t.subject_unique_id = Some(BitString::from_bytes(&[1]).unwrap())
        }),
        ("e_extension_duplicate", |t| {
            let ski = exts(t)
                .iter()
                .find(|e| e.extn_id.to_string() == SKI)
                .cloned();
            exts(t).extend(ski);
        }),
        ("e_ski_critical", |t| set_critical(t, SKI, true)),
        ("e_aki_critical", |t| set_critical(t, AKI, true)),
        ("e_aki_key_identifier", |t| {
            set_ext(t, AKI, false, &[0x30, 0x00])
        }),
        ("e_key_usage_critical", |t| set_critical(t, KU, false)),
        ("e_eku_any", |t| {
            set_ext(
                t,
                EKU,
                false,
                &[0x30, 0x06, 0x06, 0x04, 0x55, 0x1d, 0x25, 0x00],
            )
        }),
        ("e_critical_unknown", |t| {
            set_ext(t, "1.3.6.1.4.1.55555.9", true, &[0x05, 0x00])
        }),
        ("e_extension_der", |t| {
            set_ext(t, SKI, false, &[0x04, 0x05, 0x01])
        }),
        ("e_ski_missing", |t| drop_ext(t, SKI)),
        ("e_aki_missing", |t| drop_ext(t, AKI)),
        ("e_aki_matches_issuer", |t| {
            let mut v = vec![0x30, 0x16, 0x80, 0x14];
            v.extend([9u8; 20]);
            set_ext(t, AKI, false, &v)
        }),
        ("e_key_usage_missing", |t| drop_ext(t, KU)),
        ("e_key_usage_empty", |t| {
            set_ext(t, KU, true, &[0x03, 0x01, 0x00])
        }),
        ("e_ee_not_ca", |t| {
            set_ext(t, BC, true, &[0x30, 0x03, 0x01, 0x01, 0xff])
        }),
        ("e_ee_key_usage", |t| {
            set_ext(t, KU, true, &[0x03, 0x02, 0x02, 0x04])
        }),
        ("e_ee_eku_missing", |t| drop_ext(t, EKU)),
        ("e_key_usage_for_key_type", |t| {
            set_ext(t, KU, true, &[0x03, 0x02, 0x05, 0xa0])
        }),
        ("e_subject_or_san", |t| {
            t.subject = RdnSequence(Vec::new());
            drop_ext(t, SAN);
        }),
        ("e_san_empty", |t| set_ext(t, SAN, true, &[0x30, 0x00])),
        // The leaf has an empty subject, so its SAN is critical.
        ("e_san_critical", |t| set_critical(t, SAN, false)),
        ("e_san_dns_syntax", |t| {
            set_ext(
                t,
                SAN,
                true,
                &[0x30, 0x07, 0x82, 0x05, b'a', b'.', b'.', b'c', b'n'],
            )
        }),
        ("e_san_email_syntax", |t| {
            set_ext(
                t,
                SAN,
                true,
                &[0x30, 0x07, 0x81, 0x05, b'n', b'o', b'-', b'a', b't'],
            )
        }),
        ("e_san_type", |t| {
            set_ext(
                t,
                SAN,
                true,
                &[0x30, 0x07, 0x86, 0x05, b'h', b't', b't', b'p', b':'],
            )
        }),
    ];
    let ee = policy(&s.ca, CertKind::EndEntity);
    for (want, defect) in cases {
        let mut t = s.leaf.clone();
        defect(&mut t);
        assert_eq!(refused_by(&t.to_der().unwrap(), &ee), want);
    }
    // Serials, byte for byte.
    for (content, want) in [
        (vec![0x80, 1, 2, 3, 4, 5, 6, 7], "e_serial_positive"),
        (vec![0x00, 0x01, 2, 3, 4, 5, 6, 7, 8], "e_serial_der"),
        (vec![0x01; 21], "e_serial_length"),
        (vec![0x01, 0x02], "e_serial_entropy"),
    ] {
        assert_eq!(refused_by(&with_serial(&s.leaf, &content), &ee), want);
    }
    // What the policy says about the issuer.
    let der = s.leaf.to_der().unwrap();
    let early = LintPolicy {
        issuer_not_after: s.leaf.validity.not_before.to_unix_duration().as_secs() as i64,
        ..ee
    };
    assert_eq!(refused_by(&der, &early), "e_validity_within_issuer");
    let other = LintPolicy {
        issuer_name: &[0x30, 0x00],
        ..ee
    };
    assert_eq!(refused_by(&der, &other), "e_issuer_name_match");
    let mut empty_issuer = s.leaf.clone();
    empty_issuer.issuer = RdnSequence(Vec::new());
    assert_eq!(
        refused_by(&empty_issuer.to_der().unwrap(), &other),
        "e_issuer_empty"
    );
    let mut trailing = der.clone();
    trailing.push(0);
    assert_eq!(refused_by(&trailing, &ee), "e_tbs_der");
    assert_eq!(refused_by(b"\x30\x03\x02\x01", &ee), "e_tbs_der");
}

#[test]
fn each_ca_lint_refuses_its_defect() {
    let s = setup();
    let cases: Vec<(CertKind, &str, Defect)> = vec![
        (CertKind::SubCa, "e_basic_constraints_critical", |t| {
            set_critical(t, BC, false)
        }),
        (CertKind::SubCa, "e_basic_constraints_missing", |t| {
            drop_ext(t, BC)
        }),
        (CertKind::SubCa, "e_basic_constraints_ca", |t| {
            set_ext(t, BC, true, &[0x30, 0x00])
        }),
        (CertKind::SubCa, "e_ca_key_cert_sign", |t| {
            set_ext(t, KU, true, &[0x03, 0x02, 0x07, 0x80])
        }),
        (CertKind::Root, "e_root_eku", |t| {
            let server_auth = [0x30, 0x0a, 0x06, 0x08, 0x2b, 6, 1, 5, 5, 7, 3, 1];
            set_ext(t, EKU, false, &server_auth)
        }),
        (CertKind::Root, "e_root_self_issued", |t| {
            t.subject = name_of("2.5.4.3", Tag::Utf8String, b"Someone Else")
        }),
        (CertKind::CrossCa, "e_subject_empty", |t| {
            t.subject = RdnSequence(Vec::new())
        }),
    ];
    for (kind, want, defect) in cases {
        let mut t = s.ca_tbs.clone();
        defect(&mut t);
        assert_eq!(
            refused_by(&t.to_der().unwrap(), &policy(&s.ca, kind)),
            want,
            "{kind:?}"
        );
    }
}

/// Every lint id in this module has a failing vector above (the list is read from the source).
#[test]
fn no_lint_id_is_without_a_vector() {
    let source = include_str!("mod.rs");
    let vectors = include_str!("vectors.rs");
    let mut missing = Vec::new();
    for (i, _) in source.match_indices("\"e_") {
        let id: String = source[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !vectors.contains(&format!("\"{id}\"")) && !missing.contains(&id) {
            missing.push(id);
        }
    }
    assert!(missing.is_empty(), "lint ids without a vector: {missing:?}");
}
