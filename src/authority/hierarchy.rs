//! CA hierarchies side by side: each a root and its issuing CAs (one active, older ones
//! retiring until what they issued has expired), recorded in the store and opened from the
//! data directory or the token.
//!
//! ```text
//! DIR/ca/issuers/NAME/ID.pem, ID.key   a CA certificate made after init (ID: first 16 hex
//!                                      digits of its SHA-256) and its key (PKCS#8 or a URI)
//! ```
//! The data directory's first root and issuing CA stay in `ca/root.*` and `ca/issuing.*`.
use std::ops::Deref;
use std::sync::Arc;

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{Authority, CaCert, KeyMaker, ca_params, root_urls};
use crate::core::csr::{self, Attr};
use crate::core::issue::{self, IssuerUrls};
use crate::core::keys::CaKeyAlg;
use crate::core::records::{CaId, CaRole, CaState, DEFAULT_ISSUER, IssuerCert, IssuerRecord};
use crate::error::{Error, Result};
use crate::layout::paths;
use crate::pemfile;

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
        let urls = IssuerUrls {
            crl: format!("{base}{}", paths::crl(&id)),
            ocsp: format!("{base}{}", paths::OCSP),
            ca_issuers: format!("{base}{}", paths::ca_cert(&id)),
        };
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

/// One hierarchy as loaded.
#[derive(Debug)]
pub struct Hierarchy {
    pub name: String,
    pub algorithm: CaKeyAlg,
    pub root: Arc<RootCa>,
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
}

