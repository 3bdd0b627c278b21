//! The admin API (`matchengine.v1.Admin`): bootstrap, membership,
//! leadership, snapshots, instruments and status. What the Kubernetes
//! operator and `mectl` drive. Changes go to the leader; status is answered
//! by every node, joined to a cluster or not.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use matchengine_book as book;
use matchengine_proto::v1 as pb;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::ClientWriteError;
use openraft::{ChangeMembers, ServerState};
use tonic::{Request, Response, Status};

use super::error::ApiError;
use super::{ApiContext, Port};
use crate::batch::{CommandOutcome, NodeCommand};
use crate::codec::book::{event_to_pb, spec_from_pb};
use crate::codec::raft::node_to_pb;
use crate::raft_types::{Membership, NodeId, NodeRecord, TypeConfig};

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

    fn membership_error(
        &self,
        error: openraft::errors::RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
    ) -> ApiError {
        match error.into_api_error() {
            Some(ClientWriteError::ForwardToLeader(forward)) => ApiError::NotLeader {
                leader_addr: forward
                    .leader_id
                    .and_then(|id| self.context.address_of(id, Port::Admin)),
            },
            // Another change (or the initial membership) is still being
            // committed: transient, so UNAVAILABLE, which callers retry.
            Some(ClientWriteError::ChangeMembershipError(
                openraft::errors::ChangeMembershipError::InProgress(in_progress),
            )) => ApiError::Unavailable(format!("retry: {in_progress}")),
            Some(ClientWriteError::ChangeMembershipError(error)) => {
                ApiError::FailedPrecondition(error.to_string())
            }
            Some(other) => ApiError::Unavailable(other.to_string()),
            None => ApiError::Unavailable("the node is shutting down".into()),
        }
    }

    fn membership_response(&self) -> pb::MembershipResponse {
        let receiver = self.context.raft.metrics();
        let metrics = receiver.borrow_watched();
        pb::MembershipResponse {
            membership: Some(cluster_to_pb(
                metrics.membership_config.membership(),
                metrics.membership_config.log_id().map_or(0, |id| id.index),
            )),
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
            .map_err(|error| match error.into_api_error() {
                Some(openraft::errors::InitializeError::NotAllowed(_)) => {
                    ApiError::FailedPrecondition("this node is already part of a cluster".into())
                }
                Some(other) => ApiError::Invalid(other.to_string()),
                None => ApiError::Unavailable("the node is shutting down".into()),
            })?;
        if members.len() == 1 {
            // Alone, this node leads at once; answer when its membership is
            // committed, so that the caller can add learners right away.
            let me = self.context.node_id;
            self.context
                .raft
                .wait(Some(WAIT_MAX))
                .metrics(
                    |m| {
                        m.current_leader == Some(me)
                            && m.membership_config.log_id() <= &m.last_applied
                    },
                    "the initial membership committed",
                )
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
            .map_err(|e| self.membership_error(e))?;
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
        let (voters, learners) = {
            let receiver = self.context.raft.metrics();
            let metrics = receiver.borrow_watched();
            let membership = metrics.membership_config.membership();
            let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
            let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
            (voters, learners)
        };
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
            raft.change_membership(ChangeMembers::AddVoterIds(to_promote), false)
                .await
                .map_err(|e| self.membership_error(e))?;
        }
        let removed_voters: BTreeSet<NodeId> = remove.intersection(&voters).copied().collect();
        if !removed_voters.is_empty() {
            // retain = false: a removed voter leaves the cluster entirely.
            raft.change_membership(ChangeMembers::RemoveVoters(removed_voters), false)
                .await
                .map_err(|e| self.membership_error(e))?;
        }
        let removed_learners: BTreeSet<NodeId> = remove.intersection(&learners).copied().collect();
        if !removed_learners.is_empty() {
            raft.change_membership(ChangeMembers::RemoveNodes(removed_learners), false)
                .await
                .map_err(|e| self.membership_error(e))?;
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
            let metrics = self.context.raft.metrics().borrow_watched().clone();
            crate::leadership::successor(&metrics, me).ok_or_else(|| {
                ApiError::FailedPrecondition("there is no other voter to lead".into())
            })?
        };
        if target == me {
            return Ok(pb::TransferLeadershipResponse { leader_id: me });
        }
        let is_voter = self
            .context
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .voter_ids()
            .any(|id| id == target);
        if !is_voter {
            return Err(ApiError::FailedPrecondition(format!(
                "node {target} is not a voter"
            )));
        }
        self.context
            .raft
            .trigger()
            .transfer_leader(target)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        if request.wait_ms > 0 {
            let wait = Duration::from_millis(u64::from(request.wait_ms)).min(WAIT_MAX);
            self.context
                .raft
                .wait(Some(wait))
                .metrics(
                    |m| m.current_leader.is_some() && m.current_leader != Some(me),
                    "leadership moved",
                )
                .await
                .map_err(|e| ApiError::Unavailable(format!("leadership did not move: {e}")))?;
        }
        let leader_id = self
            .context
            .raft
            .metrics()
            .borrow_watched()
            .current_leader
            .unwrap_or(0);
        Ok(pb::TransferLeadershipResponse { leader_id })
    }

    async fn trigger_snapshot(
        &self,
        request: pb::TriggerSnapshotRequest,
    ) -> Result<pb::TriggerSnapshotResponse, ApiError> {
        let applied = self.context.raft.metrics().borrow_watched().last_applied;
        self.context
            .raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        if request.wait
            && let Some(applied) = applied
        {
            self.context
                .raft
                .wait(Some(WAIT_MAX))
                .metrics(
                    |m| {
                        m.snapshot
                            .as_ref()
                            .is_some_and(|s| s.index >= applied.index)
                    },
                    "snapshot built",
                )
                .await
                .map_err(|e| ApiError::Unavailable(format!("snapshot not built: {e}")))?;
        }
        let snapshot_index = self
            .context
            .raft
            .metrics()
            .borrow_watched()
            .snapshot
            .map_or(0, |s| s.index);
        Ok(pb::TriggerSnapshotResponse { snapshot_index })
    }

    async fn add_instrument(
        &self,
        spec: pb::InstrumentSpec,
    ) -> Result<pb::AddInstrumentResponse, ApiError> {
        let spec = spec_from_pb(spec)?;
        self.context.ensure_leader(Port::Admin)?;
        let command = book::Command::AddInstrument(spec);
        self.context
            .state_machine
            .read(|applied| super::validate::precheck(applied.state.engine(), &command))
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(ApiError::Rejected)?;
        let outcome = self
            .context
            .proposer
            .propose(vec![NodeCommand::Book(command)])
            .await
            .map_err(|e| ApiError::from_propose(e, |id| self.context.address_of(id, Port::Admin)))?
            .pop();
        match outcome {
            Some(CommandOutcome::Book { reply, events }) => match reply.result {
                Ok(_) => Ok(pb::AddInstrumentResponse {
                    events: events.iter().map(event_to_pb).collect(),
                }),
                Err(reason) => Err(ApiError::Rejected(reason)),
            },
            _ => Err(ApiError::Internal("no outcome for add_instrument".into())),
        }
    }

    fn status(&self) -> Result<pb::StatusResponse, ApiError> {
        let metrics = self.context.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let leader = metrics.current_leader.and_then(|id| {
            let record = if id == self.context.node_id {
                Some(self.context.record.clone())
            } else {
                membership.get_node(&id).cloned()
            };
            record.map(|record| node_to_pb(id, &record))
        });
        let last_log_index = metrics.last_log_index.unwrap_or(0);
        let replication = metrics
            .replication
            .as_ref()
            .map(|replication| {
                replication
                    .iter()
                    .filter(|(id, _)| **id != self.context.node_id)
                    .map(|(id, matched)| {
                        let matched_index = matched.as_ref().map_or(0, |log_id| log_id.index);
                        pb::FollowerProgress {
                            node_id: *id,
                            matched_index,
                            lag_entries: last_log_index.saturating_sub(matched_index),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let digest = self
            .context
            .state_machine
            .digest()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let readiness = self.context.readiness();
        Ok(pb::StatusResponse {
            node: Some(node_to_pb(self.context.node_id, &self.context.record)),
            role: role_to_pb(metrics.state) as i32,
            term: metrics.current_term,
            leader_id: metrics.current_leader.unwrap_or(0),
            leader,
            last_log_index,
            committed_index: metrics.local_committed.as_ref().map_or(0, |id| id.index),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
            purged_index: metrics.purged.map_or(0, |id| id.index),
            initialized: membership.voter_ids().next().is_some(),
            membership: Some(cluster_to_pb(
                membership,
                metrics.membership_config.log_id().map_or(0, |id| id.index),
            )),
            replication,
            state_digest: format!("{:032x}", digest.0),
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
    Ok(crate::codec::raft::node_from_pb(node))
}

pub fn role_to_pb(state: ServerState) -> pb::Role {
    match state {
        ServerState::Learner => pb::Role::Learner,
        ServerState::Follower => pb::Role::Follower,
        ServerState::Candidate => pb::Role::Candidate,
        ServerState::Leader => pb::Role::Leader,
        ServerState::Shutdown => pb::Role::Shutdown,
    }
}

fn cluster_to_pb(membership: &Membership, log_index: u64) -> pb::Cluster {
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let record = |id: NodeId| membership.get_node(&id).map(|node| node_to_pb(id, node));
    pb::Cluster {
        voters: voters.iter().filter_map(|id| record(*id)).collect(),
        learners: membership.learner_ids().filter_map(record).collect(),
        joint: membership.get_joint_config().len() > 1,
        log_index,
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
