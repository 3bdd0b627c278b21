//! Conversions between the wire and log contract (`matchengine-proto`) and
//! the node's Rust types. Decoding validates every field and never panics:
//! a malformed message is a [`CodecError`] naming the field.
//!
//! The book's messages and [`CodecError`] live in the pure
//! `matchengine-codec` crate (fuzzed on its own, without RocksDB) and are
//! re-exported here under their old paths; the Raft conversions, which need
//! openraft's types, stay in this crate.

pub(crate) use matchengine_codec::required;
pub use matchengine_codec::{CodecError, book};

pub mod raft;
pub mod raft_rpc;
