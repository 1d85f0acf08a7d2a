//! Certificate profiles: data files (certs/profiles/*.toml) that auditors can read, validated once
//! at start into [`Profile`] values. A profile alone decides key usages, EKUs, validity and which
//! names a certificate may carry.
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::core::error::{Error, Result};
use crate::core::keys::KeyAlg;

/// The profiles shipped with ecca, compiled in so a fresh data directory needs no files.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "server-tls",
        include_str!("../../certs/profiles/server-tls.toml"),
    ),
    (
        "client-tls",
        include_str!("../../certs/profiles/client-tls.toml"),
    ),
    (
        "merchant-ov",
        include_str!("../../certs/profiles/merchant-ov.toml"),
    ),
    (
        "document-signing",
        include_str!("../../certs/profiles/document-signing.toml"),
    ),
    (
        "sm2-server-tls",
        include_str!("../../certs/profiles/sm2-server-tls.toml"),
    ),
    (
        "sm2-client-tls",
        include_str!("../../certs/profiles/sm2-client-tls.toml"),
    ),
    (
        "sm2-merchant-ov",
        include_str!("../../certs/profiles/sm2-merchant-ov.toml"),
    ),
    (
        "sm2-document-signing",
        include_str!("../../certs/profiles/sm2-document-signing.toml"),
    ),
];

/// Whether a name element must, may or must not appear.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Required,
    Optional,
    #[default]
    Forbidden,
}

/// Subject attributes a profile allows. Anything not listed is forbidden.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectRules {
    #[serde(default)]
    pub common_name: Presence,
    #[serde(default)]
    pub organization: Presence,
    #[serde(default)]
    pub organizational_unit: Presence,
    #[serde(default)]
    pub country: Presence,
    #[serde(default)]
    pub state: Presence,
    #[serde(default)]
    pub locality: Presence,
    /// The Unified Social Credit Code (GB 32100-2015) in subject serialNumber (2.5.4.5).
    #[serde(default)]
    pub uscc: Presence,
}

/// Subject alternative names a profile allows.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SanRules {
    #[serde(default)]
    pub dns: Presence,
    #[serde(default)]
    pub ip: Presence,
    #[serde(default)]
    pub email: Presence,
    /// Allow "*.example.com".
    #[serde(default)]
    pub wildcard: bool,
    /// At least this many SANs in all.
    #[serde(default)]
    pub min: usize,
    /// At most this many SANs in all.
    #[serde(default = "default_max_sans")]
    pub max: usize,
    /// A subject commonName, if present, must repeat one of the SANs (as browsers expect).
    #[serde(default)]
    pub common_name_in_san: bool,
}

fn default_max_sans() -> usize {
    100
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    description: String,
    key_algorithms: Vec<String>,
    max_validity_days: u32,
    default_validity_days: u32,
    key_usages: Vec<String>,
    extended_key_usages: Vec<String>,
    #[serde(default)]
    subject: SubjectRules,
    #[serde(default)]
    san: SanRules,
    #[serde(default)]
    ocsp_no_check: bool,
    #[serde(default)]
    critical_eku: bool,
    #[serde(default = "default_issuer")]
    issuer: String,
    /// Further hierarchies a request may choose instead of `issuer`.
    #[serde(default)]
    issuers: Vec<String>,
    /// Offered only while `issuer` exists (profiles shipped for a hierarchy a CA may add
    /// later, like the sm2-* ones for `gm`), instead of stopping the start.
    #[serde(default)]
    optional_issuer: bool,
    /// The distinguishing ID SM2 requests are signed with (GM/T 0009 default).
    #[serde(default = "default_sm2_id")]
    sm2_id: String,
    /// Dual certificates (GM/T 0034) may be issued under it: a signing certificate for the
    /// CSR's key and an encryption certificate for a key the KMC makes and escrows.
    #[serde(default)]
    dual: bool,
}

/// The profile of a service's own gRPC server certificate (ecca's API, the KMC's).
pub const INTERNAL_SERVER_TLS: &str = r#"
description = "a service's own gRPC server certificate"
key_algorithms = ["p256"]
max_validity_days = 397
default_validity_days = 397
key_usages = ["digitalSignature"]
extended_key_usages = ["serverAuth"]
"#;

