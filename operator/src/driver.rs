//! One turn of the membership loop without Kubernetes: ask every node for
//! its status, plan, and carry out the step if it is an admin call.
//! Steps on the infrastructure (resize the StatefulSet, restart a pod) are
//! handed back to the caller: the reconciler does them with the Kubernetes
//! API, a loopback test by starting and stopping processes.

use std::collections::BTreeSet;

use futures::future::join_all;
use matchengine_proto::v1::InstrumentSpec;
use tracing::debug;

use crate::admin::{AdminApi, AdminError};
use crate::plan::{Observation, PodObservation, Step, Summary, plan, summarize};

/// What the caller knows of one slot without asking the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotState {
    pub node_id: u64,
    /// The pod (process) exists; only existing slots are asked for status.
    pub exists: bool,
    pub terminating: bool,
    /// Runs the desired template (image, configuration).
    pub current: bool,
}

/// Everything one turn needs besides the nodes' answers.
#[derive(Clone, Debug)]
pub struct DriverInput<'a> {
    pub replicas_desired: u32,
    pub replicas_provisioned: u32,
    pub slots: Vec<SlotState>,
    /// The cluster was bootstrapped before: never bootstrap again.
    pub initialized_before: bool,
    /// Instruments to create once a leader with a quorum exists.
    pub instruments: &'a [InstrumentSpec],
    pub instruments_created: &'a BTreeSet<u32>,
    pub lag_max_entries: u64,
}

/// Who carries out a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Execution {
    /// An admin call, made by the driver.
    Admin,
    /// `ScaleStatefulSet` or `RestartPod`: the caller's to do.
    ForCaller,
    /// Wait, refusal or steady: nothing to do.
    Nothing,
}

#[derive(Debug)]
pub struct Outcome {
    pub observation: Observation,
    pub summary: Summary,
    pub step: Step,
    pub execution: Execution,
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{step}: {source}")]
    Admin {
        step: String,
        #[source]
        source: AdminError,
    },
    #[error("instrument {0} was planned but is not in the spec")]
    UnknownInstrument(u32),
}

impl DriverError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DriverError::Admin { source, .. } => source.reason(),
            DriverError::UnknownInstrument(_) => "unknown_instrument",
        }
    }
}

#[derive(Debug)]
pub struct MembershipDriver<A> {
    admin: A,
}

impl<A: AdminApi> MembershipDriver<A> {
    pub fn new(admin: A) -> Self {
        Self { admin }
    }

    pub fn admin(&self) -> &A {
        &self.admin
    }

    /// Asks every existing slot for its status, all at once; a node that
    /// does not answer is recorded as such, never as an error.
    pub async fn observe(&self, input: &DriverInput<'_>) -> Observation {
        let answers = join_all(input.slots.iter().map(|slot| async move {
            if !slot.exists {
                return None;
            }
            match self.admin.status(slot.node_id).await {
                Ok(status) => Some(status),
                Err(error) => {
                    debug!(node_id = slot.node_id, %error, "no status");
                    None
                }
            }
        }))
        .await;
        let pods = input
            .slots
            .iter()
            .zip(answers)
            .map(|(slot, status)| PodObservation {
                node_id: slot.node_id,
                exists: slot.exists,
                terminating: slot.terminating,
                current: slot.current,
                status,
            })
            .collect();
        Observation {
            replicas_desired: input.replicas_desired,
            replicas_provisioned: input.replicas_provisioned,
            pods,
            initialized_before: input.initialized_before,
            instruments_pending: input
                .instruments
                .iter()
                .map(|i| i.instrument)
                .filter(|id| !input.instruments_created.contains(id))
                .collect(),
            lag_max_entries: input.lag_max_entries,
        }
    }

    /// Carries out the admin part of a step.
    pub async fn execute(
        &self,
        step: &Step,
        instruments: &[InstrumentSpec],
    ) -> Result<Execution, DriverError> {
        let admin = &self.admin;
        let result = match *step {
            Step::Initialize { node_id } => admin.initialize(node_id).await,
            Step::AddInstrument {
                leader_id,
                instrument,
            } => {
                let spec = instruments
                    .iter()
                    .find(|i| i.instrument == instrument)
                    .ok_or(DriverError::UnknownInstrument(instrument))?;
                admin.add_instrument(leader_id, spec.clone()).await
            }
            Step::AddLearner { leader_id, node_id } => admin.add_learner(leader_id, node_id).await,
            Step::Promote { leader_id, node_id } => {
                admin
                    .change_membership(leader_id, vec![node_id], vec![])
                    .await
            }
            Step::Remove {
                leader_id, node_id, ..
            } => {
                admin
                    .change_membership(leader_id, vec![], vec![node_id])
                    .await
            }
            Step::TransferLeadership {
                leader_id,
                to_node_id,
                ..
            } => admin.transfer_leadership(leader_id, to_node_id).await,
            Step::ScaleStatefulSet { .. } | Step::RestartPod { .. } => {
                return Ok(Execution::ForCaller);
            }
            Step::Wait(_) | Step::Refuse(_) | Step::Steady => return Ok(Execution::Nothing),
        };
        result.map_err(|source| DriverError::Admin {
            step: step.to_string(),
            source,
        })?;
        Ok(Execution::Admin)
    }

