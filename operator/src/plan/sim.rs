//! A model of a cluster for planner tests: slots with volumes, a Raft
//! membership, a leader, and the effects of each step and of faults. It
//! renders an [`Observation`] exactly as the admin API and Kubernetes would
//! show it, so the planner can be run against it step by step.

use std::collections::{BTreeMap, BTreeSet};

use super::{NodeRole, NodeStatus, Observation, PodObservation, Step, quorum};

/// Entries a node is behind right after it (re)starts or joins.
pub(crate) const LAG_FRESH: u64 = 1_000_000;
pub(crate) const LAG_MAX: u64 = 100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SimNode {
    /// The process answers (its pod exists and is up).
    pub up: bool,
    /// The volume holds this cluster's data.
    pub has_data: bool,
    pub revision: u32,
    pub lag: u64,
    pub terminating: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Model {
    pub desired: u32,
    pub provisioned: u32,
    /// Every slot that has a volume, up or not.
    pub nodes: BTreeMap<u64, SimNode>,
    pub voters: BTreeSet<u64>,
    pub learners: BTreeSet<u64>,
    pub leader: Option<u64>,
    pub term: u64,
    pub initialized_before: bool,
    pub revision: u32,
    pub retain_volumes: bool,
    pub instruments_pending: Vec<u32>,
}

impl Model {
    /// A resource just created: the StatefulSet has one pod.
    pub fn new(desired: u32) -> Self {
        let mut model = Self {
            desired,
            provisioned: 0,
            nodes: BTreeMap::new(),
            voters: BTreeSet::new(),
            learners: BTreeSet::new(),
            leader: None,
            term: 0,
            initialized_before: false,
            revision: 1,
            retain_volumes: true,
            instruments_pending: Vec::new(),
        };
        model.scale_to(1);
        model
    }

    /// A steady cluster of `voters` healthy voters, node 1 leading.
    pub fn steady(voters: u32) -> Self {
        let mut model = Self::new(voters);
        model.scale_to(voters);
        for id in 1..=u64::from(voters) {
            let node = model.node_mut(id);
            node.has_data = true;
            node.lag = 0;
            model.voters.insert(id);
        }
        model.leader = Some(1);
        model.term = 1;
        model.initialized_before = true;
        model
    }

    pub fn node_mut(&mut self, id: u64) -> &mut SimNode {
        self.nodes.entry(id).or_insert(SimNode {
            up: false,
            has_data: false,
            revision: 0,
            lag: LAG_FRESH,
            terminating: false,
        })
    }

    fn healthy(&self, id: u64) -> bool {
        self.nodes
            .get(&id)
            .is_some_and(|n| n.up && n.has_data && (Some(id) == self.leader || n.lag <= LAG_MAX))
    }

    pub fn healthy_voters(&self) -> u32 {
        let n = self.voters.iter().filter(|&&id| self.healthy(id)).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    pub fn voter_count(&self) -> u32 {
        u32::try_from(self.voters.len()).unwrap_or(u32::MAX)
    }

    pub fn has_quorum(&self) -> bool {
        self.leader.is_some() && self.healthy_voters() >= quorum(self.voter_count())
    }

    fn status(&self, id: u64, node: &SimNode) -> NodeStatus {
        let member = self.voters.contains(&id) || self.learners.contains(&id);
        let knows = node.has_data;
        let role = if !knows {
            NodeRole::Learner
        } else if self.leader == Some(id) {
            NodeRole::Leader
        } else if self.learners.contains(&id) || !member {
            NodeRole::Learner
        } else {
            NodeRole::Follower
        };
        let lag_entries = if self.leader == Some(id) {
            self.voters
                .iter()
                .chain(self.learners.iter())
                .filter(|&&m| m != id)
                .map(|&m| {
                    let lag = self
                        .nodes
                        .get(&m)
                        .filter(|n| n.up)
                        .map_or(LAG_FRESH, |n| n.lag);
                    (m, lag)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        NodeStatus {
            node_id: id,
            initialized: knows,
            role,
            term: if knows { self.term } else { 0 },
            leader_id: if knows { self.leader.unwrap_or(0) } else { 0 },
            committed_index: if knows { 100 } else { 0 },
            voters: if knows {
                self.voters.clone()
            } else {
                BTreeSet::new()
            },
            learners: if knows {
                self.learners.clone()
            } else {
                BTreeSet::new()
            },
            joint: false,
            lag_entries,
        }
    }

    pub fn observe(&self) -> Observation {
        let top = u64::from(self.provisioned).max(self.nodes.keys().copied().max().unwrap_or(0));
        let pods = (1..=top)
            .map(|id| match self.nodes.get(&id) {
                Some(node) if id <= u64::from(self.provisioned) => PodObservation {
                    node_id: id,
                    exists: true,
                    terminating: node.terminating,
                    current: node.revision == self.revision,
                    status: node.up.then(|| self.status(id, node)),
                },
                _ => PodObservation::absent(id),
            })
            .collect();
        Observation {
            replicas_desired: self.desired,
            replicas_provisioned: self.provisioned,
            pods,
            initialized_before: self.initialized_before,
            instruments_pending: self.instruments_pending.clone(),
            lag_max_entries: LAG_MAX,
        }
    }

    fn scale_to(&mut self, replicas: u32) {
        let revision = self.revision;
        for id in u64::from(replicas) + 1..=u64::from(self.provisioned) {
            if self.retain_volumes {
                let node = self.node_mut(id);
                node.up = false;
            } else {
                self.nodes.remove(&id);
            }
        }
        for id in u64::from(self.provisioned) + 1..=u64::from(replicas) {
            let node = self.node_mut(id);
            node.up = true;
            node.revision = revision;
            node.lag = LAG_FRESH;
            node.terminating = false;
        }
        self.provisioned = replicas;
    }

    /// Raft picks a leader when a quorum of voters is up with data; the
    /// lowest such id wins (any choice would do for the planner).
    pub fn elect(&mut self) {
        if self
            .leader
            .is_some_and(|l| self.voters.contains(&l) && self.healthy(l))
        {
            return;
        }
        self.leader = None;
        let alive: Vec<u64> = self
            .voters
            .iter()
            .copied()
            .filter(|&id| self.nodes.get(&id).is_some_and(|n| n.up && n.has_data))
            .collect();
        if !self.voters.is_empty() && alive.len() >= quorum(self.voter_count()) as usize {
            self.leader = alive.first().copied();
            self.term += 1;
        }
    }

    /// Time passes: every running node with data catches up.
    pub fn tick(&mut self) {
        for node in self.nodes.values_mut() {
            node.terminating = false;
            if node.up && node.has_data {
                node.lag = 0;
            }
        }
        self.elect();
    }

    pub fn apply(&mut self, step: &Step) {
        match *step {
            Step::Initialize { node_id } => {
                self.node_mut(node_id).has_data = true;
                self.voters = BTreeSet::from([node_id]);
                self.leader = Some(node_id);
                self.term += 1;
                self.initialized_before = true;
            }
            Step::AddInstrument { instrument, .. } => {
                self.instruments_pending.retain(|&i| i != instrument);
            }
            Step::AddLearner { node_id, .. } => {
                self.learners.insert(node_id);
                let node = self.node_mut(node_id);
                node.has_data = true;
                node.lag = LAG_FRESH;
            }
            Step::Promote { node_id, .. } => {
                self.learners.remove(&node_id);
                self.voters.insert(node_id);
            }
            Step::TransferLeadership { to_node_id, .. } => {
                self.leader = Some(to_node_id);
                self.term += 1;
            }
            Step::Remove { node_id, .. } => {
                self.voters.remove(&node_id);
                self.learners.remove(&node_id);
            }
            Step::ScaleStatefulSet { replicas } => self.scale_to(replicas),
            Step::RestartPod { node_id } => {
                let revision = self.revision;
                let node = self.node_mut(node_id);
                node.revision = revision;
                node.lag = LAG_FRESH;
                node.up = true;
                if self.leader == Some(node_id) {
                    self.leader = None;
                }
            }
            Step::Wait(_) | Step::Refuse(_) | Step::Steady => {}
        }
        self.elect();
    }

    /// Membership, size and template are what the spec asks for.
    pub fn converged(&self) -> bool {
        let want: BTreeSet<u64> = (1..=u64::from(self.desired)).collect();
        self.voters == want
            && self.learners.is_empty()
            && self.provisioned == self.desired
            && self.leader.is_some()
            && self.voters.iter().all(|id| {
                self.nodes
                    .get(id)
                    .is_some_and(|n| n.revision == self.revision)
            })
    }
}
