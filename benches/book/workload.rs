//! The exchange-core workload shape, generated before timing starts.
//!
//! One or many instruments; 9% GTC, 3% IOC, 6% cancel, 82% move (a replace
//! to a nearby price); about `orders_per_book` resting orders spread over
//! about 750 price levels per book; 1,000 accounts. Generation runs every
//! operation through a MatchEngine engine to know which orders are open, so
//! every cancel and move names a live order, and every engine replays
//! exactly the same operations.

use matchengine_book::builders;
use matchengine_book::{
    AccountId, CancelOrder, ClientOrderId, Command, Engine, EventKind, InstrumentId,
    InstrumentSpec, Limits, OrderId, OrderRef, OrderType, PlaceOrder, ReplaceOrder,
    SelfTradePrevention, Side, TimeInForce,
};

pub const MID_PRICE_TICKS: i64 = 1_000_000;
/// How far behind the opposite best price passive orders are placed: with
/// ~1K resting orders this gives ~700 price levels a book.
const PLACEMENT_SPREAD_TICKS: u64 = 1_200;
const ACCOUNTS: u64 = 1_000;

/// One operation, in a form every engine under test can take.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Place {
        instrument: u32,
        order_id: u64,
        account: u64,
        side: Side,
        price_ticks: i64,
        quantity_lots: u64,
        ioc: bool,
    },
    Cancel {
        instrument: u32,
        order_id: u64,
        account: u64,
    },
    /// Replace to a new price keeping the total quantity; `open_lots` is what
    /// is open before the move (for books that can only cancel and re-add).
    Move {
        instrument: u32,
        order_id: u64,
        account: u64,
        side: Side,
        price_ticks: i64,
        quantity_lots: u64,
        open_lots: u64,
    },
}

pub struct Workload {
    pub name: String,
    pub instruments: u32,
    /// Builds the starting book; not timed.
    pub prefill: Vec<Op>,
    /// The timed operations.
    pub ops: Vec<Op>,
}

/// A small deterministic generator (xorshift64*), so every run and every
/// engine sees the same workload.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

pub fn instrument_spec(instrument: u32) -> InstrumentSpec {
    InstrumentSpec {
        price_ticks_max: 2 * MID_PRICE_TICKS,
        quantity_lots_max: 1_000_000,
        ..builders::instrument(instrument, &format!("I{instrument}"))
    }
}

pub fn bench_limits() -> Limits {
    Limits {
        orders_open_max: 2_000_000,
        finished_orders_retained_max: 100_000,
        ..Limits::default()
    }
}

/// The command MatchEngine executes for an operation.
pub fn to_command(op: &Op) -> Command {
    match *op {
        Op::Place {
            instrument,
            order_id,
            account,
            side,
            price_ticks,
            quantity_lots,
            ioc,
        } => Command::Place(PlaceOrder {
            instrument: InstrumentId(instrument),
            account: AccountId(account),
            // One client order id per order: the order id is unique already.
            client_order_id: ClientOrderId(order_id),
            side,
            order_type: OrderType::Limit {
                price_ticks,
                time_in_force: if ioc {
                    TimeInForce::Ioc
                } else {
                    TimeInForce::Gtc
                },
            },
            quantity_lots,
            self_trade_prevention: SelfTradePrevention::None,
        }),
        Op::Cancel {
            order_id, account, ..
        } => Command::Cancel(CancelOrder {
            account: AccountId(account),
            order: OrderRef::OrderId(OrderId(order_id)),
        }),
        Op::Move {
            order_id,
            account,
            price_ticks,
            quantity_lots,
            ..
        } => Command::Replace(ReplaceOrder {
            account: AccountId(account),
            order: OrderRef::OrderId(OrderId(order_id)),
            price_ticks,
            quantity_lots,
        }),
    }
}

/// Tracks open orders per instrument while generating.
struct Generator {
    engine: Engine,
    rng: Rng,
    open: Vec<Vec<(u64, u64)>>,
    open_position: dense::Map,
    events: Vec<matchengine_book::Event>,
    next_order_id: u64,
    timestamp_ns: u64,
}

