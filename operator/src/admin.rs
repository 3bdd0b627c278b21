//! The admin calls the operator makes, behind a small trait so that the
//! reconciler can be tested with scripted answers, and the tonic client
//! that makes them for real.
//!
//! Nodes are named by id only; an [`AddressBook`] maps an id to the node's
//! record (its advertised addresses), which is all that differs between
//! Kubernetes (`<pod>.<headless>.<ns>.svc.<domain>:7002`) and a loopback
//! test (`127.0.0.1:<port>`). Nothing here decides anything.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matchengine_proto::v1::admin_client::AdminClient;
use matchengine_proto::v1::{
    ChangeMembershipRequest, InitializeRequest, InstrumentSpec, NodeRecord, Role, StatusRequest,
    StatusResponse, TransferLeadershipRequest,
};
use tonic::transport::{Channel, Endpoint};

use crate::plan::{NodeRole, NodeStatus};

/// Response metadata naming the leader's admin address on a redirect.
pub const LEADER_METADATA: &str = "x-matchengine-leader";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("node {node_id}: invalid admin address {addr:?}: {source}")]
    Address {
        node_id: u64,
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("node {node_id} is not the leader (leader at {leader_addr:?})")]
    NotLeader {
        node_id: u64,
        leader_addr: Option<String>,
    },
    #[error("node {node_id} is unavailable: {message}")]
    Unavailable { node_id: u64, message: String },
    #[error("node {node_id} did not answer in time")]
    Timeout { node_id: u64 },
    #[error("node {node_id}: {code:?}: {message}")]
    Rpc {
        node_id: u64,
        code: tonic::Code,
        message: String,
    },
}

impl AdminError {
    fn from_status(node_id: u64, status: &tonic::Status) -> Self {
        match status.code() {
            tonic::Code::FailedPrecondition => AdminError::NotLeader {
                node_id,
                leader_addr: status
                    .metadata()
                    .get(LEADER_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            },
            tonic::Code::Unavailable => AdminError::Unavailable {
                node_id,
                message: status.message().to_owned(),
            },
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                AdminError::Timeout { node_id }
            }
            code => AdminError::Rpc {
                node_id,
                code,
                message: status.message().to_owned(),
            },
        }
    }

    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AdminError::Address { .. } => "address",
            AdminError::NotLeader { .. } => "not_leader",
            AdminError::Unavailable { .. } => "unavailable",
            AdminError::Timeout { .. } => "timeout",
            AdminError::Rpc { .. } => "rpc",
        }
    }
}

/// The admin calls, by node id. Calls that change the cluster name the
/// leader they must reach.
pub trait AdminApi: Send + Sync {
    fn status(&self, node_id: u64) -> impl Future<Output = Result<NodeStatus, AdminError>> + Send;
    /// Makes `node_id` the first and only member.
    fn initialize(&self, node_id: u64) -> impl Future<Output = Result<(), AdminError>> + Send;
    fn add_learner(
        &self,
        leader_id: u64,
        node_id: u64,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;
    fn change_membership(
        &self,
        leader_id: u64,
        promote: Vec<u64>,
        remove: Vec<u64>,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;
    fn transfer_leadership(
        &self,
        leader_id: u64,
        to_node_id: u64,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;
    /// Creates an instrument; one that exists already counts as created.
    fn add_instrument(
        &self,
        leader_id: u64,
        spec: InstrumentSpec,
    ) -> impl Future<Output = Result<(), AdminError>> + Send;
}

/// Maps a node id to the record the node registers (its advertised raft,
/// client and admin addresses, `host:port`).
pub trait AddressBook: Send + Sync {
    fn record(&self, node_id: u64) -> NodeRecord;
}

impl<F> AddressBook for F
where
    F: Fn(u64) -> NodeRecord + Send + Sync,
{
    fn record(&self, node_id: u64) -> NodeRecord {
        self(node_id)
    }
}

/// How long the operator waits on a node.
#[derive(Clone, Copy, Debug)]
pub struct AdminTimeouts {
    pub connect: Duration,
    pub request: Duration,
    /// How long TransferLeadership waits for the new leader to be known.
    pub transfer_wait: Duration,
}

impl Default for AdminTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(10),
            transfer_wait: Duration::from_secs(5),
        }
    }
}

/// Lazily connected channels by admin address, shared by every client
/// made from it so that reconciles reuse connections (tonic reconnects,
/// and re-resolves DNS, when a pod comes back with a new IP).
pub type ChannelCache = Arc<Mutex<HashMap<String, Channel>>>;

