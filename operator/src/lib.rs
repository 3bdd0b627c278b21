//! The MatchEngine operator: runs `MatchEngineCluster` resources on
//! Kubernetes.
//!
//! Layers, each knowing only those before it:
//! - [`crd`]: the resource's types and spec validation;
//! - [`desired`]: the Kubernetes objects a cluster should have (pure);
//! - [`plan`]: the next membership step from what is observed (pure);
//! - [`admin`] and [`driver`]: the admin gRPC calls behind a trait, and the
//!   loop that observes nodes, plans and executes one step (no Kubernetes);
//! - [`reconcile`], [`lease`], [`metrics`], [`http`]: the thin Kubernetes
//!   shell.

pub mod admin;
pub mod config;
pub mod crd;
pub mod desired;
pub mod driver;
pub mod http;
pub mod lease;
pub mod metrics;
pub mod plan;
pub mod reconcile;

/// The CRD as YAML, exactly as `crdgen` prints it and `crds/` holds it.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    use kube::CustomResourceExt;
    serde_saphyr::to_string(&crd::MatchEngineCluster::crd())
}
