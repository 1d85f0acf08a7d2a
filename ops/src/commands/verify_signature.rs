//! `ecca verify-signature`: verify a CMS document signature offline: digest, signature, the
//! signer's path (document signing), revocation, and the timestamp when present. A batch mode
//! verifies many (document, signature) pairs concurrently. Exit 0 valid, 1 invalid, 2 error.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args as ClapArgs;
use ecca::core::cms;
use ecca::verify::{
    FetchLimits, FetchPolicy, RevocationMode, SignatureOutcome, SignatureRequest, Verifier,
};
use ecca::{Error, Result};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinSet;

use crate::commands::sign::digest_file;
use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca verify-signature --in order-42.pdf --sig order-42.pdf.p7s --trust roots.pem --revocation hard\n  ecca verify-signature --batch archive.txt --trust roots.pem     (lines: DOCUMENT SIGNATURE)\n\nExit codes: 0 valid, 1 invalid (reasons printed), 2 usage or input error."
)]
pub struct Args {
    /// The signed document.
    #[arg(long = "in", required_unless_present = "batch")]
    input: Option<PathBuf>,
    /// The signature (DER or PEM CMS).
    #[arg(long, required_unless_present = "batch")]
    sig: Option<PathBuf>,
    /// A file listing "DOCUMENT SIGNATURE" pairs, one per line, verified concurrently.
    #[arg(long, conflicts_with_all = ["input", "sig"])]
    batch: Option<PathBuf>,
    /// Trust anchors (PEM). Default: the root of --data-dir.
    #[arg(long)]
    trust: Option<PathBuf>,
    /// Further intermediates or cross-certificates (PEM, repeatable).
    #[arg(long)]
    untrusted: Vec<PathBuf>,
    /// Revocation checking: off, soft or hard.
    #[arg(long, default_value = "soft", value_parser = ["off", "soft", "hard"])]
    revocation: String,
    /// Validation time when the signature has no timestamp (RFC 3339).
    #[arg(long)]
    at: Option<String>,
}

fn load_sig(path: &Path) -> Result<Vec<u8>> {
    let data = output::read(path)?;
    if data.trim_ascii_start().starts_with(b"-----BEGIN") {
        let p = pem::parse(&data)
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
        return Ok(p.into_contents());
    }
    Ok(data)
}

struct Shared {
    verifier: Verifier,
    anchors: Vec<Vec<u8>>,
    untrusted: Vec<Vec<u8>>,
    revocation: RevocationMode,
    at: Option<i64>,
}

async fn verify_one(shared: &Shared, doc: &Path, sig: &Path) -> Result<SignatureOutcome> {
    let der = load_sig(sig)?;
    let signed = cms::signed_data(&der)?;
    let alg = cms::digest_alg(&signed)?;
    let (doc, alg_copy) = (doc.to_path_buf(), alg);
    let (digest, _) = tokio::task::spawn_blocking(move || digest_file(&doc, alg_copy))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    Ok(shared
        .verifier
        .verify_signature(SignatureRequest {
            signed,
            content_digest: digest,
            untrusted: shared.untrusted.clone(),
            anchors: shared.anchors.clone(),
            crls: Vec::new(),
            at: shared.at,
            revocation: shared.revocation,
        })
        .await)
}

fn outcome_json(o: &SignatureOutcome) -> serde_json::Value {
    json!({
        "valid": o.valid, "signer": o.signer,
        "signing_time": o.signing_time.map(output::time_text),
        "timestamp_time": o.timestamp_time.map(output::time_text),
        "path": o.path.iter().map(|p| p.subject.clone()).collect::<Vec<_>>(),
        "reasons": o.reasons, "warnings": o.warnings,
    })
}

fn print_outcome(o: &SignatureOutcome) {
    println!("{}", if o.valid { "valid" } else { "invalid" });
    if !o.signer.is_empty() {
        println!("  signer:         {}", o.signer);
    }
    if let Some(t) = o.signing_time {
        println!(
            "  signing time:   {} (claimed by the signer)",
            output::time_text(t)
        );
    }
    if let Some(t) = o.timestamp_time {
        println!(
            "  timestamp:      {} (validated at this time)",
            output::time_text(t)
        );
    }
    for (i, p) in o.path.iter().enumerate() {
        println!("  path {i}:         {}", p.subject);
    }
    for r in &o.reasons {
        println!("  - {r}");
    }
    for w in &o.warnings {
        println!("  warning: {w}");
    }
}

