//! Raft between nodes over gRPC: the client side (outgoing RPCs, one
//! channel per peer) and the server side (incoming RPCs). Knows messages
//! and snapshot files, never order books.

pub mod client;
pub mod messages;
pub mod server;
