#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Differential property tests: random command sequences over a small
//! universe (a few instruments, accounts, prices and client order ids, tight
//! limits) run through the engine and through the reference model in
//! `tests/model`, which must agree on every reply, every event and every
//! query. Alongside, properties that need no model: event-level quantity
//! bookkeeping, gapless sequences, an uncrossed book, deterministic digests,
//! snapshot round trips and rejected commands leaving no trace.

mod event_audit;
mod model;
mod universe;

use std::collections::BTreeSet;

use event_audit::Tracker;
use matchengine_book::builders;
use matchengine_book::{
    Accepted, AccountId, CancelOrder, CancelReason, ClientOrderId, Command, Engine, Event,
    EventKind, InstrumentId, Limits, OrderId, OrderRef, OrderStatus, OrderType, PlaceOrder,
    RejectReason, ReplaceOrder, Reply, SelfTradePrevention, Side, TimeInForce,
};
use model::Model;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{FileFailurePersistence, TestRunner};
use universe::{
    ACCOUNTS_MAX, CLIENT_ORDER_ID_MAX, Case, INSTRUMENT_IDS, Op, Resolver, case, instrument_spec,
};

const DEPTH_LEVELS_MAX: usize = 8;

fn history(commands: &[Command]) -> String {
    let mut out = String::from("commands so far:\n");
    for (step, command) in commands.iter().enumerate() {
        out.push_str(&format!("  {step:3}: {command:?}\n"));
    }
    out
}

/// The caller's clock is not the engine's business: timestamps jump back
/// and forth and repeat, and must only be echoed.
fn timestamp_ns(step: usize) -> u64 {
    1_000_000 + (step as u64 * 7_919 % 1_000) * 1_000
}

/// The engine's query answers must match the model's; the book must never
/// be crossed; what the engine says about an order must match the events.
/// Client order ids are looked up for `accounts` only, to keep it cheap.
fn check_queries(
    engine: &Engine,
    model: &Model,
    tracker: &Tracker,
    accounts: &[u64],
) -> Result<(), String> {
    for id in INSTRUMENT_IDS {
        if engine.instrument(id) != model.instrument(id) {
            return Err(format!("instrument({id}) differs"));
        }
        let top = engine.top_of_book(id);
        if top != model.top_of_book(id) {
            return Err(format!(
                "top_of_book({id}): engine {top:?}, model {:?}",
                model.top_of_book(id)
            ));
        }
        if let Some(top) = top
            && let (Some(bid), Some(ask)) = (top.bid, top.ask)
            && bid.price_ticks >= ask.price_ticks
        {
            return Err(format!("book {id} is crossed: {top:?}"));
        }
        for levels_max in [2, DEPTH_LEVELS_MAX] {
            let depth = engine.depth(id, levels_max);
            if depth != model.depth(id, levels_max) {
                return Err(format!(
                    "depth({id}, {levels_max}): engine {depth:?}, model {:?}",
                    model.depth(id, levels_max)
                ));
            }
        }
    }
    if engine.open_order_count() != model.open_order_count() {
        return Err(format!(
            "open_order_count: engine {}, model {}",
            engine.open_order_count(),
            model.open_order_count()
        ));
    }
    for id in 0..=tracker.order_id_last + 2 {
        let view = engine.order(OrderId(id));
        if view != model.order(OrderId(id)) {
            return Err(format!(
                "order({id}): engine {view:?}, model {:?}",
                model.order(OrderId(id))
            ));
        }
        if let (Some(view), Some(tracked)) = (view, tracker.orders.get(&OrderId(id))) {
            let agrees = view.quantity_lots == tracked.quantity_lots
                && view.filled_lots == tracked.filled_lots
                && view.open_lots == tracked.open_lots
                && view.cancelled_lots == tracked.cancelled_lots
                && (view.status == OrderStatus::Open) != tracked.done;
            if !agrees {
                return Err(format!(
                    "order({id}) {view:?} disagrees with events {tracked:?}"
                ));
            }
        }
    }
    for &account in accounts {
        for id in 0..=CLIENT_ORDER_ID_MAX {
            let (account, id) = (AccountId(account), ClientOrderId(id));
            let view = engine.order_by_client_id(account, id);
            if view != model.order_by_client_id(account, id) {
                return Err(format!(
                    "order_by_client_id({account}, {id}): engine {view:?}, model {:?}",
                    model.order_by_client_id(account, id)
                ));
            }
        }
    }
    Ok(())
}

