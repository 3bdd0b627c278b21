//! Least privilege, checked: the rules of the chart's RBAC
//! (`charts/matchengine-operator/templates/rbac.yaml`) against the
//! Kubernetes calls the operator makes on its real code paths, recorded
//! from kube's mock service: reconciles through every kind of step, the
//! controller's start (its lists and watches), and the Lease. Every call
//! must be allowed by a rule, and every verb a rule grants must be used by
//! some call. A new call without a rule, or a rule nothing uses, fails here.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kube::client::Body;
use kube::runtime::events::Recorder;
use kube::{Client, Resource};
use serde::Deserialize;
use serde_json::{Value, json};
use tower_test::mock;

use super::fixtures::{Call, World, existing, finalized, reconcile_all, statuses};
use super::{AdminFactory, Context, KubeAdminFactory, Requeue};
use crate::admin::{AdminCredentialFiles, AdminTimeouts};
use crate::crd::{MatchEngineCluster, MatchEngineClusterStatus, TlsSpec};
use crate::desired::CONFIG_HASH_ANNOTATION;
use crate::desired::tests::cluster;
use crate::driver::fake::FakeAdmin;
use crate::lease::LeaseLock;
use crate::metrics::Metrics;
use crate::plan::sim::Model;

const RBAC: &str = "charts/matchengine-operator/templates/rbac.yaml";
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// `(apiGroup, resource[/subresource], verb)`.
type Permission = (String, String, String);

/// One HTTP request to the API server.
#[derive(Clone, Debug)]
struct ApiCall {
    method: String,
    path_and_query: String,
    content_type: String,
}

impl ApiCall {
    fn of<B>(request: &Request<B>) -> Self {
        Self {
            method: request.method().to_string(),
            path_and_query: request
                .uri()
                .path_and_query()
                .map_or_else(String::new, |p| p.to_string()),
            content_type: request
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned(),
        }
    }

    fn from_fixture(call: &Call) -> Self {
        let (method, path_and_query) = call.line.split_once(' ').unwrap_or((&call.line, ""));
        Self {
            method: method.to_owned(),
            path_and_query: path_and_query.to_owned(),
            content_type: call.content_type.clone(),
        }
    }

    fn is_watch(&self) -> bool {
        self.query()
            .split('&')
            .any(|p| p == "watch=true" || p == "watch=1")
    }

    fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or("")
    }

    fn query(&self) -> &str {
        self.path_and_query.split_once('?').map_or("", |(_, q)| q)
    }

    /// What RBAC checks for this request: `GET` of an item is get, of a
    /// collection list (or watch with `watch=true`); `POST` create, `PUT`
    /// update, `PATCH` patch, `DELETE` delete (deletecollection without a
    /// name). A server-side apply of an object may create it, so it needs
    /// create as well; on a subresource it can only patch.
    fn permissions(&self) -> Vec<Permission> {
        let segments: Vec<&str> = self.path().trim_start_matches('/').split('/').collect();
        let (group, rest) = match segments.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => panic!("not an API path: {self:?}"),
        };
        let rest = match rest {
            ["namespaces", _namespace, resource, more @ ..] => {
                let mut r = vec![*resource];
                r.extend_from_slice(more);
                r
            }
            other => other.to_vec(),
        };
        let (resource, name, subresource) = match rest.as_slice() {
            [resource] => (*resource, None, None),
            [resource, name] => (*resource, Some(*name), None),
            [resource, name, sub] => (*resource, Some(*name), Some(*sub)),
            _ => panic!("unexpected API path: {self:?}"),
        };
        let verbs: &[&str] = match (self.method.as_str(), name, subresource) {
            ("GET", None, _) if self.is_watch() => &["watch"],
            ("GET", None, _) => &["list"],
            ("GET", Some(_), _) => &["get"],
            ("POST", _, _) => &["create"],
            ("PUT", _, _) => &["update"],
            ("PATCH", _, None) if self.content_type == APPLY_PATCH => &["patch", "create"],
            ("PATCH", _, _) => &["patch"],
            ("DELETE", None, _) => &["deletecollection"],
            ("DELETE", Some(_), _) => &["delete"],
            (method, _, _) => panic!("unexpected method {method}: {self:?}"),
        };
        let resource = match subresource {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_owned(),
        };
        verbs
            .iter()
            .map(|verb| (group.to_owned(), resource.clone(), (*verb).to_owned()))
            .collect()
    }
}

