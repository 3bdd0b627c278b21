//! Health for Kubernetes probes and load balancers, on `grpc.health.v1`.
//!
//! Two answers, kept apart on purpose:
//! - liveness (service name `""`): serving while the process works, even
//!   before the node has joined a cluster. Bootstrap and joining must never
//!   wait on anything stricter.
//! - readiness for client traffic (service `matchengine.v1.Client`):
//!   serving once the node knows a leader and has applied everything that
//!   was committed when it started, so it answers with current data.

use std::sync::atomic::{AtomicBool, Ordering};

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::raft::handle::{RaftHandle, Role};

/// The service name whose health means "ready for client traffic".
pub const CLIENT_SERVICE: &str = "matchengine.v1.Client";

#[derive(Debug)]
pub struct Readiness {
    startup_committed_index: u64,
    caught_up: AtomicBool,
    ready: AtomicBool,
}

/// A point-in-time view of [`Readiness`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadinessView {
    pub startup_committed_index: u64,
    pub caught_up: bool,
    pub ready: bool,
}

impl Readiness {
    /// `startup_committed_index`: the committed index the log held at start.
    pub fn new(startup_committed_index: u64) -> Readiness {
        Readiness {
            startup_committed_index,
            caught_up: AtomicBool::new(startup_committed_index == 0),
            ready: AtomicBool::new(false),
        }
    }

    pub fn view(&self) -> ReadinessView {
        ReadinessView {
            startup_committed_index: self.startup_committed_index,
            caught_up: self.caught_up.load(Ordering::Relaxed),
            ready: self.ready.load(Ordering::Relaxed),
        }
    }

    /// Recomputes readiness from Raft's metrics; returns whether it changed.
    fn update(&self, leader_known: bool, applied_index: u64, running: bool) -> bool {
        if applied_index >= self.startup_committed_index {
            self.caught_up.store(true, Ordering::Relaxed);
        }
        let ready = running && leader_known && self.caught_up.load(Ordering::Relaxed);
        self.ready.swap(ready, Ordering::Relaxed) != ready
    }
}

/// Keeps the client service's health in step with readiness until Raft
/// stops; then reports both services as not serving.
pub async fn track(
    raft: RaftHandle,
    readiness: std::sync::Arc<Readiness>,
    reporter: HealthReporter,
) {
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status(CLIENT_SERVICE, ServingStatus::NotServing)
        .await;
    let mut watch = raft.watch();
    loop {
        let status = watch.status();
        let (leader_known, applied, running) = (
            status.leader_id.is_some(),
            status.applied_index.unwrap_or(0),
            status.role != Role::Shutdown && status.fatal.is_none(),
        );
        if readiness.update(leader_known, applied, running) {
            let status = if readiness.view().ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            tracing::info!(?status, "client readiness changed");
            reporter.set_service_status(CLIENT_SERVICE, status).await;
        }
        if !running || !watch.changed().await {
            break;
        }
    }
    reporter
        .set_service_status(CLIENT_SERVICE, ServingStatus::NotServing)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_a_leader_and_the_startup_commit_applied() {
        let readiness = Readiness::new(10);
        assert!(!readiness.update(true, 9, true), "not caught up yet");
        assert!(!readiness.update(false, 10, true), "no leader");
        assert!(!readiness.view().ready);
        assert!(readiness.update(true, 10, true));
        assert!(readiness.view().ready);
        // Caught up stays caught up; losing the leader is not ready.
        assert!(readiness.update(false, 12, true));
        assert!(!readiness.view().ready);
        assert!(readiness.update(true, 12, true));
        assert!(readiness.update(true, 12, false), "shutting down");
        let fresh = Readiness::new(0);
        assert!(fresh.view().caught_up);
    }
}
