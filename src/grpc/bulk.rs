//! IssueCertificates: bulk issuance over one stream. Each item goes through the same service
//! call as IssueCertificate (admission, platform policy, rate and in-flight limits, one
//! durable commit); what the stream saves is the per-call TLS, HTTP/2 and request overhead.
use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::{certificate, issue_request, peer_leaf};
use crate::auth::Action;
use crate::proto as pb;
use crate::service::Service;

/// Items of one stream in flight at most; the stream is not read further until one ends.
pub const IN_FLIGHT: usize = 32;

/// Longest `id` echoed back.
const MAX_ID: usize = 256;

pub type Answers =
    Pin<Box<dyn Stream<Item = Result<pb::IssueCertificatesResponse, Status>> + Send>>;

pub async fn issue_certificates(
    service: &Arc<Service>,
    req: Request<Streaming<pb::IssueCertificatesRequest>>,
) -> Result<Response<Answers>, Status> {
    // Refused before anything is read when the caller may not issue at all.
    super::caller_of(service, &req, Action::Issue).await?;
    let leaf = peer_leaf(&req);
    let service = service.clone();
    let answers = req
        .into_inner()
        .enumerate()
        .map(move |(index, item)| {
            let (service, leaf) = (service.clone(), leaf.clone());
            // Spawned: the items of one stream sign on every core, not on the stream's task.
            // An unreadable message fails the stream (and ends the call).
            tokio::spawn(async move {
                let item = item?;
                Ok::<_, Status>(respond(&service, leaf.as_deref(), index, item).await)
            })
        })
        .buffer_unordered(IN_FLIGHT)
        .map(|joined| joined.map_err(|e| Status::internal(format!("bulk item task: {e}")))?);
    Ok(Response::new(Box::pin(answers)))
}

/// One item's answer: its certificate or why it failed.
async fn respond(
    service: &Service,
    leaf: Option<&Vec<u8>>,
    index: usize,
    item: pb::IssueCertificatesRequest,
) -> pb::IssueCertificatesResponse {
    let result = match answer(service, leaf, &item).await {
        Ok(issued) => pb::issue_certificates_response::Result::Issued(issued),
        Err(status) => pb::issue_certificates_response::Result::Error(pb::ItemError {
            code: status.code() as i32,
            message: status.message().to_string(),
        }),
    };
    let mut id = item.id;
    if id.len() > MAX_ID {
        id.clear();
    }
    pb::IssueCertificatesResponse {
        index: index as u64,
        id,
        result: Some(result),
    }
}

async fn answer(
    service: &Service,
    leaf: Option<&Vec<u8>>,
    item: &pb::IssueCertificatesRequest,
) -> Result<pb::IssueCertificateResponse, Status> {
    if item.id.len() > MAX_ID {
        return Err(Status::invalid_argument(format!(
            "id: longer than {MAX_ID} bytes"
        )));
    }
    let request = item
        .request
        .clone()
        .ok_or_else(|| Status::invalid_argument("request: missing"))?;
    let caller = service.authenticate(leaf.map(Vec::as_slice)).await?;
    caller.may(Action::Issue)?;
    let issued = service.issue(&caller, issue_request(request)).await?;
    Ok(pb::IssueCertificateResponse {
        certificate: Some(certificate(issued.record)),
        chain_der: issued.chain,
    })
}
