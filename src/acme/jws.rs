//! JSON Web Signatures as ACME uses them (RFC 8555 §6.2, RFC 7515 flattened JSON): the
//! protected header, the account key (`jwk`, RFC 7517) or account URL (`kid`), and the
//! signature checked with ring. External Account Binding MACs (§7.3.4) are checked here too.
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use serde_json::Value;

use super::problem::Problem;

/// A flattened JWS as posted.
#[derive(Debug, Deserialize)]
pub struct Flattened {
    pub protected: String,
    pub payload: String,
    pub signature: String,
}

/// The protected header fields ACME reads.
#[derive(Debug, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub jwk: Option<Value>,
    #[serde(default)]
    pub kid: Option<String>,
}

/// An account public key from a JWK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Jwk {
    /// P-256 or P-384: the uncompressed point.
    Ec {
        p384: bool,
        point: Vec<u8>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

pub fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

pub fn unb64(field: &str, s: &str) -> Result<Vec<u8>, Problem> {
    B64.decode(s.trim_end_matches('='))
        .map_err(|_| Problem::malformed(format!("{field} is not base64url")))
}

fn member<'a>(v: &'a Value, name: &str) -> Result<&'a str, Problem> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Problem::bad_public_key(format!("JWK without {name:?}")))
}

/// Leading zero octets stripped (RSA integers compare by value).
fn unsigned(b: &[u8]) -> &[u8] {
    let zeros = b.iter().take_while(|x| **x == 0).count();
    &b[zeros..]
}

impl Jwk {
    /// Parses a public JWK; private members are refused (a client that sends its private key
    /// has leaked it).
    pub fn parse(v: &Value) -> Result<Jwk, Problem> {
        if v.get("d").is_some() {
            return Err(Problem::bad_public_key(
                "the JWK holds a private key".into(),
            ));
        }
        match member(v, "kty")? {
            "EC" => {
                let (p384, len) = match member(v, "crv")? {
                    "P-256" => (false, 32),
                    "P-384" => (true, 48),
                    other => {
                        return Err(Problem::bad_public_key(format!(
                            "EC curve {other} is not accepted (P-256, P-384)"
                        )));
                    }
                };
                let x = unb64("jwk.x", member(v, "x")?)?;
                let y = unb64("jwk.y", member(v, "y")?)?;
                if x.len() != len || y.len() != len {
                    return Err(Problem::bad_public_key(
                        "EC coordinates of the wrong length".into(),
                    ));
                }
                let mut point = vec![4u8];
                point.extend(x);
                point.extend(y);
                Ok(Jwk::Ec { p384, point })
            }
            "RSA" => {
                let n = unb64("jwk.n", member(v, "n")?)?;
                let e = unb64("jwk.e", member(v, "e")?)?;
                let bits = unsigned(&n).len() * 8;
                if !(2048..=8192).contains(&bits) {
                    return Err(Problem::bad_public_key(format!(
                        "RSA modulus of {bits} bits (2048 to 8192)"
                    )));
                }
                Ok(Jwk::Rsa { n, e })
            }
            "OKP" => {
                if member(v, "crv")? != "Ed25519" {
                    return Err(Problem::bad_public_key("OKP keys must be Ed25519".into()));
                }
                let x = unb64("jwk.x", member(v, "x")?)?;
                if x.len() != 32 {
                    return Err(Problem::bad_public_key(
                        "Ed25519 key of the wrong length".into(),
                    ));
                }
                Ok(Jwk::Ed25519(x))
            }
            other => Err(Problem::bad_public_key(format!(
                "key type {other} is not accepted (EC, RSA, OKP)"
            ))),
        }
    }

