//! The client API (`matchengine.v1.Client`): orders, market data, the
//! key-value store and event streams.
//!
//! A write: decode and validate every field, check this node leads, check
//! the command against the instrument, propose it (batched with others),
//! and answer with its outcome once a quorum has it on disk and it is
//! applied. A rejection by the book is an error status with its reason.

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use matchengine_book as book;
use matchengine_proto::v1 as pb;
use tonic::{Request, Response, Status};

use matchengine_codec::batch::{KvCommand, NodeCommand, node_command_from_pb};
use matchengine_codec::book::{book_command_from_pb, event_to_pb, outcome_to_pb, spec_to_pb};

use super::convert::{depth_to_pb, order_to_pb, top_to_pb};
use super::error::{ApiError, kv_reject_code, reject_code};
use super::{ApiContext, Port};
use crate::events::EventsError;
use crate::replica::outcome::CommandOutcome;

const SERVICE: &str = "matchengine.v1.Client";
/// Largest depth a request may ask for.
const DEPTH_LEVELS_MAX: u32 = 1_000;
const RANGE_LIMIT_DEFAULT: u32 = 1_000;
const RANGE_LIMIT_MAX: u32 = 10_000;
/// Events sent per read of the hub while streaming.
const STREAM_CHUNK_EVENTS: usize = 1_024;

#[derive(Clone, Debug)]
pub struct ClientService {
    context: ApiContext,
}

impl ClientService {
    pub fn new(context: ApiContext) -> ClientService {
        ClientService { context }
    }

    /// One book command, start to finish: its accepted reply and events.
    async fn execute_book(
        &self,
        command: pb::BookCommand,
    ) -> Result<(book::Accepted, bool, Vec<book::Event>), ApiError> {
        // Fields first (any node answers INVALID_ARGUMENT), then leadership
        // and admission against the leader's state.
        let command = book_command_from_pb(command)?;
        self.context.admit_book(&command, Port::Client)?;
        let (reply, events) = self
            .context
            .proposer
            .propose_book(command)
            .await
            .map_err(|error| self.context.propose_error(error, Port::Client))?;
        match reply.result {
            Ok(accepted) => Ok((accepted, reply.replayed, events)),
            Err(reason) => Err(ApiError::Rejected(reason)),
        }
    }

    async fn execute_kv(&self, command: KvCommand) -> Result<bool, ApiError> {
        self.context.admit_kv(&command, Port::Client)?;
        self.context
            .proposer
            .propose_kv(command)
            .await
            .map_err(|error| self.context.propose_error(error, Port::Client))?
            .map_err(ApiError::Kv)
    }

    async fn submit_batch(
        &self,
        request: pb::SubmitBatchRequest,
    ) -> Result<pb::SubmitBatchResponse, ApiError> {
        let count = request.commands.len();
        let max = self.context.limits.submit_batch_commands_max as usize;
        if count == 0 {
            return Err(ApiError::Invalid("commands: at least one is needed".into()));
        }
        if count > max {
            return Err(ApiError::Invalid(format!(
                "commands: {count} is more than the maximum of {max} per batch"
            )));
        }
        self.context.ensure_leader(Port::Client)?;
        // Invalid commands get their error here and are never proposed.
        let mut results: Vec<Option<pb::CommandResult>> = Vec::with_capacity(count);
        let mut valid = Vec::with_capacity(count);
        for command in request.commands {
            match self.decode_admitted(command) {
                Ok(command) => {
                    results.push(None);
                    valid.push(command);
                }
                Err(error) => results.push(Some(error_result(&error))),
            }
        }
        let mut outcomes = if valid.is_empty() {
            Vec::new()
        } else {
            self.context
                .proposer
                .propose(valid)
                .await
                .map_err(|error| self.context.propose_error(error, Port::Client))?
        }
        .into_iter();
        Ok(pb::SubmitBatchResponse {
            results: results
                .into_iter()
                .map(|result| match result {
                    Some(result) => Ok(result),
                    None => outcomes
                        .next()
                        .map(|outcome| outcome_result(&outcome))
                        .ok_or_else(|| ApiError::Internal("missing outcome".into())),
                })
                .collect::<Result<_, _>>()?,
        })
    }

    /// One command of a batch: decoded, then admitted (the caller has
    /// checked leadership once for the whole batch).
    fn decode_admitted(&self, command: pb::Command) -> Result<NodeCommand, ApiError> {
        if let Some(pb::command::Command::Book(pb::BookCommand {
            command: Some(pb::book_command::Command::AddInstrument(_)),
        })) = &command.command
        {
            return Err(ApiError::Invalid(
                "add_instrument goes through the admin API".into(),
            ));
        }
        let command = node_command_from_pb(command)?;
        self.context.admit_on_leader(&command)?;
        Ok(command)
    }

