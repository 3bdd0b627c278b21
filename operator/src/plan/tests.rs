//! Table tests of every transition, run against the cluster model in
//! `sim`.

use super::sim::{LAG_FRESH, Model};
use super::*;

/// Runs the planner against the model until it stops acting, letting time
/// pass after every step; returns the steps taken (the last one is not an
/// action).
fn run(model: &mut Model, bound: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    for _ in 0..bound {
        let step = plan(&model.observe());
        model.apply(&step);
        model.tick();
        let done = !step.is_action();
        steps.push(step);
        if done {
            return steps;
        }
    }
    panic!("no fixed point after {bound} steps: {steps:?}");
}

fn add(node_id: u64, leader_id: u64) -> [Step; 2] {
    [
        Step::AddLearner { leader_id, node_id },
        Step::Promote { leader_id, node_id },
    ]
}

#[test]
fn bootstrap_initializes_pod_zero_alone_then_grows_one_at_a_time() {
    let mut model = Model::new(3);
    let steps = run(&mut model, 50);
    let mut expected = vec![
        Step::Initialize { node_id: 1 },
        Step::ScaleStatefulSet { replicas: 2 },
    ];
    expected.extend(add(2, 1));
    expected.push(Step::ScaleStatefulSet { replicas: 3 });
    expected.extend(add(3, 1));
    expected.push(Step::Steady);
    assert_eq!(steps, expected);
    assert!(model.converged());
}

#[test]
fn bootstrap_waits_for_pod_zero_to_answer() {
    let mut model = Model::new(3);
    model.node_mut(1).up = false;
    assert_eq!(
        plan(&model.observe()),
        Step::Wait(WaitReason::PodNotAnswering { node_id: 1 })
    );
}

#[test]
fn bootstrap_waits_until_every_provisioned_pod_answers_empty() {
    // A silent pod may hold the cluster's data (e.g. volumes retained from
    // a deleted resource): no bootstrap until it answers.
    let mut model = Model::new(3);
    model.apply(&Step::ScaleStatefulSet { replicas: 3 });
    model.node_mut(3).up = false;
    assert_eq!(
        plan(&model.observe()),
        Step::Wait(WaitReason::PodNotAnswering { node_id: 3 })
    );
    model.node_mut(3).up = true;
    assert_eq!(plan(&model.observe()), Step::Initialize { node_id: 1 });
}

#[test]
fn never_bootstraps_twice() {
    let mut model = Model::steady(3);
    for id in 1..=3 {
        model.node_mut(id).has_data = false;
    }
    model.leader = None;
    assert_eq!(
        plan(&model.observe()),
        Step::Refuse(Refusal::ClusterDataLost)
    );
}

#[test]
fn recreated_resource_brings_back_the_slots_its_membership_needs() {
    // Deleted with Retain and created again: the StatefulSet starts at one
    // pod, which holds a 3-voter membership and cannot elect alone.
    let mut model = Model::steady(3);
    model.apply(&Step::ScaleStatefulSet { replicas: 1 });
    model.leader = None;
    model.initialized_before = false;
    assert_eq!(
        plan(&model.observe()),
        Step::ScaleStatefulSet { replicas: 3 }
    );
    model.apply(&Step::ScaleStatefulSet { replicas: 3 });
    model.tick();
    assert_eq!(run(&mut model, 10), vec![Step::Steady]);
}

#[test]
fn scale_one_three_five_three_one() {
    let mut model = Model::new(1);
    assert_eq!(
        run(&mut model, 10),
        vec![Step::Initialize { node_id: 1 }, Step::Steady]
    );

    model.desired = 3;
    let mut expected = vec![Step::ScaleStatefulSet { replicas: 2 }];
    expected.extend(add(2, 1));
    expected.push(Step::ScaleStatefulSet { replicas: 3 });
    expected.extend(add(3, 1));
    expected.push(Step::Steady);
    assert_eq!(run(&mut model, 50), expected);

    model.desired = 5;
    let mut expected = vec![Step::ScaleStatefulSet { replicas: 4 }];
    expected.extend(add(4, 1));
    expected.push(Step::ScaleStatefulSet { replicas: 5 });
    expected.extend(add(5, 1));
    expected.push(Step::Steady);
    assert_eq!(run(&mut model, 50), expected);
    assert!(model.converged());

    // Scale down with the leader on a slot that goes: it hands over first.
    model.apply(&Step::TransferLeadership {
        leader_id: 1,
        to_node_id: 5,
        purpose: TransferPurpose::Upgrade,
    });
    model.desired = 3;
    let remove = |node_id, leader_id| Step::Remove {
        leader_id,
        node_id,
        reason: RemovalReason::ScaleDown,
    };
    assert_eq!(
        run(&mut model, 50),
        vec![
            Step::TransferLeadership {
                leader_id: 5,
                to_node_id: 1,
                purpose: TransferPurpose::ScaleDown
            },
            remove(5, 1),
            Step::ScaleStatefulSet { replicas: 4 },
            remove(4, 1),
            Step::ScaleStatefulSet { replicas: 3 },
            Step::Steady,
        ]
    );
    assert!(model.converged());

    model.desired = 1;
    assert_eq!(
        run(&mut model, 50),
        vec![
            remove(3, 1),
            Step::ScaleStatefulSet { replicas: 2 },
            remove(2, 1),
            Step::ScaleStatefulSet { replicas: 1 },
            Step::Steady,
        ]
    );
    assert!(model.converged());
}