/// What a new CA certificate is made of before it is recorded.
#[derive(Debug)]
pub struct NewCa {
    pub cert: IssuerCert,
    /// Paths written (certificate, key), for the operator's report.
    pub files: Vec<std::path::PathBuf>,
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

fn issuer_cert(
    ca: &CaCert,
    id: CaId,
    role: CaRole,
    key_ref: String,
    now: i64,
) -> Result<IssuerCert> {
    let (_, name) = x509_parser::x509::X509Name::from_der(&ca.subject_der)
        .map_err(|e| Error::Internal(format!("our CA subject: {e}")))?;
    Ok(IssuerCert {
        sha256: crate::core::fingerprint(&ca.der),
        ca_id: id,
        key_ref,
        role,
        state: CaState::Active,
        der: ca.der.clone(),
        subject: name.to_string(),
        serial: hex::encode(&ca.serial),
        not_after: ca.not_after.unix_timestamp(),
        added_at: now,
    })
}

impl Authority {
    /// This data directory's hierarchy as the store records it at first: issuer `default`,
    /// its root and issuing CA active.
    pub fn default_issuer(&self, now: i64) -> Result<IssuerRecord> {
        Ok(IssuerRecord {
            name: DEFAULT_ISSUER.into(),
            algorithm: self.root.algorithm(),
            created_at: now,
            certs: vec![
                issuer_cert(
                    &self.root,
                    CaId::root(),
                    CaRole::Root,
                    "file:ca/root.key".into(),
                    now,
                )?,
                issuer_cert(
                    &self.issuing,
                    CaId::issuing(),
                    CaRole::Issuing,
                    "file:ca/issuing.key".into(),
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

    /// A CA certificate we publish, by id (roots, active and retiring issuing CAs).
    pub fn ca_cert_der(&self, id: &CaId) -> Option<Vec<u8>> {
        for h in self.hierarchies().iter() {
            if &h.root.id == id {
                return Some(h.root.der.clone());
            }
            if let Some(c) = h.issuing().find(|c| &c.id == id) {
                return Some(c.der.clone());
            }
        }
        None
    }

    /// An issuing CA (active or retiring) by id.
    pub fn issuing_ca(&self, id: &CaId) -> Option<Arc<IssuingCa>> {
        self.hierarchies()
            .iter()
            .flat_map(|h| h.issuing().cloned().collect::<Vec<_>>())
            .find(|c| &c.id == id)
    }

    /// Replaces the loaded hierarchies with what the store records, opening keys not yet
    /// open (already open CAs are kept, so certificates in flight are unaffected). A CA
    /// whose key cannot be opened here leaves its hierarchy unable to issue, with the reason.
    pub fn apply(&self, records: &[IssuerRecord]) -> Result<()> {
        let current = self.hierarchies();
        let known_issuing = |id: &CaId| {
            current
                .iter()
                .flat_map(|h| h.issuing().cloned().collect::<Vec<_>>())
                .find(|c| &c.id == id)
        };
        let known_root = |id: &CaId| current.iter().map(|h| h.root.clone()).find(|r| &r.id == id);
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let Some(root_cert) = record
                .certs
                .iter()
                .rev()
                .find(|c| c.role == CaRole::Root && c.state == CaState::Active)
            else {
                tracing::error!(issuer = %record.name, "issuer has no active root; skipped");
                continue;
            };
            let root = match known_root(&root_cert.ca_id) {
                Some(r) => r,
                None => match self.open(root_cert) {
                    Ok(cert) => Arc::new(RootCa {
                        id: root_cert.ca_id.clone(),
                        hierarchy: record.name.clone(),
                        cert,
                    }),
                    Err(e) => {
                        tracing::error!(issuer = %record.name, error = %e, "cannot open the root's key; issuer skipped");
                        continue;
                    }
                },
            };
            let mut h = Hierarchy {
                name: record.name.clone(),
                algorithm: record.algorithm,
                root: root.clone(),
                active: None,
                retiring: Vec::new(),
                unavailable: None,
            };
            for c in record.certs.iter().filter(|c| c.role == CaRole::Issuing) {
                if c.state == CaState::Retired {
                    continue;
                }
                let ca = match known_issuing(&c.ca_id) {
                    Some(ca) => ca,
                    None => match self.open(c) {
                        Ok(cert) => Arc::new(IssuingCa::new(
                            c.ca_id.clone(),
                            &record.name,
                            cert,
                            root.clone(),
                            &self.base_url,
                        )),
                        Err(e) => {
                            let why = format!(
                                "issuer {:?}: the key of CA {} cannot be opened on this instance ({e}); copy {} from the instance that made it, or keep CA keys in the shared token",
                                record.name,
                                c.ca_id,
                                c.key_ref.trim_start_matches("file:")
                            );
                            tracing::error!("{why}");
                            if c.state == CaState::Active {
                                h.unavailable = Some(why);
                            }
                            continue;
                        }
                    },
                };
                match c.state {
                    CaState::Active => h.active = Some(ca),
                    _ => h.retiring.push(ca),
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

    /// Opens a recorded CA certificate with its key: the data directory's first root and
    /// issuing CA are open already.
    fn open(&self, c: &IssuerCert) -> Result<CaCert> {
        let key = match c.key_ref.strip_prefix("file:") {
            Some(rel) => {
                if rel.split('/').any(|p| p == ".." || p.is_empty()) {
                    return Err(Error::Config(format!("key reference {:?}", c.key_ref)));
                }
                super::load_key(&self.layout.dir.join(rel), self.hsm.as_ref())?
            }
            None => super::load_key_uri(&c.key_ref, self.hsm.as_ref())?,
        };
        CaCert::new(c.der.clone(), key)
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

    fn names(&self, cn: String) -> Result<Vec<(Attr, String)>> {
        let (org, country) = self.subject_base()?;
        Ok(vec![
            (Attr::Country, country),
            (Attr::Organization, org),
            (Attr::CommonName, cn),
        ])
    }

    /// Writes a new CA certificate and its key under `ca/issuers/NAME/` (key 0600, written
    /// first; certificate last).
    fn save(
        &self,
        hierarchy: &str,
        der: &[u8],
        saved: &super::SavedKey,
    ) -> Result<(CaId, String, Vec<std::path::PathBuf>)> {
        let id = CaId::of_cert(der);
        let dir = self.layout.dir.join("ca/issuers").join(hierarchy);
        pemfile::private_dir(&self.layout.dir.join("ca/issuers"))?;
        pemfile::private_dir(&dir)?;
        let key = dir.join(format!("{id}.key"));
        let cert = dir.join(format!("{id}.pem"));
        saved.save(&key)?;
        pemfile::write_public(&cert, pemfile::certs_to_pem([der]).as_bytes())?;
        let key_ref = match saved {
            super::SavedKey::Uri(uri) => uri.clone(),
            super::SavedKey::Software(_) => format!("file:ca/issuers/{hierarchy}/{id}.key"),
        };
        Ok((id, key_ref, vec![cert, key]))
    }

    /// Makes a new hierarchy: a root and an issuing CA of `algorithm` (keys in the token
    /// when one is configured). Recorded by the caller; until then nothing uses it.
    pub fn new_hierarchy(
        &self,
        name: &str,
        algorithm: CaKeyAlg,
        days: (u32, u32),
    ) -> Result<(IssuerRecord, Vec<std::path::PathBuf>)> {
        check_name(name)?;
        let (root_days, issuing_days) = days;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let keys = KeyMaker::new(self.hsm.as_ref(), algorithm)?;
        let (org, _) = self.subject_base()?;
        let (root_key, root_saved) = keys.generate(&format!("{name}-root"))?;
        let params = ca_params(
            &self.names(format!("{org} {name} Root CA"))?,
            root_days,
            None,
        )?;
        let root_der = issue::self_sign_root(&params, root_key.as_ref())?;
        let root = CaCert::new(root_der, root_key)?;
        let (root_id, root_ref, mut files) = self.save(name, &root.der, &root_saved)?;
        let issuing =
            self.sign_issuing(name, &root, &root_id, &keys, issuing_days.min(root_days))?;
        files.extend(issuing.files);
        let record = IssuerRecord {
            name: name.into(),
            algorithm,
            created_at: now,
            certs: vec![
                issuer_cert(&root, root_id, CaRole::Root, root_ref, now)?,
                issuing.cert,
            ],
        };
        Ok((record, files))
    }

    /// Makes the successor of a hierarchy's issuing CA: a new key, certified by the same
    /// root. Recorded by the caller (which retires the old one to `retiring`).
    pub fn new_issuing(&self, name: &str, days: u32) -> Result<NewCa> {
        let h = self.hierarchy(name)?;
        let keys = KeyMaker::new(self.hsm.as_ref(), h.algorithm)?;
        self.sign_issuing(name, &h.root, &h.root.id, &keys, days)
    }

    fn sign_issuing(
        &self,
        name: &str,
        root: &CaCert,
        root_id: &CaId,
        keys: &KeyMaker,
        days: u32,
    ) -> Result<NewCa> {
        let now = OffsetDateTime::now_utc();
        let (org, _) = self.subject_base()?;
        let (key, saved) = keys.generate(&format!("{name}-issuing"))?;
        // A fresh common name per generation: relying parties and logs tell them apart.
        let cn = format!("{org} {name} Issuing CA {}", now.date());
        let mut params = ca_params(&self.names(cn)?, days, Some(0))?;
        params.not_after = params.not_after.min(root.not_after);
        let mut urls = root_urls(&self.base_url);
        urls.crl = format!("{}{}", self.base_url, paths::crl(root_id));
        urls.ca_issuers = format!("{}{}", self.base_url, paths::ca_cert(root_id));
        urls.apply(&mut params)?;
        let der = root.sign_subordinate(&params, key.as_ref())?;
        let cert = CaCert::new(der, key)?;
        let (id, key_ref, files) = self.save(name, &cert.der, &saved)?;
        Ok(NewCa {
            cert: issuer_cert(&cert, id, CaRole::Issuing, key_ref, now.unix_timestamp())?,
            files,
        })
    }
}
