//! Starting `ecca-server`: initialize or load the data directory, then serve gRPC (mTLS) and HTTP.
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::authority::{Authority, KeyMaker, WorkingKey};
use crate::config::ServerConfig;
use crate::core::csr::Attr;
use crate::core::issue::Names;
use crate::core::keys::CaKeyAlg;
use crate::core::profile::Profiles;
use crate::error::{Error, Result};
use crate::grpc::{AdminApi, CaApi};
use crate::layout::{Endpoints, Layout};
use crate::listen::Tracker;
use crate::pemfile;
use crate::proto::admin_server::AdminServer;
use crate::proto::certificate_authority_server::CertificateAuthorityServer;
use crate::service::{Internal, Service};
use crate::signer::SoftwareKey;
use crate::signer::pkcs11::Pkcs11Config;
use crate::store::Role;

/// Renew the server's TLS certificate when it has less than this left.
const SERVER_CERT_RENEW_BEFORE: Duration = Duration::days(30);

/// A server that is running; dropping it does not stop it, [`Running::shutdown`] does.
#[derive(Debug)]
pub struct Running {
    pub endpoints: Endpoints,
    /// True when this start created the CA.
    pub initialized: bool,
    shutdown: oneshot::Sender<()>,
    /// The gRPC and HTTP servers: awaited on shutdown.
    servers: Vec<JoinHandle<()>>,
    /// Loops that run forever (CRL refresh, renewals): aborted on shutdown.
    background: Vec<JoinHandle<()>>,
    service: Arc<Service>,
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
        let store = self.service.store();
        store.stop_writer();
        for _ in 0..200 {
            if store.health().is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Waits until the servers stop (they stop on their own only on error).
    pub async fn wait(self) {
        for t in self.servers {
            let _ = t.await;
        }
    }
}

/// Initializes the data directory if it is empty: CA hierarchy, server certificate, admin credential.
/// `base_url` is the public HTTP base that certificates point at. Returns the service and whether
/// the CA was created now.
pub async fn prepare(config: &ServerConfig, base_url: &str) -> Result<(Arc<Service>, bool)> {
    // Profiles first: a bad profile must stop a first start before any key is made.
    let profiles = match &config.profiles_dir {
        Some(dir) => crate::config::load_profiles(dir)?,
        None => Profiles::embedded()?,
    };
    let layout = Layout::new(&config.data_dir);
    let created = !layout.is_initialized();
    let hsm = config.pkcs11.as_ref().map(|s| s.resolve()).transpose()?;
    // The store first: a new CA must not be made over a database that already holds one.
    crate::pemfile::private_dir(&layout.dir)?;
    let store = crate::store::open(&layout, config.database.as_deref()).await?;
    if created && store.audit_head().await?.0 > 0 {
        return Err(Error::Config(format!(
            "the database already holds a CA; to add an instance, copy the first instance's data directory to {} and start again",
            layout.dir.display()
        )));
    }
    let authority = if created {
        Authority::create(&layout, &config.init, base_url, hsm.as_ref())?
    } else {
        // Data directories made before the credential CA existed get one now.
        if Authority::ensure_credential_ca(&layout, base_url, hsm.as_ref())? {
            store
                .audit_event(
                    "ecca",
                    "ca.credential.created",
                    "credential",
                    "credential CA signed by the root; API credentials and the gRPC certificate move to it",
                )
                .await?;
            tracing::info!("credential CA created for an existing CA (trust boundary migration)");
        }
        Authority::load(&layout, base_url, hsm.as_ref())?
    };
    // Profile changes are state changes: the audit log records what this start loaded.
    let detail = format!(
        "version={} profiles={} sha256={}",
        env!("CARGO_PKG_VERSION"),
        profiles
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        profiles.fingerprint()
    );
    store
        .audit_event("ecca", "server.started", "profiles", &detail)
        .await?;
    let mut service = Service::new(Arc::new(authority), store, Arc::new(profiles))?;
    service.set_tsa_policy(&config.tsa_policy)?;
    service.set_verify_fetch_allow(config.verify_fetch_allow.clone());
    let service = Arc::new(service);
    ensure_server_cert(&service, &layout, config).await?;
    ensure_working_keys(&service, &layout, hsm.as_ref()).await?;
    ensure_admin_credential(&service, &layout).await?;
    Ok((service, created))
}

fn server_names(config: &ServerConfig) -> Result<Names> {
    let mut names = Names {
        subject: vec![(Attr::CommonName, "localhost".into())],
        dns: vec!["localhost".into()],
        ips: vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ],
        emails: vec![],
    };
    for n in &config.server_names {
        match n.parse::<IpAddr>() {
            Ok(ip) if !names.ips.contains(&ip) => names.ips.push(ip),
            Ok(_) => {}
            Err(_) => {
                let d = crate::core::names::dns_name(n, false)
                    .map_err(|e| Error::Config(format!("server_names: {e}")))?;
                if !names.dns.contains(&d) {
                    names.dns.push(d);
                }
            }
        }
    }
    Ok(names)
}

