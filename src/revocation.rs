//! Publishing revocation: CRLs (full, delta, root) and the OCSP responder, kept pre-signed so
//! the read paths do no signing. Rebuilds run off the request path and never block issuance.
//!
//! Delta CRLs: a "base" full CRL is chosen every [`BASE_PERIOD`]; every rebuild signs a new full
//! CRL (so clients that only read the CDP see revocations within a second) and a delta listing
//! what was revoked after the base (RFC 5280 §5.2.4 lets a delta apply to any full CRL whose
//! number is at least the delta's base number).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use der::Encode;
use tokio::sync::{Notify, broadcast};
use x509_ocsp::{CertId, OcspResponseStatus};

use crate::authority::{Authority, WorkingKey};
use crate::core::ocsp::{self, CaIdentity, Status, Validity};
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

/// A signed artifact (CRL or OCSP response) ready to serve.
#[derive(Debug)]
pub struct Published {
    pub der: Vec<u8>,
    pub this_update: i64,
    pub next_update: i64,
    /// Strong validator for HTTP: the SHA-256 of the bytes.
    pub etag: String,
}

impl Published {
    fn new(der: Vec<u8>, this_update: i64, next_update: i64) -> Arc<Self> {
        let etag = format!("\"{}\"", crate::core::fingerprint(&der));
        Arc::new(Published {
            der,
            this_update,
            next_update,
            etag,
        })
    }
}

/// Which CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrlKind {
    /// The issuing CA's full CRL.
    Full,
    /// The issuing CA's delta CRL.
    Delta,
    /// The root's CRL (covers the issuing CA).
    Root,
}

