//! An in-process cluster for storage and state machine tests: real RocksDB
//! logs and snapshot files in temporary directories, Raft RPCs delivered by
//! direct calls. (Tests over real gRPC and real processes are in the
//! `matchengine-systest` crate.)
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matchengine_codec::batch::{CommandBatch, NodeCommand};
use matchengine_node::raft::log_storage::RaftLogStore;
use matchengine_node::raft::settings::RaftSettings;
use matchengine_node::raft::state_machine::{SnapshotData, StateMachineStore};
use matchengine_node::raft::types::{NodeId, NodeRecord, Raft, TypeConfig, Vote};
use matchengine_node::replica::outcome::BatchOutcome;
use matchengine_node::replica::state::StateLimits;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{NetworkError, RPCError, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{Config, ServerState};
use tempfile::TempDir;

type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotData>;

/// Delivers RPCs to the nodes registered with it.
#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft>>>,
}

impl Router {
    fn get(&self, target: NodeId) -> Result<Raft, RPCError<TypeConfig>> {
        self.nodes
            .lock()
            .expect("router lock")
            .get(&target)
            .cloned()
            .ok_or_else(|| {
                RPCError::Unreachable(Unreachable::from_string(format!("node {target} is down")))
            })
    }
}

pub struct Connection {
    router: Router,
    target: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &NodeRecord) -> Connection {
        Connection {
            router: self.clone(),
            target,
        }
    }
}

fn network_error(error: &impl std::error::Error) -> RPCError<TypeConfig> {
    RPCError::Network(NetworkError::from_string(error.to_string()))
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.router.get(self.target)?;
        raft.append_entries(request)
            .await
            .map_err(|e| network_error(&e))
    }

    async fn vote(
        &mut self,
        request: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let raft = self.router.get(self.target)?;
        raft.vote(request).await.map_err(|e| network_error(&e))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        _cancel: impl std::future::Future<Output = openraft::errors::ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let raft = self.router.get(self.target)?;
        raft.install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| StreamingError::from(network_error(&e)))
    }
}

/// One node of the test cluster.
pub struct TestNode {
    pub id: NodeId,
    pub raft: Raft,
    pub state_machine: StateMachineStore,
    pub log: RaftLogStore,
    pub dir: PathBuf,
}

pub struct TestCluster {
    pub router: Router,
    pub root: PathBuf,
    _temporary: Option<TempDir>,
    pub nodes: BTreeMap<NodeId, TestNode>,
    pub config: Arc<Config>,
}

pub fn record(id: NodeId) -> NodeRecord {
    NodeRecord {
        raft_addr: format!("in-process:{id}"),
        client_addr: String::new(),
        admin_addr: String::new(),
    }
}

pub const WAIT: Option<Duration> = Some(Duration::from_secs(20));

impl TestCluster {
    /// A cluster in a fresh temporary directory.
    pub fn new(snapshot_every_entries: u64) -> TestCluster {
        let temporary = TempDir::new().expect("temp dir");
        let mut cluster = TestCluster::at(temporary.path().to_path_buf(), snapshot_every_entries);
        cluster._temporary = Some(temporary);
        cluster
    }

    /// A cluster whose nodes keep their data under `root` (kept afterwards).
    pub fn at(root: PathBuf, snapshot_every_entries: u64) -> TestCluster {
        let settings = RaftSettings {
            snapshot_interval_entries: snapshot_every_entries,
            snapshot_logs_kept_entries: 0,
            ..RaftSettings::default()
        };
        let config = settings.to_openraft("test").expect("valid raft settings");
        TestCluster {
            router: Router::default(),
            root,
            _temporary: None,
            nodes: BTreeMap::new(),
            config: Arc::new(config),
        }
    }

    /// Starts (or restarts, on the same directory) node `id`.
    ///
    /// A restarted node's log opens once the previous instance has closed
    /// it: openraft's tasks may drop their last clone of the old store a
    /// moment after `shutdown` returns, and RocksDB refuses a second open
    /// while the first holds its lock.
    pub async fn start(&mut self, id: NodeId) {
        let dir = self.root.join(format!("node-{id}"));
        let log = open_log(&dir.join("log")).await;
        let state_machine = StateMachineStore::open(&dir.join("snapshots"), StateLimits::default())
            .expect("open sm");
        let raft = Raft::new(
            id,
            self.config.clone(),
            self.router.clone(),
            log.clone(),
            state_machine.clone(),
        )
        .await
        .expect("start raft");
        self.router
            .nodes
            .lock()
            .expect("router lock")
            .insert(id, raft.clone());
        self.nodes.insert(
            id,
            TestNode {
                id,
                raft,
                state_machine,
                log,
                dir,
            },
        );
    }

    /// Stops node `id` (its directory stays).
    pub async fn stop(&mut self, id: NodeId) {
        self.router.nodes.lock().expect("router lock").remove(&id);
        if let Some(node) = self.nodes.remove(&id) {
            node.raft.shutdown().await.expect("shutdown");
        }
    }

    /// Initializes the cluster unless its first member already was.
    pub async fn initialize_once(&self, members: &[NodeId]) {
        if !self.nodes[&members[0]]
            .raft
            .is_initialized()
            .await
            .expect("raft running")
        {
            self.initialize(members).await;
        }
    }

    pub async fn initialize(&self, members: &[NodeId]) {
        let nodes: BTreeMap<NodeId, NodeRecord> =
            members.iter().map(|&id| (id, record(id))).collect();
        self.nodes[&members[0]]
            .raft
            .initialize(nodes)
            .await
            .expect("initialize");
    }

    /// The node that leads with a quorum's acknowledgement, polled until
    /// one does (bounded by [`WAIT`]).
    pub async fn leader(&self) -> NodeId {
        let deadline = tokio::time::Instant::now() + WAIT.expect("a wait bound");
        loop {
            let leader = self.nodes.values().find(|node| {
                let metrics = node.raft.metrics().borrow_watched().clone();
                metrics.state == ServerState::Leader && metrics.last_quorum_acked.is_some()
            });
            if let Some(node) = leader {
                return node.id;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no leader within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Proposes a batch to the leader, following leadership changes as a
    /// client would.
    pub async fn write(&self, timestamp_ns: u64, commands: &[NodeCommand]) -> (u64, BatchOutcome) {
        for _ in 0..20 {
            let leader = self.leader().await;
            let result = self.nodes[&leader]
                .raft
                .client_write(CommandBatch::new(timestamp_ns, commands))
                .await;
            match result {
                Ok(response) => return (response.log_id.index, response.data),
                Err(error) if error.forward_to_leader().is_some() => continue,
                Err(error) => panic!("client write failed: {error}"),
            }
        }
        panic!("no leader accepted the write");
    }

    /// Waits until every running node has applied `index`.
    pub async fn wait_applied(&self, index: u64) {
        for node in self.nodes.values() {
            node.raft
                .wait(WAIT)
                .applied_index_at_least(Some(index), "applied")
                .await
                .unwrap_or_else(|e| panic!("node {} did not apply {index}: {e}", node.id));
        }
    }

    pub fn digests(&self) -> BTreeSet<String> {
        self.nodes
            .values()
            .map(|node| node.state_machine.digest().expect("digest").to_string())
            .collect()
    }
}

/// Opens the log at `dir`, waiting (bounded) while a previous instance in
/// this process still holds its lock.
async fn open_log(dir: &std::path::Path) -> RaftLogStore {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match RaftLogStore::open(dir) {
            Ok(log) => return log,
            Err(error)
                if error.to_string().contains("lock hold by current process")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(error) => panic!("open log: {error}"),
        }
    }
}