    fn stream_events(&self, request: pb::StreamEventsRequest) -> Result<EventStream, ApiError> {
        let instrument = book::InstrumentId(request.instrument);
        let next_sequence = self
            .context
            .read_state(|state| state.engine().next_sequence(instrument))?
            .ok_or_else(|| ApiError::NotFound(format!("unknown instrument {}", instrument.0)))?;
        let from = request.from_sequence.max(1);
        if from > next_sequence {
            return Err(ApiError::Invalid(format!(
                "from_sequence {from} is beyond the next sequence {next_sequence}"
            )));
        }
        let hub = std::sync::Arc::clone(&self.context.events);
        let changes = hub.subscribe();
        let stopping = self.context.stopping.clone();
        let stream = futures::stream::unfold(
            (hub, changes, from, false),
            move |(hub, mut changes, next, done)| {
                let mut stopping = stopping.clone();
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        changes.mark_unchanged();
                        match hub.read(instrument, next, STREAM_CHUNK_EVENTS) {
                            Ok(events) if !events.is_empty() => {
                                let after = events.last().map_or(next, |e| e.sequence + 1);
                                let events: Vec<Result<pb::Event, Status>> =
                                    events.iter().map(|e| Ok(event_to_pb(e))).collect();
                                return Some((events, (hub, changes, after, false)));
                            }
                            Ok(_) => {
                                // Nothing new: wait for the next applied entry,
                                // or end the stream when the node stops (the
                                // client resumes on another node).
                                tokio::select! {
                                    _ = changes.changed() => {}
                                    _ = stopping.wait_for(|stopping| *stopping) => {
                                        let status = Status::unavailable("the node is shutting down; resume on another node");
                                        return Some((vec![Err(status)], (hub, changes, next, true)));
                                    }
                                }
                            }
                            Err(error) => {
                                let status = Status::from(match error {
                                    EventsError::Gone { .. } => ApiError::Gone(format!(
                                        "{error}; read the depth and resume from its next_sequence"
                                    )),
                                    EventsError::Poisoned => ApiError::Internal(error.to_string()),
                                });
                                return Some((vec![Err(status)], (hub, changes, next, true)));
                            }
                        }
                    }
                }
            },
        );
        Ok(Box::pin(futures::StreamExt::flat_map(
            stream,
            futures::stream::iter,
        )))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send + 'static>>;

fn error_result(error: &ApiError) -> pb::CommandResult {
    pb::CommandResult {
        code: error.code() as u32,
        message: error.to_string(),
        outcome: None,
    }
}

fn outcome_result(outcome: &CommandOutcome) -> pb::CommandResult {
    match outcome {
        CommandOutcome::Book { reply, events } => {
            let (code, message) = match reply.result {
                Ok(_) => (tonic::Code::Ok, String::new()),
                Err(reason) => (reject_code(reason), reason.to_string()),
            };
            pb::CommandResult {
                code: code as u32,
                message,
                outcome: Some(pb::command_result::Outcome::Book(outcome_to_pb(
                    reply, events,
                ))),
            }
        }
        CommandOutcome::Kv(result) => {
            let (code, message, existed) = match result {
                Ok(existed) => (tonic::Code::Ok, String::new(), *existed),
                Err(reject) => (kv_reject_code(*reject), reject.to_string(), false),
            };
            pb::CommandResult {
                code: code as u32,
                message,
                outcome: Some(pb::command_result::Outcome::Kv(pb::KvOutcome { existed })),
            }
        }
    }
}

fn linearizable(consistency: i32) -> Result<bool, ApiError> {
    match pb::ReadConsistency::try_from(consistency) {
        Ok(pb::ReadConsistency::Linearizable) => Ok(true),
        Ok(pb::ReadConsistency::Stale) => Ok(false),
        Err(_) => Err(ApiError::Invalid(format!(
            "consistency: unknown value {consistency}"
        ))),
    }
}

fn book_command(command: pb::book_command::Command) -> pb::BookCommand {
    pb::BookCommand {
        command: Some(command),
    }
}

fn events_to_pb(events: &[book::Event]) -> Vec<pb::Event> {
    events.iter().map(event_to_pb).collect()
}

