//! Recording latencies and outcomes while a load runs, and the report:
//! a table for people and JSON for plots.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::load::target::OpOutcome;

/// Latencies are recorded in microseconds, up to one minute.
const LATENCY_US_MAX: u64 = 60_000_000;

#[derive(Debug)]
pub struct Recorder {
    latency_us: Mutex<Histogram<u64>>,
    operations_ok: AtomicU64,
    commands_ok: AtomicU64,
    commands_rejected: AtomicU64,
    overloaded: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    /// The slowest latency (us) answered in each second of the run.
    timeline_us_max: Mutex<Vec<u64>>,
    started: std::time::Instant,
}

/// What a run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadReport {
    pub elapsed_s: f64,
    /// Operations answered OK (a batch is one operation).
    pub operations_ok: u64,
    /// Commands committed and answered (batches count every command),
    /// including those the book refused when applying them.
    pub commands_ok: u64,
    pub commands_rejected: u64,
    pub operations_per_s: f64,
    pub commands_per_s: f64,
    pub latency_us_p50: u64,
    pub latency_us_p90: u64,
    pub latency_us_p99: u64,
    pub latency_us_p999: u64,
    pub latency_us_max: u64,
    /// Errors by status code name; `CLIENT_OVERLOADED`: not sent because
    /// the generator's in-flight bound was reached (open loop).
    pub errors: BTreeMap<String, u64>,
    /// The slowest answer in each second of the run (us), to find stalls.
    pub timeline_us_max: Vec<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            // Three significant digits over 1 us .. 60 s always constructs.
            latency_us: Mutex::new(
                Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                    .unwrap_or_else(|_| unreachable!("valid histogram bounds")),
            ),
            operations_ok: AtomicU64::new(0),
            commands_ok: AtomicU64::new(0),
            commands_rejected: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            timeline_us_max: Mutex::new(Vec::new()),
            started: std::time::Instant::now(),
        }
    }

    pub fn record(&self, latency: Duration, result: &Result<OpOutcome, tonic::Code>) {
        let us = (latency.as_micros() as u64).clamp(1, LATENCY_US_MAX);
        if let Ok(mut histogram) = self.latency_us.lock() {
            let _ = histogram.record(us);
        }
        if let Ok(mut timeline) = self.timeline_us_max.lock() {
            let second = self.started.elapsed().as_secs() as usize;
            if timeline.len() <= second {
                timeline.resize(second + 1, 0);
            }
            timeline[second] = timeline[second].max(us);
        }
        match result {
            Ok(outcome) => {
                self.operations_ok.fetch_add(1, Ordering::Relaxed);
                self.commands_ok
                    .fetch_add(outcome.commands, Ordering::Relaxed);
                self.commands_rejected
                    .fetch_add(outcome.rejected, Ordering::Relaxed);
            }
            Err(code) => {
                if let Ok(mut errors) = self.errors.lock() {
                    *errors.entry(format!("{code:?}")).or_default() += 1;
                }
            }
        }
    }

    pub fn record_overload(&self) {
        self.overloaded.fetch_add(1, Ordering::Relaxed);
    }

    /// One progress line on stderr: a bar, throughput so far, p99 so far.
    pub fn print_progress(&self, elapsed: Duration, total: Duration) {
        let done = (elapsed.as_secs_f64() / total.as_secs_f64().max(0.001)).min(1.0);
        let width = 30;
        let filled = (done * width as f64) as usize;
        let p99 = self
            .latency_us
            .lock()
            .map(|h| h.value_at_quantile(0.99))
            .unwrap_or(0);
        let commands = self.commands_ok.load(Ordering::Relaxed);
        eprint!(
            "\r[{}{}] {:>3.0}%  {:>10.0} commands/s  p99 {:>8} us  errors {:>6}",
            "#".repeat(filled),
            "-".repeat(width - filled),
            done * 100.0,
            commands as f64 / elapsed.as_secs_f64().max(0.001),
            p99,
            self.errors
                .lock()
                .map(|e| e.values().sum::<u64>())
                .unwrap_or(0)
                + self.overloaded.load(Ordering::Relaxed),
        );
    }

    pub fn report(&self, elapsed: Duration) -> LoadReport {
        let seconds = elapsed.as_secs_f64().max(0.001);
        let histogram = self
            .latency_us
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone());
        let mut errors = self.errors.lock().map(|e| e.clone()).unwrap_or_default();
        let overloaded = self.overloaded.load(Ordering::Relaxed);
        if overloaded > 0 {
            errors.insert("CLIENT_OVERLOADED".into(), overloaded);
        }
        let operations_ok = self.operations_ok.load(Ordering::Relaxed);
        let commands_ok = self.commands_ok.load(Ordering::Relaxed);
        LoadReport {
            elapsed_s: seconds,
            operations_ok,
            commands_ok,
            commands_rejected: self.commands_rejected.load(Ordering::Relaxed),
            operations_per_s: operations_ok as f64 / seconds,
            commands_per_s: commands_ok as f64 / seconds,
            latency_us_p50: histogram.value_at_quantile(0.50),
            latency_us_p90: histogram.value_at_quantile(0.90),
            latency_us_p99: histogram.value_at_quantile(0.99),
            latency_us_p999: histogram.value_at_quantile(0.999),
            latency_us_max: histogram.max(),
            errors,
            timeline_us_max: self
                .timeline_us_max
                .lock()
                .map(|t| t.clone())
                .unwrap_or_default(),
        }
    }
}

