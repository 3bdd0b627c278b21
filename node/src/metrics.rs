//! Prometheus metrics of the node, served over HTTP on `/metrics`.
//!
//! Raft and log gauges are read when scraped (nothing polls); request,
//! apply and snapshot figures are recorded as they happen. Names follow the
//! Prometheus conventions (`matchengine_` prefix, base units, `_total` for
//! counters); the Grafana dashboard in the Helm chart uses exactly these,
//! and a test checks it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matchengine_book::EventKind;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::raft::handle::{RaftHandle, Role};
use crate::replica::outcome::CommandOutcome;
use crate::storage::log_store::LogStats;

/// The name of every metric family the node exports. The Grafana
/// dashboard may use only these (a test checks it).
pub const METRIC_NAMES: &[&str] = &[
    "matchengine_raft_term",
    "matchengine_raft_leader_id",
    "matchengine_raft_is_leader",
    "matchengine_raft_last_log_index",
    "matchengine_raft_committed_index",
    "matchengine_raft_applied_index",
    "matchengine_raft_snapshot_index",
    "matchengine_raft_replication_lag_entries",
    "matchengine_inflight_commands",
    "matchengine_snapshot_size_bytes",
    "matchengine_snapshots_built_total",
    "matchengine_snapshots_installed_total",
    "matchengine_snapshot_build_seconds",
    "matchengine_grpc_requests_total",
    "matchengine_grpc_request_duration_seconds",
    "matchengine_orders_total",
    "matchengine_trades_total",
    "matchengine_cancels_total",
    "matchengine_log_entry_commands",
    "matchengine_log_fsyncs_total",
    "matchengine_log_fsync_seconds",
    "matchengine_log_entries_appended_total",
];

/// Every metric the node exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    raft_term: IntGauge,
    raft_leader_id: IntGauge,
    raft_is_leader: IntGauge,
    raft_last_log_index: IntGauge,
    raft_committed_index: IntGauge,
    raft_applied_index: IntGauge,
    raft_snapshot_index: IntGauge,
    raft_replication_lag_entries: IntGaugeVec,
    inflight_commands: IntGauge,
    snapshot_size_bytes: IntGauge,
    snapshots_built_total: IntCounter,
    snapshots_installed_total: IntCounter,
    snapshot_build_seconds: Histogram,
    grpc_requests_total: IntCounterVec,
    grpc_request_duration_seconds: HistogramVec,
    orders_total: IntCounterVec,
    trades_total: IntCounterVec,
    cancels_total: IntCounterVec,
    log_entry_commands: Histogram,
    log_fsyncs_total: IntCounter,
    log_fsync_seconds: Histogram,
    log_entries_appended_total: IntCounter,
    /// Per-instrument counters resolved once, so apply never formats labels.
    instruments: Mutex<HashMap<u32, InstrumentCounters>>,
    /// What the log store had counted at the last scrape.
    log_seen: Mutex<(u64, u64)>,
}

#[derive(Debug)]
struct InstrumentCounters {
    orders: IntCounter,
    trades: IntCounter,
    cancels: IntCounter,
}

