//! Every order the engine knows, apart from the books' price ladders: the
//! resting orders (arena), one index from order id to where the order is
//! (resting, or in the window of remembered finished orders), each
//! account's list of open orders, the client-order-id index, and the running
//! digest over all of them. Every change to an order goes through here so
//! that the digest can never drift from the state.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::arena::{Arena, NIL, RestingOrder};
use crate::command::PlaceOrder;
use crate::order_index::OrderIndex;
use crate::types::{
    AccountId, ClientOrderId, OrderId, OrderType, SelfTradePrevention, Side, TimeInForce,
};
use crate::view::{OrderStatus, OrderView};
use matchengine_digest::{SetHash, hash_words};

/// What a place command asked for, beyond its key: a retry with the same
/// key must repeat it exactly to be recognised as a retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placed {
    pub order_type: OrderType,
    pub quantity_lots: u64,
}

/// A finished order kept for idempotent retries and order queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FinishedOrder {
    pub view: OrderView,
    pub placed: Placed,
    /// Position in the window; the smallest is forgotten first.
    pub finished_index: u64,
}

/// An account's open orders, linked through the arena in order id order.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AccountOrders {
    pub head: u32,
    pub tail: u32,
    pub count: u32,
}

/// Where an indexed order is, packed in a `u32` for the order index:
/// an arena handle, or (with the top bit set) a finished window index
/// modulo 2^30. Both are below 2^30 because every limit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location {
    Resting(u32),
    Finished(u32),
}

const FINISHED_TAG: u32 = 1 << 31;
const WINDOW_INDEX_MASK: u64 = (1 << 30) - 1;

impl Location {
    fn pack(self) -> u32 {
        match self {
            Location::Resting(handle) => handle,
            Location::Finished(index) => FINISHED_TAG | index,
        }
    }

