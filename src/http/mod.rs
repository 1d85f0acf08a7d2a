//! The plain-HTTP side: what relying parties fetch by URL (CA certificates, health; CRLs,
//! OCSP and timestamps join here). Read-only.
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::Error;
use crate::pemfile;
use crate::service::Service;

/// Paths served, relative to the public base URL.
pub const ROOT_CERT_PATH: &str = "/ca/root.der";
pub const ISSUING_CERT_PATH: &str = "/ca/issuing.der";
pub const BUNDLE_PATH: &str = "/ca/bundle.pem";

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = match &self {
            Error::NotFound(_) | Error::UnknownProfile(_) => StatusCode::NOT_FOUND,
            Error::BadCsr(_) | Error::InvalidField { .. } | Error::InvalidArgument(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::PermissionDenied(_) | Error::Unauthenticated(_) => StatusCode::FORBIDDEN,
            _ => {
                tracing::error!(error = %self, "internal error");
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
            }
        };
        (code, format!("{self}\n")).into_response()
    }
}

/// The HTTP router.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route(
            "/health",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    "{\"status\":\"serving\"}\n",
                )
            }),
        )
        .route(ROOT_CERT_PATH, get(root_cert))
        .route(ISSUING_CERT_PATH, get(issuing_cert))
        .route(BUNDLE_PATH, get(bundle))
        .with_state(service)
}

fn der_cert(der: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/pkix-cert")], der).into_response()
}

async fn root_cert(State(s): State<Arc<Service>>) -> Response {
    der_cert(s.authority().root.der.clone())
}

async fn issuing_cert(State(s): State<Arc<Service>>) -> Response {
    der_cert(s.authority().issuing.der.clone())
}

async fn bundle(State(s): State<Arc<Service>>) -> Response {
    let a = s.authority();
    let pem = pemfile::certs_to_pem([a.root.der.as_slice(), a.issuing.der.as_slice()]);
    ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response()
}
