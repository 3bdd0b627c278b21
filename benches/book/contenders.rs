//! The order books under test, each behind the same small interface. Every
//! contender turns operations into its own input form before timing starts.

use std::sync::Arc;

use matchengine_book::{Command, Engine, Event, Side};

use crate::workload::{Op, bench_limits, instrument_spec, to_command};

pub trait Contender {
    const NAME: &'static str;
    type Prepared;

    /// A book for `instruments`, sized for `resting_orders` open at once out
    /// of `total_orders` placed in the run.
    fn new(instruments: u32, resting_orders: usize, total_orders: usize) -> Self;
    fn prepare(op: &Op) -> Self::Prepared;
    fn apply(&mut self, op: &Self::Prepared);
    /// Best bid and best ask of one instrument, in ticks.
    fn top(&self, instrument: u32) -> (Option<i64>, Option<i64>);

    /// A description of the final book, where the engine can give one.
    fn shape(&self, _instruments: u32) -> Option<String> {
        None
    }
}

pub struct MatchEngine {
    pub engine: Engine,
    events: Vec<Event>,
    timestamp_ns: u64,
}

impl Contender for MatchEngine {
    const NAME: &'static str = "matchengine";
    type Prepared = Command;

    fn new(instruments: u32, resting_orders: usize, _total_orders: usize) -> Self {
        let mut engine =
            Engine::new(bench_limits()).unwrap_or_else(|error| panic!("limits: {error}"));
        // As lobster gets its arena capacity up front: room for the peak of
        // resting orders (finished ones free their slots).
        engine.reserve_orders(resting_orders);
        let mut events = Vec::new();
        for instrument in 0..instruments {
            engine.execute(
                &Command::AddInstrument(instrument_spec(instrument)),
                0,
                &mut events,
            );
        }
        events.clear();
        MatchEngine {
            engine,
            events,
            timestamp_ns: 0,
        }
    }

    fn prepare(op: &Op) -> Command {
        to_command(op)
    }

    #[inline]
    fn apply(&mut self, command: &Command) {
        self.timestamp_ns += 1;
        let reply = self
            .engine
            .execute(command, self.timestamp_ns, &mut self.events);
        debug_assert!(reply.result.is_ok(), "{command:?}: {reply:?}");
        // The events are the engine's output, as trades are the peers':
        // produced every time, then dropped.
        self.events.clear();
    }

    fn shape(&self, instruments: u32) -> Option<String> {
        let (mut bid_levels, mut ask_levels, mut spread_ticks) = (0, 0, 0i64);
        for instrument in 0..instruments {
            let depth = self
                .engine
                .depth(matchengine_book::InstrumentId(instrument), usize::MAX)?;
            bid_levels += depth.bids.len();
            ask_levels += depth.asks.len();
            if let (Some(bid), Some(ask)) = (depth.bids.first(), depth.asks.first()) {
                spread_ticks += ask.price_ticks - bid.price_ticks;
            }
        }
        let books = instruments.max(1) as usize;
        Some(format!(
            "final book per instrument: {} resting orders, {} bid and {} ask levels, spread {} ticks",
            self.engine.open_order_count() / books,
            bid_levels / books,
            ask_levels / books,
            spread_ticks / books as i64
        ))
    }

    fn top(&self, instrument: u32) -> (Option<i64>, Option<i64>) {
        let top = self
            .engine
            .top_of_book(matchengine_book::InstrumentId(instrument))
            .unwrap_or_default();
        (
            top.bid.map(|l| l.price_ticks),
            top.ask.map(|l| l.price_ticks),
        )
    }
}

/// lobster 0.7: single-threaded, no IOC and no modify, so IOC is a limit
/// then a cancel unless filled, and a move is a cancel then a new limit with
/// the open quantity (the same id keeps later cancels valid).
pub struct Lobster {
    books: Vec<lobster::OrderBook>,
}

pub enum LobsterOp {
    Limit {
        instrument: usize,
        order: lobster::OrderType,
        ioc: bool,
        id: u128,
    },
    Cancel {
        instrument: usize,
        id: u128,
    },
    Move {
        instrument: usize,
        id: u128,
        order: lobster::OrderType,
    },
}

fn lobster_side(side: Side) -> lobster::Side {
    match side {
        Side::Buy => lobster::Side::Bid,
        Side::Sell => lobster::Side::Ask,
    }
}

impl Contender for Lobster {
    const NAME: &'static str = "lobster 0.7";
    type Prepared = LobsterOp;

    fn new(instruments: u32, _resting_orders: usize, total_orders: usize) -> Self {
        // lobster never frees a filled order's slot: it needs one per order.
        let per_book = total_orders / instruments.max(1) as usize + 1_024;
        Lobster {
            books: (0..instruments)
                .map(|_| lobster::OrderBook::new(per_book, 16, false))
                .collect(),
        }
    }

