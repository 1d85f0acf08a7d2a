//! Printing results: human text by default, JSON with --json.
use ecca::proto::Certificate;
use ecca::{Error, Result};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

fn rfc3339(ts: &Option<prost_types::Timestamp>) -> String {
    ts.as_ref()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// RFC 3339 for a Unix time.
pub fn time_text(t: i64) -> String {
    rfc3339(&Some(prost_types::Timestamp {
        seconds: t,
        nanos: 0,
    }))
}

/// Status name without the enum prefix.
pub fn status_name(c: &Certificate) -> &'static str {
    match c.status() {
        ecca::proto::CertificateStatus::Valid => "valid",
        ecca::proto::CertificateStatus::Revoked => "revoked",
        ecca::proto::CertificateStatus::Expired => "expired",
        ecca::proto::CertificateStatus::Unspecified => "unknown",
    }
}

/// The RFC 5280 name of a reason code.
pub fn reason_name(code: i32) -> &'static str {
    ecca::core::revocation::Reason::from_code(code.into())
        .map(|r| r.name())
        .unwrap_or("unsupported")
}

/// A certificate as JSON (DER omitted; use `show --pem` or `issue --out` for it).
pub fn cert_json(c: &Certificate) -> Value {
    json!({
        "serial": c.serial,
        "profile": c.profile,
        "subject": c.subject,
        "subject_alt_names": c.subject_alt_names,
        "not_before": rfc3339(&c.not_before),
        "not_after": rfc3339(&c.not_after),
        "status": status_name(c),
        "tenant": c.tenant,
        "revoked_at": c.revoked_at.map(|t| rfc3339(&Some(t))),
        "revocation_reason": c.revoked_at.map(|_| reason_name(c.revocation_reason)),
    })
}

/// A certificate as a few human lines.
pub fn cert_text(c: &Certificate) -> String {
    let mut s = format!(
        "serial:     {}\nprofile:    {}\nsubject:    {}\n",
        c.serial, c.profile, c.subject
    );
    if !c.subject_alt_names.is_empty() {
        s.push_str(&format!("names:      {}\n", c.subject_alt_names.join(", ")));
    }
    if c.revoked_at.is_some() {
        s.push_str(&format!(
            "revoked:    {} ({})\n",
            rfc3339(&c.revoked_at),
            reason_name(c.revocation_reason)
        ));
    }
    s.push_str(&format!(
        "valid:      {} .. {}\nstatus:     {}\n",
        rfc3339(&c.not_before),
        rfc3339(&c.not_after),
        status_name(c)
    ));
    s
}

/// Prints JSON to stdout.
pub fn print_json(v: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Internal(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Writes a file, naming it in the error.
pub fn write(path: &std::path::Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).map_err(|e| Error::io(path, e))
}

/// Reads a file, naming it in the error.
pub fn read(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// A progress bar on stderr for long work (about 40 redraws from start to end).
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: usize,
    done: AtomicUsize,
}

impl Progress {
    pub fn new(label: &str, total: usize) -> Arc<Self> {
        Arc::new(Progress {
            label: label.into(),
            total,
            done: AtomicUsize::new(0),
        })
    }

    /// One more unit done.
    pub fn tick(&self) {
        let d = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if d == self.total || d % (self.total / 40).max(1) == 0 {
            self.draw(d);
        }
    }

    /// `d` units done in all (the caller reports at its own pace).
    pub fn set(&self, d: usize) {
        if self.done.swap(d, Ordering::Relaxed) != d {
            self.draw(d);
        }
    }

    fn draw(&self, d: usize) {
        {
            let width = 30;
            let filled = d * width / self.total.max(1);
            eprint!(
                "\r{:<34} [{}{}] {d}/{}",
                self.label,
                "=".repeat(filled),
                " ".repeat(width - filled),
                self.total
            );
            if d == self.total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    }
}
