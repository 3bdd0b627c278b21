//! Durable Raft storage: the log and vote on RocksDB, the state machine with
//! its snapshot files. Knows entries and snapshots, never order books.

pub mod log_store;
pub mod snapshot_file;
pub mod state_machine;

pub use log_store::{FsyncObserver, LogStats, LogStatsSnapshot, LogStore};
pub use snapshot_file::SnapshotFile;
pub use state_machine::{Applied, StateMachineObserver, StateMachineStore};
