//! Thin tonic handlers: decode, authenticate, call the service, convert.
use std::sync::Arc;

use std::pin::Pin;

use prost_types::Timestamp;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::auth::{Action, Caller};
use crate::core::path;
use crate::core::revocation::Reason;
use crate::proto::certificate_authority_server::CertificateAuthority;
use crate::proto::{self as pb};
use crate::publish::CrlKind;
use crate::service::{IssueRequest, Service};
use crate::store::{CertRecord, ListFilter};
use crate::verify::{self, RevocationMode};

mod admin;
mod bulk;
pub mod codec;
mod statistics;
mod status;
pub mod timing;
pub mod tls;

pub use admin::AdminApi;

/// The `ecca.v1.CertificateAuthority` service.
#[derive(Debug, Clone)]
pub struct CaApi {
    service: Arc<Service>,
}

impl CaApi {
    pub fn new(service: Arc<Service>) -> Self {
        CaApi { service }
    }

    /// The authenticated caller, refused before its arguments are looked at when its role
    /// may not do `action`.
    async fn caller<T>(&self, req: &Request<T>, action: Action) -> Result<Caller, Status> {
        caller_of(&self.service, req, action).await
    }
}

/// The client certificate the TLS handshake verified.
pub(super) fn peer_leaf<T>(req: &Request<T>) -> Option<std::sync::Arc<Vec<u8>>> {
    req.extensions()
        .get::<tls::ApiConn>()
        .and_then(|c| c.leaf.clone())
}

/// The authenticated caller of a request (its verified mTLS client certificate), allowed to
/// do `action`.
pub(crate) async fn caller_of<T>(
    service: &Service,
    req: &Request<T>,
    action: Action,
) -> Result<Caller, Status> {
    let leaf = peer_leaf(req);
    let caller = service
        .authenticate(leaf.as_deref().map(Vec::as_slice))
        .await?;
    caller.may(action)?;
    Ok(caller)
}

/// Certificates from request fields that may each be DER or a PEM bundle.
fn certs_from(items: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, Status> {
    let mut out = Vec::new();
    for i in items {
        out.extend(crate::pemfile::parse_certs(&i)?);
    }
    Ok(out)
}

/// The requested revocation mode: unset is HARD (fail closed); unknown values are refused.
fn revocation_mode(m: i32) -> Result<RevocationMode, Status> {
    match pb::RevocationMode::try_from(m) {
        Ok(pb::RevocationMode::Unspecified | pb::RevocationMode::Hard) => Ok(RevocationMode::Hard),
        Ok(pb::RevocationMode::Soft) => Ok(RevocationMode::Soft),
        Ok(pb::RevocationMode::Off) => Ok(RevocationMode::Off),
        Err(_) => Err(Status::invalid_argument(format!(
            "revocation: unknown mode {m}; use SOFT, HARD (the default) or OFF"
        ))),
    }
}

pub(crate) fn ts(unix: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: unix,
        nanos: 0,
    })
}

fn reason(r: Reason) -> pb::RevocationReason {
    pb::RevocationReason::try_from(r as i32).unwrap_or(pb::RevocationReason::Unspecified)
}

fn certificate(r: CertRecord) -> pb::Certificate {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let status = if r.revocation.is_some() {
        pb::CertificateStatus::Revoked
    } else if r.not_after <= now {
        pb::CertificateStatus::Expired
    } else {
        pb::CertificateStatus::Valid
    };
    let rev = r.revocation;
    pb::Certificate {
        serial: r.serial,
        profile: r.profile,
        subject: r.subject,
        subject_alt_names: r.sans,
        not_before: ts(r.not_before),
        not_after: ts(r.not_after),
        der: r.der,
        status: status.into(),
        issued_at: ts(r.issued_at),
        tenant: r.tenant,
        revoked_at: rev.and_then(|v| ts(v.revoked_at)),
        revocation_reason: rev.map(|v| reason(v.reason)).unwrap_or_default().into(),
        invalidity_date: rev.and_then(|v| v.invalidity_date).and_then(ts),
    }
}

const PAGE_TOKEN_PREFIX: &str = "p1.";

fn issue_request(r: pb::IssueCertificateRequest) -> IssueRequest {
    IssueRequest {
        csr: r.csr,
        profile: r.profile,
        validity_days: r.validity_days,
        issuer: r.issuer,
    }
}

/// How often an open WatchRevocations stream checks that its credential still authenticates.
const WATCH_RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

