//! GetStatistics at the gRPC edge: the request checked into a query, the answer into proto.
use tonic::Status;

use super::{pb, ts};
use crate::core::stats::{By, Counts};
use crate::service::statistics::{Statistics, StatsQuery};

pub(super) fn query(r: pb::GetStatisticsRequest) -> Result<StatsQuery, Status> {
    let by = match r.by.as_str() {
        "" => None,
        s => Some(By::parse(s).ok_or_else(|| {
            Status::invalid_argument(format!("by {s:?}: use day, week or month"))
        })?),
    };
    Ok(StatsQuery {
        platform: (!r.platform.is_empty()).then_some(r.platform),
        from: r.from.map(|t| t.seconds),
        to: r.to.map(|t| t.seconds),
        by,
    })
}

fn counts(c: Counts) -> pb::StatisticsCounts {
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

pub(super) fn answer(s: Statistics) -> pb::Statistics {
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
