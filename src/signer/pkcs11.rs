//! CA keys in a PKCS#11 token (an HSM; SoftHSM2 in tests). Keys are generated inside the token,
//! sensitive and non-extractable; signing hashes locally and asks the token for a raw ECDSA
//! signature (SoftHSM 2.6 lacks CKM_ECDSA_SHA256), which is then DER-encoded for X.509.
//! Blocking PKCS#11 calls run off the async workers (block_in_place); one session per
//! concurrent signer, reopened and retried once if it is lost.
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::{Decode, Encode, Sequence};

use crate::core::keys::CaKeyAlg;
use crate::error::{Error, Result};
use crate::signer::Signer;

/// Where the token is and how to log in. The PIN never prints.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    pub module: PathBuf,
    pub token_label: String,
    pub pin: String,
}

/// Where the HSM PIN comes from when no file is named.
pub const PIN_ENV: &str = "ECCA_PKCS11_PIN";

impl Pkcs11Config {
    /// Builds a config, reading the PIN from `pin_file` (first line) or from $ECCA_PKCS11_PIN.
    pub fn new(module: PathBuf, token_label: String, pin_file: Option<&Path>) -> Result<Self> {
        let pin = match pin_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| Error::io(f, e))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            None => std::env::var(PIN_ENV).map_err(|_| {
                Error::Config(format!(
                    "the PKCS#11 token {token_label:?} needs a PIN: set {PIN_ENV} or pkcs11.pin_file"
                ))
            })?,
        };
        Ok(Pkcs11Config {
            module,
            token_label,
            pin,
        })
    }

    /// An RFC 7512 URI naming a key in this token; stored where a software key's PEM would be.
    pub fn key_uri(&self, label: &str) -> String {
        format!(
            "pkcs11:token={};object={}",
            pct(&self.token_label),
            pct(label)
        )
    }
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The object label of an RFC 7512 URI written by [`Pkcs11Config::key_uri`], or None if `text`
/// is not a PKCS#11 URI.
pub fn uri_object(text: &str) -> Option<String> {
    let attrs = text.trim().strip_prefix("pkcs11:")?;
    let value = attrs.split(';').find_map(|a| a.strip_prefix("object="))?;
    let mut out = Vec::new();
    let mut bytes = value.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = bytes.by_ref().take(2).map(char::from).collect();
            out.push(u8::from_str_radix(&hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .finish()
    }
}

/// An ECDSA signature as X.509 wants it.
#[derive(Sequence)]
struct EcdsaSig<'a> {
    r: der::asn1::UintRef<'a>,
    s: der::asn1::UintRef<'a>,
}

fn p11(e: cryptoki::error::Error) -> Error {
    Error::Signing(format!("PKCS#11: {e}"))
}

/// The token: one initialized module, shared by the keys in it.
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    pin: String,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token").field("slot", &self.slot).finish()
    }
}

impl Token {
    /// Loads the module (once per process: C_Initialize may run only once) and finds the token.
    pub fn open(cfg: &Pkcs11Config) -> Result<Arc<Self>> {
        static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
        let ctx = {
            let mut modules = MODULES
                .get_or_init(Default::default)
                .lock()
                .map_err(|_| Error::Internal("PKCS#11 module table poisoned".into()))?;
            match modules.get(&cfg.module) {
                Some(ctx) => ctx.clone(),
                None => {
                    let ctx = Pkcs11::new(&cfg.module)
                        .map_err(|e| Error::Config(format!("{}: {e}", cfg.module.display())))?;
                    ctx.initialize(CInitializeArgs::OsThreads).map_err(p11)?;
                    modules.insert(cfg.module.clone(), ctx.clone());
                    ctx
                }
            }
        };
        let slot = ctx
            .get_slots_with_token()
            .map_err(p11)?
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|i| i.label().trim() == cfg.token_label)
            })
            .ok_or_else(|| {
                Error::Config(format!("no PKCS#11 token labelled {:?}", cfg.token_label))
            })?;
        Ok(Arc::new(Token {
            ctx,
            slot,
            pin: cfg.pin.clone(),
        }))
    }

    /// Logs the application out of the token, as an HSM failover or reset does: every open
    /// session loses its login. Signers recover on their next signature (tests use this).
    pub fn logout(&self) -> Result<()> {
        self.session()?.logout().map_err(p11)
    }

    fn session(&self) -> Result<Session> {
        let s = self.ctx.open_rw_session(self.slot).map_err(p11)?;
        match s.login(UserType::User, Some(&AuthPin::new(self.pin.clone()))) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::UserAlreadyLoggedIn,
                _,
            )) => Ok(s),
            Err(e) => Err(p11(e)),
        }
    }
}

