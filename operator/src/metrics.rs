//! The operator's Prometheus metrics. Names follow the house rules:
//! `matchengine_operator_` prefix, base units, `_total` for counters (the
//! encoder appends it). The operator dashboard may use only what
//! [`Metrics::encode`] prints; a test checks that.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::plan::{MemberRole, Summary};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub namespace: String,
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberLabels {
    pub namespace: String,
    pub cluster: String,
    /// `leader`, `voter` (followers) or `learner`.
    pub role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub step: String,
}

const ROLES: [(MemberRole, &str); 3] = [
    (MemberRole::Leader, "leader"),
    (MemberRole::Voter, "voter"),
    (MemberRole::Learner, "learner"),
];

/// The kind of a registered metric, for the series names it exposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// The registry and the list of what was registered in it (the encoder
/// prints nothing for a family without series yet, so the exposition
/// alone cannot tell what exists).
#[derive(Debug, Default)]
struct Registered {
    registry: Registry,
    names: Vec<(String, Kind)>,
}

impl Registered {
    fn add<M>(&mut self, name: &str, help: &str, kind: Kind, metric: M) -> M
    where
        M: prometheus_client::registry::Metric + Clone,
    {
        self.registry.register(name, help, metric.clone());
        self.names.push((name.to_owned(), kind));
        metric
    }
}

