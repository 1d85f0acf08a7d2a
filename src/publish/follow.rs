//! Following the shared store: revocations, cross-certificate and issuer changes other
//! instances made, published here once each.
use super::*;

/// Rounds of [`FOLLOW`] between looks at the cross-certificates (every 2 s).
const CROSS_EVERY: u64 = 8;
/// Rounds of [`FOLLOW`] between looks at the issuers (every 500 ms: a rotation made on another
/// instance issues here within a second).
const ISSUERS_EVERY: u64 = 2;

impl Publisher {
    /// How many cross-certificates exist and how many are revoked (None if unreadable).
    pub(super) async fn cross_state(&self) -> Option<(usize, usize)> {
        let all = self.store.cross_certs().await.ok()?;
        Some((
            all.len(),
            all.iter().filter(|c| c.revoked.is_some()).count(),
        ))
    }

    /// Each CA certificate of each issuer and its state (None if unreadable).
    pub(super) async fn issuer_state(&self) -> Option<Vec<(CaId, CaState)>> {
        let all = self.store.issuers().await.ok()?;
        Some(
            all.iter()
                .flat_map(|i| i.certs.iter().map(|c| (c.ca_id.clone(), c.state)))
                .collect(),
        )
    }

    /// Publishes revocations recorded by other instances sharing the store: polls the
    /// revocation order every [`FOLLOW`]. Returns at once when this process is the store's
    /// only writer (nothing to follow); otherwise runs until the process ends.
    pub async fn follow(self: Arc<Self>) {
        if !self.store.shared() {
            return;
        }
        // Where publishing starts: the newest position now. Until it can be read nothing is
        // assumed (starting at 0 would publish every revocation ever made again).
        let mut cursor = loop {
            match self.store.revoked_since(i64::MAX, i64::MIN).await {
                Ok((_, max)) => break max,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the revocation position; retrying");
                    tokio::time::sleep(FOLLOW).await;
                }
            }
        };
        if let Ok(mut c) = self.claims.lock() {
            c.advance(cursor);
        }
        let mut cross = self.cross_state().await;
        let mut issuers = self.issuer_state().await;
        for round in 1u64.. {
            tokio::time::sleep(FOLLOW).await;
            // Issuers added, rotated or retired elsewhere: new CAs opened, slots published.
            if round % ISSUERS_EVERY == 0 {
                let now_issuers = self.issuer_state().await;
                if now_issuers.is_some() && now_issuers != issuers {
                    match self.reload_issuers().await {
                        Ok(()) => issuers = now_issuers,
                        Err(e) => tracing::warn!(error = %e, "cannot load changed issuers"),
                    }
                }
            }
            // Cross-certificates issued or revoked elsewhere change what the root answers;
            // rare, so they are compared every CROSS_EVERY rounds, not every one.
            if round % CROSS_EVERY == 0 {
                let now_cross = self.cross_state().await;
                if now_cross.is_some() && now_cross != cross {
                    cross = now_cross;
                    self.root_changed();
                }
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
}
