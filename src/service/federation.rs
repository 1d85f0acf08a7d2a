//! Federation: cross-certifying peer CAs, the peer registry, the trust bundle with
//! cross-certificates, and certificate verification for relying parties.
use time::OffsetDateTime;

use super::Service;
use crate::auth::{Action, Caller};
use crate::core::cross::{self, Peer, Terms};
use crate::core::issue::BACKDATE;
use crate::core::records::DEFAULT_ISSUER;
use crate::core::serial::Serial;
use crate::error::{Error, Result};
use crate::pemfile;
use crate::store::{CrossRecord, Direction, PeerRecord, PeerStatus};
use crate::verify::{Outcome, Request};

/// The peer CA to cross-certify.
#[derive(Clone, Debug)]
pub enum PeerInput {
    /// Its CA certificate (DER or PEM).
    Cert(Vec<u8>),
    /// Its PKCS#10 request (DER or PEM).
    Csr(Vec<u8>),
}

/// A cross-certification request.
#[derive(Clone, Debug)]
pub struct CrossCertifyRequest {
    pub peer: PeerInput,
    /// Register under this peer (must exist), if given.
    pub peer_name: Option<String>,
    pub terms: Terms,
    pub dry_run: bool,
    /// The hierarchy whose active root signs ("" = `default`).
    pub issuer: String,
}

/// The result: the certificate (None on a dry run) and what it says.
#[derive(Clone, Debug)]
pub struct CrossCertified {
    pub der: Option<Vec<u8>>,
    pub serial: String,
    pub description: String,
}

fn one_cert(input: &[u8], field: &str) -> Result<Vec<u8>> {
    pemfile::parse_certs(input)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::field(field, "no certificate found"))
}

impl Service {
    /// Signs a cross-certificate for a peer CA with a hierarchy's active root (admin only,
    /// audited).
    pub async fn cross_certify(
        &self,
        caller: &Caller,
        req: CrossCertifyRequest,
    ) -> Result<CrossCertified> {
        caller.may(Action::CrossCertify)?;
        let peer = match &req.peer {
            PeerInput::Cert(c) => Peer::from_cert(&one_cert(c, "ca_cert")?)?,
            PeerInput::Csr(c) => Peer::from_csr(c)?,
        };
        if let Some(name) = &req.peer_name
            && !self.store.peers().await?.iter().any(|p| p.name == *name)
        {
            return Err(Error::NotFound(format!(
                "peer {name:?}; add it with `ecca peers add` first"
            )));
        }
        let issuer = if req.issuer.is_empty() {
            DEFAULT_ISSUER
        } else {
            &req.issuer
        };
        let root = self.authority.hierarchy(issuer)?.root.clone();
        let now = OffsetDateTime::now_utc();
        let not_before = (now - BACKDATE).unix_timestamp();
        let days = if req.terms.days == 0 {
            730
        } else {
            req.terms.days
        };
        let terms = Terms { days, ..req.terms };
        let not_after =
            (now.unix_timestamp() + i64::from(days) * 86_400).min(root.not_after.unix_timestamp());
        let root_subject = x509_parser::parse_x509_certificate(&root.der)
            .map(|(_, c)| c.subject().to_string())
            .unwrap_or_default();
        let description = terms.describe(&peer, &root_subject, not_after);
        let serial = Serial::random()?;
        let urls = crate::authority::urls_of(&self.authority.base_url, &root.id);
        let tbs = cross::tbs(
            &peer,
            &terms,
            (&root, root.algorithm()),
            &urls,
            &serial,
            not_before,
            not_after,
        )?;
        if req.dry_run {
            // Lint without signing, so a dry run also says whether signing would be refused.
            root.lint_cross(&tbs)?;
            return Ok(CrossCertified {
                der: None,
                serial: serial.hex(),
                description,
            });
        }
        // Like a leaf: the intent is stored and audited before the root key signs.
        let actor = caller.actor();
        let record = CrossRecord {
            serial: serial.hex(),
            peer: req
                .peer_name
                .clone()
                .unwrap_or_else(|| peer.subject_text.clone()),
            direction: Direction::Issued,
            ca: root.id.clone(),
            der: Vec::new(),
            not_after,
            created_at: now.unix_timestamp(),
            revoked: None,
        };
        self.store.reserve_cross(record, &actor).await?;
        let der = match root.sign_cross(&tbs) {
            Ok(der) => der,
            Err(e) => {
                let why = e.to_string();
                if let Err(abandon) = self.store.abandon_cross(&serial.hex(), &why, &actor).await {
                    tracing::error!(%serial, error = %abandon, "could not record abandoned cross-certificate");
                }
                return Err(e);
            }
        };
        self.store
            .complete_cross(&serial.hex(), der.clone(), &actor)
            .await?;
        tracing::info!(serial = %serial, peer = %peer.subject_text, actor = %caller.actor(), "cross-certificate issued");
        self.publisher.root_changed();
        Ok(CrossCertified {
            der: Some(der),
            serial: serial.hex(),
            description,
        })
    }

