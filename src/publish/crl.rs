//! CRLs: the issuing CA's full and delta CRLs and the root's, rebuilt on revocation
//! (debounced) and on a schedule.
use super::*;

impl Publisher {
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
    pub(super) async fn root_crl(&self, at: i64) -> Result<Arc<Published>> {
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