#[tonic::async_trait]
impl pb::client_server::Client for ClientService {
    async fn place_order(
        &self,
        request: Request<pb::PlaceOrder>,
    ) -> Result<Response<pb::PlaceOrderResponse>, Status> {
        let command = book_command(pb::book_command::Command::Place(request.into_inner()));
        self.context
            .metered(SERVICE, "PlaceOrder", async {
                let (accepted, replayed, events) = self.execute_book(command).await?;
                let book::Accepted::Order(order_id) = accepted else {
                    return Err(ApiError::Internal(
                        "a place accepted without an order".into(),
                    ));
                };
                Ok(pb::PlaceOrderResponse {
                    order_id: order_id.0,
                    replayed,
                    events: events_to_pb(&events),
                })
            })
            .await
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrder>,
    ) -> Result<Response<pb::CancelOrderResponse>, Status> {
        let command = book_command(pb::book_command::Command::Cancel(request.into_inner()));
        self.context
            .metered(SERVICE, "CancelOrder", async {
                let (_, _, events) = self.execute_book(command).await?;
                Ok(pb::CancelOrderResponse {
                    events: events_to_pb(&events),
                })
            })
            .await
    }

    async fn replace_order(
        &self,
        request: Request<pb::ReplaceOrder>,
    ) -> Result<Response<pb::ReplaceOrderResponse>, Status> {
        let command = book_command(pb::book_command::Command::Replace(request.into_inner()));
        self.context
            .metered(SERVICE, "ReplaceOrder", async {
                let (_, _, events) = self.execute_book(command).await?;
                Ok(pb::ReplaceOrderResponse {
                    events: events_to_pb(&events),
                })
            })
            .await
    }

    async fn mass_cancel(
        &self,
        request: Request<pb::MassCancel>,
    ) -> Result<Response<pb::MassCancelResponse>, Status> {
        let command = book_command(pb::book_command::Command::MassCancel(request.into_inner()));
        self.context
            .metered(SERVICE, "MassCancel", async {
                let (accepted, _, events) = self.execute_book(command).await?;
                let orders_cancelled = match accepted {
                    book::Accepted::MassCancelled { orders_cancelled } => orders_cancelled,
                    _ => 0,
                };
                Ok(pb::MassCancelResponse {
                    orders_cancelled,
                    events: events_to_pb(&events),
                })
            })
            .await
    }

