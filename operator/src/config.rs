//! The operator's configuration: every flag also an environment variable,
//! validated at start-up with an error that names the flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Clone, Debug, Parser)]
#[command(
    name = "matchengine-operator",
    version,
    about = "Runs MatchEngineCluster resources on Kubernetes"
)]
pub struct Config {
    /// The Kubernetes cluster's DNS domain (pods are reached at
    /// <pod>.<headless service>.<namespace>.svc.<domain>).
    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    pub cluster_domain: String,

    /// Watch only this namespace; all namespaces when empty.
    #[arg(long, env = "MATCHENGINE_OPERATOR_WATCH_NAMESPACE", default_value = "")]
    pub watch_namespace: String,

    /// Where /metrics and /healthz are served.
    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_METRICS_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub metrics_listen: SocketAddr,

    /// Take a Lease before acting, so that one replica acts at a time.
    #[arg(long, env = "MATCHENGINE_OPERATOR_LEADER_ELECTION", default_value_t = true, action = ArgAction::Set)]
    pub leader_election: bool,

    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_LEASE_NAME",
        default_value = "matchengine-operator"
    )]
    pub lease_name: String,

    /// Namespace of the Lease; the operator's own namespace when empty.
    #[arg(long, env = "MATCHENGINE_OPERATOR_LEASE_NAMESPACE", default_value = "")]
    pub lease_namespace: String,

    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_LEASE_DURATION_SECONDS",
        default_value_t = 15
    )]
    pub lease_duration_seconds: u64,

    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_LEASE_RENEW_INTERVAL_SECONDS",
        default_value_t = 5
    )]
    pub lease_renew_interval_seconds: u64,

    /// This replica's name in the Lease; the host name when empty.
    #[arg(long, env = "MATCHENGINE_OPERATOR_IDENTITY", default_value = "")]
    pub identity: String,

    /// The nodes' admin port.
    #[arg(long, env = "MATCHENGINE_OPERATOR_ADMIN_PORT", default_value_t = 7002)]
    pub admin_port: u16,

    /// The operator's client certificate (PEM), for clusters with
    /// `spec.tls`: their admin ports require one signed by the cluster's
    /// CA. Read again for every reconcile, so a rotated file is used.
    #[arg(long, env = "MATCHENGINE_OPERATOR_ADMIN_TLS_CERT")]
    pub admin_tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --admin-tls-cert.
    #[arg(long, env = "MATCHENGINE_OPERATOR_ADMIN_TLS_KEY")]
    pub admin_tls_key: Option<PathBuf>,

    /// The CA (PEM) that signed the nodes' certificates.
    #[arg(long, env = "MATCHENGINE_OPERATOR_ADMIN_TLS_CA")]
    pub admin_tls_ca: Option<PathBuf>,

    /// A file with the bearer token sent on every admin call
    /// (`authorization: Bearer <token>`); none when unset.
    #[arg(long, env = "MATCHENGINE_OPERATOR_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_ADMIN_CONNECT_TIMEOUT_MS",
        default_value_t = 2_000
    )]
    pub admin_connect_timeout_ms: u64,

    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_ADMIN_REQUEST_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub admin_request_timeout_ms: u64,

    /// How long a leadership transfer waits for the new leader.
    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_TRANSFER_WAIT_MS",
        default_value_t = 5_000
    )]
    pub transfer_wait_ms: u64,

    /// Requeue after a step or while waiting on one.
    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_REQUEUE_ACTIVE_SECONDS",
        default_value_t = 5
    )]
    pub requeue_active_seconds: u64,

    /// Requeue of a steady cluster.
    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_REQUEUE_IDLE_SECONDS",
        default_value_t = 60
    )]
    pub requeue_idle_seconds: u64,

    #[arg(
        long,
        env = "MATCHENGINE_OPERATOR_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--{flag} must be greater than zero")]
    Zero { flag: &'static str },
    #[error(
        "--lease-renew-interval-seconds ({renew_s}) must be shorter than --lease-duration-seconds ({duration_s})"
    )]
    LeaseRenew { renew_s: u64, duration_s: u64 },
    #[error(
        "--admin-request-timeout-ms ({request_ms}) must exceed --transfer-wait-ms ({transfer_ms})"
    )]
    TransferWait { request_ms: u64, transfer_ms: u64 },
    #[error("--cluster-domain must not be empty")]
    ClusterDomain,
    #[error(
        "--admin-tls-cert, --admin-tls-key and --admin-tls-ca go together: {missing} is missing"
    )]
    AdminTlsIncomplete { missing: &'static str },
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (flag, value) in [
            ("lease-duration-seconds", self.lease_duration_seconds),
            (
                "lease-renew-interval-seconds",
                self.lease_renew_interval_seconds,
            ),
            ("admin-connect-timeout-ms", self.admin_connect_timeout_ms),
            ("admin-request-timeout-ms", self.admin_request_timeout_ms),
            ("requeue-active-seconds", self.requeue_active_seconds),
            ("requeue-idle-seconds", self.requeue_idle_seconds),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { flag });
            }
        }
        if self.lease_renew_interval_seconds >= self.lease_duration_seconds {
            return Err(ConfigError::LeaseRenew {
                renew_s: self.lease_renew_interval_seconds,
                duration_s: self.lease_duration_seconds,
            });
        }
        // A transfer that waits longer than the call may take would always
        // look like a timeout.
        if self.transfer_wait_ms >= self.admin_request_timeout_ms {
            return Err(ConfigError::TransferWait {
                request_ms: self.admin_request_timeout_ms,
                transfer_ms: self.transfer_wait_ms,
            });
        }
        if self.cluster_domain.trim().is_empty() {
            return Err(ConfigError::ClusterDomain);
        }
        let tls = [
            ("--admin-tls-cert", &self.admin_tls_cert),
            ("--admin-tls-key", &self.admin_tls_key),
            ("--admin-tls-ca", &self.admin_tls_ca),
        ];
        if tls.iter().any(|(_, path)| path.is_some())
            && let Some((missing, _)) = tls.iter().find(|(_, path)| path.is_none())
        {
            return Err(ConfigError::AdminTlsIncomplete { missing });
        }
        Ok(())
    }

    /// Where the admin credentials are; validate first.
    pub fn admin_credentials(&self) -> crate::admin::AdminCredentialFiles {
        let tls = match (
            &self.admin_tls_cert,
            &self.admin_tls_key,
            &self.admin_tls_ca,
        ) {
            (Some(cert), Some(key), Some(ca)) => Some(crate::admin::ClientTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
            }),
            _ => None,
        };
        crate::admin::AdminCredentialFiles {
            tls,
            token_file: self.admin_token_file.clone(),
        }
    }

    pub fn admin_timeouts(&self) -> crate::admin::AdminTimeouts {
        crate::admin::AdminTimeouts {
            connect: Duration::from_millis(self.admin_connect_timeout_ms),
            request: Duration::from_millis(self.admin_request_timeout_ms),
            transfer_wait: Duration::from_millis(self.transfer_wait_ms),
        }
    }

    pub fn requeue(&self) -> crate::reconcile::Requeue {
        crate::reconcile::Requeue {
            active: Duration::from_secs(self.requeue_active_seconds),
            idle: Duration::from_secs(self.requeue_idle_seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("matchengine-operator").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn defaults_are_valid() {
        let config = parse(&[]);
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.cluster_domain, "cluster.local");
        assert!(config.leader_election);
        assert_eq!(config.admin_port, 7002);
        assert_eq!(
            config.admin_credentials(),
            crate::admin::AdminCredentialFiles::default()
        );
    }

    #[test]
    fn admin_tls_flags_go_together() {
        let config = parse(&[
            "--admin-tls-cert",
            "/tls/tls.crt",
            "--admin-tls-key",
            "/tls/tls.key",
        ]);
        assert_eq!(
            config.validate(),
            Err(ConfigError::AdminTlsIncomplete {
                missing: "--admin-tls-ca"
            })
        );
        let config = parse(&[
            "--admin-tls-cert",
            "/tls/tls.crt",
            "--admin-tls-key",
            "/tls/tls.key",
            "--admin-tls-ca",
            "/tls/ca.crt",
            "--admin-token-file",
            "/token/token",
        ]);
        assert_eq!(config.validate(), Ok(()));
        let credentials = config.admin_credentials();
        let tls = credentials.tls.unwrap();
        assert_eq!(
            (tls.cert.to_str(), tls.key.to_str(), tls.ca.to_str()),
            (
                Some("/tls/tls.crt"),
                Some("/tls/tls.key"),
                Some("/tls/ca.crt")
            )
        );
        assert_eq!(
            credentials.token_file.as_deref(),
            Some(std::path::Path::new("/token/token"))
        );
    }

    #[test]
    fn validation_names_the_flag() {
        let config = parse(&["--lease-renew-interval-seconds", "20"]);
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--lease-renew-interval-seconds")
        );
        let config = parse(&["--requeue-idle-seconds", "0"]);
        assert_eq!(
            config.validate(),
            Err(ConfigError::Zero {
                flag: "requeue-idle-seconds"
            })
        );
        let config = parse(&["--leader-election", "false", "--transfer-wait-ms", "20000"]);
        assert!(!config.leader_election);
        assert!(matches!(
            config.validate(),
            Err(ConfigError::TransferWait { .. })
        ));
    }
}
