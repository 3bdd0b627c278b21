//! The admin API of a cluster: bootstrap, membership, leadership,
//! snapshots, instruments and per-node status.

use matchengine_proto::v1 as pb;
use matchengine_proto::v1::admin_client::AdminClient as RawAdminClient;

use crate::error::ClientError;
use crate::pool::{ConnectOptions, Pool, RetryPolicy, request};
use crate::transport::Transport;

/// A handle to a cluster's admin API; clones share connections.
#[derive(Clone, Debug)]
pub struct AdminClient {
    pool: Pool,
}

fn api(channel: Transport) -> RawAdminClient<Transport> {
    RawAdminClient::new(channel)
}

impl AdminClient {
    /// An admin client of the nodes at `addrs` (their admin API `host:port`).
    pub fn new(addrs: Vec<String>) -> Result<AdminClient, ClientError> {
        AdminClient::with_policy(addrs, RetryPolicy::default())
    }

    pub fn with_policy(
        addrs: Vec<String>,
        policy: RetryPolicy,
    ) -> Result<AdminClient, ClientError> {
        AdminClient::connect(addrs, policy.into())
    }

    /// A client with TLS and/or a token (see [`ConnectOptions`]).
    pub fn connect(
        addrs: Vec<String>,
        options: ConnectOptions,
    ) -> Result<AdminClient, ClientError> {
        Ok(AdminClient {
            pool: Pool::new(addrs, options)?,
        })
    }

    /// The admin addresses this client was given.
    pub fn nodes(&self) -> &[String] {
        self.pool.seeds()
    }

    async fn on_node<T, F, Fut>(&self, addr: &str, call: F) -> Result<T, ClientError>
    where
        F: FnOnce(RawAdminClient<Transport>, std::time::Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let client = api(self.pool.channel(addr)?);
        call(client, self.pool.policy().attempt_timeout)
            .await
            .map(tonic::Response::into_inner)
            .map_err(ClientError::Status)
    }

    /// The status of the node at `addr`.
    pub async fn status(&self, addr: &str) -> Result<pb::StatusResponse, ClientError> {
        self.on_node(addr, |mut client, timeout| async move {
            client.status(request(pb::StatusRequest {}, timeout)).await
        })
        .await
    }

    /// Makes the node at `addr` the first member of a new cluster (alone,
    /// when `members` is empty).
    pub async fn initialize(
        &self,
        addr: &str,
        members: Vec<pb::NodeRecord>,
    ) -> Result<(), ClientError> {
        self.on_node(addr, |mut client, timeout| async move {
            client
                .initialize(request(pb::InitializeRequest { members }, timeout))
                .await
        })
        .await
        .map(|_| ())
    }

    pub async fn add_learner(
        &self,
        node: pb::NodeRecord,
        wait_caught_up: bool,
    ) -> Result<pb::Cluster, ClientError> {
        let response = leader_rpc!(
            self,
            api,
            add_learner,
            pb::AddLearnerRequest {
                node: Some(node),
                wait_caught_up,
            }
        )?;
        Ok(response.membership.unwrap_or_default())
    }

    pub async fn change_membership(
        &self,
        promote: Vec<u64>,
        remove: Vec<u64>,
    ) -> Result<pb::Cluster, ClientError> {
        let response = leader_rpc!(
            self,
            api,
            change_membership,
            pb::ChangeMembershipRequest { promote, remove }
        )?;
        Ok(response.membership.unwrap_or_default())
    }

    /// Hands leadership to `to_node_id` (0: the most caught-up voter);
    /// returns the leader once known (waits up to `wait_ms`).
    pub async fn transfer_leadership(
        &self,
        to_node_id: u64,
        wait_ms: u32,
    ) -> Result<u64, ClientError> {
        let response = leader_rpc!(
            self,
            api,
            transfer_leadership,
            pb::TransferLeadershipRequest {
                to_node_id,
                wait_ms
            }
        )?;
        Ok(response.leader_id)
    }

    /// Builds a snapshot on the node at `addr`; returns its index.
    pub async fn trigger_snapshot(&self, addr: &str, wait: bool) -> Result<u64, ClientError> {
        self.on_node(addr, |mut client, timeout| async move {
            client
                .trigger_snapshot(request(pb::TriggerSnapshotRequest { wait }, timeout))
                .await
        })
        .await
        .map(|response| response.snapshot_index)
    }

    pub async fn add_instrument(
        &self,
        spec: pb::InstrumentSpec,
    ) -> Result<pb::AddInstrumentResponse, ClientError> {
        leader_rpc!(self, api, add_instrument, spec)
    }
}
