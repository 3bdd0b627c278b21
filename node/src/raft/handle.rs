//! The one handle the rest of the node holds on a Raft group: what it
//! knows ([`RaftStatus`], [`Members`]), the changes it can be asked for
//! (bootstrap, membership, leadership, snapshots), linearizable reads and
//! writes of command batches. Only our own types cross this boundary, so
//! the API, health, metrics and the proposer never name an openraft type;
//! an openraft upgrade stops at the `raft` folder.
//!
//! One handle is one group: nothing here is global, so a process could
//! later host one group per shard of instruments, each with its own handle.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ChangeMembershipError, ClientWriteError, Fatal, InitializeError};
use openraft::impls::ProgressResponder;
use openraft::raft::{ClientWriteResult, ReadPolicy};
use openraft::{ChangeMembers, RaftMetrics, ServerState};

use super::types::{NodeId, NodeRecord, Raft, TypeConfig};
use crate::replica::outcome::BatchOutcome;
use matchengine_codec::batch::CommandBatch;

/// A node's role in its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Learner,
    Follower,
    Candidate,
    Leader,
    Shutdown,
}

/// What this node knows of its group now. Cheap to take: no membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftStatus {
    pub node_id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader_id: Option<NodeId>,
    pub last_log_index: Option<u64>,
    pub committed_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    /// Where the membership in force was written in the log.
    pub membership_index: Option<u64>,
    /// Why Raft stopped by itself (a storage error, a panic); `None` while
    /// it runs.
    pub fatal: Option<String>,
}

/// The membership in force: voters and learners with their addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    pub log_index: Option<u64>,
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    pub records: BTreeMap<NodeId, NodeRecord>,
    /// A joint configuration: a change is half done.
    pub joint: bool,
}

/// A membership change, one kind at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Learners (already members) become voters.
    Promote(BTreeSet<NodeId>),
    /// Voters leave the group entirely.
    RemoveVoters(BTreeSet<NodeId>),
    /// Learners leave the group.
    RemoveLearners(BTreeSet<NodeId>),
}

/// Why the group did not do what it was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RaftError {
    #[error("this node is not the leader")]
    NotLeader { leader_id: Option<NodeId> },
    /// Another membership change is still being committed: transient.
    #[error("retry: {0}")]
    ChangeInProgress(String),
    /// The change cannot be made as asked.
    #[error("{0}")]
    Refused(String),
    #[error("this node is already part of a cluster")]
    AlreadyInitialized,
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("the node is shutting down")]
    ShuttingDown,
}

/// Why a submitted batch has no outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("this node is not the leader")]
    NotLeader { leader_id: Option<NodeId> },
    #[error("{0}")]
    Failed(String),
    /// The leader stepped down or stopped before applying: the entry may
    /// or may not commit later.
    #[error("leadership changed before the entry was applied")]
    Abandoned,
}

/// A batch handed to Raft, waiting to be committed and applied.
#[derive(Debug)]
pub struct PendingWrite {
    applied:
        openraft::type_config::alias::OneshotReceiverOf<TypeConfig, ClientWriteResult<TypeConfig>>,
}

impl PendingWrite {
    /// The batch's outcome once a quorum has it on disk and it is applied.
    pub async fn applied(self) -> Result<BatchOutcome, WriteError> {
        match self.applied.await {
            Ok(Ok(response)) => Ok(response.data),
            Ok(Err(ClientWriteError::ForwardToLeader(forward))) => Err(WriteError::NotLeader {
                leader_id: forward.leader_id,
            }),
            Ok(Err(other)) => Err(WriteError::Failed(other.to_string())),
            Err(_) => Err(WriteError::Abandoned),
        }
    }
}

/// Follows the group's status as it changes.
pub struct StatusWatch {
    receiver: openraft::type_config::alias::WatchReceiverOf<TypeConfig, RaftMetrics<TypeConfig>>,
}

impl std::fmt::Debug for StatusWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWatch").finish_non_exhaustive()
    }
}

impl StatusWatch {
    pub fn status(&self) -> RaftStatus {
        status_of(&self.receiver.borrow_watched())
    }

    /// Waits for the next change; `false` once the group has stopped.
    pub async fn changed(&mut self) -> bool {
        self.receiver.changed().await.is_ok()
    }
}

fn role_of(state: ServerState) -> Role {
    match state {
        ServerState::Learner => Role::Learner,
        ServerState::Follower => Role::Follower,
        ServerState::Candidate => Role::Candidate,
        ServerState::Leader => Role::Leader,
        ServerState::Shutdown => Role::Shutdown,
    }
}

