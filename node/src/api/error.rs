//! The API's one error type and its one mapping to gRPC statuses. Every
//! handler returns [`ApiError`]; nothing else decides a status code.

use matchengine_book::RejectReason;
use matchengine_proto::metadata;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::proposer::ProposeError;
use crate::replica::kv::KvReject;
use matchengine_codec::CodecError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(String),
    #[error("rejected: {0}")]
    Rejected(RejectReason),
    #[error("{0}")]
    Kv(KvReject),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A call that only the leader serves reached another node.
    #[error("not the leader{}", .leader_addr.as_ref().map(|a| format!("; the leader is at {a}")).unwrap_or_else(|| "; no leader is known".into()))]
    NotLeader { leader_addr: Option<String> },
    #[error("{0}")]
    Overloaded(String),
    #[error("{0}")]
    Unavailable(String),
    /// Proposed, but no answer: it may or may not be applied.
    #[error("the outcome is unknown: {0}")]
    OutcomeUnknown(String),
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    Internal(String),
}

impl From<CodecError> for ApiError {
    fn from(error: CodecError) -> Self {
        ApiError::Invalid(error.to_string())
    }
}

/// The status code of a book rejection: the same one whether the command
/// came alone or inside a batch.
pub fn reject_code(reason: RejectReason) -> Code {
    use RejectReason::*;
    match reason {
        UnknownInstrument | UnknownOrder => Code::NotFound,
        InstrumentExists | DuplicateClientOrderId => Code::AlreadyExists,
        InstrumentLimitReached
        | AccountOrderLimitReached
        | PriceLevelLimitReached
        | EngineOrderLimitReached => Code::ResourceExhausted,
        InvalidPriceBand | InvalidQuantityRange | InvalidClientOrderId | ZeroQuantity
        | QuantityBelowMinimum | QuantityAboveMaximum | PriceOutOfBand | ReplaceNoChange => {
            Code::InvalidArgument
        }
        OrderNotOpen | WouldTakeLiquidity | ReplaceQuantityNotAboveFilled => {
            Code::FailedPrecondition
        }
    }
}

pub fn kv_reject_code(reject: KvReject) -> Code {
    match reject {
        KvReject::EmptyKey | KvReject::KeyTooLarge(_) | KvReject::ValueTooLarge(_) => {
            Code::InvalidArgument
        }
        KvReject::KeyLimitReached(_) => Code::ResourceExhausted,
    }
}

impl ApiError {
    pub fn code(&self) -> Code {
        match self {
            ApiError::Invalid(_) => Code::InvalidArgument,
            ApiError::Rejected(reason) => reject_code(*reason),
            ApiError::Kv(reject) => kv_reject_code(*reject),
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::NotLeader {
                leader_addr: Some(_),
            } => Code::FailedPrecondition,
            ApiError::NotLeader { leader_addr: None }
            | ApiError::Unavailable(_)
            | ApiError::OutcomeUnknown(_) => Code::Unavailable,
            ApiError::Overloaded(_) => Code::ResourceExhausted,
            ApiError::Gone(_) => Code::OutOfRange,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    /// `leader_addr` resolves a leader id to the address callers of this
    /// API should use.
    pub fn from_propose(
        error: ProposeError,
        leader_addr: impl FnOnce(u64) -> Option<String>,
    ) -> Self {
        match error {
            ProposeError::Overloaded(max) => ApiError::Overloaded(format!(
                "the node has {max} commands in flight; retry later"
            )),
            ProposeError::NotLeader { leader_id } => ApiError::NotLeader {
                leader_addr: leader_id.and_then(leader_addr),
            },
            ProposeError::TooLarge { .. } => ApiError::Invalid(error.to_string()),
            ProposeError::Stopped => ApiError::Unavailable("the node is shutting down".into()),
            // UNAVAILABLE, marked: only idempotent commands (places, by
            // client order id) should be retried blindly.
            ProposeError::Unknown(why) => ApiError::OutcomeUnknown(why),
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        let mut status = Status::new(error.code(), error.to_string());
        match &error {
            ApiError::NotLeader {
                leader_addr: Some(addr),
            } => {
                if let Ok(value) = MetadataValue::try_from(addr.as_str()) {
                    status.metadata_mut().insert(metadata::LEADER, value);
                }
            }
            ApiError::OutcomeUnknown(_) => {
                status.metadata_mut().insert(
                    metadata::OUTCOME,
                    MetadataValue::from_static(metadata::OUTCOME_UNKNOWN),
                );
            }
            ApiError::Rejected(reason) => {
                let name = matchengine_codec::book::reject_to_pb(*reason).as_str_name();
                status
                    .metadata_mut()
                    .insert(metadata::REJECT_REASON, MetadataValue::from_static(name));
            }
            _ => {}
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_follower_names_the_leader_and_a_rejection_names_its_reason() {
        let status = Status::from(ApiError::NotLeader {
            leader_addr: Some("10.0.0.7:7000".into()),
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.metadata().get(metadata::LEADER).unwrap(),
            "10.0.0.7:7000"
        );
        let status = Status::from(ApiError::NotLeader { leader_addr: None });
        assert_eq!(status.code(), Code::Unavailable);
        let status = Status::from(ApiError::Rejected(RejectReason::UnknownOrder));
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.metadata().get(metadata::REJECT_REASON).unwrap(),
            "REJECT_REASON_UNKNOWN_ORDER"
        );
    }

    #[test]
    fn every_reject_reason_has_a_deliberate_code() {
        for code in 1..=19u16 {
            let reason = RejectReason::from_code(code).unwrap();
            assert_ne!(reject_code(reason), Code::Ok);
            assert_ne!(reject_code(reason), Code::Unknown);
        }
    }
}
