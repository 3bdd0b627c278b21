//! The admin API (`matchengine.v1.Admin`): bootstrap, membership,
//! leadership, snapshots, instruments and status. What the Kubernetes
//! operator and `mectl` drive. Changes go to the leader; status is answered
//! by every node, joined to a cluster or not.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use matchengine_book as book;
use matchengine_codec::book::{event_to_pb, spec_from_pb};
use matchengine_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::error::ApiError;
use super::{ApiContext, Port};
use crate::raft::handle::{Members, MembershipChange, RaftReport, Role};
use crate::raft::proto::{node_from_pb, node_to_pb};
use crate::raft::types::{NodeId, NodeRecord};

const SERVICE: &str = "matchengine.v1.Admin";
/// Longest a caller may ask TransferLeadership or TriggerSnapshot to wait.
const WAIT_MAX: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct AdminService {
    context: ApiContext,
}

impl AdminService {
    pub fn new(context: ApiContext) -> AdminService {
        AdminService { context }
    }

    fn membership_response(&self) -> pb::MembershipResponse {
        pb::MembershipResponse {
            membership: Some(cluster_to_pb(&self.context.raft.members())),
        }
    }

    async fn initialize(
        &self,
        request: pb::InitializeRequest,
    ) -> Result<pb::InitializeResponse, ApiError> {
        let mut members: BTreeMap<NodeId, NodeRecord> = BTreeMap::new();
        if request.members.is_empty() {
            members.insert(self.context.node_id, self.context.record.clone());
        }
        for member in request.members {
            let (id, record) = validated_record(member)?;
            members.insert(id, record);
        }
        if !members.contains_key(&self.context.node_id) {
            return Err(ApiError::Invalid(format!(
                "members: this node ({}) must be one of them",
                self.context.node_id
            )));
        }
        self.context
            .raft
            .initialize(members.clone())
            .await
            .map_err(|error| self.context.raft_error(error, Port::Admin))?;
        if members.len() == 1 {
            // Alone, this node leads at once; answer when its membership is
            // committed, so that the caller can add learners right away.
            let me = self.context.node_id;
            self.context
                .raft
                .wait_for(WAIT_MAX, "the initial membership committed", |status| {
                    status.leader_id == Some(me) && status.membership_index <= status.applied_index
                })
                .await
                .map_err(|e| {
                    ApiError::Unavailable(format!("initialized, but not leading yet: {e}"))
                })?;
        }
        Ok(pb::InitializeResponse {})
    }

    async fn add_learner(
        &self,
        request: pb::AddLearnerRequest,
    ) -> Result<pb::MembershipResponse, ApiError> {
        let node = request
            .node
            .ok_or_else(|| ApiError::Invalid("missing field node".into()))?;
        let (id, record) = validated_record(node)?;
        self.context.ensure_leader(Port::Admin)?;
        self.context
            .raft
            .add_learner(id, record, request.wait_caught_up)
            .await
            .map_err(|e| self.context.raft_error(e, Port::Admin))?;
        Ok(self.membership_response())
    }

    async fn change_membership(
        &self,
        request: pb::ChangeMembershipRequest,
    ) -> Result<pb::MembershipResponse, ApiError> {
        let promote: BTreeSet<NodeId> = request.promote.into_iter().collect();
        let remove: BTreeSet<NodeId> = request.remove.into_iter().collect();
        if promote.is_empty() && remove.is_empty() {
            return Err(ApiError::Invalid(
                "nothing to change: give promote or remove".into(),
            ));
        }
        if let Some(both) = promote.intersection(&remove).next() {
            return Err(ApiError::Invalid(format!(
                "node {both} is both promoted and removed"
            )));
        }
        self.context.ensure_leader(Port::Admin)?;
        let Members {
            voters, learners, ..
        } = self.context.raft.members();
        for id in &promote {
            if !learners.contains(id) && !voters.contains(id) {
                return Err(ApiError::NotFound(format!(
                    "node {id} is not a member; add it as a learner first"
                )));
            }
        }
        for id in &remove {
            if !learners.contains(id) && !voters.contains(id) {
                return Err(ApiError::NotFound(format!("node {id} is not a member")));
            }
        }
        let remaining = voters
            .union(&promote)
            .filter(|id| !remove.contains(id))
            .count();
        if remaining == 0 {
            return Err(ApiError::FailedPrecondition(
                "the change would leave no voter".into(),
            ));
        }
        let raft = &self.context.raft;
        let to_promote: BTreeSet<NodeId> = promote.difference(&voters).copied().collect();
        if !to_promote.is_empty() {
            raft.change_membership(MembershipChange::Promote(to_promote))
                .await
                .map_err(|e| self.context.raft_error(e, Port::Admin))?;
        }
        let removed_voters: BTreeSet<NodeId> = remove.intersection(&voters).copied().collect();
        if !removed_voters.is_empty() {
            raft.change_membership(MembershipChange::RemoveVoters(removed_voters))
                .await
                .map_err(|e| self.context.raft_error(e, Port::Admin))?;
        }
        let removed_learners: BTreeSet<NodeId> = remove.intersection(&learners).copied().collect();
        if !removed_learners.is_empty() {
            raft.change_membership(MembershipChange::RemoveLearners(removed_learners))
                .await
                .map_err(|e| self.context.raft_error(e, Port::Admin))?;
        }
        Ok(self.membership_response())
    }

