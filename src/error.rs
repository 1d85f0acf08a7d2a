//! The service's error: the domain's refusals ([`crate::core::Error`], taken over unchanged)
//! plus what storage, files and the network add. Mapped to gRPC status in `grpc::status` and to
//! HTTP in `http`, once each.
use std::fmt;

use crate::core::error::Error as Domain;

/// Result alias used across ecca.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ecca, by what the caller can do about it.
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
    /// The request conflicts with the object's state (e.g. revoking twice).
    #[error("{0}")]
    Conflict(String),
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The caller is not allowed to do this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A quota or rate limit is reached; try again later.
    #[error("{0}")]
    ResourceExhausted(String),
    /// This instance cannot do it now (e.g. a CA key it has not got); another may.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The caller could not be authenticated.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Configuration or profile files are invalid (the message names file and key).
    #[error("configuration error: {0}")]
    Config(String),
    /// The durable store refused or holds corrupt data (the message names the row).
    #[error("storage error: {0}")]
    Storage(String),
    /// Stored data does not decode (the message names the row and the column).
    #[error("storage error: corrupt {0}")]
    Corrupt(String),
    /// The database failed; the driver's error is kept as the source.
    #[error("storage error: {message}")]
    Database {
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A CA key could not sign.
    #[error("signing error: {0}")]
    Signing(String),
    /// A file could not be read or written (the message names the path).
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The server could not be reached or the connection failed.
    #[error("{0}")]
    Remote(String),
    /// The server refused the request (client side), with its gRPC status code.
    #[error("server refused ({code:?}): {message}")]
    Rejected { code: tonic::Code, message: String },
    /// A bug or an unexpected state; details are logged, not returned to callers.
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

    /// An I/O error on a path.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

impl Error {
    /// A database driver's error, kept as the source.
    pub fn database(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Database {
            message: message.into(),
            source: Box::new(source),
        }
    }
}

impl From<Domain> for Error {
    fn from(e: Domain) -> Self {
        match e {
            Domain::BadCsr(m) => Error::BadCsr(m),
            Domain::InvalidField { field, reason } => Error::InvalidField { field, reason },
            Domain::InvalidArgument(m) => Error::InvalidArgument(m),
            Domain::UnknownProfile(m) => Error::UnknownProfile(m),
            Domain::LintFailed {
                lint,
                object,
                detail,
            } => Error::LintFailed {
                lint,
                object,
                detail,
            },
            Domain::Config(m) => Error::Config(m),
            Domain::Signing(m) => Error::Signing(m),
            Domain::Corrupt(m) => Error::Corrupt(m),
            Domain::Remote(m) => Error::Remote(m),
            Domain::Internal(m) => Error::Internal(m),
        }
    }
}

impl From<crate::core::path::PathError> for Error {
    fn from(e: crate::core::path::PathError) -> Self {
        Error::InvalidArgument(e.to_string())
    }
}
