//! Bounds on every collection in the engine. Exceeding one is a clear
//! rejection of the command that would exceed it, never a slowdown or crash.
//! The limits are part of the replicated state: every replica must use the
//! same ones, so they travel in snapshots.

/// The engine's bounds. `Default` suits a single venue on one machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Instruments the engine may hold.
    pub instruments_max: u32,
    /// Resting orders across all instruments.
    pub orders_open_max: u32,
    /// Resting orders of one account across all instruments.
    pub orders_per_account_max: u32,
    /// Distinct price levels on one side of one book.
    pub price_levels_per_side_max: u32,
    /// Finished orders remembered for idempotent retries and order queries,
    /// beyond the open ones. The oldest finished order is forgotten first.
    pub finished_orders_retained_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            instruments_max: 4_096,
            orders_open_max: 4_000_000,
            orders_per_account_max: 100_000,
            price_levels_per_side_max: 100_000,
            finished_orders_retained_max: 1_000_000,
        }
    }
}

/// The largest value any limit may take: order handles are `u32`.
pub const LIMIT_VALUE_MAX: u32 = 1 << 30;

/// A limit that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("limit {name} must be between 1 and {LIMIT_VALUE_MAX}, got {value}")]
pub struct LimitsError {
    pub name: &'static str,
    pub value: u32,
}

impl Limits {
    /// Checks that every limit is in range, naming the first one that is not.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let named = [
            ("instruments_max", self.instruments_max),
            ("orders_open_max", self.orders_open_max),
            ("orders_per_account_max", self.orders_per_account_max),
            ("price_levels_per_side_max", self.price_levels_per_side_max),
            (
                "finished_orders_retained_max",
                self.finished_orders_retained_max,
            ),
        ];
        for (name, value) in named {
            if value == 0 || value > LIMIT_VALUE_MAX {
                return Err(LimitsError { name, value });
            }
        }
        Ok(())
    }
}
