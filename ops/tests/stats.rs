//! `ecca stats` against counts recomputed from the store: a seeded mix of live certificates
//! (two platforms and the admin), revocations by reason, certificates seeded as expired in
//! the past, on-time and late renewals; a platform credential sees only its own numbers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use ecca::client::{Client, Credentials};
use ecca::proto as pb;
use serde_json::Value;

/// Runs one SQL statement list on the CA's SQLite file with the sqlite3 CLI; returns stdout.
fn sql(dir: &Path, script: &str) -> String {
    let Some(sqlite3) = tools::tool("sqlite3") else {
        panic!("sqlite3 is needed");
    };
    let out = Command::new(sqlite3)
        .arg(dir.join("ecca.db"))
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn count(dir: &Path, filter: &str) -> u64 {
    let counted = "status = 'issued' AND ca <> 'credential' AND profile NOT LIKE 'ecca-%'";
    sql(
        dir,
        &format!("SELECT COUNT(*) FROM certificates WHERE {counted} AND {filter}"),
    )
    .parse()
    .unwrap()
}

/// Adds a platform with its credential saved in base/NAME.
async fn platform(admin: &Client, base: &Path, name: &str, usccs: &[&str]) {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cred = admin
        .add_platform(pb::AddPlatformRequest {
            name: name.into(),
            dns_suffixes: vec![format!("{name}.example.cn")],
            profiles: vec!["server-tls".into()],
            usccs: usccs.iter().map(|s| s.to_string()).collect(),
            csr: p.serialize_request(&key).unwrap().der().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    std::fs::write(dir.join("cert.pem"), &cred.cert_pem).unwrap();
    std::fs::write(dir.join("ca.pem"), &cred.ca_pem).unwrap();
}

/// `ecca --server URL --credentials DIR --json stats ARGS`.
fn stats_as(url: &str, creds: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ecca"))
        .args(["--server", url, "--credentials"])
        .arg(creds)
        .args(["--json", "stats"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn n(v: &Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_match_the_store_and_platforms_see_their_own() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let mut ca = Ca::start(&dir).await;
    let admin = ca.client().await;
    platform(&admin, tmp.path(), "shop", &["91350100M000100Y43"]).await;
    platform(&admin, tmp.path(), "mall", &[]).await;

    // The template of the seeded rows (a real certificate's DER and subject).
    let template = issue_server(&admin, "ops.example.cn").await;

    // Seeded history, before anything else is issued: predecessors of shop's w0 and w1 and of
    // mall's w0, issued 120 days ago and expired 20 days ago (shop's w1 revoked back then).
    ca.running.take().unwrap().shutdown().await;
    let day = 86_400i64;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (born, died) = (now - 120 * day, now - 20 * day);
    let seed = |serial: &str, tenant: &str, name: &str, revoked: Option<(i64, i64)>| {
        let (rev_at, reason, seq) = match revoked {
            Some((reason, seq)) => (
                (born + day).to_string(),
                reason.to_string(),
                seq.to_string(),
            ),
            None => ("NULL".into(), "NULL".into(), "NULL".into()),
        };
        format!(
            "INSERT INTO certificates (serial, status, profile, tenant, subject, sans, not_before, not_after,
               created_at, issued_at, der, issuer, ca, revoked_at, revocation_reason, revocation_seq)
             SELECT '{serial}', status, profile, '{tenant}', subject, '[\"DNS:{name}\"]', {born}, {died}, {born}, {born},
               der, issuer, ca, {rev_at}, {reason}, {seq} FROM certificates WHERE serial = '{}';",
            template.serial
        )
    };
    let script = [
        seed("5eed01", "shop", "w0.shop.example.cn", None),
        seed("5eed02", "shop", "w1.shop.example.cn", Some((4, 1_000_001))),
        seed("5eed03", "mall", "w0.mall.example.cn", None),
    ]
    .concat();
    sql(&dir, &script);
    ca = Ca::start(&dir).await;
    let admin = ca.client().await;
    let url = Client::data_dir_url(&dir).unwrap();
    let connect = |name: &str| {
        let creds = Credentials::load(&tmp.path().join(name)).unwrap();
        let url = url.clone();
        async move { Client::connect(&url, &creds).await.unwrap() }
    };
    let (shop, mall) = (connect("shop").await, connect("mall").await);

    // Late renewals: shop's w0 and w1 and mall's w0 (their predecessors expired).
    let mut shop_certs = Vec::new();
    for i in 0..5 {
        shop_certs.push(issue_server(&shop, &format!("w{i}.shop.example.cn")).await);
    }
    let mut mall_certs = Vec::new();
    for i in 0..3 {
        mall_certs.push(issue_server(&mall, &format!("w{i}.mall.example.cn")).await);
    }
    let mine = issue_server(&admin, "ops2.example.cn").await;
    // An on-time renewal (its predecessor, a second older, is still valid).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    issue_server(&shop, "w2.shop.example.cn").await;

    shop.revoke(&shop_certs[3].serial, 1, None).await.unwrap();
    shop.revoke(&shop_certs[4].serial, 4, None).await.unwrap();
    admin.revoke(&mall_certs[2].serial, 5, None).await.unwrap();
    admin.revoke(&mine.serial, 3, None).await.unwrap();

    let admin_creds = dir.join("admin");
    let (code, all, err) = stats_as(&url, &admin_creds, &[]);
    assert_eq!(code, 0, "{err}");
    eprintln!("{}", serde_json::to_string_pretty(&all["total"]).unwrap());

    // Totals and per platform equal the store's own counts.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (tenant, v) in [
        (None, &all["total"]),
        (Some("shop"), &all["platforms"]["shop"]),
        (Some("mall"), &all["platforms"]["mall"]),
        (Some(""), &all["platforms"][""]),
    ] {
        let t = tenant.map_or("1".to_string(), |t| format!("tenant = '{t}'"));
        assert_eq!(n(v, &["issued"]), count(&dir, &t), "issued {tenant:?}");
        assert_eq!(
            n(v, &["revoked"]),
            count(&dir, &format!("{t} AND revocation_seq IS NOT NULL")),
            "revoked {tenant:?}"
        );
        assert_eq!(
            n(v, &["expired"]),
            count(&dir, &format!("{t} AND not_after < {now}")),
            "expired {tenant:?}"
        );
        assert_eq!(
            n(v, &["active"]),
            count(
                &dir,
                &format!("{t} AND not_after > {now} AND revocation_seq IS NULL")
            ),
            "active {tenant:?}"
        );
        for (code, name) in [
            (1, "keyCompromise"),
            (3, "affiliationChanged"),
            (4, "superseded"),
            (5, "cessationOfOperation"),
        ] {
            assert_eq!(
                n(v, &["revoked_by_reason", name]),
                count(&dir, &format!("{t} AND revocation_reason = {code}")),
                "{name} {tenant:?}"
            );
        }
    }
    // The mix as designed: 1 + 5 + 3 + 1 live, 3 seeded, 1 renewal.
    assert_eq!(n(&all, &["total", "issued"]), 14);
    assert_eq!(n(&all, &["total", "expired"]), 3);
    assert_eq!(n(&all, &["total", "revoked_by_reason", "superseded"]), 2);
    assert_eq!(n(&all, &["platforms", "shop", "renewed_late"]), 2);
    assert_eq!(n(&all, &["platforms", "shop", "renewed_on_time"]), 1);
    assert_eq!(n(&all, &["platforms", "mall", "renewed_late"]), 1);
    assert_eq!(n(&all, &["total", "international"]), 14);
    let indicator = |v: &Value, name: &str| {
        v["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("indicator {name} missing"))["value"]
            .clone()
    };
    assert_eq!(
        indicator(&all, "national_algorithm_share"),
        Value::from(0.0)
    );
    assert_eq!(
        indicator(&all, "expired_certificate_incidents"),
        Value::from(3.0)
    );
    // Four revocations made through the API were published (OCSP signed) and counted.
    let published: u64 = all["total"]["events"]["revocation_publication"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    assert_eq!(published, 4);
    assert!(indicator(&all, "revocation_publication_latency_p99").is_number());

    // By month: the seeded history falls in an earlier month than today's issuance.
    let since = time::OffsetDateTime::now_utc().date() - time::Duration::days(200);
    let (code, by, err) = stats_as(
        &url,
        &admin_creds,
        &["--by", "month", "--from", &since.to_string()],
    );
    assert_eq!(code, 0, "{err}");
    let periods = by["periods"].as_array().unwrap();
    let sum: u64 = periods.iter().map(|p| n(p, &["counts", "issued"])).sum();
    assert_eq!(sum, 14);
    assert!(periods.len() >= 7, "{periods:?}");
    let (code, _, err) = stats_as(&url, &admin_creds, &["--by", "day"]);
    assert_ne!(code, 0, "a day-by-day answer since 1970 is refused");
    assert!(err.contains("--from"), "{err}");

    // A platform sees its own numbers, and is refused another's.
    let shop_creds = tmp.path().join("shop");
    let (code, own, err) = stats_as(&url, &shop_creds, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(own["platform"], "shop");
    assert_eq!(own["total"], all["platforms"]["shop"]);
    assert_eq!(own["platforms"], Value::Object(Default::default()));
    let (code, _, err) = stats_as(&url, &shop_creds, &["--platform", "mall"]);
    assert_ne!(code, 0);
    assert!(err.contains("only its own"), "{err}");

    // This month's signed report: openssl and ecca verify both signatures; a changed byte fails.
    let month = time::OffsetDateTime::now_utc();
    let period = format!("{}-{:02}", month.year(), month.month() as u8);
    let out = tmp.path().join("report");
    let out_s = out.to_str().unwrap();
    ca.ok(&["report", "--period", &period, "--out", out_s])
        .await;
    let roots = tmp.path().join("roots.pem");
    ca.ok(&["roots", "--out", roots.to_str().unwrap()]).await;
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert!(n(&report, &["total", "issued"]) >= 11, "{report}");
    assert_eq!(
        report["periods"].as_array().unwrap().len(),
        month.day() as usize
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Evaluation indicators"));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    let openssl = tools::tool("openssl").unwrap();
    let cms_verify = |doc: &Path, sig: &Path| {
        Command::new(&openssl)
            .args([
                "cms",
                "-verify",
                "-binary",
                "-inform",
                "DER",
                "-out",
                "/dev/null",
                "-in",
            ])
            .arg(sig)
            .arg("-content")
            .arg(doc)
            .arg("-CAfile")
            .arg(&roots)
            .output()
            .unwrap()
    };
    for name in ["report.json", "report.html"] {
        let (doc, sig) = (out.join(name), out.join(format!("{name}.p7s")));
        let ok = cms_verify(&doc, &sig);
        assert!(
            ok.status.success(),
            "openssl cms -verify {name}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let v = ca
            .ok(&[
                "verify-signature",
                "--in",
                doc.to_str().unwrap(),
                "--sig",
                sig.to_str().unwrap(),
            ])
            .await;
        assert_eq!(v["valid"], true, "{v}");
    }
    let mut tampered = std::fs::read(out.join("report.json")).unwrap();
    let i = tampered.iter().position(|b| b.is_ascii_digit()).unwrap();
    tampered[i] = if tampered[i] == b'9' {
        b'8'
    } else {
        tampered[i] + 1
    };
    let changed = tmp.path().join("changed.json");
    std::fs::write(&changed, &tampered).unwrap();
    let bad = cms_verify(&changed, &out.join("report.json.p7s"));
    assert!(!bad.status.success(), "a changed byte must fail");
    let (code, _, _) = ecca_json(&dir, &["report", "--period", "2026-13", "--out", out_s]).await;
    assert_ne!(code, 0);
    // A platform may not fetch reports.
    let out = Command::new(env!("CARGO_BIN_EXE_ecca"))
        .args(["--server", &url, "--credentials"])
        .arg(&shop_creds)
        .args(["report", "--period", &period, "--out", out_s])
        .output()
        .unwrap();
    assert!(!out.status.success());

    // Numbers survive a restart (they come from the store).
    ca.restart(None).await;
    let (_, again, _) = stats_as(&url, &admin_creds, &[]);
    assert_eq!(again["total"]["issued"], all["total"]["issued"]);
    assert_eq!(
        again["total"]["revoked_by_reason"],
        all["total"]["revoked_by_reason"]
    );
}

/// The console in headless Chromium: the sign-in page without a session, the dashboard after
/// a one-time login link (screenshot saved in the test's temp dir), the link single-use, a
/// platform credential refused a link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_opens_with_a_one_time_link_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let ca = Ca::start(&dir).await;
    let admin = ca.client().await;
    platform(&admin, tmp.path(), "shop", &[]).await;
    let url = Client::data_dir_url(&dir).unwrap();
    let shop = Client::connect(&url, &Credentials::load(&tmp.path().join("shop")).unwrap())
        .await
        .unwrap();
    for i in 0..3 {
        issue_server(&shop, &format!("w{i}.shop.example.cn")).await;
    }
    let link = ca.ok(&["console", "login"]).await;
    let login = link["url"].as_str().unwrap().to_string();
    let console = ca.running.as_ref().unwrap().endpoints.console.unwrap();
    let base = format!("https://{console}");
    assert!(
        login.starts_with(&format!("{base}/login?token=")),
        "{login}"
    );

    // A platform credential gets no link.
    let out = Command::new(env!("CARGO_BIN_EXE_ecca"))
        .args(["--server", &url, "--credentials"])
        .arg(tmp.path().join("shop"))
        .args(["console", "login"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let python = std::env::var("ECCA_PYTHON")
        .ok()
        .map(std::path::PathBuf::from)
        .or_else(|| tools::tool("python3"))
        .expect("python with selenium");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/console_judge.py");
    let shot = tmp.path().join("console.png");
    let args = (python, script, base.clone(), login, shot.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(args.0)
            .arg(args.1)
            .arg(args.2)
            .arg(args.3)
            .arg(args.4)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "console judge: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["dashboard_title"], "ecca console");
    assert!(
        seen["tiles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().contains("Issued\n3")),
        "{seen}"
    );
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);

    // A session lasts only as long as its credential: an auditor signs in, its credential is
    // revoked, and its next page is the sign-in page.
    let auditor = tmp.path().join("auditor");
    let added = ca
        .ok(&[
            "auditor",
            "add",
            "alice",
            "--out",
            auditor.to_str().unwrap(),
        ])
        .await;
    let out = Command::new(env!("CARGO_BIN_EXE_ecca"))
        .args(["--server", &url, "--credentials"])
        .arg(&auditor)
        .args(["--json", "console", "login"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link: Value = serde_json::from_slice(&out.stdout).unwrap();
    let python = std::env::var("ECCA_PYTHON").unwrap_or_else(|_| "python3".into());
    // One request with urllib (TLS not verified: the throwaway client does not trust the
    // credential CA): prints the status and the Set-Cookie header; no redirects followed.
    let fetch = |url: &str, cookie: &str| {
        let script = "import sys, ssl, urllib.request, urllib.error\n\
            class Stay(urllib.request.HTTPRedirectHandler):\n    def redirect_request(self, *a): return None\n\
            ctx = ssl._create_unverified_context()\n\
            o = urllib.request.build_opener(Stay, urllib.request.HTTPSHandler(context=ctx))\n\
            r = urllib.request.Request(sys.argv[1], headers={'Cookie': sys.argv[2]})\n\
            try:\n    res = o.open(r)\nexcept urllib.error.HTTPError as e:\n    res = e\n\
            print(res.status, (res.headers.get('Set-Cookie') or '').split(';')[0])";
        let out = Command::new(&python)
            .args(["-c", script, url, cookie])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let signed_in = fetch(link["url"].as_str().unwrap(), "");
    let (status, cookie) = signed_in.split_once(' ').unwrap();
    assert_eq!(status, "303", "{signed_in}");
    assert!(cookie.starts_with("ecca_console="), "{signed_in}");
    assert!(fetch(&format!("{base}/"), cookie).starts_with("200"));
    let serial = added["serial"].as_str().unwrap();
    ca.ok(&["revoke", "--serial", serial, "--reason", "keyCompromise"])
        .await;
    assert!(fetch(&format!("{base}/"), cookie).starts_with("401"));
}

/// Measures statistics on ten million certificates (not part of the suite: it writes ~3 GB):
/// `cargo test --release -p ecca-ops --test stats -- --ignored --nocapture`. Prints how long
/// the seeding, the roll-up and each kind of answer took; asserts only the numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_statistics_on_ten_million() {
    let rows: u64 = std::env::var("ECCA_STATS_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let mut ca = Ca::start(&dir).await;
    let admin = ca.client().await;
    issue_server(&admin, "template.example.cn").await;
    ca.running.take().unwrap().shutdown().await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let started = std::time::Instant::now();
    // 20 platforms, a year of issuance, 90-day certificates, 1 % revoked (reasons 1, 3, 4, 5).
    sql(
        &dir,
        &format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
             INSERT INTO certificates (serial, status, profile, tenant, subject, sans, not_before, not_after,
               created_at, issued_at, der, issuer, ca, revoked_at, revocation_reason, revocation_seq)
             SELECT printf('7e%014x', i), 'issued', 'server-tls', 'p' || (i % 20), 'CN=m' || i,
               '[\"DNS:m' || i || '.example.cn\"]', t, t + 90 * 86400, t, t, x'30', 'issuing', 'issuing',
               CASE WHEN i % 100 = 0 THEN min(t + 86400, {now} - 60) END, CASE WHEN i % 100 = 0 THEN substr('1345', 1 + (i / 100) % 4, 1) + 0 END,
               CASE WHEN i % 100 = 0 THEN 1000000000 + i END
             FROM (SELECT i, {now} - 365 * 86400 + (i * 31536) / ({rows} / 1000) AS t FROM n);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19)
             INSERT INTO platforms (name, dns_suffixes, ip_ranges, profiles, created_at)
             SELECT 'p' || i, '[]', '[]', '[\"server-tls\"]', {now} FROM n;",
        ),
    );
    let seeded = started.elapsed();
    let _serving = Ca::start(&dir).await;
    let admin_creds = dir.join("admin");
    let url = Client::data_dir_url(&dir).unwrap();
    // The background roll-up reads everything (the first answer waits for a few steps only).
    let started = std::time::Instant::now();
    let max_id: i64 = sql(&dir, "SELECT MAX(id) FROM certificates")
        .parse()
        .unwrap();
    loop {
        let mark: i64 = sql(
            &dir,
            "SELECT COALESCE(MAX(value), 0) FROM stats_marks WHERE name = 'cert_id'",
        )
        .parse()
        .unwrap();
        if mark >= max_id {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    let rolled = started.elapsed();
    let time = |args: &[&str]| {
        let started = std::time::Instant::now();
        let (code, v, err) = stats_as(&url, &admin_creds, args);
        assert_eq!(code, 0, "{err}");
        (started.elapsed(), v)
    };
    let (all_time, all) = time(&[]);
    assert_eq!(n(&all, &["total", "issued"]), rows + 1);
    let since = (time::OffsetDateTime::now_utc().date() - time::Duration::days(365)).to_string();
    let (by_month, _) = time(&["--by", "month", "--from", &since]);
    let (by_day, _) = time(&["--by", "day", "--from", &since]);
    let (one_platform, p7) = time(&["--platform", "p7", "--by", "week", "--from", &since]);
    assert_eq!(n(&p7, &["total", "issued"]), rows / 20);
    let aggregates = sql(&dir, "SELECT COUNT(*) FROM stats_issued");
    println!(
        "{rows} certificates: seeded in {seeded:.1?}; rolled up in {rolled:.1?} ({aggregates} aggregate rows)\n\
         ecca stats (all time): {all_time:.2?}; --by month over a year: {by_month:.2?}; \
         --by day: {by_day:.2?}; one platform by week: {one_platform:.2?}"
    );
}
