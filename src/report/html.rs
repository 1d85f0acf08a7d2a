//! The HTML view of statistics: one self-contained page (inline CSS and SVG; no script, no
//! external asset), used for report.html and the console's dashboard.
use std::fmt::Write as _;

use super::{seconds, time_text};
use crate::proto::{Statistics, StatisticsCounts};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A table of already-escaped cells.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut o = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(o, "<th>{}</th>", escape(h));
    }
    o.push_str("</tr></thead><tbody>");
    for r in rows {
        o.push_str("<tr>");
        for c in r {
            let _ = write!(o, "<td>{c}</td>");
        }
        o.push_str("</tr>");
    }
    if rows.is_empty() {
        let _ = write!(o, "<tr><td colspan=\"{}\">none</td></tr>", headers.len());
    }
    o.push_str("</tbody></table>");
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:72em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
.tiles{display:flex;gap:1em;flex-wrap:wrap}.tile{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;min-width:9em}
.tile b{display:block;font-size:1.6em}.legend span{margin-right:1.5em}.muted{color:#777}";

/// A grouped bar chart of issued and revoked certificates per period.
pub fn chart(periods: &[(String, u64, u64)]) -> String {
    if periods.is_empty() {
        return "<p class=\"muted\">No periods asked for.</p>".into();
    }
    let (w, h, pad) = (760.0_f64, 220.0_f64, 30.0_f64);
    let max = periods
        .iter()
        .map(|(_, a, b)| (*a).max(*b))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (w - 2.0 * pad) / periods.len() as f64;
    let bar = (slot / 2.5).max(1.0);
    let mut o = format!(
        "<svg role=\"img\" aria-label=\"issued and revoked per period\" width=\"{w}\" height=\"{}\" viewBox=\"0 0 {w} {}\" xmlns=\"http://www.w3.org/2000/svg\">",
        h + 40.0,
        h + 40.0
    );
    let _ = write!(
        o,
        "<line x1=\"{pad}\" y1=\"{h}\" x2=\"{}\" y2=\"{h}\" stroke=\"#999\"/><text x=\"2\" y=\"12\" font-size=\"10\">{}</text>",
        w - pad,
        max as u64
    );
    for (i, (label, issued, revoked)) in periods.iter().enumerate() {
        let x = pad + i as f64 * slot;
        for (j, (v, color)) in [(*issued, "#2b6cb0"), (*revoked, "#c53030")]
            .iter()
            .enumerate()
        {
            let bh = (*v as f64 / max) * (h - 20.0);
            let _ = write!(
                o,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{bh:.1}\" fill=\"{color}\"><title>{}: {v}</title></rect>",
                x + j as f64 * bar,
                h - bh,
                escape(label)
            );
        }
        if periods.len() <= 16 || i % (periods.len() / 12 + 1) == 0 {
            let _ = write!(
                o,
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"10\">{}</text>",
                h + 14.0,
                escape(label)
            );
        }
    }
    o.push_str("</svg><div class=\"legend\"><span style=\"color:#2b6cb0\">&#9632; issued</span><span style=\"color:#c53030\">&#9632; revoked</span></div>");
    o
}

fn counts_row(name: &str, c: &StatisticsCounts) -> Vec<String> {
    vec![
        escape(name),
        c.issued.to_string(),
        c.active.to_string(),
        c.expired.to_string(),
        c.revoked.to_string(),
        c.national.to_string(),
        c.with_uscc.to_string(),
    ]
}

fn indicator_value(value: Option<f64>, unit: &str) -> String {
    match (value, unit) {
        (None, _) => "no data".into(),
        (Some(v), "ratio") => format!("{:.2} %", v * 100.0),
        (Some(v), "seconds") => format!("{v:.1} s"),
        (Some(v), _) => format!("{v}"),
    }
}

/// The whole page: title, totals, chart, indicators, platforms, revocations, CRL health, then
/// `extra` sections (heading, HTML already escaped).
pub fn page(title: &str, s: &Statistics, extra: &[(&str, String)]) -> String {
    let total = s.total.clone().unwrap_or_default();
    let mut o = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(title)
    );
    let who = if s.platform.is_empty() {
        "all platforms".to_string()
    } else {
        format!("platform {}", s.platform)
    };
    let _ = write!(
        o,
        "<h1>{}</h1><p class=\"muted\">{} &middot; {} to {} (UTC) &middot; computed {}</p>",
        escape(title),
        escape(&who),
        time_text(seconds(&s.from)),
        time_text(seconds(&s.to)),
        time_text(seconds(&s.computed_at))
    );
    o.push_str("<div class=\"tiles\">");
    for (label, v) in [
        ("Issued", total.issued),
        ("Active", total.active),
        ("Expired", total.expired),
        ("Revoked", total.revoked),
        ("National (SM2)", total.national),
        ("Merchants covered", s.merchants_covered),
    ] {
        let _ = write!(o, "<div class=\"tile\">{label}<b>{v}</b></div>");
    }
    o.push_str("</div><h2>Issuance and revocations over time</h2>");
    let periods: Vec<(String, u64, u64)> = s
        .periods
        .iter()
        .map(|p| {
            let c = p.counts.clone().unwrap_or_default();
            (p.label.clone(), c.issued, c.revoked)
        })
        .collect();
    o.push_str(&chart(&periods));
    o.push_str("<h2>Evaluation indicators</h2>");
    let rows: Vec<Vec<String>> = s
        .indicators
        .iter()
        .map(|i| {
            vec![
                escape(&i.name),
                indicator_value(i.value, &i.unit),
                escape(&i.unit),
            ]
        })
        .collect();
    o.push_str(&table(&["indicator", "value", "unit"], &rows));
    let headers = [
        "platform",
        "issued",
        "active",
        "expired",
        "revoked",
        "national",
        "with USCC",
    ];
    if !s.platforms.is_empty() {
        o.push_str("<h2>Platforms</h2>");
        let mut names: Vec<&String> = s.platforms.keys().collect();
        names.sort();
        let rows: Vec<Vec<String>> = names
            .into_iter()
            .map(|n| {
                let label = if n.is_empty() { "(admin)" } else { n.as_str() };
                counts_row(label, &s.platforms[n])
            })
            .collect();
        o.push_str(&table(&headers, &rows));
    }
    o.push_str("<h2>Revocations by reason</h2>");
    let mut reasons: Vec<_> = total.revoked_by_reason.iter().collect();
    reasons.sort();
    let rows: Vec<Vec<String>> = reasons
        .into_iter()
        .map(|(r, n)| vec![escape(r), n.to_string()])
        .collect();
    o.push_str(&table(&["reason", "revoked"], &rows));
    o.push_str("<h2>CRL and OCSP health</h2>");
    let rows: Vec<Vec<String>> = s
        .crls
        .iter()
        .map(|c| {
            vec![
                escape(&c.ca),
                time_text(seconds(&c.this_update)),
                time_text(seconds(&c.next_update)),
                c.bytes.to_string(),
            ]
        })
        .collect();
    o.push_str(&table(
        &["CA", "this update", "next update", "bytes"],
        &rows,
    ));
    let mut events: Vec<_> = total.events.iter().collect();
    events.sort_by(|a, b| a.0.cmp(b.0));
    let rows: Vec<Vec<String>> = events
        .into_iter()
        .flat_map(|(kind, e)| {
            let mut labels: Vec<_> = e.counts.iter().collect();
            labels.sort();
            labels
                .into_iter()
                .map(|(l, n)| vec![escape(kind), escape(l), n.to_string()])
                .collect::<Vec<_>>()
        })
        .collect();
    o.push_str("<h2>Services (time-stamps, verifications, OCSP)</h2>");
    o.push_str(&table(&["kind", "outcome", "count"], &rows));
    for (heading, body) in extra {
        let _ = write!(o, "<h2>{}</h2>{body}", escape(heading));
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_escapes_and_draws_every_period() {
        let mut s = Statistics {
            platform: "<shop>".into(),
            ..Default::default()
        };
        for i in 0..3 {
            s.periods.push(crate::proto::StatisticsPeriod {
                label: format!("2026-1{i}"),
                counts: Some(StatisticsCounts {
                    issued: 5,
                    revoked: i,
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        let html = page("Report", &s, &[("Audit", table(&["a"], &[]))]);
        assert!(html.contains("platform &lt;shop&gt;"));
        assert_eq!(html.matches("<rect").count(), 6);
        assert!(!html.contains("<script"));
        assert!(html.contains("<h2>Audit</h2>"));
    }
}
