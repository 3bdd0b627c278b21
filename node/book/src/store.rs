//! Every order the engine knows, apart from the books' price ladders: the
//! resting orders (arena plus id index), each account's list of open orders,
//! the client-order-id index, the window of remembered finished orders, and
//! the running digest over all of them. Every change to an order goes
//! through here so that the digest can never drift from the state.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::arena::{Arena, NIL, RestingOrder};
use crate::digest::{SetHash, hash_words};
use crate::order_index::OrderIndex;
use crate::types::{
    AccountId, ClientOrderId, OrderId, OrderType, SelfTradePrevention, Side, TimeInForce,
};
use crate::view::{OrderStatus, OrderView};

/// A finished order kept for idempotent retries and order queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FinishedOrder {
    pub view: OrderView,
    pub fingerprint: u64,
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

#[derive(Clone, Debug)]
pub(crate) struct OrderStore {
    pub arena: Arena,
    open: OrderIndex,
    clients: FxHashMap<(AccountId, ClientOrderId), OrderId>,
    accounts: FxHashMap<AccountId, AccountOrders>,
    finished: FxHashMap<OrderId, FinishedOrder>,
    finished_fifo: VecDeque<OrderId>,
    finished_retained_max: usize,
    next_finished_index: u64,
    digest: SetHash,
}

impl OrderStore {
    pub fn new(open_max: u32, finished_retained_max: u32) -> OrderStore {
        OrderStore {
            arena: Arena::default(),
            open: OrderIndex::new(open_max, 1),
            clients: FxHashMap::default(),
            accounts: FxHashMap::default(),
            finished: FxHashMap::default(),
            finished_fifo: VecDeque::new(),
            finished_retained_max: finished_retained_max as usize,
            next_finished_index: 0,
            digest: SetHash::default(),
        }
    }

    /// Pre-allocates room for `additional` more open orders, so that no
    /// index grows (and rehashes) while they arrive.
    pub fn reserve(&mut self, additional: usize, placeholder: &RestingOrder) {
        self.arena.reserve(additional, placeholder);
        self.open.reserve(additional);
        self.clients.reserve(additional);
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn open_handle(&self, order_id: OrderId) -> Option<u32> {
        self.open.get(order_id)
    }

    /// Notes that `order_id` was just handed out (ids only grow).
    pub fn advance_order_id(&mut self, order_id: OrderId) {
        self.open.advance(order_id);
    }

    pub fn client_order(
        &self,
        account: AccountId,
        client_order_id: ClientOrderId,
    ) -> Option<OrderId> {
        self.clients.get(&(account, client_order_id)).copied()
    }

    pub fn finished(&self, order_id: OrderId) -> Option<&FinishedOrder> {
        self.finished.get(&order_id)
    }

    /// The fingerprint of a known order, open or remembered.
    pub fn fingerprint(&self, order_id: OrderId) -> Option<u64> {
        match self.open_handle(order_id) {
            Some(handle) => Some(self.arena.get(handle).fingerprint),
            None => self.finished(order_id).map(|finished| finished.fingerprint),
        }
    }

    pub fn view(&self, order_id: OrderId) -> Option<OrderView> {
        match self.open_handle(order_id) {
            Some(handle) => Some(self.arena.get(handle).view(0)),
            None => self.finished(order_id).map(|finished| finished.view),
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
    pub fn finished_oldest_first(&self) -> impl Iterator<Item = &FinishedOrder> + '_ {
        self.finished_fifo
            .iter()
            .filter_map(|order_id| self.finished.get(order_id))
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
        self.open.insert(order_id, handle);
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
        let (fingerprint, account, prev, next) = (
            order.fingerprint,
            order.account,
            order.account_prev,
            order.account_next,
        );
        self.digest.remove(resting_hash(order));
        self.open.remove(view.order_id);
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
        self.remember_finished(view, fingerprint);
        view
    }

    /// Records an order that finished without ever resting (IOC, FOK,
    /// market, or a limit order filled or cancelled on arrival).
    pub fn finish_taker(&mut self, view: OrderView, fingerprint: u64) {
        self.clients
            .insert((view.account, view.client_order_id), view.order_id);
        self.remember_finished(view, fingerprint);
    }

    fn remember_finished(&mut self, view: OrderView, fingerprint: u64) {
        let finished = FinishedOrder {
            view,
            fingerprint,
            finished_index: self.next_finished_index,
        };
        self.next_finished_index += 1;
        self.digest.add(finished_hash(&finished));
        self.finished.insert(view.order_id, finished);
        self.finished_fifo.push_back(view.order_id);
        while self.finished_fifo.len() > self.finished_retained_max {
            let Some(oldest) = self.finished_fifo.pop_front() else {
                break;
            };
            if let Some(forgotten) = self.finished.remove(&oldest) {
                self.digest.remove(finished_hash(&forgotten));
                let key = (forgotten.view.account, forgotten.view.client_order_id);
                self.clients.remove(&key);
            }
        }
    }

    /// Restores a remembered finished order from a snapshot, oldest first.
    pub fn restore_finished(&mut self, finished: FinishedOrder) {
        self.next_finished_index = finished.finished_index;
        self.clients.insert(
            (finished.view.account, finished.view.client_order_id),
            finished.view.order_id,
        );
        self.remember_finished(finished.view, finished.fingerprint);
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
            + self.open.capacity_bytes()
            + map_bytes(&self.clients)
            + map_bytes(&self.accounts)
            + map_bytes(&self.finished)
            + self.finished_fifo.capacity() * std::mem::size_of::<OrderId>()
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
        order.fingerprint,
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
    let flags = u64::from(view.instrument.0)
        | side_code(view.side) << 32
        | stp_code(view.self_trade_prevention) << 34
        | status << 36
        | kind << 38
        | flag << 40;
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
        finished.fingerprint,
        finished.finished_index,
        flags,
    ])
}

/// Hash of every field of a place command: a retry must match it exactly.
pub(crate) fn place_fingerprint(place: &crate::command::PlaceOrder) -> u64 {
    let [kind, price, flag] = order_type_words(&place.order_type);
    hash_words(&[
        u64::from(place.instrument.0),
        place.account.0,
        place.client_order_id.0,
        side_code(place.side),
        kind,
        price,
        flag,
        place.quantity_lots,
        stp_code(place.self_trade_prevention),
    ])
}
