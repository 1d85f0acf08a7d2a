//! Orchestration of each operation: policy -> lint -> store intent -> audit -> sign -> store -> audit.
//! Transport-free: the gRPC handlers and the bootstrap code both call these methods.
//! Federation (cross-certification, peers, verification) is in `federation.rs`.
use std::sync::Arc;

use time::OffsetDateTime;

use crate::auth::{Action, Caller};
use crate::authority::{Authority, CaCert, IssuingCa, WorkingKey};
use crate::core::csr;
use crate::core::issue::{self, IssuerUrls, LeafSpec, Names, SubjectKey};
use crate::core::keys::Family;
use crate::core::profile::{self, Profile, Profiles};
use crate::core::revocation::Reason;
use crate::core::serial::Serial;
use crate::error::{Error, Result};
use crate::publish::{Publisher, RevocationEvent};
use crate::store::{
    CaId, CertRecord, IssuanceIntent, Issuer, ListFilter, Page, RevokeRequest, Role, Store,
};
use tokio::sync::broadcast;

pub mod acme;
pub mod console;
mod dual;
mod federation;
pub mod issuers;
pub mod statistics;
mod tenants;

pub use dual::DualIssued;
pub use federation::{CrossCertified, CrossCertifyRequest, PeerInput};
pub use tenants::{IssuedCredential, PlatformSpec};

/// The profile of delegated OCSP responder certificates: they exist to answer for their CA,
/// so they do not keep a retiring CA from retiring.
pub(crate) const RESPONDER_PROFILE: &str = "ecca-ocsp";

/// Profiles ecca uses for its own certificates; not offered to callers.
const INTERNAL_OCSP: &str = r#"
description = "ecca's delegated OCSP responder"
key_algorithms = ["p256"]
max_validity_days = 90
default_validity_days = 90
key_usages = ["digitalSignature"]
extended_key_usages = ["ocspSigning"]
ocsp_no_check = true
"#;
const INTERNAL_TSA: &str = r#"
description = "ecca's RFC 3161 time-stamping unit"
key_algorithms = ["p256"]
max_validity_days = 1825
default_validity_days = 1825
key_usages = ["digitalSignature"]
extended_key_usages = ["timeStamping"]
critical_eku = true
"#;

const INTERNAL_REPORT: &str = r#"
description = "ecca's signer of statistics reports"
key_algorithms = ["p256"]
max_validity_days = 1825
default_validity_days = 1825
key_usages = ["digitalSignature", "contentCommitment"]
extended_key_usages = ["documentSigning", "emailProtection"]
"#;

/// What ecca issues for itself. The API's own TLS (credential CA) lives apart from what
/// relying parties trust (the hierarchies).
#[derive(Clone, Debug)]
pub enum Internal {
    /// The gRPC server's TLS certificate (credential CA).
    ServerTls,
    /// A client credential for the API (credential CA).
    Credential,
    /// An issuing CA's delegated OCSP responder, certified by that CA.
    OcspResponder(Arc<IssuingCa>),
    /// A time-stamping unit, certified by a hierarchy's active CA.
    Tsa(Arc<IssuingCa>),
    /// The signer of statistics reports, certified by the default hierarchy's active CA.
    ReportSigner(Arc<IssuingCa>),
}

/// Which CA signs a leaf.
#[derive(Debug)]
enum By {
    Credential,
    Issuing(Arc<IssuingCa>),
}

/// A request to issue from a CSR.
#[derive(Clone, Debug)]
pub struct IssueRequest {
    pub csr: Vec<u8>,
    pub profile: String,
    pub validity_days: Option<u32>,
    /// The issuer to sign under, among those the profile allows; empty: the profile's own.
    pub issuer: String,
}

/// An issued certificate with its chain.
#[derive(Clone, Debug)]
pub struct Issued {
    pub record: CertRecord,
    pub chain: Vec<Vec<u8>>,
    /// The hierarchy that signed it.
    pub issuer: String,
}

/// Counts a revocation this instance made.
impl Service {
    /// Publishes a revocation this instance made (OCSP re-signed, CRLs scheduled, watchers
    /// told) and counts how long publication took.
    async fn published(&self, record: &CertRecord) {
        self.publisher.revoked(record).await;
        if let Some(rev) = record.revocation {
            self.tally_publication(&record.tenant, rev.revoked_at);
        }
    }
}

