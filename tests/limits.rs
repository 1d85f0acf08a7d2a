//! Exhaustion: what an anonymous client can hold or spend. Connection caps with eviction of
//! idle connections, handshake/header/idle timeouts on both listeners, per-address rate
//! limits on /tsa and /ocsp, OCSP for random serials, and the TSA's audit cost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn limited_ca(tweak: impl FnOnce(&mut ecca::config::ServerConfig)) -> TestCa {
    TestCa::start_with(|c| {
        c.limits.max_connections = 8;
        c.limits.handshake_timeout = Duration::from_secs(1);
        c.limits.header_timeout = Duration::from_secs(1);
        c.limits.idle_timeout = Duration::from_secs(2);
        tweak(c);
    })
    .await
}

/// Opens `n` TCP connections that send nothing.
async fn idle_sockets(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(TcpStream::connect(addr).await.unwrap());
    }
    v
}

/// Waits until the server has closed `s` (end of file or reset), at most `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_lock_out_clients() {
    let ca = limited_ca(|_| {}).await;
    let ep = ca.running.as_ref().unwrap().endpoints.clone();
    // Twice the cap on each listener, none of them saying anything.
    let mut grpc_idle = idle_sockets(ep.grpc, 16).await;
    let mut http_idle = idle_sockets(ep.http, 16).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // A real client is still served on both: idle connections make room.
    ca.client.profiles().await.unwrap();
    let (status, _, body) = http("GET", &format!("{}/health", ca.http_base()), b"", None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // Every idle socket is closed: evicted at the cap, or by the handshake/header timeout.
    for (what, socks) in [("gRPC", &mut grpc_idle), ("HTTP", &mut http_idle)] {
        for s in socks.iter_mut() {
            assert!(
                closed_within(s, Duration::from_secs(4)).await,
                "an idle {what} connection stayed open"
            );
        }
    }
    ca.client.profiles().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_alive_connections_close_when_idle() {
    // Headers may take long here, so what closes connections below is the idle timeout (hyper
    // also bounds the wait for a kept-alive connection's next request by the header timeout).
    let ca = limited_ca(|c| c.limits.header_timeout = Duration::from_secs(10)).await;
    let ep = ca.running.as_ref().unwrap().endpoints.clone();
    // HTTP/1.1 keep-alive: one request answered, then nothing: closed after the idle timeout.
    let mut s = TcpStream::connect(ep.http).await.unwrap();
    s.write_all(format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", ep.http).as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let started = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "closed too early"
    );

    // Half a request, never finished: nothing in flight yet, so idle.
    let mut slow = TcpStream::connect(ep.http).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut slow, Duration::from_secs(4)).await);

    // The gRPC client's connection is dropped when idle, and the channel reconnects.
    ca.client.profiles().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut ok = false;
    for _ in 0..3 {
        if ca.client.profiles().await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "the channel did not reconnect after its idle connection was closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_watch_stream_is_not_idle() {
    let ca = limited_ca(|_| {}).await;
    let mut watch = ca.client.watch_revocations().await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Past the idle timeout, the stream still delivers.
    let der = ca.issue_tls("w.example.cn").await;
    let serial = ecca::core::serial::Serial::from_der_content(parse(&der).raw_serial()).hex();
    ca.client.revoke(&serial, 1, None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.serial, serial);
}

