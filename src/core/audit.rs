//! Verifying the audit log: the hash chain (each entry commits to the previous one) and the CA's
//! signed checkpoints over it. Names the first bad entry.

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub event: String,
    pub object: String,
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// A signed checkpoint of the audit chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub id: i64,
    pub upto_id: i64,
    pub head_hash: Vec<u8>,
    pub at: i64,
    pub signature: Vec<u8>,
}

/// The audit hash: SHA-256 over the previous hash and the entry's fields, length-prefixed.
pub fn audit_hash(
    prev: &[u8],
    id: i64,
    at: i64,
    actor: &str,
    event: &str,
    object: &str,
    detail: &str,
) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev);
    ctx.update(&id.to_be_bytes());
    ctx.update(&at.to_be_bytes());
    for field in [actor, event, object, detail] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    ctx.finish().as_ref().to_vec()
}

/// What a checkpoint signature covers.
pub fn checkpoint_message(upto_id: i64, head_hash: &[u8]) -> Vec<u8> {
    let mut m = b"ecca-audit-checkpoint-v1\0".to_vec();
    m.extend_from_slice(&upto_id.to_be_bytes());
    m.extend_from_slice(head_hash);
    m
}

/// Verifies a checkpoint signature with the key of `signer_cert_der` (the issuing CA).
pub fn checkpoint_signature_ok(signer_cert_der: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(signer_cert_der) else {
        return false;
    };
    let alg: &dyn ring::signature::VerificationAlgorithm =
        match crate::core::keys::KeyAlg::of_spki(cert.public_key()) {
            Ok(crate::core::keys::KeyAlg::P256) => &ring::signature::ECDSA_P256_SHA256_ASN1,
            Ok(crate::core::keys::KeyAlg::P384) => &ring::signature::ECDSA_P384_SHA384_ASN1,
            Ok(crate::core::keys::KeyAlg::Ed25519) => &ring::signature::ED25519,
            _ => return false,
        };
    ring::signature::UnparsedPublicKey::new(alg, &cert.public_key().subject_public_key.data)
        .verify(message, signature)
        .is_ok()
}

/// The result of verifying a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub entries: usize,
    pub checkpoints: usize,
    /// The newest entry a signed checkpoint covers (0: none).
    pub covered: i64,
    /// The first problem, naming the entry; None when the log is intact.
    pub problem: Option<String>,
}

/// Verifies entries (all of them, oldest first) and checkpoints; `verify_sig(message, signature)`
/// checks a checkpoint signature with the CA's key.
pub fn verify(
    entries: &[AuditEntry],
    checkpoints: &[Checkpoint],
    verify_sig: impl Fn(&[u8], &[u8]) -> bool,
) -> Verdict {
    let problem =
        chain_problem(entries).or_else(|| checkpoint_problem(entries, checkpoints, &verify_sig));
    Verdict {
        entries: entries.len(),
        checkpoints: checkpoints.len(),
        covered: checkpoints.last().map_or(0, |c| c.upto_id),
        problem,
    }
}

fn chain_problem(entries: &[AuditEntry]) -> Option<String> {
    let mut prev_hash = vec![0u8; 32];
    for (expected_id, e) in (1..).zip(entries) {
        if e.id != expected_id {
            return Some(if e.id > expected_id {
                format!(
                    "entry {expected_id} is missing (deleted), next present is {}",
                    e.id
                )
            } else {
                format!("entry {} is out of order (expected {expected_id})", e.id)
            });
        }
        if e.prev_hash != prev_hash {
            return Some(format!(
                "entry {}: does not follow entry {} (inserted, replaced or reordered)",
                e.id,
                e.id - 1
            ));
        }
        let h = audit_hash(
            &e.prev_hash,
            e.id,
            e.at,
            &e.actor,
            &e.event,
            &e.object,
            &e.detail,
        );
        if h != e.hash {
            return Some(format!(
                "entry {}: content altered (its hash does not match)",
                e.id
            ));
        }
        prev_hash = e.hash.clone();
    }
    None
}

fn checkpoint_problem(
    entries: &[AuditEntry],
    checkpoints: &[Checkpoint],
    verify_sig: &impl Fn(&[u8], &[u8]) -> bool,
) -> Option<String> {
    let last = entries.last().map_or(0, |e| e.id);
    for c in checkpoints {
        if !verify_sig(&checkpoint_message(c.upto_id, &c.head_hash), &c.signature) {
            return Some(format!(
                "checkpoint {}: signature does not verify with the CA's key",
                c.id
            ));
        }
        if c.upto_id > last {
            return Some(format!(
                "entries {}..={} are missing: checkpoint {} covers entry {} but the log ends at {last}",
                last + 1,
                c.upto_id,
                c.id,
                c.upto_id
            ));
        }
        let at = entries.iter().find(|e| e.id == c.upto_id);
        if at.is_none_or(|e| e.hash != c.head_hash) {
            return Some(format!(
                "entry {}: differs from what checkpoint {} signed",
                c.upto_id, c.id
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: i64) -> Vec<AuditEntry> {
        let mut prev = vec![0; 32];
        (1..=n)
            .map(|id| {
                let hash = audit_hash(
                    &prev,
                    id,
                    100 + id,
                    "admin",
                    "certificate.issued",
                    &format!("s{id}"),
                    "d",
                );
                let e = AuditEntry {
                    id,
                    at: 100 + id,
                    actor: "admin".into(),
                    event: "certificate.issued".into(),
                    object: format!("s{id}"),
                    detail: "d".into(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn detects_alteration_deletion_insertion_reordering() {
        let ok = |_: &[u8], _: &[u8]| true;
        assert_eq!(verify(&log(5), &[], ok).problem, None);
        let mut altered = log(5);
        altered[2].detail = "e".into();
        assert!(
            verify(&altered, &[], ok)
                .problem
                .unwrap()
                .starts_with("entry 3: content altered")
        );
        let mut deleted = log(5);
        deleted.remove(1);
        assert!(
            verify(&deleted, &[], ok)
                .problem
                .unwrap()
                .contains("entry 2 is missing")
        );
        let mut reordered = log(5);
        reordered.swap(1, 2);
        assert!(
            verify(&reordered, &[], ok)
                .problem
                .unwrap()
                .contains("out of order")
                || verify(&reordered, &[], ok)
                    .problem
                    .unwrap()
                    .contains("missing")
        );
        let head = log(5)[4].hash.clone();
        let cp = Checkpoint {
            id: 1,
            upto_id: 5,
            head_hash: head,
            at: 0,
            signature: vec![],
        };
        let mut truncated = log(5);
        truncated.truncate(4);
        assert!(
            verify(&truncated, std::slice::from_ref(&cp), ok)
                .problem
                .unwrap()
                .contains("missing")
        );
        assert!(
            verify(&log(5), &[cp], |_, _| false)
                .problem
                .unwrap()
                .contains("signature")
        );
    }
}
