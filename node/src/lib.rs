//! The MatchEngine node: the matching core and a key-value namespace,
//! replicated by openraft with the log on RocksDB, served over gRPC.
//!
//! A write's path: a client command arrives at [`api::client`], is
//! validated and handed to the [`proposer`], which batches it with others
//! into a [`batch::CommandBatch`] and proposes it to Raft; the entry is
//! appended to the RocksDB log ([`storage::LogStore`]), replicated by
//! [`network`], acknowledged only once a quorum has it on disk, applied by
//! [`storage::StateMachineStore`] to the [`state::ReplicatedState`], and its
//! outcome goes back to the client. [`server`] wires it all together.

pub mod api;
pub mod batch;
pub mod codec;
pub mod config;
pub mod events;
pub mod health;
pub mod kv;
pub mod leadership;
pub mod metrics;
pub mod network;
pub mod proposer;
pub mod raft_config;
pub mod raft_types;
pub mod server;
pub mod state;
pub mod storage;
pub mod tls;