/// The profile of a client credential for a service's API (ecca's, the KMC's).
pub const INTERNAL_CREDENTIAL: &str = r#"
description = "an API client credential"
key_algorithms = ["p256"]
max_validity_days = 397
default_validity_days = 397
key_usages = ["digitalSignature"]
extended_key_usages = ["clientAuth"]
"#;

fn default_sm2_id() -> String {
    crate::core::sm2::DEFAULT_ID.into()
}

fn default_issuer() -> String {
    crate::core::records::DEFAULT_ISSUER.into()
}

/// Key usages an end-entity profile may grant (RFC 5280 §4.2.1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUsage {
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
}

impl KeyUsage {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "digitalSignature" => KeyUsage::DigitalSignature,
            "contentCommitment" | "nonRepudiation" => KeyUsage::ContentCommitment,
            "keyEncipherment" => KeyUsage::KeyEncipherment,
            "dataEncipherment" => KeyUsage::DataEncipherment,
            "keyAgreement" => KeyUsage::KeyAgreement,
            _ => return None,
        })
    }

    /// RFC 5280 name.
    pub fn name(self) -> &'static str {
        match self {
            KeyUsage::DigitalSignature => "digitalSignature",
            KeyUsage::ContentCommitment => "contentCommitment",
            KeyUsage::KeyEncipherment => "keyEncipherment",
            KeyUsage::DataEncipherment => "dataEncipherment",
            KeyUsage::KeyAgreement => "keyAgreement",
        }
    }

    /// The rcgen value.
    pub fn rcgen(self) -> rcgen::KeyUsagePurpose {
        use rcgen::KeyUsagePurpose as K;
        match self {
            KeyUsage::DigitalSignature => K::DigitalSignature,
            KeyUsage::ContentCommitment => K::ContentCommitment,
            KeyUsage::KeyEncipherment => K::KeyEncipherment,
            KeyUsage::DataEncipherment => K::DataEncipherment,
            KeyUsage::KeyAgreement => K::KeyAgreement,
        }
    }
}

/// An extended key usage: a well-known name or a dotted OID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eku {
    /// Display name ("serverAuth" or the dotted OID).
    pub name: String,
    /// OID arcs.
    pub arcs: Vec<u64>,
}

/// id-kp-documentSigning (RFC 9336).
pub const DOCUMENT_SIGNING_ARCS: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 3, 36];

impl Eku {
    fn parse(s: &str) -> Option<Self> {
        let kp = |n: u64| vec![1, 3, 6, 1, 5, 5, 7, 3, n];
        let arcs = match s {
            "serverAuth" => kp(1),
            "clientAuth" => kp(2),
            "codeSigning" => kp(3),
            "emailProtection" => kp(4),
            "timeStamping" => kp(8),
            "ocspSigning" => kp(9),
            "documentSigning" => DOCUMENT_SIGNING_ARCS.to_vec(),
            dotted => {
                let arcs: Option<Vec<u64>> = dotted.split('.').map(|a| a.parse().ok()).collect();
                let arcs = arcs.filter(|a| a.len() >= 3 && a[0] <= 2)?;
                return Some(Eku {
                    name: dotted.into(),
                    arcs,
                });
            }
        };
        Some(Eku {
            name: s.into(),
            arcs,
        })
    }

    /// The rcgen value.
    pub fn rcgen(&self) -> rcgen::ExtendedKeyUsagePurpose {
        rcgen::ExtendedKeyUsagePurpose::Other(self.arcs.clone())
    }
}

/// A validated certificate profile.
#[derive(Clone, Debug)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub key_algorithms: Vec<KeyAlg>,
    pub max_validity_days: u32,
    pub default_validity_days: u32,
    pub key_usages: Vec<KeyUsage>,
    pub extended_key_usages: Vec<Eku>,
    pub subject: SubjectRules,
    pub san: SanRules,
    /// Add id-pkix-ocsp-nocheck (for delegated OCSP responder certificates).
    pub ocsp_no_check: bool,
    /// Mark extendedKeyUsage critical (RFC 3161 requires it for TSA certificates).
    pub critical_eku: bool,
    /// The issuer (CA hierarchy) that signs under this profile unless a request picks
    /// another; checked against the store's issuers at start.
    pub issuer: String,
    /// Every issuer a request may pick, `issuer` first.
    pub issuers: Vec<String>,
    /// Offered only while its issuer exists (see `optional_issuer` in certs/README.md).
    pub optional_issuer: bool,
    /// The distinguishing ID SM2 requests under this profile are signed with.
    pub sm2_id: String,
    /// Dual certificates may be issued under it (`IssueDualCertificate`).
    pub dual: bool,
}