fn ec_params(alg: CaKeyAlg) -> Result<Vec<u8>> {
    let oid = match alg {
        CaKeyAlg::P256 => const_oid::db::rfc5912::SECP_256_R_1,
        CaKeyAlg::P384 => const_oid::db::rfc5912::SECP_384_R_1,
        CaKeyAlg::Ed25519 | CaKeyAlg::Sm2 => {
            return Err(Error::Config(format!(
                "CA keys in a PKCS#11 token must be p256 or p384 (not {}): SoftHSM and most tokens lack the mechanism",
                alg.as_str()
            )));
        }
    };
    oid.to_der().map_err(|e| Error::Internal(e.to_string()))
}

/// A CA key held in the token, found by label.
pub struct Pkcs11Key {
    token: Arc<Token>,
    label: String,
    alg: CaKeyAlg,
    public_raw: Vec<u8>,
    /// Idle sessions with the private key's handle in them.
    sessions: Mutex<Vec<(Session, ObjectHandle)>>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("label", &self.label)
            .field("alg", &self.alg)
            .finish()
    }
}

impl Pkcs11Key {
    /// Generates a key pair in the token: private key sensitive, non-extractable, token-resident.
    pub fn generate(token: Arc<Token>, label: &str, alg: CaKeyAlg) -> Result<Self> {
        let s = token.session()?;
        let public = [
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::EcParams(ec_params(alg)?),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            // A CA key signs and does nothing else (SoftHSM would otherwise allow decrypt/unwrap).
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .map_err(p11)?;
        drop(s);
        Self::open(token, label)
    }

    /// Opens an existing key pair by label.
    pub fn open(token: Arc<Token>, label: &str) -> Result<Self> {
        let s = token.session()?;
        let find = |class: ObjectClass| -> Result<ObjectHandle> {
            s.find_objects(&[
                Attribute::Class(class),
                Attribute::KeyType(KeyType::EC),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(p11)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Config(format!("no EC key labelled {label:?} in the token")))
        };
        let public = find(ObjectClass::PUBLIC_KEY)?;
        let attrs = s
            .get_attributes(public, &[AttributeType::EcPoint, AttributeType::EcParams])
            .map_err(p11)?;
        let mut point = None;
        let mut alg = None;
        for a in attrs {
            match a {
                // CKA_EC_POINT is the DER OCTET STRING around the uncompressed point.
                Attribute::EcPoint(p) => {
                    point = der::asn1::OctetString::from_der(&p)
                        .ok()
                        .map(|o| o.as_bytes().to_vec())
                        .or(Some(p))
                }
                Attribute::EcParams(p) if p == ec_params(CaKeyAlg::P256)? => {
                    alg = Some(CaKeyAlg::P256)
                }
                Attribute::EcParams(p) if p == ec_params(CaKeyAlg::P384)? => {
                    alg = Some(CaKeyAlg::P384)
                }
                _ => {}
            }
        }
        let private = find(ObjectClass::PRIVATE_KEY)?;
        Ok(Pkcs11Key {
            label: label.into(),
            alg: alg
                .ok_or_else(|| Error::Config(format!("key {label:?} is not P-256 or P-384")))?,
            public_raw: point
                .ok_or_else(|| Error::Config(format!("key {label:?} has no EC point")))?,
            sessions: Mutex::new(vec![(s, private)]),
            token,
        })
    }

    /// Reads CKA_SENSITIVE and CKA_EXTRACTABLE of the private key (for checks and tests).
    pub fn protection(&self) -> Result<(bool, bool)> {
        let (s, key) = self.take_session()?;
        let attrs = s
            .get_attributes(key, &[AttributeType::Sensitive, AttributeType::Extractable])
            .map_err(p11)?;
        self.put_session(s, key);
        let mut out = (false, true);
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => out.0 = v,
                Attribute::Extractable(v) => out.1 = v,
                _ => {}
            }
        }
        Ok(out)
    }

