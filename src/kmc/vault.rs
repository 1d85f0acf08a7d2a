//! The KMC master key and the sealing of escrowed keys under it.
//!
//! Each escrowed private key is encrypted (AES-256-GCM) under a data key of its own, and the
//! data key under the master key; both bound to the escrow id. The master key is 32 random
//! bytes in `master.key` (0600), encrypted with the key passphrase (PBES2: scrypt,
//! AES-256-CBC) when `ECCA_KEY_PASSPHRASE` or `ECCA_KEY_PASSPHRASE_FILE` is set.
use std::fmt;
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::error::{Error, Result};
use crate::pemfile;
use crate::signer::software::Passphrase;

const PLAIN_TAG: &str = "ECCA KMC MASTER KEY";
const ENCRYPTED_TAG: &str = "ENCRYPTED ECCA KMC MASTER KEY";

/// The master key. `Debug` never prints it.
pub struct MasterKey(LessSafeKey);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// An escrowed secret as stored: the sealed data key and the secret sealed under it.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub data_key: Vec<u8>,
    pub secret: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.secret.len())
    }
}

fn random<const N: usize>() -> Result<[u8; N]> {
    use ring::rand::SecureRandom;
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| Error::Internal("no randomness".into()))?;
    Ok(out)
}

fn aead(key: &[u8]) -> Result<LessSafeKey> {
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, key)
            .map_err(|_| Error::Internal("AES-256-GCM key".into()))?,
    ))
}

/// nonce || ciphertext || tag.
fn seal_with(key: &LessSafeKey, aad: &str, plain: &[u8]) -> Result<Vec<u8>> {
    let nonce: [u8; 12] = random()?;
    let mut data = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_bytes()),
        &mut data,
    )
    .map_err(|_| Error::Internal("sealing failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend(data);
    Ok(out)
}

fn open_with(key: &LessSafeKey, aad: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < 12 + 16 {
        return Err(Error::Corrupt(format!("sealed value for {aad}: too short")));
    }
    let (nonce, rest) = sealed.split_at(12);
    let mut data = rest.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| Error::Corrupt(format!("sealed value for {aad}: nonce")))?;
    let plain = key
        .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut data)
        .map_err(|_| {
            Error::Corrupt(format!(
                "sealed value for {aad} does not open with this master key"
            ))
        })?;
    Ok(plain.to_vec())
}

impl MasterKey {
    /// Opens `path`, or makes a new master key there (0600) when it does not exist.
    pub fn open_or_create(path: &Path) -> Result<Self> {
        let pass = Passphrase::from_env()?;
        if !path.exists() {
            let key: [u8; 32] = random()?;
            let pem = match &pass {
                None => pem::Pem::new(PLAIN_TAG, key.to_vec()),
                Some(p) => pem::Pem::new(ENCRYPTED_TAG, encrypt(p, &key)?),
            };
            pemfile::write_private(path, pem::encode(&pem).as_bytes())?;
            tracing::info!(path = %path.display(), encrypted = pass.is_some(), "KMC master key made");
            return Ok(MasterKey(aead(&key)?));
        }
        pemfile::check_private(path)?;
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let pem =
            pem::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let key = match (pem.tag(), &pass) {
            (PLAIN_TAG, _) => pem.contents().to_vec(),
            (ENCRYPTED_TAG, Some(p)) => decrypt(p, pem.contents())
                .map_err(|_| Error::Config(format!("{}: wrong key passphrase", path.display())))?,
            (ENCRYPTED_TAG, None) => {
                return Err(Error::Config(format!(
                    "{} is encrypted: set ECCA_KEY_PASSPHRASE or ECCA_KEY_PASSPHRASE_FILE",
                    path.display()
                )));
            }
            (other, _) => {
                return Err(Error::Config(format!(
                    "{}: PEM block {other:?} is not a KMC master key",
                    path.display()
                )));
            }
        };
        if key.len() != 32 {
            return Err(Error::Config(format!(
                "{}: a master key is 32 bytes",
                path.display()
            )));
        }
        Ok(MasterKey(aead(&key)?))
    }

    /// Seals a secret for escrow `id`: a fresh data key encrypts it, the master key the data key.
    pub fn seal(&self, id: &str, secret: &[u8]) -> Result<Sealed> {
        let data_key: [u8; 32] = random()?;
        Ok(Sealed {
            secret: seal_with(&aead(&data_key)?, id, secret)?,
            data_key: seal_with(&self.0, &format!("data key {id}"), &data_key)?,
        })
    }

    /// Opens what [`MasterKey::seal`] sealed for `id`.
    pub fn open(&self, id: &str, sealed: &Sealed) -> Result<Vec<u8>> {
        let data_key = open_with(&self.0, &format!("data key {id}"), &sealed.data_key)?;
        open_with(&aead(&data_key)?, id, &sealed.secret)
    }
}

/// PBES2 (scrypt, AES-256-CBC) over the master key: DER of the encryption scheme and the
/// ciphertext, as EncryptedPrivateKeyInfo lays them out.
fn encrypt(pass: &Passphrase, key: &[u8]) -> Result<Vec<u8>> {
    use der::Encode;
    let (salt, iv): ([u8; 16], [u8; 16]) = (random()?, random()?);
    let scheme = pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(Default::default(), &salt, &iv)
        .map_err(|e| Error::Internal(format!("scrypt parameters: {e}")))?;
    let scheme = pkcs8::pkcs5::EncryptionScheme::from(scheme);
    let data = scheme
        .encrypt(pass.expose(), key)
        .map_err(|e| Error::Internal(format!("master key encryption: {e}")))?;
    pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: scheme,
        encrypted_data: &data,
    }
    .to_der()
    .map_err(|e| Error::Internal(e.to_string()))
}

fn decrypt(pass: &Passphrase, der_bytes: &[u8]) -> Result<Vec<u8>> {
    use der::Decode;
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(der_bytes)
        .map_err(|e| Error::Config(format!("encrypted master key: {e}")))?;
    info.encryption_algorithm
        .decrypt(pass.expose(), info.encrypted_data)
        .map_err(|_| Error::Config("wrong key passphrase".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_under_its_id_and_master_key() {
        let dir = tempfile::tempdir().unwrap();
        let master = MasterKey::open_or_create(&dir.path().join("master.key")).unwrap();
        let again = MasterKey::open_or_create(&dir.path().join("master.key")).unwrap();
        let other = MasterKey::open_or_create(&dir.path().join("other.key")).unwrap();
        let sealed = master.seal("e1", b"private key").unwrap();
        assert_eq!(again.open("e1", &sealed).unwrap(), b"private key");
        assert!(master.open("e2", &sealed).is_err(), "bound to its id");
        assert!(
            other.open("e1", &sealed).is_err(),
            "bound to its master key"
        );
        assert!(!format!("{master:?} {sealed:?}").contains("private"));
    }
}
