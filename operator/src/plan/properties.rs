//! Property tests: random histories of spec changes, revisions, crashes,
//! recoveries and lost volumes, with the planner acting in between. No
//! step may break a quorum, and without data loss every history converges.

use proptest::prelude::*;

use super::sim::{LAG_FRESH, Model};
use super::*;

#[derive(Clone, Debug)]
enum Op {
    SetDesired(u32),
    NewRevision,
    Crash(u64),
    Recover(u64),
    Wipe(u64),
    Plan(u8),
    Tick,
}

fn op(wipes: bool) -> impl Strategy<Value = Op> {
    let wipe_weight = if wipes { 1 } else { 0 };
    prop_oneof![
        2 => prop::sample::select(vec![1u32, 3, 5, 7]).prop_map(Op::SetDesired),
        1 => Just(Op::NewRevision),
        2 => (1u64..=7).prop_map(Op::Crash),
        2 => (1u64..=7).prop_map(Op::Recover),
        wipe_weight => (1u64..=7).prop_map(Op::Wipe),
        6 => (1u8..6).prop_map(Op::Plan),
        3 => Just(Op::Tick),
    ]
}

/// Plans and applies one step, checking the safety invariants.
fn checked_step(model: &mut Model) -> Step {
    let before = model.clone();
    let obs = model.observe();
    let step = plan(&obs);
    if let Step::Initialize { .. } = step {
        assert!(!before.initialized_before, "bootstrapped twice");
        assert!(before.nodes.values().all(|n| !n.has_data));
    }
    if let Step::Remove { node_id, .. } = step {
        assert_ne!(Some(node_id), before.leader, "removed the leader");
    }
    if let Step::Promote { node_id, .. } = step {
        assert!(before.nodes[&node_id].lag <= obs.lag_max_entries);
    }
    if let Step::ScaleStatefulSet { replicas } = step
        && replicas < before.provisioned
    {
        let dropped = u64::from(before.provisioned);
        assert!(!before.voters.contains(&dropped) && !before.learners.contains(&dropped));
    }
    model.apply(&step);
    let single_voter_restart = matches!(step, Step::RestartPod { .. }) && before.voter_count() == 1;
    if step.is_action() && before.has_quorum() && !single_voter_restart {
        assert!(
            model.healthy_voters() >= quorum(model.voter_count()),
            "{step:?} broke the quorum: {before:?} -> {model:?}"
        );
    }
    step
}

fn play(model: &mut Model, ops: &[Op]) {
    for op in ops {
        match *op {
            Op::SetDesired(r) => model.desired = r,
            Op::NewRevision => model.revision += 1,
            Op::Crash(id) => {
                if let Some(n) = model.nodes.get_mut(&id) {
                    n.up = false;
                }
                model.elect();
            }
            Op::Recover(id) => {
                if id <= u64::from(model.provisioned)
                    && let Some(n) = model.nodes.get_mut(&id)
                {
                    n.up = true;
                }
            }
            Op::Wipe(id) => {
                if let Some(n) = model.nodes.get_mut(&id) {
                    n.has_data = false;
                    n.lag = LAG_FRESH;
                }
                model.elect();
            }
            Op::Plan(n) => {
                for _ in 0..n {
                    checked_step(model);
                }
            }
            Op::Tick => model.tick(),
        }
    }
}

/// Every pod back up, time passing: the planner must reach the spec.
fn converges(model: &mut Model) -> bool {
    for id in 1..=u64::from(model.provisioned) {
        if let Some(n) = model.nodes.get_mut(&id) {
            n.up = true;
        }
    }
    model.tick();
    for _ in 0..200 {
        let step = checked_step(model);
        model.tick();
        if step == Step::Steady {
            return model.converged();
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_step_breaks_a_quorum(ops in prop::collection::vec(op(true), 1..60)) {
        let mut model = Model::new(3);
        play(&mut model, &ops);
    }

    #[test]
    fn without_data_loss_every_history_converges(
        ops in prop::collection::vec(op(false), 1..60),
        desired in prop::sample::select(vec![1u32, 3, 5, 7]),
    ) {
        let mut model = Model::new(3);
        play(&mut model, &ops);
        model.desired = desired;
        prop_assert!(converges(&mut model), "stuck: {:?}", model);
    }

    #[test]
    fn one_lost_volume_in_a_steady_cluster_heals(
        voters in prop::sample::select(vec![3u32, 5, 7]),
        wiped in 1u64..=7,
        leader in 1u64..=7,
    ) {
        let mut model = Model::steady(voters);
        let wiped = 1 + (wiped - 1) % u64::from(voters);
        let leader = 1 + (leader - 1) % u64::from(voters);
        prop_assume!(wiped != leader);
        model.leader = Some(leader);
        model.node_mut(wiped).has_data = false;
        prop_assert!(converges(&mut model), "stuck: {:?}", model);
    }
}
