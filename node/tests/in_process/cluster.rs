//! Three nodes in one process on real RocksDB logs: replicas converge to the
//! same state digest, a restarted node recovers its state from its own
//! directory, and a learner added after a log purge catches up through a
//! snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{TestCluster, WAIT, record};
use bytes::Bytes;
use matchengine_book as book;
use matchengine_codec::batch::{KvCommand, NodeCommand};
use matchengine_node::replica::outcome::CommandOutcome;

fn add_instrument() -> NodeCommand {
    NodeCommand::Book(book::builders::add_instrument(1, "BTC-USD"))
}

fn place(account: u64, client: u64, side: book::Side, price_ticks: i64, lots: u64) -> NodeCommand {
    NodeCommand::Book(book::Command::Place(book::PlaceOrder {
        instrument: book::InstrumentId(1),
        account: book::AccountId(account),
        client_order_id: book::ClientOrderId(client),
        side,
        order_type: book::OrderType::Limit {
            price_ticks,
            time_in_force: book::TimeInForce::Gtc,
        },
        quantity_lots: lots,
        self_trade_prevention: book::SelfTradePrevention::None,
    }))
}

fn put(key: String, value: String) -> NodeCommand {
    NodeCommand::Kv(KvCommand::Put {
        key: Bytes::from(key),
        value: Bytes::from(value),
    })
}

/// Writes `batches` batches of orders (crossing every few) and KV puts.
async fn write_load(cluster: &TestCluster, first_batch: u64, batches: u64) -> u64 {
    let mut last = 0;
    for batch in first_batch..first_batch + batches {
        let mut commands = Vec::new();
        for i in 0..10u64 {
            let client = batch * 100 + i;
            let side = if i % 2 == 0 {
                book::Side::Buy
            } else {
                book::Side::Sell
            };
            let price = 1_000 + (i % 5) as i64 - 2;
            commands.push(place(1 + i % 7, client, side, price, 1 + i % 3));
        }
        commands.push(put(format!("key/{batch}"), format!("value-{batch}")));
        let (index, outcome) = cluster.write(batch, &commands).await;
        assert_eq!(
            outcome.outcomes.len(),
            commands.len(),
            "one outcome per command"
        );
        last = index;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_converge_recover_and_catch_up_through_snapshots() {
    let mut cluster = TestCluster::new(100);
    for id in 1..=3 {
        cluster.start(id).await;
    }
    cluster.initialize(&[1, 2, 3]).await;

    let (_, outcome) = cluster.write(1, &[add_instrument()]).await;
    assert!(matches!(
        &outcome.outcomes[0],
        CommandOutcome::Book { reply, .. } if reply.result == Ok(book::Accepted::InstrumentAdded)
    ));
    // A crossing pair: the outcome carries the trade back to the proposer.
    let (_, outcome) = cluster
        .write(
            2,
            &[
                place(1, 1, book::Side::Sell, 500, 5),
                place(2, 1, book::Side::Buy, 500, 2),
            ],
        )
        .await;
    let CommandOutcome::Book { events, .. } = &outcome.outcomes[1] else {
        panic!("book outcome expected");
    };
    assert!(events.iter().any(|e| matches!(
        e.kind,
        book::EventKind::Trade {
            quantity_lots: 2,
            ..
        }
    )));

    let last = write_load(&cluster, 10, 60).await;
    cluster.wait_applied(last).await;
    assert_eq!(
        cluster.digests().len(),
        1,
        "every replica reaches the same digest"
    );
    let digest_before = cluster.digests();

    // Restart a follower from its directory: it recovers the same state.
    let leader = cluster.leader().await;
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    cluster.stop(follower).await;
    let last = write_load(&cluster, 100, 20).await;
    cluster.start(follower).await;
    cluster.wait_applied(last).await;
    assert_eq!(cluster.digests().len(), 1, "the restarted node caught up");
    assert_ne!(cluster.digests(), digest_before);

    // Snapshot and purge on every voter, then add a learner: whichever node
    // leads by then (leadership may move under load), the learner can only
    // catch up from a snapshot, since the log it would need is gone.
    for id in 1..=3 {
        let raft = cluster.nodes[&id].raft.clone();
        raft.trigger().snapshot().await.unwrap();
        let metrics = raft
            .wait(WAIT)
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= last),
                "snapshot built",
            )
            .await
            .unwrap();
        let snapshot_index = metrics.snapshot.map(|s| s.index).unwrap();
        raft.trigger().purge_log(snapshot_index).await.unwrap();
        raft.wait(WAIT)
            .metrics(
                |m| m.purged.is_some_and(|p| p.index >= snapshot_index),
                "log purged",
            )
            .await
            .unwrap();
    }

    cluster.start(4).await;
    // Adding the same learner again is harmless: retried if the node asked
    // is no longer leader.
    for attempt in 1.. {
        let leader = cluster.leader().await;
        match cluster.nodes[&leader]
            .raft
            .add_learner(4, record(4), true)
            .await
        {
            Ok(_) => break,
            Err(error) if attempt < 20 => eprintln!("add learner again after: {error}"),
            Err(error) => panic!("add learner: {error}"),
        }
    }
    let last = write_load(&cluster, 200, 5).await;
    cluster.wait_applied(last).await;
    assert_eq!(
        cluster.digests().len(),
        1,
        "the learner reached the same digest"
    );
    let learner_snapshot = cluster.nodes[&4]
        .state_machine
        .current_snapshot_file()
        .unwrap();
    assert!(
        learner_snapshot.is_some(),
        "the learner installed a snapshot"
    );

    // The learner's state has every key the cluster wrote.
    let learner = &cluster.nodes[&4].state_machine;
    let keys = learner.read(|state| state.kv().len()).unwrap();
    assert_eq!(keys, 60 + 20 + 5);

    // Restart the whole cluster: every node comes back with the same state.
    let digest = cluster.digests();
    for id in 1..=4 {
        cluster.stop(id).await;
    }
    for id in 1..=4 {
        cluster.start(id).await;
    }
    let last = write_load(&cluster, 300, 1).await;
    cluster.wait_applied(last).await;
    assert_eq!(cluster.digests().len(), 1);
    assert_ne!(
        cluster.digests(),
        digest,
        "one more batch applied on top of the recovered state"
    );
    for id in 1..=4 {
        cluster.stop(id).await;
    }
}
