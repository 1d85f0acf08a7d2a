//! `/metrics` on a listener of its own (`metrics_listen`), never on the public HTTP side or
//! the gRPC port: the Prometheus text exposition, with the scrape-time gauges (CRL age,
//! certificates expiring soon) refreshed at most every few seconds however often it is scraped.
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::service::Service;

/// The scrape-time gauges are refreshed at most this often (they query the store).
const REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Scrape {
    service: Arc<Service>,
    refreshed: tokio::sync::Mutex<Option<Instant>>,
}

/// The metrics listener's router.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(Arc::new(Scrape {
            service,
            refreshed: tokio::sync::Mutex::new(None),
        }))
}

async fn metrics(State(s): State<Arc<Scrape>>) -> Response {
    {
        let mut last = s.refreshed.lock().await;
        if last.is_none_or(|t| t.elapsed() >= REFRESH) {
            if let Err(e) = s.service.observe().await {
                tracing::warn!(error = %e, "metrics: scrape-time gauges not refreshed");
            }
            *last = Some(Instant::now());
        }
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::encode(),
    )
        .into_response()
}
