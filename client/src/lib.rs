//! MatchEngine's client library: the client and admin APIs of a cluster,
//! following the leader.
//!
//! Writes (and linearizable reads) must reach the leader. A node that is
//! not the leader answers `FAILED_PRECONDITION` with the leader's address in
//! the `x-matchengine-leader` metadata; the library switches to that node
//! and retries. `UNAVAILABLE` (no leader yet, node down, outcome unknown
//! after a leader change) is retried on the next node with a short backoff,
//! within a deadline. Retrying a place is safe: `(account, client order id)`
//! makes it idempotent, and a retry of an accepted place returns the
//! original order id with `replayed` set.

/// Calls `$method` on the leader through `$api(channel)`, following
/// redirects (see [`pool::Pool::leader_call`]).
macro_rules! leader_rpc {
    ($self:ident, $api:ident, $method:ident, $message:expr) => {{
        let message = $message;
        $self
            .pool
            .leader_call(|channel, timeout| {
                let message = message.clone();
                async move { $api(channel).$method(request(message, timeout)).await }
            })
            .await
    }};
}

pub mod admin;
pub mod client;
pub mod error;
pub mod events;
pub mod load;
pub mod orders;
mod pool;

pub use admin::AdminClient;
pub use client::Client;
pub use error::ClientError;
pub use events::EventSubscription;
pub use matchengine_proto::v1 as pb;
pub use pool::RetryPolicy;

/// The metadata key a follower uses to name the leader's address.
pub const LEADER_METADATA: &str = "x-matchengine-leader";
/// The metadata key naming the book's reject reason of a failed command.
pub const REJECT_REASON_METADATA: &str = "x-matchengine-reject-reason";
