//! `matchengine-operator`: wiring only. Parse and validate the config,
//! connect to Kubernetes (in cluster, or from a kubeconfig for
//! development), serve /metrics and /healthz, take the Lease, run the
//! controller until SIGTERM or until the Lease is lost, then let go.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::runtime::events::{Recorder, Reporter};
use matchengine_operator::config::{Config, LogFormat};
use matchengine_operator::http;
use matchengine_operator::lease::LeaseLock;
use matchengine_operator::metrics::Metrics;
use matchengine_operator::reconcile::{self, Context, KubeAdminFactory};
use tokio::sync::watch;
use tracing::{error, info, warn};

/// Why the operator stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Signal,
    LeaseLost,
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(e) => {
                    warn!(error = %e, "no SIGTERM handler");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Resolves once a stop is requested.
async fn stopped(mut rx: watch::Receiver<Option<Stop>>) {
    // An error means the sender is gone: stopping is all that is left.
    let _ = rx.wait_for(Option::is_some).await;
}

/// Takes the Lease, retrying until it is ours or a stop is requested.
async fn acquire(lock: &LeaseLock, retry: Duration, stop: &watch::Receiver<Option<Stop>>) -> bool {
    loop {
        match lock.try_acquire_or_renew().await {
            Ok(true) => return true,
            Ok(false) => info!("another replica holds the lease; standing by"),
            Err(e) => warn!(error = %e, "lease"),
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = stopped(stop.clone()) => return false,
        }
    }
}

/// Renews the Lease; gives up (and stops the operator) once it could not
/// be renewed for a whole lease duration, since another replica may then
/// hold it.
async fn keep(lock: LeaseLock, renew: Duration, stop_tx: watch::Sender<Option<Stop>>) {
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep(renew) => {}
            () = stopped(stop_tx.subscribe()) => return,
        }
        match lock.try_acquire_or_renew().await {
            Ok(true) => last_renewed = tokio::time::Instant::now(),
            Ok(false) => {
                error!("the lease was taken by another replica");
                stop_tx.send_replace(Some(Stop::LeaseLost));
                return;
            }
            Err(e) if last_renewed.elapsed() >= lock.duration() => {
                error!(error = %e, "could not renew the lease in time");
                stop_tx.send_replace(Some(Stop::LeaseLost));
                return;
            }
            Err(e) => warn!(error = %e, "lease renewal failed; retrying"),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    config.validate()?;
    init_tracing(config.log_format);
    let credentials = config.admin_credentials();
    // A wrong path or an empty token stops the operator here, naming the
    // flag, rather than failing every reconcile of a TLS cluster.
    credentials.check()?;
    if credentials.tls.is_none() {
        info!(
            "no admin client certificate (--admin-tls-cert): clusters with spec.tls cannot be managed"
        );
    }
    let client = kube::Client::try_default()
        .await
        .context("connecting to Kubernetes (in cluster or from the kubeconfig)")?;
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = watch::channel(None::<Stop>);
    let signal_tx = stop_tx.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down");
        signal_tx.send_replace(Some(Stop::Signal));
    });

    let listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .with_context(|| format!("--metrics-listen {}", config.metrics_listen))?;
    let server = tokio::spawn(http::serve(
        listener,
        metrics.clone(),
        stopped(stop_rx.clone()),
    ));

    let identity = match config.identity.as_str() {
        "" => std::env::var("HOSTNAME")
            .unwrap_or_else(|_| format!("matchengine-operator-{}", std::process::id())),
        name => name.to_owned(),
    };
    let lease = config.leader_election.then(|| {
        let namespace = match config.lease_namespace.as_str() {
            "" => client.default_namespace().to_owned(),
            ns => ns.to_owned(),
        };
        LeaseLock::new(
            Api::<Lease>::namespaced(client.clone(), &namespace),
            config.lease_name.clone(),
            identity.clone(),
            Duration::from_secs(config.lease_duration_seconds),
        )
    });
    let renew = Duration::from_secs(config.lease_renew_interval_seconds);
    if let Some(lock) = &lease {
        if !acquire(lock, renew, &stop_rx).await {
            server.await??;
            return Ok(());
        }
        info!(%identity, "leading");
        tokio::spawn(keep(lock.clone(), renew, stop_tx.clone()));
    }
    metrics.set_leader(true);

    let ctx = Arc::new(Context {
        client: client.clone(),
        metrics: metrics.clone(),
        recorder: Recorder::new(
            client,
            Reporter {
                controller: "matchengine-operator".into(),
                instance: Some(identity),
            },
        ),
        admin: KubeAdminFactory {
            admin_port: config.admin_port,
            timeouts: config.admin_timeouts(),
            channels: Default::default(),
            credentials,
        },
        cluster_domain: config.cluster_domain.clone(),
        requeue: config.requeue(),
    });
    let watch_namespace = Some(config.watch_namespace.as_str()).filter(|ns| !ns.is_empty());
    reconcile::run(ctx, watch_namespace, stopped(stop_rx.clone())).await;
    metrics.set_leader(false);
    // Make sure the HTTP server stops too when the controller ended first.
    stop_tx.send_if_modified(|stop| {
        let unset = stop.is_none();
        stop.get_or_insert(Stop::Signal);
        unset
    });
    let reason = *stop_rx.borrow();
    if let Some(lock) = &lease
        && reason != Some(Stop::LeaseLost)
        && let Err(e) = lock.release().await
    {
        warn!(error = %e, "could not release the lease");
    }
    server.await??;
    if reason == Some(Stop::LeaseLost) {
        bail!("lost the leader election lease; exiting so that a fresh start campaigns again");
    }
    Ok(())
}
