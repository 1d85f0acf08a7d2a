//! The CA hierarchy on disk: created on first start (or by `ecca init`), loaded afterwards.
//!
//! ```text
//! DIR/ca/root.pem, root.key          self-signed root (trust anchor)
//! DIR/ca/issuing.pem, issuing.key    issuing CA, signed by the root, pathLen 0
//! DIR/ca/credential.pem, .key        credential CA, self-signed, pathLen 0: signs only API
//!                                    credentials and the gRPC server's certificate
//! DIR/ca/credential-link.pem         (data directories from before the credential CA) the
//!                                    credential CA's key certified by the root, so clients
//!                                    whose ca.pem is still the root verify the server
//! DIR/tls/server.pem, server.key     the gRPC server's certificate (and the link, if any)
//! DIR/ocsp/responder.pem, .key       the issuing CA's delegated OCSP responder
//! DIR/tsa/tsa.pem, tsa.key           the RFC 3161 time-stamping unit
//! DIR/admin/cert.pem, key.pem, ca.pem  the first admin's client credential; ca.pem = the
//!                                    credential CA (what the server's certificate chains to)
//! DIR/ecca.db                        the store
//! ```
//! Directories are 0700 and key files 0600; keys are never logged.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, IsCa, KeyIdMethod, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::core::csr::{self, Attr};
use crate::core::issue::{self, IssuerUrls};
use crate::core::keys::CaKeyAlg;
use crate::core::records::{CaId, DEFAULT_ISSUER};
use crate::core::serial::Serial;
use crate::error::{Error, Result};
use crate::layout::{Layout, paths};

mod ca;
mod hierarchy;

use crate::pemfile;
use crate::signer::pkcs11::{self, Pkcs11Config, Pkcs11Key, Token};
use crate::signer::{Signer, SoftwareKey};
pub use ca::{CaCert, WorkingKey};
pub use hierarchy::{Hierarchy, IssuingCa, LinkCert, NewCas, RootCa, check_name, urls_of};

/// Options for creating a CA hierarchy.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Algorithm of the root and issuing CA keys.
    pub algorithm: CaKeyAlg,
    /// Organization name in the CA subjects, and the prefix of their common names.
    pub organization: String,
    /// Country code in the CA subjects.
    pub country: String,
    /// Root validity in days.
    pub root_days: u32,
    /// Issuing CA validity in days.
    pub issuing_days: u32,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            algorithm: CaKeyAlg::P256,
            organization: "ecca".into(),
            country: "CN".into(),
            root_days: 20 * 365,
            issuing_days: 10 * 365,
        }
    }
}

/// The CA hierarchies: the data directory's first (`default`, whose first root and issuing
/// CA are named here), and the others the store records (`hierarchies`).
#[derive(Debug)]
pub struct Authority {
    /// The data directory's first root (cross-certificates, the credential CA's link).
    pub root: Arc<RootCa>,
    /// The data directory's first issuing CA (the delegated OCSP responder, the TSA, audit
    /// checkpoints).
    pub issuing: Arc<IssuingCa>,
    /// Signs API credentials and the gRPC server's certificate, nothing else; a root of its
    /// own, which the gRPC listener alone trusts for clients. Never cross-certified.
    pub credential: CaCert,
    /// For data directories that predate the credential CA: its key certified by our root,
    /// sent with the gRPC server's certificate so clients anchored at the root still verify it.
    pub credential_link: Option<Vec<u8>>,
    /// Public base URL (http://host:port) under which CRLs, OCSP and CA certificates are served.
    pub base_url: String,
    layout: Layout,
    hsm: Option<Pkcs11Config>,
    hierarchies: std::sync::RwLock<Arc<Vec<Arc<Hierarchy>>>>,
}

/// URLs for certificates issued by the root (the issuing CA, cross-certificates).
pub fn root_urls(base: &str) -> IssuerUrls {
    IssuerUrls {
        crl: format!("{base}{}", paths::ROOT_CRL),
        ocsp: format!("{base}{}", paths::OCSP),
        ca_issuers: format!("{base}{}", paths::ROOT_CERT),
    }
}

/// Checks and normalises a public base URL: http (RFC 5280 clients fetch CRLs and OCSP over
/// plain HTTP; https would need revocation checking of its own), no trailing slash.
pub fn normalize_base_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Error::Config(format!("public_base_url {url:?} must start with http://")))?;
    if rest.is_empty() || !url.is_ascii() || url.contains(char::is_whitespace) {
        return Err(Error::Config(format!(
            "public_base_url {url:?} is not a usable URL"
        )));
    }
    Ok(url.to_string())
}

