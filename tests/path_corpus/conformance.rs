use super::*;
use der::Decode;
use der::asn1::{BitString, Ia5String, OctetString};
use x509_cert::ext::pkix::name::GeneralName as XName;

// ---------------------------------------------------------------------------------------------
// Conformance cases (issue 12): one or more per class of certificate a verifier must refuse,
// written from RFC 5280, RFC 5937 and the CA/B Forum Baseline Requirements. Each builds a
// normal certificate and changes exactly what the case is about (`mutate` re-signs the TBS).
// ---------------------------------------------------------------------------------------------

pub(super) fn clone_key(k: &KeyPair) -> KeyPair {
    KeyPair::from_pem(&k.serialize_pem()).unwrap()
}

/// A node issued with `spec` after `tweak` adjusted its parameters.
pub(super) fn issue_tweaked(
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
pub(super) fn root_tweaked(cn: &str, tweak: impl FnOnce(&mut CertificateParams)) -> Node {
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
pub(super) fn mutate(
    n: &Node,
    signer: &KeyPair,
    f: impl FnOnce(&mut x509_cert::TbsCertificate),
) -> Node {
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
pub(super) fn mutate_self(n: &Node, f: impl FnOnce(&mut x509_cert::TbsCertificate)) -> Node {
    mutate(n, &clone_key(&n.key), f)
}

pub(super) fn exts(tbs: &mut x509_cert::TbsCertificate) -> &mut Vec<x509_cert::ext::Extension> {
    tbs.extensions.get_or_insert_with(Vec::new)
}

/// Replaces (or adds) the extension `id` with `value` (DER), critical or not.
pub(super) fn set_ext(
    tbs: &mut x509_cert::TbsCertificate,
    id: &str,
    critical: bool,
    value: Vec<u8>,
) {
    let e = exts(tbs);
    e.retain(|x| x.extn_id != oid(id));
    e.push(x509_cert::ext::Extension {
        extn_id: oid(id),
        critical,
        extn_value: OctetString::new(value).unwrap(),
    });
}

pub(super) fn drop_ext(tbs: &mut x509_cert::TbsCertificate, id: &str) {
    exts(tbs).retain(|x| x.extn_id != oid(id));
}

pub(super) fn set_critical(tbs: &mut x509_cert::TbsCertificate, id: &str, critical: bool) {
    for x in exts(tbs).iter_mut().filter(|x| x.extn_id == oid(id)) {
        x.critical = critical;
    }
}

pub(super) const AKI: &str = "2.5.29.35";
pub(super) const SKI: &str = "2.5.29.14";
pub(super) const BC: &str = "2.5.29.19";
pub(super) const EKU: &str = "2.5.29.37";
pub(super) const SAN: &str = "2.5.29.17";
pub(super) const AIA: &str = "1.3.6.1.5.5.7.1.1";

pub(super) fn server() -> Options {
    let mut o = opts();
    o.purpose = Purpose::ServerAuth;
    o
}

/// A TLS server leaf whose CN repeats its one DNS name.
pub(super) fn tls_leaf(issuer: &Node, dns: &'static str) -> Node {
    issue(issuer, dns, &leaf(dns))
}

pub(super) fn san_der(names: Vec<XName>) -> Vec<u8> {
    x509_cert::ext::pkix::SubjectAltName(names)
        .to_der()
        .unwrap()
}

pub(super) fn dns(s: &str) -> XName {
    XName::DnsName(Ia5String::new(s).unwrap())
}

pub(super) fn nc_der(permitted: Vec<XName>, excluded: Vec<XName>) -> Vec<u8> {
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
pub(super) fn constrained_ca(r: &Node, nc: Vec<u8>) -> Node {
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
pub(super) fn spki(
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

pub(super) fn rsa_key(bits: usize) -> Vec<u8> {
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
