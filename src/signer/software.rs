//! A CA key held in process memory, loaded from a PKCS#8 file that only its owner can read.
use std::fmt;
use std::path::Path;

use rcgen::{KeyPair, PublicKeyData, SigningKey};

use crate::core::keys::CaKeyAlg;
use crate::error::{Error, Result};
use crate::pemfile;
use crate::signer::Signer;

/// The passphrase that encrypts ecca's own keys at rest, from `ECCA_KEY_PASSPHRASE` or the file
/// named by `ECCA_KEY_PASSPHRASE_FILE` (never from the command line). Never printed.
#[derive(Clone)]
pub struct Passphrase(String);

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl fmt::Display for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Passphrase {
    /// The configured passphrase, if any.
    pub fn from_env() -> Result<Option<Self>> {
        if let Ok(p) = std::env::var("ECCA_KEY_PASSPHRASE") {
            return Self::checked(p).map(Some);
        }
        if let Some(path) = std::env::var_os("ECCA_KEY_PASSPHRASE_FILE") {
            let path = std::path::PathBuf::from(path);
            pemfile::check_private(&path)?;
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            return Self::checked(text.trim_end_matches(['\r', '\n']).to_string()).map(Some);
        }
        Ok(None)
    }

    /// The passphrase's bytes, to derive a key from (never to print).
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    fn checked(p: String) -> Result<Self> {
        if p.chars().count() < 12 {
            return Err(Error::Config(
                "the key passphrase must have at least 12 characters".into(),
            ));
        }
        Ok(Passphrase(p))
    }
}

const ENCRYPTED_TAG: &str = "ENCRYPTED PRIVATE KEY";

/// A software key: P-256, P-384 and Ed25519 through ring (rcgen's `KeyPair`), SM2 through
/// RustCrypto `sm2`. `Debug` never prints the key.
pub struct SoftwareKey {
    key: Held,
    alg: CaKeyAlg,
}

enum Held {
    Ring(KeyPair),
    /// The signing key (with the default distinguishing ID) and its uncompressed point.
    Sm2(sm2::dsa::SigningKey, Vec<u8>),
}

impl SoftwareKey {
    fn sign_now(&self, msg: &[u8]) -> crate::core::Result<Vec<u8>> {
        match &self.key {
            Held::Ring(k) => k
                .sign(msg)
                .map_err(|e| crate::core::Error::Signing(e.to_string())),
            Held::Sm2(k, _) => {
                use sm2::dsa::signature::RandomizedSigner;
                let sig: sm2::dsa::Signature = k
                    .try_sign_with_rng(&mut pkcs8::rand_core::OsRng, msg)
                    .map_err(|e| crate::core::Error::Signing(format!("SM2: {e}")))?;
                crate::core::sm2::signature_der(&sig)
            }
        }
    }

    /// Generates a fresh key from the system CSPRNG.
    pub fn generate(alg: CaKeyAlg) -> Result<Self> {
        if alg == CaKeyAlg::Sm2 {
            let secret = sm2::SecretKey::random(&mut pkcs8::rand_core::OsRng);
            return Self::sm2(&secret);
        }
        let key = KeyPair::generate_for(alg.rcgen())
            .map_err(|e| Error::Signing(format!("key generation failed: {e}")))?;
        Ok(SoftwareKey {
            key: Held::Ring(key),
            alg,
        })
    }

    fn sm2(secret: &sm2::SecretKey) -> Result<Self> {
        let key = sm2::dsa::SigningKey::new(crate::core::sm2::DEFAULT_ID, secret)
            .map_err(|e| Error::Signing(format!("SM2 key: {e}")))?;
        let point = key.verifying_key().to_sec1_bytes().to_vec();
        Ok(SoftwareKey {
            key: Held::Sm2(key, point),
            alg: CaKeyAlg::Sm2,
        })
    }

