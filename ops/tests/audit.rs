//! `ecca audit verify` on a live log, then after the sqlite3 CLI changes one byte of an entry
//! and after it deletes one: the first bad entry is named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::cli;
use ecca::client::Client;
use ecca::config::ServerConfig;

fn sqlite3() -> Option<PathBuf> {
    common::tools::tool("sqlite3")
}

fn sql(db: &Path, statement: &str) {
    let out = Command::new(sqlite3().unwrap())
        .arg(db)
        .arg(statement)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_changed_and_deleted_entries() {
    if sqlite3().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut c = ServerConfig::loopback(&dir);
    c.audit_checkpoint_every = std::time::Duration::from_millis(200);
    let _running = ecca::server::start(c).await.unwrap();
    let client = Client::connect_data_dir(&dir).await.unwrap();
    for i in 0..3 {
        let cert = common::issue_server(&client, &format!("s{i}.example.cn")).await;
        if i == 1 {
            client.revoke(&cert.serial, 1, None).await.unwrap();
        }
    }
    // Wait for a checkpoint covering the newest entry.
    let head = client.audit_log().await.unwrap().last().unwrap().id;
    for _ in 0..100 {
        if client
            .checkpoints()
            .await
            .unwrap()
            .checkpoints
            .last()
            .is_some_and(|c| c.upto_id >= head)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (code, out) = cli(&dir, &["audit", "verify"]).await;
    assert!(code == 0 && out.contains("audit log intact"), "{out}");
    let (code, out) = cli(&dir, &["audit", "search", "--event", "certificate.revoked"]).await;
    assert!(code == 0 && out.contains("(1 entries)"), "{out}");
    let (code, out) = cli(&dir, &["audit", "tail", "-n", "3"]).await;
    assert!(code == 0 && out.lines().count() == 3, "{out}");

    // One byte of entry 3 changed behind ecca's back.
    let db = dir.join("ecca.db");
    let original = client.audit_log().await.unwrap()[2].detail.clone();
    assert!(!original.contains('\''));
    sql(
        &db,
        "UPDATE audit_log SET detail = substr(detail, 1, length(detail) - 1) || 'X' WHERE id = 3",
    );
    let (code, out) = cli(&dir, &["audit", "verify"]).await;
    assert!(
        code == 1 && out.contains("entry 3: content altered"),
        "{out}"
    );
    sql(
        &db,
        &format!("UPDATE audit_log SET detail = '{original}' WHERE id = 3"),
    );
    let (code, out) = cli(&dir, &["audit", "verify"]).await;
    assert!(code == 0, "restored: {out}");

    // Entry 5 deleted.
    sql(&db, "DELETE FROM audit_log WHERE id = 5");
    let (code, out) = cli(&dir, &["audit", "verify"]).await;
    assert!(code == 1 && out.contains("entry 5 is missing"), "{out}");
}
