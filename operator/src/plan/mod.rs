//! The membership planner: from what is observed (desired voters, the
//! StatefulSet's size, each pod and what its admin API answered) to the one
//! next step. Pure: no I/O, no clock, no Kubernetes types, so that the same
//! code drives a Kubernetes cluster and a loopback test of real processes.
//!
//! Node ids are StatefulSet ordinals plus one; "slot" `id` is pod
//! `ordinal = id - 1`. The one rule above all others: never take a step
//! after which fewer voters are healthy than a quorum of the new voter set
//! (the single exception, restarting the only voter of a one-voter cluster
//! for an upgrade, is unavoidable and reported as such).

mod planner;
mod summary;

#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod sim;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use planner::plan;
pub use summary::{MemberRole, MemberSummary, Summary, summarize};

/// A node's Raft role as its admin Status reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    Learner,
    Follower,
    Candidate,
    Leader,
    Shutdown,
    Unknown,
}

/// What one node's admin `Status` answered, reduced to what planning needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub node_id: u64,
    /// False: the node has no membership (a new or an emptied volume).
    pub initialized: bool,
    pub role: NodeRole,
    pub term: u64,
    /// 0 when no leader is known.
    pub leader_id: u64,
    pub committed_index: u64,
    /// The membership as this node knows it.
    pub voters: BTreeSet<u64>,
    pub learners: BTreeSet<u64>,
    /// A joint configuration: a membership change is in flight.
    pub joint: bool,
    /// On the leader: entries each other member is behind.
    pub lag_entries: BTreeMap<u64, u64>,
}

/// One StatefulSet slot (or, in a loopback test, one process slot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodObservation {
    pub node_id: u64,
    /// The pod object exists (Kubernetes) or the process runs (loopback).
    pub exists: bool,
    /// Being deleted: a restart is in progress.
    pub terminating: bool,
    /// Runs the desired pod template (image and configuration).
    pub current: bool,
    /// The admin Status answer; `None` when the admin API did not answer.
    pub status: Option<NodeStatus>,
}

impl PodObservation {
    /// A slot with no pod at all.
    pub fn absent(node_id: u64) -> Self {
        Self {
            node_id,
            exists: false,
            terminating: false,
            current: true,
            status: None,
        }
    }
}

/// Everything the planner looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// Voters the spec asks for.
    pub replicas_desired: u32,
    /// Pods the StatefulSet has now (slots `1..=replicas_provisioned`).
    pub replicas_provisioned: u32,
    /// One entry per slot the caller knows of; slots not listed are absent.
    pub pods: Vec<PodObservation>,
    /// The cluster was bootstrapped before (recorded by the caller): it is
    /// never bootstrapped again, whatever the nodes say.
    pub initialized_before: bool,
    /// Instruments the spec lists that were not created yet.
    pub instruments_pending: Vec<u32>,
    /// A member within this many entries of the leader is caught up.
    pub lag_max_entries: u64,
}

impl Observation {
    pub fn pod(&self, node_id: u64) -> Option<&PodObservation> {
        self.pods.iter().find(|p| p.node_id == node_id)
    }

    pub fn status(&self, node_id: u64) -> Option<&NodeStatus> {
        self.pod(node_id).and_then(|p| p.status.as_ref())
    }
}

/// Why a member is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemovalReason {
    /// Its slot is above the desired replicas.
    ScaleDown,
    /// Its pod came back with an empty volume under a member's id: the
    /// stale member goes, the node rejoins as a new learner.
    EmptyVolume,
}

/// Why leadership moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferPurpose {
    /// The leader is about to be removed.
    ScaleDown,
    /// The leader's pod is the last one to restart on the new template.
    Upgrade,
}

/// Why the planner holds off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// A pod exists but its admin API does not answer (yet).
    PodNotAnswering { node_id: u64 },
    /// Nodes are initialized but none is leader (election, or no quorum).
    NoLeader,
    /// A joint membership configuration is being committed.
    MembershipChangeInFlight,
    /// A learner is more than `lag_max_entries` behind (`None`: unknown).
    LearnerCatchingUp {
        node_id: u64,
        lag_entries: Option<u64>,
    },
    /// A restarted member has not caught up yet.
    MemberCatchingUp { node_id: u64 },
    /// A pod is being deleted.
    PodTerminating { node_id: u64 },
    /// No voter could take over leadership right now.
    NoTransferTarget { from_node_id: u64 },
}

/// A step the planner wanted but will not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The step would leave fewer healthy voters than a quorum.
    QuorumAtRisk {
        step: Box<Step>,
        healthy_voters_after: u32,
        voters_after: u32,
    },
    /// Every node answered with an empty volume, but the cluster was
    /// bootstrapped before: its data is gone and bootstrapping again would
    /// silently start from nothing. A human decides.
    ClusterDataLost,
}

