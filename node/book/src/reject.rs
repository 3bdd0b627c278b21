//! Why a command was rejected. A rejected command leaves no trace: no event,
//! no sequence number, no change to the state or its digest.

/// The precise reason a command was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RejectReason {
    #[error("unknown instrument")]
    UnknownInstrument,
    #[error("instrument already exists")]
    InstrumentExists,
    #[error("instrument limit reached")]
    InstrumentLimitReached,
    #[error("invalid price band: min must be <= max and within the engine's price limit")]
    InvalidPriceBand,
    #[error("invalid quantity range: 1 <= min <= max <= the engine's quantity limit")]
    InvalidQuantityRange,
    #[error("client order id must not be zero")]
    InvalidClientOrderId,
    #[error("quantity must not be zero")]
    ZeroQuantity,
    #[error("quantity below the instrument's minimum")]
    QuantityBelowMinimum,
    #[error("quantity above the instrument's maximum")]
    QuantityAboveMaximum,
    #[error("price outside the instrument's price band")]
    PriceOutOfBand,
    #[error("client order id already used by a different order of this account")]
    DuplicateClientOrderId,
    #[error("unknown order")]
    UnknownOrder,
    #[error("order is no longer open (filled or cancelled)")]
    OrderNotOpen,
    #[error("post-only order would take liquidity")]
    WouldTakeLiquidity,
    #[error("replace changes neither price nor quantity")]
    ReplaceNoChange,
    #[error("replace quantity must be above the quantity already filled")]
    ReplaceQuantityNotAboveFilled,
    #[error("account has reached its open order limit")]
    AccountOrderLimitReached,
    #[error("book side has reached its price level limit")]
    PriceLevelLimitReached,
    #[error("engine has reached its open order limit")]
    EngineOrderLimitReached,
}

impl RejectReason {
    /// Every reason, in code order.
    pub const ALL: [RejectReason; 19] = [
        RejectReason::UnknownInstrument,
        RejectReason::InstrumentExists,
        RejectReason::InstrumentLimitReached,
        RejectReason::InvalidPriceBand,
        RejectReason::InvalidQuantityRange,
        RejectReason::InvalidClientOrderId,
        RejectReason::ZeroQuantity,
        RejectReason::QuantityBelowMinimum,
        RejectReason::QuantityAboveMaximum,
        RejectReason::PriceOutOfBand,
        RejectReason::DuplicateClientOrderId,
        RejectReason::UnknownOrder,
        RejectReason::OrderNotOpen,
        RejectReason::WouldTakeLiquidity,
        RejectReason::ReplaceNoChange,
        RejectReason::ReplaceQuantityNotAboveFilled,
        RejectReason::AccountOrderLimitReached,
        RejectReason::PriceLevelLimitReached,
        RejectReason::EngineOrderLimitReached,
    ];

    /// A stable numeric code (1-based) for wire formats and snapshots.
    pub fn code(self) -> u16 {
        // ALL is in declaration order, so the discriminant is the index.
        self as u16 + 1
    }

    /// The reason with this code, if any.
    pub fn from_code(code: u16) -> Option<RejectReason> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// A short stable name, for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::UnknownInstrument => "unknown_instrument",
            RejectReason::InstrumentExists => "instrument_exists",
            RejectReason::InstrumentLimitReached => "instrument_limit_reached",
            RejectReason::InvalidPriceBand => "invalid_price_band",
            RejectReason::InvalidQuantityRange => "invalid_quantity_range",
            RejectReason::InvalidClientOrderId => "invalid_client_order_id",
            RejectReason::ZeroQuantity => "zero_quantity",
            RejectReason::QuantityBelowMinimum => "quantity_below_minimum",
            RejectReason::QuantityAboveMaximum => "quantity_above_maximum",
            RejectReason::PriceOutOfBand => "price_out_of_band",
            RejectReason::DuplicateClientOrderId => "duplicate_client_order_id",
            RejectReason::UnknownOrder => "unknown_order",
            RejectReason::OrderNotOpen => "order_not_open",
            RejectReason::WouldTakeLiquidity => "would_take_liquidity",
            RejectReason::ReplaceNoChange => "replace_no_change",
            RejectReason::ReplaceQuantityNotAboveFilled => "replace_quantity_not_above_filled",
            RejectReason::AccountOrderLimitReached => "account_order_limit_reached",
            RejectReason::PriceLevelLimitReached => "price_level_limit_reached",
            RejectReason::EngineOrderLimitReached => "engine_order_limit_reached",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_stable() {
        for (index, reason) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(usize::from(reason.code()), index + 1);
            assert_eq!(RejectReason::from_code(reason.code()), Some(*reason));
        }
        assert_eq!(RejectReason::from_code(0), None);
        assert_eq!(RejectReason::from_code(20), None);
    }
}
