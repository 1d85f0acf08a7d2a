//! Lints run on every to-be-signed certificate before the CA key touches it.
//!
//! The checks follow RFC 5280 (and what pkilint's PKIX linter enforces on ecca's profiles).
//! A refusal names the lint, so an operator can find the rule. `core::issue` runs these inside
//! the signing path: there is no way to sign a certificate that did not pass.
use std::collections::HashSet;

mod crl;
mod ocsp;
#[cfg(test)]
mod vectors;

pub use crl::{CrlPolicy, lint_crl};
pub use ocsp::{OcspPolicy, lint_ocsp};

use x509_parser::asn1_rs::Tag;
use x509_parser::certificate::TbsCertificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_LOCALITY_NAME,
    OID_X509_ORGANIZATION_NAME, OID_X509_ORGANIZATIONAL_UNIT, OID_X509_SERIALNUMBER,
    OID_X509_STATE_OR_PROVINCE_NAME,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Version;

use crate::core::error::{Error, Result};
use crate::core::keys::KeyAlg;
use crate::core::names;

/// What kind of certificate is being linted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertKind {
    /// A self-signed trust anchor.
    Root,
    /// A CA certificate signed by another CA.
    SubCa,
    /// A cross-certificate for another organisation's CA: its subject is kept byte-exact as
    /// the peer wrote it, so subject attribute rules are not ecca's to enforce.
    CrossCa,
    /// An end-entity certificate.
    EndEntity,
}

/// What the linter compares the certificate against: its issuer.
#[derive(Clone, Copy, Debug)]
pub struct LintPolicy<'a> {
    pub kind: CertKind,
    /// The issuer's subject Name, DER (ignored for roots: the certificate's own subject).
    pub issuer_name: &'a [u8],
    /// The issuer's subject key identifier (ignored for roots: the certificate's own SKI).
    pub issuer_key_id: &'a [u8],
    /// The issuer's notAfter, Unix seconds (ignored for roots).
    pub issuer_not_after: i64,
    /// The issuer's key algorithm (for a root: its own): the TBS must name its signature
    /// algorithm, and the subject key must be of its family.
    pub issuer_alg: crate::core::keys::CaKeyAlg,
}

fn fail(lint: &'static str, detail: impl Into<String>) -> Error {
    Error::lint(lint, detail)
}