/// The real admin client.
pub struct TonicAdmin<B> {
    addresses: B,
    timeouts: AdminTimeouts,
    channels: ChannelCache,
}

impl<B> std::fmt::Debug for TonicAdmin<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TonicAdmin")
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl<B: AddressBook> TonicAdmin<B> {
    pub fn new(addresses: B, timeouts: AdminTimeouts) -> Self {
        Self::with_channels(addresses, timeouts, ChannelCache::default())
    }

    pub fn with_channels(addresses: B, timeouts: AdminTimeouts, channels: ChannelCache) -> Self {
        Self {
            addresses,
            timeouts,
            channels,
        }
    }

    fn client(&self, node_id: u64) -> Result<AdminClient<Channel>, AdminError> {
        let addr = self.addresses.record(node_id).admin_addr;
        // A poisoned lock only means another call panicked mid-insert; the
        // map itself is still a valid cache.
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(&addr) {
            return Ok(AdminClient::new(channel.clone()));
        }
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|source| AdminError::Address {
                node_id,
                addr: addr.clone(),
                source,
            })?
            .connect_timeout(self.timeouts.connect)
            .timeout(self.timeouts.request);
        let channel = endpoint.connect_lazy();
        channels.insert(addr, channel.clone());
        Ok(AdminClient::new(channel))
    }
}

impl<B: AddressBook> AdminApi for TonicAdmin<B> {
    async fn status(&self, node_id: u64) -> Result<NodeStatus, AdminError> {
        let response = self
            .client(node_id)?
            .status(StatusRequest {})
            .await
            .map_err(|s| AdminError::from_status(node_id, &s))?;
        Ok(node_status(node_id, response.into_inner()))
    }

    async fn initialize(&self, node_id: u64) -> Result<(), AdminError> {
        self.client(node_id)?
            .initialize(InitializeRequest { members: vec![] })
            .await
            .map_err(|s| AdminError::from_status(node_id, &s))?;
        Ok(())
    }

    async fn add_learner(&self, leader_id: u64, node_id: u64) -> Result<(), AdminError> {
        let request = matchengine_proto::v1::AddLearnerRequest {
            node: Some(self.addresses.record(node_id)),
            // The planner polls the lag and promotes; a blocking call would
            // hold the reconciler for as long as the catch-up takes.
            wait_caught_up: false,
        };
        self.client(leader_id)?
            .add_learner(request)
            .await
            .map_err(|s| AdminError::from_status(leader_id, &s))?;
        Ok(())
    }

    async fn change_membership(
        &self,
        leader_id: u64,
        promote: Vec<u64>,
        remove: Vec<u64>,
    ) -> Result<(), AdminError> {
        self.client(leader_id)?
            .change_membership(ChangeMembershipRequest { promote, remove })
            .await
            .map_err(|s| AdminError::from_status(leader_id, &s))?;
        Ok(())
    }

    async fn transfer_leadership(&self, leader_id: u64, to_node_id: u64) -> Result<(), AdminError> {
        let wait_ms = u32::try_from(self.timeouts.transfer_wait.as_millis()).unwrap_or(u32::MAX);
        self.client(leader_id)?
            .transfer_leadership(TransferLeadershipRequest {
                to_node_id,
                wait_ms,
            })
            .await
            .map_err(|s| AdminError::from_status(leader_id, &s))?;
        Ok(())
    }

    async fn add_instrument(&self, leader_id: u64, spec: InstrumentSpec) -> Result<(), AdminError> {
        match self.client(leader_id)?.add_instrument(spec).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(()),
            Err(status) => Err(AdminError::from_status(leader_id, &status)),
        }
    }
}

fn role(role: i32) -> NodeRole {
    match Role::try_from(role) {
        Ok(Role::Learner) => NodeRole::Learner,
        Ok(Role::Follower) => NodeRole::Follower,
        Ok(Role::Candidate) => NodeRole::Candidate,
        Ok(Role::Leader) => NodeRole::Leader,
        Ok(Role::Shutdown) => NodeRole::Shutdown,
        Ok(Role::Unspecified) | Err(_) => NodeRole::Unknown,
    }
}

