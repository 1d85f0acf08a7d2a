//! Statistics and evaluation indicators, pure: how certificates and revocations roll up into
//! daily aggregates, how periods are cut (UTC days, ISO weeks, calendar months), and how the
//! counts and indicators are computed from the aggregates. The store keeps the aggregates; the
//! service asks and assembles.
use std::collections::BTreeMap;

use time::{Date, Month, OffsetDateTime};

pub const DAY: i64 = 86_400;

/// The UTC day of a Unix time (days since 1970-01-01).
pub fn day(t: i64) -> i64 {
    t.div_euclid(DAY)
}

/// Whether a certificate is one of the hierarchies' own (counted), not an API credential or
/// one of ecca's internal certificates (OCSP responder, TSA, gRPC server: profiles `ecca-*`).
pub fn counted(profile: &str, ca: &str) -> bool {
    ca != "credential" && !profile.starts_with("ecca-")
}

/// The USCC in a subject string ("..., serialNumber=91...", as the store keeps subjects), if it
/// is a valid one.
pub fn uscc_of(subject: &str) -> Option<String> {
    subject
        .split(", ")
        .filter_map(|part| part.strip_prefix("serialNumber="))
        .find(|v| crate::core::uscc::validate(v).is_ok())
        .map(str::to_string)
}

/// Whether a certificate renews an earlier one of the same platform, subject and names: on
/// time if issued before that one expired, late if after (a gap in coverage).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Renewal {
    New,
    OnTime,
    Late,
}

impl Renewal {
    pub fn of(issued_at: i64, predecessor_not_after: Option<i64>) -> Self {
        match predecessor_not_after {
            None => Renewal::New,
            Some(end) if issued_at <= end => Renewal::OnTime,
            Some(_) => Renewal::Late,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Renewal::New => "new",
            Renewal::OnTime => "on_time",
            Renewal::Late => "late",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Renewal::New, Renewal::OnTime, Renewal::Late]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// One aggregate row of issued certificates.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IssuedKey {
    pub day: i64,
    pub tenant: String,
    pub profile: String,
    pub ca: String,
    pub uscc: bool,
    /// Validity in days, rounded up.
    pub validity: i64,
    /// The UTC day of notAfter.
    pub expiry: i64,
    pub renewal: Renewal,
}

/// One aggregate row of revocations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevokedKey {
    pub day: i64,
    pub tenant: String,
    pub profile: String,
    pub ca: String,
    /// RFC 5280 reason code.
    pub reason: i64,
    pub expiry: i64,
}

/// One aggregate row of counted events.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    pub day: i64,
    pub tenant: String,
    pub kind: String,
    pub label: String,
}

/// A certificate row after the roll-up's mark.
#[derive(Clone, Debug)]
pub struct NewCert {
    pub id: i64,
    /// 'pending', 'issued' or 'abandoned'.
    pub status: String,
    pub tenant: String,
    pub profile: String,
    pub ca: String,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub issued_at: Option<i64>,
    /// notAfter of the newest earlier certificate of the same platform, subject and names.
    pub predecessor_not_after: Option<i64>,
}

/// A revocation after the roll-up's mark.
#[derive(Clone, Debug)]
pub struct NewRevocation {
    pub seq: i64,
    pub cert_id: i64,
    pub tenant: String,
    pub profile: String,
    pub ca: String,
    pub reason: i64,
    pub revoked_at: i64,
    pub not_after: i64,
}

/// The aggregate rows of a range of days.
#[derive(Clone, Debug, Default)]
pub struct StatsPeriod {
    pub issued: Vec<(IssuedKey, u64)>,
    pub revoked: Vec<(RevokedKey, u64)>,
    /// Events with their count and total milliseconds.
    pub events: Vec<(EventKey, u64, i64)>,
}

