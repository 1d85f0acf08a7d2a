//! The two listeners: gRPC over mTLS (the API) and plain HTTP (what relying parties fetch),
//! with the shared connection caps and timeouts of `listen`, stopped together.
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::grpc::tls::ServerCert;
use crate::grpc::{AdminApi, CaApi};
use crate::listen::Tracker;
use crate::proto::admin_server::AdminServer;
use crate::proto::certificate_authority_server::CertificateAuthorityServer;
use crate::service::Service;

/// The running listeners: their tasks, the stop signal, and the gRPC health reporter.
#[derive(Debug)]
pub(super) struct Listeners {
    pub tasks: Vec<JoinHandle<()>>,
    pub stop: oneshot::Sender<()>,
    pub health: HealthReporter,
}

/// Marks every gRPC service (and the server as a whole, "") serving or not.
pub(super) async fn set_health(health: &HealthReporter, serving: bool) {
    use tonic_health::ServingStatus;
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health.set_service_status("", status).await;
    if serving {
        health
            .set_serving::<CertificateAuthorityServer<CaApi>>()
            .await;
        health.set_serving::<AdminServer<AdminApi>>().await;
    } else {
        health
            .set_not_serving::<CertificateAuthorityServer<CaApi>>()
            .await;
        health.set_not_serving::<AdminServer<AdminApi>>().await;
    }
}

/// The bound sockets.
pub(super) struct Bound {
    pub grpc: TcpListener,
    pub http: TcpListener,
    pub metrics: Option<TcpListener>,
    pub console: Option<TcpListener>,
    pub acme: Option<(TcpListener, Arc<crate::acme::Acme>)>,
}

/// The console's and the ACME server's TLS: the gRPC server's certificate (renewed in
/// place, chaining to DIR/admin/ca.pem), no client certificate asked (sign-in is by login
/// link; ACME requests are JWS-signed), HTTP/1.1.
fn https_tls(cert: Arc<ServerCert>) -> Result<tokio_rustls::TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| Error::Config(format!("TLS versions: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Starts serving gRPC on `grpc` (presenting `cert`), HTTP on `http`, metrics and the
/// console when bound.
pub(super) async fn serve(
    config: &ServerConfig,
    service: Arc<Service>,
    cert: Arc<ServerCert>,
    bound: Bound,
) -> Result<Listeners> {
    let Bound {
        grpc,
        http,
        metrics,
        console,
        acme,
    } = bound;
    let https_acceptor = https_tls(cert.clone())?;
    let trust = super::bootstrap::client_trust(&service).await?;
    let tls = crate::grpc::tls::server_config(cert, config.grpc_tls12, &trust)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, true).await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;
    let ca = CertificateAuthorityServer::new(CaApi::new(service.clone()))
        .max_decoding_message_size(config.max_message_bytes);

    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (grpc_stop_tx, grpc_stop_rx) = oneshot::channel::<()>();
    let (http_stop_tx, http_stop_rx) = oneshot::channel::<()>();
    let (metrics_stop_tx, metrics_stop_rx) = oneshot::channel::<()>();
    let (console_stop_tx, console_stop_rx) = oneshot::channel::<()>();
    let (acme_stop_tx, acme_stop_rx) = oneshot::channel::<()>();
    let grpc_tracker = Tracker::new(config.limits);
    let http_tracker = Tracker::new(config.limits);
    let trackers = (grpc_tracker.clone(), http_tracker.clone());
    tokio::spawn(async move {
        let _ = stop_rx.await;
        let _ = grpc_stop_tx.send(());
        let _ = http_stop_tx.send(());
        let _ = metrics_stop_tx.send(());
        let _ = console_stop_tx.send(());
        let _ = acme_stop_tx.send(());
        // Open streams (WatchRevocations) would hold a graceful stop forever: cut them after
        // a grace period.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        trackers.0.close_all();
        trackers.1.close_all();
    });
    let grpc_router = Server::builder()
        .layer(crate::grpc::tls::InFlightLayer)
        .layer(crate::grpc::timing::TimingLayer)
        .concurrency_limit_per_connection(256)
        .timeout(std::time::Duration::from_secs(30))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ca)
        .add_service(
            AdminServer::new(AdminApi::new(service.clone()))
                .max_decoding_message_size(config.max_message_bytes),
        );
    let (incoming, accepting) = crate::grpc::tls::incoming(grpc, grpc_tracker, tls);
    let grpc_task = tokio::spawn(async move {
        if let Err(e) = grpc_router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = grpc_stop_rx.await;
            })
            .await
        {
            tracing::error!(error = %e, "gRPC server stopped");
        }
        // Stopped only once the listening socket is closed (a restart may bind the port).
        let _ = accepting.await;
    });
    let mut tasks = vec![grpc_task];
    if let Some(listener) = metrics {
        let app = crate::http::metrics::router(service.clone());
        tasks.push(tokio::spawn(crate::http::serve(
            listener,
            app,
            Tracker::new(config.limits),
            async {
                let _ = metrics_stop_rx.await;
            },
        )));
    }
    if let Some(listener) = console {
        let app = crate::http::console::router(service.clone());
        tasks.push(tokio::spawn(crate::http::serve_with(
            listener,
            app,
            Tracker::new(config.limits),
            async {
                let _ = console_stop_rx.await;
            },
            Some(https_acceptor.clone()),
        )));
    }
    if let Some((listener, state)) = acme {
        tasks.push(tokio::spawn(crate::http::serve_with(
            listener,
            crate::acme::router(state),
            Tracker::new(config.limits),
            async {
                let _ = acme_stop_rx.await;
            },
            Some(https_acceptor),
        )));
    }
    let app = crate::http::router(service, &config.rates);
    tasks.push(tokio::spawn(crate::http::serve(
        http,
        app,
        http_tracker,
        async {
            let _ = http_stop_rx.await;
        },
    )));
    Ok(Listeners {
        tasks,
        stop: stop_tx,
        health,
    })
}
