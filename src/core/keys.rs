//! Key algorithms: which subject keys a profile accepts, which CA keys ecca can hold.
use std::fmt;

use serde::{Deserialize, Serialize};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    OID_SIG_ED25519,
};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::core::error::{Error, Result};

/// A subject public key algorithm (and size) that ecca knows how to certify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlg {
    P256,
    P384,
    Ed25519,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    /// SM2 (GM/T 0003, curve 1.2.156.10197.1.301): the national algorithm.
    Sm2,
}

impl KeyAlg {
    /// Every algorithm, in the order profiles list them.
    pub const ALL: [KeyAlg; 7] = [
        KeyAlg::P256,
        KeyAlg::P384,
        KeyAlg::Ed25519,
        KeyAlg::Rsa2048,
        KeyAlg::Rsa3072,
        KeyAlg::Rsa4096,
        KeyAlg::Sm2,
    ];

    /// The name used in profiles, the CLI and the API.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::P256 => "p256",
            KeyAlg::P384 => "p384",
            KeyAlg::Ed25519 => "ed25519",
            KeyAlg::Rsa2048 => "rsa2048",
            KeyAlg::Rsa3072 => "rsa3072",
            KeyAlg::Rsa4096 => "rsa4096",
            KeyAlg::Sm2 => "sm2",
        }
    }

    /// Parses a name as printed by [`KeyAlg::name`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The family of algorithms it belongs to (which hierarchies may certify it).
    pub fn family(self) -> Family {
        match self {
            KeyAlg::Sm2 => Family::National,
            _ => Family::International,
        }
    }

    /// True for keys that encrypt (RSA, SM2): keyEncipherment and dataEncipherment suit them;
    /// ECDH keys agree (keyAgreement) instead, and EdDSA keys only sign.
    pub fn enciphers(self) -> bool {
        self.is_rsa() || self == KeyAlg::Sm2
    }

    /// True for RSA keys.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096)
    }

    /// Classifies a SubjectPublicKeyInfo, refusing weak or unknown keys with a precise reason.
    pub fn of_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self> {
        let alg = &spki.algorithm.algorithm;
        let key_err = |reason: String| Error::field("public key", reason);
        if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .ok_or_else(|| key_err("EC key without a named curve".into()))?;
            let (kind, len) = if curve == OID_EC_P256 {
                (KeyAlg::P256, 65)
            } else if curve == OID_NIST_EC_P384 {
                (KeyAlg::P384, 97)
            } else if curve.as_bytes() == crate::core::sm2::CURVE.as_bytes() {
                (KeyAlg::Sm2, 65)
            } else {
                return Err(key_err(format!(
                    "unsupported elliptic curve {curve} (use P-256, P-384 or SM2)"
                )));
            };
            let point = &spki.subject_public_key.data;
            if point.len() != len || point[0] != 4 {
                return Err(key_err(
                    "EC point must be uncompressed and of the curve's size".into(),
                ));
            }
            Ok(kind)
        } else if *alg == OID_SIG_ED25519 {
            if spki.subject_public_key.data.len() != 32 {
                return Err(key_err("Ed25519 key must be 32 bytes".into()));
            }
            Ok(KeyAlg::Ed25519)
        } else if *alg == OID_PKCS1_RSAENCRYPTION {
            let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err(key_err("malformed RSA public key".into()));
            };
            let bits = rsa.key_size();
            let e = rsa
                .try_exponent()
                .map_err(|_| key_err("RSA exponent too large".into()))?;
            if e < 65537 || e % 2 == 0 {
                return Err(key_err(format!(
                    "RSA public exponent {e} refused (use 65537)"
                )));
            }
            match bits {
                2048 => Ok(KeyAlg::Rsa2048),
                3072 => Ok(KeyAlg::Rsa3072),
                4096 => Ok(KeyAlg::Rsa4096),
                b if b < 2048 => Err(key_err(format!("RSA-{b} is too weak (at least 2048 bits)"))),
                b => Err(key_err(format!(
                    "RSA-{b} is not supported (2048, 3072 or 4096 bits)"
                ))),
            }
        } else {
            Err(key_err(format!("unsupported key algorithm {alg}")))
        }
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A family of algorithms: a hierarchy certifies subject keys of its own family only, so a
/// national-algorithm hierarchy never vouches for a foreign key and vice versa.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// ECDSA, EdDSA and RSA (RFC 5280, the CA/Browser Forum).
    International,
    /// SM2 with SM3 (GM/T 0003, 0004, 0015: China's commercial cryptography).
    National,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::International => "international",
            Family::National => "national (SM2)",
        }
    }
}

