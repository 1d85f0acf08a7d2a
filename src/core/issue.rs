//! Building and signing certificates. The only way to a CA signature on a certificate is
//! [`sign`], which lints the exact to-be-signed bytes first; [`lint_only`] runs the same check
//! without the key (Boulder's "linting certificate"), so intent can be stored before signing.
use std::cell::RefCell;
use std::net::IpAddr;

use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue, IsCa, Issuer,
    PublicKeyData, SanType, SerialNumber, SignatureAlgorithm, SigningKey,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer;

use crate::core::csr::{Attr, VerifiedCsr};
use crate::core::lint::{self, CertKind, LintPolicy};
use crate::core::names;
use crate::core::profile::{Presence, Profile};
use crate::core::serial::Serial;
use crate::core::uscc;
use crate::error::{Error, Result};
use crate::signer::Signer;

/// Certificates are backdated this much to tolerate relying parties' clock skew.
pub const BACKDATE: Duration = Duration::minutes(5);

/// The names a certificate will carry, after the profile has approved them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// Subject attributes in certificate order.
    pub subject: Vec<(Attr, String)>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub emails: Vec<String>,
}

impl Names {
    /// RFC 4514-style display of the subject (most significant last, as openssl prints reversed).
    pub fn subject_string(&self) -> String {
        self.subject
            .iter()
            .map(|(a, v)| format!("{}={}", a.short(), v.replace(',', "\\,")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// SANs as "DNS:x", "IP:x", "email:x".
    pub fn san_strings(&self) -> Vec<String> {
        let dns = self.dns.iter().map(|d| format!("DNS:{d}"));
        let ips = self.ips.iter().map(|i| format!("IP:{i}"));
        let emails = self.emails.iter().map(|e| format!("email:{e}"));
        dns.chain(ips).chain(emails).collect()
    }
}

fn presence(rules: &crate::core::profile::SubjectRules, attr: Attr) -> Presence {
    match attr {
        Attr::CommonName => rules.common_name,
        Attr::Organization => rules.organization,
        Attr::OrganizationalUnit => rules.organizational_unit,
        Attr::Country => rules.country,
        Attr::State => rules.state,
        Attr::Locality => rules.locality,
        Attr::SerialNumber => rules.uscc,
    }
}

const ALL_ATTRS: [Attr; 7] = [
    Attr::Country,
    Attr::State,
    Attr::Locality,
    Attr::Organization,
    Attr::OrganizationalUnit,
    Attr::SerialNumber,
    Attr::CommonName,
];

/// Applies a profile's name rules to a verified CSR.
pub fn approve_names(profile: &Profile, csr: &VerifiedCsr) -> Result<Names> {
    let pname = &profile.name;
    if !profile.key_algorithms.contains(&csr.key_alg) {
        let allowed: Vec<_> = profile.key_algorithms.iter().map(|a| a.name()).collect();
        return Err(Error::field(
            "public key",
            format!(
                "{} is not allowed by profile {pname} (allowed: {})",
                csr.key_alg,
                allowed.join(", ")
            ),
        ));
    }
    let mut names = Names::default();
    for attr in ALL_ATTRS {
        let field = format!("subject {}", attr.short());
        let value = csr
            .subject
            .iter()
            .find(|(a, _)| *a == attr)
            .map(|(_, v)| v.trim());
        match (presence(&profile.subject, attr), value) {
            (Presence::Forbidden, Some(_)) => {
                return Err(Error::field(
                    field,
                    format!("not allowed by profile {pname}"),
                ));
            }
            (Presence::Required, None) => {
                return Err(Error::field(field, format!("required by profile {pname}")));
            }
            (_, None) => continue,
            (_, Some(v)) => {
                if v.is_empty() || v.chars().count() > attr.max_len() {
                    return Err(Error::field(
                        field,
                        format!("must have 1 to {} characters", attr.max_len()),
                    ));
                }
                names::text_value(v).map_err(|e| Error::field(field.clone(), e))?;
                if attr == Attr::Country
                    && !(v.len() == 2 && v.bytes().all(|b| b.is_ascii_uppercase()))
                {
                    return Err(Error::field(
                        field,
                        "must be a two-letter ISO 3166 code such as CN",
                    ));
                }
                if attr == Attr::SerialNumber {
                    uscc::validate(v).map_err(|e| {
                        Error::field("subject serialNumber (Unified Social Credit Code)", e)
                    })?;
                }
                names.subject.push((attr, v.to_string()));
            }
        }
    }

    let rules = &profile.san;
    let kind_check = |kind: &str, p: Presence, count: usize| -> Result<()> {
        match (p, count) {
            (Presence::Forbidden, n) if n > 0 => Err(Error::field(
                "subjectAltName",
                format!("{kind} names are not allowed by profile {pname}"),
            )),
            (Presence::Required, 0) => Err(Error::field(
                "subjectAltName",
                format!("at least one {kind} name is required by profile {pname}"),
            )),
            _ => Ok(()),
        }
    };
    kind_check("DNS", rules.dns, csr.dns.len())?;
    kind_check("IP", rules.ip, csr.ips.len())?;
    kind_check("email", rules.email, csr.emails.len())?;
    for d in &csr.dns {
        let d = names::dns_name(d, rules.wildcard)
            .map_err(|e| Error::field("subjectAltName DNS", e))?;
        if !names.dns.contains(&d) {
            names.dns.push(d);
        }
    }
    for ip in &csr.ips {
        if !names.ips.contains(ip) {
            names.ips.push(*ip);
        }
    }
    for e in &csr.emails {
        let e = names::email(e).map_err(|e| Error::field("subjectAltName email", e))?;
        if !names.emails.contains(&e) {
            names.emails.push(e);
        }
    }
    let total = names.dns.len() + names.ips.len() + names.emails.len();
    if total < rules.min {
        return Err(Error::field(
            "subjectAltName",
            format!(
                "profile {pname} needs at least {} name(s) (DNS or IP)",
                rules.min
            ),
        ));
    }
    if total > rules.max {
        return Err(Error::field(
            "subjectAltName",
            format!("at most {} names per certificate", rules.max),
        ));
    }
    if rules.common_name_in_san
        && let Some((_, cn)) = names.subject.iter().find(|(a, _)| *a == Attr::CommonName)
    {
        let cn_l = cn.to_ascii_lowercase();
        let in_san = names.dns.contains(&cn_l) || names.ips.iter().any(|ip| ip.to_string() == *cn);
        if !in_san {
            return Err(Error::field(
                "subject CN",
                format!("{cn:?} must also be one of the subjectAltNames"),
            ));
        }
    }
    Ok(names)
}

/// The validity window: the profile default or the request, clamped to the profile maximum and
/// to the issuer's own notAfter.
pub fn validity(
    profile: &Profile,
    requested_days: Option<u32>,
    now: OffsetDateTime,
    issuer_not_after: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let days = match requested_days {
        Some(0) => return Err(Error::field("validity_days", "must be at least 1")),
        Some(d) => d.min(profile.max_validity_days),
        None => profile.default_validity_days,
    };
    let not_before = (now - BACKDATE).replace_nanosecond(0).unwrap_or(now);
    let not_after = (not_before + Duration::days(days.into())).min(issuer_not_after);
    if not_after <= now {
        return Err(Error::field(
            "validity",
            "the issuing CA expires too soon to issue",
        ));
    }
    Ok((not_before, not_after))
}

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
    /// RSA keys may keep keyEncipherment/dataEncipherment; others may not.
    pub key_is_rsa: bool,
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
        .filter(|u| spec.key_is_rsa || !matches!(u, Ku::KeyEncipherment | Ku::DataEncipherment))
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
    inner: rcgen::SubjectPublicKeyInfo,
}

impl SubjectKey {
    /// Wraps SPKI DER; refuses encodings rcgen would not reproduce byte for byte.
    pub fn from_spki(spki_der: &[u8]) -> Result<Self> {
        let inner = rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| Error::field("public key", format!("unsupported key encoding: {e}")))?;
        if inner.subject_public_key_info() != spki_der {
            return Err(Error::field(
                "public key",
                "SubjectPublicKeyInfo is not in canonical DER",
            ));
        }
        Ok(SubjectKey { inner })
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

/// An issuing CA as the signing code needs it.
#[derive(Debug)]
pub struct IssuerRef<'a> {
    /// The CA's name, key identifier and key usages, as rcgen wants them.
    pub params: &'a CertificateParams,
    /// The CA's subject Name, DER, for the linter.
    pub subject_der: &'a [u8],
    /// The CA's subject key identifier.
    pub key_id: &'a [u8],
    /// The CA's notAfter.
    pub not_after: OffsetDateTime,
    /// The CA's key.
    pub signer: &'a dyn Signer,
}

/// Proof that a certificate's TBS passed the linter (only [`lint_only`] makes one): the
/// SHA-256 of the exact bytes that passed.
#[derive(Debug)]
pub struct LintPass(Vec<u8>);

/// The CA key as rcgen sees it, behind the linter. In `dry_run` it never reaches the key.
struct Gate<'a> {
    signer: &'a dyn Signer,
    policy: LintPolicy<'a>,
    dry_run: bool,
    /// The hash of a TBS already linted (by `lint_only`): identical bytes need no second pass.
    linted: Option<&'a [u8]>,
    /// The hash of the TBS this gate saw.
    seen: RefCell<Vec<u8>>,
    refusal: RefCell<Option<Error>>,
}

impl PublicKeyData for Gate<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.signer.public_key_raw()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.signer.algorithm().rcgen()
    }
}

