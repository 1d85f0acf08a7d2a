//! CMS parsing and verification on untrusted signatures and timestamp tokens.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = ecca::core::cms::signed_data(data) {
        if let Ok(alg) = ecca::core::cms::digest_alg(&signed) {
            let _ = ecca::core::cms::check_signer(&signed, &alg.digest(b"document"), &[]);
        }
    }
    let _ = ecca::core::cms::check_token(data, b"signature", &[]);
});
