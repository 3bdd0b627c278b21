//! What applying a command did, as the state machine reports it to the
//! proposer and, through it, to the client.

use matchengine_book as book;

use super::kv::KvReject;

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
