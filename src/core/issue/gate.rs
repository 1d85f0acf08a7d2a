//! The only way to a signature on a certificate: the exact to-be-signed bytes are linted
//! first (a failing lint signs nothing).
use std::cell::RefCell;

use rcgen::{CertificateParams, Issuer, PublicKeyData, SignatureAlgorithm, SigningKey};
use time::OffsetDateTime;

use crate::core::error::{Error, Result};
use crate::core::keys::{CaKeyAlg, Signer};
use crate::core::lint::{self, CertKind, LintPolicy};

/// A CA certificate as signing under it needs it, parsed once: public data only (the key
/// stays with whoever holds the [`Signer`]).
#[derive(Clone, Debug)]
pub struct CaView {
    pub der: Vec<u8>,
    /// The CA's subject Name, DER.
    pub subject_der: Vec<u8>,
    /// The CA's subject key identifier.
    pub key_id: Vec<u8>,
    pub not_after: OffsetDateTime,
    /// The certificate's serial, big-endian magnitude.
    pub serial: Vec<u8>,
    /// The subjectPublicKey bits.
    pub public_key: Vec<u8>,
    /// The CA's name, key identifier and key usages, as rcgen wants them.
    params: CertificateParams,
}

impl CaView {
    /// Parses a CA certificate; it must carry a subjectKeyIdentifier.
    pub fn from_der(der: Vec<u8>) -> Result<Self> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, x509) = X509Certificate::from_der(&der)
            .map_err(|e| Error::Config(format!("CA certificate does not parse: {e}")))?;
        let key_id = x509
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            })
            .ok_or_else(|| Error::Config("CA certificate has no subjectKeyIdentifier".into()))?;
        let (attrs, _) = crate::core::csr::name_attrs(&x509.subject)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = super::distinguished_name(&attrs)?;
        params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(key_id.clone());
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        Ok(CaView {
            subject_der: x509.subject.as_raw().to_vec(),
            not_after: x509.validity.not_after.to_datetime(),
            serial: crate::core::serial::Serial::from_der_content(x509.raw_serial())
                .as_bytes()
                .to_vec(),
            public_key: x509.public_key().subject_public_key.data.to_vec(),
            key_id,
            params,
            der,
        })
    }
}

/// A CA and its key, as the signing functions take them. Only the holder of the key can make
/// one, and every function that takes one lints before it signs.
#[derive(Clone, Copy, Debug)]
pub struct IssuerRef<'a> {
    ca: &'a CaView,
    signer: &'a dyn Signer,
}

impl<'a> IssuerRef<'a> {
    /// Pairs a CA certificate with its key; refuses a key that is not the certificate's.
    pub fn new(ca: &'a CaView, signer: &'a dyn Signer) -> Result<Self> {
        if ca.public_key != signer.public_key_raw() {
            return Err(Error::Config("CA certificate and key do not match".into()));
        }
        Ok(IssuerRef { ca, signer })
    }

    /// The CA certificate.
    pub fn ca(&self) -> &'a CaView {
        self.ca
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> crate::core::keys::CaKeyAlg {
        self.signer.algorithm()
    }

    /// Signs bytes that a lint has passed; private to the signing functions of `core`.
    pub(in crate::core) fn sign_linted(&self, tbs: &[u8]) -> Result<Vec<u8>> {
        self.signer.sign(tbs)
    }
}

/// Proof that a certificate's TBS passed the linter (only [`lint_only`] makes one): the exact
/// bytes that passed, and the key of the CA they were linted for. Signing signs these bytes
/// as they are: nothing is laid out or linted twice.
#[derive(Debug)]
pub struct LintPass {
    tbs: Vec<u8>,
    issuer_key: Vec<u8>,
}

/// The CA key as rcgen sees it while it lays out a certificate: rcgen hands over the TBS
/// bytes, which are kept; the signature it gets back is a placeholder. Linting, signing and
/// assembling happen after, in [`run`], for every algorithm alike.
struct Capture<'a> {
    signer: &'a dyn Signer,
    tbs: RefCell<Vec<u8>>,
}

impl PublicKeyData for Capture<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.signer.public_key_raw()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.signer.algorithm().rcgen()
    }
}

impl SigningKey for Capture<'_> {
    fn sign(&self, tbs: &[u8]) -> std::result::Result<Vec<u8>, rcgen::Error> {
        *self.tbs.borrow_mut() = tbs.to_vec();
        Ok(vec![0; 8])
    }
}

