//! Is a recorded key-value history linearizable? A checker in the style of
//! Wing & Gong, with Lowe's memoization of (linearized set, state) pairs, as
//! in Knossos and Porcupine.
//!
//! A history is a list of operations on one key (check keys one at a time:
//! a key-value store is linearizable when each key is, since keys are
//! independent objects). Each operation has the time it was invoked and,
//! when the client got an answer, the time it returned and what it said.
//! An operation without an answer (a timeout, a connection lost, an
//! UNAVAILABLE "outcome unknown") may have taken effect at any moment after
//! its invocation, or never: it is optional and unbounded on the right.
//!
//! The search: repeatedly pick, among the operations not yet placed, one
//! that was invoked before every remaining answered operation returned
//! (so it could be next), apply it to the register model, and check that
//! the model's answer matches the recorded one. A history is linearizable
//! when every answered operation can be placed so.

use std::collections::HashSet;

/// What an operation did to the register.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    Put(u64),
    Get,
    Delete,
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Answer {
    /// A put: whether the key held a value before.
    Put { existed: bool },
    /// A get: the value, if any.
    Get(Option<u64>),
    /// A delete: whether there was a value to delete.
    Delete { existed: bool },
}

/// One operation of a client. Times are any monotonic clock (nanoseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub call: Call,
    pub invoked_at: u64,
    /// `None`: the outcome is unknown.
    pub returned: Option<(u64, Answer)>,
}

/// Why a history is not linearizable, or could not be checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order of the operations explains the answers. Holds the largest
    /// set of answered operations that could be placed (indexes into the
    /// history), as a clue.
    NotLinearizable {
        placed_longest: Vec<usize>,
    },
    /// The search passed its bound before deciding.
    TooLarge {
        states_explored: u64,
    },
}

/// The register model: the value the key holds.
type State = Option<u64>;

fn apply(state: State, call: &Call) -> (State, Answer) {
    match call {
        Call::Put(value) => (
            Some(*value),
            Answer::Put {
                existed: state.is_some(),
            },
        ),
        Call::Get => (state, Answer::Get(state)),
        Call::Delete => (
            None,
            Answer::Delete {
                existed: state.is_some(),
            },
        ),
    }
}

/// A set of operation indexes (histories of one key stay small enough).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Placed(Vec<u64>);

impl Placed {
    fn new(len: usize) -> Placed {
        Placed(vec![0; len.div_ceil(64)])
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn with(&self, i: usize) -> Placed {
        let mut next = self.clone();
        next.0[i / 64] |= 1 << (i % 64);
        next
    }
}

/// Checks one key's history, exploring at most `states_max` search states.
pub fn check(history: &[Operation], states_max: u64) -> Verdict {
    // Operations in invocation order; unknown outcomes return at infinity.
    let mut order: Vec<usize> = (0..history.len()).collect();
    order.sort_by_key(|&i| history[i].invoked_at);
    let returns_at = |i: usize| history[i].returned.as_ref().map_or(u64::MAX, |(t, _)| *t);
    let answered: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| history[i].returned.is_some())
        .collect();
    let mut seen: HashSet<(Placed, State)> = HashSet::new();
    let mut explored = 0u64;
    let mut longest: Vec<usize> = Vec::new();
    // Depth-first search with an explicit stack of (placed, state, path).
    let mut stack = vec![(Placed::new(history.len()), None::<u64>, Vec::<usize>::new())];
    while let Some((placed, state, path)) = stack.pop() {
        explored += 1;
        if explored > states_max {
            return Verdict::TooLarge {
                states_explored: explored,
            };
        }
        let remaining_answered = answered.iter().filter(|&&i| !placed.contains(i));
        // The earliest return among answered operations not yet placed:
        // the next operation must have been invoked before it.
        let Some(deadline) = remaining_answered.map(|&i| returns_at(i)).min() else {
            return Verdict::Linearizable;
        };
        let answered_placed = path
            .iter()
            .filter(|&&i| history[i].returned.is_some())
            .count();
        if answered_placed
            > longest
                .iter()
                .filter(|&&i| history[i].returned.is_some())
                .count()
        {
            longest = path.clone();
        }
        for &i in &order {
            let op = &history[i];
            if op.invoked_at > deadline {
                break;
            }
            if placed.contains(i) {
                continue;
            }
            let (next_state, answer) = apply(state, &op.call);
            if let Some((_, recorded)) = &op.returned
                && *recorded != answer
            {
                continue;
            }
            let next_placed = placed.with(i);
            if seen.insert((next_placed.clone(), next_state)) {
                let mut next_path = path.clone();
                next_path.push(i);
                stack.push((next_placed, next_state, next_path));
            }
        }
    }
    longest.retain(|&i| history[i].returned.is_some());
    Verdict::NotLinearizable {
        placed_longest: longest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: Call, invoked_at: u64, returned: Option<(u64, Answer)>) -> Operation {
        Operation {
            call,
            invoked_at,
            returned,
        }
    }

    const BOUND: u64 = 1_000_000;

