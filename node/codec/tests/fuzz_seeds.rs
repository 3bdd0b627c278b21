//! The seed corpus of the `command_decoder` fuzz target: valid encoded
//! command batches covering every command and field variant, so that
//! fuzzing starts from input the decoder accepts. The files are committed
//! in fuzz/corpus/command_decoder/; `committed_seeds_are_current` fails
//! when the encoding changes. Regenerate them with
//!
//!   cargo test -p matchengine-codec --test fuzz_seeds -- --ignored
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../book/tests/seed_corpus/mod.rs"]
mod seed_corpus;

use bytes::Bytes;
use matchengine_book::builders;
use matchengine_book::{
    AccountId, CancelOrder, ClientOrderId, Command, InstrumentId, InstrumentSpec, MassCancel,
    OrderId, OrderRef, OrderType, PlaceOrder, ReplaceOrder, SelfTradePrevention, Side, TimeInForce,
};
use matchengine_codec::batch::{CommandBatch, KvCommand, NodeCommand};

/// The leader's clock when the seeds were "proposed".
const TIMESTAMP_NS: u64 = 1_700_000_000_000_000_000;

/// The fuzz target whose corpus these seeds start.
const TARGET: &str = "command_decoder";

fn add_instrument(instrument: u32, symbol: &str, price_ticks: (i64, i64)) -> NodeCommand {
    NodeCommand::Book(Command::AddInstrument(InstrumentSpec {
        price_ticks_min: price_ticks.0,
        price_ticks_max: price_ticks.1,
        ..builders::instrument(instrument, symbol)
    }))
}

fn place(
    account: u64,
    client_order_id: u64,
    side: Side,
    order_type: OrderType,
    self_trade_prevention: SelfTradePrevention,
) -> NodeCommand {
    NodeCommand::Book(Command::Place(PlaceOrder {
        self_trade_prevention,
        ..builders::order(1, account, client_order_id, side, order_type, 5)
    }))
}

fn limit(price_ticks: i64, time_in_force: TimeInForce) -> OrderType {
    OrderType::Limit {
        price_ticks,
        time_in_force,
    }
}

/// Every order type, time in force, side and self-trade prevention.
fn every_order_type() -> Vec<NodeCommand> {
    let order_types = [
        limit(100, TimeInForce::Gtc),
        limit(-7, TimeInForce::Ioc),
        limit(101, TimeInForce::Fok),
        OrderType::PostOnly { price_ticks: 99 },
        OrderType::Market {
            protection_price_ticks: Some(110),
        },
        OrderType::Market {
            protection_price_ticks: None,
        },
    ];
    let stps = [
        SelfTradePrevention::None,
        SelfTradePrevention::CancelTaker,
        SelfTradePrevention::CancelMaker,
        SelfTradePrevention::CancelBoth,
    ];
    order_types
        .into_iter()
        .enumerate()
        .map(|(index, order_type)| {
            let side = if index % 2 == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            place(3, 1 + index as u64, side, order_type, stps[index % 4])
        })
        .collect()
}

/// Cancels and replaces by order id and client order id, mass cancels.
fn order_management() -> Vec<NodeCommand> {
    vec![
        NodeCommand::Book(Command::Cancel(CancelOrder {
            account: AccountId(3),
            order: OrderRef::OrderId(OrderId(2)),
        })),
        NodeCommand::Book(Command::Cancel(CancelOrder {
            account: AccountId(3),
            order: OrderRef::ClientOrderId(ClientOrderId(4)),
        })),
        NodeCommand::Book(Command::Replace(ReplaceOrder {
            account: AccountId(3),
            order: OrderRef::OrderId(OrderId(1)),
            price_ticks: 98,
            quantity_lots: 3,
        })),
        NodeCommand::Book(Command::Replace(ReplaceOrder {
            account: AccountId(4),
            order: OrderRef::ClientOrderId(ClientOrderId(9)),
            price_ticks: -12,
            quantity_lots: 40,
        })),
        NodeCommand::Book(Command::MassCancel(MassCancel {
            account: AccountId(3),
            instrument: Some(InstrumentId(1)),
        })),
        NodeCommand::Book(Command::MassCancel(MassCancel {
            account: AccountId(4),
            instrument: None,
        })),
    ]
}