pub(crate) fn ca_params(
    attrs: &[(Attr, String)],
    days: u32,
    path_len: Option<u8>,
) -> Result<CertificateParams> {
    let now = OffsetDateTime::now_utc();
    let mut p = CertificateParams::default();
    p.serial_number = Some(SerialNumber::from_slice(Serial::random()?.as_bytes()));
    p.not_before = (now - issue::BACKDATE).replace_nanosecond(0).unwrap_or(now);
    p.not_after = p.not_before + Duration::days(days.into());
    p.distinguished_name = issue::distinguished_name(attrs)?;
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    p.key_identifier_method = KeyIdMethod::Sha256;
    Ok(p)
}

/// A new CA key and what the data directory keeps of it.
#[derive(Debug)]
pub enum SavedKey {
    Software(Arc<SoftwareKey>),
    Uri(String),
}

impl SavedKey {
    /// Writes the key file (0600): PKCS#8 PEM, or the token URI.
    pub fn save(&self, path: &Path) -> Result<()> {
        match self {
            SavedKey::Software(k) => k.save(path),
            SavedKey::Uri(uri) => pemfile::write_private(path, format!("{uri}\n").as_bytes()),
        }
    }
}

/// Where ecca generates its keys (CA, OCSP responder, TSA): in software, or in the PKCS#11
/// token when one is configured.
#[derive(Debug)]
pub struct KeyMaker {
    alg: CaKeyAlg,
    token: Option<(Arc<Token>, Pkcs11Config)>,
    /// Makes labels unique per CA, so one token can hold several CAs' keys.
    suffix: String,
}

impl KeyMaker {
    pub fn new(hsm: Option<&Pkcs11Config>, alg: CaKeyAlg) -> Result<Self> {
        let token = match hsm {
            Some(cfg) => Some((Token::open(cfg)?, cfg.clone())),
            None => None,
        };
        let suffix = hex::encode(&Serial::random()?.as_bytes()[..4]);
        Ok(KeyMaker { alg, token, suffix })
    }

    /// A new working key (OCSP responder, TSA) to be certified: its SubjectPublicKeyInfo, and
    /// what to save. [`WorkingKey::open`] opens it once certified.
    pub fn generate_working(&self, role: &str) -> Result<(Vec<u8>, SavedKey)> {
        let (key, saved) = self.generate(role)?;
        Ok((issue::spki_der(key.as_ref()), saved))
    }

    /// A new key; `role` goes into its token label (ecca-<role>-<random>).
    fn generate(&self, role: &str) -> Result<(Arc<dyn Signer>, SavedKey)> {
        match &self.token {
            None => {
                let key = Arc::new(SoftwareKey::generate(self.alg)?);
                Ok((key.clone(), SavedKey::Software(key)))
            }
            Some((token, cfg)) => {
                let label = format!("ecca-{role}-{}", self.suffix);
                let key = Pkcs11Key::generate(token.clone(), &label, self.alg)?;
                Ok((Arc::new(key), SavedKey::Uri(cfg.key_uri(&label))))
            }
        }
    }
}

/// Makes the credential CA, a self-signed root (pathLen 0, same algorithm and lifetime as
/// the root), and writes its key and certificate (certificate last). With `link_from`, also
/// certifies its key under that root (`Layout::credential_link`).
fn new_credential_ca(
    keys: &KeyMaker,
    opts: &InitOptions,
    link_from: Option<(&CaCert, &str)>,
    layout: &Layout,
) -> Result<CaCert> {
    let org = opts.organization.trim();
    let attrs = vec![
        (Attr::Country, opts.country.clone()),
        (Attr::Organization, org.to_string()),
        (Attr::CommonName, format!("{org} Credential CA")),
    ];
    let (key, saved) = keys.generate("credential")?;
    let params = ca_params(&attrs, opts.root_days, Some(0))?;
    let der = issue::self_sign_root(&params, key.as_ref())?;
    let ca = CaCert::new(der, key.clone())?;
    if let Some((root, base_url)) = link_from {
        let mut link = ca_params(&attrs, opts.issuing_days.min(opts.root_days), Some(0))?;
        link.not_after = link.not_after.min(root.not_after);
        root_urls(base_url).apply(&mut link)?;
        let der = root.sign_subordinate(&link, key.as_ref())?;
        pemfile::write_public(
            &layout.credential_link(),
            pemfile::certs_to_pem([der.as_slice()]).as_bytes(),
        )?;
    }
    saved.save(&layout.credential_key())?;
    pemfile::write_public(
        &layout.credential_cert(),
        pemfile::certs_to_pem([ca.der.as_slice()]).as_bytes(),
    )?;
    Ok(ca)
}

