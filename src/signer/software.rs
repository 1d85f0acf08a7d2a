//! A CA key held in process memory, loaded from a PKCS#8 file that only its owner can read.
use std::fmt;
use std::path::Path;

use rcgen::{KeyPair, PublicKeyData, SigningKey};

use crate::core::keys::CaKeyAlg;
use crate::error::{Error, Result};
use crate::pemfile;
use crate::signer::Signer;

/// A software CA key (ring). `Debug` never prints the key.
pub struct SoftwareKey {
    key: KeyPair,
    alg: CaKeyAlg,
}

impl SoftwareKey {
    /// Generates a fresh key from the system CSPRNG.
    pub fn generate(alg: CaKeyAlg) -> Result<Self> {
        let key = KeyPair::generate_for(alg.rcgen())
            .map_err(|e| Error::Signing(format!("key generation failed: {e}")))?;
        Ok(SoftwareKey { key, alg })
    }

    /// Parses a PKCS#8 PEM key of one of the supported CA algorithms.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        let key = KeyPair::from_pem(pem)
            .map_err(|e| Error::Signing(format!("not a usable PKCS#8 key: {e}")))?;
        let alg = [CaKeyAlg::P256, CaKeyAlg::P384, CaKeyAlg::Ed25519]
            .into_iter()
            .find(|a| a.rcgen() == key.algorithm())
            .ok_or_else(|| Error::Signing("key algorithm is not P-256, P-384 or Ed25519".into()))?;
        Ok(SoftwareKey { key, alg })
    }

    /// Loads a key file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<Self> {
        pemfile::check_private(path)?;
        let pem = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_pkcs8_pem(&pem).map_err(|e| Error::Signing(format!("{}: {e}", path.display())))
    }

    /// Writes the key as PKCS#8 PEM, mode 0600, in a 0700 directory.
    pub fn save(&self, path: &Path) -> Result<()> {
        pemfile::write_private(path, self.key.serialize_pem().as_bytes())
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> Vec<u8> {
        self.key.subject_public_key_info()
    }
}

impl fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareKey")
            .field("alg", &self.alg)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl Signer for SoftwareKey {
    fn algorithm(&self) -> CaKeyAlg {
        self.alg
    }
    fn public_key_raw(&self) -> &[u8] {
        self.key.der_bytes()
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        self.key
            .sign(msg)
            .map_err(|e| Error::Signing(e.to_string()))
    }
}
