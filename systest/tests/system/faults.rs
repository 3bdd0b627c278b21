//! Fault injection against real node processes on loopback: clients write
//! orders and key-value operations while the test kills and restarts nodes
//! (SIGKILL), kills the leader again and again, pauses nodes longer than
//! the election timeout (SIGSTOP/SIGCONT), and partitions and delays Raft
//! links through a proxy in front of every node. Then it checks that every
//! acknowledged order is there with quantities that add up, every replica
//! reaches the same digest, and the recorded key-value history is
//! linearizable, key by key.
//!
//! Short by default (CI). `MATCHENGINE_FAULTS_SECONDS=300 cargo test
//! --workspace --test system -- faults:: --nocapture` (or `scripts/faults`)
//! runs longer, with more faults; both print a summary table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matchengine_client::client::Consistency;
use matchengine_client::{Client, RetryPolicy, pb};
use matchengine_linearizability::{Answer, Call, Operation, Verdict, check};
use matchengine_systest::{ProcessCluster, has_order, limit};
use tokio::time::Instant;

const KEYS: u64 = 4;
const KV_WORKERS: u64 = 4;
const ORDER_WORKERS: u64 = 2;

#[derive(Default)]
struct Record {
    /// Per key, every KV operation with a known or unknown outcome.
    history: BTreeMap<u64, Vec<Operation>>,
    orders_acked: Vec<(u64, u64)>,
    kv_acked: u64,
    unknown: u64,
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    KillLeader,
    KillFollower,
    PauseLeader,
    PauseFollower,
    IsolateLeader,
    IsolateFollower,
    SlowNetwork,
}

impl Fault {
    fn hits_the_leader(self) -> bool {
        matches!(
            self,
            Fault::KillLeader | Fault::PauseLeader | Fault::IsolateLeader
        )
    }
}

const FAULTS: [Fault; 7] = [
    Fault::KillLeader,
    Fault::PauseFollower,
    Fault::IsolateLeader,
    Fault::SlowNetwork,
    Fault::PauseLeader,
    Fault::IsolateFollower,
    Fault::KillFollower,
];

fn client(cluster: &ProcessCluster) -> Client {
    let addrs = cluster.ports.values().map(|p| p.client_addr()).collect();
    Client::with_policy(
        addrs,
        RetryPolicy {
            deadline: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(2),
            backoff: Duration::from_millis(25),
        },
    )
    .unwrap()
}

fn spawn_kv_worker(
    client: Client,
    worker: u64,
    epoch: Instant,
    stop_at: Instant,
    record: Arc<Mutex<Record>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0u64;
        while Instant::now() < stop_at {
            n += 1;
            let key = (n * 7 + worker) % KEYS;
            let key_bytes = format!("lin/{key}").into_bytes();
            let value = worker * 1_000_000_000 + n;
            let call = match n % 10 {
                0..=4 => Call::Put(value),
                5..=8 => Call::Get,
                _ => Call::Delete,
            };
            let invoked_at = epoch.elapsed().as_nanos() as u64;
            let result: Result<Answer, matchengine_client::ClientError> = match call {
                Call::Put(value) => client
                    .kv_put(key_bytes, value.to_string().into_bytes())
                    .await
                    .map(|existed| Answer::Put { existed }),
                Call::Get => client
                    .kv_get(key_bytes, Consistency::Linearizable)
                    .await
                    .map(|value| {
                        Answer::Get(value.map(|v| String::from_utf8_lossy(&v).parse().unwrap()))
                    }),
                Call::Delete => client
                    .kv_delete(key_bytes)
                    .await
                    .map(|existed| Answer::Delete { existed }),
            };
            let returned_at = epoch.elapsed().as_nanos() as u64;
            let mut record = record.lock().unwrap();
            let returned = match result {
                Ok(answer) => {
                    if !matches!(call, Call::Get) {
                        record.kv_acked += 1;
                    }
                    Some((returned_at, answer))
                }
                // Not applied: as if never sent.
                Err(error) if !error.maybe_applied() || matches!(call, Call::Get) => continue,
                Err(_) => {
                    record.unknown += 1;
                    None
                }
            };
            record.history.entry(key).or_default().push(Operation {
                call,
                invoked_at,
                returned,
            });
        }
    })
}

fn spawn_order_worker(
    client: Client,
    worker: u64,
    stop_at: Instant,
    record: Arc<Mutex<Record>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let account = 500 + worker;
        let mut n = 0u64;
        while Instant::now() < stop_at {
            n += 1;
            let side = if n.is_multiple_of(2) {
                pb::Side::Buy
            } else {
                pb::Side::Sell
            };
            let price = 1_000 + (n % 7) as i64 - 3;
            if client
                .place_order(limit(1, account, n, side, price, 1 + n % 3))
                .await
                .is_ok()
            {
                record.lock().unwrap().orders_acked.push((account, n));
            }
        }
    })
}

