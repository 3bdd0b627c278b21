//! A full disk, with real node processes: one node's data directory is a
//! small tmpfs that the test fills with a ballast file while clients keep
//! writing. The node stops with an error naming the file it could not
//! write (so Kubernetes restarts it), acknowledges nothing it has not
//! persisted, the others keep serving, and once space is freed and the
//! node restarted every replica reaches one digest with every acknowledged
//! order. Needs root (to mount); prints "skipped: ..." otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use matchengine_client::pb;
use matchengine_systest::{ProcessCluster, has_order, limit};

/// Room for RocksDB's files and the snapshots before the ballast goes in.
const DISK_MIB: u64 = 16;

/// A tmpfs mounted on a node's data directory. Dropping it unmounts it
/// (lazily: the node may still hold files open), even when a test panics.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts a `size_mib` tmpfs on `dir`, or says why it cannot.
    fn mount(dir: &Path, size_mib: u64) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs on {}: {}",
                dir.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(SmallDisk {
            dir: dir.to_path_buf(),
        })
    }

    fn ballast(&self) -> PathBuf {
        self.dir.join("ballast")
    }

    /// Grows the ballast until the filesystem is full. (RocksDB
    /// preallocates its WAL and gives back what it did not use when it
    /// closes, so a node that stopped leaves some room to fill again.)
    fn fill(&self) {
        let mut file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.ballast())
            .unwrap();
        let chunk = vec![0x5a_u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::StorageFull => return,
                Err(error) => panic!("writing the ballast: {error}"),
            }
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.ballast()).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Places `count` orders for `account`; returns those acknowledged.
async fn write_orders(cluster: &ProcessCluster, account: u64, count: u64) -> Vec<(u64, u64)> {
    let client = cluster.client();
    let mut acked = Vec::new();
    for n in 1..=count {
        let order = limit(1, account, n, pb::Side::Buy, 100 + (n % 5) as i64, 1);
        if client.place_order(order).await.is_ok() {
            acked.push((account, n));
        }
    }
    acked
}

async fn assert_orders(cluster: &ProcessCluster, acked: &[(u64, u64)]) {
    let client = cluster.client();
    for &(account, n) in acked {
        assert!(
            has_order(&client, account, n).await,
            "acknowledged order ({account}, {n}) lost"
        );
    }
}

