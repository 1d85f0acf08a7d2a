//! The certificate's contents: rcgen parameters from a profile and approved names.

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, IsCa, PublicKeyData,
    SanType, SerialNumber, SignatureAlgorithm,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use crate::core::csr::Attr;
use crate::core::error::{Error, Result};
use crate::core::profile::Profile;
use crate::core::serial::Serial;

use super::Names;

/// Where relying parties find revocation and issuer data for certificates of one CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerUrls {
    /// Full CRL (CRL distribution point).
    pub crl: String,
    /// OCSP responder (AIA id-ad-ocsp).
    pub ocsp: String,
    /// The issuer's certificate, DER (AIA id-ad-caIssuers).
    pub ca_issuers: String,
}

impl IssuerUrls {
    /// Adds the CRL distribution point and the authorityInfoAccess extension.
    pub fn apply(&self, p: &mut CertificateParams) -> Result<()> {
        use der::Encode;
        use x509_cert::ext::pkix::AccessDescription;
        use x509_cert::ext::pkix::name::GeneralName;
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec![self.crl.clone()],
        }];
        let uri = |u: &str| {
            der::asn1::Ia5String::new(u)
                .map(GeneralName::UniformResourceIdentifier)
                .map_err(|_| Error::Config(format!("URL {u:?} is not ASCII")))
        };
        let aia = x509_cert::ext::pkix::AuthorityInfoAccessSyntax(vec![
            AccessDescription {
                access_method: const_oid::db::rfc5280::ID_AD_OCSP,
                access_location: uri(&self.ocsp)?,
            },
            AccessDescription {
                access_method: const_oid::db::rfc5280::ID_AD_CA_ISSUERS,
                access_location: uri(&self.ca_issuers)?,
            },
        ]);
        let content = aia
            .to_der()
            .map_err(|e| Error::Internal(format!("AIA: {e}")))?;
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 1],
            content,
        ));
        Ok(())
    }
}

/// Everything an end-entity certificate is made of.
#[derive(Clone, Copy, Debug)]
pub struct LeafSpec<'a> {
    pub profile: &'a Profile,
    pub names: &'a Names,
    pub serial: &'a Serial,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The subject's SubjectPublicKeyInfo, DER (for the subjectKeyIdentifier).
    pub spki_der: &'a [u8],
    /// Keys that encrypt (RSA, SM2) may keep keyEncipherment/dataEncipherment; others may not.
    pub key_enciphers: bool,
    /// CRL and OCSP locations; None for certificates whose only relying party is ecca
    /// itself (API credentials), which it checks against its store.
    pub urls: Option<&'a IssuerUrls>,
}

/// rcgen parameters for an end-entity certificate: everything from the profile and the approved names.
pub fn leaf_params(spec: &LeafSpec<'_>) -> Result<CertificateParams> {
    use crate::core::profile::KeyUsage as Ku;
    let profile = spec.profile;
    let mut p = CertificateParams::default();
    p.serial_number = Some(SerialNumber::from_slice(spec.serial.as_bytes()));
    p.not_before = spec.not_before;
    p.not_after = spec.not_after;
    p.distinguished_name = distinguished_name(&spec.names.subject)?;
    // No basicConstraints on leaves: rcgen's ExplicitNoCa encodes the DEFAULT cA=FALSE, which DER forbids.
    p.is_ca = IsCa::NoCa;
    p.key_usages = profile
        .key_usages
        .iter()
        .filter(|u| spec.key_enciphers || !matches!(u, Ku::KeyEncipherment | Ku::DataEncipherment))
        .map(|u| u.rcgen())
        .collect();
    if profile.critical_eku {
        // rcgen writes EKU non-critical; RFC 3161 §2.3 wants it critical on a TSA certificate.
        use der::Encode;
        let oids = profile
            .extended_key_usages
            .iter()
            .map(|e| {
                crate::core::cms::parse_oid(
                    &e.arcs
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join("."),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let der = x509_cert::ext::pkix::ExtendedKeyUsage(oids)
            .to_der()
            .map_err(|e| Error::Internal(format!("EKU: {e}")))?;
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 37], der);
        ext.set_criticality(true);
        p.custom_extensions.push(ext);
    } else {
        p.extended_key_usages = profile
            .extended_key_usages
            .iter()
            .map(|e| e.rcgen())
            .collect();
    }
    p.subject_alt_names = san_types(spec.names)?;
    p.use_authority_key_identifier_extension = true;
    p.custom_extensions
        .push(subject_key_identifier(spec.spki_der)?);
    if profile.ocsp_no_check {
        // id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): NULL.
        p.custom_extensions.push(CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5],
            vec![0x05, 0x00],
        ));
    }
    if let Some(urls) = spec.urls {
        urls.apply(&mut p)?;
    }
    Ok(p)
}