fn first_cert(pem_path: &std::path::Path) -> Option<Vec<u8>> {
    let pem = std::fs::read(pem_path).ok()?;
    pemfile::parse_certs(&pem).ok()?.into_iter().next()
}

fn expires_within(pem_path: &std::path::Path, margin: Duration) -> bool {
    let Some(der) = first_cert(pem_path) else {
        return true;
    };
    match X509Certificate::from_der(&der) {
        Ok((_, c)) => c.validity().not_after.to_datetime() - margin < OffsetDateTime::now_utc(),
        Err(_) => true,
    }
}

/// True if the certificate in `pem_path` was signed by `ca` (its issuer name and signature).
fn issued_by(pem_path: &std::path::Path, ca: &crate::authority::CaCert) -> bool {
    let Some(der) = first_cert(pem_path) else {
        return false;
    };
    let (Ok((_, c)), Ok((_, issuer))) = (
        X509Certificate::from_der(&der),
        X509Certificate::from_der(&ca.der),
    ) else {
        return false;
    };
    c.issuer().as_raw() == issuer.subject().as_raw()
        && c.verify_signature(Some(issuer.public_key())).is_ok()
}

async fn ensure_server_cert(
    service: &Service,
    layout: &Layout,
    config: &ServerConfig,
) -> Result<()> {
    // Reissued when expiring, and once when an older data directory gets its credential CA.
    if !expires_within(&layout.server_cert(), SERVER_CERT_RENEW_BEFORE)
        && layout.server_key().exists()
        && issued_by(&layout.server_cert(), &service.authority().credential)
    {
        return Ok(());
    }
    let key = SoftwareKey::generate(CaKeyAlg::P256)?;
    let record = service
        .issue_internal(Internal::ServerTls, server_names(config)?, &key.spki_der())
        .await?;
    key.save(&layout.server_key())?;
    // Clients anchor at the credential CA; those still anchored at the root (data
    // directories from before it) get there through the link certificate.
    let mut chain = vec![record.der.as_slice()];
    chain.extend(service.authority().credential_link.as_deref());
    pemfile::write_public(
        &layout.server_cert(),
        pemfile::certs_to_pem(chain).as_bytes(),
    )?;
    tracing::info!(serial = %record.serial, "server TLS certificate issued");
    Ok(())
}

/// Renew the delegated OCSP responder certificate when it has less than this left.
const OCSP_RENEW_BEFORE: Duration = Duration::days(30);
/// Renew the TSA certificate when it has less than this left.
const TSA_RENEW_BEFORE: Duration = Duration::days(90);

/// One of ecca's own working keys (OCSP responder, TSA): loaded, or issued when missing or
/// about to expire.
async fn ensure_working_key(
    service: &Service,
    kind: Internal,
    (cert, key): (std::path::PathBuf, std::path::PathBuf),
    (cn, role): (&str, &str),
    renew_before: Duration,
    hsm: Option<&Pkcs11Config>,
) -> Result<WorkingKey> {
    if expires_within(&cert, renew_before) || !key.exists() {
        // A renewed HSM key gets a new label; the old one stays in the token until an
        // operator removes it (pre-signed responses may still carry its signatures).
        let (spki_der, saved) = KeyMaker::new(hsm, CaKeyAlg::P256)?.generate_working(role)?;
        let names = Names {
            subject: vec![
                (Attr::Organization, "ecca".into()),
                (Attr::CommonName, cn.into()),
            ],
            ..Names::default()
        };
        let record = service.issue_internal(kind, names, &spki_der).await?;
        saved.save(&key)?;
        pemfile::write_public(
            &cert,
            pemfile::certs_to_pem([record.der.as_slice()]).as_bytes(),
        )?;
        tracing::info!(serial = %record.serial, cn, "working certificate issued");
    }
    WorkingKey::open(&cert, &key, hsm)
}

