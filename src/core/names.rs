//! Syntax of the names ecca puts into certificates (RFC 5280 §4.2.1.6, RFC 1034 preferred syntax).

/// Validates and normalises (lowercase) a DNS name. A leading "*." label is allowed only when
/// `allow_wildcard`.
pub fn dns_name(name: &str, allow_wildcard: bool) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    let rest = match lower.strip_prefix("*.") {
        Some(rest) if allow_wildcard => rest,
        Some(_) => {
            return Err(format!(
                "{name:?}: wildcard names are not allowed by this profile"
            ));
        }
        None => lower.as_str(),
    };
    if rest.is_empty() || lower.len() > 253 {
        return Err(format!("{name:?}: a DNS name has 1 to 253 characters"));
    }
    if !rest.contains('.') {
        return Err(format!(
            "{name:?}: a DNS name needs at least two labels (e.g. shop.example)"
        ));
    }
    dns_syntax(rest)?;
    Ok(lower)
}

/// Checks the label syntax of a DNS name (no wildcard, single labels allowed).
pub fn dns_syntax(name: &str) -> Result<(), String> {
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name:?}: each label has 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "{name:?}: only letters, digits and '-' are allowed in a label (IDNs in A-label form)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("{name:?}: a label cannot start or end with '-'"));
        }
    }
    Ok(())
}

/// Validates an email address (RFC 5321 mailbox, ASCII only).
pub fn email(addr: &str) -> Result<String, String> {
    let (local, domain) = addr
        .rsplit_once('@')
        .ok_or_else(|| format!("{addr:?}: an email address has the form local@domain"))?;
    if local.is_empty()
        || local.len() > 64
        || !local.bytes().all(|b| b.is_ascii_graphic() && b != b'@')
    {
        return Err(format!("{addr:?}: invalid local part"));
    }
    let domain = dns_name(domain, false)?;
    Ok(format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert_eq!(
            dns_name("Shop.Example.COM", false).unwrap(),
            "shop.example.com"
        );
        assert!(dns_name("*.example.com", true).is_ok());
        assert!(dns_name("*.example.com", false).is_err());
        assert!(dns_name("localhost", false).is_err());
        assert!(dns_name("-a.example", false).is_err());
        assert!(dns_name("a..example", false).is_err());
        assert!(dns_name("a_b.example", false).is_err());
        assert!(dns_name(&format!("{}.example", "a".repeat(64)), false).is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(email("Ops@Shop.Example").unwrap(), "Ops@shop.example");
        assert!(email("no-at-sign").is_err());
        assert!(email("@example.com").is_err());
    }
}
