//! Book commands, replies and events <-> `matchengine.v1` messages.

use matchengine_book as book;
use matchengine_proto::v1 as pb;

use crate::{CodecError, required};

pub fn side_to_pb(side: book::Side) -> pb::Side {
    match side {
        book::Side::Buy => pb::Side::Buy,
        book::Side::Sell => pb::Side::Sell,
    }
}

pub fn side_from_pb(value: i32, field: &'static str) -> Result<book::Side, CodecError> {
    match pb::Side::try_from(value) {
        Ok(pb::Side::Buy) => Ok(book::Side::Buy),
        Ok(pb::Side::Sell) => Ok(book::Side::Sell),
        Ok(pb::Side::Unspecified) => Err(CodecError::Missing(field)),
        Err(_) => Err(CodecError::UnknownEnum { field, value }),
    }
}

pub fn stp_to_pb(stp: book::SelfTradePrevention) -> pb::SelfTradePrevention {
    match stp {
        book::SelfTradePrevention::None => pb::SelfTradePrevention::None,
        book::SelfTradePrevention::CancelTaker => pb::SelfTradePrevention::CancelTaker,
        book::SelfTradePrevention::CancelMaker => pb::SelfTradePrevention::CancelMaker,
        book::SelfTradePrevention::CancelBoth => pb::SelfTradePrevention::CancelBoth,
    }
}

fn stp_from_pb(value: i32) -> Result<book::SelfTradePrevention, CodecError> {
    match pb::SelfTradePrevention::try_from(value) {
        Ok(pb::SelfTradePrevention::None) => Ok(book::SelfTradePrevention::None),
        Ok(pb::SelfTradePrevention::CancelTaker) => Ok(book::SelfTradePrevention::CancelTaker),
        Ok(pb::SelfTradePrevention::CancelMaker) => Ok(book::SelfTradePrevention::CancelMaker),
        Ok(pb::SelfTradePrevention::CancelBoth) => Ok(book::SelfTradePrevention::CancelBoth),
        Err(_) => Err(CodecError::UnknownEnum {
            field: "self_trade_prevention",
            value,
        }),
    }
}

pub fn order_type_to_pb(order_type: &book::OrderType) -> pb::OrderType {
    use pb::order_type::Kind;
    let kind = match *order_type {
        book::OrderType::Limit {
            price_ticks,
            time_in_force,
        } => Kind::Limit(pb::LimitOrder {
            price_ticks,
            time_in_force: match time_in_force {
                book::TimeInForce::Gtc => pb::TimeInForce::Gtc,
                book::TimeInForce::Ioc => pb::TimeInForce::Ioc,
                book::TimeInForce::Fok => pb::TimeInForce::Fok,
            } as i32,
        }),
        book::OrderType::PostOnly { price_ticks } => {
            Kind::PostOnly(pb::PostOnlyOrder { price_ticks })
        }
        book::OrderType::Market {
            protection_price_ticks,
        } => Kind::Market(pb::MarketOrder {
            protection_price_ticks,
        }),
    };
    pb::OrderType { kind: Some(kind) }
}

pub fn order_type_from_pb(
    order_type: Option<pb::OrderType>,
) -> Result<book::OrderType, CodecError> {
    use pb::order_type::Kind;
    let kind = required(required(order_type, "order_type")?.kind, "order_type.kind")?;
    Ok(match kind {
        Kind::Limit(limit) => {
            let time_in_force = match pb::TimeInForce::try_from(limit.time_in_force) {
                Ok(pb::TimeInForce::Gtc) => book::TimeInForce::Gtc,
                Ok(pb::TimeInForce::Ioc) => book::TimeInForce::Ioc,
                Ok(pb::TimeInForce::Fok) => book::TimeInForce::Fok,
                Ok(pb::TimeInForce::Unspecified) => {
                    return Err(CodecError::Missing("order_type.limit.time_in_force"));
                }
                Err(_) => {
                    return Err(CodecError::UnknownEnum {
                        field: "order_type.limit.time_in_force",
                        value: limit.time_in_force,
                    });
                }
            };
            book::OrderType::Limit {
                price_ticks: limit.price_ticks,
                time_in_force,
            }
        }
        Kind::PostOnly(post_only) => book::OrderType::PostOnly {
            price_ticks: post_only.price_ticks,
        },
        Kind::Market(market) => book::OrderType::Market {
            protection_price_ticks: market.protection_price_ticks,
        },
    })
}

