//! Wiring: opens the storage, starts Raft, the proposer and the five
//! servers (client, admin, Raft, health, metrics), and shuts them down in order.
//!
//! Data directory layout: `raft-log/` (RocksDB: log, vote, committed),
//! `snapshots/` (the newest snapshot file), `incoming-snapshots/` (partial
//! snapshots being received; emptied at start).
//!
//! Shutdown (SIGTERM, or the future passed to [`run`]): client readiness
//! goes to not serving and the client and admin servers stop taking calls;
//! a leader hands leadership to the most caught-up voter and waits for it
//! to take over; then Raft stops (the log store syncs what it holds) and
//! the Raft and metrics servers close.
//!
//! Fatal errors: when Raft stops on its own (a storage error such as a full
//! disk, which names the file), the node logs it and exits non-zero at
//! once, so that its supervisor restarts it; it never stays up serving
//! nothing.
//!
//! Security: see [`crate::tls`] (TLS on the client, admin and Raft ports)
//! and [`crate::api::auth`] (who may call the admin API). Health checks
//! also have their own plaintext port, for probes that cannot speak TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use matchengine_proto::v1 as pb;
use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use openraft::storage::RaftLogStorage;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tower::util::MapResponseLayer;

use crate::api::auth::{self, AdminAuth};
use crate::api::{ApiContext, admin::AdminService, client::ClientService, oversize};
use crate::batch::CommandOutcome;
use crate::config::NodeSettings;
use crate::events::EventHub;
use crate::health::{self, Readiness};
use crate::metrics::{self, Metrics};
use crate::network::{RaftNetwork, RaftService};
use crate::proposer::Proposer;
use crate::raft_types::{LogId, Raft};
use crate::state::ReplicatedState;
use crate::storage::{FsyncObserver, LogStore, StateMachineObserver, StateMachineStore};
use crate::tls::{PortPolicy, TlsWatch, incoming};

