//! Revocation reasons and CRL building (RFC 5280 §5): full CRLs and delta CRLs.
use der::Decode;
use der::asn1::{BitString, GeneralizedTime, OctetString, UtcTime};
use der::{Encode, asn1::Ia5String};
use x509_cert::crl::{RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber, FreshestCrl};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::ext::{AsExtension, Extension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::time::Time;

use crate::core::error::{Error, Result};
use crate::core::issue::IssuerRef;
use crate::core::keys::CaKeyAlg;

/// RFC 5280 CRLReason values ecca accepts for end-entity certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Unspecified = 0,
    KeyCompromise = 1,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    PrivilegeWithdrawn = 9,
}

impl Reason {
    /// All accepted reasons.
    pub const ALL: [Reason; 6] = [
        Reason::Unspecified,
        Reason::KeyCompromise,
        Reason::AffiliationChanged,
        Reason::Superseded,
        Reason::CessationOfOperation,
        Reason::PrivilegeWithdrawn,
    ];

    /// RFC 5280 name, as openssl prints it.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "keyCompromise",
            Reason::AffiliationChanged => "affiliationChanged",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessationOfOperation",
            Reason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    /// From an RFC 5280 code; explains codes ecca does not accept.
    pub fn from_code(code: i64) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| *r as i64 == code)
            .ok_or_else(|| {
                let why = match code {
                    2 | 10 => "is for CA certificates",
                    6 => "(certificateHold) is not supported: revocation here is permanent",
                    8 => "(removeFromCRL) is only meaningful in delta CRLs",
                    _ => "is not an RFC 5280 reason code",
                };
                Error::field("reason", format!("reason code {code} {why}"))
            })
    }

    /// From a name (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|r| r.name()).collect();
                Error::field(
                    "reason",
                    format!("{s:?} is not one of {}", names.join(", ")),
                )
            })
    }

    fn crl_reason(self) -> CrlReason {
        match self {
            Reason::Unspecified => CrlReason::Unspecified,
            Reason::KeyCompromise => CrlReason::KeyCompromise,
            Reason::AffiliationChanged => CrlReason::AffiliationChanged,
            Reason::Superseded => CrlReason::Superseded,
            Reason::CessationOfOperation => CrlReason::CessationOfOperation,
            Reason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        }
    }
}

/// One revoked certificate, as a CRL or OCSP response needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial, big-endian magnitude.
    pub serial: Vec<u8>,
    /// Revocation time, Unix seconds.
    pub revoked_at: i64,
    pub reason: Reason,
    /// When the key is known or suspected to have been compromised, Unix seconds.
    pub invalidity_date: Option<i64>,
}

/// What a CRL says beyond its entries.
#[derive(Clone, Debug)]
pub struct CrlParams<'a> {
    pub number: u64,
    pub this_update: i64,
    pub next_update: i64,
    /// For a delta CRL: the CRL number of its base (deltaCRLIndicator).
    pub delta_base: Option<u64>,
    /// For a full CRL: where the delta CRL is (freshestCRL).
    pub freshest_url: Option<&'a str>,
}

/// The AlgorithmIdentifier of a CA key's signatures (no parameters for ECDSA, Ed25519 and
/// SM3withSM2).
pub fn signature_algorithm(alg: CaKeyAlg) -> AlgorithmIdentifierOwned {
    let oid = match alg {
        CaKeyAlg::P256 => const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
        CaKeyAlg::P384 => const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
        CaKeyAlg::Ed25519 => const_oid::db::rfc8410::ID_ED_25519,
        CaKeyAlg::Sm2 => crate::core::sm2::SM3_WITH_SM2,
    };
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

fn der_err(e: der::Error) -> Error {
    Error::Internal(format!("DER encoding: {e}"))
}

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
pub fn x509_time(unix: i64) -> Result<Time> {
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(unix.max(0) as u64))
        .map_err(der_err)?;
    Ok(if dt.year() < 2050 {
        Time::UtcTime(UtcTime::from_date_time(dt).map_err(der_err)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_date_time(dt))
    })
}

/// GeneralizedTime for a Unix time.
pub fn generalized_time(unix: i64) -> Result<GeneralizedTime> {
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(unix.max(0) as u64))
        .map_err(der_err)
}

/// Wraps an extension value.
pub fn extension<T: AsExtension>(value: &T, critical: bool, subject: &Name) -> Result<Extension> {
    let mut ext = value.to_extension(subject, &[]).map_err(der_err)?;
    ext.critical = critical;
    Ok(ext)
}

fn uri(url: &str) -> Result<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(
        Ia5String::new(url).map_err(|_| Error::Config(format!("URL {url:?} is not ASCII")))?,
    ))
}

/// A distribution point naming one URL.
pub fn distribution_point(url: &str) -> Result<DistributionPoint> {
    Ok(DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
        reasons: None,
        crl_issuer: None,
    })
}

