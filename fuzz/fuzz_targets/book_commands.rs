//! The book under arbitrary command streams (decoded from the fuzzer's
//! bytes): never a panic, never a crossed book, a rejected command changes
//! nothing, and a snapshot taken anywhere restores the same digest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matchengine_book::{
    AccountId, ClientOrderId, Command, Engine, InstrumentId, InstrumentSpec, Limits, MassCancel,
    OrderId, OrderRef, OrderType, PlaceOrder, ReplaceOrder, SelfTradePrevention, Side, Symbol,
    TimeInForce,
};

/// Reads the fuzzer's bytes as small numbers.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }
}

fn command(bytes: &mut Bytes<'_>) -> Option<Command> {
    let kind = bytes.next()?;
    let a = bytes.next()?;
    let b = bytes.next()?;
    let c = bytes.next()?;
    let instrument = InstrumentId(u32::from(a % 3));
    let account = AccountId(u64::from(b % 4));
    let side = if c & 1 == 0 { Side::Buy } else { Side::Sell };
    let price = 95 + i64::from(c % 12);
    let quantity = u64::from(a % 9);
    Some(match kind % 8 {
        0 => Command::AddInstrument(InstrumentSpec {
            instrument,
            symbol: Symbol::new("FZ")?,
            price_ticks_min: 90 + i64::from(b % 4),
            price_ticks_max: 100 + i64::from(c % 10),
            quantity_lots_min: 1,
            quantity_lots_max: 5 + u64::from(b % 5),
        }),
        1..=3 => Command::Place(PlaceOrder {
            instrument,
            account,
            client_order_id: ClientOrderId(u64::from(c % 32)),
            side,
            order_type: match kind % 5 {
                0 => OrderType::PostOnly { price_ticks: price },
                1 => OrderType::Market {
                    protection_price_ticks: (b & 2 == 0).then_some(price),
                },
                _ => OrderType::Limit {
                    price_ticks: price,
                    time_in_force: match b % 3 {
                        0 => TimeInForce::Gtc,
                        1 => TimeInForce::Ioc,
                        _ => TimeInForce::Fok,
                    },
                },
            },
            quantity_lots: quantity,
            self_trade_prevention: match a % 4 {
                0 => SelfTradePrevention::None,
                1 => SelfTradePrevention::CancelTaker,
                2 => SelfTradePrevention::CancelMaker,
                _ => SelfTradePrevention::CancelBoth,
            },
        }),
        4 | 5 => Command::Replace(ReplaceOrder {
            account,
            order: OrderRef::OrderId(OrderId(u64::from(c % 40))),
            price_ticks: price,
            quantity_lots: quantity,
        }),
        6 => Command::Cancel(matchengine_book::CancelOrder {
            account,
            order: if a & 1 == 0 {
                OrderRef::OrderId(OrderId(u64::from(c % 40)))
            } else {
                OrderRef::ClientOrderId(ClientOrderId(u64::from(c % 32)))
            },
        }),
        _ => Command::MassCancel(MassCancel {
            account,
            instrument: (b & 1 == 0).then_some(instrument),
        }),
    })
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        instruments_max: 2,
        orders_open_max: 24,
        orders_per_account_max: 8,
        price_levels_per_side_max: 6,
        finished_orders_retained_max: 16,
    };
    let mut engine = Engine::new(limits).expect("valid limits");
    let mut bytes = Bytes(data);
    let mut events = Vec::new();
    let mut time = 0;
    while let Some(command) = command(&mut bytes) {
        time += 1;
        let before = engine.digest();
        events.clear();
        let reply = engine.execute(&command, time, &mut events);
        if reply.result.is_err() {
            assert_eq!(engine.digest(), before, "a rejection changed the state");
            assert!(events.is_empty(), "a rejection emitted events");
        }
        for id in 0..3 {
            if let Some(top) = engine.top_of_book(InstrumentId(id))
                && let (Some(bid), Some(ask)) = (top.bid, top.ask)
            {
                assert!(bid.price_ticks < ask.price_ticks, "crossed book {top:?}");
            }
        }
    }
    let mut snapshot = Vec::new();
    engine.encode_snapshot(&mut snapshot);
    let restored = Engine::decode_snapshot(&snapshot).expect("own snapshot decodes");
    assert_eq!(restored.digest(), engine.digest());
});
