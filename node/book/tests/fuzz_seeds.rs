//! The seed corpus of the `book_snapshot` fuzz target: valid snapshots of
//! small books with resting orders on several instruments, so that fuzzing
//! starts from input the decoder accepts instead of stopping at the magic
//! or the checksum. The files are committed in fuzz/corpus/book_snapshot/;
//! `committed_seeds_are_current` fails when the snapshot format changes.
//! Regenerate them with
//!
//!   cargo test -p matchengine-book --test fuzz_seeds -- --ignored
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod seed_corpus;

use matchengine_book::builders;
use matchengine_book::{
    Accepted, AccountId, CancelOrder, Command, Engine, InstrumentSpec, Limits, OrderId, OrderRef,
    OrderType, PlaceOrder, ReplaceOrder, SelfTradePrevention, Side, TimeInForce,
};

/// The fuzz target whose corpus these seeds start.
const TARGET: &str = "book_snapshot";

/// Small bounds, so that a fuzzed count or limit stays near the seeds.
fn small_limits(finished_orders_retained_max: u32) -> Limits {
    Limits {
        instruments_max: 4,
        orders_open_max: 32,
        orders_per_account_max: 8,
        price_levels_per_side_max: 8,
        finished_orders_retained_max,
    }
}

/// Drives an engine with commands that must all be accepted, so that each
/// seed holds exactly the state it is named after.
struct Seed {
    engine: Engine,
    timestamp_ns: u64,
    client_order_id: u64,
}

impl Seed {
    fn new(limits: Limits) -> Seed {
        Seed {
            engine: Engine::new(limits).unwrap(),
            timestamp_ns: 1_700_000_000_000_000_000,
            client_order_id: 0,
        }
    }

    fn execute(&mut self, command: Command) -> Accepted {
        self.timestamp_ns += 1_000;
        let reply = self
            .engine
            .execute(&command, self.timestamp_ns, &mut Vec::new());
        reply
            .result
            .unwrap_or_else(|reason| panic!("{command:?} rejected: {reason:?}"))
    }

    fn add(&mut self, instrument: u32, symbol: &str, price_ticks: (i64, i64)) {
        self.execute(Command::AddInstrument(InstrumentSpec {
            price_ticks_min: price_ticks.0,
            price_ticks_max: price_ticks.1,
            ..builders::instrument(instrument, symbol)
        }));
    }

    fn place(
        &mut self,
        instrument: u32,
        account: u64,
        side: Side,
        order_type: OrderType,
        quantity_lots: u64,
        self_trade_prevention: SelfTradePrevention,
    ) -> OrderId {
        self.client_order_id += 1;
        match self.execute(Command::Place(PlaceOrder {
            self_trade_prevention,
            ..builders::order(
                instrument,
                account,
                self.client_order_id,
                side,
                order_type,
                quantity_lots,
            )
        })) {
            Accepted::Order(order_id) => order_id,
            other => panic!("a place answered {other:?}"),
        }
    }

    fn gtc(&mut self, instrument: u32, account: u64, side: Side, price: i64, lots: u64) -> OrderId {
        let order_type = OrderType::Limit {
            price_ticks: price,
            time_in_force: TimeInForce::Gtc,
        };
        self.place(
            instrument,
            account,
            side,
            order_type,
            lots,
            SelfTradePrevention::None,
        )
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.engine.encode_snapshot(&mut bytes);
        bytes
    }
}

/// Two instruments (one with a negative price band), two levels a side.
fn two_instruments() -> Vec<u8> {
    let mut seed = Seed::new(small_limits(16));
    seed.add(1, "AAA-USD", (1, 1_000));
    seed.add(2, "SPREAD", (-50, 50));
    for (instrument, mid) in [(1, 100), (2, -3)] {
        seed.gtc(instrument, 1, Side::Buy, mid - 2, 5);
        seed.gtc(instrument, 2, Side::Buy, mid - 1, 3);
        seed.gtc(instrument, 3, Side::Sell, mid + 1, 4);
        seed.gtc(instrument, 1, Side::Sell, mid + 3, 7);
    }
    seed.snapshot()
}

