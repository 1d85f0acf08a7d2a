//! CA private keys behind one trait: software keys (ring) and keys in a PKCS#11 token.

pub mod document;
pub mod pkcs11;
pub mod software;

pub use document::DocumentKey;
pub use software::SoftwareKey;

pub use crate::core::keys::Signer;

/// Records a signature's latency, or its failure, by key backend.
fn observe(backend: &str, started: std::time::Instant, ok: bool) {
    if let Some(m) = crate::metrics::get() {
        if ok {
            m.signer_duration
                .with_label_values(&[backend])
                .observe(started.elapsed().as_secs_f64());
        } else {
            m.signer_errors.with_label_values(&[backend]).inc();
        }
    }
}
