//! CSR intake: raw bytes become a [`VerifiedCsr`] once, or a precise refusal.
//!
//! Only the public key and the requested names are taken from a CSR. Requested CA flags, key
//! usages and EKUs are never copied; a CSR asking to be a CA is refused outright so the
//! requester learns it, rather than silently getting something else.
use std::net::IpAddr;

use der::{Decode, Encode};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_PKCS1_SHA1WITHRSA, OID_PKCS9_EMAIL_ADDRESS, OID_SHA1_WITH_RSA, OID_X509_COMMON_NAME,
    OID_X509_COUNTRY_NAME, OID_X509_LOCALITY_NAME, OID_X509_ORGANIZATION_NAME,
    OID_X509_ORGANIZATIONAL_UNIT, OID_X509_SERIALNUMBER, OID_X509_STATE_OR_PROVINCE_NAME,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use crate::core::error::{Error, Result};
use crate::core::keys::KeyAlg;

/// Largest CSR accepted, in bytes (an RSA-4096 CSR with 100 SANs fits well inside).
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// Subject attributes ecca understands, in the order they are written into certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Attr {
    Country,
    State,
    Locality,
    Organization,
    OrganizationalUnit,
    SerialNumber,
    CommonName,
}

impl Attr {
    /// Short name as in RFC 4514 (serialNumber spelled out).
    pub fn short(self) -> &'static str {
        match self {
            Attr::Country => "C",
            Attr::State => "ST",
            Attr::Locality => "L",
            Attr::Organization => "O",
            Attr::OrganizationalUnit => "OU",
            Attr::SerialNumber => "serialNumber",
            Attr::CommonName => "CN",
        }
    }

    /// Upper bound on the value length (RFC 5280 Appendix A, ub-*).
    pub fn max_len(self) -> usize {
        match self {
            Attr::Country => 2,
            Attr::State | Attr::Locality => 128,
            Attr::Organization
            | Attr::OrganizationalUnit
            | Attr::SerialNumber
            | Attr::CommonName => 64,
        }
    }
}

/// A CSR whose signature verified, reduced to what issuance may use.
#[derive(Clone, Debug)]
pub struct VerifiedCsr {
    /// The SubjectPublicKeyInfo exactly as in the CSR.
    pub spki_der: Vec<u8>,
    /// The key's algorithm and size.
    pub key_alg: KeyAlg,
    /// Requested subject attributes, each at most once.
    pub subject: Vec<(Attr, String)>,
    /// Requested DNS names, as written.
    pub dns: Vec<String>,
    /// Requested IP addresses.
    pub ips: Vec<IpAddr>,
    /// Requested email addresses (SAN rfc822Name or the legacy subject emailAddress).
    pub emails: Vec<String>,
}

/// Accepts DER or PEM ("CERTIFICATE REQUEST" / "NEW CERTIFICATE REQUEST").
pub fn decode(input: &[u8]) -> Result<Vec<u8>> {
    if input.len() > MAX_CSR_BYTES {
        return Err(Error::BadCsr(format!(
            "{} bytes is larger than the {MAX_CSR_BYTES}-byte limit",
            input.len()
        )));
    }
    let trimmed = input.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let pem = pem::parse(trimmed).map_err(|e| Error::BadCsr(format!("PEM: {e}")))?;
        if !matches!(pem.tag(), "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST") {
            return Err(Error::BadCsr(format!(
                "PEM block is {:?}, expected \"CERTIFICATE REQUEST\"",
                pem.tag()
            )));
        }
        return Ok(pem.into_contents());
    }
    Ok(input.to_vec())
}

