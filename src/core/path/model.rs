//! A certificate as path processing sees it: names, constraints, policies and the facts
//! the profile checks judge, parsed once from DER.
use super::*;

/// One subtree of a name constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Subtree {
    Dns(String),
    Email(String),
    Uri(String),
    Ip {
        addr: Vec<u8>,
        mask: Vec<u8>,
    },
    Dir(Vec<Rdn>),
    /// A name form ecca does not evaluate (otherName, x400Address, ediPartyName,
    /// registeredID), by its GeneralName tag: a constraint of such a form fails only a
    /// certificate that carries a name of that form.
    Other(u32),
}

/// An RDN as a sorted list of (attribute OID, normalised value).
pub(super) type Rdn = Vec<(String, String)>;

/// Names a certificate asserts, as constraints see them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    pub(crate) dns: Vec<String>,
    /// The dNSName values exactly as written (for the CA/B rule that a CN copies one).
    pub(crate) dns_raw: Vec<String>,
    pub(crate) emails: Vec<String>,
    pub(crate) uris: Vec<String>,
    pub(crate) ips: Vec<Vec<u8>>,
    pub(crate) dirs: Vec<Vec<Rdn>>,
    /// GeneralName tags of names ecca does not evaluate.
    pub(crate) others: Vec<u32>,
}

impl Names {
    pub(super) fn count(&self) -> usize {
        self.dns.len()
            + self.emails.len()
            + self.uris.len()
            + self.ips.len()
            + self.dirs.len()
            + self.others.len()
    }
}

/// The subject public key, as the key policy sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa {
        bits: usize,
    },
    /// RSASSA-PSS keys (their size is not read here).
    RsaPss,
    Ec {
        curve: String,
    },
    Ed25519,
    Dsa,
    #[default]
    Unknown,
    Other(String),
}

/// What a certificate says about itself that the profile checks (`core::certcheck`) judge:
/// for each extension, whether it is present and critical (`Some(critical)`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Facts {
    /// 0 = v1, 1 = v2, 2 = v3.
    pub(crate) version: u32,
    pub(crate) has_extensions: bool,
    /// The serial's DER INTEGER content.
    pub(crate) serial: Vec<u8>,
    /// The signature algorithm outside the TBS differs from the one inside.
    pub(crate) sig_mismatch: bool,
    pub(crate) subject_empty: bool,
    pub(crate) issuer_empty: bool,
    /// Subject commonName values.
    pub(crate) cn: Vec<String>,
    pub(crate) bc: Option<bool>,
    pub(crate) ku: Option<bool>,
    pub(crate) eku: Option<bool>,
    pub(crate) aki: Option<bool>,
    /// The AKI carries authorityCertIssuer or authorityCertSerialNumber.
    pub(crate) aki_issuer_serial: bool,
    pub(crate) ski: Option<bool>,
    pub(crate) aia: Option<bool>,
    pub(crate) san: Option<bool>,
    pub(crate) nc: Option<bool>,
    /// A name constraints extension with neither permitted nor excluded subtrees.
    pub(crate) nc_empty: bool,
    /// Malformed names and constraints, described.
    pub(crate) malformed: Vec<String>,
    /// The CRL distribution points name something other than URIs.
    pub(crate) cdp_non_uri: bool,
    pub(crate) key: KeyKind,
}

/// A parsed certificate, owned, with what path processing needs.
#[derive(Clone, Debug)]
pub struct Cert {
    pub der: Vec<u8>,
    pub(super) subject: Vec<u8>,
    pub(super) subject_norm: Vec<Rdn>,
    pub(super) issuer: Vec<u8>,
    pub(super) issuer_norm: Vec<Rdn>,
    pub(super) spki: Vec<u8>,
    pub(crate) ski: Option<Vec<u8>>,
    pub(crate) aki: Option<Vec<u8>>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) is_ca: bool,
    pub(crate) path_len: Option<u32>,
    pub(crate) key_usage: Option<u16>,
    pub(crate) eku: Option<Vec<String>>,
    pub(crate) names: Names,
    pub(crate) permitted: Option<Vec<Subtree>>,
    pub(crate) excluded: Vec<Subtree>,
    pub(super) policies: Option<Vec<String>>,
    pub(super) mappings: Option<Vec<(String, String)>>,
    pub(super) require_explicit: Option<u32>,
    pub(super) inhibit_mapping: Option<u32>,
    pub(super) inhibit_any: Option<u32>,
    pub(crate) unknown_critical: Vec<String>,
    pub(crate) sig_alg: String,
    pub(crate) facts: Facts,
    /// Subject for display.
    pub subject_text: String,
    /// CRL distribution point URLs.
    pub crl_urls: Vec<String>,
    /// AIA OCSP responder URLs.
    pub ocsp_urls: Vec<String>,
}