    async fn transfer_leadership(
        &self,
        request: pb::TransferLeadershipRequest,
    ) -> Result<pb::TransferLeadershipResponse, ApiError> {
        self.context.ensure_leader(Port::Admin)?;
        let me = self.context.node_id;
        let target = if request.to_node_id != 0 {
            request.to_node_id
        } else {
            self.context.raft.successor().ok_or_else(|| {
                ApiError::FailedPrecondition("there is no other voter to lead".into())
            })?
        };
        if target == me {
            return Ok(pb::TransferLeadershipResponse { leader_id: me });
        }
        let is_voter = self.context.raft.members().voters.contains(&target);
        if !is_voter {
            return Err(ApiError::FailedPrecondition(format!(
                "node {target} is not a voter"
            )));
        }
        self.context
            .raft
            .transfer_leader(target)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        if request.wait_ms > 0 {
            let wait = Duration::from_millis(u64::from(request.wait_ms)).min(WAIT_MAX);
            self.context
                .raft
                .wait_for(wait, "leadership moved", |status| {
                    status.leader_id.is_some() && status.leader_id != Some(me)
                })
                .await
                .map_err(|e| ApiError::Unavailable(format!("leadership did not move: {e}")))?;
        }
        let leader_id = self.context.raft.leader_id().unwrap_or(0);
        Ok(pb::TransferLeadershipResponse { leader_id })
    }

    async fn trigger_snapshot(
        &self,
        request: pb::TriggerSnapshotRequest,
    ) -> Result<pb::TriggerSnapshotResponse, ApiError> {
        let applied = self.context.raft.status().applied_index;
        self.context
            .raft
            .trigger_snapshot()
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        if request.wait
            && let Some(applied) = applied
        {
            self.context
                .raft
                .wait_for(WAIT_MAX, "snapshot built", |status| {
                    status.snapshot_index.is_some_and(|index| index >= applied)
                })
                .await
                .map_err(|e| ApiError::Unavailable(format!("snapshot not built: {e}")))?;
        }
        let snapshot_index = self.context.raft.status().snapshot_index.unwrap_or(0);
        Ok(pb::TriggerSnapshotResponse { snapshot_index })
    }

    async fn add_instrument(
        &self,
        spec: pb::InstrumentSpec,
    ) -> Result<pb::AddInstrumentResponse, ApiError> {
        let command = book::Command::AddInstrument(spec_from_pb(spec)?);
        self.context.admit_book(&command, Port::Admin)?;
        let (reply, events) = self
            .context
            .proposer
            .propose_book(command)
            .await
            .map_err(|e| self.context.propose_error(e, Port::Admin))?;
        match reply.result {
            Ok(_) => Ok(pb::AddInstrumentResponse {
                events: events.iter().map(event_to_pb).collect(),
            }),
            Err(reason) => Err(ApiError::Rejected(reason)),
        }
    }

