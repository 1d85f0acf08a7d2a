//! The typed client the ops CLI uses, and any Rust program can: mTLS gRPC to `ecca-server`.
use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::error::{Error, Result};
use crate::layout::Endpoints;
use crate::layout::Layout;
use crate::proto::admin_client::AdminClient;
use crate::proto::certificate_authority_client::CertificateAuthorityClient;
use crate::proto::{self as pb};

/// A client credential folder: cert.pem (with chain), key.pem, ca.pem (trust for the server).
#[derive(Clone)]
pub struct Credentials {
    pub dir: PathBuf,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    ca_pem: Vec<u8>,
}

impl Credentials {
    /// The CA the credential trusts (ca.pem), PEM.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("dir", &self.dir)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// Reads the three files of a credential folder.
    pub fn load(dir: &Path) -> Result<Self> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).map_err(|e| Error::io(&p, e))
        };
        crate::pemfile::check_private(&dir.join("key.pem"))?;
        Ok(Credentials {
            dir: dir.to_path_buf(),
            cert_pem: read("cert.pem")?,
            key_pem: read("key.pem")?,
            ca_pem: read("ca.pem")?,
        })
    }
}

/// An mTLS channel to `url` with a credential (the CA's API, or a KMC's).
pub async fn channel(url: &str, creds: &Credentials) -> Result<Channel> {
    endpoint(url, creds)?
        .connect()
        .await
        .map_err(|e| Error::Remote(format!("cannot connect to {url}: {e}; is it running?")))
}

/// A channel that connects at its first call (and again after a failure): for a service
/// that should start while the other side is still down.
pub fn lazy_channel(url: &str, creds: &Credentials) -> Result<Channel> {
    Ok(endpoint(url, creds)?.connect_lazy())
}

fn endpoint(url: &str, creds: &Credentials) -> Result<tonic::transport::Endpoint> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&creds.ca_pem))
        .identity(Identity::from_pem(&creds.cert_pem, &creds.key_pem));
    Ok(Channel::from_shared(url.to_string())
        .map_err(|e| Error::InvalidArgument(format!("server URL {url:?}: {e}")))?
        .tls_config(tls)
        .map_err(|e| Error::InvalidArgument(format!("TLS configuration: {e}")))?
        .tcp_nodelay(true)
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60)))
}

/// Converts a status into the domain error: a connection that failed (the status carries a
/// transport error as its source) is `Remote`; anything the server answered is `Rejected`
/// with its code.
pub fn rejected(s: tonic::Status) -> Error {
    let mut source = std::error::Error::source(&s);
    while let Some(e) = source {
        if e.is::<tonic::transport::Error>() || e.is::<hyper::Error>() || e.is::<std::io::Error>() {
            return Error::Remote(format!("cannot reach the server: {}", s.message()));
        }
        source = e.source();
    }
    Error::Rejected {
        code: s.code(),
        message: s.message().to_string(),
    }
}

fn issue_request(
    csr: Vec<u8>,
    profile: &str,
    validity_days: Option<u32>,
    issuer: &str,
) -> pb::IssueCertificateRequest {
    pb::IssueCertificateRequest {
        csr,
        profile: profile.into(),
        validity_days,
        issuer: issuer.into(),
    }
}

/// An mTLS connection to the CertificateAuthority service.
#[derive(Debug, Clone)]
pub struct Client {
    ca: CertificateAuthorityClient<Channel>,
    admin: AdminClient<Channel>,
    channel: Channel,
}

impl Client {
    /// Connects to `https://host:port` with a credential.
    pub async fn connect(url: &str, creds: &Credentials) -> Result<Self> {
        let channel = channel(url, creds).await?;
        Ok(Client {
            ca: CertificateAuthorityClient::new(channel.clone()),
            admin: AdminClient::new(channel.clone()),
            channel,
        })
    }

    /// Connects as the local admin of a data directory (address from DIR/endpoints.json,
    /// credential from DIR/admin).
    pub async fn connect_data_dir(dir: &Path) -> Result<Self> {
        let url = Self::data_dir_url(dir)?;
        Self::connect(&url, &Credentials::load(&Layout::new(dir).admin_dir())?).await
    }

