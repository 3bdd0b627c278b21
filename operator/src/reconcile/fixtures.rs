//! Reconcile against kube's mock service (tower-test): a small fake API
//! server answers every call and records it, and each test checks the
//! exact list of calls one reconcile made. Node answers come from the
//! planner's cluster model through the fake admin client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::client::Body;
use kube::runtime::events::Recorder;
use kube::{Client, Resource};
use serde_json::{Value, json};
use tower_test::mock;

use kube::runtime::controller::Action;

use super::{
    ADMIN_CREDENTIALS_REASON, AdminFactory, Context, Error, FINALIZER, KubeAdminFactory, Requeue,
    reconcile,
};
use crate::admin::{AdminCredentialFiles, AdminTimeouts, AuthError};
use crate::crd::{
    MatchEngineCluster, MatchEngineClusterSpec, MatchEngineClusterStatus, Phase, TlsSpec,
};
use crate::desired::tests::{cluster, cluster_ref, owner};
use crate::desired::{CONFIG_HASH_ANNOTATION, ClusterRef, statefulset};
use crate::driver::fake::FakeAdmin;
use crate::metrics::Metrics;
use crate::plan::sim::Model;

impl AdminFactory for Arc<FakeAdmin> {
    type Admin = Arc<FakeAdmin>;
    fn for_cluster(
        &self,
        _: &ClusterRef,
        _: &MatchEngineClusterSpec,
    ) -> Result<Self::Admin, AuthError> {
        Ok(self.clone())
    }
}

/// What the fake API server holds.
#[derive(Clone, Default)]
pub(super) struct World {
    pub statefulset: Option<StatefulSet>,
    pub pods: Vec<Pod>,
}

/// One recorded call: `METHOD /path?query`, the request's content type and
/// the JSON body, if any.
#[derive(Clone, Debug)]
pub(super) struct Call {
    pub line: String,
    pub content_type: String,
    pub body: Value,
}

fn not_found() -> Response<Body> {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "not found", "reason": "NotFound", "code": 404
    });
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Body::from(serde_json::to_vec(&status).unwrap()))
        .unwrap()
}

fn json_response(value: &Value) -> Response<Body> {
    Response::builder()
        .body(Body::from(serde_json::to_vec(value).unwrap()))
        .unwrap()
}

fn respond(world: &World, method: &Method, path: &str, body: &Value) -> Response<Body> {
    match (method.as_str(), path) {
        ("GET", p) if p.ends_with("/statefulsets/books") => match &world.statefulset {
            Some(sts) => json_response(&serde_json::to_value(sts).unwrap()),
            None => not_found(),
        },
        ("GET", p) if p.ends_with("/pods") => json_response(&json!({
            "apiVersion": "v1", "kind": "PodList", "metadata": {},
            "items": world.pods,
        })),
        ("DELETE", p) if p.contains("/pods/") => json_response(&json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": p.rsplit('/').next()}
        })),
        ("PATCH", p) if p.ends_with("/status") => json_response(&json!({
            "apiVersion": "matchengine.io/v1alpha1", "kind": "MatchEngineCluster",
            "metadata": {"name": "books", "namespace": "trading"},
            "spec": {"replicas": 3, "image": "x"},
            "status": body["status"],
        })),
        // Apply, event creation and finalizer patches: the
        // server would answer with the object; the body is close enough
        // for what the client reads back.
        _ if body.is_object() => json_response(body),
        _ => json_response(&json!({
            "apiVersion": "matchengine.io/v1alpha1", "kind": "MatchEngineCluster",
            "metadata": {"name": "books", "namespace": "trading"},
            "spec": {"replicas": 3, "image": "x"}
        })),
    }
}

