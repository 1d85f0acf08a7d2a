//! A signer's own document key (held by `ecca sign` on the signer's machine, never by the
//! CA): ecca's kinds (P-256, P-384, Ed25519, SM2) or RSA from openssl, as a CMS signer.
use std::path::Path;

use rcgen::{KeyPair, PublicKeyData};

use crate::core::cms::{AlgorithmIdentifierOwned, CaKey, CmsSigner, DigestAlg};
use crate::core::keys::{CaKeyAlg, Signer};
use crate::error::{Error, Result};
use crate::signer::SoftwareKey;

/// The document signer's private key. `Debug` never prints it.
pub enum DocumentKey {
    Own(SoftwareKey),
    Rsa(KeyPair),
}

impl std::fmt::Debug for DocumentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DocumentKey(<redacted>)")
    }
}

impl DocumentKey {
    /// Reads a PKCS#8 PEM private key.
    pub fn load(path: &Path) -> Result<Self> {
        let pem = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        if let Ok(k) = SoftwareKey::from_pkcs8_pem(&pem) {
            return Ok(DocumentKey::Own(k));
        }
        KeyPair::from_pem(&pem).map(DocumentKey::Rsa).map_err(|e| {
            Error::InvalidArgument(format!(
                "{}: not a PKCS#8 private key ({e})",
                path.display()
            ))
        })
    }

    /// Its SubjectPublicKeyInfo (to match the certificate).
    pub fn spki_der(&self) -> Vec<u8> {
        match self {
            DocumentKey::Own(k) => k.spki_der(),
            DocumentKey::Rsa(k) => k.subject_public_key_info(),
        }
    }

    pub fn is_sm2(&self) -> bool {
        matches!(self, DocumentKey::Own(k) if k.algorithm() == CaKeyAlg::Sm2)
    }
}

impl CmsSigner for DocumentKey {
    fn algorithms(&self) -> (DigestAlg, AlgorithmIdentifierOwned) {
        match self {
            DocumentKey::Own(k) => CaKey(k).algorithms(),
            DocumentKey::Rsa(k) => k.algorithms(),
        }
    }
    fn sign(&self, data: &[u8]) -> crate::core::Result<Vec<u8>> {
        match self {
            DocumentKey::Own(k) => CaKey(k).sign(data),
            DocumentKey::Rsa(k) => CmsSigner::sign(k, data),
        }
    }
}
