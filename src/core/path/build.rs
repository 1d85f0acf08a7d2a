//! Path building (RFC 4158): a depth-first search over issuer candidates, anchors first,
//! backtracking on failure, within a work budget.
use super::*;

pub(super) struct Search<'a> {
    pub(super) pool: &'a [Cert],
    pub(super) anchors: &'a [Cert],
    pub(super) opts: &'a Options,
    pub(super) candidates: usize,
    pub(super) signatures: usize,
    /// Name-constraint comparisons made so far, across every path tried.
    pub(super) name_checks: usize,
    pub(super) found: Vec<ValidPath>,
    pub(super) reasons: Vec<PathError>,
    pub(super) exhausted: bool,
}

impl Search<'_> {
    pub(super) fn note(&mut self, reason: PathError) {
        if self.reasons.len() < 32 && !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }

    pub(super) fn check_signature(&mut self, child: &Cert, issuer: &Cert) -> bool {
        if self.signatures >= self.opts.budget.max_signatures {
            self.exhausted = true;
            return false;
        }
        self.signatures += 1;
        match signature_ok(child, issuer) {
            Ok(()) => true,
            Err(e) => {
                self.note(PathError::Signature(format!(
                    "{}: {e} ({})",
                    child.subject_text, issuer.subject_text
                )));
                false
            }
        }
    }

    /// Candidates that may have issued `cert`, best first (RFC 4158 §3.5 ordering, simplified).
    pub(super) fn candidates<'c>(&self, cert: &Cert, list: &'c [Cert]) -> Vec<&'c Cert> {
        let mut v: Vec<&Cert> = list
            .iter()
            .filter(|c| cert.issued_by_name(c))
            .filter(|c| match (&cert.aki, &c.ski) {
                (Some(a), Some(s)) => a == s,
                _ => true,
            })
            .collect();
        let t = self.opts.time;
        v.sort_by_key(|c| {
            let key_match = cert.aki.is_some() && cert.aki == c.ski;
            let valid_now = c.not_before <= t && t <= c.not_after;
            (!valid_now, !key_match, std::cmp::Reverse(c.not_after))
        });
        v
    }

    pub(super) fn dfs(&mut self, path: &mut Vec<Cert>) {
        if self.found.len() >= self.opts.budget.max_paths || self.exhausted {
            return;
        }
        let Some(current) = path.last().cloned() else {
            return;
        };
        // An anchor that issued the current certificate completes a path.
        for anchor in self.candidates(&current, self.anchors) {
            if self.bump() && self.check_signature(&current, anchor) {
                let mut full = path.clone();
                full.push(anchor.clone());
                match validate_within(&full, self.opts, &mut self.name_checks) {
                    Ok(()) => self.found.push(ValidPath { certs: full }),
                    Err(reasons) => reasons.into_iter().for_each(|r| self.note(r)),
                }
                if self.name_checks > self.opts.budget.max_name_checks {
                    self.exhausted = true;
                    return;
                }
                if self.found.len() >= self.opts.budget.max_paths {
                    return;
                }
            }
        }
        if path.len() >= self.opts.budget.max_depth {
            self.note(PathError::Budget(format!(
                "path longer than {} certificates abandoned",
                self.opts.budget.max_depth
            )));
            return;
        }
        for cand in self.candidates(&current, self.pool) {
            // RFC 4158 §2.4.2 loop rule: the same subject and key never appear twice.
            if path
                .iter()
                .any(|p| p.subject_norm == cand.subject_norm && p.spki == cand.spki)
            {
                continue;
            }
            if !self.bump() {
                return;
            }
            if !(cand.not_before <= self.opts.time && self.opts.time <= cand.not_after) {
                self.note(PathError::Validity(format!(
                    "{}: candidate issuer is outside its validity period",
                    cand.subject_text
                )));
                continue;
            }
            if !self.check_signature(&current, cand) {
                continue;
            }
            path.push(cand.clone());
            self.dfs(path);
            path.pop();
        }
    }

    pub(super) fn bump(&mut self) -> bool {
        self.candidates += 1;
        if self.candidates > self.opts.budget.max_candidates {
            self.exhausted = true;
            false
        } else {
            true
        }
    }
}

/// Builds paths from `leaf` through `pool` to one of `anchors`, validating each; returns the
/// valid ones (shortest first) or the reasons none was valid.
pub fn build_and_validate(
    leaf: &Cert,
    pool: &[Cert],
    anchors: &[Cert],
    opts: &Options,
) -> Result<Vec<ValidPath>, Failure> {
    let mut s = Search {
        pool,
        anchors,
        opts,
        candidates: 0,
        signatures: 0,
        name_checks: 0,
        found: Vec::new(),
        reasons: Vec::new(),
        exhausted: false,
    };
    // A leaf that is itself a trust anchor is trusted directly (within its validity).
    if anchors.iter().any(|a| a.der == leaf.der) {
        if !(leaf.not_before <= opts.time && opts.time <= leaf.not_after) {
            return Err(Failure {
                reasons: vec![PathError::Validity(format!(
                    "{}: trust anchor is not valid at the validation time",
                    leaf.subject_text
                ))],
            });
        }
        return Ok(vec![ValidPath {
            certs: vec![leaf.clone()],
        }]);
    }
    s.dfs(&mut vec![leaf.clone()]);
    if s.exhausted {
        s.note(PathError::Budget(
            "work budget exhausted (too many candidates or signatures); path search stopped".into(),
        ));
    }
    if s.found.is_empty() {
        if s.reasons.is_empty() {
            s.reasons.push(PathError::NoPath(format!(
                "no issuer of {:?} found among the candidates and trust anchors",
                leaf.subject_text
            )));
        }
        return Err(Failure { reasons: s.reasons });
    }
    s.found.sort_by_key(|p| p.certs.len());
    Ok(s.found)
}
