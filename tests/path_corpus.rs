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
        Err(f) => Err(f.reasons.join("; ")),
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

#[test]
fn basic_chain_and_basic_failures() {
    let r = root("Root");
    let i = issue(&r, "Int", &ca());
    let l = issue(&i, "leaf", &leaf("a.example.cn"));
    assert_eq!(valid(&l, &[&i], &[&r], &opts()), 3);
    // Missing intermediate.
    invalid(&l, &[], &[&r], &opts(), "no issuer");
    // Wrong anchor.
    invalid(&l, &[&i], &[&root("Other")], &opts(), "no issuer");
    // Validation time before notBefore.
    let mut past = opts();
    past.time -= 90 * 86_400;
    invalid(&l, &[&i], &[&r], &past, "validity");
}

#[test]
fn basic_constraints_key_usage_and_path_length() {
    let r = root("Root");
    let not_ca = issue(&r, "NotCA", &Spec::default());
    let l = issue(&not_ca, "leaf", &leaf("a.example.cn"));
    invalid(&l, &[&not_ca], &[&r], &opts(), "cA is not set");

    let no_kcs = issue(
        &r,
        "NoKCS",
        &Spec {
            ca: true,
            no_key_cert_sign: true,
            ..Default::default()
        },
    );
    let l = issue(&no_kcs, "leaf", &leaf("a.example.cn"));
    invalid(&l, &[&no_kcs], &[&r], &opts(), "keyCertSign");

    let i1 = issue(
        &r,
        "Int1",
        &Spec {
            ca: true,
            path_len: Some(0),
            ..Default::default()
        },
    );
    let i2 = issue(&i1, "Int2", &ca());
    let l = issue(&i2, "leaf", &leaf("a.example.cn"));
    invalid(&l, &[&i1, &i2], &[&r], &opts(), "path length");
    let i1 = issue(
        &r,
        "Int1",
        &Spec {
            ca: true,
            path_len: Some(1),
            ..Default::default()
        },
    );
    let i2 = issue(&i1, "Int2", &ca());
    let l = issue(&i2, "leaf", &leaf("a.example.cn"));
    assert_eq!(valid(&l, &[&i1, &i2], &[&r], &opts()), 4);
}

#[test]
fn expired_cross_certificate_ahead_of_a_valid_one() {
    let a = root("Region A Root");
    let b = root("Region B Root");
    let ai = issue(&a, "Region A Issuing", &ca());
    let l = issue(&ai, "leaf", &leaf("shop.a.example.cn"));
    let a_key = KeyPair::from_pem(&a.key.serialize_pem()).unwrap();
    let expired = issue_for(
        &b,
        "Region A Root",
        &Spec {
            ca: true,
            expired: true,
            ..Default::default()
        },
        a_key,
    );
    let a_key = KeyPair::from_pem(&a.key.serialize_pem()).unwrap();
    let good = issue_for(&b, "Region A Root", &ca(), a_key);
    // The expired one first in the pool; the builder backtracks to the good one.
    assert_eq!(valid(&l, &[&expired, &ai, &good], &[&b], &opts()), 4);
    invalid(&l, &[&expired, &ai], &[&b], &opts(), "validity");
}

#[test]
fn wrong_key_candidate_is_skipped() {
    let r = root("Root");
    let i = issue(&r, "Int", &ca());
    let l = issue(&i, "leaf", &leaf("a.example.cn"));
    // Same name and the same SKI as Int, but another key: its signature check fails.
    let ski = x509_parser::parse_x509_certificate(&i.der)
        .unwrap()
        .1
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .unwrap();
    let impostor = issue(
        &r,
        "Int",
        &Spec {
            ca: true,
            ski: Some(ski),
            ..Default::default()
        },
    );
    assert_eq!(valid(&l, &[&impostor, &i], &[&r], &opts()), 3);
    invalid(
        &l,
        &[&impostor],
        &[&r],
        &opts(),
        "signature does not verify",
    );
}

#[test]
fn loops_terminate() {
    let a = root("A");
    let b = root("B");
    let a_key = KeyPair::from_pem(&a.key.serialize_pem()).unwrap();
    let b_key = KeyPair::from_pem(&b.key.serialize_pem()).unwrap();
    let a_by_b = issue_for(&b, "A", &ca(), a_key);
    let b_by_a = issue_for(&a, "B", &ca(), b_key);
    let l = issue(&a, "leaf", &leaf("a.example.cn"));
    // A and B certify each other; no anchor is reachable: the search ends, invalid.
    invalid(
        &l,
        &[&a_by_b, &b_by_a, &a, &b],
        &[&root("C")],
        &opts(),
        "no issuer",
    );
    // With B trusted, the loop is harmless.
    assert_eq!(valid(&l, &[&a_by_b, &b_by_a], &[&b], &opts()), 3);
}

#[test]
fn hostile_pool_stays_within_budget() {
    let r = root("Root");
    let i = issue(&r, "Int", &ca());
    let l = issue(&i, "leaf", &leaf("a.example.cn"));
    // Decoys with Int's name and key identifier but other keys: each costs a signature check.
    let ski = x509_parser::parse_x509_certificate(&i.der)
        .unwrap()
        .1
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .unwrap();
    let decoy = Spec {
        ca: true,
        ski: Some(ski),
        ..Default::default()
    };
    let decoys: Vec<Node> = (0..300).map(|_| issue(&r, "Int", &decoy)).collect();
    let mut pool: Vec<&Node> = decoys.iter().collect();
    pool.push(&i);
    let mut o = opts();
    o.budget = Budget {
        max_signatures: 50,
        max_candidates: 100,
        ..Budget::default()
    };
    // The right issuer is last and the budget runs out first: refused, quickly, saying why.
    invalid(&l, &pool, &[&r], &o, "budget");
}

