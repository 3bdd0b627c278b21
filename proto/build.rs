//! Compiles the .proto files with tonic-prost-build, using the protoc that
//! ships inside the protoc-bin-vendored crate (no system protoc needed), and
//! writes a file descriptor set for gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // A log entry's command batch stays one shared buffer from the wire to
    // the log store and the state machine: no copies.
    config.bytes([".matchengine.v1.Entry.normal"]);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("matchengine_descriptor.bin"))
        .compile_with_config(
            config,
            &[
                "matchengine/v1/book.proto",
                "matchengine/v1/command.proto",
                "matchengine/v1/raft.proto",
                "matchengine/v1/client.proto",
                "matchengine/v1/admin.proto",
            ],
            &["."],
        )?;
    println!("cargo:rerun-if-changed=matchengine");
    Ok(())
}
