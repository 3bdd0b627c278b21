//! The node binary's configuration: every flag also read from a
//! `MATCHENGINE_*` environment variable, validated at start-up with an error
//! that names the flag, then turned into [`NodeSettings`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use matchengine_book::Limits;

use crate::raft::settings::RaftSettings;
use crate::raft::types::{NodeId, NodeRecord};
use crate::replica::kv::KvLimits;
use crate::replica::state::StateLimits;
use crate::tls::TlsFiles;

#[derive(Clone, Debug, Parser)]
#[command(
    name = "matchengine-node",
    version,
    about = "A MatchEngine node: the order books and key-value store, replicated by Raft."
)]
pub struct Config {
    /// This node's id in the cluster (at least 1).
    #[arg(
        long,
        env = "MATCHENGINE_NODE_ID",
        required_unless_present = "node_id_from_hostname"
    )]
    pub node_id: Option<NodeId>,
    /// Take the node id from the StatefulSet ordinal at the end of the host
    /// name (`name-0` is node 1).
    #[arg(
        long,
        env = "MATCHENGINE_NODE_ID_FROM_HOSTNAME",
        default_value_t = false
    )]
    pub node_id_from_hostname: bool,
    /// Where the Raft log, the vote and snapshots live.
    #[arg(
        long,
        env = "MATCHENGINE_DATA_DIR",
        default_value = "/var/lib/matchengine"
    )]
    pub data_dir: PathBuf,

    #[arg(
        long,
        env = "MATCHENGINE_CLIENT_LISTEN",
        default_value = "0.0.0.0:7000"
    )]
    pub client_listen: SocketAddr,
    #[arg(long, env = "MATCHENGINE_RAFT_LISTEN", default_value = "0.0.0.0:7001")]
    pub raft_listen: SocketAddr,
    #[arg(long, env = "MATCHENGINE_ADMIN_LISTEN", default_value = "0.0.0.0:7002")]
    pub admin_listen: SocketAddr,
    /// HTTP address serving Prometheus metrics on /metrics.
    #[arg(
        long,
        env = "MATCHENGINE_METRICS_LISTEN",
        default_value = "0.0.0.0:9100"
    )]
    pub metrics_listen: SocketAddr,
    /// The host name (or IP) that peers, clients and the operator use to
    /// reach this node; advertised with each listen port.
    #[arg(long, env = "MATCHENGINE_ADVERTISE_HOST", default_value = "127.0.0.1")]
    pub advertise_host: String,

    /// The Raft address peers use, when it is not <advertise-host>:<raft
    /// port> (behind a proxy or a NAT).
    #[arg(long, env = "MATCHENGINE_ADVERTISE_RAFT_ADDR")]
    pub advertise_raft_addr: Option<String>,
    /// The local IP outgoing Raft connections come from (default: the
    /// system's choice). Lets a network filter tell the nodes apart.
    #[arg(long, env = "MATCHENGINE_RAFT_SOURCE_IP")]
    pub raft_source_ip: Option<std::net::IpAddr>,

    #[arg(long, env = "MATCHENGINE_HEARTBEAT_INTERVAL_MS", default_value_t = 50)]
    pub heartbeat_interval_ms: u64,
    #[arg(
        long,
        env = "MATCHENGINE_ELECTION_TIMEOUT_MIN_MS",
        default_value_t = 300
    )]
    pub election_timeout_min_ms: u64,
    #[arg(
        long,
        env = "MATCHENGINE_ELECTION_TIMEOUT_MAX_MS",
        default_value_t = 600
    )]
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many log entries since the last one.
    #[arg(
        long,
        env = "MATCHENGINE_SNAPSHOT_INTERVAL_ENTRIES",
        default_value_t = 100_000
    )]
    pub snapshot_interval_entries: u64,
    /// Log entries kept below the newest snapshot.
    #[arg(
        long,
        env = "MATCHENGINE_SNAPSHOT_LOGS_KEPT_ENTRIES",
        default_value_t = 10_000
    )]
    pub snapshot_logs_kept_entries: u64,
    /// Entries per append-entries message.
    #[arg(
        long,
        env = "MATCHENGINE_REPLICATION_ENTRIES_PER_MESSAGE_MAX",
        default_value_t = 256
    )]
    pub replication_entries_per_message_max: u64,

    /// Client commands accepted but not yet answered; beyond it a request
    /// fails with RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "MATCHENGINE_INFLIGHT_COMMANDS_MAX",
        default_value_t = 100_000
    )]
    pub inflight_commands_max: u32,
    /// Commands per log entry.
    #[arg(long, env = "MATCHENGINE_BATCH_COMMANDS_MAX", default_value_t = 4_096)]
    pub batch_commands_max: u32,
    /// Log entries proposed and not yet applied.
    #[arg(long, env = "MATCHENGINE_BATCHES_INFLIGHT_MAX", default_value_t = 64)]
    pub batches_inflight_max: u32,
    /// Largest client or admin request.
    #[arg(long, env = "MATCHENGINE_CLIENT_MESSAGE_BYTES_MAX", default_value_t = 4 * 1024 * 1024)]
    pub client_message_bytes_max: u32,
    /// Largest Raft message between nodes.
    #[arg(long, env = "MATCHENGINE_RAFT_MESSAGE_BYTES_MAX", default_value_t = 256 * 1024 * 1024)]
    pub raft_message_bytes_max: u32,
    /// Commands in one SubmitBatch call; at most --batch-commands-max (a
    /// call's commands go into one log entry).
    #[arg(
        long,
        env = "MATCHENGINE_SUBMIT_BATCH_COMMANDS_MAX",
        default_value_t = 4_096
    )]
    pub submit_batch_commands_max: u32,
    /// Events kept per instrument for StreamEvents to resume from.
    #[arg(
        long,
        env = "MATCHENGINE_EVENTS_RETAINED_PER_INSTRUMENT",
        default_value_t = 65_536
    )]
    pub events_retained_per_instrument: u32,
    /// Timeout of one Raft RPC to a peer.
    #[arg(long, env = "MATCHENGINE_RAFT_RPC_TIMEOUT_MS", default_value_t = 2_000)]
    pub raft_rpc_timeout_ms: u64,

    // Replicated limits: every node of a cluster must use the same values.
    #[arg(long, env = "MATCHENGINE_INSTRUMENTS_MAX", default_value_t = Limits::default().instruments_max)]
    pub instruments_max: u32,
    #[arg(long, env = "MATCHENGINE_ORDERS_OPEN_MAX", default_value_t = Limits::default().orders_open_max)]
    pub orders_open_max: u32,
    /// Resting orders to pre-allocate room for at start (and after a
    /// snapshot install): no order index grows, and rehashes, below it.
    #[arg(long, env = "MATCHENGINE_ORDERS_RESERVED", default_value_t = 100_000)]
    pub orders_reserved: u32,
    #[arg(long, env = "MATCHENGINE_ORDERS_PER_ACCOUNT_MAX", default_value_t = Limits::default().orders_per_account_max)]
    pub orders_per_account_max: u32,
    #[arg(long, env = "MATCHENGINE_KV_KEY_BYTES_MAX", default_value_t = KvLimits::default().key_bytes_max)]
    pub kv_key_bytes_max: u32,
    #[arg(long, env = "MATCHENGINE_KV_VALUE_BYTES_MAX", default_value_t = KvLimits::default().value_bytes_max)]
    pub kv_value_bytes_max: u32,
    #[arg(long, env = "MATCHENGINE_KV_KEYS_MAX", default_value_t = KvLimits::default().keys_max)]
    pub kv_keys_max: u32,

    /// PEM certificate (with its chain) this node presents on its client,
    /// admin and Raft ports and to its peers. With --tls-key and --tls-ca
    /// it turns TLS on for every port; the admin and Raft ports then
    /// require a client certificate from the CA.
    #[arg(long, env = "MATCHENGINE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "MATCHENGINE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle that peers', operators' and admins' certificates must
    /// chain to.
    #[arg(long, env = "MATCHENGINE_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// How often the TLS files are read again; changed files apply to new
    /// connections without a restart.
    #[arg(
        long,
        env = "MATCHENGINE_TLS_RELOAD_INTERVAL_MS",
        default_value_t = 10_000
    )]
    pub tls_reload_interval_ms: u64,
    /// A file holding the token admin calls must carry as
    /// `authorization: Bearer <token>` (with or without TLS).
    #[arg(long, env = "MATCHENGINE_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Serve the admin API to anyone who can reach it: neither TLS nor a
    /// token. For local development only; without TLS, a token or this
    /// flag the node refuses to start.
    #[arg(long, env = "MATCHENGINE_ADMIN_INSECURE", default_value_t = false)]
    pub admin_insecure: bool,
    /// Plaintext gRPC health checks only (service "" = live,
    /// "matchengine.v1.Client" = ready), for probes that cannot speak TLS.
    #[arg(
        long,
        env = "MATCHENGINE_HEALTH_LISTEN",
        default_value = "0.0.0.0:7003"
    )]
    pub health_listen: SocketAddr,

    /// Log format: text or json.
    #[arg(long, env = "MATCHENGINE_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A configuration that cannot start a node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid --{flag}: {reason}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub reason: String,
}