#[test]
fn unknown_critical_extension() {
    let r = root("Root");
    let i = issue(
        &r,
        "Int",
        &Spec {
            ca: true,
            unknown_critical: true,
            ..Default::default()
        },
    );
    let l = issue(&i, "leaf", &leaf("a.example.cn"));
    invalid(&l, &[&i], &[&r], &opts(), "unrecognised critical extension");
}

#[test]
fn name_constraints_dns_ip_email() {
    let r = root("Root");
    let dns = issue(
        &r,
        "DNS CA",
        &Spec {
            ca: true,
            permitted: vec![GeneralSubtree::DnsName("a.example.cn".into())],
            excluded: vec![GeneralSubtree::DnsName("secret.a.example.cn".into())],
            ..Default::default()
        },
    );
    valid(
        &issue(&dns, "in", &leaf("shop.a.example.cn")),
        &[&dns],
        &[&r],
        &opts(),
    );
    invalid(
        &issue(&dns, "out", &leaf("shop.b.example.cn")),
        &[&dns],
        &[&r],
        &opts(),
        "outside the permitted",
    );
    invalid(
        &issue(&dns, "ex", &leaf("x.secret.a.example.cn")),
        &[&dns],
        &[&r],
        &opts(),
        "excluded",
    );
    // "a.example.cn" does not permit "evila.example.cn".
    invalid(
        &issue(&dns, "evil", &leaf("evila.example.cn")),
        &[&dns],
        &[&r],
        &opts(),
        "outside",
    );

    let ip = issue(
        &r,
        "IP CA",
        &Spec {
            ca: true,
            permitted: vec![GeneralSubtree::IpAddress(
                CidrSubnet::from_str("10.0.0.0/8").unwrap(),
            )],
            ..Default::default()
        },
    );
    let in_ip = issue(
        &ip,
        "in",
        &Spec {
            ips: vec!["10.1.2.3"],
            ..Default::default()
        },
    );
    valid(&in_ip, &[&ip], &[&r], &opts());
    let out_ip = issue(
        &ip,
        "out",
        &Spec {
            ips: vec!["192.0.2.1"],
            ..Default::default()
        },
    );
    invalid(&out_ip, &[&ip], &[&r], &opts(), "IP:192.0.2.1");

    let mail = issue(
        &r,
        "Mail CA",
        &Spec {
            ca: true,
            permitted: vec![GeneralSubtree::Rfc822Name("shop.example.cn".into())],
            ..Default::default()
        },
    );
    let ok = Spec {
        emails: vec!["alice@shop.example.cn"],
        ..Default::default()
    };
    valid(&issue(&mail, "alice", &ok), &[&mail], &[&r], &opts());
    let bad = Spec {
        emails: vec!["mallory@evil.example.cn"],
        ..Default::default()
    };
    invalid(
        &issue(&mail, "mallory", &bad),
        &[&mail],
        &[&r],
        &opts(),
        "email:mallory@evil.example.cn",
    );
}

#[test]
fn name_constraints_directory_name_and_uri() {
    let r = root("Root");
    // directoryName and URI subtrees are encoded with x509-cert (rcgen drops the Name's
    // SEQUENCE inside a directoryName subtree, and has no URI subtree).
    use x509_cert::ext::pkix::constraints::name::{GeneralSubtree as Gs, NameConstraints as Nc};
    use x509_cert::ext::pkix::name::GeneralName as Gn;
    let permit = |base: Gn| {
        Nc {
            permitted_subtrees: Some(vec![Gs {
                base,
                minimum: 0,
                maximum: None,
            }]),
            excluded_subtrees: None,
        }
        .to_der()
        .unwrap()
    };
    let good = x509_cert::name::Name::from_str("O=Good Merchants").unwrap();
    let dir = issue(
        &r,
        "Dir CA",
        &Spec {
            ca: true,
            raw_name_constraints: Some(permit(Gn::DirectoryName(good))),
            ..Default::default()
        },
    );
    let inside = issue(
        &dir,
        "shop",
        &Spec {
            org: Some("Good Merchants"),
            dns: vec!["a.example.cn"],
            ..Default::default()
        },
    );
    valid(&inside, &[&dir], &[&r], &opts());
    let outside = issue(
        &dir,
        "shop",
        &Spec {
            org: Some("Bad Merchants"),
            dns: vec!["a.example.cn"],
            ..Default::default()
        },
    );
    invalid(&outside, &[&dir], &[&r], &opts(), "outside the permitted");

    let uri = Gn::UniformResourceIdentifier(der::asn1::Ia5String::new(".example.cn").unwrap());
    let uri_ca = issue(
        &r,
        "URI CA",
        &Spec {
            ca: true,
            raw_name_constraints: Some(permit(uri)),
            ..Default::default()
        },
    );
    let with_uri = |uri: &'static str| {
        let key = KeyPair::generate().unwrap();
        let mut p = params("svc", &leaf("a.example.cn"), &key);
        p.subject_alt_names
            .push(SanType::URI(uri.try_into().unwrap()));
        let der = p
            .signed_by(&key, &Issuer::from_params(&uri_ca.params, &uri_ca.key))
            .unwrap()
            .der()
            .to_vec();
        Node {
            key,
            params: p,
            der,
        }
    };
    valid(
        &with_uri("https://api.example.cn/orders"),
        &[&uri_ca],
        &[&r],
        &opts(),
    );
    invalid(
        &with_uri("https://api.evil.cn/orders"),
        &[&uri_ca],
        &[&r],
        &opts(),
        "URI:https://api.evil.cn/orders",
    );
}

fn explicit() -> Options {
    let mut o = opts();
    o.initial_explicit_policy = true;
    o
}

