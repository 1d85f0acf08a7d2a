//! The signing module: the only place that holds a CA key or one of ecca's working keys (OCSP
//! responder, TSA). Nothing outside obtains a key; each kind of object has a typed method that
//! builds, lints and signs it through `core` (certificates, CRLs, OCSP responses) or signs a
//! fixed-format message (audit checkpoints, time-stamp tokens).
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use rcgen::CertificateParams;
use x509_cert::ext::Extension;
use x509_ocsp::CertId;

use crate::core::issue::{self, CaView, IssuerRef, LintPass, SubjectKey};
use crate::core::keys::{CaKeyAlg, Signer};
use crate::core::lint::CertKind;
use crate::core::ocsp::{self, ResponderKey, Status, Validity};
use crate::core::revocation::{self, CrlParams, RevokedEntry};
use crate::core::tsp;
use crate::error::{Error, Result};
use crate::pemfile;
use crate::signer::pkcs11::Pkcs11Config;

/// One of our CA certificates and its key. Derefs to the certificate's public data.
#[derive(Debug)]
pub struct CaCert {
    view: CaView,
    signer: Arc<dyn Signer>,
}

impl Deref for CaCert {
    type Target = CaView;
    fn deref(&self) -> &CaView {
        &self.view
    }
}

impl CaCert {
    /// Wraps a CA certificate and its key, checking that they belong together.
    pub(super) fn new(der: Vec<u8>, signer: Arc<dyn Signer>) -> Result<Self> {
        let view = CaView::from_der(der)?;
        IssuerRef::new(&view, signer.as_ref())?;
        Ok(CaCert { view, signer })
    }

    fn issuer(&self) -> Result<IssuerRef<'_>> {
        Ok(IssuerRef::new(&self.view, self.signer.as_ref())?)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> CaKeyAlg {
        self.signer.algorithm()
    }

    /// Lints the end-entity certificate `params` would produce, without the key.
    pub fn lint_leaf(&self, params: &CertificateParams, subject: &SubjectKey) -> Result<LintPass> {
        Ok(issue::lint_only(
            params,
            subject,
            &self.issuer()?,
            CertKind::EndEntity,
        )?)
    }

    /// Signs the end-entity certificate whose exact bytes `pass` vouches for.
    pub fn sign_leaf(&self, pass: LintPass) -> Result<Vec<u8>> {
        Ok(issue::sign(&self.issuer()?, pass)?)
    }

    /// Lints a cross-certificate's TBSCertificate without signing it (dry runs).
    pub fn lint_cross(&self, tbs: &[u8]) -> Result<()> {
        Ok(crate::core::lint::lint_tbs(
            tbs,
            &crate::core::lint::LintPolicy {
                kind: CertKind::CrossCa,
                issuer_name: &self.subject_der,
                issuer_key_id: &self.key_id,
                issuer_not_after: self.not_after.unix_timestamp(),
                issuer_alg: self.algorithm(),
            },
        )?)
    }

    /// Lints and signs a cross-certificate's TBSCertificate.
    pub fn sign_cross(&self, tbs: &[u8]) -> Result<Vec<u8>> {
        Ok(issue::sign_tbs(tbs, &self.issuer()?, CertKind::CrossCa)?)
    }

    /// Signs a CA certificate for `subject`'s key (our own intermediates).
    pub(super) fn sign_subordinate(
        &self,
        params: &CertificateParams,
        subject: &dyn Signer,
    ) -> Result<Vec<u8>> {
        Ok(issue::sign_ca(params, subject, &self.issuer()?)?)
    }

    /// Certifies another of our CA keys (link certificates between two generations of roots).
    pub(super) fn certify_key_of(
        &self,
        params: &CertificateParams,
        subject: &CaCert,
    ) -> Result<Vec<u8>> {
        Ok(issue::sign_ca(
            params,
            subject.signer.as_ref(),
            &self.issuer()?,
        )?)
    }