    /// One turn: observe, plan, execute the admin part.
    pub async fn step(&self, input: &DriverInput<'_>) -> Result<Outcome, DriverError> {
        let observation = self.observe(input).await;
        let summary = summarize(&observation);
        let step = plan(&observation);
        let execution = self.execute(&step, input.instruments).await?;
        Ok(Outcome {
            observation,
            summary,
            step,
            execution,
        })
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! An in-memory [`AdminApi`] over the planner's cluster model, for the
    //! reconciler and driver tests.

    use std::sync::Mutex;

    use super::*;
    use crate::plan::NodeStatus;

    #[derive(Debug, Default)]
    pub(crate) struct FakeAdmin {
        pub statuses: Mutex<std::collections::BTreeMap<u64, NodeStatus>>,
        pub calls: Mutex<Vec<String>>,
    }

    impl FakeAdmin {
        pub fn with(statuses: impl IntoIterator<Item = NodeStatus>) -> Self {
            let fake = Self::default();
            if let Ok(mut map) = fake.statuses.lock() {
                map.extend(statuses.into_iter().map(|s| (s.node_id, s)));
            }
            fake
        }

        pub fn calls(&self) -> Vec<String> {
            self.calls.lock().map(|c| c.clone()).unwrap_or_default()
        }

        fn record(&self, call: String) {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(call);
            }
        }
    }

    impl AdminApi for FakeAdmin {
        async fn status(&self, node_id: u64) -> Result<NodeStatus, AdminError> {
            let statuses = self.statuses.lock().map(|s| s.get(&node_id).cloned());
            statuses
                .ok()
                .flatten()
                .ok_or_else(|| AdminError::Unavailable {
                    node_id,
                    message: "fake: down".into(),
                })
        }
        async fn initialize(&self, node_id: u64) -> Result<(), AdminError> {
            self.record(format!("initialize {node_id}"));
            Ok(())
        }
        async fn add_learner(&self, leader_id: u64, node_id: u64) -> Result<(), AdminError> {
            self.record(format!("add_learner {node_id} via {leader_id}"));
            Ok(())
        }
        async fn change_membership(
            &self,
            leader_id: u64,
            promote: Vec<u64>,
            remove: Vec<u64>,
        ) -> Result<(), AdminError> {
            self.record(format!(
                "change_membership promote {promote:?} remove {remove:?} via {leader_id}"
            ));
            Ok(())
        }
        async fn transfer_leadership(&self, leader_id: u64, to: u64) -> Result<(), AdminError> {
            self.record(format!("transfer_leadership {leader_id} -> {to}"));
            Ok(())
        }
        async fn add_instrument(
            &self,
            leader_id: u64,
            spec: InstrumentSpec,
        ) -> Result<(), AdminError> {
            self.record(format!(
                "add_instrument {} via {leader_id}",
                spec.instrument
            ));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeAdmin;
    use super::*;
    use crate::plan::{NodeRole, NodeStatus, RemovalReason};

    fn status(node_id: u64, role: NodeRole, initialized: bool) -> NodeStatus {
        NodeStatus {
            node_id,
            initialized,
            role,
            term: 3,
            leader_id: if initialized { 1 } else { 0 },
            committed_index: 10,
            voters: if initialized {
                BTreeSet::from([1, 2, 3])
            } else {
                BTreeSet::new()
            },
            learners: BTreeSet::new(),
            joint: false,
            lag_entries: [(2, 0), (3, 0)].into(),
        }
    }

    fn slots(n: u64) -> Vec<SlotState> {
        (1..=n)
            .map(|node_id| SlotState {
                node_id,
                exists: true,
                terminating: false,
                current: true,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_turn_observes_plans_and_calls_the_leader() {
        // Node 3 came back empty: the driver removes it through the leader.
        let admin = FakeAdmin::with([
            status(1, NodeRole::Leader, true),
            status(2, NodeRole::Follower, true),
            status(3, NodeRole::Learner, false),
        ]);
        let driver = MembershipDriver::new(admin);
        let created = BTreeSet::new();
        let input = DriverInput {
            replicas_desired: 3,
            replicas_provisioned: 3,
            slots: slots(3),
            initialized_before: true,
            instruments: &[],
            instruments_created: &created,
            lag_max_entries: 100,
        };
        let outcome = driver.step(&input).await.unwrap();
        assert_eq!(
            outcome.step,
            Step::Remove {
                leader_id: 1,
                node_id: 3,
                reason: RemovalReason::EmptyVolume
            }
        );
        assert_eq!(outcome.execution, Execution::Admin);
        assert_eq!(
            driver.admin().calls(),
            ["change_membership promote [] remove [3] via 1"]
        );
        assert_eq!(outcome.summary.leader_id, Some(1));
    }

    #[tokio::test]
    async fn silent_nodes_are_observed_as_not_answering() {
        let driver = MembershipDriver::new(FakeAdmin::with([status(1, NodeRole::Leader, true)]));
        let created = BTreeSet::from([5]);
        let instruments = [InstrumentSpec {
            instrument: 5,
            ..InstrumentSpec::default()
        }];
        let mut slots = slots(3);
        slots[2].exists = false;
        let input = DriverInput {
            replicas_desired: 3,
            replicas_provisioned: 3,
            slots,
            initialized_before: true,
            instruments: &instruments,
            instruments_created: &created,
            lag_max_entries: 100,
        };
        let obs = driver.observe(&input).await;
        assert!(obs.pods[0].status.is_some());
        assert!(obs.pods[1].status.is_none() && obs.pods[1].exists);
        assert!(obs.pods[2].status.is_none() && !obs.pods[2].exists);
        assert!(obs.instruments_pending.is_empty());
    }
}
