//! CA hierarchies side by side: each a root (and, after a rollover, the roots before it,
//! joined by link certificates) and its issuing CAs (one active, older ones retiring until
//! what they issued has expired), recorded in the store and opened from the data directory,
//! the token, or the store's sealed copy of the key.
//!
//! ```text
//! DIR/ca/issuers/NAME/ID.pem, ID.key   a CA certificate made after init (ID: first 16 hex
//!                                      digits of its SHA-256) and its key (PKCS#8 or a URI)
//! ```
//! The data directory's first root and issuing CA stay in `ca/root.*` and `ca/issuing.*`.
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Authority, CaCert, KeyMaker, SavedKey, ca_params};
use crate::core::csr::{self, Attr};
use crate::core::issue::{self, CaView, IssuerUrls};
use crate::core::keys::CaKeyAlg;
use crate::core::records::{
    CaId, CaRole, CaState, DEFAULT_ISSUER, IssuerCert, IssuerRecord, WrappedKey,
};
use crate::error::{Error, Result};
use crate::layout::paths;
use crate::pemfile;
use crate::signer::SoftwareKey;

/// A root of one of our hierarchies.
#[derive(Debug)]
pub struct RootCa {
    pub id: CaId,
    pub hierarchy: String,
    pub cert: CaCert,
}

impl Deref for RootCa {
    type Target = CaCert;
    fn deref(&self) -> &CaCert {
        &self.cert
    }
}

/// An issuing CA certificate of one of our hierarchies, with the URLs its certificates
/// carry (its own CRL, the one OCSP responder, its own certificate).
#[derive(Debug)]
pub struct IssuingCa {
    pub id: CaId,
    pub hierarchy: String,
    pub cert: CaCert,
    /// The root that certified it.
    pub root: Arc<RootCa>,
    pub urls: IssuerUrls,
    pub delta_url: String,
}

impl Deref for IssuingCa {
    type Target = CaCert;
    fn deref(&self) -> &CaCert {
        &self.cert
    }
}

impl IssuingCa {
    pub(super) fn new(
        id: CaId,
        hierarchy: &str,
        cert: CaCert,
        root: Arc<RootCa>,
        base: &str,
    ) -> Self {
        let urls = urls_of(base, &id);
        let delta_url = format!("{base}{}", paths::delta_crl(&id));
        IssuingCa {
            id,
            hierarchy: hierarchy.into(),
            cert,
            root,
            urls,
            delta_url,
        }
    }

    /// The chain a leaf it signed needs, nearest first, without the root.
    pub fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.der.clone()]
    }
}

/// A link certificate between two generations of a hierarchy's roots: it signs nothing, but
/// the root that signed it (`parent`) answers for it in its CRL and OCSP.
#[derive(Debug, Clone)]
pub struct LinkCert {
    pub id: CaId,
    pub parent: CaId,
    pub der: Vec<u8>,
    /// Serial, big-endian magnitude.
    pub serial: Vec<u8>,
}

/// The URLs in certificates a CA signs: its own CRL and certificate, the one OCSP responder.
pub fn urls_of(base: &str, id: &CaId) -> IssuerUrls {
    IssuerUrls {
        crl: format!("{base}{}", paths::crl(id)),
        ocsp: format!("{base}{}", paths::OCSP),
        ca_issuers: format!("{base}{}", paths::ca_cert(id)),
    }
}

/// One hierarchy as loaded.
#[derive(Debug)]
pub struct Hierarchy {
    pub name: String,
    pub algorithm: CaKeyAlg,
    /// The active root: new issuing CAs are certified by it.
    pub root: Arc<RootCa>,
    /// Every root that still publishes (the active one and those before a rollover).
    pub roots: Vec<Arc<RootCa>>,
    /// Link certificates between generations of roots, in force.
    pub links: Vec<LinkCert>,
    /// Signs new certificates; None when its key cannot be opened here (`unavailable` says why).
    pub active: Option<Arc<IssuingCa>>,
    /// Sign CRLs and OCSP only, for what they issued.
    pub retiring: Vec<Arc<IssuingCa>>,
    pub unavailable: Option<String>,
}

impl Hierarchy {
    /// Every issuing CA that publishes revocation: the active one and the retiring ones.
    pub fn issuing(&self) -> impl Iterator<Item = &Arc<IssuingCa>> {
        self.active.iter().chain(self.retiring.iter())
    }

