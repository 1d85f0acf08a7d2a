//! Publishing revocation status for every CA certificate of every hierarchy (one `Slot` per
//! root and per active or retiring issuing CA): CRLs (`crl`), OCSP (`ocsp`), and what other
//! instances sharing the store changed (`follow`); platforms watching revocations hear of
//! each one here too. The signing itself is `authority`'s; the encodings are `core`'s.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use der::Encode;
use tokio::sync::{Notify, broadcast};
use x509_ocsp::{CertId, OcspResponseStatus};

use crate::authority::{Authority, IssuingCa, RootCa, WorkingKey};
use crate::core::ocsp::{CaIdentity, Status, Validity};
use crate::core::records::{CaId, CaState};
use crate::core::revocation::{CrlParams, Reason, RevokedEntry};
use crate::core::serial::Serial;
use crate::error::{Error, Result};
use crate::store::{CertRecord, Direction, Issuer, SharedOcsp, Store};

/// Full CRLs are valid this long.
pub const CRL_VALIDITY: i64 = 24 * 3600;
/// Delta CRLs are valid this long (they are re-signed every [`REFRESH`]).
pub const DELTA_VALIDITY: i64 = 2 * 3600;
/// Root CRLs are valid this long.
pub const ROOT_CRL_VALIDITY: i64 = 7 * 24 * 3600;
/// CRLs are re-signed at least this often.
pub const REFRESH: Duration = Duration::from_secs(3600);
/// A new base for delta CRLs is chosen this often.
pub const BASE_PERIOD: i64 = 6 * 3600;
/// Revocations arriving within this window share one CRL rebuild.
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// OCSP responses are valid this long and re-signed when half of it has passed.
pub const OCSP_VALIDITY: i64 = 24 * 3600;
/// How long HTTP caches may keep an OCSP response (bounded so revocations show promptly).
pub const OCSP_MAX_AGE: i64 = 300;
/// How often an instance looks for revocations recorded by other instances on the same store.
pub const FOLLOW: Duration = Duration::from_millis(250);
/// Most cached OCSP responses; beyond it an arbitrary entry is dropped.
pub const OCSP_CACHE_CAP: usize = 200_000;
/// Most cached "unknown" answers (serials never issued). Kept apart, so requests for random
/// serials cannot evict the pre-signed answers for real certificates.
pub const OCSP_UNKNOWN_CAP: usize = 4096;
/// Issuances waiting for their OCSP response to be pre-signed, at most.
pub const PRESIGN_QUEUE: usize = 4096;

/// Most pre-signatures whose statuses are read together.
const PRESIGN_BATCH: usize = 128;

/// A signed artifact (CRL or OCSP response) ready to serve.
#[derive(Debug)]
pub struct Published {
    pub der: Vec<u8>,
    pub this_update: i64,
    pub next_update: i64,
    /// Strong validator for HTTP: the SHA-256 of the bytes.
    pub etag: String,
    /// An OCSP response's certificate status ("good", "revoked", "unknown"; "" for CRLs), for
    /// the metrics.
    pub status: &'static str,
}

impl Published {
    fn new(der: Vec<u8>, this_update: i64, next_update: i64) -> Arc<Self> {
        Self::with_status(der, this_update, next_update, "")
    }

    fn with_status(
        der: Vec<u8>,
        this_update: i64,
        next_update: i64,
        status: &'static str,
    ) -> Arc<Self> {
        let etag = format!("\"{}\"", crate::core::fingerprint(&der));
        Arc::new(Published {
            der,
            this_update,
            next_update,
            etag,
            status,
        })
    }
}

/// Which CRL of a CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrlKind {
    /// The full CRL (a root's only one).
    Full,
    /// An issuing CA's delta CRL.
    Delta,
}

/// The CRL a file name under `/crl/` names: `ID.crl` or `ID-delta.crl`.
pub fn crl_file(name: &str) -> Option<(CaId, CrlKind)> {
    let stem = name.strip_suffix(".crl")?;
    let (id, kind) = match stem.strip_suffix("-delta") {
        Some(id) => (id, CrlKind::Delta),
        None => (stem, CrlKind::Full),
    };
    Some((CaId::parse(id).ok()?, kind))
}

