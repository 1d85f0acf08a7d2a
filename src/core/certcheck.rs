//! What a relying party refuses in a certificate itself, whatever path it is on: the RFC 5280
//! certificate profile for every purpose, and for TLS (server, and client where it applies)
//! the CA/Browser Forum Baseline Requirements as pyca/cryptography and rustls-webpki enforce
//! them. ARCHITECTURE.md ("Verifier policy") lists the rules and why each exists.
use crate::core::names;
use crate::core::path::{ALLOWED_SIG_ALGS, Cert, KU_KEY_CERT_SIGN, KeyKind, Purpose};

/// Where a certificate sits on the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Intermediate,
    Leaf,
}

const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const ANY_EKU: &str = "2.5.29.37.0";
/// EKUs a TLS server certificate must not carry besides serverAuth/clientAuth (BR 7.1.2.7.10):
/// codeSigning, emailProtection, timeStamping, OCSPSigning, the CT precertificate signer.
const NOT_WITH_SERVER_AUTH: &[&str] = &[
    "1.3.6.1.5.5.7.3.3",
    "1.3.6.1.5.5.7.3.4",
    "1.3.6.1.5.5.7.3.8",
    "1.3.6.1.5.5.7.3.9",
    "1.3.6.1.4.1.11129.2.4.4",
];

fn tls(purpose: Purpose) -> bool {
    matches!(purpose, Purpose::ServerAuth | Purpose::ClientAuth)
}

/// Keys ecca accepts anywhere on a path: RSA of at least 2048 bits in whole bytes, the NIST
/// curves P-256/P-384/P-521, Ed25519, SM2. DSA, small curves and unknown algorithms are refused.
fn key_problem(key: &KeyKind) -> Option<String> {
    match key {
        KeyKind::Rsa { bits } if *bits < 2048 => Some(format!(
            "RSA key of {bits} bits (at least 2048 are required)"
        )),
        KeyKind::Rsa { bits } if bits % 8 != 0 => Some(format!(
            "RSA modulus of {bits} bits is not a whole number of bytes"
        )),
        KeyKind::Rsa { .. } | KeyKind::RsaPss | KeyKind::Ed25519 => None,
        KeyKind::Ec { curve } => match curve.as_str() {
            "1.2.840.10045.3.1.7" | "1.3.132.0.34" | "1.3.132.0.35" | "1.2.156.10197.1.301" => None,
            other => Some(format!(
                "elliptic curve {other:?} is not allowed (P-256, P-384, P-521, SM2)"
            )),
        },
        KeyKind::Dsa => Some("DSA keys are not allowed".into()),
        KeyKind::Unknown => Some("the public key does not parse".into()),
        KeyKind::Other(oid) => Some(format!("public key algorithm {oid} is not allowed")),
    }
}

/// Checks common to every certificate, anchor included.
fn common(c: &Cert, out: &mut Vec<String>) {
    let f = &c.facts;
    if let Some(p) = key_problem(&f.key) {
        out.push(p);
    }
    if !ALLOWED_SIG_ALGS.contains(&c.sig_alg.as_str()) {
        out.push(format!("signature algorithm {} is not allowed", c.sig_alg));
    }
    if f.sig_mismatch {
        out.push("signatureAlgorithm differs from the TBSCertificate's signature field".into());
    }
    if f.ski == Some(true) {
        out.push("subjectKeyIdentifier is critical (RFC 5280 §4.2.1.2)".into());
    }
    if f.aki == Some(true) {
        out.push("authorityKeyIdentifier is critical (RFC 5280 §4.2.1.1)".into());
    }
    if f.aia == Some(true) {
        out.push("authorityInfoAccess is critical (RFC 5280 §4.2.2.1)".into());
    }
    if c.key_usage == Some(0) {
        out.push("keyUsage asserts no bit".into());
    }
    if c.eku.as_ref().is_some_and(Vec::is_empty) {
        out.push("extendedKeyUsage is empty".into());
    }
    if f.subject_empty && f.san != Some(true) {
        out.push("the subject is empty but subjectAltName is absent or not critical".into());
    }
    if f.issuer_empty {
        out.push("the issuer name is empty".into());
    }
    out.extend(f.malformed.iter().cloned());
}

/// Checks of a CA certificate (anchor or intermediate) as a CA.
fn as_ca(c: &Cert, out: &mut Vec<String>) {
    let f = &c.facts;
    match f.bc {
        None => out.push("a CA certificate without basicConstraints".into()),
        Some(false) => out.push("basicConstraints of a CA is not critical".into()),
        Some(true) => {}
    }
    if c.ski.is_none() {
        out.push("a CA certificate without subjectKeyIdentifier (RFC 5280 §4.2.1.2)".into());
    }
    if f.subject_empty {
        out.push("a CA certificate with an empty subject".into());
    }
    if f.nc_empty {
        out.push("nameConstraints with neither permitted nor excluded subtrees".into());
    }
}

