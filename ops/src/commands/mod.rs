//! One file per command.
pub mod crl;
pub mod cross_certify;
pub mod csr;
pub mod init;
pub mod issue;
pub mod keygen;
pub mod list;
pub mod peers;
pub mod profiles;
pub mod revoke;
pub mod roots;
pub mod show;
pub mod sign;
pub mod verify_chain;
pub mod verify_signature;
