//! The thin async shell around the pure core: the controller runtime calls
//! [`reconcile`] and [`error_policy`]; reconcile applies the desired
//! objects, runs one turn of the [`MembershipDriver`], carries out the
//! infrastructure step if there is one, and writes Events and the status.
//! Decisions are never made here: they come from `desired` and `plan`.

mod resources;
pub mod status;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod rbac;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use matchengine_proto::v1::InstrumentSpec;
use tracing::{Instrument, info, info_span, warn};

pub use resources::{FIELD_MANAGER, Resources, slots};

use crate::admin::{
    AdminApi, AdminAuth, AdminCredentialFiles, AdminTimeouts, AuthError, ChannelCache, TonicAdmin,
};
use crate::crd::{MatchEngineCluster, MatchEngineClusterSpec, MatchEngineClusterStatus};
use crate::desired::{CLIENT_PORT, ClusterRef, RAFT_PORT, ordinal};
use crate::driver::{DriverInput, Execution, MembershipDriver, Outcome};
use crate::metrics::Metrics;
use crate::plan::{Step, Summary};

/// Keeps a cluster from disappearing before the operator saw it go.
pub const FINALIZER: &str = "matchengine.io/cleanup";

/// The Event and condition reason when the operator lacks the credentials
/// a cluster's admin API needs.
pub const ADMIN_CREDENTIALS_REASON: &str = "AdminCredentials";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    #[error(transparent)]
    Driver(#[from] crate::driver::DriverError),
    /// The operator cannot authenticate to this cluster's admin API.
    #[error(transparent)]
    AdminAuth(#[from] AuthError),
    #[error("the resource has no {0}")]
    MissingField(&'static str),
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// The `reason` label of `matchengine_operator_reconcile_failures_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Driver(e) => e.reason(),
            Error::AdminAuth(e) => e.reason(),
            Error::MissingField(_) => "invalid_object",
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.reason(),
                _ => "finalizer",
            },
        }
    }
}

/// Builds the admin client for one cluster (the real one dials pods by
/// their stable DNS names; tests hand out a fake). Fails when the operator
/// lacks the credentials the cluster's spec calls for.
pub trait AdminFactory: Send + Sync + 'static {
    type Admin: AdminApi;
    fn for_cluster(
        &self,
        cluster: &ClusterRef,
        spec: &MatchEngineClusterSpec,
    ) -> Result<Self::Admin, AuthError>;
}

/// Dials `<pod>.<headless>.<ns>.svc.<domain>:<admin port>`: with TLS and the
/// operator's client identity when the cluster has `spec.tls`, with the
/// bearer token whenever one is configured. The files are read for every
/// reconcile, so rotated credentials are used from the next one on.
#[derive(Clone, Debug)]
pub struct KubeAdminFactory {
    pub admin_port: u16,
    pub timeouts: AdminTimeouts,
    pub channels: ChannelCache,
    pub credentials: AdminCredentialFiles,
}

/// The pods' addresses of one cluster, as [`KubeAdminFactory`] builds them.
pub type PodAddressBook = Box<dyn Fn(u64) -> matchengine_proto::v1::NodeRecord + Send + Sync>;

impl AdminFactory for KubeAdminFactory {
    type Admin = TonicAdmin<PodAddressBook>;

    fn for_cluster(
        &self,
        cluster: &ClusterRef,
        spec: &MatchEngineClusterSpec,
    ) -> Result<Self::Admin, AuthError> {
        let auth = AdminAuth::load(&self.credentials, spec.tls.is_some())?;
        let cluster = cluster.clone();
        let admin_port = self.admin_port;
        let book: PodAddressBook = Box::new(move |node_id: u64| {
            let host = cluster.pod_host(ordinal(node_id).unwrap_or(0));
            matchengine_proto::v1::NodeRecord {
                node_id,
                raft_addr: format!("{host}:{RAFT_PORT}"),
                client_addr: format!("{host}:{CLIENT_PORT}"),
                admin_addr: format!("{host}:{admin_port}"),
            }
        });
        Ok(TonicAdmin::with_channels(book, self.timeouts, self.channels.clone()).with_auth(auth))
    }
}

