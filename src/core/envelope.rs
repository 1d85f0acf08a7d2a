//! Key envelopes of the dual-certificate system: how the key management centre hands an
//! encryption private key to the subscriber it was made for, readable only with the
//! subscriber's signing key.
//!
//! - SM2 (GM/T 0009 §7.4): `SM2EnvelopedKey ::= SEQUENCE { symAlgID (SM4-ECB),
//!   symEncryptedKey SM2Cipher (the SM4 key, SM2-encrypted to the signing key),
//!   Sm2PublicKey BIT STRING, Sm2EncryptedPrivateKey BIT STRING (the private key, SM4-ECB) }`.
//! - P-256/P-384 (RFC 5652, RFC 5753): an EnvelopedData with one KeyAgreeRecipientInfo
//!   (ephemeral-static ECDH, dhSinglePass-stdDH-sha256/384kdf-scheme, id-aes256-wrap) for the
//!   signing certificate, its content the PKCS#8 encryption key under AES-256-CBC.
//!
//! The primitives are RustCrypto's (`sm2` pke, `sm4`, `p256`/`p384` ECDH, `aes-kw`, `cbc`,
//! `ansi-x963-kdf`); this module only encodes.
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyAgreeRecipientIdentifier, KeyAgreeRecipientInfo,
    OriginatorIdentifierOrKey, OriginatorPublicKey, RecipientEncryptedKey, RecipientInfo,
    RecipientInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, BitString, OctetString, SetOfVec};
use der::{Decode, Encode, Sequence};
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::core::error::{Error, Result};

/// SM4 in ECB mode (GM/T 0006), SM2EnvelopedKey's symAlgID.
pub const SM4_ECB: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.104.1");
const ENVELOPED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ECDH_SHA256_KDF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.1.11.1");
const ECDH_SHA384_KDF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.1.11.2");
const AES256_WRAP: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.45");
const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

fn der_err(e: der::Error) -> Error {
    Error::InvalidArgument(format!("envelope: {e}"))
}

fn refused(what: &str) -> Error {
    Error::InvalidArgument(format!("envelope: {what}"))
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom_sys::fill(&mut out).map_err(|_| Error::Internal("no randomness".into()))?;
    Ok(out)
}

/// GM/T 0009 §7.4.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct Sm2EnvelopedKey {
    pub sym_alg_id: AlgorithmIdentifierOwned,
    /// SM2Cipher ::= SEQUENCE { XCoordinate, YCoordinate, HASH, CipherText } (C1C3C2).
    pub sym_encrypted_key: Any,
    pub sm2_public_key: BitString,
    pub sm2_encrypted_private_key: BitString,
}

fn sm4_ecb(key: &[u8; 16], data: &[u8], encrypt: bool) -> Result<Vec<u8>> {
    use sm4::cipher::{BlockDecrypt, BlockEncrypt, KeyInit, generic_array::GenericArray};
    if data.len() % 16 != 0 {
        return Err(refused("SM4-ECB data is not whole blocks"));
    }
    let cipher = sm4::Sm4::new(GenericArray::from_slice(key));
    let mut out = data.to_vec();
    for block in out.chunks_mut(16) {
        let block = GenericArray::from_mut_slice(block);
        if encrypt {
            cipher.encrypt_block(block);
        } else {
            cipher.decrypt_block(block);
        }
    }
    Ok(out)
}

/// The SM2 public point (uncompressed) of a private scalar.
pub fn sm2_point(secret: &[u8; 32]) -> Result<Vec<u8>> {
    let key = sm2_pke::pke::DecryptingKey::from_slice(secret)
        .map_err(|_| refused("not an SM2 private key"))?;
    Ok(key.encrypting_key().to_sec1_bytes().to_vec())
}

