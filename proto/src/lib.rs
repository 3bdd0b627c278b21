//! MatchEngine's wire and log contract, generated from `matchengine/v1/*.proto`:
//! the book's commands, results and events, the key-value commands, the
//! command batches the Raft log carries, and the Raft messages and service.
//! Conversions to and from the Rust types live with their owners (the node),
//! so this crate stays generated code only.

#![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]

pub mod v1 {
    tonic::include_proto!("matchengine.v1");
}

/// The encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("matchengine_descriptor");