#[derive(Debug, Clone)]
struct CrlSet {
    full: Arc<Published>,
    /// Issuing CAs only.
    delta: Option<Arc<Published>>,
    base_number: u64,
    base_seq: i64,
    base_at: i64,
}

/// A CA certificate this server publishes revocation status for.
#[derive(Debug)]
enum CaKind {
    Root(Arc<RootCa>),
    Issuing(Arc<IssuingCa>),
}

/// One CA certificate's publication state.
#[derive(Debug)]
struct Slot {
    id: CaId,
    ca: CaKind,
    identity: CaIdentity,
    crls: RwLock<Option<CrlSet>>,
}

impl Slot {
    fn new(ca: CaKind) -> Arc<Self> {
        let (id, cert) = match &ca {
            CaKind::Root(r) => (r.id.clone(), &r.cert),
            CaKind::Issuing(i) => (i.id.clone(), &i.cert),
        };
        let identity = CaIdentity::new(&cert.subject_der, &cert.public_key);
        Arc::new(Slot {
            id,
            ca,
            identity,
            crls: RwLock::new(None),
        })
    }

    fn is_root(&self) -> bool {
        matches!(self.ca, CaKind::Root(_))
    }

    fn cert(&self) -> &crate::authority::CaCert {
        match &self.ca {
            CaKind::Root(r) => &r.cert,
            CaKind::Issuing(i) => &i.cert,
        }
    }
}

/// A revocation, as platforms watching revocations see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationEvent {
    pub serial: String,
    pub tenant: String,
    pub revoked_at: i64,
    pub reason: Reason,
}

/// An OCSP answer and whether HTTP caches may keep it.
#[derive(Debug)]
pub enum OcspAnswer {
    /// A pre-signed response (no nonce): cacheable.
    Cached(Arc<Published>),
    /// Signed for this request (nonce or several CertIDs), or an error status.
    Fresh(Vec<u8>),
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// CRL and OCSP publication for every CA hierarchy.
#[derive(Debug)]
pub struct Publisher {
    store: Arc<dyn Store>,
    authority: Arc<Authority>,
    /// One per root and per active or retiring issuing CA, following `authority`.
    slots: RwLock<Arc<Vec<Arc<Slot>>>>,
    /// Held while the hierarchies are reloaded.
    reloading: tokio::sync::Mutex<()>,
    /// Told when a CA appeared, so maintenance makes its responder (and TSA) at once.
    new_ca: Notify,
    /// Serial of the credential CA's link certificate (the first root signed it), if any.
    credential_link: Option<Vec<u8>>,
    /// Each issuing CA's delegated responder, set at start, on renewal and by the
    /// maintenance loop for new CAs; until it is there, the CA signs its answers itself
    /// (RFC 6960 §2.6).
    responders: RwLock<HashMap<CaId, WorkingKey>>,
    /// Pre-signed responses by the DER of the request's CertID.
    ocsp_cache: Mutex<ocsp::OcspCache>,
    /// Certificates whose OCSP response is to be pre-signed (bounded: [`PRESIGN_QUEUE`]).
    presign_tx: tokio::sync::mpsc::Sender<(CaId, Vec<u8>)>,
    presign_rx: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<(CaId, Vec<u8>)>>,
    /// Serials queued or being pre-signed.
    presign_pending: std::sync::atomic::AtomicUsize,
    /// Signed "unknown" answers, by CertID DER (small; see [`OCSP_UNKNOWN_CAP`]).
    unknown_cache: Mutex<HashMap<Vec<u8>, Arc<Published>>>,
    /// Set when certificates the first root signed changed (cross-certificates): its CRL is
    /// re-signed next rebuild.
    root_dirty: std::sync::atomic::AtomicBool,
    rebuild: Notify,
    events: broadcast::Sender<RevocationEvent>,
    claims: Mutex<Claims>,
    /// Events counted for the statistics (OCSP answers here; the service adds its own).
    tally: Arc<crate::core::stats::Tally>,
}

/// The health of one CA's current full CRL.
#[derive(Clone, Debug)]
pub struct CrlHealth {
    pub ca: String,
    pub this_update: i64,
    pub next_update: i64,
    pub bytes: usize,
}

/// Which revocations this instance has already published (OCSP, CRL schedule, watchers):
/// each is handled once, whether it was made here or seen in the shared store.
#[derive(Debug, Default)]
struct Claims {
    /// Every position up to this one is handled.
    upto: i64,
    /// Handled positions above `upto`.
    above: std::collections::BTreeSet<i64>,
}

impl Claims {
    /// True the first time a position is claimed.
    fn claim(&mut self, seq: i64) -> bool {
        seq > self.upto && self.above.insert(seq)
    }

