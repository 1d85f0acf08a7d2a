//! Certification path building (RFC 4158) and validation (RFC 5280 §6), without I/O.
//!
//! From a leaf, a pool of candidate intermediates and cross-certificates, and trust anchors,
//! [`build_and_validate`] searches issuer candidates depth-first (matched by name and by
//! AKI/SKI, anchors first), backtracks when a candidate fails (bad signature, expired, a
//! constraint violated), and returns every valid path it finds within its work budget, shortest
//! first, or the reasons each attempt failed. Revocation is checked by the caller (it needs I/O)
//! on the paths returned here.
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKCS9_EMAIL_ADDRESS;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

use crate::core::certcheck;

/// anyPolicy (2.5.29.32.0).
pub const ANY_POLICY: &str = "2.5.29.32.0";
/// anyExtendedKeyUsage.
const ANY_EKU: &str = "2.5.29.37.0";

/// Limits that keep a hostile pool from looping or exploding.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Most certificates in a path (leaf included, anchor excluded).
    pub max_depth: usize,
    /// Most issuer candidates examined in all.
    pub max_candidates: usize,
    /// Most signature verifications in all.
    pub max_signatures: usize,
    /// Most valid paths collected.
    pub max_paths: usize,
    /// Most nodes in the policy tree at any depth.
    pub max_policy_nodes: usize,
    /// Most name-to-constraint comparisons in all (names x subtrees is quadratic).
    pub max_name_checks: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_depth: 8,
            max_candidates: 512,
            max_signatures: 256,
            max_paths: 4,
            max_policy_nodes: 256,
            max_name_checks: 250_000,
        }
    }
}

/// What the leaf must be good for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    ServerAuth,
    ClientAuth,
    /// Document signing: emailProtection or id-kp-documentSigning.
    DocumentSigning,
    /// RFC 3161 time-stamping (id-kp-timeStamping).
    TimeStamping,
    Any,
}

impl Purpose {
    fn accepted_ekus(self) -> &'static [&'static str] {
        match self {
            Purpose::ServerAuth => &["1.3.6.1.5.5.7.3.1"],
            Purpose::ClientAuth => &["1.3.6.1.5.5.7.3.2"],
            Purpose::DocumentSigning => &["1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36"],
            Purpose::TimeStamping => &["1.3.6.1.5.5.7.3.8"],
            Purpose::Any => &[],
        }
    }
}

/// A name the leaf must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedName {
    Dns(String),
    Ip(IpAddr),
    Email(String),
}

/// Validation inputs besides the certificates.
#[derive(Clone, Debug)]
pub struct Options {
    /// Validation time, Unix seconds.
    pub time: i64,
    pub purpose: Purpose,
    pub name: Option<ExpectedName>,
    /// User-initial-policy-set; empty means anyPolicy.
    pub initial_policies: Vec<String>,
    pub initial_explicit_policy: bool,
    pub initial_policy_mapping_inhibit: bool,
    pub initial_any_policy_inhibit: bool,
    pub budget: Budget,
}

