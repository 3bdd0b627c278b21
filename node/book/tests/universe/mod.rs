//! The small universe the differential tests draw from: a few instruments,
//! accounts, prices and client order ids, and tight limits, so that orders
//! cross, collide, retry and hit every limit often. Generated steps name
//! orders loosely (`the one accepted 3 places ago`) and are resolved into
//! concrete commands against what has happened so far.

use matchengine_book::{
    Accepted, AccountId, CancelOrder, ClientOrderId, Command, InstrumentId, InstrumentSpec, Limits,
    MassCancel, OrderId, OrderRef, OrderType, OrderView, PlaceOrder, ReplaceOrder, Reply,
    SelfTradePrevention, Side, Symbol, TimeInForce,
};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::model::Model;

pub const ACCOUNTS_MAX: u64 = 4;
pub const CLIENT_ORDER_ID_MAX: u64 = 10;
/// Never added: commands naming it must be rejected.
pub const INSTRUMENT_UNKNOWN: InstrumentId = InstrumentId(9);
/// Every instrument id a generated command may name.
pub const INSTRUMENT_IDS: [InstrumentId; 5] = [
    InstrumentId(1),
    InstrumentId(2),
    InstrumentId(3),
    InstrumentId(4),
    INSTRUMENT_UNKNOWN,
];

/// The instrument in `slot` (0..=3), valid (`variant` 0) or with a broken
/// price band (1) or quantity range (2: zero minimum, 3: min > max). Bands sit around 100 ticks so that
/// the generated prices, 92..=108, fall both inside and outside them.
pub fn instrument_spec(slot: u8, variant: u8) -> InstrumentSpec {
    let (symbol, price_ticks_min, price_ticks_max, quantity_lots_min, quantity_lots_max) =
        match slot {
            0 => ("AAA-USD", 95, 105, 1, 15),
            1 => ("BBB-USD", 96, 104, 2, 12),
            2 => ("CCC-USD", 94, 106, 1, 20),
            _ => ("DDD-USD", 95, 105, 1, 15),
        };
    let mut spec = InstrumentSpec {
        instrument: InstrumentId(u32::from(slot) + 1),
        symbol: Symbol::new(symbol).unwrap(),
        price_ticks_min,
        price_ticks_max,
        quantity_lots_min,
        quantity_lots_max,
    };
    match variant {
        1 => spec.price_ticks_min = spec.price_ticks_max + 1,
        2 => spec.quantity_lots_min = 0,
        3 => spec.quantity_lots_min = spec.quantity_lots_max + 1,
        _ => {}
    }
    spec
}

/// One generated step. Order references are resolved against what has
/// happened so far (see [`Resolver`]), so that cancels and replaces mostly
/// name real, recent orders.
#[derive(Clone, Debug)]
pub enum Op {
    AddInstrument {
        slot: u8,
        variant: u8,
    },
    Place(PlaceOrder),
    /// Re-send the place `back` places ago, verbatim.
    Retry {
        back: usize,
    },
    Cancel {
        account: Option<u64>,
        order: RefOp,
    },
    Replace {
        account: Option<u64>,
        order: RefOp,
        price: PriceOp,
        quantity: QuantityOp,
    },
    MassCancel {
        account: u64,
        instrument: Option<InstrumentId>,
    },
}

#[derive(Clone, Copy, Debug)]
pub enum RefOp {
    /// The order accepted `back` acceptances ago, by order id.
    Recent {
        back: usize,
    },
    /// The order accepted `back` acceptances ago, by client order id.
    RecentClientId {
        back: usize,
    },
    /// Any order id, often one never assigned or long forgotten.
    OrderId(u64),
    ClientOrderId(u64),
}

#[derive(Clone, Copy, Debug)]
pub enum PriceOp {
    Same,
    Ticks(i64),
}

#[derive(Clone, Copy, Debug)]
pub enum QuantityOp {
    Same,
    Less(u64),
    More(u64),
    Lots(u64),
}

#[derive(Clone, Debug)]
pub struct Case {
    pub limits: Limits,
    pub third_instrument: bool,
    pub ops: Vec<Op>,
    /// Where the engine is snapshotted and restored (may be the end).
    pub snapshot_at: Index,
}

pub fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

pub fn self_trade_prevention() -> impl Strategy<Value = SelfTradePrevention> {
    prop_oneof![
        3 => Just(SelfTradePrevention::None),
        1 => Just(SelfTradePrevention::CancelTaker),
        1 => Just(SelfTradePrevention::CancelMaker),
        1 => Just(SelfTradePrevention::CancelBoth),
    ]
}

