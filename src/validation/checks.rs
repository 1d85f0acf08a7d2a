//! The three challenge checks and the CAA rule.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Limited};

use super::{Attempt, Dns, Failure, TIMEOUT};

/// Largest HTTP-01 response read.
const MAX_BODY: usize = 8 * 1024;

fn digest_b64(key_authorization: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        key_authorization.as_bytes(),
    ))
}

async fn connect(addrs: &[std::net::IpAddr], port: u16) -> Result<tokio::net::TcpStream, Failure> {
    let targets: Vec<SocketAddr> = addrs.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
    tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(&targets[..]))
        .await
        .map_err(|_| Failure::Connection(format!("connecting to port {port} timed out")))?
        .map_err(|e| Failure::Connection(format!("connecting to port {port}: {e}")))
}

/// RFC 8555 §8.3: GET http://DOMAIN/.well-known/acme-challenge/TOKEN returns the key
/// authorization. Redirects are not followed.
pub async fn http01(dns: &Dns, port: u16, a: &Attempt) -> Result<(), Failure> {
    let addrs = dns.addresses(&a.domain).await?;
    let stream = connect(&addrs, port).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Connection(format!("HTTP: {e}")))?;
    tokio::spawn(conn);
    let host = if port == 80 {
        a.domain.clone()
    } else {
        format!("{}:{port}", a.domain)
    };
    let request = hyper::Request::get(format!("/.well-known/acme-challenge/{}", a.token))
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "ecca-validator")
        .body(Empty::<Bytes>::new())
        .map_err(|e| Failure::Connection(e.to_string()))?;
    let resp = tokio::time::timeout(TIMEOUT, sender.send_request(request))
        .await
        .map_err(|_| Failure::Connection("HTTP response timed out".into()))?
        .map_err(|e| Failure::Connection(format!("HTTP: {e}")))?;
    let status = resp.status();
    if status.is_redirection() {
        return Err(Failure::IncorrectResponse(format!(
            "http://{}/.well-known/acme-challenge/{} answered {status}; ecca does not follow redirects",
            a.domain, a.token
        )));
    }
    if !status.is_success() {
        return Err(Failure::IncorrectResponse(format!(
            "http://{}/.well-known/acme-challenge/{} answered {status}",
            a.domain, a.token
        )));
    }
    let body = tokio::time::timeout(TIMEOUT, Limited::new(resp.into_body(), MAX_BODY).collect())
        .await
        .map_err(|_| Failure::Connection("HTTP body timed out".into()))?
        .map_err(|e| Failure::IncorrectResponse(format!("body: {e}")))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    if text.trim() != a.key_authorization {
        return Err(Failure::IncorrectResponse(format!(
            "the key authorization at http://{}/.well-known/acme-challenge/{} is not this challenge's",
            a.domain, a.token
        )));
    }
    Ok(())
}

/// RFC 8555 §8.4: a TXT record at _acme-challenge.DOMAIN with the key authorization's digest.
pub async fn dns01(dns: &Dns, a: &Attempt) -> Result<(), Failure> {
    let name = format!("_acme-challenge.{}", a.domain);
    let want = digest_b64(&a.key_authorization);
    let found = dns.txt(&name).await?;
    if found.iter().any(|t| t.trim() == want) {
        return Ok(());
    }
    Err(Failure::IncorrectResponse(format!(
        "no TXT record at {name} holds this challenge's digest ({} found)",
        found.len()
    )))
}

/// Accepts any certificate (a TLS-ALPN-01 certificate is self-signed by design, and its
/// critical acmeIdentifier extension is unknown to certificate verifiers) but still checks
/// the handshake signature with the certificate's key; the certificate is inspected after.
#[derive(Debug)]
struct AnyCert;