// --- the chart's rules ------------------------------------------------------

#[derive(Debug, Deserialize)]
struct RbacDoc {
    #[serde(default)]
    metadata: Option<RbacMeta>,
    #[serde(default)]
    rules: Option<Vec<Rule>>,
}

#[derive(Debug, Deserialize)]
struct RbacMeta {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    api_groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
}

/// The template as YAML: lines that are only template actions go (both
/// branches of an `if` stay, which can only grant more), and actions inside
/// a line become `X`.
fn untemplated(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("{{") && trimmed.ends_with("}}") && !trimmed[2..].contains("{{") {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            out.push('X');
            rest = rest[start..]
                .find("}}")
                .map_or("", |end| &rest[start + end + 2..]);
        }
        out.push_str(rest);
        out.push('\n');
    }
    out
}

/// The operator's role and the leader-election Role, as permissions.
fn chart_roles() -> (BTreeSet<Permission>, BTreeSet<Permission>) {
    let path = format!("{}/../{RBAC}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let docs: Vec<Option<RbacDoc>> = serde_saphyr::from_multiple(&untemplated(&text))
        .unwrap_or_else(|e| panic!("{RBAC} (untemplated): {e}"));
    let (mut main, mut leader) = (BTreeSet::new(), BTreeSet::new());
    for doc in docs.into_iter().flatten() {
        let Some(rules) = doc.rules else { continue };
        let name = doc.metadata.and_then(|m| m.name).unwrap_or_default();
        let role = if name.ends_with("-leader-election") {
            &mut leader
        } else {
            &mut main
        };
        for rule in rules {
            for group in &rule.api_groups {
                for resource in &rule.resources {
                    for verb in &rule.verbs {
                        assert_ne!(verb, "*", "{RBAC}: no wildcard verbs");
                        assert_ne!(resource, "*", "{RBAC}: no wildcard resources");
                        role.insert((group.clone(), resource.clone(), verb.clone()));
                    }
                }
            }
        }
    }
    assert!(!main.is_empty(), "{RBAC}: no operator role found");
    (main, leader)
}

// --- the operator's calls ---------------------------------------------------

fn initialized(mut mec: MatchEngineCluster) -> MatchEngineCluster {
    mec.status = Some(MatchEngineClusterStatus {
        initialized: true,
        ..MatchEngineClusterStatus::default()
    });
    mec
}

async fn run<F: AdminFactory>(
    mecs: Vec<MatchEngineCluster>,
    world: World,
    admin: F,
) -> Vec<ApiCall> {
    let (_, calls) = reconcile_all(mecs, world, admin).await;
    calls.iter().map(ApiCall::from_fixture).collect()
}

/// Reconciles through every kind of Kubernetes call a reconcile makes.
async fn reconcile_calls() -> Vec<ApiCall> {
    let mut calls = Vec::new();
    // A new resource gets the finalizer; a new cluster its objects.
    calls.extend(
        run(
            vec![cluster(3)],
            World::default(),
            Arc::<FakeAdmin>::default(),
        )
        .await,
    );
    let mec = finalized(cluster(3));
    calls.extend(
        run(
            vec![mec.clone()],
            World::default(),
            Arc::<FakeAdmin>::default(),
        )
        .await,
    );
    // Bootstrap (an Event), then a scale-up (the StatefulSet resized).
    let admin = Arc::new(FakeAdmin::with(statuses(&Model::new(3))));
    calls.extend(run(vec![mec.clone()], existing(1, &mec), admin).await);
    let grow = initialized(finalized(cluster(5)));
    let admin = Arc::new(FakeAdmin::with(statuses(&Model::steady(3))));
    calls.extend(run(vec![grow.clone()], existing(3, &grow), admin).await);
    // A rolling upgrade deletes an outdated pod.
    let upgrade = initialized(mec.clone());
    let mut world = existing(3, &upgrade);
    for pod in &mut world.pods {
        if let Some(annotations) = pod.metadata.annotations.as_mut() {
            annotations.insert(CONFIG_HASH_ANNOTATION.to_owned(), "outdated".to_owned());
        }
    }
    let admin = Arc::new(FakeAdmin::with(statuses(&Model::steady(3))));
    let upgrade_calls = run(vec![upgrade], world, admin).await;
    assert!(
        upgrade_calls
            .iter()
            .any(|c| c.method == "DELETE" && c.path().contains("/pods/")),
        "the upgrade scenario restarts a pod: {upgrade_calls:?}"
    );
    calls.extend(upgrade_calls);
    // The same refusal twice: the second Event is a patch of the first.
    let shrink = initialized(finalized(cluster(1)));
    let mut model = Model::steady(3);
    model.node_mut(2).up = false;
    model.node_mut(3).up = false;
    let admin = Arc::new(FakeAdmin::with(statuses(&model)));
    calls.extend(
        run(
            vec![shrink.clone(), shrink.clone()],
            existing(3, &shrink),
            admin,
        )
        .await,
    );
    // A TLS cluster the operator has no certificate for.
    let mut tls = initialized(mec.clone());
    tls.spec.tls = Some(TlsSpec {
        secret_name: "books-tls".into(),
    });
    let factory = KubeAdminFactory {
        admin_port: 7002,
        timeouts: AdminTimeouts::default(),
        channels: Default::default(),
        credentials: AdminCredentialFiles::default(),
    };
    calls.extend(run(vec![tls.clone()], existing(3, &tls), factory).await);
    // Deletion.
    let mut gone = mec;
    gone.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));
    calls.extend(run(vec![gone], World::default(), Arc::<FakeAdmin>::default()).await);
    calls
}

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// The controller as `main` runs it, until it has started both watches.
async fn controller_calls(namespace: Option<&'static str>) -> Vec<ApiCall> {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let (watching, watched) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let mut calls = Vec::new();
        let mut held = Vec::new();
        let mut watching = Some(watching);
        while let Some((request, send)) = handle.next_request().await {
            let call = ApiCall::of(&request);
            if call.is_watch() {
                // Left open, as a quiet API server would.
                held.push(send);
                if held.len() == 2
                    && let Some(tx) = watching.take()
                {
                    let _ = tx.send(());
                }
            } else {
                let list = json!({"apiVersion": "v1", "kind": "List",
                    "metadata": {"resourceVersion": "1"}, "items": []});
                send.send_response(respond(StatusCode::OK, &list));
            }
            calls.push(call);
        }
        calls
    });
    let client = Client::new(service, "default");
    let ctx = Arc::new(Context {
        client: client.clone(),
        metrics: Arc::new(Metrics::new()),
        recorder: Recorder::new(client, "matchengine-operator".into()),
        admin: Arc::<FakeAdmin>::default(),
        cluster_domain: "cluster.local".into(),
        requeue: Requeue {
            active: Duration::from_secs(5),
            idle: Duration::from_secs(60),
        },
    });
    let stop = async move {
        let _ = watched.await;
    };
    tokio::time::timeout(Duration::from_secs(30), super::run(ctx, namespace, stop))
        .await
        .expect("the controller stops once both watches started");
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("every client is gone")
        .unwrap()
}

