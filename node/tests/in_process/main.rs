//! The node's in-process integration tests, one test binary (one link of
//! RocksDB): nodes in one process on real RocksDB logs and snapshot files,
//! openraft's storage suite, decoders under random input, and the
//! dashboard's metric names. Tests with real node processes are in the
//! `matchengine-systest` crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;
mod common;
mod crash;
mod dashboard_metrics;
mod decoders;
mod storage_suite;
