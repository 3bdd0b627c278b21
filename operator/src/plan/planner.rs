//! The decision procedure. Each rule below either returns a step or falls
//! through to the next; their order is the policy:
//!
//! 1. no leader: bootstrap slot 1, bring back slots a membership still
//!    needs, or wait;
//! 2. a joint configuration: wait for it to commit;
//! 3. instruments the spec lists: create them;
//! 4. members that came back empty: remove them (they rejoin as learners);
//! 5. outdated pods that no healthy voter runs on: restart them at once
//!    (this cannot lower the healthy count, and a crash-looping pod waits
//!    for nothing else);
//! 6. scale down from the top: move leadership away, remove, shrink;
//! 7. scale up from the bottom: add as learner, promote when caught up,
//!    then grow the StatefulSet by one;
//! 8. rolling upgrade: followers from the top, the leader last after a
//!    transfer, each only once every restarted member has caught up;
//! 9. steady.
//!
//! Every step that changes voters or takes a voter down passes the quorum
//! guard: healthy voters after the step >= quorum of the voters after it.

use super::summary::{MemberRole, Summary, summarize};
use super::{Observation, Refusal, RemovalReason, Step, TransferPurpose, WaitReason, quorum};

/// The next step for this observation.
pub fn plan(obs: &Observation) -> Step {
    let summary = summarize(obs);
    let Some(leader_id) = summary.leader_id else {
        return without_leader(obs, &summary);
    };
    if summary.joint {
        return Step::Wait(WaitReason::MembershipChangeInFlight);
    }
    // Instruments go through the log: only worth trying with a quorum.
    if let Some(&instrument) = obs.instruments_pending.first()
        && summary.has_quorum()
    {
        return Step::AddInstrument {
            leader_id,
            instrument,
        };
    }
    let ctx = Ctx {
        obs,
        summary: &summary,
        leader_id,
    };
    ctx.remove_emptied()
        .or_else(|| ctx.restart_unhealthy_outdated())
        .or_else(|| ctx.scale_down())
        .or_else(|| ctx.scale_up())
        .or_else(|| ctx.upgrade())
        .unwrap_or(Step::Steady)
}

fn without_leader(obs: &Observation, summary: &Summary) -> Step {
    let provisioned = obs.replicas_provisioned;
    if summary.any_initialized {
        // A membership survives (a restart, or the resource was recreated
        // over retained volumes): bring back every slot it names, or no
        // quorum can ever form.
        let needed = summary.voters.iter().copied().max().unwrap_or(0);
        let needed = u32::try_from(needed).unwrap_or(u32::MAX);
        if needed > provisioned {
            return Step::ScaleStatefulSet { replicas: needed };
        }
        return Step::Wait(WaitReason::NoLeader);
    }
    if provisioned == 0 {
        return Step::ScaleStatefulSet { replicas: 1 };
    }
    // Nobody holds a membership. Bootstrap only when every provisioned
    // slot has answered so: a silent pod might hold the cluster's data.
    for node_id in 1..=u64::from(provisioned) {
        let answered = obs.status(node_id).is_some();
        if !answered {
            return Step::Wait(WaitReason::PodNotAnswering { node_id });
        }
    }
    if obs.initialized_before {
        return Step::Refuse(Refusal::ClusterDataLost);
    }
    Step::Initialize { node_id: 1 }
}

struct Ctx<'a> {
    obs: &'a Observation,
    summary: &'a Summary,
    leader_id: u64,
}

