//! What a Raft log entry carries and what applying it returns.
//!
//! A normal entry's payload is a [`CommandBatch`]: many client commands,
//! stamped with the leader's clock, encoded once when proposed and kept as
//! bytes through the log, replication and disk until apply decodes them.
//! One entry, one fsync and one replication round trip serve the batch.
//! The batch and its codec live in the pure `matchengine-codec` crate (so
//! that it can be fuzzed without RocksDB) and are re-exported here.

use matchengine_book as book;

pub use matchengine_codec::batch::{
    CommandBatch, DecodedBatch, KvCommand, NodeCommand, command_from_pb, command_to_pb,
};

use crate::kv::KvReject;

/// What one command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandOutcome {
    /// The book's reply and the events the command caused, in order.
    Book {
        reply: book::Reply,
        events: Vec<book::Event>,
    },
    /// Put: whether the key existed before; delete: whether it was deleted.
    Kv(Result<bool, KvReject>),
}

/// What applying one log entry returned: one outcome per command of its
/// batch (none for blank and membership entries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub outcomes: Vec<CommandOutcome>,
}