/// Loads the delegated OCSP responder and the TSA, issuing them when missing or expiring.
pub async fn ensure_working_keys(
    service: &Service,
    layout: &Layout,
    hsm: Option<&Pkcs11Config>,
) -> Result<()> {
    let paths = (layout.ocsp_cert(), layout.ocsp_key());
    let responder = ensure_working_key(
        service,
        Internal::OcspResponder,
        paths,
        ("ecca OCSP responder", "ocsp"),
        OCSP_RENEW_BEFORE,
        hsm,
    )
    .await?;
    service.publisher().set_responder(responder);
    let paths = (layout.tsa_cert(), layout.tsa_key());
    let tsa = ensure_working_key(
        service,
        Internal::Tsa,
        paths,
        ("ecca Time-Stamping Unit", "tsa"),
        TSA_RENEW_BEFORE,
        hsm,
    )
    .await?;
    service.set_tsa(tsa);
    Ok(())
}

/// Issues a client credential (certificate + key) for a role and writes it to `dir` as
/// cert.pem (with the credential CA), key.pem and ca.pem (the credential CA, which the
/// server's certificate chains to).
pub async fn write_credential(
    service: &Service,
    dir: &std::path::Path,
    cn: &str,
    role: Role,
    tenant: &str,
) -> Result<String> {
    let key = SoftwareKey::generate(CaKeyAlg::P256)?;
    let names = Names {
        subject: vec![
            (Attr::Organization, "ecca".into()),
            (Attr::CommonName, cn.into()),
        ],
        ..Names::default()
    };
    let cred = service
        .register_credential(names, &key.spki_der(), role, tenant, "ecca")
        .await?;
    pemfile::private_dir(dir)?;
    key.save_plain(&dir.join("key.pem"))?;
    let chain =
        std::iter::once(cred.cert_der.as_slice()).chain(cred.chain.iter().map(Vec::as_slice));
    pemfile::write_public(
        &dir.join("cert.pem"),
        pemfile::certs_to_pem(chain).as_bytes(),
    )?;
    pemfile::write_public(
        &dir.join("ca.pem"),
        pemfile::certs_to_pem([cred.ca_der.as_slice()]).as_bytes(),
    )?;
    Ok(cred.serial)
}

async fn ensure_admin_credential(service: &Service, layout: &Layout) -> Result<()> {
    let dir = layout.admin_dir();
    let old = first_cert(&dir.join("cert.pem"));
    if old.is_some()
        && dir.join("key.pem").exists()
        && issued_by(&dir.join("cert.pem"), &service.authority().credential)
    {
        return Ok(());
    }
    let serial = write_credential(service, &dir, "ecca admin", Role::Admin, "").await?;
    // An admin credential from before the credential CA is replaced here, and disabled.
    if let Some(old) = old {
        service
            .store()
            .disable_credential(&crate::core::fingerprint(&old), "ecca")
            .await?;
    }
    tracing::info!(%serial, "admin credential issued");
    Ok(())
}

/// What the gRPC listener accepts as client certificates: the credential CA, and credentials
/// issued by the issuing CA before the credential CA existed, pinned by hash while enabled.
async fn client_trust(service: &Service) -> Result<crate::grpc::tls::ClientTrust> {
    let mut pins = std::collections::HashSet::new();
    for cred in service.store().all_credentials().await? {
        if cred.disabled || cred.cert_sha256.is_empty() {
            continue;
        }
        let record = service
            .store()
            .get(&crate::core::serial::Serial::parse_hex(&cred.serial)?)
            .await?;
        if let Some(r) = record
            && r.issuer == crate::store::Issuer::Issuing
            && crate::core::fingerprint(&r.der) == cred.cert_sha256
        {
            pins.insert(crate::core::sha256(&r.der));
        }
    }
    if !pins.is_empty() {
        tracing::warn!(
            count = pins.len(),
            "credentials issued before the credential CA still work (pinned); rotate them with `ecca platform rotate`"
        );
    }
    let a = service.authority();
    Ok(crate::grpc::tls::ClientTrust {
        credential_ca: a.credential.der.clone(),
        legacy: Some((a.issuing.der.clone(), pins)),
    })
}

