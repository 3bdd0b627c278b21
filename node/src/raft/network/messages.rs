//! openraft's RPC messages <-> `matchengine.v1` Raft messages, for the
//! gRPC transport between nodes. Decoding validates every field: a peer's
//! malformed message is a [`CodecError`], never a panic.

use matchengine_proto::v1 as pb;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, StreamAppendError, StreamAppendResult,
    TransferLeaderRequest, VoteRequest, VoteResponse,
};
use openraft::raft::{TransferLeaderError, TransferLeaderResponse};

use crate::raft::proto::{
    entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, optional_log_id_from_pb,
    vote_from_pb, vote_to_pb,
};
use crate::raft::types::TypeConfig;
use matchengine_codec::{CodecError, required};

pub fn append_request_to_pb(
    request: &AppendEntriesRequest<TypeConfig>,
) -> pb::AppendEntriesRequest {
    pb::AppendEntriesRequest {
        vote: Some(vote_to_pb(&request.vote)),
        prev_log_id: request.prev_log_id.as_ref().map(log_id_to_pb),
        entries: request.entries.iter().map(entry_to_pb).collect(),
        leader_commit: request.leader_commit.as_ref().map(log_id_to_pb),
    }
}

pub fn append_request_from_pb(
    request: pb::AppendEntriesRequest,
) -> Result<AppendEntriesRequest<TypeConfig>, CodecError> {
    Ok(AppendEntriesRequest {
        vote: vote_from_pb(required(request.vote, "vote")?)?,
        prev_log_id: optional_log_id_from_pb(request.prev_log_id)?,
        entries: request
            .entries
            .into_iter()
            .map(entry_from_pb)
            .collect::<Result<_, _>>()?,
        leader_commit: optional_log_id_from_pb(request.leader_commit)?,
    })
}

pub fn append_response_to_pb(
    response: &AppendEntriesResponse<TypeConfig>,
) -> pb::AppendEntriesResponse {
    use pb::append_entries_response::Result as R;
    let result = match response {
        AppendEntriesResponse::Success => R::Success(pb::Blank {}),
        AppendEntriesResponse::PartialSuccess(matching) => R::PartialSuccess(pb::PartialSuccess {
            matching: matching.as_ref().map(log_id_to_pb),
        }),
        AppendEntriesResponse::Conflict => R::Conflict(pb::Blank {}),
        AppendEntriesResponse::HigherVote(vote) => R::HigherVote(vote_to_pb(vote)),
    };
    pb::AppendEntriesResponse {
        result: Some(result),
    }
}

pub fn append_response_from_pb(
    response: pb::AppendEntriesResponse,
) -> Result<AppendEntriesResponse<TypeConfig>, CodecError> {
    use pb::append_entries_response::Result as R;
    Ok(match required(response.result, "result")? {
        R::Success(_) => AppendEntriesResponse::Success,
        R::PartialSuccess(partial) => {
            AppendEntriesResponse::PartialSuccess(optional_log_id_from_pb(partial.matching)?)
        }
        R::Conflict(_) => AppendEntriesResponse::Conflict,
        R::HigherVote(vote) => AppendEntriesResponse::HigherVote(vote_from_pb(vote)?),
    })
}

pub fn stream_result_to_pb(result: &StreamAppendResult<TypeConfig>) -> pb::StreamAppendResponse {
    use pb::stream_append_response::Result as R;
    let result = match result {
        Ok(last) => R::Ok(pb::StreamAppendOk {
            last_log_id: last.as_ref().map(log_id_to_pb),
        }),
        Err(StreamAppendError::Conflict(log_id)) => R::Conflict(log_id_to_pb(log_id)),
        Err(StreamAppendError::HigherVote(vote)) => R::HigherVote(vote_to_pb(vote)),
    };
    pb::StreamAppendResponse {
        result: Some(result),
    }
}

