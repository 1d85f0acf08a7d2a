//! Path building over a hostile pool: the input is split into certificates (2-byte length
//! prefixes); the first is the leaf, the second the anchor, the rest the pool. The work budget
//! must hold whatever the pool holds.
#![no_main]
use ecca::core::path::{Budget, Cert, Options, build_and_validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut certs = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && certs.len() < 64 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
        let take = n.min(rest.len());
        if let Ok(c) = Cert::parse(&rest[..take]) {
            certs.push(c);
        }
        rest = &rest[take..];
    }
    if certs.len() < 2 {
        return;
    }
    let leaf = certs.remove(0);
    let anchor = vec![certs.remove(0)];
    let mut opts = Options::at(1_800_000_000);
    opts.budget = Budget {
        max_signatures: 64,
        max_candidates: 128,
        ..Budget::default()
    };
    let _ = build_and_validate(&leaf, &certs, &anchor, &opts);
});
