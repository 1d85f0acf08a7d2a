//! The `ecca.v1.Admin` service: federation. Thin: authenticate, call the service, convert.
use std::net::IpAddr;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::ts;
use crate::auth::{Action, Caller};
use crate::core::cross::Terms;
use crate::error::Error;
use crate::proto::admin_server::Admin;
use crate::proto::{self as pb};
use crate::service::issuers::{IssuerChange, Rotation};
use crate::service::{CrossCertifyRequest, IssuedCredential, PeerInput, PlatformSpec, Service};
use crate::store::{CaId, CaRole, CaState, IssuerRecord};
use crate::store::{Credential, CrossRecord, Direction, PeerRecord, PeerStatus, PlatformRecord};

/// The `ecca.v1.Admin` service.
#[derive(Debug, Clone)]
pub struct AdminApi {
    service: Arc<Service>,
}

impl AdminApi {
    pub fn new(service: Arc<Service>) -> Self {
        AdminApi { service }
    }

    /// The authenticated caller, refused before its arguments are looked at when its role
    /// may not do `action`.
    async fn caller<T>(&self, req: &Request<T>, action: Action) -> Result<Caller, Status> {
        super::caller_of(&self.service, req, action).await
    }

    async fn peer_named(&self, caller: &Caller, name: &str) -> Result<Response<pb::Peer>, Status> {
        let (p, c) = self
            .service
            .peers(caller)
            .await?
            .into_iter()
            .find(|(p, _)| p.name == name)
            .ok_or_else(|| Status::from(Error::NotFound(format!("peer {name:?}"))))?;
        Ok(Response::new(peer(p, &c)))
    }

