//! Statistics: rolling certificates and revocations up into the store's daily aggregates,
//! flushing the events counted in memory, and answering GetStatistics from the aggregates
//! (true across restarts and instances: every number comes from the store).
use std::collections::{BTreeMap, HashSet};

use time::OffsetDateTime;

use super::Service;
use crate::auth::{Action, Caller};
use crate::core::keys::Family;
use crate::core::stats::{self, By, Counts, DAY, Indicator, Marks, Period, StatsPeriod, kind};
use crate::error::{Error, Result};
use crate::publish::CrlHealth;
use crate::store::Op;
use crate::store::Role;

/// Rows read per roll-up step.
const ROLLUP_BATCH: u32 = 20_000;
/// Roll-up steps an answer waits for at most.
const ANSWER_BATCHES: u32 = 5;
/// At most this many periods in one answer.
const MAX_PERIODS: usize = 400;

/// What GetStatistics is asked.
#[derive(Clone, Debug, Default)]
pub struct StatsQuery {
    /// One platform (None: all, for admins and auditors; a platform always gets its own).
    pub platform: Option<String>,
    /// [from, to) in Unix seconds; from defaults to the beginning, to to now.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub by: Option<By>,
}

/// The answer: totals, periods, per-platform numbers, indicators, CRL health.
#[derive(Clone, Debug)]
pub struct Statistics {
    pub platform: Option<String>,
    pub from: i64,
    pub to: i64,
    pub computed_at: i64,
    pub total: Counts,
    pub periods: Vec<(Period, Counts)>,
    /// Per platform ("" for certificates issued by admins), when not asked for one platform.
    pub platforms: BTreeMap<String, Counts>,
    pub indicators: Vec<Indicator>,
    pub crls: Vec<CrlHealth>,
    /// Registered merchant USCCs, and how many hold a valid certificate.
    pub merchants: (u64, u64),
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Report signatures (one per document, DER) and the signer's chain (DER, signer first).
#[derive(Debug)]
pub struct ReportSignatures {
    pub signatures: Vec<Vec<u8>>,
    pub chain: Vec<Vec<u8>>,
}

/// Expired in a period and valid at its end, by platform.
#[derive(Debug, Default)]
struct Ends {
    expired: BTreeMap<String, u64>,
    active: BTreeMap<String, u64>,
}

impl Ends {
    fn add_expired(&mut self, tenant: String, n: i64) {
        *self.expired.entry(tenant).or_default() += n.max(0) as u64;
    }

    fn add_active(&mut self, tenant: String, n: i64) {
        let e = self.active.entry(tenant).or_default();
        *e = e.saturating_add_signed(n);
    }

    /// One platform's (or, None, everyone's) numbers.
    fn of(&self, tenant: Option<&str>) -> (u64, u64) {
        let sum = |m: &BTreeMap<String, u64>| match tenant {
            Some(t) => m.get(t).copied().unwrap_or(0),
            None => m.values().sum(),
        };
        (sum(&self.expired), sum(&self.active))
    }
}

/// A period's counts for one platform (None: all in `rows`).
fn counts(
    rows: &StatsPeriod,
    p: &Period,
    tenant: Option<&str>,
    ends: &Ends,
    national: &dyn Fn(&str) -> bool,
) -> Counts {
    let mut c = Counts::default();
    c.add_rows(
        &rows.select(stats::day(p.from)..day_end(p.to), tenant),
        national,
    );
    (c.expired, c.active) = ends.of(tenant);
    c
}

/// The first UTC day after the one holding the last second before `t`.
fn day_end(t: i64) -> i64 {
    stats::day(t - 1) + 1
}

impl Service {
    /// Rolls up what was issued and revoked since the last roll-up (run every few seconds and
    /// before each answer). Instances rolling up together: one wins each step.
    pub async fn roll_up_statistics(&self) -> Result<()> {
        self.roll_up(u32::MAX).await
    }