#[test]
fn learner_is_promoted_only_when_caught_up() {
    let mut model = Model::steady(3);
    model.desired = 5;
    model.apply(&Step::ScaleStatefulSet { replicas: 4 });
    model.tick();
    model.apply(&Step::AddLearner {
        leader_id: 1,
        node_id: 4,
    });
    model.node_mut(4).lag = 101;
    assert_eq!(
        plan(&model.observe()),
        Step::Wait(WaitReason::LearnerCatchingUp {
            node_id: 4,
            lag_entries: Some(101)
        })
    );
    model.node_mut(4).lag = 100;
    assert_eq!(
        plan(&model.observe()),
        Step::Promote {
            leader_id: 1,
            node_id: 4
        }
    );
}

#[test]
fn new_pod_that_does_not_answer_is_waited_for() {
    let mut model = Model::steady(1);
    model.desired = 3;
    model.apply(&Step::ScaleStatefulSet { replicas: 2 });
    model.node_mut(2).up = false;
    assert_eq!(
        plan(&model.observe()),
        Step::Wait(WaitReason::PodNotAnswering { node_id: 2 })
    );
}

#[test]
fn rolling_upgrade_restarts_followers_from_the_top_and_the_leader_last() {
    let mut model = Model::steady(3);
    model.apply(&Step::TransferLeadership {
        leader_id: 1,
        to_node_id: 2,
        purpose: TransferPurpose::Upgrade,
    });
    model.revision = 2;
    assert_eq!(
        run(&mut model, 50),
        vec![
            Step::RestartPod { node_id: 3 },
            Step::RestartPod { node_id: 1 },
            Step::TransferLeadership {
                leader_id: 2,
                to_node_id: 1,
                purpose: TransferPurpose::Upgrade
            },
            Step::RestartPod { node_id: 2 },
            Step::Steady,
        ]
    );
    assert!(model.converged());
}

#[test]
fn rolling_upgrade_waits_for_each_restarted_pod_to_catch_up() {
    let mut model = Model::steady(5);
    model.revision = 2;
    let step = plan(&model.observe());
    assert_eq!(step, Step::RestartPod { node_id: 5 });
    model.apply(&step);
    // No time passes: node 5 is still catching up, and with 5 voters the
    // guard alone would allow another restart. One at a time instead.
    assert_eq!(
        plan(&model.observe()),
        Step::Wait(WaitReason::MemberCatchingUp { node_id: 5 })
    );
    model.node_mut(5).terminating = true;
    assert_eq!(
        plan(&model.observe()),
        Step::Wait(WaitReason::PodTerminating { node_id: 5 })
    );
}

#[test]
fn single_voter_upgrade_restarts_the_only_node() {
    let mut model = Model::steady(1);
    model.revision = 2;
    assert_eq!(
        run(&mut model, 10),
        vec![Step::RestartPod { node_id: 1 }, Step::Steady]
    );
}

#[test]
fn upgrade_refuses_to_take_a_quorum_down() {
    // Two voters (mid-change): restarting either loses the quorum.
    let mut model = Model::steady(2);
    model.revision = 2;
    let step = plan(&model.observe());
    assert!(
        matches!(&step, Step::Refuse(Refusal::QuorumAtRisk { step, healthy_voters_after: 1, voters_after: 2 })
            if **step == Step::RestartPod { node_id: 2 }),
        "{step:?}"
    );
}

#[test]
fn outdated_pod_that_is_down_is_restarted_first() {
    // A crash-looping pod on a broken image: the fixed template must reach
    // it even though it never answers.
    let mut model = Model::steady(3);
    model.node_mut(2).up = false;
    model.revision = 2;
    assert_eq!(plan(&model.observe()), Step::RestartPod { node_id: 2 });
    let mut joining = Model::steady(3);
    joining.desired = 5;
    joining.apply(&Step::ScaleStatefulSet { replicas: 4 });
    joining.node_mut(4).up = false;
    assert_eq!(
        plan(&joining.observe()),
        Step::Wait(WaitReason::PodNotAnswering { node_id: 4 })
    );
    joining.revision = 2;
    assert_eq!(plan(&joining.observe()), Step::RestartPod { node_id: 4 });
}