/// Takes, renews and releases the Lease against a fake that keeps it.
async fn lease_calls() -> Vec<ApiCall> {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let server = tokio::spawn(async move {
        let mut calls = Vec::new();
        let mut lease: Option<Value> = None;
        while let Some((request, send)) = handle.next_request().await {
            let call = ApiCall::of(&request);
            let method = call.method.clone();
            let bytes = request.into_body().collect_bytes().await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let response = match (method.as_str(), &lease) {
                ("GET", Some(current)) => respond(StatusCode::OK, current),
                ("GET", None) => respond(
                    StatusCode::NOT_FOUND,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure", "reason": "NotFound", "code": 404}),
                ),
                _ => {
                    let mut stored = body;
                    stored["metadata"]["resourceVersion"] = json!("7");
                    lease = Some(stored.clone());
                    respond(StatusCode::OK, &stored)
                }
            };
            send.send_response(response);
            calls.push(call);
        }
        calls
    });
    let client = Client::new(service, "ops");
    let lock = LeaseLock::new(
        Api::<Lease>::namespaced(client, "ops"),
        "matchengine-operator".into(),
        "me".into(),
        Duration::from_secs(15),
    );
    assert!(lock.try_acquire_or_renew().await.unwrap(), "created");
    assert!(lock.try_acquire_or_renew().await.unwrap(), "renewed");
    lock.release().await.unwrap();
    drop(lock);
    server.await.unwrap()
}

