//! A sample order flow through the matching core, printing every trade and
//! cancel as it happens and the final depth of each book.
//!
//! `cargo run --release -p matchengine-book --example demo`

use matchengine_book::{
    AccountId, CancelOrder, ClientOrderId, Command, Depth, Engine, Event, EventKind, InstrumentId,
    InstrumentSpec, Limits, MassCancel, OrderRef, OrderType, PlaceOrder, ReplaceOrder,
    SelfTradePrevention, Side, Symbol, TimeInForce,
};

const BTC: InstrumentId = InstrumentId(1);
const ETH: InstrumentId = InstrumentId(2);

struct Demo {
    engine: Engine,
    events: Vec<Event>,
    timestamp_ns: u64,
    client_order_id: u64,
}

impl Demo {
    fn run(&mut self, label: &str, command: Command) {
        self.timestamp_ns += 1_000;
        self.events.clear();
        let reply = self
            .engine
            .execute(&command, self.timestamp_ns, &mut self.events);
        match reply.result {
            Ok(accepted) => println!(
                "{label:<48} -> accepted {accepted:?}{}",
                if reply.replayed { " (replayed)" } else { "" }
            ),
            Err(reason) => println!("{label:<48} -> rejected: {reason}"),
        }
        for event in &self.events {
            let symbol = self
                .engine
                .instrument(event.instrument)
                .map(|spec| spec.symbol.to_string())
                .unwrap_or_default();
            match event.kind {
                EventKind::Trade {
                    maker_order_id,
                    taker_order_id,
                    price_ticks,
                    quantity_lots,
                    aggressor,
                    ..
                } => println!(
                    "    #{:<3} {symbol} TRADE {quantity_lots} @ {price_ticks} (maker {maker_order_id}, taker {taker_order_id}, aggressor {aggressor:?})",
                    event.sequence
                ),
                EventKind::OrderCancelled {
                    order_id,
                    quantity_lots,
                    reason,
                    ..
                } => println!(
                    "    #{:<3} {symbol} CANCEL order {order_id}: {quantity_lots} lots ({})",
                    event.sequence,
                    reason.as_str()
                ),
                EventKind::OrderReplaced {
                    order_id,
                    price_ticks,
                    quantity_lots,
                    priority_kept,
                    ..
                } => println!(
                    "    #{:<3} {symbol} REPLACE order {order_id}: {quantity_lots} @ {price_ticks} (priority {})",
                    event.sequence,
                    if priority_kept { "kept" } else { "lost" }
                ),
                _ => {}
            }
        }
    }

    fn place(
        &mut self,
        instrument: InstrumentId,
        account: u64,
        side: Side,
        order_type: OrderType,
        quantity_lots: u64,
    ) -> Command {
        self.client_order_id += 1;
        Command::Place(PlaceOrder {
            instrument,
            account: AccountId(account),
            client_order_id: ClientOrderId(self.client_order_id),
            side,
            order_type,
            quantity_lots,
            self_trade_prevention: SelfTradePrevention::CancelTaker,
        })
    }
}

fn gtc(price_ticks: i64) -> OrderType {
    OrderType::Limit {
        price_ticks,
        time_in_force: TimeInForce::Gtc,
    }
}

