//! Platforms (tenants) and what they may do, credentials for them and for auditors, rate
//! limits, and the audit log's signed checkpoints.
use std::collections::HashMap;
use std::net::IpAddr;

use time::OffsetDateTime;

use super::{Internal, Service};
use crate::auth::{Action, Caller};
use crate::core::csr::Attr;
use crate::core::issue::Names;
use crate::error::{Error, Result};
use crate::store::{AuditEntry, Checkpoint, Credential, PlatformRecord, Role};

/// A platform to create.
#[derive(Clone, Debug, Default)]
pub struct PlatformSpec {
    pub name: String,
    pub dns_suffixes: Vec<String>,
    pub ip_ranges: Vec<String>,
    pub profiles: Vec<String>,
    pub max_days: Option<u32>,
    pub rate_per_min: Option<u32>,
    /// Subject O values the platform may use.
    pub organizations: Vec<String>,
    /// Unified Social Credit Codes the platform may use.
    pub usccs: Vec<String>,
    /// Free-text CN/OU values (a trailing `*` matches any continuation).
    pub names: Vec<String>,
}

/// A credential issued for a caller's CSR: its certificate, the chain, and the CA the
/// server's own certificate chains to (ca.pem): the credential CA.
#[derive(Clone, Debug)]
pub struct IssuedCredential {
    pub serial: String,
    pub cert_der: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
    pub ca_der: Vec<u8>,
}

/// Requests per platform in the current one-minute window, and issuances in flight.
#[derive(Debug, Default)]
pub(super) struct RateWindows {
    windows: HashMap<String, (i64, u32)>,
    inflight: HashMap<String, std::sync::Arc<tokio::sync::Semaphore>>,
}

/// Most issuances one platform may have in flight at once (the rest wait their turn at the
/// client, with RESOURCE_EXHAUSTED, instead of crowding out other tenants).
pub const TENANT_CONCURRENCY: usize = 64;

fn cidr(s: &str) -> Result<(IpAddr, u8)> {
    let bad = || {
        Error::field(
            "ip_range",
            format!("{s:?} is not a CIDR such as 10.0.0.0/8"),
        )
    };
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > if ip.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok((ip, len))
}

fn in_range(ip: &IpAddr, (net, len): (IpAddr, u8)) -> bool {
    let bits = |a: &IpAddr| -> Vec<u8> {
        match a {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        }
    };
    let (a, n) = (bits(ip), bits(&net));
    a.len() == n.len()
        && (0..usize::from(len)).all(|i| {
            let m = 0x80u8 >> (i % 8);
            a[i / 8] & m == n[i / 8] & m
        })
}

fn within_suffix(name: &str, suffix: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name).to_ascii_lowercase();
    let suffix = suffix.trim_start_matches('.');
    name == suffix || name.ends_with(&format!(".{suffix}"))
}

/// Case-folded, whitespace-collapsed: how registered names are compared.
fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Does `value` match one of `registered` (exactly, or by prefix for entries ending in `*`)?
fn registered(value: &str, registered: &[String]) -> bool {
    let v = fold(value);
    registered.iter().any(|r| {
        let r = fold(r);
        match r.strip_suffix('*') {
            Some(prefix) => v.starts_with(prefix),
            None => v == r,
        }
    })
}