pub fn stream_result_from_pb(
    response: pb::StreamAppendResponse,
) -> Result<StreamAppendResult<TypeConfig>, CodecError> {
    use pb::stream_append_response::Result as R;
    Ok(match required(response.result, "result")? {
        R::Ok(ok) => Ok(optional_log_id_from_pb(ok.last_log_id)?),
        R::Conflict(log_id) => Err(StreamAppendError::Conflict(log_id_from_pb(log_id)?)),
        R::HigherVote(vote) => Err(StreamAppendError::HigherVote(vote_from_pb(vote)?)),
    })
}

pub fn vote_request_to_pb(request: &VoteRequest<TypeConfig>) -> pb::VoteRequest {
    pb::VoteRequest {
        vote: Some(vote_to_pb(&request.vote)),
        last_log_id: request.last_log_id.as_ref().map(log_id_to_pb),
        leadership_transfer: request.leadership_transfer,
    }
}

pub fn vote_request_from_pb(
    request: pb::VoteRequest,
) -> Result<VoteRequest<TypeConfig>, CodecError> {
    let mut vote = VoteRequest::new(
        vote_from_pb(required(request.vote, "vote")?)?,
        optional_log_id_from_pb(request.last_log_id)?,
    );
    vote.leadership_transfer = request.leadership_transfer;
    Ok(vote)
}

pub fn vote_response_to_pb(response: &VoteResponse<TypeConfig>) -> pb::VoteResponse {
    pb::VoteResponse {
        vote: Some(vote_to_pb(&response.vote)),
        vote_granted: response.vote_granted,
        last_log_id: response.last_log_id.as_ref().map(log_id_to_pb),
    }
}

pub fn vote_response_from_pb(
    response: pb::VoteResponse,
) -> Result<VoteResponse<TypeConfig>, CodecError> {
    Ok(VoteResponse::new(
        vote_from_pb(required(response.vote, "vote")?)?,
        optional_log_id_from_pb(response.last_log_id)?,
        response.vote_granted,
    ))
}

pub fn transfer_request_to_pb(
    request: &TransferLeaderRequest<TypeConfig>,
) -> pb::TransferLeaderRequest {
    pb::TransferLeaderRequest {
        from_leader: Some(vote_to_pb(request.from_leader())),
        to_node_id: *request.to_node_id(),
        last_log_id: request.last_log_id().map(log_id_to_pb),
    }
}

pub fn transfer_request_from_pb(
    request: pb::TransferLeaderRequest,
) -> Result<TransferLeaderRequest<TypeConfig>, CodecError> {
    Ok(TransferLeaderRequest::new(
        vote_from_pb(required(request.from_leader, "from_leader")?)?,
        request.to_node_id,
        optional_log_id_from_pb(request.last_log_id)?,
    ))
}

pub fn transfer_response_to_pb(
    response: &TransferLeaderResponse<TypeConfig>,
) -> pb::TransferLeaderResponse {
    use pb::transfer_leader_response::Result as R;
    let result = match response {
        Ok(()) => R::Ok(pb::Blank {}),
        Err(TransferLeaderError::VoteChanged { expected, actual }) => {
            R::VoteChanged(pb::VoteMismatch {
                expected: Some(vote_to_pb(expected)),
                actual: Some(vote_to_pb(actual)),
            })
        }
        Err(TransferLeaderError::LogNotFlushed { expected, actual }) => {
            R::LogNotFlushed(pb::LogNotFlushed {
                expected: expected.as_ref().map(log_id_to_pb),
                actual: actual.as_ref().map(log_id_to_pb),
            })
        }
    };
    pb::TransferLeaderResponse {
        result: Some(result),
    }
}