fn status_of(metrics: &RaftMetrics<TypeConfig>) -> RaftStatus {
    RaftStatus {
        node_id: metrics.id,
        role: role_of(metrics.state),
        term: metrics.current_term,
        leader_id: metrics.current_leader,
        last_log_index: metrics.last_log_index,
        committed_index: metrics.local_committed.as_ref().map(|id| id.index),
        applied_index: metrics.last_applied.as_ref().map(|id| id.index),
        snapshot_index: metrics.snapshot.as_ref().map(|id| id.index),
        purged_index: metrics.purged.as_ref().map(|id| id.index),
        membership_index: metrics
            .membership_config
            .log_id()
            .as_ref()
            .map(|id| id.index),
        fatal: metrics
            .running_state
            .as_ref()
            .err()
            .map(ToString::to_string),
    }
}

/// [`RaftHandle::report`]: one consistent reading of the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftReport {
    pub status: RaftStatus,
    pub members: Members,
    pub replication: Option<BTreeMap<NodeId, Option<u64>>>,
}

fn members_of(metrics: &RaftMetrics<TypeConfig>) -> Members {
    let membership = metrics.membership_config.membership();
    Members {
        log_index: metrics
            .membership_config
            .log_id()
            .as_ref()
            .map(|id| id.index),
        voters: membership.voter_ids().collect(),
        learners: membership.learner_ids().collect(),
        records: membership
            .nodes()
            .map(|(id, record)| (*id, record.clone()))
            .collect(),
        joint: membership.get_joint_config().len() > 1,
    }
}

fn replication_of(metrics: &RaftMetrics<TypeConfig>) -> Option<BTreeMap<NodeId, Option<u64>>> {
    metrics.replication.as_ref().map(|replication| {
        replication
            .iter()
            .filter(|(id, _)| **id != metrics.id)
            .map(|(id, matched)| (*id, matched.as_ref().map(|log_id| log_id.index)))
            .collect()
    })
}

/// A handle on one Raft group; clones share it.
#[derive(Clone, Debug)]
pub struct RaftHandle {
    raft: Raft,
}

impl RaftHandle {
    pub(super) fn new(raft: Raft) -> RaftHandle {
        RaftHandle { raft }
    }

    pub fn status(&self) -> RaftStatus {
        status_of(&self.raft.metrics().borrow_watched())
    }

    pub fn watch(&self) -> StatusWatch {
        StatusWatch {
            receiver: self.raft.metrics(),
        }
    }

