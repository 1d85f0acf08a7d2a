//! ecca: a certificate authority service for e-commerce.
//!
//! Layers, from the inside out (see ARCHITECTURE.md):
//! - [`core`]: the PKI domain (profiles, CSR intake, linting, certificate building). No I/O.
//! - [`signer`]: CA private keys behind one trait.
//! - [`store`]: durable state behind one trait (SQLite by default).
//! - [`authority`]: the CA hierarchy on disk (init on first start, load later).
//! - [`service`]: orchestration of each operation (policy, lint, intent, sign, store, audit).
//! - [`grpc`], [`http`], [`auth`]: the network edges, thin; [`listen`]: their shared
//!   connection caps and timeouts.
//! - [`client`]: the typed client the ops CLI and Rust users share.
#![forbid(unsafe_code)]

pub mod acme;
pub mod auth;
pub mod authority;
pub mod client;
pub mod config;
pub mod core;
pub mod error;
pub mod grpc;
pub mod http;
pub mod kmc;
pub mod layout;
pub mod listen;
pub mod metrics;
pub mod pemfile;
pub mod publish;
pub mod report;
pub mod server;
pub mod service;
pub mod signer;
pub mod store;
pub mod validation;
pub mod verify;

/// Generated protobuf and gRPC code for package `ecca.kmc.v1` (the key management centre).
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod kmc_proto {
    tonic::include_proto!("ecca.kmc.v1");
}

/// Generated protobuf and gRPC code for package `ecca.v1`.
#[allow(missing_docs, missing_debug_implementations, clippy::all)]
pub mod proto {
    tonic::include_proto!("ecca.v1");

    /// Encoded file descriptor set, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ecca_descriptor");
}

pub use error::{Error, Result};