/// A tiny position index without pulling in a hash crate: order ids are
/// dense, so a Vec indexed by id works.
mod dense {
    #[derive(Default)]
    pub struct Map(Vec<u32>);

    impl Map {
        pub fn set(&mut self, key: u64, value: u32) {
            let index = key as usize;
            if self.0.len() <= index {
                self.0.resize(index + 1, u32::MAX);
            }
            self.0[index] = value;
        }

        pub fn get(&self, key: u64) -> u32 {
            self.0.get(key as usize).copied().unwrap_or(u32::MAX)
        }
    }
}

impl Generator {
    fn new(instruments: u32, seed: u64) -> Generator {
        let mut generator = Generator {
            engine: Engine::new(bench_limits())
                .unwrap_or_else(|error| panic!("bench limits: {error}")),
            rng: Rng::new(seed),
            open: vec![Vec::new(); instruments as usize],
            open_position: dense::Map::default(),
            events: Vec::new(),
            next_order_id: 1,
            timestamp_ns: 0,
        };
        for instrument in 0..instruments {
            let command = Command::AddInstrument(instrument_spec(instrument));
            generator.engine.execute(&command, 0, &mut generator.events);
        }
        generator.events.clear();
        generator
    }

    /// Runs an op through the reference engine and updates the open lists.
    fn apply(&mut self, op: Op) -> Op {
        self.timestamp_ns += 1;
        let reply = self
            .engine
            .execute(&to_command(&op), self.timestamp_ns, &mut self.events);
        assert!(
            reply.result.is_ok(),
            "generated an invalid op {op:?}: {reply:?}"
        );
        if let Op::Place {
            instrument,
            order_id,
            account,
            ..
        } = op
        {
            assert_eq!(order_id, self.next_order_id);
            self.next_order_id += 1;
            let list = &mut self.open[instrument as usize];
            self.open_position.set(order_id, list.len() as u32);
            list.push((order_id, account));
        }
        for event in self.events.drain(..) {
            if let EventKind::OrderDone { order_id, .. } = event.kind {
                let list = &mut self.open[event.instrument.0 as usize];
                let position = self.open_position.get(order_id.0) as usize;
                list.swap_remove(position);
                if let Some(&(moved, _)) = list.get(position) {
                    self.open_position.set(moved, position as u32);
                }
            }
        }
        op
    }

    fn best(&self, instrument: u32, side: Side) -> Option<i64> {
        let top = self.engine.top_of_book(InstrumentId(instrument))?;
        match side {
            Side::Buy => top.bid,
            Side::Sell => top.ask,
        }
        .map(|level| level.price_ticks)
    }

    fn passive_price(&mut self, instrument: u32, side: Side) -> i64 {
        let offset = 1 + self.rng.below(PLACEMENT_SPREAD_TICKS) as i64;
        match side {
            Side::Buy => {
                self.best(instrument, Side::Sell)
                    .unwrap_or(MID_PRICE_TICKS + 1)
                    - offset
            }
            Side::Sell => {
                self.best(instrument, Side::Buy)
                    .unwrap_or(MID_PRICE_TICKS - 1)
                    + offset
            }
        }
    }

    fn aggressive_price(&mut self, instrument: u32, side: Side) -> i64 {
        let reach = self.rng.below(5) as i64;
        match side {
            Side::Buy => self.best(instrument, Side::Sell).unwrap_or(MID_PRICE_TICKS) + reach,
            Side::Sell => self.best(instrument, Side::Buy).unwrap_or(MID_PRICE_TICKS) - reach,
        }
    }