impl StatsPeriod {
    /// The rows of the days in `days` and, if given, of one platform.
    pub fn select(&self, days: std::ops::Range<i64>, tenant: Option<&str>) -> StatsPeriod {
        let keep = |day: i64, t: &str| days.contains(&day) && tenant.is_none_or(|only| only == t);
        StatsPeriod {
            issued: self
                .issued
                .iter()
                .filter(|(k, _)| keep(k.day, &k.tenant))
                .cloned()
                .collect(),
            revoked: self
                .revoked
                .iter()
                .filter(|(k, _)| keep(k.day, &k.tenant))
                .cloned()
                .collect(),
            events: self
                .events
                .iter()
                .filter(|(k, ..)| keep(k.day, &k.tenant))
                .cloned()
                .collect(),
        }
    }
}

/// How far the roll-up has read: the last certificate id and revocation position counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    pub cert_id: i64,
    pub revocation_seq: i64,
}

/// What one roll-up step adds, and the marks it moves to.
#[derive(Clone, Debug, Default)]
pub struct Rollup {
    pub to: Marks,
    pub issued: Vec<(IssuedKey, u64)>,
    pub revoked: Vec<(RevokedKey, u64)>,
}

/// Rolls up rows read after `from` (certificates in id order, revocations in position order).
/// Stops before the first pending certificate (it may still be issued) and before the first
/// revocation of a certificate not yet counted, so each is counted exactly once.
pub fn roll_up(from: Marks, certs: &[NewCert], revocations: &[NewRevocation]) -> Rollup {
    let mut issued: BTreeMap<IssuedKey, u64> = BTreeMap::new();
    let mut to = from;
    for c in certs {
        if c.status == "pending" {
            break;
        }
        to.cert_id = c.id;
        let (Some(at), true) = (c.issued_at, c.status == "issued") else {
            continue;
        };
        if !counted(&c.profile, &c.ca) {
            continue;
        }
        let key = IssuedKey {
            day: day(at),
            tenant: c.tenant.clone(),
            profile: c.profile.clone(),
            ca: c.ca.clone(),
            uscc: uscc_of(&c.subject).is_some(),
            validity: (c.not_after - c.not_before + DAY - 1).div_euclid(DAY),
            expiry: day(c.not_after),
            renewal: Renewal::of(at, c.predecessor_not_after),
        };
        *issued.entry(key).or_default() += 1;
    }
    let mut revoked: BTreeMap<RevokedKey, u64> = BTreeMap::new();
    for r in revocations {
        if r.cert_id > to.cert_id {
            break;
        }
        to.revocation_seq = r.seq;
        if !counted(&r.profile, &r.ca) {
            continue;
        }
        let key = RevokedKey {
            day: day(r.revoked_at),
            tenant: r.tenant.clone(),
            profile: r.profile.clone(),
            ca: r.ca.clone(),
            reason: r.reason,
            expiry: day(r.not_after),
        };
        *revoked.entry(key).or_default() += 1;
    }
    Rollup {
        to,
        issued: issued.into_iter().collect(),
        revoked: revoked.into_iter().collect(),
    }
}

/// How periods are cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By {
    Day,
    /// ISO weeks, Monday to Sunday.
    Week,
    Month,
}

impl By {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(By::Day),
            "week" => Some(By::Week),
            "month" => Some(By::Month),
            _ => None,
        }
    }
}

/// A period [from, to) in Unix seconds, named like "2026-11", "2026-W47" or "2026-11-20".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub from: i64,
    pub to: i64,
}

fn date_of(t: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(t)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .date()
}

fn start_of(d: Date) -> i64 {
    d.midnight().assume_utc().unix_timestamp()
}

fn next_month(d: Date) -> Date {
    let (y, m) = match d.month() {
        Month::December => (d.year() + 1, Month::January),
        m => (d.year(), m.next()),
    };
    Date::from_calendar_date(y, m, 1).unwrap_or(d)
}

/// The calendar month "YYYY-MM" as [from, to).
pub fn month(text: &str) -> Option<Period> {
    let (y, m) = text.split_once('-')?;
    let (y, m): (i32, u8) = (y.parse().ok()?, m.parse().ok()?);
    if y.to_string().len() != 4 || text.len() != 7 {
        return None;
    }
    let first = Date::from_calendar_date(y, Month::try_from(m).ok()?, 1).ok()?;
    Some(Period {
        label: text.to_string(),
        from: start_of(first),
        to: start_of(next_month(first)),
    })
}