    /// The gRPC URL a running server wrote into its data directory.
    pub fn data_dir_url(dir: &Path) -> Result<String> {
        let path = Layout::new(dir).endpoints();
        let text = std::fs::read(&path).map_err(|e| {
            Error::Remote(format!(
                "{}: {e}; start the server with `ecca-server --data-dir {}`",
                path.display(),
                dir.display()
            ))
        })?;
        let ep: Endpoints = serde_json::from_slice(&text)
            .map_err(|e| Error::Remote(format!("{}: {e}", path.display())))?;
        Ok(format!("https://{}", ep.grpc))
    }

    /// The underlying channel (for health checks and other services).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Issues a certificate from a CSR (DER or PEM).
    pub async fn issue(
        &self,
        csr: Vec<u8>,
        profile: &str,
        validity_days: Option<u32>,
    ) -> Result<pb::IssueCertificateResponse> {
        self.issue_under(csr, profile, validity_days, "").await
    }

    /// Issues under a chosen issuer among those the profile allows ("" = the profile's own).
    pub async fn issue_under(
        &self,
        csr: Vec<u8>,
        profile: &str,
        validity_days: Option<u32>,
        issuer: &str,
    ) -> Result<pb::IssueCertificateResponse> {
        let req = issue_request(csr, profile, validity_days, issuer);
        Ok(self
            .ca
            .clone()
            .issue_certificate(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Bulk issuance over one stream (IssueCertificates): the answers as they come, in
    /// completion order, each naming its request by index and id; an item's failure is in
    /// its answer, not an error of the stream.
    pub async fn issue_stream(
        &self,
        requests: Vec<(String, Vec<u8>)>,
        profile: &str,
        validity_days: Option<u32>,
        issuer: &str,
    ) -> Result<tonic::Streaming<pb::IssueCertificatesResponse>> {
        let items: Vec<pb::IssueCertificatesRequest> = requests
            .into_iter()
            .map(|(id, csr)| pb::IssueCertificatesRequest {
                request: Some(issue_request(csr, profile, validity_days, issuer)),
                id,
            })
            .collect();
        Ok(self
            .ca
            .clone()
            .issue_certificates(tokio_stream::iter(items))
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// [`Client::issue_stream`], collected: one answer per request.
    pub async fn issue_many(
        &self,
        requests: Vec<(String, Vec<u8>)>,
        profile: &str,
        validity_days: Option<u32>,
        issuer: &str,
    ) -> Result<Vec<pb::IssueCertificatesResponse>> {
        let expected = requests.len();
        let mut answers = self
            .issue_stream(requests, profile, validity_days, issuer)
            .await?;
        let mut out = Vec::with_capacity(expected);
        while let Some(answer) = answers.message().await.map_err(rejected)? {
            out.push(answer);
        }
        if out.len() != expected {
            return Err(Error::Remote(format!(
                "IssueCertificates answered {} of {expected} requests",
                out.len()
            )));
        }
        Ok(out)
    }

    /// A dual pair (signing + escrowed encryption certificate) under a profile that allows it.
    pub async fn issue_dual(
        &self,
        csr: Vec<u8>,
        profile: &str,
        validity_days: Option<u32>,
        issuer: &str,
    ) -> Result<pb::IssueDualCertificateResponse> {
        let req = issue_request(csr, profile, validity_days, issuer);
        Ok(self
            .ca
            .clone()
            .issue_dual_certificate(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Opens a key recovery (admin); recovery officers approve it at the KMC.
    pub async fn request_key_recovery(
        &self,
        req: pb::KeyRecoveryRequest,
    ) -> Result<pb::KeyRecovery> {
        Ok(self
            .admin
            .clone()
            .request_key_recovery(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// The released key of an approved recovery, enveloped to its recipient.
    pub async fn fetch_key_recovery(&self, id: &str) -> Result<pb::ReleasedKey> {
        let req = pb::FetchKeyRecoveryRequest { id: id.into() };
        Ok(self
            .admin
            .clone()
            .fetch_key_recovery(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Key recoveries, newest first.
    pub async fn key_recoveries(&self) -> Result<Vec<pb::KeyRecovery>> {
        let req = pb::ListKeyRecoveriesRequest {};
        Ok(self
            .admin
            .clone()
            .list_key_recoveries(req)
            .await
            .map_err(rejected)?
            .into_inner()
            .recoveries)
    }

    /// One certificate by serial (hex).
    pub async fn get(&self, serial: &str) -> Result<pb::Certificate> {
        let req = pb::GetCertificateRequest {
            serial: serial.into(),
        };
        Ok(self
            .ca
            .clone()
            .get_certificate(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// One page of certificates.
    /// Statistics and indicators (GetStatistics).
    pub async fn statistics(&self, req: pb::GetStatisticsRequest) -> Result<pb::Statistics> {
        Ok(self
            .ca
            .clone()
            .get_statistics(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    pub async fn list(
        &self,
        req: pb::ListCertificatesRequest,
    ) -> Result<pb::ListCertificatesResponse> {
        Ok(self
            .ca
            .clone()
            .list_certificates(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// The profiles the server issues under.
    pub async fn profiles(&self) -> Result<Vec<pb::Profile>> {
        let req = pb::ListProfilesRequest {};
        Ok(self
            .ca
            .clone()
            .list_profiles(req)
            .await
            .map_err(rejected)?
            .into_inner()
            .profiles)
    }

    /// Roots and intermediates.
    pub async fn trust_bundle(&self) -> Result<pb::TrustBundle> {
        let req = pb::GetTrustBundleRequest {};
        Ok(self
            .ca
            .clone()
            .get_trust_bundle(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Revokes a certificate; `reason` is an RFC 5280 code, `invalidity_date` Unix seconds.
    pub async fn revoke(
        &self,
        serial: &str,
        reason: i32,
        invalidity_date: Option<i64>,
    ) -> Result<pb::Certificate> {
        let req = pb::RevokeCertificateRequest {
            serial: serial.into(),
            reason,
            invalidity_date: invalidity_date
                .map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }),
        };
        Ok(self
            .ca
            .clone()
            .revoke_certificate(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Revocation status of one certificate.
    pub async fn revocation_status(&self, serial: &str) -> Result<pb::RevocationStatus> {
        let req = pb::GetRevocationStatusRequest {
            serial: serial.into(),
        };
        Ok(self
            .ca
            .clone()
            .get_revocation_status(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// The default hierarchy's current full (or delta) CRL.
    pub async fn crl(&self, delta: bool) -> Result<pb::Crl> {
        self.crl_of("", "", delta).await
    }

    /// A hierarchy's (its active CA's) or one CA certificate's current full or delta CRL.
    pub async fn crl_of(&self, issuer: &str, ca: &str, delta: bool) -> Result<pb::Crl> {
        let req = pb::GetCrlRequest {
            delta,
            issuer: issuer.into(),
            ca: ca.into(),
        };
        Ok(self
            .ca
            .clone()
            .get_crl(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// A stream of revocations as they happen.
    pub async fn watch_revocations(&self) -> Result<tonic::Streaming<pb::RevocationEvent>> {
        let req = pb::WatchRevocationsRequest {};
        Ok(self
            .ca
            .clone()
            .watch_revocations(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Verifies a certificate at the server.
    pub async fn verify(
        &self,
        req: pb::VerifyCertificateRequest,
    ) -> Result<pb::VerifyCertificateResponse> {
        Ok(self
            .ca
            .clone()
            .verify_certificate(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Cross-certifies a peer CA (admin).
    pub async fn cross_certify(
        &self,
        req: pb::CrossCertifyRequest,
    ) -> Result<pb::CrossCertifyResponse> {
        Ok(self
            .admin
            .clone()
            .cross_certify(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Registers a peer CA (admin).
    pub async fn add_peer(&self, req: pb::AddPeerRequest) -> Result<pb::Peer> {
        Ok(self
            .admin
            .clone()
            .add_peer(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// All peers.
    pub async fn peers(&self) -> Result<Vec<pb::Peer>> {
        let req = pb::ListPeersRequest {};
        Ok(self
            .admin
            .clone()
            .list_peers(req)
            .await
            .map_err(rejected)?
            .into_inner()
            .peers)
    }

    /// Every issuer (CA hierarchy) with its CA certificates.
    pub async fn issuers(&self) -> Result<Vec<pb::Issuer>> {
        let req = pb::ListIssuersRequest {};
        Ok(self
            .admin
            .clone()
            .list_issuers(req)
            .await
            .map_err(rejected)?
            .into_inner()
            .issuers)
    }

    /// Makes a new hierarchy (admins); with `dry_run`, only says what it would do.
    pub async fn add_issuer(
        &self,
        name: &str,
        algorithm: &str,
        dry_run: bool,
    ) -> Result<pb::IssuerChange> {
        let req = pb::AddIssuerRequest {
            name: name.into(),
            algorithm: algorithm.into(),
            dry_run,
        };
        Ok(self
            .admin
            .clone()
            .add_issuer(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Rotates a hierarchy's issuing CA, or with `root` rolls its root over (admins).
    pub async fn rotate_issuer(
        &self,
        name: &str,
        root: bool,
        dry_run: bool,
    ) -> Result<pb::IssuerChange> {
        let req = pb::RotateIssuerRequest {
            name: name.into(),
            dry_run,
            root,
        };
        Ok(self
            .admin
            .clone()
            .rotate_issuer(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Retires a retiring CA certificate of a hierarchy ("" = its only retiring one).
    pub async fn retire_issuer(
        &self,
        name: &str,
        ca: &str,
        dry_run: bool,
    ) -> Result<pb::IssuerChange> {
        let req = pb::RetireIssuerRequest {
            name: name.into(),
            ca: ca.into(),
            dry_run,
        };
        Ok(self
            .admin
            .clone()
            .retire_issuer(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// One issuer by name.
    pub async fn issuer(&self, name: &str) -> Result<pb::Issuer> {
        let req = pb::GetIssuerRequest { name: name.into() };
        Ok(self
            .admin
            .clone()
            .get_issuer(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// One peer.
    pub async fn peer(&self, name: &str) -> Result<pb::Peer> {
        let req = pb::GetPeerRequest { name: name.into() };
        Ok(self
            .admin
            .clone()
            .get_peer(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Suspends or reactivates a peer.
    pub async fn set_peer_status(&self, name: &str, status: pb::PeerStatus) -> Result<pb::Peer> {
        let req = pb::SetPeerStatusRequest {
            name: name.into(),
            status: status.into(),
        };
        Ok(self
            .admin
            .clone()
            .set_peer_status(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Removes a peer; returns the serials of the cross-certificates revoked.
    pub async fn remove_peer(&self, name: &str) -> Result<Vec<String>> {
        let req = pb::RemovePeerRequest { name: name.into() };
        Ok(self
            .admin
            .clone()
            .remove_peer(req)
            .await
            .map_err(rejected)?
            .into_inner()
            .revoked_serials)
    }

    /// An RFC 3161 timestamp over gRPC (DER request in, DER response out).
    pub async fn timestamp(&self, request: Vec<u8>) -> Result<Vec<u8>> {
        let req = pb::TimestampRequest {
            time_stamp_req: request,
        };
        Ok(self
            .ca
            .clone()
            .timestamp(req)
            .await
            .map_err(rejected)?
            .into_inner()
            .time_stamp_resp)
    }

    /// Verifies a document signature at the server.
    pub async fn verify_signature(
        &self,
        req: pb::VerifySignatureRequest,
    ) -> Result<pb::VerifySignatureResponse> {
        Ok(self
            .ca
            .clone()
            .verify_signature(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Creates a platform; returns its first credential.
    pub async fn add_platform(&self, req: pb::AddPlatformRequest) -> Result<pb::IssuedCredential> {
        Ok(self
            .admin
            .clone()
            .add_platform(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// All platforms.
    pub async fn platforms(&self) -> Result<Vec<pb::Platform>> {
        let req = pb::ListPlatformsRequest {};
        Ok(self
            .admin
            .clone()
            .list_platforms(req)
            .await
            .map_err(rejected)?
            .into_inner()
            .platforms)
    }

    /// A new credential for a platform (the old ones are disabled).
    pub async fn rotate_platform(&self, name: &str, csr: Vec<u8>) -> Result<pb::IssuedCredential> {
        let req = pb::RotatePlatformCredentialRequest {
            name: name.into(),
            csr,
        };
        Ok(self
            .admin
            .clone()
            .rotate_platform_credential(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Disables or re-enables a platform.
    pub async fn set_platform_disabled(&self, name: &str, disabled: bool) -> Result<pb::Platform> {
        let req = pb::SetPlatformDisabledRequest {
            name: name.into(),
            disabled,
        };
        Ok(self
            .admin
            .clone()
            .set_platform_disabled(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Creates an ACME External Account Binding key for a platform.
    pub async fn create_acme_key(&self, platform: &str) -> Result<pb::AcmeKey> {
        let req = pb::CreateAcmeKeyRequest {
            platform: platform.into(),
        };
        Ok(self
            .admin
            .clone()
            .create_acme_key(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Replaces what a platform may put in subjects (organizations, USCCs, free-text names).
    pub async fn set_platform_subjects(
        &self,
        req: pb::SetPlatformSubjectsRequest,
    ) -> Result<pb::Platform> {
        Ok(self
            .admin
            .clone()
            .set_platform_subjects(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// A read-only auditor credential.
    pub async fn add_auditor(&self, name: &str, csr: Vec<u8>) -> Result<pb::IssuedCredential> {
        let req = pb::AddAuditorRequest {
            name: name.into(),
            csr,
        };
        Ok(self
            .admin
            .clone()
            .add_auditor(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// The whole audit log, oldest first (paged).
    pub async fn audit_log(&self) -> Result<Vec<pb::AuditEntry>> {
        let mut all: Vec<pb::AuditEntry> = Vec::new();
        loop {
            let after_id = all.last().map_or(0, |e| e.id);
            let req = pb::ListAuditRequest {
                after_id,
                limit: 5000,
            };
            let page = self
                .admin
                .clone()
                .list_audit(req)
                .await
                .map_err(rejected)?
                .into_inner()
                .entries;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// Fetches the audit log and its signed checkpoints and verifies both here, trusting only
    /// the issuing CA certificate the server names (a tampered log cannot vouch for itself).
    pub async fn verify_audit(&self) -> Result<crate::core::audit::Verdict> {
        use crate::core::audit;
        let entries = self.audit_log().await?;
        let cps = self.checkpoints().await?;
        let log: Vec<crate::store::AuditEntry> = entries
            .into_iter()
            .map(|e| crate::store::AuditEntry {
                id: e.id,
                at: e.at.map_or(0, |t| t.seconds),
                actor: e.actor,
                event: e.event,
                object: e.object,
                detail: e.detail,
                prev_hash: e.prev_hash,
                hash: e.hash,
            })
            .collect();
        let checkpoints: Vec<crate::store::Checkpoint> = cps
            .checkpoints
            .into_iter()
            .map(|c| crate::store::Checkpoint {
                id: c.id,
                upto_id: c.upto_id,
                head_hash: c.head_hash,
                at: c.at.map_or(0, |t| t.seconds),
                signature: c.signature,
            })
            .collect();
        let signer = cps.signer_cert_der;
        Ok(audit::verify(&log, &checkpoints, |m, s| {
            audit::checkpoint_signature_ok(&signer, m, s)
        }))
    }

    /// A month's signed statistics report (GetReport).
    pub async fn report(&self, period: &str, platform: &str) -> Result<pb::Report> {
        let req = pb::GetReportRequest {
            period: period.into(),
            platform: platform.into(),
        };
        Ok(self
            .admin
            .clone()
            .get_report(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// A one-time login link to the server's web console.
    pub async fn console_login(&self) -> Result<pb::ConsoleLogin> {
        Ok(self
            .admin
            .clone()
            .create_console_login(pb::CreateConsoleLoginRequest {})
            .await
            .map_err(rejected)?
            .into_inner())
    }

    /// Signed checkpoints and the certificate that verifies them.
    pub async fn checkpoints(&self) -> Result<pb::ListCheckpointsResponse> {
        let req = pb::ListCheckpointsRequest {};
        Ok(self
            .admin
            .clone()
            .list_checkpoints(req)
            .await
            .map_err(rejected)?
            .into_inner())
    }
}