#[test]
fn certificate_policies_and_explicit_policy() {
    let r = root("Root");
    let i = issue(
        &r,
        "Int",
        &Spec {
            ca: true,
            policies: vec![P1],
            ..Default::default()
        },
    );
    let l1 = issue(
        &i,
        "leaf",
        &Spec {
            policies: vec![P1],
            ..leaf("a.example.cn")
        },
    );
    let l2 = issue(
        &i,
        "leaf",
        &Spec {
            policies: vec![P2],
            ..leaf("a.example.cn")
        },
    );
    valid(&l1, &[&i], &[&r], &explicit());
    invalid(&l2, &[&i], &[&r], &explicit(), "explicit policy");
    // Without an explicit-policy requirement a policy mismatch is no failure.
    valid(&l2, &[&i], &[&r], &opts());
    // requireExplicitPolicy=0 in the CA makes it required for everyone.
    let req = issue(
        &r,
        "Req",
        &Spec {
            ca: true,
            policies: vec![P1],
            require_explicit: Some(0),
            ..Default::default()
        },
    );
    let l2 = issue(
        &req,
        "leaf",
        &Spec {
            policies: vec![P2],
            ..leaf("a.example.cn")
        },
    );
    invalid(&l2, &[&req], &[&r], &opts(), "explicit policy");
    let no_policy = issue(&req, "leaf", &leaf("a.example.cn"));
    invalid(&no_policy, &[&req], &[&r], &opts(), "explicit policy");
}

#[test]
fn policy_mapping_and_inhibit_flags() {
    let r = root("Root");
    // Int1 (domain P1) maps P1 -> P2 for the subject domain; Int2 and the leaf use P2.
    let mapped_chain = |anchor: &_| {
        let i1 = issue(
            anchor,
            "Int1",
            &Spec {
                ca: true,
                policies: vec![P1],
                mappings: vec![(P1, P2)],
                ..Default::default()
            },
        );
        let i2 = issue(
            &i1,
            "Int2",
            &Spec {
                ca: true,
                policies: vec![P2],
                ..Default::default()
            },
        );
        let l = issue(
            &i2,
            "leaf",
            &Spec {
                policies: vec![P2],
                ..leaf("a.example.cn")
            },
        );
        (i1, i2, l)
    };
    let (i1, i2, l) = mapped_chain(&r);
    valid(&l, &[&i1, &i2], &[&r], &explicit());

    // inhibitPolicyMapping=0 set by the root-issued CA above forbids the mapping below it.
    let inhibit = issue(
        &r,
        "Inhibit",
        &Spec {
            ca: true,
            policies: vec![P1],
            inhibit_mapping: Some(0),
            ..Default::default()
        },
    );
    let (i1, i2, l) = mapped_chain(&inhibit);
    invalid(
        &l,
        &[&inhibit, &i1, &i2],
        &[&r],
        &explicit(),
        "explicit policy",
    );

    // Mapping to anyPolicy is refused outright.
    let bad = issue(
        &r,
        "Bad",
        &Spec {
            ca: true,
            policies: vec![P1],
            mappings: vec![(P1, ANY)],
            ..Default::default()
        },
    );
    let l = issue(
        &bad,
        "leaf",
        &Spec {
            policies: vec![P1],
            ..leaf("a.example.cn")
        },
    );
    invalid(&l, &[&bad], &[&r], &opts(), "anyPolicy");
}

#[test]
fn inhibit_any_policy() {
    let r = root("Root");
    // Int1 asserts only anyPolicy; the leaf asserts P1. With anyPolicy honoured the leaf's P1
    // hangs off anyPolicy: valid under an explicit policy requirement.
    let any = issue(
        &r,
        "AnyCA",
        &Spec {
            ca: true,
            policies: vec![ANY],
            ..Default::default()
        },
    );
    let l = issue(
        &any,
        "leaf",
        &Spec {
            policies: vec![P1],
            ..leaf("a.example.cn")
        },
    );
    valid(&l, &[&any], &[&r], &explicit());
    // inhibitAnyPolicy=0 in a CA above: anyPolicy below it no longer counts.
    let top = issue(
        &r,
        "Top",
        &Spec {
            ca: true,
            policies: vec![ANY],
            inhibit_any: Some(0),
            ..Default::default()
        },
    );
    let any = issue(
        &top,
        "AnyCA",
        &Spec {
            ca: true,
            policies: vec![ANY],
            ..Default::default()
        },
    );
    let l = issue(
        &any,
        "leaf",
        &Spec {
            policies: vec![P1],
            ..leaf("a.example.cn")
        },
    );
    invalid(&l, &[&top, &any], &[&r], &explicit(), "explicit policy");
}

#[test]
fn purpose_and_expected_name() {
    let r = root("Root");
    let i = issue(&r, "Int", &ca());
    let client = issue(
        &i,
        "client",
        &Spec {
            eku: Some(ExtendedKeyUsagePurpose::ClientAuth),
            ..leaf("c.example.cn")
        },
    );
    let mut o = opts();
    o.purpose = Purpose::ServerAuth;
    invalid(&client, &[&i], &[&r], &o, "extendedKeyUsage");
    o.purpose = Purpose::ClientAuth;
    valid(&client, &[&i], &[&r], &o);

    let server = issue(&i, "server", &leaf("*.shop.example.cn"));
    let mut o = opts();
    o.name = Some(ExpectedName::Dns("www.shop.example.cn".into()));
    valid(&server, &[&i], &[&r], &o);
    o.name = Some(ExpectedName::Dns("a.b.shop.example.cn".into()));
    invalid(&server, &[&i], &[&r], &o, "not valid for");
    o.name = Some(ExpectedName::Ip("10.0.0.1".parse().unwrap()));
    invalid(&server, &[&i], &[&r], &o, "not valid for");
}

