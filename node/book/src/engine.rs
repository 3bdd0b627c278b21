//! The engine: instruments and their books, command dispatch and validation,
//! and queries. Matching lives in `matching`, order bookkeeping in `store`.

use rustc_hash::FxHashMap;

use crate::arena::{NIL, RestingOrder};
use crate::command::{CancelOrder, Command, MassCancel, OrderRef, PlaceOrder, ReplaceOrder};
use crate::event::{CancelReason, Event, EventKind};
use crate::instrument::InstrumentSpec;
use crate::limits::{Limits, LimitsError};
use crate::matching::{
    EventSink, MatchEnd, Taker, can_fill, cancel_resting, done_event, match_taker,
};
use crate::reject::RejectReason;
use crate::side::BookSide;
use crate::store::{OrderStore, Placed};
use crate::types::{AccountId, ClientOrderId, InstrumentId, OrderId, OrderType, Side, TimeInForce};
use crate::view::{Depth, OrderTerms, OrderView, TopOfBook};
use matchengine_digest::StateDigest;

/// What an accepted command did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Accepted {
    InstrumentAdded,
    /// The order placed, cancelled or replaced.
    Order(OrderId),
    MassCancelled {
        orders_cancelled: u32,
    },
}

/// The outcome of one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reply {
    pub result: Result<Accepted, RejectReason>,
    /// True when this was a retry of a place the engine had already
    /// accepted: the original outcome, and no new events.
    pub replayed: bool,
}

impl Reply {
    fn new(result: Result<Accepted, RejectReason>) -> Reply {
        Reply {
            result,
            replayed: false,
        }
    }
}

/// One instrument's book.
#[derive(Clone, Debug)]
pub(crate) struct Book {
    pub spec: InstrumentSpec,
    pub next_sequence: u64,
    pub bids: BookSide,
    pub asks: BookSide,
}

impl Book {
    pub fn new(spec: InstrumentSpec) -> Book {
        Book {
            spec,
            next_sequence: 1,
            bids: BookSide::new(Side::Buy),
            asks: BookSide::new(Side::Sell),
        }
    }

    /// The side an order of `side` rests on, then the side it trades
    /// against, then the event sink.
    fn split<'a>(
        &'a mut self,
        side: Side,
        events: &'a mut Vec<Event>,
        timestamp_ns: u64,
    ) -> (&'a mut BookSide, &'a mut BookSide, EventSink<'a>) {
        let sink = EventSink {
            events,
            instrument: self.spec.instrument,
            next_sequence: &mut self.next_sequence,
            timestamp_ns,
        };
        match side {
            Side::Buy => (&mut self.bids, &mut self.asks, sink),
            Side::Sell => (&mut self.asks, &mut self.bids, sink),
        }
    }

    pub fn side(&self, side: Side) -> &BookSide {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }
}

/// The matching engine. See the crate documentation for its contract.
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) limits: Limits,
    pub(crate) books: Vec<Book>,
    pub(crate) book_index: FxHashMap<InstrumentId, u32>,
    pub(crate) store: OrderStore,
    pub(crate) next_order_id: u64,
    pub(crate) next_priority: u64,
}

impl Engine {
    /// An empty engine with these limits.
    pub fn new(limits: Limits) -> Result<Engine, LimitsError> {
        limits.validate()?;
        Ok(Engine {
            limits,
            books: Vec::new(),
            book_index: FxHashMap::default(),
            store: OrderStore::new(limits.orders_open_max, limits.finished_orders_retained_max),
            next_order_id: 1,
            next_priority: 1,
        })
    }