fn count_revocation(reason: Reason) {
    if let Some(m) = crate::metrics::get() {
        m.revocations.with_label_values(&[reason.name()]).inc();
    }
}

/// The result label of a failed request.
fn outcome(e: &Error) -> &'static str {
    match e {
        Error::BadCsr(_)
        | Error::InvalidField { .. }
        | Error::InvalidArgument(_)
        | Error::UnknownProfile(_) => "invalid",
        Error::PermissionDenied(_) | Error::Unauthenticated(_) => "denied",
        Error::LintFailed { .. } => "lint_refused",
        Error::ResourceExhausted(_) => "throttled",
        Error::Unavailable(_) | Error::Remote(_) | Error::Rejected { .. } => "unavailable",
        _ => "error",
    }
}

/// A request that passed policy, with what it was checked into.
struct Admitted<'a> {
    profile: &'a Profile,
    csr: csr::VerifiedCsr,
    names: Names,
    days: Option<u32>,
    ca: Arc<IssuingCa>,
}

/// The CA's operations.
#[derive(Debug)]
pub struct Service {
    authority: Arc<Authority>,
    store: Arc<dyn Store>,
    profiles: Arc<Profiles>,
    publisher: Arc<Publisher>,
    verifier: crate::verify::Verifier,
    internal_server: Profile,
    internal_client: Profile,
    internal_ocsp: Profile,
    internal_tsa: Profile,
    internal_report: Profile,
    /// The web console's login links and sessions.
    console: console::ConsoleAuth,
    /// Signs statistics reports (set at start and on renewal).
    report_signer: std::sync::RwLock<Option<WorkingKey>>,
    /// The time-stamping units by family (international, and national once an SM2
    /// hierarchy exists): an SM3 imprint is stamped by the national one.
    tsa: std::sync::RwLock<std::collections::HashMap<Family, WorkingKey>>,
    tsa_policy: String,
    tsa_serials: tokio::sync::Mutex<TsaSerials>,
    rates: std::sync::Mutex<tenants::RateWindows>,
    /// Validity in days of new roots and issuing CAs (`[init]` root_days, issuing_days).
    ca_days: (u32, u32),
    /// One issuer change at a time on this instance.
    issuer_changes: tokio::sync::Mutex<()>,
    /// The key management centre dual certificates escrow their encryption keys at.
    kmc: Option<crate::kmc::client::KmcClient>,
    /// Authentication results by the SHA-256 of the client certificate, valid for one store
    /// auth generation.
    auth_cache: std::sync::Mutex<std::collections::HashMap<[u8; 32], AuthDecision>>,
    /// Platforms by name as of one store auth generation (None: not read yet).
    platform_cache: std::sync::Mutex<PlatformCache>,
    /// The secret ACME EAB keys are derived from (None: ACME not set up).
    acme_secret: std::sync::RwLock<Option<[u8; 32]>>,
}

/// A cached authentication: valid for one store auth generation and within the
/// certificate's validity.
#[derive(Clone, Debug)]
struct AuthDecision {
    generation: u64,
    caller: Caller,
    not_before: i64,
    not_after: i64,
}

type PlatformCache = (
    Option<u64>,
    std::collections::HashMap<String, Arc<crate::store::PlatformRecord>>,
);

/// Time-stamp serials come in durable, audited blocks, so anonymous requests cannot grow the
/// audit log one row per token; what was used of a block is audited at each checkpoint.
const TSA_BLOCK: u32 = 1024;

#[derive(Debug, Default)]
struct TsaSerials {
    /// Next serial to hand out, and the last one of the reserved block (next > last: none left).
    next: u64,
    last: u64,
    /// Since the last report: first and last serial handed out, tokens signed, failures.
    first_unreported: Option<u64>,
    last_unreported: u64,
    signed: u64,
    failed: u64,
}

/// The relying-party verifier of the server: fetches only from public addresses (and `allow`),
/// and answers this CA's own CRL and OCSP URLs from memory.
fn verifier(
    allow: Vec<crate::verify::Cidr>,
    publisher: &Arc<Publisher>,
) -> crate::verify::Verifier {
    use crate::verify::{FetchLimits, FetchPolicy, Verifier};
    Verifier::new(FetchLimits::default(), FetchPolicy::server(allow)).with_local(publisher.clone())
}