    fn side(&mut self) -> Side {
        if self.rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        }
    }

    fn place(&mut self, instrument: u32, aggressive: bool, ioc: bool) -> Op {
        let side = self.side();
        let price_ticks = if aggressive {
            self.aggressive_price(instrument, side)
        } else {
            self.passive_price(instrument, side)
        };
        Op::Place {
            instrument,
            order_id: self.next_order_id,
            account: self.rng.below(ACCOUNTS),
            side,
            price_ticks,
            quantity_lots: 1 + self.rng.below(if ioc { 200 } else { 100 }),
            ioc,
        }
    }

    fn random_open(&mut self, instrument: u32) -> Option<(u64, u64)> {
        let list = &self.open[instrument as usize];
        if list.is_empty() {
            return None;
        }
        Some(list[self.rng.below(list.len() as u64) as usize])
    }

    fn next_op(&mut self, instrument: u32, orders_per_book: usize) -> Op {
        let open = self.open[instrument as usize].len();
        let roll = self.rng.below(100);
        let op = match roll {
            // 9% GTC (a quarter of them cross), converted to a cancel when
            // the book is over target.
            0..=8 if open <= orders_per_book * 11 / 10 => {
                let aggressive = self.rng.below(4) == 0;
                Some(self.place(instrument, aggressive, false))
            }
            0..=8 => self.cancel(instrument),
            9..=11 => Some(self.place(instrument, true, true)),
            12..=17 if open >= orders_per_book * 9 / 10 => self.cancel(instrument),
            12..=17 => Some(self.place(instrument, false, false)),
            _ => self.move_op(instrument),
        };
        op.unwrap_or_else(|| self.place(instrument, false, false))
    }

    fn cancel(&mut self, instrument: u32) -> Option<Op> {
        let (order_id, account) = self.random_open(instrument)?;
        Some(Op::Cancel {
            instrument,
            order_id,
            account,
        })
    }

    fn move_op(&mut self, instrument: u32) -> Option<Op> {
        let (order_id, account) = self.random_open(instrument)?;
        let view = self.engine.order(OrderId(order_id))?;
        let price_ticks = view.order_type.limit_price_ticks()?;
        // Moves drift prices by a few ticks, mostly towards the market.
        let step = 1 + self.rng.below(8) as i64;
        let towards = self.rng.below(3) != 0;
        let delta = match (view.side, towards) {
            (Side::Buy, true) | (Side::Sell, false) => step,
            _ => -step,
        };
        Some(Op::Move {
            instrument,
            order_id,
            account,
            side: view.side,
            price_ticks: (price_ticks + delta).clamp(1, 2 * MID_PRICE_TICKS),
            quantity_lots: view.quantity_lots,
            open_lots: view.open_lots,
        })
    }
}

/// The exchange-core mix over `instruments` books.
pub fn exchange_core(
    name: &str,
    instruments: u32,
    orders_per_book: usize,
    ops: usize,
    seed: u64,
) -> Workload {
    let mut generator = Generator::new(instruments, seed);
    let mut prefill = Vec::with_capacity(instruments as usize * orders_per_book);
    for instrument in 0..instruments {
        for _ in 0..orders_per_book {
            let op = generator.place(instrument, false, false);
            prefill.push(generator.apply(op));
        }
    }
    let mut timed = Vec::with_capacity(ops);
    for _ in 0..ops {
        let instrument = generator.rng.below(u64::from(instruments)) as u32;
        let op = generator.next_op(instrument, orders_per_book);
        timed.push(generator.apply(op));
    }
    Workload {
        name: name.to_string(),
        instruments,
        prefill,
        ops: timed,
    }
}

/// `orders` passive GTC orders on one instrument: building a deep book.
pub fn book_building(orders: usize, seed: u64) -> Workload {
    let mut rng = Rng::new(seed);
    let ops = (0..orders)
        .map(|index| {
            let side = if rng.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let offset = 1 + rng.below(5_000) as i64;
            Op::Place {
                instrument: 0,
                order_id: index as u64 + 1,
                account: rng.below(ACCOUNTS),
                side,
                price_ticks: match side {
                    Side::Buy => MID_PRICE_TICKS - offset,
                    Side::Sell => MID_PRICE_TICKS + offset,
                },
                quantity_lots: 1 + rng.below(100),
                ioc: false,
            }
        })
        .collect();
    Workload {
        name: format!("book building, {orders} resting orders"),
        instruments: 1,
        prefill: Vec::new(),
        ops,
    }
}
