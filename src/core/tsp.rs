//! RFC 3161 time-stamping: the TSA side (requests -> signed tokens or rejections with a
//! failInfo) and the client side (requests, responses). Tokens are CMS SignedData over a
//! TSTInfo (`core::cms`).
use der::asn1::{Any, BitString, GeneralizedTime, Int, OctetString, Utf8StringRef};
use der::{Decode, Encode, Sequence};
use x509_tsp::{Accuracy, MessageImprint, TimeStampReq, TspVersion, TstInfo};

use crate::core::cms::{self, CmsSigner, DigestAlg, SignParams};
use crate::core::error::{Error, Result};

/// ecca's default TSA policy, under the enterprise number RFC 5612 reserves for documentation
/// (32473): operators set their own registered OID with `tsa_policy` in the configuration.
pub const DEFAULT_POLICY: &str = "1.3.6.1.4.1.32473.1.1";
/// Largest time-stamp request accepted.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Why a request is refused (PKIFailureInfo bits, RFC 3161 §2.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unsupported hash algorithm.
    BadAlg,
    /// A transaction not permitted or supported.
    BadRequest,
    /// The data submitted has the wrong format.
    BadDataFormat,
    /// The requested policy is not ours.
    UnacceptedPolicy,
    /// A requested extension is not supported.
    UnacceptedExtension,
    /// Something failed on our side.
    SystemFailure,
}

impl Refusal {
    fn bit(self) -> u8 {
        match self {
            Refusal::BadAlg => 0,
            Refusal::BadRequest => 2,
            Refusal::BadDataFormat => 5,
            Refusal::UnacceptedPolicy => 15,
            Refusal::UnacceptedExtension => 16,
            Refusal::SystemFailure => 25,
        }
    }

    /// The RFC 3161 name of the failure.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::BadAlg => "badAlg",
            Refusal::BadRequest => "badRequest",
            Refusal::BadDataFormat => "badDataFormat",
            Refusal::UnacceptedPolicy => "unacceptedPolicy",
            Refusal::UnacceptedExtension => "unacceptedExtension",
            Refusal::SystemFailure => "systemFailure",
        }
    }

    /// The named-bit BIT STRING: bit n set, trailing zero bits dropped (DER, X.690 §11.2.2).
    fn fail_info(self) -> Result<BitString> {
        let bit = usize::from(self.bit());
        let mut bytes = vec![0u8; bit / 8 + 1];
        bytes[bit / 8] = 0x80 >> (bit % 8);
        BitString::new((7 - bit % 8) as u8, bytes).map_err(der_err)
    }
}

/// PKIStatusInfo (RFC 3161 §2.4.2), with the failInfo as a named-bit BIT STRING.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct StatusInfo<'a> {
    status: u8,
    status_string: Option<Vec<Utf8StringRef<'a>>>,
    fail_info: Option<BitString>,
}

/// TimeStampResp.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct Response<'a> {
    status: StatusInfo<'a>,
    token: Option<Any>,
}

/// A non-negative INTEGER in minimal DER form (der's `Int::new` keeps leading zero octets).
fn int(n: u64) -> Result<Int> {
    let bytes = n.to_be_bytes();
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    let mut v = bytes[first..].to_vec();
    if v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    Int::new(&v).map_err(der_err)
}

fn der_err(e: der::Error) -> Error {
    Error::InvalidArgument(format!("time-stamp DER: {e}"))
}

/// A request accepted for stamping.
#[derive(Clone, Debug)]
pub struct Accepted {
    req: TimeStampReq,
}

impl Accepted {
    /// The hash algorithm of the message imprint (checked supported by [`accept`]).
    pub fn imprint_alg(&self) -> DigestAlg {
        DigestAlg::from_oid(&self.req.message_imprint.hash_algorithm.oid)
            .unwrap_or(DigestAlg::Sha256)
    }
}

/// Parses and checks a request against our policy.
pub fn accept(der: &[u8], policy: &str) -> std::result::Result<Accepted, Refusal> {
    if der.len() > MAX_REQUEST_BYTES {
        return Err(Refusal::BadDataFormat);
    }
    let req = TimeStampReq::from_der(der).map_err(|_| Refusal::BadDataFormat)?;
    if req.version != TspVersion::V1 {
        return Err(Refusal::BadRequest);
    }
    let alg =
        DigestAlg::from_oid(&req.message_imprint.hash_algorithm.oid).ok_or(Refusal::BadAlg)?;
    if req.message_imprint.hashed_message.as_bytes().len() != alg.output_len() {
        return Err(Refusal::BadDataFormat);
    }
    if req.req_policy.is_some_and(|p| p.to_string() != policy) {
        return Err(Refusal::UnacceptedPolicy);
    }
    if req.extensions.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(Refusal::UnacceptedExtension);
    }
    Ok(Accepted { req })
}

/// The TSA's key and certificates.
#[derive(Clone, Copy)]
pub struct Tsa<'a> {
    pub cert_der: &'a [u8],
    pub signer: &'a dyn CmsSigner,
    pub policy: &'a str,
}

impl std::fmt::Debug for Tsa<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsa").field("policy", &self.policy).finish()
    }
}

