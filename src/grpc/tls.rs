//! The gRPC listener's TLS: who may even complete a handshake.
//!
//! Client certificates are verified against the credential CA alone, which signs nothing but
//! API credentials and is never cross-certified: no chain through our root, the issuing CA or
//! a cross-certificate reaches it, and intermediates a client sends are ignored. Credentials
//! issued before the credential CA existed (by the issuing CA) are accepted only when pinned:
//! the SHA-256 of that exact certificate is registered and still enabled. `auth::authenticate`
//! then identifies the caller by that same hash.
use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use rustls::DistinguishedName;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

use crate::error::{Error, Result};
use crate::listen::{ConnState, GuardedBody, Tracked, Tracker};

/// What the TLS layer accepts as client certificates.
#[derive(Debug)]
pub struct ClientTrust {
    /// The credential CA, DER.
    pub credential_ca: Vec<u8>,
    /// The CA that issued credentials before the credential CA existed, and the SHA-256 of
    /// each such certificate still enabled (empty: none accepted).
    pub legacy: Option<(Vec<u8>, HashSet<[u8; 32]>)>,
}

/// The gRPC server's certificate and key, replaceable while serving: the maintenance loop
/// renews the certificate and new handshakes present the new one, without a restart.
#[derive(Debug)]
pub struct ServerCert(RwLock<Arc<CertifiedKey>>);

fn certified(chain_der: &[Vec<u8>], key_pem: &str) -> Result<Arc<CertifiedKey>> {
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| Error::Config(format!("server TLS key: {e}")))?;
    let key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| Error::Config(format!("server TLS key: {e}")))?;
    let chain = chain_der
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let certified = CertifiedKey::new(chain, key);
    certified
        .keys_match()
        .map_err(|e| Error::Config(format!("server TLS certificate and key: {e}")))?;
    Ok(Arc::new(certified))
}

impl ServerCert {
    /// From the certificate chain (its certificate first) and the PKCS#8 PEM key (kept in
    /// memory only; the file may be encrypted at rest).
    pub fn new(chain_der: &[Vec<u8>], key_pem: &str) -> Result<Arc<Self>> {
        Ok(Arc::new(ServerCert(RwLock::new(certified(
            chain_der, key_pem,
        )?))))
    }

    /// Presents this certificate from the next handshake on.
    pub fn replace(&self, chain_der: &[Vec<u8>], key_pem: &str) -> Result<()> {
        let new = certified(chain_der, key_pem)?;
        let mut current = self
            .0
            .write()
            .map_err(|_| Error::Internal("server certificate lock poisoned".into()))?;
        *current = new;
        Ok(())
    }

    /// The certificate presented now, DER.
    pub fn current(&self) -> Option<Vec<u8>> {
        let c = self.0.read().ok()?;
        c.cert.first().map(|d| d.to_vec())
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.read().ok().map(|c| c.clone())
    }
}

/// Certificate hashes accepted through a verifier anchored at another CA.
type Pinned = (Arc<dyn ClientCertVerifier>, HashSet<[u8; 32]>);

#[derive(Debug)]
struct ApiVerifier {
    credential: Arc<dyn ClientCertVerifier>,
    legacy: Option<Pinned>,
    hints: Vec<DistinguishedName>,
}

fn anchored_at(
    ca_der: &[u8],
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .map_err(|e| Error::Config(format!("client trust anchor: {e}")))?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::Config(format!("client certificate verifier: {e}")))
}

impl ClientCertVerifier for ApiVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        // The anchor itself must have signed the credential: no path through anything else.
        match self.credential.verify_client_cert(end_entity, &[], now) {
            Ok(v) => Ok(v),
            Err(e) => match &self.legacy {
                Some((verifier, pins)) if pins.contains(&crate::core::sha256(end_entity)) => {
                    verifier.verify_client_cert(end_entity, &[], now)
                }
                _ => Err(e),
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.credential.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.credential.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.credential.supported_verify_schemes()
    }
}

