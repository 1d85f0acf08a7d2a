//! Checking a certificate's revocation status from a CRL or an OCSP response (relying-party
//! side): signature, issuer, freshness, then the entry. No I/O; `crate::verify` fetches.
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256};
use der::{Decode, Encode};
use x509_ocsp::{BasicOcspResponse, CertStatus, OcspResponse, OcspResponseStatus};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::core::path::{ALLOWED_SIG_ALGS, Cert, KU_CRL_SIGN};

/// Why revocation data could not be used, by kind; the text says what exactly.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevocationError {
    /// The CRL or OCSP response does not decode, or breaks the format's rules.
    #[error("{0}")]
    Malformed(String),
    /// Not from the certificate's issuer (or the issuer may not sign CRLs).
    #[error("{0}")]
    Issuer(String),
    /// Its signature does not verify, or uses an algorithm not accepted.
    #[error("{0}")]
    Signature(String),
    /// Not current at the time it has to be.
    #[error("{0}")]
    Stale(String),
    /// It does not cover this certificate.
    #[error("{0}")]
    Scope(String),
    /// It uses something ecca does not process (indirect CRLs, unknown critical extensions).
    #[error("{0}")]
    Unsupported(String),
    /// The OCSP responder refused to answer.
    #[error("{0}")]
    Refused(String),
}

use RevocationError as E;

fn malformed(e: impl std::fmt::Display) -> E {
    E::Malformed(e.to_string())
}

/// Clock skew tolerated on thisUpdate.
const SKEW: i64 = 300;

/// What a CRL or OCSP response says about a certificate at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Good,
    /// Revoked at (Unix seconds), with the RFC 5280 reason code when given.
    Revoked {
        at: i64,
        reason: Option<u8>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// When a status is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct When {
    /// The validation time.
    pub time: i64,
    /// Revocation data must be current at this time: the validation time, or now when the
    /// path is validated at a past time a timestamp proves.
    pub current_at: i64,
    /// Only revocations at or before `time` count (a signature timestamped before its
    /// signer's revocation stays valid). Otherwise any listing revokes (RFC 5280 §6.3.3).
    pub only_before: bool,
}

impl When {
    /// Validation at `time` (RFC 5280): data current then, any listing revokes.
    pub fn at(time: i64) -> Self {
        When {
            time,
            current_at: time,
            only_before: false,
        }
    }

    /// Validation at a time a timestamp proves, with revocation data current `now`.
    pub fn historical(time: i64, now: i64) -> Self {
        When {
            time,
            current_at: now,
            only_before: true,
        }
    }

    fn counts(&self, revoked_at: i64) -> bool {
        !self.only_before || revoked_at <= self.time
    }
}

/// Freshness of an answer, for caching.
#[derive(Clone, Copy, Debug)]
pub struct Freshness {
    pub this_update: i64,
    pub next_update: Option<i64>,
}

fn serial_of(der: &[u8]) -> Result<Vec<u8>, E> {
    let (_, c) = X509Certificate::from_der(der).map_err(malformed)?;
    Ok(strip(c.raw_serial()))
}

