//! Choosing who leads next, for a handover (admin request or shutdown).

use std::collections::BTreeSet;

use super::types::{NodeId, TypeConfig};

/// The most caught-up voter other than `me`, by the leader's replication
/// progress (ties go to the lowest id); `None` when `me` is the only voter.
pub fn successor(metrics: &openraft::RaftMetrics<TypeConfig>, me: NodeId) -> Option<NodeId> {
    let voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
    let matched = |id: &NodeId| {
        metrics
            .replication
            .as_ref()
            .and_then(|replication| replication.get(id).cloned().flatten())
            .map_or(0, |log_id| log_id.index + 1)
    };
    voters
        .iter()
        .filter(|id| **id != me)
        .max_by_key(|id| (matched(id), std::cmp::Reverse(**id)))
        .copied()
}