/// Signs a token for an accepted request: TSTInfo with our policy, the imprint, `serial`,
/// genTime `at`, accuracy 1 s and the nonce echoed; the TSA certificate when asked (certReq).
pub fn stamp(accepted: &Accepted, tsa: Tsa<'_>, serial: u64, at: i64) -> Result<Vec<u8>> {
    let req = &accepted.req;
    let tst = TstInfo {
        version: TspVersion::V1,
        policy: cms::parse_oid(tsa.policy)?,
        message_imprint: req.message_imprint.clone(),
        serial_number: int(serial)?,
        gen_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
            at.max(0) as u64
        ))
        .map_err(der_err)?,
        accuracy: Some(Accuracy {
            seconds: Some(1),
            millis: None,
            micros: None,
        }),
        ordering: false,
        nonce: req.nonce.clone(),
        tsa: None,
        extensions: None,
    };
    let tst_der = tst.to_der().map_err(der_err)?;
    let (digest, _) = tsa.signer.algorithms();
    let token = cms::sign(
        &SignParams {
            content_type: cms::oid::TST_INFO,
            // RFC 3161 tokens are id-signedData whatever the algorithms (GM/T 0033 too).
            format: cms::CmsFormat::Rfc5652,
            econtent: Some(&tst_der),
            content_digest: &digest.digest(&tst_der),
            signer_cert: tsa.cert_der,
            chain: &[],
            include_certs: req.cert_req,
            signing_time: Some(at),
        },
        tsa.signer,
    )?;
    let resp = Response {
        status: StatusInfo {
            status: 0,
            status_string: None,
            fail_info: None,
        },
        token: Some(Any::from_der(&token).map_err(der_err)?),
    };
    resp.to_der().map_err(der_err)
}

/// A rejection response (status rejection, with the failInfo bit and a text).
pub fn reject(refusal: Refusal) -> Vec<u8> {
    let text = refusal.name();
    let resp = Response {
        status: StatusInfo {
            status: 2,
            status_string: Utf8StringRef::new(text).ok().map(|t| vec![t]),
            fail_info: refusal.fail_info().ok(),
        },
        token: None,
    };
    // Encoding these fixed values cannot fail; an empty body tells the client as much.
    resp.to_der().unwrap_or_default()
}

/// A request for `digest` (client side), asking for the TSA certificate, with a nonce.
pub fn request(alg: DigestAlg, digest: &[u8], nonce: u64) -> Result<Vec<u8>> {
    TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: x509_cert::spki::AlgorithmIdentifier {
                oid: alg.oid(),
                parameters: None,
            },
            hashed_message: OctetString::new(digest).map_err(der_err)?,
        },
        req_policy: None,
        nonce: Some(int(nonce)?),
        cert_req: true,
        extensions: None,
    }
    .to_der()
    .map_err(der_err)
}

/// The token of a granted response (client side); a rejection becomes an error naming it.
pub fn token_of(response: &[u8]) -> Result<Vec<u8>> {
    let resp = Response::from_der(response)
        .map_err(|e| Error::Remote(format!("time-stamp response does not parse: {e}")))?;
    if resp.status.status > 1 {
        let text: Vec<String> = resp
            .status
            .status_string
            .unwrap_or_default()
            .iter()
            .map(|s| s.to_string())
            .collect();
        return Err(Error::Remote(format!(
            "the TSA refused: {}",
            text.join("; ")
        )));
    }
    let token = resp
        .token
        .ok_or_else(|| Error::Remote("granted time-stamp response without a token".into()))?;
    token.to_der().map_err(der_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_info_bits_are_named_bit_strings() {
        assert_eq!(
            Refusal::BadAlg.fail_info().unwrap().to_der().unwrap(),
            [0x03, 0x02, 0x07, 0x80]
        );
        assert_eq!(
            Refusal::BadRequest.fail_info().unwrap().to_der().unwrap(),
            [0x03, 0x02, 0x05, 0x20]
        );
        assert_eq!(
            Refusal::BadDataFormat
                .fail_info()
                .unwrap()
                .to_der()
                .unwrap(),
            [0x03, 0x02, 0x02, 0x04]
        );
    }

    #[test]
    fn integers_are_minimal() {
        assert_eq!(int(1).unwrap().to_der().unwrap(), [0x02, 0x01, 0x01]);
        assert_eq!(
            int(0x80).unwrap().to_der().unwrap(),
            [0x02, 0x02, 0x00, 0x80]
        );
        assert_eq!(int(0).unwrap().to_der().unwrap(), [0x02, 0x01, 0x00]);
    }

    #[test]
    fn unknown_extensions_are_unaccepted_not_bad_data() {
        let mut req =
            TimeStampReq::from_der(&request(DigestAlg::Sha256, &[1; 32], 1).unwrap()).unwrap();
        for critical in [true, false] {
            req.extensions = Some(vec![x509_cert::ext::Extension {
                extn_id: "1.3.6.1.4.1.55555.5".parse().unwrap(),
                critical,
                extn_value: der::asn1::OctetString::new(vec![0x05, 0x00]).unwrap(),
            }]);
            let der = req.to_der().unwrap();
            assert_eq!(
                accept(&der, DEFAULT_POLICY).unwrap_err(),
                Refusal::UnacceptedExtension,
                "critical={critical}"
            );
        }
    }

    #[test]
    fn garbage_and_bad_algorithms_are_refused() {
        assert_eq!(
            accept(b"garbage", DEFAULT_POLICY).unwrap_err(),
            Refusal::BadDataFormat
        );
        let md5ish = request(DigestAlg::Sha256, &[0; 32], 1).unwrap();
        assert!(accept(&md5ish, DEFAULT_POLICY).is_ok());
        let short = request(DigestAlg::Sha256, &[0; 20], 1).unwrap();
        assert_eq!(
            accept(&short, DEFAULT_POLICY).unwrap_err(),
            Refusal::BadDataFormat
        );
    }
}
