//! CMS SignedData (RFC 5652) for document signatures: detached CAdES-BES signing (contentType,
//! messageDigest, signingTime, ESS signingCertificateV2), the RFC 3161 timestamp unsigned
//! attribute (CAdES-T), and verification of signatures and timestamp tokens. The `cms` crate
//! gives the types; verifying them is ours (it has no verify API).
use std::str::FromStr;

use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, GeneralizedTime, OctetString, SetOfVec, UtcTime};
use der::{Decode, Encode, Sequence};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
pub use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::core::error::{Error, Result};

/// Object identifiers used here.
pub mod oid {
    use const_oid::ObjectIdentifier as O;
    pub const DATA: O = O::new_unwrap("1.2.840.113549.1.7.1");
    pub const SIGNED_DATA: O = O::new_unwrap("1.2.840.113549.1.7.2");
    pub const CONTENT_TYPE: O = O::new_unwrap("1.2.840.113549.1.9.3");
    pub const MESSAGE_DIGEST: O = O::new_unwrap("1.2.840.113549.1.9.4");
    pub const SIGNING_TIME: O = O::new_unwrap("1.2.840.113549.1.9.5");
    pub const SIGNING_CERTIFICATE_V2: O = O::new_unwrap("1.2.840.113549.1.9.16.2.47");
    pub const SIGNATURE_TIMESTAMP_TOKEN: O = O::new_unwrap("1.2.840.113549.1.9.16.2.14");
    pub const TST_INFO: O = O::new_unwrap("1.2.840.113549.1.9.16.1.4");
    pub const SHA256: O = O::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const SHA384: O = O::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub const SHA512: O = O::new_unwrap("2.16.840.1.101.3.4.2.3");
    pub const RSA_ENCRYPTION: O = O::new_unwrap("1.2.840.113549.1.1.1");
    pub const SHA256_WITH_RSA: O = O::new_unwrap("1.2.840.113549.1.1.11");
    pub const SHA384_WITH_RSA: O = O::new_unwrap("1.2.840.113549.1.1.12");
    pub const SHA512_WITH_RSA: O = O::new_unwrap("1.2.840.113549.1.1.13");
    pub const ECDSA_SHA256: O = O::new_unwrap("1.2.840.10045.4.3.2");
    pub const ECDSA_SHA384: O = O::new_unwrap("1.2.840.10045.4.3.3");
    pub const ED25519: O = O::new_unwrap("1.3.101.112");
}

/// A digest algorithm CMS and RFC 3161 may use here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlg {
    Sha256,
    Sha384,
    Sha512,
    /// SM3 (GM/T 0004), with SM2 signatures.
    Sm3,
}

impl DigestAlg {
    pub fn from_oid(o: &ObjectIdentifier) -> Option<Self> {
        match *o {
            oid::SHA256 => Some(DigestAlg::Sha256),
            oid::SHA384 => Some(DigestAlg::Sha384),
            oid::SHA512 => Some(DigestAlg::Sha512),
            crate::core::sm2::SM3 => Some(DigestAlg::Sm3),
            _ => None,
        }
    }
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            DigestAlg::Sha256 => oid::SHA256,
            DigestAlg::Sha384 => oid::SHA384,
            DigestAlg::Sha512 => oid::SHA512,
            DigestAlg::Sm3 => crate::core::sm2::SM3,
        }
    }
    /// A running digest (documents of any size are fed in pieces).
    pub fn hasher(self) -> Hasher {
        Hasher(match self {
            DigestAlg::Sha256 => Running::Ring(ring::digest::Context::new(&ring::digest::SHA256)),
            DigestAlg::Sha384 => Running::Ring(ring::digest::Context::new(&ring::digest::SHA384)),
            DigestAlg::Sha512 => Running::Ring(ring::digest::Context::new(&ring::digest::SHA512)),
            DigestAlg::Sm3 => Running::Sm3(sm3::Sm3::default()),
        })
    }
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }
    /// Digest output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            DigestAlg::Sha256 | DigestAlg::Sm3 => 32,
            DigestAlg::Sha384 => 48,
            DigestAlg::Sha512 => 64,
        }
    }
    /// AlgorithmIdentifier (parameters absent, RFC 5754).
    pub fn identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }
}