impl SigningKey for Gate<'_> {
    fn sign(&self, tbs: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        let hash = ring::digest::digest(&ring::digest::SHA256, tbs)
            .as_ref()
            .to_vec();
        let already = self.linted.is_some_and(|h| h == hash.as_slice());
        *self.seen.borrow_mut() = hash;
        let checked = if already {
            Ok(())
        } else {
            lint::lint_tbs(tbs, &self.policy)
        };
        let outcome = checked.and_then(|()| {
            if self.dry_run {
                Ok(vec![0; 8])
            } else {
                self.signer.sign(tbs)
            }
        });
        outcome.map_err(|e| {
            *self.refusal.borrow_mut() = Some(e);
            rcgen::Error::RemoteKeyError
        })
    }
}

/// Who signs: an issuing CA, or the subject's own key (a root).
enum By<'a> {
    Issuer(&'a IssuerRef<'a>, &'a dyn PublicKeyDataDyn),
    SelfSigned(&'a dyn Signer),
}

/// Builds the certificate and passes its TBS through the gate; returns the DER and the TBS hash.
fn run(
    params: &CertificateParams,
    by: By<'_>,
    kind: CertKind,
    dry_run: bool,
    linted: Option<&[u8]>,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let (signer, policy) = match &by {
        By::Issuer(i, _) => (
            i.signer,
            LintPolicy {
                kind,
                issuer_name: i.subject_der,
                issuer_key_id: i.key_id,
                issuer_not_after: i.not_after.unix_timestamp(),
            },
        ),
        By::SelfSigned(s) => (
            *s,
            LintPolicy {
                kind: CertKind::Root,
                issuer_name: &[],
                issuer_key_id: &[],
                issuer_not_after: i64::MAX,
            },
        ),
    };
    let gate = Gate {
        signer,
        policy,
        dry_run,
        linted,
        seen: RefCell::new(Vec::new()),
        refusal: RefCell::new(None),
    };
    let result = match by {
        By::Issuer(i, subject) => {
            params.signed_by(&DynKey(subject), &Issuer::from_params(i.params, &gate))
        }
        By::SelfSigned(_) => params.self_signed(&gate),
    };
    match result {
        Ok(cert) => Ok((cert.der().to_vec(), gate.seen.take())),
        Err(e) => Err(gate
            .refusal
            .take()
            .unwrap_or_else(|| Error::Internal(format!("certificate encoding failed: {e}")))),
    }
}

/// Object-safe view of rcgen's PublicKeyData.
pub trait PublicKeyDataDyn {
    fn der(&self) -> &[u8];
    fn alg(&self) -> &'static SignatureAlgorithm;
}

impl<T: PublicKeyData> PublicKeyDataDyn for T {
    fn der(&self) -> &[u8] {
        self.der_bytes()
    }
    fn alg(&self) -> &'static SignatureAlgorithm {
        self.algorithm()
    }
}

