//! The load generator behind `mectl load`: drives a cluster (or, for
//! comparison, another system) with a workload and measures it.
//!
//! Two modes. **Open loop**: requests are sent at a fixed arrival rate and
//! each one's latency is measured from the moment it was *meant* to be sent,
//! so a stall shows up in the latency of every request it delayed (no
//! coordinated omission). **Closed loop**: N concurrent requesters, each
//! sending its next request when the previous one is answered.
//!
//! Bounded in time and count; the report gives throughput, latency
//! percentiles from an HdrHistogram, and errors by status code.

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod report;
pub mod target;
pub mod usage;
pub mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

pub use report::{LoadReport, Recorder};
pub use target::{LoadTarget, OpOutcome};
pub use workload::{Op, Shape, Workload, WorkloadKind};

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// A fixed arrival rate (operations per second), latency measured from
    /// each request's intended send time.
    Open { rate_per_s: f64 },
    /// A fixed number of requesters, each waiting for its answer.
    Closed { concurrency: usize },
}

#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub mode: Mode,
    /// How long to send for.
    pub duration: Duration,
    /// Stop after this many operations, if sooner.
    pub count_max: Option<u64>,
    /// Open loop: requests in flight at most; an operation due while the
    /// limit is reached is counted as `CLIENT_OVERLOADED`, not sent.
    pub inflight_max: usize,
    /// Print a progress line on stderr every second.
    pub progress: bool,
    /// Run but do not record this long first (connections, caches and
    /// the first leader round trips settle); counts toward `duration`.
    pub warmup: Duration,
}

/// Runs `workload` against `target` under `config` and reports.
pub async fn run<T: LoadTarget>(target: T, workload: Workload, config: &LoadConfig) -> LoadReport {
    let recorder = Arc::new(Recorder::new());
    let workload = Arc::new(workload);
    let started = Instant::now();
    let stop_at = started + config.duration;
    let measure_from = started + config.warmup.min(config.duration);
    let issued = Arc::new(AtomicU64::new(0));
    let progress = config.progress.then(|| {
        let recorder = Arc::clone(&recorder);
        let total = config.duration;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                recorder.print_progress(started.elapsed(), total);
            }
        })
    });
    match config.mode {
        Mode::Closed { concurrency } => {
            let requesters: Vec<_> = (0..concurrency.max(1))
                .map(|_| {
                    let (target, workload, recorder, issued) = (
                        target.clone(),
                        Arc::clone(&workload),
                        Arc::clone(&recorder),
                        Arc::clone(&issued),
                    );
                    let count_max = config.count_max;
                    tokio::spawn(async move {
                        while Instant::now() < stop_at {
                            if count_max
                                .is_some_and(|max| issued.fetch_add(1, Ordering::Relaxed) >= max)
                            {
                                break;
                            }
                            let op = workload.next_op();
                            let sent = Instant::now();
                            let result = target.execute(op.clone()).await;
                            if sent >= measure_from {
                                recorder.record(sent.elapsed(), &result);
                            }
                            workload.observe(&op, &result);
                        }
                    })
                })
                .collect();
            for requester in requesters {
                let _ = requester.await;
            }
        }
        Mode::Open { rate_per_s } => {
            let interval = Duration::from_secs_f64(1.0 / rate_per_s.max(0.001));
            let slots = Arc::new(Semaphore::new(config.inflight_max.max(1)));
            let mut due = started;
            let mut sent = 0u64;
            let mut tasks = tokio::task::JoinSet::new();
            'send: loop {
                // Sleep until the next due time, then issue everything due
                // by now (timers are coarser than high rates' intervals).
                tokio::time::sleep_until(due).await;
                let now = Instant::now();
                while due <= now {
                    if due >= stop_at || config.count_max.is_some_and(|max| sent >= max) {
                        break 'send;
                    }
                    sent += 1;
                    let intended = due;
                    due += interval;
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        if intended >= measure_from {
                            recorder.record_overload();
                        }
                        continue;
                    };
                    let (target, workload, recorder) =
                        (target.clone(), Arc::clone(&workload), Arc::clone(&recorder));
                    tasks.spawn(async move {
                        let op = workload.next_op();
                        let result = target.execute(op.clone()).await;
                        if intended >= measure_from {
                            recorder.record(intended.elapsed(), &result);
                        }
                        workload.observe(&op, &result);
                        drop(slot);
                    });
                }
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
    }
    if let Some(progress) = progress {
        progress.abort();
        eprintln!();
    }
    recorder.report(started.elapsed().saturating_sub(measure_from - started))
}
