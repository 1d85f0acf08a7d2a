//! RFC 8555 problem documents (§6.7, RFC 7807): the ACME edge's one error type, and the one
//! place ecca's `Error` becomes one.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::Error;

/// A problem document with its HTTP status.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Subproblem>,
    /// Seconds for Retry-After (rate limits).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// A problem about one identifier of a request (§6.7.1).
#[derive(Clone, Debug, Serialize)]
pub struct Subproblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
    pub identifier: super::objects::Identifier,
}

macro_rules! problems {
    ($($fn:ident => $name:literal, $status:expr;)*) => {
        impl Problem {
            $(pub fn $fn(detail: String) -> Problem {
                Problem::new($name, $status, detail)
            })*
        }
    };
}

problems! {
    malformed => "malformed", StatusCode::BAD_REQUEST;
    bad_nonce => "badNonce", StatusCode::BAD_REQUEST;
    bad_public_key => "badPublicKey", StatusCode::BAD_REQUEST;
    bad_csr => "badCSR", StatusCode::BAD_REQUEST;
    unauthorized => "unauthorized", StatusCode::FORBIDDEN;
    account_does_not_exist => "accountDoesNotExist", StatusCode::BAD_REQUEST;
    external_account_required => "externalAccountRequired", StatusCode::BAD_REQUEST;
    rejected_identifier => "rejectedIdentifier", StatusCode::BAD_REQUEST;
    unsupported_identifier => "unsupportedIdentifier", StatusCode::BAD_REQUEST;
    order_not_ready => "orderNotReady", StatusCode::FORBIDDEN;
    rate_limited => "rateLimited", StatusCode::TOO_MANY_REQUESTS;
    already_revoked => "alreadyRevoked", StatusCode::BAD_REQUEST;
    bad_revocation_reason => "badRevocationReason", StatusCode::BAD_REQUEST;
    caa => "caa", StatusCode::FORBIDDEN;
    connection => "connection", StatusCode::BAD_REQUEST;
    dns => "dns", StatusCode::BAD_REQUEST;
    incorrect_response => "incorrectResponse", StatusCode::FORBIDDEN;
    tls => "tls", StatusCode::BAD_REQUEST;
    server_internal => "serverInternal", StatusCode::INTERNAL_SERVER_ERROR;
    not_found => "malformed", StatusCode::NOT_FOUND;
    invalid_profile => "invalidProfile", StatusCode::BAD_REQUEST;
}

impl Problem {
    fn new(name: &str, status: StatusCode, detail: String) -> Problem {
        Problem {
            kind: format!("urn:ietf:params:acme:error:{name}"),
            detail,
            status: status.as_u16(),
            subproblems: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_signature_algorithm(alg: &str) -> Problem {
        Problem::new(
            "badSignatureAlgorithm",
            StatusCode::BAD_REQUEST,
            format!("JWS algorithm {alg:?} is not accepted (ES256, ES384, RS256, EdDSA)"),
        )
    }

    /// The short name (after the URN prefix), for metrics and logs.
    pub fn name(&self) -> &str {
        self.kind.rsplit(':').next().unwrap_or("")
    }
}

impl From<crate::core::error::Error> for Problem {
    fn from(e: crate::core::error::Error) -> Problem {
        Problem::from(Error::from(e))
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        match e {
            Error::BadCsr(_) => Problem::bad_csr(e.to_string()),
            Error::InvalidField { .. } | Error::InvalidArgument(_) | Error::UnknownProfile(_) => {
                Problem::malformed(e.to_string())
            }
            Error::PermissionDenied(_) | Error::Unauthenticated(_) => {
                Problem::unauthorized(e.to_string())
            }
            Error::NotFound(_) => Problem::not_found(e.to_string()),
            Error::Conflict(_) => {
                let mut p = Problem::malformed(e.to_string());
                p.status = StatusCode::CONFLICT.as_u16();
                p
            }
            Error::ResourceExhausted(_) => {
                let mut p = Problem::rate_limited(e.to_string());
                p.retry_after = Some(60);
                p
            }
            Error::LintFailed { .. } => Problem::bad_csr(e.to_string()),
            _ => {
                tracing::error!(error = %e, "ACME request failed");
                Problem::server_internal("internal error; the server's log says why".into())
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