fn invalid(flag: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        reason: reason.into(),
    }
}

/// Everything a node needs to start, validated.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub node_id: NodeId,
    pub data_dir: PathBuf,
    pub client_listen: SocketAddr,
    pub raft_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub metrics_listen: SocketAddr,
    pub health_listen: SocketAddr,
    pub security: Security,
    /// What this node registers in the membership.
    pub record: NodeRecord,
    pub raft: RaftSettings,
    pub state_limits: StateLimits,
    pub limits: ServiceLimits,
}

/// Who may talk to the node, and over what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Security {
    /// TLS on every gRPC port but health.
    pub tls: Option<TlsSettings>,
    /// The admin API's bearer token, read at start.
    pub admin_token_file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    pub files: TlsFiles,
    pub reload_interval: Duration,
}

/// Bounds on the node's own queues and messages (not replicated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceLimits {
    pub inflight_commands_max: u32,
    pub batch_commands_max: u32,
    pub batches_inflight_max: u32,
    pub client_message_bytes_max: usize,
    pub raft_message_bytes_max: usize,
    pub submit_batch_commands_max: u32,
    pub events_retained_per_instrument: u32,
    pub raft_rpc_timeout: Duration,
    pub orders_reserved: u32,
    pub raft_source_ip: Option<std::net::IpAddr>,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        ServiceLimits {
            inflight_commands_max: 100_000,
            batch_commands_max: 4_096,
            batches_inflight_max: 64,
            client_message_bytes_max: 4 * 1024 * 1024,
            raft_message_bytes_max: 256 * 1024 * 1024,
            submit_batch_commands_max: 4_096,
            events_retained_per_instrument: 65_536,
            raft_rpc_timeout: Duration::from_secs(2),
            orders_reserved: 100_000,
            raft_source_ip: None,
        }
    }
}

