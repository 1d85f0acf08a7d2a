//! Path validation (RFC 5280 §6.1) over one candidate path, anchor first.
use super::*;

/// RFC 5280 §6.1 on a complete path (leaf first, anchor last), with the trust anchor's own
/// constraints applied (RFC 5937) and the certificate profile checked (`core::certcheck`).
pub fn validate(path: &[Cert], opts: &Options) -> Result<(), Vec<PathError>> {
    validate_within(path, opts, &mut 0)
}

pub(super) fn validate_within(
    path: &[Cert],
    opts: &Options,
    name_checks: &mut usize,
) -> Result<(), Vec<PathError>> {
    let Some(anchor) = path.last() else {
        return Err(vec![PathError::NoPath("empty path".into())]);
    };
    let mut reasons = Vec::new();
    // Processed from the certificate the anchor issued down to the leaf: certs[0] is the first.
    let certs: Vec<&Cert> = path[..path.len() - 1].iter().rev().collect();
    let n = certs.len();
    reasons.extend(
        certcheck::anchor(anchor, opts.purpose, opts.time)
            .into_iter()
            .map(PathError::Profile),
    );
    // The anchor's path length and name constraints bind the whole path (RFC 5937 §3).
    let mut max_path_len = anchor.path_len.map_or(n, |p| n.min(p as usize));
    let mut permitted: Vec<Vec<Subtree>> = anchor.permitted.iter().cloned().collect();
    let mut excluded: Vec<Subtree> = anchor.excluded.clone();
    let mut policy = PolicyState::new(n, opts);

    for (idx, cert) in certs.iter().enumerate() {
        let i = idx + 1;
        let is_leaf = i == n;
        let who = &cert.subject_text;
        let position = if is_leaf {
            certcheck::Position::Leaf
        } else {
            certcheck::Position::Intermediate
        };
        reasons.extend(
            certcheck::profile(cert, position, opts.purpose)
                .into_iter()
                .map(PathError::Profile),
        );
        if !(cert.not_before <= opts.time && opts.time <= cert.not_after) {
            reasons.push(PathError::Validity(format!(
                "{who}: not valid at the validation time"
            )));
        }
        if let Some(u) = cert.unknown_critical.first() {
            reasons.push(PathError::Profile(format!(
                "{who}: unrecognised critical extension {u}"
            )));
        }
        // Name constraints apply to every certificate after the one that set them, except
        // self-issued intermediates.
        if is_leaf || !cert.self_issued() {
            if let Err(e) = check_names(&cert.names, &permitted, &excluded, name_checks, opts) {
                reasons.push(PathError::NameConstraints(format!("{who}: {e}")));
            }
        }
        if let Err(e) = policy.process(cert, i, opts.budget.max_policy_nodes) {
            reasons.push(PathError::Policy(format!("{who}: {e}")));
        }
        if is_leaf {
            break;
        }
        // Preparation for the next certificate (§6.1.4).
        if let Err(e) = policy.prepare(cert) {
            reasons.push(PathError::Policy(format!("{who}: {e}")));
        }
        if let Some(p) = &cert.permitted {
            permitted.push(p.clone());
        }
        excluded.extend(cert.excluded.iter().cloned());
        if !cert.is_ca {
            reasons.push(PathError::NotCa(format!(
                "{who}: used as a CA but basicConstraints cA is not set"
            )));
        }
        if !cert.self_issued() {
            if max_path_len == 0 {
                reasons.push(PathError::NotCa(format!(
                    "{who}: path length constraint exceeded"
                )));
            }
            max_path_len = max_path_len.saturating_sub(1);
        }
        if let Some(pl) = cert.path_len {
            max_path_len = max_path_len.min(pl as usize);
        }
        if cert.key_usage.is_some_and(|k| k & KU_KEY_CERT_SIGN == 0) {
            reasons.push(PathError::NotCa(format!(
                "{who}: used as a CA but keyUsage lacks keyCertSign"
            )));
        }
        if let Some(eku) = &cert.eku
            && !eku_allows(eku, opts.purpose)
        {
            reasons.push(PathError::Purpose(format!(
                "{who}: CA's extendedKeyUsage excludes the purpose"
            )));
        }
    }
    if n == 0 {
        return if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        };
    }
    let leaf = certs[n - 1];
    if let Err(e) = policy.finish(leaf, opts) {
        reasons.push(PathError::Policy(e));
    }
    if let Some(eku) = &leaf.eku
        && !eku_allows(eku, opts.purpose)
    {
        reasons.push(PathError::Purpose(format!(
            "{}: extendedKeyUsage does not allow {:?}",
            leaf.subject_text, opts.purpose
        )));
    }
    if opts.purpose == Purpose::Any
        && let Some(e) = eku_chain(&certs)
    {
        reasons.push(PathError::Purpose(e));
    }
    if let Some(name) = &opts.name
        && !name_matches(&leaf.names, name)
    {
        reasons.push(PathError::Purpose(format!(
            "{}: not valid for {name:?}",
            leaf.subject_text
        )));
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Under no particular purpose, the purposes the leaf's EKU names must survive every CA's
/// EKU (as Windows and rustls-webpki chain them): a CA limited to clientAuth does not vouch
/// for a serverAuth leaf.
pub(super) fn eku_chain(certs: &[&Cert]) -> Option<String> {
    let leaf = certs.last()?;
    let wanted: Vec<&String> = leaf
        .eku
        .as_ref()?
        .iter()
        .filter(|e| *e != ANY_EKU)
        .collect();
    if wanted.is_empty() || leaf.eku.as_ref()?.iter().any(|e| e == ANY_EKU) {
        return None;
    }
    for ca in &certs[..certs.len() - 1] {
        if let Some(eku) = &ca.eku
            && !eku.iter().any(|e| e == ANY_EKU || wanted.contains(&e))
        {
            return Some(format!(
                "{}: CA's extendedKeyUsage excludes every purpose of the leaf",
                ca.subject_text
            ));
        }
    }
    None
}

pub(super) fn eku_allows(eku: &[String], purpose: Purpose) -> bool {
    let accepted = purpose.accepted_ekus();
    accepted.is_empty()
        || eku
            .iter()
            .any(|e| e == ANY_EKU || accepted.contains(&e.as_str()))
}

pub(super) fn name_matches(names: &Names, expected: &ExpectedName) -> bool {
    match expected {
        ExpectedName::Dns(d) => {
            let d = d.to_ascii_lowercase();
            names.dns.iter().any(|n| match n.strip_prefix("*.") {
                Some(rest) => d
                    .split_once('.')
                    .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
                None => *n == d,
            })
        }
        ExpectedName::Ip(ip) => {
            let bytes = match ip {
                IpAddr::V4(v) => v.octets().to_vec(),
                IpAddr::V6(v) => v.octets().to_vec(),
            };
            names.ips.contains(&bytes)
        }
        ExpectedName::Email(e) => names.emails.contains(&e.to_ascii_lowercase()),
    }
}
