//! One node process on loopback: its ports, its data directory, and the
//! command that starts it. The one place outside the node that knows the
//! environment a local node is started with.

use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use matchengine_client::pb;

use super::LaunchError;

/// A node's five listening ports, all on 127.0.0.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodePorts {
    pub client: u16,
    pub raft: u16,
    pub admin: u16,
    pub metrics: u16,
    pub health: u16,
}

/// The gap between one kind of port and the next in [`NodePorts::at_base`].
pub const PORT_KIND_STRIDE: u16 = 100;

impl NodePorts {
    /// The layout `mectl cluster up` uses: node `id` (1..=99) listens for
    /// clients on `base + id`, Raft on `base + 100 + id`, admin on
    /// `base + 200 + id`, metrics on `base + 300 + id` and health on
    /// `base + 400 + id` (so base 7100 gives node 1 ports 7101, 7201, ...).
    pub fn at_base(base: u16, id: u64) -> Result<NodePorts, LaunchError> {
        let id16 = u16::try_from(id)
            .ok()
            .filter(|id| (1..PORT_KIND_STRIDE).contains(id))
            .ok_or_else(|| LaunchError::Layout(format!("node id {id} is not in 1..=99")))?;
        let port = |kind: u16| {
            base.checked_add(kind * PORT_KIND_STRIDE + id16)
                .ok_or_else(|| LaunchError::Layout(format!("base port {base} is too high")))
        };
        Ok(NodePorts {
            client: port(0)?,
            raft: port(1)?,
            admin: port(2)?,
            metrics: port(3)?,
            health: port(4)?,
        })
    }

    pub fn client_addr(&self) -> String {
        loopback(self.client)
    }

    pub fn raft_addr(&self) -> String {
        loopback(self.raft)
    }

    pub fn admin_addr(&self) -> String {
        loopback(self.admin)
    }

    pub fn metrics_addr(&self) -> String {
        loopback(self.metrics)
    }

    pub fn health_addr(&self) -> String {
        loopback(self.health)
    }
}

fn loopback(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Everything needed to start one node.
#[derive(Clone, Debug)]
pub struct NodeLaunch {
    pub id: u64,
    pub data_dir: PathBuf,
    pub ports: NodePorts,
    /// The Raft address peers are told, when it is not the node's own
    /// Raft port (a fault-injecting proxy in front of it).
    pub raft_advertised: Option<String>,
    /// The source address of the node's outgoing Raft connections (the
    /// fault proxy tells peers apart by it).
    pub raft_source_ip: Option<IpAddr>,
    /// More environment, set after (and so over) the launcher's own.
    pub env: Vec<(String, String)>,
}

impl NodeLaunch {
    /// The node's record for the cluster's membership.
    pub fn record(&self) -> pb::NodeRecord {
        pb::NodeRecord {
            node_id: self.id,
            raft_addr: self
                .raft_advertised
                .clone()
                .unwrap_or_else(|| self.ports.raft_addr()),
            client_addr: self.ports.client_addr(),
            admin_addr: self.ports.admin_addr(),
        }
    }

    /// The command that runs `bin` as this node (stdin closed; output is
    /// the caller's to direct).
    pub fn command(&self, bin: &Path) -> Command {
        let mut command = Command::new(bin);
        command
            .env("MATCHENGINE_NODE_ID", self.id.to_string())
            .env("MATCHENGINE_DATA_DIR", &self.data_dir)
            .env("MATCHENGINE_ADVERTISE_HOST", "127.0.0.1")
            .env("MATCHENGINE_CLIENT_LISTEN", self.ports.client_addr())
            .env("MATCHENGINE_RAFT_LISTEN", self.ports.raft_addr())
            .env("MATCHENGINE_ADMIN_LISTEN", self.ports.admin_addr())
            .env("MATCHENGINE_METRICS_LISTEN", self.ports.metrics_addr())
            .env("MATCHENGINE_HEALTH_LISTEN", self.ports.health_addr())
            .stdin(Stdio::null());
        if let Some(addr) = &self.raft_advertised {
            command.env("MATCHENGINE_ADVERTISE_RAFT_ADDR", addr);
        }
        if let Some(ip) = self.raft_source_ip {
            command.env("MATCHENGINE_RAFT_SOURCE_IP", ip.to_string());
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Starts `bin` as this node with its output appended to `log`.
    pub fn spawn(&self, mut command: Command, log: &Path) -> Result<Child, LaunchError> {
        let io = |what: String| move |source| LaunchError::Io { what, source };
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io(format!("open {}", log.display())))?;
        let stderr = file
            .try_clone()
            .map_err(io(format!("open {}", log.display())))?;
        command
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(io(format!(
                "start node {} ({})",
                self.id,
                command.get_program().to_string_lossy()
            )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_layout_puts_each_kind_a_hundred_apart() {
        let ports = NodePorts::at_base(7100, 3).expect("in range");
        assert_eq!(
            ports,
            NodePorts {
                client: 7103,
                raft: 7203,
                admin: 7303,
                metrics: 7403,
                health: 7503,
            }
        );
        assert!(NodePorts::at_base(7100, 0).is_err());
        assert!(NodePorts::at_base(7100, 100).is_err());
        assert!(NodePorts::at_base(65_300, 1).is_err());
    }

    #[test]
    fn the_command_sets_every_listen_address_and_extra_env_last() {
        let launch = NodeLaunch {
            id: 2,
            data_dir: PathBuf::from("/data/node-2"),
            ports: NodePorts::at_base(7100, 2).expect("in range"),
            raft_advertised: Some("127.0.0.1:9999".into()),
            raft_source_ip: None,
            env: vec![("MATCHENGINE_CLIENT_LISTEN".into(), "127.0.0.1:1".into())],
        };
        let command = launch.command(Path::new("matchengine-node"));
        let env: std::collections::BTreeMap<_, _> = command
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert_eq!(env["MATCHENGINE_NODE_ID"].as_deref(), Some("2"));
        assert_eq!(
            env["MATCHENGINE_RAFT_LISTEN"].as_deref(),
            Some("127.0.0.1:7202")
        );
        assert_eq!(
            env["MATCHENGINE_CLIENT_LISTEN"].as_deref(),
            Some("127.0.0.1:1")
        );
        assert_eq!(
            env["MATCHENGINE_ADVERTISE_RAFT_ADDR"].as_deref(),
            Some("127.0.0.1:9999")
        );
        assert_eq!(launch.record().raft_addr, "127.0.0.1:9999");
    }
}