fn key_value() -> Vec<NodeCommand> {
    vec![
        NodeCommand::Kv(KvCommand::Put {
            key: Bytes::from_static(b"config/fees"),
            value: Bytes::from_static(b"{\"maker_bps\":-1}"),
        }),
        NodeCommand::Kv(KvCommand::Put {
            key: Bytes::from_static(b"empty"),
            value: Bytes::new(),
        }),
        NodeCommand::Kv(KvCommand::Delete {
            key: Bytes::from_static(b"config/fees"),
        }),
    ]
}

/// A session the engine accepts: instruments, a crossing flow, a cancel.
fn trading_session() -> Vec<NodeCommand> {
    let mut commands = vec![
        add_instrument(1, "BTC-USD", (1, 1_000)),
        add_instrument(2, "SPREAD", (-50, 50)),
    ];
    let gtc = |price| limit(price, TimeInForce::Gtc);
    let none = SelfTradePrevention::None;
    commands.extend([
        place(1, 1, Side::Sell, gtc(101), none),
        place(1, 2, Side::Sell, gtc(102), none),
        place(2, 1, Side::Buy, gtc(99), none),
        place(2, 2, Side::Buy, gtc(102), none),
        place(3, 1, Side::Sell, gtc(99), SelfTradePrevention::CancelMaker),
        NodeCommand::Book(Command::Cancel(CancelOrder {
            account: AccountId(1),
            order: OrderRef::ClientOrderId(ClientOrderId(2)),
        })),
    ]);
    commands
}

fn seeds() -> Vec<(&'static str, CommandBatch)> {
    let mixed: Vec<NodeCommand> = trading_session()
        .into_iter()
        .chain(key_value())
        .chain(order_management())
        .collect();
    vec![
        ("seed-empty-batch", CommandBatch::new(TIMESTAMP_NS, &[])),
        (
            "seed-add-instrument",
            CommandBatch::new(TIMESTAMP_NS, &[add_instrument(7, "ETH-EUR", (-5, 500))]),
        ),
        (
            "seed-every-order-type",
            CommandBatch::new(TIMESTAMP_NS, &every_order_type()),
        ),
        (
            "seed-order-management",
            CommandBatch::new(TIMESTAMP_NS, &order_management()),
        ),
        (
            "seed-key-value",
            CommandBatch::new(TIMESTAMP_NS, &key_value()),
        ),
        (
            "seed-trading-session",
            CommandBatch::new(TIMESTAMP_NS, &trading_session()),
        ),
        ("seed-mixed", CommandBatch::new(TIMESTAMP_NS, &mixed)),
    ]
}

#[test]
fn seeds_decode_and_re_encode_to_themselves() {
    for (name, batch) in seeds() {
        let decoded = batch.decode().unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = CommandBatch::new(decoded.timestamp_ns, &decoded.commands);
        assert_eq!(again, batch, "{name}");
        // The fuzzer's max_len (scripts/fuzz) must leave room to grow.
        assert!(batch.encoded().len() < 2_048, "{name}");
    }
}

#[test]
fn committed_seeds_are_current() {
    seed_corpus::assert_current(TARGET, "matchengine-codec", encoded(seeds()));
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus/command_decoder/"]
fn write_seeds() {
    seed_corpus::write(TARGET, encoded(seeds()));
}

fn encoded(seeds: Vec<(&'static str, CommandBatch)>) -> Vec<(&'static str, Vec<u8>)> {
    seeds
        .into_iter()
        .map(|(name, batch)| (name, batch.encoded().to_vec()))
        .collect()
}
