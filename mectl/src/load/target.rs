//! What the load generator drives: a MatchEngine cluster through the
//! client library, or another system for a side-by-side comparison.

use crate::load::workload::Op;
use matchengine_client::client::{Client, Consistency};
use matchengine_client::pb;

/// What one operation returned, as far as the workload cares.
#[derive(Clone, Debug, Default)]
pub struct OpOutcome {
    /// Commands the operation carried (a batch carries many).
    pub commands: u64,
    /// For a place or replace: the order's events.
    pub events: Vec<pb::Event>,
    pub order_id: u64,
    /// Commands the book rejected at apply (committed, answered, refused).
    pub rejected: u64,
}

/// A system under load. Errors are gRPC status codes (or the nearest one).
pub trait LoadTarget: Clone + Send + Sync + 'static {
    fn execute(&self, op: Op) -> impl Future<Output = Result<OpOutcome, tonic::Code>> + Send;
}

/// A MatchEngine cluster, through several independent connections.
#[derive(Clone, Debug)]
pub struct MatchEngineTarget {
    clients: Vec<Client>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl MatchEngineTarget {
    pub fn new(clients: Vec<Client>) -> MatchEngineTarget {
        MatchEngineTarget {
            clients,
            next: Default::default(),
        }
    }

    fn client(&self) -> &Client {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.clients[n % self.clients.len()]
    }
}

/// Codes that mean "committed, applied, and refused by the book".
fn is_book_rejection(error: &matchengine_client::ClientError) -> bool {
    error.reject_reason().is_some()
}

fn outcome<T>(
    result: Result<T, matchengine_client::ClientError>,
    ok: impl FnOnce(T) -> OpOutcome,
) -> Result<OpOutcome, tonic::Code> {
    match result {
        Ok(value) => Ok(ok(value)),
        Err(error) if is_book_rejection(&error) => Ok(OpOutcome {
            commands: 1,
            rejected: 1,
            ..OpOutcome::default()
        }),
        Err(error) => Err(error.code().unwrap_or(tonic::Code::Unavailable)),
    }
}

impl LoadTarget for MatchEngineTarget {
    async fn execute(&self, op: Op) -> Result<OpOutcome, tonic::Code> {
        let client = self.client();
        match op {
            Op::Place(order) => outcome(client.place_order(order).await, |response| OpOutcome {
                commands: 1,
                order_id: response.order_id,
                events: response.events,
                rejected: 0,
            }),
            Op::Replace(replace) => {
                let order_id = match replace.order.as_ref().and_then(|o| o.by) {
                    Some(pb::order_ref::By::OrderId(id)) => id,
                    _ => 0,
                };
                outcome(client.replace_order(replace).await, |response| OpOutcome {
                    commands: 1,
                    order_id,
                    events: response.events,
                    rejected: 0,
                })
            }
            Op::Cancel(cancel) => outcome(client.cancel_order(cancel).await, |_| OpOutcome {
                commands: 1,
                ..OpOutcome::default()
            }),
            Op::Batch(commands) => {
                let count = commands.len() as u64;
                match client.submit_batch(commands).await {
                    Ok(response) => Ok(OpOutcome {
                        commands: count,
                        rejected: response.results.iter().filter(|r| r.code != 0).count() as u64,
                        ..OpOutcome::default()
                    }),
                    Err(error) => Err(error.code().unwrap_or(tonic::Code::Unavailable)),
                }
            }
            Op::KvPut { key, value } => outcome(client.kv_put(key, value).await, |_| OpOutcome {
                commands: 1,
                ..OpOutcome::default()
            }),
            Op::KvGet { key } => {
                outcome(client.kv_get(key, Consistency::Linearizable).await, |_| {
                    OpOutcome {
                        commands: 1,
                        ..OpOutcome::default()
                    }
                })
            }
        }
    }
}
