//! ACME resources (RFC 8555 §7.1) as stored documents, and their JSON for clients.
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::problem::Problem;
use crate::store::{AcmeKind, AcmeObject};

/// How long an order and its authorizations may be worked on.
pub const ORDER_LIFETIME: i64 = 7 * 86_400;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

/// An account: its key (canonical JWK), the platform it acts for and the EAB key that bound it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    pub jwk: String,
    #[serde(default)]
    pub contact: Vec<String>,
    pub platform: String,
    #[serde(default)]
    pub eab_kid: Option<String>,
    pub created: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Challenge {
    #[serde(rename = "type")]
    pub kind: String,
    pub token: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StoredProblem>,
}

/// A problem kept in a document (type, detail, status).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub detail: String,
    pub status: u16,
}

impl From<&Problem> for StoredProblem {
    fn from(p: &Problem) -> Self {
        StoredProblem {
            kind: p.kind.clone(),
            detail: p.detail.clone(),
            status: p.status,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Authz {
    pub identifier: Identifier,
    pub wildcard: bool,
    pub challenges: Vec<Challenge>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub identifiers: Vec<Identifier>,
    pub authorizations: Vec<String>,
    /// The ecca profile it issues under.
    pub profile: String,
    /// The profile name the client asked for, if any (echoed back).
    #[serde(default)]
    pub requested_profile: Option<String>,
    #[serde(default)]
    pub replaces: Option<String>,
    #[serde(default)]
    pub certificate: Option<String>,
    #[serde(default)]
    pub error: Option<StoredProblem>,
}

/// A stored object and its decoded document.
#[derive(Clone, Debug)]
pub struct Stored<T> {
    pub row: AcmeObject,
    pub doc: T,
}

impl<T: Serialize + for<'de> Deserialize<'de>> Stored<T> {
    pub fn decode(row: AcmeObject) -> Result<Self, Problem> {
        let doc = serde_json::from_str(&row.doc).map_err(|e| {
            tracing::error!(kind = row.kind.as_str(), id = %row.id, error = %e, "corrupt ACME document");
            Problem::server_internal(format!(
                "stored {} {} is corrupt; the server's log says why",
                row.kind.as_str(),
                row.id
            ))
        })?;
        Ok(Stored { row, doc })
    }

    pub fn new(
        kind: AcmeKind,
        id: String,
        owner: &str,
        status: &str,
        expires: i64,
        doc: T,
    ) -> Self {
        Stored {
            row: AcmeObject {
                kind,
                id,
                owner: owner.into(),
                status: status.into(),
                expires,
                lookup: None,
                version: 0,
                doc: String::new(),
            },
            doc,
        }
    }

    /// The row to write: the document encoded into it.
    pub fn encoded(&self) -> AcmeObject {
        AcmeObject {
            doc: serde_json::to_string(&self.doc).unwrap_or_default(),
            ..self.row.clone()
        }
    }
}

pub fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// A random identifier for a new object (128 bits, base64url).
pub fn new_id() -> String {
    use ring::rand::SecureRandom;
    let mut raw = [0u8; 16];
    let _ = ring::rand::SystemRandom::new().fill(&mut raw);
    super::jws::b64(&raw)
}
