//! Leader election over a `coordination.k8s.io/v1` Lease, so that one
//! operator replica acts at a time.
//!
//! The decision (take, renew or keep off a lease) is a pure function of the
//! Lease and the clock; the shell reads the Lease and writes it back with
//! its `resourceVersion`, so two replicas racing for an expired lease
//! cannot both win: the API server rejects the slower write (409).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease {name}: {source}")]
    Kube {
        name: String,
        #[source]
        source: kube::Error,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or the holder stopped renewing: take it.
    Acquire,
    /// It is ours: renew it.
    Renew,
    /// Someone else holds a live lease.
    HeldBy(String),
}

/// Whether `identity` may write the lease at `now`.
pub fn decide(
    spec: &LeaseSpec,
    identity: &str,
    now: Timestamp,
    default_duration: Duration,
) -> Decision {
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder == identity {
        return Decision::Renew;
    }
    if holder.is_empty() {
        return Decision::Acquire;
    }
    let duration = spec
        .lease_duration_seconds
        .map(|s| SignedDuration::from_secs(i64::from(s)))
        .unwrap_or_else(|| {
            SignedDuration::try_from(default_duration).unwrap_or(SignedDuration::MAX)
        });
    let expired = match &spec.renew_time {
        Some(MicroTime(renewed)) => renewed
            .checked_add(duration)
            .is_ok_and(|expiry| expiry < now),
        None => true,
    };
    if expired {
        Decision::Acquire
    } else {
        Decision::HeldBy(holder.to_owned())
    }
}

/// The lease after `identity` took or renewed it at `now`.
pub fn claimed(spec: &LeaseSpec, identity: &str, now: Timestamp, duration: Duration) -> LeaseSpec {
    let renewing = spec.holder_identity.as_deref() == Some(identity);
    LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: if renewing {
            spec.acquire_time.clone()
        } else {
            Some(MicroTime(now))
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(spec.lease_transitions.unwrap_or(0) + if renewing { 0 } else { 1 }),
        ..spec.clone()
    }
}

/// One replica's handle on the lease.
#[derive(Clone)]
pub struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl std::fmt::Debug for LeaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseLock")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("duration", &self.duration)
            .finish_non_exhaustive()
    }
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

