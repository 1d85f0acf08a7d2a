//! Helpers shared by the ops CLI tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

#[path = "../../../tests/common/pg.rs"]
pub mod pg;

/// Runs `ecca --data-dir DIR ARGS...` off the async runtime; returns (exit code, stdout+stderr).
pub async fn cli(dir: &Path, args: &[&str]) -> (i32, String) {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_ecca"))
            .arg("--data-dir")
            .arg(&dir)
            .args(&args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    })
    .await
    .unwrap()
}
