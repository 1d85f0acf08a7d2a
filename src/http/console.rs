//! The read-only web console, on its own HTTPS listener: a one-time login link (from
//! `ecca console login`) opens a session (cookie HttpOnly, Secure, SameSite=Strict); the
//! dashboard is one server-rendered page (inline CSS and SVG, no script, no external asset).
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use time::OffsetDateTime;

use crate::auth::Caller;
use crate::core::stats::{By, DAY};
use crate::report::html::{self, escape};
use crate::service::Service;
use crate::service::console::SESSION_TTL;
use crate::service::statistics::StatsQuery;

const COOKIE: &str = "ecca_console";
/// The dashboard's window: the last 30 days, by day.
const WINDOW_DAYS: i64 = 30;

/// The console's routes.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login))
        .route("/logout", get(logout))
        .with_state(service)
        .layer(axum::middleware::map_response(secure_headers))
}

/// No framing, no sniffing, no referrer (a login token must not leak), nothing cached, and
/// nothing loaded from anywhere.
async fn secure_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; form-action 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
}

fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn login_page(why: &str) -> Response {
    page(
        StatusCode::UNAUTHORIZED,
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ecca console: sign in</title></head>\
             <body style=\"font-family:system-ui,sans-serif;margin:3em\"><h1>ecca console: sign in</h1><p>{}</p>\
             <p>Ask for a one-time login link on a machine holding an admin or auditor credential:</p>\
             <pre>ecca console login</pre><p>Open the link it prints within five minutes; it works once.</p></body></html>",
            escape(why)
        ),
    )
}

async fn login(State(s): State<Arc<Service>>, RawQuery(q): RawQuery) -> Response {
    let token = q
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .unwrap_or_default();
    let Some((session, caller)) = s.console_sign_in(token).await else {
        return login_page("This login link has expired or was already used.");
    };
    tracing::info!(actor = %caller.actor(), "console session opened");
    let set = format!(
        "{COOKIE}={session}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={SESSION_TTL}"
    );
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if let Some(c) = cookie(&headers) {
        s.console().sign_out(&c);
    }
    let mut r = login_page("Signed out.");
    let clear = format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn dashboard(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let caller = match cookie(&headers) {
        Some(c) => s.console_session(&c).await,
        None => None,
    };
    let Some(caller) = caller else {
        return login_page("You are not signed in.");
    };
    match render(&s, &caller).await {
        Ok(body) => page(StatusCode::OK, body),
        Err(e) => {
            tracing::error!(error = %e, "console dashboard failed");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "<p>The dashboard could not be built: {}</p>",
                    escape(&e.to_string())
                ),
            )
        }
    }
}

async fn render(s: &Service, caller: &Caller) -> crate::Result<String> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let from = (now.div_euclid(DAY) - WINDOW_DAYS + 1) * DAY;
    let query = StatsQuery {
        platform: None,
        from: Some(from),
        to: None,
        by: Some(By::Day),
    };
    let stats = crate::report::proto_of(s.statistics(caller, query).await?);
    let store = s.store();
    let expiring: Vec<Vec<String>> = {
        let mut rows = Vec::new();
        for days in [7, 30] {
            let n = store.expiring(now, now + days * DAY).await?;
            rows.push(vec![format!("within {days} days"), n.to_string()]);
        }
        rows
    };
    let (head_id, _) = store.audit_head().await?;
    let audit = match store.last_checkpoint().await? {
        Some(c) => vec![vec![
            head_id.to_string(),
            c.upto_id.to_string(),
            crate::report::time_text(c.at),
            (head_id - c.upto_id).to_string(),
        ]],
        None => vec![vec![
            head_id.to_string(),
            "none yet".into(),
            String::new(),
            head_id.to_string(),
        ]],
    };
    let who = format!(
        "<p class=\"muted\">Signed in as {} &middot; <a href=\"/logout\">sign out</a></p>",
        escape(&caller.actor())
    );
    let extra = [
        (
            "Certificates expiring soon (unrevoked)",
            html::table(&["expiring", "certificates"], &expiring),
        ),
        (
            "Audit chain",
            html::table(
                &[
                    "entries",
                    "signed checkpoint up to",
                    "checkpoint signed at",
                    "entries since",
                ],
                &audit,
            ),
        ),
        ("Session", who),
    ];
    Ok(html::page("ecca console", &stats, &extra))
}
