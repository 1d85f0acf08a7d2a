//! Path building and validation corpus, written from RFC 5280 §6 and in the spirit of NIST
//! PKITS: each case builds a small PKI and states the expected result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;

use der::Encode;
use ecca::core::path::{Budget, Cert, ExpectedName, Options, Purpose, build_and_validate};
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
use time::{Duration, OffsetDateTime};

const P1: &str = "1.3.6.1.4.1.55555.1";
const P2: &str = "1.3.6.1.4.1.55555.2";
const ANY: &str = "2.5.29.32.0";

/// A CA (or leaf) of the test PKI: its key, the parameters it signs with, its certificate.
struct Node {
    key: KeyPair,
    params: CertificateParams,
    der: Vec<u8>,
}

#[derive(Default, Clone)]
struct Spec {
    ca: bool,
    path_len: Option<u8>,
    no_key_cert_sign: bool,
    dns: Vec<&'static str>,
    emails: Vec<&'static str>,
    ips: Vec<&'static str>,
    org: Option<&'static str>,
    eku: Option<ExtendedKeyUsagePurpose>,
    expired: bool,
    policies: Vec<&'static str>,
    mappings: Vec<(&'static str, &'static str)>,
    require_explicit: Option<u32>,
    inhibit_mapping: Option<u32>,
    inhibit_any: Option<u32>,
    permitted: Vec<GeneralSubtree>,
    excluded: Vec<GeneralSubtree>,
    raw_name_constraints: Option<Vec<u8>>,
    unknown_critical: bool,
    /// Force this subject key identifier (to make a wrong-key candidate look right).
    ski: Option<Vec<u8>>,
}

fn oid(s: &str) -> const_oid::ObjectIdentifier {
    const_oid::ObjectIdentifier::from_str(s).unwrap()
}

fn ext(oid_arcs: &[u64], critical: bool, der: Vec<u8>) -> CustomExtension {
    let mut e = CustomExtension::from_oid_content(oid_arcs, der);
    e.set_criticality(critical);
    e
}

fn params(cn: &str, spec: &Spec, key: &KeyPair) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    if let Some(o) = spec.org {
        dn.push(DnType::OrganizationName, o);
    }
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(30);
    p.not_after = if spec.expired {
        now - Duration::days(1)
    } else {
        now + Duration::days(365)
    };
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&rand_serial()));
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = match &spec.ski {
        Some(s) => KeyIdMethod::PreSpecified(s.clone()),
        None => KeyIdMethod::Sha256,
    };
    let _ = key;
    if spec.ca {
        p.is_ca = IsCa::Ca(match spec.path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        p.key_usages = if spec.no_key_cert_sign {
            vec![KeyUsagePurpose::DigitalSignature]
        } else {
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]
        };
    } else {
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            spec.eku
                .clone()
                .unwrap_or(ExtendedKeyUsagePurpose::ServerAuth),
        ];
        // Leaves get an SKI through a custom extension (rcgen writes SKI only for CAs).
        use rcgen::PublicKeyData;
        let digest = ring::digest::digest(&ring::digest::SHA256, &key.subject_public_key_info());
        let mut v = vec![0x04, 20];
        v.extend_from_slice(&digest.as_ref()[..20]);
        p.custom_extensions.push(ext(&[2, 5, 29, 14], false, v));
    }
    for d in &spec.dns {
        p.subject_alt_names
            .push(SanType::DnsName((*d).try_into().unwrap()));
    }
    for e in &spec.emails {
        p.subject_alt_names
            .push(SanType::Rfc822Name((*e).try_into().unwrap()));
    }
    for ip in &spec.ips {
        p.subject_alt_names
            .push(SanType::IpAddress(ip.parse().unwrap()));
    }
    if !spec.permitted.is_empty() || !spec.excluded.is_empty() {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: spec.permitted.clone(),
            excluded_subtrees: spec.excluded.clone(),
        });
    }
    if let Some(raw) = &spec.raw_name_constraints {
        p.custom_extensions
            .push(ext(&[2, 5, 29, 30], true, raw.clone()));
    }
    if !spec.policies.is_empty() {
        use x509_cert::ext::pkix::CertificatePolicies;
        use x509_cert::ext::pkix::certpolicy::PolicyInformation;
        let v = CertificatePolicies(
            spec.policies
                .iter()
                .map(|p| PolicyInformation {
                    policy_identifier: oid(p),
                    policy_qualifiers: None,
                })
                .collect(),
        );
        p.custom_extensions
            .push(ext(&[2, 5, 29, 32], false, v.to_der().unwrap()));
    }
    if !spec.mappings.is_empty() {
        use x509_cert::ext::pkix::{PolicyMapping, PolicyMappings};
        let v = PolicyMappings(
            spec.mappings
                .iter()
                .map(|(i, s)| PolicyMapping {
                    issuer_domain_policy: oid(i),
                    subject_domain_policy: oid(s),
                })
                .collect(),
        );
        p.custom_extensions
            .push(ext(&[2, 5, 29, 33], true, v.to_der().unwrap()));
    }
    if spec.require_explicit.is_some() || spec.inhibit_mapping.is_some() {
        let v = x509_cert::ext::pkix::PolicyConstraints {
            require_explicit_policy: spec.require_explicit,
            inhibit_policy_mapping: spec.inhibit_mapping,
        };
        p.custom_extensions
            .push(ext(&[2, 5, 29, 36], true, v.to_der().unwrap()));
    }
    if let Some(n) = spec.inhibit_any {
        p.custom_extensions
            .push(ext(&[2, 5, 29, 54], true, n.to_der().unwrap()));
    }
    if spec.unknown_critical {
        p.custom_extensions
            .push(ext(&[1, 3, 6, 1, 4, 1, 55555, 99], true, vec![0x05, 0x00]));
    }
    p
}