/// What one case produced, for the coverage test.
#[derive(Default)]
struct Outcome {
    replies: Vec<Reply>,
    events: Vec<Event>,
}

/// The case's steps: the instruments every case starts with, then the
/// generated ones.
fn steps(case: &Case) -> Vec<Op> {
    let mut ops: Vec<Op> = (0..if case.third_instrument { 3 } else { 2 })
        .map(|slot| Op::AddInstrument { slot, variant: 0 })
        .collect();
    ops.extend(case.ops.iter().cloned());
    ops
}

/// Runs a case through the model alone: what the generator makes happen,
/// whatever the engine does.
fn run_model(case: &Case) -> Outcome {
    let mut model = Model::new(case.limits);
    let mut resolver = Resolver::default();
    let mut outcome = Outcome::default();
    for (step, op) in steps(case).iter().enumerate() {
        let command = resolver.command(op, &model);
        let reply = model.execute(&command, timestamp_ns(step), &mut outcome.events);
        resolver.record(&command, &reply);
        outcome.replies.push(reply);
    }
    outcome
}

/// The accounts whose client order ids a command may have changed.
fn accounts_touched(command: &Command) -> Vec<u64> {
    match command {
        Command::Place(p) => vec![p.account.0],
        Command::Cancel(c) => vec![c.account.0],
        Command::Replace(r) => vec![r.account.0],
        Command::MassCancel(m) => vec![m.account.0],
        Command::AddInstrument(_) => Vec::new(),
    }
}

fn snapshot_round_trip(engine: &Engine) -> Result<Engine, TestCaseError> {
    let mut bytes = Vec::new();
    engine.encode_snapshot(&mut bytes);
    let restored = Engine::decode_snapshot(&bytes)
        .map_err(|e| TestCaseError::fail(format!("decode_snapshot: {e:?}")))?;
    prop_assert_eq!(restored.digest(), engine.digest(), "restored digest");
    Ok(restored)
}

/// One case in progress: the engine under test, the model, the event audit
/// and engines that must behave as the original from their birth on.
struct Run {
    engine: Engine,
    model: Model,
    tracker: Tracker,
    resolver: Resolver,
    commands: Vec<Command>,
    /// The engine's digest after each command.
    digests: Vec<matchengine_digest::StateDigest>,
    /// Restored from a snapshot, or cloned.
    twins: Vec<(&'static str, Engine)>,
}

impl Run {
    fn new(limits: Limits) -> Run {
        Run {
            engine: Engine::new(limits).unwrap(),
            model: Model::new(limits),
            tracker: Tracker::default(),
            resolver: Resolver::default(),
            commands: Vec::new(),
            digests: Vec::new(),
            twins: Vec::new(),
        }
    }

    fn fork(&mut self) -> Result<(), TestCaseError> {
        let restored = snapshot_round_trip(&self.engine)?;
        self.twins.push(("restored", restored));
        self.twins.push(("clone", self.engine.clone()));
        Ok(())
    }

