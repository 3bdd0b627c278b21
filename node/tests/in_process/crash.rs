//! Crash safety with a real process: a node is SIGKILLed in the middle of a
//! stream of acknowledged writes, restarted from the same directory, and
//! every write it acknowledged must be there.
//!
//! The test binary re-runs itself as the node process (the
//! `crash_child_process_entry_point` test does nothing unless
//! `MATCHENGINE_CRASH_CHILD` is set).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::TestCluster;
use bytes::Bytes;
use matchengine_codec::batch::{KvCommand, NodeCommand};

const CHILD_ENV: &str = "MATCHENGINE_CRASH_CHILD";
const WRITERS: u64 = 8;
const ROUND_DEADLINE: Duration = Duration::from_secs(60);

fn key(id: u64) -> Bytes {
    Bytes::from(format!("crash/{id:012}"))
}

/// The node process: `write:<dir>:<first id>` writes keys from concurrent
/// writers and prints `ACK <id>` once each write is acknowledged;
/// `verify:<dir>` prints `KEY <id>` for every key it holds after recovery.
#[test]
fn crash_child_process_entry_point() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run_child(&mode));
}

async fn run_child(mode: &str) {
    let mut parts = mode.splitn(3, ':');
    let (action, dir) = (parts.next().unwrap(), PathBuf::from(parts.next().unwrap()));
    let mut cluster = TestCluster::at(dir, 1_000);
    cluster.start(1).await;
    cluster.initialize_once(&[1]).await;
    match action {
        "write" => {
            let first: u64 = parts.next().unwrap().parse().unwrap();
            let cluster = Arc::new(cluster);
            let mut writers = Vec::new();
            for writer in 0..WRITERS {
                let cluster = Arc::clone(&cluster);
                writers.push(tokio::spawn(async move {
                    for n in 0.. {
                        let id = first + n * WRITERS + writer;
                        let put = NodeCommand::Kv(KvCommand::Put {
                            key: key(id),
                            value: Bytes::from_static(b"acknowledged"),
                        });
                        cluster.write(id, &[put]).await;
                        // Only now is the write acknowledged.
                        let mut stdout = std::io::stdout().lock();
                        writeln!(stdout, "ACK {id}").unwrap();
                        stdout.flush().unwrap();
                    }
                }));
            }
            for writer in writers {
                writer.await.unwrap();
            }
        }
        "verify" => {
            // A write through the recovered leader commits everything before it.
            cluster.write(0, &[]).await;
            let keys = cluster.nodes[&1]
                .state_machine
                .read(|state| {
                    state
                        .kv()
                        .range_by_prefix(b"crash/", None, usize::MAX)
                        .into_iter()
                        .map(|(key, _)| String::from_utf8_lossy(&key).to_string())
                        .collect::<Vec<_>>()
                })
                .unwrap();
            let mut stdout = std::io::stdout().lock();
            for key in keys {
                let id = key.trim_start_matches("crash/");
                writeln!(stdout, "KEY {}", id.parse::<u64>().unwrap()).unwrap();
            }
            writeln!(stdout, "DONE").unwrap();
            stdout.flush().unwrap();
            cluster.stop(1).await;
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn_child(mode: String) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::crash_child_process_entry_point",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads `<prefix> <id>` lines until `stop` says so or the deadline passes.
fn read_ids(
    child: &mut Child,
    prefix: &str,
    mut stop: impl FnMut(&BTreeSet<u64>, &str) -> bool,
) -> BTreeSet<u64> {
    let deadline = Instant::now() + ROUND_DEADLINE;
    let mut ids = BTreeSet::new();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest's "test ... " header can share a line with the first id.
        if let Some((_, id)) = line.split_once(prefix) {
            ids.insert(id.trim().parse().unwrap());
        }
        if stop(&ids, &line) {
            break;
        }
        assert!(Instant::now() < deadline, "the node process stalled");
    }
    ids
}

fn verify(dir: &Path) -> BTreeSet<u64> {
    let mut child = spawn_child(format!("verify:{}", dir.display()));
    // Read to the end: closing the pipe early would fail the child's writes.
    let mut done = false;
    let keys = read_ids(&mut child, "KEY ", |_, line| {
        done |= line.ends_with("DONE");
        false
    });
    assert!(done, "the recovered node did not finish listing its keys");
    let status = child.wait().unwrap();
    assert!(status.success(), "the recovered node failed: {status}");
    keys
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acknowledged = BTreeSet::new();
    for round in 0..3u64 {
        let first = round * 1_000_000;
        let mut child = spawn_child(format!("write:{}:{first}", dir.path().display()));
        // Kill at a different point each round, while writes are in flight.
        let target = 150 + round * 170;
        let acks = read_ids(&mut child, "ACK ", |ids, _| ids.len() as u64 >= target);
        child.kill().unwrap(); // SIGKILL, by PID
        child.wait().unwrap();
        assert!(
            acks.len() as u64 >= target,
            "round {round}: only {} acknowledgements",
            acks.len()
        );
        acknowledged.extend(acks);
        let present = verify(dir.path());
        let lost: Vec<_> = acknowledged.difference(&present).take(10).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged writes lost after SIGKILL: {lost:?}"
        );
    }
}
