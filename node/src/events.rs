//! The recent events of every instrument, for `StreamEvents`.
//!
//! Fed on the apply task of every node (leader or not), so any node can
//! serve a stream. Each instrument keeps its last `retained_per_instrument`
//! events, contiguous by sequence number; a subscriber asks for events from
//! a sequence number and is told when that is no longer held (it then
//! re-reads the book, whose `next_sequence` says where to resume). Memory is
//! bounded by instruments x retained events; nothing here is durable, the
//! log and snapshots are.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use matchengine_book::{Event, InstrumentId};
use tokio::sync::watch;

use crate::replica::outcome::CommandOutcome;
use crate::replica::state::ReplicatedState;

/// Why events could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    #[error("sequence {requested} is no longer held; the oldest held is {oldest}")]
    Gone { requested: u64, oldest: u64 },
    #[error("the event hub lock was poisoned by a panic")]
    Poisoned,
}

#[derive(Debug, Default)]
struct Retained {
    /// The sequence number of `events[0]`, or of the next event when empty.
    first_sequence: u64,
    events: VecDeque<Event>,
}

impl Retained {
    fn next_sequence(&self) -> u64 {
        self.first_sequence + self.events.len() as u64
    }
}

#[derive(Debug)]
pub struct EventHub {
    retained_per_instrument: usize,
    instruments: Mutex<HashMap<InstrumentId, Retained>>,
    /// Bumped after every applied entry that had events; subscribers wait on it.
    version: watch::Sender<u64>,
}

impl EventHub {
    /// A hub that starts where `state` is: nothing before it is held.
    pub fn new(retained_per_instrument: u32, state: &ReplicatedState) -> EventHub {
        let hub = EventHub {
            retained_per_instrument: retained_per_instrument.max(1) as usize,
            instruments: Mutex::new(HashMap::new()),
            version: watch::Sender::new(0),
        };
        hub.reset(state);
        hub
    }

    /// Forgets every held event: the state jumped (a snapshot was installed).
    pub fn reset(&self, state: &ReplicatedState) {
        let engine = state.engine();
        let fresh = engine
            .instruments()
            .map(|spec| {
                let next = engine.next_sequence(spec.instrument).unwrap_or(1);
                (
                    spec.instrument,
                    Retained {
                        first_sequence: next,
                        events: VecDeque::new(),
                    },
                )
            })
            .collect();
        if let Ok(mut instruments) = self.instruments.lock() {
            *instruments = fresh;
        }
        self.version.send_modify(|version| *version += 1);
    }

    /// Records the events of an applied batch.
    pub fn record(&self, outcomes: &[CommandOutcome]) {
        let Ok(mut instruments) = self.instruments.lock() else {
            return;
        };
        let mut any = false;
        for outcome in outcomes {
            let CommandOutcome::Book { events, .. } = outcome else {
                continue;
            };
            for event in events {
                any = true;
                let retained = instruments.entry(event.instrument).or_default();
                if retained.events.is_empty() || event.sequence != retained.next_sequence() {
                    // Sequences are gapless per instrument; a jump means the
                    // hub started mid-stream (first event of an instrument).
                    retained.events.clear();
                    retained.first_sequence = event.sequence;
                }
                if retained.events.len() == self.retained_per_instrument {
                    retained.events.pop_front();
                    retained.first_sequence += 1;
                }
                retained.events.push_back(*event);
            }
        }
        drop(instruments);
        if any {
            self.version.send_modify(|version| *version += 1);
        }
    }

    /// Up to `count_max` events of `instrument` from sequence `from` on
    /// (none yet is an empty vector: wait with [`EventHub::subscribe`]).
    pub fn read(
        &self,
        instrument: InstrumentId,
        from: u64,
        count_max: usize,
    ) -> Result<Vec<Event>, EventsError> {
        let instruments = self.instruments.lock().map_err(|_| EventsError::Poisoned)?;
        let Some(retained) = instruments.get(&instrument) else {
            return Ok(Vec::new());
        };
        if from < retained.first_sequence {
            return Err(EventsError::Gone {
                requested: from,
                oldest: retained.first_sequence,
            });
        }
        let skip = (from - retained.first_sequence) as usize;
        Ok(retained
            .events
            .iter()
            .skip(skip)
            .take(count_max)
            .copied()
            .collect())
    }

    /// A receiver that changes whenever new events may be readable.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::state::StateLimits;
    use matchengine_book as book;
    use matchengine_codec::batch::{DecodedBatch, NodeCommand};

    fn place(client: u64, side: book::Side, price: i64) -> NodeCommand {
        NodeCommand::Book(book::builders::place_limit(
            1,
            client % 2,
            client,
            side,
            price,
            1,
        ))
    }

    fn apply(state: &mut ReplicatedState, commands: Vec<NodeCommand>) -> Vec<CommandOutcome> {
        let mut outcomes = Vec::new();
        state.apply(
            &DecodedBatch {
                timestamp_ns: 1,
                commands,
            },
            &mut outcomes,
        );
        outcomes
    }

    fn add_instrument() -> NodeCommand {
        NodeCommand::Book(book::Command::AddInstrument(book::InstrumentSpec {
            price_ticks_max: 1_000,
            quantity_lots_max: 10,
            ..book::builders::instrument(1, "X")
        }))
    }

    #[test]
    fn keeps_the_newest_events_contiguously_and_reports_what_is_gone() {
        let mut state = ReplicatedState::new(StateLimits::default()).unwrap();
        let hub = EventHub::new(4, &state);
        hub.record(&apply(&mut state, vec![add_instrument()]));
        let first = hub.read(book::InstrumentId(1), 1, 10).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].sequence, 1);
        let mut receiver = hub.subscribe();
        receiver.mark_unchanged();
        for client in 1..=3 {
            hub.record(&apply(&mut state, vec![place(client, book::Side::Buy, 10)]));
        }
        assert!(receiver.has_changed().unwrap());
        // 1 + 3 accepted = 4 events: sequences 1..=4, all held.
        let held: Vec<u64> = hub
            .read(book::InstrumentId(1), 1, 10)
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(held, [1, 2, 3, 4]);
        hub.record(&apply(&mut state, vec![place(4, book::Side::Sell, 10)]));
        // The crossing order adds accepted, trade, done, done: 4 more; only
        // the newest 4 are held.
        assert_eq!(
            hub.read(book::InstrumentId(1), 2, 10),
            Err(EventsError::Gone {
                requested: 2,
                oldest: 5
            })
        );
        let tail: Vec<u64> = hub
            .read(book::InstrumentId(1), 6, 2)
            .unwrap()
            .iter()
            .map(|e| e.sequence)
            .collect();
        assert_eq!(tail, [6, 7]);
        assert!(hub.read(book::InstrumentId(1), 9, 10).unwrap().is_empty());
        assert!(hub.read(book::InstrumentId(9), 1, 10).unwrap().is_empty());
    }

    #[test]
    fn a_reset_starts_at_the_state_s_next_sequence() {
        let mut state = ReplicatedState::new(StateLimits::default()).unwrap();
        apply(
            &mut state,
            vec![add_instrument(), place(1, book::Side::Buy, 5)],
        );
        let hub = EventHub::new(16, &state);
        assert_eq!(
            hub.read(book::InstrumentId(1), 1, 10),
            Err(EventsError::Gone {
                requested: 1,
                oldest: 3
            })
        );
        hub.record(&apply(&mut state, vec![place(2, book::Side::Buy, 6)]));
        let events = hub.read(book::InstrumentId(1), 3, 10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].sequence, 3);
    }
}
