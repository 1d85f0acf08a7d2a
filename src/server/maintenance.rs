//! Maintenance: the loop that signs audit checkpoints, renews ecca's own certificates (the
//! gRPC server's, presented from the next handshake on; the OCSP responder; the TSA) and
//! rotates and retires issuing CAs as they run short or fall out of use,
//! and the supervision of background work: a task that dies is restarted, and a store whose
//! writer stopped turns health NOT_SERVING and stops the server.
use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;

use super::bootstrap::{
    OCSP_RENEW_BEFORE, TSA_RENEW_BEFORE, ensure_server_cert, ensure_working_keys, load_server_cert,
    tls_renew_before,
};
use crate::config::ServerConfig;
use crate::error::Result;
use crate::grpc::tls::ServerCert;
use crate::layout::Layout;
use crate::service::Service;
use crate::signer::pkcs11::Pkcs11Config;

/// What the maintenance loop works on.
#[derive(Debug)]
pub(super) struct Upkeep {
    pub service: Arc<Service>,
    pub config: ServerConfig,
    pub hsm: Option<Pkcs11Config>,
    pub server_cert: Arc<ServerCert>,
}

/// Checkpoints the audit log and renews what is due, every `audit_checkpoint_every` and
/// whenever a CA appears.
pub(super) async fn maintain(u: Arc<Upkeep>) {
    loop {
        if let Err(e) = u.service.report_timestamps().await {
            tracing::error!(error = %e, "time-stamp report failed");
        }
        if let Err(e) = u.service.checkpoint().await {
            tracing::error!(error = %e, "audit checkpoint failed");
        }
        if let Err(e) = renew(&u).await {
            tracing::error!(error = %e, "certificate renewal failed; retrying next round");
        }
        if let Some(margin) = u.config.rotate_margin_days
            && let Err(e) = u.service.issuer_upkeep(margin).await
        {
            tracing::error!(error = %e, "issuer upkeep (rotation, retirement) failed; retrying next round");
        }
        tokio::select! {
            _ = tokio::time::sleep(u.config.audit_checkpoint_every) => {}
            // A new CA gets its responder (and a new family its TSA) now, not next round.
            _ = u.service.publisher().new_ca_appeared() => {}
        }
    }
}

/// How often counted events are stored and new certificates and revocations rolled up.
const STATISTICS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Keeps the statistics current: events stored, the aggregates rolled up (a crash loses at
/// most this interval's event counts; certificates and revocations are never lost: they are
/// rolled up from their rows).
pub(super) async fn statistics(service: Arc<Service>, reports: Option<std::path::PathBuf>) {
    loop {
        tokio::time::sleep(STATISTICS_EVERY).await;
        if let Some(dir) = &reports
            && let Err(e) = crate::report::write_last_month(&service, dir).await
        {
            tracing::warn!(error = %e, "monthly report not written; retrying");
        }
        if let Err(e) = service.flush_statistics().await {
            tracing::warn!(error = %e, "statistics events not stored; retrying");
        }
        if let Err(e) = service.roll_up_statistics().await {
            tracing::warn!(error = %e, "statistics roll-up failed; retrying");
        }
    }
}

/// Renews the certificates within their margin of expiry (checked in memory: cheap).
async fn renew(u: &Upkeep) -> Result<()> {
    let layout = Layout::new(&u.config.data_dir);
    let margin = tls_renew_before(&u.config);
    if ensure_server_cert(&u.service, &layout, &u.config, margin).await? {
        let (chain, key) = load_server_cert(&layout)?;
        u.server_cert.replace(&chain, &key)?;
        tracing::info!("server TLS certificate renewed; new handshakes present it");
    }
    // Checked in memory: a CA made since (rotation, a new hierarchy, another instance) or a
    // certificate near its end gets its responder or TSA here.
    if u.service
        .publisher()
        .responders_due(OCSP_RENEW_BEFORE.whole_seconds())
        || u.service.tsa_due(TSA_RENEW_BEFORE.whole_seconds())
        || u.service
            .report_signer_due(TSA_RENEW_BEFORE.whole_seconds())
    {
        ensure_working_keys(&u.service, &layout, u.hsm.as_ref()).await?;
    }
    Ok(())
}

/// Aborts the task it holds when dropped (so aborting a supervisor aborts its task).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a background task, restarting it after a pause whenever it panics; one that returns
/// is done. Aborting the returned handle stops the task.
pub(super) fn supervised<F, Fut>(name: &'static str, make: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let mut task = AbortOnDrop(tokio::spawn(make()));
            match (&mut task.0).await {
                Ok(()) => return,
                Err(e) if e.is_cancelled() => return,
                Err(e) => {
                    tracing::error!(task = name, error = %e, "background task died; restarting it");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    })
}

/// How long NOT_SERVING is shown before the server stops, so load balancers see it.
pub(super) const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Watches the store: once its writer has stopped (nothing can be issued, revoked or
/// audited), health turns NOT_SERVING everywhere, and after [`DRAIN`] `failed` says why (the
/// binary then exits non-zero and its supervisor restarts it on a fresh writer).
pub(super) async fn watch_store(
    service: Arc<Service>,
    health: HealthReporter,
    failed: oneshot::Sender<String>,
) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if let Err(e) = service.store().health() {
            tracing::error!(error = %e, "the store can no longer write; not serving");
            super::listeners::set_health(&health, false).await;
            tokio::time::sleep(DRAIN).await;
            let _ = failed.send(e.to_string());
            return;
        }
    }
}
