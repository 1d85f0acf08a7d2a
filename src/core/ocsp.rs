//! OCSP (RFC 6960, RFC 5019 profile): parsing requests, matching CertIDs to our CAs, and
//! building signed responses. No I/O; the responder runtime lives in `crate::publish`.
use const_oid::db::rfc5912::{ID_SHA_1, ID_SHA_256};
use der::asn1::{BitString, Null, OctetString};
use der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse,
    OcspResponseStatus, ResponderId, ResponseData, RevokedInfo, SingleResponse, Version,
};

use crate::core::error::{Error, Result};
use crate::core::keys::Signer;
use crate::core::revocation::{Reason, generalized_time, signature_algorithm};

/// Most CertIDs answered in one request (RFC 5019 clients send one).
pub const MAX_CERT_IDS: usize = 8;

/// id-pkix-ocsp-nonce.
const NONCE_OID: const_oid::ObjectIdentifier = const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE;

/// The hash algorithm of a CertID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    Sha1,
    Sha256,
    /// SM3 (GM/T 0004), as clients of the national-algorithm hierarchy ask.
    Sm3,
}

impl CertIdHash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            CertIdHash::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            CertIdHash::Sha256 => &ring::digest::SHA256,
            CertIdHash::Sm3 => return crate::core::sm2::sm3(data).to_vec(),
        };
        ring::digest::digest(alg, data).as_ref().to_vec()
    }
}

/// The hashes by which a CertID names one of our CAs.
#[derive(Clone, Debug)]
pub struct CaIdentity {
    /// (hash, issuerNameHash, issuerKeyHash) for each supported hash.
    hashes: Vec<(CertIdHash, Vec<u8>, Vec<u8>)>,
}

impl CaIdentity {
    /// From the CA's subject Name DER and its subjectPublicKey bits.
    pub fn new(subject_der: &[u8], public_key_raw: &[u8]) -> Self {
        let hashes = [CertIdHash::Sha1, CertIdHash::Sha256, CertIdHash::Sm3]
            .into_iter()
            .map(|h| (h, h.digest(subject_der), h.digest(public_key_raw)))
            .collect();
        CaIdentity { hashes }
    }

    /// True when the CertID names this CA.
    pub fn matches(&self, id: &CertId) -> bool {
        let Some(h) = hash_of(id) else { return false };
        self.hashes.iter().any(|(alg, name, key)| {
            *alg == h
                && id.issuer_name_hash.as_bytes() == name.as_slice()
                && id.issuer_key_hash.as_bytes() == key.as_slice()
        })
    }
}

/// The hash algorithm a CertID uses, if supported.
pub fn hash_of(id: &CertId) -> Option<CertIdHash> {
    match id.hash_algorithm.oid {
        ID_SHA_1 => Some(CertIdHash::Sha1),
        ID_SHA_256 => Some(CertIdHash::Sha256),
        crate::core::sm2::SM3 => Some(CertIdHash::Sm3),
        _ => None,
    }
}

/// The serial a CertID asks about, big-endian magnitude.
pub fn serial_of(id: &CertId) -> Vec<u8> {
    let bytes = id.serial_number.as_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

/// A request reduced to what the responder needs.
#[derive(Clone, Debug)]
pub struct ParsedRequest {
    pub cert_ids: Vec<CertId>,
    /// The nonce extension, echoed verbatim when present.
    pub nonce: Option<Extension>,
}

/// Parses a DER OCSPRequest; `None` means malformedRequest.
pub fn parse_request(der: &[u8]) -> Option<ParsedRequest> {
    let req = OcspRequest::from_der(der).ok()?;
    let list = req.tbs_request.request_list;
    if list.is_empty() || list.len() > MAX_CERT_IDS {
        return None;
    }
    let cert_ids: Vec<CertId> = list.into_iter().map(|r| r.req_cert).collect();
    if cert_ids.iter().any(|id| hash_of(id).is_none()) {
        return None;
    }
    let nonce = req
        .tbs_request
        .request_extensions
        .and_then(|exts| exts.into_iter().find(|e| e.extn_id == NONCE_OID));
    if nonce
        .as_ref()
        .is_some_and(|n| n.extn_value.as_bytes().len() > 64)
    {
        return None;
    }
    Some(ParsedRequest { cert_ids, nonce })
}

/// What a single response says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Good,
    Revoked { at: i64, reason: Reason },
    Unknown,
}

/// A key that signs OCSP responses, with its certificate (delegated responder) when it has one.
#[derive(Debug, Clone, Copy)]
pub struct ResponderKey<'a> {
    pub signer: &'a dyn Signer,
    /// The delegated responder certificate, included in responses; None when the CA signs itself.
    pub cert_der: Option<&'a [u8]>,
}

