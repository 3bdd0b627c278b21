//! Prints, as JSON, what the Helm chart must agree on with the operator's
//! code: the labels the operator puts on every node pod (the chart's node
//! NetworkPolicy selects node pods by them). `scripts/test-charts` reads
//! this instead of scraping the operator's source.

use matchengine_operator::desired::ClusterRef;

fn main() -> anyhow::Result<()> {
    let any_cluster = ClusterRef {
        name: "any".into(),
        namespace: "any".into(),
        cluster_domain: "cluster.local".into(),
    };
    let mut labels = any_cluster.selector_labels();
    // Names one cluster; the chart's policy covers every cluster's nodes.
    labels.remove("app.kubernetes.io/instance");
    let contract = serde_json::json!({ "node_pod_labels": labels });
    println!("{}", serde_json::to_string_pretty(&contract)?);
    Ok(())
}