#[derive(Debug, Clone)]
struct CrlSet {
    full: Arc<Published>,
    delta: Arc<Published>,
    root: Arc<Published>,
    base_number: u64,
    base_seq: i64,
    base_at: i64,
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

/// A cached response: which CA, which serial (for invalidation), the signed bytes.
type CachedOcsp = (Ca, Vec<u8>, Arc<Published>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ca {
    Root,
    Issuing,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// CRL and OCSP publication for one CA hierarchy.
#[derive(Debug)]
pub struct Publisher {
    store: Arc<dyn Store>,
    authority: Arc<Authority>,
    root_id: CaIdentity,
    issuing_id: CaIdentity,
    /// Serials of the CA certificates the root issued (issuing CA, credential-CA link).
    subordinates: Vec<Vec<u8>>,
    /// Set at start (and on renewal); until then the issuing CA's requests get internalError.
    responder: RwLock<Option<WorkingKey>>,
    crls: RwLock<Option<CrlSet>>,
    /// Pre-signed responses by the DER of the request's CertID.
    ocsp_cache: Mutex<HashMap<Vec<u8>, CachedOcsp>>,
    /// Signed "unknown" answers, by CertID DER (small; see [`OCSP_UNKNOWN_CAP`]).
    unknown_cache: Mutex<HashMap<Vec<u8>, Arc<Published>>>,
    /// Set when certificates the root signed changed: the root CRL is re-signed next rebuild.
    root_dirty: std::sync::atomic::AtomicBool,
    rebuild: Notify,
    events: broadcast::Sender<RevocationEvent>,
    claims: Mutex<Claims>,
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
        let root_id = CaIdentity::new(&authority.root.subject_der, &authority.root.public_key);
        let issuing_id = CaIdentity::new(
            &authority.issuing.subject_der,
            &authority.issuing.public_key,
        );
        let mut subordinates = vec![authority.issuing.serial.clone()];
        if let Some(link) = &authority.credential_link {
            subordinates.extend(
                x509_parser::parse_x509_certificate(link)
                    .map(|(_, c)| Serial::from_der_content(c.raw_serial()).as_bytes().to_vec()),
            );
        }
        Publisher {
            store,
            authority,
            root_id,
            issuing_id,
            subordinates,
            responder: RwLock::new(None),
            crls: RwLock::new(None),
            ocsp_cache: Mutex::new(HashMap::new()),
            unknown_cache: Mutex::new(HashMap::new()),
            root_dirty: std::sync::atomic::AtomicBool::new(false),
            rebuild: Notify::new(),
            events: broadcast::channel(1024).0,
            claims: Mutex::new(Claims::default()),
        }
    }

    /// Replaces the delegated OCSP responder (after renewal); cached responses are re-signed lazily.
    pub fn set_responder(&self, responder: WorkingKey) {
        if let Ok(mut r) = self.responder.write() {
            *r = Some(responder);
        }
        if let Ok(mut c) = self.ocsp_cache.lock() {
            c.clear();
        }
    }

    /// When the current delegated responder certificate expires.
    pub fn responder_not_after(&self) -> i64 {
        self.responder
            .read()
            .ok()
            .and_then(|r| r.as_ref().map(|r| r.not_after))
            .unwrap_or(0)
    }

    /// Subscribes to revocations as they are recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<RevocationEvent> {
        self.events.subscribe()
    }

    /// The current CRL of a kind (built at start, so always present once serving).
    pub fn crl(&self, kind: CrlKind) -> Result<Arc<Published>> {
        let crls = self
            .crls
            .read()
            .map_err(|_| Error::Internal("CRL lock poisoned".into()))?;
        let set = crls
            .as_ref()
            .ok_or_else(|| Error::Internal("CRLs not built yet".into()))?;
        Ok(match kind {
            CrlKind::Full => set.full.clone(),
            CrlKind::Delta => set.delta.clone(),
            CrlKind::Root => set.root.clone(),
        })
    }

    /// Called after an issuance is durable: pre-signs its OCSP response off the request path.
    pub fn issued(self: &Arc<Self>, serial: &Serial) {
        // ecca's own first certificates are issued before the responder exists: they are
        // signed on first request instead.
        if self.responder_not_after() == 0 {
            return;
        }
        let me = self.clone();
        let serial = serial.as_bytes().to_vec();
        tokio::spawn(async move {
            if let Err(e) = me.presign(&serial).await {
                tracing::warn!(error = %e, "OCSP pre-signing failed");
            }
        });
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
                        cache.retain(|_, (ca, s, _)| !(*ca == Ca::Issuing && *s == serial));
                    }
                    if let Err(e) = self.presign(&serial).await {
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

    /// How many cross-certificates exist and how many are revoked (None if unreadable).
    async fn cross_state(&self) -> Option<(usize, usize)> {
        let all = self.store.cross_certs().await.ok()?;
        Some((
            all.len(),
            all.iter().filter(|c| c.revoked.is_some()).count(),
        ))
    }

    fn claim(&self, seq: i64) -> bool {
        self.claims.lock().map(|mut c| c.claim(seq)).unwrap_or(true)
    }

    /// Publishes revocations recorded by other instances sharing the store: polls the
    /// revocation order every [`FOLLOW`]. Runs until the process ends.
    pub async fn follow(self: Arc<Self>) {
        let mut cursor = match self.store.revoked_since(i64::MAX, i64::MIN).await {
            Ok((_, max)) => max,
            Err(_) => 0,
        };
        if let Ok(mut c) = self.claims.lock() {
            c.advance(cursor);
        }
        let mut cross = self.cross_state().await;
        loop {
            tokio::time::sleep(FOLLOW).await;
            // Cross-certificates issued or revoked elsewhere change what the root answers.
            let now_cross = self.cross_state().await;
            if now_cross != cross {
                cross = now_cross;
                self.root_changed();
            }
            let (entries, max) = match self.store.revoked_since(cursor, i64::MIN).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read new revocations");
                    continue;
                }
            };
            for (seq, entry) in entries {
                if !self.claim(seq) {
                    continue;
                }
                match self
                    .store
                    .get(&Serial::from_der_content(&entry.serial))
                    .await
                {
                    Ok(Some(record)) => self.publish_revocation(&record).await,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read a revoked certificate"),
                }
            }
            if let Ok(mut c) = self.claims.lock() {
                c.advance(max);
            }
            cursor = max;
        }
    }

