//! Serving the key management centre: `ecca.kmc.v1` over mutual TLS with the KMC's own
//! credential CA as the only client trust, every caller identified by the hash of its
//! registered certificate. `ecca-server` runs one on loopback beside the CA (its own data
//! directory `DIR/kmc/`) unless told where a separate one is; `ecca-kmc` runs one alone.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

use crate::client::Credentials;
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::grpc::tls::{ApiConn, ClientTrust, ServerCert};
use crate::kmc::client::KmcClient;
use crate::kmc::{Kmc, KmcOptions, KmcRole, RecoveryView};
use crate::kmc_proto::key_management_server::{KeyManagement, KeyManagementServer};
use crate::kmc_proto::{self as pb};
use crate::layout::Layout;
use crate::listen::{Limits, Tracker};
use crate::pemfile;
use crate::signer::SoftwareKey;

/// Where a KMC listens and how it controls recoveries.
#[derive(Clone, Debug)]
pub struct KmcConfig {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub options: KmcOptions,
    /// Extra DNS names or addresses for its TLS certificate.
    pub server_names: Vec<String>,
    pub limits: Limits,
}

/// A running KMC.
#[derive(Debug)]
pub struct RunningKmc {
    pub addr: SocketAddr,
    pub kmc: Arc<Kmc>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningKmc {
    /// `https://ADDR` for clients.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops serving and waits for the listener to close.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }

    /// Waits until the listener stops (on error only).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// The address a running KMC wrote into its data directory.
pub fn kmc_url(dir: &Path) -> Result<String> {
    let path = dir.join("endpoints.json");
    let text = std::fs::read(&path).map_err(|e| {
        Error::Remote(format!(
            "{}: {e}; is the KMC running (ecca-server, or ecca-kmc --data-dir {})?",
            path.display(),
            dir.display()
        ))
    })?;
    let v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| Error::Remote(format!("{}: {e}", path.display())))?;
    v["grpc"]
        .as_str()
        .map(|a| format!("https://{a}"))
        .ok_or_else(|| Error::Remote(format!("{}: no address", path.display())))
}

/// Issues a credential from `kmc` into `out` (cert.pem, key.pem 0600, ca.pem = the KMC's
/// credential CA): for a CA instance or a recovery officer. The key is made here. With
/// `replace`, the files in `out` (and, for an officer, the name's earlier credential) are
/// replaced: re-enrolment before expiry or after a lost key.
pub fn write_kmc_credential(
    kmc: &Kmc,
    role: KmcRole,
    name: &str,
    out: &Path,
    actor: &str,
    replace: bool,
) -> Result<String> {
    if out.join("key.pem").exists() && !replace {
        return Err(Error::InvalidArgument(format!(
            "{} holds a credential already; choose another folder",
            out.display()
        )));
    }
    let key = SoftwareKey::generate(crate::core::keys::CaKeyAlg::P256)?;
    let der = kmc.add_client(role, name, &key.spki_der(), actor, replace)?;
    pemfile::private_dir(out)?;
    key.save_plain(&out.join("key.pem"))?;
    pemfile::write_public(
        &out.join("cert.pem"),
        pemfile::certs_to_pem([der.as_slice()]).as_bytes(),
    )?;
    pemfile::write_public(
        &out.join("ca.pem"),
        pemfile::certs_to_pem([kmc.ca_der()]).as_bytes(),
    )?;
    Ok(crate::core::fingerprint(&der))
}

/// The CA instance's credential for an embedded KMC (`DIR/kmc-client/`): made on first use,
/// and made anew at a start within 60 days of its end.
pub fn ensure_ca_credential(kmc: &Kmc, out: &Path) -> Result<Credentials> {
    let ends_soon = || -> bool {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        std::fs::read(out.join("cert.pem"))
            .ok()
            .and_then(|p| pemfile::parse_certs(&p).ok())
            .and_then(|c| c.into_iter().next())
            .and_then(|der| {
                x509_parser::parse_x509_certificate(&der)
                    .ok()
                    .map(|(_, c)| c.validity().not_after.timestamp())
            })
            .is_none_or(|end| end - 60 * 86_400 < now)
    };
    if !out.join("key.pem").exists() || ends_soon() {
        write_kmc_credential(kmc, KmcRole::Ca, "ca", out, "ecca", true)?;
    }
    Credentials::load(out)
}

/// The KMC the CA of `config` uses: the one at `[kmc] url` with the CA's credential for it,
/// or one started here on loopback under DIR/kmc/ (its credential for the CA made on first
/// start).
pub async fn connect(config: &ServerConfig) -> Result<(Option<RunningKmc>, KmcClient)> {
    let layout = Layout::new(&config.data_dir);
    let creds_dir = config
        .kmc
        .credentials
        .clone()
        .unwrap_or_else(|| layout.kmc_client_dir());
    if let Some(url) = &config.kmc.url {
        let creds = Credentials::load(&creds_dir).map_err(|e| {
            Error::Config(format!(
                "the KMC credential in {}: {e}; make one with `ecca-kmc --data-dir KMC-DIR enroll-ca --out {}`",
                creds_dir.display(),
                creds_dir.display()
            ))
        })?;
        return Ok((None, KmcClient::new(url, &creds)?));
    }
    let defaults = KmcOptions::default();
    let running = serve_kmc(KmcConfig {
        dir: layout.kmc_dir(),
        listen: config
            .kmc
            .listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
        options: KmcOptions {
            approvals: config.kmc.approvals.unwrap_or(defaults.approvals),
            recovery_ttl: config
                .kmc
                .recovery_hours
                .map_or(defaults.recovery_ttl, |h| i64::from(h.max(1)) * 3600),
        },
        server_names: Vec::new(),
        limits: config.limits,
    })
    .await?;
    let creds = ensure_ca_credential(&running.kmc, &creds_dir)?;
    let client = KmcClient::new(&running.url(), &creds)?;
    Ok((Some(running), client))
}

/// Opens the KMC data directory and serves it.
pub async fn serve_kmc(config: KmcConfig) -> Result<RunningKmc> {
    let kmc = Arc::new(Kmc::open(&config.dir, config.options)?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            Error::Config(format!(
                "cannot listen on {} for the KMC: {e}",
                config.listen
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let (chain, key) = kmc.server_identity(&config.server_names)?;
    let trust = ClientTrust {
        credential_ca: kmc.ca_der().to_vec(),
        legacy: None,
    };
    let tls = crate::grpc::tls::server_config(ServerCert::new(&chain, &key)?, false, &trust)?;
    let (incoming, accepting) =
        crate::grpc::tls::incoming(listener, Tracker::new(config.limits), tls);
    let router = tonic::transport::Server::builder()
        .layer(crate::grpc::tls::InFlightLayer)
        .timeout(std::time::Duration::from_secs(30))
        .add_service(
            KeyManagementServer::new(KmcApi { kmc: kmc.clone() })
                .max_decoding_message_size(64 * 1024),
        );
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        if let Err(e) = router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await
        {
            tracing::error!(error = %e, "KMC server stopped");
        }
        let _ = accepting.await;
    });
    let json = serde_json::json!({ "grpc": addr.to_string() });
    pemfile::write_private(
        &config.dir.join("endpoints.json"),
        json.to_string().as_bytes(),
    )?;
    tracing::info!(%addr, dir = %config.dir.display(), "KMC serving");
    Ok(RunningKmc {
        addr,
        kmc,
        stop,
        task,
    })
}

struct KmcApi {
    kmc: Arc<Kmc>,
}

impl std::fmt::Debug for KmcApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KmcApi")
    }
}

