//! The MatchEngine node: the matching core and a key-value namespace,
//! replicated by openraft with the log on RocksDB.
//!
//! A write's path: a client command is validated and batched with others
//! into a [`batch::CommandBatch`], proposed to Raft, appended to the
//! RocksDB log ([`storage::LogStore`]) and acknowledged only once a quorum
//! has it on disk, then applied by [`storage::StateMachineStore`] to the
//! [`state::ReplicatedState`], whose outcomes go back to the proposer.

pub mod batch;
pub mod codec;
pub mod kv;
pub mod raft_types;
pub mod state;
pub mod storage;
