//! Events: every state change a command causes, in order. Each carries its
//! instrument's next sequence number, so a consumer of one instrument's
//! events can detect a gap.

use crate::instrument::InstrumentSpec;
use crate::types::{
    AccountId, ClientOrderId, InstrumentId, OrderId, OrderType, SelfTradePrevention, Side,
};

/// One event, stamped with its instrument's sequence number (1, 2, 3, ...
/// with no gaps) and the timestamp of the command that caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    pub instrument: InstrumentId,
    pub sequence: u64,
    pub timestamp_ns: u64,
    pub kind: EventKind,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The instrument now exists; always sequence 1.
    InstrumentAdded { spec: InstrumentSpec },
    /// A new order was accepted; trades, a rest or a cancel follow.
    OrderAccepted {
        order_id: OrderId,
        account: AccountId,
        client_order_id: ClientOrderId,
        side: Side,
        order_type: OrderType,
        quantity_lots: u64,
        self_trade_prevention: SelfTradePrevention,
    },
    /// The taker traded `quantity_lots` with the maker at the maker's price.
    Trade {
        maker_order_id: OrderId,
        maker_account: AccountId,
        taker_order_id: OrderId,
        taker_account: AccountId,
        price_ticks: i64,
        quantity_lots: u64,
        /// The taker's side.
        aggressor: Side,
    },
    /// `quantity_lots` of the order were cancelled; the order is finished
    /// (an [`EventKind::OrderDone`] follows).
    OrderCancelled {
        order_id: OrderId,
        account: AccountId,
        quantity_lots: u64,
        reason: CancelReason,
    },
    /// The order's price and/or total quantity changed.
    OrderReplaced {
        order_id: OrderId,
        account: AccountId,
        price_ticks: i64,
        quantity_lots: u64,
        /// What is still open after the replace, before any trade it causes.
        open_lots: u64,
        priority_kept: bool,
    },
    /// The order is finished: fully filled, or its remainder cancelled.
    /// `quantity = filled + cancelled` holds here.
    OrderDone {
        order_id: OrderId,
        account: AccountId,
        filled_lots: u64,
        cancelled_lots: u64,
    },
}

/// Why an order's remainder was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    /// The account cancelled it.
    User,
    /// A mass cancel for the account cancelled it.
    MassCancel,
    /// Immediate-or-cancel (or market) remainder after matching.
    IocRemainder,
    /// Fill-or-kill that could not fill completely; it never touched the book.
    FokUnfilled,
    /// Self-trade prevention.
    SelfTrade,
    /// A market order reached its protection price with quantity left.
    MarketProtection,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::User => "user",
            CancelReason::MassCancel => "mass_cancel",
            CancelReason::IocRemainder => "ioc_remainder",
            CancelReason::FokUnfilled => "fok_unfilled",
            CancelReason::SelfTrade => "self_trade",
            CancelReason::MarketProtection => "market_protection",
        }
    }
}