/// Lints a DER TBSCertificate.
pub fn lint_tbs(tbs_der: &[u8], policy: &LintPolicy<'_>) -> Result<()> {
    let (rest, tbs) = TbsCertificate::from_der(tbs_der)
        .map_err(|e| fail("e_tbs_der", format!("does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(fail("e_tbs_der", "trailing bytes"));
    }
    if tbs.version != X509Version::V3 {
        return Err(fail("e_version_v3", "version must be v3"));
    }
    lint_serial(tbs.raw_serial())?;
    lint_validity(&tbs, policy)?;
    lint_names(&tbs, policy)?;
    let key_alg =
        KeyAlg::of_spki(&tbs.subject_pki).map_err(|e| fail("e_spki_algorithm", e.to_string()))?;
    lint_algorithms(&tbs, policy, key_alg)?;
    if tbs.issuer_uid.is_some() || tbs.subject_uid.is_some() {
        return Err(fail(
            "e_unique_identifiers",
            "issuer/subject unique identifiers must not be used",
        ));
    }
    lint_extensions(&tbs, policy, key_alg)
}

/// The TBS names the issuer key's signature algorithm exactly (for SM3withSM2, GM/T 0015:
/// parameters absent), and a hierarchy certifies keys of its own family only (an SM2 CA
/// never vouches for a foreign key, nor an international CA for an SM2 key).
fn lint_algorithms(tbs: &TbsCertificate<'_>, policy: &LintPolicy<'_>, key: KeyAlg) -> Result<()> {
    let expected = crate::core::revocation::signature_algorithm(policy.issuer_alg).oid;
    if tbs.signature.algorithm.as_bytes() != expected.as_bytes() {
        return Err(fail(
            "e_signature_algorithm",
            format!(
                "signature algorithm {} is not the issuer's ({} key)",
                tbs.signature.algorithm,
                policy.issuer_alg.as_str()
            ),
        ));
    }
    if tbs.signature.parameters.is_some() {
        return Err(fail(
            "e_signature_algorithm_parameters",
            "signature algorithm parameters must be absent (ECDSA, Ed25519, SM3withSM2)",
        ));
    }
    if key.family() != policy.issuer_alg.family() {
        return Err(fail(
            "e_key_family",
            format!(
                "a {} CA cannot certify a {} key",
                policy.issuer_alg.family().as_str(),
                key.family().as_str()
            ),
        ));
    }
    Ok(())
}

fn lint_serial(raw: &[u8]) -> Result<()> {
    if raw.is_empty() || raw[0] & 0x80 != 0 {
        return Err(fail("e_serial_positive", "serial number must be positive"));
    }
    if raw.len() > 1 && raw[0] == 0 && raw[1] & 0x80 == 0 {
        return Err(fail(
            "e_serial_der",
            "serial number is not minimally encoded",
        ));
    }
    if raw.len() > 20 {
        return Err(fail(
            "e_serial_length",
            "serial number longer than 20 octets",
        ));
    }
    let magnitude = raw.iter().skip_while(|b| **b == 0).count();
    if magnitude < 8 {
        return Err(fail(
            "e_serial_entropy",
            "serial number has fewer than 64 bits",
        ));
    }
    Ok(())
}

fn lint_validity(tbs: &TbsCertificate<'_>, policy: &LintPolicy<'_>) -> Result<()> {
    let nb = tbs.validity.not_before.timestamp();
    let na = tbs.validity.not_after.timestamp();
    if na <= nb {
        return Err(fail("e_validity_order", "notAfter must be after notBefore"));
    }
    if policy.kind != CertKind::Root && na > policy.issuer_not_after {
        return Err(fail(
            "e_validity_within_issuer",
            "notAfter is later than the issuer's notAfter",
        ));
    }
    Ok(())
}

fn lint_names(tbs: &TbsCertificate<'_>, policy: &LintPolicy<'_>) -> Result<()> {
    if policy.kind == CertKind::Root {
        if tbs.issuer.as_raw() != tbs.subject.as_raw() {
            return Err(fail(
                "e_root_self_issued",
                "a root's issuer must equal its subject",
            ));
        }
    } else if tbs.issuer.as_raw() != policy.issuer_name {
        return Err(fail(
            "e_issuer_name_match",
            "issuer name differs from the issuing CA's subject",
        ));
    }
    if tbs.issuer.iter_attributes().next().is_none() {
        return Err(fail("e_issuer_empty", "issuer name is empty"));
    }
    if policy.kind == CertKind::CrossCa {
        if tbs.subject.iter_attributes().next().is_none() {
            return Err(fail("e_subject_empty", "a CA's subject must not be empty"));
        }
        return Ok(());
    }
    for rdn in tbs.subject.iter_rdn() {
        for atv in rdn.iter() {
            let oid = atv.attr_type();
            let value = atv.attr_value();
            let text = atv.as_str().map_err(|_| {
                fail(
                    "e_subject_attribute_string",
                    format!("attribute {oid} is not a string"),
                )
            })?;
            let (name, max, printable) = if *oid == OID_X509_COUNTRY_NAME {
                ("countryName", 2, true)
            } else if *oid == OID_X509_SERIALNUMBER {
                ("serialNumber", 64, true)
            } else if *oid == OID_X509_COMMON_NAME {
                ("commonName", 64, false)
            } else if *oid == OID_X509_ORGANIZATION_NAME {
                ("organizationName", 64, false)
            } else if *oid == OID_X509_ORGANIZATIONAL_UNIT {
                ("organizationalUnitName", 64, false)
            } else if *oid == OID_X509_STATE_OR_PROVINCE_NAME {
                ("stateOrProvinceName", 128, false)
            } else if *oid == OID_X509_LOCALITY_NAME {
                ("localityName", 128, false)
            } else {
                return Err(fail(
                    "e_subject_attribute_known",
                    format!("unexpected attribute {oid}"),
                ));
            };
            if text.is_empty() || text.chars().count() > max {
                return Err(fail(
                    "e_subject_attribute_length",
                    format!("{name} must have 1 to {max} characters"),
                ));
            }
            if printable && value.tag() != Tag::PrintableString {
                return Err(fail(
                    "e_subject_attribute_printable",
                    format!("{name} must be a PrintableString"),
                ));
            }
            if !printable && !matches!(value.tag(), Tag::Utf8String | Tag::PrintableString) {
                return Err(fail(
                    "e_subject_attribute_encoding",
                    format!("{name} must be UTF8String or PrintableString"),
                ));
            }
            if *oid == OID_X509_COUNTRY_NAME && !text.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(fail(
                    "e_country_code",
                    "countryName must be two capital letters (ISO 3166)",
                ));
            }
        }
    }
    Ok(())
}

fn lint_extensions(
    tbs: &TbsCertificate<'_>,
    policy: &LintPolicy<'_>,
    key_alg: KeyAlg,
) -> Result<()> {
    let is_ca = policy.kind != CertKind::EndEntity;
    let mut seen = HashSet::new();
    let (mut ski, mut aki, mut ku, mut bc, mut eku, mut san) =
        (None, None, None, None, false, None);
    for ext in tbs.extensions() {
        if !seen.insert(ext.oid.to_id_string()) {
            return Err(fail(
                "e_extension_duplicate",
                format!("extension {} appears twice", ext.oid),
            ));
        }
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => {
                if ext.critical {
                    return Err(fail(
                        "e_ski_critical",
                        "subjectKeyIdentifier must not be critical",
                    ));
                }
                ski = Some(id.0);
            }
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                if ext.critical {
                    return Err(fail(
                        "e_aki_critical",
                        "authorityKeyIdentifier must not be critical",
                    ));
                }
                aki = Some(a.key_identifier.as_ref().map(|k| k.0).ok_or_else(|| {
                    fail(
                        "e_aki_key_identifier",
                        "authorityKeyIdentifier must carry keyIdentifier",
                    )
                })?);
            }
            ParsedExtension::KeyUsage(k) => {
                if !ext.critical {
                    return Err(fail("e_key_usage_critical", "keyUsage must be critical"));
                }
                ku = Some(*k);
            }
            ParsedExtension::BasicConstraints(b) => {
                if is_ca && !ext.critical {
                    return Err(fail(
                        "e_basic_constraints_critical",
                        "CA basicConstraints must be critical",
                    ));
                }
                bc = Some(b.clone());
            }
            ParsedExtension::ExtendedKeyUsage(e) => {
                if e.any {
                    return Err(fail("e_eku_any", "anyExtendedKeyUsage is not issued"));
                }
                eku = true;
            }
            ParsedExtension::SubjectAlternativeName(s) => {
                san = Some((ext.critical, s.general_names.clone()))
            }
            ParsedExtension::CRLDistributionPoints(_) | ParsedExtension::AuthorityInfoAccess(_) => {
            }
            ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::Unparsed
                if ext.critical =>
            {
                return Err(fail(
                    "e_critical_unknown",
                    format!("unknown critical extension {}", ext.oid),
                ));
            }
            ParsedExtension::ParseError { error } => {
                return Err(fail(
                    "e_extension_der",
                    format!("extension {}: {error}", ext.oid),
                ));
            }
            _ => {}
        }
    }
    let ski = ski.ok_or_else(|| fail("e_ski_missing", "subjectKeyIdentifier is required"))?;
    let aki = aki.ok_or_else(|| fail("e_aki_missing", "authorityKeyIdentifier is required"))?;
    let expected_aki = if policy.kind == CertKind::Root {
        ski
    } else {
        policy.issuer_key_id
    };
    if aki != expected_aki {
        return Err(fail(
            "e_aki_matches_issuer",
            "authorityKeyIdentifier differs from the issuer's key identifier",
        ));
    }
    let ku = ku.ok_or_else(|| fail("e_key_usage_missing", "keyUsage is required"))?;
    if ku.flags == 0 {
        return Err(fail(
            "e_key_usage_empty",
            "keyUsage must assert at least one bit",
        ));
    }
    if is_ca {
        let bc =
            bc.ok_or_else(|| fail("e_basic_constraints_missing", "a CA needs basicConstraints"))?;
        if !bc.ca {
            return Err(fail(
                "e_basic_constraints_ca",
                "a CA certificate must assert cA",
            ));
        }
        if !ku.key_cert_sign() {
            return Err(fail(
                "e_ca_key_cert_sign",
                "a CA certificate must assert keyCertSign",
            ));
        }
        if eku && policy.kind == CertKind::Root {
            return Err(fail("e_root_eku", "a root must not carry extendedKeyUsage"));
        }
    } else {
        if bc.is_some_and(|b| b.ca || b.path_len_constraint.is_some()) {
            return Err(fail(
                "e_ee_not_ca",
                "an end-entity certificate must not be a CA",
            ));
        }
        if ku.key_cert_sign() || ku.crl_sign() {
            return Err(fail(
                "e_ee_key_usage",
                "keyCertSign/cRLSign are for CA certificates",
            ));
        }
        if !eku {
            return Err(fail(
                "e_ee_eku_missing",
                "end-entity certificates carry extendedKeyUsage",
            ));
        }
    }
    if !key_alg.enciphers() && (ku.key_encipherment() || ku.data_encipherment()) {
        return Err(fail(
            "e_key_usage_for_key_type",
            "EC and EdDSA keys cannot encipher: no keyEncipherment/dataEncipherment",
        ));
    }
    if key_alg == KeyAlg::Ed25519 && ku.key_agreement() {
        return Err(fail(
            "e_key_usage_for_key_type",
            "Ed25519 keys cannot agree keys",
        ));
    }
    let subject_empty = tbs.subject.iter_attributes().next().is_none();
    match san {
        None if subject_empty => {
            return Err(fail(
                "e_subject_or_san",
                "an empty subject needs subjectAltName",
            ));
        }
        None => {}
        Some((critical, names)) => {
            if names.is_empty() {
                return Err(fail("e_san_empty", "subjectAltName must not be empty"));
            }
            if subject_empty != critical {
                return Err(fail(
                    "e_san_critical",
                    "subjectAltName is critical exactly when the subject is empty",
                ));
            }
            for name in &names {
                match name {
                    GeneralName::DNSName(d) => {
                        let bare = d.strip_prefix("*.").unwrap_or(d);
                        names::dns_syntax(bare).map_err(|e| fail("e_san_dns_syntax", e))?;
                    }
                    GeneralName::RFC822Name(e) => {
                        names::email(e).map_err(|e| fail("e_san_email_syntax", e))?;
                    }
                    GeneralName::IPAddress(b) if b.len() == 4 || b.len() == 16 => {}
                    other => return Err(fail("e_san_type", format!("unexpected name {other}"))),
                }
            }
        }
    }
    Ok(())
}
