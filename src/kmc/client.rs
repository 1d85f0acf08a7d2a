//! How a CA instance (or an officer's CLI) calls a KMC: mTLS gRPC with a credential from the
//! KMC's credential CA.
use tonic::transport::Channel;

use crate::client::{Credentials, lazy_channel, rejected};
use crate::error::{Error, Result};
use crate::kmc_proto::key_management_client::KeyManagementClient;
use crate::kmc_proto::{self as pb};

/// What the KMC answered, as the domain error it was there (so the CA relays NOT_FOUND,
/// FAILED_PRECONDITION and the like unchanged); anything else means the KMC is not usable.
fn refused(s: tonic::Status) -> Error {
    use tonic::Code;
    match rejected(s) {
        Error::Rejected { code, message } => match code {
            Code::InvalidArgument => Error::InvalidArgument(message),
            Code::NotFound => Error::NotFound(
                message
                    .strip_suffix(" not found")
                    .unwrap_or(&message)
                    .to_string(),
            ),
            Code::FailedPrecondition => Error::Conflict(message),
            Code::PermissionDenied => Error::PermissionDenied(
                message
                    .strip_prefix("permission denied: ")
                    .unwrap_or(&message)
                    .to_string(),
            ),
            Code::ResourceExhausted => Error::ResourceExhausted(message),
            _ => Error::Unavailable(format!("the key management centre: {message}")),
        },
        other => other,
    }
}

/// A connection to a KMC.
#[derive(Debug, Clone)]
pub struct KmcClient {
    inner: KeyManagementClient<Channel>,
}

impl KmcClient {
    /// A client of the KMC at `https://host:port` with a KMC credential (cert.pem, key.pem,
    /// ca.pem); it connects at the first call, so a CA starts while its KMC is down.
    pub fn new(url: &str, creds: &Credentials) -> Result<Self> {
        Ok(KmcClient {
            inner: KeyManagementClient::new(lazy_channel(url, creds)?),
        })
    }

    pub async fn generate(
        &self,
        algorithm: &str,
        recipient_certificate: &[u8],
        actor: &str,
    ) -> Result<pb::GeneratedKey> {
        let req = pb::GenerateKeyRequest {
            algorithm: algorithm.into(),
            recipient_certificate: recipient_certificate.to_vec(),
            actor: actor.into(),
        };
        Ok(self
            .inner
            .clone()
            .generate_key(req)
            .await
            .map_err(refused)?
            .into_inner())
    }

    pub async fn bind(
        &self,
        escrow_id: &str,
        certificate_der: &[u8],
        actor: &str,
    ) -> Result<pb::Escrow> {
        let req = pb::BindCertificateRequest {
            escrow_id: escrow_id.into(),
            certificate_der: certificate_der.to_vec(),
            actor: actor.into(),
        };
        Ok(self
            .inner
            .clone()
            .bind_certificate(req)
            .await
            .map_err(refused)?
            .into_inner())
    }

    pub async fn request_recovery(&self, req: pb::RecoveryRequest) -> Result<pb::Recovery> {
        Ok(self
            .inner
            .clone()
            .request_recovery(req)
            .await
            .map_err(refused)?
            .into_inner())
    }

    pub async fn approve(&self, id: &str) -> Result<pb::Recovery> {
        let req = pb::ApproveRecoveryRequest { id: id.into() };
        Ok(self
            .inner
            .clone()
            .approve_recovery(req)
            .await
            .map_err(refused)?
            .into_inner())
    }

    pub async fn refuse(&self, id: &str, reason: &str) -> Result<pb::Recovery> {
        let req = pb::RefuseRecoveryRequest {
            id: id.into(),
            reason: reason.into(),
        };
        Ok(self
            .inner
            .clone()
            .refuse_recovery(req)
            .await
            .map_err(refused)?
            .into_inner())
    }

    pub async fn fetch(&self, id: &str, requester: &str) -> Result<pb::Released> {
        let req = pb::FetchRecoveryRequest {
            id: id.into(),
            requester: requester.into(),
        };
        Ok(self
            .inner
            .clone()
            .fetch_recovery(req)
            .await
            .map_err(refused)?
            .into_inner())
    }

    pub async fn recoveries(&self) -> Result<Vec<pb::Recovery>> {
        let req = pb::ListRecoveriesRequest {};
        Ok(self
            .inner
            .clone()
            .list_recoveries(req)
            .await
            .map_err(refused)?
            .into_inner()
            .recoveries)
    }
}
