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
        let total = self
            .period_counts(&q.platform, &whole, &rows, mark, at, &national)
            .await?;
        let mut periods = Vec::with_capacity(cut.len());
        for p in cut {
            let c = self
                .period_counts(&q.platform, &p, &rows, mark, at, &national)
                .await?;
            periods.push((p, c));
        }
        let mut per_platform = BTreeMap::new();
        if q.platform.is_none() {
            let mut names: Vec<String> = platforms.iter().map(|p| p.name.clone()).collect();
            names.push(String::new());
            for name in names {
                let only = Some(name.clone());
                let mine = StatsPeriod {
                    issued: rows
                        .issued
                        .iter()
                        .filter(|(k, _)| k.tenant == name)
                        .cloned()
                        .collect(),
                    revoked: rows
                        .revoked
                        .iter()
                        .filter(|(k, _)| k.tenant == name)
                        .cloned()
                        .collect(),
                    events: rows
                        .events
                        .iter()
                        .filter(|(k, ..)| k.tenant == name)
                        .cloned()
                        .collect(),
                };
                let c = self
                    .period_counts(&only, &whole, &mine, mark, at, &national)
                    .await?;
                per_platform.insert(name, c);
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

    /// One period's counts: its rows, what expired in it, what was valid at its end.
    async fn period_counts(
        &self,
        tenant: &Option<String>,
        p: &Period,
        rows: &StatsPeriod,
        mark: Marks,
        at: i64,
        national: &HashSet<String>,
    ) -> Result<Counts> {
        let (first, end) = (stats::day(p.from), day_end(p.to));
        let inside = StatsPeriod {
            issued: rows
                .issued
                .iter()
                .filter(|(k, _)| (first..end).contains(&k.day))
                .cloned()
                .collect(),
            revoked: rows
                .revoked
                .iter()
                .filter(|(k, _)| (first..end).contains(&k.day))
                .cloned()
                .collect(),
            events: rows
                .events
                .iter()
                .filter(|(k, ..)| (first..end).contains(&k.day))
                .cloned()
                .collect(),
        };
        let mut c = Counts::default();
        c.add_rows(&inside, &|ca| national.contains(ca));
        let today = stats::day(at);
        // Expired: whole past days from the aggregates, today up to now exactly.
        let expired = self
            .store
            .stats_expired(tenant.clone(), first, end.min(today))
            .await?;
        c.expired = expired.iter().map(|(_, n)| *n).sum::<i64>().max(0) as u64;
        if p.to > today * DAY {
            let (ended, _) = self
                .store
                .stats_ending(tenant.clone(), (today * DAY).max(p.from), at, mark.cert_id)
                .await?;
            c.expired += ended;
        }
        // Active at the end: alive at a day's start from the aggregates; at now, alive at
        // tomorrow's start plus those expiring later today.
        let alive =
            |v: Vec<(String, String, i64)>| v.iter().map(|(.., n)| *n).sum::<i64>().max(0) as u64;
        c.active = if p.to >= at {
            let tomorrow = today + 1;
            let (_, later_today) = self
                .store
                .stats_ending(tenant.clone(), at, tomorrow * DAY, mark.cert_id)
                .await?;
            alive(self.store.stats_alive(tenant.clone(), tomorrow).await?) + later_today
        } else {
            alive(
                self.store
                    .stats_alive(tenant.clone(), stats::day(p.to))
                    .await?,
            )
        };
        Ok(c)
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
    /// A detached CMS signature over a report by the report signer (its certificate and
    /// the CA certificate that issued it included).
    pub fn sign_report(&self, content: &[u8]) -> Result<Vec<u8>> {
        let signer = self.report_signer().ok_or_else(|| {
            Error::Unavailable("the report signer is not ready yet; retry in a moment".into())
        })?;
        signer.sign_detached(content, &self.report_chain(&signer), now())
    }

    /// The CA certificate that issued the report signer's.
    pub fn report_chain(&self, signer: &crate::authority::WorkingKey) -> Vec<Vec<u8>> {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(&signer.cert_der) else {
            return Vec::new();
        };
        let issuer = cert.issuer().as_raw().to_vec();
        let (_, intermediates) = self.authority.ca_certificates();
        intermediates
            .into_iter()
            .filter(|der| {
                x509_parser::parse_x509_certificate(der)
                    .is_ok_and(|(_, c)| c.subject().as_raw() == issuer.as_slice())
            })
            .take(1)
            .collect()
    }
}