/// A digest being computed.
pub struct Hasher(Running);

enum Running {
    Ring(ring::digest::Context),
    Sm3(sm3::Sm3),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Running::Ring(c) => c.update(data),
            Running::Sm3(h) => sm3::Digest::update(h, data),
        }
    }
    pub fn finish(self) -> Vec<u8> {
        match self.0 {
            Running::Ring(c) => c.finish().as_ref().to_vec(),
            Running::Sm3(h) => sm3::Digest::finalize(h).to_vec(),
        }
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

/// A key that signs CMS signer infos.
pub trait CmsSigner {
    /// The digest to use with this key and the signatureAlgorithm to write.
    fn algorithms(&self) -> (DigestAlg, AlgorithmIdentifierOwned);
    /// Signs `data` (ECDSA: DER signature; Ed25519: raw).
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>>;
}

impl CmsSigner for rcgen::KeyPair {
    fn algorithms(&self) -> (DigestAlg, AlgorithmIdentifierOwned) {
        let id = |oid: ObjectIdentifier, parameters: Option<Any>| AlgorithmIdentifierOwned {
            oid,
            parameters,
        };
        let alg = self.algorithm();
        if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            (DigestAlg::Sha384, id(oid::ECDSA_SHA384, None))
        } else if alg == &rcgen::PKCS_ED25519 {
            // RFC 8419: Ed25519 with signed attributes uses SHA-512 as the digest.
            (DigestAlg::Sha512, id(oid::ED25519, None))
        } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            (DigestAlg::Sha256, id(oid::ECDSA_SHA256, None))
        } else {
            (
                DigestAlg::Sha256,
                id(oid::SHA256_WITH_RSA, Some(Any::null())),
            )
        }
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        rcgen::SigningKey::sign(self, data).map_err(|e| Error::Signing(e.to_string()))
    }
}

/// One of ecca's own keys (the TSA's) as a CMS signer.
#[derive(Debug, Clone, Copy)]
pub struct CaKey<'a>(pub &'a dyn crate::core::keys::Signer);

impl CmsSigner for CaKey<'_> {
    fn algorithms(&self) -> (DigestAlg, AlgorithmIdentifierOwned) {
        use crate::core::keys::CaKeyAlg;
        let digest = match self.0.algorithm() {
            CaKeyAlg::P256 => DigestAlg::Sha256,
            CaKeyAlg::P384 => DigestAlg::Sha384,
            CaKeyAlg::Ed25519 => DigestAlg::Sha512,
            CaKeyAlg::Sm2 => DigestAlg::Sm3,
        };
        (
            digest,
            crate::core::revocation::signature_algorithm(self.0.algorithm()),
        )
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        self.0.sign(data)
    }
}

/// ESS IssuerSerial (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial: SerialNumber,
}

/// ESSCertIDv2 with the DEFAULT hashAlgorithm (SHA-256) left out, as DER requires.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    issuer_serial: Option<IssuerSerial>,
}

/// SigningCertificateV2 (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

fn der_err(e: der::Error) -> Error {
    Error::InvalidArgument(format!("CMS: {e}"))
}

fn attr(oid: ObjectIdentifier, value: Any) -> Result<Attribute> {
    let mut values = SetOfVec::new();
    values.insert(value).map_err(der_err)?;
    Ok(Attribute { oid, values })
}

fn any_of<T: Encode>(v: &T) -> Result<Any> {
    Any::from_der(&v.to_der().map_err(der_err)?).map_err(der_err)
}