/// Runs one reconcile after another, on one context, against the fake
/// server; returns their results and every call they made.
pub(super) async fn reconcile_all<F: AdminFactory>(
    mecs: Vec<MatchEngineCluster>,
    world: World,
    admin: F,
) -> (Vec<Result<Action, Error>>, Vec<Call>) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let recorded = calls.clone();
    let server = tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let method = request.method().clone();
            let uri = request.uri().clone();
            let content_type = request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = uri.path().to_owned();
            let line = format!("{method} {}", uri.path_and_query().unwrap());
            recorded.lock().unwrap().push(Call {
                line,
                content_type,
                body: body.clone(),
            });
            send.send_response(respond(&world, &method, &path, &body));
        }
    });
    let client = Client::new(service, "default");
    let ctx = Arc::new(Context {
        client: client.clone(),
        metrics: Arc::new(Metrics::new()),
        recorder: Recorder::new(client, "matchengine-operator".into()),
        admin,
        cluster_domain: "cluster.local".into(),
        requeue: Requeue {
            active: Duration::from_secs(5),
            idle: Duration::from_secs(60),
        },
    });
    let mut results = Vec::new();
    for mec in mecs {
        results.push(reconcile(Arc::new(mec), ctx.clone()).await);
    }
    drop(ctx);
    // Every client clone is gone with the context: the server loop ends.
    server.await.unwrap();
    let calls = calls.lock().unwrap().clone();
    (results, calls)
}

/// Runs one reconcile against the fake server; returns its calls.
async fn reconcile_once(mec: MatchEngineCluster, world: World, admin: Arc<FakeAdmin>) -> Vec<Call> {
    let (results, calls) = reconcile_all(vec![mec], world, admin).await;
    for result in results {
        assert!(result.is_ok(), "{result:?}");
    }
    calls
}

pub(super) fn lines(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.line.as_str()).collect()
}

pub(super) fn finalized(mut mec: MatchEngineCluster) -> MatchEngineCluster {
    mec.metadata.finalizers = Some(vec![FINALIZER.into()]);
    mec.metadata.generation = Some(1);
    mec
}