    /// Called after certificates signed by the root changed (cross-certificates issued or
    /// revoked): drops the root's cached OCSP answers and re-signs the CRLs.
    pub fn root_changed(&self) {
        if let Ok(mut cache) = self.ocsp_cache.lock() {
            cache.retain(|_, (ca, _, _)| *ca != Ca::Root);
        }
        self.root_dirty
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.rebuild.notify_one();
    }

    /// The canonical CertID (SHA-1, as openssl and most clients send) for one of the issuing CA's serials.
    fn canonical_cert_id(&self, serial: &[u8]) -> Result<CertId> {
        let issuing = &self.authority.issuing;
        let sha1 = |d: &[u8]| {
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, d)
                .as_ref()
                .to_vec()
        };
        let oct =
            |v: Vec<u8>| der::asn1::OctetString::new(v).map_err(|e| Error::Internal(e.to_string()));
        Ok(CertId {
            hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_SHA_1,
                parameters: Some(der::asn1::Null.into()),
            },
            issuer_name_hash: oct(sha1(&issuing.subject_der))?,
            issuer_key_hash: oct(sha1(&issuing.public_key))?,
            serial_number: x509_cert::serial_number::SerialNumber::new(serial)
                .map_err(|e| Error::Internal(e.to_string()))?,
        })
    }

    async fn presign(&self, serial: &[u8]) -> Result<()> {
        let id = self.canonical_cert_id(serial)?;
        self.cached_response(Ca::Issuing, &id, now())
            .await
            .map(drop)
    }

    async fn status(&self, ca: Ca, serial: &[u8]) -> Result<Status> {
        Ok(match ca {
            Ca::Root if self.subordinates.iter().any(|s| s == serial) => Status::Good,
            Ca::Root => {
                // The root also signs cross-certificates for peer CAs.
                let hex = hex::encode(serial);
                let cross = self.store.cross_certs().await?;
                match cross
                    .iter()
                    .find(|c| c.direction == Direction::Issued && c.serial == hex)
                {
                    Some(c) => match c.revoked {
                        Some((at, reason)) => Status::Revoked { at, reason },
                        None => Status::Good,
                    },
                    None => Status::Unknown,
                }
            }
            Ca::Issuing => {
                if serial.is_empty() || serial.len() > 20 {
                    return Ok(Status::Unknown);
                }
                match self.store.get(&Serial::from_der_content(serial)).await? {
                    // The credential CA's certificates are not the issuing CA's to answer for.
                    None => Status::Unknown,
                    Some(r) if r.issuer != Issuer::Issuing => Status::Unknown,
                    Some(r) => match r.revocation {
                        Some(rev) => Status::Revoked {
                            at: rev.revoked_at,
                            reason: rev.reason,
                        },
                        None => Status::Good,
                    },
                }
            }
        })
    }

    fn sign(
        &self,
        ca: Ca,
        answers: &[(CertId, Status)],
        nonce: Option<&x509_cert::ext::Extension>,
        at: i64,
    ) -> Result<Vec<u8>> {
        let times = Validity {
            produced_at: at,
            this_update: at,
            next_update: at + OCSP_VALIDITY,
        };
        match ca {
            // The root answers only about the issuing CA, rarely: it signs its own responses.
            Ca::Root => self.authority.root.sign_ocsp(answers, nonce, times),
            Ca::Issuing => {
                let r = self
                    .responder
                    .read()
                    .map_err(|_| Error::Internal("responder lock poisoned".into()))?
                    .clone()
                    .ok_or_else(|| Error::Internal("no OCSP responder certificate yet".into()))?;
                r.sign_ocsp(answers, nonce, times)
            }
        }
    }

    async fn cached_response(&self, ca: Ca, id: &CertId, at: i64) -> Result<Arc<Published>> {
        let key = id.to_der().map_err(|e| Error::Internal(e.to_string()))?;
        if let Some((_, _, p)) = self
            .ocsp_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
            && at < p.this_update + OCSP_VALIDITY / 2
        {
            return Ok(p);
        }
        if let Some(p) = self
            .unknown_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
            && at < p.this_update + OCSP_VALIDITY / 2
        {
            return Ok(p);
        }
        let serial = ocsp::serial_of(id);
        let published = match self.shared(ca, &key, at).await {
            Some(p) => p,
            None => {
                let status = self.status(ca, &serial).await?;
                if status == Status::Unknown {
                    return self.unknown(ca, id, key, at);
                }
                let der = self.sign(ca, &[(id.clone(), status)], None, at)?;
                if ca == Ca::Issuing && status != Status::Unknown {
                    let response = SharedOcsp {
                        cert_id: &key,
                        serial: &Serial::from_der_content(&serial).hex(),
                        revoked: matches!(status, Status::Revoked { .. }),
                        der: &der,
                        this_update: at,
                    };
                    if let Err(e) = self.store.share_ocsp(response).await {
                        tracing::warn!(error = %e, "cannot share an OCSP response");
                    }
                }
                Published::new(der, at, at + OCSP_VALIDITY)
            }
        };
        if let Ok(mut cache) = self.ocsp_cache.lock() {
            if cache.len() >= OCSP_CACHE_CAP
                && let Some(k) = cache.keys().next().cloned()
            {
                cache.remove(&k);
            }
            cache.insert(key, (ca, serial, published.clone()));
        }
        Ok(published)
    }

    /// An "unknown" answer for a serial never issued, from its own small cache. The root never
    /// signs for strangers: asked about a serial it did not issue, it answers `unauthorized`
    /// (unsigned, RFC 5019 §2.2.3), so anonymous requests cannot make the root key sign.
    fn unknown(&self, ca: Ca, id: &CertId, key: Vec<u8>, at: i64) -> Result<Arc<Published>> {
        let der = match ca {
            Ca::Root => ocsp::error_response(OcspResponseStatus::Unauthorized),
            Ca::Issuing => self.sign(ca, &[(id.clone(), Status::Unknown)], None, at)?,
        };
        let published = Published::new(der, at, at + OCSP_VALIDITY);
        if let Ok(mut cache) = self.unknown_cache.lock() {
            if cache.len() >= OCSP_UNKNOWN_CAP {
                cache.clear();
            }
            cache.insert(key, published.clone());
        }
        Ok(published)
    }

    /// A response another instance pre-signed for this CertID, if still fresh.
    async fn shared(&self, ca: Ca, key: &[u8], at: i64) -> Option<Arc<Published>> {
        if ca != Ca::Issuing {
            return None;
        }
        let (der, this_update) = self.store.shared_ocsp(key).await.ok().flatten()?;
        (at < this_update + OCSP_VALIDITY / 2)
            .then(|| Published::new(der, this_update, this_update + OCSP_VALIDITY))
    }

    fn which_ca(&self, id: &CertId) -> Option<Ca> {
        if self.issuing_id.matches(id) {
            Some(Ca::Issuing)
        } else if self.root_id.matches(id) {
            Some(Ca::Root)
        } else {
            None
        }
    }

    /// Answers a DER OCSP request.
    pub async fn ocsp(&self, request: &[u8]) -> OcspAnswer {
        let Some(req) = ocsp::parse_request(request) else {
            return OcspAnswer::Fresh(ocsp::error_response(OcspResponseStatus::MalformedRequest));
        };
        let cas: Option<Vec<Ca>> = req.cert_ids.iter().map(|id| self.which_ca(id)).collect();
        let Some(cas) = cas else {
            return OcspAnswer::Fresh(ocsp::error_response(OcspResponseStatus::Unauthorized));
        };
        if cas.iter().any(|c| *c != cas[0]) {
            // One response has one signer: ask about one CA at a time.
            return OcspAnswer::Fresh(ocsp::error_response(OcspResponseStatus::MalformedRequest));
        }
        let at = now();
        // The root answers from its cache only: one CertID, any nonce ignored (RFC 8954 lets a
        // responder leave it out), so no request makes the root key sign on demand.
        if cas[0] == Ca::Root {
            if req.cert_ids.len() != 1 {
                return OcspAnswer::Fresh(ocsp::error_response(
                    OcspResponseStatus::MalformedRequest,
                ));
            }
            return self
                .cached_response(Ca::Root, &req.cert_ids[0], at)
                .await
                .map(OcspAnswer::Cached)
                .unwrap_or_else(internal);
        }
        let result = if req.cert_ids.len() == 1 && req.nonce.is_none() {
            self.cached_response(cas[0], &req.cert_ids[0], at)
                .await
                .map(OcspAnswer::Cached)
        } else {
            let mut answers = Vec::with_capacity(req.cert_ids.len());
            for id in &req.cert_ids {
                match self.status(cas[0], &ocsp::serial_of(id)).await {
                    Ok(s) => answers.push((id.clone(), s)),
                    Err(e) => return internal(e),
                }
            }
            self.sign(cas[0], &answers, req.nonce.as_ref(), at)
                .map(OcspAnswer::Fresh)
        };
        result.unwrap_or_else(internal)
    }

    /// Builds every CRL now (at start, and from the refresh loop).
    pub async fn rebuild_crls(&self) -> Result<()> {
        let at = now();
        // Numbers and entries in one step: with instances sharing a database, a higher CRL
        // number never lists fewer revocations.
        let snapshot = self.store.crl_snapshot("issuing", 2, at).await?;
        let max_seq = snapshot.max_seq;
        let (full_number, delta_number) = match snapshot.numbers[..] {
            [full, delta] => (full, delta),
            _ => return Err(Error::Internal("CRL numbers not allocated".into())),
        };
        let previous = self
            .crls
            .read()
            .map_err(|_| Error::Internal("CRL lock poisoned".into()))?
            .clone();
        let (base_number, base_seq, base_at) = match &previous {
            Some(p) if at - p.base_at < BASE_PERIOD => (p.base_number, p.base_seq, p.base_at),
            _ => (full_number, max_seq, at),
        };
        let delta_entries: Vec<RevokedEntry> = snapshot
            .revoked
            .iter()
            .filter(|(seq, _)| *seq > base_seq)
            .map(|(_, e)| e.clone())
            .collect();
        let all: Vec<RevokedEntry> = snapshot.revoked.into_iter().map(|(_, e)| e).collect();
        // Re-signed daily, and at once when a certificate the root signed was revoked.
        let dirty = self
            .root_dirty
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        let root = match &previous {
            Some(p) if !dirty && at < p.root.this_update + ROOT_CRL_VALIDITY / 7 => p.root.clone(),
            _ => match self.root_crl(at).await {
                Ok(r) => r,
                Err(e) => {
                    self.root_dirty
                        .store(dirty, std::sync::atomic::Ordering::SeqCst);
                    return Err(e);
                }
            },
        };
        let authority = self.authority.clone();
        let (full, delta) = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, Vec<u8>)> {
            let issuing = &authority.issuing;
            let delta_url = authority.issuing_delta_url();
            let mut params = CrlParams {
                number: full_number,
                this_update: at,
                next_update: at + CRL_VALIDITY,
                delta_base: None,
                freshest_url: Some(&delta_url),
            };
            let full = issuing.sign_crl(&params, &all)?;
            params.number = delta_number;
            params.next_update = at + DELTA_VALIDITY;
            params.delta_base = Some(base_number);
            params.freshest_url = None;
            let delta = issuing.sign_crl(&params, &delta_entries)?;
            Ok((full, delta))
        })
        .await
        .map_err(|e| Error::Internal(format!("CRL task: {e}")))??;
        let set = CrlSet {
            full: Published::new(full, at, at + CRL_VALIDITY),
            delta: Published::new(delta, at, at + DELTA_VALIDITY),
            root,
            base_number,
            base_seq,
            base_at,
        };
        // Every use of a CA key is audited: these CRL numbers were signed.
        let detail = format!(
            "full={full_number} delta={delta_number} base={base_number} revocations={max_seq}"
        );
        self.store
            .audit_event("ecca", "crl.signed", "issuing", &detail)
            .await?;
        *self
            .crls
            .write()
            .map_err(|_| Error::Internal("CRL lock poisoned".into()))? = Some(set);
        tracing::debug!(full_number, delta_number, base_number, "CRLs published");
        Ok(())
    }

    /// The root's CRL: every unexpired cross-certificate it issued and revoked.
    async fn root_crl(&self, at: i64) -> Result<Arc<Published>> {
        let mut entries = Vec::new();
        for c in self.store.cross_certs().await? {
            if let (Direction::Issued, Some((revoked_at, reason)), true) =
                (c.direction, c.revoked, c.not_after > at)
            {
                let serial = hex::decode(&c.serial).map_err(|_| {
                    Error::Storage(format!("corrupt cross-certificate serial {:?}", c.serial))
                })?;
                entries.push(RevokedEntry {
                    serial,
                    revoked_at,
                    reason,
                    invalidity_date: None,
                });
            }
        }
        let number = self.store.next_crl_number("root").await?;
        let root = &self.authority.root;
        let params = CrlParams {
            number,
            this_update: at,
            next_update: at + ROOT_CRL_VALIDITY,
            delta_base: None,
            freshest_url: None,
        };
        let der = root.sign_crl(&params, &entries)?;
        self.store
            .audit_event(
                "ecca",
                "crl.signed",
                "root",
                &format!("number={number} revocations={}", entries.len()),
            )
            .await?;
        Ok(Published::new(der, at, at + ROOT_CRL_VALIDITY))
    }

    /// Re-signs CRLs on revocation (debounced) and at least every [`REFRESH`]. Runs until the
    /// process ends.
    pub async fn run(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.rebuild.notified() => tokio::time::sleep(DEBOUNCE).await,
                _ = tokio::time::sleep(REFRESH) => {}
            }
            if let Err(e) = self.rebuild_crls().await {
                tracing::error!(error = %e, "CRL rebuild failed; retrying in 10 s");
                tokio::time::sleep(Duration::from_secs(10)).await;
                self.rebuild.notify_one();
            }
        }
    }
}

