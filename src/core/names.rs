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
    if rest
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "{name:?}: the last label is all digits (no such top-level domain; an address goes into an IP name)"
        ));
    }
    if lower.starts_with("*.") && is_public_suffix(rest, true) {
        return Err(format!(
            "{name:?}: a wildcard directly under a public suffix would cover every domain registered there"
        ));
    }
    Ok(lower)
}

/// True if `name` (lowercase, no wildcard) is itself a public suffix such as `com` or
/// `com.cn` (ICANN section of the Public Suffix List; with `include_private`, also suffixes
/// such as `github.io` from its private section).
pub fn is_public_suffix(name: &str, include_private: bool) -> bool {
    let name = name.trim_end_matches('.');
    match psl::suffix(name.as_bytes()) {
        Some(s) if s.as_bytes() == name.as_bytes() => match s.typ() {
            Some(psl::Type::Icann) => true,
            Some(psl::Type::Private) => include_private,
            None => false,
        },
        _ => false,
    }
}

/// Refuses characters that make a text value display as something it is not: controls,
/// bidirectional overrides and isolates, zero-width and other invisible format characters,
/// line and paragraph separators.
pub fn text_value(v: &str) -> Result<(), String> {
    let invisible = |c: char| {
        c.is_control()
            || matches!(c as u32,
                0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5 | 0x180B..=0x180F
                | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
                | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFFB | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
    };
    match v.chars().find(|c| invisible(*c)) {
        Some(c) => Err(format!(
            "contains U+{:04X}, an invisible, control or direction-changing character",
            c as u32
        )),
        None => Ok(()),
    }
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
        // Public-suffix wildcards and all-numeric top-level labels.
        assert!(dns_name("*.com.cn", true).is_err());
        assert!(dns_name("*.com", true).is_err());
        assert!(dns_name("*.github.io", true).is_err());
        assert!(dns_name("*.shop.com.cn", true).is_ok());
        assert!(dns_name("1.2.3.4", false).is_err());
        assert!(dns_name("shop.123", false).is_err());
        assert!(dns_name("123.example.cn", false).is_ok());
    }

    #[test]
    fn invisible_characters_are_refused() {
        assert!(text_value("Example Trading Co., Ltd.").is_ok());
        assert!(text_value("示例商贸有限公司").is_ok());
        for bad in [
            "shop\u{202E}gnp.exe",
            "sho\u{200B}p",
            "a\u{2066}b",
            "x\u{FEFF}",
            "a\nb",
        ] {
            assert!(text_value(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(email("Ops@Shop.Example").unwrap(), "Ops@shop.example");
        assert!(email("no-at-sign").is_err());
        assert!(email("@example.com").is_err());
    }
}