async fn inject(cluster: &mut ProcessCluster, fault: Fault, hold: Duration) {
    let leader = cluster.leader().await;
    let all: Vec<u64> = cluster.ports.keys().copied().collect();
    let follower = *all.iter().find(|id| **id != leader).unwrap();
    let others = |node: u64| {
        all.iter()
            .copied()
            .filter(|id| *id != node)
            .collect::<Vec<_>>()
    };
    let network = cluster.network.clone().unwrap();
    let victim = if fault.hits_the_leader() {
        leader
    } else {
        follower
    };
    match fault {
        Fault::KillLeader | Fault::KillFollower => {
            cluster.kill(victim);
            tokio::time::sleep(hold).await;
            cluster.start(victim);
        }
        Fault::PauseLeader | Fault::PauseFollower => {
            cluster.pause(victim);
            tokio::time::sleep(hold).await;
            cluster.resume(victim);
        }
        Fault::IsolateLeader | Fault::IsolateFollower => {
            network.partition(&[victim], &others(victim));
            if matches!(fault, Fault::IsolateLeader) {
                // The cut is real: the majority side elects another leader.
                let majority = others(victim);
                cluster
                    .wait_for("a new leader behind the partition", || async {
                        let status = cluster.status(majority[0]).await?;
                        (status.leader_id != 0 && status.leader_id != victim).then_some(())
                    })
                    .await;
            }
            tokio::time::sleep(hold).await;
            network.heal();
        }
        Fault::SlowNetwork => {
            network.set_delay(Duration::from_millis(40));
            tokio::time::sleep(hold).await;
            network.heal();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_faults_nothing_acknowledged_is_lost_and_kv_is_linearizable() {
    let seconds: u64 = std::env::var("MATCHENGINE_FAULTS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut cluster = ProcessCluster::with_network();
    cluster.bootstrap(&[1, 2, 3]).await;
    cluster.add_instrument(1).await;

    let epoch = Instant::now();
    let stop_at = epoch + Duration::from_secs(seconds);
    let record = Arc::new(Mutex::new(Record::default()));
    let mut workers = Vec::new();
    for worker in 0..KV_WORKERS {
        workers.push(spawn_kv_worker(
            client(&cluster),
            worker,
            epoch,
            stop_at,
            Arc::clone(&record),
        ));
    }
    for worker in 0..ORDER_WORKERS {
        workers.push(spawn_order_worker(
            client(&cluster),
            worker,
            stop_at,
            Arc::clone(&record),
        ));
    }

    // One fault every ~3 s, held longer than an election timeout (600 ms).
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    let mut next = 0;
    tokio::time::sleep(Duration::from_secs(1)).await;
    while Instant::now() + Duration::from_secs(3) < stop_at {
        let fault = FAULTS[next % FAULTS.len()];
        next += 1;
        inject(&mut cluster, fault, Duration::from_millis(1_500)).await;
        *injected.entry(format!("{fault:?}")).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    for worker in workers {
        worker.await.unwrap();
    }

    // Everything heals; every replica converges.
    cluster.network.as_ref().unwrap().heal();
    for id in [1, 2, 3] {
        if !cluster.running().contains(&id) {
            cluster.start(id);
        }
    }
    cluster.leader().await;
    let digest = cluster.converged_digest().await;

    let record = std::mem::take(&mut *record.lock().unwrap());
    let client = cluster.client();
    let mut lost = 0;
    for &(account, client_order_id) in &record.orders_acked {
        let order = client
            .get_order(
                account,
                pb::order_ref::By::ClientOrderId(client_order_id),
                Consistency::Linearizable,
            )
            .await;
        match order {
            Ok(order) => assert_eq!(
                order.quantity_lots,
                order.filled_lots + order.open_lots + order.cancelled_lots,
                "order ({account}, {client_order_id}) quantities do not add up"
            ),
            Err(_) => {
                assert!(!has_order(&client, account, client_order_id).await);
                lost += 1;
            }
        }
    }
    let mut operations = 0;
    for (key, history) in &record.history {
        operations += history.len();
        match check(history, 20_000_000) {
            Verdict::Linearizable => {}
            verdict => panic!("key {key}: {verdict:?}\nhistory: {history:#?}"),
        }
    }

    let faults: u64 = injected.values().sum();
    eprintln!(
        "\n| faults injected | orders acked | KV writes acked | KV outcomes unknown | KV ops checked | lost | replicas converged |\n|---|---:|---:|---:|---:|---:|---|\n| {faults} ({}) | {} | {} | {} | {operations} | {lost} | yes ({digest}) |\n",
        injected
            .iter()
            .map(|(fault, n)| format!("{fault} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        record.orders_acked.len(),
        record.kv_acked,
        record.unknown,
    );
    assert_eq!(lost, 0, "acknowledged orders were lost");
    assert!(faults >= 4, "only {faults} faults injected");
    assert!(!record.orders_acked.is_empty() && record.kv_acked > 0);
}
