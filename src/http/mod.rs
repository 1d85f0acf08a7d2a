//! The plain-HTTP side: what relying parties fetch by URL (CA certificates, health, CRLs,
//! OCSP, timestamps). Anonymous: every connection is capped and timed out (`crate::listen`),
//! and /ocsp and /tsa are rate-limited per client address.
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::{DefaultBodyLimit, Extension, Path};
use axum::http::HeaderMap;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

use crate::config::RateLimits;
use crate::core::records::CaId;
use crate::error::Error;
use crate::layout::paths;
use crate::listen::{GuardedBody, Tracker};
use crate::pemfile;
use crate::publish::{OCSP_MAX_AGE, OcspAnswer, Published};
use crate::service::Service;

pub mod console;
pub mod metrics;
pub use crate::listen::{ClientAddr, RateLimiter};

/// What the handlers share.
#[derive(Debug)]
pub struct Http {
    service: Arc<Service>,
    ocsp_rate: Option<RateLimiter>,
    tsa_rate: Option<RateLimiter>,
}

type S = Arc<Http>;

/// 429 with Retry-After when `limiter` refuses this client.
fn over_rate(limiter: &Option<RateLimiter>, client: Option<ClientAddr>) -> Option<Response> {
    let (limiter, client) = (limiter.as_ref()?, client?);
    let wait = limiter.check(client.0.ip()).err()?;
    Some(
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait.to_string())],
            "too many requests from this address; retry after the given seconds\n",
        )
            .into_response(),
    )
}

/// Serves HTTP/1.1 on `listener` until `stop`: each connection under `tracker` (cap, idle
/// timeout), request headers within the header timeout.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tracker: Arc<Tracker>,
    stop: impl std::future::Future<Output = ()>,
) {
    serve_with(listener, app, tracker, stop, None).await
}

/// [`serve`], over TLS when `tls` is given (the console): the handshake under the
/// listener's handshake timeout.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    tracker: Arc<Tracker>,
    stop: impl std::future::Future<Output = ()>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let header_timeout = tracker.limits().header_timeout;
    let handshake_timeout = tracker.limits().handshake_timeout;
    let connections = tracker.clone();
    crate::listen::accept_loop(listener, tracker, stop, move |stream, peer, state| {
        let tracked = connections.track(stream, state.clone());
        let app = app.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                let guard = state.begin();
                let response = tower::ServiceExt::oneshot(app.clone(), req);
                async move {
                    let resp = response.await?;
                    Ok::<_, std::convert::Infallible>(
                        resp.map(|b| GuardedBody::new(b, Some(guard))),
                    )
                }
            });
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(64 * 1024);
            let served = match tls {
                None => {
                    let io = hyper_util::rt::TokioIo::new(tracked);
                    builder.serve_connection(io, svc).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(tracked));
                    let Ok(Ok(stream)) = handshake.await else {
                        tracing::debug!(%peer, "TLS handshake failed or timed out");
                        return;
                    };
                    let io = hyper_util::rt::TokioIo::new(stream);
                    builder.serve_connection(io, svc).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "HTTP connection ended");
            }
        });
    })
    .await;
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = match &self {
            Error::NotFound(_) | Error::UnknownProfile(_) => StatusCode::NOT_FOUND,
            Error::BadCsr(_) | Error::InvalidField { .. } | Error::InvalidArgument(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::PermissionDenied(_) | Error::Unauthenticated(_) => StatusCode::FORBIDDEN,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::ResourceExhausted(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => {
                tracing::error!(error = %self, "internal error");
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
            }
        };
        (code, format!("{self}\n")).into_response()
    }
}

/// 200 while the CA can issue and revoke; 503 (with the reason) once its store cannot write.
async fn health(State(s): State<Arc<Http>>) -> Response {
    let json = [(header::CONTENT_TYPE, "application/json")];
    match s.service.store().health() {
        Ok(()) => (
            StatusCode::OK,
            json,
            "{\"status\":\"serving\"}\n".to_string(),
        )
            .into_response(),
        Err(e) => {
            let body = serde_json::json!({"status": "not_serving", "reason": e.to_string()});
            (StatusCode::SERVICE_UNAVAILABLE, json, format!("{body}\n")).into_response()
        }
    }
}

/// The HTTP router.
pub fn router(service: Arc<Service>, rates: &RateLimits) -> Router {
    let state = Arc::new(Http {
        service,
        ocsp_rate: RateLimiter::new(rates.ocsp_per_ip),
        tsa_rate: RateLimiter::new(rates.tsa_per_ip),
    });
    Router::new()
        .route("/health", get(health))
        .route(paths::BUNDLE, get(bundle))
        .route(paths::CROSS, get(cross))
        .route("/ca/{file}", get(ca_cert))
        .route("/crl/{file}", get(crl))
        .route(paths::OCSP, post(ocsp_post))
        .route(paths::TSA, post(tsa_post))
        .route(&format!("{}/{{*request}}", paths::OCSP), get(ocsp_get))
        .layer(DefaultBodyLimit::max(MAX_OCSP_REQUEST_BYTES))
        .with_state(state)
}

