//! `crds/` and the chart's `crds/` hold exactly what `crdgen` prints.

const FIX: &str = "regenerate with: cargo run -p matchengine-operator --bin crdgen > crds/matchengineclusters.yaml \
     && cp crds/matchengineclusters.yaml charts/matchengine-operator/crds/";

fn read(relative: &str) -> String {
    let path = format!("{}/../{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}; {FIX}"))
}

#[test]
fn crd_files_match_the_generated_crd() {
    let generated = matchengine_operator::crd_yaml().unwrap();
    for file in [
        "crds/matchengineclusters.yaml",
        "charts/matchengine-operator/crds/matchengineclusters.yaml",
    ] {
        assert!(
            read(file) == generated,
            "{file} differs from the generated CRD; {FIX}"
        );
    }
}
