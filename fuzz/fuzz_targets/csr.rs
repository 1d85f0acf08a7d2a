//! CSR intake: any bytes, then the profile rules on whatever parses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = ecca::core::csr::verify(data)
        && let Ok(profiles) = ecca::core::profile::Profiles::embedded()
    {
        for p in profiles.iter() {
            let _ = ecca::core::issue::approve_names(p, &csr);
        }
    }
});