/// How often clusters are looked at again.
#[derive(Clone, Copy, Debug)]
pub struct Requeue {
    /// After a step, or while waiting on something.
    pub active: Duration,
    /// Steady or refused: a periodic check.
    pub idle: Duration,
}

/// What every reconcile shares.
pub struct Context<F> {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub recorder: Recorder,
    pub admin: F,
    pub cluster_domain: String,
    pub requeue: Requeue,
}

impl<F> std::fmt::Debug for Context<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("cluster_domain", &self.cluster_domain)
            .field("requeue", &self.requeue)
            .finish_non_exhaustive()
    }
}

impl<F> Context<F> {
    async fn publish(
        &self,
        mec: &MatchEngineCluster,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        // An event that cannot be written is not worth failing a reconcile.
        if let Err(error) = self.recorder.publish(&event, &mec.object_ref(&())).await {
            warn!(%error, reason, "event not published");
        }
    }
}

/// The entry point the controller runtime calls.
pub async fn reconcile<F: AdminFactory>(
    mec: Arc<MatchEngineCluster>,
    ctx: Arc<Context<F>>,
) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconcile_started();
    let namespace = mec.namespace().ok_or(Error::MissingField("namespace"))?;
    let api: Api<MatchEngineCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    let span = info_span!("reconcile", namespace = %namespace, cluster = %mec.name_any());
    let result = finalizer(&api, FINALIZER, mec, |event| async {
        match event {
            Finalizer::Apply(mec) => apply(&mec, &ctx).await,
            Finalizer::Cleanup(mec) => cleanup(&mec, &ctx).await,
        }
    })
    .instrument(span)
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics.reconcile_finished(started.elapsed());
    result
}

/// Called on a failed reconcile: count it and retry soon.
pub fn error_policy<F>(
    mec: Arc<MatchEngineCluster>,
    error: &Error,
    ctx: Arc<Context<F>>,
) -> Action {
    warn!(cluster = %mec.name_any(), %error, "reconcile failed");
    ctx.metrics.reconcile_failed(error.reason());
    Action::requeue(ctx.requeue.active)
}

fn cluster_ref<F>(mec: &MatchEngineCluster, ctx: &Context<F>) -> Result<ClusterRef, Error> {
    Ok(ClusterRef {
        name: mec.name_any(),
        namespace: mec.namespace().ok_or(Error::MissingField("namespace"))?,
        cluster_domain: ctx.cluster_domain.clone(),
    })
}

fn instrument_specs(mec: &MatchEngineCluster) -> Vec<InstrumentSpec> {
    mec.spec
        .instruments
        .iter()
        .map(|i| InstrumentSpec {
            instrument: i.instrument,
            symbol: i.symbol.clone(),
            price_ticks_min: i.price_ticks_min,
            price_ticks_max: i.price_ticks_max,
            quantity_lots_min: i.quantity_lots_min,
            quantity_lots_max: i.quantity_lots_max,
        })
        .collect()
}