    /// Whether this node leads now (cheap: for every request).
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow_watched().state == ServerState::Leader
    }

    /// The leader this node knows of (cheap: for every request).
    pub fn leader_id(&self) -> Option<NodeId> {
        self.raft.metrics().borrow_watched().current_leader
    }

    /// Member `id`'s addresses, from the membership in force.
    pub fn record_of(&self, id: NodeId) -> Option<NodeRecord> {
        let receiver = self.raft.metrics();
        let metrics = receiver.borrow_watched();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .cloned()
    }

    pub fn members(&self) -> Members {
        members_of(&self.raft.metrics().borrow_watched())
    }

    /// On the leader: each other member's last replicated index (`None`
    /// when nothing is known to match yet). `None` on a follower.
    pub fn replication(&self) -> Option<BTreeMap<NodeId, Option<u64>>> {
        replication_of(&self.raft.metrics().borrow_watched())
    }

    /// Status, membership and replication read at one instant, so that a
    /// report's lags and membership agree with its indexes.
    pub fn report(&self) -> RaftReport {
        let receiver = self.raft.metrics();
        let metrics = receiver.borrow_watched();
        RaftReport {
            status: status_of(&metrics),
            members: members_of(&metrics),
            replication: replication_of(&metrics),
        }
    }

    /// The most caught-up voter other than this node, for a handover.
    pub fn successor(&self) -> Option<NodeId> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        super::leadership::successor(&metrics, metrics.id)
    }

    /// Waits (bounded) until `condition` holds for the status.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        condition: impl Fn(&RaftStatus) -> bool + Send,
    ) -> Result<RaftStatus, RaftError> {
        self.raft
            .wait(Some(timeout))
            .metrics(move |metrics| condition(&status_of(metrics)), what)
            .await
            .map(|metrics| status_of(&metrics))
            .map_err(|e| RaftError::Unavailable(e.to_string()))
    }

    /// Makes a new group of `members`.
    pub async fn initialize(&self, members: BTreeMap<NodeId, NodeRecord>) -> Result<(), RaftError> {
        self.raft
            .initialize(members)
            .await
            .map_err(|error| match error.into_api_error() {
                Some(InitializeError::NotAllowed(_)) => RaftError::AlreadyInitialized,
                Some(other) => RaftError::Invalid(other.to_string()),
                None => RaftError::ShuttingDown,
            })
    }

    pub async fn add_learner(
        &self,
        id: NodeId,
        record: NodeRecord,
        wait_caught_up: bool,
    ) -> Result<(), RaftError> {
        self.raft
            .add_learner(id, record, wait_caught_up)
            .await
            .map(|_| ())
            .map_err(membership_error)
    }

    pub async fn change_membership(&self, change: MembershipChange) -> Result<(), RaftError> {
        let change = match change {
            MembershipChange::Promote(ids) => ChangeMembers::AddVoterIds(ids),
            // retain = false: a removed voter leaves the cluster entirely.
            MembershipChange::RemoveVoters(ids) => ChangeMembers::RemoveVoters(ids),
            MembershipChange::RemoveLearners(ids) => ChangeMembers::RemoveNodes(ids),
        };
        self.raft
            .change_membership(change, false)
            .await
            .map(|_| ())
            .map_err(membership_error)
    }

    pub async fn transfer_leader(&self, to: NodeId) -> Result<(), RaftError> {
        self.raft
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| RaftError::Unavailable(e.to_string()))
    }

    pub async fn trigger_snapshot(&self) -> Result<(), RaftError> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| RaftError::Unavailable(e.to_string()))
    }

    /// Returns once this node, as leader, has confirmed with a quorum that
    /// everything committed before the call is applied here (read index).
    pub async fn ensure_linearizable(&self) -> Result<(), RaftError> {
        self.raft
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
            .map(|_| ())
            .map_err(|error| match error.into_api_error() {
                Some(openraft::errors::LinearizableReadError::ForwardToLeader(forward)) => {
                    RaftError::NotLeader {
                        leader_id: forward.leader_id,
                    }
                }
                Some(other) => RaftError::Unavailable(format!("linearizable read: {other}")),
                None => RaftError::ShuttingDown,
            })
    }

    /// Hands `batch` to Raft as one log entry; the returned write resolves
    /// once it is applied. Fails only when Raft has stopped.
    pub async fn submit(&self, batch: CommandBatch) -> Result<PendingWrite, RaftError> {
        let (responder, applied) = ProgressResponder::complete_only();
        self.raft
            .write(batch)
            .responder(responder)
            .await
            .map_err(|_| RaftError::ShuttingDown)?;
        Ok(PendingWrite { applied })
    }

    /// The longest election timeout, for waits that span an election.
    pub fn election_timeout_max(&self) -> Duration {
        Duration::from_millis(self.raft.config().election_timeout_max)
    }

    /// Resolves when Raft stops without being asked to (a storage error
    /// such as a full disk, or a panic), with the reason.
    pub async fn stopped_by_itself(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_watched().running_state {
                return fatal.to_string();
            }
            // The sender is dropped when the core task ends, even by a panic.
            if metrics.changed().await.is_err() {
                return Fatal::<TypeConfig>::Panicked.to_string();
            }
        }
    }

    /// If this node leads, asks the most caught-up voter to take over and
    /// waits (bounded) until another leader is known.
    pub async fn hand_over_leadership(&self) {
        let status = self.status();
        if status.role != Role::Leader {
            return;
        }
        let me = status.node_id;
        let Some(successor) = self.successor() else {
            return;
        };
        tracing::info!(successor, "handing leadership over before stopping");
        if self.transfer_leader(successor).await.is_err() {
            return;
        }
        let timeout = self.election_timeout_max() * 3;
        match self
            .wait_for(timeout, "another leader", |status| {
                status.leader_id.is_some_and(|leader| leader != me)
            })
            .await
        {
            Ok(status) => tracing::info!(leader = ?status.leader_id, "leadership handed over"),
            Err(error) => tracing::warn!(%error, "leadership handover not confirmed"),
        }
    }

    pub async fn shutdown(&self) -> Result<(), RaftError> {
        self.raft
            .shutdown()
            .await
            .map_err(|e| RaftError::Unavailable(e.to_string()))
    }
}

fn membership_error(
    error: openraft::errors::RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
) -> RaftError {
    match error.into_api_error() {
        Some(ClientWriteError::ForwardToLeader(forward)) => RaftError::NotLeader {
            leader_id: forward.leader_id,
        },
        Some(ClientWriteError::ChangeMembershipError(ChangeMembershipError::InProgress(
            in_progress,
        ))) => RaftError::ChangeInProgress(in_progress.to_string()),
        Some(ClientWriteError::ChangeMembershipError(error)) => {
            RaftError::Refused(error.to_string())
        }
        Some(other) => RaftError::Unavailable(other.to_string()),
        None => RaftError::ShuttingDown,
    }
}
