//! The `MatchEngineCluster` custom resource: what a user asks for (spec) and
//! what the operator last saw (status).
//!
//! The schema is derived from these types; `crdgen` prints it and
//! `crds/matchengineclusters.yaml` must equal that output (a test checks).
//! This module holds types, defaults and spec validation only: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod status;

pub use status::{MatchEngineClusterStatus, MemberRole, MemberStatus, Phase};

/// The API group of every MatchEngine resource.
pub const GROUP: &str = "matchengine.io";

/// Voter counts the operator accepts: odd, so that a quorum is a strict
/// majority and an even count never adds tolerance without adding risk.
pub const REPLICAS_ALLOWED: [u32; 4] = [1, 3, 5, 7];

/// A Raft-replicated MatchEngine cluster: one StatefulSet of
/// `matchengine-node` pods whose membership the operator manages.
// Several `printcolumn(...)` share `type_ = ...`, which clippy mistakes
// for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "matchengine.io",
    version = "v1alpha1",
    kind = "MatchEngineCluster",
    plural = "matchengineclusters",
    shortname = "mec",
    category = "matchengine",
    namespaced,
    status = "MatchEngineClusterStatus",
    derive = "PartialEq",
    doc = "A Raft-replicated MatchEngine order-matching cluster managed by the MatchEngine operator.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Leader", type_ = "string", json_path = ".status.leader"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MatchEngineClusterSpec {
    /// Number of voting members: 1, 3, 5 or 7.
    #[schemars(extend("enum" = [1, 3, 5, 7]))]
    pub replicas: u32,
    /// The `matchengine-node` container image.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Image pull policy of the node container.
    #[serde(default)]
    pub image_pull_policy: ImagePullPolicy,
    /// Secrets for pulling the node image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Compute resources of the node container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// The volume each node keeps its Raft log, state and snapshots on.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Raft timing and snapshot policy, passed to every node.
    #[serde(default)]
    pub raft: RaftSpec,
    /// How the operator changes membership.
    #[serde(default)]
    pub membership: MembershipSpec,
    /// Instruments created once the cluster is bootstrapped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instruments: Vec<InstrumentSpec>,
    /// Where node pods may run.
    #[serde(default)]
    pub scheduling: SchedulingSpec,
    /// The Service clients connect to.
    #[serde(default)]
    pub service: ServiceSpec,
    /// TLS on the nodes' client, Raft and admin ports, from a Secret in the
    /// cluster's namespace, mounted at /etc/matchengine/tls and reloaded by
    /// the nodes when it changes. The admin and Raft ports then require a
    /// client certificate signed by the Secret's `ca.crt` (mutual TLS: the
    /// other nodes' and the operator's, see its --admin-tls-* flags); the
    /// client port accepts clients without one. The certificate must name
    /// every pod, `*.<name>-headless.<namespace>.svc` and
    /// `*.<name>-headless.<namespace>.svc.<cluster domain>`, and the client
    /// Service, `<name>`, `<name>.<namespace>.svc` and
    /// `<name>.<namespace>.svc.<cluster domain>`, and carry both usages,
    /// server auth and client auth (nodes are clients of each other).
    /// Without it the admin API is open to whoever reaches the pods (only a
    /// NetworkPolicy guards it): production clusters use TLS. Probes use the
    /// plaintext health port 7003 either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Node log output.
    #[serde(default)]
    pub logging: LoggingSpec,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Size of each node's PersistentVolumeClaim.
    #[serde(default = "default_storage_size")]
    pub size: Quantity,
    /// StorageClass of the claims; the cluster default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// What happens to a node's claim when the cluster shrinks below it or
    /// is deleted: `Retain` keeps the data, `Delete` frees it.
    #[serde(default)]
    pub reclaim_policy: ReclaimPolicy,
}

fn default_storage_size() -> Quantity {
    Quantity("10Gi".to_owned())
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_storage_size(),
            storage_class_name: None,
            reclaim_policy: ReclaimPolicy::default(),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ReclaimPolicy {
    #[default]
    Retain,
    Delete,
}

impl ReclaimPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retain => "Retain",
            Self::Delete => "Delete",
        }
    }
}

/// Raft settings; the names match the node's `MATCHENGINE_*` variables.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RaftSpec {
    #[schemars(range(min = 1))]
    pub heartbeat_interval_ms: u32,
    #[schemars(range(min = 1))]
    pub election_timeout_min_ms: u32,
    #[schemars(range(min = 1))]
    pub election_timeout_max_ms: u32,
    #[schemars(range(min = 1))]
    pub snapshot_interval_entries: u64,
    pub snapshot_logs_kept_entries: u64,
}

impl Default for RaftSpec {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_interval_entries: 100_000,
            snapshot_logs_kept_entries: 10_000,
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct MembershipSpec {
    /// A member within this many log entries of the leader counts as caught
    /// up: a learner is promoted, an upgraded pod lets the next one go.
    pub lag_max_entries: u64,
}

impl Default for MembershipSpec {
    fn default() -> Self {
        Self {
            lag_max_entries: 1_000,
        }
    }
}

/// An instrument as the admin API's `AddInstrument` takes it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstrumentSpec {
    #[schemars(range(min = 1))]
    pub instrument: u32,
    #[schemars(length(min = 1))]
    pub symbol: String,
    pub price_ticks_min: i64,
    pub price_ticks_max: i64,
    #[schemars(range(min = 1))]
    pub quantity_lots_min: u64,
    pub quantity_lots_max: u64,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Replaces the default anti-affinity when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// The default spreading of node pods across Kubernetes nodes, used
    /// when `affinity` is unset.
    #[serde(default)]
    pub anti_affinity: AntiAffinity,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AntiAffinity {
    /// Spread across Kubernetes nodes when possible.
    #[default]
    Preferred,
    /// Never two members on one Kubernetes node.
    Required,
    None,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

/// A Secret of type kubernetes.io/tls with `tls.crt`, `tls.key` and
/// `ca.crt` (as cert-manager writes it): the nodes' certificate and key,
/// and the CA that signs every certificate the nodes accept.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    #[schemars(length(min = 1))]
    pub secret_name: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct LoggingSpec {
    pub format: LogFormat,
    /// `RUST_LOG` of the node.
    pub filter: String,
}

impl Default for LoggingSpec {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            filter: "info".to_owned(),
        }
    }
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Text => "text",
        }
    }
}