    /// The JWK's canonical members (RFC 7638 §3.2: required members, sorted, no spaces).
    pub fn canonical(&self) -> String {
        match self {
            Jwk::Ec { p384, point } => {
                let half = (point.len() - 1) / 2;
                format!(
                    r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                    if *p384 { "P-384" } else { "P-256" },
                    b64(&point[1..=half]),
                    b64(&point[1 + half..])
                )
            }
            Jwk::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64(unsigned(e)),
                b64(unsigned(n))
            ),
            Jwk::Ed25519(x) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url: the account key's identity.
    pub fn thumbprint(&self) -> String {
        b64(ring::digest::digest(&ring::digest::SHA256, self.canonical().as_bytes()).as_ref())
    }

    /// Does `alg` fit this key?
    fn accepts(&self, alg: &str) -> bool {
        matches!(
            (self, alg),
            (Jwk::Ec { p384: false, .. }, "ES256")
                | (Jwk::Ec { p384: true, .. }, "ES384")
                | (Jwk::Rsa { .. }, "RS256")
                | (Jwk::Ed25519(_), "EdDSA")
        )
    }

    /// Verifies `signature` over `message` with `alg`.
    pub fn verify(&self, alg: &str, message: &[u8], signature: &[u8]) -> Result<(), Problem> {
        use ring::signature as sig;
        if !self.accepts(alg) {
            return Err(Problem::bad_signature_algorithm(alg));
        }
        let ok = match self {
            Jwk::Ec { p384, point } => {
                let alg: &dyn sig::VerificationAlgorithm = if *p384 {
                    &sig::ECDSA_P384_SHA384_FIXED
                } else {
                    &sig::ECDSA_P256_SHA256_FIXED
                };
                sig::UnparsedPublicKey::new(alg, point)
                    .verify(message, signature)
                    .is_ok()
            }
            Jwk::Rsa { n, e } => sig::RsaPublicKeyComponents {
                n: unsigned(n),
                e: unsigned(e),
            }
            .verify(&sig::RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok(),
            Jwk::Ed25519(x) => sig::UnparsedPublicKey::new(&sig::ED25519, x)
                .verify(message, signature)
                .is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(Problem::malformed(
                "the JWS signature does not verify".into(),
            ))
        }
    }

    /// Is this the key of a certificate with this SubjectPublicKeyInfo?
    pub fn matches_spki(&self, spki_der: &[u8]) -> bool {
        use x509_parser::prelude::FromDer;
        use x509_parser::public_key::PublicKey;
        use x509_parser::x509::SubjectPublicKeyInfo;
        let Ok((_, spki)) = SubjectPublicKeyInfo::from_der(spki_der) else {
            return false;
        };
        match (self, spki.parsed()) {
            (Jwk::Ec { point, .. }, Ok(PublicKey::EC(ec))) => ec.data() == point.as_slice(),
            (Jwk::Rsa { n, e }, Ok(PublicKey::RSA(rsa))) => {
                unsigned(rsa.modulus) == unsigned(n) && unsigned(rsa.exponent) == unsigned(e)
            }
            (Jwk::Ed25519(x), _) => {
                spki.algorithm.algorithm.to_id_string() == "1.3.101.112"
                    && spki.subject_public_key.data.as_ref() == x.as_slice()
            }
            _ => false,
        }
    }
}

/// A parsed request: its header, the signed bytes and the decoded payload. The signature is
/// checked later, once the key (from `jwk` or the account) is known.
#[derive(Debug)]
pub struct Parsed {
    pub header: Header,
    pub signing_input: Vec<u8>,
    pub signature: Vec<u8>,
    /// Empty for POST-as-GET.
    pub payload: Vec<u8>,
}

/// Parses the request body (a flattened JWS) and its protected header.
pub fn parse(body: &[u8]) -> Result<Parsed, Problem> {
    let jws: Flattened = serde_json::from_slice(body)
        .map_err(|e| Problem::malformed(format!("not a flattened JWS: {e}")))?;
    let protected = unb64("protected", &jws.protected)?;
    let header: Header = serde_json::from_slice(&protected)
        .map_err(|e| Problem::malformed(format!("protected header: {e}")))?;
    if header.jwk.is_some() == header.kid.is_some() {
        return Err(Problem::malformed(
            "the protected header must hold exactly one of jwk and kid".into(),
        ));
    }
    if !matches!(header.alg.as_str(), "ES256" | "ES384" | "RS256" | "EdDSA") {
        return Err(Problem::bad_signature_algorithm(&header.alg));
    }
    Ok(Parsed {
        signing_input: format!("{}.{}", jws.protected, jws.payload).into_bytes(),
        signature: unb64("signature", &jws.signature)?,
        payload: unb64("payload", &jws.payload)?,
        header,
    })
}

/// Checks an External Account Binding (RFC 8555 §7.3.4): a JWS over the account's JWK, MACed
/// with the EAB key `key`, for this URL.
/// The key id an External Account Binding names (its MAC is checked by [`check_eab`]).
pub fn eab_kid(eab: &Value) -> Result<String, Problem> {
    let protected = eab
        .get("protected")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Problem::malformed("externalAccountBinding is not a flattened JWS".into())
        })?;
    let header: Value = serde_json::from_slice(&unb64("eab protected", protected)?)
        .map_err(|_| Problem::malformed("externalAccountBinding header is not JSON".into()))?;
    header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Problem::malformed("externalAccountBinding without kid".into()))
}

