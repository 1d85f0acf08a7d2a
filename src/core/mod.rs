//! The PKI domain: no network, no database, no async. Everything here is pure and unit-tested.
pub mod audit;
pub mod cms;
pub mod cross;
pub mod csr;
pub mod issue;
pub mod keys;
pub mod lint;
pub mod names;
pub mod ocsp;
pub mod path;
pub mod profile;
pub mod revcheck;
pub mod revocation;
pub mod serial;
pub mod tsp;
pub mod uscc;

/// SHA-256 fingerprint of DER bytes, lowercase hex (as `openssl x509 -fingerprint -sha256` without colons).
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, der))
}