/// Opens a key in the configured token by its PKCS#11 URI.
fn load_key_uri(uri: &str, hsm: Option<&Pkcs11Config>) -> Result<Arc<dyn Signer>> {
    let label = pkcs11::uri_object(uri)
        .ok_or_else(|| Error::Config(format!("key reference {uri:?} is not a PKCS#11 URI")))?;
    let cfg = hsm.ok_or_else(|| {
        Error::Config(
            "a CA key is in a PKCS#11 token: configure [pkcs11] (module, token_label, PIN)".into(),
        )
    })?;
    Ok(Arc::new(Pkcs11Key::open(Token::open(cfg)?, &label)?))
}

/// Opens a CA key file: PKCS#8 PEM, or a PKCS#11 URI naming a key in the configured token.
fn load_key(path: &Path, hsm: Option<&Pkcs11Config>) -> Result<Arc<dyn Signer>> {
    let head = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let Some(label) = pkcs11::uri_object(&String::from_utf8_lossy(&head)) else {
        return Ok(Arc::new(SoftwareKey::load(path)?));
    };
    let cfg = hsm.ok_or_else(|| {
        Error::Config(format!(
            "{} names a key in a PKCS#11 token: configure [pkcs11] (module, token_label, PIN)",
            path.display()
        ))
    })?;
    Ok(Arc::new(Pkcs11Key::open(Token::open(cfg)?, &label)?))
}

impl Authority {
    /// Creates a root and an issuing CA in `layout`, refusing to overwrite an existing CA.
    /// The issuing CA points at `base_url` for the root's CRL and certificate.
    /// With `hsm`, both keys are generated inside that PKCS#11 token and the key files hold
    /// only RFC 7512 URIs naming them.
    pub fn create(
        layout: &Layout,
        opts: &InitOptions,
        base_url: &str,
        hsm: Option<&Pkcs11Config>,
    ) -> Result<Self> {
        let base_url = normalize_base_url(base_url)?;
        if layout.is_initialized() {
            return Err(Error::Config(format!(
                "{} already holds a CA; choose an empty directory",
                layout.dir.display()
            )));
        }
        pemfile::private_dir(&layout.dir)?;
        pemfile::private_dir(&layout.dir.join("ca"))?;
        let org = opts.organization.trim();
        let base = |cn: String| {
            vec![
                (Attr::Country, opts.country.clone()),
                (Attr::Organization, org.to_string()),
                (Attr::CommonName, cn),
            ]
        };

        let keys = KeyMaker::new(hsm, opts.algorithm)?;
        let (root_key, root_saved) = keys.generate("root")?;
        let root_params = ca_params(&base(format!("{org} Root CA")), opts.root_days, None)?;
        let root_der = issue::self_sign_root(&root_params, root_key.as_ref())?;
        let root = CaCert::new(root_der, root_key.clone())?;

        let (issuing_key, issuing_saved) = keys.generate("issuing")?;
        let issuing_days = opts.issuing_days.min(opts.root_days);
        let mut issuing_params =
            ca_params(&base(format!("{org} Issuing CA 1")), issuing_days, Some(0))?;
        issuing_params.not_after = issuing_params.not_after.min(root.not_after);
        root_urls(&base_url).apply(&mut issuing_params)?;
        let issuing_der = root.sign_subordinate(&issuing_params, issuing_key.as_ref())?;
        let issuing = CaCert::new(issuing_der, issuing_key.clone())?;
        let credential = new_credential_ca(&keys, opts, None, layout)?;

        // Keys first (create_new: never clobbers), certificates last: a half-written CA is
        // never mistaken for a complete one, because is_initialized looks at root.pem.
        root_saved.save(&layout.root_key())?;
        issuing_saved.save(&layout.issuing_key())?;
        pemfile::write_public(
            &layout.issuing_cert(),
            pemfile::certs_to_pem([issuing.der.as_slice()]).as_bytes(),
        )?;
        pemfile::write_public(
            &layout.root_cert(),
            pemfile::certs_to_pem([root.der.as_slice()]).as_bytes(),
        )?;
        Ok(Authority::assemble(
            root, issuing, credential, None, base_url, layout, hsm,
        ))
    }