/// The one next step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Make this node the first and only member.
    Initialize {
        node_id: u64,
    },
    /// Create an instrument the spec lists (through the leader).
    AddInstrument {
        leader_id: u64,
        instrument: u32,
    },
    AddLearner {
        leader_id: u64,
        node_id: u64,
    },
    Promote {
        leader_id: u64,
        node_id: u64,
    },
    TransferLeadership {
        leader_id: u64,
        to_node_id: u64,
        purpose: TransferPurpose,
    },
    Remove {
        leader_id: u64,
        node_id: u64,
        reason: RemovalReason,
    },
    /// Resize the StatefulSet (one slot at a time, except to bring back
    /// slots that a surviving membership still names).
    ScaleStatefulSet {
        replicas: u32,
    },
    /// Delete the pod so that it comes back on the current template.
    RestartPod {
        node_id: u64,
    },
    Wait(WaitReason),
    Refuse(Refusal),
    /// Membership, size and template match the spec.
    Steady,
}

impl Step {
    /// Steps that change something (and get an Event and a requeue soon).
    pub fn is_action(&self) -> bool {
        !matches!(self, Step::Wait(_) | Step::Refuse(_) | Step::Steady)
    }

    /// A short PascalCase name for events and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Initialize { .. } => "Initialize",
            Step::AddInstrument { .. } => "AddInstrument",
            Step::AddLearner { .. } => "AddLearner",
            Step::Promote { .. } => "Promote",
            Step::TransferLeadership { .. } => "TransferLeadership",
            Step::Remove { .. } => "Remove",
            Step::ScaleStatefulSet { .. } => "ScaleStatefulSet",
            Step::RestartPod { .. } => "RestartPod",
            Step::Wait(_) => "Wait",
            Step::Refuse(Refusal::QuorumAtRisk { .. }) => "RefusedQuorumAtRisk",
            Step::Refuse(Refusal::ClusterDataLost) => "RefusedClusterDataLost",
            Step::Steady => "Steady",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Initialize { node_id } => {
                write!(f, "initialize node {node_id} as the first member")
            }
            Step::AddInstrument { instrument, .. } => write!(f, "create instrument {instrument}"),
            Step::AddLearner { node_id, .. } => write!(f, "add node {node_id} as a learner"),
            Step::Promote { node_id, .. } => write!(f, "promote learner {node_id} to voter"),
            Step::TransferLeadership {
                leader_id,
                to_node_id,
                purpose,
            } => write!(
                f,
                "transfer leadership from node {leader_id} to node {to_node_id} ({})",
                match purpose {
                    TransferPurpose::ScaleDown => "before removing it",
                    TransferPurpose::Upgrade => "before restarting it",
                }
            ),
            Step::Remove {
                node_id, reason, ..
            } => match reason {
                RemovalReason::ScaleDown => write!(f, "remove node {node_id} (scale down)"),
                RemovalReason::EmptyVolume => write!(
                    f,
                    "remove node {node_id}: it came back with an empty volume and rejoins as a learner"
                ),
            },
            Step::ScaleStatefulSet { replicas } => write!(f, "scale the StatefulSet to {replicas}"),
            Step::RestartPod { node_id } => {
                write!(f, "restart node {node_id} on the current template")
            }
            Step::Wait(reason) => write!(f, "waiting: {reason}"),
            Step::Refuse(refusal) => write!(f, "refused: {refusal}"),
            Step::Steady => write!(f, "membership matches the spec"),
        }
    }
}

impl std::fmt::Display for WaitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitReason::PodNotAnswering { node_id } => {
                write!(f, "node {node_id}'s admin API does not answer")
            }
            WaitReason::NoLeader => write!(f, "no leader is known"),
            WaitReason::MembershipChangeInFlight => write!(f, "a membership change is in flight"),
            WaitReason::LearnerCatchingUp {
                node_id,
                lag_entries,
            } => match lag_entries {
                Some(lag) => write!(f, "learner {node_id} is {lag} entries behind"),
                None => write!(f, "learner {node_id}'s progress is unknown"),
            },
            WaitReason::MemberCatchingUp { node_id } => {
                write!(f, "node {node_id} is not caught up yet")
            }
            WaitReason::PodTerminating { node_id } => {
                write!(f, "node {node_id}'s pod is terminating")
            }
            WaitReason::NoTransferTarget { from_node_id } => {
                write!(
                    f,
                    "no healthy voter can take leadership from node {from_node_id}"
                )
            }
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::QuorumAtRisk {
                step,
                healthy_voters_after,
                voters_after,
            } => write!(
                f,
                "{step} would leave {healthy_voters_after} healthy of {voters_after} voters, below a quorum of {}",
                quorum(*voters_after)
            ),
            Refusal::ClusterDataLost => write!(
                f,
                "every node came back with an empty volume after the cluster was bootstrapped; not bootstrapping again"
            ),
        }
    }
}

/// Votes needed out of `voters`.
pub fn quorum(voters: u32) -> u32 {
    voters / 2 + 1
}