    /// Rolls up at most `batches` steps (an answer waits for a few; the background task
    /// catches up with any backlog).
    async fn roll_up(&self, batches: u32) -> Result<()> {
        for _ in 0..batches {
            let from = self.store.stats_marks().await?;
            let (certs, revocations) = self.store.stats_source(from, ROLLUP_BATCH).await?;
            let full =
                certs.len() == ROLLUP_BATCH as usize || revocations.len() == ROLLUP_BATCH as usize;
            let rollup = stats::roll_up(from, &certs, &revocations);
            if rollup.to == from {
                return Ok(());
            }
            match self.store.write(Op::AddStats { from, rollup }).await {
                Ok(_) | Err(Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
            if !full {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Stores the events counted in memory (put back if the store refuses, counted next time).
    pub async fn flush_statistics(&self) -> Result<()> {
        let events = self.publisher.tally().take();
        if events.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.write(Op::CountEvents(events.clone())).await {
            self.publisher.tally().put_back(events);
            return Err(e);
        }
        Ok(())
    }

    /// Counts an event for the statistics.
    pub(super) fn tally(&self, tenant: &str, kind: &str, label: &str, ms: i64) {
        self.publisher.tally().count(tenant, kind, label, ms);
    }

    /// Statistics for admins and auditors (any platform or all), or a platform (its own).
    pub async fn statistics(&self, caller: &Caller, mut q: StatsQuery) -> Result<Statistics> {
        caller.may(Action::ReadStatistics)?;
        if caller.role == Role::Platform {
            match &q.platform {
                Some(p) if *p != caller.tenant => {
                    return Err(Error::PermissionDenied(format!(
                        "platform {} may see only its own statistics",
                        caller.tenant
                    )));
                }
                _ => q.platform = Some(caller.tenant.clone()),
            }
        }
        let at = now();
        let from = q.from.unwrap_or(0).max(0);
        let to = q.to.unwrap_or(at).min(at);
        if from >= to {
            return Err(Error::InvalidField {
                field: "from".into(),
                reason: "must be before `to` and before now".into(),
            });
        }
        let cut = match q.by {
            Some(by) => stats::periods(from, to, by),
            None => Vec::new(),
        };
        if cut.len() > MAX_PERIODS {
            return Err(Error::InvalidField {
                field: "by".into(),
                reason: format!(
                    "{} periods is more than {MAX_PERIODS}: narrow --from/--to or use a longer period",
                    cut.len()
                ),
            });
        }
        let platforms = self.store.platforms().await?;
        if let Some(p) = &q.platform
            && !p.is_empty()
            && !platforms.iter().any(|r| r.name == *p)
        {
            return Err(Error::NotFound(format!("platform {p}")));
        }
        if let Err(e) = self.roll_up(ANSWER_BATCHES).await {
            tracing::warn!(error = %e, "statistics roll-up failed; answering from what was rolled up");
        }
        if let Err(e) = self.flush_statistics().await {
            tracing::warn!(error = %e, "statistics events not stored yet");
        }
        let mark = self.store.stats_marks().await?;
        let national = self.national_cas().await?;
        let rows = self
            .store
            .stats_period(q.platform.clone(), stats::day(from), day_end(to))
            .await?;
        let whole = Period {
            label: String::new(),
            from,
            to,
        };
        let is_national = |ca: &str| national.contains(ca);
        let ends = self.ends(&q.platform, &whole, mark, at).await?;
        let total = counts(&rows, &whole, None, &ends, &is_national);
        let mut periods = Vec::with_capacity(cut.len());
        for p in cut {
            let e = self.ends(&q.platform, &p, mark, at).await?;
            let c = counts(&rows, &p, None, &e, &is_national);
            periods.push((p, c));
        }
        let mut per_platform = BTreeMap::new();
        if q.platform.is_none() {
            let names = platforms.iter().map(|p| p.name.as_str()).chain([""]);
            for name in names {
                let c = counts(&rows, &whole, Some(name), &ends, &is_national);
                per_platform.insert(name.to_string(), c);
            }
        }
        let mut merchants = (0, 0);
        for p in platforms
            .iter()
            .filter(|p| q.platform.as_ref().is_none_or(|only| *only == p.name))
        {
            let registered: Vec<String> = p.usccs.clone();
            merchants.1 += registered.len() as u64;
            if !registered.is_empty() {
                merchants.0 += self
                    .store
                    .merchants_covered(p.name.clone(), registered, at)
                    .await?;
            }
        }
        let crls = self.publisher.crl_health();
        let crl_age = crls.iter().map(|c| at - c.this_update).max();
        let indicators = stats::indicators(&total, merchants, crl_age);
        Ok(Statistics {
            platform: q.platform,
            from,
            to,
            computed_at: at,
            total,
            periods,
            platforms: per_platform,
            indicators,
            crls,
            merchants,
        })
    }

    /// The CA ids of the national (SM2) hierarchies.
    async fn national_cas(&self) -> Result<HashSet<String>> {
        Ok(self
            .store
            .issuers()
            .await?
            .into_iter()
            .filter(|i| i.algorithm.family() == Family::National)
            .flat_map(|i| i.certs.into_iter().map(|c| c.ca_id.as_str().to_string()))
            .collect())
    }

    /// What expired in a period and what was valid at its end, by platform: whole past days
    /// from the aggregates, today up to now counted exactly.
    async fn ends(
        &self,
        tenant: &Option<String>,
        p: &Period,
        mark: Marks,
        at: i64,
    ) -> Result<Ends> {
        let (first, end) = (stats::day(p.from), day_end(p.to));
        let today = stats::day(at);
        let mut e = Ends::default();
        for (t, n) in self
            .store
            .stats_expired(tenant.clone(), first, end.min(today))
            .await?
        {
            e.add_expired(t, n);
        }
        if p.to > today * DAY {
            let from = (today * DAY).max(p.from);
            for (t, all, _) in self
                .store
                .stats_ending(tenant.clone(), from, at, mark.cert_id)
                .await?
            {
                e.add_expired(t, all);
            }
        }
        // Valid at the end: alive at a day's start from the aggregates; at now, alive at
        // tomorrow's start plus those expiring later today.
        let day = if p.to >= at {
            today + 1
        } else {
            stats::day(p.to)
        };
        for (t, _, n) in self.store.stats_alive(tenant.clone(), day).await? {
            e.add_active(t, n);
        }
        if p.to >= at {
            let until = (today + 1) * DAY;
            for (t, _, unrevoked) in self
                .store
                .stats_ending(tenant.clone(), at, until, mark.cert_id)
                .await?
            {
                e.add_active(t, unrevoked);
            }
        }
        Ok(e)
    }

    /// Counts a verification for the statistics (by outcome; other regions' by peer).
    pub(super) fn tally_verification(
        &self,
        tenant: &str,
        what: &str,
        valid: bool,
        reasons: &[String],
    ) {
        let label = if valid {
            "valid"
        } else {
            stats::failure_class(reasons)
        };
        self.tally(tenant, what, label, 0);
    }

    /// Counts a revocation's publication delay (its OCSP response is signed by now).
    pub(super) fn tally_publication(&self, tenant: &str, revoked_at: i64) {
        let ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let delay = (ms as i64 - revoked_at * 1000).max(0);
        self.tally(tenant, kind::PUBLICATION, &stats::delay_label(delay), delay);
    }
}

impl Service {
    /// Detached CMS signatures by the report signer over each of `documents`, and its chain
    /// (its certificate, then the CA certificate that issued it, both also in each signature).
    pub fn sign_reports(&self, documents: &[&[u8]]) -> Result<ReportSignatures> {
        let signer = self.report_signer().ok_or_else(|| {
            Error::Unavailable("the report signer is not ready yet; retry in a moment".into())
        })?;
        let issuer = self.issuer_of(&signer.cert_der);
        let at = now();
        let signatures = documents
            .iter()
            .map(|d| signer.sign_detached(d, &issuer, at))
            .collect::<Result<_>>()?;
        let mut chain = vec![signer.cert_der.clone()];
        chain.extend(issuer);
        Ok(ReportSignatures { signatures, chain })
    }

    /// The CA certificate (of ours) that issued `cert_der`, if any.
    fn issuer_of(&self, cert_der: &[u8]) -> Vec<Vec<u8>> {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert_der) else {
            return Vec::new();
        };
        let (_, intermediates) = self.authority.ca_certificates();
        intermediates
            .into_iter()
            .filter(|der| {
                x509_parser::parse_x509_certificate(der)
                    .is_ok_and(|(_, c)| c.subject().as_raw() == cert.issuer().as_raw())
            })
            .take(1)
            .collect()
    }
}
