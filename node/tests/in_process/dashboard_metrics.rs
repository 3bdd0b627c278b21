//! The Helm chart's dashboards query only metrics the node really exports:
//! every `matchengine_*` name in any dashboard's JSON (bar the operator's
//! own, which `operator/tests/dashboards.rs` checks) must be one the node
//! registers, and every query names a MatchEngine metric.

use std::collections::BTreeSet;

use matchengine_node::metrics::METRIC_NAMES;

const DASHBOARDS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/matchengine-operator/dashboards"
);
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/matchengine-operator/dashboards/cluster-overview.json"
);

/// Every `matchengine_...` identifier in `text`, histogram suffixes removed.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(offset) = text[start..].find("matchengine_") {
        let begin = start + offset;
        let preceded_by_ident =
            begin > 0 && (bytes[begin - 1].is_ascii_alphanumeric() || bytes[begin - 1] == b'_');
        let mut end = begin;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if !preceded_by_ident {
            let name = &text[begin..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.insert(base.to_string());
        }
        start = end;
    }
    names
}

#[test]
fn the_cluster_dashboard_uses_only_exported_metrics() {
    let dashboard =
        std::fs::read_to_string(DASHBOARD).unwrap_or_else(|e| panic!("reading {DASHBOARD}: {e}"));
    let used: BTreeSet<String> = metric_names(&dashboard)
        .into_iter()
        .filter(|name| !name.starts_with("matchengine_operator_"))
        .collect();
    assert!(used.len() >= 10, "the dashboard queries only {used:?}");
    let exported: BTreeSet<String> = METRIC_NAMES.iter().map(|s| s.to_string()).collect();
    let unknown: Vec<&String> = used.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics the node does not export: {unknown:?}"
    );
}

/// Every dashboard in the chart, not only the cluster one: a new board, or
/// a node metric on the operator's board, is checked too.
#[test]
fn every_dashboard_uses_only_exported_node_metrics_and_every_query_names_one() {
    let exported: BTreeSet<String> = METRIC_NAMES.iter().map(|s| s.to_string()).collect();
    let mut boards = 0;
    for entry in std::fs::read_dir(DASHBOARDS).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        boards += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let unknown: Vec<String> = metric_names(&text)
            .into_iter()
            .filter(|name| !name.starts_with("matchengine_operator_") && !exported.contains(name))
            .collect();
        assert!(
            unknown.is_empty(),
            "{}: not exported: {unknown:?}",
            path.display()
        );
        let board: serde_json::Value = serde_json::from_str(&text).unwrap();
        let panels = board["panels"].as_array().cloned().unwrap_or_default();
        let exprs: Vec<String> = panels
            .iter()
            .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
            .filter_map(|target| target["expr"].as_str().map(str::to_owned))
            .collect();
        assert!(!exprs.is_empty(), "{} has no queries", path.display());
        for expr in exprs {
            assert!(
                expr.contains("matchengine_"),
                "{}: '{expr}' queries no MatchEngine metric",
                path.display()
            );
        }
    }
    assert!(boards >= 2, "found {boards} dashboards in {DASHBOARDS}");
}

#[test]
fn names_are_found_in_promql() {
    let names = metric_names(
        r#"{"expr": "histogram_quantile(0.99, sum(rate(matchengine_log_fsync_seconds_bucket[5m])) by (le)) + matchengine_raft_term"}"#,
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "matchengine_log_fsync_seconds".to_string(),
            "matchengine_raft_term".to_string()
        ])
    );
}
