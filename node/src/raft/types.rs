//! The openraft type configuration and the aliases the rest of the node
//! uses. openraft is pinned at `=0.10.0-alpha.37`; an upgrade starts here.

use matchengine_codec::batch::CommandBatch;

use crate::replica::outcome::BatchOutcome;

/// A member's addresses, as recorded in the Raft membership.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NodeRecord {
    /// Where peers send Raft RPCs.
    pub raft_addr: String,
    /// Where clients send orders and KV requests.
    pub client_addr: String,
    /// Where operators and the Kubernetes operator send admin requests.
    pub admin_addr: String,
}

openraft::declare_raft_types!(
    /// MatchEngine's Raft types: log entries carry command batches, applying
    /// one returns every command's outcome.
    pub TypeConfig:
        D = CommandBatch,
        R = BatchOutcome,
        NodeId = u64,
        Node = NodeRecord,
);

pub type NodeId = u64;
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type EntryPayload = openraft::type_config::alias::EntryPayloadOf<TypeConfig>;
pub type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, NodeId>;
pub type Membership = openraft::Membership<NodeId, NodeRecord>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
pub type LogState = openraft::storage::LogState<TypeConfig>;
pub type Raft = openraft::Raft<TypeConfig, super::state_machine::StateMachineStore>;