    /// Pre-allocates room for `additional` more resting orders (up to the
    /// engine's open order limit), so that the indexes never grow, and never
    /// stall a command, while they arrive. A venue sizes this to its expected
    /// peak; without it the indexes grow on demand.
    pub fn reserve_orders(&mut self, additional: usize) {
        let room = (self.limits.orders_open_max as usize).saturating_sub(self.store.open_count());
        self.store
            .reserve(additional.min(room), &placeholder_order());
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Executes one command, appending the events it causes to `events`.
    pub fn execute(
        &mut self,
        command: &Command,
        timestamp_ns: u64,
        events: &mut Vec<Event>,
    ) -> Reply {
        #[cfg(debug_assertions)]
        let events_before = events.len();
        let reply = match command {
            Command::AddInstrument(spec) => {
                Reply::new(self.add_instrument(spec, timestamp_ns, events))
            }
            Command::Place(place) => self.place(place, timestamp_ns, events),
            Command::Cancel(cancel) => Reply::new(self.cancel(cancel, timestamp_ns, events)),
            Command::Replace(replace) => Reply::new(self.replace(replace, timestamp_ns, events)),
            Command::MassCancel(mass) => Reply::new(self.mass_cancel(mass, timestamp_ns, events)),
        };
        #[cfg(debug_assertions)]
        self.assert_after_command(&reply, &events[events_before..]);
        reply
    }

    /// The contract's invariants that are cheap to check after every
    /// command (debug builds and tests): a rejection leaves no event; the
    /// events of one instrument are numbered without gaps; no book the
    /// command touched is crossed.
    #[cfg(debug_assertions)]
    fn assert_after_command(&self, reply: &Reply, events: &[Event]) {
        if reply.result.is_err() {
            assert!(events.is_empty(), "a rejected command emitted {events:?}");
            return;
        }
        for pair in events.windows(2) {
            if pair[0].instrument == pair[1].instrument {
                assert_eq!(
                    pair[1].sequence,
                    pair[0].sequence + 1,
                    "event sequence gap: {pair:?}"
                );
            }
        }
        let mut checked: Option<InstrumentId> = None;
        for event in events {
            if checked == Some(event.instrument) {
                continue;
            }
            checked = Some(event.instrument);
            if let Some(TopOfBook {
                bid: Some(bid),
                ask: Some(ask),
            }) = self.top_of_book(event.instrument)
            {
                assert!(
                    bid.price_ticks < ask.price_ticks,
                    "instrument {:?} is crossed: bid {} >= ask {}",
                    event.instrument,
                    bid.price_ticks,
                    ask.price_ticks
                );
            }
        }
    }

    fn add_instrument(
        &mut self,
        spec: &InstrumentSpec,
        timestamp_ns: u64,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, RejectReason> {
        if self.book_index.contains_key(&spec.instrument) {
            return Err(RejectReason::InstrumentExists);
        }
        spec.validate()?;
        if self.books.len() >= self.limits.instruments_max as usize {
            return Err(RejectReason::InstrumentLimitReached);
        }
        self.book_index
            .insert(spec.instrument, self.books.len() as u32);
        self.books.push(Book::new(*spec));
        let book = self.books.last_mut();
        if let Some(book) = book {
            let (_, _, mut sink) = book.split(Side::Buy, events, timestamp_ns);
            sink.emit(EventKind::InstrumentAdded { spec: *spec });
        }
        Ok(Accepted::InstrumentAdded)
    }

    fn place(&mut self, place: &PlaceOrder, timestamp_ns: u64, events: &mut Vec<Event>) -> Reply {
        let book_index = match self.book_index.get(&place.instrument) {
            Some(&index) => index,
            None => return Reply::new(Err(RejectReason::UnknownInstrument)),
        };
        if place.client_order_id.0 == 0 {
            return Reply::new(Err(RejectReason::InvalidClientOrderId));
        }
        if let Some(order_id) = self
            .store
            .client_order(place.account, place.client_order_id)
        {
            return if self.store.is_retry_of(order_id, place) {
                Reply {
                    result: Ok(Accepted::Order(order_id)),
                    replayed: true,
                }
            } else {
                Reply::new(Err(RejectReason::DuplicateClientOrderId))
            };
        }
        let result = self.place_new(place, book_index, timestamp_ns, events);
        Reply::new(result)
    }

    /// Validation of a new order, in the documented order.
    fn check_place(&self, place: &PlaceOrder, book: &Book) -> Result<(), RejectReason> {
        let spec = &book.spec;
        spec.check_quantity(place.quantity_lots)?;
        if let Some(price_ticks) = place.order_type.limit_price_ticks() {
            spec.check_price(price_ticks)?;
        }
        if place.order_type.rests() {
            if self.store.open_count() >= self.limits.orders_open_max as usize {
                return Err(RejectReason::EngineOrderLimitReached);
            }
            if self.store.account_open_count(place.account) >= self.limits.orders_per_account_max {
                return Err(RejectReason::AccountOrderLimitReached);
            }
            let own = book.side(place.side);
            if let Some(price_ticks) = place.order_type.limit_price_ticks()
                && own.level_count() >= self.limits.price_levels_per_side_max as usize
                && !own.has_level(price_ticks)
            {
                return Err(RejectReason::PriceLevelLimitReached);
            }
        }
        if let OrderType::PostOnly { price_ticks } = place.order_type
            && let Some(best) = book.side(place.side.opposite()).best_price_ticks()
            && place.side.crosses(price_ticks, best)
        {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        Ok(())
    }

    fn place_new(
        &mut self,
        place: &PlaceOrder,
        book_index: u32,
        timestamp_ns: u64,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, RejectReason> {
        self.check_place(place, &self.books[book_index as usize])?;
        let book = &mut self.books[book_index as usize];
        let order_id = OrderId(self.next_order_id);
        self.next_order_id += 1;
        self.store.advance_order_id(order_id);
        let (own, opposite, mut sink) = book.split(place.side, events, timestamp_ns);
        sink.emit(EventKind::OrderAccepted {
            order_id,
            account: place.account,
            client_order_id: place.client_order_id,
            side: place.side,
            order_type: place.order_type,
            quantity_lots: place.quantity_lots,
            self_trade_prevention: place.self_trade_prevention,
        });
        let mut taker = Taker {
            order_id,
            account: place.account,
            side: place.side,
            limit_ticks: place.order_type.limit_price_ticks(),
            stp: place.self_trade_prevention,
            remaining_lots: place.quantity_lots,
            filled_lots: 0,
        };
        let is_fok = matches!(
            place.order_type,
            OrderType::Limit {
                time_in_force: TimeInForce::Fok,
                ..
            }
        );
        let end = if is_fok && !can_fill(opposite, &self.store, &taker) {
            None
        } else {
            Some(match_taker(
                opposite,
                &mut self.store,
                &mut sink,
                &mut taker,
            ))
        };
        let cancel_reason = match end {
            None => Some(CancelReason::FokUnfilled),
            Some(MatchEnd::Filled) => None,
            Some(MatchEnd::SelfTrade) => Some(CancelReason::SelfTrade),
            Some(MatchEnd::LimitReached)
                if matches!(place.order_type, OrderType::Market { .. }) =>
            {
                Some(CancelReason::MarketProtection)
            }
            Some(MatchEnd::LimitReached | MatchEnd::SideExhausted) if !place.order_type.rests() => {
                Some(CancelReason::IocRemainder)
            }
            Some(MatchEnd::LimitReached | MatchEnd::SideExhausted) => {
                let (price_ticks, post_only) = match place.order_type {
                    OrderType::PostOnly { price_ticks } => (price_ticks, true),
                    _ => (taker.limit_ticks.unwrap_or_default(), false),
                };
                let priority = self.next_priority;
                self.next_priority += 1;
                let handle = self.store.insert_resting(RestingOrder {
                    order_id,
                    account: place.account,
                    client_order_id: place.client_order_id,
                    price_ticks,
                    quantity_lots: place.quantity_lots,
                    filled_lots: taker.filled_lots,
                    priority,
                    accepted_timestamp_ns: timestamp_ns,
                    placed_price_ticks: price_ticks,
                    placed_quantity_lots: place.quantity_lots,
                    instrument: place.instrument,
                    book: book_index,
                    level: NIL,
                    prev: NIL,
                    next: NIL,
                    account_prev: NIL,
                    account_next: NIL,
                    side: place.side,
                    post_only,
                    stp: place.self_trade_prevention,
                });
                own.push_back(&mut self.store.arena, handle);
                return Ok(Accepted::Order(order_id));
            }
        };
        let cancelled_lots = taker.remaining_lots;
        if let Some(reason) = cancel_reason {
            sink.emit(EventKind::OrderCancelled {
                order_id,
                account: place.account,
                quantity_lots: cancelled_lots,
                reason,
            });
        }
        let terms = OrderTerms {
            order_id,
            instrument: place.instrument,
            account: place.account,
            client_order_id: place.client_order_id,
            side: place.side,
            order_type: place.order_type,
            self_trade_prevention: place.self_trade_prevention,
            quantity_lots: place.quantity_lots,
        };
        let view = OrderView::finished(terms, taker.filled_lots, cancelled_lots, timestamp_ns);
        sink.emit(done_event(&view));
        let placed = Placed {
            order_type: place.order_type,
            quantity_lots: place.quantity_lots,
        };
        self.store.finish_taker(view, placed);
        Ok(Accepted::Order(order_id))
    }

    /// Finds an open order of `account`, telling unknown from finished.
    fn resolve_open(&self, account: AccountId, order: OrderRef) -> Result<u32, RejectReason> {
        let order_id = match order {
            OrderRef::OrderId(order_id) => order_id,
            OrderRef::ClientOrderId(client_order_id) => self
                .store
                .client_order(account, client_order_id)
                .ok_or(RejectReason::UnknownOrder)?,
        };
        if let Some(handle) = self.store.open_handle(order_id) {
            return if self.store.arena.get(handle).account == account {
                Ok(handle)
            } else {
                Err(RejectReason::UnknownOrder)
            };
        }
        match self.store.finished(order_id) {
            Some(finished) if finished.view.account == account => Err(RejectReason::OrderNotOpen),
            _ => Err(RejectReason::UnknownOrder),
        }
    }

    fn cancel(
        &mut self,
        cancel: &CancelOrder,
        timestamp_ns: u64,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, RejectReason> {
        let handle = self.resolve_open(cancel.account, cancel.order)?;
        let order = self.store.arena.get(handle);
        let (order_id, book_index, side) = (order.order_id, order.book, order.side);
        let book = &mut self.books[book_index as usize];
        let (own, _, mut sink) = book.split(side, events, timestamp_ns);
        cancel_resting(own, &mut self.store, &mut sink, handle, CancelReason::User);
        Ok(Accepted::Order(order_id))
    }

    fn mass_cancel(
        &mut self,
        mass: &MassCancel,
        timestamp_ns: u64,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, RejectReason> {
        if let Some(instrument) = mass.instrument
            && !self.book_index.contains_key(&instrument)
        {
            return Err(RejectReason::UnknownInstrument);
        }
        let mut orders_cancelled = 0u32;
        let mut handle = self.store.account_first(mass.account);
        while handle != NIL {
            let order = self.store.arena.get(handle);
            let (next, instrument, book_index, side) =
                (order.account_next, order.instrument, order.book, order.side);
            if mass.instrument.is_none_or(|wanted| wanted == instrument) {
                let book = &mut self.books[book_index as usize];
                let (own, _, mut sink) = book.split(side, events, timestamp_ns);
                cancel_resting(
                    own,
                    &mut self.store,
                    &mut sink,
                    handle,
                    CancelReason::MassCancel,
                );
                orders_cancelled += 1;
            }
            handle = next;
        }
        Ok(Accepted::MassCancelled { orders_cancelled })
    }

    fn replace(
        &mut self,
        replace: &ReplaceOrder,
        timestamp_ns: u64,
        events: &mut Vec<Event>,
    ) -> Result<Accepted, RejectReason> {
        let handle = self.resolve_open(replace.account, replace.order)?;
        let order = self.store.arena.get(handle).clone();
        let book = &mut self.books[order.book as usize];
        book.spec.check_quantity(replace.quantity_lots)?;
        book.spec.check_price(replace.price_ticks)?;
        if replace.quantity_lots <= order.filled_lots {
            return Err(RejectReason::ReplaceQuantityNotAboveFilled);
        }
        let same_price = replace.price_ticks == order.price_ticks;
        if same_price && replace.quantity_lots == order.quantity_lots {
            return Err(RejectReason::ReplaceNoChange);
        }
        let (own, opposite, mut sink) = book.split(order.side, events, timestamp_ns);
        if same_price && replace.quantity_lots < order.quantity_lots {
            own.reduce(order.level, order.quantity_lots - replace.quantity_lots);
            self.store.update(handle, |resting| {
                resting.quantity_lots = replace.quantity_lots
            });
            sink.emit(EventKind::OrderReplaced {
                order_id: order.order_id,
                account: order.account,
                price_ticks: replace.price_ticks,
                quantity_lots: replace.quantity_lots,
                open_lots: replace.quantity_lots - order.filled_lots,
                priority_kept: true,
            });
            return Ok(Accepted::Order(order.order_id));
        }
        let crosses = opposite
            .best_price_ticks()
            .is_some_and(|best| order.side.crosses(replace.price_ticks, best));
        // Room to rest first, then post-only: the same order as a place.
        let alone_at_level = own.level(order.level).order_count == 1;
        if own.level_count() >= self.limits.price_levels_per_side_max as usize
            && !own.has_level(replace.price_ticks)
            && !alone_at_level
        {
            return Err(RejectReason::PriceLevelLimitReached);
        }
        if order.post_only && crosses {
            return Err(RejectReason::WouldTakeLiquidity);
        }
        own.unlink(&mut self.store.arena, handle);
        let priority = self.next_priority;
        self.next_priority += 1;
        self.store.update(handle, |resting| {
            resting.price_ticks = replace.price_ticks;
            resting.quantity_lots = replace.quantity_lots;
            resting.priority = priority;
        });
        let open_lots = replace.quantity_lots - order.filled_lots;
        sink.emit(EventKind::OrderReplaced {
            order_id: order.order_id,
            account: order.account,
            price_ticks: replace.price_ticks,
            quantity_lots: replace.quantity_lots,
            open_lots,
            priority_kept: false,
        });
        let mut end = MatchEnd::SideExhausted;
        if crosses {
            let mut taker = Taker {
                order_id: order.order_id,
                account: order.account,
                side: order.side,
                limit_ticks: Some(replace.price_ticks),
                stp: order.stp,
                remaining_lots: open_lots,
                filled_lots: 0,
            };
            end = match_taker(opposite, &mut self.store, &mut sink, &mut taker);
            self.store
                .update(handle, |resting| resting.filled_lots += taker.filled_lots);
        }
        match end {
            MatchEnd::Filled => {
                let view = self.store.finish_resting(handle, 0);
                sink.emit(done_event(&view));
            }
            MatchEnd::SelfTrade => {
                let cancelled_lots = self.store.arena.get(handle).open_lots();
                let view = self.store.finish_resting(handle, cancelled_lots);
                sink.emit(EventKind::OrderCancelled {
                    order_id: view.order_id,
                    account: view.account,
                    quantity_lots: cancelled_lots,
                    reason: CancelReason::SelfTrade,
                });
                sink.emit(done_event(&view));
            }
            MatchEnd::SideExhausted | MatchEnd::LimitReached => {
                own.push_back(&mut self.store.arena, handle);
            }
        }
        Ok(Accepted::Order(order.order_id))
    }

    /// The instrument's spec, if it exists.
    pub fn instrument(&self, instrument: InstrumentId) -> Option<&InstrumentSpec> {
        let index = *self.book_index.get(&instrument)?;
        self.books.get(index as usize).map(|book| &book.spec)
    }

    /// Every instrument, in the order they were added.
    pub fn instruments(&self) -> impl Iterator<Item = &InstrumentSpec> + '_ {
        self.books.iter().map(|book| &book.spec)
    }

    fn book(&self, instrument: InstrumentId) -> Option<&Book> {
        let index = *self.book_index.get(&instrument)?;
        self.books.get(index as usize)
    }

    /// The sequence number the instrument's next event will carry.
    pub fn next_sequence(&self, instrument: InstrumentId) -> Option<u64> {
        self.book(instrument).map(|book| book.next_sequence)
    }

    /// Best bid and offer; `None` for an unknown instrument.
    pub fn top_of_book(&self, instrument: InstrumentId) -> Option<TopOfBook> {
        let book = self.book(instrument)?;
        let best = |side: &BookSide| side.best().map(|level| side.level(level).view());
        Some(TopOfBook {
            bid: best(&book.bids),
            ask: best(&book.asks),
        })
    }

    /// The best `levels_max` levels of each side, best first; `None` for an
    /// unknown instrument.
    pub fn depth(&self, instrument: InstrumentId, levels_max: usize) -> Option<Depth> {
        let book = self.book(instrument)?;
        let levels = |side: &BookSide| {
            side.levels_best_first()
                .take(levels_max)
                .map(|level| level.view())
                .collect()
        };
        Some(Depth {
            bids: levels(&book.bids),
            asks: levels(&book.asks),
        })
    }

    /// One order, open or finished and still remembered.
    pub fn order(&self, order_id: OrderId) -> Option<OrderView> {
        self.store.view(order_id)
    }

    /// One order by the client order id its account placed it with.
    pub fn order_by_client_id(
        &self,
        account: AccountId,
        client_order_id: ClientOrderId,
    ) -> Option<OrderView> {
        self.store
            .client_order(account, client_order_id)
            .and_then(|order_id| self.store.view(order_id))
    }

    /// Resting orders across all books.
    pub fn open_order_count(&self) -> usize {
        self.store.open_count()
    }

    /// Bytes of memory the engine has reserved (an estimate for hash maps).
    pub fn memory_bytes(&self) -> usize {
        self.store.capacity_bytes()
            + self
                .books
                .iter()
                .map(|book| book.bids.capacity_bytes() + book.asks.capacity_bytes())
                .sum::<usize>()
    }

    /// The digest of the whole state. O(instruments).
    pub fn digest(&self) -> StateDigest {
        let mut words = Vec::with_capacity(8 + self.books.len() * 7);
        words.extend([
            u64::from(self.limits.instruments_max),
            u64::from(self.limits.orders_open_max),
            u64::from(self.limits.orders_per_account_max),
            u64::from(self.limits.price_levels_per_side_max),
            u64::from(self.limits.finished_orders_retained_max),
            self.next_order_id,
            self.next_priority,
            self.store.next_finished_index(),
        ]);
        for book in &self.books {
            let spec = &book.spec;
            words.extend([
                u64::from(spec.instrument.0),
                matchengine_digest::hash_words(&symbol_words(spec)),
                spec.price_ticks_min as u64,
                spec.price_ticks_max as u64,
                spec.quantity_lots_min,
                spec.quantity_lots_max,
                book.next_sequence,
            ]);
        }
        self.store.digest().finish(&words)
    }
}

/// What a reserved, never-used arena slot holds.
pub(crate) fn placeholder_order() -> RestingOrder {
    RestingOrder {
        order_id: OrderId(0),
        account: AccountId(0),
        client_order_id: ClientOrderId(0),
        price_ticks: 0,
        quantity_lots: 0,
        filled_lots: 0,
        priority: 0,
        accepted_timestamp_ns: 0,
        placed_price_ticks: 0,
        placed_quantity_lots: 0,
        instrument: InstrumentId(0),
        book: NIL,
        level: NIL,
        prev: NIL,
        next: NIL,
        account_prev: NIL,
        account_next: NIL,
        side: Side::Buy,
        post_only: false,
        stp: crate::types::SelfTradePrevention::None,
    }
}

/// A symbol as two words, for hashing.
pub(crate) fn symbol_words(spec: &InstrumentSpec) -> [u64; 3] {
    let mut bytes = [0u8; 16];
    let text = spec.symbol.as_str().as_bytes();
    bytes[..text.len()].copy_from_slice(text);
    let (low, high) = bytes.split_at(8);
    let word = |half: &[u8]| {
        let mut array = [0u8; 8];
        array.copy_from_slice(half);
        u64::from_le_bytes(array)
    };
    [word(low), word(high), text.len() as u64]
}
