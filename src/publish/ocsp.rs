//! The OCSP responder: pre-signed answers for each issuing CA's certificates (cached, shared
//! between instances), fresh ones for nonces, and each root's answers for what it issued.
use super::*;
use crate::core::ocsp;

/// What an issuing CA answers about a serial, given its issued record (if any). Another CA's
/// certificate (the credential CA's, another hierarchy's, a predecessor's) is not this CA's
/// to answer for.
fn issued_status(slot: &Slot, record: Option<&CertRecord>) -> Status {
    match record {
        None => Status::Unknown,
        Some(r) if r.issuer != Issuer::Issuing || r.ca != slot.id => Status::Unknown,
        Some(r) => match r.revocation {
            Some(rev) => Status::Revoked {
                at: rev.revoked_at,
                reason: rev.reason,
            },
            None => Status::Good,
        },
    }
}

impl Publisher {
    /// The canonical CertID (SHA-1, as openssl and most clients send) for one of a CA's serials.
    pub(super) fn canonical_cert_id(&self, slot: &Slot, serial: &[u8]) -> Result<CertId> {
        let ca = slot.cert();
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
            issuer_name_hash: oct(sha1(&ca.subject_der))?,
            issuer_key_hash: oct(sha1(&ca.public_key))?,
            serial_number: x509_cert::serial_number::SerialNumber::new(serial)
                .map_err(|e| Error::Internal(e.to_string()))?,
        })
    }

    /// Pre-signs the answers about a batch of CAs' certificates, their statuses read from the
    /// store at once (nothing for a CA no longer published: retired).
    pub(super) async fn presign(&self, jobs: &[(CaId, Vec<u8>)]) -> Result<()> {
        let serials = jobs
            .iter()
            .map(|(_, s)| Serial::from_der_content(s))
            .collect();
        let records: std::collections::HashMap<String, CertRecord> = self
            .store
            .get_many(serials)
            .await?
            .into_iter()
            .map(|r| (r.serial.clone(), r))
            .collect();
        let at = now();
        for (ca, serial) in jobs {
            let Some(slot) = self.slot(ca) else {
                continue;
            };
            let id = self.canonical_cert_id(&slot, serial)?;
            let record = records.get(&Serial::from_der_content(serial).hex());
            let status = issued_status(&slot, record);
            self.respond(&slot, &id, at, Some(status)).await?;
            // One signature at a time: a batch does not hold a runtime thread from requests.
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    pub(super) async fn status(&self, slot: &Slot, serial: &[u8]) -> Result<Status> {
        if serial.is_empty() || serial.len() > 20 {
            return Ok(Status::Unknown);
        }
        Ok(match &slot.ca {
            CaKind::Root(_) if self.subordinate(slot, serial) => Status::Good,
            CaKind::Root(_) => {
                // A root also signs cross-certificates for peer CAs.
                let hex = hex::encode(serial);
                let cross = self.store.cross_certs().await?;
                match cross.iter().find(|c| {
                    c.direction == Direction::Issued && c.serial == hex && c.ca == slot.id
                }) {
                    Some(c) => match c.revoked {
                        Some((at, reason)) => Status::Revoked { at, reason },
                        None => Status::Good,
                    },
                    None => Status::Unknown,
                }
            }
            CaKind::Issuing(_) => {
                let record = self.store.get(&Serial::from_der_content(serial)).await?;
                issued_status(slot, record.as_ref())
            }
        })
    }

    /// True for the CA certificates a root issued and that are in force: its issuing CAs,
    /// the link certificates it signed, and for the first root the credential CA's link.
    fn subordinate(&self, slot: &Slot, serial: &[u8]) -> bool {
        if slot.id == CaId::root() && self.credential_link.as_deref() == Some(serial) {
            return true;
        }
        self.authority.hierarchies().iter().any(|h| {
            h.issuing()
                .any(|c| c.root.id == slot.id && c.serial == serial)
                || h.links
                    .iter()
                    .any(|l| l.parent == slot.id && l.serial == serial)
        })
    }

    pub(super) fn sign(
        &self,
        slot: &Slot,
        answers: &[(CertId, Status)],
        nonce: Option<&x509_cert::ext::Extension>,
        at: i64,
    ) -> Result<Vec<u8>> {
        let times = Validity {
            produced_at: at,
            this_update: at,
            next_update: at + OCSP_VALIDITY,
        };
        // An issuing CA answers through its delegated responder; roots answer rarely (about
        // their CA certificates) and sign themselves, as does an issuing CA whose responder
        // is not made yet (RFC 6960 §2.6: the CA itself).
        match self.responder(&slot.id).filter(|_| !slot.is_root()) {
            Some(r) => r.sign_ocsp(answers, nonce, times),
            None => slot.cert().sign_ocsp(answers, nonce, times),
        }
    }

    pub(super) async fn cached_response(
        &self,
        slot: &Slot,
        id: &CertId,
        at: i64,
    ) -> Result<(Arc<Published>, bool)> {
        self.respond(slot, id, at, None).await
    }

    /// The cached response for `id` if still fresh, else a new one signed for `known` (the
    /// status, when the caller has read it) or for the status read now.
    async fn respond(
        &self,
        slot: &Slot,
        id: &CertId,
        at: i64,
        known: Option<Status>,
    ) -> Result<(Arc<Published>, bool)> {
        let key = id.to_der().map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(p) = self
            .ocsp_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&slot.id, &key))
            && at < p.this_update + OCSP_VALIDITY / 2
        {
            return Ok((p, true));
        }
        if let Some(p) = self
            .unknown_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
            && at < p.this_update + OCSP_VALIDITY / 2
        {
            return Ok((p, true));
        }
        let serial = ocsp::serial_of(id);
        let published = match self.shared(slot, &key, at).await {
            Some(p) => p,
            None => {
                let status = match known {
                    Some(status) => status,
                    None => self.status(slot, &serial).await?,
                };
                if status == Status::Unknown {
                    return Ok((self.unknown(slot, id, key, at)?, false));
                }
                let der = self.sign(slot, &[(id.clone(), status)], None, at)?;
                if !slot.is_root() {
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
                Published::with_status(der, at, at + OCSP_VALIDITY, status_label(&status))
            }
        };
        if let Ok(mut cache) = self.ocsp_cache.lock() {
            cache.insert(&slot.id, key, serial, published.clone());
        }
        Ok((published, false))
    }

    /// An "unknown" answer for a serial never issued, from its own small cache. A root never
    /// signs for strangers: asked about a serial it did not issue, it answers `unauthorized`
    /// (unsigned, RFC 5019 §2.2.3), so anonymous requests cannot make a root key sign.
    pub(super) fn unknown(
        &self,
        slot: &Slot,
        id: &CertId,
        key: Vec<u8>,
        at: i64,
    ) -> Result<Arc<Published>> {
        let der = if slot.is_root() {
            ocsp::error_response(OcspResponseStatus::Unauthorized)
        } else {
            self.sign(slot, &[(id.clone(), Status::Unknown)], None, at)?
        };
        let label = if slot.is_root() {
            "unauthorized"
        } else {
            "unknown"
        };
        let published = Published::with_status(der, at, at + OCSP_VALIDITY, label);
        if let Ok(mut cache) = self.unknown_cache.lock() {
            if cache.len() >= OCSP_UNKNOWN_CAP {
                cache.clear();
            }
            cache.insert(key, published.clone());
        }
        Ok(published)
    }

    /// A response another instance pre-signed for this CertID, if still fresh.
    pub(super) async fn shared(&self, slot: &Slot, key: &[u8], at: i64) -> Option<Arc<Published>> {
        if slot.is_root() {
            return None;
        }
        let (der, this_update) = self.store.shared_ocsp(key).await.ok().flatten()?;
        (at < this_update + OCSP_VALIDITY / 2).then(|| {
            let status = ocsp::first_status(&der).map_or("", |s| status_label(&s));
            Published::with_status(der, this_update, this_update + OCSP_VALIDITY, status)
        })
    }

    pub(super) fn which_ca(&self, id: &CertId) -> Option<Arc<Slot>> {
        self.all_slots()
            .iter()
            .find(|s| s.identity.matches(id))
            .cloned()
    }

    /// Answers a DER OCSP request (counted by status).
    pub async fn ocsp(&self, request: &[u8]) -> OcspAnswer {
        let (answer, status) = self.answer(request).await;
        let status = match &answer {
            OcspAnswer::Cached(p) => p.status,
            OcspAnswer::Fresh(_) => status,
        };
        if let Some(m) = crate::metrics::get() {
            m.ocsp_responses.with_label_values(&[status]).inc();
        }
        self.tally
            .count_fixed(crate::core::stats::kind::OCSP, status);
        answer
    }

    /// A single-certificate answer from the cache, counted as a hit or a miss.
    async fn answer_cached(&self, slot: &Slot, id: &CertId, at: i64) -> (OcspAnswer, &'static str) {
        match self.cached_response(slot, id, at).await {
            Ok((p, hit)) => {
                if let Some(m) = crate::metrics::get() {
                    let result = if hit { "hit" } else { "miss" };
                    m.ocsp_cache.with_label_values(&[result]).inc();
                }
                (OcspAnswer::Cached(p), "")
            }
            Err(e) => internal(e),
        }
    }

    /// The answer and, for a fresh one, its status label.
    async fn answer(&self, request: &[u8]) -> (OcspAnswer, &'static str) {
        let Some(req) = ocsp::parse_request(request) else {
            return refusal(OcspResponseStatus::MalformedRequest);
        };
        let cas: Option<Vec<Arc<Slot>>> = req.cert_ids.iter().map(|id| self.which_ca(id)).collect();
        let Some(cas) = cas else {
            return refusal(OcspResponseStatus::Unauthorized);
        };
        let slot = cas[0].clone();
        if cas.iter().any(|c| c.id != slot.id) {
            // One response has one signer: ask about one CA at a time.
            return refusal(OcspResponseStatus::MalformedRequest);
        }
        let at = now();
        // A root answers from its cache only: one CertID, any nonce ignored (RFC 8954 lets a
        // responder leave it out), so no request makes a root key sign on demand.
        if slot.is_root() {
            if req.cert_ids.len() != 1 {
                return refusal(OcspResponseStatus::MalformedRequest);
            }
            return self.answer_cached(&slot, &req.cert_ids[0], at).await;
        }
        if req.cert_ids.len() == 1 && req.nonce.is_none() {
            return self.answer_cached(&slot, &req.cert_ids[0], at).await;
        }
        let mut answers = Vec::with_capacity(req.cert_ids.len());
        for id in &req.cert_ids {
            match self.status(&slot, &ocsp::serial_of(id)).await {
                Ok(s) => answers.push((id.clone(), s)),
                Err(e) => return internal(e),
            }
        }
        let label = answers.first().map_or("", |(_, s)| status_label(s));
        match self.sign(&slot, &answers, req.nonce.as_ref(), at) {
            Ok(der) => (OcspAnswer::Fresh(der), label),
            Err(e) => internal(e),
        }
    }
}

