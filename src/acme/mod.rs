//! The ACME server (RFC 8555) on its own HTTPS listener: directory, nonces, accounts bound to
//! platforms by External Account Binding, orders, authorizations and challenges (validated by
//! `validation`), finalization through `Service::issue` as the account's platform, certificate
//! download with alternate chains, revocation, key rollover, ARI (RFC 9773).
//!
//! Who can do what: anyone may read the directory and get nonces; an account is created only
//! with a valid EAB (unless `external_account_required = false` and a default platform is
//! configured) and acts for that platform alone; every other request is a JWS signed by the
//! account key (checked against the stored key), for this exact URL, with a fresh nonce.
mod flow;
mod jws;
mod nonce;
mod objects;
mod problem;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

pub use jws::b64;
pub use problem::Problem;

use crate::service::Service;
use crate::validation::Validator;

/// ACME settings (config section `[acme]`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Accounts must be bound to a platform by EAB (default true).
    pub external_account_required: bool,
    /// The platform accounts without EAB act for (required when EAB is optional).
    pub default_platform: Option<String>,
    /// The ecca profile orders use when they name none.
    pub default_profile: String,
    /// ecca profiles an order's `profile` may name (with a description each).
    pub profiles: Vec<(String, String)>,
    /// Base URL clients reach the listener at (default: https://HOST from each request).
    pub base_url: Option<String>,
    pub caa_identities: Vec<String>,
    /// Requests per second per client address (0: unlimited).
    pub per_ip: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            external_account_required: true,
            default_platform: None,
            default_profile: "server-tls".into(),
            profiles: vec![("server-tls".into(), "TLS server certificate".into())],
            base_url: None,
            caa_identities: vec!["ecca".into()],
            per_ip: 50,
        }
    }
}

/// The ACME edge's state.
#[derive(Debug)]
pub struct Acme {
    service: Arc<Service>,
    nonces: nonce::Nonces,
    validator: Arc<Validator>,
    rate: Option<crate::listen::RateLimiter>,
    settings: Settings,
}

impl Acme {
    pub fn new(service: Arc<Service>, validator: Validator, settings: Settings) -> Arc<Acme> {
        Arc::new(Acme {
            service,
            nonces: nonce::Nonces::default(),
            validator: Arc::new(validator),
            rate: crate::listen::RateLimiter::new(settings.per_ip),
            settings,
        })
    }

    /// https://HOST as the client addressed us (or the configured base).
    fn base(&self, headers: &HeaderMap) -> String {
        if let Some(b) = &self.settings.base_url {
            return b.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("https://{host}")
    }
}

/// Every answer carries a fresh nonce (RFC 8555 §6.5) and the directory link (§7.1); a
/// client address over its rate gets `rateLimited` with Retry-After before anything is read.
async fn decorate(State(acme): State<Arc<Acme>>, req: Request, next: Next) -> Response {
    let base = acme.base(req.headers());
    let client = req.extensions().get::<crate::listen::ClientAddr>().copied();
    let over = match (&acme.rate, client) {
        (Some(limiter), Some(c)) => limiter.check(c.0.ip()).err(),
        _ => None,
    };
    let mut resp = match over {
        Some(wait) => {
            let mut p = Problem::rate_limited(
                "too many ACME requests from this address; retry after the given seconds".into(),
            );
            p.retry_after = Some(wait);
            axum::response::IntoResponse::into_response(p)
        }
        None => next.run(req).await,
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&acme.nonces.issue()) {
        h.insert("replay-nonce", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("<{base}/acme/directory>;rel=\"index\"")) {
        h.append(header::LINK, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The ACME routes.
pub fn router(acme: Arc<Acme>) -> Router {
    Router::new()
        .route("/acme/directory", get(flow::directory))
        .route(
            "/acme/new-nonce",
            get(flow::new_nonce_get).head(flow::new_nonce_head),
        )
        .route("/acme/new-account", post(flow::new_account))
        .route("/acme/account/{id}", post(flow::account))
        .route("/acme/key-change", post(flow::key_change))
        .route("/acme/new-order", post(flow::new_order))
        .route("/acme/order/{id}", post(flow::order))
        .route("/acme/order/{id}/finalize", post(flow::finalize))
        .route("/acme/authz/{id}", post(flow::authz))
        .route("/acme/chall/{id}/{kind}", post(flow::challenge))
        .route("/acme/cert/{id}", post(flow::certificate))
        .route("/acme/cert/{id}/{n}", post(flow::alternate))
        .route("/acme/revoke-cert", post(flow::revoke))
        .route("/acme/renewal-info/{id}", get(flow::renewal_info))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(acme.clone(), decorate))
        .with_state(acme)
}