struct DynKey<'a>(&'a dyn PublicKeyDataDyn);

impl PublicKeyData for DynKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.der()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.alg()
    }
}

/// Lints the certificate `params` would produce, without touching the CA key.
pub fn lint_only(
    params: &CertificateParams,
    subject: &dyn PublicKeyDataDyn,
    issuer: &IssuerRef<'_>,
    kind: CertKind,
) -> Result<LintPass> {
    run(params, By::Issuer(issuer, subject), kind, true, None).map(|(_, hash)| LintPass(hash))
}

/// Signs a certificate for `subject`. The gate signs the exact TBS bytes `pass` vouches for
/// without linting them twice; any other bytes are linted again first.
pub fn sign(
    params: &CertificateParams,
    subject: &dyn PublicKeyDataDyn,
    issuer: &IssuerRef<'_>,
    kind: CertKind,
    pass: LintPass,
) -> Result<Vec<u8>> {
    run(
        params,
        By::Issuer(issuer, subject),
        kind,
        false,
        Some(&pass.0),
    )
    .map(|(der, _)| der)
}

/// Signs a CA certificate whose subject key is the given signer's (an intermediate).
pub fn sign_ca(
    params: &CertificateParams,
    subject: &dyn Signer,
    issuer: &IssuerRef<'_>,
) -> Result<Vec<u8>> {
    let key = SignerKey(subject);
    run(
        params,
        By::Issuer(issuer, &key),
        CertKind::SubCa,
        false,
        None,
    )
    .map(|(der, _)| der)
}