/// A date "YYYY-MM-DD" as the Unix time of its UTC midnight.
pub fn date(text: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &fmt).ok().map(start_of)
}

/// Cuts [from, to) into periods (the first and last clipped to the range).
pub fn periods(from: i64, to: i64, by: By) -> Vec<Period> {
    let mut out = Vec::new();
    let mut d = date_of(from);
    if by == By::Week {
        d = d - time::Duration::days(d.weekday().number_days_from_monday() as i64);
    }
    if by == By::Month {
        d = d.replace_day(1).unwrap_or(d);
    }
    while start_of(d) < to {
        let next = match by {
            By::Day => d.next_day().unwrap_or(d),
            By::Week => d + time::Duration::days(7),
            By::Month => next_month(d),
        };
        let label = match by {
            By::Day => d.to_string(),
            By::Week => format!("{}-W{:02}", d.to_iso_week_date().0, d.iso_week()),
            By::Month => format!("{}-{:02}", d.year(), d.month() as u8),
        };
        out.push(Period {
            label,
            from: start_of(d).max(from),
            to: start_of(next).min(to),
        });
        if next == d {
            break;
        }
        d = next;
    }
    out
}

/// RFC 5280 reason names by code (8 is unused).
pub fn reason_name(code: i64) -> String {
    crate::core::revocation::Reason::from_code(code)
        .map(|r| r.name().to_string())
        .unwrap_or_else(|_| format!("reason{code}"))
}

/// Revocation-to-publication delays are counted in these buckets (upper bounds, seconds); the
/// label of a delay is its bucket's.
pub const DELAY_BUCKETS: [i64; 8] = [1, 5, 30, 60, 300, 900, 3600, 86_400];

pub fn delay_label(ms: i64) -> String {
    DELAY_BUCKETS
        .iter()
        .find(|b| ms <= *b * 1000)
        .map(|b| format!("le_{b}"))
        .unwrap_or_else(|| "le_inf".into())
}

/// The delay (seconds, a bucket's upper bound) under which `q` (0..1) of the delays fell; None
/// without delays; infinity if beyond the last bucket.
pub fn delay_quantile(buckets: &BTreeMap<String, u64>, q: f64) -> Option<f64> {
    let total: u64 = buckets.values().sum();
    if total == 0 {
        return None;
    }
    let want = (q * total as f64).ceil() as u64;
    let mut seen = 0;
    for b in DELAY_BUCKETS {
        seen += buckets.get(&format!("le_{b}")).copied().unwrap_or(0);
        if seen >= want {
            return Some(b as f64);
        }
    }
    Some(f64::INFINITY)
}

/// A ratio, None when the denominator is zero (an indicator without data is not 0 % or 100 %).
pub fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Events counted in memory between flushes to the store (every few seconds and at stop).
#[derive(Debug, Default)]
pub struct Tally {
    counts: std::sync::Mutex<BTreeMap<EventKey, (u64, i64)>>,
    /// Anonymous events with fixed labels (OCSP answers: the hot path), counted without
    /// allocating.
    fixed: std::sync::Mutex<std::collections::HashMap<(i64, &'static str, &'static str), u64>>,
}

impl Tally {
    /// Counts one anonymous event with a fixed kind and label (no allocation).
    pub fn count_fixed(&self, kind: &'static str, label: &'static str) {
        let today = day(OffsetDateTime::now_utc().unix_timestamp());
        if let Ok(mut c) = self.fixed.lock() {
            *c.entry((today, kind, label)).or_default() += 1;
        }
    }