pub(crate) const KU_KEY_CERT_SIGN: u16 = 1 << 5;
pub(crate) const KU_CRL_SIGN: u16 = 1 << 6;

pub(super) fn rdns(name: &X509Name<'_>) -> Vec<Rdn> {
    name.iter_rdn()
        .map(|rdn| {
            let mut v: Rdn = rdn
                .iter()
                .map(|atv| {
                    let value = atv
                        .as_str()
                        .map(normalise)
                        .unwrap_or_else(|_| hex::encode(atv.attr_value().data));
                    (atv.attr_type().to_id_string(), value)
                })
                .collect();
            v.sort();
            v
        })
        .collect()
}

/// RFC 5280 §7.1 (simplified RFC 4518): case-fold and collapse internal spaces.
pub(super) fn normalise(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The context tag of a GeneralName (RFC 5280 §4.2.1.6).
pub(super) fn tag_of(g: &GeneralName<'_>) -> u32 {
    match g {
        GeneralName::OtherName(..) => 0,
        GeneralName::RFC822Name(_) => 1,
        GeneralName::DNSName(_) => 2,
        GeneralName::X400Address(_) => 3,
        GeneralName::DirectoryName(_) => 4,
        GeneralName::EDIPartyName(_) => 5,
        GeneralName::URI(_) => 6,
        GeneralName::IPAddress(_) => 7,
        GeneralName::RegisteredID(_) => 8,
        GeneralName::Invalid(t, _) => t.0,
    }
}

/// A dNSName in preferred name syntax (RFC 1034 §3.5, RFC 5280 §4.2.1.6), with an optional
/// wildcard as the whole leftmost label when `wildcard`.
pub(super) fn ldh_name(name: &str, wildcard: bool) -> bool {
    let rest = match name.strip_prefix("*.") {
        Some(r) if wildcard => r,
        _ => name,
    };
    !rest.is_empty()
        && rest.len() <= 253
        && rest.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// An rfc822Name mailbox: one '@', a non-empty ASCII local part, a host name.
pub(super) fn mailbox_ok(addr: &str) -> bool {
    match addr.split_once('@') {
        Some((local, host)) => {
            !local.is_empty()
                && !host.contains('@')
                && local.bytes().all(|b| b.is_ascii_graphic())
                && ldh_name(host, false)
        }
        None => false,
    }
}

/// A subject name or a constraint base that does not say what it should.
pub(super) fn san_problem(g: &GeneralName<'_>) -> Option<String> {
    match g {
        GeneralName::DNSName(d) if !ldh_name(d, true) => {
            Some(format!("subjectAltName dNSName {d:?} is not a host name"))
        }
        GeneralName::RFC822Name(e) if !mailbox_ok(e) => {
            Some(format!("subjectAltName rfc822Name {e:?} is not a mailbox"))
        }
        GeneralName::IPAddress(b) if b.len() != 4 && b.len() != 16 => Some(format!(
            "subjectAltName iPAddress of {} bytes (4 or 16)",
            b.len()
        )),
        GeneralName::URI(u) if u.is_empty() || !u.is_ascii() => {
            Some("subjectAltName URI is empty or not ASCII".into())
        }
        GeneralName::Invalid(..) => Some("subjectAltName holds an undecodable name".into()),
        _ => None,
    }
}

pub(super) fn subtree(g: &GeneralName<'_>) -> Result<Subtree, String> {
    Ok(match g {
        // RFC 5280 §4.2.1.10: a DNS constraint is a host name (empty: every name); neither a
        // leading period nor a wildcard is part of its syntax.
        GeneralName::DNSName(d) => {
            if !d.is_empty() && !ldh_name(d, false) {
                return Err(format!("dNSName constraint {d:?} is not a host name"));
            }
            Subtree::Dns(d.to_ascii_lowercase())
        }
        GeneralName::RFC822Name(e) => {
            let ok = if e.contains('@') {
                mailbox_ok(e)
            } else {
                ldh_name(e.strip_prefix('.').unwrap_or(e), false)
            };
            if !ok {
                return Err(format!("rfc822Name constraint {e:?} is malformed"));
            }
            Subtree::Email(e.to_ascii_lowercase())
        }
        GeneralName::URI(u) => Subtree::Uri(u.to_ascii_lowercase()),
        GeneralName::IPAddress(b) => {
            if b.len() != 8 && b.len() != 32 {
                return Err(format!(
                    "iPAddress constraint of {} bytes (8 or 32: address and mask)",
                    b.len()
                ));
            }
            let (a, m) = b.split_at(b.len() / 2);
            // The mask must be a prefix: ones, then zeros.
            let bits: Vec<bool> = m
                .iter()
                .flat_map(|byte| (0..8).map(move |i| byte & (0x80 >> i) != 0))
                .collect();
            if bits.windows(2).any(|w| !w[0] && w[1]) {
                return Err("iPAddress constraint mask is not a prefix".into());
            }
            Subtree::Ip {
                addr: a.to_vec(),
                mask: m.to_vec(),
            }
        }
        GeneralName::DirectoryName(n) => Subtree::Dir(rdns(n)),
        other => Subtree::Other(tag_of(other)),
    })
}

pub(super) fn key_kind(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> KeyKind {
    let oid = spki.algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.1" => match spki.parsed() {
            Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => {
                let m = rsa.modulus;
                let first = m.iter().position(|b| *b != 0).unwrap_or(m.len());
                let m = &m[first..];
                let bits = match m.first() {
                    Some(top) => (m.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
                    None => 0,
                };
                KeyKind::Rsa { bits }
            }
            _ => KeyKind::Unknown,
        },
        "1.2.840.113549.1.1.10" => KeyKind::RsaPss,
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            KeyKind::Ec { curve }
        }
        "1.3.101.112" => KeyKind::Ed25519,
        "1.2.840.10040.4.1" => KeyKind::Dsa,
        _ => KeyKind::Other(oid),
    }
}

impl Cert {
    /// Parses a DER certificate; an error when it does not parse.
    pub fn parse(der: &[u8]) -> Result<Cert, PathError> {
        Self::parse_text(der).map_err(PathError::Malformed)
    }

    fn parse_text(der: &[u8]) -> Result<Cert, String> {
        let (rest, x) = X509Certificate::from_der(der)
            .map_err(|e| format!("certificate does not parse: {e}"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let tbs = &x.tbs_certificate;
        let params = |a: &x509_parser::x509::AlgorithmIdentifier<'_>| {
            a.parameters.as_ref().map(|p| p.data.to_vec())
        };
        let facts = Facts {
            version: x.version().0,
            has_extensions: !x.extensions().is_empty(),
            serial: x.raw_serial().to_vec(),
            sig_mismatch: x.signature_algorithm.algorithm != tbs.signature.algorithm
                || params(&x.signature_algorithm) != params(&tbs.signature),
            subject_empty: x.subject().iter_rdn().next().is_none(),
            issuer_empty: x.issuer().iter_rdn().next().is_none(),
            cn: x
                .subject()
                .iter_common_name()
                .map(|a| a.as_str().unwrap_or("\u{fffd}").to_string())
                .collect(),
            key: key_kind(x.public_key()),
            ..Facts::default()
        };
        let mut c = Cert {
            der: der.to_vec(),
            subject: x.subject().as_raw().to_vec(),
            subject_norm: rdns(x.subject()),
            issuer: x.issuer().as_raw().to_vec(),
            issuer_norm: rdns(x.issuer()),
            spki: x.public_key().raw.to_vec(),
            ski: None,
            aki: None,
            not_before: x.validity().not_before.timestamp(),
            not_after: x.validity().not_after.timestamp(),
            is_ca: false,
            path_len: None,
            key_usage: None,
            eku: None,
            names: Names::default(),
            permitted: None,
            excluded: Vec::new(),
            policies: None,
            mappings: None,
            require_explicit: None,
            inhibit_mapping: None,
            inhibit_any: None,
            unknown_critical: Vec::new(),
            sig_alg: x.signature_algorithm.algorithm.to_id_string(),
            facts,
            subject_text: x.subject().to_string(),
            crl_urls: Vec::new(),
            ocsp_urls: Vec::new(),
        };
        for atv in x.subject().iter_attributes() {
            if *atv.attr_type() == OID_PKCS9_EMAIL_ADDRESS
                && let Ok(e) = atv.as_str()
            {
                c.names.emails.push(e.to_ascii_lowercase());
            }
        }
        c.names.dirs.push(c.subject_norm.clone());
        let mut seen = HashSet::new();
        for ext in x.extensions() {
            if !seen.insert(ext.oid.to_id_string()) {
                return Err(format!("extension {} appears twice", ext.oid));
            }
            let critical = Some(ext.critical);
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => {
                    c.ski = Some(k.0.to_vec());
                    c.facts.ski = critical;
                }
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    c.aki = a.key_identifier.as_ref().map(|k| k.0.to_vec());
                    c.facts.aki = critical;
                    c.facts.aki_issuer_serial =
                        a.authority_cert_issuer.is_some() || a.authority_cert_serial.is_some();
                }
                ParsedExtension::BasicConstraints(b) => {
                    c.is_ca = b.ca;
                    c.path_len = b.path_len_constraint;
                    c.facts.bc = critical;
                }
                ParsedExtension::KeyUsage(k) => {
                    c.key_usage = Some(k.flags);
                    c.facts.ku = critical;
                }
                ParsedExtension::ExtendedKeyUsage(e) => {
                    let mut v: Vec<String> = e.other.iter().map(|o| o.to_id_string()).collect();
                    let known = [
                        (e.any, ANY_EKU),
                        (e.server_auth, "1.3.6.1.5.5.7.3.1"),
                        (e.client_auth, "1.3.6.1.5.5.7.3.2"),
                        (e.code_signing, "1.3.6.1.5.5.7.3.3"),
                        (e.email_protection, "1.3.6.1.5.5.7.3.4"),
                        (e.time_stamping, "1.3.6.1.5.5.7.3.8"),
                        (e.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
                    ];
                    v.extend(
                        known
                            .iter()
                            .filter(|(on, _)| *on)
                            .map(|(_, oid)| oid.to_string()),
                    );
                    c.eku = Some(v);
                    c.facts.eku = critical;
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    c.facts.san = critical;
                    if san.general_names.is_empty() {
                        c.facts.malformed.push("subjectAltName is empty".into());
                    }
                    for g in &san.general_names {
                        if let Some(p) = san_problem(g) {
                            c.facts.malformed.push(p);
                        }
                        match g {
                            GeneralName::DNSName(d) => {
                                c.names.dns.push(d.to_ascii_lowercase());
                                c.names.dns_raw.push(d.to_string());
                            }
                            GeneralName::RFC822Name(e) => {
                                c.names.emails.push(e.to_ascii_lowercase())
                            }
                            GeneralName::URI(u) => c.names.uris.push(u.to_ascii_lowercase()),
                            GeneralName::IPAddress(b) => c.names.ips.push(b.to_vec()),
                            GeneralName::DirectoryName(n) => c.names.dirs.push(rdns(n)),
                            other => c.names.others.push(tag_of(other)),
                        }
                    }
                }
                ParsedExtension::NameConstraints(nc) => {
                    c.facts.nc = critical;
                    let mut parse =
                        |v: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
                            v.as_ref().map(|v| {
                                v.iter()
                                    .filter_map(|s| match subtree(&s.base) {
                                        Ok(t) => Some(t),
                                        Err(e) => {
                                            c.facts.malformed.push(e);
                                            None
                                        }
                                    })
                                    .collect::<Vec<_>>()
                            })
                        };
                    let permitted = parse(&nc.permitted_subtrees);
                    let excluded = parse(&nc.excluded_subtrees).unwrap_or_default();
                    c.facts.nc_empty =
                        permitted.as_ref().is_none_or(Vec::is_empty) && excluded.is_empty();
                    c.permitted = permitted;
                    c.excluded = excluded;
                }
                ParsedExtension::CertificatePolicies(p) => {
                    c.policies = Some(p.iter().map(|i| i.policy_id.to_id_string()).collect());
                }
                ParsedExtension::PolicyMappings(m) => {
                    c.mappings = Some(
                        m.mappings
                            .iter()
                            .map(|m| {
                                (
                                    m.issuer_domain_policy.to_id_string(),
                                    m.subject_domain_policy.to_id_string(),
                                )
                            })
                            .collect(),
                    );
                }
                ParsedExtension::PolicyConstraints(p) => {
                    c.require_explicit = p.require_explicit_policy;
                    c.inhibit_mapping = p.inhibit_policy_mapping;
                }
                ParsedExtension::InhibitAnyPolicy(i) => c.inhibit_any = Some(i.skip_certs),
                ParsedExtension::CRLDistributionPoints(points) => {
                    for p in points.iter() {
                        if let Some(x509_parser::extensions::DistributionPointName::FullName(
                            names,
                        )) = &p.distribution_point
                        {
                            for n in names {
                                match n {
                                    GeneralName::URI(u) => c.crl_urls.push(u.to_string()),
                                    _ => c.facts.cdp_non_uri = true,
                                }
                            }
                        }
                    }
                }
                ParsedExtension::AuthorityInfoAccess(aia) => {
                    c.facts.aia = critical;
                    if aia.accessdescs.is_empty() {
                        c.facts
                            .malformed
                            .push("authorityInfoAccess is empty".into());
                    }
                    for d in &aia.accessdescs {
                        if let (true, GeneralName::URI(u)) = (
                            d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1",
                            &d.access_location,
                        ) {
                            c.ocsp_urls.push(u.to_string());
                        }
                    }
                }
                ParsedExtension::ParseError { error } => {
                    return Err(format!("extension {} does not parse: {error}", ext.oid));
                }
                ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::Unparsed
                    if ext.critical =>
                {
                    c.unknown_critical.push(ext.oid.to_id_string());
                }
                _ => {}
            }
        }
        Ok(c)
    }

    /// True for a self-issued certificate (subject equals issuer).
    pub fn self_issued(&self) -> bool {
        self.subject == self.issuer || self.subject_norm == self.issuer_norm
    }

    /// The SHA-256 fingerprint (hex), naming the certificate in paths and reasons.
    pub fn fingerprint(&self) -> String {
        crate::core::fingerprint(&self.der)
    }

    /// True for a CA certificate (basicConstraints cA).
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }

    pub(super) fn issued_by_name(&self, issuer: &Cert) -> bool {
        self.issuer == issuer.subject || self.issuer_norm == issuer.subject_norm
    }
}