#[derive(Debug)]
pub struct Metrics {
    registered: Registered,
    reconciles: Counter,
    reconcile_failures: Family<ReasonLabels, Counter>,
    reconcile_duration_seconds: Histogram,
    members: Family<MemberLabels, Gauge>,
    healthy_voters: Family<ClusterLabels, Gauge>,
    membership_steps: Family<StepLabels, Counter>,
    refusals: Family<ReasonLabels, Counter>,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        use Kind::{Counter as C, Gauge as G, Histogram as H};
        let mut r = Registered::default();
        let reconciles = r.add(
            "matchengine_operator_reconciles",
            "Reconciles started",
            C,
            Counter::default(),
        );
        let reconcile_failures = r.add(
            "matchengine_operator_reconcile_failures",
            "Reconciles that failed, by reason",
            C,
            Family::<ReasonLabels, Counter>::default(),
        );
        // 5 ms .. ~41 s: a reconcile makes a few API and admin calls, and a
        // leadership transfer may wait seconds.
        let reconcile_duration_seconds = r.add(
            "matchengine_operator_reconcile_duration_seconds",
            "Time one reconcile took",
            H,
            Histogram::new(exponential_buckets(0.005, 2.0, 14)),
        );
        let members = r.add(
            "matchengine_operator_members",
            "Members of each cluster by role, as the leader reports them",
            G,
            Family::<MemberLabels, Gauge>::default(),
        );
        let healthy_voters = r.add(
            "matchengine_operator_healthy_voters",
            "Voters that answer and are caught up, per cluster",
            G,
            Family::<ClusterLabels, Gauge>::default(),
        );
        let membership_steps = r.add(
            "matchengine_operator_membership_steps",
            "Membership and rollout steps taken, by step",
            C,
            Family::<StepLabels, Counter>::default(),
        );
        let refusals = r.add(
            "matchengine_operator_refusals",
            "Steps refused to protect a quorum or data, by reason",
            C,
            Family::<ReasonLabels, Counter>::default(),
        );
        let leader = r.add(
            "matchengine_operator_leader",
            "1 while this replica holds the leader election lease",
            G,
            Gauge::default(),
        );
        Self {
            registered: r,
            reconciles,
            reconcile_failures,
            reconcile_duration_seconds,
            members,
            healthy_voters,
            membership_steps,
            refusals,
            leader,
        }
    }

    /// Every series name the operator can expose: `_total` for counters,
    /// `_bucket`, `_sum` and `_count` for histograms.
    pub fn series_names(&self) -> std::collections::BTreeSet<String> {
        let mut names = std::collections::BTreeSet::new();
        for (name, kind) in &self.registered.names {
            let suffixes: &[&str] = match kind {
                Kind::Counter => &["_total"],
                Kind::Histogram => &["_bucket", "_sum", "_count"],
                Kind::Gauge => &[""],
            };
            names.extend(suffixes.iter().map(|suffix| format!("{name}{suffix}")));
        }
        names
    }

    pub fn reconcile_started(&self) {
        self.reconciles.inc();
    }

    pub fn reconcile_finished(&self, duration: Duration) {
        self.reconcile_duration_seconds
            .observe(duration.as_secs_f64());
    }

    pub fn reconcile_failed(&self, reason: &str) {
        self.reconcile_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn step_taken(&self, step: &str) {
        self.membership_steps
            .get_or_create(&StepLabels {
                step: step.to_owned(),
            })
            .inc();
    }

    pub fn step_refused(&self, reason: &str) {
        self.refusals
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Records the membership of one cluster.
    pub fn observe_cluster(&self, namespace: &str, cluster: &str, summary: &Summary) {
        for (role, name) in ROLES {
            let n = summary.members.iter().filter(|m| m.role == role).count();
            self.members
                .get_or_create(&member_labels(namespace, cluster, name))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.healthy_voters
            .get_or_create(&cluster_labels(namespace, cluster))
            .set(i64::from(summary.healthy_voters));
    }

    /// Drops the series of a deleted cluster.
    pub fn forget_cluster(&self, namespace: &str, cluster: &str) {
        for (_, name) in ROLES {
            self.members
                .remove(&member_labels(namespace, cluster, name));
        }
        self.healthy_voters
            .remove(&cluster_labels(namespace, cluster));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registered.registry)?;
        Ok(text)
    }
}

fn member_labels(namespace: &str, cluster: &str, role: &str) -> MemberLabels {
    MemberLabels {
        namespace: namespace.to_owned(),
        cluster: cluster.to_owned(),
        role: role.to_owned(),
    }
}

fn cluster_labels(namespace: &str, cluster: &str) -> ClusterLabels {
    ClusterLabels {
        namespace: namespace.to_owned(),
        cluster: cluster.to_owned(),
    }
}

/// The series names of the samples in an exposition.
pub fn sample_names(exposition: &str) -> std::collections::BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::MemberSummary;

    fn summary() -> Summary {
        let member = |node_id, role| MemberSummary {
            node_id,
            role,
            healthy: true,
            lag_entries: Some(0),
        };
        Summary {
            members: vec![
                member(1, MemberRole::Leader),
                member(2, MemberRole::Voter),
                member(3, MemberRole::Voter),
                member(4, MemberRole::Learner),
            ],
            healthy_voters: 3,
            ..Summary::default()
        }
    }

    #[test]
    fn exposition_has_the_documented_names() {
        let metrics = Metrics::new();
        metrics.reconcile_started();
        metrics.reconcile_failed("kube");
        metrics.reconcile_finished(Duration::from_millis(20));
        metrics.observe_cluster("trading", "books", &summary());
        metrics.step_taken("Promote");
        metrics.step_refused("RefusedQuorumAtRisk");
        metrics.set_leader(true);
        let text = metrics.encode().unwrap();
        // With every metric touched, the list of record and the exposition
        // agree exactly.
        assert_eq!(sample_names(&text), metrics.series_names());
        let names = metrics.series_names();
        for name in [
            "matchengine_operator_reconciles_total",
            "matchengine_operator_reconcile_failures_total",
            "matchengine_operator_reconcile_duration_seconds_bucket",
            "matchengine_operator_members",
            "matchengine_operator_healthy_voters",
            "matchengine_operator_membership_steps_total",
            "matchengine_operator_refusals_total",
            "matchengine_operator_leader",
        ] {
            assert!(names.contains(name), "{name} missing from {text}");
        }
        assert!(text.contains(
            r#"matchengine_operator_members{namespace="trading",cluster="books",role="voter"} 2"#
        ));
        metrics.forget_cluster("trading", "books");
        assert!(!metrics.encode().unwrap().contains("cluster=\"books\""));
    }
}
