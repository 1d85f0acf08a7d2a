//! Compiles proto/ into Rust (tonic + prost) and a file descriptor set for gRPC reflection.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    // A vendored protoc: building needs nothing installed on the machine.
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        // Malformed requests are INVALID_ARGUMENT (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::StrictCodec")
        .file_descriptor_set_path(out.join("ecca_descriptor.bin"))
        .compile_with_config(
            config,
            &[
                "proto/ecca/v1/ca.proto",
                "proto/ecca/v1/admin.proto",
                "proto/ecca/kmc/v1/kmc.proto",
            ],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