    /// Everything up to `seq` is handled.
    fn advance(&mut self, seq: i64) {
        self.upto = self.upto.max(seq);
        self.above = self.above.split_off(&(self.upto + 1));
    }
}

impl Publisher {
    pub fn new(store: Arc<dyn Store>, authority: Arc<Authority>) -> Self {
        let (presign_tx, presign_rx) = tokio::sync::mpsc::channel(PRESIGN_QUEUE);
        let credential_link = authority.credential_link.as_ref().and_then(|link| {
            x509_parser::parse_x509_certificate(link)
                .ok()
                .map(|(_, c)| Serial::from_der_content(c.raw_serial()).as_bytes().to_vec())
        });
        let publisher = Publisher {
            store,
            authority,
            slots: RwLock::new(Arc::new(Vec::new())),
            reloading: tokio::sync::Mutex::new(()),
            new_ca: Notify::new(),
            credential_link,
            responders: RwLock::new(HashMap::new()),
            ocsp_cache: Mutex::new(ocsp::OcspCache::default()),
            presign_tx,
            presign_rx: tokio::sync::Mutex::new(presign_rx),
            presign_pending: std::sync::atomic::AtomicUsize::new(0),
            unknown_cache: Mutex::new(HashMap::new()),
            root_dirty: std::sync::atomic::AtomicBool::new(false),
            rebuild: Notify::new(),
            events: broadcast::channel(1024).0,
            claims: Mutex::new(Claims::default()),
            tally: Arc::default(),
        };
        publisher.sync_slots();
        publisher
    }

    /// Follows the authority's hierarchies: a slot for each CA certificate that publishes,
    /// existing slots (and their CRLs) kept. Returns true if a CA was added (its CRLs are
    /// built by the next [`Publisher::rebuild_crls`]).
    pub fn sync_slots(&self) -> bool {
        let old = self.all_slots();
        let mut added = false;
        let mut slots = Vec::new();
        let mut take = |ca: CaKind, id: &CaId| {
            if slots.iter().any(|s: &Arc<Slot>| &s.id == id) {
                return;
            }
            match old.iter().find(|s| &s.id == id) {
                Some(s) => slots.push(s.clone()),
                None => {
                    added = true;
                    slots.push(Slot::new(ca));
                }
            }
        };
        for h in self.authority.hierarchies().iter() {
            for root in &h.roots {
                take(CaKind::Root(root.clone()), &root.id);
            }
            for ca in h.issuing() {
                take(CaKind::Issuing(ca.clone()), &ca.id);
            }
        }
        if let Ok(mut s) = self.slots.write() {
            *s = Arc::new(slots);
        }
        if added {
            self.rebuild.notify_one();
            self.new_ca.notify_one();
        }
        added
    }

    /// Waits until a CA appears in the hierarchies (added, rotated in, followed from another
    /// instance).
    pub async fn new_ca_appeared(&self) {
        self.new_ca.notified().await
    }