fn internal(e: Error) -> (OcspAnswer, &'static str) {
    tracing::error!(error = %e, "OCSP responder error");
    refusal(OcspResponseStatus::InternalError)
}

/// An unsigned error response, labelled with its RFC 6960 status name.
fn refusal(status: OcspResponseStatus) -> (OcspAnswer, &'static str) {
    let label = match status {
        OcspResponseStatus::MalformedRequest => "malformedRequest",
        OcspResponseStatus::Unauthorized => "unauthorized",
        OcspResponseStatus::TryLater => "tryLater",
        _ => "internalError",
    };
    (OcspAnswer::Fresh(ocsp::error_response(status)), label)
}

fn status_label(status: &Status) -> &'static str {
    match status {
        Status::Good => "good",
        Status::Revoked { .. } => "revoked",
        Status::Unknown => "unknown",
    }
}

/// One CA's pre-signed responses by CertID DER, indexed by serial.
#[derive(Debug, Default)]
struct PerCa {
    by_id: HashMap<Vec<u8>, (Vec<u8>, Arc<Published>)>,
    by_serial: HashMap<Vec<u8>, Vec<Vec<u8>>>,
}

/// Pre-signed OCSP responses per CA: a revocation drops its serial's entries, a change to
/// what a root signed drops the root's, without scanning the cache. At most
/// [`OCSP_CACHE_CAP`] responses per CA; past that one is dropped (it is signed again when
/// asked for).
#[derive(Debug, Default)]
pub(super) struct OcspCache {
    per: HashMap<CaId, PerCa>,
}

