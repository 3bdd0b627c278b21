//! The book's read views -> `matchengine.v1` responses.

use matchengine_book as book;
use matchengine_proto::v1 as pb;

use matchengine_codec::book::{order_type_to_pb, side_to_pb, stp_to_pb};

pub fn level_to_pb(level: &book::LevelView) -> pb::PriceLevel {
    pb::PriceLevel {
        price_ticks: level.price_ticks,
        quantity_lots: level.quantity_lots,
        order_count: level.order_count,
    }
}

pub fn top_to_pb(top: &book::TopOfBook, next_sequence: u64) -> pb::TopOfBook {
    pb::TopOfBook {
        bid: top.bid.as_ref().map(level_to_pb),
        ask: top.ask.as_ref().map(level_to_pb),
        next_sequence,
    }
}

pub fn depth_to_pb(depth: &book::Depth, next_sequence: u64) -> pb::Depth {
    pb::Depth {
        bids: depth.bids.iter().map(level_to_pb).collect(),
        asks: depth.asks.iter().map(level_to_pb).collect(),
        next_sequence,
    }
}

pub fn order_to_pb(order: &book::OrderView) -> pb::OrderInfo {
    pb::OrderInfo {
        order_id: order.order_id.0,
        instrument: order.instrument.0,
        account: order.account.0,
        client_order_id: order.client_order_id.0,
        side: side_to_pb(order.side) as i32,
        order_type: Some(order_type_to_pb(&order.order_type)),
        self_trade_prevention: stp_to_pb(order.self_trade_prevention) as i32,
        quantity_lots: order.quantity_lots,
        filled_lots: order.filled_lots,
        open_lots: order.open_lots,
        cancelled_lots: order.cancelled_lots,
        status: match order.status {
            book::OrderStatus::Open => pb::OrderStatus::Open,
            book::OrderStatus::Filled => pb::OrderStatus::Filled,
            book::OrderStatus::Cancelled => pb::OrderStatus::Cancelled,
        } as i32,
        accepted_timestamp_ns: order.accepted_timestamp_ns,
    }
}
