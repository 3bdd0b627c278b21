//! What the apply task tells the rest of the node: every applied entry's
//! outcomes feed the event hub (for event streams) and the metrics; a
//! snapshot built or installed is counted, and an installed one resets the
//! event hub. Runs on the apply task: quick, and never blocks.

use std::sync::Arc;
use std::time::Duration;

use crate::events::EventHub;
use crate::metrics::Metrics;
use crate::raft::state_machine::StateMachineObserver;
use crate::replica::outcome::CommandOutcome;
use crate::replica::state::ReplicatedState;

#[derive(Debug)]
pub struct AppliedFeed {
    pub events: Arc<EventHub>,
    pub metrics: Arc<Metrics>,
}

impl StateMachineObserver for AppliedFeed {
    fn applied(&self, _index: u64, outcomes: &[CommandOutcome]) {
        self.events.record(outcomes);
        self.metrics.observe_applied(outcomes);
    }

    fn snapshot_built(&self, size_bytes: u64, elapsed: Duration) {
        self.metrics.observe_snapshot_built(size_bytes, elapsed);
    }

    fn snapshot_installed(&self, size_bytes: u64, state: &ReplicatedState) {
        self.events.reset(state);
        self.metrics.observe_snapshot_installed(size_bytes);
    }
}