/// A platform's subject attributes must name nothing it was not given: a CN that looks like a
/// DNS name or address is held to the platform's suffixes and ranges; any other CN and every
/// OU must be one of its registered names; O and the USCC must be registered to it.
fn check_subject(p: &PlatformRecord, names: &Names) -> Result<()> {
    let denied = |what: &str, v: &str, hint: &str| {
        Err(Error::PermissionDenied(format!(
            "subject {what} {v:?} is not registered to platform {} ({hint})",
            p.name
        )))
    };
    for (attr, value) in &names.subject {
        match attr {
            Attr::CommonName => {
                if let Ok(ip) = value.parse::<IpAddr>() {
                    let ranges = p
                        .ip_ranges
                        .iter()
                        .map(|r| cidr(r))
                        .collect::<Result<Vec<_>>>()?;
                    if !ranges.iter().any(|r| in_range(&ip, *r)) {
                        return denied("CN", value, "outside its address ranges");
                    }
                } else if let Some((_, domain)) = value.rsplit_once('@') {
                    if !p.dns_suffixes.iter().any(|s| within_suffix(domain, s)) {
                        return denied("CN", value, "outside its DNS suffixes");
                    }
                } else if value.contains('.') && !value.contains(' ') {
                    if !p.dns_suffixes.iter().any(|s| within_suffix(value, s)) {
                        return denied("CN", value, "outside its DNS suffixes");
                    }
                } else if !registered(value, &p.names) {
                    return denied(
                        "CN",
                        value,
                        "register it with `ecca platform subjects --name`",
                    );
                }
            }
            Attr::OrganizationalUnit if !registered(value, &p.names) => {
                return denied(
                    "OU",
                    value,
                    "register it with `ecca platform subjects --name`",
                );
            }
            Attr::Organization if !registered(value, &p.organizations) => {
                return denied(
                    "O",
                    value,
                    "register it with `ecca platform subjects --org`",
                );
            }
            Attr::SerialNumber if !p.usccs.iter().any(|u| u.eq_ignore_ascii_case(value)) => {
                return denied(
                    "serialNumber (USCC)",
                    value,
                    "register it with `ecca platform subjects --uscc`",
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks the subject registrations given for a platform.
fn check_registrations(organizations: &[String], usccs: &[String], names: &[String]) -> Result<()> {
    for (field, list) in [("organization", organizations), ("name", names)] {
        for v in list {
            if v.trim().is_empty() || v.chars().count() > 64 {
                return Err(Error::field(field, "1 to 64 characters each"));
            }
            crate::core::names::text_value(v).map_err(|e| Error::field(field, e))?;
        }
    }
    for u in usccs {
        crate::core::uscc::validate(u).map_err(|e| Error::field("uscc", e))?;
    }
    Ok(())
}

/// A platform's policy for a request: the profile is one of its own, every name within its
/// suffixes, ranges and registered subjects.
pub(super) fn check_policy(p: &PlatformRecord, profile: &str, names: &Names) -> Result<()> {
    if !p.profiles.iter().any(|x| x == profile) {
        return Err(Error::PermissionDenied(format!(
            "platform {} may not use profile {profile}",
            p.name
        )));
    }
    for d in &names.dns {
        if !p.dns_suffixes.iter().any(|s| within_suffix(d, s)) {
            return Err(Error::PermissionDenied(format!(
                "{d} is outside platform {}'s names ({})",
                p.name,
                p.dns_suffixes.join(", ")
            )));
        }
    }
    check_subject(p, names)?;
    for e in &names.emails {
        let domain = e.rsplit_once('@').map_or("", |(_, d)| d);
        if !p.dns_suffixes.iter().any(|s| within_suffix(domain, s)) {
            return Err(Error::PermissionDenied(format!(
                "{e} is outside platform {}'s names",
                p.name
            )));
        }
    }
    let ranges = p
        .ip_ranges
        .iter()
        .map(|r| cidr(r))
        .collect::<Result<Vec<_>>>()?;
    for ip in &names.ips {
        if !ranges.iter().any(|r| in_range(ip, *r)) {
            return Err(Error::PermissionDenied(format!(
                "{ip} is outside platform {}'s address ranges",
                p.name
            )));
        }
    }
    Ok(())
}

impl Service {
    /// Platform policy for an issuance by a platform: its profiles, names, validity and rate.
    /// Returns the validity to use (clamped to the platform's maximum).
    pub(super) async fn authorize_platform(
        &self,
        caller: &Caller,
        profile: &str,
        names: &Names,
        days: Option<u32>,
    ) -> Result<Option<u32>> {
        if caller.role != Role::Platform {
            return Ok(days);
        }
        let p = self.platform(&caller.tenant).await?.ok_or_else(|| {
            Error::PermissionDenied(format!("platform {} does not exist", caller.tenant))
        })?;
        let p = p.as_ref();
        check_policy(p, profile, names)?;
        self.take_rate(p, true)?;
        Ok(match (days, p.max_days) {
            (Some(d), Some(m)) => Some(d.min(m)),
            (None, Some(m)) => Some(m.min(self.profiles.get(profile)?.default_validity_days)),
            (d, None) => d,
        })
    }

    /// Checks a platform's rate for this minute, counting one issuance when `take`.
    pub(super) fn take_rate(&self, p: &PlatformRecord, take: bool) -> Result<()> {
        if let Some(limit) = p.rate_per_min {
            let minute = OffsetDateTime::now_utc().unix_timestamp() / 60;
            let mut rates = self
                .rates
                .lock()
                .map_err(|_| Error::Internal("rate lock poisoned".into()))?;
            let w = rates.windows.entry(p.name.clone()).or_insert((minute, 0));
            if w.0 != minute {
                *w = (minute, 0);
            }
            if w.1 >= limit {
                return Err(Error::ResourceExhausted(format!(
                    "platform {} has issued its {limit} certificates for this minute; retry in {} s",
                    p.name,
                    60 - OffsetDateTime::now_utc().unix_timestamp() % 60
                )));
            }
            if take {
                w.1 += 1;
            }
        }
        Ok(())
    }

    pub(super) async fn platform(
        &self,
        name: &str,
    ) -> Result<Option<std::sync::Arc<PlatformRecord>>> {
        let generation = self.store.auth_generation();
        if let Ok(cache) = self.platform_cache.lock()
            && cache.0 == Some(generation)
        {
            return Ok(cache.1.get(name).cloned());
        }
        let all: std::collections::HashMap<String, std::sync::Arc<PlatformRecord>> = self
            .store
            .platforms()
            .await?
            .into_iter()
            .map(|p| (p.name.clone(), std::sync::Arc::new(p)))
            .collect();
        let found = all.get(name).cloned();
        if let Ok(mut cache) = self.platform_cache.lock() {
            *cache = (Some(generation), all);
        }
        Ok(found)
    }

    /// A slot among the platform's in-flight issuances (None for admins).
    pub(super) fn tenant_permit(
        &self,
        caller: &Caller,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>> {
        if caller.role != Role::Platform {
            return Ok(None);
        }
        let semaphore = {
            let mut rates = self
                .rates
                .lock()
                .map_err(|_| Error::Internal("rate lock poisoned".into()))?;
            rates
                .inflight
                .entry(caller.tenant.clone())
                .or_insert_with(|| {
                    std::sync::Arc::new(tokio::sync::Semaphore::new(TENANT_CONCURRENCY))
                })
                .clone()
        };
        semaphore.try_acquire_owned().map(Some).map_err(|_| {
            Error::ResourceExhausted(format!(
                "platform {} has {TENANT_CONCURRENCY} issuances in flight; retry when some complete",
                caller.tenant
            ))
        })
    }

    /// Issues an API credential for a CSR (its signature checked) and registers it.
    async fn issue_credential(
        &self,
        csr: &[u8],
        cn: &str,
        role: Role,
        tenant: &str,
        actor: &str,
    ) -> Result<IssuedCredential> {
        let verified = crate::core::csr::verify(csr)?;
        let names = Names {
            subject: vec![
                (Attr::Organization, "ecca".into()),
                (Attr::CommonName, cn.into()),
            ],
            ..Names::default()
        };
        self.register_credential(names, &verified.spki_der, role, tenant, actor)
            .await
    }

    /// Issues a credential certificate (credential CA) for a key and registers it by the
    /// hash of the certificate.
    pub async fn register_credential(
        &self,
        names: Names,
        spki_der: &[u8],
        role: Role,
        tenant: &str,
        actor: &str,
    ) -> Result<IssuedCredential> {
        let record = self
            .issue_internal(Internal::Credential, names, spki_der)
            .await?;
        self.store
            .add_credential(
                Credential {
                    serial: record.serial.clone(),
                    cert_sha256: crate::core::fingerprint(&record.der),
                    role,
                    tenant: tenant.into(),
                    disabled: false,
                },
                actor,
            )
            .await?;
        Ok(IssuedCredential {
            serial: record.serial,
            cert_der: record.der,
            // The credential CA is the server's trust anchor itself: no chain to send.
            chain: Vec::new(),
            ca_der: self.authority.credential.der.clone(),
        })
    }

    /// Creates a platform and its first credential (admin).
    pub async fn add_platform(
        &self,
        caller: &Caller,
        spec: PlatformSpec,
        csr: &[u8],
    ) -> Result<(PlatformRecord, IssuedCredential)> {
        caller.may(Action::ManagePlatforms)?;
        if spec.name.is_empty()
            || !spec
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::field("name", "letters, digits, '-' and '_' only"));
        }
        if spec.dns_suffixes.is_empty() && spec.ip_ranges.is_empty() {
            return Err(Error::field(
                "dns_suffix",
                "give at least one DNS suffix or IP range",
            ));
        }
        for s in &spec.dns_suffixes {
            crate::core::names::dns_syntax(s.trim_start_matches('.'))
                .map_err(|e| Error::field("dns_suffix", e))?;
        }
        for r in &spec.ip_ranges {
            cidr(r)?;
        }
        if spec.profiles.is_empty() {
            return Err(Error::field("profiles", "give at least one profile"));
        }
        for p in &spec.profiles {
            self.profiles.get(p)?;
        }
        check_registrations(&spec.organizations, &spec.usccs, &spec.names)?;
        let record = PlatformRecord {
            name: spec.name.clone(),
            dns_suffixes: spec
                .dns_suffixes
                .iter()
                .map(|s| s.trim_start_matches('.').to_ascii_lowercase())
                .collect(),
            ip_ranges: spec.ip_ranges,
            profiles: spec.profiles,
            max_days: spec.max_days,
            rate_per_min: spec.rate_per_min,
            disabled: false,
            created_at: OffsetDateTime::now_utc().unix_timestamp(),
            organizations: spec.organizations,
            usccs: spec.usccs,
            names: spec.names,
        };
        self.store
            .add_platform(record.clone(), &caller.actor())
            .await?;
        let cred = self
            .issue_credential(
                csr,
                &format!("platform {}", spec.name),
                Role::Platform,
                &spec.name,
                &caller.actor(),
            )
            .await?;
        Ok((record, cred))
    }

    /// All platforms with their credentials (admin, auditor).
    pub async fn platforms(
        &self,
        caller: &Caller,
    ) -> Result<Vec<(PlatformRecord, Vec<Credential>)>> {
        caller.may(Action::ListPlatforms)?;
        let mut out = Vec::new();
        for p in self.store.platforms().await? {
            let creds = self.store.credentials_of(&p.name).await?;
            out.push((p, creds));
        }
        Ok(out)
    }

    /// Issues a new credential for a platform and disables the old ones (admin).
    pub async fn rotate_platform(
        &self,
        caller: &Caller,
        name: &str,
        csr: &[u8],
    ) -> Result<IssuedCredential> {
        caller.may(Action::ManagePlatforms)?;
        if !self.store.platforms().await?.iter().any(|p| p.name == name) {
            return Err(Error::NotFound(format!("platform {name:?}")));
        }
        let cred = self
            .issue_credential(
                csr,
                &format!("platform {name}"),
                Role::Platform,
                name,
                &caller.actor(),
            )
            .await?;
        self.store
            .disable_credentials(name, &cred.serial, &caller.actor())
            .await?;
        Ok(cred)
    }

    /// Disables (or re-enables) a platform: its credentials are refused at their next call.
    pub async fn set_platform_disabled(
        &self,
        caller: &Caller,
        name: &str,
        disabled: bool,
    ) -> Result<()> {
        caller.may(Action::ManagePlatforms)?;
        self.store
            .set_platform_disabled(name, disabled, &caller.actor())
            .await
    }

    /// Replaces what a platform may put in subjects (admin).
    pub async fn set_platform_subjects(
        &self,
        caller: &Caller,
        name: &str,
        organizations: Vec<String>,
        usccs: Vec<String>,
        names: Vec<String>,
    ) -> Result<()> {
        caller.may(Action::ManagePlatforms)?;
        check_registrations(&organizations, &usccs, &names)?;
        self.store
            .set_platform_subjects(name, organizations, usccs, names, &caller.actor())
            .await
    }

    /// Creates a read-only auditor credential (admin).
    pub async fn add_auditor(
        &self,
        caller: &Caller,
        name: &str,
        csr: &[u8],
    ) -> Result<IssuedCredential> {
        caller.may(Action::AddAuditor)?;
        self.issue_credential(
            csr,
            &format!("auditor {name}"),
            Role::Auditor,
            "",
            &caller.actor(),
        )
        .await
    }

    /// Audit entries after `after_id` (admin, auditor).
    pub async fn audit(
        &self,
        caller: &Caller,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        caller.may(Action::ReadAudit)?;
        self.store.audit(after_id, limit.clamp(1, 10_000)).await
    }

    /// The signed checkpoints (admin, auditor).
    pub async fn checkpoints(&self, caller: &Caller) -> Result<Vec<Checkpoint>> {
        caller.may(Action::ReadAudit)?;
        self.store.checkpoints().await
    }

    /// Signs a checkpoint over the current head of the audit chain with the issuing CA key,
    /// unless the newest checkpoint already covers it.
    pub async fn checkpoint(&self) -> Result<()> {
        let (upto_id, head_hash) = self.store.audit_head().await?;
        if upto_id == 0
            || self
                .store
                .last_checkpoint()
                .await?
                .is_some_and(|c| c.upto_id >= upto_id)
        {
            return Ok(());
        }
        let signature = self
            .authority
            .issuing
            .sign_checkpoint(upto_id, &head_hash)?;
        self.store
            .add_checkpoint(Checkpoint {
                id: 0,
                upto_id,
                head_hash,
                at: OffsetDateTime::now_utc().unix_timestamp(),
                signature,
            })
            .await
    }
}