fn lease_resource() -> (String, String) {
    (
        Lease::group(&()).into_owned(),
        Lease::plural(&()).into_owned(),
    )
}

#[tokio::test]
async fn rbac_allows_every_call_and_grants_nothing_unused() {
    let (main_role, leader_role) = chart_roles();
    let mut calls = reconcile_calls().await;
    calls.extend(controller_calls(None).await);
    calls.extend(controller_calls(Some("trading")).await);
    let lease = lease_resource();
    let (mut used_main, mut used_leader) = (BTreeSet::new(), BTreeSet::new());
    for call in &calls {
        used_main.extend(call.permissions());
    }
    for call in lease_calls().await {
        used_leader.extend(call.permissions());
    }
    assert!(
        used_main
            .iter()
            .all(|(g, r, _)| (g, r) != (&lease.0, &lease.1)),
        "only the leader election touches Leases"
    );
    let missing: Vec<_> = used_main.difference(&main_role).collect();
    assert!(
        missing.is_empty(),
        "{RBAC}: the operator's role lacks {missing:?} (used by the operator)"
    );
    let missing: Vec<_> = used_leader.difference(&leader_role).collect();
    assert!(
        missing.is_empty(),
        "{RBAC}: the leader-election Role lacks {missing:?}"
    );
    let unused: Vec<_> = main_role.difference(&used_main).collect();
    assert!(
        unused.is_empty(),
        "{RBAC}: the operator's role grants {unused:?}, which no call uses (least privilege)"
    );
    let unused: Vec<_> = leader_role.difference(&used_leader).collect();
    assert!(
        unused.is_empty(),
        "{RBAC}: the leader-election Role grants {unused:?}, which no call uses"
    );
}

#[test]
fn requests_map_to_rbac_verbs() {
    let call = |method: &str, path: &str, content_type: &str| ApiCall {
        method: method.into(),
        path_and_query: path.into(),
        content_type: content_type.into(),
    };
    let p = |g: &str, r: &str, v: &str| (g.to_owned(), r.to_owned(), v.to_owned());
    assert_eq!(
        call("GET", "/apis/apps/v1/namespaces/t/statefulsets/books", "").permissions(),
        [p("apps", "statefulsets", "get")]
    );
    assert_eq!(
        call("GET", "/api/v1/namespaces/t/pods?&labelSelector=a%3Db", "").permissions(),
        [p("", "pods", "list")]
    );
    assert_eq!(
        call(
            "GET",
            "/apis/apps/v1/statefulsets?&watch=true&timeoutSeconds=290",
            ""
        )
        .permissions(),
        [p("apps", "statefulsets", "watch")]
    );
    assert_eq!(
        call(
            "PATCH",
            "/api/v1/namespaces/t/services/books?&force=true",
            APPLY_PATCH
        )
        .permissions(),
        [p("", "services", "patch"), p("", "services", "create")]
    );
    assert_eq!(
        call(
            "PATCH",
            "/apis/matchengine.io/v1alpha1/namespaces/t/matchengineclusters/books/status?",
            APPLY_PATCH
        )
        .permissions(),
        [p("matchengine.io", "matchengineclusters/status", "patch")]
    );
    assert_eq!(
        call("DELETE", "/api/v1/namespaces/t/pods/books-2", "").permissions(),
        [p("", "pods", "delete")]
    );
    assert_eq!(
        call(
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/o/leases/l",
            ""
        )
        .permissions(),
        [p("coordination.k8s.io", "leases", "update")]
    );
}

#[test]
fn template_actions_are_stripped() {
    let yaml = untemplated(
        "{{- if .Values.rbac.create }}\nkind: {{ if $n }}Role{{ else }}ClusterRole{{ end }}\n  name: {{ $f }}-leader-election\n    {{- include \"x\" . | nindent 4 }}\n",
    );
    assert_eq!(
        yaml,
        "kind: XRoleXClusterRoleX\n  name: X-leader-election\n"
    );
}
