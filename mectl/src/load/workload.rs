//! Workloads: what operations to send, generated on the fly.
//!
//! - `ExchangeMix`: the shape of exchange-core's benchmark: 9% GTC (a quarter
//!   of them crossing), 3% IOC, 6% cancel, 82% move (a replace a few ticks
//!   away), over one or many instruments. The generator tracks which of its
//!   orders rest, from the events in each answer.
//! - `OrderEntry`: only new orders, alternating sides at crossing prices, so
//!   most trade at once and the book stays small.
//! - `Batch`: `OrderEntry` orders, `size` per `SubmitBatch` call.
//! - `KvPut` / `KvGet`: fixed-size keys and values over a key space
//!   (`KvGet` reads linearizably).

use std::sync::Mutex;

use crate::load::target::OpOutcome;
use matchengine_client::orders::limit_order;
use matchengine_client::pb;

/// One operation.
#[derive(Clone, Debug)]
pub enum Op {
    Place(pb::PlaceOrder),
    Replace(pb::ReplaceOrder),
    Cancel(pb::CancelOrder),
    Batch(Vec<pb::Command>),
    KvPut { key: Vec<u8>, value: Vec<u8> },
    KvGet { key: Vec<u8> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    ExchangeMix,
    OrderEntry,
    Batch { size: u32 },
    KvPut,
    KvGet,
}

/// The sizes of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Orders go to instruments 1..=instruments.
    pub instruments: u32,
    pub accounts: u64,
    pub key_bytes: usize,
    pub value_bytes: usize,
    /// The key space of the KV workloads.
    pub keys: u64,
}

/// Mid price of every instrument the workloads trade.
pub const MID_PRICE_TICKS: i64 = 100_000;

#[derive(Debug)]
pub struct Workload {
    kind: WorkloadKind,
    /// Instruments 1..=instruments.
    instruments: u32,
    accounts: u64,
    key_bytes: usize,
    value_bytes: usize,
    keys: u64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    rng: u64,
    next_client_order_id: u64,
    /// Orders believed to rest: (instrument, account, order id, side, price).
    resting: Vec<Resting>,
}

#[derive(Clone, Copy, Debug)]
struct Resting {
    account: u64,
    order_id: u64,
    buy: bool,
    price: i64,
}

/// Resting orders the generator keeps track of at most.
const RESTING_TRACKED_MAX: usize = 100_000;

impl State {
    /// splitmix64: small, fast, and good enough for load shapes.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn side(buy: bool) -> pb::Side {
    if buy { pb::Side::Buy } else { pb::Side::Sell }
}

impl Workload {
    /// `seed` varies the stream; `client_order_id_base` keeps ids unique
    /// across runs against the same cluster (e.g. the clock).
    pub fn new(kind: WorkloadKind, shape: Shape, seed: u64, client_order_id_base: u64) -> Workload {
        Workload {
            kind,
            instruments: shape.instruments.max(1),
            accounts: shape.accounts.max(2),
            key_bytes: shape.key_bytes.max(8),
            value_bytes: shape.value_bytes,
            keys: shape.keys.max(1),
            state: Mutex::new(State {
                rng: seed,
                next_client_order_id: client_order_id_base.max(1),
                resting: Vec::new(),
            }),
        }
    }

