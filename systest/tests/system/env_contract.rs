//! Every `MATCHENGINE_*` variable the operator gives a node pod (in the
//! ConfigMap it loads or in the container's own env) is one the node reads.
//! A flag renamed on one side only would otherwise be ignored in every pod,
//! silently.

use std::collections::BTreeSet;

use clap::CommandFactory;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use matchengine_node::config::Config;
use matchengine_operator::crd::MatchEngineClusterSpec;
use matchengine_operator::desired::{ClusterRef, config_map, statefulset};

fn node_variables() -> BTreeSet<String> {
    Config::command()
        .get_arguments()
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .collect()
}

fn operator_variables(spec: serde_json::Value) -> BTreeSet<String> {
    let spec: MatchEngineClusterSpec = serde_json::from_value(spec).unwrap();
    let cluster = ClusterRef {
        name: "books".into(),
        namespace: "trading".into(),
        cluster_domain: "cluster.local".into(),
    };
    let owner = OwnerReference::default();
    let mut names: BTreeSet<String> = config_map(&cluster, &spec, &owner)
        .data
        .unwrap_or_default()
        .into_keys()
        .collect();
    let (statefulset, _) = statefulset(&cluster, &spec, 3, &owner);
    let pod = statefulset.spec.unwrap().template.spec.unwrap();
    for container in pod
        .containers
        .into_iter()
        .chain(pod.init_containers.unwrap_or_default())
    {
        names.extend(
            container
                .env
                .unwrap_or_default()
                .into_iter()
                .map(|env| env.name),
        );
    }
    names
        .into_iter()
        .filter(|name| name.starts_with("MATCHENGINE_"))
        .collect()
}

#[test]
fn every_variable_the_operator_sets_is_a_node_flag() {
    let node = node_variables();
    assert!(node.contains("MATCHENGINE_NODE_ID"), "{node:?}");
    let image = "registry.example/matchengine-node:1.0.0";
    let specs = [
        serde_json::json!({ "replicas": 3, "image": image }),
        serde_json::json!({ "replicas": 3, "image": image, "tls": { "secretName": "books-tls" } }),
    ];
    for spec in specs {
        let set = operator_variables(spec.clone());
        assert!(set.len() > 10, "the operator sets its variables: {set:?}");
        let unknown: Vec<&String> = set.difference(&node).collect();
        assert!(
            unknown.is_empty(),
            "the operator sets variables no node flag reads: {unknown:?} (spec {spec})"
        );
    }
}
