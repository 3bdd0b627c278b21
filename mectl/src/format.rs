//! How mectl prints things.

use matchengine_client::pb;

pub fn print_cluster(cluster: &pb::Cluster) {
    let ids = |nodes: &[pb::NodeRecord]| {
        nodes
            .iter()
            .map(|n| n.node_id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "voters [{}] learners [{}]{} (membership at log index {})",
        ids(&cluster.voters),
        ids(&cluster.learners),
        if cluster.joint { " joint" } else { "" },
        cluster.log_index
    );
}

pub fn print_depth(depth: &pb::Depth) {
    println!(
        "{:>12} {:>8} | {:<8} {:<12}",
        "bid lots", "price", "price", "ask lots"
    );
    let rows = depth.bids.len().max(depth.asks.len());
    for row in 0..rows {
        let bid = depth.bids.get(row);
        let ask = depth.asks.get(row);
        println!(
            "{:>12} {:>8} | {:<8} {:<12}",
            bid.map(|l| l.quantity_lots.to_string()).unwrap_or_default(),
            bid.map(|l| l.price_ticks.to_string()).unwrap_or_default(),
            ask.map(|l| l.price_ticks.to_string()).unwrap_or_default(),
            ask.map(|l| l.quantity_lots.to_string()).unwrap_or_default(),
        );
    }
    if rows == 0 {
        println!("(empty book)");
    }
}

pub fn side(side: i32) -> &'static str {
    match pb::Side::try_from(side) {
        Ok(pb::Side::Buy) => "buy",
        Ok(pb::Side::Sell) => "sell",
        _ => "?",
    }
}

/// One line per event.
pub fn event_line(event: &pb::Event) -> String {
    use pb::event::Kind;
    let what = match &event.kind {
        Some(Kind::InstrumentAdded(added)) => format!(
            "instrument added {}",
            added.spec.as_ref().map_or("", |s| s.symbol.as_str())
        ),
        Some(Kind::OrderAccepted(a)) => format!(
            "accepted order {} account {} {} {} lots",
            a.order_id,
            a.account,
            side(a.side),
            a.quantity_lots
        ),
        Some(Kind::Trade(t)) => format!(
            "TRADE {} lots @ {} (maker order {} account {}, taker order {} account {}, {} aggressor)",
            t.quantity_lots,
            t.price_ticks,
            t.maker_order_id,
            t.maker_account,
            t.taker_order_id,
            t.taker_account,
            side(t.aggressor)
        ),
        Some(Kind::OrderCancelled(c)) => format!(
            "cancelled order {} ({} lots, {})",
            c.order_id,
            c.quantity_lots,
            pb::CancelReason::try_from(c.reason).map_or("?", |r| r.as_str_name())
        ),
        Some(Kind::OrderReplaced(r)) => format!(
            "replaced order {}: {} lots @ {}{}",
            r.order_id,
            r.quantity_lots,
            r.price_ticks,
            if r.priority_kept {
                " (priority kept)"
            } else {
                ""
            }
        ),
        Some(Kind::OrderDone(d)) => format!(
            "done order {} (filled {}, cancelled {})",
            d.order_id, d.filled_lots, d.cancelled_lots
        ),
        None => "?".into(),
    };
    format!(
        "#{:<6} instrument {} {what}",
        event.sequence, event.instrument
    )
}
