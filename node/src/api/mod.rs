//! The node's gRPC APIs for people and programs: the client API (orders,
//! market data, key-value, event streams) and the admin API (membership,
//! leadership, snapshots, status). Handlers validate, then read the applied
//! state or hand commands to the proposer; they never touch storage.

pub mod admin;
pub mod auth;
pub mod client;
pub mod convert;
pub mod error;
pub mod oversize;
pub mod validate;

use std::sync::Arc;
use std::time::Instant;

use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use openraft::raft::ReadPolicy;

use crate::config::ServiceLimits;
use crate::events::EventHub;
use crate::health::{Readiness, ReadinessView};
use crate::metrics::Metrics;
use crate::proposer::Proposer;
use crate::raft_types::{NodeId, NodeRecord, Raft};
use crate::storage::{Applied, StateMachineStore};
use error::ApiError;

/// Which of a node's addresses a caller should be redirected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Client,
    Admin,
}

/// What every handler needs; shared by both services.
#[derive(Clone, Debug)]
pub struct ApiContext {
    pub node_id: NodeId,
    pub record: NodeRecord,
    pub raft: Raft,
    pub state_machine: StateMachineStore,
    pub proposer: Proposer,
    pub events: Arc<EventHub>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub limits: ServiceLimits,
    /// Turns true when the node stops taking requests; long-lived streams
    /// end then, so that shutdown does not wait on them.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl ApiContext {
    pub fn readiness(&self) -> ReadinessView {
        self.readiness.view()
    }

    /// The current leader's id and address on `port`, as this node knows it.
    pub fn leader(&self, port: Port) -> (Option<NodeId>, Option<String>) {
        let receiver = self.raft.server_metrics();
        let Some(leader) = receiver.borrow_watched().current_leader else {
            return (None, None);
        };
        (Some(leader), self.address_of(leader, port))
    }

    /// The address of node `id` on `port`, from the membership.
    pub fn address_of(&self, id: NodeId, port: Port) -> Option<String> {
        if id == self.node_id {
            return Some(address(&self.record, port));
        }
        let receiver = self.raft.server_metrics();
        let metrics = receiver.borrow_watched();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .map(|node| address(node, port))
    }

    /// Fails unless this node is the leader, naming the leader otherwise.
    pub fn ensure_leader(&self, port: Port) -> Result<(), ApiError> {
        let state = self.raft.server_metrics().borrow_watched().state;
        if state == ServerState::Leader {
            return Ok(());
        }
        let (_, leader_addr) = self.leader(port);
        Err(ApiError::NotLeader { leader_addr })
    }

    /// Reads the applied state: after a read-index round with a quorum when
    /// `linearizable` (leader only), else as it is on this node.
    pub async fn read<T>(
        &self,
        linearizable: bool,
        read: impl FnOnce(&Applied) -> T,
    ) -> Result<T, ApiError> {
        if linearizable {
            self.ensure_leader(Port::Client)?;
            self.raft
                .ensure_linearizable(ReadPolicy::ReadIndex)
                .await
                .map_err(|error| match error.into_api_error() {
                    Some(openraft::errors::LinearizableReadError::ForwardToLeader(forward)) => {
                        ApiError::NotLeader {
                            leader_addr: forward
                                .leader_id
                                .and_then(|id| self.address_of(id, Port::Client)),
                        }
                    }
                    Some(other) => ApiError::Unavailable(format!("linearizable read: {other}")),
                    None => ApiError::Unavailable("the node is shutting down".into()),
                })?;
        }
        self.state_machine
            .read(read)
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Runs a handler, counting it by method and status code and timing it.
    pub async fn metered<T>(
        &self,
        service: &'static str,
        method: &'static str,
        handler: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<tonic::Response<T>, tonic::Status> {
        let started = Instant::now();
        let result = handler.await;
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(error) => error.code(),
        };
        self.metrics
            .observe_request(service, method, code, started.elapsed());
        result
            .map(tonic::Response::new)
            .map_err(tonic::Status::from)
    }
}

fn address(node: &NodeRecord, port: Port) -> String {
    match port {
        Port::Client => node.client_addr.clone(),
        Port::Admin => node.admin_addr.clone(),
    }
}
