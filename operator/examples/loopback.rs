//! Drives real `matchengine-node` processes on loopback with the operator's
//! planner and admin client, without Kubernetes: bootstrap, scale
//! 1 -> 3 -> 5 -> 3 -> 1 -> 3, a rolling restart and a node that comes back
//! with an empty volume, printing every step.
//!
//!   cargo build -p matchengine-node
//!   cargo run -p matchengine-operator --example loopback -- target/debug/matchengine-node /tmp/me-loopback
//!
//! "The StatefulSet" is the set of running processes: slot `id` listens on
//! 127.0.0.1:(20000 + 10 * id + 0..=3) for client, raft, admin and metrics.
//! A `ScaleStatefulSet` step starts or stops processes (keeping their data
//! directories, like a retained PVC); `RestartPod` stops a process with
//! SIGTERM and starts it again on the "new revision". It shows how the
//! integration test can use [`MembershipDriver`]; it is not a test itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{Context, bail};
use matchengine_operator::admin::{AdminApi, AdminTimeouts, TonicAdmin};
use matchengine_operator::driver::{DriverInput, MembershipDriver, SlotState};
use matchengine_operator::plan::Step;
use matchengine_proto::v1::{InstrumentSpec, NodeRecord};

fn port(node_id: u64, offset: u64) -> u64 {
    20_000 + 10 * node_id + offset
}

fn record(node_id: u64) -> NodeRecord {
    NodeRecord {
        node_id,
        client_addr: format!("127.0.0.1:{}", port(node_id, 0)),
        raft_addr: format!("127.0.0.1:{}", port(node_id, 1)),
        admin_addr: format!("127.0.0.1:{}", port(node_id, 2)),
    }
}

struct Processes {
    bin: PathBuf,
    dir: PathBuf,
    running: BTreeMap<u64, Child>,
    revision_of: BTreeMap<u64, u32>,
    revision: u32,
    provisioned: u32,
}