pub(super) fn existing(replicas: u32, mec: &MatchEngineCluster) -> World {
    let (sts, hash) = statefulset(&cluster_ref(), &mec.spec, replicas, &owner());
    let pods = (0..replicas)
        .map(|ordinal| Pod {
            metadata: ObjectMeta {
                name: Some(cluster_ref().pod_name(ordinal)),
                namespace: Some("trading".into()),
                annotations: Some([(CONFIG_HASH_ANNOTATION.to_owned(), hash.clone())].into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        })
        .collect();
    World {
        statefulset: Some(sts),
        pods,
    }
}

pub(super) fn statuses(model: &Model) -> Vec<crate::plan::NodeStatus> {
    model
        .observe()
        .pods
        .into_iter()
        .filter_map(|p| p.status)
        .collect()
}

const APPLY: &str = "?&force=true&fieldManager=matchengine-operator";

fn apply_calls() -> Vec<String> {
    let ns = "/namespaces/trading";
    vec![
        format!("GET /apis/apps/v1{ns}/statefulsets/books"),
        format!("PATCH /api/v1{ns}/configmaps/books-config{APPLY}"),
        format!("PATCH /api/v1{ns}/services/books-headless{APPLY}"),
        format!("PATCH /api/v1{ns}/services/books{APPLY}"),
        format!("PATCH /apis/apps/v1{ns}/statefulsets/books{APPLY}"),
        format!(
            "GET /api/v1{ns}/pods?&labelSelector=app.kubernetes.io%2Fcomponent%3Dnode%2Capp.kubernetes.io%2Finstance%3Dbooks%2Capp.kubernetes.io%2Fname%3Dmatchengine"
        ),
    ]
}

const STATUS: &str = "PATCH /apis/matchengine.io/v1alpha1/namespaces/trading/matchengineclusters/books/status?&force=true&fieldManager=matchengine-operator";
const PDB: &str = "PATCH /apis/policy/v1/namespaces/trading/poddisruptionbudgets/books?&force=true&fieldManager=matchengine-operator";
const EVENT: &str = "POST /apis/events.k8s.io/v1/namespaces/trading/events?";

fn status_of(call: &Call) -> MatchEngineClusterStatus {
    serde_json::from_value(call.body["status"].clone()).unwrap()
}

#[tokio::test]
async fn new_resource_first_gets_the_finalizer() {
    let calls = reconcile_once(cluster(3), World::default(), Arc::default()).await;
    assert_eq!(
        lines(&calls),
        ["PATCH /apis/matchengine.io/v1alpha1/namespaces/trading/matchengineclusters/books?"]
    );
    let patch = &calls[0].body;
    assert_eq!(patch[1]["path"], "/metadata/finalizers");
    assert_eq!(patch[1]["value"], json!([FINALIZER]));
}

#[tokio::test]
async fn new_cluster_creates_its_objects_with_one_pod() {
    let calls = reconcile_once(finalized(cluster(3)), World::default(), Arc::default()).await;
    let mut expected = apply_calls();
    expected.extend([PDB.to_owned(), STATUS.to_owned()]);
    assert_eq!(lines(&calls), expected);
    let sts = &calls[4].body;
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(
        sts["metadata"]["ownerReferences"][0]["kind"],
        "MatchEngineCluster"
    );
    assert_eq!(sts["metadata"]["ownerReferences"][0]["controller"], true);
    for call in &calls[1..5] {
        assert_eq!(call.body["metadata"]["ownerReferences"][0]["name"], "books");
    }
    assert_eq!(calls[6].body["spec"]["maxUnavailable"], 0);
    let status = status_of(&calls[7]);
    assert_eq!(status.phase, Some(Phase::Bootstrapping));
    assert!(!status.initialized);
}

#[tokio::test]
async fn answering_pod_zero_is_bootstrapped_with_an_event() {
    let mec = finalized(cluster(3));
    let world = existing(1, &mec);
    let admin = Arc::new(FakeAdmin::with(statuses(&Model::new(3))));
    let calls = reconcile_once(mec, world, admin.clone()).await;
    let mut expected = apply_calls();
    expected.extend([PDB.to_owned(), EVENT.to_owned(), STATUS.to_owned()]);
    assert_eq!(lines(&calls), expected);
    assert_eq!(admin.calls(), ["initialize 1"]);
    assert_eq!(calls[7].body["reason"], "Initialize");
    assert_eq!(calls[7].body["type"], "Normal");
    assert!(status_of(&calls[8]).initialized);
}

#[tokio::test]
async fn scale_change_grows_the_statefulset_by_one() {
    let mut mec = finalized(cluster(5));
    mec.status = Some(MatchEngineClusterStatus {
        initialized: true,
        ..MatchEngineClusterStatus::default()
    });
    let world = existing(3, &mec);
    let admin = Arc::new(FakeAdmin::with(statuses(&Model::steady(3))));
    let calls = reconcile_once(mec, world, admin.clone()).await;
    let mut expected = apply_calls();
    expected.push(format!(
        "PATCH /apis/apps/v1/namespaces/trading/statefulsets/books{APPLY}"
    ));
    expected.extend([PDB.to_owned(), EVENT.to_owned(), STATUS.to_owned()]);
    assert_eq!(lines(&calls), expected);
    assert_eq!(calls[4].body["spec"]["replicas"], 3, "first keeps the size");
    assert_eq!(calls[6].body["spec"]["replicas"], 4, "then grows by one");
    assert_eq!(calls[7].body["spec"]["maxUnavailable"], 1);
    assert_eq!(calls[8].body["reason"], "ScaleStatefulSet");
    assert!(admin.calls().is_empty());
    let status = status_of(&calls[9]);
    assert_eq!(status.phase, Some(Phase::Scaling));
    assert_eq!((status.replicas, status.ready_replicas), (3, 3));
}

#[tokio::test]
async fn scale_down_removes_the_top_member_through_the_leader() {
    let mut mec = finalized(cluster(3));
    mec.status = Some(MatchEngineClusterStatus {
        initialized: true,
        ..MatchEngineClusterStatus::default()
    });
    let world = existing(5, &mec);
    let admin = Arc::new(FakeAdmin::with(statuses(&Model::steady(5))));
    let calls = reconcile_once(mec, world, admin.clone()).await;
    let mut expected = apply_calls();
    expected.extend([PDB.to_owned(), EVENT.to_owned(), STATUS.to_owned()]);
    assert_eq!(lines(&calls), expected);
    assert_eq!(
        admin.calls(),
        ["change_membership promote [] remove [5] via 1"]
    );
    assert_eq!(calls[7].body["reason"], "Remove");
}

#[tokio::test]
async fn refused_step_is_a_warning_event() {
    let mut mec = finalized(cluster(1));
    mec.status = Some(MatchEngineClusterStatus {
        initialized: true,
        ..MatchEngineClusterStatus::default()
    });
    let world = existing(3, &mec);
    let mut model = Model::steady(3);
    model.node_mut(2).up = false;
    model.node_mut(3).up = false;
    let admin = Arc::new(FakeAdmin::with(statuses(&model)));
    let calls = reconcile_once(mec, world, admin.clone()).await;
    assert!(admin.calls().is_empty());
    let event = calls.iter().find(|c| c.line == EVENT).unwrap();
    assert_eq!(event.body["type"], "Warning");
    assert_eq!(event.body["reason"], "RefusedQuorumAtRisk");
    let status = status_of(calls.last().unwrap());
    assert_eq!(status.phase, Some(Phase::Degraded));
}

#[tokio::test]
async fn immutable_volume_claims_keep_their_size_with_a_warning() {
    let mut mec = finalized(cluster(3));
    mec.status = Some(MatchEngineClusterStatus {
        initialized: true,
        ..MatchEngineClusterStatus::default()
    });
    let world = existing(3, &mec);
    mec.spec.storage.size = k8s_openapi::apimachinery::pkg::api::resource::Quantity("50Gi".into());
    let admin = Arc::new(FakeAdmin::with(statuses(&Model::steady(3))));
    let calls = reconcile_once(mec, world, admin).await;
    let warning = calls
        .iter()
        .find(|c| c.line == EVENT && c.body["reason"] == "StorageChangeIgnored")
        .expect("a warning event");
    assert_eq!(warning.body["type"], "Warning");
    let sts = calls
        .iter()
        .find(|c| c.line.contains("/statefulsets/books?"))
        .unwrap();
    assert_eq!(
        sts.body["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "10Gi"
    );
}

#[tokio::test]
async fn deletion_publishes_an_event_and_releases_the_finalizer() {
    let mut mec = finalized(cluster(3));
    mec.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
    let calls = reconcile_once(mec, World::default(), Arc::default()).await;
    assert_eq!(
        lines(&calls),
        [
            EVENT,
            "PATCH /apis/matchengine.io/v1alpha1/namespaces/trading/matchengineclusters/books?"
        ]
    );
    assert_eq!(calls[0].body["reason"], "Deleting");
    let patch = &calls[1].body;
    assert_eq!(patch[0]["op"], "test");
    assert_eq!(patch[1]["op"], "remove");
    assert_eq!(patch[1]["path"], "/metadata/finalizers/0");
}

#[tokio::test]
async fn tls_cluster_without_an_operator_certificate_changes_nothing() {
    let mut mec = finalized(cluster(3));
    mec.spec.tls = Some(TlsSpec {
        secret_name: "books-tls".into(),
    });
    mec.status = Some(MatchEngineClusterStatus {
        initialized: true,
        ..MatchEngineClusterStatus::default()
    });
    let world = existing(3, &mec);
    // The real factory, as main builds it without --admin-tls-*.
    let factory = KubeAdminFactory {
        admin_port: 7002,
        timeouts: AdminTimeouts::default(),
        channels: Default::default(),
        credentials: AdminCredentialFiles::default(),
    };
    let (results, calls) = reconcile_all(vec![mec], world, factory).await;
    let error = results.into_iter().next().unwrap().unwrap_err();
    assert_eq!(error.reason(), "admin_no_client_certificate");
    assert!(error.to_string().contains("--admin-tls-cert"), "{error}");
    // No object applied, no pod touched: an Event and the status only.
    assert_eq!(lines(&calls), [EVENT, STATUS]);
    assert_eq!(calls[0].body["type"], "Warning");
    assert_eq!(calls[0].body["reason"], ADMIN_CREDENTIALS_REASON);
    assert!(
        calls[0].body["note"]
            .as_str()
            .unwrap()
            .contains("--admin-tls-cert")
    );
    let status = status_of(&calls[1]);
    assert_eq!(status.phase, Some(Phase::Degraded));
    assert!(status.initialized, "what the operator knew is kept");
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", ADMIN_CREDENTIALS_REASON)
    );
}

#[test]
fn owner_reference_is_the_cluster() {
    let mec = cluster(3);
    assert_eq!(mec.controller_owner_ref(&()), Some(owner()));
}
