//! The domain's errors: what a pure PKI computation can refuse. The service layer's
//! [`crate::Error`] takes each variant over unchanged (`From`), so callers match one vocabulary.
use std::fmt;

/// Result alias of the domain.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the PKI domain can refuse, by what the caller can do about it.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CSR could not be parsed, or its signature does not verify.
    #[error("invalid CSR: {0}")]
    BadCsr(String),
    /// A named field of the request is invalid (the message names the field).
    #[error("invalid {field}: {reason}")]
    InvalidField { field: String, reason: String },
    /// Any other invalid argument.
    #[error("{0}")]
    InvalidArgument(String),
    /// The requested profile does not exist.
    #[error("unknown profile {0:?}; `ecca profiles` lists the profiles this CA issues under")]
    UnknownProfile(String),
    /// A lint refused the to-be-signed object: nothing was signed.
    #[error("lint {lint} refused the {object}: {detail}")]
    LintFailed {
        lint: &'static str,
        /// What was refused: "certificate", "CRL", "OCSP response".
        object: &'static str,
        detail: String,
    },
    /// A profile or key definition is invalid (the message names file and key).
    #[error("configuration error: {0}")]
    Config(String),
    /// A key could not sign.
    #[error("signing error: {0}")]
    Signing(String),
    /// Stored data does not decode (the message names the row and the column).
    #[error("storage error: corrupt {0}")]
    Corrupt(String),
    /// A response from another party (a TSA, a peer CA) is malformed.
    #[error("{0}")]
    Remote(String),
    /// A bug or an unexpected state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A field-level validation error.
    pub fn field(field: impl Into<String>, reason: impl fmt::Display) -> Self {
        Error::InvalidField {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    /// A certificate lint refusal.
    pub fn lint(lint: &'static str, detail: impl Into<String>) -> Self {
        Error::LintFailed {
            lint,
            object: "certificate",
            detail: detail.into(),
        }
    }
}