#[test]
fn garbage_is_not_a_certificate() {
    assert!(Cert::parse(b"garbage").is_err());
    assert!(Cert::parse(&[0x30, 0x82, 0xff, 0xff]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Conformance cases (issue 12): one or more per class of certificate a verifier must refuse,
// written from RFC 5280, RFC 5937 and the CA/B Forum Baseline Requirements. Each builds a
// normal certificate and changes exactly what the case is about (`mutate` re-signs the TBS).
// ---------------------------------------------------------------------------------------------

use der::Decode;
use der::asn1::{BitString, Ia5String, OctetString};
use ecca::core::revcheck::{self, Status, When};
use x509_cert::ext::pkix::name::GeneralName as XName;

fn clone_key(k: &KeyPair) -> KeyPair {
    KeyPair::from_pem(&k.serialize_pem()).unwrap()
}

/// A node issued with `spec` after `tweak` adjusted its parameters.
fn issue_tweaked(
    issuer: &Node,
    cn: &str,
    spec: &Spec,
    tweak: impl FnOnce(&mut CertificateParams),
) -> Node {
    let key = KeyPair::generate().unwrap();
    let mut p = params(cn, spec, &key);
    tweak(&mut p);
    let iss = Issuer::from_params(&issuer.params, &issuer.key);
    let der = p.signed_by(&key, &iss).unwrap().der().to_vec();
    Node {
        key,
        params: p,
        der,
    }
}

/// A self-signed root after `tweak` adjusted its parameters.
fn root_tweaked(cn: &str, tweak: impl FnOnce(&mut CertificateParams)) -> Node {
    let key = KeyPair::generate().unwrap();
    let mut p = params(cn, &ca(), &key);
    tweak(&mut p);
    let der = p.self_signed(&key).unwrap().der().to_vec();
    Node {
        key,
        params: p,
        der,
    }
}

/// `n` with its TBSCertificate changed by `f`, signed again with `signer`.
fn mutate(n: &Node, signer: &KeyPair, f: impl FnOnce(&mut x509_cert::TbsCertificate)) -> Node {
    let mut cert = x509_cert::Certificate::from_der(&n.der).unwrap();
    f(&mut cert.tbs_certificate);
    let tbs = cert.tbs_certificate.to_der().unwrap();
    let sig = rcgen::SigningKey::sign(signer, &tbs).unwrap();
    cert.signature = BitString::from_bytes(&sig).unwrap();
    Node {
        key: clone_key(&n.key),
        params: n.params.clone(),
        der: cert.to_der().unwrap(),
    }
}

/// A self-signed node changed by `f` and signed again with its own key.
fn mutate_self(n: &Node, f: impl FnOnce(&mut x509_cert::TbsCertificate)) -> Node {
    mutate(n, &clone_key(&n.key), f)
}

fn exts(tbs: &mut x509_cert::TbsCertificate) -> &mut Vec<x509_cert::ext::Extension> {
    tbs.extensions.get_or_insert_with(Vec::new)
}

/// Replaces (or adds) the extension `id` with `value` (DER), critical or not.
fn set_ext(tbs: &mut x509_cert::TbsCertificate, id: &str, critical: bool, value: Vec<u8>) {
    let e = exts(tbs);
    e.retain(|x| x.extn_id != oid(id));
    e.push(x509_cert::ext::Extension {
        extn_id: oid(id),
        critical,
        extn_value: OctetString::new(value).unwrap(),
    });
}

fn drop_ext(tbs: &mut x509_cert::TbsCertificate, id: &str) {
    exts(tbs).retain(|x| x.extn_id != oid(id));
}

fn set_critical(tbs: &mut x509_cert::TbsCertificate, id: &str, critical: bool) {
    for x in exts(tbs).iter_mut().filter(|x| x.extn_id == oid(id)) {
        x.critical = critical;
    }
}

const AKI: &str = "2.5.29.35";
const SKI: &str = "2.5.29.14";
const BC: &str = "2.5.29.19";
const EKU: &str = "2.5.29.37";
const SAN: &str = "2.5.29.17";
const AIA: &str = "1.3.6.1.5.5.7.1.1";

fn server() -> Options {
    let mut o = opts();
    o.purpose = Purpose::ServerAuth;
    o
}

/// A TLS server leaf whose CN repeats its one DNS name.
fn tls_leaf(issuer: &Node, dns: &'static str) -> Node {
    issue(issuer, dns, &leaf(dns))
}

fn san_der(names: Vec<XName>) -> Vec<u8> {
    x509_cert::ext::pkix::SubjectAltName(names)
        .to_der()
        .unwrap()
}

fn dns(s: &str) -> XName {
    XName::DnsName(Ia5String::new(s).unwrap())
}

fn nc_der(permitted: Vec<XName>, excluded: Vec<XName>) -> Vec<u8> {
    use x509_cert::ext::pkix::constraints::name::{GeneralSubtree, NameConstraints};
    let subtrees = |v: Vec<XName>| {
        (!v.is_empty()).then(|| {
            v.into_iter()
                .map(|base| GeneralSubtree {
                    base,
                    minimum: 0,
                    maximum: None,
                })
                .collect()
        })
    };
    NameConstraints {
        permitted_subtrees: subtrees(permitted),
        excluded_subtrees: subtrees(excluded),
    }
    .to_der()
    .unwrap()
}

/// An intermediate CA whose name constraints are `nc` (DER, critical).
fn constrained_ca(r: &Node, nc: Vec<u8>) -> Node {
    issue(
        r,
        "Constrained CA",
        &Spec {
            raw_name_constraints: Some(nc),
            ..ca()
        },
    )
}

#[test]
fn anchor_validity_and_critical_extensions_apply() {
    // RFC 5937 §2: the anchor's validity bounds the path; an unknown critical extension
    // makes it unusable like any other certificate.
    let expired = root_with(
        "Expired Root",
        &Spec {
            expired: true,
            ..ca()
        },
    );
    let l = issue(&expired, "leaf", &leaf("a.example.cn"));
    invalid(&l, &[], &[&expired], &opts(), "(trust anchor): not valid");
    let odd = root_with(
        "Odd Root",
        &Spec {
            unknown_critical: true,
            ..ca()
        },
    );
    let l = issue(&odd, "leaf", &leaf("a.example.cn"));
    invalid(
        &l,
        &[],
        &[&odd],
        &opts(),
        "(trust anchor): unrecognised critical",
    );
}

#[test]
fn anchor_name_constraints_apply() {
    // RFC 5937 §3: name constraints in the anchor constrain the whole path, excluded
    // subtrees winning over permitted ones, for DNS and IP alike.
    let permits = root_tweaked("Permits Root", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.cn".into())],
            excluded_subtrees: vec![],
        })
    });
    valid(
        &issue(&permits, "leaf", &leaf("a.example.cn")),
        &[],
        &[&permits],
        &opts(),
    );
    let outside = issue(&permits, "leaf", &leaf("a.other.cn"));
    invalid(
        &outside,
        &[],
        &[&permits],
        &opts(),
        "outside the permitted subtrees",
    );
    let both = root_tweaked("Both Root", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.cn".into())],
            excluded_subtrees: vec![GeneralSubtree::DnsName("example.cn".into())],
        })
    });
    let l = issue(&both, "leaf", &leaf("a.example.cn"));
    invalid(&l, &[], &[&both], &opts(), "excluded subtree");
    let no_ten = root_tweaked("IP Root", |p| {
        p.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![],
            excluded_subtrees: vec![GeneralSubtree::IpAddress(
                CidrSubnet::from_str("10.0.0.0/8").unwrap(),
            )],
        })
    });
    let l = issue(
        &no_ten,
        "leaf",
        &Spec {
            ips: vec!["10.1.2.3"],
            ..Default::default()
        },
    );
    invalid(&l, &[], &[&no_ten], &opts(), "excluded subtree");
}

