//! Writes as data: every state change is an [`Op`] that a backend applies (with its audit
//! entry) inside a transaction. Both backends commit ops in groups: requests that arrive while
//! a commit is in flight share the next transaction, each inside its own savepoint.
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::store::{Checkpoint, Credential, CrossRecord, IssuanceIntent, PeerRecord, PeerStatus};
use crate::store::{PlatformRecord, RevokeRequest};

/// Most requests sharing one commit.
pub const MAX_GROUP: usize = 512;

/// One state change.
#[derive(Debug)]
pub enum Op {
    Reserve(IssuanceIntent),
    Complete {
        serial: String,
        der: Vec<u8>,
        actor: String,
    },
    Abandon {
        serial: String,
        reason: String,
        actor: String,
    },
    AddCredential {
        cred: Credential,
        actor: String,
    },
    Revoke(RevokeRequest),
    NextCrlNumber {
        ca: String,
    },
    AddPeer {
        peer: PeerRecord,
        actor: String,
    },
    PeerStatus {
        name: String,
        status: PeerStatus,
        actor: String,
    },
    RemovePeer {
        name: String,
        actor: String,
    },
    AddCross {
        record: CrossRecord,
        actor: String,
    },
    /// Reserves the next `size` time-stamp serials as one audited block.
    TimestampBlock {
        size: u32,
    },
    AddPlatform {
        p: PlatformRecord,
        actor: String,
    },
    PlatformDisabled {
        name: String,
        disabled: bool,
        actor: String,
    },
    /// Replaces a platform's registered organizations, USCCs and free-text names.
    PlatformSubjects {
        name: String,
        organizations: Vec<String>,
        usccs: Vec<String>,
        names: Vec<String>,
        actor: String,
    },
    DisableCredential {
        cert_sha256: String,
        actor: String,
    },
    DisableCredentials {
        tenant: String,
        keep: String,
        actor: String,
    },
    AddCheckpoint(Checkpoint),
    Event {
        actor: String,
        event: String,
        object: String,
        detail: String,
    },
}

impl Op {
    /// The audit object and detail of a reserved block of time-stamp serials (both backends).
    pub fn timestamp_block_audit(first: u64, last: u64) -> (String, String) {
        (
            format!("{first}-{last}"),
            format!("reserved={}", last - first + 1),
        )
    }

    /// Does this write change who may call the API (credentials, platforms, revocations)?
    pub fn affects_auth(&self) -> bool {
        matches!(
            self,
            Op::AddCredential { .. }
                | Op::Revoke(_)
                | Op::AddPlatform { .. }
                | Op::PlatformDisabled { .. }
                | Op::PlatformSubjects { .. }
                | Op::DisableCredential { .. }
                | Op::DisableCredentials { .. }
        )
    }
}

/// What a write returns.
#[derive(Debug)]
pub enum Done {
    Nothing,
    Number(u64),
    /// An inclusive range of numbers.
    Range(u64, u64),
    Serials(Vec<String>),
}

/// Answers every job of a group once its transaction ended: each its own result after a
/// commit (cached authorization is invalidated first), all an error after a failed commit.
pub fn deliver(jobs: Vec<Job>, outcome: Result<Vec<Result<Done>>>, auth_generation: &AtomicU64) {
    match outcome {
        Ok(results) => {
            // Before anyone hears "done": cached authentication decisions are now stale.
            if jobs.iter().any(|j| j.op.affects_auth()) {
                auth_generation.fetch_add(1, Ordering::SeqCst);
            }
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "store commit failed");
            for job in jobs {
                let _ = job
                    .reply
                    .send(Err(Error::Storage(format!("commit failed: {e}"))));
            }
        }
    }
}

/// Whether an issued certificate (its row's tenant and revocation time, if found) may be
/// revoked by a caller acting for `tenant` (None: any). Another tenant's looks absent.
pub fn check_revocable(
    serial: &str,
    row: Option<(String, Option<i64>)>,
    tenant: Option<&str>,
) -> Result<()> {
    match row {
        None => Err(Error::NotFound(format!("certificate {serial}"))),
        Some((owner, _)) if tenant.is_some_and(|t| t != owner) => {
            Err(Error::NotFound(format!("certificate {serial}")))
        }
        Some((_, Some(_))) => Err(Error::Conflict(format!(
            "certificate {serial} is already revoked"
        ))),
        Some(_) => Ok(()),
    }
}

/// A queued write and where its result goes.
#[derive(Debug)]
pub struct Job {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Done>>,
}
