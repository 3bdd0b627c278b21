//! One side of one book: price levels kept in a sorted ladder, each level a
//! FIFO queue of resting orders linked through the arena.
//!
//! The ladder is a `Vec` sorted so that the best price is at the end: most
//! activity is near the top of the book, so inserts and removals there move
//! few entries and finding a nearby price is a short scan from the end.

use crate::arena::{Arena, NIL};
use crate::types::Side;
use crate::view::LevelView;

/// One price level: aggregate quantity and a FIFO of orders.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Level {
    pub price_ticks: i64,
    pub quantity_lots: u64,
    pub order_count: u32,
    pub head: u32,
    pub tail: u32,
}

impl Level {
    pub fn view(&self) -> LevelView {
        LevelView {
            price_ticks: self.price_ticks,
            quantity_lots: self.quantity_lots,
            order_count: self.order_count,
        }
    }
}

/// A ladder entry: the sort key of a price and the level it names.
#[derive(Clone, Copy, Debug)]
struct Rung {
    key: i64,
    level: u32,
}

/// How many ladder entries to scan linearly from the top before falling back
/// to binary search.
const TOP_SCAN_RUNGS: usize = 8;

#[derive(Clone, Debug)]
pub(crate) struct BookSide {
    side: Side,
    /// Sorted ascending by key; the best price is last.
    ladder: Vec<Rung>,
    levels: Vec<Level>,
    free_levels: Vec<u32>,
}

impl BookSide {
    pub fn new(side: Side) -> BookSide {
        BookSide {
            side,
            ladder: Vec::new(),
            levels: Vec::new(),
            free_levels: Vec::new(),
        }
    }

    /// Maps prices to keys that sort ascending towards the best price: bids
    /// as they are, asks inverted (`!p` is monotone decreasing and total).
    fn key(&self, price_ticks: i64) -> i64 {
        match self.side {
            Side::Buy => price_ticks,
            Side::Sell => !price_ticks,
        }
    }

    pub fn level_count(&self) -> usize {
        self.ladder.len()
    }

    /// The best level's handle.
    pub fn best(&self) -> Option<u32> {
        self.ladder.last().map(|rung| rung.level)
    }

    pub fn best_price_ticks(&self) -> Option<i64> {
        self.best()
            .map(|level| self.levels[level as usize].price_ticks)
    }

    pub fn level(&self, level: u32) -> &Level {
        &self.levels[level as usize]
    }

    /// Levels from worst to best.
    pub fn levels_worst_first(&self) -> impl Iterator<Item = &Level> + '_ {
        self.ladder
            .iter()
            .map(move |rung| &self.levels[rung.level as usize])
    }

    /// Levels from best to worst.
    pub fn levels_best_first(&self) -> impl Iterator<Item = &Level> + '_ {
        self.ladder
            .iter()
            .rev()
            .map(move |rung| &self.levels[rung.level as usize])
    }

    /// Position of `price_ticks` in the ladder: `Ok` if a level exists there,
    /// `Err` with the insertion point otherwise.
    fn position(&self, price_ticks: i64) -> Result<usize, usize> {
        let key = self.key(price_ticks);
        let len = self.ladder.len();
        let scan_end = len.saturating_sub(TOP_SCAN_RUNGS);
        let mut index = len;
        while index > scan_end {
            let rung_key = self.ladder[index - 1].key;
            if rung_key == key {
                return Ok(index - 1);
            }
            if rung_key < key {
                return Err(index);
            }
            index -= 1;
        }
        self.ladder[..scan_end].binary_search_by(|rung| rung.key.cmp(&key))
    }

    pub fn has_level(&self, price_ticks: i64) -> bool {
        self.position(price_ticks).is_ok()
    }

    /// Appends an order (already in the arena, with its price set) to the
    /// back of its price level, creating the level if needed.
    pub fn push_back(&mut self, arena: &mut Arena, handle: u32) {
        let order = arena.get(handle);
        let (price_ticks, open_lots) = (order.price_ticks, order.open_lots());
        let level_handle = match self.position(price_ticks) {
            Ok(index) => self.ladder[index].level,
            Err(index) => {
                let level = Level {
                    price_ticks,
                    quantity_lots: 0,
                    order_count: 0,
                    head: NIL,
                    tail: NIL,
                };
                let level_handle = match self.free_levels.pop() {
                    Some(reused) => {
                        self.levels[reused as usize] = level;
                        reused
                    }
                    None => {
                        self.levels.push(level);
                        (self.levels.len() - 1) as u32
                    }
                };
                let key = self.key(price_ticks);
                self.ladder.insert(
                    index,
                    Rung {
                        key,
                        level: level_handle,
                    },
                );
                level_handle
            }
        };
        let level = &mut self.levels[level_handle as usize];
        let old_tail = level.tail;
        level.tail = handle;
        if old_tail == NIL {
            level.head = handle;
        }
        level.quantity_lots += open_lots;
        level.order_count += 1;
        let order = arena.get_mut(handle);
        order.level = level_handle;
        order.prev = old_tail;
        order.next = NIL;
        if old_tail != NIL {
            arena.get_mut(old_tail).next = handle;
        }
    }

    /// Removes an order from its level's queue, removing the level when it
    /// empties. The level's quantity drops by the order's open quantity as
    /// the arena holds it now.
    pub fn unlink(&mut self, arena: &mut Arena, handle: u32) {
        let order = arena.get(handle);
        let (level_handle, prev, next, open_lots) =
            (order.level, order.prev, order.next, order.open_lots());
        if prev != NIL {
            arena.get_mut(prev).next = next;
        }
        if next != NIL {
            arena.get_mut(next).prev = prev;
        }
        let level = &mut self.levels[level_handle as usize];
        if level.head == handle {
            level.head = next;
        }
        if level.tail == handle {
            level.tail = prev;
        }
        level.quantity_lots -= open_lots;
        level.order_count -= 1;
        if level.order_count == 0 {
            let price_ticks = level.price_ticks;
            if let Ok(index) = self.position(price_ticks) {
                self.ladder.remove(index);
            }
            self.free_levels.push(level_handle);
        }
    }

    /// Lowers a resting order's level quantity after a partial fill or a
    /// quantity decrease.
    pub fn reduce(&mut self, level: u32, lots: u64) {
        self.levels[level as usize].quantity_lots -= lots;
    }

    /// Bytes reserved, for memory accounting.
    pub fn capacity_bytes(&self) -> usize {
        self.ladder.capacity() * std::mem::size_of::<Rung>()
            + self.levels.capacity() * std::mem::size_of::<Level>()
            + self.free_levels.capacity() * std::mem::size_of::<u32>()
    }
}
