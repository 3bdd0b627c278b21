//! Channels to a cluster's nodes and the leader-following retry loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::error::ClientError;
use crate::transport::{Credentials, TlsOptions, Token, Transport, endpoint};
use matchengine_proto::metadata;

/// How hard a call tries before giving up.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Total time a call may take, retries included.
    pub deadline: Duration,
    /// Timeout of one attempt.
    pub attempt_timeout: Duration,
    /// Pause before trying another node after UNAVAILABLE.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(5),
            backoff: Duration::from_millis(50),
        }
    }
}

/// How the library reaches a cluster: retries, TLS, and the admin token.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    pub policy: RetryPolicy,
    /// TLS to every node; plaintext when `None`.
    pub tls: Option<TlsOptions>,
    /// Sent as `authorization: Bearer <token>` on every call (the admin
    /// API requires it when the cluster has a token).
    pub token: Option<Token>,
}

impl From<RetryPolicy> for ConnectOptions {
    /// Plaintext, no token.
    fn from(policy: RetryPolicy) -> Self {
        ConnectOptions {
            policy,
            ..ConnectOptions::default()
        }
    }
}

/// Channels to known nodes and which one leads, as last learned.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    seeds: Vec<String>,
    policy: RetryPolicy,
    tls: Option<TlsOptions>,
    credentials: Credentials,
    inner: Arc<Mutex<PoolState>>,
}

#[derive(Debug, Default)]
struct PoolState {
    channels: HashMap<String, Channel>,
    leader: Option<String>,
    /// Round-robin position among the seeds when no leader is known.
    next_seed: usize,
}

/// A node's channel, connected on first use.
fn lazy_channel(addr: &str, tls: Option<&TlsOptions>) -> Result<Channel, ClientError> {
    Ok(endpoint(addr, tls, CONNECT_TIMEOUT)?.connect_lazy())
}

/// How long connecting to a node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a failed attempt should move to another node.
enum Next {
    Leader(String),
    OtherNode,
    Stop,
}

/// Whether a call may be repeated when an attempt may have been applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Reads, and writes that are idempotent (a place, by client order id).
    Safe,
    /// Other writes: an attempt that may have been applied ends the call
    /// with its error, so the caller knows the outcome is unknown.
    OnlyIfNotApplied,
}

/// The attempt may have been applied: the server said the outcome is
/// unknown, or the request was sent and no answer came.
pub(crate) fn maybe_applied(status: &tonic::Status) -> bool {
    if status.metadata().get(metadata::OUTCOME).is_some() {
        return true;
    }
    match status.code() {
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => true,
        tonic::Code::Unknown | tonic::Code::Unavailable => {
            // tonic's own transport errors: only a failed connect means the
            // request never left.
            let message = status.message();
            let transport = message.contains("transport") || message.contains("connection");
            transport && !(message.contains("tcp connect") || message.contains("trying to connect"))
        }
        _ => false,
    }
}

fn next_after(status: &tonic::Status, repeat: Repeat) -> Next {
    if repeat == Repeat::OnlyIfNotApplied && maybe_applied(status) {
        return Next::Stop;
    }
    match status.code() {
        tonic::Code::FailedPrecondition => match status
            .metadata()
            .get(metadata::LEADER)
            .and_then(|v| v.to_str().ok())
        {
            Some(leader) => Next::Leader(leader.to_string()),
            None => Next::Stop,
        },
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => Next::OtherNode,
        // A connection-level failure surfaces as UNKNOWN/CANCELLED from tonic.
        tonic::Code::Unknown | tonic::Code::Cancelled
            if status.message().contains("transport")
                || status.message().contains("connection") =>
        {
            Next::OtherNode
        }
        _ => Next::Stop,
    }
}

impl Pool {
    pub fn new(seeds: Vec<String>, options: ConnectOptions) -> Result<Pool, ClientError> {
        if seeds.is_empty() {
            return Err(ClientError::Config("no node addresses given".into()));
        }
        let mut channels = HashMap::new();
        for seed in &seeds {
            channels.insert(seed.clone(), lazy_channel(seed, options.tls.as_ref())?);
        }
        Ok(Pool {
            seeds,
            policy: options.policy,
            credentials: Credentials::new(options.token.as_ref())?,
            tls: options.tls,
            inner: Arc::new(Mutex::new(PoolState {
                channels,
                ..PoolState::default()
            })),
        })
    }

