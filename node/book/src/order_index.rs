//! Order id -> arena handle for open orders.
//!
//! Order ids are handed out 1, 2, 3..., and most activity concerns recent
//! orders, so the index is a ring addressed directly by id for the most
//! recent `window` ids, and a hash map for open orders older than that.
//! When a new id enters the ring, the id it displaces moves to the map if
//! its order is still open. Memory stays bounded (the ring's fixed size plus
//! one map entry per long-lived open order) and the common lookups touch no
//! hash table. Derived state: rebuilt on restore, not part of the digest.

use rustc_hash::FxHashMap;

use crate::types::OrderId;

/// Largest ring, in ids (4 MiB of `u32`).
const WINDOW_MAX: usize = 1 << 20;

#[derive(Clone, Debug)]
pub(crate) struct OrderIndex {
    /// `handle + 1` per recent id, 0 for none (so the ring starts zeroed).
    ring: Vec<u32>,
    mask: u64,
    /// The next id to be handed out; the ring covers
    /// `[next_id - ring.len(), next_id)`.
    next_id: u64,
    older: FxHashMap<OrderId, u32>,
    len: usize,
}

impl OrderIndex {
    /// A ring big enough for `open_max` orders placed back to back, within
    /// [`WINDOW_MAX`].
    pub fn new(open_max: u32, next_id: u64) -> OrderIndex {
        let window = (open_max as usize)
            .next_power_of_two()
            .clamp(64, WINDOW_MAX);
        OrderIndex {
            ring: vec![0; window],
            mask: window as u64 - 1,
            next_id,
            older: FxHashMap::default(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn in_ring(&self, order_id: OrderId) -> bool {
        order_id.0 < self.next_id
            && order_id.0.saturating_add(self.ring.len() as u64) >= self.next_id
    }

    fn slot(&self, order_id: OrderId) -> usize {
        (order_id.0 & self.mask) as usize
    }

    /// Moves the window forward to cover `order_id`, the id just handed out.
    /// Ids must arrive in increasing order.
    pub fn advance(&mut self, order_id: OrderId) {
        let target = order_id.0.saturating_add(1);
        if target.saturating_sub(self.next_id) >= self.ring.len() as u64 {
            // The whole ring leaves at once (a restore jumping ahead).
            let base = self.next_id.saturating_sub(self.ring.len() as u64);
            for offset in 0..self.ring.len() as u64 {
                let id = base + offset;
                let slot = (id & self.mask) as usize;
                let handle = std::mem::replace(&mut self.ring[slot], 0);
                if handle != 0 {
                    self.older.insert(OrderId(id), handle - 1);
                }
            }
            self.next_id = target;
            return;
        }
        while self.next_id < target {
            // The id entering the ring shares its slot with the id leaving.
            let slot = (self.next_id & self.mask) as usize;
            let leaving = self.ring[slot];
            if leaving != 0 {
                let leaving_id = OrderId(self.next_id - self.ring.len() as u64);
                self.older.insert(leaving_id, leaving - 1);
                self.ring[slot] = 0;
            }
            self.next_id += 1;
        }
    }

    pub fn get(&self, order_id: OrderId) -> Option<u32> {
        if self.in_ring(order_id) {
            self.ring[self.slot(order_id)].checked_sub(1)
        } else {
            self.older.get(&order_id).copied()
        }
    }

    /// Adds an open order; its id must already be handed out. Returns false
    /// if the id was already present (it is replaced).
    pub fn insert(&mut self, order_id: OrderId, handle: u32) -> bool {
        let fresh = if self.in_ring(order_id) {
            let slot = self.slot(order_id);
            let fresh = self.ring[slot] == 0;
            self.ring[slot] = handle + 1;
            fresh
        } else {
            self.older.insert(order_id, handle).is_none()
        };
        self.len += usize::from(fresh);
        fresh
    }

    pub fn remove(&mut self, order_id: OrderId) {
        let removed = if self.in_ring(order_id) {
            let slot = self.slot(order_id);
            std::mem::replace(&mut self.ring[slot], 0) != 0
        } else {
            self.older.remove(&order_id).is_some()
        };
        self.len -= usize::from(removed);
    }

    pub fn reserve(&mut self, additional: usize) {
        // Orders beyond the ring's reach end up in the map.
        self.older
            .reserve(additional.saturating_sub(self.ring.len()));
    }

    pub fn capacity_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<u32>()
            + self.older.capacity() * (std::mem::size_of::<(OrderId, u32)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_open_orders_move_to_the_map_and_stay_found() {
        let mut index = OrderIndex::new(4, 1); // ring of 64
        for id in 1..=1_000u64 {
            index.advance(OrderId(id));
            assert!(index.insert(OrderId(id), id as u32));
            if id % 3 != 0 {
                index.remove(OrderId(id));
            }
        }
        assert_eq!(index.len(), 333);
        for id in 1..=1_000u64 {
            let expected = (id % 3 == 0).then_some(id as u32);
            assert_eq!(index.get(OrderId(id)), expected, "id {id}");
        }
        assert_eq!(index.get(OrderId(1_001)), None);
        assert_eq!(index.get(OrderId(0)), None);
        index.remove(OrderId(3));
        assert_eq!(index.get(OrderId(3)), None);
        assert_eq!(index.len(), 332);
    }

    #[test]
    fn a_long_jump_keeps_every_open_order() {
        let mut index = OrderIndex::new(4, 1);
        for id in 1..=10u64 {
            index.advance(OrderId(id));
            index.insert(OrderId(id), id as u32);
        }
        index.advance(OrderId(1 << 40));
        for id in 1..=10u64 {
            assert_eq!(index.get(OrderId(id)), Some(id as u32));
        }
        index.advance(OrderId(u64::MAX - 1));
        assert_eq!(index.get(OrderId(7)), Some(7));
        assert_eq!(index.get(OrderId(u64::MAX - 1)), None);
    }

    #[test]
    fn duplicate_insert_is_reported() {
        let mut index = OrderIndex::new(4, 1);
        index.advance(OrderId(5));
        assert!(index.insert(OrderId(5), 1));
        assert!(!index.insert(OrderId(5), 2));
        assert_eq!(index.len(), 1);
    }
}