    async fn submit_batch(
        &self,
        request: Request<pb::SubmitBatchRequest>,
    ) -> Result<Response<pb::SubmitBatchResponse>, Status> {
        self.context
            .metered(
                SERVICE,
                "SubmitBatch",
                self.submit_batch(request.into_inner()),
            )
            .await
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::OrderInfo>, Status> {
        let request = request.into_inner();
        self.context
            .metered(SERVICE, "GetOrder", async {
                let linearizable = linearizable(request.consistency)?;
                let by = request
                    .order
                    .and_then(|order| order.by)
                    .ok_or_else(|| ApiError::Invalid("missing field order.by".into()))?;
                let account = book::AccountId(request.account);
                let view = self
                    .context
                    .read(linearizable, |state| {
                        let engine = state.engine();
                        match by {
                            pb::order_ref::By::OrderId(id) => engine
                                .order(book::OrderId(id))
                                .filter(|order| request.account == 0 || order.account == account),
                            pb::order_ref::By::ClientOrderId(id) => {
                                engine.order_by_client_id(account, book::ClientOrderId(id))
                            }
                        }
                    })
                    .await?;
                view.map(|view| order_to_pb(&view)).ok_or_else(|| {
                    ApiError::NotFound("no such order (or it is no longer remembered)".into())
                })
            })
            .await
    }

    async fn get_top_of_book(
        &self,
        request: Request<pb::GetTopOfBookRequest>,
    ) -> Result<Response<pb::TopOfBook>, Status> {
        let request = request.into_inner();
        self.context
            .metered(SERVICE, "GetTopOfBook", async {
                let instrument = book::InstrumentId(request.instrument);
                let top = self
                    .context
                    .read(linearizable(request.consistency)?, |state| {
                        let engine = state.engine();
                        Some(top_to_pb(
                            &engine.top_of_book(instrument)?,
                            engine.next_sequence(instrument)?,
                        ))
                    })
                    .await?;
                top.ok_or_else(|| {
                    ApiError::NotFound(format!("unknown instrument {}", instrument.0))
                })
            })
            .await
    }

    async fn get_depth(
        &self,
        request: Request<pb::GetDepthRequest>,
    ) -> Result<Response<pb::Depth>, Status> {
        let request = request.into_inner();
        self.context
            .metered(SERVICE, "GetDepth", async {
                if request.levels == 0 || request.levels > DEPTH_LEVELS_MAX {
                    return Err(ApiError::Invalid(format!(
                        "levels: {} is not between 1 and {DEPTH_LEVELS_MAX}",
                        request.levels
                    )));
                }
                let instrument = book::InstrumentId(request.instrument);
                let depth = self
                    .context
                    .read(linearizable(request.consistency)?, |state| {
                        let engine = state.engine();
                        Some(depth_to_pb(
                            &engine.depth(instrument, request.levels as usize)?,
                            engine.next_sequence(instrument)?,
                        ))
                    })
                    .await?;
                depth.ok_or_else(|| {
                    ApiError::NotFound(format!("unknown instrument {}", instrument.0))
                })
            })
            .await
    }

    async fn list_instruments(
        &self,
        request: Request<pb::ListInstrumentsRequest>,
    ) -> Result<Response<pb::ListInstrumentsResponse>, Status> {
        let request = request.into_inner();
        self.context
            .metered(SERVICE, "ListInstruments", async {
                let instruments = self
                    .context
                    .read(linearizable(request.consistency)?, |state| {
                        state.engine().instruments().map(spec_to_pb).collect()
                    })
                    .await?;
                Ok(pb::ListInstrumentsResponse { instruments })
            })
            .await
    }

    async fn kv_put(
        &self,
        request: Request<pb::KvPutRequest>,
    ) -> Result<Response<pb::KvPutResponse>, Status> {
        let request = request.into_inner();
        self.context
            .metered(SERVICE, "KvPut", async {
                let existed = self
                    .execute_kv(KvCommand::Put {
                        key: Bytes::from(request.key),
                        value: Bytes::from(request.value),
                    })
                    .await?;
                Ok(pb::KvPutResponse { existed })
            })
            .await
    }

    async fn kv_get(
        &self,
        request: Request<pb::KvGetRequest>,
    ) -> Result<Response<pb::KvGetResponse>, Status> {
        let request = request.into_inner();
        self.context
            .metered(SERVICE, "KvGet", async {
                if request.key.is_empty() {
                    return Err(ApiError::Invalid("key: must not be empty".into()));
                }
                let value = self
                    .context
                    .read(linearizable(request.consistency)?, |state| {
                        state.kv().get(&request.key).cloned()
                    })
                    .await?;
                value
                    .map(|value| pb::KvGetResponse {
                        value: value.to_vec(),
                    })
                    .ok_or_else(|| ApiError::NotFound("no such key".into()))
            })
            .await
    }

    async fn kv_delete(
        &self,
        request: Request<pb::KvDeleteRequest>,
    ) -> Result<Response<pb::KvDeleteResponse>, Status> {
        let request = request.into_inner();
        self.context
            .metered(SERVICE, "KvDelete", async {
                let deleted = self
                    .execute_kv(KvCommand::Delete {
                        key: Bytes::from(request.key),
                    })
                    .await?;
                if deleted {
                    Ok(pb::KvDeleteResponse {})
                } else {
                    Err(ApiError::NotFound(
                        "no such key: nothing was deleted".into(),
                    ))
                }
            })
            .await
    }

    async fn kv_range(
        &self,
        request: Request<pb::KvRangeRequest>,
    ) -> Result<Response<pb::KvRangeResponse>, Status> {
        let request = request.into_inner();
        self.context
            .metered(SERVICE, "KvRange", async {
                let limit = match request.limit {
                    0 => RANGE_LIMIT_DEFAULT,
                    limit if limit > RANGE_LIMIT_MAX => {
                        return Err(ApiError::Invalid(format!(
                            "limit: {limit} is more than {RANGE_LIMIT_MAX}"
                        )));
                    }
                    limit => limit,
                } as usize;
                let start_after =
                    (!request.start_after.is_empty()).then_some(&request.start_after[..]);
                // One more than asked, to tell whether more follow.
                let mut entries = self
                    .context
                    .read(linearizable(request.consistency)?, |state| {
                        state
                            .kv()
                            .range_by_prefix(&request.prefix, start_after, limit + 1)
                    })
                    .await?;
                let more = entries.len() > limit;
                entries.truncate(limit);
                Ok(pb::KvRangeResponse {
                    entries: entries
                        .into_iter()
                        .map(|(key, value)| pb::KvEntry {
                            key: key.to_vec(),
                            value: value.to_vec(),
                        })
                        .collect(),
                    more,
                })
            })
            .await
    }

    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        self.context
            .metered(SERVICE, "StreamEvents", async {
                self.stream_events(request.into_inner())
            })
            .await
    }
}