    /// Builds, lints and signs a CRL.
    pub fn sign_crl(&self, params: &CrlParams<'_>, entries: &[RevokedEntry]) -> Result<Vec<u8>> {
        Ok(revocation::build_crl(params, entries, self.issuer()?)?)
    }

    /// Builds, lints and signs an OCSP response with the CA's own key (the root answers for
    /// the certificates it issued).
    pub fn sign_ocsp(
        &self,
        answers: &[(CertId, Status)],
        nonce: Option<&Extension>,
        times: Validity,
    ) -> Result<Vec<u8>> {
        let key = ResponderKey {
            signer: self.signer.as_ref(),
            cert_der: None,
        };
        Ok(ocsp::sign_response(key, answers, nonce, times)?)
    }

    /// Signs an audit checkpoint over the log up to `upto_id` with head `head_hash`.
    pub fn sign_checkpoint(&self, upto_id: i64, head_hash: &[u8]) -> Result<Vec<u8>> {
        let message = crate::core::audit::checkpoint_message(upto_id, head_hash);
        Ok(self.signer.sign(&message)?)
    }
}

/// One of ecca's working keys (the delegated OCSP responder, the TSA) with its certificate.
#[derive(Debug, Clone)]
pub struct WorkingKey {
    pub cert_der: Vec<u8>,
    pub not_after: i64,
    key: Arc<dyn Signer>,
}

impl WorkingKey {
    /// Opens a working key's certificate (PEM) and key file (PKCS#8 or a PKCS#11 URI).
    pub fn open(cert: &Path, key: &Path, hsm: Option<&Pkcs11Config>) -> Result<Self> {
        let pem = std::fs::read(cert).map_err(|e| Error::io(cert, e))?;
        let cert_der = pemfile::parse_certs(&pem)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Config(format!("{}: no certificate", cert.display())))?;
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| Error::Config(format!("{}: {e}", cert.display())))?;
        let not_after = x509.validity().not_after.timestamp();
        let key = super::load_key(key, hsm)?;
        if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(Error::Config(format!(
                "{} does not certify the key beside it",
                cert.display()
            )));
        }
        Ok(WorkingKey {
            cert_der,
            not_after,
            key,
        })
    }

    /// Builds, lints and signs an OCSP response as the delegated responder (its certificate
    /// included).
    pub fn sign_ocsp(
        &self,
        answers: &[(CertId, Status)],
        nonce: Option<&Extension>,
        times: Validity,
    ) -> Result<Vec<u8>> {
        let key = ResponderKey {
            signer: self.key.as_ref(),
            cert_der: Some(&self.cert_der),
        };
        Ok(ocsp::sign_response(key, answers, nonce, times)?)
    }

    /// A detached CMS SignedData (RFC 5652, id-data) over `content`, with this key's
    /// certificate and `chain` included, signed at `at`.
    pub fn sign_detached(&self, content: &[u8], chain: &[Vec<u8>], at: i64) -> Result<Vec<u8>> {
        use crate::core::cms::{self, CmsSigner as _};
        let signer = cms::CaKey(self.key.as_ref());
        let (digest, _) = signer.algorithms();
        Ok(cms::sign(
            &cms::SignParams {
                content_type: cms::oid::DATA,
                format: cms::CmsFormat::Rfc5652,
                econtent: None,
                content_digest: &digest.digest(content),
                signer_cert: &self.cert_der,
                chain,
                include_certs: true,
                signing_time: Some(at),
            },
            &signer,
        )?)
    }

    /// Signs an RFC 3161 token for an accepted request.
    pub fn stamp(
        &self,
        accepted: &tsp::Accepted,
        policy: &str,
        serial: u64,
        at: i64,
    ) -> Result<Vec<u8>> {
        let signer = crate::core::cms::CaKey(self.key.as_ref());
        let unit = tsp::Tsa {
            cert_der: &self.cert_der,
            signer: &signer,
            policy,
        };
        Ok(tsp::stamp(accepted, unit, serial, at)?)
    }
}
