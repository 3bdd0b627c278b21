//! Commands: the only way to change the engine's state. Each carries
//! everything it needs; the timestamp comes with it from the caller.

use crate::instrument::InstrumentSpec;
use crate::types::{
    AccountId, ClientOrderId, InstrumentId, OrderId, OrderType, SelfTradePrevention, Side,
};

/// One state-changing command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    AddInstrument(InstrumentSpec),
    Place(PlaceOrder),
    Cancel(CancelOrder),
    Replace(ReplaceOrder),
    MassCancel(MassCancel),
}

/// Enter a new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlaceOrder {
    pub instrument: InstrumentId,
    pub account: AccountId,
    /// Identifies the order for the account; a retried place with the same
    /// id and the same fields returns the original outcome.
    pub client_order_id: ClientOrderId,
    pub side: Side,
    pub order_type: OrderType,
    pub quantity_lots: u64,
    pub self_trade_prevention: SelfTradePrevention,
}

/// How a command names one of the account's orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderRef {
    /// The exchange order id from the acceptance.
    OrderId(OrderId),
    /// The client order id the account placed it with.
    ClientOrderId(ClientOrderId),
}

/// Cancel one open order of `account`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CancelOrder {
    pub account: AccountId,
    pub order: OrderRef,
}

/// Change the price and/or total quantity of one open order of `account`.
///
/// A quantity decrease at the same price keeps time priority; a price change
/// or a quantity increase loses it (the order goes to the back of the queue
/// at its new price, and trades first if the new price crosses the book).
/// `quantity_lots` is the new total ordered quantity, and must stay above
/// what has already been filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplaceOrder {
    pub account: AccountId,
    pub order: OrderRef,
    pub price_ticks: i64,
    pub quantity_lots: u64,
}

/// Cancel every open order of `account`, optionally only on one instrument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MassCancel {
    pub account: AccountId,
    pub instrument: Option<InstrumentId>,
}
