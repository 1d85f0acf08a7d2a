//! Prometheus metrics (text exposition 0.0.4), process-wide: one server per process in
//! production, and instrumentation points anywhere below `service` need no handle passed down.
//! Labels are bounded: profiles and issuers come from configuration, platforms beyond
//! [`MAX_PLATFORM_LABELS`] count as "other", RPC methods outside the API's descriptor as
//! "other", so no caller can grow the exposition.
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Distinct platforms that get a label of their own.
pub const MAX_PLATFORM_LABELS: usize = 100;

/// Latency buckets, seconds: 50 µs to 10 s.
const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// Every metric ecca exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub issued: IntCounterVec,
    pub issuance_requests: IntCounterVec,
    pub rpc_duration: HistogramVec,
    pub stage_duration: HistogramVec,
    pub revocations: IntCounterVec,
    pub ocsp_responses: IntCounterVec,
    pub ocsp_cache: IntCounterVec,
    pub crl_bytes: IntGaugeVec,
    pub crl_entries: IntGaugeVec,
    pub crl_this_update: IntGaugeVec,
    pub crl_age: IntGaugeVec,
    pub timestamps: IntCounter,
    pub verifications: IntCounterVec,
    pub store_commit: HistogramVec,
    pub store_queue: IntGauge,
    pub signer_duration: HistogramVec,
    pub signer_errors: IntCounterVec,
    pub expiring: IntGaugeVec,
    pub dual_pairs: IntCounter,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c =
        IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("{name}: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g =
        IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("{name}: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    g
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    r.register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    h
}

impl Metrics {
    // The names and help texts are constants: a registration failure is a bug caught by
    // every test that starts a server.
    fn new() -> Self {
        let r = Registry::new();
        let build = gauge(
            &r,
            "ecca_build_info",
            "ecca's version (always 1)",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let timestamps = IntCounter::new("ecca_timestamps_issued_total", "RFC 3161 tokens issued")
            .unwrap_or_else(|e| panic!("{e}"));
        r.register(Box::new(timestamps.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        let store_queue = IntGauge::new("ecca_store_queue_depth", "writes waiting for the store")
            .unwrap_or_else(|e| panic!("{e}"));
        r.register(Box::new(store_queue.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        let dual_pairs = IntCounter::new(
            "ecca_dual_pairs_issued_total",
            "dual certificate pairs issued (GM/T 0034)",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        r.register(Box::new(dual_pairs.clone()))
            .unwrap_or_else(|e| panic!("{e}"));
        Metrics {
            issued: counter(
                &r,
                "ecca_certificates_issued_total",
                "certificates issued to callers",
                &["profile", "issuer", "platform"],
            ),
            issuance_requests: counter(
                &r,
                "ecca_issuance_requests_total",
                "issuance requests by result (issued, invalid, denied, lint_refused, throttled, unavailable, error)",
                &["profile", "result"],
            ),
            rpc_duration: histogram(
                &r,
                "ecca_rpc_duration_seconds",
                "gRPC call latency until the response headers",
                &["method"],
            ),
            stage_duration: histogram(
                &r,
                "ecca_issuance_stage_duration_seconds",
                "issuance latency by stage (csr_verify, build_lint, sign, store)",
                &["stage"],
            ),
            revocations: counter(
                &r,
                "ecca_revocations_total",
                "revocations by RFC 5280 reason",
                &["reason"],
            ),
            ocsp_responses: counter(
                &r,
                "ecca_ocsp_responses_total",
                "OCSP responses by status (good, revoked, unknown, or the error returned)",
                &["status"],
            ),
            ocsp_cache: counter(
                &r,
                "ecca_ocsp_cache_total",
                "OCSP answers from the pre-signed cache (hit) or signed on request (miss)",
                &["result"],
            ),
            crl_bytes: gauge(
                &r,
                "ecca_crl_bytes",
                "size of the latest full CRL per CA",
                &["ca"],
            ),
            crl_entries: gauge(
                &r,
                "ecca_crl_entries",
                "entries of the latest full CRL per CA",
                &["ca"],
            ),
            crl_this_update: gauge(
                &r,
                "ecca_crl_this_update_timestamp_seconds",
                "thisUpdate of the latest full CRL per CA",
                &["ca"],
            ),
            crl_age: gauge(
                &r,
                "ecca_crl_age_seconds",
                "age of the latest full CRL per CA at scrape time",
                &["ca"],
            ),
            timestamps,
            verifications: counter(
                &r,
                "ecca_verifications_total",
                "VerifyCertificate / VerifySignature results",
                &["kind", "outcome"],
            ),
            store_commit: histogram(
                &r,
                "ecca_store_commit_duration_seconds",
                "durable commit latency of one group of writes",
                &["backend"],
            ),
            store_queue,
            signer_duration: histogram(
                &r,
                "ecca_signer_duration_seconds",
                "CA key signature latency",
                &["backend"],
            ),
            signer_errors: counter(
                &r,
                "ecca_signer_errors_total",
                "CA key signatures that failed",
                &["backend"],
            ),
            expiring: gauge(
                &r,
                "ecca_certificates_expiring",
                "unrevoked certificates expiring within 7 and 30 days (at scrape time)",
                &["within"],
            ),
            dual_pairs,
            registry: r,
        }
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
static ENABLED: AtomicBool = AtomicBool::new(true);
static PLATFORMS: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

/// The metrics, unless counting is switched off (`ecca bench` compares both).
pub fn get() -> Option<&'static Metrics> {
    ENABLED.load(Ordering::Relaxed).then(|| &*METRICS)
}

/// Switches counting on or off for the whole process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// The exposition, in the Prometheus text format (0.0.4).
pub fn encode() -> String {
    let mut out = Vec::new();
    // Encoding our own metric families into memory cannot fail.
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A platform's label: its name for the first [`MAX_PLATFORM_LABELS`], "other" after, "none"
/// for callers that are not platforms.
pub fn platform_label(tenant: &str) -> String {
    if tenant.is_empty() {
        return "none".into();
    }
    let Ok(mut seen) = PLATFORMS.lock() else {
        return "other".into();
    };
    if seen.contains(tenant)
        || (seen.len() < MAX_PLATFORM_LABELS && seen.insert(tenant.to_string()))
    {
        tenant.to_string()
    } else {
        "other".into()
    }
}

/// Records how long a stage of issuance took.
pub fn stage(name: &str, since: Instant) {
    if let Some(m) = get() {
        m.stage_duration
            .with_label_values(&[name])
            .observe(since.elapsed().as_secs_f64());
    }
}
