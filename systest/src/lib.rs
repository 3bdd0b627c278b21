//! Real `matchengine-node` processes on loopback for the system tests:
//! start, SIGTERM, SIGKILL, SIGSTOP/SIGCONT by PID, bootstrap through the
//! admin API, and wait for conditions with deadlines. Every process is
//! killed when the cluster is dropped, even when a test fails.
//!
//! A test helper: it panics (with what it was waiting for) rather than
//! returning errors. (`ProcessCluster::new` makes a temporary directory:
//! no `Default`, which would hide that.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::new_without_default,
    missing_debug_implementations
)]

pub mod pki;
pub mod proxy;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use matchengine_client::client::Consistency;
pub use matchengine_client::orders::gtc as limit;
use matchengine_client::pb;
use matchengine_client::{AdminClient, Client, ConnectOptions, RetryPolicy};
use matchengine_mectl::cluster::{NodeLaunch, NodePorts, bootstrap};
use tempfile::TempDir;
use tokio::time::Instant;

/// The `matchengine-node` binary of this build: `MATCHENGINE_NODE_BIN`, or
/// the one beside the test binary (`target/<profile>/`, which `cargo test
/// --workspace` builds with the node's own tests).
pub fn node_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("MATCHENGINE_NODE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary> -> target/<profile>/matchengine-node
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("matchengine-node"))
        .expect("the test binary lives in target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} is missing: build it first (scripts/build, or cargo test --workspace)",
        bin.display()
    );
    bin
}
/// The `mectl` binary of this build, beside [`node_bin`].
pub fn mectl_bin() -> PathBuf {
    let bin = node_bin().with_file_name("mectl");
    assert!(bin.exists(), "{} is missing: build it first", bin.display());
    bin
}

/// The bound of every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub client: u16,
    pub raft: u16,
    pub admin: u16,
    pub metrics: u16,
    pub health: u16,
    /// With a [`proxy::Network`]: the proxy in front of the Raft port,
    /// which is what peers are told to use.
    pub raft_proxy: Option<u16>,
}

/// Ports handed out in this test process, and the generator picking them.
fn used_ports() -> std::sync::MutexGuard<'static, Option<(u64, BTreeSet<u16>)>> {
    use std::sync::Mutex;
    static USED: Mutex<Option<(u64, BTreeSet<u16>)>> = Mutex::new(None);
    let mut used = USED.lock().unwrap_or_else(|p| p.into_inner());
    used.get_or_insert_with(|| {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        (seed, BTreeSet::new())
    });
    used
}

fn next_random(rng: &mut u64) -> u64 {
    *rng = rng
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *rng >> 33
}

/// Takes `ports` if every one is free (bindable, never handed out).
fn take_ports(taken: &mut BTreeSet<u16>, ports: &[u16]) -> bool {
    let free = ports
        .iter()
        .all(|port| !taken.contains(port) && TcpListener::bind(("127.0.0.1", *port)).is_ok());
    if free {
        taken.extend(ports);
    }
    free
}

/// A free loopback port below Linux's ephemeral range (32768 and up), so
/// that no outgoing connection of a node can take it before the node that
/// owns it binds it. Ports are never handed out twice in one test process.
fn free_port() -> u16 {
    let mut guard = used_ports();
    let Some((rng, taken)) = guard.as_mut() else {
        unreachable!("used_ports initializes")
    };
    for _ in 0..10_000 {
        let port = 20_000 + (next_random(rng) % 12_000) as u16;
        if take_ports(taken, &[port]) {
            return port;
        }
    }
    panic!("no free loopback port in 20000..32000");
}

/// A base port for `mectl cluster up --base-port` whose whole layout
/// ([`NodePorts::at_base`]) for nodes 1..=`nodes` is free.
pub fn free_base_port(nodes: u64) -> u16 {
    let mut guard = used_ports();
    let Some((rng, taken)) = guard.as_mut() else {
        unreachable!("used_ports initializes")
    };
    for _ in 0..1_000 {
        let base = 20_000 + (next_random(rng) % 11_000) as u16;
        let ports: Vec<u16> = (1..=nodes)
            .flat_map(|id| {
                let p = NodePorts::at_base(base, id).expect("ports in range");
                [p.client, p.raft, p.admin, p.metrics, p.health]
            })
            .collect();
        if take_ports(taken, &ports) {
            return base;
        }
    }
    panic!("no free block of loopback ports in 20000..31500");
}

impl Ports {
    fn allocate() -> Ports {
        Ports {
            client: free_port(),
            raft: free_port(),
            admin: free_port(),
            metrics: free_port(),
            health: free_port(),
            raft_proxy: None,
        }
    }

    pub fn client_addr(&self) -> String {
        format!("127.0.0.1:{}", self.client)
    }

    pub fn admin_addr(&self) -> String {
        format!("127.0.0.1:{}", self.admin)
    }