    fn all_slots(&self) -> Arc<Vec<Arc<Slot>>> {
        self.slots.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Sets the CRL gauges (size, thisUpdate, age now) of every CA's latest full CRL.
    pub fn observe_crls(&self) {
        let Some(m) = crate::metrics::get() else {
            return;
        };
        let at = now();
        for h in self.crl_health() {
            let ca = [h.ca.as_str()];
            m.crl_bytes
                .with_label_values(&ca)
                .set(i64::try_from(h.bytes).unwrap_or(i64::MAX));
            m.crl_this_update.with_label_values(&ca).set(h.this_update);
            m.crl_age.with_label_values(&ca).set(at - h.this_update);
        }
    }

    /// Each CA's current full CRL: when it was signed, until when it holds, its size.
    pub fn crl_health(&self) -> Vec<CrlHealth> {
        self.all_slots()
            .iter()
            .filter_map(|slot| {
                let crls = slot.crls.read().ok()?;
                let full = &crls.as_ref()?.full;
                Some(CrlHealth {
                    ca: slot.id.as_str().to_string(),
                    this_update: full.this_update,
                    next_update: full.next_update,
                    bytes: full.der.len(),
                })
            })
            .collect()
    }

    /// The events counted for the statistics since the last flush.
    pub fn tally(&self) -> &Arc<crate::core::stats::Tally> {
        &self.tally
    }

    fn slot(&self, id: &CaId) -> Option<Arc<Slot>> {
        self.all_slots().iter().find(|s| &s.id == id).cloned()
    }

    /// Reads the hierarchies from the store again (after a rotation here or on another
    /// instance), opens new CAs and publishes for them, CRLs included, before returning.
    pub async fn reload_issuers(&self) -> Result<()> {
        // One at a time, each reading the store inside: an older read never lands last.
        let _one = self.reloading.lock().await;
        let records = self.store.issuers().await?;
        self.authority.apply(&records)?;
        if self.sync_slots() {
            self.rebuild_crls().await?;
        }
        Ok(())
    }

    /// Sets an issuing CA's delegated OCSP responder (at start, after renewal, for a new
    /// CA); its cached responses are re-signed lazily.
    pub fn set_responder(&self, ca: &CaId, responder: WorkingKey) {
        if let Ok(mut r) = self.responders.write() {
            r.insert(ca.clone(), responder);
        }
        if let Ok(mut c) = self.ocsp_cache.lock() {
            c.forget_ca(ca);
        }
    }

    /// An issuing CA's delegated responder, if it has one yet.
    pub(super) fn responder(&self, ca: &CaId) -> Option<WorkingKey> {
        self.responders.read().ok()?.get(ca).cloned()
    }

    /// True if an issuing CA that publishes has no delegated responder, or one that expires
    /// within `margin` seconds (the maintenance loop then issues one).
    pub fn responders_due(&self, margin: i64) -> bool {
        let at = now();
        self.all_slots().iter().any(|s| {
            !s.is_root()
                && self
                    .responder(&s.id)
                    .is_none_or(|r| r.not_after - margin < at)
        })
    }

    /// Subscribes to revocations as they are recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<RevocationEvent> {
        self.events.subscribe()
    }

