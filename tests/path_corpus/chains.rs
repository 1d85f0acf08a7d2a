//! Path building and RFC 5280 §6.1 on ordinary chains: constraints, names, policies, purpose.
use super::*;

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

/// Refusals say which kind of rule refused (`PathError`), not only in words.
#[test]
fn refusals_are_typed_by_rule() {
    use ecca::core::path::PathError;
    let r = root("Root");
    let i = issue(&r, "Int", &ca());
    let l = issue(&i, "leaf", &leaf("a.example.cn"));
    let kinds = |pool: &[&Node], o: &Options| -> Vec<PathError> {
        let pool: Vec<Cert> = pool.iter().map(|n| cert(n)).collect();
        build_and_validate(&cert(&l), &pool, &[cert(&r)], o)
            .map(|_| Vec::new())
            .unwrap_or_else(|f| f.reasons)
    };
    assert!(matches!(kinds(&[], &opts())[..], [PathError::NoPath(_)]));
    let mut past = opts();
    past.time -= 90 * 86_400;
    assert!(
        kinds(&[&i], &past)
            .iter()
            .all(|e| matches!(e, PathError::Validity(_)))
    );
    let not_ca = issue(&r, "NotCA", &Spec::default());
    let l2 = issue(&not_ca, "leaf", &leaf("a.example.cn"));
    let f = build_and_validate(&cert(&l2), &[cert(&not_ca)], &[cert(&r)], &opts()).unwrap_err();
    assert!(
        f.reasons.iter().any(|e| matches!(e, PathError::NotCa(_))),
        "{f:?}"
    );
    assert!(matches!(Cert::parse(b"junk"), Err(PathError::Malformed(_))));
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
