//! Measures building and signing one full CRL with N revoked entries (default 1,000,000):
//! time and peak memory of the process.
//!
//! `cargo run --release --example crl_scale -- 1000000`          (builder only)
//! `cargo run --release --example crl_scale -- 1000000 --store`  (end to end: SQLite rows ->
//! the server's publisher: full + delta CRL rebuilt and signed, as after a revocation)
use std::time::Instant;

use ecca::core::keys::CaKeyAlg;
use ecca::core::revocation::{CrlParams, Reason, RevokedEntry, build_crl};
use ecca::signer::SoftwareKey;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    if std::env::args().any(|a| a == "--store") {
        return tokio::runtime::Runtime::new()?.block_on(end_to_end(n));
    }
    let key = SoftwareKey::generate(CaKeyAlg::P256)?;
    let base = peak_rss_mib();
    let t0 = Instant::now();
    let entries: Vec<RevokedEntry> = (0..n as u64)
        .map(|i| {
            let mut serial = [0u8; 16];
            serial[0] = 0x40;
            serial[8..].copy_from_slice(&i.to_be_bytes());
            RevokedEntry {
                serial: serial.to_vec(),
                revoked_at: 1_790_000_000 + i as i64,
                reason: if i % 3 == 0 {
                    Reason::KeyCompromise
                } else {
                    Reason::Unspecified
                },
                invalidity_date: None,
            }
        })
        .collect();
    let t_entries = t0.elapsed();
    let issuer = [
        0x30, 0x11, 0x31, 0x0f, 0x30, 0x0d, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x06, b'i', b's',
        b's', b'u', b'e', b'r',
    ];
    let params = CrlParams {
        issuer_name: &issuer,
        issuer_key_id: &[7; 20],
        number: 1,
        this_update: 1_790_000_000,
        next_update: 1_790_086_400,
        delta_base: None,
        freshest_url: Some("http://ca.example.cn/crl/issuing-delta.crl"),
    };
    let t1 = Instant::now();
    let der = build_crl(&params, &entries, &key)?;
    let t_build = t1.elapsed();
    println!(
        "entries={n} crl_bytes={} entries_ms={} build_and_sign_ms={} peak_rss_mib={:.0} (before: {:.0})",
        der.len(),
        t_entries.as_millis(),
        t_build.as_millis(),
        peak_rss_mib(),
        base
    );
    Ok(())
}

/// Fills a real store with `n` revoked certificates, then times the publisher's CRL rebuild.
async fn end_to_end(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    use std::sync::Arc;

    use ecca::authority::{Authority, InitOptions, Layout};
    use ecca::revocation::{CrlKind, Publisher};
    use ecca::store::SqliteStore;

    let dir = tempfile::tempdir()?;
    let layout = Layout::new(&dir.path().join("data"));
    let authority = Arc::new(Authority::create(
        &layout,
        &InitOptions::default(),
        "http://ca.example.cn",
    )?);
    let store = Arc::new(SqliteStore::open(&layout.database())?);
    let t0 = Instant::now();
    {
        let mut conn = rusqlite::Connection::open(layout.database())?;
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO certificates (serial, status, profile, subject, sans, not_before, not_after, created_at,
                 issued_at, der, revoked_at, revocation_reason, revocation_seq)
                 VALUES (?1, 'issued', 'server-tls', 'CN=x', '[]', 0, 4102444800, 0, 0, x'30', ?2, 1, ?3)",
            )?;
            for i in 0..n as i64 {
                stmt.execute(rusqlite::params![
                    format!("40{:030x}", i),
                    1_790_000_000 + i,
                    i + 1
                ])?;
            }
        }
        tx.commit()?;
    }
    let t_fill = t0.elapsed();
    let publisher = Publisher::new(store, authority);
    let base = peak_rss_mib();
    let t1 = Instant::now();
    publisher.rebuild_crls().await?;
    let t_rebuild = t1.elapsed();
    let full = publisher.crl(CrlKind::Full)?;
    println!(
        "store: entries={n} fill_ms={} rebuild_full_and_delta_ms={} crl_bytes={} peak_rss_mib={:.0} (before rebuild: {:.0})",
        t_fill.as_millis(),
        t_rebuild.as_millis(),
        full.der.len(),
        peak_rss_mib(),
        base
    );
    Ok(())
}
