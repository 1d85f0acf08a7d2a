//! Dual certificates (GM/T 0034): a signing certificate for the subscriber's own key and an
//! encryption certificate for a key the KMC generates, escrows and envelopes to the
//! subscriber; revocation of either revokes both; key recovery relayed to the KMC for admins.
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

use super::{By, IssueRequest, Service};
use crate::auth::{Action, Caller};
use crate::core::keys::KeyAlg;
use crate::core::revocation::Reason;
use crate::core::serial::Serial;
use crate::error::{Error, Result};
use crate::kmc::client::KmcClient;
use crate::kmc_proto as kmc;
use crate::store::{CertRecord, Op, RevokeRequest, Role};

/// A dual pair as issued: both certificates, the chain, and the encryption private key
/// enveloped to the signing certificate's key.
#[derive(Clone, Debug)]
pub struct DualIssued {
    pub signing: CertRecord,
    pub encryption: CertRecord,
    pub chain: Vec<Vec<u8>>,
    pub envelope: Vec<u8>,
    /// "SM2EnvelopedKey" or "EnvelopedData".
    pub envelope_type: String,
    /// The hierarchy that signed both.
    pub issuer: String,
}

/// The encryption key the KMC makes for a signing key: the same algorithm, so that the
/// signing key can open the envelope (SM2 encryption, or ECDH on the same curve).
fn encryption_algorithm(signing: KeyAlg) -> Result<&'static str> {
    match signing {
        KeyAlg::Sm2 => Ok("sm2"),
        KeyAlg::P256 => Ok("p256"),
        KeyAlg::P384 => Ok("p384"),
        other => Err(Error::field(
            "csr",
            format!(
                "dual certificates need an SM2, P-256 or P-384 signing key (the envelope is \
                 addressed to it); this CSR has {other}"
            ),
        )),
    }
}

impl Service {
    /// Where dual issuance and key recovery go.
    pub fn set_kmc(&mut self, kmc: KmcClient) {
        self.kmc = Some(kmc);
    }

    fn kmc(&self) -> Result<&KmcClient> {
        self.kmc.as_ref().ok_or_else(|| {
            Error::Unavailable("this CA is not connected to a key management centre".into())
        })
    }

    /// Issues a dual pair under a profile that allows it (`dual = true`): the signing
    /// certificate for the CSR's key, then the encryption certificate, with the same subject,
    /// for a key the KMC generates and escrows.
    pub async fn issue_dual(&self, caller: &Caller, req: IssueRequest) -> Result<DualIssued> {
        let issued = self.issue_pair(caller, &req).await;
        self.count_issuance(
            &req.profile,
            caller,
            issued.as_ref().map(|p| p.issuer.as_str()),
            2,
        );
        if let (Ok(_), Some(m)) = (&issued, crate::metrics::get()) {
            m.dual_pairs.inc();
        }
        issued
    }

    async fn issue_pair(&self, caller: &Caller, req: &IssueRequest) -> Result<DualIssued> {
        let _slot = self.tenant_permit(caller)?;
        let admitted = self.admit(caller, req).await?;
        let profile = admitted.profile;
        if !profile.dual {
            return Err(Error::field(
                "profile",
                format!(
                    "{:?} does not allow dual certificates; `ecca profiles` shows those with dual = true",
                    profile.name
                ),
            ));
        }
        let algorithm = encryption_algorithm(admitted.csr.key_alg)?;
        let kmc = self.kmc()?;
        let actor = caller.actor();
        let signing = self
            .sign_and_store(
                By::Issuing(admitted.ca.clone()),
                &profile.dual_signing(),
                &admitted.names,
                &admitted.csr.spki_der,
                false,
                admitted.days,
                caller.tenant.clone(),
                &actor,
            )
            .await?;
        let escrowed = async {
            let generated = kmc.generate(algorithm, &signing.der, &actor).await?;
            let key = {
                let (_, spki) =
                    x509_parser::x509::SubjectPublicKeyInfo::from_der(&generated.spki_der)
                        .map_err(|e| {
                            Error::Remote(format!("the KMC returned a bad public key: {e}"))
                        })?;
                KeyAlg::of_spki(&spki)?
            };
            let encryption = self
                .sign_and_store(
                    By::Issuing(admitted.ca.clone()),
                    &profile.dual_encryption(key),
                    &admitted.names,
                    &generated.spki_der,
                    key.enciphers(),
                    admitted.days,
                    caller.tenant.clone(),
                    &actor,
                )
                .await?;
            kmc.bind(&generated.escrow_id, &encryption.der, &actor)
                .await?;
            self.store
                .write(Op::PairCertificates {
                    signing: signing.serial.clone(),
                    encryption: encryption.serial.clone(),
                    escrow_id: generated.escrow_id.clone(),
                    actor: actor.clone(),
                })
                .await?;
            Ok::<_, Error>((generated, encryption))
        }
        .await;
        let (generated, encryption) = match escrowed {
            Ok(done) => done,
            Err(e) => {
                // Half a pair is no pair: the signing certificate does not stay valid alone.
                self.revoke_unpaired(&signing.serial, &e, &actor).await;
                return Err(e);
            }
        };
        tracing::info!(signing = %signing.serial, encryption = %encryption.serial, actor, "dual pair issued");
        Ok(DualIssued {
            signing,
            encryption,
            chain: admitted.ca.chain(),
            envelope: generated.envelope,
            envelope_type: generated.envelope_type,
            issuer: admitted.ca.hierarchy.clone(),
        })
    }

