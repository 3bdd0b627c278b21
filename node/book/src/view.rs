//! Read-only answers to queries: top of book, depth, one order.

use crate::types::{
    AccountId, ClientOrderId, InstrumentId, OrderId, OrderType, SelfTradePrevention, Side,
};

/// One aggregated price level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LevelView {
    pub price_ticks: i64,
    pub quantity_lots: u64,
    pub order_count: u32,
}

/// Best bid and best offer, with their sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TopOfBook {
    pub bid: Option<LevelView>,
    pub ask: Option<LevelView>,
}

/// The best `N` levels of each side, best first.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Depth {
    pub bids: Vec<LevelView>,
    pub asks: Vec<LevelView>,
}

/// Where an order stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Resting in the book with `open_lots` left.
    Open,
    /// Finished, fully filled.
    Filled,
    /// Finished with some quantity cancelled.
    Cancelled,
}

/// One order as the engine sees it. For every order,
/// `quantity_lots == filled_lots + open_lots + cancelled_lots`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrderView {
    pub order_id: OrderId,
    pub instrument: InstrumentId,
    pub account: AccountId,
    pub client_order_id: ClientOrderId,
    pub side: Side,
    /// The order type with its current price.
    pub order_type: OrderType,
    pub self_trade_prevention: SelfTradePrevention,
    /// Current total quantity (changed by replaces).
    pub quantity_lots: u64,
    pub filled_lots: u64,
    pub open_lots: u64,
    pub cancelled_lots: u64,
    pub status: OrderStatus,
    /// Timestamp of the command that accepted the order.
    pub accepted_timestamp_ns: u64,
}

/// What an order was placed as: the part of its view that matching does
/// not change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OrderTerms {
    pub order_id: OrderId,
    pub instrument: InstrumentId,
    pub account: AccountId,
    pub client_order_id: ClientOrderId,
    pub side: Side,
    pub order_type: OrderType,
    pub self_trade_prevention: SelfTradePrevention,
    pub quantity_lots: u64,
}

impl OrderView {
    /// An order that has left the book, every lot filled or cancelled: the
    /// one place such a view is built (after matching, and when a
    /// snapshot's finished-order window is read back).
    pub(crate) fn finished(
        terms: OrderTerms,
        filled_lots: u64,
        cancelled_lots: u64,
        accepted_timestamp_ns: u64,
    ) -> OrderView {
        debug_assert_eq!(
            filled_lots.checked_add(cancelled_lots),
            Some(terms.quantity_lots),
            "a finished order's lots are all filled or cancelled"
        );
        OrderView {
            order_id: terms.order_id,
            instrument: terms.instrument,
            account: terms.account,
            client_order_id: terms.client_order_id,
            side: terms.side,
            order_type: terms.order_type,
            self_trade_prevention: terms.self_trade_prevention,
            quantity_lots: terms.quantity_lots,
            filled_lots,
            open_lots: 0,
            cancelled_lots,
            status: if cancelled_lots > 0 {
                OrderStatus::Cancelled
            } else {
                OrderStatus::Filled
            },
            accepted_timestamp_ns,
        }
    }
}
