//! `mectl load`: the load generator. Prints a Markdown table row and,
//! with --json, writes the same figures as JSON.

use std::time::Duration;

use matchengine_client::{AdminClient, Client, ConnectOptions, RetryPolicy, pb};
use matchengine_mectl::load::target::MatchEngineTarget;
use matchengine_mectl::load::{self, LoadConfig, Mode, Shape, Workload, WorkloadKind};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WorkloadArg {
    /// exchange-core's mix: 9% GTC, 3% IOC, 6% cancel, 82% move.
    Mix,
    /// New orders only, crossing.
    Orders,
    /// New crossing orders, --batch-size per SubmitBatch call.
    Batch,
    KvPut,
    /// Linearizable reads of keys put first.
    KvGet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetArg {
    /// The cluster at --nodes.
    Matchengine,
    /// An etcd cluster at --etcd-endpoints (KV workloads only; needs
    /// mectl built with the `etcd` feature).
    Etcd,
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    #[arg(long, value_enum, default_value = "matchengine")]
    target: TargetArg,
    /// etcd client URLs, comma separated (with --target etcd).
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    etcd_endpoints: Vec<String>,
    #[arg(long, value_enum, default_value = "mix")]
    workload: WorkloadArg,
    /// Open loop at this many operations per second (else closed loop).
    #[arg(long)]
    rate: Option<f64>,
    /// Closed loop: concurrent requesters.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds at the start that are run but not measured.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Stop after this many operations.
    #[arg(long)]
    count: Option<u64>,
    /// Open loop: requests in flight at most.
    #[arg(long, default_value_t = 20_000)]
    inflight_max: usize,
    /// Instruments to spread orders over (created when missing).
    #[arg(long, default_value_t = 1)]
    instruments: u32,
    #[arg(long, default_value_t = 1_000)]
    accounts: u64,
    #[arg(long, default_value_t = 100)]
    batch_size: u32,
    #[arg(long, default_value_t = 16)]
    key_bytes: usize,
    #[arg(long, default_value_t = 128)]
    value_bytes: usize,
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Independent gRPC connections to spread requests over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// A name for this run in the table and JSON.
    #[arg(long, default_value = "load")]
    name: String,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// No progress bar.
    #[arg(long, default_value_t = false)]
    quiet: bool,
    /// Also print the slowest answer of every second (to find stalls).
    #[arg(long, default_value_t = false)]
    timeline: bool,
}

async fn ensure_instruments(admin: &AdminClient, instruments: u32) -> anyhow::Result<()> {
    for instrument in 1..=instruments {
        let spec = pb::InstrumentSpec {
            instrument,
            symbol: format!("LOAD-{instrument}"),
            price_ticks_min: 1,
            price_ticks_max: 10 * load::workload::MID_PRICE_TICKS,
            quantity_lots_min: 1,
            quantity_lots_max: 1_000_000,
        };
        match admin.add_instrument(spec).await {
            Ok(_) => {}
            Err(error) if error.code() == Some(tonic::Code::AlreadyExists) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

pub async fn run(
    nodes: &[String],
    options: &ConnectOptions,
    admin: &AdminClient,
    args: LoadArgs,
) -> anyhow::Result<()> {
    let kind = match args.workload {
        WorkloadArg::Mix => WorkloadKind::ExchangeMix,
        WorkloadArg::Orders => WorkloadKind::OrderEntry,
        WorkloadArg::Batch => WorkloadKind::Batch {
            size: args.batch_size,
        },
        WorkloadArg::KvPut => WorkloadKind::KvPut,
        WorkloadArg::KvGet => WorkloadKind::KvGet,
    };
    let book_workload = matches!(
        kind,
        WorkloadKind::ExchangeMix | WorkloadKind::OrderEntry | WorkloadKind::Batch { .. }
    );
    if args.target == TargetArg::Etcd && book_workload {
        anyhow::bail!("etcd runs only the kv-put and kv-get workloads");
    }
    if args.target == TargetArg::Matchengine && book_workload {
        ensure_instruments(admin, args.instruments).await?;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    let shape = Shape {
        instruments: args.instruments,
        accounts: args.accounts,
        key_bytes: args.key_bytes,
        value_bytes: args.value_bytes,
        keys: args.keys,
    };
    // Client order ids unique across runs against the same cluster.
    let workload = Workload::new(kind, shape, now, now * 1_000);
    let config = LoadConfig {
        mode: match args.rate {
            Some(rate_per_s) => Mode::Open { rate_per_s },
            None => Mode::Closed {
                concurrency: args.concurrency,
            },
        },
        duration: Duration::from_secs_f64(args.duration),
        count_max: args.count,
        inflight_max: args.inflight_max,
        progress: !args.quiet,
        warmup: Duration::from_secs_f64(args.warmup),
    };
    let report = match args.target {
        TargetArg::Matchengine => {
            let policy = RetryPolicy {
                deadline: Duration::from_secs(5),
                attempt_timeout: Duration::from_secs(5),
                backoff: Duration::from_millis(20),
            };
            let clients = (0..args.connections.max(1))
                .map(|_| {
                    Client::connect(
                        nodes.to_vec(),
                        ConnectOptions {
                            policy,
                            ..options.clone()
                        },
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            drive(MatchEngineTarget::new(clients), workload, &config).await?
        }
        #[cfg(feature = "etcd")]
        TargetArg::Etcd => {
            let target = matchengine_mectl::load::etcd::EtcdTarget::connect(
                &args.etcd_endpoints,
                args.connections,
            )
            .await?;
            drive(target, workload, &config).await?
        }
        #[cfg(not(feature = "etcd"))]
        TargetArg::Etcd => anyhow::bail!(
            "this mectl was built without the etcd feature (cargo build -p matchengine-client --features etcd)"
        ),
    };
    println!("{}", load::LoadReport::table_header());
    println!("{}", report.table_row(&args.name));
    if args.timeline {
        let seconds: Vec<String> = report
            .timeline_us_max
            .iter()
            .map(|us| format!("{:.1}", *us as f64 / 1e3))
            .collect();
        println!("slowest answer per second (ms): {}", seconds.join(" "));
    }
    if let Some(path) = args.json {
        let json = serde_json::to_string_pretty(&report.to_json(&args.name))?;
        std::fs::write(&path, json)?;
    }
    Ok(())
}

/// Puts what the workload reads, then runs it.
async fn drive<T: load::LoadTarget>(
    target: T,
    workload: Workload,
    config: &LoadConfig,
) -> anyhow::Result<load::LoadReport> {
    let preload = workload.preload_ops();
    if !preload.is_empty() {
        eprintln!("putting {} keys to read", preload.len());
        for chunk in preload.chunks(256) {
            let puts = chunk.iter().map(|op| {
                let target = target.clone();
                let op = op.clone();
                async move { target.execute(op).await }
            });
            for result in futures::future::join_all(puts).await {
                result.map_err(|code| anyhow::anyhow!("preloading keys: {code:?}"))?;
            }
        }
    }
    Ok(load::run(target, workload, config).await)
}
