//! `cargo bench -p matchengine-benches --bench storage [-- --quick]`
//!
//! The node's durable storage on this machine's disk, with fsync on:
//! - the RocksDB log: appends and fsyncs per second, and entries per fsync,
//!   as the number of appends in flight grows (group commit at work);
//! - snapshots of 1M resting orders and of 1M KV keys: the point-in-time
//!   copy (what apply waits for), encode, durable write, and install (read,
//!   verify, decode).

use std::time::{Duration, Instant};

use bytes::Bytes;
use matchengine_book as book;
use matchengine_codec::batch::{CommandBatch, DecodedBatch, KvCommand, NodeCommand};
use matchengine_node::raft::log_storage::RaftLogStore;
use matchengine_node::raft::types::{Entry, LeaderId, LogId, TypeConfig};
use matchengine_node::replica::state::{ReplicatedState, StateLimits};
use matchengine_node::storage::snapshot_file;
use openraft::EntryPayload;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::type_config::TypeConfigExt;

fn entry(index: u64, payload_bytes: usize) -> Entry {
    let command = NodeCommand::Kv(KvCommand::Put {
        key: Bytes::from(format!("key-{index}")),
        value: Bytes::from(vec![7u8; payload_bytes]),
    });
    Entry {
        log_id: LogId {
            leader_id: LeaderId {
                term: 1,
                node_id: 1,
            },
            index,
        },
        payload: EntryPayload::Normal(CommandBatch::new(index, &[command])),
    }
}

/// Appends `appends` single-entry appends keeping `in_flight` unflushed,
/// as openraft does when it pipelines; returns (elapsed, stats delta).
async fn append_run(
    in_flight: usize,
    appends: u64,
    payload_bytes: usize,
) -> (
    Duration,
    matchengine_node::storage::log_store::LogStatsSnapshot,
) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let mut store = RaftLogStore::open(dir.path()).unwrap_or_else(|e| panic!("open: {e}"));
    let stats = store.stats();
    let mut pending = std::collections::VecDeque::new();
    let start = Instant::now();
    for index in 1..=appends {
        if pending.len() >= in_flight
            && let Some(done) = pending.pop_front()
        {
            let _ = done.await;
        }
        let (tx, rx) = TypeConfig::oneshot();
        store
            .append(
                [entry(index, payload_bytes)],
                IOFlushed::<TypeConfig>::signal(tx),
            )
            .await
            .unwrap_or_else(|e| panic!("append: {e}"));
        pending.push_back(rx);
    }
    for done in pending {
        let _ = done.await;
    }
    (start.elapsed(), stats.snapshot())
}

fn kv_state(keys: usize) -> ReplicatedState {
    let mut state =
        ReplicatedState::new(StateLimits::default()).unwrap_or_else(|e| panic!("limits: {e}"));
    let mut outcomes = Vec::new();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(10_000) {
        let commands = chunk
            .iter()
            .map(|i| {
                NodeCommand::Kv(KvCommand::Put {
                    key: Bytes::from(format!("user/{i:010}")),
                    value: Bytes::from(format!("value-{i}-{}", "x".repeat(32))),
                })
            })
            .collect();
        state.apply(
            &DecodedBatch {
                timestamp_ns: 1,
                commands,
            },
            &mut outcomes,
        );
        outcomes.clear();
    }
    state
}

fn book_state(orders: usize) -> ReplicatedState {
    let mut state = ReplicatedState::new(StateLimits {
        book: book::Limits {
            orders_open_max: 2_000_000,
            ..book::Limits::default()
        },
        ..StateLimits::default()
    })
    .unwrap_or_else(|e| panic!("limits: {e}"));
    let mut outcomes = Vec::new();
    let spec = book::InstrumentSpec {
        price_ticks_max: 2_000_000,
        ..book::builders::instrument(1, "BTC-USD")
    };
    let add = vec![NodeCommand::Book(book::Command::AddInstrument(spec))];
    state.apply(
        &DecodedBatch {
            timestamp_ns: 0,
            commands: add,
        },
        &mut outcomes,
    );
    for chunk in (0..orders).collect::<Vec<_>>().chunks(10_000) {
        let commands = chunk
            .iter()
            .map(|&i| {
                let side = if i % 2 == 0 {
                    book::Side::Buy
                } else {
                    book::Side::Sell
                };
                let offset = 1 + (i % 5_000) as i64;
                let price_ticks = if side == book::Side::Buy {
                    1_000_000 - offset
                } else {
                    1_000_000 + offset
                };
                NodeCommand::Book(book::builders::place_limit(
                    1,
                    (i % 1_000) as u64,
                    i as u64 + 1,
                    side,
                    price_ticks,
                    1 + (i % 100) as u64,
                ))
            })
            .collect();
        state.apply(
            &DecodedBatch {
                timestamp_ns: 1,
                commands,
            },
            &mut outcomes,
        );
        outcomes.clear();
    }
    state
}

fn snapshot_row(name: &str, state: &ReplicatedState) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let start = Instant::now();
    let copy = std::hint::black_box(state.freeze());
    let clone = start.elapsed();
    let start = Instant::now();
    let mut body = Vec::new();
    copy.encode(&mut body);
    let encode = start.elapsed();
    let start = Instant::now();
    let file =
        snapshot_file::write(dir.path(), None, b"", &body).unwrap_or_else(|e| panic!("write: {e}"));
    let write = start.elapsed();
    let start = Instant::now();
    let (_, read_body) = snapshot_file::read(&file.path).unwrap_or_else(|e| panic!("read: {e}"));
    let restored = ReplicatedState::decode(read_body).unwrap_or_else(|e| panic!("decode: {e}"));
    let install = start.elapsed();
    assert_eq!(restored.digest(), state.digest());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {name} | {:.1} MB | {:.0} | {:.0} | {:.0} | {:.0} |",
        file.size_bytes as f64 / 1e6,
        ms(clone),
        ms(encode),
        ms(write),
        ms(install)
    );
}

fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let scale = if quick { 10 } else { 1 };
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    println!(
        "MatchEngine storage benchmark (fsync on){}",
        if quick { " (quick)" } else { "" }
    );
    println!("\n### RocksDB log: single-entry appends of ~100 bytes, N appends in flight\n");
    println!("| in flight | appends/s | fsyncs/s | entries per fsync | mean fsync ms |");
    println!("|---:|---:|---:|---:|---:|");
    for in_flight in [1usize, 8, 64, 512] {
        let appends = if in_flight == 1 { 2_000 } else { 20_000 } / scale as u64;
        let (elapsed, stats) = runtime.block_on(append_run(in_flight, appends, 64));
        let (seconds, fsyncs) = (elapsed.as_secs_f64(), stats.fsyncs.max(1) as f64);
        println!(
            "| {in_flight} | {:.0} | {:.0} | {:.1} | {:.2} |",
            stats.entries_appended as f64 / seconds,
            stats.fsyncs as f64 / seconds,
            stats.entries_appended as f64 / fsyncs,
            stats.fsync_nanos_total as f64 / 1e6 / fsyncs
        );
    }
    println!("\n### Snapshots\n");
    println!(
        "| state | file | copy ms (apply waits) | encode ms | durable write ms | install ms (read, verify, decode) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    snapshot_row(
        &format!("{} resting orders", 1_000_000 / scale),
        &book_state(1_000_000 / scale),
    );
    snapshot_row(
        &format!("{} KV keys (~50 B values)", 1_000_000 / scale),
        &kv_state(1_000_000 / scale),
    );
}
