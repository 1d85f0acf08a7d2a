//! `ecca stats`: statistics and evaluation indicators from the CA's store (GetStatistics).
use clap::Args as ClapArgs;
use ecca::proto::{GetStatisticsRequest, Statistics, StatisticsCounts};
use ecca::{Error, Result};

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Days are UTC; --to is exclusive. Indicators are defined in docs/indicators.md.\n\nExamples:\n  ecca stats\n  ecca stats --platform shop --from 2026-11-01 --to 2026-12-01 --by week\n  ecca stats --by month --json | jq .indicators"
)]
pub struct Args {
    /// One platform (admins and auditors; a platform credential always sees its own).
    #[arg(long)]
    platform: Option<String>,
    /// First day counted, YYYY-MM-DD (default: the beginning).
    #[arg(long)]
    from: Option<String>,
    /// First day not counted, YYYY-MM-DD (default: now).
    #[arg(long)]
    to: Option<String>,
    /// Cut into periods.
    #[arg(long, value_parser = ["day", "week", "month"])]
    by: Option<String>,
}

fn day(flag: &str, text: &Option<String>) -> Result<Option<prost_types::Timestamp>> {
    text.as_deref()
        .map(|t| {
            ecca::core::stats::date(t)
                .map(|seconds| prost_types::Timestamp { seconds, nanos: 0 })
                .ok_or_else(|| Error::InvalidArgument(format!("--{flag} {t:?}: use YYYY-MM-DD")))
        })
        .transpose()
}

/// The request for a platform (or all) over [from, to), cut `by`.
pub fn request(
    platform: Option<String>,
    from: Option<prost_types::Timestamp>,
    to: Option<prost_types::Timestamp>,
    by: Option<String>,
) -> GetStatisticsRequest {
    GetStatisticsRequest {
        platform: platform.unwrap_or_default(),
        from,
        to,
        by: by.unwrap_or_default(),
    }
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let req = request(a.platform, day("from", &a.from)?, day("to", &a.to)?, a.by);
    let s = g.client().await?.statistics(req).await?;
    if g.json {
        return output::print_json(&ecca::report::json_of(&s));
    }
    print!("{}", text_of(&s));
    Ok(())
}

fn sorted(m: &std::collections::HashMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    let mut v: Vec<_> = m.iter().collect();
    v.sort();
    v.iter()
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn seconds(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map_or(0, |t| t.seconds)
}

fn counts_line(c: &StatisticsCounts) -> String {
    format!(
        "issued {:>7}  active {:>7}  expired {:>7}  revoked {:>6}",
        c.issued, c.active, c.expired, c.revoked
    )
}

/// The human text of `ecca stats`.
pub fn text_of(s: &Statistics) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let who = if s.platform.is_empty() {
        "all platforms".to_string()
    } else {
        format!("platform {}", s.platform)
    };
    let _ = writeln!(
        o,
        "Statistics for {who}, {} to {}",
        output::time_text(seconds(&s.from)),
        output::time_text(seconds(&s.to))
    );
    if let Some(t) = &s.total {
        let _ = writeln!(o, "  {}", counts_line(t));
        let _ = writeln!(o, "  revoked by reason: {}", sorted(&t.revoked_by_reason));
        let _ = writeln!(
            o,
            "  renewed on time {}, late {}; international {}, national {}; with USCC {}",
            t.renewed_on_time, t.renewed_late, t.international, t.national, t.with_uscc
        );
        let _ = writeln!(o, "  validity: {}", sorted(&t.validity));
        let mut kinds: Vec<_> = t.events.iter().collect();
        kinds.sort_by(|a, b| a.0.cmp(b.0));
        for (kind, e) in kinds {
            let _ = writeln!(o, "  {kind}: {}", sorted(&e.counts));
        }
    }
    if !s.periods.is_empty() {
        let _ = writeln!(o, "Periods:");
        for p in &s.periods {
            if let Some(c) = &p.counts {
                let _ = writeln!(o, "  {:<12} {}", p.label, counts_line(c));
            }
        }
    }
    if !s.platforms.is_empty() {
        let _ = writeln!(o, "Platforms:");
        let mut names: Vec<_> = s.platforms.keys().collect();
        names.sort();
        for name in names {
            let label = if name.is_empty() { "(admin)" } else { name };
            let _ = writeln!(o, "  {label:<16} {}", counts_line(&s.platforms[name]));
        }
    }
    let _ = writeln!(o, "Indicators:");
    for i in &s.indicators {
        let value = match (i.value, i.unit.as_str()) {
            (None, _) => "no data".to_string(),
            (Some(v), "ratio") => format!("{:.2} %", v * 100.0),
            (Some(v), unit) => format!("{v} {unit}"),
        };
        let _ = writeln!(o, "  {:<40} {value}", i.name);
    }
    o
}
