//! China's commercial cryptography as X.509 and CMS name it: the SM2 curve and signature
//! (GM/T 0003), SM3 (GM/T 0004), their object identifiers (GM/T 0006, GM/T 0010) and the
//! GM/T 0009 default distinguishing ID. The arithmetic is RustCrypto's `sm2` and `sm3`;
//! this module only encodes (signatures as DER SEQUENCE { r, s }) and verifies.
use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use sm2::dsa::signature::Verifier;

use crate::core::error::{Error, Result};

/// The SM2 curve, inside id-ecPublicKey (GM/T 0006).
pub const CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
/// SM2 signature ("sm2-1", GM/T 0010 SignerInfo.signatureAlgorithm).
pub const SM2_SIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301.1");
/// SM3withSM2: certificates, CRLs, OCSP (GM/T 0015); parameters absent.
pub const SM3_WITH_SM2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
/// SM3, the hash (GM/T 0004).
pub const SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.401");
/// GM/T 0010 content types: data, signedData.
pub const GM_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.6.1.4.2.1");
pub const GM_SIGNED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.156.10197.6.1.4.2.2");

/// The GM/T 0009 default distinguishing ID, which the signer hashes into Z. (OpenSSL 3.0's
/// default is empty: pass `-sigopt`/`-vfyopt distid:1234567812345678`.)
pub const DEFAULT_ID: &str = "1234567812345678";

/// True for the signature algorithms that mean SM2 with SM3.
pub fn is_signature_oid(oid: &[u8]) -> bool {
    oid == SM3_WITH_SM2.as_bytes() || oid == SM2_SIGN.as_bytes()
}

/// SM3 of `data`.
pub fn sm3(data: &[u8]) -> [u8; 32] {
    use sm3::Digest;
    sm3::Sm3::digest(data).into()
}

#[derive(der::Sequence)]
struct SignatureValue<'a> {
    r: der::asn1::UintRef<'a>,
    s: der::asn1::UintRef<'a>,
}

/// An SM2 signature as X.509 and CMS carry it: DER SEQUENCE { r INTEGER, s INTEGER }.
pub fn signature_der(sig: &sm2::dsa::Signature) -> Result<Vec<u8>> {
    let (r, s) = (sig.r_bytes(), sig.s_bytes());
    let value = SignatureValue {
        r: der::asn1::UintRef::new(&r).map_err(der_err)?,
        s: der::asn1::UintRef::new(&s).map_err(der_err)?,
    };
    value.to_der().map_err(der_err)
}

/// Parses a DER SM2 signature (each integer at most 32 bytes, canonical DER).
pub fn parse_signature(der: &[u8]) -> Result<sm2::dsa::Signature> {
    let v =
        SignatureValue::from_der(der).map_err(|e| Error::Signing(format!("SM2 signature: {e}")))?;
    let field = |x: der::asn1::UintRef<'_>| -> Result<[u8; 32]> {
        let b = x.as_bytes();
        if b.len() > 32 {
            return Err(Error::Signing(
                "SM2 signature integer longer than 32 bytes".into(),
            ));
        }
        let mut out = [0u8; 32];
        out[32 - b.len()..].copy_from_slice(b);
        Ok(out)
    };
    let (r, s) = (field(v.r)?, field(v.s)?);
    sm2::dsa::Signature::from_scalars(r, s)
        .map_err(|_| Error::Signing("SM2 signature out of range".into()))
}

/// Verifies an SM2 signature (DER) over `msg` by the public key `point` (uncompressed SEC1),
/// with the distinguishing ID `id`.
pub fn verify(point: &[u8], id: &str, msg: &[u8], sig_der: &[u8]) -> Result<()> {
    let key = sm2::dsa::VerifyingKey::from_sec1_bytes(id, point)
        .map_err(|_| Error::field("public key", "not a point on the SM2 curve"))?;
    let sig = parse_signature(sig_der)?;
    key.verify(msg, &sig)
        .map_err(|_| Error::Signing("SM2 signature does not verify".into()))
}

/// The SubjectPublicKeyInfo of an SM2 public key: id-ecPublicKey with the SM2 curve.
pub fn spki_der(point: &[u8]) -> Result<Vec<u8>> {
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned {
        algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
            oid: const_oid::db::rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(der::Any::from(der::asn1::AnyRef::from(&CURVE))),
        },
        subject_public_key: der::asn1::BitString::from_bytes(point).map_err(der_err)?,
    };
    spki.to_der().map_err(der_err)
}

/// The AlgorithmIdentifier SM3withSM2, parameters absent (GM/T 0015).
pub fn signature_algorithm() -> x509_cert::spki::AlgorithmIdentifierOwned {
    x509_cert::spki::AlgorithmIdentifierOwned {
        oid: SM3_WITH_SM2,
        parameters: None,
    }
}

fn der_err(e: der::Error) -> Error {
    Error::Internal(format!("DER: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sm2::dsa::signature::Signer;

    #[test]
    fn signatures_round_trip_through_der_and_bind_the_id() {
        let secret = sm2::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let key = sm2::dsa::SigningKey::new(DEFAULT_ID, &secret).unwrap();
        let point = key.verifying_key().to_sec1_bytes();
        let sig: sm2::dsa::Signature = key.sign(b"order 42");
        let der = signature_der(&sig).unwrap();
        assert_eq!(parse_signature(&der).unwrap(), sig);
        verify(&point, DEFAULT_ID, b"order 42", &der).unwrap();
        assert!(
            verify(&point, "", b"order 42", &der).is_err(),
            "the ID is part of what is signed"
        );
        assert!(verify(&point, DEFAULT_ID, b"order 43", &der).is_err());
        assert!(parse_signature(&der[..der.len() - 1]).is_err());
    }

    #[test]
    fn sm3_of_abc_is_the_standard_vector() {
        // GM/T 0004-2012 appendix A.1.
        assert_eq!(
            hex::encode(sm3(b"abc")),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
    }
}