/// What the planner needs from a Status answer. `node_id` is the id the
/// operator asked: a node answering under another id (a pod that mounted
/// the wrong volume) is reported as uninitialized for this slot, never
/// trusted as this member.
pub fn node_status(node_id: u64, response: StatusResponse) -> NodeStatus {
    let answered_as = response.node.as_ref().map_or(node_id, |n| n.node_id);
    let membership = response.membership.unwrap_or_default();
    let ids = |records: &[NodeRecord]| records.iter().map(|r| r.node_id).collect::<BTreeSet<_>>();
    let lag_entries: BTreeMap<u64, u64> = response
        .replication
        .iter()
        .map(|p| (p.node_id, p.lag_entries))
        .collect();
    NodeStatus {
        node_id,
        initialized: response.initialized && answered_as == node_id,
        role: role(response.role),
        term: response.term,
        leader_id: response.leader_id,
        committed_index: response.committed_index,
        voters: ids(&membership.voters),
        learners: ids(&membership.learners),
        joint: membership.joint,
        lag_entries,
    }
}

/// Shares one admin client between reconciles.
impl<A: AdminApi> AdminApi for Arc<A> {
    fn status(&self, node_id: u64) -> impl Future<Output = Result<NodeStatus, AdminError>> + Send {
        (**self).status(node_id)
    }
    fn initialize(&self, node_id: u64) -> impl Future<Output = Result<(), AdminError>> + Send {
        (**self).initialize(node_id)
    }
    fn add_learner(
        &self,
        leader_id: u64,
        node_id: u64,
    ) -> impl Future<Output = Result<(), AdminError>> + Send {
        (**self).add_learner(leader_id, node_id)
    }
    fn change_membership(
        &self,
        leader_id: u64,
        promote: Vec<u64>,
        remove: Vec<u64>,
    ) -> impl Future<Output = Result<(), AdminError>> + Send {
        (**self).change_membership(leader_id, promote, remove)
    }
    fn transfer_leadership(
        &self,
        leader_id: u64,
        to_node_id: u64,
    ) -> impl Future<Output = Result<(), AdminError>> + Send {
        (**self).transfer_leadership(leader_id, to_node_id)
    }
    fn add_instrument(
        &self,
        leader_id: u64,
        spec: InstrumentSpec,
    ) -> impl Future<Output = Result<(), AdminError>> + Send {
        (**self).add_instrument(leader_id, spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchengine_proto::v1::{Cluster, FollowerProgress};

    fn record(node_id: u64) -> NodeRecord {
        NodeRecord {
            node_id,
            raft_addr: format!("n{node_id}:7001"),
            client_addr: format!("n{node_id}:7000"),
            admin_addr: format!("n{node_id}:7002"),
        }
    }

    #[test]
    fn status_answer_is_reduced_for_the_planner() {
        let response = StatusResponse {
            node: Some(record(1)),
            role: Role::Leader as i32,
            term: 4,
            leader_id: 1,
            committed_index: 90,
            initialized: true,
            membership: Some(Cluster {
                voters: vec![record(1), record(2)],
                learners: vec![record(3)],
                joint: false,
                log_index: 7,
            }),
            replication: vec![FollowerProgress {
                node_id: 3,
                matched_index: 40,
                lag_entries: 50,
            }],
            ..StatusResponse::default()
        };
        let status = node_status(1, response.clone());
        assert_eq!(status.role, NodeRole::Leader);
        assert!(status.initialized);
        assert_eq!(status.voters, BTreeSet::from([1, 2]));
        assert_eq!(status.learners, BTreeSet::from([3]));
        assert_eq!(status.lag_entries, BTreeMap::from([(3, 50)]));
        // Answering under another id: not this slot's member.
        assert!(!node_status(2, response).initialized);
    }

    #[test]
    fn redirects_and_codes_map_to_errors() {
        let mut status = tonic::Status::failed_precondition("not leader");
        status
            .metadata_mut()
            .insert(LEADER_METADATA, "n2:7002".parse().unwrap());
        assert!(matches!(
            AdminError::from_status(1, &status),
            AdminError::NotLeader { node_id: 1, leader_addr: Some(a) } if a == "n2:7002"
        ));
        assert!(matches!(
            AdminError::from_status(1, &tonic::Status::unavailable("no leader")),
            AdminError::Unavailable { .. }
        ));
        assert_eq!(
            AdminError::from_status(1, &tonic::Status::deadline_exceeded("")).reason(),
            "timeout"
        );
    }

    #[tokio::test]
    async fn unreachable_node_is_an_error_not_a_hang() {
        // A port that was just free: the connect is refused at once and
        // the call reports it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let admin = TonicAdmin::new(
            move |id| NodeRecord {
                node_id: id,
                admin_addr: format!("127.0.0.1:{port}"),
                ..NodeRecord::default()
            },
            AdminTimeouts::default(),
        );
        let error = admin.status(1).await.unwrap_err();
        assert!(matches!(error, AdminError::Unavailable { .. }), "{error:?}");
    }
}