pub fn spec_to_pb(spec: &book::InstrumentSpec) -> pb::InstrumentSpec {
    pb::InstrumentSpec {
        instrument: spec.instrument.0,
        symbol: spec.symbol.as_str().to_string(),
        price_ticks_min: spec.price_ticks_min,
        price_ticks_max: spec.price_ticks_max,
        quantity_lots_min: spec.quantity_lots_min,
        quantity_lots_max: spec.quantity_lots_max,
    }
}

pub fn spec_from_pb(spec: pb::InstrumentSpec) -> Result<book::InstrumentSpec, CodecError> {
    let symbol = book::Symbol::new(&spec.symbol).ok_or(CodecError::Invalid {
        field: "symbol",
        reason: "1 to 16 printable ASCII characters",
    })?;
    Ok(book::InstrumentSpec {
        instrument: book::InstrumentId(spec.instrument),
        symbol,
        price_ticks_min: spec.price_ticks_min,
        price_ticks_max: spec.price_ticks_max,
        quantity_lots_min: spec.quantity_lots_min,
        quantity_lots_max: spec.quantity_lots_max,
    })
}

fn order_ref_to_pb(order: book::OrderRef) -> pb::OrderRef {
    let by = match order {
        book::OrderRef::OrderId(id) => pb::order_ref::By::OrderId(id.0),
        book::OrderRef::ClientOrderId(id) => pb::order_ref::By::ClientOrderId(id.0),
    };
    pb::OrderRef { by: Some(by) }
}

fn order_ref_from_pb(order: Option<pb::OrderRef>) -> Result<book::OrderRef, CodecError> {
    Ok(match required(required(order, "order")?.by, "order.by")? {
        pb::order_ref::By::OrderId(id) => book::OrderRef::OrderId(book::OrderId(id)),
        pb::order_ref::By::ClientOrderId(id) => {
            book::OrderRef::ClientOrderId(book::ClientOrderId(id))
        }
    })
}

pub fn book_command_to_pb(command: &book::Command) -> pb::BookCommand {
    use pb::book_command::Command as C;
    let command = match command {
        book::Command::AddInstrument(spec) => C::AddInstrument(spec_to_pb(spec)),
        book::Command::Place(place) => C::Place(pb::PlaceOrder {
            instrument: place.instrument.0,
            account: place.account.0,
            client_order_id: place.client_order_id.0,
            side: side_to_pb(place.side) as i32,
            order_type: Some(order_type_to_pb(&place.order_type)),
            quantity_lots: place.quantity_lots,
            self_trade_prevention: stp_to_pb(place.self_trade_prevention) as i32,
        }),
        book::Command::Cancel(cancel) => C::Cancel(pb::CancelOrder {
            account: cancel.account.0,
            order: Some(order_ref_to_pb(cancel.order)),
        }),
        book::Command::Replace(replace) => C::Replace(pb::ReplaceOrder {
            account: replace.account.0,
            order: Some(order_ref_to_pb(replace.order)),
            price_ticks: replace.price_ticks,
            quantity_lots: replace.quantity_lots,
        }),
        book::Command::MassCancel(mass) => C::MassCancel(pb::MassCancel {
            account: mass.account.0,
            instrument: mass.instrument.map(|id| id.0),
        }),
    };
    pb::BookCommand {
        command: Some(command),
    }
}

pub fn book_command_from_pb(command: pb::BookCommand) -> Result<book::Command, CodecError> {
    use pb::book_command::Command as C;
    Ok(match required(command.command, "command")? {
        C::AddInstrument(spec) => book::Command::AddInstrument(spec_from_pb(spec)?),
        C::Place(place) => book::Command::Place(book::PlaceOrder {
            instrument: book::InstrumentId(place.instrument),
            account: book::AccountId(place.account),
            client_order_id: book::ClientOrderId(place.client_order_id),
            side: side_from_pb(place.side, "side")?,
            order_type: order_type_from_pb(place.order_type)?,
            quantity_lots: place.quantity_lots,
            self_trade_prevention: stp_from_pb(place.self_trade_prevention)?,
        }),
        C::Cancel(cancel) => book::Command::Cancel(book::CancelOrder {
            account: book::AccountId(cancel.account),
            order: order_ref_from_pb(cancel.order)?,
        }),
        C::Replace(replace) => book::Command::Replace(book::ReplaceOrder {
            account: book::AccountId(replace.account),
            order: order_ref_from_pb(replace.order)?,
            price_ticks: replace.price_ticks,
            quantity_lots: replace.quantity_lots,
        }),
        C::MassCancel(mass) => book::Command::MassCancel(book::MassCancel {
            account: book::AccountId(mass.account),
            instrument: mass.instrument.map(book::InstrumentId),
        }),
    })
}