/// Mostly near the middle of every band so orders cross often, sometimes
/// outside the bands.
pub fn price_ticks() -> impl Strategy<Value = i64> {
    prop_oneof![6 => 97..=103i64, 1 => 92..=108i64]
}

pub fn quantity_lots() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 1..=10u64, 2 => 0..=20u64]
}

pub fn order_type() -> impl Strategy<Value = OrderType> {
    let limit = |time_in_force| {
        price_ticks().prop_map(move |price_ticks| OrderType::Limit {
            price_ticks,
            time_in_force,
        })
    };
    prop_oneof![
        6 => limit(TimeInForce::Gtc),
        2 => limit(TimeInForce::Ioc),
        2 => limit(TimeInForce::Fok),
        2 => price_ticks().prop_map(|price_ticks| OrderType::PostOnly { price_ticks }),
        1 => Just(OrderType::Market { protection_price_ticks: None }),
        2 => price_ticks().prop_map(|p| OrderType::Market { protection_price_ticks: Some(p) }),
    ]
}

pub fn instrument_id() -> impl Strategy<Value = InstrumentId> {
    prop_oneof![
        6 => Just(InstrumentId(1)),
        5 => Just(InstrumentId(2)),
        3 => Just(InstrumentId(3)),
        1 => Just(InstrumentId(4)),
        1 => Just(INSTRUMENT_UNKNOWN),
    ]
}

pub fn account() -> impl Strategy<Value = u64> {
    1..=ACCOUNTS_MAX
}

pub fn client_order_id() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 30 => 1..=CLIENT_ORDER_ID_MAX]
}

pub fn place() -> impl Strategy<Value = PlaceOrder> {
    (
        instrument_id(),
        account(),
        client_order_id(),
        side(),
        order_type(),
        quantity_lots(),
        self_trade_prevention(),
    )
        .prop_map(
            |(instrument, account, client_order_id, side, order_type, quantity_lots, stp)| {
                PlaceOrder {
                    instrument,
                    account: AccountId(account),
                    client_order_id: ClientOrderId(client_order_id),
                    side,
                    order_type,
                    quantity_lots,
                    self_trade_prevention: stp,
                }
            },
        )
}

pub fn ref_op() -> impl Strategy<Value = RefOp> {
    prop_oneof![
        8 => (0..10usize).prop_map(|back| RefOp::Recent { back }),
        3 => (0..10usize).prop_map(|back| RefOp::RecentClientId { back }),
        1 => (0..=60u64).prop_map(RefOp::OrderId),
        1 => (0..=CLIENT_ORDER_ID_MAX).prop_map(RefOp::ClientOrderId),
    ]
}

/// `None` means the owner of the referenced order.
pub fn ref_account() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![6 => Just(None), 1 => account().prop_map(Some)]
}

pub fn op() -> impl Strategy<Value = Op> {
    let price = prop_oneof![2 => Just(PriceOp::Same), 3 => price_ticks().prop_map(PriceOp::Ticks)];
    let quantity = prop_oneof![
        1 => Just(QuantityOp::Same),
        3 => (1..=5u64).prop_map(QuantityOp::Less),
        1 => (1..=5u64).prop_map(QuantityOp::More),
        2 => (0..=20u64).prop_map(QuantityOp::Lots),
    ];
    let mass_instrument = prop_oneof![1 => Just(None), 2 => instrument_id().prop_map(Some)];
    prop_oneof![
        2 => (0..=3u8, prop_oneof![1 => Just(0u8), 1 => 1..=3u8])
            .prop_map(|(slot, variant)| Op::AddInstrument { slot, variant }),
        30 => place().prop_map(Op::Place),
        5 => (0..8usize).prop_map(|back| Op::Retry { back }),
        8 => (ref_account(), ref_op()).prop_map(|(account, order)| Op::Cancel { account, order }),
        12 => (ref_account(), ref_op(), price, quantity).prop_map(
            |(account, order, price, quantity)| Op::Replace { account, order, price, quantity }
        ),
        2 => (account(), mass_instrument)
            .prop_map(|(account, instrument)| Op::MassCancel { account, instrument }),
    ]
}

/// Mostly tight enough that every limit is reached in most sequences;
/// sometimes roomy, so books grow deep and sweeps cross many levels.
pub fn limits() -> impl Strategy<Value = Limits> {
    let tight = (2..=3u32, 4..=14u32, 2..=6u32, 1..=5u32, 1..=8u32);
    let roomy = (3..=3u32, 20..=40u32, 8..=15u32, 5..=8u32, 8..=20u32);
    prop_oneof![4 => tight, 1 => roomy].prop_map(
        |(instruments, open, per_account, levels, finished)| Limits {
            instruments_max: instruments,
            orders_open_max: open,
            orders_per_account_max: per_account,
            price_levels_per_side_max: levels,
            finished_orders_retained_max: finished,
        },
    )
}

