//! The PKI domain: no network, no database, no async. Everything here is pure and unit-tested.
pub mod audit;
pub mod certcheck;
pub mod cms;
pub mod cross;
pub mod csr;
pub mod envelope;
pub mod error;
pub mod issue;
pub mod keys;
pub mod lint;
pub mod names;
pub mod ocsp;
pub mod path;
pub mod profile;
pub mod records;
pub mod revcheck;
pub mod revocation;
pub mod serial;
pub mod sm2;
pub mod stats;
#[cfg(test)]
pub(crate) mod testing;
pub mod tsp;
pub mod uscc;

pub use error::{Error, Result};

/// Which of our CA certificates signs (and answers for) a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Issuer {
    /// The issuing CA: everything relying parties trust (leaves, OCSP responder, TSA).
    #[default]
    Issuing,
    /// The credential CA: API credentials and the gRPC server's own certificate only. Never on
    /// the issuing CA's CRLs or OCSP.
    Credential,
}

impl Issuer {
    pub fn as_str(self) -> &'static str {
        match self {
            Issuer::Issuing => "issuing",
            Issuer::Credential => "credential",
        }
    }

    /// Parses a stored value; anything else is corrupt data, reported as such.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "issuing" => Ok(Issuer::Issuing),
            "credential" => Ok(Issuer::Credential),
            other => Err(Error::Corrupt(format!("issuer {other:?}"))),
        }
    }
}

/// SHA-256 of bytes (a certificate's identity).
pub fn sha256(der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Unix seconds as RFC 3339 UTC (the number itself if out of range).
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// SHA-256 fingerprint of DER bytes, lowercase hex (as `openssl x509 -fingerprint -sha256` without colons).
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, der))
}
