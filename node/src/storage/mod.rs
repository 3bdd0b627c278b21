//! Durable bytes: the Raft log and its metadata on RocksDB (with group
//! commit), and snapshot files. Knows indexes, bytes and files; never what
//! an entry or a snapshot means (no Raft types, no books).

pub mod log_store;
pub mod snapshot_file;