/// Seals an SM2 encryption key pair (`secret`, 32 bytes) for the holder of `recipient`
/// (an uncompressed SM2 point: the subscriber's signing key).
pub fn seal_sm2(recipient: &[u8], secret: &[u8; 32]) -> Result<Vec<u8>> {
    let public = sm2_point(secret)?;
    let sm4_key: [u8; 16] = random()?;
    let encrypting = sm2_pke::pke::EncryptingKey::new_with_mode(
        sm2_pke::PublicKey::from_sec1_bytes(recipient)
            .map_err(|_| refused("the recipient is not an SM2 public key"))?,
        sm2_pke::pke::Mode::C1C3C2,
    );
    let cipher = encrypting
        .encrypt_der(&mut getrandom_sys::SysRng, &sm4_key)
        .map_err(|_| Error::Internal("SM2 encryption failed".into()))?;
    Sm2EnvelopedKey {
        sym_alg_id: AlgorithmIdentifierOwned {
            oid: SM4_ECB,
            parameters: None,
        },
        sym_encrypted_key: Any::from_der(&cipher).map_err(der_err)?,
        sm2_public_key: BitString::from_bytes(&public).map_err(der_err)?,
        sm2_encrypted_private_key: BitString::from_bytes(&sm4_ecb(&sm4_key, secret, true)?)
            .map_err(der_err)?,
    }
    .to_der()
    .map_err(der_err)
}

/// Opens an SM2EnvelopedKey with the recipient's SM2 private key (32 bytes): the encryption
/// private key and its public point, checked to belong together.
pub fn open_sm2(envelope: &[u8], recipient: &[u8; 32]) -> Result<([u8; 32], Vec<u8>)> {
    let env = Sm2EnvelopedKey::from_der(envelope).map_err(der_err)?;
    if env.sym_alg_id.oid != SM4_ECB {
        return Err(refused(&format!(
            "symmetric algorithm {} is not SM4-ECB",
            env.sym_alg_id.oid
        )));
    }
    let decrypting = sm2_pke::pke::DecryptingKey::new_with_mode(
        sm2_pke::NonZeroScalar::try_from(&recipient[..])
            .map_err(|_| refused("not an SM2 private key"))?,
        sm2_pke::pke::Mode::C1C3C2,
    );
    let cipher = env.sym_encrypted_key.to_der().map_err(der_err)?;
    let sm4_key: [u8; 16] = decrypting
        .decrypt_der(&cipher)
        .map_err(|_| refused("the SM4 key does not decrypt with this key (another recipient?)"))?
        .try_into()
        .map_err(|_| refused("the SM4 key is not 16 bytes"))?;
    let secret: [u8; 32] = sm4_ecb(&sm4_key, env.sm2_encrypted_private_key.raw_bytes(), false)?
        .try_into()
        .map_err(|_| refused("the private key is not 32 bytes"))?;
    let public = env.sm2_public_key.raw_bytes().to_vec();
    if sm2_point(&secret)? != public {
        return Err(refused("the private key does not match Sm2PublicKey"));
    }
    Ok((secret, public))
}

/// ECC-CMS-SharedInfo (RFC 5753 §7.2), the X9.63 KDF's SharedInfo.
#[derive(Sequence)]
struct EccCmsSharedInfo {
    key_info: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    supp_pub_info: OctetString,
}