/// Signature algorithms accepted in paths (SHA-1 and MD5 are refused).
pub(crate) const ALLOWED_SIG_ALGS: &[&str] = &[
    "1.2.840.10045.4.3.2",   // ecdsa-with-SHA256
    "1.2.840.10045.4.3.3",   // ecdsa-with-SHA384
    "1.3.101.112",           // Ed25519
    "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
    "1.2.840.113549.1.1.12", // sha384WithRSAEncryption
    "1.2.840.113549.1.1.13", // sha512WithRSAEncryption
    "1.2.840.113549.1.1.10", // RSASSA-PSS
    "1.2.156.10197.1.501",   // SM3withSM2 (GM/T 0015; the default distinguishing ID)
];

/// Verifies `child`'s signature with `issuer`'s key.
pub(super) fn signature_ok(child: &Cert, issuer: &Cert) -> Result<(), String> {
    if !ALLOWED_SIG_ALGS.contains(&child.sig_alg.as_str()) {
        return Err(format!(
            "signature algorithm {} is not allowed",
            child.sig_alg
        ));
    }
    let (_, c) = X509Certificate::from_der(&child.der).map_err(|e| e.to_string())?;
    let (_, i) = X509Certificate::from_der(&issuer.der).map_err(|e| e.to_string())?;
    crate::core::keys::verify_signature(
        i.public_key(),
        &c.signature_algorithm,
        &c.signature_value.data,
        c.tbs_certificate.as_ref(),
        crate::core::sm2::DEFAULT_ID,
    )
    .map_err(|_| "signature does not verify with the candidate issuer's key".to_string())
}
