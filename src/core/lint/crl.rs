//! Lints run on every to-be-signed CRL before the CA key touches it (RFC 5280 §5, and what
//! pkilint's PKIX CRL linter enforces). The TBSCertList is decoded strictly (DER) one entry at a
//! time, so a CRL with a million entries is checked without holding a million decoded entries.
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5280::{ID_CE_CRL_REASONS, ID_CE_INVALIDITY_DATE};
use der::asn1::{OctetString, Uint};
use der::{Decode, Reader, SliceReader, Tag, TagMode, TagNumber};
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::time::Time;

use crate::core::error::{Error, Result};

/// What a CRL is checked against: its issuer.
#[derive(Clone, Copy, Debug)]
pub struct CrlPolicy<'a> {
    /// The CA's subject Name, DER.
    pub issuer_name: &'a [u8],
    /// The CA's subject key identifier.
    pub issuer_key_id: &'a [u8],
    /// The signatureAlgorithm the CA's key produces.
    pub signature: &'a AlgorithmIdentifierOwned,
}

fn fail(lint: &'static str, detail: impl Into<String>) -> Error {
    Error::LintFailed {
        lint,
        object: "CRL",
        detail: detail.into(),
    }
}

const AKI: &str = "2.5.29.35";
const CRL_NUMBER: &str = "2.5.29.20";
const DELTA_INDICATOR: &str = "2.5.29.27";
const FRESHEST: &str = "2.5.29.46";
const IDP: &str = "2.5.29.28";

/// Unix seconds of a Time, and whether its encoding is the one RFC 5280 §5.1.2.4 requires
/// (UTCTime through 2049, GeneralizedTime from 2050).
fn time(t: &Time) -> (i64, bool) {
    let unix = t.to_unix_duration().as_secs() as i64;
    let year = t.to_date_time().year();
    let right = match t {
        Time::UtcTime(_) => year < 2050,
        Time::GeneralTime(_) => year >= 2050,
    };
    (unix, right)
}

/// At most 20 octets (RFC 5280 §5.2.3); `magnitude` is an unsigned INTEGER's value (a
/// negative one does not decode as `Uint`).
fn small_uint(lint: &'static str, what: &str, magnitude: &[u8]) -> Result<()> {
    if magnitude.len() > 20 {
        return Err(fail(lint, format!("{what} is longer than 20 octets")));
    }
    Ok(())
}