impl Service {
    pub fn new(
        authority: Arc<Authority>,
        store: Arc<dyn Store>,
        profiles: Arc<Profiles>,
    ) -> Result<Self> {
        let publisher = Arc::new(Publisher::new(store.clone(), authority.clone()));
        Ok(Service {
            verifier: verifier(Vec::new(), &publisher),
            publisher,
            authority,
            store,
            profiles,
            internal_server: Profile::parse(
                "ecca-server-tls",
                "internal",
                profile::INTERNAL_SERVER_TLS,
            )?,
            internal_client: Profile::parse(
                "ecca-credential",
                "internal",
                profile::INTERNAL_CREDENTIAL,
            )?,
            internal_ocsp: Profile::parse(RESPONDER_PROFILE, "internal", INTERNAL_OCSP)?,
            internal_tsa: Profile::parse("ecca-tsa", "internal", INTERNAL_TSA)?,
            internal_report: Profile::parse("ecca-report", "internal", INTERNAL_REPORT)?,
            report_signer: std::sync::RwLock::new(None),
            console: console::ConsoleAuth::default(),
            tsa: std::sync::RwLock::new(std::collections::HashMap::new()),
            tsa_policy: crate::core::tsp::DEFAULT_POLICY.into(),
            tsa_serials: tokio::sync::Mutex::new(TsaSerials::default()),
            rates: std::sync::Mutex::new(tenants::RateWindows::default()),
            auth_cache: std::sync::Mutex::new(std::collections::HashMap::new()),
            platform_cache: std::sync::Mutex::new((None, std::collections::HashMap::new())),
            acme_secret: std::sync::RwLock::new(None),
            ca_days: {
                let d = crate::authority::InitOptions::default();
                (d.root_days, d.issuing_days)
            },
            issuer_changes: tokio::sync::Mutex::new(()),
            kmc: None,
        })
    }

    /// Validity in days of roots and issuing CAs made from now on.
    pub fn set_ca_days(&mut self, root_days: u32, issuing_days: u32) {
        self.ca_days = (root_days, issuing_days.min(root_days));
    }

    /// Networks VerifyCertificate/VerifySignature may fetch from although not public.
    pub fn set_verify_fetch_allow(&mut self, allow: Vec<crate::verify::Cidr>) {
        self.verifier = verifier(allow, &self.publisher);
    }

