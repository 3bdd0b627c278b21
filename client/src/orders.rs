//! Builders for the order messages people and tools write most.

use crate::pb;

/// A limit order with a time in force and no self-trade prevention.
pub fn limit_order(
    instrument: u32,
    account: u64,
    client_order_id: u64,
    side: pb::Side,
    price_ticks: i64,
    quantity_lots: u64,
    time_in_force: pb::TimeInForce,
) -> pb::PlaceOrder {
    pb::PlaceOrder {
        instrument,
        account,
        client_order_id,
        side: side as i32,
        order_type: Some(pb::OrderType {
            kind: Some(pb::order_type::Kind::Limit(pb::LimitOrder {
                price_ticks,
                time_in_force: time_in_force as i32,
            })),
        }),
        quantity_lots,
        self_trade_prevention: pb::SelfTradePrevention::None as i32,
    }
}

/// A good-till-cancelled limit order.
pub fn gtc(
    instrument: u32,
    account: u64,
    client_order_id: u64,
    side: pb::Side,
    price_ticks: i64,
    quantity_lots: u64,
) -> pb::PlaceOrder {
    limit_order(
        instrument,
        account,
        client_order_id,
        side,
        price_ticks,
        quantity_lots,
        pb::TimeInForce::Gtc,
    )
}
