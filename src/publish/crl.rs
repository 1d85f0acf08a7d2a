//! CRLs: each issuing CA's full and delta CRLs and each root's, rebuilt on revocation
//! (debounced) and on a schedule.
use super::*;

impl Publisher {
    /// The current CRL of a CA (built at start, so always present once serving).
    pub fn crl(&self, ca: &CaId, kind: CrlKind) -> Result<Arc<Published>> {
        let slot = self
            .slot(ca)
            .ok_or_else(|| Error::NotFound(format!("CRL of CA {ca}")))?;
        let crls = slot
            .crls
            .read()
            .map_err(|_| Error::Internal("CRL lock poisoned".into()))?;
        let set = crls
            .as_ref()
            .ok_or_else(|| Error::Internal("CRLs not built yet".into()))?;
        match kind {
            CrlKind::Full => Ok(set.full.clone()),
            CrlKind::Delta => set
                .delta
                .clone()
                .ok_or_else(|| Error::NotFound(format!("delta CRL of root {ca}"))),
        }
    }

    /// Builds every CA's CRLs now (at start, and from the refresh loop); a root's only when
    /// due or changed.
    pub async fn rebuild_crls(&self) -> Result<()> {
        let at = now();
        let dirty = self
            .root_dirty
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        let mut first_error = None;
        for slot in self.all_slots().iter() {
            let result = match &slot.ca {
                CaKind::Issuing(ca) => self.issuing_crls(slot, ca, at).await,
                CaKind::Root(_) => self.root_crl(slot, at, dirty).await,
            };
            if let Err(e) = result {
                tracing::error!(ca = %slot.id, error = %e, "CRL rebuild failed");
                first_error.get_or_insert(e);
            }
        }
        if first_error.is_some() && dirty {
            self.root_dirty
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// An issuing CA's full and delta CRLs.
    async fn issuing_crls(&self, slot: &Slot, ca: &Arc<IssuingCa>, at: i64) -> Result<()> {
        // Numbers and entries in one step: with instances sharing a database, a higher CRL
        // number never lists fewer revocations.
        let snapshot = self.store.crl_snapshot(slot.id.as_str(), 2, at).await?;
        let max_seq = snapshot.max_seq;
        let (full_number, delta_number) = match snapshot.numbers[..] {
            [full, delta] => (full, delta),
            _ => return Err(Error::Internal("CRL numbers not allocated".into())),
        };
        let previous = slot
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
        let all_len = all.len();
        let issuing = ca.clone();
        let (full, delta) = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, Vec<u8>)> {
            let mut params = CrlParams {
                number: full_number,
                this_update: at,
                next_update: at + CRL_VALIDITY,
                delta_base: None,
                freshest_url: Some(&issuing.delta_url),
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
        if let Some(m) = crate::metrics::get() {
            m.crl_entries
                .with_label_values(&[slot.id.as_str()])
                .set(i64::try_from(all_len).unwrap_or(i64::MAX));
        }
        let set = CrlSet {
            full: Published::new(full, at, at + CRL_VALIDITY),
            delta: Some(Published::new(delta, at, at + DELTA_VALIDITY)),
            base_number,
            base_seq,
            base_at,
        };
        // Every use of a CA key is audited: these CRL numbers were signed.
        let detail = format!(
            "full={full_number} delta={delta_number} base={base_number} revocations={max_seq}"
        );
        self.store
            .audit_event("ecca", "crl.signed", slot.id.as_str(), &detail)
            .await?;
        *slot
            .crls
            .write()
            .map_err(|_| Error::Internal("CRL lock poisoned".into()))? = Some(set);
        tracing::debug!(ca = %slot.id, full_number, delta_number, base_number, "CRLs published");
        Ok(())
    }

    /// A root's CRL, re-signed daily and at once when `dirty`: it lists every unexpired
    /// cross-certificate it issued and revoked; the CA certificates our roots issued are ours
    /// and are retired, not revoked.
    async fn root_crl(&self, slot: &Slot, at: i64, dirty: bool) -> Result<()> {
        let fresh = slot.crls.read().ok().and_then(|c| {
            c.as_ref()
                .map(|c| at < c.full.this_update + ROOT_CRL_VALIDITY / 7)
        });
        if fresh == Some(true) && !dirty {
            return Ok(());
        }
        let mut entries = Vec::new();
        for c in self.store.cross_certs().await? {
            if c.ca != slot.id {
                continue;
            }
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
        let number = self.store.next_crl_number(slot.id.as_str()).await?;
        let params = CrlParams {
            number,
            this_update: at,
            next_update: at + ROOT_CRL_VALIDITY,
            delta_base: None,
            freshest_url: None,
        };
        let der = slot.cert().sign_crl(&params, &entries)?;
        if let Some(m) = crate::metrics::get() {
            m.crl_entries
                .with_label_values(&[slot.id.as_str()])
                .set(i64::try_from(entries.len()).unwrap_or(i64::MAX));
        }
        self.store
            .audit_event(
                "ecca",
                "crl.signed",
                slot.id.as_str(),
                &format!("number={number} revocations={}", entries.len()),
            )
            .await?;
        *slot
            .crls
            .write()
            .map_err(|_| Error::Internal("CRL lock poisoned".into()))? = Some(CrlSet {
            full: Published::new(der, at, at + ROOT_CRL_VALIDITY),
            delta: None,
            base_number: number,
            base_seq: 0,
            base_at: at,
        });
        Ok(())
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
