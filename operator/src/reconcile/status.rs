//! The status the operator writes: a pure function of the previous status,
//! the summary of the nodes' answers and the step just taken.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{MatchEngineClusterStatus, MemberRole, MemberStatus, Phase};
use crate::desired::{ClusterRef, ordinal};
use crate::plan::{self, Refusal, Step, Summary, TransferPurpose, WaitReason};

/// What one reconcile learned, for the status.
#[derive(Debug)]
pub struct Observed<'a> {
    pub generation: Option<i64>,
    pub summary: &'a Summary,
    pub step: &'a Step,
    /// The step was carried out (an admin call that succeeded).
    pub executed: bool,
    pub now: Timestamp,
}

fn phase(previous_initialized: bool, observed: &Observed<'_>) -> Phase {
    let summary = observed.summary;
    let degraded = summary.any_initialized
        && (!summary.has_quorum() || summary.healthy_voters < summary.voter_count());
    match observed.step {
        Step::Refuse(_) => Phase::Degraded,
        _ if !summary.any_initialized && !previous_initialized => Phase::Bootstrapping,
        _ if summary.any_initialized && !summary.has_quorum() => Phase::Degraded,
        Step::RestartPod { .. }
        | Step::TransferLeadership {
            purpose: TransferPurpose::Upgrade,
            ..
        }
        | Step::Wait(WaitReason::MemberCatchingUp { .. } | WaitReason::PodTerminating { .. }) => {
            if degraded && matches!(observed.step, Step::Wait(_)) {
                Phase::Degraded
            } else {
                Phase::Upgrading
            }
        }
        Step::Steady if degraded => Phase::Degraded,
        Step::Steady => Phase::Running,
        _ => Phase::Scaling,
    }
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    (generation, now): (Option<i64>, Timestamp),
    previous: &[Condition],
) -> Condition {
    let status = if status { "True" } else { "False" };
    // The transition time moves only when the status flips.
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

fn conditions(observed: &Observed<'_>, previous: &[Condition]) -> Vec<Condition> {
    let summary = observed.summary;
    let step = observed.step;
    let (available, available_reason) = if summary.has_quorum() {
        (true, "QuorumHealthy")
    } else if !summary.any_initialized {
        (false, "NotBootstrapped")
    } else if summary.leader_id.is_none() {
        (false, "NoLeader")
    } else {
        (false, "QuorumLost")
    };
    let quorum_message = format!(
        "{} of {} voters healthy, quorum {}",
        summary.healthy_voters,
        summary.voter_count(),
        plan::quorum(summary.voter_count())
    );
    let progressing = !matches!(step, Step::Steady | Step::Refuse(_));
    let (degraded, degraded_reason) = match step {
        Step::Refuse(Refusal::QuorumAtRisk { .. }) => (true, "RefusedQuorumAtRisk"),
        Step::Refuse(Refusal::ClusterDataLost) => (true, "ClusterDataLost"),
        _ if summary.any_initialized && !summary.has_quorum() => (true, available_reason),
        _ if summary.healthy_voters < summary.voter_count() => (true, "MemberUnhealthy"),
        _ => (false, "AllMembersHealthy"),
    };
    let at = (observed.generation, observed.now);
    let step_reason = match step {
        Step::Wait(_) => "Waiting",
        Step::Refuse(_) => "Refused",
        other => other.kind(),
    };
    vec![
        condition(
            "Available",
            available,
            available_reason,
            quorum_message.clone(),
            at,
            previous,
        ),
        condition(
            "Progressing",
            progressing,
            step_reason,
            step.to_string(),
            at,
            previous,
        ),
        condition(
            "Degraded",
            degraded,
            degraded_reason,
            if degraded {
                step.to_string()
            } else {
                quorum_message
            },
            at,
            previous,
        ),
    ]
}

/// The status when the operator cannot act on the cluster at all (it lacks
/// the credentials the nodes' admin API needs): what it observed before
/// stays, the cluster is Degraded for `reason`, and nothing progresses.
pub fn blocked(
    previous: &MatchEngineClusterStatus,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> MatchEngineClusterStatus {
    let at = (generation, now);
    let mut conditions: Vec<Condition> = previous
        .conditions
        .iter()
        .filter(|c| c.type_ != "Degraded" && c.type_ != "Progressing")
        .cloned()
        .collect();
    conditions.push(condition(
        "Progressing",
        false,
        reason,
        message.to_owned(),
        at,
        &previous.conditions,
    ));
    conditions.push(condition(
        "Degraded",
        true,
        reason,
        message.to_owned(),
        at,
        &previous.conditions,
    ));
    MatchEngineClusterStatus {
        phase: Some(Phase::Degraded),
        observed_generation: generation,
        message: Some(message.to_owned()),
        conditions,
        ..previous.clone()
    }
}

/// The new status. `previous` keeps what only the operator remembers:
/// that the cluster was bootstrapped, and which instruments exist.
pub fn status(
    cluster: &ClusterRef,
    previous: &MatchEngineClusterStatus,
    observed: &Observed<'_>,
) -> MatchEngineClusterStatus {
    let summary = observed.summary;
    let pod = |node_id: u64| ordinal(node_id).map(|o| cluster.pod_name(o));
    let members = summary
        .members
        .iter()
        .map(|m| MemberStatus {
            node_id: m.node_id,
            pod: pod(m.node_id).unwrap_or_default(),
            role: match m.role {
                plan::MemberRole::Leader => MemberRole::Leader,
                plan::MemberRole::Voter => MemberRole::Voter,
                plan::MemberRole::Learner => MemberRole::Learner,
            },
            healthy: m.healthy,
            lag_entries: m.lag_entries,
        })
        .collect();
    let mut instruments_created = previous.instruments_created.clone();
    if let (Step::AddInstrument { instrument, .. }, true) = (observed.step, observed.executed) {
        instruments_created.push(*instrument);
        instruments_created.sort_unstable();
        instruments_created.dedup();
    }
    let initialized = previous.initialized
        || summary.any_initialized
        || (matches!(observed.step, Step::Initialize { .. }) && observed.executed);
    let ready = summary.members.iter().filter(|m| m.healthy).count();
    MatchEngineClusterStatus {
        phase: Some(phase(previous.initialized, observed)),
        observed_generation: observed.generation,
        replicas: summary.voter_count(),
        ready_replicas: u32::try_from(ready).unwrap_or(u32::MAX),
        leader: summary.leader_id.and_then(pod),
        leader_id: summary.leader_id,
        term: summary.term,
        committed_index: summary.committed_index,
        members,
        initialized,
        instruments_created,
        message: Some(observed.step.to_string()),
        conditions: conditions(observed, &previous.conditions),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::tests::cluster_ref;
    use crate::plan::sim::Model;
    use crate::plan::{plan, summarize};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn run(
        model: &Model,
        previous: &MatchEngineClusterStatus,
        now: i64,
    ) -> MatchEngineClusterStatus {
        let obs = model.observe();
        let summary = summarize(&obs);
        let step = plan(&obs);
        let observed = Observed {
            generation: Some(2),
            summary: &summary,
            step: &step,
            executed: true,
            now: at(now),
        };
        status(&cluster_ref(), previous, &observed)
    }

    fn condition<'a>(status: &'a MatchEngineClusterStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn steady_cluster_is_running_and_available() {
        let s = run(&Model::steady(3), &MatchEngineClusterStatus::default(), 0);
        assert_eq!(s.phase, Some(Phase::Running));
        assert_eq!((s.replicas, s.ready_replicas), (3, 3));
        assert_eq!(s.leader.as_deref(), Some("books-0"));
        assert_eq!(s.members[1].pod, "books-1");
        assert_eq!(s.members[0].role, MemberRole::Leader);
        assert!(s.initialized);
        assert_eq!(condition(&s, "Available").status, "True");
        assert_eq!(condition(&s, "Progressing").status, "False");
        assert_eq!(condition(&s, "Degraded").status, "False");
        assert_eq!(s.observed_generation, Some(2));
    }

    #[test]
    fn new_cluster_is_bootstrapping() {
        let s = run(&Model::new(3), &MatchEngineClusterStatus::default(), 0);
        assert_eq!(s.phase, Some(Phase::Bootstrapping));
        assert_eq!(condition(&s, "Available").reason, "NotBootstrapped");
        assert_eq!(condition(&s, "Progressing").reason, "Initialize");
        assert!(
            s.initialized,
            "an executed Initialize marks the cluster bootstrapped"
        );
    }

    #[test]
    fn refusal_is_degraded_and_transition_times_are_kept() {
        let mut model = Model::steady(3);
        model.node_mut(2).up = false;
        model.node_mut(3).up = false;
        model.desired = 1;
        let first = run(&model, &MatchEngineClusterStatus::default(), 0);
        assert_eq!(first.phase, Some(Phase::Degraded));
        assert_eq!(condition(&first, "Degraded").reason, "RefusedQuorumAtRisk");
        assert_eq!(condition(&first, "Available").status, "False");
        let second = run(&model, &first, 60);
        assert_eq!(
            condition(&second, "Degraded").last_transition_time,
            Time(at(0))
        );
    }

    #[test]
    fn blocked_cluster_is_degraded_and_keeps_what_was_observed() {
        let running = run(&Model::steady(3), &MatchEngineClusterStatus::default(), 0);
        let s = blocked(
            &running,
            "AdminCredentials",
            "no certificate",
            Some(3),
            at(60),
        );
        assert_eq!(s.phase, Some(Phase::Degraded));
        assert_eq!(s.message.as_deref(), Some("no certificate"));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!((s.members.len(), s.initialized), (3, true));
        let degraded = condition(&s, "Degraded");
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "AdminCredentials")
        );
        assert_eq!(degraded.last_transition_time, Time(at(60)));
        assert_eq!(condition(&s, "Progressing").status, "False");
        assert_eq!(condition(&s, "Available").status, "True", "not re-judged");
        assert_eq!(s.conditions.len(), 3);
    }

    #[test]
    fn scaling_and_upgrading_phases() {
        let mut model = Model::steady(3);
        model.desired = 5;
        assert_eq!(
            run(&model, &MatchEngineClusterStatus::default(), 0).phase,
            Some(Phase::Scaling)
        );
        let mut model = Model::steady(3);
        model.revision = 2;
        assert_eq!(
            run(&model, &MatchEngineClusterStatus::default(), 0).phase,
            Some(Phase::Upgrading)
        );
    }
}