    /// The CA certificates relying parties may need to build paths: roots (anchors), then
    /// issuing CAs and link certificates (intermediates).
    pub fn certificates(&self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let roots = self.roots.iter().map(|r| r.der.clone()).collect();
        let mut intermediates: Vec<Vec<u8>> = self.issuing().map(|c| c.der.clone()).collect();
        intermediates.extend(self.links.iter().map(|l| l.der.clone()));
        (roots, intermediates)
    }
}

/// Checks a hierarchy name: it becomes a directory name and a profile's `issuer` value.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::field(
            "name",
            "must be 1-32 characters of a-z, 0-9 and '-', not starting with '-'",
        ))
    }
}

/// How a new CA certificate is recorded: its name, role, parent and where its key is.
struct Entry {
    id: CaId,
    role: CaRole,
    parent: CaId,
    key_ref: String,
    wrapped_key: Option<WrappedKey>,
}

fn issuer_cert(ca: &CaView, e: Entry, now: i64) -> Result<IssuerCert> {
    let (_, name) = x509_parser::x509::X509Name::from_der(&ca.subject_der)
        .map_err(|err| Error::Internal(format!("our CA subject: {err}")))?;
    Ok(IssuerCert {
        sha256: crate::core::fingerprint(&ca.der),
        ca_id: e.id,
        key_ref: e.key_ref,
        parent: e.parent,
        wrapped_key: e.wrapped_key,
        role: e.role,
        state: CaState::Active,
        der: ca.der.clone(),
        subject: name.to_string(),
        serial: hex::encode(&ca.serial),
        not_after: ca.not_after.unix_timestamp(),
        added_at: now,
    })
}

/// What a new generation of CA certificates is made of before it is recorded.
#[derive(Debug)]
pub struct NewCas {
    /// In recording order: a new root first, its links, the new issuing CA last.
    pub certs: Vec<IssuerCert>,
    /// Files written (certificates, keys), for the operator's report.
    pub files: Vec<PathBuf>,
}

/// A key just made, saved where it lives, and how the store will find it.
struct Placed {
    id: CaId,
    key_ref: String,
    wrapped_key: Option<WrappedKey>,
    files: Vec<PathBuf>,
}

/// HKDF context of the key that seals software CA keys for the other instances.
const SEAL_SALT: &[u8] = b"ecca ca-key seal v1";

impl Authority {
    /// This data directory's hierarchy as the store records it at first: issuer `default`,
    /// its root and issuing CA active.
    pub fn default_issuer(&self, now: i64) -> Result<IssuerRecord> {
        let entry = |id: CaId, role: CaRole, key: &str| Entry {
            id,
            role,
            parent: CaId::root(),
            key_ref: format!("file:ca/{key}.key"),
            wrapped_key: None,
        };
        Ok(IssuerRecord {
            name: DEFAULT_ISSUER.into(),
            algorithm: self.root.algorithm(),
            created_at: now,
            certs: vec![
                issuer_cert(&self.root, entry(CaId::root(), CaRole::Root, "root"), now)?,
                issuer_cert(
                    &self.issuing,
                    entry(CaId::issuing(), CaRole::Issuing, "issuing"),
                    now,
                )?,
            ],
        })
    }

