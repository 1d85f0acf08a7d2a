//! OCSP request parsing (the responder's first step on untrusted bytes).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(req) = ecca::core::ocsp::parse_request(data) {
        for id in &req.cert_ids {
            let _ = ecca::core::ocsp::serial_of(id);
            let _ = ecca::core::ocsp::hash_of(id);
        }
    }
});
