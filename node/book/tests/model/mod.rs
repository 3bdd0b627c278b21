//! A deliberately simple reference model of the matching contract in
//! `src/lib.rs`, for the differential tests. It shares no code with the
//! engine: every order ever accepted sits in one `Vec` indexed by order id,
//! and a book side is recomputed by filtering and sorting the open orders
//! whenever it is needed. Slow and obvious on purpose; it must never grow
//! cleverness, because its only job is to be easy to believe.

use std::collections::VecDeque;

use matchengine_book::{
    Accepted, AccountId, CancelOrder, CancelReason, ClientOrderId, Command, Depth, Event,
    EventKind, InstrumentId, InstrumentSpec, LevelView, Limits, MassCancel, OrderId, OrderRef,
    OrderStatus, OrderType, OrderView, PlaceOrder, RejectReason, ReplaceOrder, Reply,
    SelfTradePrevention, Side, TimeInForce,
};

/// Where an order is in its life. A forgotten order is kept in the `Vec` so
/// that indexes stay order ids, but no command or query can see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Open,
    Finished,
    Forgotten,
}

#[derive(Clone, Debug)]
struct Order {
    /// The place command exactly as it was accepted: idempotent retries are
    /// compared against it, not against the order's current price/quantity.
    place: PlaceOrder,
    order_id: OrderId,
    /// The order type with its current price (replaces change it).
    order_type: OrderType,
    quantity_lots: u64,
    filled_lots: u64,
    open_lots: u64,
    cancelled_lots: u64,
    accepted_timestamp_ns: u64,
    /// Time priority: smaller arrived earlier. Renewed when a replace loses
    /// priority.
    arrival: u64,
    life: Life,
}

impl Order {
    fn instrument(&self) -> InstrumentId {
        self.place.instrument
    }

    fn account(&self) -> AccountId {
        self.place.account
    }

    fn side(&self) -> Side {
        self.place.side
    }

    fn view(&self) -> OrderView {
        let status = match self.life {
            Life::Open => OrderStatus::Open,
            _ if self.cancelled_lots == 0 => OrderStatus::Filled,
            _ => OrderStatus::Cancelled,
        };
        OrderView {
            order_id: self.order_id,
            instrument: self.place.instrument,
            account: self.place.account,
            client_order_id: self.place.client_order_id,
            side: self.place.side,
            order_type: self.order_type,
            self_trade_prevention: self.place.self_trade_prevention,
            quantity_lots: self.quantity_lots,
            filled_lots: self.filled_lots,
            open_lots: self.open_lots,
            cancelled_lots: self.cancelled_lots,
            status,
            accepted_timestamp_ns: self.accepted_timestamp_ns,
        }
    }
}

#[derive(Clone, Debug)]
struct Instrument {
    spec: InstrumentSpec,
    sequence_last: u64,
}

/// Why a taker stopped matching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Nothing left to fill.
    Filled,
    /// Self-trade prevention cancels the taker's remainder.
    SelfTrade,
    /// The next resting order is beyond the taker's limit.
    AtLimit,
    /// The opposite side is empty.
    SideEmpty,
}

/// The price a taker may trade up to (buy) or down to (sell); `None` trades
/// at any price.
fn limit_of(order_type: OrderType) -> Option<i64> {
    match order_type {
        OrderType::Limit { price_ticks, .. } | OrderType::PostOnly { price_ticks } => {
            Some(price_ticks)
        }
        OrderType::Market {
            protection_price_ticks,
        } => protection_price_ticks,
    }
}

fn may_rest(order_type: OrderType) -> bool {
    match order_type {
        OrderType::Limit { time_in_force, .. } => time_in_force == TimeInForce::Gtc,
        OrderType::PostOnly { .. } => true,
        OrderType::Market { .. } => false,
    }
}

/// True when a taker on `side` with limit `limit_ticks` may trade at
/// `price_ticks`.
fn crosses(side: Side, limit_ticks: i64, price_ticks: i64) -> bool {
    match side {
        Side::Buy => price_ticks <= limit_ticks,
        Side::Sell => price_ticks >= limit_ticks,
    }
}