    /// Called after an issuance is durable: queues its OCSP response for pre-signing off the
    /// request path. A full queue drops it (it is signed on first request instead).
    pub fn issued(&self, ca: &CaId, serial: &Serial) {
        // Certificates issued before their CA's responder exists (ecca's own first ones, the
        // first after a rotation) are signed on first request instead.
        if self.responder(ca).is_none() {
            return;
        }
        let job = (ca.clone(), serial.as_bytes().to_vec());
        if self.presign_tx.try_send(job).is_ok() {
            self.presign_pending
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Serials queued or being pre-signed (0: pre-signing has caught up).
    pub fn presign_pending(&self) -> usize {
        self.presign_pending
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Pre-signs queued OCSP responses in batches of up to [`PRESIGN_BATCH`] (one store read
    /// for a batch's statuses). Runs until the process ends.
    pub async fn presign_worker(self: Arc<Self>) {
        let mut queue = self.presign_rx.lock().await;
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < PRESIGN_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            // Counted down even if this task dies mid-batch (the supervisor restarts it).
            let _done = Done(&self.presign_pending, batch.len());
            if let Err(e) = self.presign(&batch).await {
                tracing::warn!(error = %e, "OCSP pre-signing failed");
            }
        }
    }

    /// Called after a revocation is durable: re-signs its OCSP response, schedules the CRLs,
    /// tells watchers.
    pub async fn revoked(&self, record: &CertRecord) {
        if let Some(rev) = record.revocation
            && !self.claim(rev.seq)
        {
            return;
        }
        self.publish_revocation(record).await;
    }

    /// Re-signs a revoked certificate's OCSP response, schedules the CRLs, tells watchers.
    async fn publish_revocation(&self, record: &CertRecord) {
        // Credentials are on no CRL and have no OCSP: the server checks them in its store.
        if record.issuer == Issuer::Issuing {
            match hex::decode(&record.serial) {
                Ok(serial) => {
                    if let Ok(mut cache) = self.ocsp_cache.lock() {
                        cache.forget(&record.ca, &serial);
                    }
                    if let Err(e) = self.presign(&[(record.ca.clone(), serial)]).await {
                        tracing::warn!(error = %e, "OCSP re-signing failed");
                    }
                }
                Err(_) => {
                    tracing::error!(serial = %record.serial, "corrupt serial in a revoked record")
                }
            }
            self.rebuild.notify_one();
        }
        if let Some(rev) = record.revocation {
            let _ = self.events.send(RevocationEvent {
                serial: record.serial.clone(),
                tenant: record.tenant.clone(),
                revoked_at: rev.revoked_at,
                reason: rev.reason,
            });
        }
    }

    fn claim(&self, seq: i64) -> bool {
        self.claims.lock().map(|mut c| c.claim(seq)).unwrap_or(true)
    }

    /// Called after certificates signed by the root changed (cross-certificates issued or
    /// revoked): drops the root's cached OCSP answers and re-signs the CRLs.
    pub fn root_changed(&self) {
        if let Ok(mut cache) = self.ocsp_cache.lock() {
            for slot in self.all_slots().iter().filter(|s| s.is_root()) {
                cache.forget_ca(&slot.id);
            }
        }
        self.root_dirty
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.rebuild.notify_one();
    }
}

/// This server's own CRL and OCSP URLs, answered from memory: verification of our own
/// certificates needs no network (and the server does not fetch from itself).
#[async_trait::async_trait]
impl crate::verify::LocalSource for Publisher {
    async fn answer(&self, url: &str, post: Option<&[u8]>) -> Option<Vec<u8>> {
        use crate::layout::paths;
        let path = url.strip_prefix(self.authority.base_url.as_str())?;
        match (path, post) {
            (paths::OCSP, Some(body)) => Some(match self.ocsp(body).await {
                OcspAnswer::Cached(p) => p.der.clone(),
                OcspAnswer::Fresh(der) => der,
            }),
            (_, None) => {
                let (id, kind) = crl_file(path.strip_prefix("/crl/")?)?;
                self.crl(&id, kind).ok().map(|p| p.der.clone())
            }
            _ => None,
        }
    }
}

/// Counts one queued pre-signature done when dropped.
struct Done<'a>(&'a std::sync::atomic::AtomicUsize, usize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0
            .fetch_sub(self.1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::InitOptions;
    use crate::layout::Layout;
    use crate::store::{IssuanceIntent, SqliteStore};

    #[tokio::test]
    async fn random_serials_do_not_crowd_out_real_answers() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(&dir.path().join("d"));
        let authority = Arc::new(
            Authority::create(
                &layout,
                &InitOptions::default(),
                "http://ca.example.cn",
                None,
            )
            .unwrap(),
        );
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&layout.database()).unwrap());
        let publisher = Publisher::new(store.clone(), authority.clone());
        // The issuing CA answers for itself here (no delegated responder needed).
        publisher.set_responder(
            &CaId::issuing(),
            WorkingKey::open(&layout.issuing_cert(), &layout.issuing_key(), None).unwrap(),
        );
        let serial = Serial::random().unwrap();
        store
            .reserve(IssuanceIntent {
                serial: serial.clone(),
                issuer: Issuer::Issuing,
                ca: CaId::issuing(),
                profile: "p".into(),
                tenant: String::new(),
                subject: "CN=x".into(),
                sans: vec![],
                not_before: 0,
                not_after: i64::MAX / 2,
                actor: "test".into(),
            })
            .await
            .unwrap();
        store.complete(&serial, vec![1], "test").await.unwrap();
        let request =
            |s: &[u8]| crate::core::revcheck::ocsp_request_for(&authority.issuing.der, s).unwrap();
        let real = request(serial.as_bytes());
        let OcspAnswer::Cached(first) = publisher.ocsp(&real).await else {
            panic!("not cached")
        };
        for i in 0..(OCSP_UNKNOWN_CAP as u32 + 100) {
            let mut s = vec![0x42];
            s.extend(i.to_be_bytes());
            publisher.ocsp(&request(&s)).await;
        }
        assert_eq!(publisher.ocsp_cache.lock().unwrap().len(), 1);
        assert!(publisher.unknown_cache.lock().unwrap().len() <= OCSP_UNKNOWN_CAP);
        let OcspAnswer::Cached(again) = publisher.ocsp(&real).await else {
            panic!("not cached")
        };
        assert!(
            Arc::ptr_eq(&first, &again),
            "the real answer was signed again"
        );
    }
}

mod crl;
mod follow;
mod ocsp;
