//! Test fixtures of the domain: a key that counts its signatures and a CA made with it.
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, KeyPair, KeyUsagePurpose, SerialNumber};
use time::{Duration, OffsetDateTime};

use crate::core::csr::Attr;
use crate::core::error::{Error, Result};
use crate::core::issue::{BACKDATE, CaView, distinguished_name, self_sign_root};
use crate::core::keys::{CaKeyAlg, Signer};
use crate::core::serial::Serial;

/// A P-256 key that counts its signatures.
#[derive(Debug)]
pub struct Counting(KeyPair, AtomicUsize);

impl Counting {
    pub fn new() -> Self {
        Counting(
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            AtomicUsize::new(0),
        )
    }
    /// Signatures made so far.
    pub fn count(&self) -> usize {
        self.1.load(Ordering::SeqCst)
    }
}

impl Signer for Counting {
    fn algorithm(&self) -> CaKeyAlg {
        CaKeyAlg::P256
    }
    fn public_key_raw(&self) -> &[u8] {
        rcgen::PublicKeyData::der_bytes(&self.0)
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        self.1.fetch_add(1, Ordering::SeqCst);
        rcgen::SigningKey::sign(&self.0, msg).map_err(|e| Error::Signing(e.to_string()))
    }
}

/// A self-signed CA (pathLen 0, one year) and its counting key, the count back at zero.
pub fn test_ca() -> (CaView, Counting) {
    let key = Counting::new();
    let now = OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    p.serial_number = Some(SerialNumber::from_slice(
        Serial::random().unwrap().as_bytes(),
    ));
    p.not_before = (now - BACKDATE).replace_nanosecond(0).unwrap();
    p.not_after = p.not_before + Duration::days(365);
    p.distinguished_name = distinguished_name(&[
        (Attr::Country, "CN".into()),
        (Attr::CommonName, "Test CA".into()),
    ])
    .unwrap();
    p.is_ca = rcgen::IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.key_identifier_method = rcgen::KeyIdMethod::Sha256;
    p.use_authority_key_identifier_extension = true;
    let ca = CaView::from_der(self_sign_root(&p, &key).unwrap()).unwrap();
    (ca, Counting(key.0, AtomicUsize::new(0)))
}
