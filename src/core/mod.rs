//! The PKI domain: no network, no database, no async. Everything here is pure and unit-tested.
pub mod csr;
pub mod issue;
pub mod keys;
pub mod lint;
pub mod names;
pub mod profile;
pub mod serial;
pub mod uscc;
