//! A slab of resting orders addressed by `u32` handles, with a free list so
//! that memory is reused and no order allocates. Handles are internal and
//! never leave the crate; order ids are what the outside sees.

use crate::types::{
    AccountId, ClientOrderId, InstrumentId, OrderId, OrderType, SelfTradePrevention, Side,
    TimeInForce,
};
use crate::view::{OrderStatus, OrderView};

/// The "no order" / "no level" handle.
pub(crate) const NIL: u32 = u32::MAX;

/// One order resting in a book. Linked into its price level's queue
/// (`prev`/`next`) and its account's list (`account_prev`/`account_next`).
#[derive(Clone, Debug)]
pub(crate) struct RestingOrder {
    pub order_id: OrderId,
    pub account: AccountId,
    pub client_order_id: ClientOrderId,
    pub price_ticks: i64,
    pub quantity_lots: u64,
    pub filled_lots: u64,
    /// Time priority: smaller is earlier. Unique across the engine.
    pub priority: u64,
    pub accepted_timestamp_ns: u64,
    /// Price and quantity as placed (a replace changes the current ones):
    /// what a retry of the place must repeat.
    pub placed_price_ticks: i64,
    pub placed_quantity_lots: u64,
    pub instrument: InstrumentId,
    /// Index of the order's book in the engine.
    pub book: u32,
    pub level: u32,
    pub prev: u32,
    pub next: u32,
    pub account_prev: u32,
    pub account_next: u32,
    pub side: Side,
    pub post_only: bool,
    pub stp: SelfTradePrevention,
}

impl RestingOrder {
    pub fn open_lots(&self) -> u64 {
        self.quantity_lots - self.filled_lots
    }

    /// The place this order came from, as far as a retry must repeat it.
    pub fn placed(&self) -> crate::store::Placed {
        let order_type = if self.post_only {
            OrderType::PostOnly {
                price_ticks: self.placed_price_ticks,
            }
        } else {
            OrderType::Limit {
                price_ticks: self.placed_price_ticks,
                time_in_force: TimeInForce::Gtc,
            }
        };
        crate::store::Placed {
            order_type,
            quantity_lots: self.placed_quantity_lots,
        }
    }

    pub fn order_type(&self) -> OrderType {
        if self.post_only {
            OrderType::PostOnly {
                price_ticks: self.price_ticks,
            }
        } else {
            OrderType::Limit {
                price_ticks: self.price_ticks,
                time_in_force: TimeInForce::Gtc,
            }
        }
    }

    /// The order as a query sees it; `cancelled_lots` is non-zero only for
    /// the final view of an order leaving the book.
    pub fn view(&self, cancelled_lots: u64) -> OrderView {
        let open_lots = self.open_lots() - cancelled_lots;
        let status = if open_lots > 0 {
            OrderStatus::Open
        } else if cancelled_lots > 0 {
            OrderStatus::Cancelled
        } else {
            OrderStatus::Filled
        };
        OrderView {
            order_id: self.order_id,
            instrument: self.instrument,
            account: self.account,
            client_order_id: self.client_order_id,
            side: self.side,
            order_type: self.order_type(),
            self_trade_prevention: self.stp,
            quantity_lots: self.quantity_lots,
            filled_lots: self.filled_lots,
            open_lots,
            cancelled_lots,
            status,
            accepted_timestamp_ns: self.accepted_timestamp_ns,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Arena {
    slots: Vec<RestingOrder>,
    free: Vec<u32>,
}

impl Arena {
    /// Stores `order` and returns its handle. The caller bounds the number of
    /// live orders (`Limits::orders_open_max` <= 2^30), so handles fit `u32`.
    pub fn insert(&mut self, order: RestingOrder) -> u32 {
        match self.free.pop() {
            Some(handle) => {
                self.slots[handle as usize] = order;
                handle
            }
            None => {
                self.slots.push(order);
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Pre-allocates and touches `additional` free slots, so that the
    /// orders that fill them never page-fault or reallocate on the hot path.
    pub fn reserve(&mut self, additional: usize, placeholder: &RestingOrder) {
        let start = self.slots.len();
        self.slots.reserve_exact(additional);
        self.slots.resize(start + additional, placeholder.clone());
        self.free.reserve(additional);
        // Popped from the end: hand out the lowest handles first, so that
        // orders placed one after another sit next to each other.
        self.free.extend(
            (start..start + additional)
                .rev()
                .map(|handle| handle as u32),
        );
    }

    /// Frees a handle. The slot keeps its stale contents until reused.
    pub fn remove(&mut self, handle: u32) {
        self.free.push(handle);
    }

    pub fn get(&self, handle: u32) -> &RestingOrder {
        &self.slots[handle as usize]
    }

    pub fn get_mut(&mut self, handle: u32) -> &mut RestingOrder {
        &mut self.slots[handle as usize]
    }

    /// Bytes reserved by the slab, for memory accounting.
    pub fn capacity_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<RestingOrder>()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }
}