    pub fn record(&self, id: u64) -> pb::NodeRecord {
        pb::NodeRecord {
            node_id: id,
            raft_addr: format!("127.0.0.1:{}", self.raft_proxy.unwrap_or(self.raft)),
            client_addr: self.client_addr(),
            admin_addr: self.admin_addr(),
        }
    }
}

pub struct ProcessCluster {
    pub root: PathBuf,
    _temporary: TempDir,
    pub ports: BTreeMap<u64, Ports>,
    children: BTreeMap<u64, Child>,
    /// Extra environment for every node (e.g. snapshot policy).
    pub env: Vec<(String, String)>,
    /// Proxies in front of the Raft ports, when faults are injected.
    pub network: Option<proxy::Network>,
    /// TLS and token for [`ProcessCluster::client`] and
    /// [`ProcessCluster::admin`] (plaintext by default).
    pub connect: ConnectOptions,
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

impl ProcessCluster {
    pub fn new() -> ProcessCluster {
        let temporary = TempDir::new().expect("temp dir");
        ProcessCluster {
            root: temporary.path().to_path_buf(),
            _temporary: temporary,
            ports: BTreeMap::new(),
            children: BTreeMap::new(),
            env: Vec::new(),
            network: None,
            connect: ConnectOptions::default(),
        }
    }

    /// A cluster whose Raft links go through [`proxy::Network`], so that
    /// tests can cut and delay them. Call from within a Tokio runtime.
    pub fn with_network() -> ProcessCluster {
        let mut cluster = ProcessCluster::new();
        cluster.network = Some(proxy::Network::default());
        cluster
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.root.join(format!("node-{id}.log"))
    }

    /// Picks node `id`'s ports now (before it first starts).
    pub fn reserve(&mut self, id: u64) -> Ports {
        if let Some(ports) = self.ports.get(&id) {
            return *ports;
        }
        let mut ports = Ports::allocate();
        if let Some(network) = &self.network {
            let proxy_port = free_port();
            let listener = TcpListener::bind(("127.0.0.1", proxy_port)).expect("proxy port");
            let target = std::net::SocketAddr::from(([127, 0, 0, 1], ports.raft));
            network.front(id, listener, target);
            ports.raft_proxy = Some(proxy_port);
        }
        self.ports.insert(id, ports);
        ports
    }

    /// How node `id` is started: the launcher's command (the one that
    /// `mectl cluster up` uses) with this cluster's ports, proxy and `env`.
    pub fn launch(&mut self, id: u64) -> NodeLaunch {
        let ports = self.reserve(id);
        // Tests that secure the admin API override this in `env`.
        let mut env = vec![
            ("MATCHENGINE_ADMIN_INSECURE".to_string(), "true".to_string()),
            ("RUST_LOG".to_string(), "info,openraft=warn".to_string()),
        ];
        env.extend(self.env.iter().cloned());
        NodeLaunch {
            id,
            data_dir: self.root.join(format!("node-{id}")),
            ports: NodePorts {
                client: ports.client,
                raft: ports.raft,
                admin: ports.admin,
                metrics: ports.metrics,
                health: ports.health,
            },
            raft_advertised: ports.raft_proxy.map(|port| format!("127.0.0.1:{port}")),
            raft_source_ip: ports.raft_proxy.map(|_| proxy::source_ip(id)),
            env,
        }
    }

    /// Starts node `id` (again, on the same data and ports, if it ran before).
    pub fn start(&mut self, id: u64) {
        assert!(!self.children.contains_key(&id), "node {id} is running");
        let launch = self.launch(id);
        let child = launch
            .spawn(launch.command(&node_bin()), &self.log_path(id))
            .expect("spawn matchengine-node");
        self.children.insert(id, child);
    }

    pub fn running(&self) -> BTreeSet<u64> {
        self.children.keys().copied().collect()
    }

    pub fn pid(&self, id: u64) -> u32 {
        self.children[&id].id()
    }

