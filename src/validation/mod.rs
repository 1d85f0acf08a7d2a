//! Domain control validation for ACME (RFC 8555 §8, RFC 8737) and CAA (RFC 8659), apart from
//! the ACME edge: the edge asks, this component resolves and connects.
//!
//! SSRF rules (those of the relying-party fetcher, `verify::is_public`): every address a name
//! resolves to is checked before any connection, and the connection goes to a checked address
//! (no second resolution); non-public addresses are refused — loopback only when a resolver
//! was configured explicitly (tests, closed networks). No redirects are followed.
//! Multi-perspective-ready: a [`Validator`] asks each of its [`Perspective`]s and needs all to
//! agree; one (this process) is configured here.
mod checks;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// The challenge types ecca validates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Http01,
    Dns01,
    TlsAlpn01,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "http-01" => Some(Method::Http01),
            "dns-01" => Some(Method::Dns01),
            "tls-alpn-01" => Some(Method::TlsAlpn01),
            _ => None,
        }
    }
}

/// What to prove for one identifier.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub method: Method,
    /// The DNS name (without "*." for a wildcard).
    pub domain: String,
    pub wildcard: bool,
    pub token: String,
    /// token || "." || account key thumbprint.
    pub key_authorization: String,
}

/// Why validation failed, by the RFC 8555 error type it maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    Dns(String),
    Connection(String),
    IncorrectResponse(String),
    Tls(String),
    /// The name resolves to an address ecca does not connect to.
    Refused(String),
    Caa(String),
}

impl Failure {
    /// Worth another try (the peer may not have been ready).
    fn transient(&self) -> bool {
        matches!(
            self,
            Failure::Dns(_) | Failure::Connection(_) | Failure::IncorrectResponse(_)
        )
    }
}

/// One network vantage point that can check an attempt.
#[async_trait]
pub trait Perspective: Send + Sync + std::fmt::Debug {
    async fn check(&self, attempt: &Attempt) -> Result<(), Failure>;
}

/// Settings of the validator.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Every lookup goes to this DNS server (None: the system's resolvers).
    pub resolver: Option<SocketAddr>,
    pub http01_port: u16,
    pub tlsalpn01_port: u16,
    /// CAA issuer domains that name this CA.
    pub caa_identities: Vec<String>,
    /// Attempts per validation (the first included), with doubling pauses from `backoff`.
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            resolver: None,
            http01_port: 80,
            tlsalpn01_port: 443,
            caa_identities: vec!["ecca".into()],
            attempts: 3,
            backoff: Duration::from_secs(1),
        }
    }
}

/// This process as a perspective: its resolver and its connections.
#[derive(Debug)]
pub struct Local {
    dns: Dns,
    settings: Settings,
}

/// DNS lookups through one resolver, with the address policy.
#[derive(Clone, Debug)]
pub struct Dns {
    resolver: Arc<TokioResolver>,
    /// Loopback addresses may be validated (an explicit resolver is configured).
    allow_loopback: bool,
}

const TIMEOUT: Duration = Duration::from_secs(10);

