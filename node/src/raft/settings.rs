//! Raft timing and snapshot policy as the node's settings: checked with an
//! error that names the setting, then turned into openraft's `Config`.

use openraft::{Config, SnapshotPolicy};

/// The node's Raft settings. Times in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftSettings {
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many entries since the last one.
    pub snapshot_interval_entries: u64,
    /// Log entries kept below the newest snapshot, so that slightly lagging
    /// followers catch up from the log rather than a whole snapshot.
    pub snapshot_logs_kept_entries: u64,
    /// Entries per append-entries message (each entry is a command batch).
    pub replication_entries_per_message_max: u64,
    /// A candidate first checks it could win, so a partitioned node that
    /// comes back does not disrupt a healthy leader.
    pub pre_vote: bool,
}

impl Default for RaftSettings {
    fn default() -> Self {
        RaftSettings {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_interval_entries: 100_000,
            snapshot_logs_kept_entries: 10_000,
            replication_entries_per_message_max: 256,
            pre_vote: true,
        }
    }
}

/// A setting out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Raft setting {setting}: {reason}")]
pub struct RaftSettingsError {
    pub setting: &'static str,
    pub reason: String,
}

impl RaftSettings {
    pub fn validate(&self) -> Result<(), RaftSettingsError> {
        let fail = |setting, reason: String| Err(RaftSettingsError { setting, reason });
        if self.heartbeat_interval_ms == 0 {
            return fail("heartbeat_interval_ms", "must be at least 1".into());
        }
        if self.election_timeout_min_ms < 3 * self.heartbeat_interval_ms {
            return fail(
                "election_timeout_min_ms",
                format!(
                    "{} must be at least 3 heartbeats ({} ms) so that heartbeats keep followers from electing",
                    self.election_timeout_min_ms,
                    3 * self.heartbeat_interval_ms
                ),
            );
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return fail(
                "election_timeout_max_ms",
                format!(
                    "{} must be above election_timeout_min_ms ({})",
                    self.election_timeout_max_ms, self.election_timeout_min_ms
                ),
            );
        }
        if self.snapshot_interval_entries == 0 {
            return fail("snapshot_interval_entries", "must be at least 1".into());
        }
        if self.replication_entries_per_message_max == 0 {
            return fail(
                "replication_entries_per_message_max",
                "must be at least 1".into(),
            );
        }
        Ok(())
    }

    /// openraft's configuration for these settings.
    pub fn to_openraft(&self, cluster_name: &str) -> Result<Config, RaftSettingsError> {
        self.validate()?;
        let config = Config {
            cluster_name: cluster_name.to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_interval_entries),
            max_in_snapshot_log_to_keep: self.snapshot_logs_kept_entries,
            max_payload_entries: self.replication_entries_per_message_max,
            enable_pre_vote: Some(self.pre_vote),
            // A member that comes back with an empty volume (a lost or
            // replaced disk) looks like a log reversion. Without this the
            // leader panics on it; with it, the leader replicates to it
            // from scratch while the operator removes the stale member and
            // adds it back as a learner.
            allow_log_reversion: Some(true),
            ..Config::default()
        };
        config.validate().map_err(|error| RaftSettingsError {
            setting: "raft",
            reason: error.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_carry_over() {
        let config = RaftSettings::default().to_openraft("test").unwrap();
        assert_eq!(
            config.snapshot_policy,
            SnapshotPolicy::LogsSinceLast(100_000)
        );
        assert_eq!(config.max_in_snapshot_log_to_keep, 10_000);
        assert_eq!(config.enable_pre_vote, Some(true));
    }

    #[test]
    fn errors_name_the_setting() {
        let bad = [
            RaftSettings {
                heartbeat_interval_ms: 0,
                ..Default::default()
            },
            RaftSettings {
                election_timeout_min_ms: 100,
                ..Default::default()
            },
            RaftSettings {
                election_timeout_max_ms: 300,
                ..Default::default()
            },
            RaftSettings {
                snapshot_interval_entries: 0,
                ..Default::default()
            },
        ];
        let names: Vec<_> = bad
            .iter()
            .map(|s| s.validate().unwrap_err().setting)
            .collect();
        assert_eq!(
            names,
            [
                "heartbeat_interval_ms",
                "election_timeout_min_ms",
                "election_timeout_max_ms",
                "snapshot_interval_entries"
            ]
        );
    }
}