impl OcspCache {
    pub(super) fn get(&self, ca: &CaId, key: &[u8]) -> Option<Arc<Published>> {
        self.per.get(ca)?.by_id.get(key).map(|(_, p)| p.clone())
    }

    pub(super) fn insert(&mut self, ca: &CaId, key: Vec<u8>, serial: Vec<u8>, p: Arc<Published>) {
        let per = self.per.entry(ca.clone()).or_default();
        if per.by_id.len() >= OCSP_CACHE_CAP
            && !per.by_id.contains_key(&key)
            && let Some(old) = per.by_id.keys().next().cloned()
            && let Some((old_serial, _)) = per.by_id.remove(&old)
            && let Some(ids) = per.by_serial.get_mut(&old_serial)
        {
            ids.retain(|k| *k != old);
        }
        let ids = per.by_serial.entry(serial.clone()).or_default();
        if !ids.contains(&key) {
            ids.push(key.clone());
        }
        per.by_id.insert(key, (serial, p));
    }

    /// Drops the responses about one serial.
    pub(super) fn forget(&mut self, ca: &CaId, serial: &[u8]) {
        if let Some(per) = self.per.get_mut(ca) {
            for key in per.by_serial.remove(serial).unwrap_or_default() {
                per.by_id.remove(&key);
            }
        }
    }

    /// Drops every response of one CA.
    pub(super) fn forget_ca(&mut self, ca: &CaId) {
        self.per.remove(ca);
    }

    /// Responses held, all CAs.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.per.values().map(|p| p.by_id.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_forgets_by_serial_and_by_ca() {
        let mut c = OcspCache::default();
        let p = Published::new(vec![1], 0, 1);
        let (issuing, root) = (CaId::issuing(), CaId::root());
        c.insert(&issuing, b"id-a1".to_vec(), b"a".to_vec(), p.clone());
        c.insert(&issuing, b"id-a2".to_vec(), b"a".to_vec(), p.clone());
        c.insert(&issuing, b"id-b".to_vec(), b"b".to_vec(), p.clone());
        c.insert(&root, b"id-r".to_vec(), b"r".to_vec(), p.clone());
        assert_eq!(c.len(), 4);
        c.forget(&issuing, b"a");
        assert!(c.get(&issuing, b"id-a1").is_none() && c.get(&issuing, b"id-a2").is_none());
        assert!(c.get(&issuing, b"id-b").is_some());
        c.forget_ca(&root);
        assert!(c.get(&root, b"id-r").is_none());
        assert_eq!(c.len(), 1);
    }
}