    fn prepare(op: &Op) -> LobsterOp {
        match *op {
            Op::Place {
                instrument,
                order_id,
                side,
                price_ticks,
                quantity_lots,
                ioc,
                ..
            } => LobsterOp::Limit {
                instrument: instrument as usize,
                order: lobster::OrderType::Limit {
                    id: u128::from(order_id),
                    side: lobster_side(side),
                    qty: quantity_lots,
                    price: price_ticks as u64,
                },
                ioc,
                id: u128::from(order_id),
            },
            Op::Cancel {
                instrument,
                order_id,
                ..
            } => LobsterOp::Cancel {
                instrument: instrument as usize,
                id: u128::from(order_id),
            },
            Op::Move {
                instrument,
                order_id,
                side,
                price_ticks,
                open_lots,
                ..
            } => LobsterOp::Move {
                instrument: instrument as usize,
                id: u128::from(order_id),
                order: lobster::OrderType::Limit {
                    id: u128::from(order_id),
                    side: lobster_side(side),
                    qty: open_lots,
                    price: price_ticks as u64,
                },
            },
        }
    }

    #[inline]
    fn apply(&mut self, op: &LobsterOp) {
        match op {
            LobsterOp::Limit {
                instrument,
                order,
                ioc,
                id,
            } => {
                let book = &mut self.books[*instrument];
                let outcome = book.execute(*order);
                if *ioc && !matches!(outcome, lobster::OrderEvent::Filled { .. }) {
                    book.execute(lobster::OrderType::Cancel { id: *id });
                }
            }
            LobsterOp::Cancel { instrument, id } => {
                self.books[*instrument].execute(lobster::OrderType::Cancel { id: *id });
            }
            LobsterOp::Move {
                instrument,
                id,
                order,
            } => {
                let book = &mut self.books[*instrument];
                book.execute(lobster::OrderType::Cancel { id: *id });
                book.execute(*order);
            }
        }
    }

    fn top(&self, instrument: u32) -> (Option<i64>, Option<i64>) {
        let book = &self.books[instrument as usize];
        (
            book.max_bid().map(|p| p as i64),
            book.min_ask().map(|p| p as i64),
        )
    }
}

/// orderbook-rs 0.15: a concurrent book (locks, skip lists, concurrent
/// maps), driven from one thread here. A move is its own price update.
pub struct OrderbookRs {
    books: Vec<orderbook_rs::OrderBook<()>>,
}

pub enum OrderbookRsOp {
    Limit {
        instrument: usize,
        id: pricelevel::Id,
        price: u128,
        quantity: u64,
        side: pricelevel::Side,
        time_in_force: pricelevel::TimeInForce,
    },
    Cancel {
        instrument: usize,
        id: pricelevel::Id,
    },
    Move {
        instrument: usize,
        update: pricelevel::OrderUpdate,
    },
}

impl Contender for OrderbookRs {
    const NAME: &'static str = "orderbook-rs 0.15";
    type Prepared = OrderbookRsOp;

    fn new(instruments: u32, _resting_orders: usize, _total_orders: usize) -> Self {
        OrderbookRs {
            books: (0..instruments)
                .map(|instrument| {
                    let clock = Arc::new(orderbook_rs::StubClock::new());
                    orderbook_rs::OrderBook::with_clock(&format!("I{instrument}"), clock)
                })
                .collect(),
        }
    }

    fn prepare(op: &Op) -> OrderbookRsOp {
        match *op {
            Op::Place {
                instrument,
                order_id,
                side,
                price_ticks,
                quantity_lots,
                ioc,
                ..
            } => OrderbookRsOp::Limit {
                instrument: instrument as usize,
                id: pricelevel::Id::from_u64(order_id),
                price: price_ticks as u128,
                quantity: quantity_lots,
                side: match side {
                    Side::Buy => pricelevel::Side::Buy,
                    Side::Sell => pricelevel::Side::Sell,
                },
                time_in_force: if ioc {
                    pricelevel::TimeInForce::Ioc
                } else {
                    pricelevel::TimeInForce::Gtc
                },
            },
            Op::Cancel {
                instrument,
                order_id,
                ..
            } => OrderbookRsOp::Cancel {
                instrument: instrument as usize,
                id: pricelevel::Id::from_u64(order_id),
            },
            Op::Move {
                instrument,
                order_id,
                price_ticks,
                ..
            } => OrderbookRsOp::Move {
                instrument: instrument as usize,
                update: pricelevel::OrderUpdate::UpdatePrice {
                    order_id: pricelevel::Id::from_u64(order_id),
                    new_price: pricelevel::Price::new(price_ticks as u128),
                },
            },
        }
    }

    #[inline]
    fn apply(&mut self, op: &OrderbookRsOp) {
        // Results are ignored: an IOC remainder is reported as an error by
        // this crate even though its fills happened.
        match op {
            OrderbookRsOp::Limit {
                instrument,
                id,
                price,
                quantity,
                side,
                time_in_force,
            } => {
                let _ = self.books[*instrument].add_limit_order(
                    *id,
                    *price,
                    *quantity,
                    *side,
                    *time_in_force,
                    None,
                );
            }
            OrderbookRsOp::Cancel { instrument, id } => {
                let _ = self.books[*instrument].cancel_order(*id);
            }
            OrderbookRsOp::Move { instrument, update } => {
                let _ = self.books[*instrument].update_order(*update);
            }
        }
    }

    fn top(&self, instrument: u32) -> (Option<i64>, Option<i64>) {
        let book = &self.books[instrument as usize];
        (
            book.best_bid().map(|p| p as i64),
            book.best_ask().map(|p| p as i64),
        )
    }
}