/// Who signs: an issuing CA, or the subject's own key (a root).
enum By<'a> {
    Issuer(&'a IssuerRef<'a>, &'a dyn PublicKeyDataDyn),
    SelfSigned(&'a dyn Signer),
}

/// Lays the certificate out (rcgen), names SM2 where rcgen cannot ([`retarget`]), lints the
/// exact TBS, then signs and assembles it (not in `dry_run`). Returns the DER, or in a dry
/// run the linted TBS.
fn run(params: &CertificateParams, by: By<'_>, kind: CertKind, dry_run: bool) -> Result<Vec<u8>> {
    let (signer, policy, subject_sm2) = match &by {
        By::Issuer(i, subject) => (
            i.signer,
            LintPolicy {
                kind,
                issuer_name: &i.ca.subject_der,
                issuer_key_id: &i.ca.key_id,
                issuer_not_after: i.ca.not_after.unix_timestamp(),
                issuer_alg: i.signer.algorithm(),
            },
            subject.sm2_spki(),
        ),
        By::SelfSigned(s) => (
            *s,
            LintPolicy {
                kind: CertKind::Root,
                issuer_name: &[],
                issuer_key_id: &[],
                issuer_not_after: i64::MAX,
                issuer_alg: s.algorithm(),
            },
            SignerKey(*s).sm2_spki(),
        ),
    };
    let capture = Capture {
        signer,
        tbs: RefCell::new(Vec::new()),
    };
    let laid_out = match by {
        By::Issuer(i, subject) => params.signed_by(
            &DynKey(subject),
            &Issuer::from_params(&i.ca.params, &capture),
        ),
        By::SelfSigned(_) => params.self_signed(&capture),
    };
    laid_out.map_err(|e| Error::Internal(format!("certificate encoding failed: {e}")))?;
    let mut tbs = capture.tbs.take();
    if signer.algorithm() == CaKeyAlg::Sm2 || subject_sm2.is_some() {
        tbs = retarget(&tbs, signer.algorithm(), subject_sm2.as_deref())?;
    }
    lint::lint_tbs(&tbs, &policy)?;
    if dry_run {
        return Ok(tbs);
    }
    let signature = signer.sign(&tbs)?;
    crate::core::revocation::signed_der(&tbs, signer.algorithm(), &signature)
}

/// Names in a TBSCertificate what rcgen cannot: the issuer's signature algorithm (SM3withSM2
/// for an SM2 issuer) and the subject's SM2 SubjectPublicKeyInfo. rcgen laid both out under
/// P-256's names (the same point size), so nothing else in the TBS changes.
pub fn retarget(tbs: &[u8], issuer: CaKeyAlg, subject_spki: Option<&[u8]>) -> Result<Vec<u8>> {
    use der::{Decode, Encode};
    let der_err = |e: der::Error| Error::Internal(format!("TBSCertificate: {e}"));
    let mut t = x509_cert::TbsCertificate::from_der(tbs).map_err(der_err)?;
    t.signature = crate::core::revocation::signature_algorithm(issuer);
    if let Some(spki) = subject_spki {
        t.subject_public_key_info =
            x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(spki).map_err(der_err)?;
    }
    t.to_der().map_err(der_err)
}

/// A PKCS#10 request for `params`' subject and names, signed by `key` (proof of possession):
/// rcgen lays out the CertificationRequestInfo, SM2 is named where rcgen cannot, `key` signs.
pub fn request_der(params: &CertificateParams, key: &dyn Signer) -> Result<Vec<u8>> {
    use der::{Decode, Encode};
    let der_err = |e: der::Error| Error::Internal(format!("CertificationRequest: {e}"));
    let capture = Capture {
        signer: key,
        tbs: RefCell::new(Vec::new()),
    };
    params
        .serialize_request(&capture)
        .map_err(|e| Error::Internal(format!("request encoding failed: {e}")))?;
    let mut info =
        x509_cert::request::CertReqInfo::from_der(&capture.tbs.take()).map_err(der_err)?;
    if let Some(spki) = SignerKey(key).sm2_spki() {
        info.public_key =
            x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(&spki).map_err(der_err)?;
    }
    let info_der = info.to_der().map_err(der_err)?;
    let signature = key.sign(&info_der)?;
    x509_cert::request::CertReq {
        info,
        algorithm: crate::core::revocation::signature_algorithm(key.algorithm()),
        signature: der::asn1::BitString::from_bytes(&signature).map_err(der_err)?,
    }
    .to_der()
    .map_err(der_err)
}

/// Object-safe view of a subject key as rcgen lays it out.
pub trait PublicKeyDataDyn {
    fn der(&self) -> &[u8];
    fn alg(&self) -> &'static SignatureAlgorithm;
    /// The SM2 SubjectPublicKeyInfo to put in place of rcgen's layout (None: not SM2).
    fn sm2_spki(&self) -> Option<Vec<u8>>;
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
    let tbs = run(params, By::Issuer(issuer, subject), kind, true)?;
    Ok(LintPass {
        tbs,
        issuer_key: issuer.ca.public_key.clone(),
    })
}

/// Signs the exact TBS bytes `pass` vouches for, with the key of the CA they were linted
/// for (a pass made for another CA is refused: its TBS names that CA).
pub fn sign(issuer: &IssuerRef<'_>, pass: LintPass) -> Result<Vec<u8>> {
    if pass.issuer_key != issuer.ca.public_key {
        return Err(Error::Internal(
            "a lint pass is signed only by the CA it was linted for".into(),
        ));
    }
    let signature = issuer.signer.sign(&pass.tbs)?;
    crate::core::revocation::signed_der(&pass.tbs, issuer.signer.algorithm(), &signature)
}

/// Signs a CA certificate whose subject key is the given signer's (an intermediate).
pub fn sign_ca(
    params: &CertificateParams,
    subject: &dyn Signer,
    issuer: &IssuerRef<'_>,
) -> Result<Vec<u8>> {
    let key = SignerKey(subject);
    run(params, By::Issuer(issuer, &key), CertKind::SubCa, false)
}

/// Lints a TBSCertificate built elsewhere (cross-certificates, built with x509-cert to keep the
/// peer's subject byte-exact) and signs it with the issuer's key: the same gate as [`sign`].
pub fn sign_tbs(tbs: &[u8], issuer: &IssuerRef<'_>, kind: CertKind) -> Result<Vec<u8>> {
    let policy = LintPolicy {
        kind,
        issuer_name: &issuer.ca.subject_der,
        issuer_key_id: &issuer.ca.key_id,
        issuer_not_after: issuer.ca.not_after.unix_timestamp(),
        issuer_alg: issuer.signer.algorithm(),
    };
    lint::lint_tbs(tbs, &policy)?;
    let signature = issuer.signer.sign(tbs)?;
    crate::core::revocation::signed_der(tbs, issuer.signer.algorithm(), &signature)
}

/// Self-signs a root certificate (linted as a root).
pub fn self_sign_root(params: &CertificateParams, key: &dyn Signer) -> Result<Vec<u8>> {
    run(params, By::SelfSigned(key), CertKind::Root, false)
}

/// The SubjectPublicKeyInfo DER of any signer's key (software or HSM).
pub fn spki_der(key: &dyn Signer) -> Vec<u8> {
    SignerKey(key)
        .sm2_spki()
        .unwrap_or_else(|| SignerKey(key).subject_public_key_info())
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

impl PublicKeyDataDyn for SignerKey<'_> {
    fn der(&self) -> &[u8] {
        self.0.public_key_raw()
    }
    fn alg(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm().rcgen()
    }
    fn sm2_spki(&self) -> Option<Vec<u8>> {
        (self.0.algorithm() == CaKeyAlg::Sm2)
            .then(|| crate::core::sm2::spki_der(self.0.public_key_raw()).ok())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{KeyPair, SerialNumber};
    use time::Duration;

    use super::*;
    use crate::core::issue::{IssuerUrls, LeafSpec, Names, SubjectKey, leaf_params};
    use crate::core::profile::{Profile, Profiles};
    use crate::core::serial::Serial;

    use crate::core::testing::{Counting, test_ca};

    /// A CA with a counting key, a profile and a subject key.
    fn setup() -> (CaView, Counting, Profile, KeyPair) {
        let (ca, key) = test_ca();
        let profile = Profiles::embedded()
            .unwrap()
            .get("server-tls")
            .unwrap()
            .clone();
        let subject = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        (ca, key, profile, subject)
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
            key_enciphers: false,
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
        let (issuing, counting, profile, subject) = setup();
        let issuer = IssuerRef::new(&issuing, &counting).unwrap();
        let now = OffsetDateTime::now_utc();
        let spki = subject.subject_public_key_info();
        let key = SubjectKey::from_spki(&spki).unwrap();
        let serial = Serial::random().unwrap();
        let names = names();
        let mut params = leaf_params(&spec(&profile, &names, &serial, now, &spki)).unwrap();

        // A good certificate passes the dry run without the key, then signs once.
        let pass = lint_only(&params, &key, &issuer, CertKind::EndEntity).unwrap();
        assert_eq!(counting.count(), 0, "lint_only never touches the key");
        sign(&issuer, pass).unwrap();
        assert_eq!(counting.count(), 1);

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
            counting.count(),
            1,
            "no refused certificate reached the key"
        );

        // A pass signs the bytes it linted, whatever the params became after; and only with
        // the key of the CA it was linted for.
        params.key_usages.pop();
        let pass = lint_only(&params, &key, &issuer, CertKind::EndEntity).unwrap();
        params.key_usages.push(rcgen::KeyUsagePurpose::KeyCertSign);
        let (other_ca, other_key, _, _) = setup();
        let other = IssuerRef::new(&other_ca, &other_key).unwrap();
        assert!(matches!(sign(&other, pass), Err(Error::Internal(_))));
        assert_eq!(other_key.count(), 0, "another CA's key signed nothing");
        let pass = lint_only(&params, &key, &issuer, CertKind::EndEntity);
        assert!(matches!(
            pass,
            Err(Error::LintFailed {
                lint: "e_ee_key_usage",
                ..
            })
        ));
        assert_eq!(counting.count(), 1);
    }

    #[test]
    fn issuer_name_must_match_byte_for_byte() {
        let (issuing, key, profile, subject) = setup();
        let other = CaView {
            subject_der: b"\x30\x00".to_vec(),
            ..issuing.clone()
        };
        let issuer = IssuerRef::new(&other, &key).unwrap();
        let now = OffsetDateTime::now_utc();
        let spki = subject.subject_public_key_info();
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