    fn step(&mut self, step: usize, op: &Op) -> Result<(), TestCaseError> {
        let command = self.resolver.command(op, &self.model);
        self.commands.push(command);
        let timestamp_ns = timestamp_ns(step);
        let history = || history(&self.commands);

        let digest_before = self.engine.digest();
        let mut events = Vec::new();
        let reply = self.engine.execute(&command, timestamp_ns, &mut events);
        let mut model_events = Vec::new();
        let model_reply = self
            .model
            .execute(&command, timestamp_ns, &mut model_events);
        prop_assert_eq!(reply, model_reply, "reply at step {}; {}", step, history());
        prop_assert_eq!(
            &events,
            &model_events,
            "events at step {}; {}",
            step,
            history()
        );
        if reply.result.is_err() || reply.replayed {
            prop_assert!(
                events.is_empty(),
                "events of a rejected or replayed command"
            );
            prop_assert_eq!(
                self.engine.digest(),
                digest_before,
                "a rejected or replayed command changed the digest at step {}; {}",
                step,
                history()
            );
        }
        let audit = self.tracker.observe(&events).and_then(|()| {
            let accounts = accounts_touched(&command);
            check_queries(&self.engine, &self.model, &self.tracker, &accounts)
        });
        if let Err(e) = audit {
            prop_assert!(false, "step {}: {}; {}", step, e, history());
        }
        for (name, twin) in &mut self.twins {
            let mut twin_events = Vec::new();
            let twin_reply = twin.execute(&command, timestamp_ns, &mut twin_events);
            prop_assert_eq!(twin_reply, reply, "{} reply at step {}", name, step);
            prop_assert_eq!(&twin_events, &events, "{} events at step {}", name, step);
            prop_assert_eq!(twin.digest(), self.engine.digest(), "{} digest", name);
        }
        self.resolver.record(&command, &reply);
        self.digests.push(self.engine.digest());
        Ok(())
    }
}

fn run_case(case: &Case) -> Result<(), TestCaseError> {
    let mut run = Run::new(case.limits);
    let ops = steps(case);
    let snapshot_at = case.snapshot_at.index(ops.len() + 1);
    for (step, op) in ops.iter().enumerate() {
        if step == snapshot_at {
            run.fork()?;
        }
        run.step(step, op)?;
    }
    if snapshot_at == ops.len() {
        run.fork()?;
    }
    let accounts: Vec<u64> = (1..=ACCOUNTS_MAX).collect();
    for (name, engine) in std::iter::once(("engine", &run.engine))
        .chain(run.twins.iter().map(|(name, twin)| (*name, twin)))
    {
        if let Err(e) = check_queries(engine, &run.model, &run.tracker, &accounts) {
            prop_assert!(false, "{} at the end: {}", name, e);
        }
    }

    // Determinism: the same commands on a fresh engine give the same digest
    // after every step.
    let mut replica = Engine::new(case.limits).unwrap();
    for (step, command) in run.commands.iter().enumerate() {
        replica.execute(command, timestamp_ns(step), &mut Vec::new());
        prop_assert_eq!(
            replica.digest(),
            run.digests[step],
            "replica at step {}",
            step
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Next to this file as `differential.proptest-regressions`; commit it
        // only when it holds a real engine bug.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_model(case in case(200)) {
        run_case(&case)?;
    }
}

// ---------------------------------------------------------------------------
// The generator must keep every path busy, or the differential test proves
// little. Run on a fixed seed so the check is repeatable.

#[test]
fn generated_cases_reach_every_reject_reason_and_cancel_reason() {
    let mut runner = TestRunner::deterministic();
    let strategy = case(200);
    let mut rejects = BTreeSet::new();
    let mut cancels = BTreeSet::new();
    let (mut replayed, mut kept, mut lost, mut trades) = (0, 0, 0, 0);
    for _ in 0..48 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let outcome = run_model(&case);
        for reply in &outcome.replies {
            match reply.result {
                Err(reason) => {
                    rejects.insert(reason.code());
                }
                Ok(_) if reply.replayed => replayed += 1,
                Ok(_) => {}
            }
        }
        for event in &outcome.events {
            match event.kind {
                EventKind::OrderCancelled { reason, .. } => {
                    cancels.insert(reason.as_str());
                }
                EventKind::OrderReplaced { priority_kept, .. } => {
                    if priority_kept {
                        kept += 1;
                    } else {
                        lost += 1;
                    }
                }
                EventKind::Trade { .. } => trades += 1,
                _ => {}
            }
        }
    }
    let missing: Vec<RejectReason> = RejectReason::ALL
        .into_iter()
        .filter(|r| !rejects.contains(&r.code()))
        .collect();
    assert!(missing.is_empty(), "never rejected with {missing:?}");
    let all_cancels = [
        CancelReason::User,
        CancelReason::MassCancel,
        CancelReason::IocRemainder,
        CancelReason::FokUnfilled,
        CancelReason::SelfTrade,
        CancelReason::MarketProtection,
    ];
    let missing: Vec<&str> = all_cancels
        .iter()
        .map(|r| r.as_str())
        .filter(|r| !cancels.contains(r))
        .collect();
    assert!(missing.is_empty(), "never cancelled with {missing:?}");
    assert!(replayed > 0 && kept > 0 && lost > 0 && trades > 100);
}

// ---------------------------------------------------------------------------
// Hand-checked scenarios: the expected events are written out from the
// contract, so the model itself is checked, not only the engine against it.

fn add(slot: u8) -> Command {
    Command::AddInstrument(instrument_spec(slot, 0))
}

fn gtc(price_ticks: i64) -> OrderType {
    OrderType::Limit {
        price_ticks,
        time_in_force: TimeInForce::Gtc,
    }
}

/// Runs `commands` through a fresh engine and a fresh model, which must
/// agree step by step; returns the replies and the events of each command.
fn run_both(limits: Limits, commands: &[Command]) -> (Engine, Vec<(Reply, Vec<EventKind>)>) {
    let mut engine = Engine::new(limits).unwrap();
    let mut model = Model::new(limits);
    let mut tracker = Tracker::default();
    let mut out = Vec::new();
    for (step, command) in commands.iter().enumerate() {
        let (mut engine_events, mut model_events) = (Vec::new(), Vec::new());
        let reply = engine.execute(command, timestamp_ns(step), &mut engine_events);
        let model_reply = model.execute(command, timestamp_ns(step), &mut model_events);
        assert_eq!(reply, model_reply, "reply at step {step}");
        assert_eq!(engine_events, model_events, "events at step {step}");
        tracker.observe(&engine_events).unwrap();
        out.push((reply, engine_events.iter().map(|e| e.kind).collect()));
    }
    (engine, out)
}

fn trade(
    maker: u64,
    maker_account: u64,
    taker: u64,
    taker_account: u64,
    price_ticks: i64,
    quantity_lots: u64,
    aggressor: Side,
) -> EventKind {
    EventKind::Trade {
        maker_order_id: OrderId(maker),
        maker_account: AccountId(maker_account),
        taker_order_id: OrderId(taker),
        taker_account: AccountId(taker_account),
        price_ticks,
        quantity_lots,
        aggressor,
    }
}

fn cancelled(order: u64, account: u64, quantity_lots: u64, reason: CancelReason) -> EventKind {
    EventKind::OrderCancelled {
        order_id: OrderId(order),
        account: AccountId(account),
        quantity_lots,
        reason,
    }
}

fn done(order: u64, account: u64, filled_lots: u64, cancelled_lots: u64) -> EventKind {
    EventKind::OrderDone {
        order_id: OrderId(order),
        account: AccountId(account),
        filled_lots,
        cancelled_lots,
    }
}

fn accepted(order: u64, place: &PlaceOrder) -> EventKind {
    EventKind::OrderAccepted {
        order_id: OrderId(order),
        account: place.account,
        client_order_id: place.client_order_id,
        side: place.side,
        order_type: place.order_type,
        quantity_lots: place.quantity_lots,
        self_trade_prevention: place.self_trade_prevention,
    }
}

#[test]
fn sweep_follows_price_then_time_priority_and_cancels_own_makers() {
    let taker = PlaceOrder {
        self_trade_prevention: SelfTradePrevention::CancelMaker,
        ..builders::order(1, 1, 9, Side::Buy, gtc(101), 7)
    };
    let commands = [
        add(0),
        Command::Place(builders::order(1, 1, 1, Side::Sell, gtc(101), 2)),
        Command::Place(builders::order(1, 2, 1, Side::Sell, gtc(100), 1)),
        Command::Place(builders::order(1, 3, 1, Side::Sell, gtc(101), 3)),
        Command::Place(builders::order(1, 3, 2, Side::Sell, gtc(102), 3)),
        Command::Place(taker),
    ];
    let (engine, out) = run_both(Limits::default(), &commands);
    let (reply, events) = &out[5];
    assert_eq!(reply.result, Ok(Accepted::Order(OrderId(5))));
    let expected = vec![
        accepted(5, &taker),
        trade(2, 2, 5, 1, 100, 1, Side::Buy),
        done(2, 2, 1, 0),
        cancelled(1, 1, 2, CancelReason::SelfTrade),
        done(1, 1, 0, 2),
        trade(3, 3, 5, 1, 101, 3, Side::Buy),
        done(3, 3, 3, 0),
    ];
    assert_eq!(events, &expected);
    // The remaining 3 lots rest at 101; 102 was beyond the limit.
    let top = engine.top_of_book(InstrumentId(1)).unwrap();
    assert_eq!(
        (top.bid.unwrap().price_ticks, top.bid.unwrap().quantity_lots),
        (101, 3)
    );
    assert_eq!(top.ask.unwrap().price_ticks, 102);
}

#[test]
fn fok_market_and_cancel_both_end_as_the_contract_says() {
    let fok = PlaceOrder {
        self_trade_prevention: SelfTradePrevention::CancelTaker,
        ..builders::order(
            1,
            2,
            9,
            Side::Buy,
            OrderType::Limit {
                price_ticks: 101,
                time_in_force: TimeInForce::Fok,
            },
            4,
        )
    };
    let protected = builders::order(
        1,
        3,
        1,
        Side::Buy,
        OrderType::Market {
            protection_price_ticks: Some(100),
        },
        3,
    );
    let both = PlaceOrder {
        self_trade_prevention: SelfTradePrevention::CancelBoth,
        ..builders::order(
            1,
            2,
            8,
            Side::Buy,
            OrderType::Market {
                protection_price_ticks: None,
            },
            5,
        )
    };
    let sweep = builders::order(
        1,
        3,
        2,
        Side::Buy,
        OrderType::Market {
            protection_price_ticks: None,
        },
        5,
    );
    let commands = [
        add(0),
        Command::Place(builders::order(1, 1, 1, Side::Sell, gtc(100), 2)),
        Command::Place(builders::order(1, 2, 1, Side::Sell, gtc(101), 2)),
        // The walk stops at account 2's own order: 2 of 4 lots, unfilled.
        Command::Place(fok),
        // Trades 2 at 100, then 101 is beyond the protection price.
        Command::Place(protected),
        // Account 2's own order is next: cancel it, then the taker.
        Command::Place(both),
        Command::Place(builders::order(1, 1, 2, Side::Sell, gtc(103), 1)),
        // Takes everything, then the side is empty.
        Command::Place(sweep),
    ];
    let (_, out) = run_both(Limits::default(), &commands);
    let events: Vec<&Vec<EventKind>> = out.iter().map(|(_, e)| e).collect();
    assert_eq!(
        events[3],
        &vec![
            accepted(3, &fok),
            cancelled(3, 2, 4, CancelReason::FokUnfilled),
            done(3, 2, 0, 4)
        ]
    );
    assert_eq!(
        events[4],
        &vec![
            accepted(4, &protected),
            trade(1, 1, 4, 3, 100, 2, Side::Buy),
            done(1, 1, 2, 0),
            cancelled(4, 3, 1, CancelReason::MarketProtection),
            done(4, 3, 2, 1),
        ]
    );
    assert_eq!(
        events[5],
        &vec![
            accepted(5, &both),
            cancelled(2, 2, 2, CancelReason::SelfTrade),
            done(2, 2, 0, 2),
            cancelled(5, 2, 5, CancelReason::SelfTrade),
            done(5, 2, 0, 5),
        ]
    );
    assert_eq!(
        events[7],
        &vec![
            accepted(7, &sweep),
            trade(6, 1, 7, 3, 103, 1, Side::Buy),
            done(6, 1, 1, 0),
            cancelled(7, 3, 4, CancelReason::IocRemainder),
            done(7, 3, 1, 4),
        ]
    );
}

#[test]
fn idempotency_window_forgets_the_oldest_finished_order() {
    let limits = Limits {
        finished_orders_retained_max: 1,
        ..Limits::default()
    };
    let ioc = OrderType::Limit {
        price_ticks: 100,
        time_in_force: TimeInForce::Ioc,
    };
    let first = builders::order(1, 1, 1, Side::Buy, ioc, 1);
    let cancel = |account, id| {
        Command::Cancel(CancelOrder {
            account: AccountId(account),
            order: OrderRef::OrderId(OrderId(id)),
        })
    };
    let commands = [
        add(0),
        Command::Place(first),
        Command::Place(first),
        Command::Place(PlaceOrder {
            quantity_lots: 2,
            ..first
        }),
        cancel(1, 1),
        cancel(2, 1),
        Command::Place(builders::order(1, 1, 2, Side::Buy, ioc, 1)),
        Command::Place(first),
        cancel(1, 1),
    ];
    let (engine, out) = run_both(limits, &commands);
    let results: Vec<(Result<Accepted, RejectReason>, bool, usize)> = out
        .iter()
        .map(|(r, e)| (r.result, r.replayed, e.len()))
        .collect();
    let order = |id| Ok(Accepted::Order(OrderId(id)));
    assert_eq!(
        results[1..],
        [
            (order(1), false, 3),
            (order(1), true, 0),
            (Err(RejectReason::DuplicateClientOrderId), false, 0),
            (Err(RejectReason::OrderNotOpen), false, 0),
            (Err(RejectReason::UnknownOrder), false, 0),
            // Order 2 finishes and pushes order 1 out of the window.
            (order(2), false, 3),
            (order(3), false, 3),
            (Err(RejectReason::UnknownOrder), false, 0),
        ]
    );
    assert_eq!(engine.order(OrderId(1)), None);
}

#[test]
fn replace_keeps_priority_only_for_a_decrease_at_the_same_price() {
    let sell_ioc = |client_order_id| {
        Command::Place(builders::order(
            1,
            3,
            client_order_id,
            Side::Sell,
            OrderType::Limit {
                price_ticks: 99,
                time_in_force: TimeInForce::Ioc,
            },
            1,
        ))
    };
    let replace = |account, id, price_ticks, quantity_lots| {
        Command::Replace(ReplaceOrder {
            account: AccountId(account),
            order: OrderRef::OrderId(OrderId(id)),
            price_ticks,
            quantity_lots,
        })
    };
    let commands = [
        add(0),
        Command::Place(builders::order(1, 1, 1, Side::Buy, gtc(99), 5)),
        Command::Place(builders::order(1, 2, 1, Side::Buy, gtc(99), 5)),
        replace(1, 1, 99, 3),
        sell_ioc(1),
        replace(1, 1, 99, 6),
        sell_ioc(2),
        Command::Place(builders::order(1, 3, 3, Side::Sell, gtc(100), 2)),
        // Order 2 has 1 filled; it moves up, crosses and trades as taker.
        replace(2, 2, 100, 5),
    ];
    let (engine, out) = run_both(Limits::default(), &commands);
    let trades: Vec<(u64, u64)> = out
        .iter()
        .flat_map(|(_, e)| e.iter())
        .filter_map(|e| match *e {
            EventKind::Trade {
                maker_order_id,
                taker_order_id,
                ..
            } => Some((maker_order_id.0, taker_order_id.0)),
            _ => None,
        })
        .collect();
    assert_eq!(trades, [(1, 3), (2, 4), (5, 2)]);
    assert_eq!(
        out[8].1[0],
        EventKind::OrderReplaced {
            order_id: OrderId(2),
            account: AccountId(2),
            price_ticks: 100,
            quantity_lots: 5,
            open_lots: 4,
            priority_kept: false,
        }
    );
    let bid = engine.top_of_book(InstrumentId(1)).unwrap().bid.unwrap();
    assert_eq!(
        (bid.price_ticks, bid.quantity_lots, bid.order_count),
        (100, 2, 1)
    );
}

// ---------------------------------------------------------------------------
// Engine bugs found by the differential test, reduced by hand.

/// The contract's check order puts room to rest before post-only. A replace
/// of a post-only order that both needs a new price level at the level
/// limit (not alone at its old level) and would cross must be rejected with
/// `PriceLevelLimitReached`; the engine checks post-only first and answers
/// `WouldTakeLiquidity`.
#[test]
fn replace_checks_the_level_limit_before_post_only() {
    let limits = Limits {
        price_levels_per_side_max: 1,
        ..Limits::default()
    };
    let commands = [
        add(0),
        Command::Place(builders::order(1, 1, 1, Side::Sell, gtc(103), 1)),
        Command::Place(builders::order(
            1,
            2,
            1,
            Side::Sell,
            OrderType::PostOnly { price_ticks: 103 },
            1,
        )),
        Command::Place(builders::order(1, 3, 1, Side::Buy, gtc(97), 1)),
        Command::Replace(ReplaceOrder {
            account: AccountId(2),
            order: OrderRef::OrderId(OrderId(2)),
            price_ticks: 97,
            quantity_lots: 1,
        }),
    ];
    let mut engine = Engine::new(limits).unwrap();
    let mut model = Model::new(limits);
    for (step, command) in commands.iter().enumerate() {
        let mut events = Vec::new();
        let reply = engine.execute(command, timestamp_ns(step), &mut events);
        let model_reply = model.execute(command, timestamp_ns(step), &mut Vec::new());
        assert_eq!(reply, model_reply, "step {step}");
    }
    assert_eq!(model.order(OrderId(2)).unwrap().status, OrderStatus::Open);
}
