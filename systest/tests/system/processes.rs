//! The node as users run it: separate `matchengine-node` processes on
//! loopback, driven through the client and admin gRPC APIs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matchengine_client::client::Consistency;
use matchengine_client::{Client, pb};
use matchengine_proto::metadata;
use matchengine_systest::{ProcessCluster, has_order, limit};
use tokio::time::Instant;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn health(addr: &str, service: &str) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = HealthClient::new(channel);
    let response = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(response.into_inner().status).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_bootstrap_trade_and_converge() {
    let mut cluster = ProcessCluster::new();
    cluster.start(1);
    cluster.wait_admin_up(1).await;
    // Before bootstrap: alive, but not ready for clients (no leader).
    let admin_addr = cluster.ports[&1].admin_addr();
    assert_eq!(health(&admin_addr, "").await, Some(ServingStatus::Serving));
    assert_eq!(
        health(&cluster.ports[&1].client_addr(), "matchengine.v1.Client").await,
        Some(ServingStatus::NotServing)
    );
    let fresh = cluster.status(1).await.unwrap();
    assert!(!fresh.initialized);

    cluster.bootstrap(&[1, 2, 3]).await;
    let leader = cluster.leader().await;
    let status = cluster.status(leader).await.unwrap();
    let voters: BTreeSet<u64> = status
        .membership
        .unwrap()
        .voters
        .iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(voters, BTreeSet::from([1, 2, 3]));
    cluster
        .wait_for("client readiness on every node", || async {
            for id in [1, 2, 3] {
                let addr = cluster.ports[&id].client_addr();
                if health(&addr, "matchengine.v1.Client").await != Some(ServingStatus::Serving) {
                    return None;
                }
            }
            Some(())
        })
        .await;

    cluster.add_instrument(1).await;
    let client = cluster.client();
    let sell = client
        .place_order(limit(1, 10, 1, pb::Side::Sell, 100, 5))
        .await
        .unwrap();
    let buy = client
        .place_order(limit(1, 20, 1, pb::Side::Buy, 101, 3))
        .await
        .unwrap();
    let trades: Vec<&pb::Trade> = buy
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(pb::event::Kind::Trade(trade)) => Some(trade),
            _ => None,
        })
        .collect();
    assert_eq!(trades.len(), 1);
    assert_eq!((trades[0].price_ticks, trades[0].quantity_lots), (100, 3));
    assert_eq!(trades[0].maker_order_id, sell.order_id);

    // A write to a follower names the leader's client address. Leadership
    // may move under load between reading it and asking, so ask again until
    // the answer comes from a follower of the leader read just before.
    let (leader, follower, error) = cluster
        .wait_for("a follower to answer a write", || async {
            let leader = cluster.leader().await;
            let follower = [1, 2, 3].into_iter().find(|id| *id != leader)?;
            let mut raw = client.node(&cluster.ports[&follower].client_addr()).ok()?;
            // A bid below every ask: harmless if this node has become leader.
            let error = raw
                .place_order(limit(1, 30, 1, pb::Side::Buy, 90, 1))
                .await
                .err()?;
            (cluster.leader().await == leader).then_some((leader, follower, error))
        })
        .await;
    assert_eq!(error.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        error.metadata().get(metadata::LEADER).unwrap(),
        cluster.ports[&leader].client_addr().as_str()
    );

    // Every replica holds the same state; stale reads on a follower see it.
    let digest = cluster.converged_digest().await;
    assert_eq!(digest.len(), 32);
    let depth = Client::new(vec![cluster.ports[&follower].client_addr()])
        .unwrap()
        .depth(1, 5, Consistency::Stale)
        .await
        .unwrap();
    assert_eq!(depth.asks.len(), 1);
    assert_eq!(depth.asks[0].quantity_lots, 2);

    // The event stream from any node, resumable at any sequence.
    let mut events = client.events(1, 2);
    let first = events.next().await.unwrap();
    assert_eq!(first.sequence, 2);
    assert!(matches!(
        first.kind,
        Some(pb::event::Kind::OrderAccepted(_))
    ));

    // Metrics are served and count what happened.
    let metrics = reqwest_metrics(cluster.ports[&leader].metrics).await;
    assert!(metrics.contains("matchengine_trades_total{instrument=\"1\""));
    assert!(metrics.contains("matchengine_raft_is_leader{node_id=\""));

    // SIGTERM: a follower exits 0 promptly, even while the leader streams
    // entries to it; it restarts and catches up.
    let started = Instant::now();
    let exit = cluster.stop(follower);
    assert!(exit.success(), "exit status {exit}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    cluster.start(follower);
    cluster.wait_admin_up(follower).await;
    cluster.converged_digest().await;

    // SIGTERM: the leader hands over and exits 0.
    let leader = cluster.leader().await;
    let exit = cluster.stop(leader);
    assert!(exit.success(), "exit status {exit}");
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, leader);
    assert!(has_order(&cluster.client(), 10, 1).await);
}