    /// Every hierarchy as loaded now.
    pub fn hierarchies(&self) -> Arc<Vec<Arc<Hierarchy>>> {
        self.hierarchies
            .read()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// One hierarchy by name.
    pub fn hierarchy(&self, name: &str) -> Result<Arc<Hierarchy>> {
        let all = self.hierarchies();
        all.iter().find(|h| h.name == name).cloned().ok_or_else(|| {
            let known: Vec<&str> = all.iter().map(|h| h.name.as_str()).collect();
            Error::NotFound(format!("issuer {name:?} (known: {})", known.join(", ")))
        })
    }

    /// The CA that signs new certificates of a hierarchy. The caller keeps the `Arc`: a
    /// rotation meanwhile does not change the CA a request in flight signs with.
    pub fn active(&self, name: &str) -> Result<Arc<IssuingCa>> {
        let h = self.hierarchy(name)?;
        h.active.clone().ok_or_else(|| {
            Error::Unavailable(
                h.unavailable
                    .clone()
                    .unwrap_or_else(|| format!("issuer {name:?} has no active CA")),
            )
        })
    }

    /// Every hierarchy's CA certificates: (roots, intermediates), for trust bundles and the
    /// path builder's pool.
    pub fn ca_certificates(&self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let (mut roots, mut intermediates) = (Vec::new(), Vec::new());
        for h in self.hierarchies().iter() {
            let (r, i) = h.certificates();
            roots.extend(r);
            intermediates.extend(i);
        }
        (roots, intermediates)
    }

    /// A CA certificate we publish, by id (roots, issuing CAs, link certificates).
    pub fn ca_cert_der(&self, id: &CaId) -> Option<Vec<u8>> {
        for h in self.hierarchies().iter() {
            if let Some(r) = h.roots.iter().find(|r| &r.id == id) {
                return Some(r.der.clone());
            }
            if let Some(c) = h.issuing().find(|c| &c.id == id) {
                return Some(c.der.clone());
            }
            if let Some(l) = h.links.iter().find(|l| &l.id == id) {
                return Some(l.der.clone());
            }
        }
        None
    }

    /// Replaces the loaded hierarchies with what the store records, opening keys not yet
    /// open (already open CAs are kept, so certificates in flight are unaffected). A CA
    /// whose key cannot be opened here leaves its hierarchy unable to issue, with the reason.
    pub fn apply(&self, records: &[IssuerRecord]) -> Result<()> {
        let current = self.hierarchies();
        let known_issuing = |id: &CaId| {
            current
                .iter()
                .find_map(|h| h.issuing().find(|c| &c.id == id).cloned())
        };
        let known_root = |id: &CaId| {
            current
                .iter()
                .find_map(|h| h.roots.iter().find(|r| &r.id == id).cloned())
        };
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let live = |role: CaRole| {
                record
                    .certs
                    .iter()
                    .filter(move |c| c.role == role && c.state != CaState::Retired)
            };
            let mut roots = Vec::new();
            let mut active_root = None;
            for c in live(CaRole::Root) {
                let root = match known_root(&c.ca_id) {
                    Some(r) => r,
                    None => match self.open(&record.name, c) {
                        Ok(cert) => Arc::new(RootCa {
                            id: c.ca_id.clone(),
                            hierarchy: record.name.clone(),
                            cert,
                        }),
                        Err(e) => {
                            tracing::error!(issuer = %record.name, ca = %c.ca_id, error = %e, "cannot open a root's key; it publishes nothing here");
                            continue;
                        }
                    },
                };
                if c.state == CaState::Active {
                    active_root = Some(root.clone());
                }
                roots.push(root);
            }
            let Some(root) = active_root else {
                tracing::error!(issuer = %record.name, "issuer has no usable active root; skipped");
                continue;
            };
            let links = live(CaRole::Link)
                .filter_map(|c| {
                    Some(LinkCert {
                        id: c.ca_id.clone(),
                        parent: c.parent.clone(),
                        der: c.der.clone(),
                        serial: hex::decode(&c.serial).ok()?,
                    })
                })
                .collect();
            let mut h = Hierarchy {
                name: record.name.clone(),
                algorithm: record.algorithm,
                root,
                roots,
                links,
                active: None,
                retiring: Vec::new(),
                unavailable: None,
            };
            for c in live(CaRole::Issuing) {
                let opened = match known_issuing(&c.ca_id) {
                    Some(ca) => Ok(ca),
                    None => self.open_issuing(&h, c),
                };
                match (opened, c.state) {
                    (Ok(ca), CaState::Active) => h.active = Some(ca),
                    (Ok(ca), _) => h.retiring.push(ca),
                    (Err(e), state) => {
                        let why = format!(
                            "issuer {:?}: CA {} cannot be used on this instance: {e}",
                            record.name, c.ca_id
                        );
                        tracing::error!("{why}");
                        if state == CaState::Active {
                            h.unavailable = Some(why);
                        }
                    }
                }
            }
            out.push(Arc::new(h));
        }
        *self
            .hierarchies
            .write()
            .map_err(|_| Error::Internal("issuer lock poisoned".into()))? = Arc::new(out);
        Ok(())
    }

    fn open_issuing(&self, h: &Hierarchy, c: &IssuerCert) -> Result<Arc<IssuingCa>> {
        let root = h
            .roots
            .iter()
            .find(|r| r.id == c.parent)
            .ok_or_else(|| Error::Config(format!("its root {} is not loaded", c.parent)))?;
        let cert = self.open(&h.name, c)?;
        Ok(Arc::new(IssuingCa::new(
            c.ca_id.clone(),
            &h.name,
            cert,
            root.clone(),
            &self.base_url,
        )))
    }