/// The algorithm of a CA key: what ecca can generate and sign with (ring cannot generate RSA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaKeyAlg {
    #[default]
    P256,
    P384,
    Ed25519,
    /// SM2 signing with SM3 and the GM/T 0009 default distinguishing ID.
    Sm2,
}

impl CaKeyAlg {
    /// "p256", "p384", "ed25519" or "sm2" (what [`CaKeyAlg::parse`] reads).
    pub fn as_str(self) -> &'static str {
        match self {
            CaKeyAlg::P256 => "p256",
            CaKeyAlg::P384 => "p384",
            CaKeyAlg::Ed25519 => "ed25519",
            CaKeyAlg::Sm2 => "sm2",
        }
    }

    /// Parses "p256", "p384", "ed25519" or "sm2".
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "p256" => Some(CaKeyAlg::P256),
            "p384" => Some(CaKeyAlg::P384),
            "ed25519" => Some(CaKeyAlg::Ed25519),
            "sm2" => Some(CaKeyAlg::Sm2),
            _ => None,
        }
    }

    /// The rcgen algorithm whose encodings lay out certificates and requests for keys of this
    /// kind. rcgen knows no SM2: an SM2 key borrows P-256's layout (the same 65-byte point) and
    /// `core::issue::retarget` then names SM2 in the SPKI and SM3withSM2 as the signature.
    pub fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            CaKeyAlg::P256 | CaKeyAlg::Sm2 => &rcgen::PKCS_ECDSA_P256_SHA256,
            CaKeyAlg::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            CaKeyAlg::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    /// The family of subject keys a hierarchy with keys of this kind certifies.
    pub fn family(self) -> Family {
        self.key_alg().family()
    }

    /// The same key as a subject key algorithm.
    pub fn key_alg(self) -> KeyAlg {
        match self {
            CaKeyAlg::P256 => KeyAlg::P256,
            CaKeyAlg::P384 => KeyAlg::P384,
            CaKeyAlg::Ed25519 => KeyAlg::Ed25519,
            CaKeyAlg::Sm2 => KeyAlg::Sm2,
        }
    }
}

/// A signing key (a CA's, the OCSP responder's, the TSA's). Implementations (`crate::signer`)
/// never expose private key material.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The key's algorithm (and so the signature algorithm: ECDSA with the curve's hash,
    /// Ed25519, or SM2 with SM3 and the default distinguishing ID).
    fn algorithm(&self) -> CaKeyAlg;
    /// The subjectPublicKey bits (an uncompressed EC point or the Ed25519 key).
    fn public_key_raw(&self) -> &[u8];
    /// Signs `msg`; ECDSA and SM2 signatures are DER SEQUENCE { r, s } (X.509 form).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>>;
}

/// Verifies `signature` over `data` by the key in `spki`, under `alg` (as a certificate, CRL,
/// CSR, OCSP response or CMS signer info names it): SM2 (SM3withSM2 or sm2-1, with the
/// distinguishing ID `sm2_id`) by `core::sm2`, everything else by x509-parser (ring).
pub fn verify_signature(
    spki: &SubjectPublicKeyInfo<'_>,
    alg: &x509_parser::x509::AlgorithmIdentifier<'_>,
    signature: &[u8],
    data: &[u8],
    sm2_id: &str,
) -> Result<()> {
    if crate::core::sm2::is_signature_oid(alg.algorithm.as_bytes()) {
        if KeyAlg::of_spki(spki)? != KeyAlg::Sm2 {
            return Err(Error::Signing(
                "an SM2 signature from a key that is not an SM2 key".into(),
            ));
        }
        return crate::core::sm2::verify(&spki.subject_public_key.data, sm2_id, data, signature);
    }
    let bits = x509_parser::der_parser::asn1_rs::BitString::new(0, signature);
    x509_parser::verify::verify_signature(spki, alg, &bits, data)
        .map_err(|e| Error::Signing(format!("signature does not verify: {e}")))
}

/// True if SPKI DER names an SM2 key (id-ecPublicKey with the SM2 curve).
pub fn is_sm2_spki(spki_der: &[u8]) -> bool {
    use x509_parser::prelude::FromDer;
    SubjectPublicKeyInfo::from_der(spki_der)
        .is_ok_and(|(_, s)| KeyAlg::of_spki(&s).is_ok_and(|k| k == KeyAlg::Sm2))
}
