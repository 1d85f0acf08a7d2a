//! Lints run on every to-be-signed OCSP ResponseData before a key touches it (RFC 6960 §4.2,
//! the RFC 5019 profile, and what pkilint's OCSP linter enforces).
use der::Decode;
use x509_ocsp::{CertStatus, ResponderId, ResponseData, Version};

use crate::core::error::{Error, Result};

/// What a response is checked against: the key that will sign it.
#[derive(Clone, Copy, Debug)]
pub struct OcspPolicy<'a> {
    /// SHA-1 of the signing key's subjectPublicKey bits (the responderID byKey).
    pub key_hash: &'a [u8],
}

fn fail(lint: &'static str, detail: impl Into<String>) -> Error {
    Error::LintFailed {
        lint,
        object: "OCSP response",
        detail: detail.into(),
    }
}

const SHA1: &str = "1.3.14.3.2.26";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const NONCE: &str = "1.3.6.1.5.5.7.48.1.2";

/// Lints a DER ResponseData.
pub fn lint_ocsp(tbs_der: &[u8], policy: &OcspPolicy<'_>) -> Result<()> {
    let data = ResponseData::from_der(tbs_der)
        .map_err(|e| fail("e_ocsp_der", format!("does not decode: {e}")))?;
    if data.version != Version::V1 {
        return Err(fail("e_ocsp_version", "must be v1"));
    }
    match &data.responder_id {
        ResponderId::ByKey(hash) if hash.as_bytes() == policy.key_hash => {}
        ResponderId::ByKey(_) => {
            return Err(fail(
                "e_ocsp_responder_id",
                "byKey is not the SHA-1 of the signing key",
            ));
        }
        ResponderId::ByName(_) => {
            return Err(fail(
                "e_ocsp_responder_id",
                "byName: RFC 5019 responders identify by key",
            ));
        }
    }
    if data.responses.is_empty() {
        return Err(fail("e_ocsp_responses", "no SingleResponse"));
    }
    let produced = data.produced_at.0.to_unix_duration().as_secs();
    for r in &data.responses {
        let hash = r.cert_id.hash_algorithm.oid.to_string();
        let len = match hash.as_str() {
            SHA1 => 20,
            SHA256 => 32,
            other => {
                return Err(fail(
                    "e_ocsp_cert_id",
                    format!("hash algorithm {other} is not SHA-1 or SHA-256"),
                ));
            }
        };
        if r.cert_id.issuer_name_hash.as_bytes().len() != len
            || r.cert_id.issuer_key_hash.as_bytes().len() != len
        {
            return Err(fail(
                "e_ocsp_cert_id",
                "issuer hashes do not match the hash algorithm's length",
            ));
        }
        let this = r.this_update.0.to_unix_duration().as_secs();
        if this > produced {
            return Err(fail("e_ocsp_this_update", "thisUpdate is after producedAt"));
        }
        match r.next_update {
            Some(next) if next.0.to_unix_duration().as_secs() > this => {}
            Some(_) => {
                return Err(fail(
                    "e_ocsp_next_update",
                    "nextUpdate is not after thisUpdate",
                ));
            }
            None => {
                return Err(fail(
                    "e_ocsp_next_update",
                    "no nextUpdate (RFC 5019 §2.2.4 wants one)",
                ));
            }
        }
        if let CertStatus::Revoked(info) = &r.cert_status
            && info.revocation_time.0.to_unix_duration().as_secs() > this
        {
            return Err(fail(
                "e_ocsp_revocation_time",
                "revocationTime is after thisUpdate",
            ));
        }
        if r.single_extensions.as_ref().is_some_and(|e| !e.is_empty()) {
            return Err(fail(
                "e_ocsp_extension",
                "singleExtensions: ecca writes none",
            ));
        }
    }
    for ext in data.response_extensions.iter().flatten() {
        let oid = ext.extn_id.to_string();
        if oid != NONCE || ext.critical {
            return Err(fail(
                "e_ocsp_extension",
                format!("{oid}: only a non-critical nonce is answered"),
            ));
        }
    }
    Ok(())
}
