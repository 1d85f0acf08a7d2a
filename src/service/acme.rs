//! What the ACME edge needs of the service: External Account Binding keys per platform, the
//! platform policy of an order, and the caller an ACME account acts as.
use ring::rand::SecureRandom;

use super::Service;
use crate::auth::{Action, Caller};
use crate::core::issue::Names;
use crate::error::{Error, Result};
use crate::store::{AcmeKind, AcmeObject, Op, Role};

/// An EAB key that has not bound an account yet.
pub const EAB_UNUSED: &str = "unused";
/// An EAB key that bound its account (one account per key).
pub const EAB_BOUND: &str = "bound";

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

impl Service {
    /// Sets the secret EAB keys are derived from (the data directory's `acme.key`).
    pub fn set_acme_secret(&self, secret: [u8; 32]) {
        if let Ok(mut s) = self.acme_secret.write() {
            *s = Some(secret);
        }
    }

    /// The HMAC key of an EAB key id: HMAC-SHA256(secret, "eab:" || kid). Derived, so the
    /// database never holds it: a copy of the database alone cannot bind accounts.
    fn eab_hmac(&self, kid: &str) -> Result<Vec<u8>> {
        let secret = self
            .acme_secret
            .read()
            .map_err(|_| Error::Internal("acme secret lock poisoned".into()))?
            .ok_or_else(|| Error::Unavailable("ACME is not configured on this server".into()))?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        Ok(ring::hmac::sign(&key, format!("eab:{kid}").as_bytes())
            .as_ref()
            .to_vec())
    }

    /// Creates an EAB key for `platform` (admin): returns (kid, HMAC key base64url).
    pub async fn create_acme_key(
        &self,
        caller: &Caller,
        platform: &str,
    ) -> Result<(String, String)> {
        caller.may(Action::ManagePlatforms)?;
        if self.platform(platform).await?.is_none() {
            return Err(Error::NotFound(format!(
                "platform {platform:?}; `ecca platform list` shows the platforms"
            )));
        }
        let mut raw = [0u8; 12];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| Error::Internal("no randomness".into()))?;
        let kid = format!("kid-{}", b64(&raw));
        let hmac = b64(&self.eab_hmac(&kid)?);
        let object = AcmeObject {
            kind: AcmeKind::Eab,
            id: kid.clone(),
            owner: platform.into(),
            status: EAB_UNUSED.into(),
            expires: 0,
            lookup: None,
            version: 0,
            doc: "{}".into(),
        };
        self.store
            .write(Op::AcmePut {
                object,
                replaces: None,
                event: "acme.eab_key.created",
                actor: caller.actor(),
            })
            .await?;
        Ok((kid, hmac))
    }

    /// An unused EAB key's row and HMAC key (None: unknown or already bound).
    pub async fn acme_eab(&self, kid: &str) -> Result<Option<(AcmeObject, Vec<u8>)>> {
        match self.store.acme_get(AcmeKind::Eab, kid).await? {
            Some(row) if row.status == EAB_UNUSED => {
                let hmac = self.eab_hmac(kid)?;
                Ok(Some((row, hmac)))
            }
            _ => Ok(None),
        }
    }

    /// The caller an ACME account acts as: its platform, identified in the audit log by the
    /// account.
    pub fn acme_caller(platform: &str, account: &str) -> Caller {
        Caller {
            role: Role::Platform,
            tenant: platform.into(),
            credential: format!("acme-{account}"),
        }
    }

    /// May `platform` order these DNS names under `profile` now? Its policy (enabled, the
    /// profile, the names within its suffixes) and its rate (checked, not taken: the
    /// issuance takes it).
    pub async fn acme_admit_order(
        &self,
        platform: &str,
        profile: &str,
        dns: &[String],
    ) -> Result<()> {
        let p = self.platform(platform).await?.ok_or_else(|| {
            Error::PermissionDenied(format!("platform {platform} does not exist"))
        })?;
        if p.disabled {
            return Err(Error::PermissionDenied(format!(
                "platform {platform} is disabled"
            )));
        }
        self.profiles.get(profile)?;
        let names = Names {
            dns: dns.to_vec(),
            ..Names::default()
        };
        super::tenants::check_policy(&p, profile, &names)?;
        self.take_rate(&p, false)
    }

    /// Is the platform of an account enabled?
    pub async fn acme_platform_enabled(&self, platform: &str) -> Result<bool> {
        Ok(self.platform(platform).await?.is_some_and(|p| !p.disabled))
    }

    /// Other chains for a certificate signed under `chain` (nearest first): each CA
    /// certificate this CA knows that certifies the key of the chain's last issuer under
    /// another name or root (link certificates of a root rollover, cross-certificates peers
    /// signed for our root), appended.
    pub async fn alternate_chains(&self, chain: &[Vec<u8>]) -> Result<Vec<Vec<Vec<u8>>>> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let Some(last) = chain.last() else {
            return Ok(Vec::new());
        };
        let Ok((_, last)) = X509Certificate::from_der(last) else {
            return Ok(Vec::new());
        };
        let wanted_issuer = last.issuer().as_raw().to_vec();
        let wanted_key = aki(&last);
        let mut candidates: Vec<Vec<u8>> = self
            .store
            .cross_certs()
            .await?
            .into_iter()
            .filter(|c| c.direction == crate::core::records::Direction::Received)
            .map(|c| c.der)
            .collect();
        let (_, intermediates) = self.authority.ca_certificates();
        candidates.extend(intermediates);
        let mut out = Vec::new();
        for der in candidates {
            let Ok((_, c)) = X509Certificate::from_der(&der) else {
                continue;
            };
            let certifies_issuer = c.subject().as_raw() == wanted_issuer.as_slice()
                && wanted_key.is_some()
                && ski(&c) == wanted_key
                && c.issuer().as_raw() != c.subject().as_raw();
            if certifies_issuer && !chain.contains(&der) {
                let mut alt = chain.to_vec();
                alt.push(der);
                out.push(alt);
            }
        }
        Ok(out)
    }
}

/// A certificate's authority key identifier (keyIdentifier).
pub fn aki(c: &x509_parser::prelude::X509Certificate<'_>) -> Option<Vec<u8>> {
    use x509_parser::prelude::ParsedExtension;
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
}

/// A certificate's subject key identifier.
pub fn ski(c: &x509_parser::prelude::X509Certificate<'_>) -> Option<Vec<u8>> {
    use x509_parser::prelude::ParsedExtension;
    c.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
}
