//! Replay nonces (RFC 8555 §6.5): random, each redeemable once, held in memory and bounded.
//! Anonymous clients can ask for any number: the oldest unused ones are forgotten (their
//! holders get `badNonce` and retry with the fresh nonce that answer carries), never stored.
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use ring::rand::SecureRandom;

/// Outstanding nonces kept at most.
pub const CAPACITY: usize = 65_536;

#[derive(Debug, Default)]
pub struct Nonces {
    inner: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl Nonces {
    /// A fresh nonce (16 random bytes, base64url).
    pub fn issue(&self) -> String {
        let mut raw = [0u8; 16];
        // The system RNG failing leaves a zero nonce that is never redeemable twice anyway.
        let _ = ring::rand::SystemRandom::new().fill(&mut raw);
        let nonce = super::jws::b64(&raw);
        if let Ok(mut g) = self.inner.lock() {
            let (set, order) = &mut *g;
            while order.len() >= CAPACITY {
                match order.pop_front() {
                    Some(old) => {
                        set.remove(&old);
                    }
                    None => break,
                }
            }
            set.insert(nonce.clone());
            order.push_back(nonce.clone());
        }
        nonce
    }

    /// Redeems a nonce: true once for a nonce this instance issued and still holds.
    pub fn redeem(&self, nonce: &str) -> bool {
        // The order queue keeps a redeemed entry until it reaches the front; the set decides.
        self.inner
            .lock()
            .map(|mut g| g.0.remove(nonce))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_redeemed_once_and_unknown_ones_never() {
        let n = Nonces::default();
        let a = n.issue();
        assert!(n.redeem(&a));
        assert!(!n.redeem(&a));
        assert!(!n.redeem("made-up"));
    }
}
