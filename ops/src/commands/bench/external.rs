//! Issuance measured from outside: the real `ecca-server` binary in its own process, driven
//! over mTLS gRPC from this one (unary calls and IssueCertificates streams), with the
//! server's CPU seconds per issuance read from /proc.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecca::client::Client;
use ecca::{Error, Result};

use crate::output::Progress;

/// A server process that is killed when dropped.
pub struct Server {
    child: Child,
    pub dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `binary` on loopback ports in `dir` and waits for its endpoints.
    pub fn start(binary: &Path, dir: &Path) -> Result<Self> {
        let endpoints = ecca::layout::Layout::new(dir).endpoints();
        // A previous start's file would say "started" too early.
        let _ = std::fs::remove_file(&endpoints);
        // The load comes from one address: the per-address OCSP limit would measure itself.
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let config = dir.with_extension("toml");
        std::fs::write(&config, "[limits]\nocsp_per_ip = 0\n")
            .map_err(|e| Error::io(&config, e))?;
        let child = Command::new(binary)
            .arg("--data-dir")
            .arg(dir)
            .arg("--config")
            .arg(&config)
            .args([
                "--grpc-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .args([
                "--metrics-listen",
                "127.0.0.1:0",
                "--console-listen",
                "127.0.0.1:0",
                "--acme-listen",
                "127.0.0.1:0",
            ])
            .env("ECCA_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                Error::Remote(format!(
                    "cannot start {}: {e} (build it: cargo build --release --workspace)",
                    binary.display()
                ))
            })?;
        let server = Server {
            child,
            dir: dir.to_path_buf(),
        };
        let t = Instant::now();
        while !endpoints.exists() {
            if t.elapsed() > Duration::from_secs(60) {
                return Err(Error::Remote(format!(
                    "{} did not start within 60 s",
                    binary.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(server)
    }

    /// The server's public HTTP address (CRL and OCSP URLs name it).
    pub fn http(&self) -> Result<std::net::SocketAddr> {
        let path = ecca::layout::Layout::new(&self.dir).endpoints();
        let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let ep: ecca::layout::Endpoints = serde_json::from_slice(&text)
            .map_err(|e| Error::Remote(format!("{}: {e}", path.display())))?;
        Ok(ep.http)
    }

    /// Resident memory now, MiB.
    pub fn rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Waits until the server has been idle (under 2 % of a core) for half a second, e.g. once
    /// OCSP pre-signing has caught up after issuance; at most `limit`.
    pub async fn settle(&self, limit: Duration) {
        let start = Instant::now();
        let mut last = self.cpu_seconds();
        while start.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = self.cpu_seconds();
            if now - last < 0.01 {
                return;
            }
            last = now;
        }
    }

    /// CPU seconds (user + system) the server process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start at ") ".
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime (fields 14 and 15 of proc(5)), in USER_HZ = 100 ticks per second.
        (ticks(11) + ticks(12)) / 100.0
    }
}

/// One measured level: issued per second, latency percentiles (unary only) and the server's
/// CPU milliseconds per issuance.
pub struct Level {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_ms: f64,
}

/// Unary IssueCertificate at `concurrency` against the external server.
pub async fn unary(
    server: &Server,
    clients: &[Client],
    csrs: Vec<Vec<u8>>,
    concurrency: usize,
) -> Result<Level> {
    let n = csrs.len();
    let cpu = server.cpu_seconds();
    let (per_second, p50_ms, p99_ms) = super::issue_level(clients, csrs, concurrency).await?;
    Ok(Level {
        per_second,
        p50_ms,
        p99_ms,
        cpu_ms: (server.cpu_seconds() - cpu) * 1000.0 / n as f64,
    })
}

/// IssueCertificates: `streams` streams at once (spread over the connections), the CSRs
/// shared out between them. Any item refused fails the measurement.
pub async fn bulk(
    server: &Server,
    clients: &[Client],
    csrs: Vec<Vec<u8>>,
    streams: usize,
) -> Result<Level> {
    let n = csrs.len();
    let progress = Progress::new(&format!("bulk issuance {streams} streams"), n);
    let cpu = server.cpu_seconds();
    let start = Instant::now();
    let per = n.div_ceil(streams.max(1));
    let mut tasks = Vec::new();
    for (k, chunk) in csrs.chunks(per).enumerate() {
        let client = clients[k % clients.len()].clone();
        let items: Vec<(String, Vec<u8>)> =
            chunk.iter().map(|c| (String::new(), c.clone())).collect();
        let progress = Arc::clone(&progress);
        tasks.push(tokio::spawn(async move {
            let answers = client.issue_many(items, "server-tls", None, "").await?;
            for a in &answers {
                if let Some(ecca::proto::issue_certificates_response::Result::Error(e)) = &a.result
                {
                    return Err(Error::Remote(format!(
                        "bulk item {} refused: {}",
                        a.index, e.message
                    )));
                }
                progress.tick();
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| Error::Internal(e.to_string()))??;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Level {
        per_second: n as f64 / secs,
        p50_ms: 0.0,
        p99_ms: 0.0,
        cpu_ms: (server.cpu_seconds() - cpu) * 1000.0 / n as f64,
    })
}
