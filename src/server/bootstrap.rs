//! Bootstrap: the data directory initialized on first start (CA hierarchy, server
//! certificate, admin credential) or loaded and brought up to date, and ecca's own
//! certificates (server TLS, OCSP responder, TSA) issued when missing or expiring.
use std::net::IpAddr;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::authority::{Authority, KeyMaker, WorkingKey};
use crate::config::ServerConfig;
use crate::core::csr::Attr;
use crate::core::issue::Names;
use crate::core::keys::{CaKeyAlg, Family};
use crate::core::profile::Profiles;
use crate::core::records::{CaId, DEFAULT_ISSUER};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::pemfile;
use crate::service::{Internal, Service};
use crate::signer::SoftwareKey;
use crate::signer::pkcs11::Pkcs11Config;
use crate::store::Role;

/// Renew the delegated OCSP responder certificate when it has less than this left.
pub(super) const OCSP_RENEW_BEFORE: Duration = Duration::days(30);
/// Renew the TSA certificate when it has less than this left.
pub(super) const TSA_RENEW_BEFORE: Duration = Duration::days(90);

/// When the gRPC server's certificate is renewed (`tls_renew_before_days`).
pub(super) fn tls_renew_before(config: &ServerConfig) -> Duration {
    Duration::days(i64::from(config.tls_renew_before_days))
}

/// Initializes the data directory if it is empty: CA hierarchy, server certificate, admin credential.
/// `base_url` is the public HTTP base that certificates point at. Returns the service and whether
/// the CA was created now.
pub async fn prepare(
    config: &ServerConfig,
    base_url: &str,
    kmc: Option<crate::kmc::client::KmcClient>,
) -> Result<(Arc<Service>, bool)> {
    // Profiles first: a bad profile must stop a first start before any key is made.
    let profiles = match &config.profiles_dir {
        Some(dir) => crate::config::load_profiles(dir)?,
        None => Profiles::embedded()?,
    };
    let layout = Layout::new(&config.data_dir);
    let created = !layout.is_initialized();
    let hsm = config.pkcs11.as_ref().map(|s| s.resolve()).transpose()?;
    // The store first: a new CA must not be made over a database that already holds one.
    crate::pemfile::private_dir(&layout.dir)?;
    let store = crate::store::open(&layout, config.database.as_deref(), config.store_queue).await?;
    if created && store.audit_head().await?.0 > 0 {
        return Err(Error::Config(format!(
            "the database already holds a CA; to add an instance, copy the first instance's data directory to {} and start again",
            layout.dir.display()
        )));
    }
    // Before any key is made: every profile names an issuer this CA has.
    crate::service::issuers::check_profiles(store.as_ref(), &profiles, config.init.algorithm)
        .await?;
    let authority = if created {
        Authority::create(&layout, &config.init, base_url, hsm.as_ref())?
    } else {
        // Data directories made before the credential CA existed get one now.
        if Authority::ensure_credential_ca(&layout, base_url, hsm.as_ref())? {
            store
                .audit_event(
                    "ecca",
                    "ca.credential.created",
                    "credential",
                    "credential CA signed by the root; API credentials and the gRPC certificate move to it",
                )
                .await?;
            tracing::info!("credential CA created for an existing CA (trust boundary migration)");
        }
        Authority::load(&layout, base_url, hsm.as_ref())?
    };
    crate::service::issuers::record_default(store.as_ref(), &authority).await?;
    // Every hierarchy the store records, with the keys this instance can open.
    authority.apply(&store.issuers().await?)?;
    if let Some(name) = &config.national_issuer {
        let days = (config.init.root_days, config.init.issuing_days);
        crate::service::issuers::ensure_hierarchy(
            store.as_ref(),
            &authority,
            name,
            CaKeyAlg::Sm2,
            days,
        )
        .await?;
    }
    // Profile changes are state changes: the audit log records what this start loaded.
    let detail = format!(
        "version={} profiles={} sha256={}",
        env!("CARGO_PKG_VERSION"),
        profiles
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
        profiles.fingerprint()
    );
    store
        .audit_event("ecca", "server.started", "profiles", &detail)
        .await?;
    let mut service = Service::new(Arc::new(authority), store, Arc::new(profiles))?;
    service.set_tsa_policy(&config.tsa_policy)?;
    service.set_ca_days(config.init.root_days, config.init.issuing_days);
    service.set_verify_fetch_allow(config.verify_fetch_allow.clone());
    if let Some(kmc) = kmc {
        service.set_kmc(kmc);
    }
    let service = Arc::new(service);
    ensure_server_cert(&service, &layout, config, tls_renew_before(config)).await?;
    ensure_working_keys(&service, &layout, hsm.as_ref()).await?;
    ensure_admin_credential(&service, &layout).await?;
    Ok((service, created))
}

