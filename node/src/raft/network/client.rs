//! Outgoing Raft RPCs over gRPC: one reused HTTP/2 channel per peer, with a
//! connect timeout, keep-alives and a per-request timeout from openraft's
//! RPC options. Appends go over one bidirectional stream per replication
//! session (pipelined); snapshots stream as a header and bounded chunks. A
//! peer that cannot be reached is `Unreachable`, so openraft backs off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use matchengine_proto::v1 as pb;
use matchengine_proto::v1::raft_client::RaftClient;
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use tokio::io::AsyncReadExt;
use tonic::transport::{Channel, Endpoint};

use super::messages::*;
use crate::raft::proto::{snapshot_meta_to_pb, vote_from_pb, vote_to_pb};
use crate::raft::state_machine::{Snapshot, SnapshotData};
use crate::raft::types::{NodeId, NodeRecord, TypeConfig, Vote};
use crate::tls::{PeerConnector, TlsWatch};

/// Bytes of snapshot data per message.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// How the node reaches its peers.
#[derive(Clone, Debug)]
pub struct RaftNetwork {
    connect_timeout: Duration,
    source_ip: Option<std::net::IpAddr>,
    message_bytes_max: usize,
    /// Mutual TLS to peers, when the node has a certificate.
    tls: Option<TlsWatch>,
    /// One channel per peer, kept while its address stays the same.
    channels: Arc<Mutex<HashMap<NodeId, (String, Channel)>>>,
}

impl RaftNetwork {
    pub fn new(
        connect_timeout: Duration,
        message_bytes_max: usize,
        source_ip: Option<std::net::IpAddr>,
        tls: Option<TlsWatch>,
    ) -> RaftNetwork {
        RaftNetwork {
            connect_timeout,
            source_ip,
            message_bytes_max,
            tls,
            channels: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn channel(&self, target: NodeId, addr: &str) -> Result<Channel, String> {
        let mut channels = self
            .channels
            .lock()
            .map_err(|_| "the channel cache lock is poisoned".to_string())?;
        if let Some((known, channel)) = channels.get(&target)
            && known == addr
        {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("bad Raft address {addr:?} for node {target}: {e}"))?
            .connect_timeout(self.connect_timeout)
            .local_address(self.source_ip)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(3))
            .keep_alive_while_idle(true);
        let channel = match &self.tls {
            Some(tls) => endpoint
                .connect_with_connector_lazy(PeerConnector::new(self.source_ip, tls.clone())),
            None => endpoint.connect_lazy(),
        };
        channels.insert(target, (addr.to_string(), channel.clone()));
        Ok(channel)
    }
}

/// The connection to one peer.
#[derive(Debug)]
pub struct PeerConnection {
    target: NodeId,
    client: Result<RaftClient<Channel>, String>,
}

impl RaftNetworkFactory<TypeConfig> for RaftNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &NodeRecord) -> PeerConnection {
        let limit = self.message_bytes_max;
        PeerConnection {
            target,
            client: self.channel(target, &node.raft_addr).map(|channel| {
                RaftClient::new(channel)
                    .max_decoding_message_size(limit)
                    .max_encoding_message_size(limit)
            }),
        }
    }
}

/// UNAVAILABLE (refused, reset, no route) means the peer is unreachable:
/// openraft backs off. Anything else is a network error for this request.
fn rpc_error(status: tonic::Status) -> RPCError<TypeConfig> {
    if status.code() == tonic::Code::Unavailable {
        RPCError::Unreachable(Unreachable::from_string(status.to_string()))
    } else {
        RPCError::Network(NetworkError::from_string(status.to_string()))
    }
}

fn decode_error(error: impl std::fmt::Display) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::from_string(format!(
        "malformed response from peer: {error}"
    )))
}

fn streaming(error: RPCError<TypeConfig>) -> StreamingError<TypeConfig> {
    match error {
        RPCError::Unreachable(e) => StreamingError::Unreachable(e),
        RPCError::Timeout(e) => StreamingError::Timeout(e),
        RPCError::Network(e) => StreamingError::Network(e),
        other => StreamingError::Network(NetworkError::from_string(other.to_string())),
    }
}

fn with_timeout<T>(message: T, option: &RPCOption) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(option.soft_ttl());
    request
}

/// A real vote or a pre-vote: the same message, two RPCs.
#[derive(Clone, Copy, Debug)]
enum Ballot {
    Vote,
    PreVote,
}

