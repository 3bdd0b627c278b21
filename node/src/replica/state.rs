//! The replicated state: the order books and the key-value namespace, and
//! the one deterministic function that applies a command batch to them.
//! Pure: no I/O, no clock (the batch carries the leader's timestamp). Every
//! replica that applies the same batches holds the same state and digest.

use matchengine_book::{Engine, Event, Limits, LimitsError};
use matchengine_codec::batch::{DecodedBatch, KvCommand, NodeCommand};
use matchengine_digest::StateDigest;

use super::kv::{KvLimits, KvStore};
use super::outcome::CommandOutcome;

/// The limits that shape the state. Every replica must use the same ones;
/// they travel inside snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateLimits {
    pub book: Limits,
    pub kv: KvLimits,
}

#[derive(Clone, Debug)]
pub struct ReplicatedState {
    pub(super) engine: Engine,
    pub(super) kv: KvStore,
}

impl ReplicatedState {
    pub fn new(limits: StateLimits) -> Result<ReplicatedState, LimitsError> {
        Ok(ReplicatedState {
            engine: Engine::new(limits.book)?,
            kv: KvStore::new(limits.kv),
        })
    }

    /// Pre-allocates the book's order structures for `open_orders` more
    /// resting orders (and its whole finished-order window), so that no
    /// index grows, and rehashes, while commands are applied. A local
    /// tuning: it changes no replicated state.
    pub fn reserve_orders(&mut self, open_orders: usize) {
        self.engine.reserve_orders(open_orders);
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// Applies a batch, appending one outcome per command to `outcomes`.
    pub fn apply(&mut self, batch: &DecodedBatch, outcomes: &mut Vec<CommandOutcome>) {
        let mut events: Vec<Event> = Vec::new();
        for command in &batch.commands {
            let outcome = match command {
                NodeCommand::Book(command) => {
                    let reply = self
                        .engine
                        .execute(command, batch.timestamp_ns, &mut events);
                    CommandOutcome::Book {
                        reply,
                        events: std::mem::take(&mut events),
                    }
                }
                NodeCommand::Kv(KvCommand::Put { key, value }) => {
                    CommandOutcome::Kv(self.kv.put(key.clone(), value.clone()))
                }
                NodeCommand::Kv(KvCommand::Delete { key }) => {
                    CommandOutcome::Kv(self.kv.delete(key))
                }
            };
            outcomes.push(outcome);
        }
    }

    /// The digest of the whole state: books and key-value namespace.
    pub fn digest(&self) -> StateDigest {
        let book = self.engine.digest().0;
        let limits = self.kv.limits();
        self.kv.digest().finish(&[
            book as u64,
            (book >> 64) as u64,
            u64::from(limits.key_bytes_max),
            u64::from(limits.value_bytes_max),
            u64::from(limits.keys_max),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use matchengine_book as book;

    fn batch(timestamp_ns: u64, commands: Vec<NodeCommand>) -> DecodedBatch {
        DecodedBatch {
            timestamp_ns,
            commands,
        }
    }

    fn sample_batches() -> Vec<DecodedBatch> {
        let spec = book::InstrumentSpec {
            price_ticks_max: 1_000,
            quantity_lots_max: 100,
            ..book::builders::instrument(1, "BTC-USD")
        };
        let place = |account, client, side, price, lots| {
            NodeCommand::Book(book::Command::Place(book::PlaceOrder {
                instrument: book::InstrumentId(1),
                account: book::AccountId(account),
                client_order_id: book::ClientOrderId(client),
                side,
                order_type: book::OrderType::Limit {
                    price_ticks: price,
                    time_in_force: book::TimeInForce::Gtc,
                },
                quantity_lots: lots,
                self_trade_prevention: book::SelfTradePrevention::None,
            }))
        };
        let put = |key: &'static str, value: &'static str| {
            NodeCommand::Kv(KvCommand::Put {
                key: Bytes::from_static(key.as_bytes()),
                value: Bytes::from_static(value.as_bytes()),
            })
        };
        vec![
            batch(
                10,
                vec![
                    NodeCommand::Book(book::Command::AddInstrument(spec)),
                    put("a", "1"),
                ],
            ),
            batch(
                20,
                vec![
                    place(1, 1, book::Side::Sell, 100, 5),
                    place(2, 1, book::Side::Buy, 101, 3),
                    put("b", "2"),
                ],
            ),
            batch(
                30,
                vec![
                    NodeCommand::Kv(KvCommand::Delete {
                        key: Bytes::from_static(b"a"),
                    }),
                    place(2, 2, book::Side::Buy, 90, 1),
                ],
            ),
        ]
    }

    #[test]
    fn applying_the_same_batches_gives_the_same_state_and_outcomes() {
        let mut first = ReplicatedState::new(StateLimits::default()).unwrap();
        let mut second = ReplicatedState::new(StateLimits::default()).unwrap();
        let (mut first_out, mut second_out) = (Vec::new(), Vec::new());
        for batch in sample_batches() {
            first.apply(&batch, &mut first_out);
            second.apply(&batch, &mut second_out);
        }
        assert_eq!(first_out, second_out);
        assert_eq!(first.digest(), second.digest());
        assert_eq!(first_out.len(), 7);
        assert!(matches!(&first_out[3], CommandOutcome::Book { events, .. } if events.len() == 3));
        assert_eq!(
            first_out[5],
            CommandOutcome::Kv(Ok(true)),
            "delete found the key"
        );
    }

    #[test]
    fn snapshot_body_round_trips_with_the_same_digest_and_future() {
        let mut state = ReplicatedState::new(StateLimits::default()).unwrap();
        let batches = sample_batches();
        state.apply(&batches[0], &mut Vec::new());
        state.apply(&batches[1], &mut Vec::new());
        let mut body = Vec::new();
        state.encode(&mut body);
        let mut frozen_body = Vec::new();
        state.freeze().encode(&mut frozen_body);
        assert_eq!(frozen_body, body, "a frozen copy encodes the same bytes");
        let mut restored = ReplicatedState::decode(Bytes::from(body.clone())).unwrap();
        assert_eq!(restored.digest(), state.digest());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        state.apply(&batches[2], &mut a);
        restored.apply(&batches[2], &mut b);
        assert_eq!(a, b);
        assert_eq!(restored.digest(), state.digest());
        for len in 0..body.len() {
            assert!(
                ReplicatedState::decode(Bytes::copy_from_slice(&body[..len])).is_err(),
                "truncated to {len}"
            );
        }
    }
}
