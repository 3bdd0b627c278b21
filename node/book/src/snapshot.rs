//! The engine's snapshot: a compact, versioned, checksummed binary image of
//! the whole state, and its validating decoder.
//!
//! Layout (integers are LEB128 varints, signed ones zigzag):
//! `magic "MEBOOK"`, `format version`, limits, counters, then per book its
//! spec, next sequence number and resting orders (bids then asks, worst
//! level first so that the decoder only ever appends, queue order within a
//! level), then the remembered finished
//! orders oldest first, then an 8-byte little-endian checksum of everything
//! before it. Decoding checks every bound and invariant and rebuilds the
//! indexes, so a restored engine has the same digest and behaves the same.

use rustc_hash::FxHashSet;

use std::collections::VecDeque;

use crate::arena::{Arena, NIL, RestingOrder};
use crate::encoding::{Reader, Writer, checksum};
use crate::engine::{Book, Engine, placeholder_order};
use crate::instrument::InstrumentSpec;
use crate::limits::Limits;
use crate::store::{FinishedOrder, Placed};
use crate::types::{
    AccountId, ClientOrderId, InstrumentId, OrderId, OrderType, SelfTradePrevention, Side, Symbol,
    TimeInForce,
};
use crate::view::{OrderTerms, OrderView};

const MAGIC: &[u8; 6] = b"MEBOOK";
const FORMAT_VERSION: u64 = 1;

/// A snapshot that cannot be decoded. The engine is never partly restored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a MatchEngine book snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u64),
    #[error("snapshot truncated")]
    Truncated,
    #[error("snapshot checksum mismatch (stored {stored:016x}, computed {computed:016x})")]
    ChecksumMismatch { stored: u64, computed: u64 },
    #[error("invalid snapshot: {0}")]
    Invalid(&'static str),
}

/// A point-in-time copy of exactly what a snapshot holds: the books, the
/// resting orders' slots, the finished-order window and the counters. No
/// index is copied (they are rebuilt when a snapshot is decoded), so taking
/// it costs a few memcpys however much room the engine has reserved; the
/// slow part, encoding, then runs on the copy off the apply path.
#[derive(Clone, Debug)]
pub struct FrozenEngine {
    limits: Limits,
    books: Vec<Book>,
    arena: Arena,
    finished: VecDeque<FinishedOrder>,
    next_order_id: u64,
    next_priority: u64,
    next_finished_index: u64,
}

impl FrozenEngine {
    /// Appends the snapshot to `out`: the same bytes the engine it was
    /// taken from would have encoded.
    pub fn encode_snapshot(&self, out: &mut Vec<u8>) {
        encode(
            Parts {
                limits: &self.limits,
                books: &self.books,
                arena: &self.arena,
                next_order_id: self.next_order_id,
                next_priority: self.next_priority,
                next_finished_index: self.next_finished_index,
            },
            self.finished.iter(),
            out,
        );
    }
}

/// What the encoder reads, borrowed from an engine or a frozen copy.
struct Parts<'a> {
    limits: &'a Limits,
    books: &'a [Book],
    arena: &'a Arena,
    next_order_id: u64,
    next_priority: u64,
    next_finished_index: u64,
}

fn encode<'a>(
    parts: Parts<'a>,
    finished: impl ExactSizeIterator<Item = &'a FinishedOrder>,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let mut writer = Writer::new(out);
    writer.bytes(MAGIC);
    writer.u64(FORMAT_VERSION);
    let limits = parts.limits;
    for value in [
        limits.instruments_max,
        limits.orders_open_max,
        limits.orders_per_account_max,
        limits.price_levels_per_side_max,
        limits.finished_orders_retained_max,
    ] {
        writer.u64(u64::from(value));
    }
    writer.u64(parts.next_order_id);
    writer.u64(parts.next_priority);
    writer.u64(parts.next_finished_index);
    writer.u64(parts.books.len() as u64);
    for book in parts.books {
        write_spec(&mut writer, &book.spec);
        writer.u64(book.next_sequence);
        for side in [&book.bids, &book.asks] {
            let count: u64 = side
                .levels_best_first()
                .map(|level| u64::from(level.order_count))
                .sum();
            writer.u64(count);
            for level in side.levels_worst_first() {
                let mut handle = level.head;
                while handle != NIL {
                    let order = parts.arena.get(handle);
                    write_resting(&mut writer, order);
                    handle = order.next;
                }
            }
        }
    }
    writer.u64(finished.len() as u64);
    for entry in finished {
        write_finished(&mut writer, entry);
    }
    append_checksum(out, start);
}

