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
            Error::LintFailed { .. } | Error::Conflict(_) => Code::FailedPrecondition,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::ResourceExhausted(_) => Code::ResourceExhausted,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::Remote(_) | Error::Rejected { .. } | Error::Unavailable(_) => Code::Unavailable,
            // Named so an operator can repair the row; the log has it too.
            Error::Corrupt(_) => {
                tracing::error!(error = %e, "corrupt stored data");
                Code::DataLoss
            }
            Error::Config(_)
            | Error::Storage(_)
            | Error::Database { .. }
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

impl From<crate::core::Error> for Status {
    fn from(e: crate::core::Error) -> Self {
        Error::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_map_to_precise_codes() {
        let cases = [
            (Error::BadCsr("x".into()), Code::InvalidArgument),
            (
                Error::field("subject serialNumber", "bad"),
                Code::InvalidArgument,
            ),
            (Error::UnknownProfile("p".into()), Code::NotFound),
            (
                Error::LintFailed {
                    lint: "e_x",
                    object: "certificate",
                    detail: "d".into(),
                },
                Code::FailedPrecondition,
            ),
            (Error::PermissionDenied("no".into()), Code::PermissionDenied),
            (Error::Unauthenticated("no".into()), Code::Unauthenticated),
        ];
        for (err, code) in cases {
            let text = err.to_string();
            let status = Status::from(err);
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), text);
        }
        // Internal details stay in the log.
        let status = Status::from(Error::Storage("disk /var/lib/ecca full".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("/var/lib"));
    }
}