fn internal(e: Error) -> OcspAnswer {
    tracing::error!(error = %e, "OCSP responder error");
    OcspAnswer::Fresh(ocsp::error_response(OcspResponseStatus::InternalError))
}

/// This server's own CRL and OCSP URLs, answered from memory: verification of our own
/// certificates needs no network (and the server does not fetch from itself).
#[async_trait::async_trait]
impl crate::verify::LocalSource for Publisher {
    async fn answer(&self, url: &str, post: Option<&[u8]>) -> Option<Vec<u8>> {
        use crate::layout::paths;
        let path = url.strip_prefix(self.authority.base_url.as_str())?;
        let crl = |kind| self.crl(kind).ok().map(|p| p.der.clone());
        let ocsp = |answer: OcspAnswer| match answer {
            OcspAnswer::Cached(p) => p.der.clone(),
            OcspAnswer::Fresh(der) => der,
        };
        match (path, post) {
            (paths::ISSUING_CRL, None) => crl(CrlKind::Full),
            (paths::ISSUING_DELTA_CRL, None) => crl(CrlKind::Delta),
            (paths::ROOT_CRL, None) => crl(CrlKind::Root),
            (paths::OCSP, Some(body)) => Some(ocsp(self.ocsp(body).await)),
            _ => None,
        }
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
            WorkingKey::open(&layout.issuing_cert(), &layout.issuing_key(), None).unwrap(),
        );
        let serial = Serial::random().unwrap();
        store
            .reserve(IssuanceIntent {
                serial: serial.clone(),
                issuer: Issuer::Issuing,
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
