//! Everything openraft: the type configuration, the log and state-machine
//! adapters over [`crate::storage`] and [`crate::replica`], Raft over gRPC
//! between nodes, and the one handle ([`handle::RaftHandle`]) the rest of
//! the node uses. No other folder imports openraft; an upgrade of openraft
//! starts in [`types`] and ends here.
//!
//! One [`start`] is one Raft group. Nothing here is global, so that a
//! process could later run one group per shard of instruments (openraft's
//! multi-raft adapters exist at the pinned version); today a node runs one.

pub mod handle;
pub mod leadership;
pub mod log_storage;
pub mod network;
pub mod proto;
pub mod settings;
pub mod state_machine;
pub mod types;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use handle::RaftHandle;
use log_storage::RaftLogStore;
use network::client::RaftNetwork;
use network::server::RaftService;
use settings::{RaftSettings, RaftSettingsError};
use state_machine::StateMachineStore;
use types::{NodeId, Raft};

use crate::tls::TlsWatch;

/// How one group is run on this node.
#[derive(Clone, Debug)]
pub struct GroupOptions {
    pub node_id: NodeId,
    /// Names the group in openraft's logs.
    pub cluster_name: String,
    pub settings: RaftSettings,
    pub rpc_timeout: Duration,
    pub message_bytes_max: usize,
    pub source_ip: Option<IpAddr>,
    pub tls: Option<TlsWatch>,
    /// Where partial snapshots from the leader are written while received.
    pub incoming_snapshot_dir: PathBuf,
}

/// A group that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] RaftSettingsError),
    #[error("starting Raft: {0}")]
    Raft(String),
    #[error("preparing {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
}

/// Starts one Raft group on `log` and `state_machine`. Returns once the
/// stored log, vote and membership are loaded (a status that said "not
/// initialized" for a member would look like a wiped volume), with the
/// handle and the service for the group's incoming RPCs.
pub async fn start(
    options: GroupOptions,
    log: RaftLogStore,
    state_machine: StateMachineStore,
) -> Result<(RaftHandle, RaftService), StartError> {
    let config = Arc::new(options.settings.to_openraft(&options.cluster_name)?);
    let network = RaftNetwork::new(
        options.rpc_timeout,
        options.message_bytes_max,
        options.source_ip,
        options.tls,
    );
    let raft = Raft::new(options.node_id, config, network, log, state_machine)
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;
    if initialized {
        raft.wait(Some(Duration::from_secs(30)))
            .metrics(
                |m| {
                    m.membership_config
                        .membership()
                        .voter_ids()
                        .next()
                        .is_some()
                },
                "the stored membership loaded",
            )
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
    }
    let dir = options.incoming_snapshot_dir;
    let service =
        RaftService::new(raft.clone(), dir.clone()).map_err(|source| StartError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
    Ok((RaftHandle::new(raft), service))
}
