//! Bad input against a real 3-node cluster: every malformed, out-of-range
//! or oversized request gets its precise status, and leaves the state as it
//! was. Requests that validation can refuse never reach the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use matchengine_client::{Transport, pb};
use matchengine_proto::metadata;
use matchengine_proto::v1::client_client::ClientClient;
use matchengine_systest::{ProcessCluster, limit};
use tonic::Code;

fn reason(status: &tonic::Status) -> &str {
    status
        .metadata()
        .get(metadata::REJECT_REASON)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn place_with(change: impl FnOnce(&mut pb::PlaceOrder)) -> pb::PlaceOrder {
    let mut order = limit(1, 5, 900, pb::Side::Buy, 100, 1);
    change(&mut order);
    order
}

/// One request's outcome: what it was, its result, the expected status code
/// and reject reason.
type Outcome = (&'static str, Result<(), tonic::Status>, Code, &'static str);

/// Requests that validation refuses: never proposed.
async fn refused_requests(api: &mut ClientClient<Transport>) -> Vec<Outcome> {
    vec![
        (
            "missing side",
            api.place_order(place_with(|o| o.side = 0)).await.map(drop),
            Code::InvalidArgument,
            "",
        ),
        (
            "unknown side value",
            api.place_order(place_with(|o| o.side = 9)).await.map(drop),
            Code::InvalidArgument,
            "",
        ),
        (
            "missing order type",
            api.place_order(place_with(|o| o.order_type = None))
                .await
                .map(drop),
            Code::InvalidArgument,
            "",
        ),
        (
            "zero quantity",
            api.place_order(place_with(|o| o.quantity_lots = 0))
                .await
                .map(drop),
            Code::InvalidArgument,
            "REJECT_REASON_ZERO_QUANTITY",
        ),
        (
            "zero client order id",
            api.place_order(place_with(|o| o.client_order_id = 0))
                .await
                .map(drop),
            Code::InvalidArgument,
            "REJECT_REASON_INVALID_CLIENT_ORDER_ID",
        ),
        (
            "unknown instrument",
            api.place_order(place_with(|o| o.instrument = 77))
                .await
                .map(drop),
            Code::NotFound,
            "REJECT_REASON_UNKNOWN_INSTRUMENT",
        ),
        (
            "price out of band",
            api.place_order(limit(1, 5, 901, pb::Side::Buy, 0, 1))
                .await
                .map(drop),
            Code::InvalidArgument,
            "REJECT_REASON_PRICE_OUT_OF_BAND",
        ),
        (
            "cancel without an order reference",
            api.cancel_order(pb::CancelOrder {
                account: 1,
                order: None,
            })
            .await
            .map(drop),
            Code::InvalidArgument,
            "",
        ),
        (
            "mass cancel of an unknown instrument",
            api.mass_cancel(pb::MassCancel {
                account: 1,
                instrument: Some(78),
            })
            .await
            .map(drop),
            Code::NotFound,
            "REJECT_REASON_UNKNOWN_INSTRUMENT",
        ),
        (
            "empty batch",
            api.submit_batch(pb::SubmitBatchRequest { commands: vec![] })
                .await
                .map(drop),
            Code::InvalidArgument,
            "",
        ),
        (
            "empty key",
            api.kv_put(pb::KvPutRequest {
                key: vec![],
                value: b"v".to_vec(),
            })
            .await
            .map(drop),
            Code::InvalidArgument,
            "",
        ),
        (
            "value over the KV bound",
            api.kv_put(pb::KvPutRequest {
                key: b"k".to_vec(),
                value: vec![0; 65 * 1024],
            })
            .await
            .map(drop),
            Code::InvalidArgument,
            "",
        ),
        (
            "request over the message bound",
            api.kv_put(pb::KvPutRequest {
                key: b"k".to_vec(),
                value: vec![0; 5 * 1024 * 1024],
            })
            .await
            .map(drop),
            Code::ResourceExhausted,
            "",
        ),
        (
            "depth of zero levels",
            api.get_depth(pb::GetDepthRequest {
                instrument: 1,
                levels: 0,
                consistency: 0,
            })
            .await
            .map(drop),
            Code::InvalidArgument,
            "",
        ),
        (
            "depth of an unknown instrument",
            api.get_depth(pb::GetDepthRequest {
                instrument: 79,
                levels: 5,
                consistency: 0,
            })
            .await
            .map(drop),
            Code::NotFound,
            "",
        ),
        (
            "unknown read consistency",
            api.get_top_of_book(pb::GetTopOfBookRequest {
                instrument: 1,
                consistency: 7,
            })
            .await
            .map(drop),
            Code::InvalidArgument,
            "",
        ),
        (
            "missing key",
            api.kv_get(pb::KvGetRequest {
                key: b"absent".to_vec(),
                consistency: 0,
            })
            .await
            .map(drop),
            Code::NotFound,
            "",
        ),
        (
            "range limit over the bound",
            api.kv_range(pb::KvRangeRequest {
                limit: 10_001,
                ..Default::default()
            })
            .await
            .map(drop),
            Code::InvalidArgument,
            "",
        ),
        (
            "unknown order by id",
            api.get_order(pb::GetOrderRequest {
                account: 0,
                order: Some(pb::OrderRef {
                    by: Some(pb::order_ref::By::OrderId(999_999)),
                }),
                consistency: 0,
            })
            .await
            .map(drop),
            Code::NotFound,
            "",
        ),
        (
            "events of an unknown instrument",
            api.stream_events(pb::StreamEventsRequest {
                instrument: 80,
                from_sequence: 1,
            })
            .await
            .map(drop),
            Code::NotFound,
            "",
        ),
        (
            "events from beyond the next sequence",
            api.stream_events(pb::StreamEventsRequest {
                instrument: 1,
                from_sequence: 1_000_000,
            })
            .await
            .map(drop),
            Code::InvalidArgument,
            "",
        ),
    ]
}

/// Requests decided at apply, identically everywhere: rejected, state
/// unchanged. `filled` is an order that has traded in full.
async fn applied_rejections(api: &mut ClientClient<Transport>, filled: u64) -> Vec<Outcome> {
    vec![
        (
            "cancel of an unknown order",
            api.cancel_order(pb::CancelOrder {
                account: 1,
                order: Some(pb::OrderRef {
                    by: Some(pb::order_ref::By::OrderId(999_999)),
                }),
            })
            .await
            .map(drop),
            Code::NotFound,
            "REJECT_REASON_UNKNOWN_ORDER",
        ),
        (
            "the same client order id with other fields",
            api.place_order(limit(1, 3, 1, pb::Side::Sell, 201, 1))
                .await
                .map(drop),
            Code::AlreadyExists,
            "REJECT_REASON_DUPLICATE_CLIENT_ORDER_ID",
        ),
        (
            "replace of a filled order",
            api.replace_order(pb::ReplaceOrder {
                account: 2,
                order: Some(pb::OrderRef {
                    by: Some(pb::order_ref::By::OrderId(filled)),
                }),
                price_ticks: 99,
                quantity_lots: 1,
            })
            .await
            .map(drop),
            Code::FailedPrecondition,
            "REJECT_REASON_ORDER_NOT_OPEN",
        ),
        (
            "post-only that would take",
            api.place_order(pb::PlaceOrder {
                order_type: Some(pb::OrderType {
                    kind: Some(pb::order_type::Kind::PostOnly(pb::PostOnlyOrder {
                        price_ticks: 200,
                    })),
                }),
                ..limit(1, 4, 1, pb::Side::Buy, 200, 1)
            })
            .await
            .map(drop),
            Code::FailedPrecondition,
            "REJECT_REASON_WOULD_TAKE_LIQUIDITY",
        ),
        (
            "delete of a missing key",
            api.kv_delete(pb::KvDeleteRequest {
                key: b"absent".to_vec(),
            })
            .await
            .map(drop),
            Code::NotFound,
            "",
        ),
    ]
}

fn assert_outcomes(outcomes: &[Outcome]) {
    for (what, result, code, reject) in outcomes {
        let status = result.as_ref().expect_err(what);
        assert_eq!(status.code(), *code, "{what}: {status:?}");
        assert_eq!(reason(status), *reject, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_its_status_and_changes_nothing() {
    let mut cluster = ProcessCluster::new();
    cluster.bootstrap(&[1, 2, 3]).await;
    cluster.add_instrument(1).await;
    let client = cluster.client();
    // A filled order, and a resting one, for the apply-time rejections.
    client
        .place_order(limit(1, 1, 1, pb::Side::Sell, 100, 1))
        .await
        .unwrap();
    let filled = client
        .place_order(limit(1, 2, 1, pb::Side::Buy, 100, 1))
        .await
        .unwrap();
    client
        .place_order(limit(1, 3, 1, pb::Side::Sell, 200, 1))
        .await
        .unwrap();
    let before = cluster.converged_digest().await;

    // Both tables go to the leader. An election in between (under load)
    // would add a blank entry to the log and turn leader-checked refusals
    // into FAILED_PRECONDITION, so the tables are sent again, as one unit,
    // until the same node led in the same term from start to end. Every
    // request in them changes nothing, so repeating them is harmless.
    let (leader, mut api, refused, log_before, log_after, applied) = cluster
        .wait_for("the bad requests answered under one leader", || async {
            let leader = cluster.leader().await;
            let start = cluster.status(leader).await?;
            let mut api = client.node(&cluster.ports[&leader].client_addr()).ok()?;
            let refused = refused_requests(&mut api).await;
            let log_after = cluster.status(leader).await?.last_log_index;
            let applied = applied_rejections(&mut api, filled.order_id).await;
            let end = cluster.status(leader).await?;
            (end.term == start.term && end.leader_id == leader).then_some((
                leader,
                api,
                refused,
                start.last_log_index,
                log_after,
                applied,
            ))
        })
        .await;
    assert_outcomes(&refused);
    assert_eq!(log_after, log_before, "a refused request reached the log");
    assert_outcomes(&applied);

    // A batch: each command its own result; invalid ones not proposed.
    let batch = api
        .submit_batch(pb::SubmitBatchRequest {
            commands: vec![
                pb::Command {
                    command: Some(pb::command::Command::Kv(pb::KvCommand {
                        command: Some(pb::kv_command::Command::Delete(pb::KvDelete {
                            key: b"absent".to_vec(),
                        })),
                    })),
                },
                pb::Command { command: None },
                pb::Command {
                    command: Some(pb::command::Command::Book(pb::BookCommand {
                        command: Some(pb::book_command::Command::Place(place_with(|o| {
                            o.quantity_lots = 0
                        }))),
                    })),
                },
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<u32> = batch.results.iter().map(|r| r.code).collect();
    // A KV delete of a missing key says so: existed = false, code OK.
    assert_eq!(
        codes,
        [
            Code::Ok as u32,
            Code::InvalidArgument as u32,
            Code::InvalidArgument as u32
        ]
    );

    assert_eq!(
        cluster.converged_digest().await,
        before,
        "a rejection changed the state"
    );

    // Admin: bad input, and changes sent to a follower.
    let admin = cluster.admin();
    let leader_admin = cluster.ports[&leader].admin_addr();
    let mut raw_admin = matchengine_proto::v1::admin_client::AdminClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{leader_admin}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let status = raw_admin
        .add_learner(pb::AddLearnerRequest {
            node: None,
            wait_caught_up: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = raw_admin
        .add_learner(pb::AddLearnerRequest {
            node: Some(pb::NodeRecord {
                node_id: 9,
                raft_addr: "nowhere".into(),
                client_addr: "127.0.0.1:1".into(),
                admin_addr: "127.0.0.1:2".into(),
            }),
            wait_caught_up: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = admin.change_membership(vec![42], vec![]).await.unwrap_err();
    assert_eq!(status.code(), Some(Code::NotFound));
    let status = admin.initialize(&leader_admin, vec![]).await.unwrap_err();
    assert_eq!(status.code(), Some(Code::FailedPrecondition));
    let status = admin
        .add_instrument(pb::InstrumentSpec {
            price_ticks_max: 10,
            quantity_lots_max: 10,
            ..matchengine_systest::instrument_spec(1, "DUP")
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Some(Code::AlreadyExists));
    let status = admin
        .add_instrument(pb::InstrumentSpec {
            instrument: 2,
            symbol: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Some(Code::InvalidArgument));

    // A change sent to a follower names the leader's admin address. The
    // leader is re-read in the same poll (leadership may move under load),
    // and the request names a node that is not a member, so it could change
    // nothing even if it reached a leader.
    let (leader_admin, status) = cluster
        .wait_for("a follower to refuse a membership change", || async {
            let leader = cluster.leader().await;
            let follower = [1, 2, 3].into_iter().find(|id| *id != leader)?;
            let follower_admin = cluster.ports[&follower].admin_addr();
            let mut follower_api = matchengine_proto::v1::admin_client::AdminClient::new(
                tonic::transport::Endpoint::from_shared(format!("http://{follower_admin}"))
                    .ok()?
                    .connect()
                    .await
                    .ok()?,
            );
            let status = follower_api
                .change_membership(pb::ChangeMembershipRequest {
                    promote: vec![],
                    remove: vec![42],
                })
                .await
                .err()?;
            (cluster.leader().await == leader)
                .then(|| (cluster.ports[&leader].admin_addr(), status))
        })
        .await;
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.metadata().get(metadata::LEADER).unwrap(),
        leader_admin.as_str()
    );
    assert_eq!(cluster.converged_digest().await, before);
}