/// Waits for node `id` to exit on its own (the `exits`th time) and checks
/// that it failed saying why: its last words name the `file` under `dir`
/// that it could not write. Returns the log.
async fn assert_stopped_naming(
    cluster: &mut ProcessCluster,
    id: u64,
    exits: usize,
    dir: &Path,
    file: &str,
) -> String {
    // `main` prints the error that ends the process on a line of its own.
    let last_words = |log: &str| {
        log.lines()
            .filter(|line| line.starts_with("Error: "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + matchengine_systest::WAIT;
    let log = loop {
        let log = std::fs::read_to_string(cluster.log_path(id)).unwrap_or_default();
        if last_words(&log).len() >= exits {
            break log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {id} still runs (expected exit {exits}):\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let exit = cluster.wait_exit(id);
    assert!(!exit.success(), "node {id} exited {exit}:\n{log}");
    let error = last_words(&log).pop().unwrap();
    println!("node {id}, exit {exits} ({exit}): {error}");
    let named = error.contains("No space left on device")
        && error.contains(&dir.display().to_string())
        && error.contains(file);
    assert!(
        named,
        "node {id} names the {file} file under {}: {error}",
        dir.display()
    );
    log
}

/// Mounts the small disk on node `id`'s data directory, or explains the skip.
fn small_disk(cluster: &ProcessCluster, id: u64) -> Option<SmallDisk> {
    match SmallDisk::mount(&cluster.root.join(format!("node-{id}")), DISK_MIB) {
        Ok(disk) => Some(disk),
        Err(why) => {
            println!("skipped: cannot mount a small filesystem, needs root ({why})");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_a_full_disk_exits_naming_the_file_and_catches_up() {
    let mut cluster = ProcessCluster::new();
    let victim = 3;
    // Declared after the cluster, so dropped (unmounted) before its
    // temporary directory is removed.
    let Some(disk) = small_disk(&cluster, victim) else {
        return;
    };
    cluster.bootstrap(&[1, 2, 3]).await;
    cluster.add_instrument(1).await;
    let mut acked = write_orders(&cluster, 7, 20).await;
    cluster.converged_digest().await;

    disk.fill();
    // The leader and the other follower are a quorum: nothing is refused.
    let during = write_orders(&cluster, 8, 30).await;
    assert_eq!(during.len(), 30, "the others keep accepting writes");
    acked.extend(during);
    let log = assert_stopped_naming(&mut cluster, victim, 1, &disk.dir, "raft-log/").await;
    assert!(log.contains("Raft stopped on a fatal error"), "{log}");

    // Restarted (as Kubernetes would) on a disk still full: it stops again.
    disk.fill();
    cluster.start(victim);
    acked.extend(write_orders(&cluster, 9, 5).await);
    assert_stopped_naming(&mut cluster, victim, 2, &disk.dir, "raft-log/").await;

    // The fault is gone: it rejoins and catches up.
    disk.free();
    cluster.start(victim);
    cluster.wait_admin_up(victim).await;
    acked.extend(write_orders(&cluster, 10, 10).await);
    let digest = cluster.converged_digest().await;
    assert_eq!(cluster.status(victim).await.unwrap().state_digest, digest);
    assert_eq!(acked.len(), 65, "every write was acknowledged");
    assert_orders(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_with_a_full_disk_exits_and_a_new_leader_takes_over() {
    let mut cluster = ProcessCluster::new();
    // Node 1 initializes the cluster and leads it.
    let victim = 1;
    let Some(disk) = small_disk(&cluster, victim) else {
        return;
    };
    cluster.bootstrap(&[1, 2, 3]).await;
    cluster.add_instrument(1).await;
    if cluster.leader().await != victim {
        // An election under load moved it: give it back.
        cluster
            .admin()
            .transfer_leadership(victim, 5_000)
            .await
            .unwrap();
    }
    assert_eq!(cluster.leader().await, victim);
    let mut acked = write_orders(&cluster, 17, 20).await;
    cluster.converged_digest().await;

    disk.fill();
    // The leader cannot append: it must not answer; the client retries
    // (places are idempotent) on whoever leads next.
    acked.extend(write_orders(&cluster, 18, 30).await);
    let log = assert_stopped_naming(&mut cluster, victim, 1, &disk.dir, "raft-log/").await;
    assert!(log.contains("Raft stopped on a fatal error"), "{log}");
    let leader = cluster.leader().await;
    assert_ne!(leader, victim);
    acked.extend(write_orders(&cluster, 19, 10).await);

    disk.free();
    cluster.start(victim);
    cluster.wait_admin_up(victim).await;
    let digest = cluster.converged_digest().await;
    assert_eq!(cluster.status(victim).await.unwrap().state_digest, digest);
    assert_eq!(
        acked.len(),
        60,
        "every write was acknowledged, once retried"
    );
    assert_orders(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_cannot_be_written_stops_the_node_naming_the_file() {
    let mut cluster = ProcessCluster::new();
    let victim = 2;
    let Some(disk) = small_disk(&cluster, victim) else {
        return;
    };
    cluster.bootstrap(&[1, 2, 3]).await;
    cluster.add_instrument(1).await;
    let acked = write_orders(&cluster, 27, 20).await;
    cluster.converged_digest().await;

    disk.fill();
    let admin = cluster.admin();
    let addr = cluster.ports[&victim].admin_addr();
    assert!(admin.trigger_snapshot(&addr, true).await.is_err());
    let log = assert_stopped_naming(&mut cluster, victim, 1, &disk.dir, ".snap.tmp").await;
    assert!(log.contains("Raft stopped on a fatal error"), "{log}");

    disk.free();
    cluster.start(victim);
    cluster.wait_admin_up(victim).await;
    assert!(admin.trigger_snapshot(&addr, true).await.unwrap() > 0);
    let digest = cluster.converged_digest().await;
    assert_eq!(cluster.status(victim).await.unwrap().state_digest, digest);
    assert_orders(&cluster, &acked).await;
}
