//! `mectl cluster up|down|status`: a local cluster of node processes on
//! loopback (see `matchengine_mectl::cluster::local`).

use std::path::PathBuf;
use std::time::Duration;

use matchengine_client::ConnectOptions;
use matchengine_mectl::cluster::{LocalCluster, LocalClusterSpec, NodeStop};

use crate::admin;

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Start a local cluster on loopback (bootstrapped on its first start,
    /// restarted on its data after that) and return once it has a leader.
    /// The nodes keep running after mectl exits.
    Up(UpArgs),
    /// Stop the local cluster's nodes: SIGTERM, then SIGKILL after --grace.
    Down {
        #[command(flatten)]
        dir: DirArgs,
        /// Seconds to wait for a clean exit before SIGKILL.
        #[arg(long, env = "MECTL_CLUSTER_GRACE", default_value_t = 30.0)]
        grace: f64,
    },
    /// Which of the local cluster's processes run, and every node's status.
    Status {
        #[command(flatten)]
        dir: DirArgs,
    },
}

#[derive(Debug, clap::Args)]
pub struct DirArgs {
    /// The cluster's directory: node data, logs, the admin token and the
    /// record of its processes (cluster.json).
    #[arg(long, env = "MECTL_CLUSTER_DATA", default_value = "data/cluster")]
    data: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    dir: DirArgs,
    /// Nodes on a first start (default 3); a restart keeps the recorded number.
    #[arg(long, env = "MECTL_CLUSTER_NODES")]
    nodes: Option<u64>,
    /// Node i listens on base+i (client), base+100+i (Raft), base+200+i
    /// (admin), base+300+i (metrics), base+400+i (health). Default 7100 on
    /// a first start; a restart keeps the recorded one.
    #[arg(long, env = "MECTL_CLUSTER_BASE_PORT")]
    base_port: Option<u16>,
    /// The node binary (default: matchengine-node beside mectl).
    #[arg(long, env = "MATCHENGINE_NODE_BIN")]
    node_bin: Option<PathBuf>,
    /// No admin token: anyone on loopback may call the admin API (the
    /// default makes DIR/admin-token).
    #[arg(long, env = "MECTL_CLUSTER_ADMIN_INSECURE", default_value_t = false)]
    admin_insecure: bool,
    /// KEY=VALUE for every node's environment (repeatable; comma
    /// separated in the env var).
    #[arg(long, env = "MECTL_CLUSTER_NODE_ENV", value_delimiter = ',', value_parser = key_value)]
    node_env: Vec<(String, String)>,
    /// Seconds that starting and bootstrapping may take.
    #[arg(long, env = "MECTL_CLUSTER_TIMEOUT", default_value_t = 60.0)]
    timeout: f64,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| anyhow::anyhow!("{flag} must be a number of seconds, not {value}"))
}

/// matchengine-node beside this mectl (both are built into one directory).
fn default_node_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("matchengine-node");
    anyhow::ensure!(
        bin.exists(),
        "{} is missing: build it (scripts/build) or pass --node-bin",
        bin.display()
    );
    Ok(bin)
}

pub async fn run(command: ClusterCommand, options: &ConnectOptions) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Up(args) => up(args, options).await,
        ClusterCommand::Down { dir, grace } => {
            for (id, outcome) in LocalCluster::down(&dir.data, seconds(grace, "--grace")?).await? {
                let outcome = match outcome {
                    NodeStop::Stopped => "stopped",
                    NodeStop::Killed => "did not stop in time: killed",
                    NodeStop::NotRunning => "was not running",
                };
                println!("node {id}: {outcome}");
            }
            Ok(())
        }
        ClusterCommand::Status { dir } => status(&dir.data, options).await,
    }
}

async fn up(args: UpArgs, options: &ConnectOptions) -> anyhow::Result<()> {
    let spec = LocalClusterSpec {
        root: args.dir.data.clone(),
        nodes: args.nodes,
        base_port: args.base_port,
        node_bin: match args.node_bin {
            Some(bin) => bin,
            None => default_node_bin()?,
        },
        admin_insecure: args.admin_insecure,
        env: args.node_env,
        deadline: seconds(args.timeout, "--timeout")?,
    };
    let report = LocalCluster::up(&spec, options).await?;
    let cluster = LocalCluster::load(&args.dir.data)?
        .ok_or_else(|| anyhow::anyhow!("{} holds no cluster record", args.dir.data.display()))?;
    print_processes(&cluster);
    println!(
        "{} in {}; leader: node {}",
        if report.restarted {
            "restarted the cluster on its data"
        } else {
            "bootstrapped a new cluster"
        },
        cluster.root.display(),
        report.leader
    );
    println!(
        "point mectl at it in another shell: . {}/env",
        cluster.root.display()
    );
    Ok(())
}

fn print_processes(cluster: &LocalCluster) {
    for node in &cluster.nodes {
        let process = match node.process.filter(|p| p.is_running()) {
            Some(process) => format!("pid {:<7}", process.pid),
            None => "not running".to_string(),
        };
        println!(
            "node {}: {process} client {} admin {} metrics http://{}/metrics log {}",
            node.id,
            node.ports.client_addr(),
            node.ports.admin_addr(),
            node.ports.metrics_addr(),
            cluster.log_path(node.id).display()
        );
    }
}

async fn status(root: &std::path::Path, options: &ConnectOptions) -> anyhow::Result<()> {
    let cluster = LocalCluster::load(root)?
        .ok_or_else(|| anyhow::anyhow!("no cluster was started in {}", root.display()))?;
    print_processes(&cluster);
    if cluster
        .nodes
        .iter()
        .any(|node| node.process.is_some_and(|p| p.is_running()))
    {
        println!();
        admin::status(&cluster.admin_client(options)?).await?;
    }
    Ok(())
}