#[test]
fn anchor_must_be_a_certificate_signing_ca() {
    // RFC 5280 §4.2.1.9/§4.2.1.3 applied to the anchor: a v3 anchor needs a critical
    // basicConstraints with cA, keyCertSign when it has keyUsage, and a subjectKeyIdentifier
    // (§4.2.1.2); its path length binds the path.
    let r = root("Root");
    let no_bc = mutate_self(&r, |t| drop_ext(t, BC));
    invalid(
        &tls_leaf(&no_bc, "a.example.cn"),
        &[],
        &[&no_bc],
        &opts(),
        "without basicConstraints",
    );
    let soft_bc = mutate_self(&r, |t| set_critical(t, BC, false));
    invalid(
        &tls_leaf(&soft_bc, "a.example.cn"),
        &[],
        &[&soft_bc],
        &opts(),
        "not critical",
    );
    let no_ca = mutate_self(&r, |t| set_ext(t, BC, true, vec![0x30, 0x00]));
    invalid(
        &tls_leaf(&no_ca, "a.example.cn"),
        &[],
        &[&no_ca],
        &opts(),
        "cA is not set",
    );
    let no_kcs = root_with(
        "No KCS Root",
        &Spec {
            no_key_cert_sign: true,
            ..ca()
        },
    );
    invalid(
        &tls_leaf(&no_kcs, "a.example.cn"),
        &[],
        &[&no_kcs],
        &opts(),
        "keyCertSign",
    );
    let no_ski = mutate_self(&r, |t| drop_ext(t, SKI));
    invalid(
        &tls_leaf(&no_ski, "a.example.cn"),
        &[],
        &[&no_ski],
        &opts(),
        "subjectKeyIdentifier",
    );
    let short = root_with(
        "Short Root",
        &Spec {
            path_len: Some(0),
            ..ca()
        },
    );
    let i = issue(&short, "Int", &ca());
    invalid(
        &tls_leaf(&i, "a.example.cn"),
        &[&i],
        &[&short],
        &opts(),
        "path length",
    );
    valid(&tls_leaf(&short, "a.example.cn"), &[], &[&short], &opts());
}

#[test]
fn anchor_tls_rules() {
    // BR 7.1.2.1: a root used for TLS carries no extendedKeyUsage, and its AKI (if any) is
    // its own key identifier.
    let eku_root = root_tweaked("EKU Root", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]
    });
    let l = tls_leaf(&eku_root, "a.example.cn");
    invalid(&l, &[], &[&eku_root], &server(), "extendedKeyUsage");
    valid(&l, &[], &[&eku_root], &opts());
    let r = root("Root");
    let other_aki = mutate_self(&r, |t| {
        let aki = x509_cert::ext::pkix::AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(vec![7; 20]).unwrap()),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        set_ext(t, AKI, false, aki.to_der().unwrap());
    });
    let l = tls_leaf(&other_aki, "a.example.cn");
    invalid(
        &l,
        &[],
        &[&other_aki],
        &server(),
        "authorityKeyIdentifier of a root",
    );
}

#[test]
fn serial_numbers_must_be_positive_and_short() {
    // RFC 5280 §4.1.2.2: a positive integer of at most 20 octets.
    let r = root("Root");
    let zero = issue_tweaked(&r, "leaf", &leaf("a.example.cn"), |p| {
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0]))
    });
    invalid(&zero, &[], &[&r], &opts(), "serial number is zero");
    let long = issue_tweaked(&r, "leaf", &leaf("a.example.cn"), |p| {
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x11; 22]))
    });
    invalid(&long, &[], &[&r], &opts(), "22 octets");
    let base = issue(&r, "leaf", &leaf("a.example.cn"));
    let negative = mutate(&base, &r.key, |t| {
        t.serial_number =
            x509_cert::serial_number::SerialNumber::from_der(&[0x02, 0x02, 0xff, 0x01]).unwrap()
    });
    invalid(&negative, &[], &[&r], &opts(), "serial number is negative");
}

