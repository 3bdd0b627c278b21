//! Raft between nodes over gRPC: the client side (outgoing RPCs, one
//! channel per peer) and the server side (incoming RPCs). Knows messages
//! and snapshot files, never order books.

pub mod raft_client;
pub mod raft_server;

pub use raft_client::RaftNetwork;
pub use raft_server::RaftService;
