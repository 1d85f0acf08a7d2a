//! Statistics as documents: the JSON of `ecca stats --json` and report.json, and the
//! self-contained HTML (inline SVG charts, no script, no external asset) of report.html and
//! the console. Built from the GetStatistics answer, so every view shows the same numbers.
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::core::stats::{self, By};
use crate::error::{Error, Result};
use crate::proto::{self as pb, StatisticsCounts};
use crate::service::Service;
use crate::service::statistics::{Statistics, StatsQuery};

pub mod html;

/// Writes the previous month's report to `dir`/YYYY-MM/ unless it is there (the server does
/// this once a month is over, as the CA itself).
pub async fn write_last_month(service: &Service, dir: &std::path::Path) -> Result<()> {
    let today = time::OffsetDateTime::now_utc().date();
    let first = today.replace_day(1).unwrap_or(today);
    let last_month = first.previous_day().unwrap_or(first);
    let period = format!("{}-{:02}", last_month.year(), last_month.month() as u8);
    let out = dir.join(&period);
    if out.join("report.json.p7s").exists() {
        return Ok(());
    }
    let system = Caller {
        role: crate::store::Role::Admin,
        tenant: String::new(),
        credential: "ecca".into(),
    };
    let r = build(service, &system, &period, None).await?;
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let files = [
        ("report.json", r.json.as_slice()),
        ("report.html", r.html.as_slice()),
        ("report.html.p7s", r.html_signature.as_slice()),
        ("signer.pem", r.signer_chain_pem.as_bytes()),
        // Last: its presence says the report is complete.
        ("report.json.p7s", r.json_signature.as_slice()),
    ];
    for (name, data) in files {
        let path = out.join(name);
        std::fs::write(&path, data).map_err(|e| Error::io(&path, e))?;
    }
    tracing::info!(period, dir = %out.display(), "monthly report written");
    Ok(())
}

/// A month's report for a caller: statistics of the month by day as JSON and HTML, each
/// with a detached CMS signature by the report signer.
pub async fn build(
    service: &Service,
    caller: &Caller,
    period: &str,
    platform: Option<String>,
) -> Result<pb::Report> {
    caller.may(crate::auth::Action::ReadReports)?;
    let month = stats::month(period).ok_or_else(|| Error::InvalidField {
        field: "period".into(),
        reason: format!("{period:?}: use YYYY-MM, e.g. 2026-11"),
    })?;
    let query = StatsQuery {
        platform,
        from: Some(month.from),
        to: Some(month.to),
        by: Some(By::Day),
    };
    let s = proto_of(service.statistics(caller, query).await?);
    let mut json = serde_json::to_vec_pretty(&json_of(&s))
        .map_err(|e| Error::Internal(format!("report JSON: {e}")))?;
    json.push(b'\n');
    let html = html::page(&format!("ecca statistics report {period}"), &s, &[]).into_bytes();
    let signed = service.sign_reports(&[&json, &html])?;
    let chain = signed.chain;
    let [json_signature, html_signature] = <[Vec<u8>; 2]>::try_from(signed.signatures)
        .map_err(|_| Error::Internal("two documents, not two signatures".into()))?;
    Ok(pb::Report {
        json_signature,
        html_signature,
        json,
        html,
        signer_chain_pem: crate::pemfile::certs_to_pem(chain.iter().map(Vec::as_slice)),
    })
}

fn ts(unix: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: unix,
        nanos: 0,
    })
}