    /// Parses a PKCS#8 PEM key of one of the supported algorithms.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        let (tag, doc) = pkcs8::SecretDocument::from_pem(pem)
            .map_err(|e| Error::Signing(format!("not a PKCS#8 PEM key: {e}")))?;
        if tag != "PRIVATE KEY" {
            return Err(Error::Signing(format!(
                "PEM block is {tag:?}, expected \"PRIVATE KEY\" (PKCS#8)"
            )));
        }
        Self::from_pkcs8_der(doc.as_bytes())
    }

    /// Parses a PKCS#8 DER key of one of the supported algorithms.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let info = pkcs8::PrivateKeyInfo::try_from(der)
            .map_err(|e| Error::Signing(format!("not a usable PKCS#8 key: {e}")))?;
        let sm2_curve = info
            .algorithm
            .parameters_oid()
            .is_ok_and(|c| c == crate::core::sm2::CURVE);
        if sm2_curve {
            use pkcs8::DecodePrivateKey;
            let secret = sm2::SecretKey::from_pkcs8_der(der)
                .map_err(|e| Error::Signing(format!("not a usable SM2 key: {e}")))?;
            return Self::sm2(&secret);
        }
        let key = KeyPair::try_from(der)
            .map_err(|e| Error::Signing(format!("not a usable PKCS#8 key: {e}")))?;
        let alg = [CaKeyAlg::P256, CaKeyAlg::P384, CaKeyAlg::Ed25519]
            .into_iter()
            .find(|a| a.rcgen() == key.algorithm())
            .ok_or_else(|| {
                Error::Signing("key algorithm is not P-256, P-384, Ed25519 or SM2".into())
            })?;
        Ok(SoftwareKey {
            key: Held::Ring(key),
            alg,
        })
    }

    /// Loads a key file, refusing one that others can read; an encrypted one (PKCS#8 PBES2)
    /// needs the passphrase (`ECCA_KEY_PASSPHRASE` or `ECCA_KEY_PASSPHRASE_FILE`).
    pub fn load(path: &Path) -> Result<Self> {
        pemfile::check_private(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let named = |e: Error| Error::Signing(format!("{}: {e}", path.display()));
        if !text.contains(ENCRYPTED_TAG) {
            return Self::from_pkcs8_pem(&text).map_err(named);
        }
        let pass = Passphrase::from_env()?.ok_or_else(|| {
            Error::Config(format!(
                "{} is encrypted: set ECCA_KEY_PASSPHRASE or ECCA_KEY_PASSPHRASE_FILE",
                path.display()
            ))
        })?;
        let (_, doc) = pkcs8::SecretDocument::from_pem(&text)
            .map_err(|e| named(Error::Signing(e.to_string())))?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|e| named(Error::Signing(e.to_string())))?;
        let plain = encrypted
            .decrypt(pass.0.as_bytes())
            .map_err(|_| Error::Config(format!("{}: wrong key passphrase", path.display())))?;
        Self::from_pkcs8_der(plain.as_bytes()).map_err(named)
    }

    /// Writes the key (mode 0600, in a 0700 directory) as PKCS#8 PEM, encrypted with PBES2
    /// (scrypt, AES-256-CBC) when a key passphrase is configured.
    pub fn save(&self, path: &Path) -> Result<()> {
        match Passphrase::from_env()? {
            None => self.save_plain(path),
            Some(pass) => {
                let der = self.pkcs8_der();
                let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
                    .map_err(|e| Error::Signing(e.to_string()))?;
                let encrypted = info
                    .encrypt(pkcs8::rand_core::OsRng, pass.0.as_bytes())
                    .map_err(|e| Error::Signing(format!("key encryption: {e}")))?;
                let pem = encrypted
                    .to_pem(ENCRYPTED_TAG, pkcs8::LineEnding::LF)
                    .map_err(|e| Error::Signing(e.to_string()))?;
                pemfile::write_private(path, pem.as_bytes())
            }
        }
    }

    /// Writes the key as plain PKCS#8 PEM (0600): client credentials and user keys, which
    /// TLS stacks and openssl read directly.
    pub fn save_plain(&self, path: &Path) -> Result<()> {
        pemfile::write_private(path, self.pkcs8_pem().as_bytes())
    }

    /// The key as plain PKCS#8 PEM, in memory only (for the TLS identity).
    pub fn pkcs8_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8_der()))
    }

    /// The key as plain PKCS#8 DER, in memory only (sealing CA keys for other instances).
    pub fn pkcs8_der(&self) -> Vec<u8> {
        match &self.key {
            Held::Ring(k) => k.serialize_der(),
            Held::Sm2(k, _) => {
                use pkcs8::EncodePrivateKey;
                let secret = sm2::SecretKey::from(k.as_nonzero_scalar());
                // Encoding a valid scalar cannot fail; an empty document would not load.
                secret
                    .to_pkcs8_der()
                    .map(|d| d.as_bytes().to_vec())
                    .unwrap_or_default()
            }
        }
    }

    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> Vec<u8> {
        match &self.key {
            Held::Ring(k) => k.subject_public_key_info(),
            Held::Sm2(_, point) => crate::core::sm2::spki_der(point).unwrap_or_default(),
        }
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
        match &self.key {
            Held::Ring(k) => k.der_bytes(),
            Held::Sm2(_, point) => point,
        }
    }
    fn sign(&self, msg: &[u8]) -> crate::core::Result<Vec<u8>> {
        let started = std::time::Instant::now();
        let signed = self.sign_now(msg);
        super::observe("software", started, signed.is_ok());
        signed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let key = SoftwareKey::generate(CaKeyAlg::P256).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("redacted") && !shown.contains("BEGIN"));
        let pass = Passphrase("correct horse battery staple".into());
        assert_eq!(
            format!("{pass:?} {pass}"),
            "Passphrase(<redacted>) <redacted>"
        );
    }
}