/// Proof of possession: the request's signature verifies with its own key. An SM2 signature
/// made with another distinguishing ID than `sm2_id` (OpenSSL's default is empty) fails, and
/// the refusal says which ID to use.
pub(crate) fn check_possession(csr: &X509CertificationRequest<'_>, sm2_id: &str) -> Result<()> {
    let info = &csr.certification_request_info;
    let verify = |id: &str| {
        crate::core::keys::verify_signature(
            &info.subject_pki,
            &csr.signature_algorithm,
            &csr.signature_value.data,
            info.raw,
            id,
        )
    };
    let Err(e) = verify(sm2_id) else {
        return Ok(());
    };
    if crate::core::sm2::is_signature_oid(csr.signature_algorithm.algorithm.as_bytes()) {
        for other in ["", crate::core::sm2::DEFAULT_ID] {
            if other != sm2_id && verify(other).is_ok() {
                return Err(Error::BadCsr(format!(
                    "the SM2 signature was made with the distinguishing ID {other:?}, not {sm2_id:?}: sign the request with the ID {sm2_id} (OpenSSL: -sigopt distid:{sm2_id})"
                )));
            }
        }
        return Err(Error::BadCsr(format!(
            "the SM2 signature does not verify with the CSR's own key and the distinguishing ID {sm2_id:?} (proof of possession failed)"
        )));
    }
    Err(Error::BadCsr(format!(
        "signature does not verify with the CSR's own key (proof of possession failed): {e}"
    )))
}

/// Parses a CSR, verifies its signature and extracts the requested names (SM2 signatures
/// with the GM/T 0009 default distinguishing ID).
pub fn verify(input: &[u8]) -> Result<VerifiedCsr> {
    verify_for(input, crate::core::sm2::DEFAULT_ID)
}

/// [`verify`], with the distinguishing ID an SM2 signature must have been made with (a
/// profile may name another for peers that use one).
pub fn verify_for(input: &[u8], sm2_id: &str) -> Result<VerifiedCsr> {
    let der = decode(input)?;
    if der.is_empty() {
        return Err(Error::BadCsr("empty".into()));
    }
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| Error::BadCsr(format!("not a PKCS#10 request: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::BadCsr(format!(
            "{} trailing bytes after the request",
            rest.len()
        )));
    }
    // DER and nothing else (a strict decoder refuses non-minimal lengths, version 2 and the
    // like), and the request re-encodes to exactly its bytes: what is signed has one reading.
    let strict = x509_cert::request::CertReq::from_der(&der)
        .map_err(|e| Error::BadCsr(format!("not a DER-encoded version 1 PKCS#10 request: {e}")))?;
    if strict.to_der().ok().as_deref() != Some(der.as_slice()) {
        return Err(Error::BadCsr("not in canonical DER".into()));
    }
    check_requested_extensions(&csr)?;
    let info = &csr.certification_request_info;
    let key_alg = KeyAlg::of_spki(&info.subject_pki)?;
    let sig_oid = &csr.signature_algorithm.algorithm;
    if *sig_oid == OID_PKCS1_SHA1WITHRSA || *sig_oid == OID_SHA1_WITH_RSA {
        return Err(Error::BadCsr(
            "signed with SHA-1; sign the CSR with SHA-256 or better".into(),
        ));
    }
    check_possession(&csr, sm2_id)?;

    let mut out = VerifiedCsr {
        spki_der: info.subject_pki.raw.to_vec(),
        key_alg,
        subject: Vec::new(),
        dns: Vec::new(),
        ips: Vec::new(),
        emails: Vec::new(),
    };
    let (subject, emails) = name_attrs(&info.subject)?;
    out.subject = subject;
    out.emails = emails;
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            match ext {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(d) => out.dns.push(d.to_string()),
                            GeneralName::RFC822Name(e) => out.emails.push(e.to_string()),
                            GeneralName::IPAddress(b) => out.ips.push(ip_from_bytes(b)?),
                            other => {
                                return Err(Error::field(
                                    "subjectAltName",
                                    format!("unsupported name type {other}"),
                                ));
                            }
                        }
                    }
                }
                ParsedExtension::BasicConstraints(bc) if bc.ca => {
                    return Err(Error::field(
                        "basicConstraints",
                        "the CSR asks for a CA certificate (cA=TRUE); this API issues end-entity certificates only",
                    ));
                }
                // Key usages, EKUs, SKI and anything else requested are ignored: the profile decides.
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Extensions a CSR may ask for (ecca decides them all from the profile, but understands them).
const KNOWN_REQUESTED: &[&str] = &[
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.15", // keyUsage
    "2.5.29.17", // subjectAltName
    "2.5.29.19", // basicConstraints
    "2.5.29.37", // extKeyUsage
];