#[test]
fn key_identifiers_where_the_profile_requires_them() {
    // RFC 5280 §4.2.1.1: AKI keyIdentifier in every certificate but a self-signed one;
    // §4.2.1.2: SKI in every CA certificate.
    let r = root("Root");
    let no_aki = issue_tweaked(&r, "leaf", &leaf("a.example.cn"), |p| {
        p.use_authority_key_identifier_extension = false
    });
    invalid(
        &no_aki,
        &[],
        &[&r],
        &opts(),
        "authorityKeyIdentifier keyIdentifier is missing",
    );
    let i = issue(&r, "Int", &ca());
    let i_no_aki = mutate(&i, &r.key, |t| drop_ext(t, AKI));
    let l = issue(&i, "leaf", &leaf("a.example.cn"));
    invalid(
        &l,
        &[&i_no_aki],
        &[&r],
        &opts(),
        "authorityKeyIdentifier keyIdentifier is missing",
    );
    let i_no_ski = mutate(&i, &r.key, |t| drop_ext(t, SKI));
    invalid(
        &l,
        &[&i_no_ski],
        &[&r],
        &opts(),
        "without subjectKeyIdentifier",
    );
    valid(&l, &[&i], &[&r], &opts());
}

#[test]
fn extensions_that_must_not_be_critical() {
    // RFC 5280: AKI, SKI and AIA MUST be non-critical; BR 7.1.2.7.6: a TLS leaf's EKU too.
    let r = root("Root");
    let base = tls_leaf(&r, "a.example.cn");
    for id in [AKI, SKI] {
        let c = mutate(&base, &r.key, |t| set_critical(t, id, true));
        invalid(&c, &[], &[&r], &opts(), "is critical");
    }
    let aia = x509_cert::ext::pkix::AuthorityInfoAccessSyntax(vec![
        x509_cert::ext::pkix::AccessDescription {
            access_method: const_oid::db::rfc5280::ID_AD_CA_ISSUERS,
            access_location: XName::UniformResourceIdentifier(
                Ia5String::new("http://ca.example.cn/ca.der").unwrap(),
            ),
        },
    ])
    .to_der()
    .unwrap();
    let c = mutate(&base, &r.key, |t| set_ext(t, AIA, true, aia.clone()));
    invalid(&c, &[], &[&r], &opts(), "authorityInfoAccess is critical");
    let c = mutate(&base, &r.key, |t| set_ext(t, AIA, false, aia));
    valid(&c, &[], &[&r], &server());
    let c = mutate(&base, &r.key, |t| set_critical(t, EKU, true));
    invalid(&c, &[], &[&r], &server(), "extendedKeyUsage is critical");
    // RFC 3161 wants a critical EKU on a TSA certificate: fine outside TLS.
    valid(&c, &[], &[&r], &opts());
}

#[test]
fn extended_key_usage_rules() {
    // RFC 5280 §4.2.1.12: KeyPurposeId SEQUENCE SIZE (1..MAX); BR 7.1.2.7.10: no
    // anyExtendedKeyUsage and nothing but serverAuth/clientAuth in a TLS server leaf.
    let r = root("Root");
    let base = tls_leaf(&r, "a.example.cn");
    let empty = mutate(&base, &r.key, |t| set_ext(t, EKU, false, vec![0x30, 0x00]));
    invalid(&empty, &[], &[&r], &opts(), "extendedKeyUsage is empty");
    let any = issue_tweaked(&r, "a.example.cn", &leaf("a.example.cn"), |p| {
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::Any,
        ]
    });
    invalid(&any, &[], &[&r], &server(), "anyExtendedKeyUsage");
    let code = issue_tweaked(&r, "a.example.cn", &leaf("a.example.cn"), |p| {
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::CodeSigning,
        ]
    });
    invalid(&code, &[], &[&r], &server(), "not allowed with serverAuth");
    let none = mutate(&base, &r.key, |t| drop_ext(t, EKU));
    invalid(&none, &[], &[&r], &server(), "no extendedKeyUsage");
    valid(&none, &[], &[&r], &opts());
}

#[test]
fn intermediate_eku_must_allow_the_leafs_purposes_under_any() {
    // With no purpose asked for, the leaf's EKU says what it is for; a CA whose EKU excludes
    // all of that does not vouch for it (EKU chaining, as rustls-webpki and Windows do).
    let r = root("Root");
    let clients_only = issue_tweaked(&r, "Client CA", &ca(), |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]
    });
    let l = issue(&clients_only, "leaf", &leaf("a.example.cn"));
    invalid(
        &l,
        &[&clients_only],
        &[&r],
        &opts(),
        "excludes every purpose of the leaf",
    );
    let servers = issue_tweaked(&r, "Server CA", &ca(), |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]
    });
    let l = issue(&servers, "leaf", &leaf("a.example.cn"));
    valid(&l, &[&servers], &[&r], &opts());
}

#[test]
fn ca_only_fields_in_a_leaf() {
    // BR 7.1.2.7.8: a TLS leaf is not a CA; RFC 5280 §4.2.1.9: keyCertSign needs cA;
    // §4.2.1.10: nameConstraints only in CA certificates.
    let r = root("Root");
    let ca_leaf = issue_tweaked(&r, "a.example.cn", &leaf("a.example.cn"), |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ];
        // rcgen writes a CA's SKI itself.
        p.custom_extensions
            .retain(|e| e.oid_components().collect::<Vec<_>>() != [2, 5, 29, 14]);
    });
    invalid(
        &ca_leaf,
        &[],
        &[&r],
        &server(),
        "CA certificate used as a TLS end entity",
    );
    valid(&ca_leaf, &[], &[&r], &opts());
    let kcs = issue_tweaked(&r, "a.example.cn", &leaf("a.example.cn"), |p| {
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ]
    });
    invalid(
        &kcs,
        &[],
        &[&r],
        &opts(),
        "keyCertSign asserted without basicConstraints cA",
    );
    let nc_leaf = issue(
        &r,
        "a.example.cn",
        &Spec {
            raw_name_constraints: Some(nc_der(vec![dns("example.cn")], vec![])),
            ..leaf("a.example.cn")
        },
    );
    invalid(
        &nc_leaf,
        &[],
        &[&r],
        &opts(),
        "nameConstraints in an end-entity",
    );
}