    pub fn seeds(&self) -> &[String] {
        &self.seeds
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // A poisoned lock only means a panic elsewhere; the state is a cache.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The connection to `addr`, created on first use.
    pub fn channel(&self, addr: &str) -> Result<Transport, ClientError> {
        let mut state = self.state();
        let channel = match state.channels.get(addr) {
            Some(channel) => channel.clone(),
            None => {
                let channel = lazy_channel(addr, self.tls.as_ref())?;
                state.channels.insert(addr.to_string(), channel.clone());
                channel
            }
        };
        Ok(InterceptedService::new(channel, self.credentials.clone()))
    }

    /// The node to try: the known leader, else the next seed.
    fn target(&self) -> String {
        let mut state = self.state();
        if let Some(leader) = &state.leader {
            return leader.clone();
        }
        let seed = self.seeds[state.next_seed % self.seeds.len()].clone();
        state.next_seed += 1;
        seed
    }

    fn forget_leader(&self, addr: &str) {
        let mut state = self.state();
        if state.leader.as_deref() == Some(addr) {
            state.leader = None;
        }
    }

    fn set_leader(&self, addr: String) {
        self.state().leader = Some(addr);
    }

    /// Runs `call` against the leader, following redirects and retrying
    /// UNAVAILABLE on other nodes until the deadline; an attempt that may
    /// have been applied is retried only when `repeat` says it is safe.
    pub async fn leader_call<T, F, Fut>(&self, repeat: Repeat, call: F) -> Result<T, ClientError>
    where
        F: Fn(Transport, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + self.policy.deadline;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            let target = self.target();
            let channel = self.channel(&target)?;
            let timeout = self
                .policy
                .attempt_timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            match call(channel, timeout).await {
                Ok(response) => {
                    self.set_leader(target);
                    return Ok(response.into_inner());
                }
                Err(status) => match next_after(&status, repeat) {
                    Next::Leader(leader) => {
                        last = format!("{target} redirected to {leader}");
                        self.set_leader(leader);
                    }
                    Next::OtherNode => {
                        last = format!("{target}: {:?} {}", status.code(), status.message());
                        self.forget_leader(&target);
                        tokio::time::sleep(self.policy.backoff).await;
                    }
                    Next::Stop => return Err(ClientError::Status(status)),
                },
            }
        }
        Err(ClientError::Exhausted {
            deadline_ms: self.policy.deadline.as_millis() as u64,
            last,
        })
    }

    /// Runs `call` against any node that answers (stale reads, status),
    /// starting with the known leader.
    pub async fn any_call<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: Fn(Transport, Duration) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + self.policy.deadline;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            let target = self.target();
            let channel = self.channel(&target)?;
            match call(channel, self.policy.attempt_timeout).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => match next_after(&status, Repeat::Safe) {
                    Next::Stop => return Err(ClientError::Status(status)),
                    _ => {
                        last = format!("{target}: {:?} {}", status.code(), status.message());
                        self.forget_leader(&target);
                        tokio::time::sleep(self.policy.backoff).await;
                    }
                },
            }
        }
        Err(ClientError::Exhausted {
            deadline_ms: self.policy.deadline.as_millis() as u64,
            last,
        })
    }
}

/// A request with a per-attempt timeout.
pub(crate) fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable(message: &str) -> tonic::Status {
        tonic::Status::unavailable(message)
    }

    #[test]
    fn only_attempts_that_never_applied_are_repeated_for_unsafe_writes() {
        let mut unknown = unavailable("the outcome is unknown: leadership changed");
        unknown.metadata_mut().insert(
            metadata::OUTCOME,
            tonic::metadata::MetadataValue::from_static(metadata::OUTCOME_UNKNOWN),
        );
        assert!(matches!(
            next_after(&unknown, Repeat::OnlyIfNotApplied),
            Next::Stop
        ));
        assert!(matches!(
            next_after(&unknown, Repeat::Safe),
            Next::OtherNode
        ));
        let no_leader = unavailable("not the leader; no leader is known");
        assert!(matches!(
            next_after(&no_leader, Repeat::OnlyIfNotApplied),
            Next::OtherNode
        ));
        let refused = unavailable("transport error: tcp connect error: Connection refused");
        assert!(matches!(
            next_after(&refused, Repeat::OnlyIfNotApplied),
            Next::OtherNode
        ));
        let reset = tonic::Status::unknown("transport error: connection reset");
        assert!(matches!(
            next_after(&reset, Repeat::OnlyIfNotApplied),
            Next::Stop
        ));
        let timeout = tonic::Status::deadline_exceeded("timeout");
        assert!(matches!(
            next_after(&timeout, Repeat::OnlyIfNotApplied),
            Next::Stop
        ));
        let mut redirect = tonic::Status::failed_precondition("not the leader");
        redirect.metadata_mut().insert(
            metadata::LEADER,
            tonic::metadata::MetadataValue::from_static("10.0.0.1:7000"),
        );
        assert!(matches!(
            next_after(&redirect, Repeat::OnlyIfNotApplied),
            Next::Leader(_)
        ));
    }
}
