//! Writes as data: every state change is an [`Op`] that a backend applies (with its audit
//! entry) inside a transaction. Both backends commit ops in groups: requests that arrive while
//! a commit is in flight share the next transaction, each inside its own savepoint.
use crate::core::stats::{EventKey, Marks, Rollup};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::store::{
    AcmeObject, CaId, CaState, IssuerCert, IssuerRecord, PlatformRecord, RevokeRequest,
};
use crate::store::{Checkpoint, Credential, CrossRecord, IssuanceIntent, PeerRecord, PeerStatus};

/// Most requests sharing one commit.
pub const MAX_GROUP: usize = 512;

/// Writes waiting for the writer, at most; beyond that callers get RESOURCE_EXHAUSTED
/// instead of queueing without bound.
pub const QUEUE: usize = 4096;

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
    /// Records a dual pair: the signing and the encryption certificate (both stored) and the
    /// KMC escrow of the encryption key.
    PairCertificates {
        signing: String,
        encryption: String,
        escrow_id: String,
        actor: String,
    },
    RemovePeer {
        name: String,
        actor: String,
    },
    /// Records a cross-certificate we received from a peer (we signed nothing).
    AddCross {
        record: CrossRecord,
        actor: String,
    },
    /// Reserves the serial of a cross-certificate our root is about to sign (its `der` is
    /// ignored): stored and audited before the root key signs.
    ReserveCross {
        record: CrossRecord,
        actor: String,
    },
    /// Records the signed cross-certificate for a reserved serial.
    CompleteCross {
        serial: String,
        der: Vec<u8>,
        actor: String,
    },
    /// Marks a reserved cross-certificate serial as never signed.
    AbandonCross {
        serial: String,
        reason: String,
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
    /// Records a CA hierarchy with its CA certificates, unless one of that name exists
    /// (instances starting together on one database record it once).
    AddIssuer {
        record: IssuerRecord,
        actor: String,
    },
    /// Adds CA certificates to a hierarchy (a rotation: a new issuing CA; a root rollover: a
    /// new root, its link certificates and a new issuing CA). For each role a new active
    /// root or issuing CA takes, the certificates of that role that were active become
    /// retiring in the same transaction; they must be exactly `replaces` (else Conflict:
    /// another change came first). Returns the retiring CA ids.
    AddIssuerCerts {
        issuer: String,
        certs: Vec<IssuerCert>,
        replaces: Vec<CaId>,
        actor: String,
    },
    /// Moves one CA certificate from state `from` to `to`; NotFound if it is not in `from`.
    SetCaState {
        issuer: String,
        ca_id: CaId,
        from: CaState,
        to: CaState,
        actor: String,
    },
    Event {
        actor: String,
        event: String,
        object: String,
        detail: String,
    },
    /// Adds a roll-up step to the statistics aggregates if the marks are still `from` (else
    /// Conflict: another instance rolled up first). Not audited: derived from audited rows.
    AddStats {
        from: Marks,
        rollup: Rollup,
    },
    /// Adds counted events (n and total milliseconds) to the statistics. Not audited.
    CountEvents(Vec<(EventKey, u64, i64)>),
    /// Stores an ACME object: inserted when `replaces` is None (Conflict if its id or lookup
    /// exists), else updated only if the stored version is `replaces` (Conflict otherwise:
    /// another request or instance changed it first). Audited as `event`.
    AcmePut {
        object: AcmeObject,
        replaces: Option<i64>,
        event: &'static str,
        actor: String,
    },
    /// Deletes orders and authorizations that expired before `before` (audited with the count).
    AcmePurge {
        before: i64,
    },
    /// Ops applied in order in one transaction, all or none, each with its own audit entry
    /// (an issuance's intent and outcome share one durable commit).
    Together(Vec<Op>),
}

impl Op {
    /// The ops this one applies: its parts when together, else itself.
    pub fn parts(&self) -> &[Op] {
        match self {
            Op::Together(ops) => ops,
            op => std::slice::from_ref(op),
        }
    }

    /// Does this write change who may call the API (credentials, platforms, revocations)?
    pub fn affects_auth(&self) -> bool {
        if let Op::Together(ops) = self {
            return ops.iter().any(Op::affects_auth);
        }
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

/// The way to a backend's writer: a bounded queue, and whether the writer still runs.
#[derive(Debug)]
pub struct Writer {
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    health: Arc<WriterHealth>,
}

/// Why the writer stopped, once it has.
#[derive(Debug, Default)]
pub struct WriterHealth {
    stopped: Mutex<Option<String>>,
}

impl WriterHealth {
    fn stop(&self, why: &str) {
        if let Ok(mut s) = self.stopped.lock() {
            s.get_or_insert_with(|| why.to_string());
        }
    }

    /// Ok while the writer runs.
    pub fn check(&self) -> Result<()> {
        match self.stopped.lock().map(|s| s.clone()) {
            Ok(None) => Ok(()),
            Ok(Some(why)) => Err(Error::Storage(format!("store writer {why}"))),
            Err(_) => Err(Error::Storage("store writer state poisoned".into())),
        }
    }
}

/// Held by the writer loop: marks the writer stopped when the loop ends, returning or
/// panicking.
#[derive(Debug)]
pub struct Alive(Arc<WriterHealth>);

impl Drop for Alive {
    fn drop(&mut self) {
        let why = if std::thread::panicking() {
            tracing::error!("store writer panicked");
            "panicked"
        } else {
            tracing::debug!("store writer stopped");
            "has stopped"
        };
        self.0.stop(why);
    }
}

impl Writer {
    /// A queue of `capacity` and its receiving end, with the guard the writer loop holds.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Job>, Alive) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let health = Arc::new(WriterHealth::default());
        let writer = Writer {
            queue: Mutex::new(Some(tx)),
            health: health.clone(),
        };
        (writer, rx, Alive(health))
    }

    /// Queues an op and waits for its result; refuses at once when the queue is full.
    pub async fn submit(&self, op: Op) -> Result<Done> {
        self.health.check()?;
        let (reply, rx) = oneshot::channel();
        {
            let queue = self
                .queue
                .lock()
                .map_err(|_| Error::Storage("store writer state poisoned".into()))?;
            let tx = queue
                .as_ref()
                .ok_or_else(|| Error::Storage("store writer has stopped".into()))?;
            tx.try_send(Job { op, reply }).map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::ResourceExhausted(format!(
                    "the store has {} writes waiting; retry shortly",
                    tx.max_capacity()
                )),
                mpsc::error::TrySendError::Closed(_) => {
                    Error::Storage("store writer has stopped".into())
                }
            })?;
        }
        rx.await
            .map_err(|_| Error::Storage("store writer has stopped".into()))?
    }

    /// Ok while the writer runs.
    pub fn health(&self) -> Result<()> {
        self.health.check()
    }

    /// Closes the queue: what is queued is written, later writes are refused, and the writer
    /// stops.
    pub fn close(&self) {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
    }
}

/// Records a group's commit latency and the writes still waiting.
pub fn observe_group(backend: &str, started: std::time::Instant, waiting: usize) {
    if let Some(m) = crate::metrics::get() {
        m.store_commit
            .with_label_values(&[backend])
            .observe(started.elapsed().as_secs_f64());
        m.store_queue
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }
}

/// Takes the next group of queued jobs (up to [`MAX_GROUP`]) from a batch already received.
pub fn group(first: Job, rx: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut jobs = vec![first];
    while jobs.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    jobs
}
