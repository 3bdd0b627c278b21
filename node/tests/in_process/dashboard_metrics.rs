//! The cluster dashboard in the Helm chart queries only metrics the node
//! really exports: every `matchengine_*` name in its JSON (bar the
//! operator's own) must be one the node registers.

use std::collections::BTreeSet;

use matchengine_node::metrics::METRIC_NAMES;

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