/// One revokedCertificates entry, read borrowed from the TBS (no allocation per entry: a
/// million-entry CRL is linted in a fraction of the time it takes to sign). A decoding error
/// is a DER error; a rule broken is the returned refusal.
fn entry<'a, R: Reader<'a>>(e: &mut R, this_update: i64) -> der::Result<Result<()>> {
    let serial = der::asn1::IntRef::decode(e)?;
    let date: Time = e.decode()?;
    let mut verdict = entry_fields(serial.as_bytes(), &date, this_update);
    if !e.is_finished() {
        let mut seen = Seen::default();
        e.sequence(|exts| {
            if exts.is_finished() && verdict.is_ok() {
                verdict = Err(fail("e_crl_der", "empty crlEntryExtensions (SIZE 1..MAX)"));
            }
            while !exts.is_finished() {
                exts.sequence(|x| {
                    let oid: ObjectIdentifier = x.decode()?;
                    let critical = match x.peek_tag()? {
                        Tag::Boolean => Some(bool::decode(x)?),
                        _ => None,
                    };
                    let value = der::asn1::OctetStringRef::decode(x)?;
                    if verdict.is_ok() {
                        verdict = entry_extension(oid, critical, value.as_bytes(), &mut seen);
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    }
    Ok(verdict)
}

fn entry_fields(serial: &[u8], date: &Time, this_update: i64) -> Result<()> {
    if serial.first().is_some_and(|b| b & 0x80 != 0) || serial.iter().all(|b| *b == 0) {
        return Err(fail("e_crl_entry_serial", "serial is not positive"));
    }
    if serial.strip_prefix(&[0]).unwrap_or(serial).len() > 20 {
        return Err(fail(
            "e_crl_entry_serial",
            "serial is longer than 20 octets",
        ));
    }
    let (at, encoded) = time(date);
    if !encoded {
        return Err(fail(
            "e_crl_time_encoding",
            "revocationDate: UTCTime through 2049, GeneralizedTime from 2050",
        ));
    }
    if at > this_update {
        return Err(fail(
            "e_crl_entry_date",
            "revocationDate is after the CRL's thisUpdate",
        ));
    }
    Ok(())
}

/// The entry extensions ecca writes, each at most once.
#[derive(Default)]
struct Seen {
    reason: bool,
    invalidity: bool,
}

fn entry_extension(
    oid: ObjectIdentifier,
    critical: Option<bool>,
    value: &[u8],
    seen: &mut Seen,
) -> Result<()> {
    match critical {
        Some(true) => return Err(fail("e_crl_entry_extension", format!("{oid} is critical"))),
        Some(false) => {
            return Err(fail(
                "e_crl_der",
                format!("{oid}: critical FALSE is encoded (DER omits a DEFAULT value)"),
            ));
        }
        None => {}
    }
    let once = |flag: &mut bool| {
        if std::mem::replace(flag, true) {
            Err(fail(
                "e_crl_entry_extension",
                format!("{oid} appears twice"),
            ))
        } else {
            Ok(())
        }
    };
    if oid == ID_CE_CRL_REASONS {
        once(&mut seen.reason)?;
        let reason = CrlReason::from_der(value)
            .map_err(|e| fail("e_crl_entry_reason", format!("does not decode: {e}")))?;
        match reason {
            CrlReason::Unspecified => Err(fail(
                "e_crl_entry_reason",
                "unspecified must be written as no reasonCode (RFC 5280 §5.3.1)",
            )),
            CrlReason::RemoveFromCRL | CrlReason::CertificateHold => Err(fail(
                "e_crl_entry_reason",
                format!("{reason:?}: revocation here is permanent"),
            )),
            _ => Ok(()),
        }
    } else if oid == ID_CE_INVALIDITY_DATE {
        once(&mut seen.invalidity)?;
        der::asn1::GeneralizedTime::from_der(value)
            .map_err(|e| fail("e_crl_entry_extension", format!("invalidityDate: {e}")))?;
        Ok(())
    } else {
        Err(fail(
            "e_crl_entry_extension",
            format!("{oid} is not an entry extension ecca writes"),
        ))
    }
}

fn extensions(exts: &Extensions, policy: &CrlPolicy<'_>) -> Result<()> {
    let mut seen = Vec::new();
    let mut number = None;
    let mut delta_base = None;
    let mut freshest = false;
    for ext in exts {
        let oid = ext.extn_id.to_string();
        if seen.contains(&oid) {
            return Err(fail("e_crl_extension", format!("{oid} appears twice")));
        }
        let value = ext.extn_value.as_bytes();
        match oid.as_str() {
            AKI => {
                if ext.critical {
                    return Err(fail("e_crl_aki", "authorityKeyIdentifier is critical"));
                }
                let aki = AuthorityKeyIdentifier::from_der(value)
                    .map_err(|e| fail("e_crl_aki", format!("does not decode: {e}")))?;
                let key_id = aki.key_identifier.as_ref().map(OctetString::as_bytes);
                if key_id != Some(policy.issuer_key_id) {
                    return Err(fail(
                        "e_crl_aki",
                        "keyIdentifier is not the CA's subjectKeyIdentifier",
                    ));
                }
            }
            CRL_NUMBER | DELTA_INDICATOR => {
                let n = Uint::from_der(value)
                    .map_err(|e| fail("e_crl_number", format!("{oid} does not decode: {e}")))?;
                small_uint("e_crl_number", &oid, n.as_bytes())?;
                if oid == CRL_NUMBER {
                    if ext.critical {
                        return Err(fail("e_crl_number", "cRLNumber is critical"));
                    }
                    number = Some(n.as_bytes().to_vec());
                } else {
                    if !ext.critical {
                        return Err(fail(
                            "e_crl_delta_indicator",
                            "deltaCRLIndicator must be critical",
                        ));
                    }
                    delta_base = Some(n.as_bytes().to_vec());
                }
            }
            FRESHEST => {
                if ext.critical {
                    return Err(fail("e_crl_extension", "freshestCRL is critical"));
                }
                freshest = true;
            }
            IDP => {}
            other if ext.critical => {
                return Err(fail(
                    "e_crl_extension",
                    format!("unknown critical extension {other}"),
                ));
            }
            other => {
                return Err(fail(
                    "e_crl_extension",
                    format!("{other} is not a CRL extension ecca writes"),
                ));
            }
        }
        seen.push(oid);
    }
    let Some(number) = number else {
        return Err(fail("e_crl_number", "no cRLNumber (RFC 5280 §5.2.3)"));
    };
    if !seen.iter().any(|o| o == AKI) {
        return Err(fail(
            "e_crl_aki",
            "no authorityKeyIdentifier (RFC 5280 §5.2.1)",
        ));
    }
    if let Some(base) = delta_base {
        if freshest {
            return Err(fail(
                "e_crl_delta_indicator",
                "a delta CRL must not point at another delta (freshestCRL)",
            ));
        }
        let as_u128 = |b: &[u8]| b.iter().fold(0u128, |n, d| (n << 8) | u128::from(*d));
        if as_u128(&base) >= as_u128(&number) {
            return Err(fail(
                "e_crl_delta_indicator",
                "the base CRL number must be lower than the delta's own",
            ));
        }
    }
    Ok(())
}

/// Lints a DER TBSCertList.
pub fn lint_crl(tbs_der: &[u8], policy: &CrlPolicy<'_>) -> Result<()> {
    let der_fail = |e: der::Error| fail("e_crl_der", format!("does not decode: {e}"));
    let mut refusal: Option<Error> = None;
    let mut reader = SliceReader::new(tbs_der).map_err(der_fail)?;
    let decoded = reader.sequence(|r| {
        let version: x509_cert::Version = r.decode()?;
        let signature: AlgorithmIdentifierOwned = r.decode()?;
        let issuer = r.tlv_bytes()?;
        let this_update: Time = r.decode()?;
        let next_update = match r.peek_tag() {
            Ok(Tag::UtcTime | Tag::GeneralizedTime) => Some(r.decode::<Time>()?),
            _ => None,
        };
        let (this, this_ok) = time(&this_update);
        let mut entries = None;
        if !r.is_finished() && r.peek_tag()? == Tag::Sequence {
            let mut count = 0usize;
            r.sequence(|list| {
                while !list.is_finished() {
                    let verdict = list.sequence(|e| entry(e, this))?;
                    count += 1;
                    if refusal.is_none()
                        && let Err(problem) = verdict
                    {
                        refusal = Some(problem);
                    }
                }
                Ok(())
            })?;
            entries = Some(count);
        }
        let exts = r.context_specific::<Extensions>(TagNumber::N0, TagMode::Explicit)?;
        Ok((
            version,
            signature,
            issuer.to_vec(),
            (this, this_ok),
            next_update,
            entries,
            exts,
        ))
    });
    let (version, signature, issuer, (this, this_ok), next_update, entries, exts) =
        decoded.map_err(der_fail)?;
    if !reader.is_finished() {
        return Err(fail("e_crl_der", "trailing data after TBSCertList"));
    }
    if version != x509_cert::Version::V2 {
        return Err(fail("e_crl_version", "must be v2 (extensions are present)"));
    }
    if signature != *policy.signature {
        return Err(fail(
            "e_crl_signature_algorithm",
            format!("{} is not the algorithm of the CA's key", signature.oid),
        ));
    }
    if issuer != policy.issuer_name {
        return Err(fail(
            "e_crl_issuer_name",
            "issuer is not byte-identical to the CA's subject",
        ));
    }
    let Some(next_update) = next_update else {
        return Err(fail(
            "e_crl_next_update",
            "no nextUpdate (RFC 5280 §5.1.2.5)",
        ));
    };
    let (next, next_ok) = time(&next_update);
    if !this_ok || !next_ok {
        return Err(fail(
            "e_crl_time_encoding",
            "thisUpdate/nextUpdate: UTCTime through 2049, GeneralizedTime from 2050",
        ));
    }
    if next <= this {
        return Err(fail(
            "e_crl_next_update",
            "nextUpdate is not after thisUpdate",
        ));
    }
    if entries == Some(0) {
        return Err(fail(
            "e_crl_empty_revoked_list",
            "revokedCertificates must be absent, not empty",
        ));
    }
    if let Some(problem) = refusal {
        return Err(problem);
    }
    match exts {
        Some(exts) => extensions(&exts, policy),
        None => Err(fail("e_crl_number", "no extensions, so no cRLNumber")),
    }
}

#[cfg(test)]
mod tests {
    use der::Encode;
    use der::asn1::{GeneralizedTime, OctetString, Uint};
    use x509_cert::crl::{RevokedCert, TbsCertList};
    use x509_cert::ext::Extension;
    use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlNumber};
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;

    use super::*;
    use crate::core::keys::CaKeyAlg;
    use crate::core::revocation::{signature_algorithm, x509_time};

    const NOW: i64 = 1_800_000_000;
    const KEY_ID: [u8; 20] = [7; 20];

    fn issuer() -> Name {
        use std::str::FromStr;
        Name::from_str("CN=Test CA,C=CN").unwrap()
    }

    fn ext(oid: &str, critical: bool, value: Vec<u8>) -> Extension {
        Extension {
            extn_id: oid.parse().unwrap(),
            critical,
            extn_value: OctetString::new(value).unwrap(),
        }
    }

    fn aki(key_id: &[u8]) -> Extension {
        let v = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(key_id).unwrap()),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        ext(AKI, false, v.to_der().unwrap())
    }

    fn number(n: u8, critical: bool) -> Extension {
        ext(
            CRL_NUMBER,
            critical,
            CrlNumber(Uint::new(&[n]).unwrap()).to_der().unwrap(),
        )
    }

    fn revoked(serial: &[u8], at: i64, exts: Vec<Extension>) -> RevokedCert {
        RevokedCert {
            serial_number: SerialNumber::new(serial).unwrap(),
            revocation_date: x509_time(at).unwrap(),
            crl_entry_extensions: (!exts.is_empty()).then_some(exts),
        }
    }

    fn reason(r: CrlReason, critical: bool) -> Extension {
        ext("2.5.29.21", critical, r.to_der().unwrap())
    }

    /// A CRL that passes every lint.
    fn good() -> TbsCertList {
        TbsCertList {
            version: x509_cert::Version::V2,
            signature: signature_algorithm(CaKeyAlg::P256),
            issuer: issuer(),
            this_update: x509_time(NOW).unwrap(),
            next_update: Some(x509_time(NOW + 86_400).unwrap()),
            revoked_certificates: Some(vec![revoked(
                &[0x41, 1, 2, 3],
                NOW - 60,
                vec![reason(CrlReason::KeyCompromise, false)],
            )]),
            crl_extensions: Some(vec![aki(&KEY_ID), number(5, false)]),
        }
    }

    fn lint(tbs: &TbsCertList) -> Result<()> {
        let name = issuer().to_der().unwrap();
        let alg = signature_algorithm(CaKeyAlg::P256);
        let policy = CrlPolicy {
            issuer_name: &name,
            issuer_key_id: &KEY_ID,
            signature: &alg,
        };
        lint_crl(&tbs.to_der().unwrap(), &policy)
    }

    fn refused_by(tbs: &TbsCertList) -> &'static str {
        match lint(tbs) {
            Err(Error::LintFailed { lint, object, .. }) => {
                assert_eq!(object, "CRL");
                lint
            }
            other => panic!("expected a lint refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_good_crl_passes_full_and_delta() {
        lint(&good()).unwrap();
        let mut empty = good();
        empty.revoked_certificates = None;
        lint(&empty).unwrap();
        let mut delta = good();
        let base = BaseCrlNumber(Uint::new(&[4]).unwrap()).to_der().unwrap();
        delta
            .crl_extensions
            .as_mut()
            .unwrap()
            .push(ext(DELTA_INDICATOR, true, base));
        lint(&delta).unwrap();
    }

    type Defect = Box<dyn Fn(&mut TbsCertList)>;

    #[test]
    fn each_crl_lint_refuses_its_defect() {
        let cases: Vec<(&str, Defect)> = vec![
            (
                "e_crl_version",
                Box::new(|t| t.version = x509_cert::Version::V1),
            ),
            (
                "e_crl_signature_algorithm",
                Box::new(|t| t.signature = signature_algorithm(CaKeyAlg::P384)),
            ),
            (
                "e_crl_issuer_name",
                Box::new(|t| {
                    use std::str::FromStr;
                    t.issuer = Name::from_str("CN=Other CA").unwrap();
                }),
            ),
            ("e_crl_next_update", Box::new(|t| t.next_update = None)),
            (
                "e_crl_next_update",
                Box::new(|t| t.next_update = Some(x509_time(NOW).unwrap())),
            ),
            (
                "e_crl_time_encoding",
                Box::new(|t| {
                    let g = GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
                        NOW as u64,
                    ))
                    .unwrap();
                    t.this_update = Time::GeneralTime(g);
                }),
            ),
            (
                "e_crl_empty_revoked_list",
                Box::new(|t| t.revoked_certificates = Some(Vec::new())),
            ),
            (
                "e_crl_entry_serial",
                Box::new(|t| t.revoked_certificates = Some(vec![revoked(&[0], NOW, vec![])])),
            ),
            (
                "e_crl_entry_date",
                Box::new(|t| t.revoked_certificates = Some(vec![revoked(&[1], NOW + 1, vec![])])),
            ),
            (
                "e_crl_entry_reason",
                Box::new(|t| {
                    let e = reason(CrlReason::Unspecified, false);
                    t.revoked_certificates = Some(vec![revoked(&[1], NOW, vec![e])]);
                }),
            ),
            (
                "e_crl_entry_reason",
                Box::new(|t| {
                    let e = reason(CrlReason::CertificateHold, false);
                    t.revoked_certificates = Some(vec![revoked(&[1], NOW, vec![e])]);
                }),
            ),
            (
                "e_crl_entry_extension",
                Box::new(|t| {
                    let e = reason(CrlReason::KeyCompromise, true);
                    t.revoked_certificates = Some(vec![revoked(&[1], NOW, vec![e])]);
                }),
            ),
            (
                "e_crl_entry_extension",
                Box::new(|t| {
                    let e = ext("1.2.3.4", false, vec![5, 0]);
                    t.revoked_certificates = Some(vec![revoked(&[1], NOW, vec![e])]);
                }),
            ),
            (
                "e_crl_aki",
                Box::new(|t| t.crl_extensions = Some(vec![number(5, false)])),
            ),
            (
                "e_crl_aki",
                Box::new(|t| t.crl_extensions = Some(vec![aki(&[9; 20]), number(5, false)])),
            ),
            (
                "e_crl_number",
                Box::new(|t| t.crl_extensions = Some(vec![aki(&KEY_ID)])),
            ),
            (
                "e_crl_number",
                Box::new(|t| t.crl_extensions = Some(vec![aki(&KEY_ID), number(5, true)])),
            ),
            ("e_crl_number", Box::new(|t| t.crl_extensions = None)),
            (
                "e_crl_delta_indicator",
                Box::new(|t| {
                    let base = BaseCrlNumber(Uint::new(&[4]).unwrap()).to_der().unwrap();
                    let exts = t.crl_extensions.as_mut().unwrap();
                    exts.push(ext(DELTA_INDICATOR, false, base));
                }),
            ),
            (
                "e_crl_delta_indicator",
                Box::new(|t| {
                    let base = BaseCrlNumber(Uint::new(&[5]).unwrap()).to_der().unwrap();
                    let exts = t.crl_extensions.as_mut().unwrap();
                    exts.push(ext(DELTA_INDICATOR, true, base));
                }),
            ),
            (
                "e_crl_extension",
                Box::new(|t| t.crl_extensions.as_mut().unwrap().push(number(6, false))),
            ),
            (
                "e_crl_extension",
                Box::new(|t| {
                    let exts = t.crl_extensions.as_mut().unwrap();
                    exts.push(ext("1.2.3.4", true, vec![5, 0]));
                }),
            ),
        ];
        for (want, defect) in cases {
            let mut tbs = good();
            defect(&mut tbs);
            assert_eq!(refused_by(&tbs), want);
        }
        let name = issuer().to_der().unwrap();
        let alg = signature_algorithm(CaKeyAlg::P256);
        let policy = CrlPolicy {
            issuer_name: &name,
            issuer_key_id: &KEY_ID,
            signature: &alg,
        };
        let mut trailing = good().to_der().unwrap();
        trailing.push(0);
        for bad in [vec![0x30, 0x03, 1, 2], trailing] {
            assert!(matches!(
                lint_crl(&bad, &policy),
                Err(Error::LintFailed {
                    lint: "e_crl_der",
                    ..
                })
            ));
        }
    }
}
