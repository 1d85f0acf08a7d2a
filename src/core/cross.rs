//! Cross-certification: a CA certificate for another region's CA, for its existing subject
//! (kept byte-exact: repeated attributes, multi-valued RDNs and string types as the peer wrote
//! them) and public key, with name constraints, a path length, certificate policies and
//! policy mappings. Built with x509-cert (rcgen's DistinguishedName would collapse the name).
use std::fmt::Write as _;
use std::net::IpAddr;

use der::asn1::{Ia5String, OctetString};
use der::{Decode, Encode};
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::constraints::name::{GeneralSubtree, NameConstraints};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, KeyUsage, KeyUsages, PolicyMapping, PolicyMappings,
    SubjectKeyIdentifier,
};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::Validity;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::core::error::{Error, Result};
use crate::core::issue::{CaView, IssuerUrls};
use crate::core::keys::CaKeyAlg;
use crate::core::revocation::{distribution_point, signature_algorithm, x509_time};
use crate::core::serial::Serial;

/// The CA being cross-certified: its name and key, exactly as it presented them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Subject Name, DER, byte for byte.
    pub subject_der: Vec<u8>,
    /// SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// The peer's own subject key identifier (reused so its certificates' AKIs still match).
    pub ski: Vec<u8>,
    /// Subject for display.
    pub subject_text: String,
}

fn computed_ski(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, &spki.subject_public_key.data).as_ref()[..20]
        .to_vec()
}

impl Peer {
    /// From the peer's CA certificate (self-signed root or any CA certificate).
    pub fn from_cert(der: &[u8]) -> Result<Self> {
        let (_, c) = X509Certificate::from_der(der)
            .map_err(|e| Error::field("ca_cert", format!("does not parse: {e}")))?;
        let is_ca = c
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|b| b.value.ca);
        if !is_ca {
            return Err(Error::field(
                "ca_cert",
                "is not a CA certificate (basicConstraints cA is not set)",
            ));
        }
        let ski = c
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
            .unwrap_or_else(|| computed_ski(c.public_key()));
        Ok(Peer {
            subject_der: c.subject().as_raw().to_vec(),
            spki_der: c.public_key().raw.to_vec(),
            ski,
            subject_text: c.subject().to_string(),
        })
    }

    /// From the peer CA's PKCS#10 request (its signature is checked).
    pub fn from_csr(der: &[u8]) -> Result<Self> {
        let der = crate::core::csr::decode(der)?;
        let (_, csr) =
            X509CertificationRequest::from_der(&der).map_err(|e| Error::BadCsr(e.to_string()))?;
        crate::core::csr::check_possession(&csr, crate::core::sm2::DEFAULT_ID)?;
        let info = &csr.certification_request_info;
        let ski = csr
            .requested_extensions()
            .and_then(|mut exts| {
                exts.find_map(|e| match e {
                    ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                    _ => None,
                })
            })
            .unwrap_or_else(|| computed_ski(&info.subject_pki));
        Ok(Peer {
            subject_der: info.subject.as_raw().to_vec(),
            spki_der: info.subject_pki.raw.to_vec(),
            ski,
            subject_text: info.subject.to_string(),
        })
    }
}

/// What the cross-certificate says about the peer.
#[derive(Clone, Debug, Default)]
pub struct Terms {
    pub permitted_dns: Vec<String>,
    pub excluded_dns: Vec<String>,
    /// (network, prefix length).
    pub permitted_ip: Vec<(IpAddr, u8)>,
    pub path_len: Option<u8>,
    pub days: u32,
    /// Certificate policy OIDs.
    pub policies: Vec<String>,
    /// (issuerDomainPolicy, subjectDomainPolicy).
    pub policy_maps: Vec<(String, String)>,
}

impl Terms {
    /// Parses "a.b.c" OIDs, CIDRs and mappings from their text forms, naming the bad one.
    pub fn check(&self) -> Result<()> {
        for p in self
            .policies
            .iter()
            .chain(self.policy_maps.iter().flat_map(|(a, b)| [a, b]))
        {
            crate::core::cms::parse_oid(p)?;
        }
        if self
            .policy_maps
            .iter()
            .any(|(a, b)| a == "2.5.29.32.0" || b == "2.5.29.32.0")
        {
            return Err(Error::field("policy-map", "anyPolicy cannot be mapped"));
        }
        for d in self.permitted_dns.iter().chain(&self.excluded_dns) {
            crate::core::names::dns_syntax(d.trim_start_matches('.'))
                .map_err(|e| Error::field("dns constraint", e))?;
        }
        for (ip, len) in &self.permitted_ip {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if *len > max {
                return Err(Error::field(
                    "permitted-ip",
                    format!("{ip}/{len}: prefix longer than {max}"),
                ));
            }
        }
        if self.days == 0 {
            return Err(Error::field("days", "must be at least 1"));
        }
        Ok(())
    }

