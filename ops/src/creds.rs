//! Writing a credential folder (cert.pem, key.pem, ca.pem): the key is made here and never
//! leaves this machine; the server signs a CSR for it.
use std::path::Path;

use ecca::core::keys::CaKeyAlg;
use ecca::proto::IssuedCredential;
use ecca::signer::SoftwareKey;
use ecca::{Error, Result};
use rcgen::{CertificateParams, KeyPair};

/// Generates key.pem in `dir` (refusing to overwrite) and returns a CSR for it.
pub fn new_key_and_csr(dir: &Path, cn: &str) -> Result<Vec<u8>> {
    let key_path = dir.join("key.pem");
    if key_path.exists() {
        return Err(Error::InvalidArgument(format!(
            "{} exists; choose an empty folder",
            key_path.display()
        )));
    }
    SoftwareKey::generate(CaKeyAlg::P256)?.save_plain(&key_path)?;
    let pem = std::fs::read_to_string(&key_path).map_err(|e| Error::io(&key_path, e))?;
    let key = KeyPair::from_pem(&pem).map_err(|e| Error::Internal(e.to_string()))?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let csr = params
        .serialize_request(&key)
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(csr.der().to_vec())
}

/// Writes cert.pem and ca.pem next to key.pem.
pub fn write(dir: &Path, cred: &IssuedCredential) -> Result<()> {
    ecca::pemfile::write_public(&dir.join("cert.pem"), cred.cert_pem.as_bytes())?;
    ecca::pemfile::write_public(&dir.join("ca.pem"), cred.ca_pem.as_bytes())
}
