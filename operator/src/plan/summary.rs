//! The cluster as the answers describe it: who leads, who is a member,
//! who is healthy. The planner decides on it and the status reports it.

use std::collections::BTreeSet;

use super::{NodeRole, NodeStatus, Observation, quorum};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberRole {
    Leader,
    Voter,
    Learner,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSummary {
    pub node_id: u64,
    pub role: MemberRole,
    /// Answers, holds data, and (unless it leads) is within
    /// `lag_max_entries` of the leader.
    pub healthy: bool,
    pub lag_entries: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The node that answered as leader (highest term wins).
    pub leader_id: Option<u64>,
    pub term: Option<u64>,
    pub committed_index: Option<u64>,
    /// The membership: the leader's view, or without a leader the view of
    /// the most advanced initialized node.
    pub voters: BTreeSet<u64>,
    pub learners: BTreeSet<u64>,
    pub joint: bool,
    pub members: Vec<MemberSummary>,
    pub healthy_voters: u32,
    /// Some node answered with a membership.
    pub any_initialized: bool,
}

impl Summary {
    pub fn is_member(&self, node_id: u64) -> bool {
        self.voters.contains(&node_id) || self.learners.contains(&node_id)
    }

    pub fn member(&self, node_id: u64) -> Option<&MemberSummary> {
        self.members.iter().find(|m| m.node_id == node_id)
    }

    pub fn is_healthy(&self, node_id: u64) -> bool {
        self.member(node_id).is_some_and(|m| m.healthy)
    }

    pub fn voter_count(&self) -> u32 {
        count(self.voters.len())
    }

    /// A leader answers and enough voters are healthy to commit.
    pub fn has_quorum(&self) -> bool {
        self.leader_id.is_some() && self.healthy_voters >= quorum(self.voter_count())
    }
}

pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn answering_leader(obs: &Observation) -> Option<&NodeStatus> {
    obs.pods
        .iter()
        .filter_map(|p| p.status.as_ref())
        .filter(|s| s.role == NodeRole::Leader && s.initialized)
        .max_by_key(|s| (s.term, s.committed_index))
}

fn most_advanced(obs: &Observation) -> Option<&NodeStatus> {
    obs.pods
        .iter()
        .filter_map(|p| p.status.as_ref())
        .filter(|s| s.initialized)
        .max_by_key(|s| (s.term, s.committed_index))
}

/// Reads the observation: pure, total, and the only place that decides
/// what "healthy" means.
pub fn summarize(obs: &Observation) -> Summary {
    let leader = answering_leader(obs);
    let Some(view) = leader.or_else(|| most_advanced(obs)) else {
        return Summary::default();
    };
    let leader_id = leader.map(|l| l.node_id);
    let lag_of = |node_id: u64| -> Option<u64> {
        match leader {
            Some(l) if l.node_id == node_id => Some(0),
            Some(l) => l.lag_entries.get(&node_id).copied(),
            None => None,
        }
    };
    let healthy = |node_id: u64| -> bool {
        let answers = obs.status(node_id).is_some_and(|s| s.initialized);
        let caught_up = match leader {
            Some(_) => lag_of(node_id).is_some_and(|lag| lag <= obs.lag_max_entries),
            // Without a leader nobody reports lag: answering is all we know.
            None => true,
        };
        answers && caught_up
    };
    let members: Vec<MemberSummary> = view
        .voters
        .iter()
        .chain(view.learners.iter())
        .map(|&node_id| MemberSummary {
            node_id,
            role: if Some(node_id) == leader_id {
                MemberRole::Leader
            } else if view.voters.contains(&node_id) {
                MemberRole::Voter
            } else {
                MemberRole::Learner
            },
            healthy: healthy(node_id),
            lag_entries: lag_of(node_id),
        })
        .collect();
    let healthy_voters = count(
        members
            .iter()
            .filter(|m| m.healthy && m.role != MemberRole::Learner)
            .count(),
    );
    Summary {
        leader_id,
        term: Some(view.term),
        committed_index: Some(view.committed_index),
        voters: view.voters.clone(),
        learners: view.learners.clone(),
        joint: view.joint,
        members,
        healthy_voters,
        any_initialized: true,
    }
}
