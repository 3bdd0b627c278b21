//! One test per order type, edge and limit: the cases a trader would notice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use matchengine_book::builders;
use matchengine_book::{
    Accepted, AccountId, CancelOrder, CancelReason, ClientOrderId, Command, Engine, Event,
    EventKind, InstrumentId, InstrumentSpec, LevelView, Limits, MassCancel, OrderId, OrderRef,
    OrderStatus, OrderType, PlaceOrder, RejectReason, ReplaceOrder, SelfTradePrevention, Side,
    Symbol, TimeInForce,
};

const BTC: InstrumentId = InstrumentId(1);
const ETH: InstrumentId = InstrumentId(2);
const ALICE: AccountId = AccountId(10);
const BOB: AccountId = AccountId(20);
const CAROL: AccountId = AccountId(30);

fn spec(instrument: InstrumentId, symbol: &str) -> InstrumentSpec {
    builders::instrument(instrument.0, symbol)
}

struct Fixture {
    engine: Engine,
    events: Vec<Event>,
    timestamp_ns: u64,
    next_client_order_id: u64,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_limits(Limits::default())
    }

    fn with_limits(limits: Limits) -> Fixture {
        let mut fixture = Fixture {
            engine: Engine::new(limits).unwrap(),
            events: Vec::new(),
            timestamp_ns: 1_000,
            next_client_order_id: 1,
        };
        fixture.ok(Command::AddInstrument(spec(BTC, "BTC-USD")));
        fixture.ok(Command::AddInstrument(spec(ETH, "ETH-USD")));
        fixture
    }

    fn run(&mut self, command: Command) -> matchengine_book::Reply {
        self.events.clear();
        self.timestamp_ns += 1;
        self.engine
            .execute(&command, self.timestamp_ns, &mut self.events)
    }

    fn ok(&mut self, command: Command) -> Accepted {
        let reply = self.run(command);
        reply
            .result
            .unwrap_or_else(|reason| panic!("{command:?} rejected: {reason}"))
    }

    fn reject(&mut self, command: Command) -> RejectReason {
        let digest = self.engine.digest();
        let reply = self.run(command);
        let reason = reply.result.expect_err("expected a rejection");
        assert!(self.events.is_empty(), "a rejection emitted events");
        assert_eq!(
            self.engine.digest(),
            digest,
            "a rejection changed the state"
        );
        reason
    }

    fn place_command(
        &mut self,
        account: AccountId,
        side: Side,
        order_type: OrderType,
        quantity_lots: u64,
        stp: SelfTradePrevention,
    ) -> Command {
        let client_order_id = ClientOrderId(self.next_client_order_id);
        self.next_client_order_id += 1;
        Command::Place(PlaceOrder {
            instrument: BTC,
            account,
            client_order_id,
            side,
            order_type,
            quantity_lots,
            self_trade_prevention: stp,
        })
    }

    fn order(
        &mut self,
        account: AccountId,
        side: Side,
        order_type: OrderType,
        quantity_lots: u64,
    ) -> OrderId {
        self.order_stp(
            account,
            side,
            order_type,
            quantity_lots,
            SelfTradePrevention::None,
        )
    }

    fn order_stp(
        &mut self,
        account: AccountId,
        side: Side,
        order_type: OrderType,
        quantity_lots: u64,
        stp: SelfTradePrevention,
    ) -> OrderId {
        let command = self.place_command(account, side, order_type, quantity_lots, stp);
        match self.ok(command) {
            Accepted::Order(order_id) => order_id,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn gtc(
        &mut self,
        account: AccountId,
        side: Side,
        price_ticks: i64,
        quantity_lots: u64,
    ) -> OrderId {
        self.order(
            account,
            side,
            limit(price_ticks, TimeInForce::Gtc),
            quantity_lots,
        )
    }

    fn kinds(&self) -> Vec<EventKind> {
        self.events.iter().map(|event| event.kind).collect()
    }

    fn trades(&self) -> Vec<(OrderId, i64, u64)> {
        self.events
            .iter()
            .filter_map(|event| match event.kind {
                EventKind::Trade {
                    maker_order_id,
                    price_ticks,
                    quantity_lots,
                    ..
                } => Some((maker_order_id, price_ticks, quantity_lots)),
                _ => None,
            })
            .collect()
    }

    fn cancels(&self) -> Vec<(OrderId, u64, CancelReason)> {
        self.events
            .iter()
            .filter_map(|event| match event.kind {
                EventKind::OrderCancelled {
                    order_id,
                    quantity_lots,
                    reason,
                    ..
                } => Some((order_id, quantity_lots, reason)),
                _ => None,
            })
            .collect()
    }

    fn bid(&self) -> Option<LevelView> {
        self.engine.top_of_book(BTC).unwrap().bid
    }

    fn ask(&self) -> Option<LevelView> {
        self.engine.top_of_book(BTC).unwrap().ask
    }
}

fn limit(price_ticks: i64, time_in_force: TimeInForce) -> OrderType {
    OrderType::Limit {
        price_ticks,
        time_in_force,
    }
}

fn level(price_ticks: i64, quantity_lots: u64, order_count: u32) -> Option<LevelView> {
    Some(LevelView {
        price_ticks,
        quantity_lots,
        order_count,
    })
}

fn cancel(account: AccountId, order_id: OrderId) -> Command {
    Command::Cancel(CancelOrder {
        account,
        order: OrderRef::OrderId(order_id),
    })
}

fn replace(account: AccountId, order_id: OrderId, price_ticks: i64, quantity_lots: u64) -> Command {
    Command::Replace(ReplaceOrder {
        account,
        order: OrderRef::OrderId(order_id),
        price_ticks,
        quantity_lots,
    })
}

#[test]
fn resting_order_is_acknowledged_and_visible() {
    let mut fx = Fixture::new();
    let id = fx.gtc(ALICE, Side::Buy, 100, 5);
    assert!(matches!(fx.kinds()[..], [EventKind::OrderAccepted { .. }]));
    assert_eq!(fx.bid(), level(100, 5, 1));
    let view = fx.engine.order(id).unwrap();
    assert_eq!(
        (view.status, view.open_lots, view.filled_lots),
        (OrderStatus::Open, 5, 0)
    );
    assert_eq!(
        fx.engine.order_by_client_id(ALICE, view.client_order_id),
        Some(view)
    );
}

#[test]
fn exact_fill_finishes_both_orders() {
    let mut fx = Fixture::new();
    let maker = fx.gtc(ALICE, Side::Sell, 100, 5);
    let taker = fx.gtc(BOB, Side::Buy, 100, 5);
    assert_eq!(fx.trades(), vec![(maker, 100, 5)]);
    let kinds = fx.kinds();
    assert!(matches!(
        kinds[..],
        [
            EventKind::OrderAccepted { .. },
            EventKind::Trade {
                aggressor: Side::Buy,
                ..
            },
            EventKind::OrderDone {
                filled_lots: 5,
                cancelled_lots: 0,
                ..
            },
            EventKind::OrderDone {
                filled_lots: 5,
                cancelled_lots: 0,
                ..
            },
        ]
    ));
    assert_eq!(fx.engine.top_of_book(BTC).unwrap(), Default::default());
    assert_eq!(fx.engine.order(maker).unwrap().status, OrderStatus::Filled);
    assert_eq!(fx.engine.order(taker).unwrap().status, OrderStatus::Filled);
    assert_eq!(fx.engine.open_order_count(), 0);
}

#[test]
fn sweep_takes_levels_in_price_then_time_order_at_maker_prices() {
    let mut fx = Fixture::new();
    let a = fx.gtc(ALICE, Side::Sell, 102, 3);
    let b = fx.gtc(ALICE, Side::Sell, 101, 2);
    let c = fx.gtc(CAROL, Side::Sell, 101, 2);
    let d = fx.gtc(CAROL, Side::Sell, 103, 9);
    fx.gtc(BOB, Side::Buy, 102, 10);
    assert_eq!(fx.trades(), vec![(b, 101, 2), (c, 101, 2), (a, 102, 3)]);
    // 3 lots left rest at 102 on the bid; the 103 ask is untouched.
    assert_eq!(fx.bid(), level(102, 3, 1));
    assert_eq!(fx.ask(), level(103, 9, 1));
    assert_eq!(fx.engine.order(d).unwrap().open_lots, 9);
}

#[test]
fn partial_fill_leaves_maker_at_front_with_reduced_size() {
    let mut fx = Fixture::new();
    let first = fx.gtc(ALICE, Side::Buy, 100, 10);
    fx.gtc(CAROL, Side::Buy, 100, 4);
    fx.order(BOB, Side::Sell, limit(100, TimeInForce::Ioc), 3);
    assert_eq!(fx.trades(), vec![(first, 100, 3)]);
    assert_eq!(fx.bid(), level(100, 11, 2));
    fx.order(BOB, Side::Sell, limit(100, TimeInForce::Ioc), 8);
    assert_eq!(fx.trades(), vec![(first, 100, 7), (OrderId(2), 100, 1)]);
}

#[test]
fn ioc_remainder_is_cancelled_and_never_rests() {
    let mut fx = Fixture::new();
    fx.gtc(ALICE, Side::Sell, 100, 2);
    let ioc = fx.order(BOB, Side::Buy, limit(101, TimeInForce::Ioc), 5);
    assert_eq!(fx.cancels(), vec![(ioc, 3, CancelReason::IocRemainder)]);
    assert_eq!(fx.bid(), None);
    let view = fx.engine.order(ioc).unwrap();
    assert_eq!(
        (view.filled_lots, view.cancelled_lots, view.status),
        (2, 3, OrderStatus::Cancelled)
    );
}

#[test]
fn fok_that_cannot_fill_leaves_no_trace_in_the_book() {
    let mut fx = Fixture::new();
    fx.gtc(ALICE, Side::Sell, 100, 2);
    fx.gtc(ALICE, Side::Sell, 102, 2);
    let before = fx.engine.depth(BTC, 10).unwrap();
    let fok = fx.order(BOB, Side::Buy, limit(101, TimeInForce::Fok), 3);
    assert!(fx.trades().is_empty());
    assert_eq!(fx.cancels(), vec![(fok, 3, CancelReason::FokUnfilled)]);
    assert_eq!(fx.engine.depth(BTC, 10).unwrap(), before);
    // Reaching the second level, it fills completely.
    let fok = fx.order(BOB, Side::Buy, limit(102, TimeInForce::Fok), 3);
    assert_eq!(fx.trades().iter().map(|t| t.2).sum::<u64>(), 3);
    assert_eq!(fx.engine.order(fok).unwrap().status, OrderStatus::Filled);
}

#[test]
fn fok_counts_self_trade_prevention_before_deciding() {
    let mut fx = Fixture::new();
    fx.gtc(BOB, Side::Sell, 100, 5);
    fx.gtc(ALICE, Side::Sell, 100, 5);
    // Bob's own order is first: under cancel-taker the FOK cannot fill.
    let command = fx.place_command(
        BOB,
        Side::Buy,
        limit(100, TimeInForce::Fok),
        5,
        SelfTradePrevention::CancelTaker,
    );
    fx.ok(command);
    assert_eq!(fx.cancels()[0].2, CancelReason::FokUnfilled);
    assert_eq!(fx.ask(), level(100, 10, 2));
    // Under cancel-maker it skips its own order, fills from Alice, and
    // cancels its own resting order on the way.
    let command = fx.place_command(
        BOB,
        Side::Buy,
        limit(100, TimeInForce::Fok),
        5,
        SelfTradePrevention::CancelMaker,
    );
    fx.ok(command);
    assert_eq!(fx.cancels()[0].2, CancelReason::SelfTrade);
    assert_eq!(fx.trades().len(), 1);
    assert_eq!(fx.ask(), None);
}

#[test]
fn post_only_is_rejected_if_it_would_take_and_rests_otherwise() {
    let mut fx = Fixture::new();
    fx.gtc(ALICE, Side::Sell, 100, 5);
    let crossing = fx.place_command(
        BOB,
        Side::Buy,
        OrderType::PostOnly { price_ticks: 100 },
        1,
        SelfTradePrevention::None,
    );
    assert_eq!(fx.reject(crossing), RejectReason::WouldTakeLiquidity);
    let id = fx.order(BOB, Side::Buy, OrderType::PostOnly { price_ticks: 99 }, 1);
    assert_eq!(fx.bid(), level(99, 1, 1));
    // A replace that would cross is rejected and leaves the order as it was.
    assert_eq!(
        fx.reject(replace(BOB, id, 100, 1)),
        RejectReason::WouldTakeLiquidity
    );
    assert_eq!(fx.bid(), level(99, 1, 1));
}

#[test]
fn market_order_on_empty_book_is_accepted_then_cancelled() {
    let mut fx = Fixture::new();
    let id = fx.order(
        BOB,
        Side::Buy,
        OrderType::Market {
            protection_price_ticks: None,
        },
        5,
    );
    assert_eq!(fx.cancels(), vec![(id, 5, CancelReason::IocRemainder)]);
    let id = fx.order(
        BOB,
        Side::Buy,
        OrderType::Market {
            protection_price_ticks: Some(110),
        },
        5,
    );
    assert_eq!(fx.cancels(), vec![(id, 5, CancelReason::IocRemainder)]);
}

#[test]
fn market_order_sweeps_a_thin_book_and_cancels_the_rest() {
    let mut fx = Fixture::new();
    fx.gtc(ALICE, Side::Sell, 100, 1);
    fx.gtc(ALICE, Side::Sell, 500, 1);
    let id = fx.order(
        BOB,
        Side::Buy,
        OrderType::Market {
            protection_price_ticks: None,
        },
        5,
    );
    assert_eq!(
        fx.trades().iter().map(|t| t.1).collect::<Vec<_>>(),
        vec![100, 500]
    );
    assert_eq!(fx.cancels(), vec![(id, 3, CancelReason::IocRemainder)]);
}

#[test]
fn market_protection_stops_the_sweep() {
    let mut fx = Fixture::new();
    fx.gtc(ALICE, Side::Sell, 100, 1);
    fx.gtc(ALICE, Side::Sell, 101, 1);
    fx.gtc(ALICE, Side::Sell, 500, 1);
    let id = fx.order(
        BOB,
        Side::Buy,
        OrderType::Market {
            protection_price_ticks: Some(101),
        },
        5,
    );
    assert_eq!(
        fx.trades().iter().map(|t| t.1).collect::<Vec<_>>(),
        vec![100, 101]
    );
    assert_eq!(fx.cancels(), vec![(id, 3, CancelReason::MarketProtection)]);
    assert_eq!(fx.ask(), level(500, 1, 1));
    // A sell market order is protected from below.
    fx.gtc(CAROL, Side::Buy, 90, 1);
    fx.gtc(CAROL, Side::Buy, 50, 1);
    let id = fx.order(
        BOB,
        Side::Sell,
        OrderType::Market {
            protection_price_ticks: Some(60),
        },
        2,
    );
    assert_eq!(fx.trades(), vec![(OrderId(5), 90, 1)]);
    assert_eq!(fx.cancels(), vec![(id, 1, CancelReason::MarketProtection)]);
}

#[test]
fn self_trade_none_trades_with_yourself() {
    let mut fx = Fixture::new();
    let maker = fx.gtc(ALICE, Side::Sell, 100, 2);
    fx.gtc(ALICE, Side::Buy, 100, 2);
    assert_eq!(fx.trades(), vec![(maker, 100, 2)]);
}

#[test]
fn self_trade_cancel_taker_keeps_the_resting_order() {
    let mut fx = Fixture::new();
    let other = fx.gtc(BOB, Side::Sell, 100, 1);
    fx.gtc(ALICE, Side::Sell, 100, 2);
    let taker = fx.order_stp(
        ALICE,
        Side::Buy,
        limit(100, TimeInForce::Gtc),
        5,
        SelfTradePrevention::CancelTaker,
    );
    assert_eq!(fx.trades(), vec![(other, 100, 1)]);
    assert_eq!(fx.cancels(), vec![(taker, 4, CancelReason::SelfTrade)]);
    assert_eq!(fx.ask(), level(100, 2, 1));
    assert_eq!(fx.bid(), None);
}

#[test]
fn self_trade_cancel_maker_removes_own_orders_and_keeps_matching() {
    let mut fx = Fixture::new();
    let own = fx.gtc(ALICE, Side::Sell, 100, 2);
    let other = fx.gtc(BOB, Side::Sell, 100, 3);
    fx.order_stp(
        ALICE,
        Side::Buy,
        limit(100, TimeInForce::Gtc),
        5,
        SelfTradePrevention::CancelMaker,
    );
    assert_eq!(fx.cancels(), vec![(own, 2, CancelReason::SelfTrade)]);
    assert_eq!(fx.trades(), vec![(other, 100, 3)]);
    assert_eq!(fx.bid(), level(100, 2, 1));
}

#[test]
fn self_trade_cancel_both_cancels_maker_and_taker() {
    let mut fx = Fixture::new();
    let own = fx.gtc(ALICE, Side::Sell, 100, 2);
    fx.gtc(BOB, Side::Sell, 100, 3);
    let taker = fx.order_stp(
        ALICE,
        Side::Buy,
        limit(100, TimeInForce::Gtc),
        5,
        SelfTradePrevention::CancelBoth,
    );
    assert_eq!(
        fx.cancels(),
        vec![
            (own, 2, CancelReason::SelfTrade),
            (taker, 5, CancelReason::SelfTrade)
        ]
    );
    assert!(fx.trades().is_empty());
    assert_eq!(fx.ask(), level(100, 3, 1));
}

#[test]
fn replace_down_keeps_priority_and_up_or_price_change_loses_it() {
    let mut fx = Fixture::new();
    let first = fx.gtc(ALICE, Side::Buy, 100, 10);
    let second = fx.gtc(BOB, Side::Buy, 100, 10);
    fx.ok(replace(ALICE, first, 100, 6));
    assert!(matches!(
        fx.kinds()[..],
        [EventKind::OrderReplaced {
            priority_kept: true,
            open_lots: 6,
            ..
        }]
    ));
    assert_eq!(fx.bid(), level(100, 16, 2));
    fx.order(CAROL, Side::Sell, limit(100, TimeInForce::Ioc), 1);
    assert_eq!(
        fx.trades(),
        vec![(first, 100, 1)],
        "decrease kept the front of the queue"
    );

    fx.ok(replace(ALICE, first, 100, 8));
    assert!(matches!(
        fx.kinds()[..],
        [EventKind::OrderReplaced {
            priority_kept: false,
            open_lots: 7,
            ..
        }]
    ));
    fx.order(CAROL, Side::Sell, limit(100, TimeInForce::Ioc), 1);
    assert_eq!(
        fx.trades(),
        vec![(second, 100, 1)],
        "increase went to the back"
    );

    fx.ok(replace(BOB, second, 101, 9));
    fx.ok(replace(BOB, second, 100, 9));
    fx.order(CAROL, Side::Sell, limit(100, TimeInForce::Ioc), 1);
    assert_eq!(
        fx.trades(),
        vec![(first, 100, 1)],
        "a price change went to the back"
    );
}

#[test]
fn replace_to_a_crossing_price_trades_as_taker() {
    let mut fx = Fixture::new();
    let ask = fx.gtc(ALICE, Side::Sell, 105, 3);
    let bid = fx.gtc(BOB, Side::Buy, 100, 5);
    fx.ok(replace(BOB, bid, 105, 5));
    assert_eq!(fx.trades(), vec![(ask, 105, 3)]);
    assert_eq!(fx.bid(), level(105, 2, 1));
    let view = fx.engine.order(bid).unwrap();
    assert_eq!(
        (view.quantity_lots, view.filled_lots, view.open_lots),
        (5, 3, 2)
    );
}

#[test]
fn replace_rejections_are_precise() {
    let mut fx = Fixture::new();
    let id = fx.gtc(ALICE, Side::Buy, 100, 10);
    fx.order(BOB, Side::Sell, limit(100, TimeInForce::Ioc), 4);
    assert_eq!(
        fx.reject(replace(ALICE, id, 100, 10)),
        RejectReason::ReplaceNoChange
    );
    assert_eq!(
        fx.reject(replace(ALICE, id, 100, 4)),
        RejectReason::ReplaceQuantityNotAboveFilled
    );
    assert_eq!(
        fx.reject(replace(ALICE, id, 100, 0)),
        RejectReason::ZeroQuantity
    );
    assert_eq!(
        fx.reject(replace(ALICE, id, 0, 10)),
        RejectReason::PriceOutOfBand
    );
    assert_eq!(
        fx.reject(replace(BOB, id, 100, 8)),
        RejectReason::UnknownOrder
    );
    fx.ok(replace(ALICE, id, 100, 5));
    assert_eq!(fx.engine.order(id).unwrap().open_lots, 1);
}

#[test]
fn cancel_of_unknown_or_finished_order_is_a_clear_rejection() {
    let mut fx = Fixture::new();
    assert_eq!(
        fx.reject(cancel(ALICE, OrderId(999))),
        RejectReason::UnknownOrder
    );
    let id = fx.gtc(ALICE, Side::Buy, 100, 1);
    assert_eq!(
        fx.reject(cancel(BOB, id)),
        RejectReason::UnknownOrder,
        "another account's order"
    );
    assert_eq!(fx.ok(cancel(ALICE, id)), Accepted::Order(id));
    assert_eq!(fx.cancels(), vec![(id, 1, CancelReason::User)]);
    assert_eq!(fx.reject(cancel(ALICE, id)), RejectReason::OrderNotOpen);
    let by_client = Command::Cancel(CancelOrder {
        account: ALICE,
        order: OrderRef::ClientOrderId(ClientOrderId(777)),
    });
    assert_eq!(fx.reject(by_client), RejectReason::UnknownOrder);
}

#[test]
fn cancel_by_client_order_id() {
    let mut fx = Fixture::new();
    let id = fx.gtc(ALICE, Side::Buy, 100, 1);
    let client_order_id = fx.engine.order(id).unwrap().client_order_id;
    let command = Command::Cancel(CancelOrder {
        account: ALICE,
        order: OrderRef::ClientOrderId(client_order_id),
    });
    assert_eq!(fx.ok(command), Accepted::Order(id));
    assert_eq!(fx.bid(), None);
}

#[test]
fn mass_cancel_by_account_and_instrument() {
    let mut fx = Fixture::new();
    let a = fx.gtc(ALICE, Side::Buy, 100, 1);
    let b = fx.gtc(ALICE, Side::Sell, 110, 1);
    fx.gtc(BOB, Side::Buy, 99, 1);
    let eth = Command::Place(PlaceOrder {
        instrument: ETH,
        account: ALICE,
        client_order_id: ClientOrderId(900),
        side: Side::Buy,
        order_type: limit(50, TimeInForce::Gtc),
        quantity_lots: 1,
        self_trade_prevention: SelfTradePrevention::None,
    });
    fx.ok(eth);
    let only_btc = Command::MassCancel(MassCancel {
        account: ALICE,
        instrument: Some(BTC),
    });
    assert_eq!(
        fx.ok(only_btc),
        Accepted::MassCancelled {
            orders_cancelled: 2
        }
    );
    assert_eq!(
        fx.cancels(),
        vec![
            (a, 1, CancelReason::MassCancel),
            (b, 1, CancelReason::MassCancel)
        ]
    );
    assert_eq!(fx.engine.open_order_count(), 2);
    let all = Command::MassCancel(MassCancel {
        account: ALICE,
        instrument: None,
    });
    assert_eq!(
        fx.ok(all),
        Accepted::MassCancelled {
            orders_cancelled: 1
        }
    );
    assert_eq!(
        fx.ok(all),
        Accepted::MassCancelled {
            orders_cancelled: 0
        }
    );
    let unknown = Command::MassCancel(MassCancel {
        account: ALICE,
        instrument: Some(InstrumentId(77)),
    });
    assert_eq!(fx.reject(unknown), RejectReason::UnknownInstrument);
}

#[test]
fn retried_place_returns_the_original_outcome_and_changes_nothing() {
    let mut fx = Fixture::new();
    let command = fx.place_command(
        ALICE,
        Side::Buy,
        limit(100, TimeInForce::Gtc),
        5,
        SelfTradePrevention::None,
    );
    let first = fx.run(command);
    let digest = fx.engine.digest();
    let again = fx.run(command);
    assert_eq!(again.result, first.result);
    assert!(again.replayed && !first.replayed);
    assert!(fx.events.is_empty());
    assert_eq!(fx.engine.digest(), digest);
    assert_eq!(fx.bid(), level(100, 5, 1));
    // Same client order id, different order: a clear rejection.
    let Command::Place(mut changed) = command else {
        unreachable!()
    };
    changed.quantity_lots = 6;
    assert_eq!(
        fx.reject(Command::Place(changed)),
        RejectReason::DuplicateClientOrderId
    );
    // Still remembered after it finished.
    let Ok(Accepted::Order(id)) = first.result else {
        unreachable!()
    };
    fx.ok(cancel(ALICE, id));
    assert!(fx.run(command).replayed);
}

#[test]
fn idempotency_window_forgets_the_oldest_finished_orders() {
    let limits = Limits {
        finished_orders_retained_max: 2,
        ..Limits::default()
    };
    let mut fx = Fixture::with_limits(limits);
    let commands: Vec<Command> = (0..3)
        .map(|_| {
            fx.place_command(
                ALICE,
                Side::Buy,
                limit(100, TimeInForce::Ioc),
                1,
                SelfTradePrevention::None,
            )
        })
        .collect();
    for command in &commands {
        fx.ok(*command);
    }
    // The first finished order fell out of the window: its key is new again.
    let reply = fx.run(commands[0]);
    assert!(!reply.replayed);
    assert_eq!(reply.result, Ok(Accepted::Order(OrderId(4))));
    assert!(fx.run(commands[2]).replayed);
    assert_eq!(fx.engine.order(OrderId(1)), None);
}

#[test]
fn order_entry_validation() {
    let mut fx = Fixture::new();
    let mut place = PlaceOrder {
        instrument: BTC,
        account: ALICE,
        client_order_id: ClientOrderId(5),
        side: Side::Buy,
        order_type: limit(100, TimeInForce::Gtc),
        quantity_lots: 1,
        self_trade_prevention: SelfTradePrevention::None,
    };
    let with = |change: &dyn Fn(&mut PlaceOrder)| {
        let mut copy = place;
        change(&mut copy);
        Command::Place(copy)
    };
    assert_eq!(
        fx.reject(with(&|p| p.instrument = InstrumentId(9))),
        RejectReason::UnknownInstrument
    );
    assert_eq!(
        fx.reject(with(&|p| p.client_order_id = ClientOrderId(0))),
        RejectReason::InvalidClientOrderId
    );
    assert_eq!(
        fx.reject(with(&|p| p.quantity_lots = 0)),
        RejectReason::ZeroQuantity
    );
    assert_eq!(
        fx.reject(with(&|p| p.quantity_lots = 1_001)),
        RejectReason::QuantityAboveMaximum
    );
    assert_eq!(
        fx.reject(with(&|p| p.order_type = limit(0, TimeInForce::Gtc))),
        RejectReason::PriceOutOfBand
    );
    assert_eq!(
        fx.reject(with(&|p| p.order_type = OrderType::Market {
            protection_price_ticks: Some(2_000_000)
        })),
        RejectReason::PriceOutOfBand
    );
    place.quantity_lots = 1;
    fx.ok(Command::Place(place));
}

#[test]
fn quantity_below_instrument_minimum() {
    let mut fx = Fixture::new();
    let spec = InstrumentSpec {
        quantity_lots_min: 10,
        ..spec(InstrumentId(3), "SOL-USD")
    };
    fx.ok(Command::AddInstrument(spec));
    let place = Command::Place(PlaceOrder {
        instrument: InstrumentId(3),
        account: ALICE,
        client_order_id: ClientOrderId(1),
        side: Side::Sell,
        order_type: limit(5, TimeInForce::Gtc),
        quantity_lots: 9,
        self_trade_prevention: SelfTradePrevention::None,
    });
    assert_eq!(fx.reject(place), RejectReason::QuantityBelowMinimum);
}

#[test]
fn instrument_commands_and_limit() {
    let limits = Limits {
        instruments_max: 3,
        ..Limits::default()
    };
    let mut fx = Fixture::with_limits(limits);
    assert_eq!(
        fx.reject(Command::AddInstrument(spec(BTC, "BTC-USD"))),
        RejectReason::InstrumentExists
    );
    let bad_band = InstrumentSpec {
        price_ticks_min: 10,
        price_ticks_max: 9,
        ..spec(InstrumentId(3), "X")
    };
    assert_eq!(
        fx.reject(Command::AddInstrument(bad_band)),
        RejectReason::InvalidPriceBand
    );
    let bad_quantity = InstrumentSpec {
        quantity_lots_min: 0,
        ..spec(InstrumentId(3), "X")
    };
    assert_eq!(
        fx.reject(Command::AddInstrument(bad_quantity)),
        RejectReason::InvalidQuantityRange
    );
    fx.ok(Command::AddInstrument(spec(InstrumentId(3), "SOL-USD")));
    assert!(matches!(
        fx.events[..],
        [Event {
            sequence: 1,
            kind: EventKind::InstrumentAdded { .. },
            ..
        }]
    ));
    assert_eq!(
        fx.reject(Command::AddInstrument(spec(InstrumentId(4), "ADA-USD"))),
        RejectReason::InstrumentLimitReached
    );
    assert_eq!(fx.engine.instruments().count(), 3);
    assert!(Symbol::new("").is_none() && Symbol::new("WAY-TOO-LONG-SYMBOL").is_none());
    assert!(Symbol::new("BTC USD").is_none());
}

#[test]
fn open_order_limits_reject_orders_that_could_rest() {
    let limits = Limits {
        orders_open_max: 3,
        orders_per_account_max: 2,
        ..Limits::default()
    };
    let mut fx = Fixture::with_limits(limits);
    fx.gtc(ALICE, Side::Buy, 100, 1);
    fx.gtc(ALICE, Side::Buy, 99, 1);
    let third = fx.place_command(
        ALICE,
        Side::Buy,
        limit(98, TimeInForce::Gtc),
        1,
        SelfTradePrevention::None,
    );
    assert_eq!(fx.reject(third), RejectReason::AccountOrderLimitReached);
    // An IOC never rests, so the limit does not apply.
    fx.order(ALICE, Side::Sell, limit(200, TimeInForce::Ioc), 1);
    fx.gtc(BOB, Side::Buy, 97, 1);
    let fourth = fx.place_command(
        CAROL,
        Side::Buy,
        limit(96, TimeInForce::Gtc),
        1,
        SelfTradePrevention::None,
    );
    assert_eq!(fx.reject(fourth), RejectReason::EngineOrderLimitReached);
}

#[test]
fn price_level_limit_bounds_each_side() {
    let limits = Limits {
        price_levels_per_side_max: 2,
        ..Limits::default()
    };
    let mut fx = Fixture::with_limits(limits);
    let a = fx.gtc(ALICE, Side::Buy, 100, 1);
    fx.gtc(ALICE, Side::Buy, 99, 1);
    fx.gtc(BOB, Side::Buy, 99, 1);
    let new_level = fx.place_command(
        CAROL,
        Side::Buy,
        limit(98, TimeInForce::Gtc),
        1,
        SelfTradePrevention::None,
    );
    assert_eq!(fx.reject(new_level), RejectReason::PriceLevelLimitReached);
    // The other side has its own bound.
    fx.gtc(CAROL, Side::Sell, 120, 1);
    // Alone at its level, an order may move to a new price.
    fx.ok(replace(ALICE, a, 98, 1));
    assert_eq!(fx.engine.depth(BTC, 5).unwrap().bids.len(), 2);
    let b = fx.gtc(CAROL, Side::Buy, 98, 1);
    assert_eq!(
        fx.reject(replace(CAROL, b, 97, 1)),
        RejectReason::PriceLevelLimitReached
    );
}

#[test]
fn every_order_balances_at_every_event_and_sequences_have_no_gaps() {
    let mut fx = Fixture::new();
    let mut all = Vec::new();
    for round in 0..50i64 {
        let price = 100 + round % 7;
        fx.gtc(ALICE, Side::Sell, price, 1 + (round % 4) as u64);
        all.extend(fx.events.iter().copied());
        fx.gtc(BOB, Side::Buy, 103, 2);
        all.extend(fx.events.iter().copied());
    }
    let btc: Vec<u64> = all
        .iter()
        .filter(|e| e.instrument == BTC)
        .map(|e| e.sequence)
        .collect();
    assert!(btc.windows(2).all(|pair| pair[1] == pair[0] + 1));
    for event in &all {
        if let EventKind::OrderDone {
            order_id,
            filled_lots,
            cancelled_lots,
            ..
        } = event.kind
        {
            let view = fx.engine.order(order_id).unwrap();
            assert_eq!(view.quantity_lots, filled_lots + cancelled_lots);
        }
    }
    for id in 1..fx.engine.limits().orders_open_max as u64 {
        let Some(view) = fx.engine.order(OrderId(id)) else {
            break;
        };
        assert_eq!(
            view.quantity_lots,
            view.filled_lots + view.open_lots + view.cancelled_lots
        );
    }
}

#[test]
fn depth_aggregates_levels_best_first() {
    let mut fx = Fixture::new();
    fx.gtc(ALICE, Side::Buy, 100, 1);
    fx.gtc(BOB, Side::Buy, 100, 2);
    fx.gtc(ALICE, Side::Buy, 98, 3);
    fx.gtc(ALICE, Side::Sell, 105, 4);
    fx.gtc(ALICE, Side::Sell, 103, 5);
    let depth = fx.engine.depth(BTC, 1).unwrap();
    assert_eq!(depth.bids, vec![level(100, 3, 2).unwrap()]);
    assert_eq!(depth.asks, vec![level(103, 5, 1).unwrap()]);
    let depth = fx.engine.depth(BTC, 10).unwrap();
    assert_eq!(
        depth.bids.iter().map(|l| l.price_ticks).collect::<Vec<_>>(),
        vec![100, 98]
    );
    assert_eq!(
        depth.asks.iter().map(|l| l.price_ticks).collect::<Vec<_>>(),
        vec![103, 105]
    );
    assert!(fx.engine.depth(InstrumentId(99), 1).is_none());
}

#[test]
fn negative_prices_are_supported() {
    let mut fx = Fixture::new();
    let spread = InstrumentSpec {
        price_ticks_min: -1_000,
        price_ticks_max: 1_000,
        ..spec(InstrumentId(5), "CAL-SPREAD")
    };
    fx.ok(Command::AddInstrument(spread));
    let place = |account, side, price_ticks, client| {
        Command::Place(PlaceOrder {
            instrument: InstrumentId(5),
            account,
            client_order_id: ClientOrderId(client),
            side,
            order_type: limit(price_ticks, TimeInForce::Gtc),
            quantity_lots: 1,
            self_trade_prevention: SelfTradePrevention::None,
        })
    };
    fx.ok(place(ALICE, Side::Sell, -1, 1));
    fx.ok(place(ALICE, Side::Sell, -3, 2));
    fx.ok(place(BOB, Side::Buy, -4, 3));
    assert!(fx.trades().is_empty());
    assert_eq!(fx.ask(), None, "BTC is untouched");
    let top = fx.engine.top_of_book(InstrumentId(5)).unwrap();
    assert_eq!(
        (top.bid.unwrap().price_ticks, top.ask.unwrap().price_ticks),
        (-4, -3)
    );
    fx.ok(place(BOB, Side::Buy, -1, 4));
    assert_eq!(fx.trades(), vec![(OrderId(2), -3, 1)]);
}
