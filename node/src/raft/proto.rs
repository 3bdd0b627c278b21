//! openraft's types <-> `matchengine.v1` Raft messages (the log entry on
//! disk and, later, the Raft RPCs between nodes).

use std::collections::{BTreeMap, BTreeSet};

use matchengine_proto::v1 as pb;
use openraft::EntryPayload as RaftPayload;

use matchengine_codec::batch::CommandBatch;
use matchengine_codec::{CodecError, required};

use super::types::{
    Entry, LeaderId, LogId, Membership, NodeId, NodeRecord, SnapshotMeta, StoredMembership, Vote,
};

pub fn leader_id_to_pb(leader_id: &LeaderId) -> pb::LeaderId {
    pb::LeaderId {
        term: leader_id.term,
        node_id: leader_id.node_id,
    }
}

pub fn leader_id_from_pb(
    leader_id: Option<pb::LeaderId>,
    field: &'static str,
) -> Result<LeaderId, CodecError> {
    let leader_id = required(leader_id, field)?;
    Ok(LeaderId {
        term: leader_id.term,
        node_id: leader_id.node_id,
    })
}

pub fn log_id_to_pb(log_id: &LogId) -> pb::LogId {
    pb::LogId {
        leader_id: Some(leader_id_to_pb(&log_id.leader_id)),
        index: log_id.index,
    }
}

pub fn log_id_from_pb(log_id: pb::LogId) -> Result<LogId, CodecError> {
    Ok(LogId {
        leader_id: leader_id_from_pb(log_id.leader_id, "log_id.leader_id")?,
        index: log_id.index,
    })
}

pub fn optional_log_id_from_pb(log_id: Option<pb::LogId>) -> Result<Option<LogId>, CodecError> {
    log_id.map(log_id_from_pb).transpose()
}

pub fn vote_to_pb(vote: &Vote) -> pb::Vote {
    pb::Vote {
        leader_id: Some(leader_id_to_pb(&vote.leader_id)),
        committed: vote.committed,
    }
}

pub fn vote_from_pb(vote: pb::Vote) -> Result<Vote, CodecError> {
    Ok(Vote {
        leader_id: leader_id_from_pb(vote.leader_id, "vote.leader_id")?,
        committed: vote.committed,
    })
}

pub fn node_to_pb(node_id: NodeId, node: &NodeRecord) -> pb::NodeRecord {
    pb::NodeRecord {
        node_id,
        raft_addr: node.raft_addr.clone(),
        client_addr: node.client_addr.clone(),
        admin_addr: node.admin_addr.clone(),
    }
}

pub fn node_from_pb(node: pb::NodeRecord) -> (NodeId, NodeRecord) {
    (
        node.node_id,
        NodeRecord {
            raft_addr: node.raft_addr,
            client_addr: node.client_addr,
            admin_addr: node.admin_addr,
        },
    )
}

pub fn membership_to_pb(membership: &Membership) -> pb::Membership {
    pb::Membership {
        configs: membership
            .get_joint_config()
            .iter()
            .map(|voters| pb::VoterSet {
                voter_ids: voters.iter().copied().collect(),
            })
            .collect(),
        nodes: membership
            .nodes()
            .map(|(node_id, node)| node_to_pb(*node_id, node))
            .collect(),
    }
}

pub fn membership_from_pb(membership: pb::Membership) -> Result<Membership, CodecError> {
    let configs: Vec<BTreeSet<NodeId>> = membership
        .configs
        .into_iter()
        .map(|voters| voters.voter_ids.into_iter().collect())
        .collect();
    let nodes: BTreeMap<NodeId, NodeRecord> =
        membership.nodes.into_iter().map(node_from_pb).collect();
    Membership::new(configs, nodes).map_err(|_| CodecError::Invalid {
        field: "membership",
        reason: "a voter without a node record, or an empty voter set",
    })
}

pub fn entry_to_pb(entry: &Entry) -> pb::Entry {
    let payload = match &entry.payload {
        RaftPayload::Blank => pb::entry::Payload::Blank(pb::Blank {}),
        RaftPayload::Normal(batch) => pb::entry::Payload::Normal(batch.encoded().clone()),
        RaftPayload::Membership(membership) => {
            pb::entry::Payload::Membership(membership_to_pb(membership))
        }
    };
    pb::Entry {
        log_id: Some(log_id_to_pb(&entry.log_id)),
        payload: Some(payload),
    }
}

pub fn entry_from_pb(entry: pb::Entry) -> Result<Entry, CodecError> {
    let log_id = log_id_from_pb(required(entry.log_id, "entry.log_id")?)?;
    let payload = match required(entry.payload, "entry.payload")? {
        pb::entry::Payload::Blank(_) => RaftPayload::Blank,
        pb::entry::Payload::Normal(bytes) => RaftPayload::Normal(CommandBatch::from_encoded(bytes)),
        pb::entry::Payload::Membership(membership) => {
            RaftPayload::Membership(membership_from_pb(membership)?)
        }
    };
    Ok(Entry { log_id, payload })
}

pub fn snapshot_meta_to_pb(meta: &SnapshotMeta) -> pb::SnapshotMeta {
    pb::SnapshotMeta {
        last_log_id: meta.last_log_id.as_ref().map(log_id_to_pb),
        last_membership_log_id: meta.last_membership.log_id().as_ref().map(log_id_to_pb),
        last_membership: Some(membership_to_pb(meta.last_membership.membership())),
    }
}

pub fn snapshot_meta_from_pb(meta: pb::SnapshotMeta) -> Result<SnapshotMeta, CodecError> {
    Ok(SnapshotMeta {
        last_log_id: optional_log_id_from_pb(meta.last_log_id)?,
        last_membership: StoredMembership::new(
            optional_log_id_from_pb(meta.last_membership_log_id)?,
            membership_from_pb(required(meta.last_membership, "last_membership")?)?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_id(term: u64, node_id: u64, index: u64) -> LogId {
        LogId {
            leader_id: LeaderId { term, node_id },
            index,
        }
    }

    #[test]
    fn entries_of_every_kind_round_trip() {
        let nodes: BTreeMap<NodeId, NodeRecord> = (1..=3)
            .map(|id| {
                (
                    id,
                    NodeRecord {
                        raft_addr: format!("127.0.0.1:{}", 7000 + id),
                        client_addr: format!("127.0.0.1:{}", 8000 + id),
                        admin_addr: format!("127.0.0.1:{}", 9000 + id),
                    },
                )
            })
            .collect();
        let membership =
            Membership::new(vec![BTreeSet::from([1, 2]), BTreeSet::from([2, 3])], nodes).unwrap();
        let entries = [
            Entry {
                log_id: log_id(1, 1, 1),
                payload: RaftPayload::Blank,
            },
            Entry {
                log_id: log_id(2, 3, 9),
                payload: RaftPayload::Normal(CommandBatch::new(5, &[])),
            },
            Entry {
                log_id: log_id(3, 2, 10),
                payload: RaftPayload::Membership(membership),
            },
        ];
        for entry in entries {
            assert_eq!(entry_from_pb(entry_to_pb(&entry)).unwrap(), entry);
        }
    }

    #[test]
    fn a_voter_without_a_node_record_is_invalid() {
        let membership = pb::Membership {
            configs: vec![pb::VoterSet { voter_ids: vec![1] }],
            nodes: vec![],
        };
        assert!(matches!(
            membership_from_pb(membership),
            Err(CodecError::Invalid {
                field: "membership",
                ..
            })
        ));
    }
}
