//! Reading and writing PEM files, with the permissions private keys need.
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Creates `dir` and its missing parents, each with mode 0700 from the start (subject to the
/// umask, which can only remove bits).
pub fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Writes a secret file: 0600 from the moment it exists, inside a 0700 directory, fsynced,
/// then renamed into place (so a reader never sees half a key).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        private_dir(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    f.write_all(contents).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Writes a public file (certificates), replacing any old one atomically.
pub fn write_public(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Refuses a private key file that group or others can read or write.
pub fn check_private(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Config(format!(
            "{}: private key is accessible by others (mode {mode:o}); fix with `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// PEM-encodes DER certificates, one block each.
pub fn certs_to_pem<'a>(ders: impl IntoIterator<Item = &'a [u8]>) -> String {
    ders.into_iter()
        .map(|d| pem::encode(&pem::Pem::new("CERTIFICATE", d.to_vec())))
        .collect()
}

/// Reads every CERTIFICATE block of a PEM bundle (or a single DER certificate).
pub fn parse_certs(data: &[u8]) -> Result<Vec<Vec<u8>>> {
    if !data.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Ok(vec![data.to_vec()]);
    }
    let blocks = pem::parse_many(data).map_err(|e| Error::InvalidArgument(format!("PEM: {e}")))?;
    Ok(blocks
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect())
}
