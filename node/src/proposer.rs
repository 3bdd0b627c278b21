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
//! [`ProposeError::Overloaded`] rather than queueing without limit. No log
//! entry ever holds more than `batch_commands_max` commands: a proposal
//! larger than that is refused, and one that would overflow the batch being
//! filled waits for the next.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use matchengine_book as book;
use matchengine_codec::batch::{CommandBatch, KvCommand, NodeCommand};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::config::ServiceLimits;
use crate::raft::handle::{RaftHandle, WriteError};
use crate::raft::types::NodeId;
use crate::replica::kv::KvReject;
use crate::replica::outcome::CommandOutcome;

/// Why proposed commands have no outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("the node has {0} commands in flight; retry later")]
    Overloaded(u32),
    #[error("{count} commands is more than the {max} one log entry holds")]
    TooLarge { count: usize, max: u32 },
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
    batch_commands_max: u32,
}

impl std::fmt::Debug for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proposal({} commands)", self.commands.len())
    }
}

impl Proposer {
    /// Starts the proposing task for `raft`; it ends when every handle is dropped.
    pub fn start(raft: RaftHandle, limits: &ServiceLimits) -> Proposer {
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
            batch_commands_max: limits.batch_commands_max,
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
        if commands.len() > self.batch_commands_max as usize {
            return Err(ProposeError::TooLarge {
                count: commands.len(),
                max: self.batch_commands_max,
            });
        }
        // Fits in u32: bounded by batch_commands_max just above.
        let count = commands.len() as u32;
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

    /// Proposes one book command: its reply and events once applied.
    pub async fn propose_book(
        &self,
        command: book::Command,
    ) -> Result<(book::Reply, Vec<book::Event>), ProposeError> {
        match self.propose_one(NodeCommand::Book(command)).await? {
            CommandOutcome::Book { reply, events } => Ok((reply, events)),
            CommandOutcome::Kv(_) => Err(outcome_mismatch()),
        }
    }

    /// Proposes one key-value command: whether the key existed (put) or was
    /// deleted (delete), or why the namespace refused it.
    pub async fn propose_kv(
        &self,
        command: KvCommand,
    ) -> Result<Result<bool, KvReject>, ProposeError> {
        match self.propose_one(NodeCommand::Kv(command)).await? {
            CommandOutcome::Kv(result) => Ok(result),
            CommandOutcome::Book { .. } => Err(outcome_mismatch()),
        }
    }

    async fn propose_one(&self, command: NodeCommand) -> Result<CommandOutcome, ProposeError> {
        let mut outcomes = self.propose(vec![command]).await?;
        match (outcomes.pop(), outcomes.is_empty()) {
            (Some(outcome), true) => Ok(outcome),
            _ => Err(outcome_mismatch()),
        }
    }
}

/// The state machine answers each command with an outcome of its own kind,
/// one per command; anything else is a bug, reported rather than trusted.
fn outcome_mismatch() -> ProposeError {
    ProposeError::Unknown("the applied batch's outcomes do not match its commands".into())
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
    raft: RaftHandle,
    mut queue: mpsc::UnboundedReceiver<Proposal>,
    batch_commands_max: usize,
    batch_slots: Arc<Semaphore>,
) {
    let mut clock = BatchClock::default();
    // A proposal that did not fit in the previous batch starts the next.
    let mut carried: Option<Proposal> = None;
    loop {
        let first = match carried.take() {
            Some(proposal) => proposal,
            None => match queue.recv().await {
                Some(proposal) => proposal,
                None => break,
            },
        };
        // Wait for room before draining, so that proposals arriving while
        // the pipeline is full join this batch.
        let Ok(slot) = Arc::clone(&batch_slots).acquire_owned().await else {
            break;
        };
        let (proposals, count, next) = fill_batch(first, &mut queue, batch_commands_max);
        carried = next;
        let mut commands = Vec::with_capacity(count);
        let mut waiting = Vec::with_capacity(proposals.len());
        for proposal in proposals {
            let len = proposal.commands.len();
            commands.extend(proposal.commands);
            waiting.push((len, proposal.reply, proposal._permit));
        }
        let batch = CommandBatch::new(clock.next(), &commands);
        drop(commands);
        let pending = match raft.submit(batch).await {
            Ok(pending) => pending,
            Err(_) => {
                for (_, reply, _) in waiting {
                    let _ = reply.send(Err(ProposeError::Stopped));
                }
                continue;
            }
        };
        tokio::spawn(async move {
            let result = match pending.applied().await {
                Ok(outcome) => Ok(outcome.outcomes),
                Err(WriteError::NotLeader { leader_id }) => {
                    Err(ProposeError::NotLeader { leader_id })
                }
                Err(error) => Err(ProposeError::Unknown(error.to_string())),
            };
            distribute(result, waiting);
            drop(slot);
        });
    }
}

/// The proposals of one batch and their command count: `first`, then
/// whatever is queued while the batch has room. A proposal that would take
/// it past `batch_commands_max` is returned to start the next batch, so no
/// log entry ever exceeds the bound (a single proposal over it is refused
/// by [`Proposer::propose`]).
fn fill_batch(
    first: Proposal,
    queue: &mut mpsc::UnboundedReceiver<Proposal>,
    batch_commands_max: usize,
) -> (Vec<Proposal>, usize, Option<Proposal>) {
    let mut count = first.commands.len();
    let mut proposals = vec![first];
    while count < batch_commands_max {
        match queue.try_recv() {
            Ok(proposal) if count + proposal.commands.len() > batch_commands_max => {
                return (proposals, count, Some(proposal));
            }
            Ok(proposal) => {
                count += proposal.commands.len();
                proposals.push(proposal);
            }
            Err(_) => break,
        }
    }
    assert!(
        count <= batch_commands_max,
        "a batch of {count} commands exceeds batch_commands_max {batch_commands_max}"
    );
    (proposals, count, None)
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

    fn proposal(commands: usize, permits: &Arc<Semaphore>) -> Proposal {
        let put = NodeCommand::Kv(KvCommand::Delete {
            key: bytes::Bytes::from_static(b"k"),
        });
        Proposal {
            commands: vec![put; commands],
            reply: oneshot::channel().0,
            _permit: Arc::clone(permits).try_acquire_owned().unwrap(),
        }
    }

    /// Whatever arrives, no batch (one log entry) holds more than the
    /// bound, and proposals keep their order.
    #[test]
    fn no_batch_exceeds_batch_commands_max() {
        let permits = Arc::new(Semaphore::new(100));
        let (sender, mut queue) = mpsc::unbounded_channel();
        let sizes = [3, 3, 4, 1, 5, 2, 2, 1];
        for size in sizes {
            sender.send(proposal(size, &permits)).unwrap();
        }
        drop(sender);
        let mut batches = Vec::new();
        let mut carried = None;
        while let Some(first) = carried.take().or_else(|| queue.try_recv().ok()) {
            let (proposals, count, next) = fill_batch(first, &mut queue, 5);
            assert_eq!(
                count,
                proposals.iter().map(|p| p.commands.len()).sum::<usize>()
            );
            carried = next;
            batches.push(
                proposals
                    .iter()
                    .map(|p| p.commands.len())
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(
            batches,
            [vec![3], vec![3], vec![4, 1], vec![5], vec![2, 2, 1]]
        );
    }

    #[tokio::test]
    async fn a_proposal_over_the_bound_is_refused() {
        let (queue, _receiver) = mpsc::unbounded_channel();
        let proposer = Proposer {
            queue,
            inflight: Arc::new(Semaphore::new(100)),
            inflight_max: 100,
            batch_commands_max: 4,
        };
        let put = NodeCommand::Kv(KvCommand::Delete {
            key: bytes::Bytes::from_static(b"k"),
        });
        assert_eq!(
            proposer.propose(vec![put; 5]).await,
            Err(ProposeError::TooLarge { count: 5, max: 4 })
        );
    }

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