    /// An idle pooled session, or a new one.
    fn take_session(&self) -> Result<(Session, ObjectHandle)> {
        match self.sessions.lock().ok().and_then(|mut v| v.pop()) {
            Some(s) => Ok(s),
            None => self.new_session(),
        }
    }

    /// A new logged-in session with the private key's handle looked up in it.
    fn new_session(&self) -> Result<(Session, ObjectHandle)> {
        let s = self.token.session()?;
        let key = s
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(self.label.as_bytes().to_vec()),
            ])
            .map_err(p11)?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Signing(format!("private key {:?} is not in the token", self.label))
            })?;
        Ok((s, key))
    }

    fn put_session(&self, s: Session, key: ObjectHandle) {
        if let Ok(mut v) = self.sessions.lock() {
            v.push((s, key));
        }
    }

    fn sign_blocking(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let digest = match self.alg {
            CaKeyAlg::P384 => ring::digest::digest(&ring::digest::SHA384, msg),
            _ => ring::digest::digest(&ring::digest::SHA256, msg),
        };
        // A lost session (token reset, idle timeout) is reopened and the signature retried once.
        let raw = match self.take_session().and_then(|(s, k)| {
            s.sign(&Mechanism::Ecdsa, k, digest.as_ref())
                .map(|r| (s, k, r))
                .map_err(p11)
        }) {
            Ok((s, k, r)) => {
                self.put_session(s, k);
                r
            }
            Err(first) => {
                tracing::warn!(label = %self.label, error = %first, "HSM signature failed; retrying on a new session");
                let (s, key) = self.new_session()?;
                let r = s
                    .sign(&Mechanism::Ecdsa, key, digest.as_ref())
                    .map_err(p11)?;
                self.put_session(s, key);
                r
            }
        };
        let (r, s) = raw.split_at(raw.len() / 2);
        let sig = EcdsaSig {
            r: der::asn1::UintRef::new(r).map_err(|e| Error::Signing(e.to_string()))?,
            s: der::asn1::UintRef::new(s).map_err(|e| Error::Signing(e.to_string()))?,
        };
        sig.to_der().map_err(|e| Error::Signing(e.to_string()))
    }
}

impl Signer for Pkcs11Key {
    fn algorithm(&self) -> CaKeyAlg {
        self.alg
    }
    fn public_key_raw(&self) -> &[u8] {
        &self.public_raw
    }
    fn sign(&self, msg: &[u8]) -> crate::core::Result<Vec<u8>> {
        let started = std::time::Instant::now();
        // PKCS#11 blocks: keep it off the async workers when called from one.
        let signed = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.sign_blocking(msg))
            }
            _ => self.sign_blocking(msg),
        };
        super::observe("pkcs11", started, signed.is_ok());
        signed.map_err(|e| match e {
            Error::Signing(m) => crate::core::Error::Signing(m),
            other => crate::core::Error::Signing(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_uri_round_trips_and_escapes() {
        let cfg = Pkcs11Config {
            module: "/m.so".into(),
            token_label: "Prov CA;1".into(),
            pin: "1".into(),
        };
        let uri = cfg.key_uri("ecca root/é");
        assert_eq!(
            uri,
            "pkcs11:token=Prov%20CA%3B1;object=ecca%20root%2F%C3%A9"
        );
        assert_eq!(uri_object(&uri).as_deref(), Some("ecca root/é"));
        assert_eq!(uri_object("-----BEGIN PRIVATE KEY-----"), None);
        assert!(!format!("{cfg:?}").contains("pin: \"1\""));
    }
}
