//! What a run cost the machine: CPU per process (the cluster's nodes and
//! the load generator itself) and, from the leader's metrics, how many log
//! entries each fsync carried (group commit). Sampled before and after a
//! run; the arithmetic between the two samples is [`Usage::between`].

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::procfs::ProcStat;

const ENTRIES_APPENDED: &str = "matchengine_log_entries_appended_total";
const FSYNCS: &str = "matchengine_log_fsyncs_total";

/// What to sample.
#[derive(Clone, Debug, Default)]
pub struct UsageProbe {
    /// Processes whose CPU is accounted (in this order in the report).
    pub pids: Vec<u32>,
    /// `host:port` of the leader's Prometheus endpoint, for entries per fsync.
    pub leader_metrics: Option<String>,
}

/// One sample.
#[derive(Clone, Debug)]
pub struct UsageSample {
    pub at: Instant,
    /// CPU used so far by each of [`UsageProbe::pids`] (`None`: gone).
    pub cpu: Vec<Option<Duration>>,
    /// CPU used so far by this process.
    pub own_cpu: Option<Duration>,
    /// The leader's (entries appended, fsyncs) counters so far.
    pub log: Option<(f64, f64)>,
}

/// What a run cost, between two samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Usage {
    /// Percent of one core, per accounted process.
    pub cpu_percent: Vec<Option<f64>>,
    pub own_cpu_percent: Option<f64>,
    pub entries_per_fsync: Option<f64>,
}

impl UsageProbe {
    pub async fn sample(&self) -> UsageSample {
        let log = match &self.leader_metrics {
            Some(addr) => scrape(addr).await.and_then(|text| {
                Some((
                    metric_sum(&text, ENTRIES_APPENDED)?,
                    metric_sum(&text, FSYNCS)?,
                ))
            }),
            None => None,
        };
        UsageSample {
            at: Instant::now(),
            cpu: self
                .pids
                .iter()
                .map(|pid| ProcStat::of(*pid).map(|stat| stat.cpu()))
                .collect(),
            own_cpu: ProcStat::of_self().map(|stat| stat.cpu()),
            log,
        }
    }
}

impl Usage {
    pub fn between(before: &UsageSample, after: &UsageSample) -> Usage {
        let wall = after.at.saturating_duration_since(before.at).as_secs_f64();
        let percent = |start: Option<Duration>, end: Option<Duration>| {
            let used = end?.checked_sub(start?)?.as_secs_f64();
            (wall > 0.0).then(|| 100.0 * used / wall)
        };
        Usage {
            cpu_percent: before
                .cpu
                .iter()
                .zip(&after.cpu)
                .map(|(start, end)| percent(*start, *end))
                .collect(),
            own_cpu_percent: percent(before.own_cpu, after.own_cpu),
            entries_per_fsync: before.log.zip(after.log).and_then(
                |((entries0, fsyncs0), (entries1, fsyncs1))| {
                    let fsyncs = fsyncs1 - fsyncs0;
                    (fsyncs > 0.0).then(|| (entries1 - entries0) / fsyncs)
                },
            ),
        }
    }

    pub fn table_header() -> &'static str {
        " entries/fsync | CPU per process | CPU loadgen |"
    }

    pub fn table_separator() -> &'static str {
        "---:|---|---:|"
    }

    /// The cells this adds to a report's row (after its last `|`).
    pub fn table_cells(&self) -> String {
        let percent = |value: Option<f64>| value.map_or("-".to_string(), |v| format!("{v:.0}%"));
        let processes: Vec<String> = self.cpu_percent.iter().map(|v| percent(*v)).collect();
        format!(
            " {} | {} | {} |",
            self.entries_per_fsync
                .map_or("-".to_string(), |v| format!("{v:.1}")),
            if processes.is_empty() {
                "-".to_string()
            } else {
                processes.join(" ")
            },
            percent(self.own_cpu_percent)
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "cpu_percent": self.cpu_percent,
            "loadgen_cpu_percent": self.own_cpu_percent,
            "entries_per_fsync": self.entries_per_fsync,
        })
    }
}

/// The sum of every series of counter `name` in Prometheus text.
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest.rsplit(' ').find(|field| !field.is_empty())?;
        *sum.get_or_insert(0.0) += value.parse::<f64>().ok()?;
    }
    sum
}

/// GET /metrics over plain HTTP/1.0 (the node's metrics endpoint);
/// `None` if it does not answer within a second.
async fn scrape(addr: &str) -> Option<String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8(response).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.").then_some(())?;
        head.split(' ').nth(1).filter(|code| *code == "200")?;
        Some(body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(1), fetch)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_over_their_series_and_not_confused_with_longer_names() {
        let text = "# HELP matchengine_log_fsyncs_total x\n\
                    matchengine_log_fsyncs_total 40\n\
                    matchengine_log_fsyncs_total_other 7\n\
                    matchengine_log_entries_appended_total{kind=\"a\"} 100\n\
                    matchengine_log_entries_appended_total{kind=\"b\"} 1e2\n";
        assert_eq!(metric_sum(text, FSYNCS), Some(40.0));
        assert_eq!(metric_sum(text, ENTRIES_APPENDED), Some(200.0));
        assert_eq!(metric_sum(text, "absent_total"), None);
    }

    #[test]
    fn usage_is_cpu_over_wall_time_and_entries_over_fsyncs() {
        let at = Instant::now();
        let before = UsageSample {
            at,
            cpu: vec![
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(5)),
                None,
            ],
            own_cpu: Some(Duration::from_secs(2)),
            log: Some((1_000.0, 100.0)),
        };
        let after = UsageSample {
            at: at + Duration::from_secs(10),
            cpu: vec![
                Some(Duration::from_secs(6)),
                None,
                Some(Duration::from_secs(1)),
            ],
            own_cpu: Some(Duration::from_secs(4)),
            log: Some((6_000.0, 500.0)),
        };
        let usage = Usage::between(&before, &after);
        assert_eq!(usage.cpu_percent, vec![Some(50.0), None, None]);
        assert_eq!(usage.own_cpu_percent, Some(20.0));
        assert_eq!(usage.entries_per_fsync, Some(12.5));
        assert_eq!(usage.table_cells(), " 12.5 | 50% - - | 20% |");
    }
}
