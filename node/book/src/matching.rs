//! Price-time matching of one taker against the opposite side of a book,
//! with self-trade prevention, and the side-effect-free "can this fill?"
//! walk that fill-or-kill needs. The caller decides what happens to the
//! taker's remainder.

use crate::arena::NIL;
use crate::event::{CancelReason, Event, EventKind};
use crate::side::BookSide;
use crate::store::OrderStore;
use crate::types::{AccountId, InstrumentId, OrderId, SelfTradePrevention, Side};

/// Appends events for one instrument, numbering them from its counter.
#[derive(Debug)]
pub(crate) struct EventSink<'a> {
    pub events: &'a mut Vec<Event>,
    pub instrument: InstrumentId,
    pub next_sequence: &'a mut u64,
    pub timestamp_ns: u64,
}

impl EventSink<'_> {
    #[inline]
    pub fn emit(&mut self, kind: EventKind) {
        let sequence = *self.next_sequence;
        *self.next_sequence += 1;
        self.events.push(Event {
            instrument: self.instrument,
            sequence,
            timestamp_ns: self.timestamp_ns,
            kind,
        });
    }
}

/// The order taking liquidity.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Taker {
    pub order_id: OrderId,
    pub account: AccountId,
    pub side: Side,
    /// Worst price it may trade at; `None` for an unprotected market order.
    pub limit_ticks: Option<i64>,
    pub stp: SelfTradePrevention,
    pub remaining_lots: u64,
    pub filled_lots: u64,
}

/// Why matching stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MatchEnd {
    /// Nothing left to fill.
    Filled,
    /// The opposite side is empty.
    SideExhausted,
    /// The next price is beyond the taker's limit.
    LimitReached,
    /// Self-trade prevention cancels the taker's remainder.
    SelfTrade,
}

impl Taker {
    fn may_trade_at(&self, price_ticks: i64) -> bool {
        self.limit_ticks
            .is_none_or(|limit| self.side.crosses(limit, price_ticks))
    }
}

/// Matches `taker` against `opposite` until it fills, runs out of crossing
/// liquidity, or self-trade prevention stops it. Makers that fill or are
/// cancelled leave the book here, with their events.
pub(crate) fn match_taker(
    opposite: &mut BookSide,
    store: &mut OrderStore,
    sink: &mut EventSink<'_>,
    taker: &mut Taker,
) -> MatchEnd {
    while taker.remaining_lots > 0 {
        let Some(level) = opposite.best() else {
            return MatchEnd::SideExhausted;
        };
        let price_ticks = opposite.level(level).price_ticks;
        if !taker.may_trade_at(price_ticks) {
            return MatchEnd::LimitReached;
        }
        let mut handle = opposite.level(level).head;
        while handle != NIL && taker.remaining_lots > 0 {
            let maker = store.arena.get(handle);
            let next = maker.next;
            if maker.account == taker.account && taker.stp != SelfTradePrevention::None {
                match taker.stp {
                    SelfTradePrevention::CancelTaker => return MatchEnd::SelfTrade,
                    SelfTradePrevention::CancelMaker => {
                        cancel_resting(opposite, store, sink, handle, CancelReason::SelfTrade);
                        handle = next;
                        continue;
                    }
                    SelfTradePrevention::CancelBoth | SelfTradePrevention::None => {
                        cancel_resting(opposite, store, sink, handle, CancelReason::SelfTrade);
                        return MatchEnd::SelfTrade;
                    }
                }
            }
            let traded_lots = taker.remaining_lots.min(maker.open_lots());
            sink.emit(EventKind::Trade {
                maker_order_id: maker.order_id,
                maker_account: maker.account,
                taker_order_id: taker.order_id,
                taker_account: taker.account,
                price_ticks,
                quantity_lots: traded_lots,
                aggressor: taker.side,
            });
            taker.remaining_lots -= traded_lots;
            taker.filled_lots += traded_lots;
            if traded_lots == maker.open_lots() {
                // Unlink first: the level gives up the maker's open quantity.
                opposite.unlink(&mut store.arena, handle);
                store.update(handle, |order| order.filled_lots += traded_lots);
                let view = store.finish_resting(handle, 0);
                sink.emit(done_event(&view));
            } else {
                opposite.reduce(level, traded_lots);
                store.update(handle, |order| order.filled_lots += traded_lots);
            }
            handle = next;
        }
    }
    MatchEnd::Filled
}

/// Takes a resting order out of its level and finishes it with its whole
/// open quantity cancelled, emitting `OrderCancelled` and `OrderDone`.
pub(crate) fn cancel_resting(
    own: &mut BookSide,
    store: &mut OrderStore,
    sink: &mut EventSink<'_>,
    handle: u32,
    reason: CancelReason,
) {
    own.unlink(&mut store.arena, handle);
    let open_lots = store.arena.get(handle).open_lots();
    let view = store.finish_resting(handle, open_lots);
    sink.emit(EventKind::OrderCancelled {
        order_id: view.order_id,
        account: view.account,
        quantity_lots: open_lots,
        reason,
    });
    sink.emit(done_event(&view));
}

pub(crate) fn done_event(view: &crate::view::OrderView) -> EventKind {
    EventKind::OrderDone {
        order_id: view.order_id,
        account: view.account,
        filled_lots: view.filled_lots,
        cancelled_lots: view.cancelled_lots,
    }
}

/// True when `taker` would fill `taker.remaining_lots` completely right now,
/// without changing anything (the fill-or-kill check).
pub(crate) fn can_fill(opposite: &BookSide, store: &OrderStore, taker: &Taker) -> bool {
    let mut available_lots = 0u64;
    for level in opposite.levels_best_first() {
        if !taker.may_trade_at(level.price_ticks) {
            return false;
        }
        let mut handle = level.head;
        while handle != NIL {
            let maker = store.arena.get(handle);
            if maker.account == taker.account {
                match taker.stp {
                    SelfTradePrevention::None => {}
                    SelfTradePrevention::CancelMaker => {
                        handle = maker.next;
                        continue;
                    }
                    SelfTradePrevention::CancelTaker | SelfTradePrevention::CancelBoth => {
                        return false;
                    }
                }
            }
            available_lots += maker.open_lots();
            if available_lots >= taker.remaining_lots {
                return true;
            }
            handle = maker.next;
        }
    }
    false
}
