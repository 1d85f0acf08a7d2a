//! Building and signing certificates. The only way to a CA signature on a certificate is
//! [`sign`], which lints the exact to-be-signed bytes first; [`lint_only`] runs the same check
//! without the key (Boulder's "linting certificate"), so intent can be stored before signing.
//! `policy`: what a profile admits; `build`: the certificate's contents; `gate`: lint, then sign.
mod build;
mod gate;
mod policy;

pub use build::*;
pub use gate::*;
pub use policy::*;