fn server_names(config: &ServerConfig) -> Result<Names> {
    let mut names = Names {
        subject: vec![(Attr::CommonName, "localhost".into())],
        dns: vec!["localhost".into()],
        ips: vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ],
        emails: vec![],
    };
    for n in &config.server_names {
        match n.parse::<IpAddr>() {
            Ok(ip) if !names.ips.contains(&ip) => names.ips.push(ip),
            Ok(_) => {}
            Err(_) => {
                let d = crate::core::names::dns_name(n, false)
                    .map_err(|e| Error::Config(format!("server_names: {e}")))?;
                if !names.dns.contains(&d) {
                    names.dns.push(d);
                }
            }
        }
    }
    Ok(names)
}

fn first_cert(pem_path: &std::path::Path) -> Option<Vec<u8>> {
    let pem = std::fs::read(pem_path).ok()?;
    pemfile::parse_certs(&pem).ok()?.into_iter().next()
}

pub(super) fn expires_within(pem_path: &std::path::Path, margin: Duration) -> bool {
    let Some(der) = first_cert(pem_path) else {
        return true;
    };
    match X509Certificate::from_der(&der) {
        Ok((_, c)) => c.validity().not_after.to_datetime() - margin < OffsetDateTime::now_utc(),
        Err(_) => true,
    }
}

/// True if the certificate in `pem_path` was signed by `ca` (its issuer name and signature).
fn issued_by(pem_path: &std::path::Path, ca: &crate::authority::CaCert) -> bool {
    let Some(der) = first_cert(pem_path) else {
        return false;
    };
    let (Ok((_, c)), Ok((_, issuer))) = (
        X509Certificate::from_der(&der),
        X509Certificate::from_der(&ca.der),
    ) else {
        return false;
    };
    c.issuer().as_raw() == issuer.subject().as_raw()
        && c.verify_signature(Some(issuer.public_key())).is_ok()
}

/// Issues the gRPC server's certificate when it is missing, within `renew_before` of expiry,
/// or not from the credential CA (older data directories). Returns true if it issued one.
pub(super) async fn ensure_server_cert(
    service: &Service,
    layout: &Layout,
    config: &ServerConfig,
    renew_before: Duration,
) -> Result<bool> {
    if !expires_within(&layout.server_cert(), renew_before)
        && layout.server_key().exists()
        && issued_by(&layout.server_cert(), &service.authority().credential)
    {
        return Ok(false);
    }
    let key = SoftwareKey::generate(CaKeyAlg::P256)?;
    let record = service
        .issue_internal(Internal::ServerTls, server_names(config)?, &key.spki_der())
        .await?;
    key.save(&layout.server_key())?;
    // Clients anchor at the credential CA; those still anchored at the root (data
    // directories from before it) get there through the link certificate.
    let mut chain = vec![record.der.as_slice()];
    chain.extend(service.authority().credential_link.as_deref());
    pemfile::write_public(
        &layout.server_cert(),
        pemfile::certs_to_pem(chain).as_bytes(),
    )?;
    tracing::info!(serial = %record.serial, "server TLS certificate issued");
    Ok(true)
}