#[tonic::async_trait]
impl CertificateAuthority for CaApi {
    async fn issue_certificate(
        &self,
        req: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::IssueCertificateResponse>, Status> {
        let caller = self.caller(&req, Action::Issue).await?;
        let issued = self
            .service
            .issue(&caller, issue_request(req.into_inner()))
            .await?;
        Ok(Response::new(pb::IssueCertificateResponse {
            certificate: Some(certificate(issued.record)),
            chain_der: issued.chain,
        }))
    }

    type IssueCertificatesStream = bulk::Answers;

    async fn issue_certificates(
        &self,
        req: Request<tonic::Streaming<pb::IssueCertificatesRequest>>,
    ) -> Result<Response<Self::IssueCertificatesStream>, Status> {
        bulk::issue_certificates(&self.service, req).await
    }

    async fn issue_dual_certificate(
        &self,
        req: Request<pb::IssueCertificateRequest>,
    ) -> Result<Response<pb::IssueDualCertificateResponse>, Status> {
        let caller = self.caller(&req, Action::Issue).await?;
        let issued = self
            .service
            .issue_dual(&caller, issue_request(req.into_inner()))
            .await?;
        Ok(Response::new(pb::IssueDualCertificateResponse {
            signing_certificate: Some(certificate(issued.signing)),
            encryption_certificate: Some(certificate(issued.encryption)),
            chain_der: issued.chain,
            envelope: issued.envelope,
            envelope_type: issued.envelope_type,
        }))
    }

    async fn get_certificate(
        &self,
        req: Request<pb::GetCertificateRequest>,
    ) -> Result<Response<pb::Certificate>, Status> {
        let caller = self.caller(&req, Action::Read).await?;
        let record = self.service.get(&caller, &req.into_inner().serial).await?;
        Ok(Response::new(certificate(record)))
    }

    async fn list_certificates(
        &self,
        req: Request<pb::ListCertificatesRequest>,
    ) -> Result<Response<pb::ListCertificatesResponse>, Status> {
        let caller = self.caller(&req, Action::Read).await?;
        let r = req.into_inner();
        let before_id = match r.page_token.as_str() {
            "" => None,
            t => Some(
                t.strip_prefix(PAGE_TOKEN_PREFIX)
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| {
                        Status::invalid_argument(
                            "invalid page_token; pass next_page_token unchanged",
                        )
                    })?,
            ),
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (expired_at, revoked) = match r.status() {
            pb::CertificateStatus::Unspecified => (None, None),
            pb::CertificateStatus::Valid => (Some((now, false)), Some(false)),
            pb::CertificateStatus::Expired => (Some((now, true)), None),
            pb::CertificateStatus::Revoked => (None, Some(true)),
        };
        let filter = ListFilter {
            profile: (!r.profile.is_empty()).then_some(r.profile),
            tenant: None,
            name_contains: (!r.name_contains.is_empty()).then_some(r.name_contains),
            expired_at,
            revoked,
            before_id,
            limit: if r.page_size == 0 {
                100
            } else {
                r.page_size.min(1000)
            },
        };
        let page = self.service.list(&caller, filter).await?;
        Ok(Response::new(pb::ListCertificatesResponse {
            certificates: page.records.into_iter().map(certificate).collect(),
            next_page_token: page
                .next
                .map(|n| format!("{PAGE_TOKEN_PREFIX}{n}"))
                .unwrap_or_default(),
        }))
    }

    async fn list_profiles(
        &self,
        req: Request<pb::ListProfilesRequest>,
    ) -> Result<Response<pb::ListProfilesResponse>, Status> {
        self.caller(&req, Action::Read).await?;
        let profiles = self
            .service
            .profiles()
            .map(|p| pb::Profile {
                name: p.name.clone(),
                description: p.description.clone(),
                key_algorithms: p
                    .key_algorithms
                    .iter()
                    .map(|a| a.name().to_string())
                    .collect(),
                max_validity_days: p.max_validity_days,
                default_validity_days: p.default_validity_days,
                key_usages: p.key_usages.iter().map(|u| u.name().to_string()).collect(),
                extended_key_usages: p
                    .extended_key_usages
                    .iter()
                    .map(|e| e.name.clone())
                    .collect(),
                issuer: p.issuer.clone(),
                dual: p.dual,
                issuers: p.issuers.clone(),
            })
            .collect();
        Ok(Response::new(pb::ListProfilesResponse { profiles }))
    }

    async fn get_trust_bundle(
        &self,
        req: Request<pb::GetTrustBundleRequest>,
    ) -> Result<Response<pb::TrustBundle>, Status> {
        self.caller(&req, Action::Read).await?;
        let (roots_der, intermediates_der) = self.service.trust_bundle().await?;
        Ok(Response::new(pb::TrustBundle {
            roots_der,
            intermediates_der,
        }))
    }

    async fn revoke_certificate(
        &self,
        req: Request<pb::RevokeCertificateRequest>,
    ) -> Result<Response<pb::Certificate>, Status> {
        let caller = self.caller(&req, Action::Revoke).await?;
        let r = req.into_inner();
        let why = Reason::from_code(r.reason.into())?;
        let invalidity = r.invalidity_date.map(|t| t.seconds);
        let record = self
            .service
            .revoke(&caller, &r.serial, why, invalidity)
            .await?;
        Ok(Response::new(certificate(record)))
    }

    async fn get_revocation_status(
        &self,
        req: Request<pb::GetRevocationStatusRequest>,
    ) -> Result<Response<pb::RevocationStatus>, Status> {
        let caller = self.caller(&req, Action::Read).await?;
        let record = self.service.get(&caller, &req.into_inner().serial).await?;
        let rev = record.revocation;
        Ok(Response::new(pb::RevocationStatus {
            serial: record.serial,
            revoked: rev.is_some(),
            revoked_at: rev.and_then(|v| ts(v.revoked_at)),
            reason: rev.map(|v| reason(v.reason)).unwrap_or_default().into(),
            invalidity_date: rev.and_then(|v| v.invalidity_date).and_then(ts),
        }))
    }

    type WatchRevocationsStream =
        Pin<Box<dyn Stream<Item = Result<pb::RevocationEvent, Status>> + Send + 'static>>;

    async fn watch_revocations(
        &self,
        req: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        let caller = self.caller(&req, Action::WatchRevocations).await?;
        let (rx, tenant) = self.service.watch_revocations(&caller)?;
        let events = BroadcastStream::new(rx).filter_map(move |item| match item {
            Ok(e) if tenant.as_ref().is_none_or(|t| *t == e.tenant) => Some(Ok(pb::RevocationEvent {
                serial: e.serial,
                revoked_at: ts(e.revoked_at),
                reason: reason(e.reason).into(),
                tenant: e.tenant,
            })),
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(n)) => Some(Err(Status::aborted(format!(
                "missed {n} revocations (slow reader); resynchronise with ListCertificates status=REVOKED and watch again"
            )))),
        });
        // An open stream is no standing permission: once its credential is disabled, revoked
        // or rotated away, the stream ends with the reason.
        let recheck = futures_util::stream::unfold(
            (self.service.clone(), peer_leaf(&req)),
            |(service, leaf)| async move {
                loop {
                    tokio::time::sleep(WATCH_RECHECK).await;
                    if let Err(e) = service
                        .authenticate(leaf.as_deref().map(Vec::as_slice))
                        .await
                    {
                        return Some((Err(Status::from(e)), (service, leaf)));
                    }
                }
            },
        );
        let mut ended = false;
        let stream = events.merge(recheck).take_while(move |item| {
            let go = !ended;
            ended |= item.is_err();
            go
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_crl(&self, req: Request<pb::GetCrlRequest>) -> Result<Response<pb::Crl>, Status> {
        self.caller(&req, Action::Read).await?;
        let req = req.into_inner();
        let kind = if req.delta {
            CrlKind::Delta
        } else {
            CrlKind::Full
        };
        let ca = self.service.crl_ca(&req.issuer, &req.ca)?;
        let published = self.service.publisher().crl(&ca, kind)?;
        let number = x509_parser::parse_x509_crl(&published.der)
            .ok()
            .and_then(|(_, crl)| {
                crl.crl_number()
                    .and_then(|n| n.to_u64_digits().first().copied())
            })
            .unwrap_or_default();
        Ok(Response::new(pb::Crl {
            der: published.der.clone(),
            number,
            this_update: ts(published.this_update),
            next_update: ts(published.next_update),
        }))
    }

    async fn verify_certificate(
        &self,
        req: Request<pb::VerifyCertificateRequest>,
    ) -> Result<Response<pb::VerifyCertificateResponse>, Status> {
        let caller = self.caller(&req, Action::Verify).await?;
        let r = req.into_inner();
        let purpose = pb::Purpose::try_from(r.purpose).map_err(|_| {
            Status::invalid_argument(format!("purpose: unknown value {}", r.purpose))
        })?;
        let revocation = revocation_mode(r.revocation)?;
        let leaf = certs_from(vec![r.leaf])?
            .into_iter()
            .next()
            .ok_or_else(|| Status::invalid_argument("leaf: no certificate"))?;
        let mut options = path::Options::at(r.at.map_or_else(
            || time::OffsetDateTime::now_utc().unix_timestamp(),
            |t| t.seconds,
        ));
        options.purpose = match purpose {
            pb::Purpose::Any => path::Purpose::Any,
            pb::Purpose::ServerAuth => path::Purpose::ServerAuth,
            pb::Purpose::ClientAuth => path::Purpose::ClientAuth,
            pb::Purpose::DocumentSigning => path::Purpose::DocumentSigning,
        };
        options.name = parse_expected_name(&r.expected_name)?;
        let request = verify::Request {
            leaf,
            untrusted: certs_from(r.untrusted)?,
            anchors: certs_from(r.trust_anchors)?,
            crls: Vec::new(),
            options,
            revocation,
            historical: false,
        };
        let out = self.service.verify(&caller, request).await?;
        Ok(Response::new(pb::VerifyCertificateResponse {
            valid: out.valid,
            path: out.path.into_iter().map(|p| p.subject).collect(),
            reasons: out.reasons,
            warnings: out.warnings,
        }))
    }

    async fn timestamp(
        &self,
        req: Request<pb::TimestampRequest>,
    ) -> Result<Response<pb::TimestampResponse>, Status> {
        self.caller(&req, Action::Timestamp).await?;
        let resp = self
            .service
            .timestamp(&req.into_inner().time_stamp_req)
            .await;
        Ok(Response::new(pb::TimestampResponse {
            time_stamp_resp: resp,
        }))
    }

    async fn verify_signature(
        &self,
        req: Request<pb::VerifySignatureRequest>,
    ) -> Result<Response<pb::VerifySignatureResponse>, Status> {
        let caller = self.caller(&req, Action::Verify).await?;
        let r = req.into_inner();
        let revocation = revocation_mode(r.revocation)?;
        let signed = crate::core::cms::signed_data(&r.signature)?;
        let alg = crate::core::cms::digest_alg(&signed)?;
        let content_digest = match r.content {
            Some(pb::verify_signature_request::Content::Document(d)) => alg.digest(&d),
            Some(pb::verify_signature_request::Content::DocumentDigest(d)) => d,
            None => return Err(Status::invalid_argument("give the document or its digest")),
        };
        let out = self
            .service
            .verify_signature(
                &caller,
                verify::SignatureRequest {
                    signed,
                    content_digest,
                    untrusted: certs_from(r.untrusted)?,
                    anchors: certs_from(r.trust_anchors)?,
                    crls: Vec::new(),
                    at: r.at.map(|t| t.seconds),
                    revocation,
                },
            )
            .await?;
        Ok(Response::new(pb::VerifySignatureResponse {
            valid: out.valid,
            signer: out.signer,
            signing_time: out.signing_time.and_then(ts),
            timestamp_time: out.timestamp_time.and_then(ts),
            path: out.path.into_iter().map(|p| p.subject).collect(),
            reasons: out.reasons,
            warnings: out.warnings,
        }))
    }

    async fn get_statistics(
        &self,
        req: Request<pb::GetStatisticsRequest>,
    ) -> Result<Response<pb::Statistics>, Status> {
        let caller = self.caller(&req, Action::ReadStatistics).await?;
        let query = statistics::query(req.into_inner())?;
        let out = self.service.statistics(&caller, query).await?;
        Ok(Response::new(crate::report::proto_of(out)))
    }
}

/// "DNS:x", "IP:x", "email:x" (or empty) into an expected name.
pub fn parse_expected_name(s: &str) -> Result<Option<path::ExpectedName>, crate::Error> {
    if s.is_empty() {
        return Ok(None);
    }
    let (kind, value) = s.split_once(':').ok_or_else(|| {
        crate::Error::field("expected_name", "use DNS:name, IP:address or email:address")
    })?;
    Ok(Some(match kind.to_ascii_lowercase().as_str() {
        "dns" => path::ExpectedName::Dns(value.into()),
        "ip" => path::ExpectedName::Ip(value.parse().map_err(|_| {
            crate::Error::field("expected_name", format!("{value:?} is not an IP address"))
        })?),
        "email" => path::ExpectedName::Email(value.into()),
        _ => {
            return Err(crate::Error::field(
                "expected_name",
                "use DNS:name, IP:address or email:address",
            ));
        }
    }))
}
