//! A local cluster that outlives the command that started it: `mectl
//! cluster up` starts the nodes detached (in their own process group, so
//! a Ctrl-C in the terminal does not reach them), bootstraps them on the
//! first start, and records in `DIR/cluster.json` which processes they
//! are; `mectl cluster down` stops exactly those (by PID and start time,
//! so a reused PID is never signalled). A second `up` on the same
//! directory restarts the same cluster on its data.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use matchengine_client::{AdminClient, ConnectOptions, Token};
use serde_json::json;
use tokio::time::Instant;

use super::LaunchError;
use super::bootstrap::{self, wait_until_answers};
use super::node::{NodeLaunch, NodePorts};
use crate::procfs::ProcStat;

/// The record of the cluster's processes, in its directory.
pub const STATE_FILE: &str = "cluster.json";
/// The admin token, in the cluster's directory (unless admin is open).
pub const TOKEN_FILE: &str = "admin-token";
/// `export` lines for another shell, in the cluster's directory.
pub const ENV_FILE: &str = "env";

/// What `mectl cluster up` is asked for.
#[derive(Clone, Debug)]
pub struct LocalClusterSpec {
    pub root: PathBuf,
    /// `None`: as recorded (3 on a first start).
    pub nodes: Option<u64>,
    /// `None`: as recorded (7100 on a first start); see [`NodePorts::at_base`].
    pub base_port: Option<u16>,
    pub node_bin: PathBuf,
    /// No admin token: anyone on loopback may call the admin API.
    pub admin_insecure: bool,
    /// More environment for every node.
    pub env: Vec<(String, String)>,
    /// How long starting and bootstrapping may take.
    pub deadline: Duration,
}

/// One node of a local cluster and the process last started for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalNode {
    pub id: u64,
    pub ports: NodePorts,
    pub process: Option<NodeProcess>,
}

/// A process, named so that a reused PID is not mistaken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeProcess {
    pub pid: u32,
    pub start_ticks: u64,
}

impl NodeProcess {
    fn of(child: &Child) -> NodeProcess {
        let pid = child.id();
        NodeProcess {
            pid,
            start_ticks: ProcStat::of(pid).map_or(0, |stat| stat.start_ticks),
        }
    }

    /// Its `/proc` record, if it is still this process and alive.
    pub fn stat(&self) -> Option<ProcStat> {
        ProcStat::of(self.pid)
            .filter(|stat| stat.start_ticks == self.start_ticks && stat.is_alive())
    }

    pub fn is_running(&self) -> bool {
        self.stat().is_some()
    }
}

/// How `down` ended one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeStop {
    /// Exited after SIGTERM.
    Stopped,
    /// Still running after the grace period: SIGKILLed.
    Killed,
    /// Was not running.
    NotRunning,
}

/// A local cluster's layout and processes, as recorded in its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalCluster {
    pub root: PathBuf,
    pub base_port: u16,
    pub admin_insecure: bool,
    pub nodes: Vec<LocalNode>,
}

impl LocalCluster {
    fn layout(
        root: PathBuf,
        nodes: u64,
        base_port: u16,
        admin_insecure: bool,
    ) -> Result<LocalCluster, LaunchError> {
        if nodes == 0 {
            return Err(LaunchError::Layout(
                "a cluster needs at least one node".into(),
            ));
        }
        let nodes = (1..=nodes)
            .map(|id| {
                Ok(LocalNode {
                    id,
                    ports: NodePorts::at_base(base_port, id)?,
                    process: None,
                })
            })
            .collect::<Result<_, LaunchError>>()?;
        Ok(LocalCluster {
            root,
            base_port,
            admin_insecure,
            nodes,
        })
    }

    fn state_path(root: &Path) -> PathBuf {
        root.join(STATE_FILE)
    }

