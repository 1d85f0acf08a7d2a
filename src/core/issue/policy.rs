//! What a profile lets into a certificate: names and validity.
use std::net::IpAddr;

use time::{Duration, OffsetDateTime};

use crate::core::csr::{Attr, VerifiedCsr};
use crate::core::error::{Error, Result};
use crate::core::names;
use crate::core::profile::{Presence, Profile};
use crate::core::uscc;

/// Certificates are backdated this much to tolerate relying parties' clock skew.
pub const BACKDATE: Duration = Duration::minutes(5);

/// The names a certificate will carry, after the profile has approved them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// Subject attributes in certificate order.
    pub subject: Vec<(Attr, String)>,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub emails: Vec<String>,
}

impl Names {
    /// RFC 4514-style display of the subject (most significant last, as openssl prints reversed).
    pub fn subject_string(&self) -> String {
        self.subject
            .iter()
            .map(|(a, v)| format!("{}={}", a.short(), v.replace(',', "\\,")))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// SANs as "DNS:x", "IP:x", "email:x".
    pub fn san_strings(&self) -> Vec<String> {
        let dns = self.dns.iter().map(|d| format!("DNS:{d}"));
        let ips = self.ips.iter().map(|i| format!("IP:{i}"));
        let emails = self.emails.iter().map(|e| format!("email:{e}"));
        dns.chain(ips).chain(emails).collect()
    }
}

fn presence(rules: &crate::core::profile::SubjectRules, attr: Attr) -> Presence {
    match attr {
        Attr::CommonName => rules.common_name,
        Attr::Organization => rules.organization,
        Attr::OrganizationalUnit => rules.organizational_unit,
        Attr::Country => rules.country,
        Attr::State => rules.state,
        Attr::Locality => rules.locality,
        Attr::SerialNumber => rules.uscc,
    }
}

const ALL_ATTRS: [Attr; 7] = [
    Attr::Country,
    Attr::State,
    Attr::Locality,
    Attr::Organization,
    Attr::OrganizationalUnit,
    Attr::SerialNumber,
    Attr::CommonName,
];

/// Applies a profile's name rules to a verified CSR.
pub fn approve_names(profile: &Profile, csr: &VerifiedCsr) -> Result<Names> {
    let pname = &profile.name;
    if !profile.key_algorithms.contains(&csr.key_alg) {
        let allowed: Vec<_> = profile.key_algorithms.iter().map(|a| a.name()).collect();
        return Err(Error::field(
            "public key",
            format!(
                "{} is not allowed by profile {pname} (allowed: {})",
                csr.key_alg,
                allowed.join(", ")
            ),
        ));
    }
    let mut names = Names::default();
    for attr in ALL_ATTRS {
        let field = format!("subject {}", attr.short());
        let value = csr
            .subject
            .iter()
            .find(|(a, _)| *a == attr)
            .map(|(_, v)| v.trim());
        match (presence(&profile.subject, attr), value) {
            (Presence::Forbidden, Some(_)) => {
                return Err(Error::field(
                    field,
                    format!("not allowed by profile {pname}"),
                ));
            }
            (Presence::Required, None) => {
                return Err(Error::field(field, format!("required by profile {pname}")));
            }
            (_, None) => continue,
            (_, Some(v)) => {
                if v.is_empty() || v.chars().count() > attr.max_len() {
                    return Err(Error::field(
                        field,
                        format!("must have 1 to {} characters", attr.max_len()),
                    ));
                }
                names::text_value(v).map_err(|e| Error::field(field.clone(), e))?;
                if attr == Attr::Country
                    && !(v.len() == 2 && v.bytes().all(|b| b.is_ascii_uppercase()))
                {
                    return Err(Error::field(
                        field,
                        "must be a two-letter ISO 3166 code such as CN",
                    ));
                }
                if attr == Attr::SerialNumber {
                    uscc::validate(v).map_err(|e| {
                        Error::field("subject serialNumber (Unified Social Credit Code)", e)
                    })?;
                }
                names.subject.push((attr, v.to_string()));
            }
        }
    }

    let rules = &profile.san;
    let kind_check = |kind: &str, p: Presence, count: usize| -> Result<()> {
        match (p, count) {
            (Presence::Forbidden, n) if n > 0 => Err(Error::field(
                "subjectAltName",
                format!("{kind} names are not allowed by profile {pname}"),
            )),
            (Presence::Required, 0) => Err(Error::field(
                "subjectAltName",
                format!("at least one {kind} name is required by profile {pname}"),
            )),
            _ => Ok(()),
        }
    };
    kind_check("DNS", rules.dns, csr.dns.len())?;
    kind_check("IP", rules.ip, csr.ips.len())?;
    kind_check("email", rules.email, csr.emails.len())?;
    for d in &csr.dns {
        let d = names::dns_name(d, rules.wildcard)
            .map_err(|e| Error::field("subjectAltName DNS", e))?;
        if !names.dns.contains(&d) {
            names.dns.push(d);
        }
    }
    for ip in &csr.ips {
        if !names.ips.contains(ip) {
            names.ips.push(*ip);
        }
    }
    for e in &csr.emails {
        let e = names::email(e).map_err(|e| Error::field("subjectAltName email", e))?;
        if !names.emails.contains(&e) {
            names.emails.push(e);
        }
    }
    let total = names.dns.len() + names.ips.len() + names.emails.len();
    if total < rules.min {
        return Err(Error::field(
            "subjectAltName",
            format!(
                "profile {pname} needs at least {} name(s) (DNS or IP)",
                rules.min
            ),
        ));
    }
    if total > rules.max {
        return Err(Error::field(
            "subjectAltName",
            format!("at most {} names per certificate", rules.max),
        ));
    }
    if rules.common_name_in_san
        && let Some((_, cn)) = names.subject.iter().find(|(a, _)| *a == Attr::CommonName)
    {
        let cn_l = cn.to_ascii_lowercase();
        let in_san = names.dns.contains(&cn_l) || names.ips.iter().any(|ip| ip.to_string() == *cn);
        if !in_san {
            return Err(Error::field(
                "subject CN",
                format!("{cn:?} must also be one of the subjectAltNames"),
            ));
        }
    }
    Ok(names)
}

/// The validity window: the profile default or the request, clamped to the profile maximum and
/// to the issuer's own notAfter.
pub fn validity(
    profile: &Profile,
    requested_days: Option<u32>,
    now: OffsetDateTime,
    issuer_not_after: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let (not_before, wanted) = intended(profile, requested_days, now)?;
    let not_after = wanted.min(issuer_not_after);
    if not_after <= now {
        return Err(Error::field(
            "validity",
            "the issuing CA expires too soon to issue",
        ));
    }
    Ok((not_before, not_after))
}

/// The validity a certificate issued now would have, before its issuer's expiry caps it.
pub fn intended(
    profile: &Profile,
    requested_days: Option<u32>,
    now: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let days = match requested_days {
        Some(0) => return Err(Error::field("validity_days", "must be at least 1")),
        Some(d) => d.min(profile.max_validity_days),
        None => profile.default_validity_days,
    };
    let not_before = (now - BACKDATE).replace_nanosecond(0).unwrap_or(now);
    Ok((not_before, not_before + Duration::days(days.into())))
}
