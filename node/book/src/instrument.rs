//! Instrument specifications: the per-book limits every order is checked
//! against before it can touch the book.

use crate::reject::RejectReason;
use crate::types::{InstrumentId, Symbol};

/// Largest quantity any instrument may allow, in lots. Keeps every sum of
/// quantities in the engine (a level, a side) far from `u64` overflow:
/// 10^12 lots times at most 2^31 orders stays below 2^64 / 8.
pub const QUANTITY_LOTS_LIMIT: u64 = 1_000_000_000_000;

/// Largest absolute price any instrument may allow, in ticks.
pub const PRICE_TICKS_LIMIT: i64 = 1_000_000_000_000_000;

/// One tradable instrument and its limits. Adding it is a command, so every
/// replica holds the same specs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InstrumentSpec {
    pub instrument: InstrumentId,
    pub symbol: Symbol,
    /// Lowest accepted limit or protection price (the price band's floor).
    pub price_ticks_min: i64,
    /// Highest accepted limit or protection price (the price band's ceiling).
    pub price_ticks_max: i64,
    /// Smallest accepted order quantity (at least 1).
    pub quantity_lots_min: u64,
    /// Largest accepted order quantity (at most [`QUANTITY_LOTS_LIMIT`]).
    pub quantity_lots_max: u64,
}

impl InstrumentSpec {
    /// Checks that the limits make sense.
    pub fn validate(&self) -> Result<(), RejectReason> {
        let band_ok = self.price_ticks_min <= self.price_ticks_max
            && self.price_ticks_min >= -PRICE_TICKS_LIMIT
            && self.price_ticks_max <= PRICE_TICKS_LIMIT;
        if !band_ok {
            return Err(RejectReason::InvalidPriceBand);
        }
        let quantity_ok = self.quantity_lots_min >= 1
            && self.quantity_lots_min <= self.quantity_lots_max
            && self.quantity_lots_max <= QUANTITY_LOTS_LIMIT;
        if !quantity_ok {
            return Err(RejectReason::InvalidQuantityRange);
        }
        Ok(())
    }

    /// Checks an order quantity against this instrument's limits.
    pub fn check_quantity(&self, quantity_lots: u64) -> Result<(), RejectReason> {
        if quantity_lots == 0 {
            Err(RejectReason::ZeroQuantity)
        } else if quantity_lots < self.quantity_lots_min {
            Err(RejectReason::QuantityBelowMinimum)
        } else if quantity_lots > self.quantity_lots_max {
            Err(RejectReason::QuantityAboveMaximum)
        } else {
            Ok(())
        }
    }

    /// Checks a limit or protection price against this instrument's band.
    pub fn check_price(&self, price_ticks: i64) -> Result<(), RejectReason> {
        if (self.price_ticks_min..=self.price_ticks_max).contains(&price_ticks) {
            Ok(())
        } else {
            Err(RejectReason::PriceOutOfBand)
        }
    }
}