/// signingTime: UTCTime through 2049 (RFC 5652 §11.3).
fn time_any(unix: i64) -> Result<Any> {
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(unix.max(0) as u64))
        .map_err(der_err)?;
    if dt.year() < 2050 {
        any_of(&UtcTime::from_date_time(dt).map_err(der_err)?)
    } else {
        any_of(&GeneralizedTime::from_date_time(dt))
    }
}

/// Which object identifiers a SignedData is written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmsFormat {
    /// RFC 5652: id-signedData, id-data (SM2 signatures as SM3withSM2).
    Rfc5652,
    /// GM/T 0010 (GB/T 35275): signedData 1.2.156.10197.6.1.4.2.2, data ...2.1, SM2
    /// signatures as sm2-1 (1.2.156.10197.1.301.1).
    GmT0010,
}

impl CmsFormat {
    /// `rfc5652` or `gmt0010`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "rfc5652" => Some(CmsFormat::Rfc5652),
            "gmt0010" => Some(CmsFormat::GmT0010),
            _ => None,
        }
    }

    fn signed_data(self) -> ObjectIdentifier {
        match self {
            CmsFormat::Rfc5652 => oid::SIGNED_DATA,
            CmsFormat::GmT0010 => crate::core::sm2::GM_SIGNED_DATA,
        }
    }
}

/// True for the content types that mean "data" (RFC 5652 or GM/T 0010).
pub fn is_data(content_type: &ObjectIdentifier) -> bool {
    *content_type == oid::DATA || *content_type == crate::core::sm2::GM_DATA
}

/// What to put in a signer info.
#[derive(Debug)]
pub struct SignParams<'a> {
    /// eContentType: id-data for documents (written as GM/T 0010's data in that format),
    /// id-ct-TSTInfo for timestamp tokens.
    pub content_type: ObjectIdentifier,
    pub format: CmsFormat,
    /// For an attached eContent (timestamp tokens); None: detached.
    pub econtent: Option<&'a [u8]>,
    /// The content's digest with the signer's digest algorithm.
    pub content_digest: &'a [u8],
    pub signer_cert: &'a [u8],
    /// Further certificates to include (chain).
    pub chain: &'a [Vec<u8>],
    pub include_certs: bool,
    pub signing_time: Option<i64>,
}