impl LoadReport {
    pub fn table_header() -> &'static str {
        "| run | ops/s | commands/s | p50 us | p90 us | p99 us | p99.9 us | max us | rejected | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    }

    /// One Markdown table row.
    pub fn table_row(&self, name: &str) -> String {
        let errors = if self.errors.is_empty() {
            "-".to_string()
        } else {
            self.errors
                .iter()
                .map(|(code, count)| format!("{code} {count}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "| {name} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {errors} |",
            self.operations_per_s,
            self.commands_per_s,
            self.latency_us_p50,
            self.latency_us_p90,
            self.latency_us_p99,
            self.latency_us_p999,
            self.latency_us_max,
            self.commands_rejected,
        )
    }

    pub fn to_json(&self, name: &str) -> serde_json::Value {
        serde_json::json!({
            "run": name,
            "elapsed_s": self.elapsed_s,
            "operations_ok": self.operations_ok,
            "commands_ok": self.commands_ok,
            "commands_rejected": self.commands_rejected,
            "operations_per_s": self.operations_per_s,
            "commands_per_s": self.commands_per_s,
            "latency_us_p50": self.latency_us_p50,
            "latency_us_p90": self.latency_us_p90,
            "latency_us_p99": self.latency_us_p99,
            "latency_us_p999": self.latency_us_p999,
            "latency_us_max": self.latency_us_max,
            "errors": self.errors,
            "timeline_us_max": self.timeline_us_max,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_errors_are_reported() {
        let recorder = Recorder::new();
        for us in 1..=1_000u64 {
            recorder.record(
                Duration::from_micros(us),
                &Ok(OpOutcome {
                    commands: 2,
                    ..OpOutcome::default()
                }),
            );
        }
        recorder.record(Duration::from_millis(5), &Err(tonic::Code::Unavailable));
        recorder.record_overload();
        let report = recorder.report(Duration::from_secs(2));
        assert_eq!(report.operations_ok, 1_000);
        assert_eq!(report.commands_ok, 2_000);
        assert!((report.commands_per_s - 1_000.0).abs() < 1.0);
        assert!((495..=505).contains(&report.latency_us_p50), "{report:?}");
        assert!((985..=1_000).contains(&report.latency_us_p99), "{report:?}");
        assert_eq!(report.errors.get("Unavailable"), Some(&1));
        assert_eq!(report.errors.get("CLIENT_OVERLOADED"), Some(&1));
        assert!(report.table_row("x").starts_with("| x | 500 | 1000 |"));
        assert_eq!(report.to_json("x")["commands_ok"], 2_000);
    }
}