/// A metric that cannot be created (a programming error: a bad name or a
/// name registered twice).
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
    let metric = IntGauge::new(name, help)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn counter(registry: &Registry, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
    let metric = IntCounter::new(name, help)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, MetricsError> {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: Vec<f64>,
) -> Result<Histogram, MetricsError> {
    let metric = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// Latency buckets from 50 us to 10 s.
fn latency_buckets() -> Vec<f64> {
    vec![
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 10.0,
    ]
}

impl Metrics {
    pub fn new(node_id: u64) -> Result<Metrics, MetricsError> {
        let registry = Registry::new_custom(
            None,
            Some(HashMap::from([(
                "node_id".to_string(),
                node_id.to_string(),
            )])),
        )?;
        let r = &registry;
        let grpc_request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "matchengine_grpc_request_duration_seconds",
                "gRPC request handling time, by service and method.",
            )
            .buckets(latency_buckets()),
            &["service", "method"],
        )?;
        registry.register(Box::new(grpc_request_duration_seconds.clone()))?;
        let raft_replication_lag_entries = IntGaugeVec::new(
            Opts::new(
                "matchengine_raft_replication_lag_entries",
                "On the leader: log entries each follower is behind.",
            ),
            &["follower"],
        )?;
        registry.register(Box::new(raft_replication_lag_entries.clone()))?;
        Ok(Metrics {
            raft_term: gauge(r, "matchengine_raft_term", "The current Raft term.")?,
            raft_leader_id: gauge(
                r,
                "matchengine_raft_leader_id",
                "The leader's node id (0: none known).",
            )?,
            raft_is_leader: gauge(r, "matchengine_raft_is_leader", "1 when this node leads.")?,
            raft_last_log_index: gauge(
                r,
                "matchengine_raft_last_log_index",
                "The last log index on this node.",
            )?,
            raft_committed_index: gauge(
                r,
                "matchengine_raft_committed_index",
                "The committed log index known to this node.",
            )?,
            raft_applied_index: gauge(
                r,
                "matchengine_raft_applied_index",
                "The last log index applied to the state machine.",
            )?,
            raft_snapshot_index: gauge(
                r,
                "matchengine_raft_snapshot_index",
                "The last log index the newest snapshot covers.",
            )?,
            raft_replication_lag_entries,
            inflight_commands: gauge(
                r,
                "matchengine_inflight_commands",
                "Client commands accepted and not yet answered.",
            )?,
            snapshot_size_bytes: gauge(
                r,
                "matchengine_snapshot_size_bytes",
                "Size of the newest snapshot file.",
            )?,
            snapshots_built_total: counter(
                r,
                "matchengine_snapshots_built_total",
                "Snapshots built by this node.",
            )?,
            snapshots_installed_total: counter(
                r,
                "matchengine_snapshots_installed_total",
                "Snapshots received from a leader and installed.",
            )?,
            snapshot_build_seconds: histogram(
                r,
                "matchengine_snapshot_build_seconds",
                "Time to encode and durably write a snapshot.",
                vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            )?,
            grpc_requests_total: counter_vec(
                r,
                "matchengine_grpc_requests_total",
                "gRPC requests by service, method and status code.",
                &["service", "method", "code"],
            )?,
            grpc_request_duration_seconds,
            orders_total: counter_vec(
                r,
                "matchengine_orders_total",
                "Orders accepted, by instrument.",
                &["instrument"],
            )?,
            trades_total: counter_vec(
                r,
                "matchengine_trades_total",
                "Trades, by instrument.",
                &["instrument"],
            )?,
            cancels_total: counter_vec(
                r,
                "matchengine_cancels_total",
                "Orders cancelled (any reason), by instrument.",
                &["instrument"],
            )?,
            log_entry_commands: histogram(
                r,
                "matchengine_log_entry_commands",
                "Client commands per applied log entry (the batch size).",
                vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
                ],
            )?,
            log_fsyncs_total: counter(
                r,
                "matchengine_log_fsyncs_total",
                "WAL syncs of the Raft log.",
            )?,
            log_fsync_seconds: histogram(
                r,
                "matchengine_log_fsync_seconds",
                "Time of one WAL sync of the Raft log.",
                latency_buckets(),
            )?,
            log_entries_appended_total: counter(
                r,
                "matchengine_log_entries_appended_total",
                "Log entries appended to this node's log.",
            )?,
            instruments: Mutex::new(HashMap::new()),
            log_seen: Mutex::new((0, 0)),
            registry,
        })
    }

    pub fn observe_request(
        &self,
        service: &str,
        method: &str,
        code: tonic::Code,
        elapsed: Duration,
    ) {
        self.grpc_requests_total
            .with_label_values(&[service, method, code_name(code)])
            .inc();
        self.grpc_request_duration_seconds
            .with_label_values(&[service, method])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts an applied entry's commands, orders, trades and cancels.
    pub fn observe_applied(&self, outcomes: &[CommandOutcome]) {
        self.log_entry_commands.observe(outcomes.len() as f64);
        let Ok(mut instruments) = self.instruments.lock() else {
            return;
        };
        for outcome in outcomes {
            let CommandOutcome::Book { events, .. } = outcome else {
                continue;
            };
            for event in events {
                let counters = instruments.entry(event.instrument.0).or_insert_with(|| {
                    let label = event.instrument.0.to_string();
                    InstrumentCounters {
                        orders: self.orders_total.with_label_values(&[label.as_str()]),
                        trades: self.trades_total.with_label_values(&[label.as_str()]),
                        cancels: self.cancels_total.with_label_values(&[label.as_str()]),
                    }
                });
                match event.kind {
                    EventKind::OrderAccepted { .. } => counters.orders.inc(),
                    EventKind::Trade { .. } => counters.trades.inc(),
                    EventKind::OrderCancelled { .. } => counters.cancels.inc(),
                    _ => {}
                }
            }
        }
    }

    pub fn observe_snapshot_built(&self, size_bytes: u64, elapsed: Duration) {
        self.snapshots_built_total.inc();
        self.snapshot_size_bytes.set(size_bytes as i64);
        self.snapshot_build_seconds.observe(elapsed.as_secs_f64());
    }

    pub fn observe_snapshot_installed(&self, size_bytes: u64) {
        self.snapshots_installed_total.inc();
        self.snapshot_size_bytes.set(size_bytes as i64);
    }

    pub fn observe_fsync(&self, elapsed: Duration) {
        self.log_fsyncs_total.inc();
        self.log_fsync_seconds.observe(elapsed.as_secs_f64());
    }

    /// Reads Raft's and the log's current figures into the gauges.
    pub fn refresh(&self, raft: &RaftHandle, log: &LogStats, inflight_commands: u32) {
        let status = raft.status();
        self.raft_term.set(status.term as i64);
        self.raft_leader_id
            .set(status.leader_id.unwrap_or(0) as i64);
        self.raft_is_leader
            .set(i64::from(status.role == Role::Leader));
        let last = status.last_log_index.unwrap_or(0);
        self.raft_last_log_index.set(last as i64);
        self.raft_committed_index
            .set(status.committed_index.unwrap_or(0) as i64);
        self.raft_applied_index
            .set(status.applied_index.unwrap_or(0) as i64);
        self.raft_snapshot_index
            .set(status.snapshot_index.unwrap_or(0) as i64);
        self.raft_replication_lag_entries.reset();
        for (follower, matched) in raft.replication().unwrap_or_default() {
            self.raft_replication_lag_entries
                .with_label_values(&[follower.to_string().as_str()])
                .set(last.saturating_sub(matched.unwrap_or(0)) as i64);
        }
        self.inflight_commands.set(i64::from(inflight_commands));
        let stats = log.snapshot();
        if let Ok(mut seen) = self.log_seen.lock() {
            self.log_entries_appended_total
                .inc_by(stats.entries_appended.saturating_sub(seen.0));
            *seen = (stats.entries_appended, stats.fsyncs);
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }

    /// Names of every metric family registered (for the dashboard test).
    pub fn family_names(&self) -> Vec<String> {
        self.registry
            .gather()
            .iter()
            .map(|family| family.name().to_string())
            .collect()
    }
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `/metrics` until `shutdown` completes; `refresh` runs before
/// every scrape.
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    refresh: Arc<dyn Fn() + Send + Sync>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let router = axum::Router::new().route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            let refresh = Arc::clone(&refresh);
            async move {
                refresh();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::outcome::CommandOutcome;
    use matchengine_book as book;

    #[test]
    fn metric_names_lists_exactly_what_is_registered() {
        let metrics = Metrics::new(1).unwrap();
        // Labelled families appear once they have a series.
        metrics.observe_request("s", "m", tonic::Code::Ok, Duration::from_millis(1));
        let event = |sequence, kind| book::Event {
            instrument: book::InstrumentId(1),
            sequence,
            timestamp_ns: 0,
            kind,
        };
        let order = book::OrderId(1);
        let account = book::AccountId(1);
        metrics.observe_applied(&[CommandOutcome::Book {
            reply: book::Reply {
                result: Ok(book::Accepted::Order(order)),
                replayed: false,
            },
            events: vec![event(
                2,
                book::EventKind::Trade {
                    maker_order_id: order,
                    maker_account: account,
                    taker_order_id: order,
                    taker_account: account,
                    price_ticks: 1,
                    quantity_lots: 1,
                    aggressor: book::Side::Buy,
                },
            )],
        }]);
        metrics
            .raft_replication_lag_entries
            .with_label_values(&["2"])
            .set(0);
        let mut registered = metrics.family_names();
        registered.sort();
        let mut listed: Vec<String> = METRIC_NAMES.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(registered, listed);
        assert!(
            metrics
                .render()
                .contains("matchengine_trades_total{instrument=\"1\",node_id=\"1\"} 1")
        );
    }
}