    /// Opens a recorded CA certificate with its key: from its file, from the token, or
    /// (made by another instance) from the store's sealed copy, which is then saved here.
    fn open(&self, hierarchy: &str, c: &IssuerCert) -> Result<CaCert> {
        let key = match c.key_ref.strip_prefix("file:") {
            Some(rel) => {
                if rel.split('/').any(|p| p == ".." || p.is_empty()) {
                    return Err(Error::Config(format!("key reference {:?}", c.key_ref)));
                }
                let path = self.layout.dir.join(rel);
                match (&c.wrapped_key, path.exists()) {
                    (Some(sealed), false) => {
                        let key = Arc::new(self.unseal(&c.ca_id, sealed)?);
                        pemfile::private_dir(&self.layout.dir.join("ca/issuers"))?;
                        pemfile::private_dir(&self.layout.dir.join("ca/issuers").join(hierarchy))?;
                        key.save(&path)?;
                        tracing::info!(ca = %c.ca_id, path = %path.display(), "CA key made on another instance saved here");
                        key
                    }
                    _ => super::load_key(&path, self.hsm.as_ref())?,
                }
            }
            None => super::load_key_uri(&c.key_ref, self.hsm.as_ref())?,
        };
        CaCert::new(c.der.clone(), key)
    }

    /// The key that seals software CA keys for the other instances: HKDF-SHA256 over the
    /// data directory's root key, which every copy of the data directory holds and the
    /// database does not. None when the root key is in a token (new keys are then too).
    fn sealing_key(&self) -> Result<Option<ring::aead::LessSafeKey>> {
        let path = self.layout.root_key();
        let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        if crate::signer::pkcs11::uri_object(&String::from_utf8_lossy(&text)).is_some() {
            return Ok(None);
        }
        let root = SoftwareKey::load(&path)?;
        let prk =
            ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, SEAL_SALT).extract(&root.pkcs8_der());
        let okm = prk
            .expand(&[b"aes-256-gcm"], &ring::aead::AES_256_GCM)
            .map_err(|_| Error::Internal("HKDF expand".into()))?;
        Ok(Some(ring::aead::LessSafeKey::new(
            ring::aead::UnboundKey::from(okm),
        )))
    }

    /// Seals a software key for the store, bound to its CA id: nonce || ciphertext || tag.
    fn seal(&self, id: &CaId, key: &SoftwareKey) -> Result<Option<WrappedKey>> {
        use ring::rand::SecureRandom;
        let Some(sealing) = self.sealing_key()? else {
            return Ok(None);
        };
        let mut nonce = [0u8; 12];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::Internal("no randomness".into()))?;
        let mut data = key.pkcs8_der();
        sealing
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(id.as_str().as_bytes()),
                &mut data,
            )
            .map_err(|_| Error::Internal("sealing a CA key failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend(data);
        Ok(Some(WrappedKey(out)))
    }

    fn unseal(&self, id: &CaId, sealed: &WrappedKey) -> Result<SoftwareKey> {
        let sealing = self.sealing_key()?.ok_or_else(|| {
            Error::Config(format!("CA {id}'s key was sealed with a software root key"))
        })?;
        if sealed.0.len() < 12 + 16 {
            return Err(Error::Corrupt(format!("sealed key of CA {id}: too short")));
        }
        let (nonce, rest) = sealed.0.split_at(12);
        let mut data = rest.to_vec();
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::Corrupt(format!("sealed key of CA {id}: nonce")))?;
        let plain = sealing
            .open_in_place(nonce, ring::aead::Aad::from(id.as_str().as_bytes()), &mut data)
            .map_err(|_| {
                Error::Config(format!(
                    "the sealed key of CA {id} does not open with this data directory's root key: is this a copy of the same CA's data directory?"
                ))
            })?;
        SoftwareKey::from_pkcs8_der(plain)
    }

    /// Organization and country of the data directory's root, for the subjects of new CAs.
    fn subject_base(&self) -> Result<(String, String)> {
        let (_, x) = X509Certificate::from_der(&self.root.der)
            .map_err(|e| Error::Config(format!("root certificate: {e}")))?;
        let (attrs, _) = csr::name_attrs(x.subject())?;
        let value = |a: Attr| attrs.iter().find(|(k, _)| *k == a).map(|(_, v)| v.clone());
        Ok((
            value(Attr::Organization).unwrap_or_else(|| "ecca".into()),
            value(Attr::Country).unwrap_or_else(|| "CN".into()),
        ))
    }

    /// The subject of a new CA certificate of `hierarchy`: "ORG [NAME] WHAT".
    fn names(&self, hierarchy: &str, what: &str) -> Result<Vec<(Attr, String)>> {
        let (org, country) = self.subject_base()?;
        let cn = if hierarchy == DEFAULT_ISSUER {
            format!("{org} {what}")
        } else {
            format!("{org} {hierarchy} {what}")
        };
        Ok(vec![
            (Attr::Country, country),
            (Attr::Organization, org),
            (Attr::CommonName, cn),
        ])
    }

    /// Writes a new CA certificate and its key under `ca/issuers/NAME/` (key 0600, written
    /// first; certificate last), sealing a software key for the other instances.
    fn place(&self, hierarchy: &str, der: &[u8], saved: &SavedKey) -> Result<Placed> {
        let id = CaId::of_cert(der);
        let dir = self.layout.dir.join("ca/issuers").join(hierarchy);
        pemfile::private_dir(&self.layout.dir.join("ca/issuers"))?;
        pemfile::private_dir(&dir)?;
        let key = dir.join(format!("{id}.key"));
        let cert = dir.join(format!("{id}.pem"));
        saved.save(&key)?;
        pemfile::write_public(&cert, pemfile::certs_to_pem([der]).as_bytes())?;
        let (key_ref, wrapped_key) = match saved {
            SavedKey::Uri(uri) => (uri.clone(), None),
            SavedKey::Software(k) => (
                format!("file:ca/issuers/{hierarchy}/{id}.key"),
                self.seal(&id, k)?,
            ),
        };
        Ok(Placed {
            id,
            key_ref,
            wrapped_key,
            files: vec![cert, key],
        })
    }

    /// Makes a new hierarchy: a root and an issuing CA of `algorithm` (keys in the token
    /// when one is configured). Recorded by the caller; until then nothing uses it.
    pub fn new_hierarchy(
        &self,
        name: &str,
        algorithm: CaKeyAlg,
        (root_days, issuing_days): (u32, u32),
    ) -> Result<(IssuerRecord, Vec<PathBuf>)> {
        check_name(name)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let keys = KeyMaker::new(self.hsm.as_ref(), algorithm)?;
        let (root, placed) = self.new_root(name, &keys, "Root CA", root_days)?;
        let mut files = placed.files.clone();
        let root_cert = issuer_cert(&root, root_entry(placed), now)?;
        let issuing =
            self.new_issuing_under(name, &root, &root_cert.ca_id, &keys, issuing_days, 1)?;
        files.extend(issuing.files);
        let record = IssuerRecord {
            name: name.into(),
            algorithm,
            created_at: now,
            certs: vec![root_cert, issuing.cert],
        };
        Ok((record, files))
    }

    /// Makes the successor of a hierarchy's issuing CA: a new key, certified by the active
    /// root; `generation` numbers its common name. Recorded by the caller (which moves the
    /// old one to `retiring`).
    pub fn new_issuing(&self, name: &str, days: u32, generation: usize) -> Result<NewCas> {
        let h = self.hierarchy(name)?;
        let keys = KeyMaker::new(self.hsm.as_ref(), h.algorithm)?;
        let made = self.new_issuing_under(name, &h.root, &h.root.id, &keys, days, generation)?;
        Ok(NewCas {
            certs: vec![made.cert],
            files: made.files,
        })
    }

    /// Root rollover (RFC 4210 §4.4): a new root key and self-signed certificate, the two link
    /// certificates (new key under the old root, old key under the new root) so relying
    /// parties anchored at either validate both generations, and a new issuing CA under the
    /// new root. Recorded by the caller (the old root and issuing CA become retiring).
    pub fn new_root_generation(
        &self,
        name: &str,
        (root_days, issuing_days): (u32, u32),
        (root_generation, issuing_generation): (usize, usize),
    ) -> Result<NewCas> {
        let h = self.hierarchy(name)?;
        let old = &h.root;
        let now = OffsetDateTime::now_utc();
        let keys = KeyMaker::new(self.hsm.as_ref(), h.algorithm)?;
        let (new, placed) = self.new_root(
            name,
            &keys,
            &format!("Root CA {root_generation}"),
            root_days,
        )?;
        let mut files = placed.files.clone();
        let new_cert = issuer_cert(&new, root_entry(placed), now.unix_timestamp())?;
        let new_id = new_cert.ca_id.clone();
        // The links live as long as the old root: past it, nobody anchors there.
        let link_until = old.not_after.min(new.not_after);
        let new_attrs = subject_attrs(&new)?;
        let old_attrs = subject_attrs(old)?;
        let new_with_old = {
            let mut p = ca_params(&new_attrs, root_days, None)?;
            p.not_after = link_until;
            urls_of(&self.base_url, &old.id).apply(&mut p)?;
            old.certify_key_of(&p, &new)?
        };
        let old_with_new = {
            let mut p = ca_params(&old_attrs, root_days, None)?;
            p.not_after = link_until;
            urls_of(&self.base_url, &new_id).apply(&mut p)?;
            new.certify_key_of(&p, old)?
        };
        let mut certs = vec![new_cert];
        let links = [
            (new_with_old, old.id.clone(), &new),
            (old_with_new, new_id.clone(), &old.cert),
        ];
        for (der, parent, subject) in links {
            let view = CaView::from_der(der)?;
            // Paths chain only if a link names and identifies its key exactly as the root does.
            if view.subject_der != subject.subject_der || view.key_id != subject.key_id {
                return Err(Error::Conflict(format!(
                    "a link certificate would not match root {:?} byte for byte; no rollover made",
                    String::from_utf8_lossy(&subject.subject_der)
                )));
            }
            let id = CaId::of_cert(&view.der);
            let path = self
                .layout
                .dir
                .join("ca/issuers")
                .join(name)
                .join(format!("link-{id}.pem"));
            pemfile::write_public(
                &path,
                pemfile::certs_to_pem([view.der.as_slice()]).as_bytes(),
            )?;
            files.push(path);
            let entry = Entry {
                id,
                role: CaRole::Link,
                parent,
                key_ref: String::new(),
                wrapped_key: None,
            };
            certs.push(issuer_cert(&view, entry, now.unix_timestamp())?);
        }
        let issuing = self.new_issuing_under(
            name,
            &new,
            &new_id,
            &keys,
            issuing_days.min(root_days),
            issuing_generation,
        )?;
        files.extend(issuing.files);
        certs.push(issuing.cert);
        Ok(NewCas { certs, files })
    }

    /// A new self-signed root for a hierarchy, placed on disk.
    fn new_root(
        &self,
        name: &str,
        keys: &KeyMaker,
        what: &str,
        days: u32,
    ) -> Result<(CaCert, Placed)> {
        let (key, saved) = keys.generate(&format!("{name}-root"))?;
        let params = ca_params(&self.names(name, what)?, days, None)?;
        let der = issue::self_sign_root(&params, key.as_ref())?;
        let root = CaCert::new(der, key)?;
        let placed = self.place(name, &root.der, &saved)?;
        Ok((root, placed))
    }

    fn new_issuing_under(
        &self,
        name: &str,
        root: &CaCert,
        root_id: &CaId,
        keys: &KeyMaker,
        days: u32,
        generation: usize,
    ) -> Result<MadeCa> {
        let now = OffsetDateTime::now_utc();
        let (key, saved) = keys.generate(&format!("{name}-issuing"))?;
        let what = format!("Issuing CA {generation}");
        let mut params = ca_params(&self.names(name, &what)?, days, Some(0))?;
        params.not_after = params.not_after.min(root.not_after);
        urls_of(&self.base_url, root_id).apply(&mut params)?;
        let der = root.sign_subordinate(&params, key.as_ref())?;
        let cert = CaCert::new(der, key)?;
        let placed = self.place(name, &cert.der, &saved)?;
        let files = placed.files.clone();
        let entry = Entry {
            id: placed.id,
            role: CaRole::Issuing,
            parent: root_id.clone(),
            key_ref: placed.key_ref,
            wrapped_key: placed.wrapped_key,
        };
        Ok(MadeCa {
            cert: issuer_cert(&cert, entry, now.unix_timestamp())?,
            files,
        })
    }
}

/// A CA certificate just made, and the files written for it.
struct MadeCa {
    cert: IssuerCert,
    files: Vec<PathBuf>,
}

fn root_entry(p: Placed) -> Entry {
    Entry {
        parent: p.id.clone(),
        id: p.id,
        role: CaRole::Root,
        key_ref: p.key_ref,
        wrapped_key: p.wrapped_key,
    }
}

/// A CA's subject as attributes (ours: made from attributes by rcgen).
fn subject_attrs(ca: &CaCert) -> Result<Vec<(Attr, String)>> {
    let (_, x) = X509Certificate::from_der(&ca.der)
        .map_err(|e| Error::Config(format!("CA certificate: {e}")))?;
    Ok(csr::name_attrs(x.subject())?.0)
}