    pub fn kind(&self) -> WorkloadKind {
        self.kind
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn key(&self, n: u64) -> Vec<u8> {
        let mut key = format!("load/{n:016}").into_bytes();
        key.resize(self.key_bytes, b'.');
        key
    }

    /// The next operation to send.
    pub fn next_op(&self) -> Op {
        let mut state = self.state();
        match self.kind {
            WorkloadKind::ExchangeMix => self.mix_op(&mut state),
            WorkloadKind::OrderEntry => Op::Place(self.crossing_order(&mut state)),
            WorkloadKind::Batch { size } => Op::Batch(
                (0..size.max(1))
                    .map(|_| pb::Command {
                        command: Some(pb::command::Command::Book(pb::BookCommand {
                            command: Some(pb::book_command::Command::Place(
                                self.crossing_order(&mut state),
                            )),
                        })),
                    })
                    .collect(),
            ),
            WorkloadKind::KvPut => {
                let n = state.below(self.keys);
                let fill = (n & 0xff) as u8;
                Op::KvPut {
                    key: self.key(n),
                    value: vec![fill; self.value_bytes],
                }
            }
            WorkloadKind::KvGet => {
                let n = state.below(self.keys);
                Op::KvGet { key: self.key(n) }
            }
        }
    }

    /// The operations that put the keys `KvGet` reads (run them first).
    pub fn preload_ops(&self) -> Vec<Op> {
        match self.kind {
            WorkloadKind::KvGet => (0..self.keys)
                .map(|n| Op::KvPut {
                    key: self.key(n),
                    value: vec![(n & 0xff) as u8; self.value_bytes],
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn crossing_order(&self, state: &mut State) -> pb::PlaceOrder {
        let id = state.next_client_order_id;
        state.next_client_order_id += 1;
        let instrument = 1 + state.below(u64::from(self.instruments)) as u32;
        let account = 1 + state.below(self.accounts);
        // Alternate sides around the mid: every sell meets a resting buy.
        let buy = id.is_multiple_of(2);
        let price = if buy {
            MID_PRICE_TICKS + 1
        } else {
            MID_PRICE_TICKS - 1
        };
        limit_order(
            instrument,
            account,
            id,
            side(buy),
            price,
            1 + state.below(5),
            pb::TimeInForce::Gtc,
        )
    }

    fn mix_op(&self, state: &mut State) -> Op {
        let roll = state.below(100);
        let instrument = 1 + state.below(u64::from(self.instruments)) as u32;
        if roll >= 18 && !state.resting.is_empty() {
            // 82%: move a resting order a few ticks, mostly towards the mid.
            let index = state.below(state.resting.len() as u64) as usize;
            let order = state.resting[index];
            let toward = if order.buy { 1 } else { -1 };
            let step = 1 + state.below(3) as i64;
            let price = if state.below(4) == 0 {
                order.price - toward * step
            } else {
                order.price + toward * step
            };
            state.resting[index].price = price;
            return Op::Replace(pb::ReplaceOrder {
                account: order.account,
                order: Some(pb::OrderRef {
                    by: Some(pb::order_ref::By::OrderId(order.order_id)),
                }),
                price_ticks: price,
                quantity_lots: 10,
            });
        }
        if (12..18).contains(&roll) && !state.resting.is_empty() {
            // 6%: cancel.
            let index = state.below(state.resting.len() as u64) as usize;
            let order = state.resting.swap_remove(index);
            return Op::Cancel(pb::CancelOrder {
                account: order.account,
                order: Some(pb::OrderRef {
                    by: Some(pb::order_ref::By::OrderId(order.order_id)),
                }),
            });
        }
        let id = state.next_client_order_id;
        state.next_client_order_id += 1;
        let account = 1 + state.below(self.accounts);
        let buy = state.below(2) == 0;
        let toward = if buy { 1 } else { -1 };
        if roll < 3 {
            // 3%: IOC that crosses.
            let price = MID_PRICE_TICKS + toward * (1 + state.below(20) as i64);
            return Op::Place(limit_order(
                instrument,
                account,
                id,
                side(buy),
                price,
                1 + state.below(10),
                pb::TimeInForce::Ioc,
            ));
        }
        // 9% (and whatever could not move or cancel): GTC, a quarter crossing.
        let offset = 1 + state.below(50) as i64;
        let price = if state.below(4) == 0 {
            MID_PRICE_TICKS + toward * offset
        } else {
            MID_PRICE_TICKS - toward * offset
        };
        Op::Place(limit_order(
            instrument,
            account,
            id,
            side(buy),
            price,
            10,
            pb::TimeInForce::Gtc,
        ))
    }

    /// Learns from an answer which orders rest.
    pub fn observe(&self, op: &Op, result: &Result<OpOutcome, tonic::Code>) {
        if self.kind != WorkloadKind::ExchangeMix {
            return;
        }
        let mut state = self.state();
        let finished = |outcome: &OpOutcome| {
            outcome.events.iter().any(|event| {
                matches!(&event.kind, Some(pb::event::Kind::OrderDone(done)) if done.order_id == outcome.order_id)
            })
        };
        match (op, result) {
            (Op::Place(order), Ok(outcome)) if outcome.order_id != 0 && !finished(outcome) => {
                let price = match order.order_type.as_ref().and_then(|t| t.kind.as_ref()) {
                    Some(pb::order_type::Kind::Limit(limit)) => limit.price_ticks,
                    _ => return,
                };
                if state.resting.len() < RESTING_TRACKED_MAX {
                    state.resting.push(Resting {
                        account: order.account,
                        order_id: outcome.order_id,
                        buy: order.side == pb::Side::Buy as i32,
                        price,
                    });
                }
            }
            (Op::Replace(_), Ok(outcome)) if outcome.rejected > 0 || finished(outcome) => {
                let id = outcome.order_id;
                if id != 0 {
                    state.resting.retain(|order| order.order_id != id);
                } else if let Op::Replace(replace) = op
                    && let Some(pb::order_ref::By::OrderId(id)) =
                        replace.order.as_ref().and_then(|o| o.by)
                {
                    state.resting.retain(|order| order.order_id != id);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_exchange_core_s_shape() {
        let shape = Shape {
            instruments: 1,
            accounts: 100,
            key_bytes: 16,
            value_bytes: 0,
            keys: 1,
        };
        let workload = Workload::new(WorkloadKind::ExchangeMix, shape, 7, 1);
        // Seed some resting orders so moves and cancels have targets.
        {
            let mut state = workload.state();
            for n in 0..1_000 {
                state.resting.push(Resting {
                    account: 1,
                    order_id: n + 1,
                    buy: n % 2 == 0,
                    price: MID_PRICE_TICKS,
                });
            }
        }
        let (mut places, mut moves, mut cancels) = (0, 0, 0);
        for _ in 0..10_000 {
            match workload.next_op() {
                Op::Place(_) => places += 1,
                Op::Replace(_) => moves += 1,
                Op::Cancel(_) => cancels += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!((7_900..8_500).contains(&moves), "moves {moves}");
        assert!((400..800).contains(&cancels), "cancels {cancels}");
        assert!((1_000..1_500).contains(&places), "places {places}");
    }

    #[test]
    fn kv_keys_have_the_asked_size() {
        let shape = Shape {
            instruments: 1,
            accounts: 2,
            key_bytes: 32,
            value_bytes: 100,
            keys: 10,
        };
        let workload = Workload::new(WorkloadKind::KvPut, shape, 1, 1);
        let Op::KvPut { key, value } = workload.next_op() else {
            panic!("a put");
        };
        assert_eq!((key.len(), value.len()), (32, 100));
        let reads = Workload::new(WorkloadKind::KvGet, shape, 1, 1);
        assert_eq!(reads.preload_ops().len(), 10);
    }
}
