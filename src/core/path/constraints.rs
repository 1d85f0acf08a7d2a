//! Name constraints (RFC 5280 §4.2.1.10, §6.1.4 (g)): whether a name is within a subtree.
use super::*;

pub(super) fn dns_within(name: &str, base: &str) -> bool {
    let base = base.trim_start_matches('.');
    base.is_empty() || name == base || name.ends_with(&format!(".{base}"))
}

pub(super) fn email_within(addr: &str, base: &str) -> bool {
    if base.contains('@') {
        return addr == base;
    }
    let Some((_, host)) = addr.rsplit_once('@') else {
        return false;
    };
    match base.strip_prefix('.') {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == base,
    }
}

pub(super) fn uri_host(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

pub(super) fn uri_within(uri: &str, base: &str) -> bool {
    let Some(host) = uri_host(uri) else {
        return false;
    };
    match base.strip_prefix('.') {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == base,
    }
}

pub(super) fn ip_within(ip: &[u8], addr: &[u8], mask: &[u8]) -> bool {
    ip.len() == addr.len()
        && ip
            .iter()
            .zip(addr)
            .zip(mask)
            .all(|((i, a), m)| i & m == a & m)
}

pub(super) fn dir_within(name: &[Rdn], base: &[Rdn]) -> bool {
    base.len() <= name.len() && name[..base.len()] == *base
}

/// Does `tree` constrain names of this kind, and is `name` inside it?
pub(super) fn within(tree: &Subtree, kind: &Subtree) -> Option<bool> {
    Some(match (tree, kind) {
        (Subtree::Dns(b), Subtree::Dns(n)) => dns_within(n, b),
        (Subtree::Email(b), Subtree::Email(n)) => email_within(n, b),
        (Subtree::Uri(b), Subtree::Uri(n)) => uri_within(n, b),
        (Subtree::Ip { addr, mask }, Subtree::Ip { addr: n, .. }) => ip_within(n, addr, mask),
        (Subtree::Dir(b), Subtree::Dir(n)) => dir_within(n, b),
        _ => return None,
    })
}

pub(super) fn check_names(
    names: &Names,
    permitted: &[Vec<Subtree>],
    excluded: &[Subtree],
    name_checks: &mut usize,
    opts: &Options,
) -> Result<(), String> {
    // Every name meets every subtree once: refuse up front what would exceed the budget.
    let subtrees = excluded.len() + permitted.iter().map(Vec::len).sum::<usize>();
    *name_checks = name_checks.saturating_add(names.count().saturating_mul(subtrees));
    if *name_checks > opts.budget.max_name_checks {
        return Err(format!(
            "name-constraint checks exceed the work budget ({} comparisons); refused",
            opts.budget.max_name_checks
        ));
    }
    let mut all: Vec<Subtree> = Vec::new();
    all.extend(names.dns.iter().map(|d| Subtree::Dns(d.clone())));
    all.extend(names.emails.iter().map(|e| Subtree::Email(e.clone())));
    all.extend(names.uris.iter().map(|u| Subtree::Uri(u.clone())));
    all.extend(names.ips.iter().map(|ip| Subtree::Ip {
        addr: ip.clone(),
        mask: Vec::new(),
    }));
    // An empty subject DN is not constrained by directoryName subtrees.
    all.extend(
        names
            .dirs
            .iter()
            .filter(|d| !d.is_empty())
            .map(|d| Subtree::Dir(d.clone())),
    );
    all.extend(names.others.iter().map(|t| Subtree::Other(*t)));
    for name in &all {
        if excluded
            .iter()
            .any(|t| within(t, name) != Some(false) && kind_of(t) == kind_of(name))
        {
            return Err(format!("name {} is in an excluded subtree", show(name)));
        }
        for set in permitted {
            let applicable: Vec<Option<bool>> = set
                .iter()
                .filter(|t| kind_of(t) == kind_of(name))
                .map(|t| within(t, name))
                .collect();
            if !applicable.is_empty() && !applicable.contains(&Some(true)) {
                return Err(format!(
                    "name {} is outside the permitted subtrees",
                    show(name)
                ));
            }
        }
    }
    Ok(())
}

/// The name form of a subtree or name (its GeneralName tag).
pub(super) fn kind_of(s: &Subtree) -> u32 {
    match s {
        Subtree::Email(_) => 1,
        Subtree::Dns(_) => 2,
        Subtree::Dir(_) => 4,
        Subtree::Uri(_) => 6,
        Subtree::Ip { .. } => 7,
        Subtree::Other(t) => *t,
    }
}

pub(super) fn show(s: &Subtree) -> String {
    match s {
        Subtree::Dns(d) => format!("DNS:{d}"),
        Subtree::Email(e) => format!("email:{e}"),
        Subtree::Uri(u) => format!("URI:{u}"),
        Subtree::Ip { addr, .. } => match addr.len() {
            4 => format!(
                "IP:{}",
                IpAddr::from(<[u8; 4]>::try_from(addr.as_slice()).unwrap_or_default())
            ),
            16 => format!(
                "IP:{}",
                IpAddr::from(<[u8; 16]>::try_from(addr.as_slice()).unwrap_or_default())
            ),
            _ => "IP:?".into(),
        },
        Subtree::Dir(d) => format!("DirName:{d:?}"),
        Subtree::Other(t) => format!("name of GeneralName type [{t}]"),
    }
}
