//! CA private keys behind one trait: software keys (ring) and keys in a PKCS#11 token.

pub mod document;
pub mod pkcs11;
pub mod software;

pub use document::DocumentKey;
pub use software::SoftwareKey;

pub use crate::core::keys::Signer;
