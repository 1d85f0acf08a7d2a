//! `ecca migrate`: an embedded CA with certificates, revocations and a checkpointed audit log
//! moved into PostgreSQL (a throwaway cluster); then served from there with nothing missing
//! and `ecca audit verify` passing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::{cli, pg};
use ecca::client::Client;
use ecca::config::ServerConfig;
use ecca::proto::ListCertificatesRequest;

fn config(dir: &Path, database: Option<&str>) -> ServerConfig {
    let mut c = ServerConfig::loopback(dir);
    c.audit_checkpoint_every = Duration::from_millis(200);
    c.database = database.map(str::to_string);
    c
}

/// Every certificate's (serial, revoked?) and the audit log length, as a client sees them.
async fn state(client: &Client) -> (HashSet<(String, bool)>, usize) {
    let certs = client
        .list(ListCertificatesRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .certificates
        .into_iter()
        .map(|c| (c.serial, c.revoked_at.is_some()))
        .collect();
    (certs, client.audit_log().await.unwrap().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_ca_moves_to_postgres_without_loss() {
    let Some(cluster) = pg::PgCluster::start() else {
        return;
    };
    let url = cluster.database("moved");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let running = ecca::server::start(config(&dir, None)).await.unwrap();
    let client = Client::connect_data_dir(&dir).await.unwrap();
    for i in 0..30 {
        let cert = common::issue_server(&client, &format!("m{i}.example.cn")).await;
        if i % 3 == 0 {
            client.revoke(&cert.serial, 1, None).await.unwrap();
        }
    }
    let head = client.audit_log().await.unwrap().last().unwrap().id;
    while client
        .checkpoints()
        .await
        .unwrap()
        .checkpoints
        .last()
        .is_none_or(|c| c.upto_id < head)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Refused while the server runs: a write could land after the copy.
    let to = format!("--to={url}");
    let (code, out) = cli(&dir, &["migrate", "--from", dir.to_str().unwrap(), &to]).await;
    assert!(code != 0 && out.contains("stop it first"), "{out}");
    let before = state(&client).await;
    assert!(before.0.len() >= 30);
    running.shutdown().await;

    let (code, out) = cli(&dir, &["migrate", "--from", dir.to_str().unwrap(), &to]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit chain intact"), "{out}");
    assert!(
        out.contains("certificates") && out.contains("(same in both)"),
        "{out}"
    );
    // Twice is refused: the target is no longer empty.
    let (code, out) = cli(&dir, &["migrate", "--from", dir.to_str().unwrap(), &to]).await;
    assert!(code != 0 && out.contains("already holds a CA"), "{out}");

    // Without --database the directory now refuses to start on the stale SQLite file.
    let err = ecca::server::start(config(&dir, None)).await.err().unwrap();
    assert!(err.to_string().contains("--database"), "{err}");

    let running = ecca::server::start(config(&dir, Some(&url))).await.unwrap();
    let client = Client::connect_data_dir(&dir).await.unwrap();
    let after = state(&client).await;
    assert_eq!(
        after.0, before.0,
        "every certificate and revocation is present"
    );
    assert!(
        after.1 > before.1,
        "every audit entry is present (plus this start's)"
    );
    let (code, out) = cli(&dir, &["audit", "verify"]).await;
    assert!(code == 0 && out.contains("audit log intact"), "{out}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_creates_a_ca_in_postgres() {
    let Some(cluster) = pg::PgCluster::start() else {
        return;
    };
    let url = cluster.database("fresh");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (code, out) = cli(&dir, &["init", "--database", &url]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("CA state: in PostgreSQL"), "{out}");
    assert!(!dir.join("ecca.db").exists(), "nothing went to SQLite");
    let running = ecca::server::start(config(&dir, Some(&url))).await.unwrap();
    let client = Client::connect_data_dir(&dir).await.unwrap();
    common::issue_server(&client, "pg.example.cn").await;
    let (code, out) = cli(&dir, &["audit", "verify"]).await;
    assert!(code == 0 && out.contains("audit log intact"), "{out}");
    running.shutdown().await;
}
