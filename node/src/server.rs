//! Wiring: binds the five ports (client, admin, Raft, health, metrics),
//! opens the storage, starts the Raft group and the proposer, serves, and
//! shuts it all down in order. Each step is one function; what each part
//! does lives in its own module.
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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use matchengine_proto::v1 as pb;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tower::util::MapResponseLayer;

use crate::api::auth::AdminAuth;
use crate::api::{ApiContext, admin::AdminService, client::ClientService, oversize};
use crate::applied_feed::AppliedFeed;
use crate::config::NodeSettings;
use crate::events::EventHub;
use crate::health::{self, Readiness};
use crate::metrics::{self, Metrics};
use crate::proposer::Proposer;
use crate::raft::handle::RaftHandle;
use crate::raft::log_storage::RaftLogStore;
use crate::raft::network::server::RaftService;
use crate::raft::state_machine::StateMachineStore;
use crate::raft::{self, GroupOptions};
use crate::storage::log_store::{FsyncObserver, LogStats};
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
    StateMachine(#[from] crate::raft::state_machine::StateMachineError),
    #[error("reading the log: {0}")]
    LogRead(std::io::Error),
    #[error("preparing {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Start(#[from] crate::raft::StartError),
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    /// Raft's core stopped without being asked to (a storage error or a
    /// panic); the process must exit so that it is restarted.
    #[error("Raft stopped: {0}")]
    RaftStopped(String),
    #[error("gRPC reflection: {0}")]
    Reflection(String),
    #[error("the {what} server failed: {source}")]
    Serve {
        what: &'static str,
        source: tonic::transport::Error,
    },
}

/// The node's ports, bound before anything starts so that a taken port is
/// reported first.
struct Listeners {
    client: TcpListener,
    admin: TcpListener,
    raft: TcpListener,
    health: TcpListener,
    metrics: SocketAddr,
}

/// A started node: what the servers serve.
struct Started {
    context: ApiContext,
    raft_service: RaftService,
    log_stats: Arc<LogStats>,
}

/// The running servers and the switches that stop them.
struct Serving {
    stop_api: watch::Sender<bool>,
    stop_raft: watch::Sender<bool>,
    servers: Vec<(
        &'static str,
        JoinHandle<Result<(), tonic::transport::Error>>,
    )>,
    metrics_server: JoinHandle<std::io::Result<()>>,
    readiness_task: JoinHandle<()>,
    reporter: tonic_health::server::HealthReporter,
}

/// Runs a node until `shutdown` completes, then stops it gracefully.
pub async fn run(
    settings: NodeSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let listeners = bind_all(&settings).await?;
    let (tls, admin_auth) = crate::security::load(&settings.security)?;
    // Turns true when the node stops taking client and admin requests.
    let (stop_api, stop_api_rx) = watch::channel(false);
    let started = start(&settings, tls.clone(), stop_api_rx).await?;
    let raft = started.context.raft.clone();
    let serving = serve(listeners, started, stop_api, tls, admin_auth, &settings)?;
    tokio::select! {
        () = shutdown => {}
        fatal = raft.stopped_by_itself() => {
            tracing::error!(error = %fatal, "Raft stopped on a fatal error; exiting");
            return Err(NodeError::RaftStopped(fatal));
        }
    }
    stop(serving, &raft).await
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { what, addr, source })
}

async fn bind_all(settings: &NodeSettings) -> Result<Listeners, NodeError> {
    Ok(Listeners {
        client: bind("the client API", settings.client_listen).await?,
        admin: bind("the admin API", settings.admin_listen).await?,
        raft: bind("Raft", settings.raft_listen).await?,
        health: bind("health checks", settings.health_listen).await?,
        metrics: settings.metrics_listen,
    })
}