/// Builds a SignedData with one signer (CAdES-BES attributes). Returns the ContentInfo DER.
pub fn sign(params: &SignParams<'_>, signer: &dyn CmsSigner) -> Result<Vec<u8>> {
    let (digest_alg, mut sig_alg) = signer.algorithms();
    let mut content_type = params.content_type;
    if params.format == CmsFormat::GmT0010 {
        if content_type == oid::DATA {
            content_type = crate::core::sm2::GM_DATA;
        }
        if sig_alg.oid == crate::core::sm2::SM3_WITH_SM2 {
            sig_alg.oid = crate::core::sm2::SM2_SIGN;
        }
    }
    if params.content_digest.len() != digest_alg.output_len() {
        return Err(Error::Internal(
            "content digest length does not match the signer's digest".into(),
        ));
    }
    let cert = Certificate::from_der(params.signer_cert).map_err(der_err)?;
    let issuer_serial = IssuerSerial {
        issuer: vec![GeneralName::DirectoryName(
            cert.tbs_certificate.issuer.clone(),
        )],
        serial: cert.tbs_certificate.serial_number.clone(),
    };
    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(DigestAlg::Sha256.digest(params.signer_cert))
                .map_err(der_err)?,
            issuer_serial: Some(issuer_serial),
        }],
    };
    let mut attrs = SetOfVec::new();
    attrs
        .insert(attr(oid::CONTENT_TYPE, any_of(&content_type)?)?)
        .map_err(der_err)?;
    attrs
        .insert(attr(
            oid::MESSAGE_DIGEST,
            any_of(&OctetString::new(params.content_digest).map_err(der_err)?)?,
        )?)
        .map_err(der_err)?;
    if let Some(t) = params.signing_time {
        attrs
            .insert(attr(oid::SIGNING_TIME, time_any(t)?)?)
            .map_err(der_err)?;
    }
    attrs
        .insert(attr(oid::SIGNING_CERTIFICATE_V2, any_of(&ess)?)?)
        .map_err(der_err)?;
    // The signature covers the DER of the attributes as a SET OF (RFC 5652 §5.4).
    let signature = signer.sign(&attrs.to_der().map_err(der_err)?)?;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(cms::cert::IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer.clone(),
            serial_number: cert.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: digest_alg.identifier(),
        signed_attrs: Some(attrs),
        signature_algorithm: sig_alg,
        signature: OctetString::new(signature).map_err(der_err)?,
        unsigned_attrs: None,
    };
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms
        .insert(digest_alg.identifier())
        .map_err(der_err)?;
    let certificates = if params.include_certs {
        let mut set = SetOfVec::new();
        for der in std::iter::once(params.signer_cert).chain(params.chain.iter().map(Vec::as_slice))
        {
            let c = Certificate::from_der(der).map_err(der_err)?;
            set.insert(cms::cert::CertificateChoices::Certificate(c))
                .map_err(der_err)?;
        }
        Some(CertificateSet(set))
    } else {
        None
    };
    let econtent = match params.econtent {
        Some(bytes) => Some(any_of(&OctetString::new(bytes).map_err(der_err)?)?),
        None => None,
    };
    let mut infos = SetOfVec::new();
    infos.insert(signer_info).map_err(der_err)?;
    let signed = SignedData {
        // RFC 5652 §5.1: v3 when eContentType is not id-data.
        version: if is_data(&content_type) {
            CmsVersion::V1
        } else {
            CmsVersion::V3
        },
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: content_type,
            econtent,
        },
        certificates,
        crls: None,
        signer_infos: SignerInfos(infos),
    };
    ContentInfo {
        content_type: params.format.signed_data(),
        content: any_of(&signed)?,
    }
    .to_der()
    .map_err(der_err)
}

/// Adds an RFC 3161 timestamp token as the first signer's unsigned attribute (CAdES-T).
pub fn add_timestamp(content_info_der: &[u8], token_der: &[u8]) -> Result<Vec<u8>> {
    let outer = ContentInfo::from_der(content_info_der)
        .map_err(der_err)?
        .content_type;
    let mut signed = signed_data(content_info_der)?;
    let mut infos: Vec<SignerInfo> = signed.signer_infos.0.into_vec();
    let first = infos
        .first_mut()
        .ok_or_else(|| Error::InvalidArgument("CMS has no signer".into()))?;
    let token = Any::from_der(token_der).map_err(der_err)?;
    let mut unsigned = first.unsigned_attrs.take().unwrap_or_default();
    unsigned
        .insert(attr(oid::SIGNATURE_TIMESTAMP_TOKEN, token)?)
        .map_err(der_err)?;
    first.unsigned_attrs = Some(unsigned);
    signed.signer_infos = SignerInfos(SetOfVec::try_from(infos).map_err(der_err)?);
    ContentInfo {
        content_type: outer,
        content: any_of(&signed)?,
    }
    .to_der()
    .map_err(der_err)
}

/// Parses a ContentInfo holding SignedData (RFC 5652 or GM/T 0010).
pub fn signed_data(content_info_der: &[u8]) -> Result<SignedData> {
    let ci = ContentInfo::from_der(content_info_der)
        .map_err(|e| Error::InvalidArgument(format!("not a CMS ContentInfo: {e}")))?;
    if ci.content_type != oid::SIGNED_DATA && ci.content_type != crate::core::sm2::GM_SIGNED_DATA {
        return Err(Error::InvalidArgument(format!(
            "CMS content type {} is not signedData",
            ci.content_type
        )));
    }
    ci.content
        .decode_as::<SignedData>()
        .map_err(|e| Error::InvalidArgument(format!("SignedData does not parse: {e}")))
}