    /// Authenticates a verified client certificate. Decisions are cached until the store says
    /// credentials, platforms or revocations changed, so a revoked or disabled credential is
    /// still refused at its next call; expiry is checked every time.
    pub async fn authenticate(&self, peer_cert_der: Option<&[u8]>) -> Result<Caller> {
        // A known certificate is found by its hash without being parsed again.
        let generation = self.store.auth_generation();
        if let Some(der) = peer_cert_der {
            let sha256 = crate::core::sha256(der);
            let now = OffsetDateTime::now_utc().unix_timestamp();
            if let Some(hit) = self
                .auth_cache
                .lock()
                .ok()
                .and_then(|c| c.get(&sha256).cloned())
                && hit.generation == generation
                && (hit.not_before..=hit.not_after).contains(&now)
            {
                return Ok(hit.caller);
            }
        }
        let cert = crate::auth::PeerCert::parse(peer_cert_der)?;
        let caller = crate::auth::authenticate(&cert, self.store.as_ref()).await?;
        if let Ok(mut cache) = self.auth_cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            let entry = AuthDecision {
                generation,
                caller: caller.clone(),
                not_before: cert.not_before,
                not_after: cert.not_after,
            };
            cache.insert(cert.sha256, entry);
        }
        Ok(caller)
    }

    /// The store, for the edges that authenticate callers.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// CRL and OCSP publication.
    pub fn publisher(&self) -> &Arc<Publisher> {
        &self.publisher
    }

    /// The CA hierarchy.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Issues a certificate from a CSR under a public profile.
    pub async fn issue(&self, caller: &Caller, req: IssueRequest) -> Result<Issued> {
        let issued = self.issue_one(caller, &req).await;
        self.count_issuance(
            &req.profile,
            caller,
            issued.as_ref().map(|i| i.issuer.as_str()),
            1,
        );
        issued
    }

    async fn issue_one(&self, caller: &Caller, req: &IssueRequest) -> Result<Issued> {
        let _slot = self.tenant_permit(caller)?;
        let admitted = self.admit(caller, req).await?;
        let record = self
            .sign_and_store(
                By::Issuing(admitted.ca.clone()),
                admitted.profile,
                &admitted.names,
                &admitted.csr.spki_der,
                admitted.csr.key_alg.enciphers(),
                admitted.days,
                caller.tenant.clone(),
                &caller.actor(),
            )
            .await?;
        Ok(Issued {
            record,
            chain: admitted.ca.chain(),
            issuer: admitted.ca.hierarchy.clone(),
        })
    }

    /// Counts an issuance request by result and, when issued, its `certificates`; labels
    /// bounded: a profile this CA does not have is "unknown".
    fn count_issuance(
        &self,
        profile: &str,
        caller: &Caller,
        issued: std::result::Result<&str, &Error>,
        certificates: u64,
    ) {
        let Some(m) = crate::metrics::get() else {
            return;
        };
        let profile = match self.profiles.get(profile) {
            Ok(p) => p.name.as_str(),
            Err(_) => "unknown",
        };
        let result = match issued {
            Ok(issuer) => {
                let platform = crate::metrics::platform_label(&caller.tenant);
                m.issued
                    .with_label_values(&[profile, issuer, &platform])
                    .inc_by(certificates);
                "issued"
            }
            Err(e) => outcome(e),
        };
        m.issuance_requests
            .with_label_values(&[profile, result])
            .inc();
    }

    /// Checks a request against the caller, its profile and its platform's policy, and picks
    /// the CA that signs it.
    async fn admit<'a>(&'a self, caller: &Caller, req: &IssueRequest) -> Result<Admitted<'a>> {
        caller.may(Action::Issue)?;
        let profile = self.profiles.get(&req.profile)?;
        let issuer = profile.issuer_for(&req.issuer)?;
        self.offered(profile, issuer)?;
        let started = std::time::Instant::now();
        let csr = csr::verify_for(&req.csr, &profile.sm2_id)?;
        crate::metrics::stage("csr_verify", started);
        let names = issue::approve_names(profile, &csr)?;
        let days = self
            .authorize_platform(caller, &profile.name, &names, req.validity_days)
            .await?;
        // Taken once: a rotation meanwhile does not change the CA this request signs with.
        let (_, until) = issue::intended(profile, days, OffsetDateTime::now_utc())?;
        let ca = self.signing_ca(issuer, until.unix_timestamp()).await?;
        Ok(Admitted {
            profile,
            csr,
            names,
            days,
            ca,
        })
    }

    /// Issues one of ecca's own certificates for a key it generated.
    pub async fn issue_internal(
        &self,
        kind: Internal,
        names: Names,
        spki_der: &[u8],
    ) -> Result<CertRecord> {
        let (profile, by) = match kind {
            Internal::ServerTls => (&self.internal_server, By::Credential),
            Internal::Credential => (&self.internal_client, By::Credential),
            Internal::OcspResponder(ca) => (&self.internal_ocsp, By::Issuing(ca)),
            Internal::Tsa(ca) => (&self.internal_tsa, By::Issuing(ca)),
            Internal::ReportSigner(ca) => (&self.internal_report, By::Issuing(ca)),
        };
        self.sign_and_store(
            by,
            profile,
            &names,
            spki_der,
            false,
            None,
            String::new(),
            "ecca",
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn sign_and_store(
        &self,
        by: By,
        profile: &Profile,
        names: &Names,
        spki_der: &[u8],
        key_enciphers: bool,
        validity_days: Option<u32>,
        tenant: String,
        actor: &str,
    ) -> Result<CertRecord> {
        let (ca, urls, issuer, ca_id) = match &by {
            By::Credential => (
                &self.authority.credential,
                None,
                Issuer::Credential,
                CaId::credential(),
            ),
            By::Issuing(ca) => (&ca.cert, Some(&ca.urls), Issuer::Issuing, ca.id.clone()),
        };
        let leaf = LeafRequest {
            ca,
            urls,
            profile,
            names,
            spki_der,
            key_enciphers,
            validity_days,
        };
        let started = std::time::Instant::now();
        let prepared = prepare_leaf(&leaf)?;
        crate::metrics::stage("build_lint", started);
        let intent = IssuanceIntent {
            serial: prepared.serial.clone(),
            issuer,
            ca: ca_id.clone(),
            profile: profile.name.clone(),
            tenant: tenant.clone(),
            subject: names.subject_string(),
            sans: names.san_strings(),
            not_before: prepared.not_before,
            not_after: prepared.not_after,
            actor: actor.into(),
        };
        let record = CertRecord {
            serial: prepared.serial.hex(),
            issuer,
            ca: ca_id,
            profile: intent.profile.clone(),
            tenant,
            subject: intent.subject.clone(),
            sans: intent.sans.clone(),
            not_before: intent.not_before,
            not_after: intent.not_after,
            issued_at: OffsetDateTime::now_utc().unix_timestamp(),
            der: Vec::new(),
            revocation: None,
        };
        let serial = prepared.serial.clone();
        // Signed before the intent is durable: intent and certificate share one commit, and
        // the certificate leaves the process only after it (ARCHITECTURE "issuance flow").
        let started = std::time::Instant::now();
        let signed = prepared.sign(ca);
        crate::metrics::stage("sign", started);
        let der = match signed {
            Ok(der) => der,
            Err(e) => {
                // The serial stays burnt; the audit log says why nothing was issued.
                if let Err(abandon) = self.store.record_abandoned(intent, &e.to_string()).await {
                    tracing::error!(%serial, error = %abandon, "could not record abandoned issuance");
                }
                return Err(e);
            }
        };
        let started = std::time::Instant::now();
        self.store.record_issued(intent, der.clone()).await?;
        crate::metrics::stage("store", started);
        if let By::Issuing(ca) = &by {
            self.publisher.issued(&ca.id, &serial);
        }
        tracing::info!(%serial, profile = %profile.name, actor, "certificate issued");
        Ok(CertRecord { der, ..record })
    }

    /// Revokes a certificate: acknowledged once durable; OCSP re-signed at once, CRLs within a second.
    pub async fn revoke(
        &self,
        caller: &Caller,
        serial: &str,
        reason: Reason,
        invalidity_date: Option<i64>,
    ) -> Result<CertRecord> {
        caller.may(Action::Revoke)?;
        let serial = Serial::parse_hex(serial)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        if invalidity_date.is_some_and(|t| t > now + 60) {
            return Err(Error::field("invalidity_date", "is in the future"));
        }
        let record = self
            .store
            .revoke(RevokeRequest {
                serial,
                reason,
                invalidity_date,
                tenant: (caller.role == Role::Platform).then(|| caller.tenant.clone()),
                actor: caller.actor(),
            })
            .await?;
        tracing::info!(serial = %record.serial, reason = reason.name(), actor = %caller.actor(), "certificate revoked");
        count_revocation(reason);
        self.published(&record).await;
        self.revoke_pair(caller, &record, reason).await?;
        Ok(record)
    }

    /// Revocations the caller may see, as they happen.
    pub fn watch_revocations(
        &self,
        caller: &Caller,
    ) -> Result<(broadcast::Receiver<RevocationEvent>, Option<String>)> {
        caller.may(Action::WatchRevocations)?;
        let tenant = (caller.role == Role::Platform).then(|| caller.tenant.clone());
        Ok((self.publisher.subscribe(), tenant))
    }

    /// Refreshes the metrics read at scrape time: CRL sizes and ages, certificates expiring
    /// within 7 and 30 days.
    pub async fn observe(&self) -> Result<()> {
        self.publisher.observe_crls();
        let Some(m) = crate::metrics::get() else {
            return Ok(());
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        for (label, days) in [("7d", 7), ("30d", 30)] {
            let n = self.store.expiring(now, now + days * 86_400).await?;
            m.expiring
                .with_label_values(&[label])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        Ok(())
    }

    /// Sets the TSA policy OID (validated).
    pub fn set_tsa_policy(&mut self, policy: &str) -> Result<()> {
        crate::core::cms::parse_oid(policy)
            .map_err(|_| Error::Config(format!("tsa_policy {policy:?} is not a dotted OID")))?;
        self.tsa_policy = policy.into();
        Ok(())
    }

    /// Installs a family's time-stamping unit (at start and on renewal).
    pub fn set_tsa(&self, family: Family, tsa: WorkingKey) {
        if let Ok(mut t) = self.tsa.write() {
            t.insert(family, tsa);
        }
    }

    /// Installs the report signer (at start and on renewal).
    pub fn set_report_signer(&self, signer: WorkingKey) {
        if let Ok(mut s) = self.report_signer.write() {
            *s = Some(signer);
        }
    }

    /// True if there is no report signer, or one that expires within `margin` seconds.
    pub fn report_signer_due(&self, margin: i64) -> bool {
        let at = OffsetDateTime::now_utc().unix_timestamp();
        self.report_signer
            .read()
            .map(|s| s.as_ref().is_none_or(|k| k.not_after - at < margin))
            .unwrap_or(true)
    }

    /// The report signer, if installed.
    fn report_signer(&self) -> Option<WorkingKey> {
        self.report_signer.read().ok().and_then(|s| s.clone())
    }

    /// True if a family with a hierarchy has no time-stamping unit, or one that expires
    /// within `margin` seconds (the maintenance loop then issues one).
    pub fn tsa_due(&self, margin: i64) -> bool {
        let at = OffsetDateTime::now_utc().unix_timestamp();
        let Ok(units) = self.tsa.read() else {
            return true;
        };
        self.authority.hierarchies().iter().any(|h| {
            units
                .get(&h.algorithm.family())
                .is_none_or(|t| t.not_after - margin < at)
        })
    }

    /// The next time-stamp serial: from the current block, reserving (durably, audited) the
    /// next block when it is used up. Serials are never handed out twice, even after a crash.
    async fn next_tsa_serial(&self) -> Result<u64> {
        let mut s = self.tsa_serials.lock().await;
        if s.next == 0 || s.next > s.last {
            let (first, last) = self.store.reserve_timestamp_serials(TSA_BLOCK).await?;
            (s.next, s.last) = (first, last);
        }
        let n = s.next;
        s.next += 1;
        s.first_unreported.get_or_insert(n);
        s.last_unreported = n;
        Ok(n)
    }

    async fn tsa_outcome(&self, signed: bool) {
        let mut s = self.tsa_serials.lock().await;
        if signed {
            s.signed += 1;
        } else {
            s.failed += 1;
        }
    }

    /// Audits which time-stamp serials were used since the last report and how many tokens
    /// were signed (run with every audit checkpoint).
    pub async fn report_timestamps(&self) -> Result<()> {
        let (first, last, signed, failed) = {
            let mut s = self.tsa_serials.lock().await;
            let Some(first) = s.first_unreported.take() else {
                return Ok(());
            };
            let report = (first, s.last_unreported, s.signed, s.failed);
            (s.signed, s.failed) = (0, 0);
            report
        };
        self.store
            .audit_event(
                "tsa",
                "timestamp.tokens",
                &format!("{first}-{last}"),
                &format!("signed={signed} failed={failed}"),
            )
            .await
    }

    /// Answers an RFC 3161 request with a token or a rejection; each token's serial comes from
    /// a block reserved durably (and audited) before any of its tokens is signed.
    pub async fn timestamp(&self, request: &[u8]) -> Vec<u8> {
        use crate::core::tsp::{self, Refusal};
        let accepted = match tsp::accept(request, &self.tsa_policy) {
            Ok(a) => a,
            Err(r) => return tsp::reject(r),
        };
        // An SM3 imprint is stamped with SM2 when the national unit exists.
        let family = match accepted.imprint_alg() {
            crate::core::cms::DigestAlg::Sm3 => Family::National,
            _ => Family::International,
        };
        let tsa = self.tsa.read().ok().and_then(|t| {
            t.get(&family)
                .or_else(|| t.get(&Family::International))
                .cloned()
        });
        let Some(tsa) = tsa else {
            return tsp::reject(Refusal::SystemFailure);
        };
        let serial = match self.next_tsa_serial().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "time-stamp serial allocation failed");
                return tsp::reject(Refusal::SystemFailure);
            }
        };
        let at = OffsetDateTime::now_utc().unix_timestamp();
        let token = tsa.stamp(&accepted, &self.tsa_policy, serial, at);
        self.tsa_outcome(token.is_ok()).await;
        let label = if token.is_ok() { "granted" } else { "rejected" };
        self.tally("", crate::core::stats::kind::TIMESTAMP, label, 0);
        if let (Ok(_), Some(m)) = (&token, crate::metrics::get()) {
            m.timestamps.inc();
        }
        token.unwrap_or_else(|e| {
            tracing::error!(error = %e, "time-stamp signing failed");
            tsp::reject(Refusal::SystemFailure)
        })
    }

    /// One certificate by serial.
    pub async fn get(&self, caller: &Caller, serial: &str) -> Result<CertRecord> {
        let serial = Serial::parse_hex(serial)?;
        let record = self
            .store
            .get(&serial)
            .await?
            .ok_or_else(|| Error::NotFound(format!("certificate {serial}")))?;
        if caller.role == Role::Platform && record.tenant != caller.tenant {
            // Same answer as a missing certificate: a tenant learns nothing about others.
            return Err(Error::NotFound(format!("certificate {serial}")));
        }
        Ok(record)
    }

    /// Certificates visible to the caller.
    pub async fn list(&self, caller: &Caller, mut filter: ListFilter) -> Result<Page> {
        if caller.role == Role::Platform {
            filter.tenant = Some(caller.tenant.clone());
        }
        if let Some(p) = &filter.profile {
            self.profiles.get(p)?;
        }
        self.store.list(filter).await
    }

    /// The public profiles on offer: those whose issuer exists (an `optional_issuer`
    /// profile waits for its hierarchy).
    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles
            .iter()
            .filter(|p| self.authority.hierarchy(&p.issuer).is_ok())
    }

    /// Refuses a profile whose issuer does not exist (yet), saying how to make it.
    fn offered(&self, profile: &Profile, issuer: &str) -> Result<()> {
        if self.authority.hierarchy(issuer).is_ok() {
            return Ok(());
        }
        let family = profile
            .key_algorithms
            .first()
            .map_or("p256", |k| match k.family() {
                crate::core::keys::Family::National => "sm2",
                crate::core::keys::Family::International => "p256",
            });
        Err(Error::Conflict(format!(
            "profile {} signs under issuer {issuer:?}, which this CA does not have yet: `ecca issuer add --name {issuer} --algorithm {family} --yes` makes it",
            profile.name
        )))
    }
}

