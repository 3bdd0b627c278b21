//! openraft's own storage conformance suite, against the RocksDB log store
//! and the snapshot-file state machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use matchengine_node::raft::log_storage::RaftLogStore;
use matchengine_node::raft::state_machine::StateMachineStore;
use matchengine_node::raft::types::TypeConfig;
use matchengine_node::replica::state::StateLimits;
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use tempfile::TempDir;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, RaftLogStore, StateMachineStore, TempDir> for RocksBuilder {
    async fn build(
        &self,
    ) -> Result<(TempDir, RaftLogStore, StateMachineStore), StorageError<TypeConfig>> {
        let failed = |e: &dyn std::fmt::Display| {
            StorageError::read(TypeConfig::err_from_string(e.to_string()))
        };
        let dir = TempDir::new().map_err(|e| failed(&e))?;
        let log = RaftLogStore::open(&dir.path().join("log")).map_err(|e| failed(&e))?;
        let state_machine =
            StateMachineStore::open(&dir.path().join("snapshots"), StateLimits::default())
                .map_err(|e| failed(&e))?;
        Ok((dir, log, state_machine))
    }
}

#[test]
fn rocksdb_store_passes_openraft_storage_suite() {
    TypeConfig::run(async {
        Suite::test_all(RocksBuilder).await.unwrap();
    });
}