    /// Counts one event now (`ms`: a duration to sum, else 0).
    pub fn count(&self, tenant: &str, kind: &str, label: &str, ms: i64) {
        let key = EventKey {
            day: day(OffsetDateTime::now_utc().unix_timestamp()),
            tenant: tenant.into(),
            kind: kind.into(),
            label: label.into(),
        };
        if let Ok(mut c) = self.counts.lock() {
            let e = c.entry(key).or_default();
            e.0 += 1;
            e.1 += ms;
        }
    }

    /// Takes what was counted since the last take.
    pub fn take(&self) -> Vec<(EventKey, u64, i64)> {
        let mut counts = self
            .counts
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        let fixed = self
            .fixed
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        for ((day, kind, label), n) in fixed {
            let key = EventKey {
                day,
                tenant: String::new(),
                kind: kind.into(),
                label: label.into(),
            };
            counts.entry(key).or_default().0 += n;
        }
        counts.into_iter().map(|(k, (n, ms))| (k, n, ms)).collect()
    }

    /// Puts back what could not be stored (counted again at the next flush).
    pub fn put_back(&self, events: Vec<(EventKey, u64, i64)>) {
        if let Ok(mut c) = self.counts.lock() {
            for (k, n, ms) in events {
                let e = c.entry(k).or_default();
                e.0 += n;
                e.1 += ms;
            }
        }
    }
}

/// Event kinds (their labels in parentheses).
pub mod kind {
    /// RFC 3161 requests (granted, rejected).
    pub const TIMESTAMP: &str = "timestamp";
    /// Document signatures verified (valid, or the failure's class).
    pub const DOCUMENT: &str = "document_verification";
    /// Certificates verified (valid, or the failure's class).
    pub const CERTIFICATE: &str = "certificate_verification";
    /// Certificates of other regions verified ("peer:valid", "peer:invalid").
    pub const PEER: &str = "peer_verification";
    /// OCSP responses (good, revoked, unknown, or the error status).
    pub const OCSP: &str = "ocsp";
    /// From a revocation to its signed OCSP response (delay buckets; total_ms sums delays).
    pub const PUBLICATION: &str = "revocation_publication";
}

/// The class of a failed verification, from its reasons (a bounded label set).
pub fn failure_class(reasons: &[String]) -> &'static str {
    let text = reasons.join(" ").to_ascii_lowercase();
    [
        ("timestamp", "timestamp"),
        ("revoked", "revoked"),
        ("revocation status unavailable", "revocation_unavailable"),
        ("does not know", "revocation_unavailable"),
        ("expired", "expired"),
        ("not yet valid", "expired"),
        ("digest", "bad_signature"),
        ("signature", "bad_signature"),
        ("anchor", "untrusted"),
        ("path", "untrusted"),
        ("issuer", "untrusted"),
        ("name", "name_constraints"),
    ]
    .into_iter()
    .find(|(needle, _)| text.contains(needle))
    .map_or("other", |(_, class)| class)
}

/// Validity buckets (days, upper bounds) for the validity distribution.
const VALIDITY_BUCKETS: [i64; 5] = [7, 30, 90, 398, 825];

pub fn validity_label(days: i64) -> String {
    VALIDITY_BUCKETS
        .iter()
        .find(|b| days <= **b)
        .map_or_else(|| "gt_825d".to_string(), |b| format!("le_{b}d"))
}

/// The numbers of one period (or of the whole range).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    pub issued: u64,
    /// Valid at the end of the period (issued, not revoked, not expired).
    pub active: u64,
    /// notAfter fell in the period (revoked before or not).
    pub expired: u64,
    pub revoked: u64,
    pub revoked_by_reason: BTreeMap<String, u64>,
    pub renewed_on_time: u64,
    pub renewed_late: u64,
    pub validity: BTreeMap<String, u64>,
    pub international: u64,
    pub national: u64,
    pub with_uscc: u64,
    pub by_profile: BTreeMap<String, u64>,
    /// Event counts by kind and label.
    pub events: BTreeMap<String, BTreeMap<String, u64>>,
    /// Sum of revocation-to-publication delays (milliseconds).
    pub publication_ms: i64,
}