pub fn case(ops_max: usize) -> impl Strategy<Value = Case> {
    (
        limits(),
        prop::bool::weighted(0.7),
        prop::collection::vec(op(), 1..=ops_max),
        any::<Index>(),
    )
        .prop_map(|(limits, third_instrument, ops, snapshot_at)| Case {
            limits,
            third_instrument,
            ops,
            snapshot_at,
        })
}

// ---------------------------------------------------------------------------
// Turning generated steps into commands.

/// Resolves [`Op`]s into concrete commands from what has happened so far.
#[derive(Default)]
pub struct Resolver {
    /// Accepted orders, oldest first.
    accepted: Vec<(OrderId, AccountId, ClientOrderId)>,
    places: Vec<PlaceOrder>,
}

impl Resolver {
    pub fn command(&self, op: &Op, model: &Model) -> Command {
        match *op {
            Op::AddInstrument { slot, variant } => {
                Command::AddInstrument(instrument_spec(slot, variant))
            }
            Op::Place(place) => Command::Place(place),
            Op::Retry { back } => match self.places.len() {
                0 => Command::MassCancel(MassCancel {
                    account: AccountId(1),
                    instrument: None,
                }),
                len => Command::Place(self.places[len - 1 - back % len]),
            },
            Op::Cancel { account, order } => {
                let (account, order, _) = self.order_ref(account, order, model);
                Command::Cancel(CancelOrder { account, order })
            }
            Op::Replace {
                account,
                order,
                price,
                quantity,
            } => {
                let (account, order, current) = self.order_ref(account, order, model);
                let current_price = current.and_then(|v| v.order_type.limit_price_ticks());
                let price_ticks = match price {
                    PriceOp::Same => current_price.unwrap_or(100),
                    PriceOp::Ticks(price_ticks) => price_ticks,
                };
                let current_lots = current.map_or(5, |v| v.quantity_lots);
                let quantity_lots = match quantity {
                    QuantityOp::Same => current_lots,
                    QuantityOp::Less(lots) => current_lots.saturating_sub(lots),
                    QuantityOp::More(lots) => current_lots + lots,
                    QuantityOp::Lots(lots) => lots,
                };
                Command::Replace(ReplaceOrder {
                    account,
                    order,
                    price_ticks,
                    quantity_lots,
                })
            }
            Op::MassCancel {
                account,
                instrument,
            } => Command::MassCancel(MassCancel {
                account: AccountId(account),
                instrument,
            }),
        }
    }

    /// The account, the reference and (from the model) the order it names.
    pub fn order_ref(
        &self,
        account: Option<u64>,
        order: RefOp,
        model: &Model,
    ) -> (AccountId, OrderRef, Option<OrderView>) {
        let recent = |back: usize| {
            let len = self.accepted.len();
            (len > 0).then(|| self.accepted[len - 1 - back % len])
        };
        let (order, owner) = match order {
            RefOp::Recent { back } => match recent(back) {
                Some((id, owner, _)) => (OrderRef::OrderId(id), Some(owner)),
                None => (OrderRef::OrderId(OrderId(1)), None),
            },
            RefOp::RecentClientId { back } => match recent(back) {
                Some((_, owner, id)) => (OrderRef::ClientOrderId(id), Some(owner)),
                None => (OrderRef::ClientOrderId(ClientOrderId(1)), None),
            },
            RefOp::OrderId(id) => (OrderRef::OrderId(OrderId(id)), None),
            RefOp::ClientOrderId(id) => (OrderRef::ClientOrderId(ClientOrderId(id)), None),
        };
        let account = match (account, owner) {
            (Some(account), _) => AccountId(account),
            (None, Some(owner)) => owner,
            (None, None) => AccountId(1),
        };
        let current = match order {
            OrderRef::OrderId(id) => model.order(id),
            OrderRef::ClientOrderId(id) => model.order_by_client_id(account, id),
        };
        (account, order, current)
    }

    pub fn record(&mut self, command: &Command, reply: &Reply) {
        if let Command::Place(place) = command {
            self.places.push(*place);
            if let (Ok(Accepted::Order(id)), false) = (reply.result, reply.replayed) {
                self.accepted
                    .push((id, place.account, place.client_order_id));
            }
        }
    }
}