/// Appends the checksum trailer over `out[start..]`.
fn append_checksum(out: &mut Vec<u8>, start: usize) {
    let sum = checksum(&out[start..]);
    out.extend_from_slice(&sum.to_le_bytes());
}

/// Appends the checksum trailer to a snapshot body (everything up to the
/// trailer), making the bytes a snapshot whose checksum holds. For tools
/// and the fuzzer: a mutated body then reaches the validating decoder
/// behind the checksum instead of stopping at it.
pub fn seal_snapshot(body: &mut Vec<u8>) {
    append_checksum(body, 0);
}

impl Engine {
    /// Appends the snapshot of the whole state to `out`.
    pub fn encode_snapshot(&self, out: &mut Vec<u8>) {
        encode(self.parts(), self.store.finished_oldest_first(), out);
    }

    /// A cheap point-in-time copy to encode later (see [`FrozenEngine`]).
    pub fn freeze(&self) -> FrozenEngine {
        FrozenEngine {
            limits: self.limits,
            books: self.books.clone(),
            arena: self.store.arena.clone(),
            finished: self.store.finished_oldest_first().copied().collect(),
            next_order_id: self.next_order_id,
            next_priority: self.next_priority,
            next_finished_index: self.store.next_finished_index(),
        }
    }

    fn parts(&self) -> Parts<'_> {
        Parts {
            limits: &self.limits,
            books: &self.books,
            arena: &self.store.arena,
            next_order_id: self.next_order_id,
            next_priority: self.next_priority,
            next_finished_index: self.store.next_finished_index(),
        }
    }

    /// Rebuilds an engine from a snapshot, checking it thoroughly.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<Engine, SnapshotError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let body_len = bytes.len().checked_sub(8).ok_or(SnapshotError::Truncated)?;
        let (body, stored) = bytes.split_at(body_len);
        let mut stored_bytes = [0u8; 8];
        stored_bytes.copy_from_slice(stored);
        let stored = u64::from_le_bytes(stored_bytes);
        let computed = checksum(body);
        let mut reader = Reader::new(body);
        reader.bytes(MAGIC.len())?;
        let version = reader.u64()?;
        if version != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        if stored != computed {
            return Err(SnapshotError::ChecksumMismatch { stored, computed });
        }
        let engine = decode_body(&mut reader)?;
        if reader.remaining() != 0 {
            return Err(SnapshotError::Invalid(
                "trailing bytes after the last section",
            ));
        }
        Ok(engine)
    }
}

