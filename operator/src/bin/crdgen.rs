//! Prints the MatchEngineCluster CustomResourceDefinition as YAML;
//! `crds/matchengineclusters.yaml` is this output.

use std::io::Write;

fn main() -> anyhow::Result<()> {
    let yaml = matchengine_operator::crd_yaml()?;
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(())
}