#[test]
fn empty_volume_member_is_removed_and_rejoins_as_learner() {
    let mut model = Model::steady(3);
    let node = model.node_mut(2);
    node.has_data = false;
    node.lag = LAG_FRESH;
    let mut expected = vec![Step::Remove {
        leader_id: 1,
        node_id: 2,
        reason: RemovalReason::EmptyVolume,
    }];
    expected.extend(add(2, 1));
    expected.push(Step::Steady);
    assert_eq!(run(&mut model, 20), expected);
    assert!(model.converged());
}

#[test]
fn empty_volume_removal_is_refused_without_a_quorum_left() {
    let mut model = Model::steady(3);
    model.node_mut(2).has_data = false;
    model.node_mut(3).up = false;
    let step = plan(&model.observe());
    assert!(
        matches!(
            &step,
            Step::Refuse(Refusal::QuorumAtRisk {
                voters_after: 2,
                healthy_voters_after: 1,
                ..
            })
        ),
        "{step:?}"
    );
}

#[test]
fn minority_down_waits_and_takes_no_risk() {
    let mut model = Model::steady(3);
    model.node_mut(3).up = false;
    assert_eq!(
        plan(&model.observe()),
        Step::Wait(WaitReason::MemberCatchingUp { node_id: 3 })
    );
    // Scaling down removes the down voter: 2 healthy of 2 voters remain.
    model.desired = 1;
    let step = plan(&model.observe());
    assert_eq!(
        step,
        Step::Remove {
            leader_id: 1,
            node_id: 3,
            reason: RemovalReason::ScaleDown
        }
    );
    model.apply(&step);
    let step = plan(&model.observe());
    assert_eq!(step, Step::ScaleStatefulSet { replicas: 2 });
}

#[test]
fn scale_down_with_a_minority_of_five_down_is_refused() {
    let mut model = Model::steady(5);
    model.node_mut(2).up = false;
    model.node_mut(3).up = false;
    model.desired = 3;
    let step = plan(&model.observe());
    assert!(
        matches!(
            &step,
            Step::Refuse(Refusal::QuorumAtRisk {
                voters_after: 4,
                healthy_voters_after: 2,
                ..
            })
        ),
        "{step:?}"
    );
}

#[test]
fn majority_down_without_leader_waits() {
    let mut model = Model::steady(3);
    model.node_mut(2).up = false;
    model.node_mut(3).up = false;
    model.leader = None;
    assert_eq!(plan(&model.observe()), Step::Wait(WaitReason::NoLeader));
    model.desired = 1;
    assert_eq!(plan(&model.observe()), Step::Wait(WaitReason::NoLeader));
}

#[test]
fn majority_down_with_a_stale_leader_refuses_to_remove() {
    let mut model = Model::steady(3);
    model.node_mut(2).up = false;
    model.node_mut(3).up = false;
    model.desired = 1;
    let step = plan(&model.observe());
    assert!(
        matches!(
            &step,
            Step::Refuse(Refusal::QuorumAtRisk {
                voters_after: 2,
                healthy_voters_after: 1,
                ..
            })
        ),
        "{step:?}"
    );
}

#[test]
fn joint_membership_is_waited_out() {
    let model = Model::steady(3);
    let mut obs = model.observe();
    for pod in &mut obs.pods {
        if let Some(status) = pod.status.as_mut() {
            status.joint = true;
        }
    }
    assert_eq!(plan(&obs), Step::Wait(WaitReason::MembershipChangeInFlight));
}

#[test]
fn instruments_are_created_after_bootstrap() {
    let mut model = Model::new(1);
    model.instruments_pending = vec![7, 9];
    assert_eq!(
        run(&mut model, 10),
        vec![
            Step::Initialize { node_id: 1 },
            Step::AddInstrument {
                leader_id: 1,
                instrument: 7
            },
            Step::AddInstrument {
                leader_id: 1,
                instrument: 9
            },
            Step::Steady,
        ]
    );
}

#[test]
fn the_highest_term_leader_wins() {
    let model = Model::steady(3);
    let mut obs = model.observe();
    // Node 3 still believes it leads in an older term.
    if let Some(status) = obs.pods[2].status.as_mut() {
        status.role = NodeRole::Leader;
        status.term = 0;
    }
    assert_eq!(summarize(&obs).leader_id, Some(1));
}
