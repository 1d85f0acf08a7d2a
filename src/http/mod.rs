//! The plain-HTTP side: what relying parties fetch by URL (CA certificates, health; CRLs,
//! OCSP and timestamps join here). Read-only.
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::authority::paths;
use crate::error::Error;
use crate::pemfile;
use crate::service::Service;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = match &self {
            Error::NotFound(_) | Error::UnknownProfile(_) => StatusCode::NOT_FOUND,
            Error::BadCsr(_) | Error::InvalidField { .. } | Error::InvalidArgument(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::PermissionDenied(_) | Error::Unauthenticated(_) => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
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
        .route(paths::ROOT_CERT, get(root_cert))
        .route(paths::ISSUING_CERT, get(issuing_cert))
        .route(paths::BUNDLE, get(bundle))
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