    /// A human description of what would be signed (for --dry-run).
    pub fn describe(&self, peer: &Peer, issuer_subject: &str, not_after: i64) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "cross-certificate");
        let _ = writeln!(
            s,
            "  subject:           {} (byte-exact from the peer)",
            peer.subject_text
        );
        let _ = writeln!(s, "  issuer:            {issuer_subject}");
        let _ = writeln!(s, "  subject key id:    {}", hex::encode(&peer.ski));
        let until = time::OffsetDateTime::from_unix_timestamp(not_after)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let _ = writeln!(s, "  valid until:       {until}");
        let _ = writeln!(
            s,
            "  basicConstraints:  CA, pathLen {}",
            self.path_len.map_or("unlimited".into(), |n| n.to_string())
        );
        let list = |v: &[String]| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        let _ = writeln!(s, "  permitted DNS:     {}", list(&self.permitted_dns));
        let _ = writeln!(s, "  excluded DNS:      {}", list(&self.excluded_dns));
        let ips: Vec<String> = self
            .permitted_ip
            .iter()
            .map(|(ip, l)| format!("{ip}/{l}"))
            .collect();
        let ips = if ips.is_empty() && !self.permitted_dns.is_empty() {
            vec!["none (every address excluded)".to_string()]
        } else {
            ips
        };
        let _ = writeln!(s, "  permitted IP:      {}", list(&ips));
        if !self.permitted_dns.is_empty() {
            let _ = writeln!(
                s,
                "  permitted email:   at {} and its subdomains",
                self.permitted_dns.join(", ")
            );
        }
        let _ = writeln!(s, "  policies:          {}", list(&self.policies));
        let maps: Vec<String> = self
            .policy_maps
            .iter()
            .map(|(a, b)| format!("{a}={b}"))
            .collect();
        let _ = writeln!(s, "  policy mappings:   {}", list(&maps));
        s
    }
}

fn der_err(e: der::Error) -> Error {
    Error::Internal(format!("DER: {e}"))
}

fn ext<T: AsExtension>(v: &T, critical: bool, subject: &Name) -> Result<Extension> {
    let mut e = v.to_extension(subject, &[]).map_err(der_err)?;
    e.critical = critical;
    Ok(e)
}

fn ip_subtree(ip: IpAddr, len: u8) -> Result<GeneralSubtree> {
    let (addr, bits): (Vec<u8>, usize) = match ip {
        IpAddr::V4(v) => (v.octets().to_vec(), 32),
        IpAddr::V6(v) => (v.octets().to_vec(), 128),
    };
    let mut mask = vec![0u8; bits / 8];
    for i in 0..usize::from(len).min(bits) {
        mask[i / 8] |= 0x80 >> (i % 8);
    }
    let masked: Vec<u8> = addr.iter().zip(&mask).map(|(a, m)| a & m).collect();
    let mut bytes = masked;
    bytes.extend_from_slice(&mask);
    Ok(GeneralSubtree {
        base: GeneralName::IpAddress(OctetString::new(bytes).map_err(der_err)?),
        minimum: 0,
        maximum: None,
    })
}

fn dns_subtree(d: &str) -> Result<GeneralSubtree> {
    Ok(GeneralSubtree {
        base: GeneralName::DnsName(Ia5String::new(&d.to_ascii_lowercase()).map_err(der_err)?),
        minimum: 0,
        maximum: None,
    })
}

fn email_subtree(d: &str) -> Result<GeneralSubtree> {
    Ok(GeneralSubtree {
        base: GeneralName::Rfc822Name(Ia5String::new(d).map_err(der_err)?),
        minimum: 0,
        maximum: None,
    })
}

