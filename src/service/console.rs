//! The web console's sign-in: one-time login links (`ecca console login`) that expire in
//! minutes and work once, and the sessions they open. Kept in memory on the instance whose
//! console the link names: a restart signs everyone out, which is what a console should do.
//! A session holds the credential certificate that asked for the link, and every page
//! authenticates it again (cached like the API's): a revoked, disabled or expired credential
//! ends its sessions at the next page.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use time::OffsetDateTime;

use super::Service;
use crate::auth::{Action, Caller};
use crate::error::{Error, Result};

/// A login link works this long (seconds).
pub const LOGIN_TTL: i64 = 300;
/// A session lasts this long (seconds) from sign-in.
pub const SESSION_TTL: i64 = 3600;
/// At most this many links outstanding and sessions open (oldest dropped first).
const CAP: usize = 1024;

/// The DER of the credential certificate a link or session acts for.
type Credential = Arc<Vec<u8>>;
type Secrets = Mutex<HashMap<[u8; 32], (Credential, i64)>>;

/// Outstanding login links and open sessions, by the SHA-256 of their secret.
#[derive(Debug, Default)]
pub struct ConsoleAuth {
    /// Where the console listens (set at start; None: no console).
    addr: OnceLock<SocketAddr>,
    logins: Secrets,
    sessions: Secrets,
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn digest(secret: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn fresh_secret() -> Result<String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Internal("no randomness for a console secret".into()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Stores a new secret for a credential valid until `until`, dropping expired ones (and the
/// oldest when full).
fn put(map: &Secrets, credential: Credential, until: i64) -> Result<String> {
    let secret = fresh_secret()?;
    let mut m = map
        .lock()
        .map_err(|_| Error::Internal("console state poisoned".into()))?;
    let at = now();
    m.retain(|_, (_, end)| *end > at);
    if m.len() >= CAP
        && let Some(oldest) = m.iter().min_by_key(|(_, (_, end))| *end).map(|(k, _)| *k)
    {
        m.remove(&oldest);
    }
    m.insert(digest(&secret), (credential, until));
    Ok(secret)
}

impl ConsoleAuth {
    pub fn set_addr(&self, addr: SocketAddr) {
        let _ = self.addr.set(addr);
    }

    /// Trades a login link's token for a session secret (the token works once).
    fn sign_in(&self, token: &str) -> Option<String> {
        let credential = {
            let mut m = self.logins.lock().ok()?;
            let (credential, until) = m.remove(&digest(token))?;
            (until > now()).then_some(credential)?
        };
        put(&self.sessions, credential, now() + SESSION_TTL).ok()
    }

    /// The credential of an open session.
    fn session(&self, secret: &str) -> Option<Credential> {
        let m = self.sessions.lock().ok()?;
        let (credential, until) = m.get(&digest(secret))?;
        (*until > now()).then(|| credential.clone())
    }

    /// Ends a session.
    pub fn sign_out(&self, secret: &str) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(&digest(secret));
        }
    }
}

impl Service {
    pub fn console(&self) -> &ConsoleAuth {
        &self.console
    }

    /// A one-time login link to the console for the admin or auditor whose credential
    /// certificate this is: the URL and when it stops working.
    pub async fn console_login(&self, credential: Option<Credential>) -> Result<(String, i64)> {
        let credential =
            credential.ok_or_else(|| Error::Unauthenticated("no client certificate".into()))?;
        let caller = self.console_caller(&credential).await?;
        let addr = self.console.addr.get().ok_or_else(|| {
            Error::Conflict(
                "the console is off on this server: start it with --console-listen ADDR".into(),
            )
        })?;
        let until = now() + LOGIN_TTL;
        let token = put(&self.console.logins, credential, until)?;
        tracing::info!(actor = %caller.actor(), "console login link made");
        Ok((format!("https://{addr}/login?token={token}"), until))
    }

    /// A credential authenticated now and allowed on the console.
    async fn console_caller(&self, credential: &[u8]) -> Result<Caller> {
        let caller = self.authenticate(Some(credential)).await?;
        caller.may(Action::ReadReports)?;
        Ok(caller)
    }

    /// Opens a session for a login link's token (it works once): the session secret and who
    /// it acts as.
    pub async fn console_sign_in(&self, token: &str) -> Option<(String, Caller)> {
        let session = self.console.sign_in(token)?;
        let caller = self.console_session(&session).await?;
        Some((session, caller))
    }

    /// Who an open session acts as, authenticated again now (None: no such session, or its
    /// credential is no longer allowed).
    pub async fn console_session(&self, secret: &str) -> Option<Caller> {
        let credential = self.console.session(secret)?;
        match self.console_caller(&credential).await {
            Ok(caller) => Some(caller),
            Err(e) => {
                tracing::info!(error = %e, "console session refused: its credential no longer authenticates");
                self.console.sign_out(secret);
                None
            }
        }
    }
}
