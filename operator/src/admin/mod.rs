//! The admin calls the operator makes, behind a small trait so that the
//! reconciler can be tested with scripted answers, and the tonic client
//! that makes them for real.
//!
//! Nodes are named by id only; an [`AddressBook`] maps an id to the node's
//! record (its advertised addresses), which is all that differs between
//! Kubernetes (`<pod>.<headless>.<ns>.svc.<domain>:7002`) and a loopback
//! test (`127.0.0.1:<port>`). What the calls carry (a TLS client identity,
//! a bearer token) is [`AdminAuth`], read from files by [`auth`]. Nothing
//! here decides anything.

mod auth;
mod client;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use matchengine_proto::v1::{InstrumentSpec, NodeRecord, Role, StatusResponse};

pub use auth::{
    AdminAuth, AdminCredentialFiles, AuthError, ClientTls, ClientTlsFiles, client_tls_from_pem,
    read_client_tls,
};
pub use client::{ChannelCache, ChannelKey, TonicAdmin};

use crate::plan::{NodeRole, NodeStatus};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("node {node_id}: invalid admin address {addr:?}: {source}")]
    Address {
        node_id: u64,
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("node {node_id}: TLS client configuration for {addr:?}: {source}")]
    Tls {
        node_id: u64,
        addr: String,
        source: tonic::transport::Error,
    },
    /// The node refused the operator's credentials (token or certificate).
    #[error("node {node_id} refused the operator's credentials: {code:?}: {message}")]
    Denied {
        node_id: u64,
        code: tonic::Code,
        message: String,
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
    pub(crate) fn from_status(node_id: u64, status: &tonic::Status) -> Self {
        match status.code() {
            tonic::Code::FailedPrecondition => AdminError::NotLeader {
                node_id,
                leader_addr: status
                    .metadata()
                    .get(matchengine_proto::metadata::LEADER)
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
            code @ (tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) => {
                AdminError::Denied {
                    node_id,
                    code,
                    message: status.message().to_owned(),
                }
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
            AdminError::Tls { .. } => "tls",
            AdminError::Denied { .. } => "denied",
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
        status.metadata_mut().insert(
            matchengine_proto::metadata::LEADER,
            "n2:7002".parse().unwrap(),
        );
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
        assert!(matches!(
            AdminError::from_status(1, &tonic::Status::unauthenticated("bad token")),
            AdminError::Denied {
                code: tonic::Code::Unauthenticated,
                ..
            }
        ));
        assert_eq!(
            AdminError::from_status(1, &tonic::Status::permission_denied("")).reason(),
            "denied"
        );
    }
}
