//! Turns client commands into log entries: many proposals, one batch.
//!
//! Every API handler hands its already-validated commands to the
//! [`Proposer`]. One task drains the queue into a [`CommandBatch`] of up to
//! `batch_commands_max` commands, stamps it with the leader's clock and
//! submits it to Raft in queue order; the batch's outcomes are split back to
//! each proposal once it is committed and applied. Up to
//! `batches_inflight_max` batches are in flight at once, so while one is
//! being replicated and synced the next one fills: the busier the node, the
//! bigger the batches and the fewer the fsyncs per command.
//!
//! Bounds: at most `inflight_commands_max` commands are accepted and not
//! yet answered; beyond that a proposal fails at once with
//! [`ProposeError::Overloaded`] rather than queueing without limit.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::errors::ClientWriteError;
use openraft::impls::ProgressResponder;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::batch::{CommandBatch, CommandOutcome, NodeCommand};
use crate::config::ServiceLimits;
use crate::raft_types::{NodeId, Raft};

/// Why proposed commands have no outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("the node has {0} commands in flight; retry later")]
    Overloaded(u32),
    #[error("this node is not the leader")]
    NotLeader { leader_id: Option<NodeId> },
    /// Not proposed: the node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
    #[error("the outcome is unknown: {0}")]
    Unknown(String),
}

struct Proposal {
    commands: Vec<NodeCommand>,
    reply: oneshot::Sender<Result<Vec<CommandOutcome>, ProposeError>>,
    _permit: OwnedSemaphorePermit,
}

/// A handle to the proposing task; clones share it.
#[derive(Clone, Debug)]
pub struct Proposer {
    queue: mpsc::UnboundedSender<Proposal>,
    inflight: Arc<Semaphore>,
    inflight_max: u32,
}

impl std::fmt::Debug for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proposal({} commands)", self.commands.len())
    }
}

impl Proposer {
    /// Starts the proposing task for `raft`; it ends when every handle is dropped.
    pub fn start(raft: Raft, limits: &ServiceLimits) -> Proposer {
        // The queue itself is unbounded; the semaphore bounds what is in it.
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(
            raft,
            receiver,
            limits.batch_commands_max as usize,
            Arc::new(Semaphore::new(limits.batches_inflight_max as usize)),
        ));
        Proposer {
            queue,
            inflight: Arc::new(Semaphore::new(limits.inflight_commands_max as usize)),
            inflight_max: limits.inflight_commands_max,
        }
    }

    /// Commands accepted and not yet answered.
    pub fn inflight_commands(&self) -> u32 {
        self.inflight_max - self.inflight.available_permits() as u32
    }

    /// Proposes `commands` (one log entry, possibly shared with others) and
    /// returns their outcomes once applied, in order.
    pub async fn propose(
        &self,
        commands: Vec<NodeCommand>,
    ) -> Result<Vec<CommandOutcome>, ProposeError> {
        let count =
            u32::try_from(commands.len()).map_err(|_| ProposeError::Overloaded(u32::MAX))?;
        let permit = Arc::clone(&self.inflight)
            .try_acquire_many_owned(count.max(1))
            .map_err(|_| ProposeError::Overloaded(self.inflight_max))?;
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Proposal {
                commands,
                reply,
                _permit: permit,
            })
            .map_err(|_| ProposeError::Stopped)?;
        // Dropped after it was queued: it may have been proposed.
        outcome
            .await
            .map_err(|_| ProposeError::Unknown("the node stopped before answering".into()))?
    }
}

/// A strictly increasing wall clock in nanoseconds: two batches never share
/// a timestamp, even if the system clock steps back.
#[derive(Debug, Default)]
struct BatchClock {
    last_ns: u64,
}

impl BatchClock {
    fn next(&mut self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64);
        self.last_ns = now.max(self.last_ns + 1);
        self.last_ns
    }
}

async fn run(
    raft: Raft,
    mut queue: mpsc::UnboundedReceiver<Proposal>,
    batch_commands_max: usize,
    batch_slots: Arc<Semaphore>,
) {
    let mut clock = BatchClock::default();
    while let Some(first) = queue.recv().await {
        // Wait for room before draining, so that proposals arriving while
        // the pipeline is full join this batch.
        let Ok(slot) = Arc::clone(&batch_slots).acquire_owned().await else {
            break;
        };
        let mut count = first.commands.len();
        let mut proposals = vec![first];
        while count < batch_commands_max {
            match queue.try_recv() {
                Ok(proposal) => {
                    count += proposal.commands.len();
                    proposals.push(proposal);
                }
                Err(_) => break,
            }
        }
        let mut commands = Vec::with_capacity(count);
        let mut waiting = Vec::with_capacity(proposals.len());
        for proposal in proposals {
            let len = proposal.commands.len();
            commands.extend(proposal.commands);
            waiting.push((len, proposal.reply, proposal._permit));
        }
        let batch = CommandBatch::new(clock.next(), &commands);
        drop(commands);
        let (responder, applied) = ProgressResponder::complete_only();
        if raft.write(batch).responder(responder).await.is_err() {
            for (_, reply, _) in waiting {
                let _ = reply.send(Err(ProposeError::Stopped));
            }
            continue;
        }
        tokio::spawn(async move {
            let result = match applied.await {
                Ok(Ok(response)) => Ok(response.data.outcomes),
                Ok(Err(ClientWriteError::ForwardToLeader(forward))) => {
                    Err(ProposeError::NotLeader {
                        leader_id: forward.leader_id,
                    })
                }
                Ok(Err(other)) => Err(ProposeError::Unknown(other.to_string())),
                // The leader stepped down or stopped before applying: the
                // entry may or may not commit later.
                Err(_) => Err(ProposeError::Unknown(
                    "leadership changed before the entry was applied".into(),
                )),
            };
            distribute(result, waiting);
            drop(slot);
        });
    }
}

type Waiting = (
    usize,
    oneshot::Sender<Result<Vec<CommandOutcome>, ProposeError>>,
    OwnedSemaphorePermit,
);

fn distribute(result: Result<Vec<CommandOutcome>, ProposeError>, waiting: Vec<Waiting>) {
    match result {
        Ok(outcomes) => {
            let mut outcomes = outcomes.into_iter();
            for (len, reply, _permit) in waiting {
                let mine: Vec<CommandOutcome> = outcomes.by_ref().take(len).collect();
                let answer = if mine.len() == len {
                    Ok(mine)
                } else {
                    Err(ProposeError::Unknown(
                        "the applied batch returned fewer outcomes than commands".into(),
                    ))
                };
                let _ = reply.send(answer);
            }
        }
        Err(error) => {
            for (_, reply, _permit) in waiting {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_clock_never_repeats_or_goes_back() {
        let mut clock = BatchClock {
            last_ns: u64::MAX / 2,
        };
        let first = clock.next();
        let second = clock.next();
        assert!(first > u64::MAX / 2);
        assert!(second > first);
    }
}
