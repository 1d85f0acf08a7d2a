//! Verifying certificates for relying parties: path building and validation (core::path) plus
//! revocation of every certificate on the path, from CRLs given by the caller, OCSP (AIA) and
//! CRLs (CDP) fetched over HTTP with timeouts, size caps and a cache.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;

use crate::core::path::{self, Cert, Options};
use crate::core::revcheck::{self, Freshness, RevocationError, Status};

/// How revocation is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationMode {
    /// Not at all.
    Off,
    /// Revoked fails; unavailable status is a warning.
    Soft,
    /// Revoked fails; unavailable status fails too.
    Hard,
}

impl RevocationMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "off" => Some(RevocationMode::Off),
            "soft" => Some(RevocationMode::Soft),
            "hard" => Some(RevocationMode::Hard),
            _ => None,
        }
    }
}

/// A network in CIDR notation, e.g. 10.0.0.0/8 or fd00::/8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a CIDR such as 10.0.0.0/8");
        let (ip, len) = s.split_once('/').ok_or_else(bad)?;
        let net: IpAddr = ip.trim().parse().map_err(|_| bad())?;
        let len: u8 = len.trim().parse().map_err(|_| bad())?;
        if len > if net.is_ipv4() { 32 } else { 128 } {
            return Err(bad());
        }
        Ok(Cidr { net, len })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bytes = |a: IpAddr| match a {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        let (a, n) = (bytes(ip), bytes(self.net));
        a.len() == n.len()
            && (0..usize::from(self.len)).all(|i| {
                let m = 0x80u8 >> (i % 8);
                a[i / 8] & m == n[i / 8] & m
            })
    }
}

/// True for globally routable unicast addresses: not loopback, private, link-local,
/// unspecified, shared (CGNAT), multicast, broadcast, documentation or reserved — checked on
/// the address itself and on IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            !(v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
                || v.is_multicast()
                || v.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v) => {
            if let Some(v4) = v.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v.segments();
            let embedded = |hi: u16, lo: u16| {
                IpAddr::V4(std::net::Ipv4Addr::new(
                    (hi >> 8) as u8,
                    hi as u8,
                    (lo >> 8) as u8,
                    lo as u8,
                ))
            };
            if s[0] == 0x64 && s[1] == 0xff9b {
                return is_public(embedded(s[6], s[7]));
            }
            if s[0] == 0x2002 {
                return is_public(embedded(s[1], s[2]));
            }
            !(v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || s[..6] == [0, 0, 0, 0, 0, 0])
        }
    }
}

/// Which addresses the verifier may connect to, and how much its errors may say.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    /// Any address at all (the CLI, running for its own user).
    pub any_address: bool,
    /// Non-public networks allowed anyway.
    pub allow: Vec<Cidr>,
    /// Say why a connection failed. Off in the server, so that a caller cannot use it to
    /// probe what answers where.
    pub detailed_errors: bool,
}

impl FetchPolicy {
    /// For a program verifying on behalf of its own user: fetches anything, says everything.
    pub fn local_user() -> Self {
        FetchPolicy {
            any_address: true,
            allow: Vec::new(),
            detailed_errors: true,
        }
    }

    /// For the server, verifying for callers: public addresses and `allow` only.
    pub fn server(allow: Vec<Cidr>) -> Self {
        FetchPolicy {
            any_address: false,
            allow,
            detailed_errors: false,
        }
    }

    fn permits(&self, ip: IpAddr) -> bool {
        self.any_address || is_public(ip) || self.allow.iter().any(|c| c.contains(ip))
    }
}

/// Answers fetches of this server's own URLs from memory, without the network.
#[async_trait::async_trait]
pub trait LocalSource: Send + Sync + std::fmt::Debug {
    /// The body a GET (or an OCSP POST of `post`) of `url` would return; None if not ours.
    async fn answer(&self, url: &str, post: Option<&[u8]>) -> Option<Vec<u8>>;
}