fn recovery(v: RecoveryView) -> pb::Recovery {
    pb::Recovery {
        id: v.id,
        serial: v.serial,
        reason: v.reason,
        case_reference: v.case_reference,
        requester: v.requester,
        state: v.state.into(),
        approvals: v.approvals,
        required: v.required,
        created_at: v.created_at,
        expires_at: v.expires_at,
    }
}

impl KmcApi {
    /// Authenticates the caller, then runs `work` (the store is SQLite) off the async threads.
    async fn call<T, R>(
        &self,
        req: Request<R>,
        work: impl FnOnce(&Kmc, crate::kmc::ClientRow, R) -> Result<T> + Send + 'static,
    ) -> std::result::Result<Response<T>, Status>
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        let leaf = req
            .extensions()
            .get::<ApiConn>()
            .and_then(|c| c.leaf.clone());
        let kmc = self.kmc.clone();
        let body = req.into_inner();
        let out = tokio::task::spawn_blocking(move || {
            let caller = kmc.authenticate(leaf.as_deref().map(Vec::as_slice))?;
            work(&kmc, caller, body)
        })
        .await
        .map_err(|e| Status::internal(format!("KMC task: {e}")))??;
        Ok(Response::new(out))
    }
}

#[tonic::async_trait]
impl KeyManagement for KmcApi {
    async fn generate_key(
        &self,
        req: Request<pb::GenerateKeyRequest>,
    ) -> std::result::Result<Response<pb::GeneratedKey>, Status> {
        self.call(req, |kmc, caller, r| {
            let g = kmc.generate(&caller, &r.algorithm, &r.recipient_certificate, &r.actor)?;
            Ok(pb::GeneratedKey {
                escrow_id: g.escrow_id,
                spki_der: g.spki_der,
                envelope: g.envelope,
                envelope_type: g.envelope_type.into(),
            })
        })
        .await
    }

