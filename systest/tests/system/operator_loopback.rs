//! The operator's membership planner and admin client driving real
//! `matchengine-node` processes on loopback, without Kubernetes. "The
//! StatefulSet" is the set of running processes: scaling starts or stops
//! them (their data directories stay, like retained volumes); restarting a
//! pod is SIGTERM and start. After every phase: the membership is what the
//! spec asks, and every order and key written so far is there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use matchengine_client::client::Consistency;
use matchengine_client::pb;
use matchengine_operator::admin::{AdminApi, AdminTimeouts, TonicAdmin};
use matchengine_operator::driver::{DriverInput, MembershipDriver, SlotState};
use matchengine_operator::plan::{NodeRole, Step};
use matchengine_systest::{ProcessCluster, has_order, limit};

const SLOTS_MAX: u64 = 5;

struct Kubernetes {
    cluster: ProcessCluster,
    provisioned: u32,
    revision: u32,
    revision_of: BTreeMap<u64, u32>,
    initialized_before: bool,
    instruments_created: BTreeSet<u32>,
}

impl Kubernetes {
    fn start(&mut self, id: u64) {
        self.cluster.start(id);
        self.revision_of.insert(id, self.revision);
    }

    fn scale(&mut self, replicas: u32) {
        for id in u64::from(replicas) + 1..=u64::from(self.provisioned) {
            if self.cluster.running().contains(&id) {
                assert!(self.cluster.stop(id).success(), "node {id} exits 0");
            }
        }
        for id in u64::from(self.provisioned) + 1..=u64::from(replicas) {
            self.start(id);
        }
        self.provisioned = replicas;
    }

    fn slots(&self) -> Vec<SlotState> {
        (1..=u64::from(self.provisioned))
            .map(|node_id| SlotState {
                node_id,
                exists: self.cluster.running().contains(&node_id),
                terminating: false,
                current: self.revision_of.get(&node_id) == Some(&self.revision),
            })
            .collect()
    }

    /// Runs the planner until it is steady, executing its steps.
    async fn converge<A: AdminApi>(
        &mut self,
        driver: &MembershipDriver<A>,
        desired: u32,
    ) -> Vec<String> {
        let instruments = [matchengine_systest::instrument_spec(1, "BTC-USD")];
        let mut steps = Vec::new();
        for _ in 0..600 {
            let created = self.instruments_created.clone();
            let input = DriverInput {
                replicas_desired: desired,
                replicas_provisioned: self.provisioned,
                slots: self.slots(),
                initialized_before: self.initialized_before,
                instruments: &instruments,
                instruments_created: &created,
                lag_max_entries: 100,
            };
            // A step can fail when leadership moves between observing and
            // acting (NotLeader, a timeout); the operator requeues, and so
            // does this loop.
            let outcome = match driver.step(&input).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    eprintln!("requeue after: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if !matches!(outcome.step, Step::Wait(_)) {
                steps.push(outcome.step.to_string());
            }
            match outcome.step {
                Step::Steady => return steps,
                Step::Refuse(refusal) => panic!("refused: {refusal} after {steps:?}"),
                Step::Initialize { .. } => self.initialized_before = true,
                Step::AddInstrument { instrument, .. } => {
                    self.instruments_created.insert(instrument);
                }
                Step::ScaleStatefulSet { replicas } => self.scale(replicas),
                Step::RestartPod { node_id } => {
                    assert!(
                        self.cluster.stop(node_id).success(),
                        "node {node_id} exits 0"
                    );
                    self.start(node_id);
                }
                _ => {}
            }
            // The operator requeues; elections and start-up take a moment.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("not steady after 600 turns: {steps:?}");
    }

    async fn assert_members<A: AdminApi>(&self, driver: &MembershipDriver<A>, voters: u32) {
        let want: BTreeSet<u64> = (1..=u64::from(voters)).collect();
        // An election may be under way (after a restart): wait for a leader.
        let (voters, learners) = self
            .cluster
            .wait_for("a leader to answer", || async {
                for id in self.cluster.running() {
                    if let Ok(status) = driver.admin().status(id).await
                        && status.role == NodeRole::Leader
                    {
                        return Some((status.voters, status.learners));
                    }
                }
                None
            })
            .await;
        assert_eq!(voters, want, "voters");
        assert!(learners.is_empty(), "learners {learners:?}");
    }
}

/// Writes one order and one key tagged `phase`; checks every earlier one.
async fn write_and_check(cluster: &ProcessCluster, phase: u64) {
    let client = cluster.client();
    client
        .place_order(limit(1, 42, phase, pb::Side::Buy, 100 + phase as i64, 1))
        .await
        .expect("place");
    client
        .kv_put(
            format!("phase/{phase}").into_bytes(),
            phase.to_string().into_bytes(),
        )
        .await
        .expect("put");
    for earlier in 1..=phase {
        assert!(
            has_order(&client, 42, earlier).await,
            "order of phase {earlier} lost"
        );
        let value = client
            .kv_get(
                format!("phase/{earlier}").into_bytes(),
                Consistency::Linearizable,
            )
            .await
            .expect("get");
        assert_eq!(
            value,
            Some(earlier.to_string().into_bytes()),
            "key of phase {earlier}"
        );
    }
    cluster.converged_digest().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_planner_bootstraps_scales_upgrades_and_heals_a_wiped_member() {
    let mut cluster = ProcessCluster::new();
    for id in 1..=SLOTS_MAX {
        cluster.reserve(id);
    }
    let ports = cluster.ports.clone();
    let admin = TonicAdmin::new(
        move |id: u64| ports[&id].record(id),
        AdminTimeouts::default(),
    );
    let driver = MembershipDriver::new(admin);
    let mut k8s = Kubernetes {
        cluster,
        provisioned: 0,
        revision: 1,
        revision_of: BTreeMap::new(),
        initialized_before: false,
        instruments_created: BTreeSet::new(),
    };
    k8s.scale(1);
    let mut phase = 0;
    for desired in [1, 3, 5, 3, 1, 3] {
        let steps = k8s.converge(&driver, desired).await;
        k8s.assert_members(&driver, desired).await;
        phase += 1;
        write_and_check(&k8s.cluster, phase).await;
        eprintln!("{desired} voters: {steps:?}");
    }

    // A rolling upgrade: followers first, the leader last after a transfer.
    k8s.revision = 2;
    let steps = k8s.converge(&driver, 3).await;
    assert!(
        steps
            .iter()
            .filter(|s| s.starts_with("restart node"))
            .count()
            == 3,
        "{steps:?}"
    );
    let transfer = steps
        .iter()
        .position(|s| s.starts_with("transfer leadership"));
    let last_restart = steps.iter().rposition(|s| s.starts_with("restart node"));
    assert!(transfer.is_some() && transfer < last_restart, "{steps:?}");
    k8s.assert_members(&driver, 3).await;
    phase += 1;
    write_and_check(&k8s.cluster, phase).await;

    // A member comes back with an empty volume: removed, re-added, caught up.
    let wiped = 2;
    assert!(k8s.cluster.stop(wiped).success());
    std::fs::remove_dir_all(k8s.cluster.root.join(format!("node-{wiped}"))).unwrap();
    k8s.start(wiped);
    let steps = k8s.converge(&driver, 3).await;
    assert!(
        steps.iter().any(|s| s.contains("empty volume")),
        "{steps:?}"
    );
    k8s.assert_members(&driver, 3).await;
    phase += 1;
    write_and_check(&k8s.cluster, phase).await;
}