fn other(side: Side) -> Side {
    match side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

fn check_quantity(spec: &InstrumentSpec, quantity_lots: u64) -> Result<(), RejectReason> {
    if quantity_lots == 0 {
        return Err(RejectReason::ZeroQuantity);
    }
    if quantity_lots < spec.quantity_lots_min {
        return Err(RejectReason::QuantityBelowMinimum);
    }
    if quantity_lots > spec.quantity_lots_max {
        return Err(RejectReason::QuantityAboveMaximum);
    }
    Ok(())
}

fn check_price(spec: &InstrumentSpec, price_ticks: i64) -> Result<(), RejectReason> {
    if price_ticks < spec.price_ticks_min || price_ticks > spec.price_ticks_max {
        return Err(RejectReason::PriceOutOfBand);
    }
    Ok(())
}

/// The reference model. Same commands in, same replies, events and query
/// answers out as the engine.
#[derive(Clone, Debug)]
pub struct Model {
    limits: Limits,
    instruments: Vec<Instrument>,
    /// Every accepted order; `orders[i]` has order id `i + 1`.
    orders: Vec<Order>,
    /// Indexes of the finished orders still remembered, oldest first.
    finished: VecDeque<usize>,
    arrival_last: u64,
    /// The timestamp of the command being executed.
    now_ns: u64,
}

impl Model {
    pub fn new(limits: Limits) -> Model {
        Model {
            limits,
            instruments: Vec::new(),
            orders: Vec::new(),
            finished: VecDeque::new(),
            arrival_last: 0,
            now_ns: 0,
        }
    }

    pub fn execute(
        &mut self,
        command: &Command,
        timestamp_ns: u64,
        events: &mut Vec<Event>,
    ) -> Reply {
        self.now_ns = timestamp_ns;
        let result = match command {
            Command::AddInstrument(spec) => self.add_instrument(spec, events),
            Command::Place(place) => self.place(place, events),
            Command::Cancel(cancel) => self.cancel(cancel, events),
            Command::Replace(replace) => self.replace(replace, events),
            Command::MassCancel(mass) => self.mass_cancel(mass, events),
        };
        match result {
            Ok((accepted, replayed)) => Reply {
                result: Ok(accepted),
                replayed,
            },
            Err(reason) => Reply {
                result: Err(reason),
                replayed: false,
            },
        }
    }

    // ---- queries ----

    pub fn instrument(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        self.instruments
            .iter()
            .find(|i| i.spec.instrument == id)
            .map(|i| &i.spec)
    }

    pub fn top_of_book(&self, id: InstrumentId) -> Option<matchengine_book::TopOfBook> {
        let depth = self.depth(id, 1)?;
        Some(matchengine_book::TopOfBook {
            bid: depth.bids.first().copied(),
            ask: depth.asks.first().copied(),
        })
    }

    pub fn depth(&self, id: InstrumentId, levels_max: usize) -> Option<Depth> {
        self.instrument(id)?;
        let mut bids = self.levels(id, Side::Buy);
        let mut asks = self.levels(id, Side::Sell);
        bids.truncate(levels_max);
        asks.truncate(levels_max);
        Some(Depth { bids, asks })
    }

    pub fn order(&self, id: OrderId) -> Option<OrderView> {
        let index = usize::try_from(id.0).ok()?.checked_sub(1)?;
        let order = self.orders.get(index)?;
        (order.life != Life::Forgotten).then(|| order.view())
    }

    pub fn order_by_client_id(&self, account: AccountId, id: ClientOrderId) -> Option<OrderView> {
        self.remembered_by_client_id(account, id)
            .map(|index| self.orders[index].view())
    }

    pub fn open_order_count(&self) -> usize {
        self.orders.iter().filter(|o| o.life == Life::Open).count()
    }

    // ---- the book, recomputed on every use ----

    /// Indexes of the open orders on one side of one book, in priority
    /// order: best price first, then earliest arrival.
    fn side_in_priority(&self, instrument: InstrumentId, side: Side) -> Vec<usize> {
        let mut indexes: Vec<usize> = (0..self.orders.len())
            .filter(|&i| {
                let o = &self.orders[i];
                o.life == Life::Open && o.instrument() == instrument && o.side() == side
            })
            .collect();
        indexes.sort_by_key(|&i| {
            let o = &self.orders[i];
            let price = self.price_of(i);
            let better_first = match side {
                Side::Buy => -price,
                Side::Sell => price,
            };
            (better_first, o.arrival)
        });
        indexes
    }

    /// The price of a resting order (only limit and post-only orders rest).
    fn price_of(&self, index: usize) -> i64 {
        limit_of(self.orders[index].order_type).expect("only orders with a price rest")
    }

    /// Aggregated levels, best first.
    fn levels(&self, instrument: InstrumentId, side: Side) -> Vec<LevelView> {
        let mut levels: Vec<LevelView> = Vec::new();
        for index in self.side_in_priority(instrument, side) {
            let price_ticks = self.price_of(index);
            let open_lots = self.orders[index].open_lots;
            match levels.last_mut() {
                Some(level) if level.price_ticks == price_ticks => {
                    level.quantity_lots += open_lots;
                    level.order_count += 1;
                }
                _ => levels.push(LevelView {
                    price_ticks,
                    quantity_lots: open_lots,
                    order_count: 1,
                }),
            }
        }
        levels
    }

    fn level_prices(&self, instrument: InstrumentId, side: Side) -> Vec<i64> {
        self.levels(instrument, side)
            .iter()
            .map(|l| l.price_ticks)
            .collect()
    }

    fn best_price(&self, instrument: InstrumentId, side: Side) -> Option<i64> {
        self.level_prices(instrument, side).first().copied()
    }

    fn remembered_by_client_id(&self, account: AccountId, id: ClientOrderId) -> Option<usize> {
        (0..self.orders.len()).find(|&i| {
            let o = &self.orders[i];
            o.life != Life::Forgotten && o.account() == account && o.place.client_order_id == id
        })
    }

    /// Finds one of `account`'s orders for a cancel or replace. Another
    /// account's order is `UnknownOrder`, exactly like one never seen; so is
    /// client order id zero, which no order can have.
    fn find(&self, account: AccountId, order: OrderRef) -> Result<usize, RejectReason> {
        let found = match order {
            OrderRef::OrderId(id) => usize::try_from(id.0)
                .ok()
                .and_then(|id| id.checked_sub(1))
                .filter(|&i| {
                    i < self.orders.len()
                        && self.orders[i].life != Life::Forgotten
                        && self.orders[i].account() == account
                }),
            OrderRef::ClientOrderId(id) => self.remembered_by_client_id(account, id),
        };
        let index = found.ok_or(RejectReason::UnknownOrder)?;
        if self.orders[index].life != Life::Open {
            return Err(RejectReason::OrderNotOpen);
        }
        Ok(index)
    }

    // ---- events and order life ----

    fn emit(&mut self, events: &mut Vec<Event>, instrument: InstrumentId, kind: EventKind) {
        let book = self
            .instruments
            .iter_mut()
            .find(|i| i.spec.instrument == instrument)
            .expect("events are only emitted for known instruments");
        book.sequence_last += 1;
        events.push(Event {
            instrument,
            sequence: book.sequence_last,
            timestamp_ns: self.now_ns,
            kind,
        });
    }

    /// `OrderDone`, then the order joins the window of remembered finished
    /// orders, pushing out the oldest when the window is full.
    fn finish(&mut self, index: usize, events: &mut Vec<Event>) {
        let o = &self.orders[index];
        assert_eq!(o.open_lots, 0, "only an order with nothing open finishes");
        let kind = EventKind::OrderDone {
            order_id: o.order_id,
            account: o.account(),
            filled_lots: o.filled_lots,
            cancelled_lots: o.cancelled_lots,
        };
        self.emit(events, o.instrument(), kind);
        self.orders[index].life = Life::Finished;
        self.finished.push_back(index);
        while self.finished.len() > self.limits.finished_orders_retained_max as usize {
            let oldest = self.finished.pop_front().expect("the window is not empty");
            self.orders[oldest].life = Life::Forgotten;
        }
    }

    fn cancel_remainder(&mut self, index: usize, reason: CancelReason, events: &mut Vec<Event>) {
        let o = &mut self.orders[index];
        let quantity_lots = o.open_lots;
        o.cancelled_lots += quantity_lots;
        o.open_lots = 0;
        let kind = EventKind::OrderCancelled {
            order_id: o.order_id,
            account: o.account(),
            quantity_lots,
            reason,
        };
        let instrument = o.instrument();
        self.emit(events, instrument, kind);
        self.finish(index, events);
    }

    fn next_arrival(&mut self) -> u64 {
        self.arrival_last += 1;
        self.arrival_last
    }

    // ---- commands ----

    fn add_instrument(
        &mut self,
        spec: &InstrumentSpec,
        events: &mut Vec<Event>,
    ) -> Result<(Accepted, bool), RejectReason> {
        if self.instrument(spec.instrument).is_some() {
            return Err(RejectReason::InstrumentExists);
        }
        let price_limit = matchengine_book::PRICE_TICKS_LIMIT;
        if spec.price_ticks_min > spec.price_ticks_max
            || spec.price_ticks_min < -price_limit
            || spec.price_ticks_max > price_limit
        {
            return Err(RejectReason::InvalidPriceBand);
        }
        if spec.quantity_lots_min < 1
            || spec.quantity_lots_min > spec.quantity_lots_max
            || spec.quantity_lots_max > matchengine_book::QUANTITY_LOTS_LIMIT
        {
            return Err(RejectReason::InvalidQuantityRange);
        }
        // The contract does not order the spec checks against the limit; the
        // engine validates the spec first, which is as reasonable as any.
        if self.instruments.len() >= self.limits.instruments_max as usize {
            return Err(RejectReason::InstrumentLimitReached);
        }
        self.instruments.push(Instrument {
            spec: *spec,
            sequence_last: 0,
        });
        self.emit(
            events,
            spec.instrument,
            EventKind::InstrumentAdded { spec: *spec },
        );
        Ok((Accepted::InstrumentAdded, false))
    }

    fn place(
        &mut self,
        place: &PlaceOrder,
        events: &mut Vec<Event>,
    ) -> Result<(Accepted, bool), RejectReason> {
        let spec = *self
            .instrument(place.instrument)
            .ok_or(RejectReason::UnknownInstrument)?;
        if place.client_order_id.0 == 0 {
            return Err(RejectReason::InvalidClientOrderId);
        }
        // Checked before quantity and price: a retry is answered as the
        // original was, and anything else reusing the key is a duplicate.
        if let Some(index) = self.remembered_by_client_id(place.account, place.client_order_id) {
            let original = &self.orders[index];
            if original.place == *place {
                return Ok((Accepted::Order(original.order_id), true));
            }
            return Err(RejectReason::DuplicateClientOrderId);
        }
        check_quantity(&spec, place.quantity_lots)?;
        let limit = limit_of(place.order_type);
        if let Some(price_ticks) = limit {
            check_price(&spec, price_ticks)?;
        }
        if may_rest(place.order_type) {
            let price_ticks = limit.expect("orders that rest have a price");
            self.check_room_to_rest(place, price_ticks)?;
        }
        if let OrderType::PostOnly { price_ticks } = place.order_type {
            let best = self.best_price(place.instrument, other(place.side));
            if best.is_some_and(|best| crosses(place.side, price_ticks, best)) {
                return Err(RejectReason::WouldTakeLiquidity);
            }
        }

        // Accepted: from here on nothing is rejected.
        let order_id = OrderId(self.orders.len() as u64 + 1);
        let arrival = self.next_arrival();
        self.orders.push(Order {
            place: *place,
            order_id,
            order_type: place.order_type,
            quantity_lots: place.quantity_lots,
            filled_lots: 0,
            open_lots: place.quantity_lots,
            cancelled_lots: 0,
            accepted_timestamp_ns: self.now_ns,
            arrival,
            life: Life::Open,
        });
        let index = self.orders.len() - 1;
        let kind = EventKind::OrderAccepted {
            order_id,
            account: place.account,
            client_order_id: place.client_order_id,
            side: place.side,
            order_type: place.order_type,
            quantity_lots: place.quantity_lots,
            self_trade_prevention: place.self_trade_prevention,
        };
        self.emit(events, place.instrument, kind);

        let is_fok = matches!(
            place.order_type,
            OrderType::Limit {
                time_in_force: TimeInForce::Fok,
                ..
            }
        );
        if is_fok && !self.fok_can_fill(index) {
            self.cancel_remainder(index, CancelReason::FokUnfilled, events);
            return Ok((Accepted::Order(order_id), false));
        }
        let stop = self.take(index, events);
        match stop {
            Stop::Filled => self.finish(index, events),
            Stop::SelfTrade => self.cancel_remainder(index, CancelReason::SelfTrade, events),
            Stop::AtLimit | Stop::SideEmpty => match place.order_type {
                OrderType::Market { .. } if stop == Stop::AtLimit => {
                    self.cancel_remainder(index, CancelReason::MarketProtection, events);
                }
                order_type if may_rest(order_type) => {} // the remainder rests
                _ => self.cancel_remainder(index, CancelReason::IocRemainder, events),
            },
        }
        Ok((Accepted::Order(order_id), false))
    }

    /// Engine open limit, account open limit, then the level limit when no
    /// level exists at the price on the order's side.
    fn check_room_to_rest(&self, place: &PlaceOrder, price_ticks: i64) -> Result<(), RejectReason> {
        let open = self.orders.iter().filter(|o| o.life == Life::Open);
        if open.clone().count() >= self.limits.orders_open_max as usize {
            return Err(RejectReason::EngineOrderLimitReached);
        }
        let account_open = open.filter(|o| o.account() == place.account).count();
        if account_open >= self.limits.orders_per_account_max as usize {
            return Err(RejectReason::AccountOrderLimitReached);
        }
        let prices = self.level_prices(place.instrument, place.side);
        if !prices.contains(&price_ticks)
            && prices.len() >= self.limits.price_levels_per_side_max as usize
        {
            return Err(RejectReason::PriceLevelLimitReached);
        }
        Ok(())
    }

    /// Walks the opposite side in priority order within the limit, counting
    /// open quantity, as the contract describes.
    fn fok_can_fill(&self, index: usize) -> bool {
        let taker = &self.orders[index];
        let limit = limit_of(taker.order_type).expect("a FOK order is a limit order");
        let mut available_lots = 0;
        for maker in self.side_in_priority(taker.instrument(), other(taker.side())) {
            if !crosses(taker.side(), limit, self.price_of(maker)) {
                break;
            }
            if self.orders[maker].account() == taker.account() {
                match taker.place.self_trade_prevention {
                    SelfTradePrevention::None => {}
                    SelfTradePrevention::CancelMaker => continue,
                    SelfTradePrevention::CancelTaker | SelfTradePrevention::CancelBoth => break,
                }
            }
            available_lots += self.orders[maker].open_lots;
            if available_lots >= taker.open_lots {
                return true;
            }
        }
        false
    }

    /// Matches the order at `index` against the opposite side until it is
    /// filled, reaches its limit, empties the side or self-trade
    /// prevention stops it. Does not finish the taker.
    fn take(&mut self, index: usize, events: &mut Vec<Event>) -> Stop {
        loop {
            let taker = &self.orders[index];
            if taker.open_lots == 0 {
                return Stop::Filled;
            }
            let (instrument, side, account) = (taker.instrument(), taker.side(), taker.account());
            let stp = taker.place.self_trade_prevention;
            let limit = limit_of(taker.order_type);
            let Some(&maker) = self.side_in_priority(instrument, other(side)).first() else {
                return Stop::SideEmpty;
            };
            let price_ticks = self.price_of(maker);
            if limit.is_some_and(|limit| !crosses(side, limit, price_ticks)) {
                return Stop::AtLimit;
            }
            if self.orders[maker].account() == account {
                match stp {
                    SelfTradePrevention::None => {}
                    SelfTradePrevention::CancelTaker => return Stop::SelfTrade,
                    SelfTradePrevention::CancelMaker => {
                        self.cancel_remainder(maker, CancelReason::SelfTrade, events);
                        continue;
                    }
                    SelfTradePrevention::CancelBoth => {
                        self.cancel_remainder(maker, CancelReason::SelfTrade, events);
                        return Stop::SelfTrade;
                    }
                }
            }
            let quantity_lots = self.orders[index]
                .open_lots
                .min(self.orders[maker].open_lots);
            for i in [index, maker] {
                self.orders[i].open_lots -= quantity_lots;
                self.orders[i].filled_lots += quantity_lots;
            }
            let kind = EventKind::Trade {
                maker_order_id: self.orders[maker].order_id,
                maker_account: self.orders[maker].account(),
                taker_order_id: self.orders[index].order_id,
                taker_account: account,
                price_ticks,
                quantity_lots,
                aggressor: side,
            };
            self.emit(events, instrument, kind);
            if self.orders[maker].open_lots == 0 {
                self.finish(maker, events);
            }
        }
    }

    fn cancel(
        &mut self,
        cancel: &CancelOrder,
        events: &mut Vec<Event>,
    ) -> Result<(Accepted, bool), RejectReason> {
        let index = self.find(cancel.account, cancel.order)?;
        self.cancel_remainder(index, CancelReason::User, events);
        Ok((Accepted::Order(self.orders[index].order_id), false))
    }

    fn replace(
        &mut self,
        replace: &ReplaceOrder,
        events: &mut Vec<Event>,
    ) -> Result<(Accepted, bool), RejectReason> {
        let index = self.find(replace.account, replace.order)?;
        let o = &self.orders[index];
        let (instrument, side) = (o.instrument(), o.side());
        let spec = *self
            .instrument(instrument)
            .expect("orders belong to known instruments");
        check_quantity(&spec, replace.quantity_lots)?;
        check_price(&spec, replace.price_ticks)?;
        let price_old = self.price_of(index);
        let same_price = replace.price_ticks == price_old;
        // No change and not-above-filled never both apply (an open order's
        // quantity is above its fill), so their order does not matter.
        if same_price && replace.quantity_lots == o.quantity_lots {
            return Err(RejectReason::ReplaceNoChange);
        }
        if replace.quantity_lots <= o.filled_lots {
            return Err(RejectReason::ReplaceQuantityNotAboveFilled);
        }
        let priority_kept = same_price && replace.quantity_lots < o.quantity_lots;
        // Room to rest before post-only, as in the contract's check order.
        // Checked even if the order would trade away at once, like a place.
        // A same-price replace always finds its own level.
        if !same_price {
            let prices = self.level_prices(instrument, side);
            let alone_at_old_level = self
                .side_in_priority(instrument, side)
                .iter()
                .filter(|&&i| self.price_of(i) == price_old)
                .count()
                == 1;
            if !prices.contains(&replace.price_ticks)
                && prices.len() >= self.limits.price_levels_per_side_max as usize
                && !alone_at_old_level
            {
                return Err(RejectReason::PriceLevelLimitReached);
            }
        }
        let is_post_only = matches!(o.order_type, OrderType::PostOnly { .. });
        if is_post_only {
            let best = self.best_price(instrument, other(side));
            if best.is_some_and(|best| crosses(side, replace.price_ticks, best)) {
                return Err(RejectReason::WouldTakeLiquidity);
            }
        }

        // Accepted.
        let arrival = if priority_kept {
            o.arrival
        } else {
            self.next_arrival()
        };
        let o = &mut self.orders[index];
        o.order_type = match o.order_type {
            OrderType::PostOnly { .. } => OrderType::PostOnly {
                price_ticks: replace.price_ticks,
            },
            OrderType::Limit { time_in_force, .. } => OrderType::Limit {
                price_ticks: replace.price_ticks,
                time_in_force,
            },
            OrderType::Market { .. } => unreachable!("market orders never rest"),
        };
        o.quantity_lots = replace.quantity_lots;
        o.open_lots = replace.quantity_lots - o.filled_lots;
        o.arrival = arrival;
        let kind = EventKind::OrderReplaced {
            order_id: o.order_id,
            account: o.account(),
            price_ticks: replace.price_ticks,
            quantity_lots: replace.quantity_lots,
            open_lots: o.open_lots,
            priority_kept,
        };
        let order_id = o.order_id;
        self.emit(events, instrument, kind);
        if !priority_kept {
            match self.take(index, events) {
                Stop::Filled => self.finish(index, events),
                Stop::SelfTrade => self.cancel_remainder(index, CancelReason::SelfTrade, events),
                Stop::AtLimit | Stop::SideEmpty => {} // rests at the back of its level
            }
        }
        Ok((Accepted::Order(order_id), false))
    }

    fn mass_cancel(
        &mut self,
        mass: &MassCancel,
        events: &mut Vec<Event>,
    ) -> Result<(Accepted, bool), RejectReason> {
        if let Some(instrument) = mass.instrument {
            self.instrument(instrument)
                .ok_or(RejectReason::UnknownInstrument)?;
        }
        // `orders` is in order id order already.
        let doomed: Vec<usize> = (0..self.orders.len())
            .filter(|&i| {
                let o = &self.orders[i];
                o.life == Life::Open
                    && o.account() == mass.account
                    && mass.instrument.is_none_or(|id| id == o.instrument())
            })
            .collect();
        for &index in &doomed {
            self.cancel_remainder(index, CancelReason::MassCancel, events);
        }
        let orders_cancelled = u32::try_from(doomed.len()).expect("few orders in a model");
        Ok((Accepted::MassCancelled { orders_cancelled }, false))
    }
}