fn strip(b: &[u8]) -> Vec<u8> {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

fn fresh(this_update: i64, next_update: Option<i64>, time: i64, what: &str) -> Result<(), E> {
    if this_update > time + SKEW {
        return Err(E::Stale(format!(
            "{what} was produced after the validation time"
        )));
    }
    if next_update.is_some_and(|n| n < time) {
        return Err(E::Stale(format!("{what} is stale (nextUpdate passed)")));
    }
    Ok(())
}

/// The status of `cert` (issued by `issuer`) according to a full CRL, validated per RFC 5280
/// §6.3: issued and signed by the certificate's issuer (whose keyUsage, if any, allows
/// cRLSign), a v2 CRL with a non-critical CRLNumber, its AKI matching the issuer's key, its
/// scope (issuingDistributionPoint) covering the certificate, no critical extension or entry
/// extension it does not understand, current at `when.current_at`.
pub fn from_crl(
    crl_der: &[u8],
    cert: &Cert,
    issuer: &Cert,
    when: When,
) -> Result<(Status, Freshness), E> {
    let (rest, crl) = x509_parser::parse_x509_crl(crl_der)
        .map_err(|e| E::Malformed(format!("CRL does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(E::Malformed("trailing bytes after the CRL".into()));
    }
    let (_, issuer_x) = X509Certificate::from_der(&issuer.der).map_err(malformed)?;
    if crl.issuer().as_raw() != issuer_x.subject().as_raw() {
        return Err(E::Issuer(
            "CRL issuer is not the certificate's issuer".into(),
        ));
    }
    if issuer.key_usage.is_some_and(|k| k & KU_CRL_SIGN == 0) {
        return Err(E::Issuer(
            "the issuer's keyUsage does not allow cRLSign".into(),
        ));
    }
    let alg = crl.signature_algorithm.algorithm.to_id_string();
    if !ALLOWED_SIG_ALGS.contains(&alg.as_str()) {
        return Err(E::Signature(format!(
            "CRL signature algorithm {alg} is not allowed"
        )));
    }
    if crl.signature_algorithm.algorithm != crl.tbs_cert_list.signature.algorithm {
        return Err(E::Malformed(
            "CRL signatureAlgorithm differs from its TBS signature field".into(),
        ));
    }
    crate::core::keys::verify_signature(
        issuer_x.public_key(),
        &crl.signature_algorithm,
        &crl.signature_value.data,
        crl.tbs_cert_list.as_ref(),
        crate::core::sm2::DEFAULT_ID,
    )
    .map_err(|_| E::Signature("CRL signature does not verify with the issuer's key".into()))?;
    if crl.version().is_none_or(|v| v.0 != 1) {
        return Err(E::Malformed("not a version 2 CRL".into()));
    }
    let mut seen = std::collections::HashSet::new();
    let mut number = false;
    for e in crl.extensions() {
        if !seen.insert(e.oid.to_id_string()) {
            return Err(E::Malformed(format!(
                "CRL extension {} appears twice",
                e.oid
            )));
        }
        match e.parsed_extension() {
            ParsedExtension::CRLNumber(_) if e.critical => {
                return Err(E::Malformed(
                    "CRLNumber is critical (RFC 5280 §5.2.3)".into(),
                ));
            }
            ParsedExtension::CRLNumber(_) => number = true,
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                if let (Some(k), Some(ski)) = (&aki.key_identifier, &issuer.ski)
                    && k.0 != ski.as_slice()
                {
                    return Err(E::Issuer(
                        "CRL authorityKeyIdentifier is not the issuer's key".into(),
                    ));
                }
            }
            ParsedExtension::IssuingDistributionPoint(idp) => in_scope(idp, cert)?,
            ParsedExtension::ParseError { error } => {
                return Err(E::Malformed(format!(
                    "CRL extension {} does not parse: {error}",
                    e.oid
                )));
            }
            _ if e.oid.to_id_string() == "2.5.29.27" => {
                return Err(E::Scope("a delta CRL cannot be used alone".into()));
            }
            _ if e.critical => {
                return Err(E::Unsupported(format!(
                    "CRL has an unrecognised critical extension {}",
                    e.oid
                )));
            }
            _ => {}
        }
    }
    if !number {
        return Err(E::Malformed(
            "CRL without CRLNumber (RFC 5280 §5.2.3)".into(),
        ));
    }
    let freshness = Freshness {
        this_update: crl.last_update().timestamp(),
        next_update: crl.next_update().map(|t| t.timestamp()),
    };
    if freshness.next_update.is_none() {
        return Err(E::Malformed("CRL without nextUpdate".into()));
    }
    fresh(
        freshness.this_update,
        freshness.next_update,
        when.current_at,
        "CRL",
    )?;
    let serial = serial_of(&cert.der)?;
    let mut status = Status::Good;
    for r in crl.iter_revoked_certificates() {
        for e in r.extensions() {
            match e.oid.to_id_string().as_str() {
                // certificateIssuer: an indirect CRL, which ecca does not process.
                "2.5.29.29" => {
                    return Err(E::Unsupported(
                        "indirect CRL entries are not supported".into(),
                    ));
                }
                "2.5.29.21" | "2.5.29.24" => {}
                other if e.critical => {
                    return Err(E::Unsupported(format!(
                        "a CRL entry has an unrecognised critical extension {other}"
                    )));
                }
                _ => {}
            }
        }
        if strip(r.raw_serial()) == serial && status == Status::Good {
            let at = r.revocation_date.timestamp();
            if when.counts(at) {
                status = Status::Revoked {
                    at,
                    reason: r.reason_code().map(|(_, c)| c.0),
                };
            }
        }
    }
    Ok((status, freshness))
}

/// Does a CRL's issuingDistributionPoint cover `cert` (RFC 5280 §5.2.5, §6.3.3 (b))?
fn in_scope(
    idp: &x509_parser::extensions::IssuingDistributionPoint<'_>,
    cert: &Cert,
) -> Result<(), E> {
    if idp.indirect_crl {
        return Err(E::Unsupported("indirect CRLs are not supported".into()));
    }
    if idp.only_some_reasons.is_some() {
        return Err(E::Scope(
            "the CRL covers only some revocation reasons".into(),
        ));
    }
    if idp.only_contains_attribute_certs {
        return Err(E::Scope(
            "the CRL covers attribute certificates only".into(),
        ));
    }
    if idp.only_contains_user_certs && cert.is_ca() {
        return Err(E::Scope(
            "the CRL covers end-entity certificates only".into(),
        ));
    }
    if idp.only_contains_ca_certs && !cert.is_ca() {
        return Err(E::Scope("the CRL covers CA certificates only".into()));
    }
    match &idp.distribution_point {
        None => Ok(()),
        Some(x509_parser::extensions::DistributionPointName::FullName(names)) => {
            let matches = names.iter().any(|n| match n {
                GeneralName::URI(u) => cert.crl_urls.iter().any(|c| c == u),
                _ => false,
            });
            if matches {
                Ok(())
            } else {
                Err(E::Scope(
                    "the CRL's issuing distribution point is none of the certificate's".into(),
                ))
            }
        }
        Some(_) => Err(E::Unsupported(
            "relative issuing distribution point names are not supported".into(),
        )),
    }
}

/// A DER OCSP request for `cert` (SHA-1 CertID, as RFC 5019 responders expect; no nonce, so
/// responses can be cached).
pub fn ocsp_request(cert: &Cert, issuer: &Cert) -> Result<Vec<u8>, E> {
    let (_, c) = X509Certificate::from_der(&cert.der).map_err(malformed)?;
    ocsp_request_for(&issuer.der, &strip(c.raw_serial()))
}

/// A DER OCSP request (SHA-1 CertID, no nonce) for `serial` (big-endian magnitude) under the
/// CA certificate `issuer_der`.
pub fn ocsp_request_for(issuer_der: &[u8], serial: &[u8]) -> Result<Vec<u8>, E> {
    let (_, i) = X509Certificate::from_der(issuer_der).map_err(malformed)?;
    let sha1 = |d: &[u8]| {
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, d)
            .as_ref()
            .to_vec()
    };
    let err = malformed;
    let id = x509_ocsp::CertId {
        hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
            oid: ID_SHA_1,
            parameters: Some(der::asn1::Null.into()),
        },
        issuer_name_hash: der::asn1::OctetString::new(sha1(i.subject().as_raw())).map_err(err)?,
        issuer_key_hash: der::asn1::OctetString::new(sha1(&i.public_key().subject_public_key.data))
            .map_err(err)?,
        serial_number: x509_cert::serial_number::SerialNumber::new(serial).map_err(err)?,
    };
    x509_ocsp::OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: x509_ocsp::Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: id,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    }
    .to_der()
    .map_err(err)
}