fn decode_body(reader: &mut Reader<'_>) -> Result<Engine, SnapshotError> {
    let limits = Limits {
        instruments_max: reader.u32()?,
        orders_open_max: reader.u32()?,
        orders_per_account_max: reader.u32()?,
        price_levels_per_side_max: reader.u32()?,
        finished_orders_retained_max: reader.u32()?,
    };
    let mut engine =
        Engine::new(limits).map_err(|_| SnapshotError::Invalid("limits out of range"))?;
    engine.next_order_id = reader.u64()?;
    if engine.next_order_id == 0 {
        return Err(SnapshotError::Invalid("next order id zero"));
    }
    engine
        .store
        .advance_order_id(OrderId(engine.next_order_id - 1));
    engine.next_priority = reader.u64()?;
    let next_finished_index = reader.u64()?;
    let book_count = reader.count(
        u64::from(limits.instruments_max),
        "more books than instruments_max",
    )?;
    let mut resting: Vec<(OrderId, u32)> = Vec::new();
    for book_index in 0..book_count {
        let spec = read_spec(reader)?;
        let next_sequence = reader.u64()?;
        if next_sequence == 0 {
            return Err(SnapshotError::Invalid("book sequence number zero"));
        }
        if engine
            .book_index
            .insert(spec.instrument, book_index as u32)
            .is_some()
        {
            return Err(SnapshotError::Invalid("instrument appears twice"));
        }
        let mut book = Book::new(spec);
        book.next_sequence = next_sequence;
        engine.books.push(book);
        for side in [Side::Buy, Side::Sell] {
            let open_max = u64::from(limits.orders_open_max) - resting.len() as u64;
            let count = reader.count(open_max, "more resting orders than orders_open_max")?;
            // Each order takes at least 11 bytes: a corrupt count cannot
            // make this reserve more than the input justifies.
            let plausible = count.min(reader.remaining() / 11);
            resting.reserve(plausible);
            engine.store.reserve_open(plausible, &placeholder_order());
            // Orders come worst level first, in queue order within a level.
            let mut previous: Option<(i64, u64)> = None;
            for _ in 0..count {
                let order = read_resting(reader, &spec, book_index as u32, side)?;
                if order.order_id.0 >= engine.next_order_id
                    || order.priority >= engine.next_priority
                {
                    return Err(SnapshotError::Invalid(
                        "order id or priority beyond its counter",
                    ));
                }
                let (price_ticks, priority) = (order.price_ticks, order.priority);
                if let Some((previous_price, previous_priority)) = previous {
                    let improves = match side {
                        Side::Buy => price_ticks > previous_price,
                        Side::Sell => price_ticks < previous_price,
                    };
                    let queued_after =
                        price_ticks == previous_price && priority > previous_priority;
                    if !(improves || queued_after) {
                        return Err(SnapshotError::Invalid("resting orders out of book order"));
                    }
                }
                previous = Some((price_ticks, priority));
                let order_id = order.order_id;
                let handle = engine.store.insert_unlinked(order);
                let book = &mut engine.books[book_index];
                let book_side = match side {
                    Side::Buy => &mut book.bids,
                    Side::Sell => &mut book.asks,
                };
                book_side.push_back(&mut engine.store.arena, handle);
                if book_side.level_count() > limits.price_levels_per_side_max as usize {
                    return Err(SnapshotError::Invalid(
                        "side over price_levels_per_side_max",
                    ));
                }
                resting.push((order_id, handle));
            }
        }
    }
    let finished_count = reader.count(
        u64::from(limits.finished_orders_retained_max),
        "more finished orders than finished_orders_retained_max",
    )?;
    let mut finished = Vec::with_capacity(finished_count.min(reader.remaining()));
    for _ in 0..finished_count {
        let entry = read_finished(reader, &engine)?;
        if entry.view.order_id.0 >= engine.next_order_id
            || entry.finished_index >= next_finished_index
        {
            return Err(SnapshotError::Invalid("finished order beyond its counter"));
        }
        if finished
            .last()
            .is_some_and(|last: &FinishedOrder| last.finished_index >= entry.finished_index)
        {
            return Err(SnapshotError::Invalid("finished orders out of order"));
        }
        finished.push(entry);
    }
    restore(&mut engine, resting, finished, next_finished_index)?;
    Ok(engine)
}

/// Finishes a restore: remembered finished orders, account lists in order
/// id order, and the invariants the encoder's engine maintained.
fn restore(
    engine: &mut Engine,
    mut resting: Vec<(OrderId, u32)>,
    finished: Vec<FinishedOrder>,
    next_finished_index: u64,
) -> Result<(), SnapshotError> {
    // Resting orders were indexed while decoding; a repeated id would have
    // replaced an entry, so the count tells duplicates apart.
    if engine.store.indexed_count() != resting.len() {
        return Err(SnapshotError::Invalid("order id appears twice"));
    }
    let mut keys = FxHashSet::default();
    keys.reserve(resting.len());
    for &(_, handle) in &resting {
        let order = engine.store.arena.get(handle);
        if !keys.insert((order.account, order.client_order_id)) {
            return Err(SnapshotError::Invalid(
                "client order id appears twice for one account",
            ));
        }
    }
    for entry in finished {
        if !engine.store.restore_finished(entry) {
            return Err(SnapshotError::Invalid(
                "finished order id or client order id appears twice",
            ));
        }
    }
    engine.store.set_next_finished_index(next_finished_index);
    resting.sort_unstable_by_key(|&(order_id, _)| order_id);
    for (_, handle) in resting {
        let account = engine.store.arena.get(handle).account;
        if engine.store.account_open_count(account) >= engine.limits.orders_per_account_max {
            return Err(SnapshotError::Invalid(
                "account over orders_per_account_max",
            ));
        }
        engine.store.link_account(handle);
    }
    for book in &engine.books {
        if let (Some(bid), Some(ask)) = (book.bids.best_price_ticks(), book.asks.best_price_ticks())
            && bid >= ask
        {
            return Err(SnapshotError::Invalid("crossed book"));
        }
    }
    Ok(())
}