    /// SIGKILL: no chance to flush or hand over anything.
    pub fn kill(&mut self, id: u64) {
        let mut child = self.children.remove(&id).expect("running node");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// Waits (bounded) for node `id` to exit on its own; returns its status.
    pub fn wait_exit(&mut self, id: u64) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let child = self.children.get_mut(&id).expect("started node");
            if let Some(status) = child.try_wait().expect("wait") {
                self.children.remove(&id);
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {id} still runs after {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits (bounded) for a clean exit; returns its status.
    pub fn stop(&mut self, id: u64) -> std::process::ExitStatus {
        let mut child = self.children.remove(&id).expect("running node");
        signal(child.id(), "TERM");
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("node {id} did not stop within {WAIT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pause(&self, id: u64) {
        signal(self.pid(id), "STOP");
    }

    pub fn resume(&self, id: u64) {
        signal(self.pid(id), "CONT");
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            deadline: Duration::from_secs(15),
            attempt_timeout: Duration::from_secs(3),
            backoff: Duration::from_millis(50),
        }
    }

    fn options(&self) -> ConnectOptions {
        ConnectOptions {
            policy: Self::policy(),
            ..self.connect.clone()
        }
    }

    /// A client of every node's client API, following the leader.
    pub fn client(&self) -> Client {
        let addrs = self.ports.values().map(Ports::client_addr).collect();
        Client::connect(addrs, self.options()).expect("client")
    }

    /// An admin client of every node's admin API, following the leader.
    pub fn admin(&self) -> AdminClient {
        let addrs = self.ports.values().map(Ports::admin_addr).collect();
        AdminClient::connect(addrs, self.options()).expect("admin client")
    }

    pub async fn status(&self, id: u64) -> Option<pb::StatusResponse> {
        self.admin()
            .status(&self.ports[&id].admin_addr())
            .await
            .ok()
    }

    /// Polls `check` until it returns `Some`, failing after [`WAIT`].
    pub async fn wait_for<T, Fut>(&self, what: &str, check: impl FnMut() -> Fut) -> T
    where
        Fut: Future<Output = Option<T>>,
    {
        bootstrap::wait_for(what, Instant::now() + WAIT, check)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    pub async fn wait_admin_up(&mut self, id: u64) {
        let admin = self.admin();
        let addr = self.ports[&id].admin_addr();
        let log = self.log_path(id);
        bootstrap::wait_until_answers(
            &admin,
            id,
            &addr,
            self.children.get_mut(&id),
            &log,
            Instant::now() + WAIT,
        )
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    }

    /// Node 1 alone, then every other id as a learner, then all voters
    /// (the launcher's bootstrap, as `mectl cluster up` does it).
    pub async fn bootstrap(&mut self, ids: &[u64]) {
        for &id in ids {
            if !self.children.contains_key(&id) {
                self.start(id);
            }
        }
        for &id in ids {
            self.wait_admin_up(id).await;
        }
        let others: Vec<pb::NodeRecord> = ids[1..]
            .iter()
            .map(|&id| self.ports[&id].record(id))
            .collect();
        bootstrap::bootstrap(
            &self.admin(),
            &self.ports[&ids[0]].admin_addr(),
            &others,
            Instant::now() + WAIT,
        )
        .await
        .unwrap_or_else(|error| panic!("bootstrap: {error}"));
    }

    /// The leader that every running node agrees on.
    pub async fn leader(&self) -> u64 {
        self.wait_for("an agreed leader", || async {
            let mut leaders = BTreeSet::new();
            for id in self.running() {
                let status = self.status(id).await?;
                leaders.insert(status.leader_id);
            }
            let leader = leaders.pop_first()?;
            (leaders.is_empty() && leader != 0 && self.running().contains(&leader))
                .then_some(leader)
        })
        .await
    }

    /// Waits until every running node holds the same state digest at the
    /// same index (the index Status reports with the digest), at or past
    /// the highest committed index seen; returns the digest.
    pub async fn converged_digest(&self) -> String {
        self.wait_for("every replica at the same digest", || async {
            let mut seen = BTreeSet::new();
            let mut committed = 0;
            for id in self.running() {
                let status = self.status(id).await?;
                committed = committed.max(status.committed_index);
                seen.insert((status.state_digest_index, status.state_digest));
            }
            let (applied, digest) = seen.pop_first()?;
            (seen.is_empty() && applied >= committed).then_some(digest)
        })
        .await
    }

    /// Adds `instrument`. An attempt whose outcome was unknown (an election
    /// under load) is repeated; ALREADY_EXISTS then means it had applied.
    pub async fn add_instrument(&self, instrument: u32) {
        let admin = self.admin();
        let spec = pb::InstrumentSpec {
            quantity_lots_max: 1_000_000,
            ..instrument_spec(instrument, &format!("I{instrument}"))
        };
        match admin.add_instrument(spec.clone()).await {
            Ok(_) => return,
            Err(error) if error.code() == Some(tonic::Code::AlreadyExists) => {
                panic!("instrument {instrument} exists already")
            }
            Err(_) => {}
        }
        // The first attempt failed; if it had applied after all, the next
        // one says ALREADY_EXISTS.
        self.wait_for(&format!("instrument {instrument} added"), || async {
            match admin.add_instrument(spec.clone()).await {
                Ok(_) => Some(()),
                Err(error) if error.code() == Some(tonic::Code::AlreadyExists) => Some(()),
                Err(_) => None,
            }
        })
        .await;
    }
}

/// The book's test instrument ([`matchengine_book::builders::instrument`]:
/// prices 1..=1,000,000 ticks, quantities 1..=1,000 lots) as the admin API
/// takes it.
pub fn instrument_spec(instrument: u32, symbol: &str) -> pb::InstrumentSpec {
    matchengine_codec::book::spec_to_pb(&matchengine_book::builders::instrument(instrument, symbol))
}

/// Whether `client` finds order `(account, client_order_id)` (linearizable).
pub async fn has_order(client: &Client, account: u64, client_order_id: u64) -> bool {
    client
        .get_order(
            account,
            pb::order_ref::By::ClientOrderId(client_order_id),
            Consistency::Linearizable,
        )
        .await
        .is_ok()
}
