//! CA hierarchies (issuers) as managed objects. Today there is one, the data directory's,
//! recorded in the store as `default` on start; profiles name the issuer they sign under.
use crate::auth::{Action, Caller};
use crate::authority::Authority;
use crate::core::profile::Profiles;
use crate::core::records::{DEFAULT_ISSUER, IssuerRecord};
use crate::error::{Error, Result};
use crate::service::Service;
use crate::store::Store;

impl Service {
    /// Every issuer with its CA certificates (admins and auditors).
    pub async fn issuers(&self, caller: &Caller) -> Result<Vec<IssuerRecord>> {
        caller.may(Action::ListIssuers)?;
        self.store.issuers().await
    }

    /// One issuer by name.
    pub async fn issuer(&self, caller: &Caller, name: &str) -> Result<IssuerRecord> {
        let mut all = self.issuers(caller).await?;
        match all.iter().position(|i| i.name == name) {
            Some(i) => Ok(all.swap_remove(i)),
            None => {
                let known: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
                Err(Error::NotFound(format!(
                    "issuer {name:?} (known: {})",
                    known.join(", ")
                )))
            }
        }
    }
}

/// Refuses profiles that name an issuer the store does not hold (`default` always exists:
/// every start records it).
pub(crate) async fn check_profiles(store: &dyn Store, profiles: &Profiles) -> Result<()> {
    let mut known: Vec<String> = store.issuers().await?.into_iter().map(|i| i.name).collect();
    if !known.iter().any(|n| n == DEFAULT_ISSUER) {
        known.insert(0, DEFAULT_ISSUER.into());
    }
    for p in profiles.iter() {
        if !known.contains(&p.issuer) {
            return Err(Error::Config(format!(
                "profile {}: key `issuer`: no issuer named {:?} (issuers: {}); `ecca issuer list` shows them",
                p.name,
                p.issuer,
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// Records the data directory's hierarchy as issuer `default` (once, whichever instance
/// starts first) and refuses to start when the store's `default` holds other CA
/// certificates: a data directory from another CA pointed at this database.
pub(crate) async fn record_default(store: &dyn Store, authority: &Authority) -> Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ours = authority.default_issuer(now)?;
    store.add_issuer(ours.clone(), "ecca").await?;
    let stored = store
        .issuers()
        .await?
        .into_iter()
        .find(|i| i.name == DEFAULT_ISSUER)
        .ok_or_else(|| Error::Internal("issuer `default` was not recorded".into()))?;
    for cert in &ours.certs {
        if !stored.certs.iter().any(|c| c.sha256 == cert.sha256) {
            return Err(Error::Config(format!(
                "the store's issuer `default` does not hold this data directory's {} CA ({}, sha256 {}); is this data directory from another CA?",
                cert.role.as_str(),
                cert.subject,
                cert.sha256
            )));
        }
    }
    Ok(())
}