/// The rustls configuration of the gRPC listener.
/// The rustls configuration of the gRPC listener; `tls12` also offers TLS 1.2 (default: TLS
/// 1.3 only).
pub fn server_config(
    cert: Arc<ServerCert>,
    tls12: bool,
    trust: &ClientTrust,
) -> Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let subject_of = |der: &[u8]| -> Result<DistinguishedName> {
        let (_, c) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| Error::Config(format!("client trust anchor does not parse: {e}")))?;
        Ok(DistinguishedName::from(c.subject().as_raw().to_vec()))
    };
    let mut hints = vec![subject_of(&trust.credential_ca)?];
    let legacy = match &trust.legacy {
        Some((ca, pins)) if !pins.is_empty() => {
            hints.push(subject_of(ca)?);
            Some((anchored_at(ca, &provider)?, pins.clone()))
        }
        _ => None,
    };
    let verifier = Arc::new(ApiVerifier {
        credential: anchored_at(&trust.credential_ca, &provider)?,
        legacy,
        hints,
    });
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| Error::Config(format!("TLS versions: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// What a gRPC request knows about its connection (tonic puts it in the request extensions).
#[derive(Clone, Debug)]
pub struct ApiConn {
    pub remote: SocketAddr,
    /// The client certificate the handshake verified.
    pub leaf: Option<Arc<Vec<u8>>>,
    pub state: Arc<ConnState>,
}

/// A verified TLS connection to the gRPC listener.
#[derive(Debug)]
pub struct ApiStream {
    io: TlsStream<Tracked<TcpStream>>,
    remote: SocketAddr,
}

impl Connected for ApiStream {
    type ConnectInfo = ApiConn;

    fn connect_info(&self) -> ApiConn {
        let (tcp, session) = self.io.get_ref();
        ApiConn {
            remote: self.remote,
            leaf: session
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| Arc::new(c.as_ref().to_vec())),
            state: tcp.state().clone(),
        }
    }
}

impl AsyncRead for ApiStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for ApiStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Accepted, handshaken connections for `Server::serve_with_incoming`. Handshakes run
/// concurrently, each bounded by the handshake timeout (or cut short by eviction); the accept
/// loop (the returned task, which owns the listening socket) ends when tonic drops the stream.
pub fn incoming(
    listener: TcpListener,
    tracker: Arc<Tracker>,
    tls: Arc<rustls::ServerConfig>,
) -> (
    tokio_stream::wrappers::ReceiverStream<io::Result<ApiStream>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<ApiStream>>(64);
    let acceptor = TlsAcceptor::from(tls);
    let timeout = tracker.limits().handshake_timeout;
    let closed = tx.clone();
    let accepting = tracker.clone();
    let accepting_task = tokio::spawn(crate::listen::accept_loop(
        listener,
        tracker,
        async move { closed.closed().await },
        move |stream, remote, state| {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            let tracked = accepting.track(stream, state.clone());
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(timeout, acceptor.accept(tracked));
                let tls = tokio::select! {
                    r = handshake => r,
                    _ = state.closed() => return,
                };
                match tls {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(ApiStream { io: tls, remote })).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%remote, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
                }
            });
        },
    ));
    (
        tokio_stream::wrappers::ReceiverStream::new(rx),
        accepting_task,
    )
}

/// Marks every gRPC request in flight on its connection until its response is finished, so
/// the idle timeout and eviction only ever close connections with nothing going on.
#[derive(Clone, Copy, Debug, Default)]
pub struct InFlightLayer;

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlightService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InFlightService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct InFlightService<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for InFlightService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<GuardedBody<R>>;
    type Error = S::Error;
    type Future = Pin<
        Box<dyn std::future::Future<Output = std::result::Result<Self::Response, S::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let guard = req.extensions().get::<ApiConn>().map(|c| c.state.begin());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|b| GuardedBody::new(b, guard)))
        })
    }
}
