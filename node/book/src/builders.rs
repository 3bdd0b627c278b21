//! Short builders for tests, benchmarks and examples: an instrument with
//! wide limits and the common orders. The one place these defaults live,
//! so that a test says only what it is about (`InstrumentSpec {
//! quantity_lots_min: 10, ..instrument(3, "SOL-USD") }`).
//!
//! Not for input from outside the process: an invalid symbol panics.

use crate::{
    AccountId, ClientOrderId, Command, InstrumentId, InstrumentSpec, OrderType, PlaceOrder,
    SelfTradePrevention, Side, Symbol, TimeInForce,
};

/// Prices 1..=1,000,000 ticks, quantities 1..=1,000 lots.
pub fn instrument(instrument: u32, symbol: &str) -> InstrumentSpec {
    InstrumentSpec {
        instrument: InstrumentId(instrument),
        symbol: Symbol::new(symbol).unwrap_or_else(|| panic!("`{symbol}` is not a valid symbol")),
        price_ticks_min: 1,
        price_ticks_max: 1_000_000,
        quantity_lots_min: 1,
        quantity_lots_max: 1_000,
    }
}

/// [`instrument`] as the command that adds it.
pub fn add_instrument(id: u32, symbol: &str) -> Command {
    Command::AddInstrument(instrument(id, symbol))
}

/// An order of any type, self-trades allowed.
pub fn order(
    instrument: u32,
    account: u64,
    client_order_id: u64,
    side: Side,
    order_type: OrderType,
    quantity_lots: u64,
) -> PlaceOrder {
    PlaceOrder {
        instrument: InstrumentId(instrument),
        account: AccountId(account),
        client_order_id: ClientOrderId(client_order_id),
        side,
        order_type,
        quantity_lots,
        self_trade_prevention: SelfTradePrevention::None,
    }
}

/// A good-till-cancelled limit order.
pub fn limit(
    instrument: u32,
    account: u64,
    client_order_id: u64,
    side: Side,
    price_ticks: i64,
    quantity_lots: u64,
) -> PlaceOrder {
    order(
        instrument,
        account,
        client_order_id,
        side,
        OrderType::Limit {
            price_ticks,
            time_in_force: TimeInForce::Gtc,
        },
        quantity_lots,
    )
}

/// [`limit`] as the command that places it.
pub fn place_limit(
    instrument: u32,
    account: u64,
    client_order_id: u64,
    side: Side,
    price_ticks: i64,
    quantity_lots: u64,
) -> Command {
    Command::Place(limit(
        instrument,
        account,
        client_order_id,
        side,
        price_ticks,
        quantity_lots,
    ))
}
