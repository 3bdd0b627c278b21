//! `mectl load`: the load generator. Prints a Markdown table row and,
//! with --json, writes the same figures as JSON.

use std::time::Duration;

use matchengine_client::{AdminClient, Client, ConnectOptions, RetryPolicy, pb};
use matchengine_mectl::cluster::{LocalCluster, bootstrap};
use matchengine_mectl::load::target::MatchEngineTarget;
use matchengine_mectl::load::usage::{Usage, UsageProbe};
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
    /// Also write the report as JSON here (one run; see --json-dir).
    #[arg(long, conflicts_with = "json_dir")]
    json: Option<std::path::PathBuf>,
    /// No progress bar.
    #[arg(long, default_value_t = false)]
    quiet: bool,
    /// Also print the slowest answer of every second (to find stalls).
    #[arg(long, default_value_t = false)]
    timeline: bool,
    /// A sweep: open loop at each of these rates in turn (operations per
    /// second, comma separated), each run named NAME-RATE, stopping after
    /// the first whose p99 passes --sweep-p99-max-us.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["rate", "sweep_concurrency"])]
    sweep_rates: Vec<f64>,
    /// A sweep: closed loop at each of these concurrencies in turn, each
    /// run named NAME-cN, with the same stopping rule.
    #[arg(long, value_delimiter = ',', conflicts_with = "rate")]
    sweep_concurrency: Vec<usize>,
    /// A sweep stops after the first run whose p99 passes this.
    #[arg(long, default_value_t = 10_000)]
    sweep_p99_max_us: u64,
    /// Write each run's JSON report into this directory as RUN.json.
    #[arg(long)]
    json_dir: Option<std::path::PathBuf>,
    /// Also append the table rows to this file (the header first, when it
    /// is new or empty).
    #[arg(long)]
    table: Option<std::path::PathBuf>,
    /// Account the CPU of these processes too (PIDs, comma separated).
    #[arg(long, value_delimiter = ',')]
    cpu_pids: Vec<u32>,
    /// The `mectl cluster` directory of the cluster under load: account
    /// its nodes' CPU, and entries per fsync from the leader's metrics.
    #[arg(long)]
    cluster_data: Option<std::path::PathBuf>,
}

/// One measured run of a sweep (or the only one).
struct Step {
    name: String,
    mode: Mode,
}

impl LoadArgs {
    fn steps(&self) -> Vec<Step> {
        if !self.sweep_rates.is_empty() {
            return self
                .sweep_rates
                .iter()
                .map(|&rate_per_s| Step {
                    name: format!("{}-{rate_per_s}", self.name),
                    mode: Mode::Open { rate_per_s },
                })
                .collect();
        }
        if !self.sweep_concurrency.is_empty() {
            return self
                .sweep_concurrency
                .iter()
                .map(|&concurrency| Step {
                    name: format!("{}-c{concurrency}", self.name),
                    mode: Mode::Closed { concurrency },
                })
                .collect();
        }
        vec![Step {
            name: self.name.clone(),
            mode: match self.rate {
                Some(rate_per_s) => Mode::Open { rate_per_s },
                None => Mode::Closed {
                    concurrency: self.concurrency,
                },
            },
        }]
    }

    fn accounts_usage(&self) -> bool {
        self.cluster_data.is_some() || !self.cpu_pids.is_empty()
    }

    fn sweeps(&self) -> bool {
        !self.sweep_rates.is_empty() || !self.sweep_concurrency.is_empty()
    }
}

/// What to sample around a run: the accounted PIDs and, for a local
/// cluster, its running nodes and the leader's metrics endpoint (read
/// again before every run: leadership can move).
async fn probe(args: &LoadArgs, options: &ConnectOptions) -> anyhow::Result<UsageProbe> {
    let mut probe = UsageProbe {
        pids: args.cpu_pids.clone(),
        leader_metrics: None,
    };
    if let Some(root) = &args.cluster_data {
        let cluster = LocalCluster::load(root)?
            .ok_or_else(|| anyhow::anyhow!("no cluster was started in {}", root.display()))?;
        probe.pids.extend(
            cluster
                .nodes
                .iter()
                .filter_map(|node| node.process.filter(|p| p.is_running()).map(|p| p.pid)),
        );
        let admin = cluster.admin_client(options)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let leader = bootstrap::agreed_leader(&admin, &cluster.admin_addrs(), deadline).await?;
        probe.leader_metrics = cluster
            .nodes
            .iter()
            .find(|node| node.id == leader)
            .map(|node| node.ports.metrics_addr());
    }
    Ok(probe)
}

