//! Conversions between the wire and log contract (`matchengine-proto`) and
//! the book's Rust types: the command batches a log entry carries, and the
//! book's commands, replies and events. Decoding validates every field and
//! never panics: a malformed message is a [`CodecError`] naming the field.
//!
//! Pure (no async, no I/O, no Raft, no storage) so that it can be fuzzed on
//! its own; the node's Raft conversions stay in `matchengine-node`.

pub mod batch;
pub mod book;

/// A message that does not describe a valid value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("missing field {0}")]
    Missing(&'static str),
    #[error("field {field} has an unknown value {value}")]
    UnknownEnum { field: &'static str, value: i32 },
    #[error("field {field} is invalid: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("cannot decode: {0}")]
    Decode(String),
}

impl From<prost::DecodeError> for CodecError {
    fn from(error: prost::DecodeError) -> Self {
        CodecError::Decode(error.to_string())
    }
}

/// Takes a required message field.
pub fn required<T>(value: Option<T>, field: &'static str) -> Result<T, CodecError> {
    value.ok_or(CodecError::Missing(field))
}