/// Limits on outbound fetches.
#[derive(Clone, Copy, Debug)]
pub struct FetchLimits {
    pub timeout: Duration,
    pub max_crl_bytes: usize,
    pub max_ocsp_bytes: usize,
    /// How long a fetched OCSP answer is reused (0: ask every time; the freshest answer wins
    /// over saved round trips, and responders such as ecca's answer from a pre-signed cache).
    pub ocsp_cache_secs: i64,
    /// How long a fetched CRL is reused at most (never past its nextUpdate).
    pub crl_cache_secs: i64,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            timeout: Duration::from_secs(5),
            max_crl_bytes: 64 << 20,
            max_ocsp_bytes: 64 << 10,
            ocsp_cache_secs: 0,
            crl_cache_secs: 60,
        }
    }
}

/// One certificate of the chosen path, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathEntry {
    pub subject: String,
    pub sha256: String,
}

/// The outcome of a verification.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub valid: bool,
    /// The path chosen (leaf first, trust anchor last), when one was valid.
    pub path: Vec<PathEntry>,
    /// Why the certificate is invalid (every reason found).
    pub reasons: Vec<String>,
    /// Soft-fail notes.
    pub warnings: Vec<String>,
}

/// A verification request.
#[derive(Clone, Debug)]
pub struct Request {
    pub leaf: Vec<u8>,
    /// Candidate intermediates and cross-certificates.
    pub untrusted: Vec<Vec<u8>>,
    pub anchors: Vec<Vec<u8>>,
    /// CRLs supplied by the caller (DER), used before anything is fetched.
    pub crls: Vec<Vec<u8>>,
    pub options: Options,
    pub revocation: RevocationMode,
    /// The path is validated at a past time a timestamp proves: revocation data must be
    /// current now, and only revocations at or before the validation time count.
    pub historical: bool,
}

#[derive(Clone, Debug)]
struct Cached {
    body: Vec<u8>,
    expires: i64,
}

