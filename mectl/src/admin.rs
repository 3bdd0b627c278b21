//! mectl's cluster commands.

use matchengine_client::{AdminClient, pb};

use crate::format::print_cluster;

#[derive(Debug, clap::Args)]
pub struct AddLearnerArgs {
    #[arg(long)]
    id: u64,
    /// The node's Raft address (host:port).
    #[arg(long)]
    raft: String,
    /// The node's client API address.
    #[arg(long)]
    client: String,
    /// The node's admin API address.
    #[arg(long)]
    admin: String,
    /// Return once the learner has caught up.
    #[arg(long, default_value_t = false)]
    wait: bool,
}

#[derive(Debug, clap::Args)]
pub struct AddInstrumentArgs {
    #[arg(long)]
    id: u32,
    #[arg(long)]
    symbol: String,
    #[arg(long, default_value_t = 1)]
    price_min: i64,
    #[arg(long, default_value_t = 1_000_000)]
    price_max: i64,
    #[arg(long, default_value_t = 1)]
    qty_min: u64,
    #[arg(long, default_value_t = 1_000_000)]
    qty_max: u64,
}

fn role(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Learner) => "learner",
        Ok(pb::Role::Follower) => "follower",
        Ok(pb::Role::Candidate) => "candidate",
        Ok(pb::Role::Leader) => "LEADER",
        Ok(pb::Role::Shutdown) => "shutdown",
        _ => "?",
    }
}

pub async fn status(admin: &AdminClient) -> anyhow::Result<()> {
    println!(
        "{:<22} {:>4} {:<9} {:>5} {:>6} {:>9} {:>9} {:>9} {:>9}  digest@index",
        "admin", "id", "role", "term", "leader", "last log", "committed", "applied", "snapshot"
    );
    let mut membership = None;
    let mut answered = 0;
    for addr in admin.nodes() {
        match admin.status(addr).await {
            Ok(status) => {
                answered += 1;
                println!(
                    "{:<22} {:>4} {:<9} {:>5} {:>6} {:>9} {:>9} {:>9} {:>9}  {}@{}",
                    addr,
                    status.node.as_ref().map_or(0, |n| n.node_id),
                    if status.initialized {
                        role(status.role)
                    } else {
                        "(new)"
                    },
                    status.term,
                    status.leader_id,
                    status.last_log_index,
                    status.committed_index,
                    status.applied_index,
                    status.snapshot_index,
                    &status.state_digest[..12.min(status.state_digest.len())],
                    status.state_digest_index
                );
                if status.leader_id != 0
                    && status.node.as_ref().map(|n| n.node_id) == Some(status.leader_id)
                {
                    for follower in &status.replication {
                        println!(
                            "    follower {} lag {} entries",
                            follower.node_id, follower.lag_entries
                        );
                    }
                }
                if membership.is_none() && status.initialized {
                    membership = status.membership;
                }
            }
            Err(error) => println!("{addr:<22} unreachable: {error}"),
        }
    }
    if let Some(cluster) = membership {
        print_cluster(&cluster);
    }
    if answered == 0 {
        anyhow::bail!("no node answered");
    }
    Ok(())
}

pub async fn init(admin: &AdminClient) -> anyhow::Result<()> {
    let addr = admin
        .nodes()
        .first()
        .ok_or_else(|| anyhow::anyhow!("no --admin address"))?;
    admin.initialize(addr, vec![]).await?;
    println!("initialized a cluster on {addr}");
    Ok(())
}

pub async fn add_learner(admin: &AdminClient, args: AddLearnerArgs) -> anyhow::Result<()> {
    let cluster = admin
        .add_learner(
            pb::NodeRecord {
                node_id: args.id,
                raft_addr: args.raft,
                client_addr: args.client,
                admin_addr: args.admin,
            },
            args.wait,
        )
        .await?;
    print_cluster(&cluster);
    Ok(())
}

pub async fn snapshot(admin: &AdminClient) -> anyhow::Result<()> {
    for addr in admin.nodes() {
        let index = admin.trigger_snapshot(addr, true).await?;
        println!("{addr}: snapshot at log index {index}");
    }
    Ok(())
}

pub async fn add_instrument(admin: &AdminClient, args: AddInstrumentArgs) -> anyhow::Result<()> {
    admin
        .add_instrument(pb::InstrumentSpec {
            instrument: args.id,
            symbol: args.symbol.clone(),
            price_ticks_min: args.price_min,
            price_ticks_max: args.price_max,
            quantity_lots_min: args.qty_min,
            quantity_lots_max: args.qty_max,
        })
        .await?;
    println!("instrument {} {} added", args.id, args.symbol);
    Ok(())
}
