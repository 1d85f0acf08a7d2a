//! The one domain error. Mapped to gRPC status in `grpc::status` and to HTTP in `http`, once each.
use std::fmt;

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
    /// A lint refused the to-be-signed certificate: nothing was signed.
    #[error("lint {lint} refused the certificate: {detail}")]
    LintFailed { lint: &'static str, detail: String },
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
    /// The caller could not be authenticated.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Configuration or profile files are invalid (the message names file and key).
    #[error("configuration error: {0}")]
    Config(String),
    /// The durable store failed.
    #[error("storage error: {0}")]
    Storage(String),
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
    /// The server refused the request (client side); `code` is the gRPC status code name.
    #[error("server refused ({code}): {message}")]
    Rejected { code: String, message: String },
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

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        // The server's own message says what failed; the client error alone says "db error".
        match e.as_db_error() {
            Some(db) => Error::Storage(format!("postgres: {}", db.message())),
            None => Error::Storage(format!("postgres: {e}")),
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Error::Storage(format!("no database connection: {e}"))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(e.to_string())
    }
}
