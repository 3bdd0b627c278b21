//! MatchEngine's client library: the client and admin APIs of a cluster,
//! following the leader.
//!
//! Writes (and linearizable reads) must reach the leader. A node that is
//! not the leader answers `FAILED_PRECONDITION` with the leader's address in
//! the `x-matchengine-leader` metadata; the library switches to that node
//! and retries. `UNAVAILABLE` (no leader yet, node down, outcome unknown
//! after a leader change) is retried on the next node with a short backoff,
//! within a deadline. A write whose attempt may have been applied (the
//! server marks it `x-matchengine-outcome: unknown`, or no answer came) is
//! not repeated: the call fails and the caller knows the outcome is
//! unknown. Places are the exception, since retrying a place is safe: `(account, client order id)`
//! makes it idempotent, and a retry of an accepted place returns the
//! original order id with `replayed` set.

/// Calls `$method` on the leader through `$api(channel)`, following
/// redirects (see [`pool::Pool::leader_call`]).
macro_rules! leader_rpc {
    ($self:ident, $api:ident, $method:ident, $message:expr) => {
        leader_rpc!(
            $self,
            $api,
            $method,
            $message,
            $crate::pool::Repeat::OnlyIfNotApplied
        )
    };
    ($self:ident, $api:ident, $method:ident, $message:expr, $repeat:expr) => {{
        let message = $message;
        $self
            .pool
            .leader_call($repeat, |channel, timeout| {
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
pub mod orders;
mod pool;
pub mod transport;

pub use admin::AdminClient;
pub use client::Client;
pub use error::ClientError;
pub use events::EventSubscription;
pub use matchengine_proto::v1 as pb;
pub use pool::{ConnectOptions, RetryPolicy};
pub use transport::{TlsOptions, Token, Transport};