#[test]
fn empty_subjects_need_a_critical_subject_alt_name() {
    // RFC 5280 §4.2.1.6: with an empty subject, the SAN is critical.
    let r = root("Root");
    let base = issue_tweaked(&r, "x", &leaf("a.example.cn"), |p| {
        p.distinguished_name = DistinguishedName::new()
    });
    let soft = mutate(&base, &r.key, |t| set_critical(t, SAN, false));
    invalid(&soft, &[], &[&r], &opts(), "subject is empty");
    let hard = mutate(&base, &r.key, |t| set_critical(t, SAN, true));
    valid(&hard, &[], &[&r], &opts());
}

#[test]
fn malformed_subject_alt_names_are_refused() {
    // RFC 5280 §4.2.1.6: dNSName in preferred name syntax (no leading dot, no underscore),
    // iPAddress of 4 or 16 octets, rfc822Name a mailbox.
    let r = root("Root");
    let base = tls_leaf(&r, "a.example.cn");
    let bad: Vec<(Vec<XName>, &str)> = vec![
        (vec![dns(".example.cn")], "dNSName \".example.cn\""),
        (vec![dns("a_b.example.cn")], "dNSName \"a_b.example.cn\""),
        (
            vec![XName::IpAddress(
                OctetString::new(vec![10, 0, 0, 0, 255, 0, 0, 0]).unwrap(),
            )],
            "iPAddress of 8 bytes",
        ),
        (
            vec![XName::Rfc822Name(Ia5String::new("a@b@example.cn").unwrap())],
            "not a mailbox",
        ),
    ];
    for (names, because) in bad {
        let c = mutate(&base, &r.key, |t| set_ext(t, SAN, false, san_der(names)));
        invalid(&c, &[], &[&r], &opts(), because);
    }
}

#[test]
fn malformed_name_constraints_are_refused() {
    // RFC 5280 §4.2.1.10: a DNS constraint is a host name (no leading period, no wildcard),
    // an IP constraint an address and a prefix mask (8 or 32 octets), an rfc822Name
    // constraint a mailbox, host or .domain.
    let r = root("Root");
    let bad: Vec<(XName, &str)> = vec![
        (dns(".example.cn"), "dNSName constraint \".example.cn\""),
        (dns("*.example.cn"), "dNSName constraint \"*.example.cn\""),
        (
            XName::IpAddress(OctetString::new(vec![10, 0, 0, 0]).unwrap()),
            "iPAddress constraint of 4 bytes",
        ),
        (
            XName::IpAddress(OctetString::new(vec![10, 0, 0, 0, 255, 0, 255, 0]).unwrap()),
            "mask is not a prefix",
        ),
        (
            XName::Rfc822Name(Ia5String::new("a@b@example.cn").unwrap()),
            "rfc822Name constraint",
        ),
    ];
    for (base, because) in bad {
        let i = constrained_ca(&r, nc_der(vec![base], vec![]));
        let l = issue(&i, "leaf", &leaf("a.example.cn"));
        invalid(&l, &[&i], &[&r], &opts(), because);
    }
    // Neither permitted nor excluded subtrees (BR 7.1.2.5.2).
    let i = constrained_ca(&r, vec![0x30, 0x00]);
    let l = issue(&i, "leaf", &leaf("a.example.cn"));
    invalid(&l, &[&i], &[&r], &opts(), "neither permitted nor excluded");
}

#[test]
fn constraints_on_unsupported_name_forms_fail_only_those_names() {
    // RFC 5280 §4.2.1.10: a constraint on a name form the verifier does not process (here
    // otherName) must reject certificates carrying such a name, and only those.
    let r = root("Root");
    let other = || {
        XName::OtherName(x509_cert::ext::pkix::name::OtherName {
            type_id: oid("1.3.6.1.4.1.55555.7"),
            value: der::Any::from(der::asn1::Null),
        })
    };
    let i = constrained_ca(&r, nc_der(vec![dns("example.cn")], vec![other()]));
    let plain = issue(&i, "leaf", &leaf("a.example.cn"));
    valid(&plain, &[&i], &[&r], &opts());
    let with_other = mutate(&plain, &i.key, |t| {
        set_ext(t, SAN, false, san_der(vec![dns("a.example.cn"), other()]))
    });
    invalid(&with_other, &[&i], &[&r], &opts(), "excluded subtree");
}

#[test]
fn tls_server_names() {
    // BR 7.1.2.7.12: a SAN is required, not critical under a non-empty subject; BR 7.1.4.3: a
    // CN is a character-for-character copy of a SAN (addresses in canonical text); wildcards
    // never span a public suffix.
    let r = root("Root");
    let no_san = issue_tweaked(&r, "a.example.cn", &leaf("a.example.cn"), |p| {
        p.subject_alt_names.clear()
    });
    invalid(&no_san, &[], &[&r], &server(), "no subjectAltName");
    let hard = mutate(&tls_leaf(&r, "a.example.cn"), &r.key, |t| {
        set_critical(t, SAN, true)
    });
    invalid(
        &hard,
        &[],
        &[&r],
        &server(),
        "subjectAltName is critical although",
    );
    let upper = issue(&r, "A.Example.CN", &leaf("a.example.cn"));
    invalid(&upper, &[], &[&r], &server(), "character-for-character");
    valid(&upper, &[], &[&r], &opts());
    let ip = Spec {
        ips: vec!["192.168.1.1"],
        ..Default::default()
    };
    invalid(
        &issue(&r, "192.168.001.001", &ip),
        &[],
        &[&r],
        &server(),
        "character-for-character",
    );
    valid(&issue(&r, "192.168.1.1", &ip), &[], &[&r], &server());
    for wildcard in ["*.com", "*.com.cn"] {
        let w = issue(&r, wildcard, &leaf(wildcard));
        invalid(&w, &[], &[&r], &server(), "spans the public suffix");
    }
    valid(
        &issue(&r, "*.shop.com.cn", &leaf("*.shop.com.cn")),
        &[],
        &[&r],
        &server(),
    );
}

