//! What a client call can fail with: one clear line each.

use matchengine_proto::metadata;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ClientError {
    /// The cluster answered with an error status (after any retries).
    #[error("{}", describe(.0))]
    Status(tonic::Status),
    /// No node was given, or an address is malformed.
    #[error("{0}")]
    Config(String),
    /// No node answered within the deadline.
    #[error("no node answered within {deadline_ms} ms; last error: {last}")]
    Exhausted { deadline_ms: u64, last: String },
}

fn describe(status: &tonic::Status) -> String {
    let mut line = format!("{:?}: {}", status.code(), status.message());
    if let Some(reason) = status
        .metadata()
        .get(metadata::REJECT_REASON)
        .and_then(|v| v.to_str().ok())
    {
        line.push_str(&format!(" ({reason})"));
    }
    line
}

impl ClientError {
    /// The gRPC status code, when the cluster answered.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Status(status) => Some(status.code()),
            _ => None,
        }
    }

    /// Whether the failed call may still have been applied (a write whose
    /// outcome is unknown). Every other failure means it was not.
    pub fn maybe_applied(&self) -> bool {
        match self {
            ClientError::Status(status) => crate::pool::maybe_applied(status),
            _ => false,
        }
    }

    /// The book's reject reason (its proto enum name), when it rejected.
    pub fn reject_reason(&self) -> Option<&str> {
        match self {
            ClientError::Status(status) => status
                .metadata()
                .get(metadata::REJECT_REASON)
                .and_then(|value| value.to_str().ok()),
            _ => None,
        }
    }
}