/// How long stopping servers may wait for requests still in flight.
const SERVER_DRAIN_MAX: Duration = Duration::from_secs(2);

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("binding {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Log(#[from] crate::storage::log_store::OpenError),
    #[error(transparent)]
    StateMachine(#[from] crate::storage::state_machine::StateMachineError),
    #[error("reading the log: {0}")]
    LogRead(std::io::Error),
    #[error("preparing {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Settings(#[from] crate::raft_config::RaftSettingsError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("starting Raft: {0}")]
    Raft(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    AdminToken(#[from] crate::api::auth::TokenError),
    /// Raft's core stopped without being asked to (a storage error or a
    /// panic); the process must exit so that it is restarted.
    #[error("Raft stopped: {0}")]
    RaftStopped(openraft::errors::Fatal<crate::raft_types::TypeConfig>),
    #[error("gRPC reflection: {0}")]
    Reflection(String),
    #[error("the {what} server failed: {source}")]
    Serve {
        what: &'static str,
        source: tonic::transport::Error,
    },
}

/// Feeds the event hub and metrics from the apply task.
#[derive(Debug)]
struct NodeObserver {
    events: Arc<EventHub>,
    metrics: Arc<Metrics>,
}

impl StateMachineObserver for NodeObserver {
    fn applied(&self, _log_id: &LogId, outcomes: &[CommandOutcome]) {
        self.events.record(outcomes);
        self.metrics.observe_applied(outcomes);
    }

    fn snapshot_built(&self, size_bytes: u64, elapsed: Duration) {
        self.metrics.observe_snapshot_built(size_bytes, elapsed);
    }

    fn snapshot_installed(&self, size_bytes: u64, state: &ReplicatedState) {
        self.events.reset(state);
        self.metrics.observe_snapshot_installed(size_bytes);
    }
}

/// The TLS configurations (reloaded from the files) and the admin API's
/// check, with a log line saying which protections are on.
fn security(
    security: &crate::config::Security,
) -> Result<(Option<TlsWatch>, AdminAuth), NodeError> {
    let tls = match &security.tls {
        Some(settings) => {
            let (watch, _reloading) =
                crate::tls::watch_files(settings.files.clone(), settings.reload_interval)?;
            Some(watch)
        }
        None => None,
    };
    let token = security
        .admin_token_file
        .as_deref()
        .map(auth::read_token)
        .transpose()?;
    let admin = match (tls.is_some(), token.is_some()) {
        (true, true) => "mutual TLS and a token",
        (true, false) => "mutual TLS",
        (false, true) => "a token (no TLS)",
        (false, false) => "nothing (--admin-insecure)",
    };
    if tls.is_none() && token.is_none() {
        tracing::warn!("the admin API is open to anyone who can reach it (--admin-insecure)");
    }
    tracing::info!(tls = tls.is_some(), admin_requires = admin, "security");
    Ok((tls, AdminAuth::new(token)))
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { what, addr, source })
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Runs a node until `shutdown` completes, then stops it gracefully.
pub async fn run(
    settings: NodeSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let node_id = settings.node_id;
    let limits = settings.limits;
    // Bind first: a taken port is reported before anything starts.
    let client_listener = bind("the client API", settings.client_listen).await?;
    let admin_listener = bind("the admin API", settings.admin_listen).await?;
    let raft_listener = bind("Raft", settings.raft_listen).await?;
    let health_listener = bind("health checks", settings.health_listen).await?;
    let (tls, admin_auth) = security(&settings.security)?;
    let metrics_listener_addr = settings.metrics_listen;

    std::fs::create_dir_all(&settings.data_dir).map_err(|source| NodeError::Dir {
        path: settings.data_dir.display().to_string(),
        source,
    })?;
    let mut log = LogStore::open(&settings.data_dir.join("raft-log"))?;
    let startup_committed = log
        .read_committed()
        .await
        .map_err(NodeError::LogRead)?
        .map_or(0, |id| id.index);
    let state_machine =
        StateMachineStore::open(&settings.data_dir.join("snapshots"), settings.state_limits)?;
    state_machine
        .reserve_orders(limits.orders_reserved as usize)
        .map_err(NodeError::LogRead)?;
    let metrics = Arc::new(Metrics::new(node_id)?);
    let events = Arc::new(
        state_machine
            .read(|applied| EventHub::new(limits.events_retained_per_instrument, &applied.state))
            .map_err(NodeError::LogRead)?,
    );
    state_machine.set_observer(Arc::new(NodeObserver {
        events: Arc::clone(&events),
        metrics: Arc::clone(&metrics),
    }));
    let log_stats = log.stats();
    {
        let metrics = Arc::clone(&metrics);
        log_stats.set_fsync_observer(FsyncObserver(Box::new(move |elapsed| {
            metrics.observe_fsync(elapsed)
        })));
    }
    let config = Arc::new(settings.raft.to_openraft("matchengine")?);
    let network = RaftNetwork::new(
        limits.raft_rpc_timeout,
        limits.raft_message_bytes_max,
        limits.raft_source_ip,
        tls.clone(),
    );
    let raft = Raft::new(node_id, config, network, log, state_machine.clone())
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
    // Serve nothing until Raft has loaded the log and vote: a status that
    // said "not initialized" for a member would look like a wiped volume.
    let initialized = raft
        .is_initialized()
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;
    if initialized {
        raft.wait(Some(Duration::from_secs(30)))
            .metrics(
                |m| {
                    m.membership_config
                        .membership()
                        .voter_ids()
                        .next()
                        .is_some()
                },
                "the stored membership loaded",
            )
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
    }
    tracing::info!(
        node_id,
        record = ?settings.record,
        startup_committed,
        initialized,
        "node started"
    );

    let (stop_api, stop_api_rx) = watch::channel(false);
    let (stop_raft, stop_raft_rx) = watch::channel(false);
    let proposer = Proposer::start(raft.clone(), &limits);
    let readiness = Arc::new(Readiness::new(startup_committed));
    let context = ApiContext {
        node_id,
        record: settings.record.clone(),
        raft: raft.clone(),
        state_machine,
        proposer: proposer.clone(),
        events,
        metrics: Arc::clone(&metrics),
        readiness: Arc::clone(&readiness),
        limits,
        stopping: stop_api_rx.clone(),
    };

    let (reporter, health_service) = tonic_health::server::health_reporter();
    let readiness_task = tokio::spawn(health::track(raft.clone(), readiness, reporter.clone()));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(matchengine_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| NodeError::Reflection(e.to_string()))?;

    let message_max = limits.client_message_bytes_max;
    let client_server = Server::builder()
        .layer(MapResponseLayer::new(oversize::rewrite))
        .add_service(
            pb::client_server::ClientServer::new(ClientService::new(context.clone()))
                .max_decoding_message_size(message_max)
                .max_encoding_message_size(message_max.max(16 * 1024 * 1024)),
        )
        .add_service(health_service.clone())
        .add_service(reflection.clone())
        .serve_with_incoming_shutdown(
            incoming(
                client_listener,
                tls.clone()
                    .map(|t| (t, PortPolicy::ClientCertificateOptional)),
                "client",
            ),
            stopped(stop_api_rx.clone()),
        );
    let admin_server = Server::builder()
        .layer(MapResponseLayer::new(oversize::rewrite))
        .add_service(InterceptedService::new(
            pb::admin_server::AdminServer::new(AdminService::new(context.clone()))
                .max_decoding_message_size(message_max),
            admin_auth,
        ))
        .add_service(health_service.clone())
        .add_service(reflection)
        .serve_with_incoming_shutdown(
            incoming(
                admin_listener,
                tls.clone()
                    .map(|t| (t, PortPolicy::ClientCertificateRequired)),
                "admin",
            ),
            stopped(stop_api_rx),
        );
    let raft_service = RaftService::new(raft.clone(), settings.data_dir.join("incoming-snapshots"))
        .map_err(|source| NodeError::Dir {
            path: settings
                .data_dir
                .join("incoming-snapshots")
                .display()
                .to_string(),
            source,
        })?;
    let raft_server = Server::builder()
        .add_service(
            pb::raft_server::RaftServer::new(raft_service)
                .max_decoding_message_size(limits.raft_message_bytes_max)
                .max_encoding_message_size(limits.raft_message_bytes_max),
        )
        .serve_with_incoming_shutdown(
            incoming(
                raft_listener,
                tls.map(|t| (t, PortPolicy::ClientCertificateRequired)),
                "raft",
            ),
            stopped(stop_raft_rx.clone()),
        );
    // Probes keep their answers until Raft has stopped.
    let health_server = Server::builder()
        .add_service(health_service)
        .serve_with_incoming_shutdown(
            incoming(health_listener, None, "health"),
            stopped(stop_raft_rx.clone()),
        );
    let refresh: Arc<dyn Fn() + Send + Sync> = {
        let (metrics, raft, proposer) = (Arc::clone(&metrics), raft.clone(), proposer.clone());
        Arc::new(move || metrics.refresh(&raft, &log_stats, proposer.inflight_commands()))
    };
    let metrics_server = tokio::spawn(metrics::serve(
        metrics_listener_addr,
        Arc::clone(&metrics),
        refresh,
        stopped(stop_raft_rx),
    ));

    let client_task = tokio::spawn(client_server);
    let admin_task = tokio::spawn(admin_server);
    let raft_task = tokio::spawn(raft_server);
    let health_task = tokio::spawn(health_server);

    // Raft stops by itself only on a fatal error, e.g. a log write that
    // failed on a full disk. Left up, the node would answer status calls
    // and serve nothing, forever; exiting non-zero gets it restarted.
    let mut raft_metrics = raft.metrics();
    let raft_failed = async move {
        loop {
            let running = raft_metrics.borrow_watched().running_state.clone();
            if let Err(fatal) = running {
                return fatal;
            }
            // The sender is dropped when the core task ends, even by a panic.
            if raft_metrics.changed().await.is_err() {
                return openraft::errors::Fatal::Panicked;
            }
        }
    };
    tokio::select! {
        () = shutdown => {}
        fatal = raft_failed => {
            tracing::error!(error = %fatal, "Raft stopped on a fatal error; exiting");
            return Err(NodeError::RaftStopped(fatal));
        }
    }
    tracing::info!("shutting down: no more client or admin requests");
    reporter
        .set_service_status(
            health::CLIENT_SERVICE,
            tonic_health::ServingStatus::NotServing,
        )
        .await;
    let _ = stop_api.send(true);
    hand_over_leadership(&raft, node_id).await;
    tracing::info!("stopping Raft");
    if let Err(error) = raft.shutdown().await {
        tracing::warn!(%error, "Raft did not stop cleanly");
    }
    tracing::info!("Raft stopped; closing the Raft and metrics servers");
    let _ = stop_raft.send(true);
    for (what, mut task) in [
        ("client", client_task),
        ("admin", admin_task),
        ("raft", raft_task),
        ("health", health_task),
    ] {
        // Graceful shutdown waits for requests in flight; a leader's
        // replication stream into this node never ends by itself, so the
        // wait is bounded.
        match tokio::time::timeout(SERVER_DRAIN_MAX, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(source))) => return Err(NodeError::Serve { what, source }),
            Ok(Err(error)) => tracing::warn!(what, %error, "server task failed"),
            Err(_) => {
                tracing::info!(what, "closing the connections still open");
                task.abort();
            }
        }
    }
    let mut metrics_server = metrics_server;
    match tokio::time::timeout(SERVER_DRAIN_MAX, &mut metrics_server).await {
        Ok(Ok(Err(error))) => tracing::warn!(%error, "metrics server failed"),
        Ok(Err(error)) => tracing::warn!(%error, "metrics server task failed"),
        Ok(Ok(Ok(()))) => {}
        Err(_) => metrics_server.abort(),
    }
    readiness_task.abort();
    tracing::info!("node stopped");
    Ok(())
}

/// If this node leads, asks the most caught-up voter to take over and
/// waits (bounded) until another leader is known.
async fn hand_over_leadership(raft: &Raft, me: u64) {
    let metrics = raft.metrics().borrow_watched().clone();
    if metrics.state != ServerState::Leader {
        return;
    }
    let Some(successor) = crate::leadership::successor(&metrics, me) else {
        return;
    };
    tracing::info!(successor, "handing leadership over before stopping");
    if raft.trigger().transfer_leader(successor).await.is_err() {
        return;
    }
    let timeout = Duration::from_millis(raft.config().election_timeout_max * 3);
    match raft
        .wait(Some(timeout))
        .metrics(
            |m| m.current_leader.is_some_and(|leader| leader != me),
            "another leader",
        )
        .await
    {
        Ok(m) => tracing::info!(leader = ?m.current_leader, "leadership handed over"),
        Err(error) => tracing::warn!(%error, "leadership handover not confirmed"),
    }
}