/// The trust anchor, processed as RFC 5937 allows: its validity, its extensions as a CA.
pub fn anchor(c: &Cert, purpose: Purpose, time: i64) -> Vec<String> {
    let mut out = Vec::new();
    if !(c.not_before <= time && time <= c.not_after) {
        out.push("not valid at the validation time".into());
    }
    if let Some(u) = c.unknown_critical.first() {
        out.push(format!("unrecognised critical extension {u}"));
    }
    common(c, &mut out);
    // A v1 anchor has no extensions to judge; a v3 one must say it is a CA.
    if c.facts.version >= 2 || c.facts.has_extensions {
        as_ca(c, &mut out);
        if !c.is_ca {
            out.push("basicConstraints cA is not set".into());
        }
        if c.key_usage.is_some_and(|k| k & KU_KEY_CERT_SIGN == 0) {
            out.push("keyUsage lacks keyCertSign".into());
        }
    }
    if tls(purpose) {
        if c.eku.is_some() {
            out.push("a root carries extendedKeyUsage (BR 7.1.2.1.2)".into());
        }
        if c.facts.aki.is_some() && (c.aki.is_none() || c.aki != c.ski) {
            out.push("authorityKeyIdentifier of a root must equal its subjectKeyIdentifier".into());
        }
        if c.facts.aki_issuer_serial {
            out.push("authorityKeyIdentifier of a root names an issuer or serial".into());
        }
    }
    out.into_iter()
        .map(|r| format!("{} (trust anchor): {r}", c.subject_text))
        .collect()
}

/// A certificate below the anchor.
pub fn profile(c: &Cert, position: Position, purpose: Purpose) -> Vec<String> {
    let f = &c.facts;
    let mut out = Vec::new();
    common(c, &mut out);
    let serial = &f.serial;
    if serial.is_empty() || serial.iter().all(|b| *b == 0) {
        out.push("serial number is zero".into());
    } else if serial[0] & 0x80 != 0 {
        out.push("serial number is negative".into());
    } else if serial.len() > 20 {
        out.push(format!(
            "serial number of {} octets (at most 20)",
            serial.len()
        ));
    }
    if f.aki.is_none() || c.aki.is_none() {
        out.push("authorityKeyIdentifier keyIdentifier is missing (RFC 5280 §4.2.1.1)".into());
    }
    if !c.is_ca && c.path_len.is_some() {
        out.push("pathLenConstraint without cA".into());
    }
    if !c.is_ca && c.key_usage.is_some_and(|k| k & KU_KEY_CERT_SIGN != 0) {
        out.push("keyCertSign asserted without basicConstraints cA (RFC 5280 §4.2.1.9)".into());
    }
    match position {
        Position::Intermediate => {
            if f.version < 2 {
                out.push("a CA certificate that is not version 3".into());
            }
            as_ca(c, &mut out);
        }
        Position::Leaf => {
            if f.nc.is_some() {
                out.push("nameConstraints in an end-entity certificate".into());
            }
            if tls(purpose) {
                leaf_tls(c, purpose, &mut out);
            }
        }
    }
    out.into_iter()
        .map(|r| format!("{}: {r}", c.subject_text))
        .collect()
}

/// A TLS end-entity certificate (BR 7.1.2.7 and 7.1.4).
fn leaf_tls(c: &Cert, purpose: Purpose, out: &mut Vec<String>) {
    let f = &c.facts;
    if f.version < 2 {
        out.push("not an X.509 version 3 certificate (BR 7.1.1)".into());
    }
    if c.is_ca {
        out.push("a CA certificate used as a TLS end entity (BR 7.1.2.7.8)".into());
    }
    if f.eku == Some(true) {
        out.push("extendedKeyUsage is critical (BR 7.1.2.7.6)".into());
    }
    if c.eku
        .as_ref()
        .is_some_and(|e| e.iter().any(|x| x == ANY_EKU))
    {
        out.push("anyExtendedKeyUsage in an end-entity certificate (BR 7.1.2.7.10)".into());
    }
    if purpose != Purpose::ServerAuth {
        return;
    }
    match &c.eku {
        None => out.push("no extendedKeyUsage (BR 7.1.2.7.6)".into()),
        Some(eku) => {
            if let Some(x) = eku
                .iter()
                .find(|x| NOT_WITH_SERVER_AUTH.contains(&x.as_str()))
            {
                out.push(format!(
                    "extendedKeyUsage {x} is not allowed with serverAuth (BR 7.1.2.7.10)"
                ));
            }
            if !eku.iter().any(|x| x == SERVER_AUTH) {
                out.push("extendedKeyUsage lacks serverAuth".into());
            }
        }
    }
    match f.san {
        None => out.push("no subjectAltName (BR 7.1.2.7.12)".into()),
        Some(true) if !f.subject_empty => {
            out.push("subjectAltName is critical although the subject is not empty".into())
        }
        _ => {}
    }
    for d in &c.names.dns {
        if let Some(base) = d.strip_prefix("*.")
            && names::is_public_suffix(base, false)
        {
            out.push(format!("wildcard {d} spans the public suffix {base}"));
        }
    }
    for cn in &f.cn {
        let in_san = c.names.dns_raw.iter().any(|d| d == cn)
            || c.names
                .ips
                .iter()
                .any(|ip| ip_text(ip).is_some_and(|t| t == *cn));
        if !in_san {
            out.push(format!(
                "commonName {cn:?} is not a character-for-character copy of a subjectAltName (BR 7.1.4.3)"
            ));
        }
    }
    if f.cdp_non_uri {
        out.push("cRLDistributionPoints names something other than a URI (BR 7.1.2.11.2)".into());
    }
}

/// The canonical text of an address: dotted decimal (RFC 3986) or RFC 5952.
fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}