    fn unpack(packed: u32) -> Location {
        if packed & FINISHED_TAG == 0 {
            Location::Resting(packed)
        } else {
            Location::Finished(packed & !FINISHED_TAG)
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct OrderStore {
    pub arena: Arena,
    index: OrderIndex,
    open_count: usize,
    clients: FxHashMap<(AccountId, ClientOrderId), OrderId>,
    accounts: FxHashMap<AccountId, AccountOrders>,
    /// Oldest first; the front has index `next_finished_index - len`.
    finished: VecDeque<FinishedOrder>,
    finished_retained_max: usize,
    next_finished_index: u64,
    digest: SetHash,
}

impl OrderStore {
    pub fn new(open_max: u32, finished_retained_max: u32) -> OrderStore {
        OrderStore {
            arena: Arena::default(),
            index: OrderIndex::new(open_max.saturating_add(finished_retained_max), 1),
            open_count: 0,
            clients: FxHashMap::default(),
            accounts: FxHashMap::default(),
            finished: VecDeque::new(),
            finished_retained_max: finished_retained_max as usize,
            next_finished_index: 0,
            digest: SetHash::default(),
        }
    }

    /// Pre-allocates room for `additional` more open orders, and for the
    /// whole finished window (it fills up in steady state), so that no
    /// structure grows (and rehashes) on the hot path.
    pub fn reserve(&mut self, additional: usize, placeholder: &RestingOrder) {
        self.arena.reserve(additional, placeholder);
        let finished_room = self.finished_retained_max - self.finished.len();
        self.index.reserve(additional + finished_room);
        self.finished.reserve(finished_room);
        self.clients.reserve(additional + finished_room);
    }

    /// Pre-allocates room for `additional` more open orders only, not the
    /// finished window: all that a snapshot being decoded can justify (its
    /// limits alone must not make the decoder allocate gigabytes).
    pub fn reserve_open(&mut self, additional: usize, placeholder: &RestingOrder) {
        self.arena.reserve(additional, placeholder);
        self.index.reserve(additional);
        self.clients.reserve(additional);
    }

    pub fn open_count(&self) -> usize {
        self.open_count
    }

    /// Distinct order ids indexed, open and finished.
    pub fn indexed_count(&self) -> usize {
        self.index.len()
    }

    fn locate(&self, order_id: OrderId) -> Option<Location> {
        self.index.get(order_id).map(Location::unpack)
    }

    pub fn open_handle(&self, order_id: OrderId) -> Option<u32> {
        match self.locate(order_id)? {
            Location::Resting(handle) => Some(handle),
            Location::Finished(_) => None,
        }
    }

    /// Notes that `order_id` was just handed out (ids only grow).
    pub fn advance_order_id(&mut self, order_id: OrderId) {
        self.index.advance(order_id);
    }

    pub fn client_order(
        &self,
        account: AccountId,
        client_order_id: ClientOrderId,
    ) -> Option<OrderId> {
        self.clients.get(&(account, client_order_id)).copied()
    }

    pub fn finished(&self, order_id: OrderId) -> Option<&FinishedOrder> {
        let Location::Finished(index) = self.locate(order_id)? else {
            return None;
        };
        let front = self.next_finished_index - self.finished.len() as u64;
        let offset = (u64::from(index).wrapping_sub(front)) & WINDOW_INDEX_MASK;
        self.finished
            .get(offset as usize)
            .filter(|finished| finished.view.order_id == order_id)
    }

    /// True when `place` repeats exactly the place that created `order_id`
    /// (same account and client order id are given by the lookup).
    pub fn is_retry_of(&self, order_id: OrderId, place: &PlaceOrder) -> bool {
        let (instrument, side, stp, placed) = match self.locate(order_id) {
            Some(Location::Resting(handle)) => {
                let order = self.arena.get(handle);
                (order.instrument, order.side, order.stp, order.placed())
            }
            Some(Location::Finished(_)) => match self.finished(order_id) {
                Some(finished) => (
                    finished.view.instrument,
                    finished.view.side,
                    finished.view.self_trade_prevention,
                    finished.placed,
                ),
                None => return false,
            },
            None => return false,
        };
        instrument == place.instrument
            && side == place.side
            && stp == place.self_trade_prevention
            && placed.order_type == place.order_type
            && placed.quantity_lots == place.quantity_lots
    }

    pub fn view(&self, order_id: OrderId) -> Option<OrderView> {
        match self.locate(order_id)? {
            Location::Resting(handle) => Some(self.arena.get(handle).view(0)),
            Location::Finished(_) => self.finished(order_id).map(|finished| finished.view),
        }
    }

    pub fn account_open_count(&self, account: AccountId) -> u32 {
        self.accounts.get(&account).map_or(0, |orders| orders.count)
    }

    /// The first of the account's open orders (lowest order id), if any.
    pub fn account_first(&self, account: AccountId) -> u32 {
        self.accounts
            .get(&account)
            .map_or(NIL, |orders| orders.head)
    }

    pub fn next_finished_index(&self) -> u64 {
        self.next_finished_index
    }

    pub fn digest(&self) -> SetHash {
        self.digest
    }

    /// Finished orders from oldest to newest.
    pub fn finished_oldest_first(&self) -> impl ExactSizeIterator<Item = &FinishedOrder> + '_ {
        self.finished.iter()
    }

    /// Adds a new resting order (not yet in any level) and returns its
    /// handle. Orders must arrive in order id order so that account lists
    /// stay sorted.
    pub fn insert_resting(&mut self, order: RestingOrder) -> u32 {
        let handle = self.insert_unlinked(order);
        self.link_account(handle);
        handle
    }

    /// Indexes a resting order without linking it into its account's list
    /// (snapshot restore links accounts afterwards, in order id order).
    pub fn insert_unlinked(&mut self, order: RestingOrder) -> u32 {
        let (order_id, account, client_order_id) =
            (order.order_id, order.account, order.client_order_id);
        self.digest.add(resting_hash(&order));
        let handle = self.arena.insert(order);
        self.index
            .insert(order_id, Location::Resting(handle).pack());
        self.open_count += 1;
        self.clients.insert((account, client_order_id), order_id);
        handle
    }

    /// Appends an indexed order to the back of its account's list.
    pub fn link_account(&mut self, handle: u32) {
        let account = self.arena.get(handle).account;
        let orders = self.accounts.entry(account).or_insert(AccountOrders {
            head: NIL,
            tail: NIL,
            count: 0,
        });
        let old_tail = orders.tail;
        orders.tail = handle;
        if old_tail == NIL {
            orders.head = handle;
        }
        orders.count += 1;
        let slot = self.arena.get_mut(handle);
        slot.account_prev = old_tail;
        slot.account_next = NIL;
        if old_tail != NIL {
            self.arena.get_mut(old_tail).account_next = handle;
        }
    }

    /// Changes a resting order, keeping the digest in step.
    pub fn update(&mut self, handle: u32, change: impl FnOnce(&mut RestingOrder)) {
        let order = self.arena.get_mut(handle);
        self.digest.remove(resting_hash(order));
        change(order);
        self.digest.add(resting_hash(order));
    }

    /// Moves a resting order (already unlinked from its level) to the
    /// finished window, with `cancelled_lots` of its open quantity cancelled.
    /// Returns its final view.
    pub fn finish_resting(&mut self, handle: u32, cancelled_lots: u64) -> OrderView {
        let order = self.arena.get(handle);
        let view = order.view(cancelled_lots);
        let (placed, account, prev, next) = (
            order.placed(),
            order.account,
            order.account_prev,
            order.account_next,
        );
        self.digest.remove(resting_hash(order));
        self.open_count -= 1;
        if prev != NIL {
            self.arena.get_mut(prev).account_next = next;
        }
        if next != NIL {
            self.arena.get_mut(next).account_prev = prev;
        }
        if let Some(orders) = self.accounts.get_mut(&account) {
            if orders.head == handle {
                orders.head = next;
            }
            if orders.tail == handle {
                orders.tail = prev;
            }
            orders.count -= 1;
            if orders.count == 0 {
                self.accounts.remove(&account);
            }
        }
        self.arena.remove(handle);
        self.remember_finished(view, placed);
        view
    }

    /// Records an order that finished without ever resting (IOC, FOK,
    /// market, or a limit order filled or cancelled on arrival).
    pub fn finish_taker(&mut self, view: OrderView, placed: Placed) {
        self.clients
            .insert((view.account, view.client_order_id), view.order_id);
        self.remember_finished(view, placed);
    }

    /// Appends to the finished window (re-pointing the order's index entry),
    /// first forgetting the oldest entry if the window is full, so the
    /// window never outgrows its reservation.
    fn remember_finished(&mut self, view: OrderView, placed: Placed) {
        if self.finished.len() >= self.finished_retained_max
            && let Some(forgotten) = self.finished.pop_front()
        {
            self.digest.remove(finished_hash(&forgotten));
            self.index.remove(forgotten.view.order_id);
            let key = (forgotten.view.account, forgotten.view.client_order_id);
            self.clients.remove(&key);
        }
        let finished = FinishedOrder {
            view,
            placed,
            finished_index: self.next_finished_index,
        };
        let location = Location::Finished((finished.finished_index & WINDOW_INDEX_MASK) as u32);
        self.index.insert(view.order_id, location.pack());
        self.next_finished_index += 1;
        self.digest.add(finished_hash(&finished));
        self.finished.push_back(finished);
    }

    /// Restores a remembered finished order from a snapshot, oldest first.
    /// Returns false if its order id or client key is already known.
    pub fn restore_finished(&mut self, finished: FinishedOrder) -> bool {
        let view = &finished.view;
        let key = (view.account, view.client_order_id);
        if self.locate(view.order_id).is_some() || self.clients.contains_key(&key) {
            return false;
        }
        self.clients.insert(key, view.order_id);
        self.next_finished_index = finished.finished_index;
        self.remember_finished(finished.view, finished.placed);
        true
    }

    /// Sets the window counter after a snapshot restore.
    pub fn set_next_finished_index(&mut self, next: u64) {
        self.next_finished_index = next;
    }

    /// Bytes reserved, for memory accounting (hash maps estimated from their
    /// capacity and entry size).
    pub fn capacity_bytes(&self) -> usize {
        fn map_bytes<K, V>(map: &FxHashMap<K, V>) -> usize {
            map.capacity() * (std::mem::size_of::<(K, V)>() + 1)
        }
        self.arena.capacity_bytes()
            + self.index.capacity_bytes()
            + map_bytes(&self.clients)
            + map_bytes(&self.accounts)
            + self.finished.capacity() * std::mem::size_of::<FinishedOrder>()
    }
}

fn side_code(side: Side) -> u64 {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

fn stp_code(stp: SelfTradePrevention) -> u64 {
    match stp {
        SelfTradePrevention::None => 0,
        SelfTradePrevention::CancelTaker => 1,
        SelfTradePrevention::CancelMaker => 2,
        SelfTradePrevention::CancelBoth => 3,
    }
}

/// Packs an order type into three words: kind, price, flag.
pub(crate) fn order_type_words(order_type: &OrderType) -> [u64; 3] {
    match *order_type {
        OrderType::Limit {
            price_ticks,
            time_in_force,
        } => {
            let tif = match time_in_force {
                TimeInForce::Gtc => 0,
                TimeInForce::Ioc => 1,
                TimeInForce::Fok => 2,
            };
            [0, price_ticks as u64, tif]
        }
        OrderType::PostOnly { price_ticks } => [1, price_ticks as u64, 0],
        OrderType::Market {
            protection_price_ticks,
        } => [
            2,
            protection_price_ticks.unwrap_or(0) as u64,
            u64::from(protection_price_ticks.is_some()),
        ],
    }
}

fn resting_hash(order: &RestingOrder) -> u64 {
    let flags = u64::from(order.instrument.0)
        | side_code(order.side) << 32
        | u64::from(order.post_only) << 33
        | stp_code(order.stp) << 34;
    hash_words(&[
        1,
        order.order_id.0,
        order.account.0,
        order.client_order_id.0,
        order.price_ticks as u64,
        order.quantity_lots,
        order.filled_lots,
        order.priority,
        order.accepted_timestamp_ns,
        order.placed_price_ticks as u64,
        order.placed_quantity_lots,
        flags,
    ])
}

fn finished_hash(finished: &FinishedOrder) -> u64 {
    let view = &finished.view;
    let status = match view.status {
        OrderStatus::Open => 0,
        OrderStatus::Filled => 1,
        OrderStatus::Cancelled => 2,
    };
    let [kind, price, flag] = order_type_words(&view.order_type);
    let [placed_kind, placed_price, placed_flag] = order_type_words(&finished.placed.order_type);
    let flags = u64::from(view.instrument.0)
        | side_code(view.side) << 32
        | stp_code(view.self_trade_prevention) << 34
        | status << 36
        | kind << 38
        | flag << 40
        | placed_kind << 42
        | placed_flag << 44;
    hash_words(&[
        2,
        view.order_id.0,
        view.account.0,
        view.client_order_id.0,
        price,
        view.quantity_lots,
        view.filled_lots,
        view.open_lots,
        view.cancelled_lots,
        view.accepted_timestamp_ns,
        placed_price,
        finished.placed.quantity_lots,
        finished.finished_index,
        flags,
    ])
}