async fn apply<F: AdminFactory>(
    mec: &MatchEngineCluster,
    ctx: &Context<F>,
) -> Result<Action, Error> {
    let cluster = cluster_ref(mec, ctx)?;
    let previous = mec.status.clone().unwrap_or_default();
    if let Err(invalid) = mec.spec.validate() {
        ctx.publish(mec, EventType::Warning, "InvalidSpec", invalid.to_string())
            .await;
        let mut status = previous.clone();
        status.message = Some(invalid.to_string());
        status.phase = Some(crate::crd::Phase::Degraded);
        patch_status(mec, ctx, &status).await?;
        return Ok(Action::requeue(ctx.requeue.idle));
    }
    let admin = match ctx.admin.for_cluster(&cluster, &mec.spec) {
        Ok(admin) => admin,
        Err(error) => return credentials_missing(mec, ctx, &previous, error).await,
    };
    let owner = mec
        .controller_owner_ref(&())
        .ok_or(Error::MissingField("metadata.uid"))?;
    let lookup = Resources {
        client: ctx.client.clone(),
        cluster: &cluster,
        spec: &mec.spec,
        owner: owner.clone(),
    };
    let existing = lookup.statefulset().await?;
    let spec = keep_storage(mec, ctx, existing.as_ref()).await;
    let resources = Resources {
        spec: &spec,
        ..lookup
    };
    // A new cluster starts with one pod; the planner grows it.
    let provisioned = existing.as_ref().map_or(1, resources::replicas);
    resources.apply_config_and_services().await?;
    let hash = resources.apply_statefulset(provisioned).await?;
    let pods = resources.pods().await?;
    let instruments = instrument_specs(mec);
    let created: BTreeSet<u32> = previous.instruments_created.iter().copied().collect();
    let input = DriverInput {
        replicas_desired: mec.spec.replicas,
        replicas_provisioned: provisioned,
        slots: slots(&cluster, &pods, provisioned, &hash),
        initialized_before: previous.initialized,
        instruments: &instruments,
        instruments_created: &created,
        lag_max_entries: mec.spec.membership.lag_max_entries,
    };
    let driver = MembershipDriver::new(admin);
    let outcome = match driver.step(&input).await {
        Ok(outcome) => outcome,
        Err(error) => {
            ctx.publish(mec, EventType::Warning, "StepFailed", error.to_string())
                .await;
            return Err(error.into());
        }
    };
    let executed = carry_out(&resources, &outcome).await?;
    // The budget follows the smaller of the spec and the live membership,
    // so that it is safe in the middle of a scale change.
    let voters = outcome.summary.voter_count().min(mec.spec.replicas);
    resources.apply_pdb(voters).await?;
    report(mec, ctx, &cluster, &outcome, executed).await?;
    Ok(requeue(&outcome.step, ctx.requeue))
}

/// The operator cannot authenticate to the cluster's admin API, so it
/// could not check a single step against the nodes: it changes nothing
/// (no objects, no membership) and says why, on the resource.
async fn credentials_missing<F>(
    mec: &MatchEngineCluster,
    ctx: &Context<F>,
    previous: &MatchEngineClusterStatus,
    error: AuthError,
) -> Result<Action, Error> {
    let message = error.to_string();
    warn!(cluster = %mec.name_any(), %message, "no admin credentials for the cluster");
    ctx.publish(
        mec,
        EventType::Warning,
        ADMIN_CREDENTIALS_REASON,
        message.clone(),
    )
    .await;
    let status = status::blocked(
        previous,
        ADMIN_CREDENTIALS_REASON,
        &message,
        mec.metadata.generation,
        Timestamp::now(),
    );
    patch_status(mec, ctx, &status).await?;
    Err(Error::AdminAuth(error))
}

/// The spec to apply: the user's, except for volume claims, which keep what
/// the StatefulSet was created with (they are immutable).
async fn keep_storage<F>(
    mec: &MatchEngineCluster,
    ctx: &Context<F>,
    existing: Option<&StatefulSet>,
) -> crate::crd::MatchEngineClusterSpec {
    let mut spec = mec.spec.clone();
    let Some((size, class)) = existing.and_then(resources::storage_in_use) else {
        return spec;
    };
    if (&size, &class) != (&spec.storage.size, &spec.storage.storage_class_name) {
        let note = format!(
            "volume claims cannot change: keeping size {} and class {:?} (spec asks for {} and {:?})",
            size.0, class, spec.storage.size.0, spec.storage.storage_class_name
        );
        ctx.publish(mec, EventType::Warning, "StorageChangeIgnored", note)
            .await;
        spec.storage.size = size;
        spec.storage.storage_class_name = class;
    }
    spec
}

/// Does the caller's part of a step; true when the step was carried out.
async fn carry_out(resources: &Resources<'_>, outcome: &Outcome) -> Result<bool, Error> {
    match (outcome.execution, &outcome.step) {
        (Execution::ForCaller, Step::ScaleStatefulSet { replicas }) => {
            resources.apply_statefulset(*replicas).await?;
            Ok(true)
        }
        (Execution::ForCaller, Step::RestartPod { node_id }) => {
            let ordinal = ordinal(*node_id).ok_or(Error::MissingField("pod ordinal"))?;
            resources.restart_pod(ordinal).await?;
            Ok(true)
        }
        (Execution::Admin, _) => Ok(true),
        _ => Ok(false),
    }
}