/// The ECDH curves ecca envelopes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl Curve {
    fn of_spki(spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> Result<Self> {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        match (spki.algorithm.oid == EC_PUBLIC_KEY, curve) {
            (true, Some(c)) if c == P256 => Ok(Curve::P256),
            (true, Some(c)) if c == P384 => Ok(Curve::P384),
            _ => Err(refused(
                "the recipient's key is not P-256 or P-384 (an envelope needs ECDH)",
            )),
        }
    }

    fn scheme(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => ECDH_SHA256_KDF,
            Curve::P384 => ECDH_SHA384_KDF,
        }
    }

    /// The key-encryption key from the shared secret (X9.63 KDF, RFC 5753 §7.2).
    fn kek(self, z: &[u8]) -> Result<[u8; 32]> {
        let info = EccCmsSharedInfo {
            key_info: AlgorithmIdentifierOwned {
                oid: AES256_WRAP,
                parameters: None,
            },
            supp_pub_info: OctetString::new(256u32.to_be_bytes().to_vec()).map_err(der_err)?,
        }
        .to_der()
        .map_err(der_err)?;
        let mut kek = [0u8; 32];
        let done = match self {
            Curve::P256 => ansi_x963_kdf::derive_key_into::<sha2_kdf::Sha256>(z, &info, &mut kek),
            Curve::P384 => ansi_x963_kdf::derive_key_into::<sha2_kdf::Sha384>(z, &info, &mut kek),
        };
        done.map_err(|_| Error::Internal("X9.63 KDF".into()))?;
        Ok(kek)
    }

    /// An ephemeral key: (its uncompressed point, the shared secret with `peer`).
    fn agree_ephemeral(self, peer: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let bad = |_| refused("the recipient's public key is not a point on its curve");
        Ok(match self {
            Curve::P256 => {
                let eph = p256::ecdh::EphemeralSecret::random(&mut pkcs8::rand_core::OsRng);
                let peer = p256::PublicKey::from_sec1_bytes(peer).map_err(bad)?;
                let z = eph.diffie_hellman(&peer);
                (
                    eph.public_key().to_encoded_point(false).as_bytes().to_vec(),
                    z.raw_secret_bytes().to_vec(),
                )
            }
            Curve::P384 => {
                let eph = p384::ecdh::EphemeralSecret::random(&mut pkcs8::rand_core::OsRng);
                let peer = p384::PublicKey::from_sec1_bytes(peer).map_err(bad)?;
                let z = eph.diffie_hellman(&peer);
                (
                    eph.public_key().to_encoded_point(false).as_bytes().to_vec(),
                    z.raw_secret_bytes().to_vec(),
                )
            }
        })
    }

    /// The shared secret of a static private key (PKCS#8) with `peer`.
    fn agree_static(self, pkcs8_der: &[u8], peer: &[u8]) -> Result<Vec<u8>> {
        use pkcs8::DecodePrivateKey;
        let bad_key = |_| refused("the private key is not the recipient's kind of key");
        let bad_peer = |_| refused("the originator's key is not a point on the curve");
        Ok(match self {
            Curve::P256 => {
                let secret = p256::SecretKey::from_pkcs8_der(pkcs8_der).map_err(bad_key)?;
                let peer = p256::PublicKey::from_sec1_bytes(peer).map_err(bad_peer)?;
                p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine())
                    .raw_secret_bytes()
                    .to_vec()
            }
            Curve::P384 => {
                let secret = p384::SecretKey::from_pkcs8_der(pkcs8_der).map_err(bad_key)?;
                let peer = p384::PublicKey::from_sec1_bytes(peer).map_err(bad_peer)?;
                p384::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine())
                    .raw_secret_bytes()
                    .to_vec()
            }
        })
    }
}

/// Seals `content` (the PKCS#8 encryption key) in an EnvelopedData for the holder of the
/// signing certificate `recipient_cert_der` (P-256 or P-384): ContentInfo DER.
pub fn seal_cms(recipient_cert_der: &[u8], content: &[u8]) -> Result<Vec<u8>> {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    let cert = x509_cert::Certificate::from_der(recipient_cert_der).map_err(der_err)?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let curve = Curve::of_spki(spki)?;
    let (ephemeral, z) = curve.agree_ephemeral(spki.subject_public_key.raw_bytes())?;
    let kek = curve.kek(&z)?;
    let cek: [u8; 32] = random()?;
    let wrapped = aes_kw::KekAes256::from(kek)
        .wrap_vec(&cek)
        .map_err(|_| Error::Internal("AES key wrap".into()))?;
    let iv: [u8; 16] = random()?;
    let ciphertext = cbc::Encryptor::<aes::Aes256>::new(&cek.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(content);
    let kari = KeyAgreeRecipientInfo {
        version: CmsVersion::V3,
        originator: OriginatorIdentifierOrKey::OriginatorKey(OriginatorPublicKey {
            // RFC 5753 §3.1.1: id-ecPublicKey, parameters absent (the recipient's curve).
            algorithm: AlgorithmIdentifierOwned {
                oid: EC_PUBLIC_KEY,
                parameters: None,
            },
            public_key: BitString::from_bytes(&ephemeral).map_err(der_err)?,
        }),
        ukm: None,
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: curve.scheme(),
            parameters: Some(
                Any::encode_from(&AlgorithmIdentifierOwned {
                    oid: AES256_WRAP,
                    parameters: None,
                })
                .map_err(der_err)?,
            ),
        },
        recipient_enc_keys: vec![RecipientEncryptedKey {
            rid: KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: cert.tbs_certificate.issuer.clone(),
                serial_number: cert.tbs_certificate.serial_number.clone(),
            }),
            enc_key: OctetString::new(wrapped).map_err(der_err)?,
        }],
    };
    let mut infos = SetOfVec::new();
    infos.insert(RecipientInfo::Kari(kari)).map_err(der_err)?;
    let enveloped = EnvelopedData {
        // RFC 5652 §6.1: version 2 with a kari and no originatorInfo or attributes.
        version: CmsVersion::V2,
        originator_info: None,
        recip_infos: RecipientInfos(infos),
        encrypted_content: EncryptedContentInfo {
            content_type: DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: AES256_CBC,
                parameters: Some(
                    Any::encode_from(&OctetString::new(iv.to_vec()).map_err(der_err)?)
                        .map_err(der_err)?,
                ),
            },
            encrypted_content: Some(OctetString::new(ciphertext).map_err(der_err)?),
        },
        unprotected_attrs: None,
    };
    ContentInfo {
        content_type: ENVELOPED_DATA,
        content: Any::encode_from(&enveloped).map_err(der_err)?,
    }
    .to_der()
    .map_err(der_err)
}