    /// The cluster recorded in `root`, if one was started there.
    pub fn load(root: &Path) -> Result<Option<LocalCluster>, LaunchError> {
        let path = Self::state_path(root);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LaunchError::Io {
                    what: format!("read {}", path.display()),
                    source,
                });
            }
        };
        let bad = |reason: &str| LaunchError::State {
            path: path.display().to_string(),
            reason: reason.to_string(),
        };
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| bad(&error.to_string()))?;
        let base_port = value["base_port"]
            .as_u64()
            .and_then(|port| u16::try_from(port).ok())
            .ok_or_else(|| bad("no base_port"))?;
        let admin_insecure = value["admin_insecure"].as_bool().unwrap_or(false);
        let recorded = value["nodes"].as_array().ok_or_else(|| bad("no nodes"))?;
        let mut cluster = Self::layout(
            root.to_path_buf(),
            recorded.len() as u64,
            base_port,
            admin_insecure,
        )?;
        for (node, record) in cluster.nodes.iter_mut().zip(recorded) {
            if record["id"].as_u64() != Some(node.id) {
                return Err(bad("node ids are not 1, 2, 3, ..."));
            }
            node.process = match (record["pid"].as_u64(), record["start_ticks"].as_u64()) {
                (Some(pid), Some(start_ticks)) => Some(NodeProcess {
                    pid: u32::try_from(pid).map_err(|_| bad("a pid out of range"))?,
                    start_ticks,
                }),
                _ => None,
            };
        }
        Ok(Some(cluster))
    }

    fn save(&self) -> Result<(), LaunchError> {
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|node| match node.process {
                Some(process) => {
                    json!({"id": node.id, "pid": process.pid, "start_ticks": process.start_ticks})
                }
                None => json!({"id": node.id}),
            })
            .collect();
        let state = json!({
            "base_port": self.base_port,
            "admin_insecure": self.admin_insecure,
            "nodes": nodes,
        });
        let path = Self::state_path(&self.root);
        let temporary = path.with_extension("json.tmp");
        let text = format!("{state:#}\n");
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|source| LaunchError::Io {
                what: format!("write {}", path.display()),
                source,
            })
    }

    pub fn token_file(&self) -> Option<PathBuf> {
        (!self.admin_insecure).then(|| self.root.join(TOKEN_FILE))
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.root.join(format!("node-{id}.log"))
    }

    pub fn client_addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| node.ports.client_addr())
            .collect()
    }

    pub fn admin_addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| node.ports.admin_addr())
            .collect()
    }

    /// `options` with this cluster's admin token.
    pub fn connect_options(&self, options: &ConnectOptions) -> Result<ConnectOptions, LaunchError> {
        let mut options = options.clone();
        if let Some(path) = self.token_file() {
            options.token = Some(
                Token::from_file(&path).map_err(|source| LaunchError::Admin {
                    what: "the cluster's admin token".into(),
                    source,
                })?,
            );
        }
        Ok(options)
    }

    pub fn admin_client(&self, options: &ConnectOptions) -> Result<AdminClient, LaunchError> {
        AdminClient::connect(self.admin_addrs(), self.connect_options(options)?).map_err(|source| {
            LaunchError::Admin {
                what: "the admin addresses".into(),
                source,
            }
        })
    }

    /// Starts every node (bootstrapping them on a first start) and returns
    /// once they agree on a leader. On failure, stops what it started.
    pub async fn up(
        spec: &LocalClusterSpec,
        options: &ConnectOptions,
    ) -> Result<UpReport, LaunchError> {
        let io = |what: String| move |source| LaunchError::Io { what, source };
        std::fs::create_dir_all(&spec.root)
            .map_err(io(format!("create {}", spec.root.display())))?;
        let root = spec
            .root
            .canonicalize()
            .map_err(io(format!("resolve {}", spec.root.display())))?;
        let mut cluster = match Self::load(&root)? {
            Some(recorded) => {
                let conflicts = spec.nodes.is_some_and(|n| n != recorded.nodes.len() as u64)
                    || spec
                        .base_port
                        .is_some_and(|port| port != recorded.base_port)
                    || spec.admin_insecure != recorded.admin_insecure;
                if conflicts {
                    return Err(LaunchError::Layout(format!(
                        "{} holds a cluster of {} nodes at base port {} (admin {}): start it as it is, or use another directory",
                        root.display(),
                        recorded.nodes.len(),
                        recorded.base_port,
                        if recorded.admin_insecure {
                            "open"
                        } else {
                            "with a token"
                        },
                    )));
                }
                recorded
            }
            None => Self::layout(
                root.clone(),
                spec.nodes.unwrap_or(3),
                spec.base_port.unwrap_or(7100),
                spec.admin_insecure,
            )?,
        };
        if let Some((id, process)) = cluster.nodes.iter().find_map(|node| {
            node.process
                .filter(NodeProcess::is_running)
                .map(|p| (node.id, p))
        }) {
            return Err(LaunchError::AlreadyRunning {
                id,
                pid: process.pid,
            });
        }
        let token_env = match cluster.token_file() {
            Some(path) => {
                ensure_token(&path)?;
                (
                    "MATCHENGINE_ADMIN_TOKEN_FILE".to_string(),
                    path.display().to_string(),
                )
            }
            None => ("MATCHENGINE_ADMIN_INSECURE".to_string(), "true".to_string()),
        };
        let mut children = Vec::new();
        let started = cluster
            .start_all(spec, options, &token_env, &mut children)
            .await;
        let report = match started {
            Ok(report) => report,
            Err(error) => {
                for child in &mut children {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                for node in &mut cluster.nodes {
                    node.process = None;
                }
                let _ = cluster.save();
                return Err(error);
            }
        };
        cluster.write_env_file()?;
        Ok(report)
    }

    async fn start_all(
        &mut self,
        spec: &LocalClusterSpec,
        options: &ConnectOptions,
        token_env: &(String, String),
        children: &mut Vec<Child>,
    ) -> Result<UpReport, LaunchError> {
        let deadline = Instant::now() + spec.deadline;
        for index in 0..self.nodes.len() {
            let id = self.nodes[index].id;
            let launch = self.launch(id, token_env, &spec.env);
            let mut command = launch.command(&spec.node_bin);
            command.process_group(0);
            let child = launch.spawn(command, &self.log_path(id))?;
            self.nodes[index].process = Some(NodeProcess::of(&child));
            children.push(child);
        }
        // Recorded before anything can fail, so that `down` finds them.
        self.save()?;
        let admin = self.admin_client(options)?;
        for (node, child) in self.nodes.iter().zip(children.iter_mut()) {
            wait_until_answers(
                &admin,
                node.id,
                &node.ports.admin_addr(),
                Some(child),
                &self.log_path(node.id),
                deadline,
            )
            .await?;
        }
        let admin_addrs = self.admin_addrs();
        let restarted = bootstrap::is_initialized(&admin, &admin_addrs).await;
        if !restarted {
            let others: Vec<_> = self.nodes[1..]
                .iter()
                .map(|node| self.launch(node.id, token_env, &spec.env).record())
                .collect();
            bootstrap::bootstrap(&admin, &admin_addrs[0], &others, deadline).await?;
        }
        let leader = bootstrap::agreed_leader(&admin, &admin_addrs, deadline).await?;
        Ok(UpReport { restarted, leader })
    }

    fn launch(
        &self,
        id: u64,
        token_env: &(String, String),
        env: &[(String, String)],
    ) -> NodeLaunch {
        let mut all_env = vec![token_env.clone()];
        all_env.extend(env.iter().cloned());
        let ports = self.nodes[(id - 1) as usize].ports;
        NodeLaunch {
            id,
            data_dir: self.root.join(format!("node-{id}")),
            ports,
            raft_advertised: None,
            raft_source_ip: None,
            env: all_env,
        }
    }

    /// `export` lines that point mectl in another shell at this cluster.
    pub fn env_lines(&self) -> String {
        let mut lines = format!(
            "export MECTL_NODES={}\nexport MECTL_ADMIN={}\n",
            self.client_addrs().join(","),
            self.admin_addrs().join(",")
        );
        if let Some(token) = self.token_file() {
            lines.push_str(&format!(
                "export MATCHENGINE_ADMIN_TOKEN_FILE={}\n",
                token.display()
            ));
        }
        lines
    }

    fn write_env_file(&self) -> Result<(), LaunchError> {
        let path = self.root.join(ENV_FILE);
        std::fs::write(&path, self.env_lines()).map_err(|source| LaunchError::Io {
            what: format!("write {}", path.display()),
            source,
        })
    }

    /// SIGTERMs every node this directory records as running, waits up
    /// to `grace` for them to exit, SIGKILLs the rest.
    pub async fn down(root: &Path, grace: Duration) -> Result<Vec<(u64, NodeStop)>, LaunchError> {
        let mut cluster = Self::load(root)?.ok_or_else(|| LaunchError::State {
            path: Self::state_path(root).display().to_string(),
            reason: "no cluster was started here".into(),
        })?;
        let running: Vec<(u64, NodeProcess)> = cluster
            .nodes
            .iter()
            .filter_map(|node| {
                node.process
                    .filter(NodeProcess::is_running)
                    .map(|p| (node.id, p))
            })
            .collect();
        for (_, process) in &running {
            signal(process.pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + grace;
        let exited = bootstrap::wait_for("every node to exit", deadline, || async {
            running
                .iter()
                .all(|(_, process)| !process.is_running())
                .then_some(())
        })
        .await
        .is_ok();
        let mut outcomes = Vec::new();
        for node in &cluster.nodes {
            let outcome = match running.iter().find(|(id, _)| *id == node.id) {
                None => NodeStop::NotRunning,
                Some((_, process)) if !exited && process.is_running() => {
                    signal(process.pid, rustix::process::Signal::KILL);
                    NodeStop::Killed
                }
                Some(_) => NodeStop::Stopped,
            };
            outcomes.push((node.id, outcome));
        }
        if !exited {
            let _ = bootstrap::wait_for("every node killed", Instant::now() + grace, || async {
                running
                    .iter()
                    .all(|(_, process)| !process.is_running())
                    .then_some(())
            })
            .await;
        }
        for node in &mut cluster.nodes {
            node.process = None;
        }
        cluster.save()?;
        Ok(outcomes)
    }
}

/// How `up` went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpReport {
    /// The directory held a cluster already: its nodes were restarted on
    /// their data, not bootstrapped.
    pub restarted: bool,
    pub leader: u64,
}

fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        // Gone already is fine: that is what we wanted.
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Writes a fresh random token to `path` (mode 0600) unless one is there.
fn ensure_token(path: &Path) -> Result<(), LaunchError> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let io = |what: String| move |source| LaunchError::Io { what, source };
    if std::fs::metadata(path).is_ok_and(|meta| meta.len() > 0) {
        return Ok(());
    }
    let mut random = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut file| file.read_exact(&mut random))
        .map_err(io("read /dev/urandom".into()))?;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let token: String = random
        .iter()
        .map(|byte| ALPHABET[usize::from(*byte) % ALPHABET.len()] as char)
        .collect();
    std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| writeln!(file, "{token}"))
        .map_err(io(format!("write {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_round_trips_and_never_names_a_dead_process_as_running() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster =
            LocalCluster::layout(dir.path().to_path_buf(), 3, 7100, false).expect("layout");
        let me = ProcStat::of_self().expect("this process");
        cluster.nodes[0].process = Some(NodeProcess {
            pid: std::process::id(),
            start_ticks: me.start_ticks,
        });
        // The same PID with another start time is some other process.
        cluster.nodes[1].process = Some(NodeProcess {
            pid: std::process::id(),
            start_ticks: me.start_ticks + 1,
        });
        cluster.save().expect("save");
        let loaded = LocalCluster::load(dir.path())
            .expect("load")
            .expect("recorded");
        assert_eq!(loaded, cluster);
        assert_eq!(loaded.nodes[2].ports.admin, 7303);
        assert!(loaded.nodes[0].process.is_some_and(|p| p.is_running()));
        assert!(!loaded.nodes[1].process.is_some_and(|p| p.is_running()));
        assert!(
            LocalCluster::load(&dir.path().join("absent"))
                .expect("no error")
                .is_none()
        );
    }

    #[test]
    fn a_token_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(TOKEN_FILE);
        ensure_token(&path).expect("token");
        let first = Token::from_file(&path).expect("a valid token");
        ensure_token(&path).expect("token");
        assert_eq!(Token::from_file(&path).expect("a valid token"), first);
        assert_eq!(first.0.len(), 24);
    }
}