async fn report<F>(
    mec: &MatchEngineCluster,
    ctx: &Context<F>,
    cluster: &ClusterRef,
    outcome: &Outcome,
    executed: bool,
) -> Result<(), Error> {
    let step = &outcome.step;
    let kind = step.kind();
    if executed {
        info!(cluster = %cluster.name, namespace = %cluster.namespace, %step, "step taken");
        ctx.metrics.step_taken(kind);
        ctx.publish(mec, EventType::Normal, kind, step.to_string())
            .await;
    } else if let Step::Refuse(_) = step {
        warn!(cluster = %cluster.name, namespace = %cluster.namespace, %step, "step refused");
        ctx.metrics.step_refused(kind);
        ctx.publish(mec, EventType::Warning, kind, step.to_string())
            .await;
    }
    record_members(ctx, cluster, &outcome.summary);
    let previous = mec.status.clone().unwrap_or_default();
    let observed = status::Observed {
        generation: mec.metadata.generation,
        summary: &outcome.summary,
        step,
        executed,
        now: Timestamp::now(),
    };
    let status = status::status(cluster, &previous, &observed);
    patch_status(mec, ctx, &status).await
}

fn record_members<F>(ctx: &Context<F>, cluster: &ClusterRef, summary: &Summary) {
    ctx.metrics
        .observe_cluster(&cluster.namespace, &cluster.name, summary);
}

fn requeue(step: &Step, requeue: Requeue) -> Action {
    match step {
        Step::Steady | Step::Refuse(_) => Action::requeue(requeue.idle),
        _ => Action::requeue(requeue.active),
    }
}

async fn patch_status<F>(
    mec: &MatchEngineCluster,
    ctx: &Context<F>,
    status: &MatchEngineClusterStatus,
) -> Result<(), Error> {
    let namespace = mec.namespace().ok_or(Error::MissingField("namespace"))?;
    let api: Api<MatchEngineCluster> = Api::namespaced(ctx.client.clone(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": MatchEngineCluster::api_version(&()),
        "kind": MatchEngineCluster::kind(&()),
        "status": status,
    });
    api.patch_status(
        &mec.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::Kube)?;
    Ok(())
}

/// The resource is being deleted: its objects go with it through their
/// owner references, and the StatefulSet's retention policy keeps or
/// deletes the volumes. Only the operator's own state is left to drop.
async fn cleanup<F>(mec: &MatchEngineCluster, ctx: &Context<F>) -> Result<Action, Error> {
    let cluster = cluster_ref(mec, ctx)?;
    ctx.metrics
        .forget_cluster(&cluster.namespace, &cluster.name);
    let note = format!(
        "deleting cluster {}: volumes are {} per spec.storage.reclaimPolicy",
        cluster.name,
        match mec.spec.storage.reclaim_policy {
            crate::crd::ReclaimPolicy::Retain => "retained",
            crate::crd::ReclaimPolicy::Delete => "deleted",
        }
    );
    ctx.publish(mec, EventType::Normal, "Deleting", note).await;
    Ok(Action::await_change())
}

/// Runs the controller until a shutdown signal arrives or `stop` resolves.
pub async fn run<F: AdminFactory>(
    ctx: Arc<Context<F>>,
    watch_namespace: Option<&str>,
    stop: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (clusters, statefulsets) = match watch_namespace {
        Some(ns) => (
            Api::<MatchEngineCluster>::namespaced(client.clone(), ns),
            Api::<StatefulSet>::namespaced(client, ns),
        ),
        None => (Api::all(client.clone()), Api::all(client)),
    };
    let owned =
        watcher::Config::default().labels("app.kubernetes.io/managed-by=matchengine-operator");
    Controller::new(clusters, watcher::Config::default().any_semantic())
        .owns(statefulsets, owned)
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                warn!(%error, "controller");
            }
        })
        .await;
}