/// The table's two header lines, with the usage columns when accounted.
fn table_header(usage: bool) -> String {
    let header = load::LoadReport::table_header();
    if !usage {
        return header.to_string();
    }
    let (names, separator) = header.split_once('\n').unwrap_or((header, ""));
    format!(
        "{names}{}\n{separator}{}",
        Usage::table_header(),
        Usage::table_separator()
    )
}

fn append(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{text}")?;
    Ok(())
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
    let shape = Shape {
        instruments: args.instruments,
        accounts: args.accounts,
        key_bytes: args.key_bytes,
        value_bytes: args.value_bytes,
        keys: args.keys,
    };
    let target = match args.target {
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
            AnyTarget::MatchEngine(MatchEngineTarget::new(clients))
        }
        #[cfg(feature = "etcd")]
        TargetArg::Etcd => AnyTarget::Etcd(
            matchengine_mectl::load::etcd::EtcdTarget::connect(
                &args.etcd_endpoints,
                args.connections,
            )
            .await?,
        ),
        #[cfg(not(feature = "etcd"))]
        TargetArg::Etcd => anyhow::bail!(
            "this mectl was built without the etcd feature (scripts/build release builds it)"
        ),
    };
    if let Some(dir) = &args.json_dir {
        std::fs::create_dir_all(dir)?;
    }
    let header = table_header(args.accounts_usage());
    println!("{header}");
    if let Some(path) = &args.table
        && std::fs::metadata(path).map_or(true, |meta| meta.len() == 0)
    {
        append(path, &header)?;
    }
    for step in args.steps() {
        // Client order ids unique across runs against the same cluster.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        let workload = Workload::new(kind, shape, now, now * 1_000);
        let config = LoadConfig {
            mode: step.mode,
            duration: Duration::from_secs_f64(args.duration),
            count_max: args.count,
            inflight_max: args.inflight_max,
            progress: !args.quiet,
            warmup: Duration::from_secs_f64(args.warmup),
        };
        let probe = if args.accounts_usage() {
            Some(probe(&args, options).await?)
        } else {
            None
        };
        let before = match &probe {
            Some(probe) => Some(probe.sample().await),
            None => None,
        };
        let report = match &target {
            AnyTarget::MatchEngine(target) => drive(target.clone(), workload, &config).await?,
            #[cfg(feature = "etcd")]
            AnyTarget::Etcd(target) => drive(target.clone(), workload, &config).await?,
        };
        let usage = match (&probe, before) {
            (Some(probe), Some(before)) => Some(Usage::between(&before, &probe.sample().await)),
            _ => None,
        };
        let mut row = report.table_row(&step.name);
        let mut json = report.to_json(&step.name);
        if let Some(usage) = &usage {
            row.push_str(&usage.table_cells());
            json["usage"] = usage.to_json();
        }
        println!("{row}");
        if let Some(path) = &args.table {
            append(path, &row)?;
        }
        if args.timeline {
            let seconds: Vec<String> = report
                .timeline_us_max
                .iter()
                .map(|us| format!("{:.1}", *us as f64 / 1e3))
                .collect();
            println!("slowest answer per second (ms): {}", seconds.join(" "));
        }
        let json_path = match (&args.json_dir, &args.json) {
            (Some(dir), _) => Some(dir.join(format!("{}.json", step.name))),
            (None, Some(path)) => Some(path.clone()),
            (None, None) => None,
        };
        if let Some(path) = json_path {
            std::fs::write(&path, serde_json::to_string_pretty(&json)?)?;
        }
        if args.sweeps() && report.latency_us_p99 > args.sweep_p99_max_us {
            eprintln!(
                "{}: p99 {} us passed {} us: the sweep stops here",
                step.name, report.latency_us_p99, args.sweep_p99_max_us
            );
            break;
        }
    }
    Ok(())
}

/// The systems `mectl load` can drive.
enum AnyTarget {
    MatchEngine(MatchEngineTarget),
    #[cfg(feature = "etcd")]
    Etcd(matchengine_mectl::load::etcd::EtcdTarget),
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
