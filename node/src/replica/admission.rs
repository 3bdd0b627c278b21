//! Whether a decoded command may be proposed, judged on the leader against
//! its applied state, so that a command that cannot succeed never reaches
//! the log. One function, one order, for every command and every API:
//! fields were checked when the command was decoded (`matchengine-codec`);
//! here a book command is checked against the instrument's immutable spec
//! (price band, quantity range) and a key-value command against the
//! namespace's bounds. Whatever depends on the changing book (an order's
//! existence, idempotency, room to rest) is decided when the command is
//! applied, identically on every replica; a rejection there changes nothing
//! either.

use matchengine_book::{Command, Engine, InstrumentSpec, OrderType, RejectReason};
use matchengine_codec::batch::{KvCommand, NodeCommand};

use super::kv::KvReject;
use super::state::ReplicatedState;

/// Why a command is refused before it is proposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Book(RejectReason),
    #[error(transparent)]
    Kv(KvReject),
}

/// Admits `command` for proposal, or says what applying it would reject
/// regardless of the book's orders.
pub fn admit(state: &ReplicatedState, command: &NodeCommand) -> Result<(), Refusal> {
    match command {
        NodeCommand::Book(command) => admit_book(state, command).map_err(Refusal::Book),
        NodeCommand::Kv(command) => admit_kv(state, command).map_err(Refusal::Kv),
    }
}

/// [`admit`] for a book command.
pub fn admit_book(state: &ReplicatedState, command: &Command) -> Result<(), RejectReason> {
    precheck(state.engine(), command)
}

/// [`admit`] for a key-value command: the key (and value) within the
/// namespace's bounds.
pub fn admit_kv(state: &ReplicatedState, command: &KvCommand) -> Result<(), KvReject> {
    let limits = state.kv().limits();
    match command {
        KvCommand::Put { key, value } => limits.check(key, Some(value)),
        KvCommand::Delete { key } => limits.check(key, None),
    }
}

/// The rejection the book would give regardless of its orders, if any.
fn precheck(engine: &Engine, command: &Command) -> Result<(), RejectReason> {
    match command {
        Command::AddInstrument(spec) => {
            if engine.instrument(spec.instrument).is_some() {
                return Err(RejectReason::InstrumentExists);
            }
            spec.validate()
        }
        Command::Place(place) => {
            let spec = instrument(engine, place.instrument)?;
            if place.client_order_id.0 == 0 {
                return Err(RejectReason::InvalidClientOrderId);
            }
            spec.check_quantity(place.quantity_lots)?;
            match place.order_type {
                OrderType::Limit { price_ticks, .. } | OrderType::PostOnly { price_ticks } => {
                    spec.check_price(price_ticks)
                }
                OrderType::Market {
                    protection_price_ticks: Some(price_ticks),
                } => spec.check_price(price_ticks),
                OrderType::Market {
                    protection_price_ticks: None,
                } => Ok(()),
            }
        }
        Command::Replace(replace) => {
            if replace.quantity_lots == 0 {
                return Err(RejectReason::ZeroQuantity);
            }
            Ok(())
        }
        Command::MassCancel(mass) => match mass.instrument {
            Some(id) => instrument(engine, id).map(|_| ()),
            None => Ok(()),
        },
        Command::Cancel(_) => Ok(()),
    }
}

fn instrument(
    engine: &Engine,
    id: matchengine_book::InstrumentId,
) -> Result<&InstrumentSpec, RejectReason> {
    engine.instrument(id).ok_or(RejectReason::UnknownInstrument)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchengine_book::*;

    /// Every precheck rejection must be exactly what the engine itself
    /// answers, so that prechecking never changes an outcome.
    #[test]
    fn prechecks_agree_with_the_engine() {
        let mut engine = Engine::new(Limits::default()).unwrap();
        let spec = InstrumentSpec {
            instrument: InstrumentId(1),
            symbol: Symbol::new("X").unwrap(),
            price_ticks_min: 10,
            price_ticks_max: 100,
            quantity_lots_min: 2,
            quantity_lots_max: 50,
        };
        engine
            .execute(&Command::AddInstrument(spec), 0, &mut Vec::new())
            .result
            .unwrap();
        let place = |instrument, client, price, lots| {
            Command::Place(PlaceOrder {
                instrument: InstrumentId(instrument),
                account: AccountId(1),
                client_order_id: ClientOrderId(client),
                side: Side::Buy,
                order_type: OrderType::Limit {
                    price_ticks: price,
                    time_in_force: TimeInForce::Gtc,
                },
                quantity_lots: lots,
                self_trade_prevention: SelfTradePrevention::None,
            })
        };
        let cases = [
            place(2, 1, 50, 5),
            place(1, 0, 50, 5),
            place(1, 1, 50, 0),
            place(1, 1, 50, 1),
            place(1, 1, 50, 51),
            place(1, 1, 9, 5),
            place(1, 1, 101, 5),
            place(1, 1, 50, 5),
            Command::AddInstrument(spec),
            Command::MassCancel(MassCancel {
                account: AccountId(1),
                instrument: Some(InstrumentId(3)),
            }),
        ];
        for command in cases {
            let expected = engine.clone().execute(&command, 1, &mut Vec::new()).result;
            match precheck(&engine, &command) {
                Err(reason) => assert_eq!(expected, Err(reason), "{command:?}"),
                Ok(()) => assert!(
                    expected.is_ok(),
                    "{command:?} passed precheck: {expected:?}"
                ),
            }
        }
    }
}
