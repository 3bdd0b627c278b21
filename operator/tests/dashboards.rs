//! The Grafana dashboards query only metrics the operator registers (the
//! node's names are checked by the node's own test against
//! `cluster-overview.json`).

use std::collections::BTreeSet;

use matchengine_operator::metrics::Metrics;

fn dashboard(name: &str) -> serde_json::Value {
    let path = format!(
        "{}/../charts/matchengine-operator/dashboards/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `matchengine_operator_*` name in any string of the dashboard
/// (queries, variables, links).
fn operator_names(value: &serde_json::Value, names: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("matchengine_operator_") {
                let tail = &rest[start..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.insert(tail[..end].to_owned());
                rest = &tail[end..];
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| operator_names(v, names)),
        serde_json::Value::Object(map) => map.values().for_each(|v| operator_names(v, names)),
        _ => {}
    }
}

fn exprs(dashboard: &serde_json::Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                exprs.push(expr.to_owned());
            }
        }
    }
    exprs
}

#[test]
fn operator_dashboard_uses_only_registered_metrics() {
    let registered = Metrics::new().series_names();
    let board = dashboard("operator.json");
    let mut used = BTreeSet::new();
    operator_names(&board, &mut used);
    assert!(
        used.len() >= 5,
        "the operator dashboard queries too little: {used:?}"
    );
    let unknown: Vec<_> = used.difference(&registered).collect();
    assert!(
        unknown.is_empty(),
        "not registered by the operator: {unknown:?}"
    );
    // Every panel with queries queries an operator metric.
    for expr in exprs(&board) {
        assert!(expr.contains("matchengine_operator_"), "{expr}");
    }
}

#[test]
fn cluster_dashboard_uses_no_unknown_operator_metric() {
    let registered = Metrics::new().series_names();
    let board = dashboard("cluster-overview.json");
    let mut used = BTreeSet::new();
    operator_names(&board, &mut used);
    let unknown: Vec<_> = used.difference(&registered).collect();
    assert!(unknown.is_empty(), "{unknown:?}");
    assert!(exprs(&board).len() >= 10);
}
