//! Certification path building (RFC 4158) and validation (RFC 5280 §6), without I/O.
//!
//! From a leaf, a pool of candidate intermediates and cross-certificates, and trust anchors,
//! [`build_and_validate`] searches issuer candidates depth-first (matched by name and by
//! AKI/SKI, anchors first), backtracks when a candidate fails (bad signature, expired, a
//! constraint violated), and returns every valid path it finds within its work budget, shortest
//! first, or the reasons each attempt failed. Revocation is checked by the caller (it needs I/O)
//! on the paths returned here.
//!
//! `model`: the certificate as path processing sees it; `build`: the search; `validate`:
//! RFC 5280 §6.1 over one path; `constraints`: name constraints; `policy`: the policy tree.
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKCS9_EMAIL_ADDRESS;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::X509Name;

use crate::core::certcheck;

mod build;
mod constraints;
mod model;
mod policy;
mod validate;

pub use build::build_and_validate;
use constraints::*;
pub use model::Cert;
use model::*;
pub(crate) use model::{ALLOWED_SIG_ALGS, KU_CRL_SIGN, KU_KEY_CERT_SIGN, KeyKind, Names, Subtree};
use policy::*;
pub use validate::validate;
use validate::*;

/// anyPolicy (2.5.29.32.0).
pub const ANY_POLICY: &str = "2.5.29.32.0";
/// anyExtendedKeyUsage.
const ANY_EKU: &str = "2.5.29.37.0";

/// Limits that keep a hostile pool from looping or exploding.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Most certificates in a path (leaf included, anchor excluded).
    pub max_depth: usize,
    /// Most issuer candidates examined in all.
    pub max_candidates: usize,
    /// Most signature verifications in all.
    pub max_signatures: usize,
    /// Most valid paths collected.
    pub max_paths: usize,
    /// Most nodes in the policy tree at any depth.
    pub max_policy_nodes: usize,
    /// Most name-to-constraint comparisons in all (names x subtrees is quadratic).
    pub max_name_checks: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_depth: 8,
            max_candidates: 512,
            max_signatures: 256,
            max_paths: 4,
            max_policy_nodes: 256,
            max_name_checks: 250_000,
        }
    }
}

/// What the leaf must be good for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    ServerAuth,
    ClientAuth,
    /// Document signing: emailProtection or id-kp-documentSigning.
    DocumentSigning,
    /// RFC 3161 time-stamping (id-kp-timeStamping).
    TimeStamping,
    Any,
}

impl Purpose {
    fn accepted_ekus(self) -> &'static [&'static str] {
        match self {
            Purpose::ServerAuth => &["1.3.6.1.5.5.7.3.1"],
            Purpose::ClientAuth => &["1.3.6.1.5.5.7.3.2"],
            Purpose::DocumentSigning => &["1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.36"],
            Purpose::TimeStamping => &["1.3.6.1.5.5.7.3.8"],
            Purpose::Any => &[],
        }
    }
}

/// A name the leaf must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedName {
    Dns(String),
    Ip(IpAddr),
    Email(String),
}

/// Validation inputs besides the certificates.
#[derive(Clone, Debug)]
pub struct Options {
    /// Validation time, Unix seconds.
    pub time: i64,
    pub purpose: Purpose,
    pub name: Option<ExpectedName>,
    /// User-initial-policy-set; empty means anyPolicy.
    pub initial_policies: Vec<String>,
    pub initial_explicit_policy: bool,
    pub initial_policy_mapping_inhibit: bool,
    pub initial_any_policy_inhibit: bool,
    pub budget: Budget,
}

impl Options {
    pub fn at(time: i64) -> Self {
        Options {
            time,
            purpose: Purpose::Any,
            name: None,
            initial_policies: Vec::new(),
            initial_explicit_policy: false,
            initial_policy_mapping_inhibit: false,
            initial_any_policy_inhibit: false,
            budget: Budget::default(),
        }
    }
}

/// A valid path: the leaf first, the trust anchor last.
#[derive(Clone, Debug)]
pub struct ValidPath {
    pub certs: Vec<Cert>,
}

/// Why validation failed: every reason found, each by the kind of rule that refused.
#[derive(Clone, Debug, Default)]
pub struct Failure {
    pub reasons: Vec<PathError>,
}

impl Failure {
    /// The reasons as text.
    pub fn texts(&self) -> Vec<String> {
        self.reasons.iter().map(ToString::to_string).collect()
    }
}

/// Why a certificate or a path was refused, by the kind of rule (RFC 5280 §6.1 step, or the
/// profile of `core::certcheck`); the text names the certificate and what exactly failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The certificate does not parse, or an extension is malformed.
    #[error("{0}")]
    Malformed(String),
    /// A signature does not verify, or uses an algorithm not accepted.
    #[error("{0}")]
    Signature(String),
    /// A certificate is not valid at the validation time.
    #[error("{0}")]
    Validity(String),
    /// A certificate used as a CA may not be one (basicConstraints, pathLen, keyCertSign).
    #[error("{0}")]
    NotCa(String),
    /// A name is outside the permitted subtrees or inside an excluded one.
    #[error("{0}")]
    NameConstraints(String),
    /// Certificate policy processing failed (§6.1.3–§6.1.5).
    #[error("{0}")]
    Policy(String),
    /// The path does not serve the purpose or the name asked for (EKU, expected name).
    #[error("{0}")]
    Purpose(String),
    /// The certificate profile (RFC 5280 §4, CA/B rules for the purpose) is not met.
    #[error("{0}")]
    Profile(String),
    /// The search stopped at its work budget.
    #[error("{0}")]
    Budget(String),
    /// No path to a trust anchor exists among the certificates given.
    #[error("{0}")]
    NoPath(String),
}