/// What an end-entity certificate is issued from, after policy approved the names.
#[derive(Clone, Copy, Debug)]
pub struct LeafRequest<'a> {
    pub ca: &'a CaCert,
    /// CRL, OCSP and CA certificate URLs; None for credentials (their one relying party,
    /// this server, checks its store).
    pub urls: Option<&'a IssuerUrls>,
    pub profile: &'a Profile,
    pub names: &'a Names,
    pub spki_der: &'a [u8],
    pub key_enciphers: bool,
    pub validity_days: Option<u32>,
}

/// A certificate built and linted, not yet signed: what the store records as intent.
#[derive(Debug)]
pub struct PreparedLeaf {
    pub serial: Serial,
    pub not_before: i64,
    pub not_after: i64,
    pass: issue::LintPass,
}

impl PreparedLeaf {
    /// Signs the linted bytes with the CA that prepared them.
    pub fn sign(self, ca: &CaCert) -> Result<Vec<u8>> {
        ca.sign_leaf(self.pass)
    }
}

/// Issuance up to the signature (serial, validity, build, lint), with no I/O: the pipeline
/// `Service` runs between policy and the store, and the bench's in-process ceiling.
pub fn prepare_leaf(req: &LeafRequest<'_>) -> Result<PreparedLeaf> {
    let key = SubjectKey::from_spki(req.spki_der)?;
    let ca = req.ca;
    let (not_before, not_after) = issue::validity(
        req.profile,
        req.validity_days,
        OffsetDateTime::now_utc(),
        ca.not_after,
    )?;
    let serial = Serial::random()?;
    let params = issue::leaf_params(&LeafSpec {
        profile: req.profile,
        names: req.names,
        serial: &serial,
        not_before,
        not_after,
        spki_der: req.spki_der,
        key_enciphers: req.key_enciphers,
        urls: req.urls,
    })?;
    let pass = ca.lint_leaf(&params, &key)?;
    Ok(PreparedLeaf {
        serial,
        not_before: not_before.unix_timestamp(),
        not_after: not_after.unix_timestamp(),
        pass,
    })
}