impl Counts {
    /// Adds the aggregate rows of the period (`national`: whether a CA id is of an SM2
    /// hierarchy).
    pub fn add_rows(&mut self, rows: &StatsPeriod, national: &dyn Fn(&str) -> bool) {
        for (k, n) in &rows.issued {
            let n = *n;
            self.issued += n;
            match k.renewal {
                Renewal::OnTime => self.renewed_on_time += n,
                Renewal::Late => self.renewed_late += n,
                Renewal::New => {}
            }
            *self.validity.entry(validity_label(k.validity)).or_default() += n;
            if national(&k.ca) {
                self.national += n;
            } else {
                self.international += n;
            }
            if k.uscc {
                self.with_uscc += n;
            }
            *self.by_profile.entry(k.profile.clone()).or_default() += n;
        }
        for (k, n) in &rows.revoked {
            self.revoked += n;
            *self
                .revoked_by_reason
                .entry(reason_name(k.reason))
                .or_default() += n;
        }
        for (k, n, ms) in &rows.events {
            *self
                .events
                .entry(k.kind.clone())
                .or_default()
                .entry(k.label.clone())
                .or_default() += n;
            if k.kind == kind::PUBLICATION {
                self.publication_ms += ms;
            }
        }
    }

    fn event(&self, kind: &str) -> BTreeMap<String, u64> {
        self.events.get(kind).cloned().unwrap_or_default()
    }

    /// Valid and all verifications of a kind.
    fn verified(&self, kind: &str) -> (u64, u64) {
        let e = self.event(kind);
        (e.get("valid").copied().unwrap_or(0), e.values().sum())
    }
}

/// An evaluation indicator's value (None: no data in the period).
#[derive(Clone, Debug, PartialEq)]
pub struct Indicator {
    pub name: &'static str,
    pub value: Option<f64>,
    pub unit: &'static str,
}

