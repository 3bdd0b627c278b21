//! `mectl demo`: a short, readable order flow against a running cluster.

use matchengine_client::client::Consistency;
use matchengine_client::orders::gtc as limit;
use matchengine_client::{AdminClient, Client, pb};

use crate::format::{event_line, print_depth};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The instrument id to create and trade.
    #[arg(long, default_value_t = 1)]
    instrument: u32,
    #[arg(long, default_value = "BTC-USD")]
    symbol: String,
}

pub async fn run(client: &Client, admin: &AdminClient, args: DemoArgs) -> anyhow::Result<()> {
    let instrument = args.instrument;
    match admin
        .add_instrument(pb::InstrumentSpec {
            instrument,
            symbol: args.symbol.clone(),
            price_ticks_min: 1,
            price_ticks_max: 1_000_000,
            quantity_lots_min: 1,
            quantity_lots_max: 10_000,
        })
        .await
    {
        Ok(_) => println!("instrument {instrument} {} created", args.symbol),
        Err(error) if error.code() == Some(tonic::Code::AlreadyExists) => {
            println!("instrument {instrument} {} already exists", args.symbol)
        }
        Err(error) => return Err(error.into()),
    }
    // Client order ids from the clock, so the demo can run again.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
        * 100;
    println!("\n-- makers rest a ladder on both sides");
    let mut id = base;
    for (account, side, price, qty) in [
        (101, pb::Side::Sell, 50_300, 5),
        (102, pb::Side::Sell, 50_200, 3),
        (103, pb::Side::Sell, 50_100, 2),
        (104, pb::Side::Buy, 49_900, 4),
        (105, pb::Side::Buy, 49_800, 6),
        (106, pb::Side::Buy, 49_700, 8),
    ] {
        id += 1;
        let response = client
            .place_order(limit(instrument, account, id, side, price, qty))
            .await?;
        println!(
            "account {account} {} {qty} @ {price}: order {}",
            crate::format::side(side as i32),
            response.order_id
        );
    }
    print_depth(
        &client
            .depth(instrument, 5, Consistency::Linearizable)
            .await?,
    );
    println!("\n-- a taker buys 6 lots up to 50200: it sweeps two levels");
    id += 1;
    let response = client
        .place_order(limit(instrument, 201, id, pb::Side::Buy, 50_200, 6))
        .await?;
    for event in &response.events {
        println!("  {}", event_line(event));
    }
    println!("\n-- a taker sells 5 lots down to 49800");
    id += 1;
    let response = client
        .place_order(limit(instrument, 202, id, pb::Side::Sell, 49_800, 5))
        .await?;
    for event in &response.events {
        println!("  {}", event_line(event));
    }
    println!("\n-- the same place again (a client retry): nothing new happens");
    let retry = client
        .place_order(limit(instrument, 202, id, pb::Side::Sell, 49_800, 5))
        .await?;
    println!("  order {} replayed: {}", retry.order_id, retry.replayed);
    println!("\n-- cancelling an order that does not exist is an error, not an OK");
    match client
        .cancel_order(pb::CancelOrder {
            account: 999,
            order: Some(pb::OrderRef {
                by: Some(pb::order_ref::By::OrderId(u64::MAX)),
            }),
        })
        .await
    {
        Ok(_) => anyhow::bail!("the cancel of an unknown order succeeded"),
        Err(error) => println!("  {error}"),
    }
    client
        .kv_put(b"demo/last-run".to_vec(), base.to_string().into_bytes())
        .await?;
    println!("\n-- final depth (read from the leader, linearizable)");
    print_depth(
        &client
            .depth(instrument, 5, Consistency::Linearizable)
            .await?,
    );
    Ok(())
}