/// The signature value of the first signer (what a timestamp must cover).
pub fn first_signature(signed: &SignedData) -> Result<Vec<u8>> {
    signed
        .signer_infos
        .0
        .iter()
        .next()
        .map(|s| s.signature.as_bytes().to_vec())
        .ok_or_else(|| Error::InvalidArgument("CMS has no signer".into()))
}

/// A signer info whose signature verified.
#[derive(Clone, Debug)]
pub struct CheckedSigner {
    pub cert_der: Vec<u8>,
    /// Every certificate carried in the SignedData (for path building).
    pub certs: Vec<Vec<u8>>,
    pub signing_time: Option<i64>,
    pub signature: Vec<u8>,
    /// The timestamp token attribute (CAdES-T), unverified.
    pub timestamp_token: Option<Vec<u8>>,
    pub digest_alg: DigestAlg,
}

fn certs_of(signed: &SignedData) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for c in signed.certificates.iter().flat_map(|s| s.0.iter()) {
        if let cms::cert::CertificateChoices::Certificate(cert) = c {
            out.push(cert.to_der().map_err(der_err)?);
        }
    }
    Ok(out)
}

fn attribute(attrs: &SetOfVec<Attribute>, oid: ObjectIdentifier) -> Result<Option<&Any>> {
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let first = found.next();
    if found.next().is_some() {
        return Err(Error::InvalidArgument(format!(
            "attribute {oid} appears twice"
        )));
    }
    match first {
        None => Ok(None),
        Some(a) if a.values.len() == 1 => Ok(a.values.iter().next()),
        Some(_) => Err(Error::InvalidArgument(format!(
            "attribute {oid} must have exactly one value"
        ))),
    }
}

fn signer_cert(signed: &SignedData, sid: &SignerIdentifier, extra: &[Vec<u8>]) -> Result<Vec<u8>> {
    let mut candidates = certs_of(signed)?;
    candidates.extend(extra.iter().cloned());
    for der in candidates {
        let c = Certificate::from_der(&der).map_err(der_err)?;
        let hit = match sid {
            SignerIdentifier::IssuerAndSerialNumber(is) => {
                c.tbs_certificate.issuer == is.issuer
                    && c.tbs_certificate.serial_number == is.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => {
                let (_, x) = X509Certificate::from_der(&der)
                    .map_err(|e| Error::InvalidArgument(e.to_string()))?;
                x.iter_extensions().any(|e| {
                    matches!(e.parsed_extension(), x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) if k.0 == ski.0.as_bytes())
                })
            }
        };
        if hit {
            return Ok(der);
        }
    }
    Err(Error::InvalidArgument(
        "the signer's certificate is neither in the signature nor given".into(),
    ))
}

/// Verifies `signature` over `data` with the key of `cert_der`; `sig_alg` as in the signer info.
fn verify_raw(
    cert_der: &[u8],
    sig_alg: &AlgorithmIdentifierOwned,
    digest: DigestAlg,
    data: &[u8],
    signature: &[u8],
) -> Result<()> {
    // openssl writes rsaEncryption as the signature algorithm; the digest algorithm says which hash.
    let alg = if sig_alg.oid == oid::RSA_ENCRYPTION {
        let oid = match digest {
            DigestAlg::Sha256 => oid::SHA256_WITH_RSA,
            DigestAlg::Sha384 => oid::SHA384_WITH_RSA,
            DigestAlg::Sha512 => oid::SHA512_WITH_RSA,
            DigestAlg::Sm3 => {
                return Err(Error::InvalidArgument(
                    "RSA with SM3 is not a signature algorithm ecca verifies".into(),
                ));
            }
        };
        AlgorithmIdentifierOwned {
            oid,
            parameters: Some(Any::null()),
        }
    } else {
        sig_alg.clone()
    };
    let alg_der = alg.to_der().map_err(der_err)?;
    let (_, c) =
        X509Certificate::from_der(cert_der).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let (_, a) = x509_parser::x509::AlgorithmIdentifier::from_der(&alg_der)
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    crate::core::keys::verify_signature(
        c.public_key(),
        &a,
        signature,
        data,
        crate::core::sm2::DEFAULT_ID,
    )
    .map_err(|_| {
        Error::InvalidArgument("the signature does not verify with the signer's key".into())
    })
}

