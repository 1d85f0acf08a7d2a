//! Starting `ecca-server`: `bootstrap` initializes or loads the data directory, `listeners`
//! serves gRPC (mTLS) and HTTP, `maintenance` keeps certificates fresh and supervises the
//! background work.
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::grpc::tls::ServerCert;
use crate::layout::{Endpoints, Layout};
use crate::pemfile;
use crate::service::Service;

mod acme;
mod bootstrap;
pub mod kmc;
mod listeners;
mod maintenance;

pub use bootstrap::{ensure_working_keys, prepare, write_credential};

/// Logs to stderr, filtered by $ECCA_LOG (tracing env-filter syntax; default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ECCA_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// A daemon's line on stdout: nobody reading it (a closed pipe) must not stop the daemon, as
/// `println!` would by panicking.
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(line).and_then(|()| out.write_all(b"\n"));
    let _ = out.flush();
}

/// Resolves at Ctrl-C or SIGTERM: when a daemon should stop.
pub async fn stop_requested() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// A server that is running; dropping it does not stop it, [`Running::shutdown`] does.
#[derive(Debug)]
pub struct Running {
    pub endpoints: Endpoints,
    /// True when this start created the CA.
    pub initialized: bool,
    shutdown: oneshot::Sender<()>,
    /// The gRPC and HTTP servers: awaited on shutdown.
    servers: Vec<JoinHandle<()>>,
    /// Loops that run forever (CRL refresh, renewals, supervision): aborted on shutdown.
    background: Vec<JoinHandle<()>>,
    /// Says why the server cannot go on (the store's writer stopped).
    failed: Option<oneshot::Receiver<String>>,
    service: Arc<Service>,
    /// The key management centre run beside the CA (none when it is elsewhere).
    kmc: Option<kmc::RunningKmc>,
}

impl Running {
    /// Stops serving, waits for the listeners to close, then lets the store finish what is
    /// queued and close.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        for t in self.servers {
            let _ = t.await;
        }
        for t in self.background {
            t.abort();
            let _ = t.await;
        }
        if let Some(kmc) = self.kmc {
            kmc.shutdown().await;
        }
        if let Err(e) = self.service.flush_statistics().await {
            tracing::warn!(error = %e, "statistics counted since the last flush are lost");
        }
        let store = self.service.store();
        store.stop_writer();
        for _ in 0..200 {
            if store.health().is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Waits (at most `limit`) until background OCSP pre-signing has caught up with what was
    /// issued: a benchmark measures one phase at a time. Returns whether it caught up.
    pub async fn settle(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.service.publisher().presign_pending() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    /// Waits until the servers stop (they stop on their own only on error).
    pub async fn wait(self) {
        for t in self.servers {
            let _ = t.await;
        }
    }

    /// A future that resolves when the server cannot go on, with the reason (health has
    /// been NOT_SERVING for a while by then); the caller should shut down and exit non-zero.
    /// Pending forever otherwise, and for every call but the first.
    pub fn failure(&mut self) -> impl std::future::Future<Output = String> + Send + 'static {
        let rx = self.failed.take();
        async move {
            match rx {
                Some(rx) => match rx.await {
                    Ok(why) => why,
                    Err(_) => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        }
    }

    /// The service behind the listeners (for embedding and tests).
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// The key management centre this server runs, if it runs one.
    pub fn kmc(&self) -> Option<&kmc::RunningKmc> {
        self.kmc.as_ref()
    }
}

/// Initializes or loads, binds both listeners and starts serving.
pub async fn start(config: ServerConfig) -> Result<Running> {
    // Bind first: with port 0 the HTTP address, and so the default base URL, is known only now.
    let bind = |addr: SocketAddr, what: &'static str| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {addr} for {what}: {e}")))
    };
    let grpc_listener = bind(config.grpc_listen, "gRPC").await?;
    let http_listener = bind(config.http_listen, "HTTP").await?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(bind(addr, "metrics").await?),
        None => None,
    };
    let console_listener = match config.console_listen {
        Some(addr) => Some(bind(addr, "the console").await?),
        None => None,
    };
    let acme_listener = match config.acme_listen {
        Some(addr) => Some(bind(addr, "ACME").await?),
        None => None,
    };
    // Counting is process-wide: one server per process in production.
    crate::metrics::set_enabled(metrics_listener.is_some());
    let local =
        |l: &tokio::net::TcpListener| l.local_addr().map_err(|e| Error::Internal(e.to_string()));
    let (grpc_addr, http_addr) = (local(&grpc_listener)?, local(&http_listener)?);
    let metrics_addr = metrics_listener.as_ref().map(local).transpose()?;
    let console_addr = console_listener.as_ref().map(local).transpose()?;
    let acme_addr = acme_listener.as_ref().map(local).transpose()?;
    let base_url = config.base_url(http_addr);
    let (kmc, kmc_client) = kmc::connect(&config).await?;
    let (service, initialized) = prepare(&config, &base_url, Some(kmc_client)).await?;
    // CRLs exist before the first request; then they follow revocations and the clock.
    service.publisher().rebuild_crls().await?;
    let layout = Layout::new(&config.data_dir);
    let (chain, key) = bootstrap::load_server_cert(&layout)?;
    let server_cert = ServerCert::new(&chain, &key)?;
    if let Some(addr) = console_addr {
        service.console().set_addr(addr);
    }
    let acme = match acme_listener {
        Some(listener) => Some((listener, acme::prepare(&config, &layout, &service)?)),
        None => None,
    };
    let listeners = listeners::serve(
        &config,
        service.clone(),
        server_cert.clone(),
        listeners::Bound {
            grpc: grpc_listener,
            http: http_listener,
            metrics: metrics_listener,
            console: console_listener,
            acme,
        },
    )
    .await?;

    let upkeep = Arc::new(maintenance::Upkeep {
        service: service.clone(),
        config: config.clone(),
        hsm: config.pkcs11.as_ref().map(|s| s.resolve()).transpose()?,
        server_cert,
    });
    let (failed_tx, failed_rx) = oneshot::channel();
    let publisher = service.publisher().clone();
    let follower = service.publisher().clone();
    let presigner = service.publisher().clone();
    let counter = service.clone();
    let reports = config.monthly_reports.then(|| layout.reports());
    let background = vec![
        maintenance::supervised("statistics", move || {
            maintenance::statistics(counter.clone(), reports.clone())
        }),
        maintenance::supervised("crl-schedule", move || publisher.clone().run()),
        maintenance::supervised("acme-purge", {
            let service = service.clone();
            move || acme::purge(service.clone())
        }),
        maintenance::supervised("follow", move || follower.clone().follow()),
        maintenance::supervised("ocsp-presign", move || presigner.clone().presign_worker()),
        maintenance::supervised("maintenance", move || maintenance::maintain(upkeep.clone())),
        tokio::spawn(maintenance::watch_store(
            service.clone(),
            listeners.health.clone(),
            failed_tx,
        )),
    ];

    let endpoints = Endpoints {
        grpc: grpc_addr,
        http: http_addr,
        metrics: metrics_addr,
        console: console_addr,
        acme: acme_addr,
    };
    let json = serde_json::to_vec_pretty(&endpoints).map_err(|e| Error::Internal(e.to_string()))?;
    pemfile::write_private(&layout.endpoints(), &json)?;
    Ok(Running {
        endpoints,
        initialized,
        shutdown: listeners.stop,
        servers: listeners.tasks,
        background,
        failed: Some(failed_rx),
        service,
        kmc,
    })
}