fn rand_serial() -> Vec<u8> {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    b[0] = (b[0] & 0x7f) | 0x01;
    b.to_vec()
}

fn root(cn: &str) -> Node {
    root_with(
        cn,
        &Spec {
            ca: true,
            ..Default::default()
        },
    )
}

fn root_with(cn: &str, spec: &Spec) -> Node {
    let key = KeyPair::generate().unwrap();
    let p = params(cn, spec, &key);
    let der = p.self_signed(&key).unwrap().der().to_vec();
    Node {
        key,
        params: p,
        der,
    }
}

fn issue(issuer: &Node, cn: &str, spec: &Spec) -> Node {
    issue_for(issuer, cn, spec, KeyPair::generate().unwrap())
}

/// Issues a certificate for an existing key (cross-certificates, re-issued CAs).
fn issue_for(issuer: &Node, cn: &str, spec: &Spec, key: KeyPair) -> Node {
    let p = params(cn, spec, &key);
    let iss = Issuer::from_params(&issuer.params, &issuer.key);
    let der = p.signed_by(&key, &iss).unwrap().der().to_vec();
    Node {
        key,
        params: p,
        der,
    }
}

fn ca() -> Spec {
    Spec {
        ca: true,
        ..Default::default()
    }
}

fn leaf(dns: &'static str) -> Spec {
    Spec {
        dns: vec![dns],
        ..Default::default()
    }
}

fn cert(n: &Node) -> Cert {
    Cert::parse(&n.der).unwrap()
}

fn opts() -> Options {
    Options::at(OffsetDateTime::now_utc().unix_timestamp())
}

fn check(leaf: &Node, pool: &[&Node], anchors: &[&Node], o: &Options) -> Result<usize, String> {
    let pool: Vec<Cert> = pool.iter().map(|n| cert(n)).collect();
    let anchors: Vec<Cert> = anchors.iter().map(|n| cert(n)).collect();
    match build_and_validate(&cert(leaf), &pool, &anchors, o) {
        Ok(paths) => Ok(paths[0].certs.len()),
        Err(f) => Err(f.texts().join("; ")),
    }
}

fn valid(leaf: &Node, pool: &[&Node], anchors: &[&Node], o: &Options) -> usize {
    check(leaf, pool, anchors, o).unwrap_or_else(|e| panic!("expected valid, got: {e}"))
}

fn invalid(leaf: &Node, pool: &[&Node], anchors: &[&Node], o: &Options, because: &str) {
    match check(leaf, pool, anchors, o) {
        Ok(n) => panic!("expected invalid ({because}), got a valid path of {n}"),
        Err(e) => assert!(e.contains(because), "expected {because:?} in: {e}"),
    }
}

mod chains;
mod conformance;
mod crl;