/// RFC 3339 (UTC) for a Unix time.
pub fn time_text(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub(crate) fn seconds(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map_or(0, |t| t.seconds)
}

pub(crate) fn map<V: Clone + Into<Value>>(m: &std::collections::HashMap<String, V>) -> Value {
    let mut keys: Vec<_> = m.keys().collect();
    keys.sort();
    Value::Object(
        keys.into_iter()
            .map(|k| (k.clone(), m[k].clone().into()))
            .collect::<Map<_, _>>(),
    )
}

pub fn counts_json(c: &StatisticsCounts) -> Value {
    let events: std::collections::HashMap<String, Value> = c
        .events
        .iter()
        .map(|(k, v)| (k.clone(), map(&v.counts)))
        .collect();
    json!({
        "issued": c.issued,
        "active": c.active,
        "expired": c.expired,
        "revoked": c.revoked,
        "revoked_by_reason": map(&c.revoked_by_reason),
        "renewed_on_time": c.renewed_on_time,
        "renewed_late": c.renewed_late,
        "validity": map(&c.validity),
        "international": c.international,
        "national": c.national,
        "with_uscc": c.with_uscc,
        "by_profile": map(&c.by_profile),
        "events": map(&events),
    })
}

/// The statistics as JSON (what `--json` prints and report.json holds).
pub fn json_of(s: &pb::Statistics) -> Value {
    let platforms: std::collections::HashMap<String, Value> = s
        .platforms
        .iter()
        .map(|(k, v)| (k.clone(), counts_json(v)))
        .collect();
    json!({
        "platform": s.platform,
        "from": time_text(seconds(&s.from)),
        "to": time_text(seconds(&s.to)),
        "computed_at": time_text(seconds(&s.computed_at)),
        "total": s.total.as_ref().map(counts_json),
        "periods": s.periods.iter().map(|p| json!({
            "label": p.label,
            "from": time_text(seconds(&p.from)),
            "to": time_text(seconds(&p.to)),
            "counts": p.counts.as_ref().map(counts_json),
        })).collect::<Vec<_>>(),
        "platforms": map(&platforms),
        "indicators": s.indicators.iter().map(|i| json!({
            "name": i.name, "value": i.value, "unit": i.unit,
        })).collect::<Vec<_>>(),
        "crls": s.crls.iter().map(|c| json!({
            "ca": c.ca,
            "this_update": time_text(seconds(&c.this_update)),
            "next_update": time_text(seconds(&c.next_update)),
            "bytes": c.bytes,
        })).collect::<Vec<_>>(),
        "merchants_registered": s.merchants_registered,
        "merchants_covered": s.merchants_covered,
    })
}

fn counts(c: crate::core::stats::Counts) -> pb::StatisticsCounts {
    pb::StatisticsCounts {
        issued: c.issued,
        active: c.active,
        expired: c.expired,
        revoked: c.revoked,
        revoked_by_reason: c.revoked_by_reason.into_iter().collect(),
        renewed_on_time: c.renewed_on_time,
        renewed_late: c.renewed_late,
        validity: c.validity.into_iter().collect(),
        international: c.international,
        national: c.national,
        with_uscc: c.with_uscc,
        by_profile: c.by_profile.into_iter().collect(),
        events: c
            .events
            .into_iter()
            .map(|(kind, labels)| {
                let counts = labels.into_iter().collect();
                (kind, pb::EventCounts { counts })
            })
            .collect(),
    }
}

/// The GetStatistics answer of the service's statistics.
pub fn proto_of(s: Statistics) -> pb::Statistics {
    pb::Statistics {
        platform: s.platform.unwrap_or_default(),
        from: ts(s.from),
        to: ts(s.to),
        computed_at: ts(s.computed_at),
        total: Some(counts(s.total)),
        periods: s
            .periods
            .into_iter()
            .map(|(p, c)| pb::StatisticsPeriod {
                label: p.label,
                from: ts(p.from),
                to: ts(p.to),
                counts: Some(counts(c)),
            })
            .collect(),
        platforms: s
            .platforms
            .into_iter()
            .map(|(name, c)| (name, counts(c)))
            .collect(),
        indicators: s
            .indicators
            .into_iter()
            .map(|i| pb::Indicator {
                name: i.name.into(),
                value: i.value.filter(|v| v.is_finite()),
                unit: i.unit.into(),
            })
            .collect(),
        crls: s
            .crls
            .into_iter()
            .map(|c| pb::CrlHealth {
                ca: c.ca,
                this_update: ts(c.this_update),
                next_update: ts(c.next_update),
                bytes: c.bytes as u64,
            })
            .collect(),
        merchants_covered: s.merchants.0,
        merchants_registered: s.merchants.1,
    }
}