impl PeerConnection {
    async fn ballot(
        &mut self,
        ballot: Ballot,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let mut client = self.client()?;
        let message = with_timeout(vote_request_to_pb(&request), &option);
        let response = match ballot {
            Ballot::Vote => client.vote(message).await,
            Ballot::PreVote => client.pre_vote(message).await,
        }
        .map_err(rpc_error)?;
        vote_response_from_pb(response.into_inner()).map_err(decode_error)
    }

    fn client(&self) -> Result<RaftClient<Channel>, RPCError<TypeConfig>> {
        self.client
            .clone()
            .map_err(|e| RPCError::Unreachable(Unreachable::from_string(e)))
    }
}

/// The snapshot as a stream: its header, then the file in chunks.
fn snapshot_chunks(
    vote: Vote,
    snapshot: Snapshot,
) -> impl Stream<Item = pb::SnapshotChunk> + Send + 'static {
    let header = pb::SnapshotChunk {
        part: Some(pb::snapshot_chunk::Part::Header(pb::SnapshotHeader {
            vote: Some(vote_to_pb(&vote)),
            meta: Some(snapshot_meta_to_pb(&snapshot.meta)),
            size_bytes: snapshot.snapshot.size_bytes,
        })),
    };
    let path = snapshot.snapshot.path.clone();
    let data = futures::stream::unfold(None, move |file: Option<tokio::fs::File>| {
        let path = path.clone();
        async move {
            let mut file = match file {
                Some(file) => file,
                None => match tokio::fs::File::open(&path).await {
                    Ok(file) => file,
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "cannot read the snapshot to send");
                        return None;
                    }
                },
            };
            let mut chunk = Vec::with_capacity(SNAPSHOT_CHUNK_BYTES);
            match (&mut file)
                .take(SNAPSHOT_CHUNK_BYTES as u64)
                .read_to_end(&mut chunk)
                .await
            {
                Ok(0) => None,
                Ok(_) => Some((
                    pb::SnapshotChunk {
                        part: Some(pb::snapshot_chunk::Part::Data(chunk)),
                    },
                    Some(file),
                )),
                Err(error) => {
                    // The receiver sees a short snapshot and refuses it.
                    tracing::warn!(path = %path.display(), %error, "reading the snapshot to send");
                    None
                }
            }
        }
    });
    futures::stream::iter([header]).chain(data)
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let response = self
            .client()?
            .append_entries(with_timeout(append_request_to_pb(&request), &option))
            .await
            .map_err(rpc_error)?;
        append_response_from_pb(response.into_inner()).map_err(decode_error)
    }

    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        _option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>,
            RPCError<TypeConfig>,
        >,
    >
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        let client = self.client();
        Box::pin(async move {
            let requests = input.map(|request| append_request_to_pb(&request));
            // No overall deadline: the stream lives as long as replication
            // does; HTTP/2 keep-alives detect a dead peer.
            let responses = client?
                .stream_append(tonic::Request::new(requests))
                .await
                .map_err(rpc_error)?
                .into_inner();
            let results = responses.map(|item| match item {
                Ok(response) => stream_result_from_pb(response).map_err(decode_error),
                Err(status) => Err(rpc_error(status)),
            });
            let results: BoxStream<'s, _> = Box::pin(results);
            Ok(results)
        })
    }

    async fn vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.ballot(Ballot::Vote, request, option).await
    }

    async fn pre_vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.ballot(Ballot::PreVote, request, option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client().map_err(streaming)?;
        let target = self.target;
        let send = async move {
            tracing::info!(
                target,
                size_bytes = snapshot.snapshot.size_bytes,
                "sending a snapshot"
            );
            let response = client
                .install_snapshot(tonic::Request::new(snapshot_chunks(vote, snapshot)))
                .await
                .map_err(|status| streaming(rpc_error(status)))?;
            let vote = response
                .into_inner()
                .vote
                .ok_or_else(|| streaming(decode_error("missing vote")))
                .and_then(|vote| vote_from_pb(vote).map_err(|e| streaming(decode_error(e))))?;
            Ok(SnapshotResponse::new(vote))
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = send => result,
        }
    }

    async fn transfer_leader(
        &mut self,
        request: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let response = self
            .client()?
            .transfer_leader(with_timeout(transfer_request_to_pb(&request), &option))
            .await
            .map_err(rpc_error)?;
        transfer_response_from_pb(response.into_inner()).map_err(decode_error)
    }
}