/// Periodic upkeep: signs audit checkpoints, renews the delegated OCSP responder and the TSA.
async fn maintain(
    service: Arc<Service>,
    layout: Layout,
    checkpoint_every: std::time::Duration,
    hsm: Option<Pkcs11Config>,
) {
    let renew_every = std::time::Duration::from_secs(6 * 3600);
    let mut since_renewal = std::time::Duration::ZERO;
    loop {
        if let Err(e) = service.report_timestamps().await {
            tracing::error!(error = %e, "time-stamp report failed");
        }
        if let Err(e) = service.checkpoint().await {
            tracing::error!(error = %e, "audit checkpoint failed");
        }
        tokio::time::sleep(checkpoint_every).await;
        since_renewal += checkpoint_every;
        if since_renewal >= renew_every {
            since_renewal = std::time::Duration::ZERO;
            if let Err(e) = ensure_working_keys(&service, &layout, hsm.as_ref()).await {
                tracing::error!(error = %e, "OCSP responder / TSA renewal failed");
            }
        }
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
    let local =
        |l: &tokio::net::TcpListener| l.local_addr().map_err(|e| Error::Internal(e.to_string()));
    let (grpc_addr, http_addr) = (local(&grpc_listener)?, local(&http_listener)?);
    let base_url = config.base_url(http_addr);
    let (service, initialized) = prepare(&config, &base_url).await?;
    // CRLs exist before the first request; then they follow revocations and the clock.
    service.publisher().rebuild_crls().await?;
    let background = vec![
        tokio::spawn(service.publisher().clone().run()),
        tokio::spawn(service.publisher().clone().follow()),
        tokio::spawn(maintain(
            service.clone(),
            Layout::new(&config.data_dir),
            config.audit_checkpoint_every,
            config.pkcs11.as_ref().map(|s| s.resolve()).transpose()?,
        )),
    ];
    let layout = Layout::new(&config.data_dir);
    let pem =
        std::fs::read(layout.server_cert()).map_err(|e| Error::io(layout.server_cert(), e))?;
    // The key may be encrypted at rest: rustls gets the plain PEM in memory only.
    let identity = crate::grpc::tls::ServerIdentity {
        chain_der: pemfile::parse_certs(&pem)?,
        key_pem: SoftwareKey::load(&layout.server_key())?.pkcs8_pem(),
        tls12: config.grpc_tls12,
    };
    let tls = crate::grpc::tls::server_config(&identity, &client_trust(&service).await?)?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<CertificateAuthorityServer<CaApi>>()
        .await;
    health.set_serving::<AdminServer<AdminApi>>().await;
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

    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let (grpc_stop_tx, grpc_stop_rx) = oneshot::channel::<()>();
    let (http_stop_tx, http_stop_rx) = oneshot::channel::<()>();
    let grpc_tracker = Tracker::new(config.limits);
    let http_tracker = Tracker::new(config.limits);
    let trackers = (grpc_tracker.clone(), http_tracker.clone());
    tokio::spawn(async move {
        let _ = shutdown_rx.await;
        let _ = grpc_stop_tx.send(());
        let _ = http_stop_tx.send(());
        // Open streams (WatchRevocations) would hold a graceful stop forever: cut them after
        // a grace period.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        trackers.0.close_all();
        trackers.1.close_all();
    });
    let grpc_router = Server::builder()
        .layer(crate::grpc::tls::InFlightLayer)
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
    let (incoming, accepting) = crate::grpc::tls::incoming(grpc_listener, grpc_tracker, tls);
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
    let app = crate::http::router(service.clone(), &config.rates);
    let http_task = tokio::spawn(crate::http::serve(
        http_listener,
        app,
        http_tracker,
        async {
            let _ = http_stop_rx.await;
        },
    ));

    let endpoints = Endpoints {
        grpc: grpc_addr,
        http: http_addr,
    };
    let json = serde_json::to_vec_pretty(&endpoints).map_err(|e| Error::Internal(e.to_string()))?;
    pemfile::write_private(&Layout::new(&config.data_dir).endpoints(), &json)?;
    Ok(Running {
        endpoints,
        initialized,
        shutdown: shutdown_tx,
        servers: vec![grpc_task, http_task],
        background,
        service,
    })
}
