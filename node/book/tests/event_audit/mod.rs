//! Properties that need no model: what the events alone must satisfy. Each
//! order is followed from its `OrderAccepted` to its `OrderDone` through the
//! trades, cancels and replaces in between.

use std::collections::HashMap;

use matchengine_book::{Event, EventKind, InstrumentId, OrderId, Side};

#[derive(Clone, Copy, Debug)]
pub struct Tracked {
    pub instrument: InstrumentId,
    pub side: Side,
    pub quantity_lots: u64,
    pub filled_lots: u64,
    pub open_lots: u64,
    pub cancelled_lots: u64,
    pub done: bool,
}

/// Follows every order through the events alone.
#[derive(Default)]
pub struct Tracker {
    pub orders: HashMap<OrderId, Tracked>,
    sequence_last: HashMap<InstrumentId, u64>,
    pub order_id_last: u64,
}

impl Tracker {
    /// Checks one command's events; `Err` says what broke.
    pub fn observe(&mut self, events: &[Event]) -> Result<(), String> {
        for (position, event) in events.iter().enumerate() {
            self.observe_one(event)
                .map_err(|e| format!("event #{position} {event:?}: {e}"))?;
            if let EventKind::OrderCancelled { order_id, .. } = event.kind {
                let next = events.get(position + 1).map(|e| e.kind);
                let done_next = matches!(next, Some(EventKind::OrderDone { order_id: id, .. }) if id == order_id);
                if !done_next {
                    return Err(format!(
                        "OrderCancelled of {order_id} not followed by its OrderDone"
                    ));
                }
            }
        }
        Ok(())
    }

    fn open(&mut self, id: OrderId) -> Result<&mut Tracked, String> {
        let order = self
            .orders
            .get_mut(&id)
            .ok_or_else(|| format!("order {id} never accepted"))?;
        if order.done {
            return Err(format!("order {id} is already done"));
        }
        Ok(order)
    }

    fn observe_one(&mut self, event: &Event) -> Result<(), String> {
        let last = self.sequence_last.entry(event.instrument).or_insert(0);
        if event.sequence != *last + 1 {
            return Err(format!("sequence {} after {}", event.sequence, *last));
        }
        *last = event.sequence;
        let is_added = matches!(event.kind, EventKind::InstrumentAdded { .. });
        if is_added != (event.sequence == 1) {
            return Err("InstrumentAdded must be exactly sequence 1".into());
        }
        let mut touched = Vec::new();
        match event.kind {
            EventKind::InstrumentAdded { spec } => {
                if spec.instrument != event.instrument {
                    return Err("spec names another instrument".into());
                }
            }
            EventKind::OrderAccepted {
                order_id,
                side,
                quantity_lots,
                ..
            } => {
                if order_id.0 != self.order_id_last + 1 {
                    return Err(format!("order id after {}", self.order_id_last));
                }
                self.order_id_last = order_id.0;
                self.orders.insert(
                    order_id,
                    Tracked {
                        instrument: event.instrument,
                        side,
                        quantity_lots,
                        filled_lots: 0,
                        open_lots: quantity_lots,
                        cancelled_lots: 0,
                        done: false,
                    },
                );
                touched.push(order_id);
            }
            EventKind::Trade {
                maker_order_id,
                taker_order_id,
                quantity_lots,
                aggressor,
                ..
            } => {
                if quantity_lots == 0 || maker_order_id == taker_order_id {
                    return Err("empty trade or an order trading with itself".into());
                }
                let taker_side = self.open(taker_order_id)?.side;
                let maker_side = self.open(maker_order_id)?.side;
                if taker_side != aggressor || maker_side == taker_side {
                    return Err("aggressor is not the taker's side, or same sides".into());
                }
                for id in [maker_order_id, taker_order_id] {
                    let order = self.open(id)?;
                    if order.instrument != event.instrument {
                        return Err(format!("order {id} is on another instrument"));
                    }
                    order.open_lots = order
                        .open_lots
                        .checked_sub(quantity_lots)
                        .ok_or_else(|| format!("order {id} trades more than it has open"))?;
                    order.filled_lots += quantity_lots;
                    touched.push(id);
                }
            }
            EventKind::OrderCancelled {
                order_id,
                quantity_lots,
                ..
            } => {
                let order = self.open(order_id)?;
                if quantity_lots != order.open_lots {
                    return Err(format!("cancels {quantity_lots} of {}", order.open_lots));
                }
                order.open_lots = 0;
                order.cancelled_lots += quantity_lots;
                touched.push(order_id);
            }
            EventKind::OrderReplaced {
                order_id,
                quantity_lots,
                open_lots,
                ..
            } => {
                let order = self.open(order_id)?;
                if quantity_lots <= order.filled_lots || order.cancelled_lots != 0 {
                    return Err("replace not above filled, or of a cancelled order".into());
                }
                order.quantity_lots = quantity_lots;
                order.open_lots = open_lots;
                touched.push(order_id);
            }
            EventKind::OrderDone {
                order_id,
                filled_lots,
                cancelled_lots,
                ..
            } => {
                let order = self.open(order_id)?;
                if order.open_lots != 0
                    || filled_lots != order.filled_lots
                    || cancelled_lots != order.cancelled_lots
                    || filled_lots + cancelled_lots != order.quantity_lots
                {
                    return Err(format!("done does not match {order:?}"));
                }
                order.done = true;
                touched.push(order_id);
            }
        }
        for id in touched {
            let o = &self.orders[&id];
            if o.quantity_lots != o.filled_lots + o.open_lots + o.cancelled_lots {
                return Err(format!(
                    "order {id}: quantity != filled + open + cancelled: {o:?}"
                ));
            }
        }
        Ok(())
    }
}