/// The gRPC server's certificate chain and key as files hold them now.
pub(super) fn load_server_cert(layout: &Layout) -> Result<(Vec<Vec<u8>>, String)> {
    let pem =
        std::fs::read(layout.server_cert()).map_err(|e| Error::io(layout.server_cert(), e))?;
    // The key may be encrypted at rest: rustls gets the plain PEM in memory only.
    Ok((
        pemfile::parse_certs(&pem)?,
        SoftwareKey::load(&layout.server_key())?.pkcs8_pem(),
    ))
}

/// One of ecca's own working keys (OCSP responder, TSA): loaded, or issued when missing or
/// about to expire. Its key is of the certifying CA's family (P-256, or SM2 under an SM2
/// hierarchy; SM2 keys stay in software: tokens here have no SM2).
async fn ensure_working_key(
    service: &Service,
    kind: Internal,
    (cert, key): (std::path::PathBuf, std::path::PathBuf),
    (cn, role): (&str, &str),
    renew_before: Duration,
    hsm: Option<&Pkcs11Config>,
) -> Result<WorkingKey> {
    let national = match &kind {
        Internal::OcspResponder(ca) | Internal::Tsa(ca) | Internal::ReportSigner(ca) => {
            ca.algorithm() == CaKeyAlg::Sm2
        }
        _ => false,
    };
    if expires_within(&cert, renew_before) || !key.exists() {
        // A renewed HSM key gets a new label; the old one stays in the token until an
        // operator removes it (pre-signed responses may still carry its signatures).
        let (spki_der, saved) = if national {
            KeyMaker::new(None, CaKeyAlg::Sm2)?.generate_working(role)?
        } else {
            KeyMaker::new(hsm, CaKeyAlg::P256)?.generate_working(role)?
        };
        let names = Names {
            subject: vec![
                (Attr::Organization, "ecca".into()),
                (Attr::CommonName, cn.into()),
            ],
            ..Names::default()
        };
        let record = service.issue_internal(kind, names, &spki_der).await?;
        if let Some(dir) = cert.parent() {
            pemfile::private_dir(dir)?;
        }
        saved.save(&key)?;
        pemfile::write_public(
            &cert,
            pemfile::certs_to_pem([record.der.as_slice()]).as_bytes(),
        )?;
        tracing::info!(serial = %record.serial, cn, "working certificate issued");
    }
    WorkingKey::open(&cert, &key, hsm)
}

/// Loads every issuing CA's delegated OCSP responder and each family's TSA (international
/// under `default`, national under the first SM2 hierarchy), issuing them when missing or
/// expiring.
pub async fn ensure_working_keys(
    service: &Service,
    layout: &Layout,
    hsm: Option<&Pkcs11Config>,
) -> Result<()> {
    let hierarchies = service.authority().hierarchies();
    for h in hierarchies.iter() {
        for ca in h.issuing() {
            let cn = if ca.id == CaId::issuing() {
                "ecca OCSP responder".to_string()
            } else {
                format!("ecca OCSP responder {}", ca.id)
            };
            let responder = ensure_working_key(
                service,
                Internal::OcspResponder(ca.clone()),
                layout.ocsp_responder(ca.id.as_str()),
                (&cn, "ocsp"),
                OCSP_RENEW_BEFORE,
                hsm,
            )
            .await?;
            service.publisher().set_responder(&ca.id, responder);
        }
    }
    let national = hierarchies
        .iter()
        .filter(|h| h.algorithm.family() == Family::National)
        .find_map(|h| h.active.clone());
    let units = [
        (
            Family::International,
            Some(service.authority().active(DEFAULT_ISSUER)?),
            (layout.tsa_cert(), layout.tsa_key()),
            "ecca Time-Stamping Unit",
        ),
        (
            Family::National,
            national,
            layout.tsa_national(),
            "ecca SM2 Time-Stamping Unit",
        ),
    ];
    for (family, ca, paths, cn) in units {
        let Some(ca) = ca else { continue };
        let tsa = ensure_working_key(
            service,
            Internal::Tsa(ca),
            paths,
            (cn, "tsa"),
            TSA_RENEW_BEFORE,
            hsm,
        )
        .await?;
        service.set_tsa(family, tsa);
    }
    let signer = ensure_working_key(
        service,
        Internal::ReportSigner(service.authority().active(DEFAULT_ISSUER)?),
        layout.report_signer(),
        ("ecca Statistics Reports", "report"),
        TSA_RENEW_BEFORE,
        hsm,
    )
    .await?;
    service.set_report_signer(signer);
    Ok(())
}