/// Verifies `data` signed by the key in a certificate (DER), with the algorithm given as DER.
fn verify_with(cert_der: &[u8], alg_der: &[u8], signature: &[u8], data: &[u8]) -> Result<(), E> {
    let (_, c) = X509Certificate::from_der(cert_der).map_err(malformed)?;
    let (_, alg) = x509_parser::x509::AlgorithmIdentifier::from_der(alg_der).map_err(malformed)?;
    crate::core::keys::verify_signature(
        c.public_key(),
        &alg,
        signature,
        data,
        crate::core::sm2::DEFAULT_ID,
    )
    .map_err(|_| E::Signature("OCSP response signature does not verify".into()))
}

/// The status of `cert` according to a DER OCSP response (revoked only if revoked at or before
/// `time`; the response must be current at `now`). It must be signed by the issuer or by a
/// responder certificate the issuer delegated (id-kp-OCSPSigning).
pub fn from_ocsp(
    resp_der: &[u8],
    cert: &Cert,
    issuer: &Cert,
    when: When,
) -> Result<(Status, Freshness), E> {
    let now = when.current_at;
    let resp = OcspResponse::from_der(resp_der)
        .map_err(|e| E::Malformed(format!("OCSP response does not parse: {e}")))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(E::Refused(format!(
            "OCSP responder answered {:?}",
            resp.response_status
        )));
    }
    let bytes = resp
        .response_bytes
        .ok_or_else(|| E::Malformed("OCSP response has no body".into()))?;
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|e| E::Malformed(format!("basic OCSP response: {e}")))?;
    let tbs = basic.tbs_response_data.to_der().map_err(malformed)?;
    let alg = basic.signature_algorithm.to_der().map_err(malformed)?;
    let sig = basic.signature.raw_bytes();
    // The issuer itself, or a delegated responder certificate it signed.
    let signer_ok = verify_with(&issuer.der, &alg, sig, &tbs).is_ok()
        || basic.certs.iter().flatten().any(|rc| {
            let Ok(der) = rc.to_der() else { return false };
            let Ok(responder) = Cert::parse(&der) else {
                return false;
            };
            delegated_by(&responder, issuer, now) && verify_with(&der, &alg, sig, &tbs).is_ok()
        });
    if !signer_ok {
        return Err(E::Signature(
            "OCSP response is not signed by the issuer or a responder it authorised".into(),
        ));
    }
    let serial = serial_of(&cert.der)?;
    let (_, issuer_x) = X509Certificate::from_der(&issuer.der).map_err(malformed)?;
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| {
            let digest = match r.cert_id.hash_algorithm.oid {
                ID_SHA_1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                ID_SHA_256 => &ring::digest::SHA256,
                _ => return false,
            };
            let h = |d: &[u8]| ring::digest::digest(digest, d).as_ref().to_vec();
            strip(r.cert_id.serial_number.as_bytes()) == serial
                && r.cert_id.issuer_name_hash.as_bytes() == h(issuer_x.subject().as_raw())
                && r.cert_id.issuer_key_hash.as_bytes()
                    == h(&issuer_x.public_key().subject_public_key.data)
        })
        .ok_or_else(|| E::Scope("OCSP response does not answer for this certificate".into()))?;
    let ts = |t: &x509_ocsp::OcspGeneralizedTime| t.0.to_unix_duration().as_secs() as i64;
    let freshness = Freshness {
        this_update: ts(&single.this_update),
        next_update: single.next_update.as_ref().map(ts),
    };
    fresh(
        freshness.this_update,
        freshness.next_update,
        when.current_at,
        "OCSP response",
    )?;
    let status = match &single.cert_status {
        CertStatus::Good(_) => Status::Good,
        CertStatus::Unknown(_) => Status::Unknown,
        CertStatus::Revoked(info) => {
            let at = ts(&info.revocation_time);
            if when.counts(at) {
                Status::Revoked {
                    at,
                    reason: info.revocation_reason.map(|r| r as u8),
                }
            } else {
                Status::Good
            }
        }
    };
    Ok((status, freshness))
}