/// An RFC 3161 request for a SHA-256 imprint (DER).
fn tsq(seed: u8) -> Vec<u8> {
    use der::Encode;
    x509_tsp::TimeStampReq {
        version: x509_tsp::TspVersion::V1,
        message_imprint: x509_tsp::MessageImprint {
            hash_algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_SHA_256,
                parameters: None,
            },
            hashed_message: der::asn1::OctetString::new(vec![seed; 32]).unwrap(),
        },
        req_policy: None,
        nonce: None,
        cert_req: false,
        extensions: None,
    }
    .to_der()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsa_is_rate_limited_and_cheap_in_audit() {
    let ca = TestCa::start_with(|c| c.rates.tsa_per_ip = 5).await;
    let url = format!("{}/tsa", ca.http_base());
    let before = ca.client.audit_log().await.unwrap().len();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..40u8 {
        let (status, headers, _) =
            http("POST", &url, &tsq(i), Some("application/timestamp-query")).await;
        if status == 429 {
            retry_after = header(&headers, "retry-after").map(str::to_string);
        }
        statuses.push(status);
    }
    let granted = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        (10..40).contains(&granted),
        "burst of 2x the rate, then 429: {statuses:?}"
    );
    assert!(retry_after.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    // The granted tokens cost one audit entry for their block of serials, not one each.
    let after = ca.client.audit_log().await.unwrap();
    let tsa_entries = after[before..]
        .iter()
        .filter(|e| e.event.starts_with("timestamp."))
        .count();
    assert_eq!(
        tsa_entries,
        1,
        "{:?}",
        after[before..].iter().map(|e| &e.event).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_for_random_serials_does_not_evict_real_answers() {
    let ca = TestCa::start_with(|c| c.rates.ocsp_per_ip = 0).await;
    let der = ca.issue_tls("o.example.cn").await;
    let issuing = ca.client.trust_bundle().await.unwrap().intermediates_der[0].clone();
    let url = format!("{}/ocsp", ca.http_base());
    let request = |serial: &[u8]| ocsp_request(&issuing, serial);
    let real = request(parse(&der).raw_serial());
    let (_, first_headers, first) =
        http("POST", &url, &real, Some("application/ocsp-request")).await;
    for i in 0..5000u32 {
        let mut serial = i.to_be_bytes().to_vec();
        serial.insert(0, 0x42);
        let (status, _, _) = http(
            "POST",
            &url,
            &request(&serial),
            Some("application/ocsp-request"),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, again_headers, again) =
        http("POST", &url, &real, Some("application/ocsp-request")).await;
    // Byte-identical: served from the pre-signed cache, not signed again.
    assert_eq!(first, again);
    assert_eq!(
        header(&first_headers, "etag"),
        header(&again_headers, "etag")
    );
}

/// An OCSP request (SHA-1 CertID) for `serial` under the CA certificate `issuer`.
fn ocsp_request(issuer: &[u8], serial: &[u8]) -> Vec<u8> {
    ecca::core::revcheck::ocsp_request_for(issuer, serial).unwrap()
}

/// A time-stamp request with an extension the TSA does not support is refused as
/// unacceptedExtension (RFC 3161 PKIFailureInfo bit 16), critical or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsa_extensions_are_unaccepted() {
    use der::{Decode, Encode};
    let ca = TestCa::start().await;
    let mut req = x509_tsp::TimeStampReq::from_der(&tsq(3)).unwrap();
    req.extensions = Some(vec![x509_cert::ext::Extension {
        extn_id: "1.3.6.1.4.1.55555.5".parse().unwrap(),
        critical: true,
        extn_value: der::asn1::OctetString::new(vec![0x05, 0x00]).unwrap(),
    }]);
    let url = format!("{}/tsa", ca.http_base());
    let (status, _, body) = http(
        "POST",
        &url,
        &req.to_der().unwrap(),
        Some("application/timestamp-query"),
    )
    .await;
    assert_eq!(status, 200);
    // PKIStatusInfo: status rejection (2), statusString, failInfo with only bit 16 set.
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("unacceptedExtension"),
        "{}",
        hex::encode(&body)
    );
    assert!(
        body.windows(9)
            .any(|w| w == [0x02, 0x01, 0x02, 0x30, 0x15, 0x0c, 0x13, b'u', b'n'])
            && body.ends_with(&[0x03, 0x04, 0x07, 0x00, 0x00, 0x80]),
        "{}",
        hex::encode(&body)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_is_rate_limited_per_address() {
    let ca = TestCa::start_with(|c| c.rates.ocsp_per_ip = 5).await;
    let der = ca.issue_tls("r.example.cn").await;
    let issuing = ca.client.trust_bundle().await.unwrap().intermediates_der[0].clone();
    let url = format!("{}/ocsp", ca.http_base());
    let body = ocsp_request(&issuing, parse(&der).raw_serial());
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let (status, headers, _) =
            http("POST", &url, &body, Some("application/ocsp-request")).await;
        if status == 429 {
            assert!(header(&headers, "retry-after").is_some());
        }
        statuses.push(status);
    }
    assert!(
        statuses.contains(&429) && statuses.contains(&200),
        "{statuses:?}"
    );
}