fn entry(e: &RevokedEntry, issuer: &Name) -> Result<RevokedCert> {
    let mut exts = Vec::new();
    // RFC 5280 §5.3.1: the reason code SHOULD be absent rather than "unspecified".
    if e.reason != Reason::Unspecified {
        exts.push(extension(&e.reason.crl_reason(), false, issuer)?);
    }
    if let Some(t) = e.invalidity_date {
        exts.push(Extension {
            extn_id: const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE,
            critical: false,
            extn_value: OctetString::new(generalized_time(t)?.to_der().map_err(der_err)?)
                .map_err(der_err)?,
        });
    }
    Ok(RevokedCert {
        serial_number: SerialNumber::new(&e.serial).map_err(der_err)?,
        revocation_date: x509_time(e.revoked_at)?,
        crl_entry_extensions: (!exts.is_empty()).then_some(exts),
    })
}

/// Builds a CRL (full, or delta when `delta_base` is set), lints it and signs it: a CRL that
/// fails a lint is never signed.
pub fn build_crl(
    params: &CrlParams<'_>,
    entries: &[RevokedEntry],
    by: IssuerRef<'_>,
) -> Result<Vec<u8>> {
    let ca = by.ca();
    let issuer = Name::from_der(&ca.subject_der).map_err(der_err)?;
    let mut exts = vec![
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(OctetString::new(ca.key_id.as_slice()).map_err(der_err)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
            &issuer,
        )?,
        extension(
            &CrlNumber(der::asn1::Uint::new(&params.number.to_be_bytes()).map_err(der_err)?),
            false,
            &issuer,
        )?,
    ];
    if let Some(base) = params.delta_base {
        exts.push(extension(
            &BaseCrlNumber(der::asn1::Uint::new(&base.to_be_bytes()).map_err(der_err)?),
            true,
            &issuer,
        )?);
    }
    if let Some(url) = params.freshest_url {
        exts.push(extension(
            &FreshestCrl(vec![distribution_point(url)?]),
            false,
            &issuer,
        )?);
    }
    let tbs = encode_tbs(
        &TbsCertList {
            version: x509_cert::Version::V2,
            signature: signature_algorithm(by.algorithm()),
            issuer: issuer.clone(),
            this_update: x509_time(params.this_update)?,
            next_update: Some(x509_time(params.next_update)?),
            revoked_certificates: None,
            crl_extensions: Some(exts),
        },
        entries,
        &issuer,
    )?;
    let signature = signature_algorithm(by.algorithm());
    let policy = crate::core::lint::CrlPolicy {
        issuer_name: &ca.subject_der,
        issuer_key_id: &ca.key_id,
        signature: &signature,
    };
    crate::core::lint::lint_crl(&tbs, &policy)?;
    let signature = by.sign_linted(&tbs)?;
    signed_der(&tbs, by.algorithm(), &signature)
}

/// SEQUENCE { tbs, signatureAlgorithm, signature BIT STRING }: a certificate or CRL from its
/// signed part.
pub fn signed_der(tbs: &[u8], alg: CaKeyAlg, signature: &[u8]) -> Result<Vec<u8>> {
    let mut rest = signature_algorithm(alg).to_der().map_err(der_err)?;
    BitString::from_bytes(signature)
        .and_then(|b| b.encode_to_vec(&mut rest))
        .map_err(der_err)?;
    sequence(&[tbs, &rest])
}

/// DER of TBSCertList with `entries` as revokedCertificates, encoded one entry at a time.
///
/// Every field is encoded by x509-cert; only SEQUENCE and [0] headers are written here, so a
/// million entries never exist as a million `RevokedCert` values at once (see the `crl_scale`
/// example for the numbers). `tbs.revoked_certificates` must be None.
fn encode_tbs(tbs: &TbsCertList, entries: &[RevokedEntry], issuer: &Name) -> Result<Vec<u8>> {
    let mut head = Vec::new();
    tbs.version.encode_to_vec(&mut head).map_err(der_err)?;
    tbs.signature.encode_to_vec(&mut head).map_err(der_err)?;
    tbs.issuer.encode_to_vec(&mut head).map_err(der_err)?;
    tbs.this_update.encode_to_vec(&mut head).map_err(der_err)?;
    if let Some(t) = &tbs.next_update {
        t.encode_to_vec(&mut head).map_err(der_err)?;
    }
    let mut revoked = Vec::with_capacity(entries.len() * 48);
    for e in entries {
        entry(e, issuer)?
            .encode_to_vec(&mut revoked)
            .map_err(der_err)?;
    }
    let revoked = if entries.is_empty() {
        Vec::new()
    } else {
        sequence(&[&revoked])?
    };
    let mut tail = Vec::new();
    if let Some(exts) = &tbs.crl_extensions {
        let inner = exts.to_der().map_err(der_err)?;
        let tag = der::Tag::ContextSpecific {
            constructed: true,
            number: der::TagNumber::N0,
        };
        der::Header::new(tag, len(inner.len())?)
            .and_then(|h| h.encode_to_vec(&mut tail))
            .map_err(der_err)?;
        tail.extend_from_slice(&inner);
    }
    sequence(&[&head, &revoked, &tail])
}