/// Opens either kind of envelope with the subscriber's signing key (PKCS#8 DER): the
/// encryption private key, PKCS#8 DER. An SM2EnvelopedKey needs an SM2 key, an EnvelopedData a
/// P-256/P-384 key; anything else is refused with what was found.
pub fn open(envelope: &[u8], signing_key_pkcs8: &[u8]) -> Result<Vec<u8>> {
    use pkcs8::{DecodePrivateKey, EncodePrivateKey};
    let info = pkcs8::PrivateKeyInfo::try_from(signing_key_pkcs8)
        .map_err(|_| refused("the signing key is not a PKCS#8 private key"))?;
    let is_sm2 = info
        .algorithm
        .parameters_oid()
        .is_ok_and(|c| c == crate::core::sm2::CURVE);
    let is_cms = ContentInfo::from_der(envelope).is_ok();
    match (is_cms, is_sm2) {
        (true, false) => open_cms(envelope, signing_key_pkcs8),
        (false, true) => {
            if Sm2EnvelopedKey::from_der(envelope).is_err() {
                return Err(refused(
                    "neither an SM2EnvelopedKey (GM/T 0009) nor a CMS EnvelopedData",
                ));
            }
            let signing = sm2::SecretKey::from_pkcs8_der(signing_key_pkcs8)
                .map_err(|_| refused("the signing key is not a usable SM2 key"))?;
            let (secret, _) = open_sm2(envelope, &signing.to_bytes().into())?;
            let key = sm2::SecretKey::from_slice(&secret)
                .map_err(|_| refused("the enveloped key is not an SM2 private key"))?;
            Ok(key
                .to_pkcs8_der()
                .map_err(|e| Error::Internal(format!("PKCS#8 encoding: {e}")))?
                .as_bytes()
                .to_vec())
        }
        (true, true) => Err(refused(
            "this is a CMS EnvelopedData (for a P-256/P-384 signing key) but the key is SM2",
        )),
        (false, false) => match Sm2EnvelopedKey::from_der(envelope) {
            Ok(_) => Err(refused(
                "this is an SM2EnvelopedKey (for an SM2 signing key) but the key is not SM2",
            )),
            Err(_) => Err(refused(
                "neither an SM2EnvelopedKey (GM/T 0009) nor a CMS EnvelopedData",
            )),
        },
    }
}

