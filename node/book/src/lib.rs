//! MatchEngine's matching core: a deterministic, single-threaded,
//! multi-instrument limit order book. It owns matching, order state,
//! idempotency, the state digest and snapshots. It must never do I/O, read a
//! clock, draw randomness or know about Raft: the same commands in the same
//! order give the same events, the same state and the same digest on every
//! replica.
//!
//! # Example
//!
//! ```
//! use matchengine_book::*;
//!
//! let mut engine = Engine::new(Limits::default())?;
//! let mut events = Vec::new();
//! let spec = InstrumentSpec {
//!     instrument: InstrumentId(1),
//!     symbol: Symbol::new("BTC-USD").ok_or("bad symbol")?,
//!     price_ticks_min: 1,
//!     price_ticks_max: 1_000_000,
//!     quantity_lots_min: 1,
//!     quantity_lots_max: 1_000,
//! };
//! engine.execute(&Command::AddInstrument(spec), 0, &mut events).result?;
//! let order = |account, client_order_id, side, price_ticks, quantity_lots| {
//!     Command::Place(PlaceOrder {
//!         instrument: InstrumentId(1),
//!         account: AccountId(account),
//!         client_order_id: ClientOrderId(client_order_id),
//!         side,
//!         order_type: OrderType::Limit { price_ticks, time_in_force: TimeInForce::Gtc },
//!         quantity_lots,
//!         self_trade_prevention: SelfTradePrevention::None,
//!     })
//! };
//! engine.execute(&order(7, 1, Side::Sell, 101, 5), 1, &mut events).result?;
//! events.clear();
//! let reply = engine.execute(&order(8, 1, Side::Buy, 102, 3), 2, &mut events);
//! assert_eq!(reply.result, Ok(Accepted::Order(OrderId(2))));
//! assert!(events.iter().any(|event| matches!(
//!     event.kind,
//!     EventKind::Trade { price_ticks: 101, quantity_lots: 3, aggressor: Side::Buy, .. }
//! )));
//! let top = engine.top_of_book(InstrumentId(1)).ok_or("unknown instrument")?;
//! assert_eq!(top.ask.map(|level| level.quantity_lots), Some(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics (the contract the reference model in `tests/` checks)
//!
//! * **Commands** ([`Command`]) go through [`Engine::execute`] with the
//!   caller's timestamp. Each returns a [`Reply`]: accepted, or rejected with
//!   a [`RejectReason`]. A rejected command leaves no trace at all (no event,
//!   no sequence number, no state or digest change). Checks run in this
//!   order: instrument exists, client order id non-zero, idempotency, then
//!   quantity, then price(s), then room to rest, then post-only, then FOK.
//! * **Order ids** are assigned 1, 2, 3... to accepted orders only.
//! * **Events** ([`Event`]) carry their instrument's sequence number, starting
//!   at 1 with `InstrumentAdded` and increasing by 1 with no gaps.
//! * **Place**: `OrderAccepted`, then trades in price-time priority at the
//!   maker's price (each `Trade`, followed by the maker's `OrderDone` when it
//!   is fully filled), then one of: the remainder rests (GTC limit,
//!   post-only); `OrderCancelled` + `OrderDone` (IOC remainder, market
//!   remainder, self-trade); `OrderDone` when fully filled.
//!   - A market order's remainder is cancelled with `MarketProtection` when
//!     matching stopped at its protection price with crossable liquidity
//!     beyond it, else with `IocRemainder` (an empty or exhausted side).
//!   - A FOK order that cannot fill completely at once is accepted and then
//!     cancelled with `FokUnfilled` before it touches the book: no trade, no
//!     self-trade cancel. "Can fill" walks the opposite side in priority
//!     order within its limit, counting open quantity; an order of the same
//!     account is skipped under `CancelMaker` and ends the walk under
//!     `CancelTaker`/`CancelBoth`.
//!   - Post-only is rejected (`WouldTakeLiquidity`) when its price crosses
//!     the opposite best price, whoever owns the resting order.
//! * **Room to rest** is checked on arrival for orders that may rest (GTC
//!   limit and post-only), even if they would fill at once: the engine's
//!   open order limit, the account's open order limit, and, when no level
//!   exists at the order's price on its side, the price level limit.
//! * **Self-trade prevention** is the taker's: when the next resting order in
//!   priority belongs to the taker's account, `CancelTaker` cancels the
//!   taker's remainder (reason `SelfTrade`) and stops; `CancelMaker` cancels
//!   that resting order (`OrderCancelled` + `OrderDone`, reason `SelfTrade`)
//!   and goes on; `CancelBoth` cancels the resting order, then the taker's
//!   remainder.
//! * **Cancel** (by order id or client order id, scoped to the account):
//!   `OrderCancelled` (reason `User`) + `OrderDone`. An order of another
//!   account, or one the engine never saw or has forgotten, is
//!   `UnknownOrder`; a finished one still remembered is `OrderNotOpen`.
//! * **Replace**: the new quantity is the new total; it must be above the
//!   filled quantity. Same price and a lower quantity keeps time priority
//!   (`OrderReplaced { priority_kept: true }`). Otherwise the order leaves
//!   its level, gets the new price and quantity and a new time priority
//!   (`OrderReplaced { priority_kept: false }`), trades as a taker with its
//!   own self-trade prevention if the new price crosses, and rests at the
//!   back of its new level. A post-only order whose new price would cross is
//!   rejected. A replace needing a new level at the level limit is rejected
//!   unless the order is alone at its old level.
//! * **Mass cancel** cancels the account's open orders (on one instrument, or
//!   all) in order id order, each with `OrderCancelled` (reason
//!   `MassCancel`) + `OrderDone`, and reports how many.
//! * **Idempotency**: `(account, client order id)` identifies an order among
//!   the open ones and the last [`Limits::finished_orders_retained_max`]
//!   finished ones (the window). A place whose key is in the window returns
//!   the original `Accepted::Order(order_id)` with `replayed: true` and no
//!   events if every field is the same, and `DuplicateClientOrderId`
//!   otherwise. Rejected places are not remembered. Beyond the window the key
//!   is free again.
//! * **Quantities**: for every order, at every event,
//!   `quantity = filled + open + cancelled`.
//! * **Digest** ([`Engine::digest`]): a 128-bit hash of the whole state,
//!   maintained incrementally (O(instruments) to read). Equal states give
//!   equal digests on every platform.
//! * **Snapshot** ([`Engine::encode_snapshot`], [`Engine::decode_snapshot`]):
//!   a compact, versioned, checksummed binary image; decoding validates
//!   everything and restores the same digest and the same future behaviour.

mod arena;
pub mod builders;
mod command;
mod encoding;
mod engine;
mod event;
mod instrument;
mod limits;
mod matching;
mod order_index;
mod reject;
mod side;
mod snapshot;
mod store;
mod types;
mod view;

pub use command::{CancelOrder, Command, MassCancel, OrderRef, PlaceOrder, ReplaceOrder};
pub use engine::{Accepted, Engine, Reply};
pub use event::{CancelReason, Event, EventKind};
pub use instrument::{InstrumentSpec, PRICE_TICKS_LIMIT, QUANTITY_LOTS_LIMIT};
pub use limits::{LIMIT_VALUE_MAX, Limits, LimitsError};
pub use reject::RejectReason;
pub use snapshot::{FrozenEngine, SnapshotError, seal_snapshot};
pub use types::{
    AccountId, ClientOrderId, InstrumentId, OrderId, OrderType, SelfTradePrevention, Side, Symbol,
    TimeInForce,
};
pub use view::{Depth, LevelView, OrderStatus, OrderView, TopOfBook};
