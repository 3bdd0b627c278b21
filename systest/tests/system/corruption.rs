//! Damaged data on disk, with real node processes: a corrupted snapshot
//! file and a torn RocksDB log tail. The node says what is wrong, naming
//! the file; no acknowledged order is lost; it recovers once the fault is
//! gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use matchengine_client::pb;
use matchengine_systest::{ProcessCluster, has_order, limit};

async fn write_orders(cluster: &ProcessCluster, account: u64, count: u64) {
    let client = cluster.client();
    for n in 1..=count {
        client
            .place_order(limit(1, account, n, pb::Side::Buy, 100 + (n % 5) as i64, 1))
            .await
            .unwrap();
    }
}

async fn assert_orders(cluster: &ProcessCluster, account: u64, count: u64) {
    let client = cluster.client();
    for n in 1..=count {
        assert!(
            has_order(&client, account, n).await,
            "order ({account}, {n}) lost"
        );
    }
}

fn files_in(dir: PathBuf, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_snapshot_stops_the_node_with_the_file_named() {
    let mut cluster = ProcessCluster::new();
    cluster.bootstrap(&[1, 2, 3]).await;
    cluster.add_instrument(1).await;
    write_orders(&cluster, 7, 40).await;
    let victim = 2;
    let admin = cluster.admin();
    let index = admin
        .trigger_snapshot(&cluster.ports[&victim].admin_addr(), true)
        .await
        .unwrap();
    assert!(index > 0);
    assert!(cluster.stop(victim).success());

    let snapshots = files_in(
        cluster.root.join(format!("node-{victim}/snapshots")),
        ".snap",
    );
    let snapshot = snapshots.last().expect("a snapshot file").clone();
    let good = std::fs::read(&snapshot).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x40;
    std::fs::write(&snapshot, &bad).unwrap();

    cluster.start(victim);
    let exit = cluster.wait_exit(victim);
    assert!(
        !exit.success(),
        "a node with a damaged snapshot must not start"
    );
    let log = std::fs::read_to_string(cluster.log_path(victim)).unwrap();
    assert!(
        log.contains(&snapshot.display().to_string()) && log.contains("damaged"),
        "the error names the file:\n{log}"
    );
    // The others never noticed; nothing acknowledged is lost.
    write_orders(&cluster, 8, 10).await;
    assert_orders(&cluster, 7, 40).await;

    // The fault is gone (the file restored): the node rejoins and catches up.
    std::fs::write(&snapshot, &good).unwrap();
    cluster.start(victim);
    cluster.wait_admin_up(victim).await;
    let digest = cluster.converged_digest().await;
    assert_eq!(cluster.status(victim).await.unwrap().state_digest, digest);
    assert_orders(&cluster, 8, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_log_tail_is_recovered_from_the_peers() {
    let mut cluster = ProcessCluster::new();
    cluster.bootstrap(&[1, 2, 3]).await;
    cluster.add_instrument(1).await;
    write_orders(&cluster, 9, 60).await;
    let leader = cluster.leader().await;
    let victim = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    // SIGKILL: the log's tail is still in the WAL, not in a table file.
    cluster.kill(victim);
    let wals = files_in(cluster.root.join(format!("node-{victim}/raft-log")), ".log");
    let wal = wals.last().expect("a WAL file").clone();
    let len = std::fs::metadata(&wal).unwrap().len();
    assert!(len > 1_000, "the WAL holds the entries ({len} bytes)");
    // A torn write: the last third of the WAL never reached the disk.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len * 2 / 3)
        .unwrap();

    cluster.start(victim);
    cluster.wait_admin_up(victim).await;
    write_orders(&cluster, 10, 10).await;
    let digest = cluster.converged_digest().await;
    assert_eq!(cluster.status(victim).await.unwrap().state_digest, digest);
    assert_orders(&cluster, 9, 60).await;
    assert_orders(&cluster, 10, 10).await;
}