/// Lints a TBSCertificate built elsewhere (cross-certificates, built with x509-cert to keep the
/// peer's subject byte-exact) and signs it with the issuer's key: the same gate as [`sign`].
pub fn sign_tbs(tbs: &[u8], issuer: &IssuerRef<'_>, kind: CertKind) -> Result<Vec<u8>> {
    let policy = LintPolicy {
        kind,
        issuer_name: issuer.subject_der,
        issuer_key_id: issuer.key_id,
        issuer_not_after: issuer.not_after.unix_timestamp(),
    };
    lint::lint_tbs(tbs, &policy)?;
    let signature = issuer.signer.sign(tbs)?;
    crate::core::revocation::signed_der(tbs, issuer.signer.algorithm(), &signature)
}

/// Self-signs a root certificate (linted as a root).
pub fn self_sign_root(params: &CertificateParams, key: &dyn Signer) -> Result<Vec<u8>> {
    run(params, By::SelfSigned(key), CertKind::Root, false, None).map(|(der, _)| der)
}

/// The SubjectPublicKeyInfo DER of any signer's key (software or HSM).
pub fn spki_der(key: &dyn Signer) -> Vec<u8> {
    SignerKey(key).subject_public_key_info()
}

struct SignerKey<'a>(&'a dyn Signer);

