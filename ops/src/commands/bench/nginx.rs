//! OCSP GET beside nginx: the same DER response served by ecca (GET /ocsp/{request}, from its
//! pre-signed cache) and by nginx from a file on disk, both driven by wrk in the same run.
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use ecca::{Error, Result};

/// Installs a Debian package if `binary` is missing.
fn ensure(binary: &str, package: &str) -> Result<()> {
    let have = || {
        Command::new("sh")
            .args(["-c", &format!("command -v {binary}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have() {
        return Ok(());
    }
    eprintln!("installing {package} (Debian) for the OCSP comparison");
    let script = format!(
        "apt-get install -y -qq {package} || (apt-get update -qq && apt-get install -y -qq {package})"
    );
    let installed = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed || !have() {
        return Err(Error::Remote(format!(
            "{binary} is not installed and could not be installed (apt-get install {package})"
        )));
    }
    Ok(())
}

/// nginx serving one file, stopped when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    /// SIGTERM, so the master stops its workers too (SIGKILL would orphan them).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn start_nginx(dir: &Path, port: u16) -> Result<Nginx> {
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    // Two workers like ecca's two runtime threads; logs off; temp paths inside `dir`.
    let text = format!(
        "daemon off;\nworker_processes 2;\npid {d}/nginx.pid;\nerror_log stderr error;\n{user}\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/t1;\n  proxy_temp_path {d}/t2;\n  fastcgi_temp_path {d}/t3;\n  uwsgi_temp_path {d}/t4;\n  scgi_temp_path {d}/t5;\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{ root {d}/www; default_type application/ocsp-response; }}\n  }}\n}}\n",
        user = if std::env::var("USER").as_deref() == Ok("root") || is_root() {
            "user root;\n"
        } else {
            ""
        },
    );
    std::fs::write(&conf, text).map_err(|e| Error::io(&conf, e))?;
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Remote(format!("cannot start nginx: {e}")))?;
    Ok(Nginx(child))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .is_some_and(|v| v.split_whitespace().next() == Some("0"))
}

/// wrk's requests per second against `url` with `connections` for `secs`.
fn wrk(url: &str, connections: usize, secs: u64) -> Result<f64> {
    let threads = connections.clamp(1, 2);
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{secs}s"),
            url,
        ])
        .output()
        .map_err(|e| Error::Remote(format!("wrk: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") {
        return Err(Error::Remote(format!(
            "wrk {url}: errors in the answers:\n{text}"
        )));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::Remote(format!("wrk {url}: no rate in its output:\n{text}")))
}

/// (connections, ecca GET/s, nginx GET/s) for each level, with the response both serve.
pub async fn compare(
    tmp: &Path,
    ecca_http: &str,
    request: &[u8],
    levels: &[usize],
    secs: u64,
) -> Result<Vec<(usize, f64, f64)>> {
    ensure("nginx", "nginx-light")?;
    ensure("wrk", "wrk")?;
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(request)
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let ecca_url = format!("http://{ecca_http}/ocsp/{encoded}");
    let der = ecca::verify::http_get(&ecca_url, 1 << 20, Duration::from_secs(10))
        .await
        .map_err(Error::Remote)?;
    let dir = tmp.join("nginx");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).map_err(|e| Error::io(&www, e))?;
    std::fs::write(www.join("ocsp.der"), &der).map_err(|e| Error::io(&www, e))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::io("port", e))?
        .port();
    let _nginx = start_nginx(&dir, port)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let nginx_url = format!("http://127.0.0.1:{port}/ocsp.der");
    let served = ecca::verify::http_get(&nginx_url, 1 << 20, Duration::from_secs(10))
        .await
        .map_err(|e| Error::Remote(format!("nginx: {e}")))?;
    if served != der {
        return Err(Error::Remote(
            "nginx does not serve the response file".into(),
        ));
    }
    let mut out = Vec::new();
    for &c in levels {
        eprintln!("OCSP GET c={c}: ecca and nginx, {secs} s each (wrk)");
        let ours = tokio::task::block_in_place(|| wrk(&ecca_url, c, secs))?;
        let theirs = tokio::task::block_in_place(|| wrk(&nginx_url, c, secs))?;
        out.push((c, ours, theirs));
    }
    Ok(out)
}