    fn status(&self) -> Result<pb::StatusResponse, ApiError> {
        let RaftReport {
            status,
            members,
            replication,
        } = self.context.raft.report();
        let leader = status.leader_id.and_then(|id| {
            let record = if id == self.context.node_id {
                Some(self.context.record.clone())
            } else {
                members.records.get(&id).cloned()
            };
            record.map(|record| node_to_pb(id, &record))
        });
        let last_log_index = status.last_log_index.unwrap_or(0);
        let replication = replication
            .map(|replication| {
                replication
                    .into_iter()
                    .map(|(node_id, matched)| {
                        let matched_index = matched.unwrap_or(0);
                        pb::FollowerProgress {
                            node_id,
                            matched_index,
                            lag_entries: last_log_index.saturating_sub(matched_index),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (digest, digest_index) = self
            .context
            .state_machine
            .digest_at_index()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let readiness = self.context.readiness();
        Ok(pb::StatusResponse {
            node: Some(node_to_pb(self.context.node_id, &self.context.record)),
            role: role_to_pb(status.role) as i32,
            term: status.term,
            leader_id: status.leader_id.unwrap_or(0),
            leader,
            last_log_index,
            committed_index: status.committed_index.unwrap_or(0),
            applied_index: status.applied_index.unwrap_or(0),
            snapshot_index: status.snapshot_index.unwrap_or(0),
            purged_index: status.purged_index.unwrap_or(0),
            initialized: !members.voters.is_empty(),
            membership: Some(cluster_to_pb(&members)),
            replication,
            state_digest: format!("{:032x}", digest.0),
            state_digest_index: digest_index,
            startup_committed_index: readiness.startup_committed_index,
            caught_up_since_start: readiness.caught_up,
        })
    }
}

fn validated_record(node: pb::NodeRecord) -> Result<(NodeId, NodeRecord), ApiError> {
    if node.node_id == 0 {
        return Err(ApiError::Invalid("node.node_id: must be at least 1".into()));
    }
    for (field, addr) in [
        ("node.raft_addr", &node.raft_addr),
        ("node.client_addr", &node.client_addr),
        ("node.admin_addr", &node.admin_addr),
    ] {
        let valid = addr.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            return Err(ApiError::Invalid(format!(
                "{field}: {addr:?} is not host:port"
            )));
        }
    }
    Ok(node_from_pb(node))
}

pub fn role_to_pb(role: Role) -> pb::Role {
    match role {
        Role::Learner => pb::Role::Learner,
        Role::Follower => pb::Role::Follower,
        Role::Candidate => pb::Role::Candidate,
        Role::Leader => pb::Role::Leader,
        Role::Shutdown => pb::Role::Shutdown,
    }
}

fn cluster_to_pb(members: &Members) -> pb::Cluster {
    let record = |id: &NodeId| members.records.get(id).map(|node| node_to_pb(*id, node));
    pb::Cluster {
        voters: members.voters.iter().filter_map(record).collect(),
        learners: members.learners.iter().filter_map(record).collect(),
        joint: members.joint,
        log_index: members.log_index.unwrap_or(0),
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for AdminService {
    async fn initialize(
        &self,
        request: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::InitializeResponse>, Status> {
        self.context
            .metered(SERVICE, "Initialize", self.initialize(request.into_inner()))
            .await
    }

    async fn add_learner(
        &self,
        request: Request<pb::AddLearnerRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        self.context
            .metered(
                SERVICE,
                "AddLearner",
                self.add_learner(request.into_inner()),
            )
            .await
    }

    async fn change_membership(
        &self,
        request: Request<pb::ChangeMembershipRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        self.context
            .metered(
                SERVICE,
                "ChangeMembership",
                self.change_membership(request.into_inner()),
            )
            .await
    }

    async fn transfer_leadership(
        &self,
        request: Request<pb::TransferLeadershipRequest>,
    ) -> Result<Response<pb::TransferLeadershipResponse>, Status> {
        self.context
            .metered(
                SERVICE,
                "TransferLeadership",
                self.transfer_leadership(request.into_inner()),
            )
            .await
    }

    async fn trigger_snapshot(
        &self,
        request: Request<pb::TriggerSnapshotRequest>,
    ) -> Result<Response<pb::TriggerSnapshotResponse>, Status> {
        self.context
            .metered(
                SERVICE,
                "TriggerSnapshot",
                self.trigger_snapshot(request.into_inner()),
            )
            .await
    }

    async fn add_instrument(
        &self,
        request: Request<pb::InstrumentSpec>,
    ) -> Result<Response<pb::AddInstrumentResponse>, Status> {
        self.context
            .metered(
                SERVICE,
                "AddInstrument",
                self.add_instrument(request.into_inner()),
            )
            .await
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.context
            .metered(SERVICE, "Status", async { self.status() })
            .await
    }
}
