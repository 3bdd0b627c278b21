//! The status: what the operator last observed, written by the operator
//! only (through the status subresource).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What the operator last observed, written by the operator only.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchEngineClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Voters in the membership (the scale subresource's status replicas).
    #[serde(default)]
    pub replicas: u32,
    /// Members that answer and are caught up.
    #[serde(default)]
    pub ready_replicas: u32,
    /// Pod name of the leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_index: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberStatus>,
    /// Set once the cluster was bootstrapped: the operator never
    /// bootstraps it again, even if every node comes back empty.
    #[serde(default)]
    pub initialized: bool,
    /// Instruments the operator created.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instruments_created: Vec<u32>,
    /// The last membership step taken or the reason for waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Phase {
    /// No member answers yet.
    Pending,
    /// Waiting for pod 0 to be initialized as the first member.
    Bootstrapping,
    /// Adding or removing members.
    Scaling,
    /// Replacing pods one at a time.
    Upgrading,
    /// Membership matches the spec and every member is caught up.
    Running,
    /// A member is down, a step was refused, or the spec is invalid.
    Degraded,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Bootstrapping => "Bootstrapping",
            Self::Scaling => "Scaling",
            Self::Upgrading => "Upgrading",
            Self::Running => "Running",
            Self::Degraded => "Degraded",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    pub node_id: u64,
    pub pod: String,
    pub role: MemberRole,
    pub healthy: bool,
    /// Entries behind the leader, when the leader reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_entries: Option<u64>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum MemberRole {
    Leader,
    Voter,
    Learner,
}