/// subjectKeyIdentifier per RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the
/// subjectPublicKey bits (rcgen writes SKI only for CAs).
fn subject_key_identifier(spki_der: &[u8]) -> Result<CustomExtension> {
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| Error::field("public key", e.to_string()))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki.subject_public_key.data);
    let mut content = vec![0x04, 20];
    content.extend_from_slice(&digest.as_ref()[..20]);
    Ok(CustomExtension::from_oid_content(&[2, 5, 29, 14], content))
}

/// Builds a DistinguishedName; countryName and serialNumber as PrintableString, the rest UTF8String.
pub fn distinguished_name(attrs: &[(Attr, String)]) -> Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    for (attr, value) in attrs {
        let printable = || {
            rcgen::string::PrintableString::try_from(value.as_str())
                .map(DnValue::PrintableString)
                .map_err(|_| {
                    Error::field(
                        format!("subject {}", attr.short()),
                        "must be printable ASCII",
                    )
                })
        };
        let (ty, v) = match attr {
            Attr::Country => (DnType::CountryName, printable()?),
            Attr::SerialNumber => (DnType::CustomDnType(vec![2, 5, 4, 5]), printable()?),
            Attr::State => (
                DnType::StateOrProvinceName,
                DnValue::Utf8String(value.clone()),
            ),
            Attr::Locality => (DnType::LocalityName, DnValue::Utf8String(value.clone())),
            Attr::Organization => (DnType::OrganizationName, DnValue::Utf8String(value.clone())),
            Attr::OrganizationalUnit => (
                DnType::OrganizationalUnitName,
                DnValue::Utf8String(value.clone()),
            ),
            Attr::CommonName => (DnType::CommonName, DnValue::Utf8String(value.clone())),
        };
        dn.push(ty, v);
    }
    Ok(dn)
}

fn san_types(names: &Names) -> Result<Vec<SanType>> {
    let ia5 = |s: &str| {
        rcgen::string::Ia5String::try_from(s)
            .map_err(|_| Error::field("subjectAltName", format!("{s:?} is not ASCII")))
    };
    let mut out = Vec::new();
    for d in &names.dns {
        out.push(SanType::DnsName(ia5(d)?));
    }
    for ip in &names.ips {
        out.push(SanType::IpAddress(*ip));
    }
    for e in &names.emails {
        out.push(SanType::Rfc822Name(ia5(e)?));
    }
    Ok(out)
}

/// A subject public key taken byte-exact from a CSR.
#[derive(Debug)]
pub struct SubjectKey {
    /// What rcgen lays the certificate out with (for SM2: the point under P-256's name).
    inner: rcgen::SubjectPublicKeyInfo,
    /// The SPKI an SM2 key's certificate carries instead (`retarget` puts it back).
    sm2_spki: Option<Vec<u8>>,
}

impl SubjectKey {
    /// Wraps SPKI DER; refuses encodings rcgen would not reproduce byte for byte.
    pub fn from_spki(spki_der: &[u8]) -> Result<Self> {
        let sm2 = crate::core::keys::is_sm2_spki(spki_der);
        let layout = if sm2 {
            let (_, x) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
                .map_err(|e| Error::field("public key", format!("does not parse: {e}")))?;
            rcgen::SubjectPublicKeyInfo::from_der(&p256_layout(&x.subject_public_key.data)?)
        } else {
            rcgen::SubjectPublicKeyInfo::from_der(spki_der)
        };
        let inner = layout
            .map_err(|e| Error::field("public key", format!("unsupported key encoding: {e}")))?;
        let canonical = if sm2 {
            crate::core::sm2::spki_der(inner.der_bytes())?
        } else {
            inner.subject_public_key_info()
        };
        if canonical != spki_der {
            return Err(Error::field(
                "public key",
                "SubjectPublicKeyInfo is not in canonical DER",
            ));
        }
        Ok(SubjectKey {
            inner,
            sm2_spki: sm2.then(|| spki_der.to_vec()),
        })
    }
}

/// An SPKI naming P-256 around an SM2 point: the layout rcgen can encode (`retarget` then
/// restores the SM2 curve).
fn p256_layout(point: &[u8]) -> Result<Vec<u8>> {
    let key = rcgen::SubjectPublicKeyInfo::from_der(
        &rcgen::PublicKeyData::subject_public_key_info(&LayoutKey(point)),
    )
    .map_err(|e| Error::field("public key", format!("{e}")))?;
    Ok(key.subject_public_key_info())
}

struct LayoutKey<'a>(&'a [u8]);

impl PublicKeyData for LayoutKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        crate::core::keys::CaKeyAlg::Sm2.rcgen()
    }
}

impl super::PublicKeyDataDyn for SubjectKey {
    fn der(&self) -> &[u8] {
        self.inner.der_bytes()
    }
    fn alg(&self) -> &'static SignatureAlgorithm {
        self.inner.algorithm()
    }
    fn sm2_spki(&self) -> Option<Vec<u8>> {
        self.sm2_spki.clone()
    }
}

impl PublicKeyData for SubjectKey {
    fn der_bytes(&self) -> &[u8] {
        self.inner.der_bytes()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.inner.algorithm()
    }
}
