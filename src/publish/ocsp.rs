//! The OCSP responder: pre-signed answers for the issuing CA's certificates (cached, shared
//! between instances), fresh ones for nonces, and the root's answers for what it issued.
use super::*;
use crate::core::ocsp;

impl Publisher {
    /// The canonical CertID (SHA-1, as openssl and most clients send) for one of the issuing CA's serials.
    pub(super) fn canonical_cert_id(&self, serial: &[u8]) -> Result<CertId> {
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

    pub(super) async fn presign(&self, serial: &[u8]) -> Result<()> {
        let id = self.canonical_cert_id(serial)?;
        self.cached_response(Ca::Issuing, &id, now())
            .await
            .map(drop)
    }

    pub(super) async fn status(&self, ca: Ca, serial: &[u8]) -> Result<Status> {
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

    pub(super) fn sign(
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

    pub(super) async fn cached_response(
        &self,
        ca: Ca,
        id: &CertId,
        at: i64,
    ) -> Result<Arc<Published>> {
        let key = id.to_der().map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(p) = self.ocsp_cache.lock().ok().and_then(|c| c.get(ca, &key))
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
            cache.insert(ca, key, serial, published.clone());
        }
        Ok(published)
    }

    /// An "unknown" answer for a serial never issued, from its own small cache. The root never
    /// signs for strangers: asked about a serial it did not issue, it answers `unauthorized`
    /// (unsigned, RFC 5019 §2.2.3), so anonymous requests cannot make the root key sign.
    pub(super) fn unknown(
        &self,
        ca: Ca,
        id: &CertId,
        key: Vec<u8>,
        at: i64,
    ) -> Result<Arc<Published>> {
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
    pub(super) async fn shared(&self, ca: Ca, key: &[u8], at: i64) -> Option<Arc<Published>> {
        if ca != Ca::Issuing {
            return None;
        }
        let (der, this_update) = self.store.shared_ocsp(key).await.ok().flatten()?;
        (at < this_update + OCSP_VALIDITY / 2)
            .then(|| Published::new(der, this_update, this_update + OCSP_VALIDITY))
    }

    pub(super) fn which_ca(&self, id: &CertId) -> Option<Ca> {
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
}

fn internal(e: Error) -> OcspAnswer {
    tracing::error!(error = %e, "OCSP responder error");
    OcspAnswer::Fresh(ocsp::error_response(OcspResponseStatus::InternalError))
}

/// One CA's pre-signed responses by CertID DER, indexed by serial.
#[derive(Debug, Default)]
struct PerCa {
    by_id: HashMap<Vec<u8>, (Vec<u8>, Arc<Published>)>,
    by_serial: HashMap<Vec<u8>, Vec<Vec<u8>>>,
}

/// Pre-signed OCSP responses: a revocation drops its serial's entries, a change to what the
/// root signed drops the root's, without scanning the cache. At most [`OCSP_CACHE_CAP`]
/// responses per CA; past that one is dropped (it is signed again when asked for).
#[derive(Debug, Default)]
pub(super) struct OcspCache {
    root: PerCa,
    issuing: PerCa,
}

impl OcspCache {
    fn of(&mut self, ca: Ca) -> &mut PerCa {
        match ca {
            Ca::Root => &mut self.root,
            Ca::Issuing => &mut self.issuing,
        }
    }

    pub(super) fn get(&self, ca: Ca, key: &[u8]) -> Option<Arc<Published>> {
        let per = match ca {
            Ca::Root => &self.root,
            Ca::Issuing => &self.issuing,
        };
        per.by_id.get(key).map(|(_, p)| p.clone())
    }

    pub(super) fn insert(&mut self, ca: Ca, key: Vec<u8>, serial: Vec<u8>, p: Arc<Published>) {
        let per = self.of(ca);
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
    pub(super) fn forget(&mut self, ca: Ca, serial: &[u8]) {
        let per = self.of(ca);
        for key in per.by_serial.remove(serial).unwrap_or_default() {
            per.by_id.remove(&key);
        }
    }

    /// Drops every response of one CA.
    pub(super) fn forget_ca(&mut self, ca: Ca) {
        *self.of(ca) = PerCa::default();
    }

    pub(super) fn clear(&mut self) {
        *self = OcspCache::default();
    }

    /// Responses held, both CAs.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.root.by_id.len() + self.issuing.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_forgets_by_serial_and_by_ca() {
        let mut c = OcspCache::default();
        let p = Published::new(vec![1], 0, 1);
        c.insert(Ca::Issuing, b"id-a1".to_vec(), b"a".to_vec(), p.clone());
        c.insert(Ca::Issuing, b"id-a2".to_vec(), b"a".to_vec(), p.clone());
        c.insert(Ca::Issuing, b"id-b".to_vec(), b"b".to_vec(), p.clone());
        c.insert(Ca::Root, b"id-r".to_vec(), b"r".to_vec(), p.clone());
        assert_eq!(c.len(), 4);
        c.forget(Ca::Issuing, b"a");
        assert!(c.get(Ca::Issuing, b"id-a1").is_none() && c.get(Ca::Issuing, b"id-a2").is_none());
        assert!(c.get(Ca::Issuing, b"id-b").is_some());
        c.forget_ca(Ca::Root);
        assert!(c.get(Ca::Root, b"id-r").is_none());
        assert_eq!(c.len(), 1);
    }
}
