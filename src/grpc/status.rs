//! The one mapping from [`Error`] to gRPC status. Internal details are logged, not returned.
use tonic::{Code, Status};

use crate::error::Error;

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::BadCsr(_) | Error::InvalidField { .. } | Error::InvalidArgument(_) => {
                Code::InvalidArgument
            }
            Error::UnknownProfile(_) | Error::NotFound(_) => Code::NotFound,
            Error::LintFailed { .. } => Code::FailedPrecondition,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Remote(_) | Error::Rejected { .. } => Code::Unavailable,
            Error::Config(_)
            | Error::Storage(_)
            | Error::Signing(_)
            | Error::Io { .. }
            | Error::Internal(_) => {
                tracing::error!(error = %e, "internal error");
                return Status::internal("internal error; the server log has details");
            }
        };
        Status::new(code, e.to_string())
    }
}
