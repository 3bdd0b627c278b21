//! mectl's order commands.

use matchengine_client::client::Consistency;
use matchengine_client::{Client, pb};

use crate::format::{event_line, side};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SideArg {
    Buy,
    Sell,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TimeInForceArg {
    Gtc,
    Ioc,
    Fok,
}

#[derive(Debug, clap::Args)]
pub struct PlaceArgs {
    #[arg(long)]
    instrument: u32,
    #[arg(long)]
    account: u64,
    /// Names the order for its account; a retry with the same id is safe.
    #[arg(long)]
    client_order_id: u64,
    #[arg(long, value_enum)]
    side: SideArg,
    #[arg(long)]
    qty: u64,
    /// Limit price in ticks (omit with --market).
    #[arg(long, required_unless_present = "market")]
    price: Option<i64>,
    #[arg(long, value_enum, default_value = "gtc")]
    tif: TimeInForceArg,
    /// Reject rather than take liquidity.
    #[arg(long, default_value_t = false, conflicts_with = "market")]
    post_only: bool,
    /// A market order (--price, if given, is the protection price).
    #[arg(long, default_value_t = false)]
    market: bool,
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    #[arg(long)]
    account: u64,
    #[arg(
        long,
        conflicts_with = "client_order_id",
        required_unless_present = "client_order_id"
    )]
    order_id: Option<u64>,
    #[arg(long)]
    client_order_id: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct OrderArgs {
    #[arg(long, default_value_t = 0)]
    account: u64,
    #[arg(
        long,
        conflicts_with = "client_order_id",
        required_unless_present = "client_order_id"
    )]
    order_id: Option<u64>,
    #[arg(long)]
    client_order_id: Option<u64>,
}

pub fn place_order(args: &PlaceArgs) -> pb::PlaceOrder {
    use pb::order_type::Kind;
    let kind = if args.market {
        Kind::Market(pb::MarketOrder {
            protection_price_ticks: args.price,
        })
    } else if args.post_only {
        Kind::PostOnly(pb::PostOnlyOrder {
            price_ticks: args.price.unwrap_or_default(),
        })
    } else {
        Kind::Limit(pb::LimitOrder {
            price_ticks: args.price.unwrap_or_default(),
            time_in_force: match args.tif {
                TimeInForceArg::Gtc => pb::TimeInForce::Gtc,
                TimeInForceArg::Ioc => pb::TimeInForce::Ioc,
                TimeInForceArg::Fok => pb::TimeInForce::Fok,
            } as i32,
        })
    };
    pb::PlaceOrder {
        instrument: args.instrument,
        account: args.account,
        client_order_id: args.client_order_id,
        side: match args.side {
            SideArg::Buy => pb::Side::Buy,
            SideArg::Sell => pb::Side::Sell,
        } as i32,
        order_type: Some(pb::OrderType { kind: Some(kind) }),
        quantity_lots: args.qty,
        self_trade_prevention: pb::SelfTradePrevention::None as i32,
    }
}

fn order_ref(order_id: Option<u64>, client_order_id: Option<u64>) -> pb::order_ref::By {
    match (order_id, client_order_id) {
        (Some(id), _) => pb::order_ref::By::OrderId(id),
        (None, Some(id)) => pb::order_ref::By::ClientOrderId(id),
        (None, None) => pb::order_ref::By::OrderId(0),
    }
}

pub async fn place(client: &Client, args: PlaceArgs) -> anyhow::Result<()> {
    let response = client.place_order(place_order(&args)).await?;
    println!(
        "order {}{}",
        response.order_id,
        if response.replayed {
            " (already placed)"
        } else {
            ""
        }
    );
    for event in &response.events {
        println!("  {}", event_line(event));
    }
    Ok(())
}

pub async fn cancel(client: &Client, args: CancelArgs) -> anyhow::Result<()> {
    let response = client
        .cancel_order(pb::CancelOrder {
            account: args.account,
            order: Some(pb::OrderRef {
                by: Some(order_ref(args.order_id, args.client_order_id)),
            }),
        })
        .await?;
    for event in &response.events {
        println!("{}", event_line(event));
    }
    Ok(())
}

pub async fn show(
    client: &Client,
    args: OrderArgs,
    consistency: Consistency,
) -> anyhow::Result<()> {
    let order = client
        .get_order(
            args.account,
            order_ref(args.order_id, args.client_order_id),
            consistency,
        )
        .await?;
    println!(
        "order {} instrument {} account {} client order {} {} {} lots: filled {} open {} cancelled {} ({})",
        order.order_id,
        order.instrument,
        order.account,
        order.client_order_id,
        side(order.side),
        order.quantity_lots,
        order.filled_lots,
        order.open_lots,
        order.cancelled_lots,
        pb::OrderStatus::try_from(order.status).map_or("?", |s| s.as_str_name())
    );
    Ok(())
}

pub async fn watch(
    client: &Client,
    instrument: u32,
    from: Option<u64>,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let from = match from {
        Some(from) => from,
        None => {
            client
                .top_of_book(instrument, Consistency::Stale)
                .await?
                .next_sequence
        }
    };
    let mut events = client.events(instrument, from);
    let mut seen = 0u64;
    while count.is_none_or(|count| seen < count) {
        let event = events.next().await?;
        println!("{}", event_line(&event));
        seen += 1;
    }
    Ok(())
}