    #[test]
    fn sequential_histories_follow_the_register() {
        let history = [
            op(Call::Get, 0, Some((1, Answer::Get(None)))),
            op(Call::Put(7), 2, Some((3, Answer::Put { existed: false }))),
            op(Call::Get, 4, Some((5, Answer::Get(Some(7))))),
            op(Call::Put(8), 6, Some((7, Answer::Put { existed: true }))),
            op(Call::Delete, 8, Some((9, Answer::Delete { existed: true }))),
            op(
                Call::Delete,
                10,
                Some((11, Answer::Delete { existed: false })),
            ),
        ];
        assert_eq!(check(&history, BOUND), Verdict::Linearizable);
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught() {
        let history = [
            op(Call::Put(1), 0, Some((1, Answer::Put { existed: false }))),
            op(Call::Put(2), 2, Some((3, Answer::Put { existed: true }))),
            // Invoked after put(2) returned, yet it sees 1.
            op(Call::Get, 4, Some((5, Answer::Get(Some(1))))),
        ];
        assert!(matches!(
            check(&history, BOUND),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        let history = [
            // put(1) was invoked first but took effect after put(2).
            op(Call::Put(1), 0, Some((10, Answer::Put { existed: true }))),
            op(Call::Put(2), 1, Some((9, Answer::Put { existed: false }))),
            op(Call::Get, 2, Some((8, Answer::Get(Some(2))))),
            op(Call::Get, 11, Some((12, Answer::Get(Some(1))))),
        ];
        assert_eq!(check(&history, BOUND), Verdict::Linearizable);
    }

    #[test]
    fn reads_cannot_go_back_in_time() {
        // Two reads concurrent with one write: the later read (invoked after
        // the earlier one returned the new value) sees the old one.
        let history = [
            op(Call::Put(1), 0, Some((1, Answer::Put { existed: false }))),
            op(Call::Put(2), 2, Some((20, Answer::Put { existed: true }))),
            op(Call::Get, 3, Some((4, Answer::Get(Some(2))))),
            op(Call::Get, 5, Some((6, Answer::Get(Some(1))))),
        ];
        assert!(matches!(
            check(&history, BOUND),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn an_unknown_outcome_may_or_may_not_have_happened() {
        let happened = [
            op(Call::Put(1), 0, None),
            op(Call::Get, 5, Some((6, Answer::Get(Some(1))))),
        ];
        assert_eq!(check(&happened, BOUND), Verdict::Linearizable);
        let did_not = [
            op(Call::Put(1), 0, None),
            op(Call::Get, 5, Some((6, Answer::Get(None)))),
        ];
        assert_eq!(check(&did_not, BOUND), Verdict::Linearizable);
        // But it cannot take effect before it was invoked.
        let too_early = [
            op(Call::Get, 0, Some((1, Answer::Get(Some(1))))),
            op(Call::Put(1), 2, None),
        ];
        assert!(matches!(
            check(&too_early, BOUND),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn a_lost_acknowledged_write_is_caught() {
        let history = [
            op(Call::Put(1), 0, Some((1, Answer::Put { existed: false }))),
            op(Call::Get, 2, Some((3, Answer::Get(None)))),
        ];
        assert!(matches!(
            check(&history, BOUND),
            Verdict::NotLinearizable { .. }
        ));
    }

    #[test]
    fn the_bound_is_reported() {
        let history: Vec<Operation> = (0..12)
            .map(|i| op(Call::Put(i), 0, None))
            .chain([op(Call::Get, 100, Some((101, Answer::Get(Some(99)))))])
            .collect();
        assert!(matches!(check(&history, 100), Verdict::TooLarge { .. }));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A history produced by a real register under random concurrency
        /// is always linearizable.
        fn simulated(calls: Vec<(u8, u8, u8)>) -> Vec<Operation> {
            // Each op takes effect at a point inside [invoke, return]; the
            // effect order is the order of those points.
            let mut ops: Vec<(u64, u64, u64, Call)> = calls
                .iter()
                .enumerate()
                .map(|(n, &(kind, start, length))| {
                    let invoked = u64::from(start) * 10 + n as u64;
                    let effect = invoked + u64::from(length % 7);
                    let returned = effect + u64::from(length / 7);
                    let call = match kind % 3 {
                        0 => Call::Put(n as u64),
                        1 => Call::Get,
                        _ => Call::Delete,
                    };
                    (effect, invoked, returned, call)
                })
                .collect();
            ops.sort_by_key(|(effect, ..)| *effect);
            let mut state = None;
            ops.into_iter()
                .map(|(_, invoked, returned, call)| {
                    let (next, answer) = apply(state, &call);
                    state = next;
                    op(call, invoked, Some((returned, answer)))
                })
                .collect()
        }

        proptest! {
            #[test]
            fn real_registers_are_linearizable(calls in proptest::collection::vec((0u8..3, 0u8..8, 0u8..40), 1..14)) {
                let history = simulated(calls);
                prop_assert_eq!(check(&history, 10_000_000), Verdict::Linearizable);
            }

            #[test]
            fn a_corrupted_read_is_mostly_caught(calls in proptest::collection::vec((0u8..3, 0u8..8, 0u8..40), 2..14)) {
                let mut history = simulated(calls);
                // Make every get answer a value never written: never linearizable.
                let mut gets = 0;
                for op in &mut history {
                    if op.call == Call::Get
                        && let Some((_, answer)) = &mut op.returned
                    {
                        *answer = Answer::Get(Some(u64::MAX));
                        gets += 1;
                    }
                }
                if gets > 0 {
                    prop_assert!(
                        matches!(check(&history, 10_000_000), Verdict::NotLinearizable { .. }),
                        "a read of a value never written passed"
                    );
                }
            }
        }
    }
}