fn print_depth(symbol: &str, depth: &Depth) {
    println!("\n{symbol} depth (price ticks: lots in orders)");
    for level in depth.asks.iter().rev() {
        println!(
            "    ask {:>8}: {:>5} in {}",
            level.price_ticks, level.quantity_lots, level.order_count
        );
    }
    println!("    ---------------------------");
    for level in &depth.bids {
        println!(
            "    bid {:>8}: {:>5} in {}",
            level.price_ticks, level.quantity_lots, level.order_count
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut demo = Demo {
        engine: Engine::new(Limits::default())?,
        events: Vec::new(),
        timestamp_ns: 0,
        client_order_id: 0,
    };
    for (instrument, symbol, min, max) in [
        (BTC, "BTC-USD", 10_000, 100_000),
        (ETH, "ETH-USD", 1_000, 10_000),
    ] {
        let spec = InstrumentSpec {
            instrument,
            symbol: Symbol::new(symbol).ok_or("bad symbol")?,
            price_ticks_min: min,
            price_ticks_max: max,
            quantity_lots_min: 1,
            quantity_lots_max: 10_000,
        };
        demo.run(
            &format!("add instrument {symbol}"),
            Command::AddInstrument(spec),
        );
    }
    // Market makers quote both books.
    for (account, side, price, lots) in [
        (1, Side::Sell, 50_010, 5),
        (1, Side::Sell, 50_020, 8),
        (2, Side::Sell, 50_010, 3),
        (1, Side::Buy, 49_990, 6),
        (2, Side::Buy, 49_980, 10),
    ] {
        let command = demo.place(BTC, account, side, gtc(price), lots);
        demo.run(
            &format!("acct {account} {side:?} {lots} BTC @ {price} GTC"),
            command,
        );
    }
    let command = demo.place(ETH, 1, Side::Buy, gtc(2_500), 40);
    demo.run("acct 1 Buy 40 ETH @ 2500 GTC", command);
    let command = demo.place(ETH, 2, Side::Sell, gtc(2_510), 25);
    demo.run("acct 2 Sell 25 ETH @ 2510 GTC", command);

    // Takers.
    let command = demo.place(BTC, 3, Side::Buy, gtc(50_015), 7);
    demo.run("acct 3 Buy 7 BTC @ 50015 GTC (crosses)", command);
    let retry = command;
    demo.run("  the same command retried", retry);
    let command = demo.place(
        BTC,
        3,
        Side::Buy,
        OrderType::Limit {
            price_ticks: 50_020,
            time_in_force: TimeInForce::Fok,
        },
        50,
    );
    demo.run("acct 3 Buy 50 BTC @ 50020 FOK (cannot fill)", command);
    let command = demo.place(
        BTC,
        4,
        Side::Sell,
        OrderType::Market {
            protection_price_ticks: Some(49_985),
        },
        20,
    );
    demo.run("acct 4 Sell 20 BTC market, protect 49985", command);
    let command = demo.place(
        BTC,
        1,
        Side::Buy,
        OrderType::PostOnly {
            price_ticks: 50_020,
        },
        1,
    );
    demo.run("acct 1 Buy 1 BTC @ 50020 post-only (crosses)", command);
    let command = demo.place(BTC, 1, Side::Buy, gtc(50_020), 3);
    demo.run("acct 1 Buy 3 BTC @ 50020 (own ask first: STP)", command);

    // Order management.
    demo.run(
        "acct 2 replace its 10 BTC bid to 5 lots",
        Command::Replace(ReplaceOrder {
            account: AccountId(2),
            order: OrderRef::ClientOrderId(ClientOrderId(5)),
            price_ticks: 49_980,
            quantity_lots: 5,
        }),
    );
    demo.run(
        "acct 2 moves the ETH ask to 2500 (crosses)",
        Command::Replace(ReplaceOrder {
            account: AccountId(2),
            order: OrderRef::ClientOrderId(ClientOrderId(7)),
            price_ticks: 2_500,
            quantity_lots: 25,
        }),
    );
    demo.run(
        "acct 9 cancels an order it does not own",
        Command::Cancel(CancelOrder {
            account: AccountId(9),
            order: OrderRef::ClientOrderId(ClientOrderId(1)),
        }),
    );
    demo.run(
        "acct 1 mass-cancels on ETH",
        Command::MassCancel(MassCancel {
            account: AccountId(1),
            instrument: Some(ETH),
        }),
    );

    for (instrument, symbol) in [(BTC, "BTC-USD"), (ETH, "ETH-USD")] {
        print_depth(
            symbol,
            &demo
                .engine
                .depth(instrument, 10)
                .ok_or("unknown instrument")?,
        );
    }
    println!("\nstate digest {}", demo.engine.digest());
    Ok(())
}