/// Is `responder` a delegated OCSP responder of `issuer` (signed by it, OCSPSigning EKU)?
fn delegated_by(responder: &Cert, issuer: &Cert, time: i64) -> bool {
    let Ok((_, r)) = X509Certificate::from_der(&responder.der) else {
        return false;
    };
    let Ok((_, i)) = X509Certificate::from_der(&issuer.der) else {
        return false;
    };
    let eku_ok = r
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|e| e.value.ocsp_signing);
    let valid =
        r.validity().not_before.timestamp() <= time && time <= r.validity().not_after.timestamp();
    eku_ok
        && valid
        && r.issuer().as_raw() == i.subject().as_raw()
        && crate::core::keys::verify_signature(
            i.public_key(),
            &r.signature_algorithm,
            &r.signature_value.data,
            r.tbs_certificate.as_ref(),
            crate::core::sm2::DEFAULT_ID,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::issue::{CaView, IssuerRef};
    use crate::core::ocsp::{self, ResponderKey, Validity};
    use crate::core::revocation::{CrlParams, Reason, RevokedEntry, build_crl};
    use crate::core::testing::{Counting, test_ca};

    const NOW: i64 = 1_800_000_000;

    fn crl(ca: &CaView, key: &Counting, entries: &[RevokedEntry], delta: Option<u64>) -> Vec<u8> {
        let params = CrlParams {
            number: 9,
            this_update: NOW - 60,
            next_update: NOW + 3600,
            delta_base: delta,
            freshest_url: None,
        };
        build_crl(&params, entries, IssuerRef::new(ca, key).unwrap()).unwrap()
    }

    fn revoked(ca: &CaView, at: i64) -> RevokedEntry {
        RevokedEntry {
            serial: ca.serial.clone(),
            revoked_at: at,
            reason: Reason::KeyCompromise,
            invalidity_date: None,
        }
    }

    /// The test CA is self-issued, so it stands as both the certificate and its issuer.
    fn cert(ca: &CaView) -> Cert {
        Cert::parse(&ca.der).unwrap()
    }

    #[test]
    fn a_crl_answers_good_or_revoked_with_its_reason() {
        let (ca, key) = test_ca();
        let c = cert(&ca);
        let (status, fresh) = from_crl(&crl(&ca, &key, &[], None), &c, &c, When::at(NOW)).unwrap();
        assert_eq!(status, Status::Good);
        assert_eq!(
            (fresh.this_update, fresh.next_update),
            (NOW - 60, Some(NOW + 3600))
        );
        let listed = crl(&ca, &key, &[revoked(&ca, NOW - 600)], None);
        let (status, _) = from_crl(&listed, &c, &c, When::at(NOW)).unwrap();
        assert_eq!(
            status,
            Status::Revoked {
                at: NOW - 600,
                reason: Some(1)
            }
        );
    }

    #[test]
    fn a_revocation_after_a_proven_time_does_not_count_then() {
        let (ca, key) = test_ca();
        let c = cert(&ca);
        let listed = crl(&ca, &key, &[revoked(&ca, NOW - 600)], None);
        let before = When::historical(NOW - 7200, NOW);
        assert_eq!(from_crl(&listed, &c, &c, before).unwrap().0, Status::Good);
        // RFC 5280 validation at a time: any listing revokes.
        assert!(matches!(
            from_crl(
                &listed,
                &c,
                &c,
                When {
                    current_at: NOW,
                    ..When::at(NOW - 7200)
                }
            )
            .unwrap()
            .0,
            Status::Revoked { .. }
        ));
    }

    #[test]
    fn unusable_crls_are_refused_by_kind() {
        let (ca, key) = test_ca();
        let c = cert(&ca);
        let good = crl(&ca, &key, &[], None);
        let stale = When::at(NOW + 3601);
        assert!(matches!(from_crl(&good, &c, &c, stale), Err(E::Stale(_))));
        let future = When::at(NOW - 3600);
        assert!(matches!(from_crl(&good, &c, &c, future), Err(E::Stale(_))));
        let delta = crl(&ca, &key, &[], Some(8));
        assert!(matches!(
            from_crl(&delta, &c, &c, When::at(NOW)),
            Err(E::Scope(_))
        ));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            from_crl(&trailing, &c, &c, When::at(NOW)),
            Err(E::Malformed(_))
        ));
        let mut tampered = good.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            from_crl(&tampered, &c, &c, When::at(NOW)),
            Err(E::Signature(_))
        ));
        // Another CA with the same name: its key identifier gives it away.
        let (other, other_key) = test_ca();
        let foreign = crl(&other, &other_key, &[], None);
        assert!(matches!(
            from_crl(&foreign, &c, &c, When::at(NOW)),
            Err(E::Issuer(_) | E::Signature(_))
        ));
    }

    /// A response about `id` signed by `signer` (no responder certificate), current at NOW.
    fn signed(signer: &Counting, id: x509_ocsp::CertId, status: ocsp::Status) -> Vec<u8> {
        let key = ResponderKey {
            signer,
            cert_der: None,
        };
        let times = Validity {
            produced_at: NOW - 60,
            this_update: NOW - 60,
            next_update: NOW + 3600,
        };
        ocsp::sign_response(key, &[(id, status)], None, times).unwrap()
    }

    fn ocsp_answer(ca: &CaView, key: &Counting, status: ocsp::Status) -> Vec<u8> {
        let c = cert(ca);
        let req = ocsp::parse_request(&ocsp_request(&c, &c).unwrap()).unwrap();
        signed(key, req.cert_ids[0].clone(), status)
    }

    #[test]
    fn an_ocsp_response_answers_good_revoked_or_unknown() {
        let (ca, key) = test_ca();
        let c = cert(&ca);
        let at = |s| {
            from_ocsp(&ocsp_answer(&ca, &key, s), &c, &c, When::at(NOW))
                .unwrap()
                .0
        };
        assert_eq!(at(ocsp::Status::Good), Status::Good);
        assert_eq!(at(ocsp::Status::Unknown), Status::Unknown);
        assert_eq!(
            at(ocsp::Status::Revoked {
                at: NOW - 900,
                reason: Reason::Superseded
            }),
            Status::Revoked {
                at: NOW - 900,
                reason: Some(4)
            }
        );
    }

    #[test]
    fn unusable_ocsp_responses_are_refused_by_kind() {
        let (ca, key) = test_ca();
        let c = cert(&ca);
        let good = ocsp_answer(&ca, &key, ocsp::Status::Good);
        assert!(matches!(
            from_ocsp(&good, &c, &c, When::at(NOW + 3601)),
            Err(E::Stale(_))
        ));
        let refused = ocsp::error_response(x509_ocsp::OcspResponseStatus::Unauthorized);
        assert!(matches!(
            from_ocsp(&refused, &c, &c, When::at(NOW)),
            Err(E::Refused(_))
        ));
        assert!(matches!(
            from_ocsp(b"\x30\x00", &c, &c, When::at(NOW)),
            Err(E::Malformed(_))
        ));
        let sign = |signer: &Counting, id| signed(signer, id, ocsp::Status::Good);
        let id_of = |serial: &[u8]| {
            let req = ocsp::parse_request(&ocsp_request_for(&ca.der, serial).unwrap()).unwrap();
            req.cert_ids[0].clone()
        };
        // Signed by a key that is neither the issuer nor delegated by it.
        let (_, other_key) = test_ca();
        let forged = sign(&other_key, id_of(&ca.serial));
        assert!(matches!(
            from_ocsp(&forged, &c, &c, When::at(NOW)),
            Err(E::Signature(_) | E::Issuer(_))
        ));
        // An answer about another serial does not cover this certificate.
        let elsewhere = sign(&key, id_of(&[0x41, 2, 3]));
        assert!(matches!(
            from_ocsp(&elsewhere, &c, &c, When::at(NOW)),
            Err(E::Scope(_))
        ));
    }
}
