//! RFC 3161 requests: accepted or refused with a failInfo, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ecca::core::tsp::accept(data, ecca::core::tsp::DEFAULT_POLICY);
    let _ = ecca::core::tsp::token_of(data);
});
