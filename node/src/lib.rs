//! The MatchEngine node: the matching core and a key-value namespace,
//! replicated by openraft with the log on RocksDB, served over gRPC.
//!
//! One order, from the gRPC handler to the book and back (each step one
//! file, named after its job):
//!
//! ```text
//! api/client.rs         PlaceOrder: decode (matchengine-codec), then
//!   api/mod.rs            leadership and admission against the leader's state
//!   replica/admission.rs  (the one check before proposing)
//! proposer.rs           many commands -> one CommandBatch; in-flight bounds
//! raft/handle.rs        the batch handed to Raft as one log entry
//! raft/log_storage.rs   appended and fsynced (storage/log_store.rs: RocksDB,
//!                        group commit), replicated (raft/network/), committed
//! raft/state_machine.rs applied in log order ...
//! replica/state.rs      ... to the books (matchengine-book) and the KV store;
//!                        one CommandOutcome per command
//! proposer.rs           outcomes split back to each proposal
//! api/client.rs         the answer, or the rejection as a status
//! ```
//!
//! The layers, each a folder, each knowing only those below it:
//! - [`replica`]: the pure replicated state machine (state, apply,
//!   outcomes, admission, snapshot image). No I/O, no Raft.
//! - [`storage`]: durable bytes (the RocksDB log, snapshot files). No Raft
//!   types, no books.
//! - [`raft`]: everything openraft, behind [`raft::handle::RaftHandle`]; the
//!   only folder that imports openraft.
//! - [`proposer`], [`api`], [`events`], [`health`], [`metrics`]: the
//!   service, on the handle and the replica's types.
//! - [`server`]: wiring only.

pub mod api;
pub mod applied_feed;
pub mod config;
pub mod events;
pub mod health;
pub mod metrics;
pub mod proposer;
pub mod raft;
pub mod replica;
pub mod security;
pub mod server;
pub mod storage;
pub mod tls;
