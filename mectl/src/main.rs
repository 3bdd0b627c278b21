//! `mectl`: MatchEngine from the command line. Cluster status and
//! membership, instruments, orders, depth, trades and key-value. Errors
//! print one line and exit non-zero.

mod admin;
mod cluster_command;
mod demo;
mod format;
mod load_command;
mod orders;

use clap::{Parser, Subcommand};
use matchengine_client::client::Consistency;
use std::path::PathBuf;

use matchengine_client::{AdminClient, Client, ConnectOptions, TlsOptions, Token};

#[derive(Debug, Parser)]
#[command(name = "mectl", version, about = "MatchEngine's command-line client.")]
struct Cli {
    /// Client API addresses of the cluster's nodes (host:port, comma separated).
    #[arg(
        long,
        env = "MECTL_NODES",
        value_delimiter = ',',
        default_value = "127.0.0.1:7000"
    )]
    nodes: Vec<String>,
    /// Admin API addresses of the cluster's nodes (host:port, comma separated).
    #[arg(
        long,
        env = "MECTL_ADMIN",
        value_delimiter = ',',
        default_value = "127.0.0.1:7002"
    )]
    admin: Vec<String>,
    /// Serve reads from any node's applied state instead of the leader's
    /// linearizable view.
    #[arg(long, env = "MECTL_STALE", global = true, default_value_t = false)]
    stale: bool,
    /// PEM CA bundle of the cluster: turns TLS on.
    #[arg(long, env = "MATCHENGINE_TLS_CA", global = true)]
    tls_ca: Option<PathBuf>,
    /// PEM client certificate to present (the admin API requires one when
    /// the cluster uses TLS).
    #[arg(
        long,
        env = "MATCHENGINE_TLS_CERT",
        global = true,
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM key of --tls-cert.
    #[arg(
        long,
        env = "MATCHENGINE_TLS_KEY",
        global = true,
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// The name the nodes' certificates carry, when it is not the host in
    /// the address.
    #[arg(long, env = "MECTL_TLS_SERVER_NAME", global = true)]
    tls_server_name: Option<String>,
    /// A file with the cluster's admin token.
    #[arg(long, env = "MATCHENGINE_ADMIN_TOKEN_FILE", global = true)]
    admin_token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// TLS and the token, from the flags.
    fn connect_options(&self) -> anyhow::Result<ConnectOptions> {
        let tls = match &self.tls_ca {
            Some(ca) => {
                let identity = self.tls_cert.as_deref().zip(self.tls_key.as_deref());
                let mut tls = TlsOptions::from_files(ca, identity)?;
                tls.server_name = self.tls_server_name.clone();
                Some(tls)
            }
            None if self.tls_cert.is_some() => {
                anyhow::bail!("--tls-cert needs --tls-ca (the CA the nodes' certificates chain to)")
            }
            None => None,
        };
        let token = self
            .admin_token_file
            .as_deref()
            .map(Token::from_file)
            .transpose()?;
        Ok(ConnectOptions {
            tls,
            token,
            ..ConnectOptions::default()
        })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every node's role, term, indexes and the membership.
    Status,
    /// Make the first --admin node the first member of a new cluster.
    Init,
    /// Add a node as a learner (it replicates but does not vote).
    AddLearner(admin::AddLearnerArgs),
    /// Make learners voters.
    Promote { node_ids: Vec<u64> },
    /// Remove members (voters or learners) from the cluster.
    Remove { node_ids: Vec<u64> },
    /// Hand leadership to a voter (default: the most caught-up one).
    TransferLeader {
        #[arg(long, default_value_t = 0)]
        to: u64,
    },
    /// Build a snapshot on every --admin node.
    Snapshot,
    /// Create an instrument.
    AddInstrument(admin::AddInstrumentArgs),
    /// List instruments.
    Instruments,
    /// Place an order.
    Place(orders::PlaceArgs),
    /// Cancel an order.
    Cancel(orders::CancelArgs),
    /// Cancel every open order of an account.
    MassCancel {
        #[arg(long)]
        account: u64,
        #[arg(long)]
        instrument: Option<u32>,
    },
    /// Show an order.
    Order(orders::OrderArgs),
    /// Show the book's best levels.
    Depth {
        #[arg(long)]
        instrument: u32,
        #[arg(long, default_value_t = 10)]
        levels: u32,
    },
    /// Print an instrument's events (trades, acceptances, cancels) as they happen.
    Watch {
        #[arg(long)]
        instrument: u32,
        /// First sequence number (default: from now on).
        #[arg(long)]
        from: Option<u64>,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Key-value store.
    #[command(subcommand)]
    Kv(KvCommand),
    /// A short order flow on a fresh cluster: instruments, resting orders,
    /// crossing orders; prints trades and the final depth.
    Demo(demo::DemoArgs),
    /// Drive the cluster with a workload and measure throughput and latency.
    Load(Box<load_command::LoadArgs>),
    /// A local cluster of node processes on loopback: up, down, status.
    #[command(subcommand)]
    Cluster(cluster_command::ClusterCommand),
}

#[derive(Debug, Subcommand)]
enum KvCommand {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    Range {
        prefix: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let consistency = if cli.stale {
        Consistency::Stale
    } else {
        Consistency::Linearizable
    };
    let options = cli.connect_options()?;
    let client = || Client::connect(cli.nodes.clone(), options.clone());
    let admin_client = || AdminClient::connect(cli.admin.clone(), options.clone());
    match cli.command {
        Command::Status => admin::status(&admin_client()?).await,
        Command::Init => admin::init(&admin_client()?).await,
        Command::AddLearner(args) => admin::add_learner(&admin_client()?, args).await,
        Command::Promote { node_ids } => {
            let cluster = admin_client()?.change_membership(node_ids, vec![]).await?;
            format::print_cluster(&cluster);
            Ok(())
        }
        Command::Remove { node_ids } => {
            let cluster = admin_client()?.change_membership(vec![], node_ids).await?;
            format::print_cluster(&cluster);
            Ok(())
        }
        Command::TransferLeader { to } => {
            let leader = admin_client()?.transfer_leadership(to, 5_000).await?;
            println!("leader: node {leader}");
            Ok(())
        }
        Command::Snapshot => admin::snapshot(&admin_client()?).await,
        Command::AddInstrument(args) => admin::add_instrument(&admin_client()?, args).await,
        Command::Instruments => {
            for spec in client()?.instruments(consistency).await? {
                println!(
                    "{:>6}  {:<16} price {}..={} ticks  quantity {}..={} lots",
                    spec.instrument,
                    spec.symbol,
                    spec.price_ticks_min,
                    spec.price_ticks_max,
                    spec.quantity_lots_min,
                    spec.quantity_lots_max
                );
            }
            Ok(())
        }
        Command::Place(args) => orders::place(&client()?, args).await,
        Command::Cancel(args) => orders::cancel(&client()?, args).await,
        Command::MassCancel {
            account,
            instrument,
        } => {
            let response = client()?
                .mass_cancel(matchengine_client::pb::MassCancel {
                    account,
                    instrument,
                })
                .await?;
            println!("cancelled {} orders", response.orders_cancelled);
            Ok(())
        }
        Command::Order(args) => orders::show(&client()?, args, consistency).await,
        Command::Depth { instrument, levels } => {
            let depth = client()?.depth(instrument, levels, consistency).await?;
            format::print_depth(&depth);
            Ok(())
        }
        Command::Watch {
            instrument,
            from,
            count,
        } => orders::watch(&client()?, instrument, from, count).await,
        Command::Kv(command) => kv(&client()?, command, consistency).await,
        Command::Demo(args) => demo::run(&client()?, &admin_client()?, args).await,
        Command::Load(args) => {
            load_command::run(&cli.nodes, &options, &admin_client()?, *args).await
        }
        Command::Cluster(command) => cluster_command::run(command, &options).await,
    }
}

async fn kv(client: &Client, command: KvCommand, consistency: Consistency) -> anyhow::Result<()> {
    match command {
        KvCommand::Get { key } => match client.kv_get(key.clone().into_bytes(), consistency).await?
        {
            Some(value) => println!("{}", String::from_utf8_lossy(&value)),
            None => anyhow::bail!("no such key: {key}"),
        },
        KvCommand::Put { key, value } => {
            let existed = client.kv_put(key.into_bytes(), value.into_bytes()).await?;
            println!("{}", if existed { "replaced" } else { "created" });
        }
        KvCommand::Delete { key } => {
            if !client.kv_delete(key.clone().into_bytes()).await? {
                anyhow::bail!("no such key: {key}");
            }
            println!("deleted");
        }
        KvCommand::Range { prefix, limit } => {
            let response = client
                .kv_range(prefix.into_bytes(), vec![], limit, consistency)
                .await?;
            for entry in &response.entries {
                println!(
                    "{} = {}",
                    String::from_utf8_lossy(&entry.key),
                    String::from_utf8_lossy(&entry.value)
                );
            }
            if response.more {
                println!("... (more)");
            }
        }
    }
    Ok(())
}

/// A reader that stopped reading (`mectl status | head`) ends mectl the
/// way it ends other Unix tools: quietly, with the SIGPIPE status.
fn exit_quietly_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() {
    exit_quietly_on_closed_stdout();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mectl: cannot start: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(run(cli)) {
        eprintln!("mectl: {error:#}");
        std::process::exit(1);
    }
}
