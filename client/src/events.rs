//! A resuming event stream: reconnects to any node after a failure and
//! continues from the next sequence number, so a consumer sees every event
//! of its instrument exactly once, in order.

use matchengine_proto::v1 as pb;
use matchengine_proto::v1::client_client::ClientClient;
use tonic::Streaming;

use crate::error::ClientError;
use crate::pool::Pool;

#[derive(Debug)]
pub struct EventSubscription {
    pool: Pool,
    instrument: u32,
    next_sequence: u64,
    stream: Option<Streaming<pb::Event>>,
}

impl EventSubscription {
    pub(crate) fn new(pool: Pool, instrument: u32, from_sequence: u64) -> EventSubscription {
        EventSubscription {
            pool,
            instrument,
            next_sequence: from_sequence.max(1),
            stream: None,
        }
    }

    /// The sequence number of the next event this subscription returns.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    async fn connect(&mut self) -> Result<Streaming<pb::Event>, ClientError> {
        let request = pb::StreamEventsRequest {
            instrument: self.instrument,
            from_sequence: self.next_sequence,
        };
        self.pool
            .any_call(|channel, _| async move {
                ClientClient::new(channel).stream_events(request).await
            })
            .await
    }

    /// The next event. Errors that a retry cannot fix (unknown instrument,
    /// a sequence no node still holds: OUT_OF_RANGE) end the subscription.
    pub async fn next(&mut self) -> Result<pb::Event, ClientError> {
        // Reconnecting gives up this long after the first failure.
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let mut stream = match self.stream.take() {
                Some(stream) => stream,
                None => self.connect().await?,
            };
            match stream.message().await {
                Ok(Some(event)) => {
                    self.stream = Some(stream);
                    if event.sequence < self.next_sequence {
                        continue; // Already seen (cannot happen with one node; harmless).
                    }
                    self.next_sequence = event.sequence + 1;
                    return Ok(event);
                }
                Ok(None) => {}
                Err(status)
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                    ) => {}
                Err(status) => return Err(ClientError::Status(status)),
            }
            let now = tokio::time::Instant::now();
            let give_up = *deadline.get_or_insert(now + self.pool.policy().deadline);
            if now >= give_up {
                return Err(ClientError::Exhausted {
                    deadline_ms: self.pool.policy().deadline.as_millis() as u64,
                    last: "the event stream kept failing".into(),
                });
            }
            tokio::time::sleep(self.pool.policy().backoff).await;
        }
    }
}