/// Returns whether every signature verified.
pub async fn run(g: &Global, a: Args) -> Result<bool> {
    let anchors = match (&a.trust, &g.data_dir) {
        (Some(t), _) => ecca::pemfile::parse_certs(&output::read(t)?)?,
        (None, Some(dir)) => {
            ecca::pemfile::parse_certs(&output::read(&ecca::layout::Layout::new(dir).root_cert())?)?
        }
        (None, None) => {
            return Err(Error::InvalidArgument(
                "give --trust FILE (the trust anchors)".into(),
            ));
        }
    };
    let mut untrusted = Vec::new();
    for p in &a.untrusted {
        untrusted.extend(ecca::pemfile::parse_certs(&output::read(p)?)?);
    }
    let at = match &a.at {
        Some(t) => Some(
            OffsetDateTime::parse(t, &Rfc3339)
                .map_err(|e| Error::field("--at", format!("{t:?}: {e}")))?
                .unix_timestamp(),
        ),
        None => None,
    };
    let shared = Arc::new(Shared {
        verifier: Verifier::new(FetchLimits::default(), FetchPolicy::local_user()),
        anchors,
        untrusted,
        revocation: RevocationMode::parse(&a.revocation).unwrap_or(RevocationMode::Soft),
        at,
    });
    let Some(list) = &a.batch else {
        let (doc, sig) = (a.input.unwrap_or_default(), a.sig.unwrap_or_default());
        let out = verify_one(&shared, &doc, &sig).await?;
        if g.json {
            output::print_json(&outcome_json(&out))?;
        } else {
            print_outcome(&out);
        }
        return Ok(out.valid);
    };
    // Batch: pairs relative to the list's folder, verified concurrently.
    let text = std::fs::read_to_string(list).map_err(|e| Error::io(list, e))?;
    let base = list.parent().unwrap_or(Path::new(".")).to_path_buf();
    let pairs: Vec<(PathBuf, PathBuf)> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let mut it = l.split_whitespace();
            match (it.next(), it.next()) {
                (Some(d), Some(s)) => Ok((base.join(d), base.join(s))),
                _ => Err(Error::InvalidArgument(format!(
                    "{}: line {l:?}: expected DOCUMENT SIGNATURE",
                    list.display()
                ))),
            }
        })
        .collect::<Result<_>>()?;
    let started = Instant::now();
    let width = std::thread::available_parallelism().map_or(2, |n| n.get()) * 4;
    let mut set = JoinSet::new();
    let mut results = vec![None; pairs.len()];
    let mut next = 0;
    while next < pairs.len() || !set.is_empty() {
        while next < pairs.len() && set.len() < width {
            let (shared, (doc, sig), i) = (shared.clone(), pairs[next].clone(), next);
            set.spawn(async move { (i, verify_one(&shared, &doc, &sig).await) });
            next += 1;
        }
        if let Some(done) = set.join_next().await {
            let (i, r) = done.map_err(|e| Error::Internal(e.to_string()))?;
            results[i] = Some(r.unwrap_or_else(|e| SignatureOutcome {
                reasons: vec![e.to_string()],
                ..Default::default()
            }));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let outcomes: Vec<SignatureOutcome> =
        results.into_iter().map(Option::unwrap_or_default).collect();
    let valid = outcomes.iter().filter(|o| o.valid).count();
    let rate = outcomes.len() as f64 / secs.max(1e-9);
    if g.json {
        let items: Vec<_> = pairs
            .iter()
            .zip(&outcomes)
            .map(|((d, s), o)| {
                let mut v = outcome_json(o);
                v["document"] = json!(d);
                v["signature"] = json!(s);
                v
            })
            .collect();
        output::print_json(
            &json!({"results": items, "valid": valid, "total": outcomes.len(), "per_second": rate}),
        )?;
    } else {
        for ((d, _), o) in pairs.iter().zip(&outcomes) {
            let why = o
                .reasons
                .first()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            println!(
                "{} {}{why}",
                if o.valid { "valid  " } else { "INVALID" },
                d.display()
            );
        }
        println!(
            "{valid} of {} valid in {secs:.2} s ({rate:.0} signatures/s)",
            outcomes.len()
        );
    }
    Ok(valid == outcomes.len())
}
