//! Who is calling: the mTLS peer certificate becomes a [`Caller`] once, at the edge.
//!
//! TLS already proved the certificate chains to our root; here the certificate must also be a
//! registered, enabled credential, so a leaf issued to a merchant cannot call the CA API.
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

impl Caller {
    /// The audit actor string, e.g. "admin:5f1c…".
    pub fn actor(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.credential)
    }

    /// Refuses callers without one of `roles`.
    pub fn require(&self, roles: &[Role], action: &str) -> Result<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "role {} may not {action}",
                self.role.as_str()
            )))
        }
    }
}

/// The serial of a client certificate that is within its validity period.
pub fn valid_serial(peer_cert_der: Option<&[u8]>) -> Result<String> {
    let der = peer_cert_der.ok_or_else(|| {
        Error::Unauthenticated("a client certificate is required (mutual TLS)".into())
    })?;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|_| Error::Unauthenticated("client certificate does not parse".into()))?;
    if !cert.validity().is_valid() {
        return Err(Error::Unauthenticated(
            "client certificate is expired or not yet valid".into(),
        ));
    }
    Ok(Serial::from_der_content(cert.raw_serial()).hex())
}

/// Authenticates the leaf certificate the TLS layer verified.
pub async fn authenticate(peer_cert_der: Option<&[u8]>, store: &dyn Store) -> Result<Caller> {
    let der = peer_cert_der.ok_or_else(|| {
        Error::Unauthenticated("a client certificate is required (mutual TLS)".into())
    })?;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|_| Error::Unauthenticated("client certificate does not parse".into()))?;
    if !cert.validity().is_valid() {
        return Err(Error::Unauthenticated(
            "client certificate is expired or not yet valid".into(),
        ));
    }
    let serial = Serial::from_der_content(cert.raw_serial()).hex();
    let cred = store.credential(&serial).await?.ok_or_else(|| {
        Error::PermissionDenied(format!(
            "certificate {serial} is not a registered ecca credential"
        ))
    })?;
    if cred.disabled {
        return Err(Error::PermissionDenied(format!(
            "credential {serial} is disabled"
        )));
    }
    // tonic's TLS layer cannot check revocation: the credential's own record says.
    let record = store.get(&Serial::parse_hex(&serial)?).await?;
    if record.is_some_and(|r| r.revocation.is_some()) {
        return Err(Error::PermissionDenied(format!(
            "credential {serial} is revoked"
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
        credential: serial,
    })
}