/// Verifies certificates; holds the fetch cache. Share one per process.
#[derive(Debug)]
pub struct Verifier {
    limits: FetchLimits,
    policy: FetchPolicy,
    local: Option<Arc<dyn LocalSource>>,
    cache: Mutex<HashMap<(String, Vec<u8>), Cached>>,
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Verifier {
    pub fn new(limits: FetchLimits, policy: FetchPolicy) -> Self {
        Verifier {
            limits,
            policy,
            local: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Answers this server's own URLs from `local` instead of fetching them.
    pub fn with_local(mut self, local: Arc<dyn LocalSource>) -> Self {
        self.local = Some(local);
        self
    }

    /// Builds, validates and checks revocation; tries further paths when one is revoked.
    pub async fn verify(&self, req: &Request) -> Outcome {
        let mut out = Outcome::default();
        let parse_all = |ders: &[Vec<u8>], what: &str, out: &mut Outcome| -> Vec<Cert> {
            ders.iter()
                .filter_map(|d| match Cert::parse(d) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        out.warnings
                            .push(format!("{what} certificate ignored: {e}"));
                        None
                    }
                })
                .collect()
        };
        let leaf = match Cert::parse(&req.leaf) {
            Ok(c) => c,
            Err(e) => {
                out.reasons.push(format!("leaf: {e}"));
                return out;
            }
        };
        let pool = parse_all(&req.untrusted, "untrusted", &mut out);
        let anchors = parse_all(&req.anchors, "trust anchor", &mut out);
        if anchors.is_empty() {
            out.reasons.push("no trust anchors given".into());
            return out;
        }
        let paths = match path::build_and_validate(&leaf, &pool, &anchors, &req.options) {
            Ok(p) => p,
            Err(f) => {
                out.reasons = f.texts();
                return out;
            }
        };
        for candidate in paths {
            let mut reasons = Vec::new();
            let mut warnings = Vec::new();
            if req.revocation != RevocationMode::Off {
                for pair in candidate.certs.windows(2) {
                    let (cert, issuer) = (&pair[0], &pair[1]);
                    match self.status(cert, issuer, req).await {
                        Ok(Status::Good) => {}
                        Ok(Status::Revoked { at, reason }) => reasons.push(format!(
                            "{}: revoked at {} (reason {})",
                            cert.subject_text,
                            rfc3339(at),
                            reason_name(reason)
                        )),
                        Ok(Status::Unknown) | Err(_) if req.revocation == RevocationMode::Soft => {
                            warnings.push(format!(
                                "{}: revocation status unavailable (soft-fail)",
                                cert.subject_text
                            ));
                        }
                        Ok(Status::Unknown) => {
                            reasons.push(format!(
                                "{}: the responder does not know this certificate",
                                cert.subject_text
                            ));
                        }
                        Err(e) => reasons.push(format!(
                            "{}: revocation status unavailable: {e}",
                            cert.subject_text
                        )),
                    }
                }
            }
            if reasons.is_empty() {
                out.valid = true;
                out.reasons.clear();
                out.warnings.extend(warnings);
                out.path = candidate
                    .certs
                    .iter()
                    .map(|c| PathEntry {
                        subject: c.subject_text.clone(),
                        sha256: c.fingerprint(),
                    })
                    .collect();
                return out;
            }
            out.reasons.extend(reasons);
        }
        out
    }

    /// Status of one certificate: given CRLs, then OCSP, then the CDP CRL.
    async fn status(&self, cert: &Cert, issuer: &Cert, req: &Request) -> Result<Status, String> {
        let when = if req.historical {
            revcheck::When::historical(req.options.time, now())
        } else {
            revcheck::When::at(req.options.time)
        };
        let mut errors = Vec::new();
        // Responders that answered "unknown": not an error, and not an answer either.
        let mut unknown = Vec::new();
        for crl in &req.crls {
            match revcheck::from_crl(crl, cert, issuer, when) {
                Ok((s, _)) => return Ok(s),
                Err(e) => errors.push(e.to_string()),
            }
        }
        for url in &cert.ocsp_urls {
            let body = match revcheck::ocsp_request(cert, issuer) {
                Ok(b) => b,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            let interpret = |b: &[u8]| revcheck::from_ocsp(b, cert, issuer, when);
            match self
                .fetch(
                    url,
                    Some(body),
                    self.limits.max_ocsp_bytes,
                    self.limits.ocsp_cache_secs,
                    interpret,
                )
                .await
            {
                Ok(Status::Unknown) => unknown.push(format!("{url}: unknown")),
                Ok(s) => return Ok(s),
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        for url in &cert.crl_urls {
            let interpret = |b: &[u8]| revcheck::from_crl(b, cert, issuer, when);
            match self
                .fetch(
                    url,
                    None,
                    self.limits.max_crl_bytes,
                    self.limits.crl_cache_secs,
                    interpret,
                )
                .await
            {
                Ok(s) => return Ok(s),
                Err(e) => errors.push(format!("{url}: {e}")),
            }
        }
        if cert.ocsp_urls.is_empty() && cert.crl_urls.is_empty() && req.crls.is_empty() {
            errors.push("no CRL or OCSP location in the certificate".into());
        }
        if errors.is_empty() && !unknown.is_empty() {
            return Ok(Status::Unknown);
        }
        errors.extend(unknown);
        Err(errors.join("; "))
    }

    /// GET (or POST an OCSP request to) a URL, through the cache, and interpret the body.
    async fn fetch(
        &self,
        url: &str,
        post: Option<Vec<u8>>,
        max: usize,
        ttl: i64,
        interpret: impl Fn(&[u8]) -> Result<(Status, Freshness), RevocationError>,
    ) -> Result<Status, String> {
        let key = (url.to_string(), post.clone().unwrap_or_default());
        // (the cache key keeps the OCSP request body apart from GETs of the same URL)
        let at = now();
        let cached = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
            .filter(|c| c.expires > at);
        if let Some(c) = cached
            && let Ok((s, _)) = interpret(&c.body)
        {
            return Ok(s);
        }
        if let Some(local) = &self.local
            && let Some(body) = local.answer(url, post.as_deref()).await
        {
            return interpret(&body).map(|(s, _)| s).map_err(|e| e.to_string());
        }
        let post = post.map(|b| ("application/ocsp-request", b));
        let fetched = tokio::time::timeout(
            self.limits.timeout,
            http_fetch(url, post, max, &self.policy),
        )
        .await
        .unwrap_or_else(|_| {
            Err(FetchError::Failed(format!(
                "timed out after {:?}",
                self.limits.timeout
            )))
        });
        let body = fetched.map_err(|e| e.describe(self.policy.detailed_errors))?;
        let (status, fresh) = interpret(&body).map_err(|e| e.to_string())?;
        let expires = fresh.next_update.unwrap_or(i64::MAX).min(at + ttl);
        if ttl > 0
            && let Ok(mut c) = self.cache.lock()
        {
            if c.len() > 10_000 {
                c.clear();
            }
            c.insert(key, Cached { body, expires });
        }
        Ok(status)
    }
}

use crate::core::rfc3339;

fn reason_name(code: Option<u8>) -> &'static str {
    match code {
        None | Some(0) => "unspecified",
        Some(1) => "keyCompromise",
        Some(2) => "cACompromise",
        Some(3) => "affiliationChanged",
        Some(4) => "superseded",
        Some(5) => "cessationOfOperation",
        Some(6) => "certificateHold",
        Some(9) => "privilegeWithdrawn",
        Some(10) => "aACompromise",
        Some(_) => "other",
    }
}

/// A plain-HTTP GET with a response size cap and timeout (the CLI's own requests: any
/// address).
pub async fn http_get(url: &str, max: usize, timeout: Duration) -> Result<Vec<u8>, String> {
    let policy = FetchPolicy::local_user();
    tokio::time::timeout(timeout, http_fetch(url, None, max, &policy))
        .await
        .map_err(|_| format!("{url}: timed out after {timeout:?}"))?
        .map_err(|e| e.describe(true))
}

/// A plain-HTTP POST of `body` as `content_type`, with a response size cap and timeout (the
/// CLI's own requests, e.g. to a TSA: any address).
pub async fn http_post(
    url: &str,
    content_type: &'static str,
    body: Vec<u8>,
    max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let policy = FetchPolicy::local_user();
    tokio::time::timeout(
        timeout,
        http_fetch(url, Some((content_type, body)), max, &policy),
    )
    .await
    .map_err(|_| format!("{url}: timed out after {timeout:?}"))?
    .map_err(|e| e.describe(true))
}

/// Why a fetch did not produce a body.
#[derive(Debug)]
enum FetchError {
    /// Not attempted: the URL or its addresses are not allowed.
    Refused(String),
    /// Attempted and failed (connection, HTTP status, size).
    Failed(String),
}

impl FetchError {
    fn describe(self, detailed: bool) -> String {
        match self {
            FetchError::Refused(why) => format!("fetch refused: {why}"),
            FetchError::Failed(why) if detailed => format!("fetch failed: {why}"),
            FetchError::Failed(why) => {
                tracing::debug!(why, "revocation fetch failed");
                "fetch failed".into()
            }
        }
    }
}

/// A plain-HTTP GET, or POST of (content type, body), with a body size cap. The host is
/// resolved once and every address checked against the policy before connecting to one of
/// them (so a DNS answer cannot change between the check and the connection); redirects are
/// not followed.
async fn http_fetch(
    url: &str,
    post: Option<(&'static str, Vec<u8>)>,
    max: usize,
    policy: &FetchPolicy,
) -> Result<Vec<u8>, FetchError> {
    let refused = |why: &str| FetchError::Refused(why.to_string());
    let failed = |why: String| FetchError::Failed(why);
    let uri: hyper::Uri = url.parse().map_err(|_| refused("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(refused("only http:// revocation URLs are fetched"));
    }
    let host = uri
        .host()
        .ok_or_else(|| refused("URL without host"))?
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| failed(format!("resolve: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(failed("no address".into()));
    }
    if addrs.iter().any(|a| !policy.permits(a.ip())) {
        return Err(refused(
            "the host is a loopback, private, link-local or reserved address (allow its network with verify_fetch_allow)",
        ));
    }
    let stream = tokio::net::TcpStream::connect(&addrs[..])
        .await
        .map_err(|e| failed(format!("connect: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| failed(format!("HTTP: {e}")))?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let builder = hyper::Request::builder()
        .uri(path)
        .header(hyper::header::HOST, host);
    let request = match post {
        Some((content_type, body)) => builder
            .method(hyper::Method::POST)
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body))),
        None => builder
            .method(hyper::Method::GET)
            .body(Full::new(Bytes::new())),
    }
    .map_err(|e| failed(e.to_string()))?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| failed(format!("HTTP: {e}")))?;
    if !resp.status().is_success() {
        return Err(failed(format!("HTTP status {}", resp.status())));
    }
    let body = Limited::new(resp.into_body(), max)
        .collect()
        .await
        .map_err(|e| failed(format!("body (limit {max} bytes): {e}")))?;
    Ok(body.to_bytes().to_vec())
}

/// The outcome of verifying a document signature.
#[derive(Clone, Debug, Default)]
pub struct SignatureOutcome {
    pub valid: bool,
    /// The signer's subject.
    pub signer: String,
    /// The signer's claimed signing time (signingTime attribute), Unix seconds.
    pub signing_time: Option<i64>,
    /// The timestamp's genTime when a valid timestamp is present, Unix seconds.
    pub timestamp_time: Option<i64>,
    /// The signer's certificate path, leaf first.
    pub path: Vec<PathEntry>,
    pub reasons: Vec<String>,
    pub warnings: Vec<String>,
}

/// What to verify a signature against.
#[derive(Clone, Debug)]
pub struct SignatureRequest {
    pub signed: cms::signed_data::SignedData,
    /// The document's digest with the signature's digest algorithm (`core::cms::digest_alg`).
    pub content_digest: Vec<u8>,
    /// Further certificates (intermediates, cross-certificates).
    pub untrusted: Vec<Vec<u8>>,
    pub anchors: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
    /// Validation time without a timestamp (default now).
    pub at: Option<i64>,
    pub revocation: RevocationMode,
}

impl Verifier {
    /// Verifies a CMS signature: digest and signature, then the signer's path for document
    /// signing and its revocation. With a valid RFC 3161 timestamp, the path is validated at
    /// the timestamp's time: a certificate revoked or expired after it does not invalidate.
    pub async fn verify_signature(&self, req: SignatureRequest) -> SignatureOutcome {
        let mut out = SignatureOutcome::default();
        let checked = match crate::core::cms::check_signer(
            &req.signed,
            &req.content_digest,
            &req.untrusted,
        ) {
            Ok(c) => c,
            Err(e) => {
                out.reasons.push(e.to_string());
                return out;
            }
        };
        out.signer = Cert::parse(&checked.cert_der)
            .map(|c| c.subject_text)
            .unwrap_or_default();
        out.signing_time = checked.signing_time;
        let mut pool = checked.certs.clone();
        pool.extend(req.untrusted.iter().cloned());
        let mut time = req.at.unwrap_or_else(now);
        if let Some(token) = &checked.timestamp_token {
            match crate::core::cms::check_token(token, &checked.signature, &pool) {
                Ok(t) => {
                    let mut options = Options::at(t.gen_time);
                    options.purpose = path::Purpose::TimeStamping;
                    let mut tsa_pool = t.certs.clone();
                    tsa_pool.extend(pool.iter().cloned());
                    let tsa = self
                        .verify(&Request {
                            leaf: t.tsa_cert_der.clone(),
                            untrusted: tsa_pool,
                            anchors: req.anchors.clone(),
                            crls: req.crls.clone(),
                            options,
                            revocation: req.revocation,
                            historical: t.gen_time < now(),
                        })
                        .await;
                    if tsa.valid {
                        out.timestamp_time = Some(t.gen_time);
                        time = t.gen_time;
                        out.warnings
                            .extend(tsa.warnings.into_iter().map(|w| format!("timestamp: {w}")));
                    } else {
                        out.reasons.extend(
                            tsa.reasons
                                .into_iter()
                                .map(|r| format!("timestamp authority: {r}")),
                        );
                        return out;
                    }
                }
                Err(e) => {
                    out.reasons.push(format!("timestamp: {e}"));
                    return out;
                }
            }
        }
        let mut options = Options::at(time);
        options.purpose = path::Purpose::DocumentSigning;
        let chain = self
            .verify(&Request {
                leaf: checked.cert_der,
                untrusted: pool,
                anchors: req.anchors,
                crls: req.crls,
                options,
                revocation: req.revocation,
                historical: out.timestamp_time.is_some(),
            })
            .await;
        out.valid = chain.valid;
        out.path = chain.path;
        out.reasons.extend(chain.reasons);
        out.warnings.extend(chain.warnings);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_unicast_addresses_are_public() {
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "2400:cb00::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ];
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "::127.0.0.1",
        ];
        for a in public {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
        for a in private {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        let allow = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(allow.contains("10.9.9.9".parse().unwrap()));
        assert!(!allow.contains("11.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        let policy = FetchPolicy::server(vec![allow]);
        assert!(policy.permits("10.1.1.1".parse().unwrap()));
        assert!(!policy.permits("127.0.0.1".parse().unwrap()));
        assert!(FetchPolicy::local_user().permits("127.0.0.1".parse().unwrap()));
    }
}