impl Dns {
    pub fn new(server: Option<SocketAddr>) -> Result<Dns, String> {
        let builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                ns.connections = vec![udp, tcp];
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio().unwrap_or_else(|e| {
                // No usable /etc/resolv.conf: the server still starts; every validation then
                // fails with a dns problem until a resolver is configured.
                tracing::warn!(error = %e, "no system DNS resolver; ACME validation needs --acme-dns-resolver");
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(Vec::new()),
                    TokioRuntimeProvider::default(),
                )
            }),
        };
        Self::build(builder, server.is_some())
    }

    fn build(
        mut builder: hickory_resolver::ResolverBuilder<TokioRuntimeProvider>,
        allow_loopback: bool,
    ) -> Result<Dns, String> {
        builder.options_mut().timeout = Duration::from_secs(5);
        builder.options_mut().attempts = 2;
        // Validation must see the zone as it is now, not as cached before the client set it.
        builder.options_mut().cache_size = 0;
        let resolver = builder.build().map_err(|e| format!("resolver: {e}"))?;
        Ok(Dns {
            resolver: Arc::new(resolver),
            allow_loopback,
        })
    }

    /// The addresses of `domain`, every one permitted, or why not.
    pub async fn addresses(&self, domain: &str) -> Result<Vec<IpAddr>, Failure> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let found = self
            .resolver
            .lookup_ip(fqdn.as_str())
            .await
            .map_err(|e| Failure::Dns(format!("looking up A/AAAA for {domain}: {e}")))?;
        let addrs: Vec<IpAddr> = found.iter().collect();
        if addrs.is_empty() {
            return Err(Failure::Dns(format!("no A/AAAA records for {domain}")));
        }
        if let Some(bad) = addrs.iter().find(|a| !self.permits(**a)) {
            return Err(Failure::Refused(format!(
                "{domain} resolves to {bad}, a loopback, private or reserved address, which ecca does not connect to"
            )));
        }
        Ok(addrs)
    }

    fn permits(&self, ip: IpAddr) -> bool {
        crate::verify::is_public(ip) || (self.allow_loopback && ip.is_loopback())
    }

    /// The TXT strings at `name` (none: an empty list).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, Failure> {
        use hickory_resolver::proto::rr::{RData, RecordType};
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.lookup(fqdn.as_str(), RecordType::TXT).await {
            Ok(found) => Ok(found
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(t) => Some(
                        t.txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(Failure::Dns(format!("looking up TXT for {name}: {e}"))),
        }
    }

    /// The CAA records at exactly `name` (tag, value, critical).
    pub async fn caa(&self, name: &str) -> Result<Vec<(String, String, bool)>, Failure> {
        use hickory_resolver::proto::rr::{RData, RecordType};
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.lookup(fqdn.as_str(), RecordType::CAA).await {
            Ok(found) => Ok(found
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::CAA(c) => Some((
                        c.tag.to_ascii_lowercase(),
                        String::from_utf8_lossy(&c.value).into_owned(),
                        c.issuer_critical,
                    )),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            // RFC 8659 §3: a lookup failure is not permission.
            Err(e) => Err(Failure::Dns(format!("looking up CAA for {name}: {e}"))),
        }
    }
}

impl Local {
    pub fn new(settings: Settings) -> Result<Local, String> {
        Ok(Local {
            dns: Dns::new(settings.resolver)?,
            settings,
        })
    }
}

#[async_trait]
impl Perspective for Local {
    async fn check(&self, attempt: &Attempt) -> Result<(), Failure> {
        let work = async {
            match attempt.method {
                Method::Http01 => {
                    checks::http01(&self.dns, self.settings.http01_port, attempt).await
                }
                Method::TlsAlpn01 => {
                    checks::tls_alpn01(&self.dns, self.settings.tlsalpn01_port, attempt).await
                }
                Method::Dns01 => checks::dns01(&self.dns, attempt).await,
            }
        };
        tokio::time::timeout(TIMEOUT * 2, work)
            .await
            .unwrap_or_else(|_| Err(Failure::Connection("validation timed out".into())))
    }
}

/// Validates attempts: every perspective must pass (retrying transient failures), then CAA.
#[derive(Debug)]
pub struct Validator {
    perspectives: Vec<Arc<dyn Perspective>>,
    dns: Dns,
    settings: Settings,
}

impl Validator {
    pub fn new(settings: Settings) -> Result<Validator, String> {
        let local = Local::new(settings.clone())?;
        Ok(Validator {
            dns: local.dns.clone(),
            perspectives: vec![Arc::new(local)],
            settings,
        })
    }

    /// Checks an attempt from every perspective, then the domain's CAA records.
    pub async fn validate(&self, attempt: &Attempt) -> Result<(), Failure> {
        for p in &self.perspectives {
            let mut pause = self.settings.backoff;
            let mut tries = 0;
            loop {
                tries += 1;
                match p.check(attempt).await {
                    Ok(()) => break,
                    Err(f) if f.transient() && tries < self.settings.attempts.max(1) => {
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                    Err(f) => return Err(f),
                }
            }
        }
        self.caa(&attempt.domain, attempt.wildcard).await
    }

    /// RFC 8659: the closest CAA record set at the name or above it decides; none allows.
    pub async fn caa(&self, domain: &str, wildcard: bool) -> Result<(), Failure> {
        let labels: Vec<&str> = domain.trim_end_matches('.').split('.').collect();
        for i in 0..labels.len() {
            let name = labels[i..].join(".");
            let records = self.dns.caa(&name).await?;
            if records.is_empty() {
                continue;
            }
            return checks::caa_permits(&records, wildcard, &self.settings.caa_identities)
                .map_err(|why| Failure::Caa(format!("CAA records at {name} {why}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_name_servers_lookups_fail_as_dns_problems_and_nothing_panics() {
        let builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(Vec::new()),
            TokioRuntimeProvider::default(),
        );
        let dns = Dns::build(builder, false).expect("a resolver without servers builds");
        assert!(matches!(
            dns.addresses("example.com").await,
            Err(Failure::Dns(_))
        ));
        assert!(matches!(dns.caa("example.com").await, Err(Failure::Dns(_))));
    }

    #[test]
    fn loopback_only_with_an_explicit_resolver() {
        let builder = || {
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(Vec::new()),
                TokioRuntimeProvider::default(),
            )
        };
        let (strict, tests) = (
            Dns::build(builder(), false).unwrap(),
            Dns::build(builder(), true).unwrap(),
        );
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let private: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(!strict.permits(lo) && tests.permits(lo));
        assert!(!strict.permits(private) && !tests.permits(private));
        assert!(strict.permits("93.184.216.34".parse().unwrap()));
    }
}