impl Ctx<'_> {
    fn desired(&self) -> u64 {
        u64::from(self.obs.replicas_desired)
    }

    fn provisioned(&self) -> u64 {
        u64::from(self.obs.replicas_provisioned)
    }

    fn is_voter(&self, node_id: u64) -> bool {
        self.summary.voters.contains(&node_id)
    }

    /// Applies the quorum guard to a step that leaves `voters_after`
    /// voters of which `healthy_after` are healthy.
    fn guarded(&self, step: Step, voters_after: u32, healthy_after: u32) -> Step {
        if healthy_after >= quorum(voters_after) {
            step
        } else {
            Step::Refuse(Refusal::QuorumAtRisk {
                step: Box::new(step),
                healthy_voters_after: healthy_after,
                voters_after,
            })
        }
    }

    fn remove(&self, node_id: u64, reason: RemovalReason) -> Step {
        let step = Step::Remove {
            leader_id: self.leader_id,
            node_id,
            reason,
        };
        if !self.is_voter(node_id) {
            return step;
        }
        let healthy = self.summary.healthy_voters;
        let healthy_after = healthy - u32::from(self.summary.is_healthy(node_id));
        self.guarded(step, self.summary.voter_count() - 1, healthy_after)
    }

    /// Rule 4: a member whose node answers without a membership lost its
    /// volume; as a voter it would count toward quorums it cannot serve.
    fn remove_emptied(&self) -> Option<Step> {
        self.summary
            .members
            .iter()
            .find(|m| self.obs.status(m.node_id).is_some_and(|s| !s.initialized))
            .map(|m| self.remove(m.node_id, RemovalReason::EmptyVolume))
    }

    fn outdated(&self, node_id: u64) -> bool {
        self.obs
            .pod(node_id)
            .is_some_and(|p| p.exists && !p.terminating && !p.current)
    }

    /// Rule 5: restarting a pod that is not a healthy voter cannot lower
    /// the healthy voter count. Slots above the desired count are left
    /// alone: they are about to go.
    fn restart_unhealthy_outdated(&self) -> Option<Step> {
        (1..=self.provisioned().min(self.desired()))
            .filter(|&id| self.outdated(id))
            .find(|&id| !(self.is_voter(id) && self.summary.is_healthy(id)))
            .map(|node_id| Step::RestartPod { node_id })
    }

    /// The healthy voter that should lead next: one on the current
    /// template first, then the least behind, then the lowest id; never one
    /// that is about to be removed.
    fn transfer_target(&self, from: u64) -> Option<u64> {
        self.summary
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Voter && m.healthy && m.node_id != from)
            .filter(|m| m.node_id <= self.desired())
            .min_by_key(|m| {
                let lag = m.lag_entries.unwrap_or(u64::MAX);
                (self.outdated(m.node_id), lag, m.node_id)
            })
            .map(|m| m.node_id)
    }

    fn transfer(&self, purpose: TransferPurpose) -> Step {
        match self.transfer_target(self.leader_id) {
            Some(to_node_id) => Step::TransferLeadership {
                leader_id: self.leader_id,
                to_node_id,
                purpose,
            },
            None => Step::Wait(WaitReason::NoTransferTarget {
                from_node_id: self.leader_id,
            }),
        }
    }

    fn leave(&self, node_id: u64) -> Step {
        if node_id == self.leader_id {
            self.transfer(TransferPurpose::ScaleDown)
        } else {
            self.remove(node_id, RemovalReason::ScaleDown)
        }
    }

    /// Rule 6: the top slot leaves the membership, then the StatefulSet
    /// shrinks by one; then members above every slot (pods already gone).
    fn scale_down(&self) -> Option<Step> {
        let top = self.provisioned();
        if top > self.desired() {
            if self.summary.is_member(top) {
                return Some(self.leave(top));
            }
            let replicas = self.obs.replicas_provisioned - 1;
            return Some(Step::ScaleStatefulSet { replicas });
        }
        let extra = self
            .summary
            .members
            .iter()
            .rev()
            .find(|m| m.node_id > self.desired());
        extra.map(|m| self.leave(m.node_id))
    }

    /// Rule 7: the lowest slot that is not a voter joins, one at a time;
    /// with every slot a voter the StatefulSet grows by one.
    fn scale_up(&self) -> Option<Step> {
        for node_id in 1..=self.provisioned().min(self.desired()) {
            if self.is_voter(node_id) {
                continue;
            }
            if let Some(pod) = self.obs.pod(node_id)
                && pod.terminating
            {
                return Some(Step::Wait(WaitReason::PodTerminating { node_id }));
            }
            if self.obs.status(node_id).is_none() {
                return Some(Step::Wait(WaitReason::PodNotAnswering { node_id }));
            }
            if !self.summary.learners.contains(&node_id) {
                return Some(Step::AddLearner {
                    leader_id: self.leader_id,
                    node_id,
                });
            }
            let lag_entries = self.summary.member(node_id).and_then(|m| m.lag_entries);
            if !self.summary.is_healthy(node_id) {
                return Some(Step::Wait(WaitReason::LearnerCatchingUp {
                    node_id,
                    lag_entries,
                }));
            }
            let step = Step::Promote {
                leader_id: self.leader_id,
                node_id,
            };
            let voters_after = self.summary.voter_count() + 1;
            return Some(self.guarded(step, voters_after, self.summary.healthy_voters + 1));
        }
        (self.provisioned() < self.desired()).then(|| Step::ScaleStatefulSet {
            replicas: self.obs.replicas_provisioned + 1,
        })
    }

    /// Rule 8: one voter at a time, each only once every restarted voter
    /// has caught up, followers from the top, the leader last.
    fn upgrade(&self) -> Option<Step> {
        let slots = 1..=self.provisioned().min(self.desired());
        if let Some(node_id) = slots
            .clone()
            .find(|&id| self.obs.pod(id).is_some_and(|p| p.terminating))
        {
            return Some(Step::Wait(WaitReason::PodTerminating { node_id }));
        }
        if let Some(m) = self.summary.members.iter().find(|m| !m.healthy)
            && !self.outdated(m.node_id)
        {
            return Some(Step::Wait(WaitReason::MemberCatchingUp {
                node_id: m.node_id,
            }));
        }
        let follower = slots
            .clone()
            .rev()
            .find(|&id| id != self.leader_id && self.outdated(id));
        if let Some(node_id) = follower {
            let voters = self.summary.voter_count();
            let healthy_after =
                self.summary.healthy_voters - u32::from(self.summary.is_healthy(node_id));
            return Some(self.guarded(Step::RestartPod { node_id }, voters, healthy_after));
        }
        if !self.outdated(self.leader_id) {
            return None;
        }
        if self.summary.voter_count() == 1 {
            // The only voter: a restart is downtime, but nothing can avoid
            // it and no data is at risk (it restarts on its volume).
            return Some(Step::RestartPod {
                node_id: self.leader_id,
            });
        }
        Some(self.transfer(TransferPurpose::Upgrade))
    }
}
