//! The valid_policy_tree of RFC 5280 §6.1.2–§6.1.5 (and the RFC 9618 bound on its size).
use super::*;

/// A node of the valid_policy_tree (RFC 5280 §6.1.2 (a)); qualifiers are not kept.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub(super) policy: String,
    pub(super) expected: BTreeSet<String>,
    pub(super) parent: usize,
}

/// RFC 5280 §6.1 policy processing state.
pub(super) struct PolicyState {
    /// Certificates in the path (anchor excluded).
    pub(super) n: usize,
    /// Levels of the tree; None once the tree is NULL.
    pub(super) tree: Option<Vec<Vec<Node>>>,
    pub(super) explicit: usize,
    pub(super) mapping: usize,
    pub(super) any: usize,
}

impl PolicyState {
    pub(super) fn new(n: usize, opts: &Options) -> Self {
        let root = Node {
            policy: ANY_POLICY.into(),
            expected: [ANY_POLICY.to_string()].into(),
            parent: 0,
        };
        let start = |flag: bool| if flag { 0 } else { n + 1 };
        PolicyState {
            n,
            tree: Some(vec![vec![root]]),
            explicit: start(opts.initial_explicit_policy),
            mapping: start(opts.initial_policy_mapping_inhibit),
            any: start(opts.initial_any_policy_inhibit),
        }
    }

    /// §6.1.3 (d)-(f) for certificate i.
    pub(super) fn process(
        &mut self,
        cert: &Cert,
        i: usize,
        max_nodes: usize,
    ) -> Result<(), String> {
        match (&cert.policies, self.tree.as_mut()) {
            (Some(policies), Some(tree)) => {
                let prev = &tree[i - 1];
                let mut level: Vec<Node> = Vec::new();
                for p in policies.iter().filter(|p| *p != ANY_POLICY) {
                    let matched: Vec<usize> = (0..prev.len())
                        .filter(|&k| prev[k].expected.contains(p))
                        .collect();
                    let parents = if matched.is_empty() {
                        (0..prev.len())
                            .filter(|&k| prev[k].policy == ANY_POLICY)
                            .collect()
                    } else {
                        matched
                    };
                    for parent in parents {
                        level.push(Node {
                            policy: p.clone(),
                            expected: [p.clone()].into(),
                            parent,
                        });
                    }
                }
                let allow_any = self.any > 0 || (i < self.n && cert.self_issued());
                if policies.iter().any(|p| p == ANY_POLICY) && allow_any {
                    for (k, node) in prev.iter().enumerate() {
                        for e in &node.expected {
                            let exists = level.iter().any(|c| c.parent == k && c.policy == *e);
                            if !exists {
                                level.push(Node {
                                    policy: e.clone(),
                                    expected: [e.clone()].into(),
                                    parent: k,
                                });
                            }
                        }
                    }
                }
                if level.len() > max_nodes {
                    return Err("certificate policy tree too large".into());
                }
                tree.truncate(i);
                tree.push(level);
                prune(tree);
                if tree.last().is_none_or(Vec::is_empty) {
                    self.tree = None;
                }
            }
            _ => self.tree = None,
        }
        if self.explicit == 0 && self.tree.is_none() {
            return Err("no valid certificate policy, but an explicit policy is required".into());
        }
        Ok(())
    }

    /// §6.1.4 (a), (b), (h)-(j).
    pub(super) fn prepare(&mut self, cert: &Cert) -> Result<(), String> {
        if let Some(maps) = &cert.mappings {
            if maps.iter().any(|(i, s)| i == ANY_POLICY || s == ANY_POLICY) {
                return Err("policy mapping to or from anyPolicy".into());
            }
            if let Some(tree) = self.tree.as_mut() {
                let depth = tree.len() - 1;
                let issuer_policies: BTreeSet<&String> = maps.iter().map(|(i, _)| i).collect();
                for idp in issuer_policies {
                    let subjects: BTreeSet<String> = maps
                        .iter()
                        .filter(|(i, _)| i == idp)
                        .map(|(_, s)| s.clone())
                        .collect();
                    if self.mapping > 0 {
                        let level = &mut tree[depth];
                        let mut hit = false;
                        for node in level.iter_mut().filter(|n| n.policy == *idp) {
                            node.expected = subjects.clone();
                            hit = true;
                        }
                        if !hit
                            && let Some(any) =
                                level.iter().find(|n| n.policy == ANY_POLICY).cloned()
                        {
                            level.push(Node {
                                policy: idp.clone(),
                                expected: subjects,
                                parent: any.parent,
                            });
                        }
                    } else {
                        tree[depth].retain(|n| n.policy != *idp);
                        prune(tree);
                        if tree.last().is_none_or(Vec::is_empty) {
                            self.tree = None;
                            break;
                        }
                    }
                }
            }
        }
        if !cert.self_issued() {
            self.explicit = self.explicit.saturating_sub(1);
            self.mapping = self.mapping.saturating_sub(1);
            self.any = self.any.saturating_sub(1);
        }
        if let Some(r) = cert.require_explicit {
            self.explicit = self.explicit.min(r as usize);
        }
        if let Some(q) = cert.inhibit_mapping {
            self.mapping = self.mapping.min(q as usize);
        }
        if let Some(a) = cert.inhibit_any {
            self.any = self.any.min(a as usize);
        }
        Ok(())
    }

    /// §6.1.5 (a), (b), (g).
    pub(super) fn finish(&mut self, leaf: &Cert, opts: &Options) -> Result<(), String> {
        self.explicit = self.explicit.saturating_sub(1);
        if leaf.require_explicit == Some(0) {
            self.explicit = 0;
        }
        let user: Vec<&String> = opts
            .initial_policies
            .iter()
            .filter(|p| *p != ANY_POLICY)
            .collect();
        if let (Some(tree), false) = (self.tree.as_ref(), user.is_empty()) {
            // The intersection with the user-initial-policy-set: keep leaf-level policies the
            // user accepts (anyPolicy at the leaf level accepts them all).
            let last = tree.last().map(Vec::as_slice).unwrap_or_default();
            let ok = last
                .iter()
                .any(|n| n.policy == ANY_POLICY || user.contains(&&n.policy));
            if !ok {
                self.tree = None;
            }
        }
        if self.explicit == 0 && self.tree.is_none() {
            return Err(
                "no acceptable certificate policy on the path (an explicit policy is required)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Removes nodes without children, from the second-deepest level up.
pub(super) fn prune(tree: &mut [Vec<Node>]) {
    for depth in (0..tree.len().saturating_sub(1)).rev() {
        let (upper, lower) = tree.split_at_mut(depth + 1);
        let children = &lower[0];
        let level = &mut upper[depth];
        let keep: Vec<bool> = (0..level.len())
            .map(|k| children.iter().any(|c| c.parent == k))
            .collect();
        // Re-index the children's parents after removal.
        let mut new_index = vec![usize::MAX; level.len()];
        let mut next = 0;
        for (k, kept) in keep.iter().enumerate() {
            if *kept {
                new_index[k] = next;
                next += 1;
            }
        }
        let mut k = 0;
        level.retain(|_| {
            let r = keep[k];
            k += 1;
            r
        });
        for c in lower[0].iter_mut() {
            c.parent = new_index[c.parent];
        }
    }
}