impl Options {
    pub fn at(time: i64) -> Self {
        Options {
            time,
            purpose: Purpose::Any,
            name: None,
            initial_policies: Vec::new(),
            initial_explicit_policy: false,
            initial_policy_mapping_inhibit: false,
            initial_any_policy_inhibit: false,
            budget: Budget::default(),
        }
    }
}

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
type Rdn = Vec<(String, String)>;

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
    fn count(&self) -> usize {
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
    subject: Vec<u8>,
    subject_norm: Vec<Rdn>,
    issuer: Vec<u8>,
    issuer_norm: Vec<Rdn>,
    spki: Vec<u8>,
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
    policies: Option<Vec<String>>,
    mappings: Option<Vec<(String, String)>>,
    require_explicit: Option<u32>,
    inhibit_mapping: Option<u32>,
    inhibit_any: Option<u32>,
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

fn rdns(name: &X509Name<'_>) -> Vec<Rdn> {
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
fn normalise(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The context tag of a GeneralName (RFC 5280 §4.2.1.6).
fn tag_of(g: &GeneralName<'_>) -> u32 {
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
fn ldh_name(name: &str, wildcard: bool) -> bool {
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
fn mailbox_ok(addr: &str) -> bool {
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
fn san_problem(g: &GeneralName<'_>) -> Option<String> {
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

fn subtree(g: &GeneralName<'_>) -> Result<Subtree, String> {
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

fn key_kind(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> KeyKind {
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
    pub fn parse(der: &[u8]) -> Result<Cert, String> {
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

    fn issued_by_name(&self, issuer: &Cert) -> bool {
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
];

/// Verifies `child`'s signature with `issuer`'s key.
fn signature_ok(child: &Cert, issuer: &Cert) -> Result<(), String> {
    if !ALLOWED_SIG_ALGS.contains(&child.sig_alg.as_str()) {
        return Err(format!(
            "signature algorithm {} is not allowed",
            child.sig_alg
        ));
    }
    let (_, c) = X509Certificate::from_der(&child.der).map_err(|e| e.to_string())?;
    let (_, i) = X509Certificate::from_der(&issuer.der).map_err(|e| e.to_string())?;
    c.verify_signature(Some(i.public_key()))
        .map_err(|_| "signature does not verify with the candidate issuer's key".to_string())
}

/// A valid path: the leaf first, the trust anchor last.
#[derive(Clone, Debug)]
pub struct ValidPath {
    pub certs: Vec<Cert>,
}

/// Why validation failed, in words.
#[derive(Clone, Debug, Default)]
pub struct Failure {
    pub reasons: Vec<String>,
}

struct Search<'a> {
    pool: &'a [Cert],
    anchors: &'a [Cert],
    opts: &'a Options,
    candidates: usize,
    signatures: usize,
    /// Name-constraint comparisons made so far, across every path tried.
    name_checks: usize,
    found: Vec<ValidPath>,
    reasons: Vec<String>,
    exhausted: bool,
}

impl Search<'_> {
    fn note(&mut self, reason: String) {
        if self.reasons.len() < 32 && !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }

    fn check_signature(&mut self, child: &Cert, issuer: &Cert) -> bool {
        if self.signatures >= self.opts.budget.max_signatures {
            self.exhausted = true;
            return false;
        }
        self.signatures += 1;
        match signature_ok(child, issuer) {
            Ok(()) => true,
            Err(e) => {
                self.note(format!(
                    "{}: {e} ({})",
                    child.subject_text, issuer.subject_text
                ));
                false
            }
        }
    }

    /// Candidates that may have issued `cert`, best first (RFC 4158 §3.5 ordering, simplified).
    fn candidates<'c>(&self, cert: &Cert, list: &'c [Cert]) -> Vec<&'c Cert> {
        let mut v: Vec<&Cert> = list
            .iter()
            .filter(|c| cert.issued_by_name(c))
            .filter(|c| match (&cert.aki, &c.ski) {
                (Some(a), Some(s)) => a == s,
                _ => true,
            })
            .collect();
        let t = self.opts.time;
        v.sort_by_key(|c| {
            let key_match = cert.aki.is_some() && cert.aki == c.ski;
            let valid_now = c.not_before <= t && t <= c.not_after;
            (!valid_now, !key_match, std::cmp::Reverse(c.not_after))
        });
        v
    }

    fn dfs(&mut self, path: &mut Vec<Cert>) {
        if self.found.len() >= self.opts.budget.max_paths || self.exhausted {
            return;
        }
        let Some(current) = path.last().cloned() else {
            return;
        };
        // An anchor that issued the current certificate completes a path.
        for anchor in self.candidates(&current, self.anchors) {
            if self.bump() && self.check_signature(&current, anchor) {
                let mut full = path.clone();
                full.push(anchor.clone());
                match validate_within(&full, self.opts, &mut self.name_checks) {
                    Ok(()) => self.found.push(ValidPath { certs: full }),
                    Err(reasons) => reasons.into_iter().for_each(|r| self.note(r)),
                }
                if self.name_checks > self.opts.budget.max_name_checks {
                    self.exhausted = true;
                    return;
                }
                if self.found.len() >= self.opts.budget.max_paths {
                    return;
                }
            }
        }
        if path.len() >= self.opts.budget.max_depth {
            self.note(format!(
                "path longer than {} certificates abandoned",
                self.opts.budget.max_depth
            ));
            return;
        }
        for cand in self.candidates(&current, self.pool) {
            // RFC 4158 §2.4.2 loop rule: the same subject and key never appear twice.
            if path
                .iter()
                .any(|p| p.subject_norm == cand.subject_norm && p.spki == cand.spki)
            {
                continue;
            }
            if !self.bump() {
                return;
            }
            if !(cand.not_before <= self.opts.time && self.opts.time <= cand.not_after) {
                self.note(format!(
                    "{}: candidate issuer is outside its validity period",
                    cand.subject_text
                ));
                continue;
            }
            if !self.check_signature(&current, cand) {
                continue;
            }
            path.push(cand.clone());
            self.dfs(path);
            path.pop();
        }
    }

    fn bump(&mut self) -> bool {
        self.candidates += 1;
        if self.candidates > self.opts.budget.max_candidates {
            self.exhausted = true;
            false
        } else {
            true
        }
    }
}

/// Builds paths from `leaf` through `pool` to one of `anchors`, validating each; returns the
/// valid ones (shortest first) or the reasons none was valid.
pub fn build_and_validate(
    leaf: &Cert,
    pool: &[Cert],
    anchors: &[Cert],
    opts: &Options,
) -> Result<Vec<ValidPath>, Failure> {
    let mut s = Search {
        pool,
        anchors,
        opts,
        candidates: 0,
        signatures: 0,
        name_checks: 0,
        found: Vec::new(),
        reasons: Vec::new(),
        exhausted: false,
    };
    // A leaf that is itself a trust anchor is trusted directly (within its validity).
    if anchors.iter().any(|a| a.der == leaf.der) {
        if !(leaf.not_before <= opts.time && opts.time <= leaf.not_after) {
            return Err(Failure {
                reasons: vec![format!(
                    "{}: trust anchor is not valid at the validation time",
                    leaf.subject_text
                )],
            });
        }
        return Ok(vec![ValidPath {
            certs: vec![leaf.clone()],
        }]);
    }
    s.dfs(&mut vec![leaf.clone()]);
    if s.exhausted {
        s.note(
            "work budget exhausted (too many candidates or signatures); path search stopped".into(),
        );
    }
    if s.found.is_empty() {
        if s.reasons.is_empty() {
            s.reasons.push(format!(
                "no issuer of {:?} found among the candidates and trust anchors",
                leaf.subject_text
            ));
        }
        return Err(Failure { reasons: s.reasons });
    }
    s.found.sort_by_key(|p| p.certs.len());
    Ok(s.found)
}

/// RFC 5280 §6.1 on a complete path (leaf first, anchor last), with the trust anchor's own
/// constraints applied (RFC 5937) and the certificate profile checked (`core::certcheck`).
pub fn validate(path: &[Cert], opts: &Options) -> Result<(), Vec<String>> {
    validate_within(path, opts, &mut 0)
}

fn validate_within(
    path: &[Cert],
    opts: &Options,
    name_checks: &mut usize,
) -> Result<(), Vec<String>> {
    let Some(anchor) = path.last() else {
        return Err(vec!["empty path".into()]);
    };
    let mut reasons = Vec::new();
    // Processed from the certificate the anchor issued down to the leaf: certs[0] is the first.
    let certs: Vec<&Cert> = path[..path.len() - 1].iter().rev().collect();
    let n = certs.len();
    reasons.extend(certcheck::anchor(anchor, opts.purpose, opts.time));
    // The anchor's path length and name constraints bind the whole path (RFC 5937 §3).
    let mut max_path_len = anchor.path_len.map_or(n, |p| n.min(p as usize));
    let mut permitted: Vec<Vec<Subtree>> = anchor.permitted.iter().cloned().collect();
    let mut excluded: Vec<Subtree> = anchor.excluded.clone();
    let mut policy = PolicyState::new(n, opts);

    for (idx, cert) in certs.iter().enumerate() {
        let i = idx + 1;
        let is_leaf = i == n;
        let who = &cert.subject_text;
        let position = if is_leaf {
            certcheck::Position::Leaf
        } else {
            certcheck::Position::Intermediate
        };
        reasons.extend(certcheck::profile(cert, position, opts.purpose));
        if !(cert.not_before <= opts.time && opts.time <= cert.not_after) {
            reasons.push(format!("{who}: not valid at the validation time"));
        }
        if let Some(u) = cert.unknown_critical.first() {
            reasons.push(format!("{who}: unrecognised critical extension {u}"));
        }
        // Name constraints apply to every certificate after the one that set them, except
        // self-issued intermediates.
        if is_leaf || !cert.self_issued() {
            if let Err(e) = check_names(&cert.names, &permitted, &excluded, name_checks, opts) {
                reasons.push(format!("{who}: {e}"));
            }
        }
        if let Err(e) = policy.process(cert, i, opts.budget.max_policy_nodes) {
            reasons.push(format!("{who}: {e}"));
        }
        if is_leaf {
            break;
        }
        // Preparation for the next certificate (§6.1.4).
        if let Err(e) = policy.prepare(cert) {
            reasons.push(format!("{who}: {e}"));
        }
        if let Some(p) = &cert.permitted {
            permitted.push(p.clone());
        }
        excluded.extend(cert.excluded.iter().cloned());
        if !cert.is_ca {
            reasons.push(format!(
                "{who}: used as a CA but basicConstraints cA is not set"
            ));
        }
        if !cert.self_issued() {
            if max_path_len == 0 {
                reasons.push(format!("{who}: path length constraint exceeded"));
            }
            max_path_len = max_path_len.saturating_sub(1);
        }
        if let Some(pl) = cert.path_len {
            max_path_len = max_path_len.min(pl as usize);
        }
        if cert.key_usage.is_some_and(|k| k & KU_KEY_CERT_SIGN == 0) {
            reasons.push(format!(
                "{who}: used as a CA but keyUsage lacks keyCertSign"
            ));
        }
        if let Some(eku) = &cert.eku
            && !eku_allows(eku, opts.purpose)
        {
            reasons.push(format!("{who}: CA's extendedKeyUsage excludes the purpose"));
        }
    }
    if n == 0 {
        return if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        };
    }
    let leaf = certs[n - 1];
    if let Err(e) = policy.finish(leaf, opts) {
        reasons.push(e);
    }
    if let Some(eku) = &leaf.eku
        && !eku_allows(eku, opts.purpose)
    {
        reasons.push(format!(
            "{}: extendedKeyUsage does not allow {:?}",
            leaf.subject_text, opts.purpose
        ));
    }
    if opts.purpose == Purpose::Any
        && let Some(e) = eku_chain(&certs)
    {
        reasons.push(e);
    }
    if let Some(name) = &opts.name
        && !name_matches(&leaf.names, name)
    {
        reasons.push(format!("{}: not valid for {name:?}", leaf.subject_text));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Under no particular purpose, the purposes the leaf's EKU names must survive every CA's
/// EKU (as Windows and rustls-webpki chain them): a CA limited to clientAuth does not vouch
/// for a serverAuth leaf.
fn eku_chain(certs: &[&Cert]) -> Option<String> {
    let leaf = certs.last()?;
    let wanted: Vec<&String> = leaf
        .eku
        .as_ref()?
        .iter()
        .filter(|e| *e != ANY_EKU)
        .collect();
    if wanted.is_empty() || leaf.eku.as_ref()?.iter().any(|e| e == ANY_EKU) {
        return None;
    }
    for ca in &certs[..certs.len() - 1] {
        if let Some(eku) = &ca.eku
            && !eku.iter().any(|e| e == ANY_EKU || wanted.contains(&e))
        {
            return Some(format!(
                "{}: CA's extendedKeyUsage excludes every purpose of the leaf",
                ca.subject_text
            ));
        }
    }
    None
}

fn eku_allows(eku: &[String], purpose: Purpose) -> bool {
    let accepted = purpose.accepted_ekus();
    accepted.is_empty()
        || eku
            .iter()
            .any(|e| e == ANY_EKU || accepted.contains(&e.as_str()))
}

fn name_matches(names: &Names, expected: &ExpectedName) -> bool {
    match expected {
        ExpectedName::Dns(d) => {
            let d = d.to_ascii_lowercase();
            names.dns.iter().any(|n| match n.strip_prefix("*.") {
                Some(rest) => d
                    .split_once('.')
                    .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
                None => *n == d,
            })
        }
        ExpectedName::Ip(ip) => {
            let bytes = match ip {
                IpAddr::V4(v) => v.octets().to_vec(),
                IpAddr::V6(v) => v.octets().to_vec(),
            };
            names.ips.contains(&bytes)
        }
        ExpectedName::Email(e) => names.emails.contains(&e.to_ascii_lowercase()),
    }
}

fn dns_within(name: &str, base: &str) -> bool {
    let base = base.trim_start_matches('.');
    base.is_empty() || name == base || name.ends_with(&format!(".{base}"))
}

fn email_within(addr: &str, base: &str) -> bool {
    if base.contains('@') {
        return addr == base;
    }
    let Some((_, host)) = addr.rsplit_once('@') else {
        return false;
    };
    match base.strip_prefix('.') {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == base,
    }
}

fn uri_host(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

fn uri_within(uri: &str, base: &str) -> bool {
    let Some(host) = uri_host(uri) else {
        return false;
    };
    match base.strip_prefix('.') {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == base,
    }
}

fn ip_within(ip: &[u8], addr: &[u8], mask: &[u8]) -> bool {
    ip.len() == addr.len()
        && ip
            .iter()
            .zip(addr)
            .zip(mask)
            .all(|((i, a), m)| i & m == a & m)
}

fn dir_within(name: &[Rdn], base: &[Rdn]) -> bool {
    base.len() <= name.len() && name[..base.len()] == *base
}

/// Does `tree` constrain names of this kind, and is `name` inside it?
fn within(tree: &Subtree, kind: &Subtree) -> Option<bool> {
    Some(match (tree, kind) {
        (Subtree::Dns(b), Subtree::Dns(n)) => dns_within(n, b),
        (Subtree::Email(b), Subtree::Email(n)) => email_within(n, b),
        (Subtree::Uri(b), Subtree::Uri(n)) => uri_within(n, b),
        (Subtree::Ip { addr, mask }, Subtree::Ip { addr: n, .. }) => ip_within(n, addr, mask),
        (Subtree::Dir(b), Subtree::Dir(n)) => dir_within(n, b),
        _ => return None,
    })
}

fn check_names(
    names: &Names,
    permitted: &[Vec<Subtree>],
    excluded: &[Subtree],
    name_checks: &mut usize,
    opts: &Options,
) -> Result<(), String> {
    // Every name meets every subtree once: refuse up front what would exceed the budget.
    let subtrees = excluded.len() + permitted.iter().map(Vec::len).sum::<usize>();
    *name_checks = name_checks.saturating_add(names.count().saturating_mul(subtrees));
    if *name_checks > opts.budget.max_name_checks {
        return Err(format!(
            "name-constraint checks exceed the work budget ({} comparisons); refused",
            opts.budget.max_name_checks
        ));
    }
    let mut all: Vec<Subtree> = Vec::new();
    all.extend(names.dns.iter().map(|d| Subtree::Dns(d.clone())));
    all.extend(names.emails.iter().map(|e| Subtree::Email(e.clone())));
    all.extend(names.uris.iter().map(|u| Subtree::Uri(u.clone())));
    all.extend(names.ips.iter().map(|ip| Subtree::Ip {
        addr: ip.clone(),
        mask: Vec::new(),
    }));
    // An empty subject DN is not constrained by directoryName subtrees.
    all.extend(
        names
            .dirs
            .iter()
            .filter(|d| !d.is_empty())
            .map(|d| Subtree::Dir(d.clone())),
    );
    all.extend(names.others.iter().map(|t| Subtree::Other(*t)));
    for name in &all {
        if excluded
            .iter()
            .any(|t| within(t, name) != Some(false) && kind_of(t) == kind_of(name))
        {
            return Err(format!("name {} is in an excluded subtree", show(name)));
        }
        for set in permitted {
            let applicable: Vec<Option<bool>> = set
                .iter()
                .filter(|t| kind_of(t) == kind_of(name))
                .map(|t| within(t, name))
                .collect();
            if !applicable.is_empty() && !applicable.contains(&Some(true)) {
                return Err(format!(
                    "name {} is outside the permitted subtrees",
                    show(name)
                ));
            }
        }
    }
    Ok(())
}

/// The name form of a subtree or name (its GeneralName tag).
fn kind_of(s: &Subtree) -> u32 {
    match s {
        Subtree::Email(_) => 1,
        Subtree::Dns(_) => 2,
        Subtree::Dir(_) => 4,
        Subtree::Uri(_) => 6,
        Subtree::Ip { .. } => 7,
        Subtree::Other(t) => *t,
    }
}

fn show(s: &Subtree) -> String {
    match s {
        Subtree::Dns(d) => format!("DNS:{d}"),
        Subtree::Email(e) => format!("email:{e}"),
        Subtree::Uri(u) => format!("URI:{u}"),
        Subtree::Ip { addr, .. } => match addr.len() {
            4 => format!(
                "IP:{}",
                IpAddr::from(<[u8; 4]>::try_from(addr.as_slice()).unwrap_or_default())
            ),
            16 => format!(
                "IP:{}",
                IpAddr::from(<[u8; 16]>::try_from(addr.as_slice()).unwrap_or_default())
            ),
            _ => "IP:?".into(),
        },
        Subtree::Dir(d) => format!("DirName:{d:?}"),
        Subtree::Other(t) => format!("name of GeneralName type [{t}]"),
    }
}

/// A node of the valid_policy_tree (RFC 5280 §6.1.2 (a)); qualifiers are not kept.
#[derive(Clone, Debug)]
struct Node {
    policy: String,
    expected: BTreeSet<String>,
    parent: usize,
}

/// RFC 5280 §6.1 policy processing state.
struct PolicyState {
    /// Certificates in the path (anchor excluded).
    n: usize,
    /// Levels of the tree; None once the tree is NULL.
    tree: Option<Vec<Vec<Node>>>,
    explicit: usize,
    mapping: usize,
    any: usize,
}

impl PolicyState {
    fn new(n: usize, opts: &Options) -> Self {
        let root = Node {
            policy: ANY_POLICY.into(),
            expected: [ANY_POLICY.to_string()].into(),
            parent: 0,
        };
        let start = |flag: bool| if flag { 0 } else { n + 1 };
        PolicyState {
            n,
            tree: Some(vec![vec![root]]),
            explicit: start(opts.initial_explicit_policy),
            mapping: start(opts.initial_policy_mapping_inhibit),
            any: start(opts.initial_any_policy_inhibit),
        }
    }

    /// §6.1.3 (d)-(f) for certificate i.
    fn process(&mut self, cert: &Cert, i: usize, max_nodes: usize) -> Result<(), String> {
        match (&cert.policies, self.tree.as_mut()) {
            (Some(policies), Some(tree)) => {
                let prev = &tree[i - 1];
                let mut level: Vec<Node> = Vec::new();
                for p in policies.iter().filter(|p| *p != ANY_POLICY) {
                    let matched: Vec<usize> = (0..prev.len())
                        .filter(|&k| prev[k].expected.contains(p))
                        .collect();
                    let parents = if matched.is_empty() {
                        (0..prev.len())
                            .filter(|&k| prev[k].policy == ANY_POLICY)
                            .collect()
                    } else {
                        matched
                    };
                    for parent in parents {
                        level.push(Node {
                            policy: p.clone(),
                            expected: [p.clone()].into(),
                            parent,
                        });
                    }
                }
                let allow_any = self.any > 0 || (i < self.n && cert.self_issued());
                if policies.iter().any(|p| p == ANY_POLICY) && allow_any {
                    for (k, node) in prev.iter().enumerate() {
                        for e in &node.expected {
                            let exists = level.iter().any(|c| c.parent == k && c.policy == *e);
                            if !exists {
                                level.push(Node {
                                    policy: e.clone(),
                                    expected: [e.clone()].into(),
                                    parent: k,
                                });
                            }
                        }
                    }
                }
                if level.len() > max_nodes {
                    return Err("certificate policy tree too large".into());
                }
                tree.truncate(i);
                tree.push(level);
                prune(tree);
                if tree.last().is_none_or(Vec::is_empty) {
                    self.tree = None;
                }
            }
            _ => self.tree = None,
        }
        if self.explicit == 0 && self.tree.is_none() {
            return Err("no valid certificate policy, but an explicit policy is required".into());
        }
        Ok(())
    }

    /// §6.1.4 (a), (b), (h)-(j).
    fn prepare(&mut self, cert: &Cert) -> Result<(), String> {
        if let Some(maps) = &cert.mappings {
            if maps.iter().any(|(i, s)| i == ANY_POLICY || s == ANY_POLICY) {
                return Err("policy mapping to or from anyPolicy".into());
            }
            if let Some(tree) = self.tree.as_mut() {
                let depth = tree.len() - 1;
                let issuer_policies: BTreeSet<&String> = maps.iter().map(|(i, _)| i).collect();
                for idp in issuer_policies {
                    let subjects: BTreeSet<String> = maps
                        .iter()
                        .filter(|(i, _)| i == idp)
                        .map(|(_, s)| s.clone())
                        .collect();
                    if self.mapping > 0 {
                        let level = &mut tree[depth];
                        let mut hit = false;
                        for node in level.iter_mut().filter(|n| n.policy == *idp) {
                            node.expected = subjects.clone();
                            hit = true;
                        }
                        if !hit
                            && let Some(any) =
                                level.iter().find(|n| n.policy == ANY_POLICY).cloned()
                        {
                            level.push(Node {
                                policy: idp.clone(),
                                expected: subjects,
                                parent: any.parent,
                            });
                        }
                    } else {
                        tree[depth].retain(|n| n.policy != *idp);
                        prune(tree);
                        if tree.last().is_none_or(Vec::is_empty) {
                            self.tree = None;
                            break;
                        }
                    }
                }
            }
        }
        if !cert.self_issued() {
            self.explicit = self.explicit.saturating_sub(1);
            self.mapping = self.mapping.saturating_sub(1);
            self.any = self.any.saturating_sub(1);
        }
        if let Some(r) = cert.require_explicit {
            self.explicit = self.explicit.min(r as usize);
        }
        if let Some(q) = cert.inhibit_mapping {
            self.mapping = self.mapping.min(q as usize);
        }
        if let Some(a) = cert.inhibit_any {
            self.any = self.any.min(a as usize);
        }
        Ok(())
    }

    /// §6.1.5 (a), (b), (g).
    fn finish(&mut self, leaf: &Cert, opts: &Options) -> Result<(), String> {
        self.explicit = self.explicit.saturating_sub(1);
        if leaf.require_explicit == Some(0) {
            self.explicit = 0;
        }
        let user: Vec<&String> = opts
            .initial_policies
            .iter()
            .filter(|p| *p != ANY_POLICY)
            .collect();
        if let (Some(tree), false) = (self.tree.as_ref(), user.is_empty()) {
            // The intersection with the user-initial-policy-set: keep leaf-level policies the
            // user accepts (anyPolicy at the leaf level accepts them all).
            let last = tree.last().map(Vec::as_slice).unwrap_or_default();
            let ok = last
                .iter()
                .any(|n| n.policy == ANY_POLICY || user.contains(&&n.policy));
            if !ok {
                self.tree = None;
            }
        }
        if self.explicit == 0 && self.tree.is_none() {
            return Err(
                "no acceptable certificate policy on the path (an explicit policy is required)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Removes nodes without children, from the second-deepest level up.
fn prune(tree: &mut [Vec<Node>]) {
    for depth in (0..tree.len().saturating_sub(1)).rev() {
        let (upper, lower) = tree.split_at_mut(depth + 1);
        let children = &lower[0];
        let level = &mut upper[depth];
        let keep: Vec<bool> = (0..level.len())
            .map(|k| children.iter().any(|c| c.parent == k))
            .collect();
        // Re-index the children's parents after removal.
        let mut new_index = vec![usize::MAX; level.len()];
        let mut next = 0;
        for (k, kept) in keep.iter().enumerate() {
            if *kept {
                new_index[k] = next;
                next += 1;
            }
        }
        let mut k = 0;
        level.retain(|_| {
            let r = keep[k];
            k += 1;
            r
        });
        for c in lower[0].iter_mut() {
            c.parent = new_index[c.parent];
        }
    }
}
