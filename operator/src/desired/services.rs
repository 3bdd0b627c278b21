//! The Services in front of the node pods and the PodDisruptionBudget that
//! keeps voluntary evictions from ever taking a quorum away.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ADMIN_PORT, CLIENT_PORT, ClusterRef, METRICS_PORT, RAFT_PORT};
use crate::crd::MatchEngineClusterSpec;

fn port(name: &str, number: u16) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: i32::from(number),
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        app_protocol: Some(if name == "metrics" { "http" } else { "grpc" }.into()),
        ..ServicePort::default()
    }
}

/// The headless Service that gives every pod its stable DNS name. It
/// publishes pods that are not Ready: a node is only Ready once it knows a
/// leader, and there is no leader before the peers can reach each other.
pub fn headless_service(cluster: &ClusterRef, owner: &OwnerReference) -> Service {
    Service {
        metadata: cluster.metadata(cluster.headless_service_name(), owner),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(cluster.selector_labels()),
            ports: Some(vec![
                port("client", CLIENT_PORT),
                port("raft", RAFT_PORT),
                port("admin", ADMIN_PORT),
                port("metrics", METRICS_PORT),
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The Service clients connect to: Ready pods only (a node is Ready when it
/// knows the leader and has caught up; followers forward to the leader).
pub fn client_service(
    cluster: &ClusterRef,
    spec: &MatchEngineClusterSpec,
    owner: &OwnerReference,
) -> Service {
    let mut metadata = cluster.metadata(cluster.client_service_name(), owner);
    if !spec.service.annotations.is_empty() {
        metadata.annotations = Some(spec.service.annotations.clone());
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(spec.service.type_.as_str().into()),
            selector: Some(cluster.selector_labels()),
            ports: Some(vec![port("client", CLIENT_PORT)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// Voters that may be down at once without losing a quorum.
pub fn failures_tolerated(voters: u32) -> u32 {
    voters.saturating_sub(1) / 2
}

/// At most `failures_tolerated(voters)` pods may be evicted at once.
/// `voters` is the smaller of the spec's count and the voters now in the
/// membership, so that the budget is safe in the middle of a scale change
/// too (with 4 voters on the way from 3 to 5, one, not two). A single
/// voter gets a budget of zero: draining its node must wait for the user.
pub fn pod_disruption_budget(
    cluster: &ClusterRef,
    voters: u32,
    owner: &OwnerReference,
) -> PodDisruptionBudget {
    let max_unavailable = i32::try_from(failures_tolerated(voters)).unwrap_or(0);
    PodDisruptionBudget {
        metadata: cluster.metadata(cluster.pdb_name(), owner),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(max_unavailable)),
            selector: Some(LabelSelector {
                match_labels: Some(cluster.selector_labels()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ServiceType;
    use crate::desired::tests::{cluster, cluster_ref, owner};

    #[test]
    fn headless_service_publishes_not_ready_pods() {
        let svc = headless_service(&cluster_ref(), &owner());
        assert_eq!(svc.metadata.name.as_deref(), Some("books-headless"));
        let spec = svc.spec.unwrap();
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.publish_not_ready_addresses, Some(true));
        let ports: Vec<_> = spec
            .ports
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.port))
            .collect();
        assert_eq!(
            ports,
            [
                ("client".to_string(), 7000),
                ("raft".to_string(), 7001),
                ("admin".to_string(), 7002),
                ("metrics".to_string(), 9100)
            ]
        );
        assert_eq!(svc.metadata.owner_references, Some(vec![owner()]));
    }

    #[test]
    fn client_service_follows_the_spec() {
        let mut mec = cluster(3);
        mec.spec.service.type_ = ServiceType::LoadBalancer;
        mec.spec
            .service
            .annotations
            .insert("example.com/lb".into(), "internal".into());
        let svc = client_service(&cluster_ref(), &mec.spec, &owner());
        assert_eq!(svc.metadata.name.as_deref(), Some("books"));
        assert_eq!(
            svc.metadata.annotations.unwrap()["example.com/lb"],
            "internal"
        );
        let spec = svc.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(spec.publish_not_ready_addresses, None);
        assert_eq!(spec.ports.unwrap().len(), 1);
    }

    #[test]
    fn budget_never_allows_a_quorum_loss() {
        for (voters, expected) in [(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 2), (7, 3)] {
            let pdb = pod_disruption_budget(&cluster_ref(), voters, &owner());
            assert_eq!(
                pdb.spec.unwrap().max_unavailable,
                Some(IntOrString::Int(expected)),
                "{voters} voters"
            );
            // The voters left after the allowed evictions still form a quorum.
            if voters > 0 {
                assert!(voters - failures_tolerated(voters) > voters / 2);
            }
        }
    }
}