pub fn transfer_response_from_pb(
    response: pb::TransferLeaderResponse,
) -> Result<TransferLeaderResponse<TypeConfig>, CodecError> {
    use pb::transfer_leader_response::Result as R;
    Ok(match required(response.result, "result")? {
        R::Ok(_) => Ok(()),
        R::VoteChanged(mismatch) => Err(TransferLeaderError::VoteChanged {
            expected: vote_from_pb(required(mismatch.expected, "expected")?)?,
            actual: vote_from_pb(required(mismatch.actual, "actual")?)?,
        }),
        R::LogNotFlushed(not_flushed) => Err(TransferLeaderError::LogNotFlushed {
            expected: optional_log_id_from_pb(not_flushed.expected)?,
            actual: optional_log_id_from_pb(not_flushed.actual)?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::{Entry, LeaderId, LogId, Vote};
    use matchengine_codec::batch::CommandBatch;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId {
            leader_id: LeaderId { term, node_id: 2 },
            index,
        }
    }

    fn vote() -> Vote {
        Vote {
            leader_id: LeaderId {
                term: 4,
                node_id: 2,
            },
            committed: true,
        }
    }

    #[test]
    fn raft_messages_round_trip() {
        let request = AppendEntriesRequest::<TypeConfig> {
            vote: vote(),
            prev_log_id: Some(log_id(3, 9)),
            entries: vec![Entry {
                log_id: log_id(4, 10),
                payload: openraft::EntryPayload::Normal(CommandBatch::new(1, &[])),
            }],
            leader_commit: None,
        };
        let decoded = append_request_from_pb(append_request_to_pb(&request)).unwrap();
        assert_eq!(
            (
                decoded.vote,
                decoded.prev_log_id,
                decoded.entries,
                decoded.leader_commit
            ),
            (
                request.vote,
                request.prev_log_id,
                request.entries,
                request.leader_commit
            )
        );
        for response in [
            AppendEntriesResponse::Success,
            AppendEntriesResponse::PartialSuccess(Some(log_id(4, 10))),
            AppendEntriesResponse::Conflict,
            AppendEntriesResponse::HigherVote(vote()),
        ] {
            assert_eq!(
                append_response_from_pb(append_response_to_pb(&response)).unwrap(),
                response
            );
        }
        for result in [
            Ok(None),
            Ok(Some(log_id(4, 11))),
            Err(StreamAppendError::Conflict(log_id(3, 9))),
            Err(StreamAppendError::HigherVote(vote())),
        ] {
            assert_eq!(
                stream_result_from_pb(stream_result_to_pb(&result)).unwrap(),
                result
            );
        }
        let mut vote_request = VoteRequest::<TypeConfig>::new(vote(), Some(log_id(4, 10)));
        vote_request.leadership_transfer = true;
        assert_eq!(
            vote_request_from_pb(vote_request_to_pb(&vote_request)).unwrap(),
            vote_request
        );
        let vote_response = VoteResponse::<TypeConfig>::new(vote(), None, true);
        assert_eq!(
            vote_response_from_pb(vote_response_to_pb(&vote_response)).unwrap(),
            vote_response
        );
        let transfer = TransferLeaderRequest::<TypeConfig>::new(vote(), 3, Some(log_id(4, 10)));
        assert_eq!(
            transfer_request_from_pb(transfer_request_to_pb(&transfer)).unwrap(),
            transfer
        );
        let refused: TransferLeaderResponse<TypeConfig> = Err(TransferLeaderError::LogNotFlushed {
            expected: Some(log_id(4, 10)),
            actual: None,
        });
        assert_eq!(
            transfer_response_from_pb(transfer_response_to_pb(&refused)).unwrap(),
            refused
        );
    }

    #[test]
    fn missing_fields_are_errors_not_panics() {
        assert!(append_request_from_pb(pb::AppendEntriesRequest::default()).is_err());
        assert!(append_response_from_pb(pb::AppendEntriesResponse::default()).is_err());
        assert!(vote_request_from_pb(pb::VoteRequest::default()).is_err());
        assert!(stream_result_from_pb(pb::StreamAppendResponse::default()).is_err());
        assert!(transfer_request_from_pb(pb::TransferLeaderRequest::default()).is_err());
    }
}