fn der_cert(der: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/pkix-cert")], der).into_response()
}

/// `/ca/ID.der`: one of our CA certificates (`root`, `issuing`, or a later one by id).
async fn ca_cert(State(s): State<S>, Path(file): Path<String>) -> Response {
    let der = file
        .strip_suffix(".der")
        .and_then(|id| CaId::parse(id).ok())
        .and_then(|id| s.service.authority().ca_cert_der(&id));
    match der {
        Some(der) => der_cert(der),
        None => Error::NotFound(format!("CA certificate {file:?}")).into_response(),
    }
}

/// Roots, the issuing CA and every cross-certificate in force, PEM: what a relying party in
/// another region needs to build a path here.
async fn cross(State(s): State<S>) -> Response {
    match s.service.trust_bundle().await {
        Ok((roots, intermediates)) => {
            let pem = pemfile::certs_to_pem(roots.iter().chain(&intermediates).map(Vec::as_slice));
            ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Every hierarchy's roots, its active and retiring issuing CAs and its link certificates, PEM.
async fn bundle(State(s): State<S>) -> Response {
    let (roots, intermediates) = s.service.authority().ca_certificates();
    let ders: Vec<Vec<u8>> = roots.into_iter().chain(intermediates).collect();
    let pem = pemfile::certs_to_pem(ders.iter().map(Vec::as_slice));
    ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response()
}

/// Largest OCSP request body accepted (a request for 8 CertIDs with a nonce is well under 1 KiB).
pub const MAX_OCSP_REQUEST_BYTES: usize = 8 * 1024;

/// An HTTP-date (RFC 9110), e.g. "Thu, 26 Nov 2026 05:00:00 GMT".
fn http_date(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc2822).ok())
        .map(|s| s.replace("+0000", "GMT"))
        .unwrap_or_default()
}

/// A published artifact with validators; `max_age` bounds how long caches keep it.
fn published(p: &Published, content_type: &'static str, max_age: i64) -> Response {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let max_age = max_age.min(p.next_update - now).max(0);
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CACHE_CONTROL,
                format!("max-age={max_age}, public, no-transform, must-revalidate"),
            ),
            (header::LAST_MODIFIED, http_date(p.this_update)),
            (header::EXPIRES, http_date(p.next_update)),
            (header::ETAG, p.etag.clone()),
        ],
        p.der.clone(),
    )
        .into_response()
}

/// `/crl/ID.crl`, `/crl/ID-delta.crl`.
async fn crl(State(s): State<S>, Path(file): Path<String>) -> Response {
    let Some((ca, kind)) = crate::publish::crl_file(&file) else {
        return Error::NotFound(format!("CRL {file:?}")).into_response();
    };
    match s.service.publisher().crl(&ca, kind) {
        // CRLs are re-signed within a second of a revocation: let caches hold them only briefly.
        Ok(p) => published(&p, "application/pkix-crl", 60),
        Err(e) => e.into_response(),
    }
}

fn ocsp_response(answer: OcspAnswer) -> Response {
    const CT: &str = "application/ocsp-response";
    match answer {
        OcspAnswer::Cached(p) => published(&p, CT, OCSP_MAX_AGE),
        OcspAnswer::Fresh(der) => (
            [
                (header::CONTENT_TYPE, CT),
                (header::CACHE_CONTROL, "no-store"),
            ],
            der,
        )
            .into_response(),
    }
}

async fn ocsp_post(
    State(s): State<S>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = over_rate(&s.ocsp_rate, client.map(|c| c.0)) {
        return r;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.is_empty() && !ct.starts_with("application/ocsp-request") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/ocsp-request\n",
        )
            .into_response();
    }
    ocsp_response(s.service.publisher().ocsp(&body).await)
}

async fn ocsp_get(
    State(s): State<S>,
    client: Option<Extension<ClientAddr>>,
    Path(request): Path<String>,
) -> Response {
    if let Some(r) = over_rate(&s.ocsp_rate, client.map(|c| c.0)) {
        return r;
    }
    // RFC 6960 Appendix A.1: the path is the URL-encoded base64 of the DER request (axum has
    // already percent-decoded it). Undecodable input is a malformed request, not an HTTP error.
    let engine = base64::engine::general_purpose::STANDARD;
    let der = engine
        .decode(request.trim_start_matches('/'))
        .unwrap_or_default();
    if der.len() > MAX_OCSP_REQUEST_BYTES {
        return StatusCode::URI_TOO_LONG.into_response();
    }
    ocsp_response(s.service.publisher().ocsp(&der).await)
}

async fn tsa_post(
    State(s): State<S>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = over_rate(&s.tsa_rate, client.map(|c| c.0)) {
        return r;
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.is_empty() && !ct.starts_with("application/timestamp-query") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected Content-Type: application/timestamp-query\n",
        )
            .into_response();
    }
    let reply = s.service.timestamp(&body).await;
    (
        [
            (header::CONTENT_TYPE, "application/timestamp-reply"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        reply,
    )
        .into_response()
}
