//! MatchEngine's wire and log contract, generated from `matchengine/v1/*.proto`:
//! the book's commands, results and events, the key-value commands, the
//! command batches the Raft log carries, and the Raft messages and service.
//! Conversions to and from the Rust types live with their owners (the node),
//! so this crate stays generated code, plus the wire-level names that are
//! not in a `.proto` file ([`metadata`]), defined once for node, client and
//! operator.

#![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]

pub mod v1 {
    tonic::include_proto!("matchengine.v1");
}

/// The encoded file descriptor set, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("matchengine_descriptor");

/// gRPC metadata keys the node sets on its answers and the client library
/// and the operator read. One definition each, for every side.
pub mod metadata {
    /// The leader's address (client or admin port, matching the API
    /// called) on an answer that needs the leader.
    pub const LEADER: &str = "x-matchengine-leader";
    /// The book's reject reason (its proto enum name) on a rejection.
    pub const REJECT_REASON: &str = "x-matchengine-reject-reason";
    /// `unknown` on a write that may or may not have been applied
    /// (proposed, then leadership changed before an answer). Every other
    /// error means the write was not applied.
    pub const OUTCOME: &str = "x-matchengine-outcome";
    /// The value of [`OUTCOME`] on such a write.
    pub const OUTCOME_UNKNOWN: &str = "unknown";
}

/// The admin API's bearer token, as every side reads it: the node when it
/// starts, `mectl` and the client library, and the operator. One rule, so
/// that no side accepts a token file another refuses.
pub mod bearer {
    /// The metadata key carrying `Bearer <token>`.
    pub const AUTHORIZATION: &str = "authorization";
    /// What precedes the token in [`AUTHORIZATION`].
    pub const PREFIX: &str = "Bearer ";

    /// The token a token file holds: its text with surrounding whitespace
    /// ignored, which must be non-empty and free of whitespace and control
    /// characters (so that it fits one metadata value). `None` otherwise.
    pub fn token_from_file_text(text: &str) -> Option<&str> {
        let token = text.trim();
        let valid =
            !token.is_empty() && !token.chars().any(|c| c.is_whitespace() || c.is_control());
        valid.then_some(token)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn one_line_trimmed_without_spaces_or_controls() {
            assert_eq!(token_from_file_text("s3cret\n"), Some("s3cret"));
            assert_eq!(token_from_file_text("  s3cret  "), Some("s3cret"));
            for bad in ["", " \n", "a b", "a\tb", "a\u{7}b", "one\ntwo"] {
                assert_eq!(token_from_file_text(bad), None, "{bad:?}");
            }
        }
    }
}
