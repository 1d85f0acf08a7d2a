//! Who is calling: the mTLS peer certificate becomes a [`Caller`] once, at the edge.
//!
//! The TLS layer already verified the certificate against the credential CA (or a pinned
//! legacy credential). Here the certificate must also be a registered, enabled credential,
//! found by the SHA-256 of the whole certificate: a serial is public and any CA can put any
//! serial into a certificate, so it never identifies a caller.
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::core::serial::Serial;
use crate::error::{Error, Result};
use crate::store::{Role, Store};

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub role: Role,
    /// Tenant (platform) the caller acts for; empty for admins and auditors.
    pub tenant: String,
    /// Serial of the credential certificate, for the audit log.
    pub credential: String,
}

/// What a caller may ask for; each action names the roles allowed to do it (one table, used
/// by the gRPC edge before it parses arguments and by the service itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Issue,
    Revoke,
    /// Certificates, profiles, CRLs, the trust bundle.
    Read,
    WatchRevocations,
    /// Each token consumes a durable serial: read-only auditors may not ask for them.
    Timestamp,
    Verify,
    CrossCertify,
    ManagePeers,
    ListPeers,
    ManagePlatforms,
    ListPlatforms,
    ListIssuers,
    ManageIssuers,
    AddAuditor,
    ReadAudit,
    /// Statistics and indicators (a platform: its own).
    ReadStatistics,
    /// Signed statistics reports, the console.
    ReadReports,
    /// Asking the KMC for an escrowed key (which recovery officers must then approve).
    RecoverKeys,
}

impl Action {
    pub fn roles(self) -> &'static [Role] {
        use Role::{Admin, Auditor, Platform};
        match self {
            Action::Issue | Action::Revoke | Action::Timestamp => &[Admin, Platform],
            Action::Read | Action::WatchRevocations | Action::Verify | Action::ReadStatistics => {
                &[Admin, Platform, Auditor]
            }
            Action::CrossCertify
            | Action::ManagePeers
            | Action::ManagePlatforms
            | Action::ManageIssuers
            | Action::AddAuditor
            | Action::RecoverKeys => &[Admin],
            Action::ListPeers
            | Action::ListPlatforms
            | Action::ListIssuers
            | Action::ReadAudit
            | Action::ReadReports => &[Admin, Auditor],
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Action::Issue => "issue certificates",
            Action::Revoke => "revoke certificates",
            Action::Read => "read certificates",
            Action::WatchRevocations => "watch revocations",
            Action::Timestamp => "request timestamps",
            Action::Verify => "verify certificates and signatures",
            Action::CrossCertify => "cross-certify",
            Action::ManagePeers => "manage peers",
            Action::ListPeers => "list peers",
            Action::ManagePlatforms => "manage platforms",
            Action::ListPlatforms => "list platforms",
            Action::ListIssuers => "list issuers",
            Action::ManageIssuers => "manage issuers",
            Action::AddAuditor => "add auditors",
            Action::ReadAudit => "read the audit log",
            Action::RecoverKeys => "recover escrowed keys",
            Action::ReadStatistics => "read statistics",
            Action::ReadReports => "read reports and the console",
        }
    }
}

impl Caller {
    /// The audit actor string, e.g. "admin:5f1c…".
    pub fn actor(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.credential)
    }

    /// Refuses callers whose role may not do `action`.
    pub fn may(&self, action: Action) -> Result<()> {
        if action.roles().contains(&self.role) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "role {} may not {}",
                self.role.as_str(),
                action.describe()
            )))
        }
    }
}

/// A client certificate within its validity period, with its identity.
#[derive(Clone, Debug)]
pub struct PeerCert<'a> {
    pub der: &'a [u8],
    /// SHA-256 of the whole certificate: what identifies the credential.
    pub sha256: [u8; 32],
    pub serial: String,
    /// Validity (Unix seconds), so a cached decision can check expiry without parsing.
    pub not_before: i64,
    pub not_after: i64,
}

impl<'a> PeerCert<'a> {
    pub fn parse(der: Option<&'a [u8]>) -> Result<Self> {
        let der = der.ok_or_else(|| {
            Error::Unauthenticated("a client certificate is required (mutual TLS)".into())
        })?;
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|_| Error::Unauthenticated("client certificate does not parse".into()))?;
        if !cert.validity().is_valid() {
            return Err(Error::Unauthenticated(
                "client certificate is expired or not yet valid".into(),
            ));
        }
        Ok(PeerCert {
            der,
            sha256: crate::core::sha256(der),
            serial: Serial::from_der_content(cert.raw_serial()).hex(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// Authenticates the leaf certificate the TLS layer verified.
pub async fn authenticate(cert: &PeerCert<'_>, store: &dyn Store) -> Result<Caller> {
    let hash = hex::encode(cert.sha256);
    let unknown = || {
        Error::Unauthenticated(format!(
            "certificate {} (sha256 {hash}) is not a registered ecca credential",
            cert.serial
        ))
    };
    let cred = store.credential_by_cert(&hash).await?.ok_or_else(unknown)?;
    if cred.serial != cert.serial {
        return Err(unknown());
    }
    if cred.disabled {
        return Err(Error::PermissionDenied(format!(
            "credential {} is disabled",
            cred.serial
        )));
    }
    // The TLS layer does not check revocation: the credential's own record says.
    let record = store.get(&Serial::parse_hex(&cred.serial)?).await?;
    if record.is_some_and(|r| r.revocation.is_some()) {
        return Err(Error::PermissionDenied(format!(
            "credential {} is revoked",
            cred.serial
        )));
    }
    if cred.role == Role::Platform {
        let platforms = store.platforms().await?;
        match platforms.iter().find(|p| p.name == cred.tenant) {
            Some(p) if !p.disabled => {}
            Some(_) => {
                return Err(Error::PermissionDenied(format!(
                    "platform {} is disabled",
                    cred.tenant
                )));
            }
            None => {
                return Err(Error::PermissionDenied(format!(
                    "platform {} does not exist",
                    cred.tenant
                )));
            }
        }
    }
    Ok(Caller {
        role: cred.role,
        tenant: cred.tenant,
        credential: cred.serial,
    })
}
