//! Incoming Raft RPCs (`matchengine.v1.Raft`): decoded, validated and handed
//! to openraft. A snapshot arrives as a stream of chunks written to a file
//! under `<data>/incoming-snapshots/`; the state machine verifies its
//! checksum and keeps its own durable copy when it installs it.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{Stream, StreamExt};
use matchengine_proto::v1 as pb;
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};

use super::messages::*;
use crate::raft::proto::{snapshot_meta_from_pb, vote_from_pb, vote_to_pb};
use crate::raft::state_machine::{Snapshot, SnapshotData};
use crate::raft::types::Raft;

/// Largest snapshot a peer may announce.
const SNAPSHOT_BYTES_MAX: u64 = 1 << 40;

#[derive(Debug)]
pub struct RaftService {
    raft: Raft,
    incoming_dir: PathBuf,
    next_incoming: AtomicU64,
}

impl RaftService {
    /// Serves `raft`; partial snapshots go to `incoming_dir`, which is
    /// emptied now (what is there is left from a crash).
    pub fn new(raft: Raft, incoming_dir: PathBuf) -> std::io::Result<RaftService> {
        if incoming_dir.exists() {
            std::fs::remove_dir_all(&incoming_dir)?;
        }
        std::fs::create_dir_all(&incoming_dir)?;
        Ok(RaftService {
            raft,
            incoming_dir,
            next_incoming: AtomicU64::new(0),
        })
    }

    async fn receive_snapshot(
        &self,
        mut chunks: Streaming<pb::SnapshotChunk>,
    ) -> Result<pb::SnapshotResponse, Status> {
        let header = match chunks.next().await {
            Some(Ok(pb::SnapshotChunk {
                part: Some(pb::snapshot_chunk::Part::Header(header)),
            })) => header,
            Some(Err(status)) => return Err(status),
            _ => {
                return Err(Status::invalid_argument(
                    "a snapshot stream starts with its header",
                ));
            }
        };
        let invalid = |e: matchengine_codec::CodecError| Status::invalid_argument(e.to_string());
        let vote = vote_from_pb(
            header
                .vote
                .ok_or_else(|| Status::invalid_argument("missing vote"))?,
        )
        .map_err(invalid)?;
        let meta = snapshot_meta_from_pb(
            header
                .meta
                .ok_or_else(|| Status::invalid_argument("missing meta"))?,
        )
        .map_err(invalid)?;
        if header.size_bytes > SNAPSHOT_BYTES_MAX {
            return Err(Status::resource_exhausted(format!(
                "snapshot of {} bytes is over the {SNAPSHOT_BYTES_MAX} byte limit",
                header.size_bytes
            )));
        }
        let number = self.next_incoming.fetch_add(1, Ordering::Relaxed);
        let path = self.incoming_dir.join(format!("incoming-{number}.snap"));
        let result = self
            .write_chunks(&path, header.size_bytes, &mut chunks)
            .await
            .map(|()| path.clone());
        let outcome = match result {
            Ok(path) => {
                let snapshot = Snapshot {
                    meta: meta.clone(),
                    snapshot: SnapshotData {
                        path,
                        size_bytes: header.size_bytes,
                    },
                };
                self.raft
                    .install_full_snapshot(vote, snapshot)
                    .await
                    .map(|response| pb::SnapshotResponse {
                        vote: Some(vote_to_pb(&response.vote)),
                    })
                    .map_err(|e| Status::unavailable(e.to_string()))
            }
            Err(status) => Err(status),
        };
        // The state machine keeps its own copy; this one is done with.
        let _ = tokio::fs::remove_file(&path).await;
        outcome
    }

    async fn write_chunks(
        &self,
        path: &std::path::Path,
        size_bytes: u64,
        chunks: &mut Streaming<pb::SnapshotChunk>,
    ) -> Result<(), Status> {
        let io = |e: std::io::Error| Status::internal(format!("writing {}: {e}", path.display()));
        let mut file = tokio::fs::File::create(path).await.map_err(io)?;
        let mut received = 0u64;
        while let Some(chunk) = chunks.next().await {
            let data = match chunk?.part {
                Some(pb::snapshot_chunk::Part::Data(data)) => data,
                _ => return Err(Status::invalid_argument("a second snapshot header")),
            };
            received += data.len() as u64;
            if received > size_bytes {
                return Err(Status::invalid_argument(format!(
                    "snapshot data exceeds its announced {size_bytes} bytes"
                )));
            }
            file.write_all(&data).await.map_err(io)?;
        }
        if received != size_bytes {
            return Err(Status::invalid_argument(format!(
                "snapshot stream ended after {received} of {size_bytes} bytes"
            )));
        }
        file.flush().await.map_err(io)?;
        Ok(())
    }
}

fn fatal(error: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft is not running: {error}"))
}

fn invalid(error: impl std::fmt::Display) -> Status {
    Status::invalid_argument(error.to_string())
}

type AppendStream = Pin<Box<dyn Stream<Item = Result<pb::StreamAppendResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        request: Request<pb::AppendEntriesRequest>,
    ) -> Result<Response<pb::AppendEntriesResponse>, Status> {
        let request = append_request_from_pb(request.into_inner()).map_err(invalid)?;
        let response = self.raft.append_entries(request).await.map_err(fatal)?;
        Ok(Response::new(append_response_to_pb(&response)))
    }

    type StreamAppendStream = AppendStream;

    async fn stream_append(
        &self,
        request: Request<Streaming<pb::AppendEntriesRequest>>,
    ) -> Result<Response<Self::StreamAppendStream>, Status> {
        // A malformed or failed request ends the input; the leader sees the
        // stream close and starts a new one.
        let input = request.into_inner().scan((), |_, item| {
            let decoded = match item {
                Ok(request) => match append_request_from_pb(request) {
                    Ok(request) => Some(request),
                    Err(error) => {
                        tracing::warn!(%error, "malformed append request; closing the stream");
                        None
                    }
                },
                Err(status) => {
                    tracing::debug!(%status, "append stream ended");
                    None
                }
            };
            futures::future::ready(decoded)
        });
        let output = self.raft.stream_append(input).map(|item| match item {
            Ok(result) => Ok(stream_result_to_pb(&result)),
            Err(error) => Err(fatal(error)),
        });
        Ok(Response::new(Box::pin(output)))
    }

    async fn vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        let request = vote_request_from_pb(request.into_inner()).map_err(invalid)?;
        let response = self.raft.vote(request).await.map_err(fatal)?;
        Ok(Response::new(vote_response_to_pb(&response)))
    }

    async fn pre_vote(
        &self,
        request: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        let request = vote_request_from_pb(request.into_inner()).map_err(invalid)?;
        let response = self.raft.pre_vote(request).await.map_err(fatal)?;
        Ok(Response::new(vote_response_to_pb(&response)))
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<pb::SnapshotChunk>>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        self.receive_snapshot(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn transfer_leader(
        &self,
        request: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        let request = transfer_request_from_pb(request.into_inner()).map_err(invalid)?;
        let response = self
            .raft
            .handle_transfer_leader(request)
            .await
            .map_err(fatal)?;
        Ok(Response::new(transfer_response_to_pb(&response)))
    }
}
