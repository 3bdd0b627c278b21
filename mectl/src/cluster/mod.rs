//! The one cluster launcher: starts `matchengine-node` processes on
//! loopback and makes them one cluster. `mectl cluster up|down|status`
//! (and so `scripts/cluster` and the benchmarks) use [`local`]; the system
//! tests' harness uses [`node`] and [`bootstrap`] directly, keeping the
//! child processes so that it can kill, pause and restart them.

pub mod bootstrap;
pub mod local;
pub mod node;

pub use local::{LocalCluster, LocalClusterSpec, NodeStop};
pub use node::{NodeLaunch, NodePorts};

/// Why a cluster could not be started, stopped or read.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("node {id} exited ({status}) before its admin API answered; its log ends:\n{log_tail}")]
    Exited {
        id: u64,
        status: String,
        log_tail: String,
    },
    #[error("timed out waiting for {what}")]
    Timeout { what: String },
    #[error("{what}: {source}")]
    Admin {
        what: String,
        source: matchengine_client::ClientError,
    },
    #[error("{0}")]
    Layout(String),
    #[error("node {id} of this cluster is running already (pid {pid}): `mectl cluster down` first")]
    AlreadyRunning { id: u64, pid: u32 },
    #[error("{path}: {reason}")]
    State { path: String, reason: String },
}