pub fn check_eab(eab: &Value, account_jwk: &Jwk, url: &str, key: &[u8]) -> Result<(), Problem> {
    let jws: Flattened = serde_json::from_value(eab.clone())
        .map_err(|_| Problem::malformed("externalAccountBinding is not a flattened JWS".into()))?;
    let header: Value = serde_json::from_slice(&unb64("eab protected", &jws.protected)?)
        .map_err(|_| Problem::malformed("externalAccountBinding header is not JSON".into()))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let mac = match alg {
        "HS256" => ring::hmac::HMAC_SHA256,
        "HS384" => ring::hmac::HMAC_SHA384,
        "HS512" => ring::hmac::HMAC_SHA512,
        _ => return Err(Problem::bad_signature_algorithm(alg)),
    };
    if header.get("nonce").is_some() {
        return Err(Problem::malformed(
            "externalAccountBinding must not carry a nonce".into(),
        ));
    }
    if header.get("url").and_then(Value::as_str) != Some(url) {
        return Err(Problem::unauthorized(
            "externalAccountBinding url is not this URL".into(),
        ));
    }
    let signed = format!("{}.{}", jws.protected, jws.payload);
    let tag = unb64("eab signature", &jws.signature)?;
    ring::hmac::verify(&ring::hmac::Key::new(mac, key), signed.as_bytes(), &tag)
        .map_err(|_| Problem::unauthorized("externalAccountBinding MAC does not verify".into()))?;
    let bound: Value = serde_json::from_slice(&unb64("eab payload", &jws.payload)?)
        .map_err(|_| Problem::malformed("externalAccountBinding payload is not a JWK".into()))?;
    if Jwk::parse(&bound)? != *account_jwk {
        return Err(Problem::unauthorized(
            "externalAccountBinding binds another key than the account's".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let key = Jwk::parse(&jwk).unwrap();
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// A flattened JWS signed by `sign` over protected header `h` and `payload`.
    fn signed(h: &Value, payload: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let protected = b64(h.to_string().as_bytes());
        let input = format!("{protected}.{payload}");
        serde_json::json!({"protected": protected, "payload": payload, "signature": b64(&sign(input.as_bytes()))})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn es384_and_eddsa_requests_verify_and_a_changed_payload_does_not() {
        use ring::signature::{self as sig, KeyPair as _};
        let rng = ring::rand::SystemRandom::new();
        let p384 =
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let p384 = sig::EcdsaKeyPair::from_pkcs8(
            &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
            p384.as_ref(),
            &rng,
        )
        .unwrap();
        let point = p384.public_key().as_ref().to_vec();
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-384", "x": b64(&point[1..49]), "y": b64(&point[49..])});
        let ed = sig::Ed25519KeyPair::from_pkcs8(
            sig::Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref(),
        )
        .unwrap();
        let okp =
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(ed.public_key().as_ref())});
        type Signer<'a> = Box<dyn Fn(&[u8]) -> Vec<u8> + 'a>;
        let cases: Vec<(&str, Value, Signer)> = vec![
            (
                "ES384",
                jwk,
                Box::new(|m: &[u8]| p384.sign(&rng, m).unwrap().as_ref().to_vec()),
            ),
            (
                "EdDSA",
                okp,
                Box::new(|m: &[u8]| ed.sign(m).as_ref().to_vec()),
            ),
        ];
        for (alg, jwk, sign) in cases {
            let h = serde_json::json!({"alg": alg, "nonce": "n", "url": "https://x/acme/new-account", "jwk": jwk});
            let body = signed(&h, &b64(b"{}"), &sign);
            let parsed = parse(&body).unwrap();
            let key = Jwk::parse(parsed.header.jwk.as_ref().unwrap()).unwrap();
            key.verify(alg, &parsed.signing_input, &parsed.signature)
                .unwrap();
            assert!(
                key.verify("ES256", &parsed.signing_input, &parsed.signature)
                    .is_err()
            );
            let mut tampered = parsed.signing_input.clone();
            tampered.push(b'x');
            assert!(
                key.verify(alg, &tampered, &parsed.signature).is_err(),
                "{alg}"
            );
        }
    }

    #[test]
    fn private_keys_and_unknown_algorithms_are_refused() {
        let jwk =
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&[1u8; 32]), "d": "AA"});
        assert!(Jwk::parse(&jwk).is_err());
        let key = Jwk::Ed25519(vec![1u8; 32]);
        assert!(key.verify("ES256", b"m", &[0u8; 64]).is_err());
        assert!(key.verify("EdDSA", b"m", &[0u8; 64]).is_err());
    }
}