/// Opens the storage, loads the state, starts the Raft group and the
/// proposer.
async fn start(
    settings: &NodeSettings,
    tls: Option<TlsWatch>,
    stopping: watch::Receiver<bool>,
) -> Result<Started, NodeError> {
    let (node_id, limits, data_dir) = (settings.node_id, settings.limits, &settings.data_dir);
    std::fs::create_dir_all(data_dir).map_err(|source| NodeError::Dir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let log = RaftLogStore::open(&data_dir.join("raft-log"))?;
    let startup_committed = log
        .committed()
        .map_err(NodeError::LogRead)?
        .map_or(0, |id| id.index);
    let state_machine =
        StateMachineStore::open(&data_dir.join("snapshots"), settings.state_limits)?;
    state_machine
        .reserve_orders(limits.orders_reserved as usize)
        .map_err(NodeError::LogRead)?;
    let metrics = Arc::new(Metrics::new(node_id)?);
    let events = Arc::new(
        state_machine
            .read(|state| EventHub::new(limits.events_retained_per_instrument, state))
            .map_err(NodeError::LogRead)?,
    );
    state_machine.set_observer(Arc::new(AppliedFeed {
        events: Arc::clone(&events),
        metrics: Arc::clone(&metrics),
    }));
    let log_stats = log.stats();
    let fsync_metrics = Arc::clone(&metrics);
    log_stats.set_fsync_observer(FsyncObserver(Box::new(move |elapsed| {
        fsync_metrics.observe_fsync(elapsed)
    })));
    let options = GroupOptions {
        node_id,
        cluster_name: "matchengine".into(),
        settings: settings.raft,
        rpc_timeout: limits.raft_rpc_timeout,
        message_bytes_max: limits.raft_message_bytes_max,
        source_ip: limits.raft_source_ip,
        tls,
        incoming_snapshot_dir: data_dir.join("incoming-snapshots"),
    };
    let (raft, raft_service) = raft::start(options, log, state_machine.clone()).await?;
    tracing::info!(node_id, record = ?settings.record, startup_committed, "node started");
    let context = ApiContext {
        node_id,
        record: settings.record.clone(),
        proposer: Proposer::start(raft.clone(), &limits),
        raft,
        state_machine,
        events,
        metrics,
        readiness: Arc::new(Readiness::new(startup_committed)),
        limits,
        stopping,
    };
    Ok(Started {
        context,
        raft_service,
        log_stats,
    })
}

/// Starts the five servers and the readiness tracker.
fn serve(
    listeners: Listeners,
    started: Started,
    stop_api: watch::Sender<bool>,
    tls: Option<TlsWatch>,
    admin_auth: AdminAuth,
    settings: &NodeSettings,
) -> Result<Serving, NodeError> {
    let Started {
        context,
        raft_service,
        log_stats,
    } = started;
    let stop_api_rx = context.stopping.clone();
    let (stop_raft, stop_raft_rx) = watch::channel(false);
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let readiness_task = tokio::spawn(health::track(
        context.raft.clone(),
        Arc::clone(&context.readiness),
        reporter.clone(),
    ));
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(matchengine_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| NodeError::Reflection(e.to_string()))?;
    let message_max = settings.limits.client_message_bytes_max;
    let raft_message_max = settings.limits.raft_message_bytes_max;
    let policy = |policy| tls.clone().map(|t| (t, policy));
    let client = Server::builder()
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
                listeners.client,
                policy(PortPolicy::ClientCertificateOptional),
                "client",
            ),
            stopped(stop_api_rx.clone()),
        );
    let admin = Server::builder()
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
                listeners.admin,
                policy(PortPolicy::ClientCertificateRequired),
                "admin",
            ),
            stopped(stop_api_rx),
        );
    let raft = Server::builder()
        .add_service(
            pb::raft_server::RaftServer::new(raft_service)
                .max_decoding_message_size(raft_message_max)
                .max_encoding_message_size(raft_message_max),
        )
        .serve_with_incoming_shutdown(
            incoming(
                listeners.raft,
                policy(PortPolicy::ClientCertificateRequired),
                "raft",
            ),
            stopped(stop_raft_rx.clone()),
        );
    // Probes keep their answers until Raft has stopped.
    let health = Server::builder()
        .add_service(health_service)
        .serve_with_incoming_shutdown(
            incoming(listeners.health, None, "health"),
            stopped(stop_raft_rx.clone()),
        );
    let refresh: Arc<dyn Fn() + Send + Sync> = {
        let context = context.clone();
        Arc::new(move || {
            context.metrics.refresh(
                &context.raft,
                &log_stats,
                context.proposer.inflight_commands(),
            )
        })
    };
    let metrics_server = tokio::spawn(metrics::serve(
        listeners.metrics,
        Arc::clone(&context.metrics),
        refresh,
        stopped(stop_raft_rx),
    ));
    Ok(Serving {
        stop_api,
        stop_raft,
        servers: vec![
            ("client", tokio::spawn(client)),
            ("admin", tokio::spawn(admin)),
            ("raft", tokio::spawn(raft)),
            ("health", tokio::spawn(health)),
        ],
        metrics_server,
        readiness_task,
        reporter,
    })
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Stops taking requests, hands leadership over, stops Raft, then closes
/// the servers (each bounded by [`SERVER_DRAIN_MAX`]).
async fn stop(serving: Serving, raft: &RaftHandle) -> Result<(), NodeError> {
    tracing::info!("shutting down: no more client or admin requests");
    serving
        .reporter
        .set_service_status(
            health::CLIENT_SERVICE,
            tonic_health::ServingStatus::NotServing,
        )
        .await;
    let _ = serving.stop_api.send(true);
    raft.hand_over_leadership().await;
    tracing::info!("stopping Raft");
    if let Err(error) = raft.shutdown().await {
        tracing::warn!(%error, "Raft did not stop cleanly");
    }
    tracing::info!("Raft stopped; closing the Raft and metrics servers");
    let _ = serving.stop_raft.send(true);
    for (what, mut task) in serving.servers {
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
    let mut metrics_server = serving.metrics_server;
    match tokio::time::timeout(SERVER_DRAIN_MAX, &mut metrics_server).await {
        Ok(Ok(Err(error))) => tracing::warn!(%error, "metrics server failed"),
        Ok(Err(error)) => tracing::warn!(%error, "metrics server task failed"),
        Ok(Ok(Ok(()))) => {}
        Err(_) => metrics_server.abort(),
    }
    serving.readiness_task.abort();
    tracing::info!("node stopped");
    Ok(())
}
