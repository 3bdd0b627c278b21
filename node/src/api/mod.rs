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

use std::sync::Arc;
use std::time::Instant;

use matchengine_book as book;
use matchengine_codec::batch::{KvCommand, NodeCommand};

use crate::config::ServiceLimits;
use crate::events::EventHub;
use crate::health::{Readiness, ReadinessView};
use crate::metrics::Metrics;
use crate::proposer::{ProposeError, Proposer};
use crate::raft::handle::{RaftError, RaftHandle};
use crate::raft::state_machine::StateMachineStore;
use crate::raft::types::{NodeId, NodeRecord};
use crate::replica::admission::{self, Refusal};
use crate::replica::state::ReplicatedState;
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
    pub raft: RaftHandle,
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
        let Some(leader) = self.raft.leader_id() else {
            return (None, None);
        };
        (Some(leader), self.address_of(leader, port))
    }

    /// The address of node `id` on `port`, from the membership.
    pub fn address_of(&self, id: NodeId, port: Port) -> Option<String> {
        if id == self.node_id {
            return Some(address(&self.record, port));
        }
        self.raft.record_of(id).map(|node| address(&node, port))
    }

    /// Fails unless this node is the leader, naming the leader otherwise.
    pub fn ensure_leader(&self, port: Port) -> Result<(), ApiError> {
        if self.raft.is_leader() {
            return Ok(());
        }
        let (_, leader_addr) = self.leader(port);
        Err(ApiError::NotLeader { leader_addr })
    }

    /// The API's answer to a Raft error: a redirect names the leader's
    /// address on `port`.
    pub fn raft_error(&self, error: RaftError, port: Port) -> ApiError {
        match error {
            RaftError::NotLeader { leader_id } => ApiError::NotLeader {
                leader_addr: leader_id.and_then(|id| self.address_of(id, port)),
            },
            RaftError::Refused(reason) => ApiError::FailedPrecondition(reason),
            RaftError::AlreadyInitialized => ApiError::FailedPrecondition(error.to_string()),
            RaftError::Invalid(reason) => ApiError::Invalid(reason),
            RaftError::ChangeInProgress(_)
            | RaftError::Unavailable(_)
            | RaftError::ShuttingDown => ApiError::Unavailable(error.to_string()),
        }
    }

    /// Admits a decoded book command: leadership first (a follower only
    /// redirects), then the one check every command passes before it is
    /// proposed, against the leader's applied state (see [`admission`]).
    pub fn admit_book(&self, command: &book::Command, port: Port) -> Result<(), ApiError> {
        self.ensure_leader(port)?;
        self.check_admission(|state| admission::admit_book(state, command).map_err(Refusal::Book))
    }

    /// [`ApiContext::admit_book`] for a key-value command.
    pub fn admit_kv(&self, command: &KvCommand, port: Port) -> Result<(), ApiError> {
        self.ensure_leader(port)?;
        self.check_admission(|state| admission::admit_kv(state, command).map_err(Refusal::Kv))
    }

    /// The admission check alone, for a caller that has checked leadership
    /// already (once for a whole batch).
    pub fn admit_on_leader(&self, command: &NodeCommand) -> Result<(), ApiError> {
        self.check_admission(|state| admission::admit(state, command))
    }

    fn check_admission(
        &self,
        check: impl FnOnce(&ReplicatedState) -> Result<(), Refusal>,
    ) -> Result<(), ApiError> {
        self.read_state(check)?.map_err(|refusal| match refusal {
            Refusal::Book(reason) => ApiError::Rejected(reason),
            Refusal::Kv(reject) => ApiError::Kv(reject),
        })
    }

    /// The API's answer to a proposal that has no outcome: a redirect names
    /// the leader's address on `port`.
    pub fn propose_error(&self, error: ProposeError, port: Port) -> ApiError {
        ApiError::from_propose(error, |id| self.address_of(id, port))
    }

    /// Reads the applied state as it is on this node.
    pub fn read_state<T>(&self, read: impl FnOnce(&ReplicatedState) -> T) -> Result<T, ApiError> {
        self.state_machine
            .read(read)
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Reads the applied state: after a read-index round with a quorum when
    /// `linearizable` (leader only), else as it is on this node.
    pub async fn read<T>(
        &self,
        linearizable: bool,
        read: impl FnOnce(&ReplicatedState) -> T,
    ) -> Result<T, ApiError> {
        if linearizable {
            self.ensure_leader(Port::Client)?;
            self.raft
                .ensure_linearizable()
                .await
                .map_err(|error| self.raft_error(error, Port::Client))?;
        }
        self.read_state(read)
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
