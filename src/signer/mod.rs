//! CA private keys behind one trait: software keys (ring) and keys in a PKCS#11 token.
use std::fmt;

use crate::core::keys::CaKeyAlg;
use crate::error::Result;

pub mod pkcs11;
pub mod software;

pub use software::SoftwareKey;

/// A CA signing key. Implementations never expose private key material.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The key's algorithm (and so the signature algorithm: ECDSA with the curve's hash, or Ed25519).
    fn algorithm(&self) -> CaKeyAlg;
    /// The subjectPublicKey bits (an uncompressed EC point or the Ed25519 key).
    fn public_key_raw(&self) -> &[u8];
    /// Signs `msg`; ECDSA signatures are DER (X.509 form).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>>;
}