/// Issues a client credential (certificate + key) for a role and writes it to `dir` as
/// cert.pem (with the credential CA), key.pem and ca.pem (the credential CA, which the
/// server's certificate chains to).
pub async fn write_credential(
    service: &Service,
    dir: &std::path::Path,
    cn: &str,
    role: Role,
    tenant: &str,
) -> Result<String> {
    let key = SoftwareKey::generate(CaKeyAlg::P256)?;
    let names = Names {
        subject: vec![
            (Attr::Organization, "ecca".into()),
            (Attr::CommonName, cn.into()),
        ],
        ..Names::default()
    };
    let cred = service
        .register_credential(names, &key.spki_der(), role, tenant, "ecca")
        .await?;
    pemfile::private_dir(dir)?;
    key.save_plain(&dir.join("key.pem"))?;
    let chain =
        std::iter::once(cred.cert_der.as_slice()).chain(cred.chain.iter().map(Vec::as_slice));
    pemfile::write_public(
        &dir.join("cert.pem"),
        pemfile::certs_to_pem(chain).as_bytes(),
    )?;
    pemfile::write_public(
        &dir.join("ca.pem"),
        pemfile::certs_to_pem([cred.ca_der.as_slice()]).as_bytes(),
    )?;
    Ok(cred.serial)
}

async fn ensure_admin_credential(service: &Service, layout: &Layout) -> Result<()> {
    let dir = layout.admin_dir();
    let old = first_cert(&dir.join("cert.pem"));
    if old.is_some()
        && dir.join("key.pem").exists()
        && issued_by(&dir.join("cert.pem"), &service.authority().credential)
    {
        return Ok(());
    }
    let serial = write_credential(service, &dir, "ecca admin", Role::Admin, "").await?;
    // An admin credential from before the credential CA is replaced here, and disabled.
    if let Some(old) = old {
        service
            .store()
            .disable_credential(&crate::core::fingerprint(&old), "ecca")
            .await?;
    }
    tracing::info!(%serial, "admin credential issued");
    Ok(())
}

/// What the gRPC listener accepts as client certificates: the credential CA, and credentials
/// issued by the issuing CA before the credential CA existed, pinned by hash while enabled.
pub(super) async fn client_trust(service: &Service) -> Result<crate::grpc::tls::ClientTrust> {
    let mut pins = std::collections::HashSet::new();
    for cred in service.store().all_credentials().await? {
        if cred.disabled || cred.cert_sha256.is_empty() {
            continue;
        }
        let record = service
            .store()
            .get(&crate::core::serial::Serial::parse_hex(&cred.serial)?)
            .await?;
        if let Some(r) = record
            && r.issuer == crate::store::Issuer::Issuing
            && crate::core::fingerprint(&r.der) == cred.cert_sha256
        {
            pins.insert(crate::core::sha256(&r.der));
        }
    }
    if !pins.is_empty() {
        tracing::warn!(
            count = pins.len(),
            "credentials issued before the credential CA still work (pinned); rotate them with `ecca platform rotate`"
        );
    }
    let a = service.authority();
    Ok(crate::grpc::tls::ClientTrust {
        credential_ca: a.credential.der.clone(),
        legacy: Some((a.issuing.der.clone(), pins)),
    })
}