/// The digest algorithm of the first signer, so the caller can hash the (detached) content.
pub fn digest_alg(signed: &SignedData) -> Result<DigestAlg> {
    let si = signed
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| Error::InvalidArgument("CMS has no signer".into()))?;
    DigestAlg::from_oid(&si.digest_alg.oid).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "digest algorithm {} is not supported (SHA-256/384/512)",
            si.digest_alg.oid
        ))
    })
}

/// Checks the first signer of a SignedData over content with digest `content_digest`:
/// content type, message digest, ESS signing certificate (when present) and the signature.
pub fn check_signer(
    signed: &SignedData,
    content_digest: &[u8],
    extra_certs: &[Vec<u8>],
) -> Result<CheckedSigner> {
    let si = signed
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or_else(|| Error::InvalidArgument("CMS has no signer".into()))?;
    let digest = digest_alg(signed)?;
    let attrs = si.signed_attrs.as_ref().ok_or_else(|| {
        Error::InvalidArgument("signatures without signed attributes are not accepted".into())
    })?;
    let ct = attribute(attrs, oid::CONTENT_TYPE)?
        .ok_or_else(|| Error::InvalidArgument("signed attribute contentType is missing".into()))?
        .decode_as::<ObjectIdentifier>()
        .map_err(der_err)?;
    if ct != signed.encap_content_info.econtent_type {
        return Err(Error::InvalidArgument(
            "contentType attribute differs from the encapsulated content type".into(),
        ));
    }
    let md = attribute(attrs, oid::MESSAGE_DIGEST)?
        .ok_or_else(|| Error::InvalidArgument("signed attribute messageDigest is missing".into()))?
        .decode_as::<OctetString>()
        .map_err(der_err)?;
    if md.as_bytes() != content_digest {
        return Err(Error::InvalidArgument(
            "message digest mismatch: the document was changed".into(),
        ));
    }
    let signing_time = match attribute(attrs, oid::SIGNING_TIME)? {
        None => None,
        Some(v) => Some(
            x509_cert::time::Time::from_der(&v.to_der().map_err(der_err)?)
                .map_err(der_err)?
                .to_unix_duration()
                .as_secs() as i64,
        ),
    };
    let cert_der = signer_cert(signed, &si.sid, extra_certs)?;
    if let Some(v) = attribute(attrs, oid::SIGNING_CERTIFICATE_V2)? {
        let ess = v.decode_as::<SigningCertificateV2>().map_err(der_err)?;
        let first = ess
            .certs
            .first()
            .ok_or_else(|| Error::InvalidArgument("empty signingCertificateV2".into()))?;
        if first.cert_hash.as_bytes() != DigestAlg::Sha256.digest(&cert_der) {
            return Err(Error::InvalidArgument(
                "signingCertificateV2 does not name the signer's certificate".into(),
            ));
        }
    }
    verify_raw(
        &cert_der,
        &si.signature_algorithm,
        digest,
        &attrs.to_der().map_err(der_err)?,
        si.signature.as_bytes(),
    )?;
    let timestamp_token = match &si.unsigned_attrs {
        Some(u) => match attribute(u, oid::SIGNATURE_TIMESTAMP_TOKEN)? {
            Some(v) => Some(v.to_der().map_err(der_err)?),
            None => None,
        },
        None => None,
    };
    Ok(CheckedSigner {
        cert_der,
        certs: certs_of(signed)?,
        signing_time,
        signature: si.signature.as_bytes().to_vec(),
        timestamp_token,
        digest_alg: digest,
    })
}

