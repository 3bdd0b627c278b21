//! The Kubernetes objects a `MatchEngineCluster` should have, as pure
//! functions of the resource and a few observed numbers.
//!
//! Nothing here talks to the API server: the reconciler applies what these
//! functions return with server-side apply. Every object carries the
//! cluster's labels and the owner reference the caller passes in, so
//! Kubernetes garbage-collects them with the cluster.

mod config;
mod services;
mod statefulset;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

pub use config::{CONFIG_HASH_ANNOTATION, config_hash, config_map};
pub use services::{client_service, headless_service, pod_disruption_budget};
pub use statefulset::{DATA_DIR, TLS_DIR, statefulset};

/// The node's ports; they match the node's listen defaults.
pub const CLIENT_PORT: u16 = 7000;
pub const RAFT_PORT: u16 = 7001;
pub const ADMIN_PORT: u16 = 7002;
pub const METRICS_PORT: u16 = 9100;
/// Plaintext `grpc.health.v1` only, for the kubelet's probes: they cannot
/// speak TLS, and with `spec.tls` every other gRPC port does.
pub const HEALTH_PORT: u16 = 7003;

/// The gRPC health service name that means "the process works" (liveness).
pub const LIVENESS_SERVICE: &str = "";

/// The gRPC health service name that means "ready for client traffic".
pub const READINESS_SERVICE: &str = "matchengine.v1.Client";

/// Where a cluster lives and what it is called: everything a builder needs
/// besides the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRef {
    pub name: String,
    pub namespace: String,
    /// The Kubernetes cluster's DNS domain, e.g. `cluster.local`.
    pub cluster_domain: String,
}

impl ClusterRef {
    pub fn statefulset_name(&self) -> String {
        self.name.clone()
    }

    pub fn headless_service_name(&self) -> String {
        format!("{}-headless", self.name)
    }

    pub fn client_service_name(&self) -> String {
        self.name.clone()
    }

    pub fn config_map_name(&self) -> String {
        format!("{}-config", self.name)
    }

    pub fn pdb_name(&self) -> String {
        self.name.clone()
    }

    /// StatefulSet pods are `<name>-<ordinal>`.
    pub fn pod_name(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.name)
    }

    /// The stable DNS name of a pod through the headless Service: what the
    /// node advertises to its peers and what the operator dials.
    pub fn pod_host(&self, ordinal: u32) -> String {
        format!(
            "{}.{}.{}.svc.{}",
            self.pod_name(ordinal),
            self.headless_service_name(),
            self.namespace,
            self.cluster_domain
        )
    }

    /// The labels on every object of this cluster.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.insert(
            "app.kubernetes.io/managed-by".into(),
            "matchengine-operator".into(),
        );
        labels
    }

    /// The labels that select this cluster's node pods.
    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".into(), "matchengine".into()),
            ("app.kubernetes.io/instance".into(), self.name.clone()),
            ("app.kubernetes.io/component".into(), "node".into()),
        ])
    }

    /// `key=value,...` for a label-selected list of this cluster's pods.
    pub fn pod_selector(&self) -> String {
        self.selector_labels()
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn metadata(&self, name: String, owner: &OwnerReference) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        }
    }
}

/// The ordinal of a StatefulSet pod name `<name>-<ordinal>`.
pub fn pod_ordinal(cluster_name: &str, pod_name: &str) -> Option<u32> {
    let rest = pod_name.strip_prefix(cluster_name)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// Node ids are the StatefulSet ordinal plus one (id 0 means "none" in the
/// admin API); the node derives the same from its host name.
pub fn node_id(ordinal: u32) -> u64 {
    u64::from(ordinal) + 1
}

/// The ordinal of a node id (ids start at 1).
pub fn ordinal(node_id: u64) -> Option<u32> {
    node_id.checked_sub(1).and_then(|o| u32::try_from(o).ok())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crd::{MatchEngineCluster, MatchEngineClusterSpec};

    pub(crate) fn cluster(replicas: u32) -> MatchEngineCluster {
        let spec: MatchEngineClusterSpec = serde_json::from_value(serde_json::json!({
            "replicas": replicas,
            "image": "registry.example/matchengine-node:1.0.0",
        }))
        .unwrap();
        let mut mec = MatchEngineCluster::new("books", spec);
        mec.metadata.namespace = Some("trading".into());
        mec.metadata.uid = Some("11111111-2222-3333-4444-555555555555".into());
        mec
    }

    pub(crate) fn cluster_ref() -> ClusterRef {
        ClusterRef {
            name: "books".into(),
            namespace: "trading".into(),
            cluster_domain: "cluster.local".into(),
        }
    }

    pub(crate) fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "matchengine.io/v1alpha1".into(),
            kind: "MatchEngineCluster".into(),
            name: "books".into(),
            uid: "11111111-2222-3333-4444-555555555555".into(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    #[test]
    fn names_follow_the_statefulset_convention() {
        let c = cluster_ref();
        assert_eq!(c.pod_name(2), "books-2");
        assert_eq!(
            c.pod_host(2),
            "books-2.books-headless.trading.svc.cluster.local"
        );
        assert_eq!(
            c.pod_selector(),
            "app.kubernetes.io/component=node,app.kubernetes.io/instance=books,app.kubernetes.io/name=matchengine"
        );
    }

    #[test]
    fn ordinals_and_node_ids() {
        assert_eq!(pod_ordinal("books", "books-0"), Some(0));
        assert_eq!(pod_ordinal("books", "books-12"), Some(12));
        assert_eq!(pod_ordinal("books", "books-x"), None);
        assert_eq!(pod_ordinal("books", "books-"), None);
        assert_eq!(pod_ordinal("books", "bookshelf-1"), None);
        assert_eq!(pod_ordinal("books", "books-a-1"), None);
        assert_eq!(node_id(0), 1);
        assert_eq!(ordinal(1), Some(0));
        assert_eq!(ordinal(0), None);
    }
}