/// A SubjectPublicKeyInfo with the given algorithm, parameters and key bits (no private key
/// exists for it: only the issuer signs here).
fn spki(
    alg: &str,
    params: Option<der::Any>,
    key: Vec<u8>,
) -> x509_cert::spki::SubjectPublicKeyInfoOwned {
    x509_cert::spki::SubjectPublicKeyInfoOwned {
        algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
            oid: oid(alg),
            parameters: params,
        },
        subject_public_key: BitString::from_bytes(&key).unwrap(),
    }
}

fn rsa_key(bits: usize) -> Vec<u8> {
    let mut n = vec![0xffu8; bits.div_ceil(8)];
    n[0] = 0xff >> ((8 - bits % 8) % 8);
    let body = [
        der::asn1::UintRef::new(&n).unwrap().to_der().unwrap(),
        der::asn1::UintRef::new(&[1, 0, 1])
            .unwrap()
            .to_der()
            .unwrap(),
    ]
    .concat();
    der::asn1::Any::new(der::Tag::Sequence, body)
        .unwrap()
        .to_der()
        .unwrap()
}

#[test]
fn forbidden_keys_are_refused() {
    // RSA below 2048 bits or not in whole bytes, curves other than P-256/384/521, DSA: not
    // accepted anywhere on a path (BR 6.1.5, as pyca/cryptography and rustls-webpki do).
    let r = root("Root");
    let base = tls_leaf(&r, "a.example.cn");
    let rsa = |bits| {
        spki(
            "1.2.840.113549.1.1.1",
            Some(der::Any::from(der::asn1::Null)),
            rsa_key(bits),
        )
    };
    let p192 = spki(
        "1.2.840.10045.2.1",
        Some(der::Any::from(oid("1.2.840.10045.3.1.1"))),
        [vec![4u8], vec![1u8; 48]].concat(),
    );
    let dsa = spki("1.2.840.10040.4.1", None, vec![0x02, 0x01, 0x05]);
    for (key, because) in [
        (rsa(1024), "RSA key of 1024 bits"),
        (rsa(2047), "RSA key of 2047 bits"),
        (rsa(2049), "not a whole number of bytes"),
        (p192, "elliptic curve"),
        (dsa, "DSA keys are not allowed"),
    ] {
        let c = mutate(&base, &r.key, |t| t.subject_public_key_info = key);
        invalid(&c, &[], &[&r], &opts(), because);
    }
    let c = mutate(&base, &r.key, |t| t.subject_public_key_info = rsa(2048));
    valid(&c, &[], &[&r], &opts());
}

#[test]
fn signature_algorithm_fields_must_agree() {
    // RFC 5280 §4.1.1.2: signatureAlgorithm MUST equal the TBS's signature field.
    let r = root("Root");
    let base = tls_leaf(&r, "a.example.cn");
    // The TBS claims SHA-384; the signature (and the outer field) are SHA-256.
    let odd = mutate(&base, &r.key, |t| {
        t.signature.oid = oid("1.2.840.10045.4.3.3")
    });
    invalid(&odd, &[], &[&r], &opts(), "differs from the TBSCertificate");
}

#[test]
fn quadratic_name_constraint_work_is_bounded() {
    // 2,048 permitted subtrees against 2,048 names: refused by the work budget, with a
    // reason, instead of millions of comparisons; a sane size passes.
    let r = root("Root");
    let make = |n: usize| {
        let constraints: Vec<XName> = (0..n).map(|i| dns(&format!("c{i}.example.cn"))).collect();
        let i = constrained_ca(&r, nc_der(constraints, vec![]));
        let names: Vec<XName> = (0..n).map(|k| dns(&format!("h.c{k}.example.cn"))).collect();
        let l = issue(&i, "leaf", &leaf("h.c0.example.cn"));
        let l = mutate(&l, &i.key, |t| set_ext(t, SAN, false, san_der(names)));
        (i, l)
    };
    let (i, l) = make(2048);
    invalid(&l, &[&i], &[&r], &opts(), "work budget");
    let (i, l) = make(40);
    valid(&l, &[&i], &[&r], &opts());
}

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

fn status(crl_der: &[u8], leaf: &Node, issuer: &Node, when: When) -> Result<Status, String> {
    revcheck::from_crl(crl_der, &cert(leaf), &cert(issuer), when).map(|(s, _)| s)
}

/// The CRL is not used for `leaf`, for the reason `because` names.
fn crl_refused(crl_der: &[u8], leaf: &Node, issuer: &Node, because: &str) {
    match status(crl_der, leaf, issuer, now_when()) {
        Err(e) => assert!(e.contains(because), "expected {because:?} in {e}"),
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
    crl_refused(&none, &l, &r, "without CRLNumber");
    let critical = mutate_crl(&good, &r, |t| {
        for x in t.crl_extensions.iter_mut().flatten() {
            if x.extn_id == oid("2.5.29.20") {
                x.critical = true;
            }
        }
    });
    crl_refused(&critical, &l, &r, "CRLNumber is critical");
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
    crl_refused(&c, &l, &r, "cRLSign");
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
    crl_refused(&c, &l, &r, "not the issuer's key");
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
    crl_refused(&other, &l, &r, "issuing distribution point");
    let cas = crl(&r, |p| {
        p.issuing_distribution_point = Some(idp(url, Some(rcgen::CrlScope::CaCertsOnly)))
    });
    crl_refused(&cas, &l, &r, "CA certificates only");
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
    crl_refused(&c, &l, &r, "entry has an unrecognised critical");
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
    crl_refused(&future, &l, &r, "produced after");
    let stale = crl(&r, |p| {
        p.this_update = now - Duration::days(3);
        p.next_update = now - Duration::days(2);
    });
    crl_refused(&stale, &l, &r, "stale");
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