impl PublicKeyData for SignerKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.0.public_key_raw()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm().rcgen()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::authority::{Authority, InitOptions, Layout};
    use crate::core::keys::CaKeyAlg;
    use crate::core::profile::Profiles;
    use crate::signer::SoftwareKey;

    /// A CA key that counts its signatures.
    #[derive(Debug)]
    struct Counting(SoftwareKey, AtomicUsize);

    impl Signer for Counting {
        fn algorithm(&self) -> CaKeyAlg {
            self.0.algorithm()
        }
        fn public_key_raw(&self) -> &[u8] {
            self.0.public_key_raw()
        }
        fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.sign(msg)
        }
    }

    fn setup() -> (tempfile::TempDir, Authority, Profile, SoftwareKey) {
        let dir = tempfile::tempdir().unwrap();
        let authority = Authority::create(
            &Layout::new(&dir.path().join("d")),
            &InitOptions::default(),
            "http://ca.example.cn",
            None,
        )
        .unwrap();
        let profile = Profiles::embedded()
            .unwrap()
            .get("server-tls")
            .unwrap()
            .clone();
        (
            dir,
            authority,
            profile,
            SoftwareKey::generate(CaKeyAlg::P256).unwrap(),
        )
    }

    fn spec<'a>(
        profile: &'a Profile,
        names: &'a Names,
        serial: &'a Serial,
        now: OffsetDateTime,
        spki: &'a [u8],
    ) -> LeafSpec<'a> {
        static URLS: std::sync::LazyLock<IssuerUrls> = std::sync::LazyLock::new(|| IssuerUrls {
            crl: "http://ca.example.cn/crl/issuing.crl".into(),
            ocsp: "http://ca.example.cn/ocsp".into(),
            ca_issuers: "http://ca.example.cn/ca/issuing.der".into(),
        });
        LeafSpec {
            profile,
            names,
            serial,
            not_before: now,
            not_after: now + Duration::days(30),
            spki_der: spki,
            key_is_rsa: false,
            urls: Some(&URLS),
        }
    }

    fn names() -> Names {
        Names {
            dns: vec!["shop.example.cn".into()],
            ..Names::default()
        }
    }

    #[test]
    fn a_failing_lint_signs_nothing_and_names_the_lint() {
        let (dir, authority, profile, subject) = setup();
        let issuing = &authority.issuing;
        let key_pem =
            std::fs::read_to_string(Layout::new(&dir.path().join("d")).issuing_key()).unwrap();
        let counting = Counting(
            SoftwareKey::from_pkcs8_pem(&key_pem).unwrap(),
            AtomicUsize::new(0),
        );
        let issuer = IssuerRef {
            signer: &counting,
            ..issuing.issuer_ref()
        };
        let now = OffsetDateTime::now_utc();
        let spki = subject.spki_der();
        let key = SubjectKey::from_spki(&spki).unwrap();
        let serial = Serial::random().unwrap();
        let names = names();
        let mut params = leaf_params(&spec(&profile, &names, &serial, now, &spki)).unwrap();

        // A good certificate passes the dry run without the key, then signs once.
        let pass = lint_only(&params, &key, &issuer, CertKind::EndEntity).unwrap();
        assert_eq!(
            counting.1.load(Ordering::SeqCst),
            0,
            "lint_only never touches the key"
        );
        sign(&params, &key, &issuer, CertKind::EndEntity, pass).unwrap();
        assert_eq!(counting.1.load(Ordering::SeqCst), 1);

        // Each defect is refused by a named lint, and the key is not used.
        params.extended_key_usages.clear();
        match lint_only(&params, &key, &issuer, CertKind::EndEntity) {
            Err(Error::LintFailed { lint, .. }) => assert_eq!(lint, "e_ee_eku_missing"),
            other => panic!("{other:?}"),
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.not_after = issuing.not_after + Duration::days(1);
        match lint_only(&params, &key, &issuer, CertKind::EndEntity) {
            Err(Error::LintFailed { lint, .. }) => assert_eq!(lint, "e_validity_within_issuer"),
            other => panic!("{other:?}"),
        }
        params.not_after = now + Duration::days(30);
        params.serial_number = Some(SerialNumber::from_slice(&[1, 2, 3]));
        match lint_only(&params, &key, &issuer, CertKind::EndEntity) {
            Err(Error::LintFailed { lint, .. }) => assert_eq!(lint, "e_serial_entropy"),
            other => panic!("{other:?}"),
        }
        params.serial_number = Some(SerialNumber::from_slice(
            Serial::random().unwrap().as_bytes(),
        ));
        params.key_usages.push(rcgen::KeyUsagePurpose::KeyCertSign);
        assert!(matches!(
            lint_only(&params, &key, &issuer, CertKind::EndEntity),
            Err(Error::LintFailed {
                lint: "e_ee_key_usage",
                ..
            })
        ));
        assert_eq!(
            counting.1.load(Ordering::SeqCst),
            1,
            "no refused certificate reached the key"
        );

        // A pass vouches only for the bytes it linted: other bytes are linted again.
        params.key_usages.pop();
        let pass = lint_only(&params, &key, &issuer, CertKind::EndEntity).unwrap();
        params.key_usages.push(rcgen::KeyUsagePurpose::KeyCertSign);
        assert!(matches!(
            sign(&params, &key, &issuer, CertKind::EndEntity, pass),
            Err(Error::LintFailed {
                lint: "e_ee_key_usage",
                ..
            })
        ));
        assert_eq!(counting.1.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn issuer_name_must_match_byte_for_byte() {
        let (_dir, authority, profile, subject) = setup();
        let issuing = &authority.issuing;
        let other_name = b"\x30\x00".to_vec();
        let issuer = IssuerRef {
            subject_der: &other_name,
            ..issuing.issuer_ref()
        };
        let now = OffsetDateTime::now_utc();
        let spki = subject.spki_der();
        let key = SubjectKey::from_spki(&spki).unwrap();
        let serial = Serial::random().unwrap();
        let names = names();
        let params = leaf_params(&spec(&profile, &names, &serial, now, &spki)).unwrap();
        assert!(matches!(
            lint_only(&params, &key, &issuer, CertKind::EndEntity),
            Err(Error::LintFailed {
                lint: "e_issuer_name_match",
                ..
            })
        ));
    }
}