/// The indicators of docs/indicators.md from a period's counts, the registered merchants
/// (USCCs) and how many of them hold a valid certificate, and the oldest CRL's age.
pub fn indicators(c: &Counts, merchants: (u64, u64), crl_age: Option<i64>) -> Vec<Indicator> {
    let ind = |name, value, unit| Indicator { name, value, unit };
    let (covered, registered) = merchants;
    let ocsp = c.event(kind::OCSP);
    let ocsp_all: u64 = ocsp.values().sum();
    let ocsp_failed: u64 = ["internal_error", "try_later"]
        .iter()
        .filter_map(|s| ocsp.get(*s))
        .sum();
    let publication = c.event(kind::PUBLICATION);
    let published: u64 = publication.values().sum();
    let (docs_ok, docs) = c.verified(kind::DOCUMENT);
    let (certs_ok, certs) = c.verified(kind::CERTIFICATE);
    vec![
        ind(
            "merchant_certificate_coverage",
            ratio(covered, registered),
            "ratio",
        ),
        ind(
            "national_algorithm_share",
            ratio(c.national, c.issued),
            "ratio",
        ),
        ind(
            "revocation_publication_latency_p99",
            delay_quantile(&publication, 0.99),
            "seconds",
        ),
        ind(
            "revocation_publication_latency_mean",
            ratio(c.publication_ms.max(0) as u64, published).map(|ms| ms / 1000.0),
            "seconds",
        ),
        ind(
            "ocsp_availability",
            ratio(ocsp_all - ocsp_failed, ocsp_all),
            "ratio",
        ),
        ind("crl_max_age", crl_age.map(|a| a as f64), "seconds"),
        ind(
            "expired_certificate_incidents",
            Some(c.renewed_late as f64),
            "certificates",
        ),
        ind(
            "renewal_on_time_rate",
            ratio(c.renewed_on_time, c.renewed_on_time + c.renewed_late),
            "ratio",
        ),
        ind(
            "signature_verification_success_rate",
            ratio(docs_ok, docs),
            "ratio",
        ),
        ind(
            "certificate_verification_success_rate",
            ratio(certs_ok, certs),
            "ratio",
        ),
        ind("revocation_rate", ratio(c.revoked, c.issued), "ratio"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(id: i64, status: &str, profile: &str, prev: Option<i64>) -> NewCert {
        NewCert {
            id,
            status: status.into(),
            tenant: "shop".into(),
            profile: profile.into(),
            ca: "issuing".into(),
            subject: "CN=a.example.cn, serialNumber=91350100M000100Y43".into(),
            not_before: 10 * DAY,
            not_after: 100 * DAY + 5,
            issued_at: (status == "issued").then_some(10 * DAY + 7),
            predecessor_not_after: prev,
        }
    }

    #[test]
    fn roll_up_stops_at_pending_and_counts_revocations_once() {
        let certs = [
            cert(1, "issued", "server-tls", None),
            cert(2, "abandoned", "server-tls", None),
            cert(3, "issued", "ecca-ocsp", None),
            cert(4, "issued", "server-tls", Some(11 * DAY)),
            cert(5, "pending", "server-tls", None),
            cert(6, "issued", "server-tls", Some(DAY)),
        ];
        let rev = |seq, cert_id| NewRevocation {
            seq,
            cert_id,
            tenant: "shop".into(),
            profile: "server-tls".into(),
            ca: "issuing".into(),
            reason: 1,
            revoked_at: 20 * DAY,
            not_after: 100 * DAY,
        };
        let r = roll_up(Marks::default(), &certs, &[rev(1, 1), rev(2, 6), rev(3, 4)]);
        assert_eq!(
            r.to,
            Marks {
                cert_id: 4,
                revocation_seq: 1
            }
        );
        let n: u64 = r.issued.iter().map(|(_, n)| n).sum();
        assert_eq!(n, 2, "{:?}", r.issued);
        let k = &r.issued[0].0;
        assert!(k.uscc);
        assert_eq!((k.day, k.validity, k.expiry), (10, 91, 100));
        assert!(r.issued.iter().any(|(k, _)| k.renewal == Renewal::OnTime));
        assert_eq!(r.revoked.len(), 1);
    }

    #[test]
    fn periods_cut_months_weeks_and_days() {
        let nov = month("2026-11").unwrap();
        assert_eq!(nov.to - nov.from, 30 * DAY);
        assert!(month("2026-13").is_none() && month("26-11").is_none());
        let p = periods(nov.from, nov.to, By::Month);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].label, "2026-11");
        let w = periods(nov.from, nov.to, By::Week);
        assert_eq!(w[0].label, "2026-W44");
        assert_eq!(w[0].from, nov.from);
        assert_eq!(w.last().unwrap().to, nov.to);
        assert_eq!(periods(nov.from, nov.to, By::Day).len(), 30);
        assert_eq!(date("2026-11-01"), Some(nov.from));
    }

    #[test]
    fn tally_takes_both_kinds_of_counts_once() {
        let t = Tally::default();
        t.count_fixed(kind::OCSP, "good");
        t.count_fixed(kind::OCSP, "good");
        t.count("shop", kind::PUBLICATION, "le_1", 300);
        let taken = t.take();
        assert_eq!(taken.len(), 2);
        assert!(
            taken
                .iter()
                .any(|(k, n, _)| k.kind == kind::OCSP && k.tenant.is_empty() && *n == 2)
        );
        assert!(
            taken
                .iter()
                .any(|(k, n, ms)| k.tenant == "shop" && *n == 1 && *ms == 300)
        );
        assert!(t.take().is_empty());
    }

    #[test]
    fn delays_fall_in_buckets_and_quantiles_read_them() {
        assert_eq!(delay_label(800), "le_1");
        assert_eq!(delay_label(3_000_000), "le_3600");
        let mut b = BTreeMap::new();
        b.insert("le_1".to_string(), 98);
        b.insert("le_30".to_string(), 2);
        assert_eq!(delay_quantile(&b, 0.99), Some(30.0));
        assert_eq!(delay_quantile(&b, 0.5), Some(1.0));
        assert_eq!(delay_quantile(&BTreeMap::new(), 0.99), None);
    }
}