/// The TBSCertificate of a cross-certificate to be signed by `issuer` (a key of `alg`).
pub fn tbs(
    peer: &Peer,
    terms: &Terms,
    (issuer, alg): (&CaView, CaKeyAlg),
    urls: &IssuerUrls,
    serial: &Serial,
    not_before: i64,
    not_after: i64,
) -> Result<Vec<u8>> {
    terms.check()?;
    let subject = Name::from_der(&peer.subject_der)
        .map_err(|e| Error::field("subject", format!("not DER: {e}")))?;
    if subject.to_der().map_err(der_err)? != peer.subject_der {
        return Err(Error::field(
            "subject",
            "is not in canonical DER, so it cannot be kept byte-exact",
        ));
    }
    let spki = SubjectPublicKeyInfoOwned::from_der(&peer.spki_der)
        .map_err(|e| Error::field("public key", e.to_string()))?;
    if spki.to_der().map_err(der_err)? != peer.spki_der {
        return Err(Error::field(
            "public key",
            "SubjectPublicKeyInfo is not in canonical DER",
        ));
    }
    let issuer_name = Name::from_der(&issuer.subject_der).map_err(der_err)?;
    let mut exts = vec![
        ext(
            &BasicConstraints {
                ca: true,
                path_len_constraint: terms.path_len,
            },
            true,
            &subject,
        )?,
        ext(
            &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
            true,
            &subject,
        )?,
        ext(
            &SubjectKeyIdentifier(OctetString::new(peer.ski.clone()).map_err(der_err)?),
            false,
            &subject,
        )?,
        ext(
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(issuer.key_id.clone()).map_err(der_err)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
            &subject,
        )?,
    ];
    let mut permitted: Vec<GeneralSubtree> = terms
        .permitted_dns
        .iter()
        .map(|d| dns_subtree(d))
        .collect::<Result<_>>()?;
    // A peer limited to its DNS names is limited in its other name forms too: its mail
    // domains are the same names, and addresses it may not certify at all unless given
    // (RFC 5280 leaves an unconstrained name form unrestricted).
    if !terms.permitted_dns.is_empty() {
        for d in &terms.permitted_dns {
            let d = d.trim_start_matches('.').to_ascii_lowercase();
            permitted.push(email_subtree(&d)?);
            permitted.push(email_subtree(&format!(".{d}"))?);
        }
    }
    for (ip, l) in &terms.permitted_ip {
        permitted.push(ip_subtree(*ip, *l)?);
    }
    let mut excluded: Vec<GeneralSubtree> = terms
        .excluded_dns
        .iter()
        .map(|d| dns_subtree(d))
        .collect::<Result<_>>()?;
    if !terms.permitted_dns.is_empty() && terms.permitted_ip.is_empty() {
        excluded.push(ip_subtree(IpAddr::from([0u8; 4]), 0)?);
        excluded.push(ip_subtree(IpAddr::from([0u16; 8]), 0)?);
    }
    if !permitted.is_empty() || !excluded.is_empty() {
        let nc = NameConstraints {
            permitted_subtrees: (!permitted.is_empty()).then_some(permitted),
            excluded_subtrees: (!excluded.is_empty()).then_some(excluded),
        };
        exts.push(ext(&nc, true, &subject)?);
    }
    if !terms.policies.is_empty() {
        let p = CertificatePolicies(
            terms
                .policies
                .iter()
                .map(|p| {
                    Ok(PolicyInformation {
                        policy_identifier: crate::core::cms::parse_oid(p)?,
                        policy_qualifiers: None,
                    })
                })
                .collect::<Result<_>>()?,
        );
        exts.push(ext(&p, false, &subject)?);
    }
    if !terms.policy_maps.is_empty() {
        let oid = crate::core::cms::parse_oid;
        let m = PolicyMappings(
            terms
                .policy_maps
                .iter()
                .map(|(a, b)| {
                    Ok(PolicyMapping {
                        issuer_domain_policy: oid(a)?,
                        subject_domain_policy: oid(b)?,
                    })
                })
                .collect::<Result<_>>()?,
        );
        // RFC 5280 §4.2.1.5: conforming CAs SHOULD mark policyMappings critical.
        exts.push(ext(&m, true, &subject)?);
    }
    exts.push(ext(
        &CrlDistributionPoints(vec![distribution_point(&urls.crl)?]),
        false,
        &subject,
    )?);
    let uri = |u: &str| {
        Ia5String::new(u)
            .map(GeneralName::UniformResourceIdentifier)
            .map_err(der_err)
    };
    let aia = AuthorityInfoAccessSyntax(vec![
        AccessDescription {
            access_method: const_oid::db::rfc5280::ID_AD_OCSP,
            access_location: uri(&urls.ocsp)?,
        },
        AccessDescription {
            access_method: const_oid::db::rfc5280::ID_AD_CA_ISSUERS,
            access_location: uri(&urls.ca_issuers)?,
        },
    ]);
    exts.push(ext(&aia, false, &subject)?);
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(serial.as_bytes()).map_err(der_err)?,
        signature: signature_algorithm(alg),
        issuer: issuer_name,
        validity: Validity {
            not_before: x509_time(not_before)?,
            not_after: x509_time(not_after)?,
        },
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(exts),
    };
    tbs.to_der().map_err(der_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::test_ca;
    use x509_cert::ext::pkix::constraints::name::NameConstraints;

    fn urls() -> IssuerUrls {
        IssuerUrls {
            crl: "http://ca.example.cn/crl/root.crl".into(),
            ocsp: "http://ca.example.cn/ocsp".into(),
            ca_issuers: "http://ca.example.cn/ca/root.der".into(),
        }
    }

    fn terms() -> Terms {
        Terms {
            permitted_dns: vec!["region-b.cn".into()],
            days: 365,
            path_len: Some(1),
            ..Terms::default()
        }
    }

    fn build(peer: &Peer, terms: &Terms, issuer: &CaView) -> Result<TbsCertificate> {
        let serial = Serial::random().unwrap();
        let der = tbs(
            peer,
            terms,
            (issuer, CaKeyAlg::P256),
            &urls(),
            &serial,
            1_800_000_000,
            1_830_000_000,
        )?;
        Ok(TbsCertificate::from_der(&der).unwrap())
    }

    fn extension<'a>(t: &'a TbsCertificate, oid: &str) -> Option<&'a Extension> {
        t.extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
    }

    #[test]
    fn the_peer_keeps_its_name_key_and_key_id() {
        let (ours, _) = test_ca();
        let (theirs, _) = test_ca();
        let peer = Peer::from_cert(&theirs.der).unwrap();
        assert_eq!(peer.subject_der, theirs.subject_der);
        assert_eq!(peer.ski, theirs.key_id);
        let t = build(&peer, &terms(), &ours).unwrap();
        assert_eq!(t.subject.to_der().unwrap(), theirs.subject_der);
        assert_eq!(t.subject_public_key_info.to_der().unwrap(), peer.spki_der);
        assert_eq!(t.issuer.to_der().unwrap(), ours.subject_der);
        let ski = extension(&t, "2.5.29.14").unwrap();
        assert_eq!(
            SubjectKeyIdentifier::from_der(ski.extn_value.as_bytes())
                .unwrap()
                .0
                .as_bytes(),
            theirs.key_id
        );
        let aki = extension(&t, "2.5.29.35").unwrap();
        let aki = AuthorityKeyIdentifier::from_der(aki.extn_value.as_bytes()).unwrap();
        assert_eq!(aki.key_identifier.unwrap().as_bytes(), ours.key_id);
        let bc = extension(&t, "2.5.29.19").unwrap();
        assert!(bc.critical);
        let bc = BasicConstraints::from_der(bc.extn_value.as_bytes()).unwrap();
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(1));
    }

    #[test]
    fn a_peer_limited_to_dns_names_gets_its_mail_domains_and_no_addresses() {
        let (ours, _) = test_ca();
        let (theirs, _) = test_ca();
        let peer = Peer::from_cert(&theirs.der).unwrap();
        let t = build(&peer, &terms(), &ours).unwrap();
        let nc = extension(&t, "2.5.29.30").unwrap();
        assert!(nc.critical);
        let nc = NameConstraints::from_der(nc.extn_value.as_bytes()).unwrap();
        let permitted: Vec<String> = nc
            .permitted_subtrees
            .unwrap()
            .iter()
            .map(|s| match &s.base {
                GeneralName::DnsName(d) => format!("dns:{d}"),
                GeneralName::Rfc822Name(m) => format!("mail:{m}"),
                other => panic!("permitted {other:?}"),
            })
            .collect();
        assert_eq!(
            permitted,
            ["dns:region-b.cn", "mail:region-b.cn", "mail:.region-b.cn"]
        );
        let excluded = nc.excluded_subtrees.unwrap();
        let ips: Vec<usize> = excluded
            .iter()
            .map(|s| match &s.base {
                GeneralName::IpAddress(b) => b.as_bytes().len(),
                other => panic!("excluded {other:?}"),
            })
            .collect();
        assert_eq!(ips, [8, 32], "all of IPv4 and all of IPv6");

        // Given addresses, the peer may certify exactly those (masked to the prefix).
        let mut with_ip = terms();
        with_ip.permitted_ip = vec![("10.1.2.3".parse().unwrap(), 16)];
        let t = build(&peer, &with_ip, &ours).unwrap();
        let nc = extension(&t, "2.5.29.30").unwrap();
        let nc = NameConstraints::from_der(nc.extn_value.as_bytes()).unwrap();
        assert!(nc.excluded_subtrees.is_none());
        let ip = nc
            .permitted_subtrees
            .unwrap()
            .into_iter()
            .find_map(|s| match s.base {
                GeneralName::IpAddress(b) => Some(b.as_bytes().to_vec()),
                _ => None,
            })
            .unwrap();
        assert_eq!(ip, [10, 1, 0, 0, 255, 255, 0, 0]);
    }

    #[test]
    fn policies_and_mappings_are_written_and_checked() {
        let (ours, _) = test_ca();
        let (theirs, _) = test_ca();
        let peer = Peer::from_cert(&theirs.der).unwrap();
        let mut t = terms();
        t.policies = vec!["1.3.6.1.4.1.32473.9".into()];
        t.policy_maps = vec![("1.3.6.1.4.1.32473.9".into(), "1.3.6.1.4.1.32473.10".into())];
        let tbs = build(&peer, &t, &ours).unwrap();
        assert!(!extension(&tbs, "2.5.29.32").unwrap().critical);
        assert!(
            extension(&tbs, "2.5.29.33").unwrap().critical,
            "RFC 5280 §4.2.1.5"
        );

        let refused = |f: &dyn Fn(&mut Terms)| {
            let mut t = terms();
            f(&mut t);
            assert!(t.check().is_err(), "{t:?}");
            assert!(build(&peer, &t, &ours).is_err());
        };
        refused(&|t| t.policy_maps = vec![("2.5.29.32.0".into(), "1.2.3".into())]);
        refused(&|t| t.policies = vec!["not an oid".into()]);
        refused(&|t| t.permitted_ip = vec![("10.0.0.0".parse().unwrap(), 33)]);
        refused(&|t| t.permitted_dns = vec!["bad name!".into()]);
        refused(&|t| t.days = 0);
    }

    #[test]
    fn what_cannot_be_kept_byte_exact_is_refused() {
        let (ours, _) = test_ca();
        let (theirs, _) = test_ca();
        let mut peer = Peer::from_cert(&theirs.der).unwrap();
        // A BER length (0x81 for a short length) would not survive re-encoding.
        let mut ber = vec![0x30, 0x81, peer.subject_der[1]];
        ber.extend_from_slice(&peer.subject_der[2..]);
        peer.subject_der = ber;
        assert!(matches!(
            build(&peer, &terms(), &ours),
            Err(Error::InvalidField { field, .. }) if field == "subject"
        ));
    }

    #[test]
    fn only_ca_certificates_and_signed_requests_are_peers() {
        let leaf = {
            let key = rcgen::KeyPair::generate().unwrap();
            rcgen::CertificateParams::new(vec!["a.example.cn".into()])
                .unwrap()
                .self_signed(&key)
                .unwrap()
                .der()
                .to_vec()
        };
        assert!(matches!(
            Peer::from_cert(&leaf),
            Err(Error::InvalidField { field, .. }) if field == "ca_cert"
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "Region B CA");
        let csr = p.serialize_request(&key).unwrap().der().to_vec();
        let peer = Peer::from_csr(&csr).unwrap();
        assert_eq!(
            peer.spki_der,
            rcgen::PublicKeyData::subject_public_key_info(&key)
        );
        assert_eq!(peer.ski.len(), 20, "computed when the request carries none");
        let mut tampered = csr;
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(Peer::from_csr(&tampered), Err(Error::BadCsr(_))));
    }
}
