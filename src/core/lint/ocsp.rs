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
const SM3: &str = "1.2.156.10197.1.401";
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
            SHA256 | SM3 => 32,
            other => {
                return Err(fail(
                    "e_ocsp_cert_id",
                    format!("hash algorithm {other} is not SHA-1, SHA-256 or SM3"),
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

#[cfg(test)]
mod tests {
    use der::Encode;
    use der::asn1::{Null, OctetString};
    use x509_cert::ext::Extension;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::AlgorithmIdentifierOwned;
    use x509_ocsp::{CertId, OcspGeneralizedTime, RevokedInfo, SingleResponse};

    use super::*;
    use crate::core::revocation::generalized_time;

    const NOW: i64 = 1_800_000_000;
    const KEY_HASH: [u8; 20] = [3; 20];

    fn t(unix: i64) -> OcspGeneralizedTime {
        OcspGeneralizedTime(generalized_time(unix).unwrap())
    }

    fn single(status: CertStatus) -> SingleResponse {
        SingleResponse {
            cert_id: CertId {
                hash_algorithm: AlgorithmIdentifierOwned {
                    oid: SHA1.parse().unwrap(),
                    parameters: None,
                },
                issuer_name_hash: OctetString::new([1u8; 20]).unwrap(),
                issuer_key_hash: OctetString::new([2u8; 20]).unwrap(),
                serial_number: SerialNumber::new(&[0x41, 1]).unwrap(),
            },
            cert_status: status,
            this_update: t(NOW),
            next_update: Some(t(NOW + 3600)),
            single_extensions: None,
        }
    }

    fn good() -> ResponseData {
        ResponseData {
            version: Version::V1,
            responder_id: ResponderId::ByKey(OctetString::new(KEY_HASH).unwrap()),
            produced_at: t(NOW),
            responses: vec![single(CertStatus::Good(Null))],
            response_extensions: Some(vec![Extension {
                extn_id: NONCE.parse().unwrap(),
                critical: false,
                extn_value: OctetString::new(vec![4, 2, 9, 9]).unwrap(),
            }]),
        }
    }

    fn lint(data: &ResponseData) -> Result<()> {
        lint_ocsp(
            &data.to_der().unwrap(),
            &OcspPolicy {
                key_hash: &KEY_HASH,
            },
        )
    }

    #[test]
    fn a_good_response_passes() {
        lint(&good()).unwrap();
        let mut revoked = good();
        revoked.responses = vec![single(CertStatus::Revoked(RevokedInfo {
            revocation_time: t(NOW - 10),
            revocation_reason: None,
        }))];
        revoked.response_extensions = None;
        lint(&revoked).unwrap();
    }

    type Defect = Box<dyn Fn(&mut ResponseData)>;

    #[test]
    fn each_ocsp_lint_refuses_its_defect() {
        let cases: Vec<(&str, Defect)> = vec![
            (
                "e_ocsp_responder_id",
                Box::new(|d| {
                    d.responder_id = ResponderId::ByKey(OctetString::new([9u8; 20]).unwrap())
                }),
            ),
            (
                "e_ocsp_responder_id",
                Box::new(|d| d.responder_id = ResponderId::ByName(Default::default())),
            ),
            ("e_ocsp_responses", Box::new(|d| d.responses.clear())),
            (
                "e_ocsp_cert_id",
                Box::new(|d| {
                    d.responses[0].cert_id.hash_algorithm.oid =
                        "1.2.840.113549.2.5".parse().unwrap()
                }),
            ),
            (
                "e_ocsp_cert_id",
                Box::new(|d| {
                    d.responses[0].cert_id.issuer_key_hash = OctetString::new([2u8; 32]).unwrap()
                }),
            ),
            (
                "e_ocsp_this_update",
                Box::new(|d| d.responses[0].this_update = t(NOW + 1)),
            ),
            (
                "e_ocsp_next_update",
                Box::new(|d| d.responses[0].next_update = None),
            ),
            (
                "e_ocsp_next_update",
                Box::new(|d| d.responses[0].next_update = Some(t(NOW))),
            ),
            (
                "e_ocsp_revocation_time",
                Box::new(|d| {
                    d.responses[0].cert_status = CertStatus::Revoked(RevokedInfo {
                        revocation_time: t(NOW + 5),
                        revocation_reason: None,
                    })
                }),
            ),
            (
                "e_ocsp_extension",
                Box::new(|d| {
                    d.responses[0].single_extensions = d.response_extensions.clone();
                }),
            ),
            (
                "e_ocsp_extension",
                Box::new(|d| {
                    if let Some(e) = d.response_extensions.as_mut() {
                        e[0].critical = true;
                    }
                }),
            ),
        ];
        for (want, defect) in cases {
            let mut data = good();
            defect(&mut data);
            match lint(&data) {
                Err(Error::LintFailed { lint, object, .. }) => {
                    assert_eq!((lint, object), (want, "OCSP response"));
                }
                other => panic!("{want}: expected a refusal, got {other:?}"),
            }
        }
        let policy = OcspPolicy {
            key_hash: &KEY_HASH,
        };
        assert!(matches!(
            lint_ocsp(&[0x30, 0x00], &policy),
            Err(Error::LintFailed {
                lint: "e_ocsp_der",
                ..
            })
        ));
    }
}