impl Profile {
    /// Parses and validates one profile file; errors name the source and the key.
    pub fn parse(name: &str, source: &str, text: &str) -> Result<Self> {
        let err =
            |key: &str, reason: String| Error::Config(format!("{source}: key `{key}`: {reason}"));
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::Config(format!(
                "{source}: profile name {name:?} must be lowercase letters, digits and '-'"
            )));
        }
        let file: ProfileFile =
            toml::from_str(text).map_err(|e| Error::Config(format!("{source}: {e}")))?;
        let key_algorithms = file
            .key_algorithms
            .iter()
            .map(|a| {
                KeyAlg::parse(a).ok_or_else(|| {
                    let known: Vec<_> = KeyAlg::ALL.iter().map(|k| k.name()).collect();
                    err(
                        "key_algorithms",
                        format!("unknown algorithm {a:?} (known: {})", known.join(", ")),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if key_algorithms.is_empty() {
            return Err(err("key_algorithms", "at least one algorithm".into()));
        }
        if file.max_validity_days == 0 || file.max_validity_days > 3650 {
            return Err(err("max_validity_days", "must be 1 to 3650".into()));
        }
        if file.default_validity_days == 0 || file.default_validity_days > file.max_validity_days {
            return Err(err(
                "default_validity_days",
                "must be 1 to max_validity_days".into(),
            ));
        }
        let key_usages = file
            .key_usages
            .iter()
            .map(|u| {
                KeyUsage::parse(u).ok_or_else(|| {
                    err("key_usages", format!(
                        "{u:?} is not an end-entity key usage (digitalSignature, contentCommitment, keyEncipherment, dataEncipherment, keyAgreement)"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if key_usages.is_empty() {
            return Err(err("key_usages", "at least one key usage".into()));
        }
        let extended_key_usages = file
            .extended_key_usages
            .iter()
            .map(|e| {
                Eku::parse(e).ok_or_else(|| {
                    err(
                        "extended_key_usages",
                        format!("{e:?} is neither a known purpose nor a dotted OID"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if extended_key_usages.is_empty() {
            return Err(err(
                "extended_key_usages",
                "at least one extended key usage".into(),
            ));
        }
        if file.san.min > file.san.max {
            return Err(err("san.min", "larger than san.max".into()));
        }
        let mut issuers = vec![file.issuer.clone()];
        for i in file.issuers {
            if !issuers.contains(&i) {
                issuers.push(i);
            }
        }
        if file.sm2_id.is_empty() || file.sm2_id.len() > 8191 || !file.sm2_id.is_ascii() {
            return Err(err(
                "sm2_id",
                "1 to 8191 ASCII characters (default 1234567812345678)".into(),
            ));
        }
        for (key, i) in std::iter::once(("issuer", &file.issuer))
            .chain(issuers.iter().skip(1).map(|i| ("issuers", i)))
        {
            if i.is_empty()
                || !i
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(err(
                    key,
                    format!("{i:?} must be lowercase letters, digits and '-'"),
                ));
            }
        }
        Ok(Profile {
            name: name.into(),
            description: file.description,
            key_algorithms,
            max_validity_days: file.max_validity_days,
            default_validity_days: file.default_validity_days,
            key_usages,
            extended_key_usages,
            subject: file.subject,
            san: file.san,
            ocsp_no_check: file.ocsp_no_check,
            critical_eku: file.critical_eku,
            issuer: file.issuer,
            issuers,
            optional_issuer: file.optional_issuer,
            sm2_id: file.sm2_id,
            dual: file.dual,
        })
    }
}

impl Profile {
    /// The signing half of a dual pair: digitalSignature and contentCommitment
    /// (non-repudiation: the subscriber's own key, Electronic Signature Law art. 13).
    pub fn dual_signing(&self) -> Profile {
        Profile {
            key_usages: vec![KeyUsage::DigitalSignature, KeyUsage::ContentCommitment],
            ..self.clone()
        }
    }

    /// The encryption half of a dual pair for a key of `key`: keyEncipherment and
    /// dataEncipherment for keys that encrypt (SM2; GM/T 0015 adds keyAgreement), keyAgreement
    /// for ECDH keys; emailProtection (encrypted mail and documents) as the purpose.
    pub fn dual_encryption(&self, key: crate::core::keys::KeyAlg) -> Profile {
        let key_usages = if key.enciphers() {
            vec![
                KeyUsage::KeyEncipherment,
                KeyUsage::DataEncipherment,
                KeyUsage::KeyAgreement,
            ]
        } else {
            vec![KeyUsage::KeyAgreement]
        };
        Profile {
            key_usages,
            extended_key_usages: vec![Eku {
                name: "emailProtection".into(),
                arcs: vec![1, 3, 6, 1, 5, 5, 7, 3, 4],
            }],
            ..self.clone()
        }
    }

    /// The issuer a request signs under: the one it names, if this profile allows it, else
    /// the profile's own.
    pub fn issuer_for<'a>(&'a self, requested: &'a str) -> Result<&'a str> {
        if requested.is_empty() {
            return Ok(&self.issuer);
        }
        if self.issuers.iter().any(|i| i == requested) {
            Ok(requested)
        } else {
            Err(Error::field(
                "issuer",
                format!(
                    "profile {} signs under {} only",
                    self.name,
                    self.issuers.join(", ")
                ),
            ))
        }
    }
}

/// The set of profiles a server issues under.
#[derive(Clone, Debug)]
pub struct Profiles {
    by_name: BTreeMap<String, Profile>,
    /// SHA-256 over every profile's name and text: what the audit log records at start.
    fingerprint: String,
}

fn fingerprint<'a>(texts: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (name, text) in texts {
        ctx.update(name.as_bytes());
        ctx.update(&[0]);
        ctx.update(text.as_bytes());
        ctx.update(&[0]);
    }
    hex::encode(ctx.finish())
}

impl Profiles {
    /// The profiles compiled into ecca.
    pub fn embedded() -> Result<Self> {
        let mut by_name = BTreeMap::new();
        for (name, text) in EMBEDDED {
            let source = format!("certs/profiles/{name}.toml (embedded)");
            by_name.insert(name.to_string(), Profile::parse(name, &source, text)?);
        }
        let fingerprint = fingerprint(EMBEDDED.iter().copied());
        Ok(Profiles {
            by_name,
            fingerprint,
        })
    }

    /// Profiles from (name, where it came from, TOML text); the caller reads the files.
    pub fn from_texts(mut texts: Vec<(String, String, String)>) -> Result<Self> {
        texts.sort();
        let mut by_name = BTreeMap::new();
        for (name, source, text) in &texts {
            by_name.insert(name.clone(), Profile::parse(name, source, text)?);
        }
        if by_name.is_empty() {
            return Err(Error::Config("no *.toml profiles found".into()));
        }
        let fingerprint = fingerprint(texts.iter().map(|(n, _, t)| (n.as_str(), t.as_str())));
        Ok(Profiles {
            by_name,
            fingerprint,
        })
    }

    /// SHA-256 over the profiles' names and texts.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Looks a profile up by name.
    pub fn get(&self, name: &str) -> Result<&Profile> {
        self.by_name
            .get(name)
            .ok_or_else(|| Error::UnknownProfile(name.into()))
    }

    /// All profiles, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_profiles_are_valid() {
        let p = Profiles::embedded().unwrap();
        for name in [
            "server-tls",
            "client-tls",
            "merchant-ov",
            "document-signing",
        ] {
            p.get(name).unwrap();
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let text = format!("{}\nsurprise = 1\n", EMBEDDED[0].1);
        let err = Profile::parse("x", "x.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml") && err.contains("surprise"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let text = EMBEDDED[0]
            .1
            .replace("\"digitalSignature\"", "\"keyCertSign\"");
        let err = Profile::parse("x", "x.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.toml") && err.contains("key_usages"),
            "{err}"
        );
        let text = EMBEDDED[0].1.replace("\"p256\"", "\"p521\"");
        let err = Profile::parse("x", "x.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("key_algorithms") && err.contains("p521"),
            "{err}"
        );
    }
}