    async fn platform_named(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Response<pb::Platform>, Status> {
        let (p, c) = self
            .service
            .platforms(caller)
            .await?
            .into_iter()
            .find(|(p, _)| p.name == name)
            .ok_or_else(|| Status::from(Error::NotFound(format!("platform {name:?}"))))?;
        Ok(Response::new(platform(p, &c)))
    }
}

fn issuer(i: IssuerRecord) -> pb::Issuer {
    let certificates = i
        .certs
        .into_iter()
        .map(|c| pb::IssuerCertificate {
            role: match c.role {
                CaRole::Root => pb::CaRole::Root,
                CaRole::Issuing => pb::CaRole::Issuing,
                CaRole::Link => pb::CaRole::Link,
            } as i32,
            state: match c.state {
                CaState::Active => pb::CaState::Active,
                CaState::Retiring => pb::CaState::Retiring,
                CaState::Retired => pb::CaState::Retired,
            } as i32,
            subject: c.subject,
            serial: c.serial,
            sha256: c.sha256,
            not_after: ts(c.not_after),
            der: c.der,
            ca_id: c.ca_id.to_string(),
            parent: c.parent.to_string(),
        })
        .collect();
    pb::Issuer {
        name: i.name,
        algorithm: i.algorithm.as_str().into(),
        created_at: ts(i.created_at),
        certificates,
    }
}

fn issuer_change(c: IssuerChange) -> pb::IssuerChange {
    let ids = |v: Vec<CaId>| v.into_iter().map(|i| i.to_string()).collect();
    pb::IssuerChange {
        issuer: Some(issuer(c.issuer)),
        added: ids(c.added),
        retiring: ids(c.retiring),
        retired: ids(c.retired),
        dry_run: c.dry_run,
        summary: c.summary,
    }
}

fn peer(p: PeerRecord, cross: &[CrossRecord]) -> pb::Peer {
    let of = |d: Direction| {
        cross
            .iter()
            .filter(|c| c.peer == p.name && c.direction == d)
            .map(|c| c.der.clone())
            .collect()
    };
    pb::Peer {
        issued_cross_der: of(Direction::Issued),
        received_cross_der: of(Direction::Received),
        name: p.name,
        ca_cert_der: p.ca_cert,
        subject: p.subject,
        status: match p.status {
            PeerStatus::Active => pb::PeerStatus::Active,
            PeerStatus::Suspended => pb::PeerStatus::Suspended,
        }
        .into(),
        added_at: ts(p.added_at),
    }
}

fn cidr(s: &str) -> Result<(IpAddr, u8), Error> {
    let bad = || {
        Error::field(
            "permitted_ip",
            format!("{s:?} is not a CIDR such as 10.0.0.0/8"),
        )
    };
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    Ok((
        ip.parse().map_err(|_| bad())?,
        len.parse().map_err(|_| bad())?,
    ))
}

/// Parses the text forms of the cross-certification terms (shared with the CLI).
pub fn terms(
    permitted_dns: Vec<String>,
    excluded_dns: Vec<String>,
    permitted_ip: &[String],
    path_len: Option<u32>,
    days: u32,
    policies: Vec<String>,
    policy_maps: &[String],
) -> Result<Terms, Error> {
    let path_len = path_len
        .map(|n| u8::try_from(n).map_err(|_| Error::field("path_len", "at most 255")))
        .transpose()?;
    let policy_maps = policy_maps
        .iter()
        .map(|m| {
            m.split_once('=')
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .ok_or_else(|| {
                    Error::field("policy_map", format!("{m:?}: use ISSUER_OID=SUBJECT_OID"))
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(Terms {
        permitted_dns,
        excluded_dns,
        permitted_ip: permitted_ip
            .iter()
            .map(|s| cidr(s))
            .collect::<Result<_, _>>()?,
        path_len,
        days,
        policies,
        policy_maps,
    })
}

#[tonic::async_trait]
impl Admin for AdminApi {
    async fn request_key_recovery(
        &self,
        req: Request<pb::KeyRecoveryRequest>,
    ) -> Result<Response<pb::KeyRecovery>, Status> {
        let caller = self.caller(&req, Action::RecoverKeys).await?;
        let r = req.into_inner();
        let recovery = self
            .service
            .request_key_recovery(
                &caller,
                &r.serial,
                &r.reason,
                &r.case_reference,
                &r.recipient_certificate,
            )
            .await?;
        Ok(Response::new(key_recovery(recovery)))
    }

    async fn fetch_key_recovery(
        &self,
        req: Request<pb::FetchKeyRecoveryRequest>,
    ) -> Result<Response<pb::ReleasedKey>, Status> {
        let caller = self.caller(&req, Action::RecoverKeys).await?;
        let released = self
            .service
            .fetch_key_recovery(&caller, &req.into_inner().id)
            .await?;
        Ok(Response::new(pb::ReleasedKey {
            recovery: released.recovery.map(key_recovery),
            envelope: released.envelope,
            envelope_type: released.envelope_type,
        }))
    }

    async fn list_key_recoveries(
        &self,
        req: Request<pb::ListKeyRecoveriesRequest>,
    ) -> Result<Response<pb::ListKeyRecoveriesResponse>, Status> {
        let caller = self.caller(&req, Action::ReadAudit).await?;
        let recoveries = self.service.key_recoveries(&caller).await?;
        Ok(Response::new(pb::ListKeyRecoveriesResponse {
            recoveries: recoveries.into_iter().map(key_recovery).collect(),
        }))
    }

    async fn cross_certify(
        &self,
        req: Request<pb::CrossCertifyRequest>,
    ) -> Result<Response<pb::CrossCertifyResponse>, Status> {
        let caller = self.caller(&req, Action::CrossCertify).await?;
        let r = req.into_inner();
        let peer_input = match r.peer {
            Some(pb::cross_certify_request::Peer::CaCert(c)) => PeerInput::Cert(c),
            Some(pb::cross_certify_request::Peer::Csr(c)) => PeerInput::Csr(c),
            None => return Err(Status::invalid_argument("give the peer's ca_cert or csr")),
        };
        let terms = terms(
            r.permitted_dns,
            r.excluded_dns,
            &r.permitted_ip,
            r.path_len,
            r.days,
            r.policies,
            &r.policy_maps,
        )?;
        let out = self
            .service
            .cross_certify(
                &caller,
                CrossCertifyRequest {
                    peer: peer_input,
                    peer_name: (!r.peer_name.is_empty()).then_some(r.peer_name),
                    terms,
                    dry_run: r.dry_run,
                    issuer: r.issuer,
                },
            )
            .await?;
        Ok(Response::new(pb::CrossCertifyResponse {
            certificate_der: out.der.unwrap_or_default(),
            serial: out.serial,
            description: out.description,
        }))
    }

    async fn add_peer(
        &self,
        req: Request<pb::AddPeerRequest>,
    ) -> Result<Response<pb::Peer>, Status> {
        let caller = self.caller(&req, Action::ManagePeers).await?;
        let r = req.into_inner();
        let record = self
            .service
            .add_peer(&caller, &r.name, &r.ca_cert, &r.received_cross)
            .await?;
        let all = self.service.peers(&caller).await?;
        let cross = all
            .into_iter()
            .find(|(p, _)| p.name == record.name)
            .map(|(_, c)| c)
            .unwrap_or_default();
        Ok(Response::new(peer(record, &cross)))
    }

    async fn list_issuers(
        &self,
        req: Request<pb::ListIssuersRequest>,
    ) -> Result<Response<pb::ListIssuersResponse>, Status> {
        let caller = self.caller(&req, Action::ListIssuers).await?;
        let issuers = self.service.issuers(&caller).await?;
        let issuers = issuers.into_iter().map(issuer).collect();
        Ok(Response::new(pb::ListIssuersResponse { issuers }))
    }

    async fn get_issuer(
        &self,
        req: Request<pb::GetIssuerRequest>,
    ) -> Result<Response<pb::Issuer>, Status> {
        let caller = self.caller(&req, Action::ListIssuers).await?;
        let name = req.into_inner().name;
        Ok(Response::new(issuer(
            self.service.issuer(&caller, &name).await?,
        )))
    }

    async fn add_issuer(
        &self,
        req: Request<pb::AddIssuerRequest>,
    ) -> Result<Response<pb::IssuerChange>, Status> {
        let caller = self.caller(&req, Action::ManageIssuers).await?;
        let r = req.into_inner();
        let change = self
            .service
            .add_issuer(&caller, &r.name, &r.algorithm, r.dry_run)
            .await?;
        Ok(Response::new(issuer_change(change)))
    }

    async fn rotate_issuer(
        &self,
        req: Request<pb::RotateIssuerRequest>,
    ) -> Result<Response<pb::IssuerChange>, Status> {
        let caller = self.caller(&req, Action::ManageIssuers).await?;
        let r = req.into_inner();
        let rotation = if r.root {
            Rotation::Root
        } else {
            Rotation::Issuing
        };
        let change = self
            .service
            .rotate_issuer(&caller, &r.name, rotation, r.dry_run)
            .await?;
        Ok(Response::new(issuer_change(change)))
    }

    async fn retire_issuer(
        &self,
        req: Request<pb::RetireIssuerRequest>,
    ) -> Result<Response<pb::IssuerChange>, Status> {
        let caller = self.caller(&req, Action::ManageIssuers).await?;
        let r = req.into_inner();
        let change = self
            .service
            .retire_issuer(&caller, &r.name, &r.ca, r.dry_run)
            .await?;
        Ok(Response::new(issuer_change(change)))
    }

    async fn list_peers(
        &self,
        req: Request<pb::ListPeersRequest>,
    ) -> Result<Response<pb::ListPeersResponse>, Status> {
        let caller = self.caller(&req, Action::ListPeers).await?;
        let peers = self
            .service
            .peers(&caller)
            .await?
            .into_iter()
            .map(|(p, c)| peer(p, &c))
            .collect();
        Ok(Response::new(pb::ListPeersResponse { peers }))
    }

    async fn get_peer(
        &self,
        req: Request<pb::GetPeerRequest>,
    ) -> Result<Response<pb::Peer>, Status> {
        let caller = self.caller(&req, Action::ListPeers).await?;
        let name = req.into_inner().name;
        self.peer_named(&caller, &name).await
    }

    async fn set_peer_status(
        &self,
        req: Request<pb::SetPeerStatusRequest>,
    ) -> Result<Response<pb::Peer>, Status> {
        let caller = self.caller(&req, Action::ManagePeers).await?;
        let r = req.into_inner();
        let status = match r.status() {
            pb::PeerStatus::Active => PeerStatus::Active,
            pb::PeerStatus::Suspended => PeerStatus::Suspended,
            pb::PeerStatus::Unspecified => {
                return Err(Status::invalid_argument("status: ACTIVE or SUSPENDED"));
            }
        };
        self.service
            .set_peer_status(&caller, &r.name, status)
            .await?;
        self.peer_named(&caller, &r.name).await
    }

    async fn remove_peer(
        &self,
        req: Request<pb::RemovePeerRequest>,
    ) -> Result<Response<pb::RemovePeerResponse>, Status> {
        let caller = self.caller(&req, Action::ManagePeers).await?;
        let revoked_serials = self
            .service
            .remove_peer(&caller, &req.into_inner().name)
            .await?;
        Ok(Response::new(pb::RemovePeerResponse { revoked_serials }))
    }

    async fn add_platform(
        &self,
        req: Request<pb::AddPlatformRequest>,
    ) -> Result<Response<pb::IssuedCredential>, Status> {
        let caller = self.caller(&req, Action::ManagePlatforms).await?;
        let r = req.into_inner();
        let spec = PlatformSpec {
            name: r.name,
            dns_suffixes: r.dns_suffixes,
            ip_ranges: r.ip_ranges,
            profiles: r.profiles,
            max_days: r.max_days,
            rate_per_min: r.rate_per_minute,
            organizations: r.organizations,
            usccs: r.usccs,
            names: r.names,
        };
        let (_, cred) = self.service.add_platform(&caller, spec, &r.csr).await?;
        Ok(Response::new(credential(cred)))
    }

    async fn list_platforms(
        &self,
        req: Request<pb::ListPlatformsRequest>,
    ) -> Result<Response<pb::ListPlatformsResponse>, Status> {
        let caller = self.caller(&req, Action::ListPlatforms).await?;
        let platforms = self
            .service
            .platforms(&caller)
            .await?
            .into_iter()
            .map(|(p, c)| platform(p, &c))
            .collect();
        Ok(Response::new(pb::ListPlatformsResponse { platforms }))
    }

    async fn rotate_platform_credential(
        &self,
        req: Request<pb::RotatePlatformCredentialRequest>,
    ) -> Result<Response<pb::IssuedCredential>, Status> {
        let caller = self.caller(&req, Action::ManagePlatforms).await?;
        let r = req.into_inner();
        Ok(Response::new(credential(
            self.service
                .rotate_platform(&caller, &r.name, &r.csr)
                .await?,
        )))
    }

    async fn set_platform_disabled(
        &self,
        req: Request<pb::SetPlatformDisabledRequest>,
    ) -> Result<Response<pb::Platform>, Status> {
        let caller = self.caller(&req, Action::ManagePlatforms).await?;
        let r = req.into_inner();
        self.service
            .set_platform_disabled(&caller, &r.name, r.disabled)
            .await?;
        self.platform_named(&caller, &r.name).await
    }

    async fn set_platform_subjects(
        &self,
        req: Request<pb::SetPlatformSubjectsRequest>,
    ) -> Result<Response<pb::Platform>, Status> {
        let caller = self.caller(&req, Action::ManagePlatforms).await?;
        let r = req.into_inner();
        self.service
            .set_platform_subjects(&caller, &r.name, r.organizations, r.usccs, r.names)
            .await?;
        self.platform_named(&caller, &r.name).await
    }

    async fn create_acme_key(
        &self,
        req: Request<pb::CreateAcmeKeyRequest>,
    ) -> Result<Response<pb::AcmeKey>, Status> {
        let caller = self.caller(&req, Action::ManagePlatforms).await?;
        let platform = req.into_inner().platform;
        let (kid, hmac) = self.service.create_acme_key(&caller, &platform).await?;
        Ok(Response::new(pb::AcmeKey {
            kid,
            hmac,
            platform,
        }))
    }

    async fn add_auditor(
        &self,
        req: Request<pb::AddAuditorRequest>,
    ) -> Result<Response<pb::IssuedCredential>, Status> {
        let caller = self.caller(&req, Action::AddAuditor).await?;
        let r = req.into_inner();
        Ok(Response::new(credential(
            self.service.add_auditor(&caller, &r.name, &r.csr).await?,
        )))
    }

    async fn list_audit(
        &self,
        req: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        let caller = self.caller(&req, Action::ReadAudit).await?;
        let r = req.into_inner();
        let limit = if r.limit == 0 { 1000 } else { r.limit };
        let entries = self
            .service
            .audit(&caller, r.after_id, limit)
            .await?
            .into_iter()
            .map(|e| pb::AuditEntry {
                id: e.id,
                at: ts(e.at),
                actor: e.actor,
                event: e.event,
                object: e.object,
                detail: e.detail,
                prev_hash: e.prev_hash,
                hash: e.hash,
            })
            .collect();
        Ok(Response::new(pb::ListAuditResponse { entries }))
    }

    async fn get_report(
        &self,
        req: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        let caller = self.caller(&req, Action::ReadReports).await?;
        let r = req.into_inner();
        let platform = (!r.platform.is_empty()).then_some(r.platform);
        let report = crate::report::build(&self.service, &caller, &r.period, platform).await?;
        Ok(Response::new(report))
    }

    async fn create_console_login(
        &self,
        req: Request<pb::CreateConsoleLoginRequest>,
    ) -> Result<Response<pb::ConsoleLogin>, Status> {
        self.caller(&req, Action::ReadReports).await?;
        let (url, until) = self.service.console_login(super::peer_leaf(&req)).await?;
        Ok(Response::new(pb::ConsoleLogin {
            url,
            expires_at: super::ts(until),
        }))
    }

    async fn list_checkpoints(
        &self,
        req: Request<pb::ListCheckpointsRequest>,
    ) -> Result<Response<pb::ListCheckpointsResponse>, Status> {
        let caller = self.caller(&req, Action::ReadAudit).await?;
        let checkpoints = self
            .service
            .checkpoints(&caller)
            .await?
            .into_iter()
            .map(|c| pb::Checkpoint {
                id: c.id,
                upto_id: c.upto_id,
                head_hash: c.head_hash,
                at: ts(c.at),
                signature: c.signature,
            })
            .collect();
        Ok(Response::new(pb::ListCheckpointsResponse {
            checkpoints,
            signer_cert_der: self.service.authority().issuing.der.clone(),
        }))
    }
}

fn credential(c: IssuedCredential) -> pb::IssuedCredential {
    let mut chain = vec![c.cert_der.as_slice()];
    chain.extend(c.chain.iter().map(Vec::as_slice));
    pb::IssuedCredential {
        serial: c.serial,
        cert_pem: crate::pemfile::certs_to_pem(chain),
        ca_pem: crate::pemfile::certs_to_pem([c.ca_der.as_slice()]),
    }
}

fn platform(p: PlatformRecord, creds: &[Credential]) -> pb::Platform {
    pb::Platform {
        name: p.name,
        dns_suffixes: p.dns_suffixes,
        ip_ranges: p.ip_ranges,
        profiles: p.profiles,
        max_days: p.max_days,
        rate_per_minute: p.rate_per_min,
        disabled: p.disabled,
        organizations: p.organizations,
        usccs: p.usccs,
        names: p.names,
        credentials: creds
            .iter()
            .map(|c| {
                if c.disabled {
                    format!("{} (disabled)", c.serial)
                } else {
                    c.serial.clone()
                }
            })
            .collect(),
    }
}

fn key_recovery(r: crate::kmc_proto::Recovery) -> pb::KeyRecovery {
    pb::KeyRecovery {
        id: r.id,
        serial: r.serial,
        reason: r.reason,
        case_reference: r.case_reference,
        requester: r.requester,
        state: r.state,
        approvals: r.approvals,
        required: r.required,
        created_at: ts(r.created_at),
        expires_at: ts(r.expires_at),
    }
}