pub fn reject_to_pb(reason: book::RejectReason) -> pb::RejectReason {
    // Codes are shared by construction; an unknown code cannot happen.
    pb::RejectReason::try_from(i32::from(reason.code())).unwrap_or(pb::RejectReason::Unspecified)
}

pub fn reject_from_pb(value: i32) -> Result<book::RejectReason, CodecError> {
    u16::try_from(value)
        .ok()
        .and_then(book::RejectReason::from_code)
        .ok_or(CodecError::UnknownEnum {
            field: "rejected",
            value,
        })
}

fn cancel_reason_to_pb(reason: book::CancelReason) -> pb::CancelReason {
    match reason {
        book::CancelReason::User => pb::CancelReason::User,
        book::CancelReason::MassCancel => pb::CancelReason::MassCancel,
        book::CancelReason::IocRemainder => pb::CancelReason::IocRemainder,
        book::CancelReason::FokUnfilled => pb::CancelReason::FokUnfilled,
        book::CancelReason::SelfTrade => pb::CancelReason::SelfTrade,
        book::CancelReason::MarketProtection => pb::CancelReason::MarketProtection,
    }
}

pub fn event_to_pb(event: &book::Event) -> pb::Event {
    use pb::event::Kind;
    let kind = match event.kind {
        book::EventKind::InstrumentAdded { spec } => Kind::InstrumentAdded(pb::InstrumentAdded {
            spec: Some(spec_to_pb(&spec)),
        }),
        book::EventKind::OrderAccepted {
            order_id,
            account,
            client_order_id,
            side,
            order_type,
            quantity_lots,
            self_trade_prevention,
        } => Kind::OrderAccepted(pb::OrderAccepted {
            order_id: order_id.0,
            account: account.0,
            client_order_id: client_order_id.0,
            side: side_to_pb(side) as i32,
            order_type: Some(order_type_to_pb(&order_type)),
            quantity_lots,
            self_trade_prevention: stp_to_pb(self_trade_prevention) as i32,
        }),
        book::EventKind::Trade {
            maker_order_id,
            maker_account,
            taker_order_id,
            taker_account,
            price_ticks,
            quantity_lots,
            aggressor,
        } => Kind::Trade(pb::Trade {
            maker_order_id: maker_order_id.0,
            maker_account: maker_account.0,
            taker_order_id: taker_order_id.0,
            taker_account: taker_account.0,
            price_ticks,
            quantity_lots,
            aggressor: side_to_pb(aggressor) as i32,
        }),
        book::EventKind::OrderCancelled {
            order_id,
            account,
            quantity_lots,
            reason,
        } => Kind::OrderCancelled(pb::OrderCancelled {
            order_id: order_id.0,
            account: account.0,
            quantity_lots,
            reason: cancel_reason_to_pb(reason) as i32,
        }),
        book::EventKind::OrderReplaced {
            order_id,
            account,
            price_ticks,
            quantity_lots,
            open_lots,
            priority_kept,
        } => Kind::OrderReplaced(pb::OrderReplaced {
            order_id: order_id.0,
            account: account.0,
            price_ticks,
            quantity_lots,
            open_lots,
            priority_kept,
        }),
        book::EventKind::OrderDone {
            order_id,
            account,
            filled_lots,
            cancelled_lots,
        } => Kind::OrderDone(pb::OrderDone {
            order_id: order_id.0,
            account: account.0,
            filled_lots,
            cancelled_lots,
        }),
    };
    pb::Event {
        instrument: event.instrument.0,
        sequence: event.sequence,
        timestamp_ns: event.timestamp_ns,
        kind: Some(kind),
    }
}

