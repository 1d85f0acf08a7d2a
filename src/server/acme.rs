//! Setting up the ACME server: its secret, its settings from `[acme]`, its validator; and
//! the hourly purge of expired orders and authorizations.
use std::sync::Arc;

use crate::acme::{Acme, Settings};
use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::service::Service;
use crate::store::Op;

/// Expired orders and authorizations are kept this long for clients polling late.
const KEEP_EXPIRED_SECS: i64 = 86_400;

/// The data directory's ACME secret (32 random bytes, 0600), made on first use. Copies of the
/// data directory made after it share it, so every instance derives the same EAB keys.
fn secret(layout: &Layout) -> Result<[u8; 32]> {
    use ring::rand::SecureRandom;
    let path = layout.acme_secret();
    match std::fs::read(&path) {
        Ok(bytes) => {
            crate::pemfile::check_private(&path)?;
            bytes.try_into().map_err(|_| {
                Error::Corrupt(format!(
                    "{}: not 32 bytes; restore it from a copy of this data directory",
                    path.display()
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut s = [0u8; 32];
            ring::rand::SystemRandom::new()
                .fill(&mut s)
                .map_err(|_| Error::Internal("no randomness".into()))?;
            crate::pemfile::write_private(&path, &s)?;
            Ok(s)
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// The ACME edge for this configuration.
pub(super) fn prepare(
    config: &ServerConfig,
    layout: &Layout,
    service: &Arc<Service>,
) -> Result<Arc<Acme>> {
    service.set_acme_secret(secret(layout)?);
    let c = &config.acme;
    let defaults = Settings::default();
    let default_profile = c
        .default_profile
        .clone()
        .unwrap_or(defaults.default_profile);
    let names = c
        .profiles
        .clone()
        .unwrap_or_else(|| vec![default_profile.clone()]);
    let mut profiles = Vec::new();
    for name in names.iter().chain(std::iter::once(&default_profile)) {
        let p = service
            .profiles()
            .find(|p| &p.name == name)
            .ok_or_else(|| {
                Error::Config(format!(
                    "[acme] profile {name:?} does not exist; `ecca profiles` lists them"
                ))
            })?;
        if !profiles.iter().any(|(n, _): &(String, String)| n == name) {
            profiles.push((name.clone(), p.description.clone()));
        }
    }
    let external_account_required = c.external_account_required.unwrap_or(true);
    if !external_account_required && c.default_platform.is_none() {
        return Err(Error::Config(
            "[acme] external_account_required = false needs default_platform: the platform whose names, profiles and rate accounts without a binding use".into(),
        ));
    }
    let caa_identities = c.caa_identities.clone().unwrap_or(defaults.caa_identities);
    let validation = crate::validation::Settings {
        resolver: c.dns_resolver,
        http01_port: c.http01_port.unwrap_or(80),
        tlsalpn01_port: c.tlsalpn01_port.unwrap_or(443),
        caa_identities: caa_identities.clone(),
        ..crate::validation::Settings::default()
    };
    let validator = crate::validation::Validator::new(validation)
        .map_err(|e| Error::Config(format!("ACME validation: {e}")))?;
    Ok(Acme::new(
        service.clone(),
        validator,
        Settings {
            external_account_required,
            default_platform: c.default_platform.clone(),
            default_profile,
            profiles,
            base_url: c.base_url.clone(),
            caa_identities,
            per_ip: config.rates.acme_per_ip,
        },
    ))
}

/// Deletes orders and authorizations a day after they expired, every hour.
pub(super) async fn purge(service: Arc<Service>) {
    loop {
        let before = time::OffsetDateTime::now_utc().unix_timestamp() - KEEP_EXPIRED_SECS;
        if let Err(e) = service.store().write(Op::AcmePurge { before }).await {
            tracing::warn!(error = %e, "purging expired ACME orders failed; retrying in an hour");
        }
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}