impl LeaseLock {
    pub fn new(api: Api<Lease>, name: String, identity: String, duration: Duration) -> Self {
        Self {
            api,
            name,
            identity,
            duration,
        }
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    fn error(&self, source: kube::Error) -> LeaseError {
        LeaseError::Kube {
            name: self.name.clone(),
            source,
        }
    }

    /// Takes or renews the lease; `false` when another replica holds it or
    /// won a race for it.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaseError> {
        let now = Timestamp::now();
        let Some(lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(e))?
        else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(claimed(
                    &LeaseSpec::default(),
                    &self.identity,
                    now,
                    self.duration,
                )),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(self.error(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        match decide(&spec, &self.identity, now, self.duration) {
            Decision::HeldBy(_) => Ok(false),
            decision => {
                if decision == Decision::Acquire {
                    info!(lease = %self.name, previous = ?spec.holder_identity, "taking the lease");
                }
                self.write(lease, claimed(&spec, &self.identity, now, self.duration))
                    .await
            }
        }
    }

    async fn write(&self, mut lease: Lease, spec: LeaseSpec) -> Result<bool, LeaseError> {
        // `replace` sends the resourceVersion we read: a concurrent writer
        // makes this fail with 409 instead of silently sharing the lease.
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Gives the lease up (on shutdown) so a standby takes over at once.
    pub async fn release(&self) -> Result<(), LeaseError> {
        let Some(lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let released = LeaseSpec {
            holder_identity: None,
            ..spec
        };
        self.write(lease, released).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DURATION: Duration = Duration::from_secs(15);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn held(holder: &str, renewed: i64) -> LeaseSpec {
        claimed(&LeaseSpec::default(), holder, at(renewed), DURATION)
    }

    #[test]
    fn free_lease_is_acquired() {
        assert_eq!(
            decide(&LeaseSpec::default(), "a", at(0), DURATION),
            Decision::Acquire
        );
        let released = LeaseSpec {
            holder_identity: None,
            ..held("b", 0)
        };
        assert_eq!(decide(&released, "a", at(1), DURATION), Decision::Acquire);
    }

    #[test]
    fn live_lease_of_another_is_respected_until_it_expires() {
        let lease = held("b", 0);
        assert_eq!(
            decide(&lease, "a", at(15), DURATION),
            Decision::HeldBy("b".into())
        );
        assert_eq!(decide(&lease, "a", at(16), DURATION), Decision::Acquire);
    }

    #[test]
    fn own_lease_is_renewed_and_transitions_count_takeovers() {
        let lease = held("a", 0);
        assert_eq!(decide(&lease, "a", at(100), DURATION), Decision::Renew);
        let renewed = claimed(&lease, "a", at(5), DURATION);
        assert_eq!(renewed.lease_transitions, Some(1));
        assert_eq!(renewed.acquire_time, lease.acquire_time);
        assert_eq!(renewed.renew_time, Some(MicroTime(at(5))));
        let taken = claimed(&renewed, "b", at(30), DURATION);
        assert_eq!(taken.lease_transitions, Some(2));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(30))));
        assert_eq!(taken.lease_duration_seconds, Some(15));
    }

    mod shell {
        //! The Lease calls against kube's mock service.

        use super::*;
        use http::{Request, Response, StatusCode};
        use kube::client::Body;
        use tower_test::mock;

        fn respond(status: StatusCode, body: serde_json::Value) -> Response<Body> {
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap()
        }

        fn api_status(code: u16, reason: &str) -> serde_json::Value {
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "reason": reason, "code": code, "message": reason})
        }

        fn lease_json(holder: &str, renewed: Timestamp) -> serde_json::Value {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some("op".into()),
                    namespace: Some("ops".into()),
                    resource_version: Some("41".into()),
                    ..ObjectMeta::default()
                },
                spec: Some(claimed(&LeaseSpec::default(), holder, renewed, DURATION)),
            };
            serde_json::to_value(lease).unwrap()
        }

        /// Runs `f` against a server that answers with `replies` in order;
        /// returns the calls made (method, path, body).
        async fn scripted<F, Fut>(
            replies: Vec<(StatusCode, serde_json::Value)>,
            f: F,
        ) -> Vec<(String, String, serde_json::Value)>
        where
            F: FnOnce(LeaseLock) -> Fut,
            Fut: std::future::Future<Output = ()>,
        {
            let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
            let server = tokio::spawn(async move {
                let mut calls = Vec::new();
                for (status, body) in replies {
                    let Some((request, send)) = handle.next_request().await else {
                        break;
                    };
                    let method = request.method().to_string();
                    let path = request.uri().path().to_owned();
                    let bytes = request.into_body().collect_bytes().await.unwrap();
                    let sent = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                    calls.push((method, path, sent));
                    send.send_response(respond(status, body));
                }
                calls
            });
            let client = kube::Client::new(service, "ops");
            let lock = LeaseLock::new(
                Api::namespaced(client, "ops"),
                "op".into(),
                "me".into(),
                DURATION,
            );
            f(lock).await;
            server.await.unwrap()
        }

        const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/op";

        /// Renewed a minute ago: long expired for a 15 s lease.
        fn stale() -> Timestamp {
            Timestamp::now()
                .checked_sub(SignedDuration::from_secs(60))
                .unwrap()
        }

        #[tokio::test]
        async fn missing_lease_is_created() {
            let calls = scripted(
                vec![
                    (StatusCode::NOT_FOUND, api_status(404, "NotFound")),
                    (StatusCode::CREATED, lease_json("me", Timestamp::now())),
                ],
                |lock| async move { assert!(lock.try_acquire_or_renew().await.unwrap()) },
            )
            .await;
            assert_eq!(calls[0].0, "GET");
            assert_eq!(calls[1].0, "POST");
            assert_eq!(calls[1].2["spec"]["holderIdentity"], "me");
        }

        #[tokio::test]
        async fn live_lease_of_another_is_left_alone() {
            let calls = scripted(
                vec![(StatusCode::OK, lease_json("other", Timestamp::now()))],
                |lock| async move { assert!(!lock.try_acquire_or_renew().await.unwrap()) },
            )
            .await;
            assert_eq!(calls.len(), 1, "no write: {calls:?}");
        }

        #[tokio::test]
        async fn expired_lease_is_taken_with_its_resource_version() {
            let calls = scripted(
                vec![
                    (StatusCode::OK, lease_json("other", stale())),
                    (StatusCode::OK, lease_json("me", Timestamp::now())),
                ],
                |lock| async move { assert!(lock.try_acquire_or_renew().await.unwrap()) },
            )
            .await;
            assert_eq!((calls[1].0.as_str(), calls[1].1.as_str()), ("PUT", PATH));
            assert_eq!(calls[1].2["metadata"]["resourceVersion"], "41");
            assert_eq!(calls[1].2["spec"]["holderIdentity"], "me");
            assert_eq!(calls[1].2["spec"]["leaseTransitions"], 2);
        }

        #[tokio::test]
        async fn a_lost_race_is_not_leadership() {
            let calls = scripted(
                vec![
                    (StatusCode::OK, lease_json("other", stale())),
                    (StatusCode::CONFLICT, api_status(409, "Conflict")),
                ],
                |lock| async move { assert!(!lock.try_acquire_or_renew().await.unwrap()) },
            )
            .await;
            assert_eq!(calls.len(), 2);
        }

        #[tokio::test]
        async fn release_clears_the_holder() {
            let calls = scripted(
                vec![
                    (StatusCode::OK, lease_json("me", Timestamp::now())),
                    (StatusCode::OK, lease_json("me", Timestamp::now())),
                ],
                |lock| async move { lock.release().await.unwrap() },
            )
            .await;
            assert_eq!(calls[1].0, "PUT");
            assert!(calls[1].2["spec"].get("holderIdentity").is_none());
        }
    }
}
