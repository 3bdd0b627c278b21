//! What a normal Raft log entry carries: a [`CommandBatch`], many client
//! commands stamped with the leader's clock, encoded once when proposed and
//! kept as bytes through the log, replication and disk until apply decodes
//! them. This module owns that encoding and its validating decoder; it
//! never applies a command (that is the node's state machine).

use std::fmt;

use bytes::Bytes;
use matchengine_book as book;
use matchengine_proto::v1 as pb;
use prost::Message;

use crate::{CodecError, required};

/// A command for the key-value namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvCommand {
    Put { key: Bytes, value: Bytes },
    Delete { key: Bytes },
}

/// One client command, for the order books or the key-value namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeCommand {
    Book(book::Command),
    Kv(KvCommand),
}

/// The payload of one normal log entry: an encoded `matchengine.v1.CommandBatch`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandBatch {
    encoded: Bytes,
}

/// A decoded batch, ready to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedBatch {
    pub timestamp_ns: u64,
    pub commands: Vec<NodeCommand>,
}

impl CommandBatch {
    /// Encodes a batch stamped with `timestamp_ns` (the leader's clock).
    pub fn new(timestamp_ns: u64, commands: &[NodeCommand]) -> CommandBatch {
        let batch = pb::CommandBatch {
            timestamp_ns,
            commands: commands.iter().map(node_command_to_pb).collect(),
        };
        CommandBatch {
            encoded: Bytes::from(batch.encode_to_vec()),
        }
    }

    pub fn from_encoded(encoded: Bytes) -> CommandBatch {
        CommandBatch { encoded }
    }

    pub fn encoded(&self) -> &Bytes {
        &self.encoded
    }

    pub fn decode(&self) -> Result<DecodedBatch, CodecError> {
        let batch = pb::CommandBatch::decode(self.encoded.as_ref())?;
        let commands = batch
            .commands
            .into_iter()
            .map(node_command_from_pb)
            .collect::<Result<_, _>>()?;
        Ok(DecodedBatch {
            timestamp_ns: batch.timestamp_ns,
            commands,
        })
    }
}

impl fmt::Display for CommandBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommandBatch({} bytes)", self.encoded.len())
    }
}

pub fn node_command_to_pb(command: &NodeCommand) -> pb::Command {
    let command = match command {
        NodeCommand::Book(command) => {
            pb::command::Command::Book(crate::book::book_command_to_pb(command))
        }
        NodeCommand::Kv(KvCommand::Put { key, value }) => pb::command::Command::Kv(pb::KvCommand {
            command: Some(pb::kv_command::Command::Put(pb::KvPut {
                key: key.to_vec(),
                value: value.to_vec(),
            })),
        }),
        NodeCommand::Kv(KvCommand::Delete { key }) => pb::command::Command::Kv(pb::KvCommand {
            command: Some(pb::kv_command::Command::Delete(pb::KvDelete {
                key: key.to_vec(),
            })),
        }),
    };
    pb::Command {
        command: Some(command),
    }
}

pub fn node_command_from_pb(command: pb::Command) -> Result<NodeCommand, CodecError> {
    Ok(match required(command.command, "command")? {
        pb::command::Command::Book(command) => {
            NodeCommand::Book(crate::book::book_command_from_pb(command)?)
        }
        pb::command::Command::Kv(kv) => match required(kv.command, "kv.command")? {
            pb::kv_command::Command::Put(put) => NodeCommand::Kv(KvCommand::Put {
                key: Bytes::from(put.key),
                value: Bytes::from(put.value),
            }),
            pb::kv_command::Command::Delete(delete) => NodeCommand::Kv(KvCommand::Delete {
                key: Bytes::from(delete.key),
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_round_trips_and_rejects_garbage() {
        let commands = vec![
            NodeCommand::Kv(KvCommand::Put {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
            }),
            NodeCommand::Kv(KvCommand::Delete {
                key: Bytes::from_static(b"k"),
            }),
            NodeCommand::Book(book::Command::MassCancel(book::MassCancel {
                account: book::AccountId(1),
                instrument: Some(book::InstrumentId(2)),
            })),
        ];
        let batch = CommandBatch::new(42, &commands);
        let decoded = batch.decode().unwrap();
        assert_eq!(decoded.timestamp_ns, 42);
        assert_eq!(decoded.commands, commands);
        assert!(
            CommandBatch::from_encoded(Bytes::from_static(&[0xff, 0xff, 0xff]))
                .decode()
                .is_err()
        );
        assert_eq!(
            batch.to_string(),
            format!("CommandBatch({} bytes)", batch.encoded().len())
        );
    }
}