/// GET /metrics with a plain TCP request (no HTTP client dependency).
async fn reqwest_metrics(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// `matchengine_snapshots_installed_total` from a /metrics page.
fn snapshots_installed(metrics: &str) -> Option<u64> {
    metrics
        .lines()
        .find(|line| line.starts_with("matchengine_snapshots_installed_total"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// What the writers had acknowledged.
#[derive(Default)]
struct Acked {
    orders: Vec<(u64, u64)>,
    keys: Vec<String>,
}

/// Writers placing orders and putting keys through the leader-following
/// client until `stop` is set; every acknowledged write is recorded.
fn spawn_writers(
    client: &Client,
    writers: u64,
    stop: &Arc<AtomicBool>,
    acked: &Arc<Mutex<Acked>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..writers)
        .map(|writer| {
            let client = client.clone();
            let acked = Arc::clone(acked);
            let stop = Arc::clone(stop);
            tokio::spawn(async move {
                let account = 1_000 + writer;
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let side = if n.is_multiple_of(2) {
                        pb::Side::Buy
                    } else {
                        pb::Side::Sell
                    };
                    let price = if side == pb::Side::Buy {
                        400 + (n % 50) as i64
                    } else {
                        600 + (n % 50) as i64
                    };
                    if client
                        .place_order(limit(1, account, n, side, price, 1))
                        .await
                        .is_ok()
                    {
                        acked.lock().unwrap().orders.push((account, n));
                    }
                    let key = format!("w{writer}/{n}");
                    if client
                        .kv_put(key.clone().into_bytes(), b"v".to_vec())
                        .await
                        .is_ok()
                    {
                        acked.lock().unwrap().keys.push(key);
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_under_load_loses_no_acknowledged_write() {
    let mut cluster = ProcessCluster::new();
    cluster.bootstrap(&[1, 2, 3]).await;
    cluster.add_instrument(1).await;
    let client = cluster.client();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers = spawn_writers(&client, 4, &stop, &acked);
    let acked_orders = || acked.lock().unwrap().orders.len();

    cluster
        .wait_for("writes acknowledged before the kill", || async {
            (acked_orders() >= 50).then_some(())
        })
        .await;
    let old_leader = cluster.leader().await;
    let before_kill = acked_orders();
    let killed_at = Instant::now();
    cluster.kill(old_leader);
    // A new leader serves writes within a few election timeouts (600 ms max).
    let probe = cluster.client();
    cluster
        .wait_for("a write through a new leader", || async {
            probe.kv_put(b"probe".to_vec(), b"1".to_vec()).await.ok()
        })
        .await;
    let failover = killed_at.elapsed();
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader);

    // Writes go on after the kill, then the writers stop.
    cluster
        .wait_for("writes acknowledged after the kill", || async {
            (acked_orders() >= before_kill + 50).then_some(())
        })
        .await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    // The old leader restarts from its directory and rejoins as a follower
    // of whichever node leads now (leadership may have moved again).
    cluster.start(old_leader);
    cluster.wait_admin_up(old_leader).await;
    let digest = cluster.converged_digest().await;
    cluster
        .wait_for("the old leader to follow the current one", || async {
            let leader = cluster.leader().await;
            let rejoined = cluster.status(old_leader).await?;
            (rejoined.leader_id == leader && rejoined.state_digest == digest).then_some(())
        })
        .await;

    let acked = std::mem::take(&mut *acked.lock().unwrap());
    for &(account, client_order_id) in &acked.orders {
        assert!(
            has_order(&client, account, client_order_id).await,
            "acknowledged order ({account}, {client_order_id}) was lost"
        );
    }
    for key in &acked.keys {
        assert!(
            client
                .kv_get(key.clone().into_bytes(), Consistency::Linearizable)
                .await
                .unwrap()
                .is_some(),
            "acknowledged key {key} was lost"
        );
    }
    eprintln!(
        "{} orders and {} keys acknowledged, none lost; failover {failover:?}",
        acked.orders.len(),
        acked.keys.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_then_whole_cluster_restart_keeps_everything() {
    let mut cluster = ProcessCluster::new();
    // Small snapshot interval: the new member catches up through a snapshot.
    cluster.env = vec![
        ("MATCHENGINE_SNAPSHOT_INTERVAL_ENTRIES".into(), "50".into()),
        ("MATCHENGINE_SNAPSHOT_LOGS_KEPT_ENTRIES".into(), "0".into()),
    ];
    cluster.bootstrap(&[1, 2, 3]).await;
    cluster.add_instrument(1).await;
    let client = cluster.client();
    for n in 1..=120u64 {
        client
            .place_order(limit(1, 7, n, pb::Side::Buy, 100 + (n % 10) as i64, 1))
            .await
            .unwrap();
        // A put whose outcome is unknown (an election under load) is not
        // retried by the client; the same key and value is safe to repeat.
        cluster
            .wait_for(&format!("put k{n}"), || async {
                client
                    .kv_put(format!("k{n}").into_bytes(), n.to_string().into_bytes())
                    .await
                    .ok()
            })
            .await;
    }

    // Every voter has purged its log below a snapshot, so whichever of them
    // leads when node 4 joins (leadership may move under load), the
    // newcomer can only catch up through one. Snapshots are built in the
    // background, hence the wait.
    for id in [1, 2, 3] {
        cluster
            .wait_for(&format!("node {id} to purge its log"), || async {
                let status = cluster.status(id).await?;
                (status.purged_index > 0).then_some(())
            })
            .await;
    }

    // Add node 4 as a learner; it catches up; promote it; remove node 2.
    cluster.start(4);
    cluster.wait_admin_up(4).await;
    let admin = cluster.admin();
    let cluster_view = admin
        .add_learner(cluster.ports[&4].record(4), true)
        .await
        .unwrap();
    assert!(cluster_view.learners.iter().any(|n| n.node_id == 4));
    let cluster_view = admin.change_membership(vec![4], vec![]).await.unwrap();
    assert!(cluster_view.voters.iter().any(|n| n.node_id == 4));
    let removed = 2;
    if cluster.leader().await == removed {
        admin.transfer_leadership(0, 5_000).await.unwrap();
    }
    let cluster_view = admin
        .change_membership(vec![], vec![removed])
        .await
        .unwrap();
    let voters: BTreeSet<u64> = cluster_view.voters.iter().map(|n| n.node_id).collect();
    assert_eq!(voters, BTreeSet::from([1, 3, 4]));
    cluster.stop(removed);
    // Node 4 caught up through a snapshot sent by the leader, not one it
    // built itself (it would, after 50 entries): the installed-snapshot
    // counter says so. The node counts the install a moment after the
    // leader sees it, hence the wait.
    let metrics_port = cluster.ports[&4].metrics;
    cluster
        .wait_for("node 4 to count a snapshot it installed", || async {
            let metrics = reqwest_metrics(metrics_port).await;
            snapshots_installed(&metrics).filter(|count| *count >= 1)
        })
        .await;
    let digest = cluster.converged_digest().await;

    // Restart every node; all orders and keys are still there.
    for id in cluster.running() {
        assert!(cluster.stop(id).success());
    }
    for id in [1, 3, 4] {
        cluster.start(id);
    }
    cluster.leader().await;
    assert_eq!(cluster.converged_digest().await, digest);
    let client = cluster.client();
    for n in 1..=120u64 {
        assert!(has_order(&client, 7, n).await, "order {n} lost");
        assert_eq!(
            client
                .kv_get(format!("k{n}").into_bytes(), Consistency::Linearizable)
                .await
                .unwrap(),
            Some(n.to_string().into_bytes())
        );
    }
}
