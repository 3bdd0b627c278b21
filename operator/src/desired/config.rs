//! The node configuration: a ConfigMap of `MATCHENGINE_*` settings that
//! every node pod reads as environment, and the configuration hash that
//! tells the planner which pods run an outdated template.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::{ADMIN_PORT, CLIENT_PORT, ClusterRef, DATA_DIR, HEALTH_PORT, METRICS_PORT, RAFT_PORT};
use crate::crd::MatchEngineClusterSpec;

/// The pod template annotation carrying [`config_hash`]: a pod whose value
/// differs from the StatefulSet's is outdated and due for a rolling restart.
pub const CONFIG_HASH_ANNOTATION: &str = "matchengine.io/config-hash";

/// The settings shared by every node of the cluster (per-pod settings such
/// as the advertised host are in the StatefulSet's `env`).
pub(crate) fn node_settings(spec: &MatchEngineClusterSpec) -> BTreeMap<String, String> {
    let raft = &spec.raft;
    let listen = |port: u16| format!("0.0.0.0:{port}");
    BTreeMap::from([
        ("MATCHENGINE_DATA_DIR".into(), DATA_DIR.into()),
        ("MATCHENGINE_CLIENT_LISTEN".into(), listen(CLIENT_PORT)),
        ("MATCHENGINE_RAFT_LISTEN".into(), listen(RAFT_PORT)),
        ("MATCHENGINE_ADMIN_LISTEN".into(), listen(ADMIN_PORT)),
        ("MATCHENGINE_METRICS_LISTEN".into(), listen(METRICS_PORT)),
        ("MATCHENGINE_HEALTH_LISTEN".into(), listen(HEALTH_PORT)),
        (
            "MATCHENGINE_HEARTBEAT_INTERVAL_MS".into(),
            raft.heartbeat_interval_ms.to_string(),
        ),
        (
            "MATCHENGINE_ELECTION_TIMEOUT_MIN_MS".into(),
            raft.election_timeout_min_ms.to_string(),
        ),
        (
            "MATCHENGINE_ELECTION_TIMEOUT_MAX_MS".into(),
            raft.election_timeout_max_ms.to_string(),
        ),
        (
            "MATCHENGINE_SNAPSHOT_INTERVAL_ENTRIES".into(),
            raft.snapshot_interval_entries.to_string(),
        ),
        (
            "MATCHENGINE_SNAPSHOT_LOGS_KEPT_ENTRIES".into(),
            raft.snapshot_logs_kept_entries.to_string(),
        ),
        (
            "MATCHENGINE_LOG_FORMAT".into(),
            spec.logging.format.as_str().into(),
        ),
        ("RUST_LOG".into(), spec.logging.filter.clone()),
    ])
}

/// The ConfigMap the node pods load with `envFrom`.
pub fn config_map(
    cluster: &ClusterRef,
    spec: &MatchEngineClusterSpec,
    owner: &OwnerReference,
) -> ConfigMap {
    ConfigMap {
        metadata: cluster.metadata(cluster.config_map_name(), owner),
        data: Some(node_settings(spec)),
        ..ConfigMap::default()
    }
}

/// A stable digest of what a node pod runs: the pod template and the
/// ConfigMap it loads. FNV-1a (64 bit) over their JSON, because the hash
/// must not change between operator builds (std's hasher may), or every
/// operator upgrade would restart every pod.
pub fn config_hash(parts: &[&[u8]]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        // The length first, so that ("ab", "c") and ("a", "bc") differ.
        for byte in (part.len() as u64).to_le_bytes().iter().chain(part.iter()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::tests::{cluster, cluster_ref, owner};

    #[test]
    fn config_map_carries_every_raft_setting() {
        let mut mec = cluster(3);
        mec.spec.raft.heartbeat_interval_ms = 20;
        mec.spec.raft.snapshot_interval_entries = 5_000;
        let cm = config_map(&cluster_ref(), &mec.spec, &owner());
        let data = cm.data.unwrap();
        assert_eq!(data["MATCHENGINE_HEARTBEAT_INTERVAL_MS"], "20");
        assert_eq!(data["MATCHENGINE_ELECTION_TIMEOUT_MIN_MS"], "300");
        assert_eq!(data["MATCHENGINE_ELECTION_TIMEOUT_MAX_MS"], "600");
        assert_eq!(data["MATCHENGINE_SNAPSHOT_INTERVAL_ENTRIES"], "5000");
        assert_eq!(data["MATCHENGINE_SNAPSHOT_LOGS_KEPT_ENTRIES"], "10000");
        assert_eq!(data["MATCHENGINE_ADMIN_LISTEN"], "0.0.0.0:7002");
        assert_eq!(data["MATCHENGINE_HEALTH_LISTEN"], "0.0.0.0:7003");
        assert_eq!(data["MATCHENGINE_LOG_FORMAT"], "json");
        assert_eq!(cm.metadata.name.as_deref(), Some("books-config"));
        assert_eq!(cm.metadata.owner_references.unwrap(), vec![owner()]);
    }

    #[test]
    fn hash_is_stable_and_separates_parts() {
        // Pinned: a change here restarts every pod of every cluster on
        // operator upgrade, so it must be deliberate.
        assert_eq!(config_hash(&[b"abc"]), config_hash(&[b"abc"]));
        assert_eq!(config_hash(&[]), "cbf29ce484222325");
        assert_ne!(config_hash(&[b"ab", b"c"]), config_hash(&[b"a", b"bc"]));
        assert_ne!(config_hash(&[b"abc"]), config_hash(&[b"abd"]));
    }
}