fn len(n: usize) -> Result<der::Length> {
    der::Length::try_from(n).map_err(der_err)
}

/// A SEQUENCE whose contents are the concatenation of already-encoded parts.
fn sequence(parts: &[&[u8]]) -> Result<Vec<u8>> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(total + 6);
    der::Header::new(der::Tag::Sequence, len(total)?)
        .and_then(|h| h.encode_to_vec(&mut out))
        .map_err(der_err)?;
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::test_ca;

    #[test]
    fn a_crl_that_fails_a_lint_is_never_signed() {
        let (ca, key) = test_ca();
        let by = IssuerRef::new(&ca, &key).unwrap();
        let params = CrlParams {
            number: 7,
            this_update: 1_800_000_000,
            next_update: 1_800_086_400,
            delta_base: None,
            freshest_url: None,
        };
        let ok = RevokedEntry {
            serial: vec![0x41, 1, 2],
            revoked_at: 1_799_999_000,
            reason: Reason::KeyCompromise,
            invalidity_date: None,
        };
        build_crl(&params, std::slice::from_ref(&ok), by).unwrap();
        assert_eq!(key.count(), 1);
        // What a corrupt store could hand over: an empty or zero serial, a revocation after the CRL.
        let bad = [
            (
                RevokedEntry {
                    serial: Vec::new(),
                    ..ok.clone()
                },
                "e_crl_der",
            ),
            (
                RevokedEntry {
                    serial: vec![0],
                    ..ok.clone()
                },
                "e_crl_entry_serial",
            ),
            (
                RevokedEntry {
                    revoked_at: 1_800_000_001,
                    ..ok.clone()
                },
                "e_crl_entry_date",
            ),
        ];
        for (entry, want) in bad {
            match build_crl(&params, &[ok.clone(), entry], by) {
                Err(Error::LintFailed { lint, .. }) => assert_eq!(lint, want),
                other => panic!("{want}: {other:?}"),
            }
        }
        let backwards = CrlParams {
            next_update: 1_800_000_000,
            ..params
        };
        assert!(build_crl(&backwards, &[], by).is_err());
        assert_eq!(key.count(), 1, "no refused CRL reached the key");
    }

    #[test]
    fn reasons_round_trip_and_refusals_explain() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.name()).unwrap(), r);
            assert_eq!(Reason::from_code(r as i64).unwrap(), r);
        }
        assert!(
            Reason::from_code(6)
                .unwrap_err()
                .to_string()
                .contains("certificateHold")
        );
        assert!(
            Reason::parse("bogus")
                .unwrap_err()
                .to_string()
                .contains("keyCompromise")
        );
    }

    #[test]
    fn streamed_tbs_equals_the_crate_encoding() {
        let name = [
            0x30, 0x0f, 0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x04,
        ];
        let issuer = Name::from_der(&[&name[..], b"test"].concat()).unwrap();
        let entries: Vec<RevokedEntry> = (0..300u32)
            .map(|i| RevokedEntry {
                serial: [0x41u8, 0, 0, 0]
                    .iter()
                    .copied()
                    .chain(i.to_be_bytes())
                    .collect(),
                revoked_at: 1_800_000_000 + i64::from(i),
                reason: Reason::ALL[i as usize % Reason::ALL.len()],
                invalidity_date: (i % 2 == 0).then_some(1_790_000_000),
            })
            .collect();
        for entries in [&entries[..], &[][..]] {
            let number = CrlNumber(der::asn1::Uint::new(&[7]).unwrap());
            let mut tbs = TbsCertList {
                version: x509_cert::Version::V2,
                signature: signature_algorithm(CaKeyAlg::P256),
                issuer: issuer.clone(),
                this_update: x509_time(1_800_000_000).unwrap(),
                next_update: Some(x509_time(1_800_086_400).unwrap()),
                revoked_certificates: None,
                crl_extensions: Some(vec![extension(&number, false, &issuer).unwrap()]),
            };
            let streamed = encode_tbs(&tbs, entries, &issuer).unwrap();
            let all: Vec<RevokedCert> =
                entries.iter().map(|e| entry(e, &issuer).unwrap()).collect();
            tbs.revoked_certificates = (!all.is_empty()).then_some(all);
            assert_eq!(streamed, tbs.to_der().unwrap());
        }
    }

    #[test]
    fn time_encoding_switches_in_2050() {
        assert!(matches!(
            x509_time(2_000_000_000).unwrap(),
            Time::UtcTime(_)
        ));
        assert!(matches!(
            x509_time(2_600_000_000).unwrap(),
            Time::GeneralTime(_)
        ));
    }
}