/// The node id from a StatefulSet pod's host name: `<name>-<ordinal>` is
/// node `ordinal + 1` (node ids start at 1; 0 means "none" on the wire).
pub fn node_id_from_hostname(hostname: &str) -> Result<NodeId, ConfigError> {
    let ordinal = hostname
        .rsplit_once('-')
        .map(|(_, ordinal)| ordinal)
        .ok_or_else(|| {
            invalid(
                "node-id-from-hostname",
                format!("host name {hostname:?} does not end in -<ordinal>"),
            )
        })?;
    let ordinal: u64 = ordinal.parse().map_err(|_| {
        invalid(
            "node-id-from-hostname",
            format!("host name {hostname:?} does not end in -<ordinal>"),
        )
    })?;
    Ok(ordinal + 1)
}

impl Config {
    /// Validates the flags; `hostname` is consulted only with
    /// `--node-id-from-hostname`.
    pub fn settings(&self, hostname: Option<&str>) -> Result<NodeSettings, ConfigError> {
        let node_id = match (self.node_id, self.node_id_from_hostname) {
            (Some(id), false) => id,
            (None, true) | (Some(_), true) => {
                let hostname = hostname.ok_or_else(|| {
                    invalid("node-id-from-hostname", "the host name is not available")
                })?;
                node_id_from_hostname(hostname)?
            }
            (None, false) => return Err(invalid("node-id", "required")),
        };
        if node_id == 0 {
            return Err(invalid("node-id", "must be at least 1"));
        }
        if self.advertise_host.is_empty() || self.advertise_host.contains(['/', ' ']) {
            return Err(invalid(
                "advertise-host",
                format!("{:?} is not a host name", self.advertise_host),
            ));
        }
        let ports = [
            ("client-listen", self.client_listen),
            ("raft-listen", self.raft_listen),
            ("admin-listen", self.admin_listen),
            ("metrics-listen", self.metrics_listen),
            ("health-listen", self.health_listen),
        ];
        for (i, (flag, addr)) in ports.iter().enumerate() {
            if ports[..i].iter().any(|(_, other)| other == addr) {
                return Err(invalid(
                    flag,
                    format!("{addr} is already used by another listener"),
                ));
            }
        }
        let raft = RaftSettings {
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            election_timeout_min_ms: self.election_timeout_min_ms,
            election_timeout_max_ms: self.election_timeout_max_ms,
            snapshot_interval_entries: self.snapshot_interval_entries,
            snapshot_logs_kept_entries: self.snapshot_logs_kept_entries,
            replication_entries_per_message_max: self.replication_entries_per_message_max,
            pre_vote: true,
        };
        raft.validate()
            .map_err(|e| invalid(flag_of_raft_setting(e.setting), e.reason))?;
        let positive = [
            ("inflight-commands-max", self.inflight_commands_max),
            ("batch-commands-max", self.batch_commands_max),
            ("batches-inflight-max", self.batches_inflight_max),
            ("submit-batch-commands-max", self.submit_batch_commands_max),
            (
                "events-retained-per-instrument",
                self.events_retained_per_instrument,
            ),
        ];
        for (flag, value) in positive {
            if value == 0 {
                return Err(invalid(flag, "must be at least 1"));
            }
        }
        if self.submit_batch_commands_max > self.batch_commands_max {
            return Err(invalid(
                "submit-batch-commands-max",
                "must be at most --batch-commands-max (a call's commands go into one log entry)",
            ));
        }
        if self.client_message_bytes_max < 1024 {
            return Err(invalid("client-message-bytes-max", "must be at least 1024"));
        }
        if self.raft_message_bytes_max < self.client_message_bytes_max {
            return Err(invalid(
                "raft-message-bytes-max",
                "must be at least --client-message-bytes-max (a log entry carries client commands)",
            ));
        }
        if self.raft_rpc_timeout_ms < self.heartbeat_interval_ms {
            return Err(invalid(
                "raft-rpc-timeout-ms",
                "must be at least the heartbeat interval",
            ));
        }
        let book = Limits {
            instruments_max: self.instruments_max,
            orders_open_max: self.orders_open_max,
            orders_per_account_max: self.orders_per_account_max,
            ..Limits::default()
        };
        book.validate()
            .map_err(|e| invalid("orders-open-max", e.to_string()))?;
        let kv = KvLimits {
            key_bytes_max: self.kv_key_bytes_max,
            value_bytes_max: self.kv_value_bytes_max,
            keys_max: self.kv_keys_max,
        };
        if kv.key_bytes_max == 0 || kv.value_bytes_max == 0 || kv.keys_max == 0 {
            return Err(invalid("kv-key-bytes-max", "KV limits must be at least 1"));
        }
        if (kv.key_bytes_max as u64 + kv.value_bytes_max as u64 + 64)
            > self.client_message_bytes_max as u64
        {
            return Err(invalid(
                "kv-value-bytes-max",
                "a key and value of the maximum sizes must fit in --client-message-bytes-max",
            ));
        }
        let security = self.security()?;
        let host = &self.advertise_host;
        if let Some(addr) = &self.advertise_raft_addr
            && !addr
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        {
            return Err(invalid(
                "advertise-raft-addr",
                format!("{addr:?} is not host:port"),
            ));
        }
        let record = NodeRecord {
            raft_addr: self
                .advertise_raft_addr
                .clone()
                .unwrap_or_else(|| format!("{host}:{}", self.raft_listen.port())),
            client_addr: format!("{host}:{}", self.client_listen.port()),
            admin_addr: format!("{host}:{}", self.admin_listen.port()),
        };
        Ok(NodeSettings {
            node_id,
            data_dir: self.data_dir.clone(),
            client_listen: self.client_listen,
            raft_listen: self.raft_listen,
            admin_listen: self.admin_listen,
            metrics_listen: self.metrics_listen,
            health_listen: self.health_listen,
            security,
            record,
            raft,
            state_limits: StateLimits { book, kv },
            limits: ServiceLimits {
                inflight_commands_max: self.inflight_commands_max,
                batch_commands_max: self.batch_commands_max,
                batches_inflight_max: self.batches_inflight_max,
                client_message_bytes_max: self.client_message_bytes_max as usize,
                raft_message_bytes_max: self.raft_message_bytes_max as usize,
                submit_batch_commands_max: self.submit_batch_commands_max,
                events_retained_per_instrument: self.events_retained_per_instrument,
                raft_rpc_timeout: Duration::from_millis(self.raft_rpc_timeout_ms),
                orders_reserved: self.orders_reserved.min(self.orders_open_max),
                raft_source_ip: self.raft_source_ip,
            },
        })
    }
}