    async fn revoke_unpaired(&self, serial: &str, why: &Error, actor: &str) {
        let request = Serial::parse_hex(serial).map(|serial| RevokeRequest {
            serial,
            reason: Reason::CessationOfOperation,
            invalidity_date: None,
            tenant: None,
            actor: actor.into(),
        });
        match request {
            Ok(r) => match self.store.revoke(r).await {
                Ok(record) => {
                    super::count_revocation(Reason::CessationOfOperation);
                    tracing::warn!(%serial, error = %why, "dual issuance failed; signing certificate revoked");
                    self.published(&record).await;
                }
                Err(e) => {
                    tracing::error!(%serial, error = %e, "could not revoke an unpaired signing certificate")
                }
            },
            Err(e) => tracing::error!(%serial, error = %e, "bad serial"),
        }
    }

    /// After `record` was revoked: revokes the other certificate of its dual pair, if any
    /// (a pair lives and dies together). A compromised key is that certificate's alone, so the
    /// other is revoked as superseded.
    pub(super) async fn revoke_pair(
        &self,
        caller: &Caller,
        record: &CertRecord,
        reason: Reason,
    ) -> Result<()> {
        let Some(other) = self.store.pair_of(&record.serial).await? else {
            return Ok(());
        };
        let reason = if reason == Reason::KeyCompromise {
            Reason::Superseded
        } else {
            reason
        };
        let revoked = self
            .store
            .revoke(RevokeRequest {
                serial: Serial::parse_hex(&other)?,
                reason,
                invalidity_date: None,
                tenant: (caller.role == Role::Platform).then(|| caller.tenant.clone()),
                actor: caller.actor(),
            })
            .await;
        match revoked {
            Ok(r) => {
                super::count_revocation(reason);
                self.published(&r).await;
                Ok(())
            }
            Err(Error::Conflict(_)) => Ok(()),
            Err(e) => Err(Error::Internal(format!(
                "certificate {} is revoked but its pair {other} is not ({e}); revoke it with `ecca revoke {other}`",
                record.serial
            ))),
        }
    }

    /// Opens a recovery of the escrowed key of encryption certificate `serial`, to be
    /// enveloped to `recipient_der` — a valid certificate this CA issued (the requester's) —
    /// once enough recovery officers approved. Admins only; audited here and at the KMC.
    pub async fn request_key_recovery(
        &self,
        caller: &Caller,
        serial: &str,
        reason: &str,
        case_reference: &str,
        recipient_der: &[u8],
    ) -> Result<kmc::Recovery> {
        caller.may(Action::RecoverKeys)?;
        let serial = Serial::parse_hex(serial)?;
        let recipient_der = &match recipient_der.starts_with(b"-----") {
            true => crate::pemfile::parse_certs(recipient_der)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::field("recipient_certificate", "holds no certificate"))?,
            false => recipient_der.to_vec(),
        };
        if self.store.pair_of(&serial.hex()).await?.is_none() {
            return Err(Error::NotFound(format!(
                "certificate {serial} is not part of a dual pair"
            )));
        }
        self.check_recipient(recipient_der).await?;
        let recovery = self
            .kmc()?
            .request_recovery(kmc::RecoveryRequest {
                serial: serial.hex(),
                reason: reason.into(),
                case_reference: case_reference.into(),
                recipient_certificate: recipient_der.to_vec(),
                requester: caller.actor(),
            })
            .await?;
        self.kmc_event(
            caller,
            "kmc.recovery.requested",
            &recovery.id,
            format!(
                "serial={} reason={reason:?} case={case_reference:?} recipient_sha256={}",
                recovery.serial,
                crate::core::fingerprint(recipient_der)
            ),
        )
        .await?;
        Ok(recovery)
    }

    /// The key of an approved recovery, enveloped to its recipient: only for the admin who
    /// asked for it.
    pub async fn fetch_key_recovery(&self, caller: &Caller, id: &str) -> Result<kmc::Released> {
        caller.may(Action::RecoverKeys)?;
        match self.kmc()?.fetch(id, &caller.actor()).await {
            Ok(released) => {
                let serial = released
                    .recovery
                    .as_ref()
                    .map(|r| r.serial.clone())
                    .unwrap_or_default();
                self.kmc_event(
                    caller,
                    "kmc.recovery.released",
                    id,
                    format!("serial={serial}"),
                )
                .await?;
                Ok(released)
            }
            Err(e) => {
                self.kmc_event(caller, "kmc.recovery.refused", id, e.to_string())
                    .await?;
                Err(e)
            }
        }
    }

    /// Recoveries at the KMC, newest first.
    pub async fn key_recoveries(&self, caller: &Caller) -> Result<Vec<kmc::Recovery>> {
        caller.may(Action::ReadAudit)?;
        self.kmc()?.recoveries().await
    }

    /// A recovered key goes only to a key this CA vouches for: an unexpired, unrevoked
    /// certificate it issued.
    async fn check_recipient(&self, der: &[u8]) -> Result<()> {
        let bad = |why: String| Error::field("recipient_certificate", why);
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| bad(format!("does not parse: {e}")))?;
        let serial = Serial::from_der_content(cert.raw_serial());
        let record = self.store.get(&serial).await?;
        match record {
            Some(r) if r.der == der => {
                if r.revocation.is_some() {
                    Err(bad(format!("certificate {serial} is revoked")))
                } else if r.not_after <= OffsetDateTime::now_utc().unix_timestamp() {
                    Err(bad(format!("certificate {serial} has expired")))
                } else {
                    Ok(())
                }
            }
            _ => Err(bad("is not a certificate this CA issued".into())),
        }
    }

    async fn kmc_event(
        &self,
        caller: &Caller,
        event: &str,
        object: &str,
        detail: String,
    ) -> Result<()> {
        self.store
            .write(Op::Event {
                actor: caller.actor(),
                event: event.into(),
                object: object.into(),
                detail,
            })
            .await
            .map(drop)
    }
}