    async fn bind_certificate(
        &self,
        req: Request<pb::BindCertificateRequest>,
    ) -> std::result::Result<Response<pb::Escrow>, Status> {
        self.call(req, |kmc, caller, r| {
            let (serial, subject) =
                kmc.bind(&caller, &r.escrow_id, &r.certificate_der, &r.actor)?;
            Ok(pb::Escrow {
                escrow_id: r.escrow_id,
                algorithm: String::new(),
                serial,
                subject,
            })
        })
        .await
    }

    async fn request_recovery(
        &self,
        req: Request<pb::RecoveryRequest>,
    ) -> std::result::Result<Response<pb::Recovery>, Status> {
        self.call(req, |kmc, caller, r| {
            kmc.request_recovery(
                &caller,
                &r.serial,
                &r.reason,
                &r.case_reference,
                &r.recipient_certificate,
                &r.requester,
            )
            .map(recovery)
        })
        .await
    }

    async fn approve_recovery(
        &self,
        req: Request<pb::ApproveRecoveryRequest>,
    ) -> std::result::Result<Response<pb::Recovery>, Status> {
        self.call(req, |kmc, caller, r| {
            kmc.approve(&caller, &r.id).map(recovery)
        })
        .await
    }

    async fn refuse_recovery(
        &self,
        req: Request<pb::RefuseRecoveryRequest>,
    ) -> std::result::Result<Response<pb::Recovery>, Status> {
        self.call(req, |kmc, caller, r| {
            kmc.refuse(&caller, &r.id, &r.reason).map(recovery)
        })
        .await
    }

    async fn fetch_recovery(
        &self,
        req: Request<pb::FetchRecoveryRequest>,
    ) -> std::result::Result<Response<pb::Released>, Status> {
        self.call(req, |kmc, caller, r| {
            let (view, envelope, kind) = kmc.fetch(&caller, &r.id, &r.requester)?;
            Ok(pb::Released {
                recovery: Some(recovery(view)),
                envelope,
                envelope_type: kind.into(),
            })
        })
        .await
    }

    async fn list_recoveries(
        &self,
        req: Request<pb::ListRecoveriesRequest>,
    ) -> std::result::Result<Response<pb::ListRecoveriesResponse>, Status> {
        self.call(req, |kmc, caller, _| {
            Ok(pb::ListRecoveriesResponse {
                recoveries: kmc.recoveries(&caller)?.into_iter().map(recovery).collect(),
            })
        })
        .await
    }
}