/// The ring algorithm of a TLS signature scheme, for the schemes offered.
fn scheme_alg(
    scheme: rustls::SignatureScheme,
) -> Option<&'static dyn ring::signature::VerificationAlgorithm> {
    use ring::signature as sig;
    use rustls::SignatureScheme as S;
    Some(match scheme {
        S::ECDSA_NISTP256_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
        S::ECDSA_NISTP384_SHA384 => &sig::ECDSA_P384_SHA384_ASN1,
        S::ED25519 => &sig::ED25519,
        S::RSA_PSS_SHA256 => &sig::RSA_PSS_2048_8192_SHA256,
        S::RSA_PSS_SHA384 => &sig::RSA_PSS_2048_8192_SHA384,
        S::RSA_PSS_SHA512 => &sig::RSA_PSS_2048_8192_SHA512,
        S::RSA_PKCS1_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        S::RSA_PKCS1_SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        S::RSA_PKCS1_SHA512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

fn verify_handshake(
    message: &[u8],
    cert: &rustls::pki_types::CertificateDer<'_>,
    dss: &rustls::DigitallySignedStruct,
) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
    let alg = scheme_alg(dss.scheme).ok_or_else(bad)?;
    let (_, c) = X509Certificate::from_der(cert.as_ref()).map_err(|_| bad())?;
    let key = c.public_key().subject_public_key.data.as_ref();
    ring::signature::UnparsedPublicKey::new(alg, key)
        .verify(message, dss.signature())
        .map_err(|_| bad())?;
    Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
}

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        verify_handshake(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        verify_handshake(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        use rustls::SignatureScheme as S;
        vec![
            S::ECDSA_NISTP256_SHA256,
            S::ECDSA_NISTP384_SHA384,
            S::ED25519,
            S::RSA_PSS_SHA256,
            S::RSA_PSS_SHA384,
            S::RSA_PSS_SHA512,
            S::RSA_PKCS1_SHA256,
            S::RSA_PKCS1_SHA384,
            S::RSA_PKCS1_SHA512,
        ]
    }
}

const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
const ID_PE_ACME_IDENTIFIER: &str = "1.3.6.1.5.5.7.1.31";

/// RFC 8737: a TLS handshake with ALPN acme-tls/1 and SNI DOMAIN presents a certificate for
/// exactly DOMAIN with a critical acmeIdentifier extension holding the key authorization's
/// SHA-256.
pub async fn tls_alpn01(dns: &Dns, port: u16, a: &Attempt) -> Result<(), Failure> {
    use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};
    let addrs = dns.addresses(&a.domain).await?;
    let stream = connect(&addrs, port).await?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    let name = rustls::pki_types::ServerName::try_from(a.domain.clone())
        .map_err(|_| Failure::Tls(format!("{} is not a server name", a.domain)))?;
    let tls = tokio::time::timeout(
        TIMEOUT,
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream),
    )
    .await
    .map_err(|_| Failure::Connection("TLS handshake timed out".into()))?
    .map_err(|e| Failure::Tls(format!("TLS handshake with {}: {e}", a.domain)))?;
    let (_, session) = tls.get_ref();
    if session.alpn_protocol() != Some(ACME_TLS_ALPN) {
        return Err(Failure::Tls(
            "the server did not negotiate acme-tls/1".into(),
        ));
    }
    let der = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| Failure::Tls("no certificate presented".into()))?
        .to_vec();
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|_| Failure::IncorrectResponse("the certificate does not parse".into()))?;
    let mut names = Vec::new();
    let mut digest: Option<Vec<u8>> = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for n in &san.general_names {
                    names.push(match n {
                        GeneralName::DNSName(d) => d.to_ascii_lowercase(),
                        other => format!("{other:?}"),
                    });
                }
            }
            _ if ext.oid.to_id_string() == ID_PE_ACME_IDENTIFIER => {
                if !ext.critical {
                    return Err(Failure::IncorrectResponse(
                        "the acmeIdentifier extension is not critical".into(),
                    ));
                }
                // extnValue holds an OCTET STRING of the 32-byte digest.
                let v = ext.value;
                if v.len() != 34 || v[0] != 0x04 || v[1] != 32 {
                    return Err(Failure::IncorrectResponse(
                        "the acmeIdentifier extension is not a 32-byte OCTET STRING".into(),
                    ));
                }
                digest = Some(v[2..].to_vec());
            }
            _ => {}
        }
    }
    if names != [a.domain.to_ascii_lowercase()] {
        return Err(Failure::IncorrectResponse(format!(
            "the certificate must name exactly {} (it names {names:?})",
            a.domain
        )));
    }
    let want = ring::digest::digest(&ring::digest::SHA256, a.key_authorization.as_bytes());
    match digest {
        Some(d) if d == want.as_ref() => Ok(()),
        Some(_) => Err(Failure::IncorrectResponse(
            "the acmeIdentifier digest is not this challenge's key authorization".into(),
        )),
        None => Err(Failure::IncorrectResponse(
            "the certificate has no acmeIdentifier extension".into(),
        )),
    }
}

/// RFC 8659 §4: may a CA with one of `identities` issue, given the relevant record set?
pub fn caa_permits(
    records: &[(String, String, bool)],
    wildcard: bool,
    identities: &[String],
) -> Result<(), String> {
    if let Some((tag, _, _)) = records.iter().find(|(tag, _, critical)| {
        *critical && !matches!(tag.as_str(), "issue" | "issuewild" | "iodef")
    }) {
        return Err(format!(
            "carry a critical {tag:?} property ecca does not understand"
        ));
    }
    let tag = if wildcard && records.iter().any(|(t, _, _)| t == "issuewild") {
        "issuewild"
    } else {
        "issue"
    };
    let values: Vec<&str> = records
        .iter()
        .filter(|(t, _, _)| t == tag)
        .map(|(_, v, _)| v.as_str())
        .collect();
    if values.is_empty() {
        // Only iodef or other properties: no issuance restriction.
        return Ok(());
    }
    let named = values.iter().any(|v| {
        let domain = v.split(';').next().unwrap_or("").trim();
        identities.iter().any(|i| i.eq_ignore_ascii_case(domain))
    });
    if named {
        Ok(())
    } else {
        Err(format!(
            "do not authorize this CA ({} {values:?}; ecca's identities: {identities:?})",
            tag
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::caa_permits;

    fn r(tag: &str, v: &str) -> (String, String, bool) {
        (tag.into(), v.into(), false)
    }

    #[test]
    fn caa_rules_follow_rfc8659() {
        let me = vec!["ecca.example".to_string()];
        assert!(caa_permits(&[r("issue", "ecca.example")], false, &me).is_ok());
        assert!(caa_permits(&[r("issue", "ecca.example; account=1")], false, &me).is_ok());
        assert!(caa_permits(&[r("issue", "letsencrypt.org")], false, &me).is_err());
        assert!(caa_permits(&[r("issue", ";")], false, &me).is_err());
        // issuewild decides for wildcards when present, issue otherwise.
        let set = [r("issue", "ecca.example"), r("issuewild", ";")];
        assert!(caa_permits(&set, false, &me).is_ok());
        assert!(caa_permits(&set, true, &me).is_err());
        assert!(caa_permits(&[r("iodef", "mailto:x@y")], false, &me).is_ok());
        assert!(caa_permits(&[("future".into(), "x".into(), true)], false, &me).is_err());
    }
}