impl Config {
    fn security(&self) -> Result<Security, ConfigError> {
        let tls = match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (None, None, None) => None,
            (Some(cert), Some(key), Some(ca)) => {
                if self.tls_reload_interval_ms < 100 {
                    return Err(invalid("tls-reload-interval-ms", "must be at least 100"));
                }
                Some(TlsSettings {
                    files: TlsFiles {
                        cert: cert.clone(),
                        key: key.clone(),
                        ca: ca.clone(),
                    },
                    reload_interval: Duration::from_millis(self.tls_reload_interval_ms),
                })
            }
            (cert, key, _) => {
                let missing = if cert.is_none() {
                    "tls-cert"
                } else if key.is_none() {
                    "tls-key"
                } else {
                    "tls-ca"
                };
                return Err(invalid(
                    missing,
                    "TLS needs all of --tls-cert, --tls-key and --tls-ca",
                ));
            }
        };
        if tls.is_none() && self.admin_token_file.is_none() && !self.admin_insecure {
            return Err(invalid(
                "admin-token-file",
                "the admin API would accept anyone: give --tls-cert/--tls-key/--tls-ca \
                 (mutual TLS), --admin-token-file, or --admin-insecure for local development",
            ));
        }
        Ok(Security {
            tls,
            admin_token_file: self.admin_token_file.clone(),
        })
    }
}