/// One extensionRequest, each extension once, and no critical extension ecca does not know.
fn check_requested_extensions(csr: &X509CertificationRequest<'_>) -> Result<()> {
    let requests: Vec<_> = csr
        .certification_request_info
        .iter_attributes()
        .filter_map(|a| match a.parsed_attribute() {
            x509_parser::cri_attributes::ParsedCriAttribute::ExtensionRequest(r) => Some(r),
            _ => None,
        })
        .collect();
    if requests.len() > 1 {
        return Err(Error::BadCsr(
            "more than one extensionRequest attribute".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for ext in requests.iter().flat_map(|r| r.extensions.iter()) {
        let id = ext.oid.to_id_string();
        if !seen.insert(id.clone()) {
            return Err(Error::BadCsr(format!("extension {id} is requested twice")));
        }
        if ext.critical && !KNOWN_REQUESTED.contains(&id.as_str()) {
            return Err(Error::BadCsr(format!(
                "requests critical extension {id}, which ecca does not understand"
            )));
        }
        if let ParsedExtension::ParseError { error } = ext.parsed_extension() {
            return Err(Error::BadCsr(format!(
                "extension {id} does not parse: {error}"
            )));
        }
    }
    Ok(())
}

/// Subject attributes in order.
pub type SubjectAttrs = Vec<(Attr, String)>;

/// Reads a Name into ecca's attributes (each at most once, single-valued RDNs only); legacy
/// emailAddress attributes are returned apart.
pub fn name_attrs(name: &X509Name<'_>) -> Result<(SubjectAttrs, Vec<String>)> {
    let mut attrs: Vec<(Attr, String)> = Vec::new();
    let mut emails = Vec::new();
    for rdn in name.iter_rdn() {
        if rdn.iter().count() != 1 {
            return Err(Error::field(
                "subject",
                "multi-valued RDNs are not accepted",
            ));
        }
        for atv in rdn.iter() {
            let oid = atv.attr_type();
            let value = atv
                .as_str()
                .map_err(|_| Error::field("subject", format!("attribute {oid} is not a string")))?
                .to_string();
            if *oid == OID_PKCS9_EMAIL_ADDRESS {
                emails.push(value);
                continue;
            }
            let attr = if *oid == OID_X509_COMMON_NAME {
                Attr::CommonName
            } else if *oid == OID_X509_ORGANIZATION_NAME {
                Attr::Organization
            } else if *oid == OID_X509_ORGANIZATIONAL_UNIT {
                Attr::OrganizationalUnit
            } else if *oid == OID_X509_COUNTRY_NAME {
                Attr::Country
            } else if *oid == OID_X509_STATE_OR_PROVINCE_NAME {
                Attr::State
            } else if *oid == OID_X509_LOCALITY_NAME {
                Attr::Locality
            } else if *oid == OID_X509_SERIALNUMBER {
                Attr::SerialNumber
            } else {
                return Err(Error::field(
                    "subject",
                    format!("attribute {oid} is not supported (C, ST, L, O, OU, serialNumber, CN)"),
                ));
            };
            if attrs.iter().any(|(a, _)| *a == attr) {
                return Err(Error::field(
                    format!("subject {}", attr.short()),
                    "appears more than once",
                ));
            }
            attrs.push((attr, value));
        }
    }
    Ok((attrs, emails))
}

fn ip_from_bytes(b: &[u8]) -> Result<IpAddr> {
    match b.len() {
        4 => Ok(IpAddr::from(<[u8; 4]>::try_from(b).unwrap_or_default())),
        16 => Ok(IpAddr::from(<[u8; 16]>::try_from(b).unwrap_or_default())),
        n => Err(Error::field(
            "subjectAltName",
            format!("IP address of {n} bytes"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, CustomExtension, DnType, KeyPair, SanType};

    fn params(dns: &[&str]) -> CertificateParams {
        let mut p =
            CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "shop.example.cn");
        p.distinguished_name
            .push(DnType::OrganizationName, "Shop Ltd");
        p
    }

    fn der(p: &CertificateParams) -> Vec<u8> {
        p.serialize_request(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec()
    }

    fn bad_csr(input: &[u8], needle: &str) {
        match verify(input) {
            Err(Error::BadCsr(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
            other => panic!("expected BadCsr({needle}), got {other:?}"),
        }
    }

    #[test]
    fn names_and_key_come_out_of_der_and_pem_alike() {
        let mut p = params(&["shop.example.cn"]);
        p.subject_alt_names
            .push(SanType::IpAddress("192.0.2.7".parse().unwrap()));
        p.subject_alt_names
            .push(SanType::Rfc822Name("ops@example.cn".try_into().unwrap()));
        let key = KeyPair::generate().unwrap();
        let csr = p.serialize_request(&key).unwrap();
        let from_der = verify(csr.der()).unwrap();
        let from_pem = verify(csr.pem().unwrap().as_bytes()).unwrap();
        for v in [&from_der, &from_pem] {
            assert_eq!(v.dns, ["shop.example.cn"]);
            assert_eq!(v.ips, ["192.0.2.7".parse::<IpAddr>().unwrap()]);
            assert_eq!(v.emails, ["ops@example.cn"]);
            assert_eq!(
                v.subject,
                [
                    (Attr::CommonName, "shop.example.cn".to_string()),
                    (Attr::Organization, "Shop Ltd".to_string())
                ]
            );
            assert_eq!(
                v.spki_der,
                rcgen::PublicKeyData::subject_public_key_info(&key)
            );
        }
    }

    #[test]
    fn framing_is_strict() {
        let good = der(&params(&["a.example.cn"]));
        bad_csr(&[], "empty");
        bad_csr(&vec![0x30; MAX_CSR_BYTES + 1], "limit");
        let mut trailing = good.clone();
        trailing.push(0);
        bad_csr(&trailing, "trailing");
        let cert_pem = pem::encode(&pem::Pem::new("CERTIFICATE", good.clone()));
        bad_csr(cert_pem.as_bytes(), "expected \"CERTIFICATE REQUEST\"");
        bad_csr(b"\x04\x03abc", "not a PKCS#10 request");
        // Every byte of the request is covered: a changed signature fails proof of possession.
        let mut tampered = good;
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        bad_csr(&tampered, "proof of possession");
    }

    #[test]
    fn requests_ecca_does_not_honour_are_refused_not_dropped() {
        let mut ca = params(&["a.example.cn"]);
        let mut bc =
            CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x03, 0x01, 0x01, 0xff]);
        bc.set_criticality(true);
        ca.custom_extensions.push(bc);
        match verify(&der(&ca)) {
            Err(Error::InvalidField { field, .. }) => assert_eq!(field, "basicConstraints"),
            other => panic!("a CA request got {other:?}"),
        }

        let mut critical = params(&["a.example.cn"]);
        let mut e =
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 9], vec![0x05, 0x00]);
        e.set_criticality(true);
        critical.custom_extensions.push(e);
        bad_csr(&der(&critical), "1.3.6.1.4.1.55555.9");

        // A known extension that is critical is fine: the profile decides what is issued anyway.
        let mut ku = params(&["a.example.cn"]);
        let mut e =
            CustomExtension::from_oid_content(&[2, 5, 29, 15], vec![0x03, 0x02, 0x05, 0xa0]);
        e.set_criticality(true);
        ku.custom_extensions.push(e);
        verify(&der(&ku)).unwrap();

        let mut title = params(&["a.example.cn"]);
        title
            .distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 12]), "Director");
        match verify(&der(&title)) {
            Err(Error::InvalidField { field, reason }) => {
                assert_eq!(field, "subject");
                assert!(reason.contains("2.5.4.12"), "{reason}");
            }
            other => panic!("an unsupported attribute got {other:?}"),
        }
    }

    #[test]
    fn legacy_email_attribute_is_a_requested_email() {
        let mut p = params(&["a.example.cn"]);
        p.distinguished_name.push(
            DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
            rcgen::DnValue::Ia5String("ops@example.cn".try_into().unwrap()),
        );
        let v = verify(&der(&p)).unwrap();
        assert_eq!(v.emails, ["ops@example.cn"]);
        assert!(v.subject.iter().all(|(a, _)| *a != Attr::SerialNumber));
    }

    #[test]
    fn ip_addresses_are_four_or_sixteen_bytes() {
        assert_eq!(
            ip_from_bytes(&[10, 0, 0, 1]).unwrap(),
            IpAddr::from([10, 0, 0, 1])
        );
        assert!(ip_from_bytes(&[0; 16]).unwrap().is_ipv6());
        assert!(matches!(
            ip_from_bytes(&[1, 2, 3]),
            Err(Error::InvalidField { .. })
        ));
    }
}