/// Opens an EnvelopedData sealed by [`seal_cms`] with the recipient's PKCS#8 private key
/// (P-256 or P-384): the content. Every key agreement recipient is tried; one this key can
/// unwrap is the recipient's.
pub fn open_cms(envelope: &[u8], recipient_key: &[u8]) -> Result<Vec<u8>> {
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    let ci = ContentInfo::from_der(envelope).map_err(der_err)?;
    if ci.content_type != ENVELOPED_DATA {
        return Err(refused(&format!(
            "content type {} is not envelopedData",
            ci.content_type
        )));
    }
    let env = ci.content.decode_as::<EnvelopedData>().map_err(der_err)?;
    let info = pkcs8::PrivateKeyInfo::try_from(recipient_key)
        .map_err(|_| refused("the private key is not PKCS#8"))?;
    let curve = match info.algorithm.parameters_oid() {
        Ok(c) if c.as_bytes() == P256.as_bytes() => Curve::P256,
        Ok(c) if c.as_bytes() == P384.as_bytes() => Curve::P384,
        _ => return Err(refused("the private key is not P-256 or P-384")),
    };
    let mut cek = None;
    for ri in env.recip_infos.0.iter() {
        let RecipientInfo::Kari(kari) = ri else {
            continue;
        };
        let OriginatorIdentifierOrKey::OriginatorKey(originator) = &kari.originator else {
            continue;
        };
        if kari.key_enc_alg.oid != curve.scheme() {
            continue;
        }
        let z = curve.agree_static(recipient_key, originator.public_key.raw_bytes())?;
        let kek = aes_kw::KekAes256::from(curve.kek(&z)?);
        cek = kari
            .recipient_enc_keys
            .iter()
            .find_map(|r| kek.unwrap_vec(r.enc_key.as_bytes()).ok());
        if cek.is_some() {
            break;
        }
    }
    let cek: [u8; 32] = cek
        .ok_or_else(|| refused("not addressed to this key"))?
        .try_into()
        .map_err(|_| refused("the content key is not 32 bytes"))?;
    let eci = &env.encrypted_content;
    if eci.content_enc_alg.oid != AES256_CBC {
        return Err(refused(&format!(
            "content encryption {} is not AES-256-CBC",
            eci.content_enc_alg.oid
        )));
    }
    let iv: [u8; 16] = eci
        .content_enc_alg
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<OctetString>().ok())
        .and_then(|iv| iv.as_bytes().try_into().ok())
        .ok_or_else(|| refused("AES-256-CBC without a 16-byte IV"))?;
    let ciphertext = eci
        .encrypted_content
        .as_ref()
        .ok_or_else(|| refused("no encrypted content"))?;
    cbc::Decryptor::<aes::Aes256>::new(&cek.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext.as_bytes())
        .map_err(|_| refused("the content does not decrypt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sm2_envelope_opens_only_with_the_recipients_key() {
        let recipient: [u8; 32] = random().unwrap();
        let other: [u8; 32] = random().unwrap();
        let secret: [u8; 32] = random().unwrap();
        let env = seal_sm2(&sm2_point(&recipient).unwrap(), &secret).unwrap();
        let (opened, public) = open_sm2(&env, &recipient).unwrap();
        assert_eq!(opened, secret);
        assert_eq!(public, sm2_point(&secret).unwrap());
        let err = open_sm2(&env, &other).unwrap_err().to_string();
        assert!(err.contains("another recipient"), "{err}");
        assert!(open_sm2(&env[..env.len() - 2], &recipient).is_err());
    }

    #[test]
    fn an_ecdh_envelope_opens_only_for_its_certificate() {
        let cert = |alg| {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let mut p = rcgen::CertificateParams::new(vec!["x.example".to_string()]).unwrap();
            p.serial_number = Some(rcgen::SerialNumber::from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]));
            (
                p.self_signed(&key).unwrap().der().to_vec(),
                key.serialize_der(),
            )
        };
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
        ] {
            let (der, key) = cert(alg);
            let env = seal_cms(&der, b"a PKCS#8 key").unwrap();
            assert_eq!(open_cms(&env, &key).unwrap(), b"a PKCS#8 key");
            let (_, other_key) = cert(alg);
            let err = open_cms(&env, &other_key).unwrap_err().to_string();
            assert!(err.contains("not addressed"), "{err}");
        }
        let (ed, _) = cert(&rcgen::PKCS_ED25519);
        let err = seal_cms(&ed, b"k").unwrap_err().to_string();
        assert!(err.contains("P-256 or P-384"), "{err}");
    }
}