impl Processes {
    fn start(&mut self, node_id: u64) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node-{node_id}.log")))?;
        let child = Command::new(&self.bin)
            .env("MATCHENGINE_NODE_ID", node_id.to_string())
            .env(
                "MATCHENGINE_DATA_DIR",
                self.dir.join(format!("node-{node_id}")),
            )
            .env("MATCHENGINE_ADVERTISE_HOST", "127.0.0.1")
            .env(
                "MATCHENGINE_CLIENT_LISTEN",
                format!("127.0.0.1:{}", port(node_id, 0)),
            )
            .env(
                "MATCHENGINE_RAFT_LISTEN",
                format!("127.0.0.1:{}", port(node_id, 1)),
            )
            .env(
                "MATCHENGINE_ADMIN_LISTEN",
                format!("127.0.0.1:{}", port(node_id, 2)),
            )
            .env(
                "MATCHENGINE_METRICS_LISTEN",
                format!("127.0.0.1:{}", port(node_id, 3)),
            )
            .env("MATCHENGINE_LOG_FORMAT", "text")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.running.insert(node_id, child);
        self.revision_of.insert(node_id, self.revision);
        Ok(())
    }

    /// SIGTERM, then up to the pod's 30 s grace period, then SIGKILL (as
    /// the kubelet does).
    fn stop(&mut self, node_id: u64) -> anyhow::Result<()> {
        let Some(mut child) = self.running.remove(&node_id) else {
            return Ok(());
        };
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        for _ in 0..300 {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("  (node {node_id} did not exit within 30 s of SIGTERM: killed)");
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    fn scale(&mut self, replicas: u32) -> anyhow::Result<()> {
        for id in u64::from(replicas) + 1..=u64::from(self.provisioned) {
            self.stop(id)?;
        }
        for id in u64::from(self.provisioned) + 1..=u64::from(replicas) {
            self.start(id)?;
        }
        self.provisioned = replicas;
        Ok(())
    }

    fn slots(&self) -> Vec<SlotState> {
        (1..=u64::from(self.provisioned))
            .map(|node_id| SlotState {
                node_id,
                exists: self.running.contains_key(&node_id),
                terminating: false,
                current: self.revision_of.get(&node_id) == Some(&self.revision),
            })
            .collect()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        let ids: Vec<u64> = self.running.keys().copied().collect();
        for id in ids {
            let _ = self.stop(id);
        }
    }
}

/// Runs turns until the planner is steady (at most `turns`).
async fn converge<A: AdminApi>(
    driver: &MembershipDriver<A>,
    processes: &mut Processes,
    desired: u32,
    initialized_before: &mut bool,
    created: &mut BTreeSet<u32>,
    instruments: &[InstrumentSpec],
) -> anyhow::Result<()> {
    let mut last_wait = None;
    for _ in 0..300 {
        let input = DriverInput {
            replicas_desired: desired,
            replicas_provisioned: processes.provisioned,
            slots: processes.slots(),
            initialized_before: *initialized_before,
            instruments,
            instruments_created: created,
            lag_max_entries: 100,
        };
        let outcome = driver.step(&input).await?;
        match &outcome.step {
            Step::Wait(reason) => {
                if last_wait.as_ref() != Some(reason) {
                    println!("  ({reason})");
                    last_wait = Some(reason.clone());
                }
            }
            step => {
                println!("  {step}");
                last_wait = None;
            }
        }
        match outcome.step {
            Step::Steady => return Ok(()),
            Step::Refuse(refusal) => bail!("refused: {refusal}"),
            Step::Initialize { .. } => *initialized_before = true,
            Step::AddInstrument { instrument, .. } => {
                created.insert(instrument);
            }
            Step::ScaleStatefulSet { replicas } => processes.scale(replicas)?,
            Step::RestartPod { node_id } => {
                processes.stop(node_id)?;
                processes.start(node_id)?;
            }
            _ => {}
        }
        // Time for elections, replication and process start-up.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("no steady state after 300 turns")
}

async fn check_members<A: AdminApi>(
    admin: &A,
    leader_candidates: u64,
    want: u32,
) -> anyhow::Result<()> {
    for id in 1..=leader_candidates {
        if let Ok(status) = admin.status(id).await
            && status.role == matchengine_operator::plan::NodeRole::Leader
        {
            let expected: BTreeSet<u64> = (1..=u64::from(want)).collect();
            if status.voters != expected || !status.learners.is_empty() {
                bail!(
                    "leader {id} reports voters {:?} learners {:?}",
                    status.voters,
                    status.learners
                );
            }
            println!(
                "  ok: leader {id}, voters {:?}, committed {}",
                status.voters, status.committed_index
            );
            return Ok(());
        }
    }
    bail!("no leader answers")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(bin), Some(dir)) = (args.next(), args.next()) else {
        bail!("usage: loopback <path to matchengine-node> <scratch dir>");
    };
    let dir = Path::new(&dir).to_path_buf();
    std::fs::create_dir_all(&dir)?;
    let mut processes = Processes {
        bin: bin.into(),
        dir,
        running: BTreeMap::new(),
        revision_of: BTreeMap::new(),
        revision: 1,
        provisioned: 0,
    };
    let admin = TonicAdmin::new(record, AdminTimeouts::default());
    let driver = MembershipDriver::new(admin);
    let instruments = [InstrumentSpec {
        instrument: 1,
        symbol: "BTC-USD".into(),
        price_ticks_min: 1,
        price_ticks_max: 1_000_000,
        quantity_lots_min: 1,
        quantity_lots_max: 1_000,
    }];
    let mut initialized = false;
    let mut created = BTreeSet::new();
    processes.scale(1)?;
    for desired in [1, 3, 5, 3, 1, 3] {
        println!("desired voters: {desired}");
        converge(
            &driver,
            &mut processes,
            desired,
            &mut initialized,
            &mut created,
            &instruments,
        )
        .await?;
        check_members(driver.admin(), 5, desired).await?;
    }
    println!("rolling restart onto revision 2");
    processes.revision = 2;
    converge(
        &driver,
        &mut processes,
        3,
        &mut initialized,
        &mut created,
        &instruments,
    )
    .await?;
    check_members(driver.admin(), 5, 3).await?;
    println!("node 2 loses its volume");
    processes.stop(2)?;
    std::fs::remove_dir_all(processes.dir.join("node-2"))?;
    processes.start(2)?;
    converge(
        &driver,
        &mut processes,
        3,
        &mut initialized,
        &mut created,
        &instruments,
    )
    .await?;
    check_members(driver.admin(), 5, 3).await?;
    println!("done");
    Ok(())
}
