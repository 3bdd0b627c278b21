//! Identifiers and small value types shared by commands, events and queries.
//!
//! Prices are integer ticks (`i64`) and quantities integer lots (`u64`): there
//! is no floating point anywhere in the engine.

use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $inner:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<$inner> for $name {
            fn from(value: $inner) -> Self {
                Self(value)
            }
        }
    };
}

id_type!(
    /// Identifies an instrument (one order book). Chosen by whoever adds it.
    InstrumentId,
    u32
);
id_type!(
    /// Identifies a trading account. Orders of one account never trade with
    /// each other unless the taker allows it (see [`SelfTradePrevention`]).
    AccountId,
    u64
);
id_type!(
    /// The exchange's id for an order, assigned by the engine in acceptance
    /// order (1, 2, 3, ...). Never reused.
    OrderId,
    u64
);
id_type!(
    /// The client's own id for an order, unique per account. Zero is invalid.
    ClientOrderId,
    u64
);

/// Which side of the book an order is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// The side an order of this side trades against.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// True when a taker of this side with limit `limit_ticks` may trade at
    /// `price_ticks`.
    pub fn crosses(self, limit_ticks: i64, price_ticks: i64) -> bool {
        match self {
            Side::Buy => price_ticks <= limit_ticks,
            Side::Sell => price_ticks >= limit_ticks,
        }
    }
}

/// How long a limit order stays in the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// Good till cancelled: the remainder rests in the book.
    Gtc,
    /// Immediate or cancel: trades what it can, the remainder is cancelled.
    Ioc,
    /// Fill or kill: fills completely at once or leaves no trace in the book.
    Fok,
}

/// What happens when a taker would trade with a resting order of its own
/// account. The taker's choice applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SelfTradePrevention {
    /// Trade with yourself.
    #[default]
    None,
    /// Cancel the taker's remainder; the resting order stays.
    CancelTaker,
    /// Cancel the resting order and keep matching.
    CancelMaker,
    /// Cancel both the resting order and the taker's remainder.
    CancelBoth,
}

/// The kind of order and the prices that go with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderType {
    /// A limit order: trades at `price_ticks` or better.
    Limit {
        price_ticks: i64,
        time_in_force: TimeInForce,
    },
    /// A good-till-cancel limit order that only ever adds liquidity: it is
    /// rejected if it would trade on arrival or when replaced.
    PostOnly { price_ticks: i64 },
    /// Trades immediately against what the book has; never rests. With a
    /// protection price it sweeps no further than that price.
    Market { protection_price_ticks: Option<i64> },
}

impl OrderType {
    /// The price that limits matching, if any.
    pub fn limit_price_ticks(&self) -> Option<i64> {
        match *self {
            OrderType::Limit { price_ticks, .. } | OrderType::PostOnly { price_ticks } => {
                Some(price_ticks)
            }
            OrderType::Market {
                protection_price_ticks,
            } => protection_price_ticks,
        }
    }

    /// True when the remainder of such an order rests in the book.
    pub fn rests(&self) -> bool {
        matches!(
            self,
            OrderType::Limit {
                time_in_force: TimeInForce::Gtc,
                ..
            } | OrderType::PostOnly { .. }
        )
    }
}

/// A short instrument name such as `BTC-USD`: 1 to 16 printable ASCII bytes.
/// Fixed size so that specs and events stay `Copy` and allocation-free.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol {
    len: u8,
    bytes: [u8; Symbol::LEN_MAX],
}

impl Symbol {
    /// Longest symbol, in bytes.
    pub const LEN_MAX: usize = 16;

    /// Builds a symbol, or `None` if `text` is empty, too long or not
    /// printable ASCII.
    pub fn new(text: &str) -> Option<Symbol> {
        let raw = text.as_bytes();
        if raw.is_empty() || raw.len() > Self::LEN_MAX || !raw.iter().all(u8::is_ascii_graphic) {
            return None;
        }
        let mut bytes = [0u8; Self::LEN_MAX];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(Symbol {
            len: raw.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever stored (checked in `new`), so this
        // cannot fail; fall back to "" rather than panic regardless.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