/// A spec the schema admits but the operator cannot run.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("spec.replicas must be one of 1, 3, 5 or 7, got {0}")]
    Replicas(u32),
    #[error("spec.image must not be empty")]
    Image,
    #[error(
        "spec.raft: need 0 < heartbeatIntervalMs < electionTimeoutMinMs < electionTimeoutMaxMs, got {heartbeat_ms} / {min_ms} / {max_ms}"
    )]
    RaftTiming {
        heartbeat_ms: u32,
        min_ms: u32,
        max_ms: u32,
    },
    #[error("spec.raft.snapshotIntervalEntries must be at least 1")]
    SnapshotInterval,
    #[error("spec.instruments[{index}] ({symbol}): {problem}")]
    Instrument {
        index: usize,
        symbol: String,
        problem: &'static str,
    },
    #[error("spec.instruments: instrument {0} appears twice")]
    InstrumentDuplicate(u32),
}

impl MatchEngineClusterSpec {
    /// Checks what the schema cannot express; an error names the field.
    pub fn validate(&self) -> Result<(), SpecError> {
        if !REPLICAS_ALLOWED.contains(&self.replicas) {
            return Err(SpecError::Replicas(self.replicas));
        }
        if self.image.trim().is_empty() {
            return Err(SpecError::Image);
        }
        let raft = &self.raft;
        if !(raft.heartbeat_interval_ms > 0
            && raft.heartbeat_interval_ms < raft.election_timeout_min_ms
            && raft.election_timeout_min_ms < raft.election_timeout_max_ms)
        {
            return Err(SpecError::RaftTiming {
                heartbeat_ms: raft.heartbeat_interval_ms,
                min_ms: raft.election_timeout_min_ms,
                max_ms: raft.election_timeout_max_ms,
            });
        }
        if raft.snapshot_interval_entries == 0 {
            return Err(SpecError::SnapshotInterval);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, spec) in self.instruments.iter().enumerate() {
            let problem = if spec.instrument == 0 {
                Some("instrument must be at least 1")
            } else if spec.price_ticks_min > spec.price_ticks_max {
                Some("priceTicksMin is above priceTicksMax")
            } else if spec.quantity_lots_min == 0 || spec.quantity_lots_min > spec.quantity_lots_max
            {
                Some("need 0 < quantityLotsMin <= quantityLotsMax")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(SpecError::Instrument {
                    index,
                    symbol: spec.symbol.clone(),
                    problem,
                });
            }
            if !seen.insert(spec.instrument) {
                return Err(SpecError::InstrumentDuplicate(spec.instrument));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec(replicas: u32) -> MatchEngineClusterSpec {
        serde_json::from_value(serde_json::json!({
            "replicas": replicas,
            "image": "matchengine-node:test",
        }))
        .unwrap()
    }

    #[test]
    fn defaults_fill_a_minimal_spec() {
        let spec = spec(3);
        assert_eq!(spec.raft, RaftSpec::default());
        assert_eq!(spec.storage.size, Quantity("10Gi".into()));
        assert_eq!(spec.storage.reclaim_policy, ReclaimPolicy::Retain);
        assert_eq!(spec.scheduling.anti_affinity, AntiAffinity::Preferred);
        assert_eq!(spec.service.type_, ServiceType::ClusterIP);
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(spec(4).validate(), Err(SpecError::Replicas(4)));
        assert_eq!(spec(9).validate(), Err(SpecError::Replicas(9)));
        let mut bad = spec(3);
        bad.raft.election_timeout_max_ms = 300;
        assert!(matches!(bad.validate(), Err(SpecError::RaftTiming { .. })));
        let mut bad = spec(3);
        bad.image = " ".into();
        assert_eq!(bad.validate(), Err(SpecError::Image));
        let instrument = InstrumentSpec {
            instrument: 1,
            symbol: "BTC-USD".into(),
            price_ticks_min: 1,
            price_ticks_max: 100,
            quantity_lots_min: 1,
            quantity_lots_max: 10,
        };
        let mut bad = spec(3);
        bad.instruments = vec![instrument.clone(), instrument.clone()];
        assert_eq!(bad.validate(), Err(SpecError::InstrumentDuplicate(1)));
        let mut bad = spec(3);
        bad.instruments = vec![InstrumentSpec {
            price_ticks_min: 200,
            ..instrument
        }];
        assert!(matches!(
            bad.validate(),
            Err(SpecError::Instrument { index: 0, .. })
        ));
    }

    #[test]
    fn schema_restricts_replicas_to_odd_counts() {
        use kube::CustomResourceExt;
        let crd = serde_json::to_value(MatchEngineCluster::crd()).unwrap();
        let replicas = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["replicas"];
        assert_eq!(replicas["enum"], serde_json::json!([1, 3, 5, 7]));
        let names = &crd["spec"]["names"];
        assert_eq!(names["shortNames"], serde_json::json!(["mec"]));
        let subresources = &crd["spec"]["versions"][0]["subresources"];
        assert_eq!(subresources["scale"]["specReplicasPath"], ".spec.replicas");
    }
}