/// Three instruments, queues of several orders per level, post-only and
/// every self-trade prevention, partly filled resting orders, replaces
/// (kept and lost priority) and finished orders (filled and cancelled).
fn three_instruments_busy() -> Vec<u8> {
    let mut seed = Seed::new(small_limits(16));
    seed.add(1, "AAA", (1, 10_000));
    seed.add(7, "BBB-EUR", (90, 110));
    seed.add(9, "C", (-100, 100));
    let stps = [
        SelfTradePrevention::None,
        SelfTradePrevention::CancelTaker,
        SelfTradePrevention::CancelMaker,
        SelfTradePrevention::CancelBoth,
    ];
    for (index, stp) in stps.into_iter().enumerate() {
        let account = 10 + index as u64;
        let limit = |price_ticks| OrderType::Limit {
            price_ticks,
            time_in_force: TimeInForce::Gtc,
        };
        seed.place(1, account, Side::Buy, limit(500), 10, stp);
        seed.place(1, account, Side::Sell, limit(510), 10, stp);
        seed.place(
            7,
            account,
            Side::Buy,
            OrderType::PostOnly {
                price_ticks: 98 - index as i64,
            },
            4,
            stp,
        );
    }
    let kept = seed.gtc(7, 20, Side::Sell, 102, 6);
    seed.gtc(9, 21, Side::Buy, -5, 2);
    seed.gtc(9, 22, Side::Sell, 5, 2);
    // Partly fills the first ask at 510 and the best bid at 98.
    let ioc = OrderType::Limit {
        price_ticks: 510,
        time_in_force: TimeInForce::Ioc,
    };
    seed.place(1, 30, Side::Buy, ioc, 3, SelfTradePrevention::None);
    let market = OrderType::Market {
        protection_price_ticks: Some(97),
    };
    seed.place(7, 31, Side::Sell, market, 2, SelfTradePrevention::None);
    // A fully filled maker and taker, both remembered as finished.
    let filled = seed.gtc(9, 23, Side::Buy, 0, 1);
    seed.gtc(9, 24, Side::Sell, 0, 1);
    assert!(seed.engine.order(filled).is_some());
    // Replaces: a smaller quantity keeps priority, a new price loses it.
    seed.execute(Command::Replace(ReplaceOrder {
        account: AccountId(20),
        order: OrderRef::OrderId(kept),
        price_ticks: 102,
        quantity_lots: 5,
    }));
    let moved = seed.gtc(1, 25, Side::Buy, 490, 8);
    seed.execute(Command::Replace(ReplaceOrder {
        account: AccountId(25),
        order: OrderRef::OrderId(moved),
        price_ticks: 495,
        quantity_lots: 9,
    }));
    let cancelled = seed.gtc(1, 26, Side::Sell, 600, 3);
    seed.execute(Command::Cancel(CancelOrder {
        account: AccountId(26),
        order: OrderRef::OrderId(cancelled),
    }));
    seed.snapshot()
}

/// A finished-order window that has wrapped: the oldest are forgotten.
fn finished_window_wrapped() -> Vec<u8> {
    let mut seed = Seed::new(small_limits(4));
    seed.add(3, "WRAP", (1, 100));
    seed.add(4, "REST", (1, 100));
    for round in 0..6 {
        seed.gtc(3, 40, Side::Sell, 50, 2);
        let fok = OrderType::Limit {
            price_ticks: 50,
            time_in_force: TimeInForce::Fok,
        };
        seed.place(
            3,
            41 + round % 2,
            Side::Buy,
            fok,
            2,
            SelfTradePrevention::None,
        );
    }
    seed.gtc(4, 40, Side::Buy, 10, 1);
    seed.gtc(4, 41, Side::Sell, 90, 1);
    seed.snapshot()
}

/// Instruments and no order at all: the smallest non-trivial books.
fn instruments_without_orders() -> Vec<u8> {
    let mut seed = Seed::new(small_limits(16));
    seed.add(1, "X", (1, 1));
    seed.add(
        u32::MAX,
        "MAX-ID",
        (-1_000_000_000_000_000, 1_000_000_000_000_000),
    );
    seed.snapshot()
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("seed-two-instruments", two_instruments()),
        ("seed-three-instruments-busy", three_instruments_busy()),
        ("seed-finished-window-wrapped", finished_window_wrapped()),
        (
            "seed-instruments-without-orders",
            instruments_without_orders(),
        ),
    ]
}

#[test]
fn seeds_decode_and_re_encode_to_themselves() {
    for (name, bytes) in seeds() {
        let engine = Engine::decode_snapshot(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(engine.instruments().count() >= 2, "{name}");
        let mut again = Vec::new();
        engine.encode_snapshot(&mut again);
        assert_eq!(again, bytes, "{name}");
        // The fuzzer's max_len (scripts/fuzz) must leave room to grow.
        assert!(bytes.len() < 2_048, "{name} is {} bytes", bytes.len());
    }
    let busy = Engine::decode_snapshot(&three_instruments_busy()).unwrap();
    assert!(busy.open_order_count() >= 10);
}

#[test]
fn committed_seeds_are_current() {
    seed_corpus::assert_current(TARGET, "matchengine-book", seeds());
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus/book_snapshot/"]
fn write_seeds() {
    seed_corpus::write(TARGET, seeds());
}