/// Times of a response.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub produced_at: i64,
    pub this_update: i64,
    pub next_update: i64,
}

fn der_err(e: der::Error) -> Error {
    Error::Internal(format!("OCSP encoding: {e}"))
}

/// Builds a successful response for the given CertIDs and statuses, lints it and signs it.
pub fn sign_response(
    key: ResponderKey<'_>,
    answers: &[(CertId, Status)],
    nonce: Option<&Extension>,
    times: Validity,
) -> Result<Vec<u8>> {
    let key_hash = CertIdHash::Sha1.digest(key.signer.public_key_raw());
    let this_update = OcspGeneralizedTime(generalized_time(times.this_update)?);
    let next_update = OcspGeneralizedTime(generalized_time(times.next_update)?);
    let responses = answers
        .iter()
        .map(|(id, status)| {
            let cert_status = match status {
                Status::Good => CertStatus::Good(Null),
                Status::Unknown => CertStatus::Unknown(Null),
                Status::Revoked { at, reason } => CertStatus::Revoked(RevokedInfo {
                    revocation_time: OcspGeneralizedTime(generalized_time(*at)?),
                    revocation_reason: reason_code(*reason),
                }),
            };
            Ok(SingleResponse {
                cert_id: id.clone(),
                cert_status,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(key_hash).map_err(der_err)?),
        produced_at: OcspGeneralizedTime(generalized_time(times.produced_at)?),
        responses,
        response_extensions: nonce.map(|n| vec![n.clone()]),
    };
    let tbs = data.to_der().map_err(der_err)?;
    let policy = crate::core::lint::OcspPolicy {
        key_hash: &CertIdHash::Sha1.digest(key.signer.public_key_raw()),
    };
    crate::core::lint::lint_ocsp(&tbs, &policy)?;
    let signature = key.signer.sign(&tbs)?;
    let certs = match key.cert_der {
        Some(der) => Some(vec![Certificate::from_der(der).map_err(der_err)?]),
        None => None,
    };
    let basic = BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: signature_algorithm(key.signer.algorithm()),
        signature: BitString::from_bytes(&signature).map_err(der_err)?,
        certs,
    };
    OcspResponse::successful(basic)
        .and_then(|r| r.to_der())
        .map_err(der_err)
}

fn reason_code(reason: Reason) -> Option<x509_cert::ext::pkix::CrlReason> {
    use x509_cert::ext::pkix::CrlReason as C;
    Some(match reason {
        Reason::Unspecified => return None,
        Reason::KeyCompromise => C::KeyCompromise,
        Reason::AffiliationChanged => C::AffiliationChanged,
        Reason::Superseded => C::Superseded,
        Reason::CessationOfOperation => C::CessationOfOperation,
        Reason::PrivilegeWithdrawn => C::PrivilegeWithdrawn,
    })
}

/// An unsuccessful response (malformedRequest, unauthorized, internalError, ...).
pub fn error_response(status: OcspResponseStatus) -> Vec<u8> {
    OcspResponse {
        response_status: status,
        response_bytes: None,
    }
    .to_der()
    // A two-field SEQUENCE of an ENUMERATED always encodes; the fallback is the same bytes.
    .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, status as u8])
}

/// The status of the first single response of a DER OCSP response (what a cached response
/// says, for counting); None for an error response or anything unparsable.
pub fn first_status(der: &[u8]) -> Option<Status> {
    let resp = OcspResponse::from_der(der).ok()?;
    let basic = BasicOcspResponse::from_der(resp.response_bytes?.response.as_bytes()).ok()?;
    let single = basic.tbs_response_data.responses.first()?;
    Some(match &single.cert_status {
        CertStatus::Good(_) => Status::Good,
        CertStatus::Unknown(_) => Status::Unknown,
        CertStatus::Revoked(_) => Status::Revoked {
            at: 0,
            reason: Reason::Unspecified,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_are_fixed_bytes() {
        assert_eq!(
            error_response(OcspResponseStatus::MalformedRequest),
            [0x30, 0x03, 0x0a, 0x01, 0x01]
        );
        assert_eq!(
            error_response(OcspResponseStatus::Unauthorized),
            [0x30, 0x03, 0x0a, 0x01, 0x06]
        );
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(parse_request(b"").is_none());
        assert!(parse_request(b"\x30\x03\x02\x01\x00").is_none());
        assert!(parse_request(&[0xff; 100]).is_none());
    }
}