    /// The first hierarchy from its root and issuing CA; others come with [`Authority::apply`].
    fn assemble(
        root: CaCert,
        issuing: CaCert,
        credential: CaCert,
        credential_link: Option<Vec<u8>>,
        base_url: String,
        layout: &Layout,
        hsm: Option<&Pkcs11Config>,
    ) -> Self {
        let algorithm = root.algorithm();
        let root = Arc::new(RootCa {
            id: CaId::root(),
            hierarchy: DEFAULT_ISSUER.into(),
            cert: root,
        });
        let issuing = Arc::new(IssuingCa::new(
            CaId::issuing(),
            DEFAULT_ISSUER,
            issuing,
            root.clone(),
            &base_url,
        ));
        let first = Hierarchy {
            name: DEFAULT_ISSUER.into(),
            algorithm,
            root: root.clone(),
            roots: vec![root.clone()],
            links: Vec::new(),
            active: Some(issuing.clone()),
            retiring: Vec::new(),
            unavailable: None,
        };
        Authority {
            root,
            issuing,
            credential,
            credential_link,
            base_url,
            layout: layout.clone(),
            hsm: hsm.cloned(),
            hierarchies: std::sync::RwLock::new(Arc::new(vec![Arc::new(first)])),
        }
    }

    /// Loads an existing hierarchy; keys named by a PKCS#11 URI are opened in `hsm`.
    pub fn load(layout: &Layout, base_url: &str, hsm: Option<&Pkcs11Config>) -> Result<Self> {
        let base_url = normalize_base_url(base_url)?;
        let load = |cert: PathBuf, key: PathBuf| -> Result<CaCert> {
            let pem = std::fs::read(&cert).map_err(|e| Error::io(&cert, e))?;
            let der = pemfile::parse_certs(&pem)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::Config(format!("{}: no certificate", cert.display())))?;
            CaCert::new(der, load_key(&key, hsm)?)
        };
        let root = load(layout.root_cert(), layout.root_key())?;
        let issuing = load(layout.issuing_cert(), layout.issuing_key())?;
        let credential = load(layout.credential_cert(), layout.credential_key())?;
        let link = layout.credential_link();
        let credential_link = match std::fs::read(&link) {
            Ok(pem) => pemfile::parse_certs(&pem)?.into_iter().next(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&link, e)),
        };
        Ok(Authority::assemble(
            root,
            issuing,
            credential,
            credential_link,
            base_url,
            layout,
            hsm,
        ))
    }

    /// Gives a data directory made before the credential CA existed its credential CA
    /// (signed by its root). Returns true if it was created now.
    pub fn ensure_credential_ca(
        layout: &Layout,
        base_url: &str,
        hsm: Option<&Pkcs11Config>,
    ) -> Result<bool> {
        if layout.credential_cert().exists() {
            return Ok(false);
        }
        let base_url = normalize_base_url(base_url)?;
        let pem =
            std::fs::read(layout.root_cert()).map_err(|e| Error::io(layout.root_cert(), e))?;
        let der = pemfile::parse_certs(&pem)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Config("ca/root.pem: no certificate".into()))?;
        let root = CaCert::new(der, load_key(&layout.root_key(), hsm)?)?;
        let (_, x) = X509Certificate::from_der(&root.der)
            .map_err(|e| Error::Config(format!("root certificate: {e}")))?;
        let (attrs, _) = csr::name_attrs(x.subject())?;
        let value = |a: Attr| attrs.iter().find(|(k, _)| *k == a).map(|(_, v)| v.clone());
        let opts = InitOptions {
            algorithm: root.algorithm(),
            organization: value(Attr::Organization).unwrap_or_else(|| "ecca".into()),
            country: value(Attr::Country).unwrap_or_else(|| "CN".into()),
            ..InitOptions::default()
        };
        let keys = KeyMaker::new(hsm, opts.algorithm)?;
        new_credential_ca(&keys, &opts, Some((&root, &base_url)), layout)?;
        Ok(true)
    }
}