/// A checked RFC 3161 token.
#[derive(Clone, Debug)]
pub struct CheckedToken {
    pub gen_time: i64,
    pub tsa_cert_der: Vec<u8>,
    pub certs: Vec<Vec<u8>>,
    pub serial: Vec<u8>,
    pub policy: String,
}

/// Checks a timestamp token: its signature, its TSTInfo, that it covers `data` (the imprint)
/// and that the TSA certificate has the critical timeStamping EKU. Path validation of the TSA
/// certificate is the caller's.
pub fn check_token(token_der: &[u8], data: &[u8], extra_certs: &[Vec<u8>]) -> Result<CheckedToken> {
    let signed = signed_data(token_der)?;
    if signed.encap_content_info.econtent_type != oid::TST_INFO {
        return Err(Error::InvalidArgument(
            "timestamp token does not hold a TSTInfo".into(),
        ));
    }
    let econtent = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument("timestamp token without TSTInfo".into()))?
        .decode_as::<OctetString>()
        .map_err(der_err)?;
    let tst = x509_tsp::TstInfo::from_der(econtent.as_bytes())
        .map_err(|e| Error::InvalidArgument(format!("TSTInfo: {e}")))?;
    let digest = digest_alg(&signed)?;
    let checked = check_signer(&signed, &digest.digest(econtent.as_bytes()), extra_certs)?;
    let imprint_alg =
        DigestAlg::from_oid(&tst.message_imprint.hash_algorithm.oid).ok_or_else(|| {
            Error::InvalidArgument("timestamp imprint uses an unsupported hash".into())
        })?;
    if tst.message_imprint.hashed_message.as_bytes() != imprint_alg.digest(data) {
        return Err(Error::InvalidArgument(
            "timestamp does not cover this signature (imprint mismatch)".into(),
        ));
    }
    let (_, tsa) = X509Certificate::from_der(&checked.cert_der)
        .map_err(|e| Error::InvalidArgument(e.to_string()))?;
    let eku =
        tsa.extended_key_usage().ok().flatten().ok_or_else(|| {
            Error::InvalidArgument("TSA certificate has no extendedKeyUsage".into())
        })?;
    if !eku.critical || !eku.value.time_stamping {
        return Err(Error::InvalidArgument(
            "TSA certificate lacks the critical timeStamping EKU".into(),
        ));
    }
    Ok(CheckedToken {
        gen_time: tst.gen_time.to_unix_duration().as_secs() as i64,
        tsa_cert_der: checked.cert_der,
        certs: checked.certs,
        serial: tst.serial_number.as_bytes().to_vec(),
        policy: tst.policy.to_string(),
    })
}

/// Parses a dotted OID from user input. Arcs must fit in 32 bits: const-oid 0.9 overflows
/// (a panic in debug builds) on larger ones, so they are refused here first.
pub fn parse_oid(s: &str) -> Result<ObjectIdentifier> {
    let bad = || {
        Error::field(
            "oid",
            format!("{s:?} is not a dotted OID (arcs up to 4294967295)"),
        )
    };
    if s.len() > 128
        || s.split('.').count() < 2
        || !s
            .split('.')
            .all(|a| !a.is_empty() && a.parse::<u32>().is_ok())
    {
        return Err(bad());
    }
    ObjectIdentifier::from_str(s).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_oid_arcs_are_refused_not_panicked_on() {
        assert!(parse_oid("2.25.329800735698586629295641978511506172918").is_err());
        assert!(parse_oid("1.2..3").is_err());
        assert!(parse_oid("1").is_err());
        assert_eq!(
            parse_oid("1.3.6.1.4.1.32473.1.1").unwrap().to_string(),
            "1.3.6.1.4.1.32473.1.1"
        );
    }
}