fn flag_of_raft_setting(setting: &str) -> &'static str {
    match setting {
        "heartbeat_interval_ms" => "heartbeat-interval-ms",
        "election_timeout_min_ms" => "election-timeout-min-ms",
        "election_timeout_max_ms" => "election-timeout-max-ms",
        "snapshot_interval_entries" => "snapshot-interval-entries",
        "replication_entries_per_message_max" => "replication-entries-per-message-max",
        _ => "raft settings",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flags as given, with an open admin API unless they say otherwise.
    fn parse(args: &[&str]) -> Config {
        let mut config = parse_exactly(args);
        config.admin_insecure |= config.tls_cert.is_none() && config.admin_token_file.is_none();
        config
    }

    fn parse_exactly(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("matchengine-node").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn the_admin_api_is_never_open_by_accident() {
        let error = parse_exactly(&["--node-id", "1"])
            .settings(None)
            .unwrap_err();
        assert_eq!(error.flag, "admin-token-file");
        assert!(error.reason.contains("--admin-insecure"), "{error}");
        for ok in [
            &["--node-id", "1", "--admin-insecure"][..],
            &["--node-id", "1", "--admin-token-file", "/t"],
            &[
                "--node-id",
                "1",
                "--tls-cert",
                "/c",
                "--tls-key",
                "/k",
                "--tls-ca",
                "/a",
            ],
        ] {
            let settings = parse_exactly(ok).settings(None).unwrap();
            assert_eq!(settings.security.tls.is_some(), ok.contains(&"--tls-ca"));
        }
    }

    #[test]
    fn tls_needs_all_three_files() {
        let error = parse_exactly(&["--node-id", "1", "--tls-cert", "/c", "--tls-ca", "/a"])
            .settings(None)
            .unwrap_err();
        assert_eq!(error.flag, "tls-key");
        let error = parse_exactly(&["--node-id", "1", "--tls-key", "/k"])
            .settings(None)
            .unwrap_err();
        assert_eq!(error.flag, "tls-cert");
    }

    #[test]
    fn defaults_give_a_valid_node_with_advertised_addresses() {
        let settings = parse(&["--node-id", "3", "--advertise-host", "me-2.me.ns.svc"])
            .settings(None)
            .unwrap();
        assert_eq!(settings.node_id, 3);
        assert_eq!(settings.record.raft_addr, "me-2.me.ns.svc:7001");
        assert_eq!(settings.record.client_addr, "me-2.me.ns.svc:7000");
        assert_eq!(settings.record.admin_addr, "me-2.me.ns.svc:7002");
    }

    #[test]
    fn node_id_comes_from_the_statefulset_ordinal() {
        let config = parse(&["--node-id-from-hostname"]);
        assert_eq!(config.settings(Some("mec-prod-0")).unwrap().node_id, 1);
        assert_eq!(config.settings(Some("mec-prod-4")).unwrap().node_id, 5);
        let error = config.settings(Some("hostname")).unwrap_err();
        assert_eq!(error.flag, "node-id-from-hostname");
        assert!(config.settings(None).is_err());
    }

    #[test]
    fn errors_name_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--node-id", "0"], "node-id"),
            (
                &["--node-id", "1", "--heartbeat-interval-ms", "0"],
                "heartbeat-interval-ms",
            ),
            (
                &["--node-id", "1", "--election-timeout-min-ms", "100"],
                "election-timeout-min-ms",
            ),
            (
                &["--node-id", "1", "--batch-commands-max", "0"],
                "batch-commands-max",
            ),
            (
                &["--node-id", "1", "--batch-commands-max", "100"],
                "submit-batch-commands-max",
            ),
            (
                &["--node-id", "1", "--admin-listen", "0.0.0.0:7000"],
                "admin-listen",
            ),
            (
                &["--node-id", "1", "--kv-value-bytes-max", "8000000"],
                "kv-value-bytes-max",
            ),
            (
                &["--node-id", "1", "--advertise-host", ""],
                "advertise-host",
            ),
        ];
        for (args, flag) in cases {
            let error = parse(args).settings(None).unwrap_err();
            assert_eq!(&error.flag, flag, "{args:?}: {error}");
        }
    }

    #[test]
    fn every_flag_reads_an_environment_variable() {
        use clap::CommandFactory;
        for arg in Config::command().get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let env = arg
                .get_env()
                .unwrap_or_else(|| panic!("--{id} has no env var"));
            assert!(
                env.to_string_lossy().starts_with("MATCHENGINE_"),
                "--{id} reads {env:?}"
            );
        }
    }
}