fn write_spec(writer: &mut Writer<'_>, spec: &InstrumentSpec) {
    writer.u64(u64::from(spec.instrument.0));
    let symbol = spec.symbol.as_str().as_bytes();
    writer.u64(symbol.len() as u64);
    writer.bytes(symbol);
    writer.i64(spec.price_ticks_min);
    writer.i64(spec.price_ticks_max);
    writer.u64(spec.quantity_lots_min);
    writer.u64(spec.quantity_lots_max);
}

fn read_spec(reader: &mut Reader<'_>) -> Result<InstrumentSpec, SnapshotError> {
    let instrument = InstrumentId(reader.u32()?);
    let symbol_len = reader.count(Symbol::LEN_MAX as u64, "symbol too long")?;
    let symbol_bytes = reader.bytes(symbol_len)?;
    let symbol = std::str::from_utf8(symbol_bytes)
        .ok()
        .and_then(Symbol::new)
        .ok_or(SnapshotError::Invalid("invalid symbol"))?;
    let spec = InstrumentSpec {
        instrument,
        symbol,
        price_ticks_min: reader.i64()?,
        price_ticks_max: reader.i64()?,
        quantity_lots_min: reader.u64()?,
        quantity_lots_max: reader.u64()?,
    };
    spec.validate()
        .map_err(|_| SnapshotError::Invalid("invalid instrument limits"))?;
    Ok(spec)
}

fn stp_to_byte(stp: SelfTradePrevention) -> u8 {
    match stp {
        SelfTradePrevention::None => 0,
        SelfTradePrevention::CancelTaker => 1,
        SelfTradePrevention::CancelMaker => 2,
        SelfTradePrevention::CancelBoth => 3,
    }
}

fn stp_from_byte(byte: u8) -> Result<SelfTradePrevention, SnapshotError> {
    Ok(match byte {
        0 => SelfTradePrevention::None,
        1 => SelfTradePrevention::CancelTaker,
        2 => SelfTradePrevention::CancelMaker,
        3 => SelfTradePrevention::CancelBoth,
        _ => return Err(SnapshotError::Invalid("unknown self-trade prevention")),
    })
}

fn write_resting(writer: &mut Writer<'_>, order: &RestingOrder) {
    writer.u64(order.order_id.0);
    writer.u64(order.account.0);
    writer.u64(order.client_order_id.0);
    writer.i64(order.price_ticks);
    writer.u64(order.quantity_lots);
    writer.u64(order.filled_lots);
    writer.u64(order.priority);
    writer.u64(order.accepted_timestamp_ns);
    writer.i64(order.placed_price_ticks);
    writer.u64(order.placed_quantity_lots);
    writer.u8(u8::from(order.post_only) | stp_to_byte(order.stp) << 1);
}

fn read_resting(
    reader: &mut Reader<'_>,
    spec: &InstrumentSpec,
    book: u32,
    side: Side,
) -> Result<RestingOrder, SnapshotError> {
    let order = RestingOrder {
        order_id: OrderId(reader.u64()?),
        account: AccountId(reader.u64()?),
        client_order_id: ClientOrderId(reader.u64()?),
        price_ticks: reader.i64()?,
        quantity_lots: reader.u64()?,
        filled_lots: reader.u64()?,
        priority: reader.u64()?,
        accepted_timestamp_ns: reader.u64()?,
        placed_price_ticks: reader.i64()?,
        placed_quantity_lots: reader.u64()?,
        instrument: spec.instrument,
        book,
        level: NIL,
        prev: NIL,
        next: NIL,
        account_prev: NIL,
        account_next: NIL,
        side,
        post_only: false,
        stp: SelfTradePrevention::None,
    };
    let flags = reader.u8()?;
    if flags >> 3 != 0 {
        return Err(SnapshotError::Invalid("unknown order flags"));
    }
    let order = RestingOrder {
        post_only: flags & 1 == 1,
        stp: stp_from_byte(flags >> 1)?,
        ..order
    };
    if order.order_id.0 == 0 || order.client_order_id.0 == 0 {
        return Err(SnapshotError::Invalid("zero order id or client order id"));
    }
    if spec.check_price(order.price_ticks).is_err()
        || spec.check_quantity(order.quantity_lots).is_err()
    {
        return Err(SnapshotError::Invalid(
            "resting order outside its instrument's limits",
        ));
    }
    if order.filled_lots >= order.quantity_lots {
        return Err(SnapshotError::Invalid("resting order with nothing open"));
    }
    if spec.check_price(order.placed_price_ticks).is_err()
        || spec.check_quantity(order.placed_quantity_lots).is_err()
    {
        return Err(SnapshotError::Invalid(
            "placed price or quantity outside its instrument's limits",
        ));
    }
    Ok(order)
}