    /// Registers a peer CA, with cross-certificates it issued for our root.
    pub async fn add_peer(
        &self,
        caller: &Caller,
        name: &str,
        ca_cert: &[u8],
        received: &[Vec<u8>],
    ) -> Result<PeerRecord> {
        caller.may(Action::ManagePeers)?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(Error::field(
                "name",
                "letters, digits, '-', '_' and '.' only",
            ));
        }
        let der = one_cert(ca_cert, "ca_cert")?;
        let peer = Peer::from_cert(&der)?;
        let mut cross = Vec::new();
        for c in received {
            for d in pemfile::parse_certs(c)? {
                let (_, x) = x509_parser::parse_x509_certificate(&d)
                    .map_err(|e| Error::field("received_cross", format!("does not parse: {e}")))?;
                let ours = self.authority.hierarchies().iter().find_map(|h| {
                    h.roots
                        .iter()
                        .find(|r| {
                            x.subject().as_raw() == r.subject_der.as_slice()
                                && x.public_key().subject_public_key.data.as_ref() == r.public_key
                        })
                        .map(|r| r.id.clone())
                });
                let Some(ours) = ours else {
                    return Err(Error::field(
                        "received_cross",
                        "is not a certificate for one of our roots' name and key",
                    ));
                };
                if x.issuer().as_raw() != peer.subject_der.as_slice() {
                    return Err(Error::field(
                        "received_cross",
                        "was not issued by this peer",
                    ));
                }
                cross.push((
                    crate::core::serial::Serial::from_der_content(x.raw_serial()).hex(),
                    x.validity().not_after.timestamp(),
                    d,
                    ours,
                ));
            }
        }
        let record = PeerRecord {
            name: name.into(),
            ca_cert: der,
            subject: peer.subject_text,
            status: PeerStatus::Active,
            added_at: OffsetDateTime::now_utc().unix_timestamp(),
        };
        self.store.add_peer(record.clone(), &caller.actor()).await?;
        for (serial, not_after, der, ca) in cross {
            let rec = CrossRecord {
                serial,
                peer: name.into(),
                direction: Direction::Received,
                ca,
                der,
                not_after,
                created_at: record.added_at,
                revoked: None,
            };
            self.store.add_cross(rec, &caller.actor()).await?;
        }
        Ok(record)
    }

    /// All peers with their cross-certificates.
    pub async fn peers(&self, caller: &Caller) -> Result<Vec<(PeerRecord, Vec<CrossRecord>)>> {
        caller.may(Action::ListPeers)?;
        let cross = self.store.cross_certs().await?;
        Ok(self
            .store
            .peers()
            .await?
            .into_iter()
            .map(|p| {
                let mine = cross.iter().filter(|c| c.peer == p.name).cloned().collect();
                (p, mine)
            })
            .collect())
    }

    /// Suspends or reactivates a peer.
    pub async fn set_peer_status(
        &self,
        caller: &Caller,
        name: &str,
        status: PeerStatus,
    ) -> Result<()> {
        caller.may(Action::ManagePeers)?;
        self.store
            .set_peer_status(name, status, &caller.actor())
            .await
    }

    /// Removes a peer, revoking the cross-certificates we issued to it.
    pub async fn remove_peer(&self, caller: &Caller, name: &str) -> Result<Vec<String>> {
        caller.may(Action::ManagePeers)?;
        let revoked = self.store.remove_peer(name, &caller.actor()).await?;
        self.publisher.root_changed();
        Ok(revoked)
    }

    /// Roots, and intermediates: the issuing CA and the cross-certificates in force (issued to
    /// active peers and received from them), for relying parties to build paths.
    pub async fn trust_bundle(&self) -> Result<(Vec<Vec<u8>>, Vec<Vec<u8>>)> {
        let peers = self.store.peers().await?;
        let suspended = |name: &str| {
            peers
                .iter()
                .any(|p| p.name == name && p.status == PeerStatus::Suspended)
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let (roots, mut intermediates) = self.authority.ca_certificates();
        for c in self.store.cross_certs().await? {
            if c.revoked.is_none() && c.not_after > now && !suspended(&c.peer) {
                intermediates.push(c.der);
            }
        }
        Ok((roots, intermediates))
    }

    /// Verifies a document signature against the given anchors (or our root), with our trust
    /// bundle's intermediates available for path building.
    pub async fn verify_signature(
        &self,
        caller: &Caller,
        mut req: crate::verify::SignatureRequest,
    ) -> Result<crate::verify::SignatureOutcome> {
        caller.may(Action::Verify)?;
        let (roots, intermediates) = self.trust_bundle().await?;
        if req.anchors.is_empty() {
            req.anchors = roots;
        }
        req.untrusted.extend(intermediates);
        let outcome = self.verifier.verify_signature(req).await;
        count_verification("signature", outcome.valid);
        let kind = crate::core::stats::kind::DOCUMENT;
        self.tally_verification(&caller.tenant, kind, outcome.valid, &outcome.reasons);
        Ok(outcome)
    }

    /// Verifies a certificate: the given intermediates plus everything in our trust bundle,
    /// to the given anchors (or our root).
    pub async fn verify(&self, caller: &Caller, mut req: Request) -> Result<Outcome> {
        caller.may(Action::Verify)?;
        let (roots, intermediates) = self.trust_bundle().await?;
        if req.anchors.is_empty() {
            req.anchors = roots;
        }
        req.untrusted.extend(intermediates);
        let outcome = self.verifier.verify(&req).await;
        count_verification("certificate", outcome.valid);
        let kind = crate::core::stats::kind::CERTIFICATE;
        self.tally_verification(&caller.tenant, kind, outcome.valid, &outcome.reasons);
        if let Some(peer) = self.peer_of(&req.leaf, &outcome).await {
            let label = format!("{peer}:{}", if outcome.valid { "valid" } else { "invalid" });
            self.tally(&caller.tenant, crate::core::stats::kind::PEER, &label, 0);
        }
        Ok(outcome)
    }
}

impl Service {
    /// The peer region a verified certificate belongs to: a cross-certificate we issued on
    /// its path, or (no path) its issuer being a peer's CA.
    async fn peer_of(&self, leaf: &[u8], outcome: &Outcome) -> Option<String> {
        let peers = self.store.peers().await.ok()?;
        if peers.is_empty() {
            return None;
        }
        let crosses = self.store.cross_certs().await.ok()?;
        for step in &outcome.path {
            if let Some(c) = crosses.iter().find(|c| {
                hex::encode(ring::digest::digest(&ring::digest::SHA256, &c.der)) == step.sha256
            }) {
                return Some(c.peer.clone());
            }
            if let Some(p) = peers.iter().find(|p| p.subject == step.subject) {
                return Some(p.name.clone());
            }
        }
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
        let issuer = cert.issuer().to_string();
        peers
            .into_iter()
            .find(|p| p.subject == issuer)
            .map(|p| p.name)
    }
}

fn count_verification(kind: &str, valid: bool) {
    if let Some(m) = crate::metrics::get() {
        let outcome = if valid { "valid" } else { "invalid" };
        m.verifications.with_label_values(&[kind, outcome]).inc();
    }
}