/// A book command's outcome and its events, for the client that sent it.
pub fn outcome_to_pb(reply: &book::Reply, events: &[book::Event]) -> pb::BookOutcome {
    use pb::book_accepted::What;
    use pb::book_outcome::Result as R;
    let result = match reply.result {
        Ok(accepted) => R::Accepted(pb::BookAccepted {
            what: Some(match accepted {
                book::Accepted::InstrumentAdded => What::InstrumentAdded(true),
                book::Accepted::Order(order_id) => What::OrderId(order_id.0),
                book::Accepted::MassCancelled { orders_cancelled } => {
                    What::OrdersMassCancelled(orders_cancelled)
                }
            }),
        }),
        Err(reason) => R::Rejected(reject_to_pb(reason) as i32),
    };
    pb::BookOutcome {
        result: Some(result),
        replayed: reply.replayed,
        events: events.iter().map(event_to_pb).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_commands() -> Vec<book::Command> {
        let spec = book::InstrumentSpec {
            instrument: book::InstrumentId(7),
            symbol: book::Symbol::new("BTC-USD").unwrap(),
            price_ticks_min: -5,
            price_ticks_max: 500,
            quantity_lots_min: 1,
            quantity_lots_max: 9,
        };
        let place = |order_type| {
            book::Command::Place(book::PlaceOrder {
                instrument: book::InstrumentId(7),
                account: book::AccountId(3),
                client_order_id: book::ClientOrderId(11),
                side: book::Side::Sell,
                order_type,
                quantity_lots: 4,
                self_trade_prevention: book::SelfTradePrevention::CancelBoth,
            })
        };
        vec![
            book::Command::AddInstrument(spec),
            place(book::OrderType::Limit {
                price_ticks: -3,
                time_in_force: book::TimeInForce::Fok,
            }),
            place(book::OrderType::PostOnly { price_ticks: 9 }),
            place(book::OrderType::Market {
                protection_price_ticks: Some(1),
            }),
            place(book::OrderType::Market {
                protection_price_ticks: None,
            }),
            book::Command::Cancel(book::CancelOrder {
                account: book::AccountId(3),
                order: book::OrderRef::ClientOrderId(book::ClientOrderId(11)),
            }),
            book::Command::Replace(book::ReplaceOrder {
                account: book::AccountId(3),
                order: book::OrderRef::OrderId(book::OrderId(2)),
                price_ticks: 8,
                quantity_lots: 2,
            }),
            book::Command::MassCancel(book::MassCancel {
                account: book::AccountId(3),
                instrument: None,
            }),
        ]
    }

    #[test]
    fn every_command_round_trips() {
        for command in sample_commands() {
            assert_eq!(
                book_command_from_pb(book_command_to_pb(&command)),
                Ok(command)
            );
        }
    }

    #[test]
    fn malformed_commands_name_the_field() {
        assert_eq!(
            book_command_from_pb(pb::BookCommand { command: None }),
            Err(CodecError::Missing("command"))
        );
        let mut place = match book_command_to_pb(&sample_commands()[1]).command {
            Some(pb::book_command::Command::Place(place)) => place,
            _ => unreachable!(),
        };
        place.side = 0;
        let wrap = |place: pb::PlaceOrder| pb::BookCommand {
            command: Some(pb::book_command::Command::Place(place)),
        };
        assert_eq!(
            book_command_from_pb(wrap(place)),
            Err(CodecError::Missing("side"))
        );
        place.side = 77;
        assert_eq!(
            book_command_from_pb(wrap(place)),
            Err(CodecError::UnknownEnum {
                field: "side",
                value: 77
            })
        );
        place.side = 1;
        place.order_type = None;
        assert_eq!(
            book_command_from_pb(wrap(place)),
            Err(CodecError::Missing("order_type"))
        );
        let bad_symbol = pb::BookCommand {
            command: Some(pb::book_command::Command::AddInstrument(
                pb::InstrumentSpec {
                    symbol: "no spaces allowed".into(),
                    ..Default::default()
                },
            )),
        };
        assert!(matches!(
            book_command_from_pb(bad_symbol),
            Err(CodecError::Invalid {
                field: "symbol",
                ..
            })
        ));
    }

    #[test]
    fn reject_codes_match_the_book() {
        for reason in book::RejectReason::ALL {
            assert_eq!(reject_from_pb(reject_to_pb(reason) as i32), Ok(reason));
            assert_ne!(reject_to_pb(reason), pb::RejectReason::Unspecified);
        }
    }
}