fn write_order_type(writer: &mut Writer<'_>, order_type: &OrderType) {
    match *order_type {
        OrderType::Limit {
            price_ticks,
            time_in_force,
        } => {
            writer.u8(match time_in_force {
                TimeInForce::Gtc => 0,
                TimeInForce::Ioc => 1,
                TimeInForce::Fok => 2,
            });
            writer.i64(price_ticks);
        }
        OrderType::PostOnly { price_ticks } => {
            writer.u8(3);
            writer.i64(price_ticks);
        }
        OrderType::Market {
            protection_price_ticks: None,
        } => writer.u8(4),
        OrderType::Market {
            protection_price_ticks: Some(price_ticks),
        } => {
            writer.u8(5);
            writer.i64(price_ticks);
        }
    }
}

fn read_order_type(reader: &mut Reader<'_>) -> Result<OrderType, SnapshotError> {
    let limit = |time_in_force, reader: &mut Reader<'_>| -> Result<OrderType, SnapshotError> {
        Ok(OrderType::Limit {
            price_ticks: reader.i64()?,
            time_in_force,
        })
    };
    Ok(match reader.u8()? {
        0 => limit(TimeInForce::Gtc, reader)?,
        1 => limit(TimeInForce::Ioc, reader)?,
        2 => limit(TimeInForce::Fok, reader)?,
        3 => OrderType::PostOnly {
            price_ticks: reader.i64()?,
        },
        4 => OrderType::Market {
            protection_price_ticks: None,
        },
        5 => OrderType::Market {
            protection_price_ticks: Some(reader.i64()?),
        },
        _ => return Err(SnapshotError::Invalid("unknown order type")),
    })
}

fn write_finished(writer: &mut Writer<'_>, entry: &FinishedOrder) {
    let view = &entry.view;
    writer.u64(view.order_id.0);
    writer.u64(u64::from(view.instrument.0));
    writer.u64(view.account.0);
    writer.u64(view.client_order_id.0);
    writer.u8(match view.side {
        Side::Buy => 0,
        Side::Sell => 1,
    });
    write_order_type(writer, &view.order_type);
    writer.u8(stp_to_byte(view.self_trade_prevention));
    writer.u64(view.quantity_lots);
    writer.u64(view.filled_lots);
    writer.u64(view.cancelled_lots);
    writer.u64(view.accepted_timestamp_ns);
    write_order_type(writer, &entry.placed.order_type);
    writer.u64(entry.placed.quantity_lots);
    writer.u64(entry.finished_index);
}

fn read_finished(reader: &mut Reader<'_>, engine: &Engine) -> Result<FinishedOrder, SnapshotError> {
    let order_id = OrderId(reader.u64()?);
    let instrument = InstrumentId(reader.u32()?);
    if engine.instrument(instrument).is_none() {
        return Err(SnapshotError::Invalid(
            "finished order on an unknown instrument",
        ));
    }
    let account = AccountId(reader.u64()?);
    let client_order_id = ClientOrderId(reader.u64()?);
    let side = match reader.u8()? {
        0 => Side::Buy,
        1 => Side::Sell,
        _ => return Err(SnapshotError::Invalid("unknown side")),
    };
    let order_type = read_order_type(reader)?;
    let self_trade_prevention = stp_from_byte(reader.u8()?)?;
    let quantity_lots = reader.u64()?;
    let filled_lots = reader.u64()?;
    let cancelled_lots = reader.u64()?;
    if filled_lots.checked_add(cancelled_lots) != Some(quantity_lots) || quantity_lots == 0 {
        return Err(SnapshotError::Invalid(
            "finished order quantities do not add up",
        ));
    }
    if order_id.0 == 0 || client_order_id.0 == 0 {
        return Err(SnapshotError::Invalid("zero order id or client order id"));
    }
    let terms = OrderTerms {
        order_id,
        instrument,
        account,
        client_order_id,
        side,
        order_type,
        self_trade_prevention,
        quantity_lots,
    };
    let view = OrderView::finished(terms, filled_lots, cancelled_lots, reader.u64()?);
    let placed = Placed {
        order_type: read_order_type(reader)?,
        quantity_lots: reader.u64()?,
    };
    Ok(FinishedOrder {
        view,
        placed,
        finished_index: reader.u64()?,
    })
}
