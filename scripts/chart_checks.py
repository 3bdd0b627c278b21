"""The chart, CRD and example checks behind scripts/test-charts (which
makes the venv and passes the operator's contract).

Usage: chart_checks.py CONTRACT_JSON

CONTRACT_JSON is what `operator-contract` prints: the labels the operator
puts on node pods, read from the operator's own code rather than scraped
from its source. The dashboards' metric names are checked by Rust tests
against what the node and the operator register
(node/tests/in_process/dashboard_metrics.rs, operator/tests/dashboards.rs).
"""

import copy
import json
import sys
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

KUBE_VERSION = "1.33.0"
CHART = Path("charts/matchengine-operator")
CRD = Path("crds/matchengineclusters.yaml")
failures = []
passed = 0


def check(ok, what):
    global passed
    if ok:
        passed += 1
    else:
        failures.append(what)
        print(f"FAIL {what}")


NON_DEFAULT = {
    "replicaCount": 1,
    "watchNamespace": "trading",
    "clusterDomain": "k8s.example",
    "image": {"repository": "registry.example/matchengine-operator", "tag": "9.9.9",
              "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "registry"}],
    "serviceAccount": {"create": True, "name": "operator", "annotations": {"a": "b"}},
    "podAnnotations": {"example.com/x": "y"},
    "podLabels": {"team": "trading"},
    "priorityClassName": "system-cluster-critical",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
    "leaderElection": {"enabled": False, "leaseDurationSeconds": 30, "renewIntervalSeconds": 10},
    "logging": {"format": "text", "level": "debug"},
    "metrics": {"port": 9090, "service": {"type": "ClusterIP"}},
    "serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "prom"}},
    "podMonitor": {"enabled": True, "interval": "10s", "labels": {"release": "prom"}},
    "dashboards": {"enabled": True, "namespace": "monitoring",
                   "labels": {"grafana_dashboard": "1"}, "annotations": {"grafana_folder": "MatchEngine"}},
    "networkPolicy": {"enabled": True,
                      "metricsFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
                      "apiServerCIDRs": ["10.0.0.1/32"], "apiServerPorts": [443]},
    "adminTls": {"secretName": "operator-admin-tls"},
    "adminToken": {"secretName": "operator-admin-token", "key": "admin-token"},
    "nodeNetworkPolicy": {
        "enabled": True,
        "namespaces": ["trading", "books"],
        "clientFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}}}],
        "metricsFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
        "adminFrom": [{"podSelector": {"matchLabels": {"app": "toolbox"}}}],
    },
}
VALUE_SETS = {"default values": None, "non-default values": NON_DEFAULT}
# Rendered and validated too, for the node NetworkPolicy's namespaces.
EXTRA_VALUE_SETS = {
    "watchNamespace only": {"watchNamespace": "trading"},
    "node network policy disabled": {"nodeNetworkPolicy": {"enabled": False}},
}

# --- lint -------------------------------------------------------------------
for label, values in VALUE_SETS.items():
    report = helm.lint(str(CHART), values, strict=True, kube_version="v" + KUBE_VERSION)
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
    for m in problems:
        print(f"  lint ({label}): {m.get('path')}: {m.get('error')}")
    check(not problems and not report.get("errors"), f"helm lint --strict with {label}")

# --- render and validate --------------------------------------------------------
CRD_KINDS = {"ServiceMonitor", "PodMonitor"}


def structural(doc):
    spec = doc.get("spec", {})
    if doc["kind"] == "ServiceMonitor":
        return bool(spec.get("selector")) and all("port" in e for e in spec.get("endpoints", [None]) if e)
    return bool(spec.get("selector")) and all("port" in e for e in spec.get("podMetricsEndpoints", [None]) if e)


def validate_docs(docs, source):
    kinds = []
    for doc in docs:
        kinds.append(doc["kind"])
        name = f"{source}: {doc['kind']}/{doc.get('metadata', {}).get('name')}"
        if doc["kind"] in CRD_KINDS:
            print(f"  note: {name} is a Prometheus Operator kind, not in the Kubernetes "
                  f"{KUBE_VERSION} schemas: structural check only")
            check(doc["apiVersion"] == "monitoring.coreos.com/v1" and structural(doc), name)
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            check(True, name)
        except Exception as e:  # ValidationError, SchemaNotFoundError, ...
            print(f"  {name}: {getattr(e, 'message', e)}")
            check(False, name)
        if doc["kind"] == "ConfigMap" and "grafana_dashboard" in doc["metadata"].get("labels", {}):
            for key, text in doc["data"].items():
                try:
                    json.loads(text)
                    check(True, f"{name}: {key} is JSON")
                except ValueError as e:
                    check(False, f"{name}: {key} is not JSON: {e}")
    return kinds


RELEASE_NAMESPACE = "matchengine-system"
# The labels the operator puts on node pods, which the chart selects node
# pods by (from `operator-contract`, given as the first argument).
contract = json.loads(Path(sys.argv[1]).read_text())
operator_pod_labels = contract["node_pod_labels"]
check(operator_pod_labels.get("app.kubernetes.io/component") == "node",
      "the operator contract gives the node pod labels")


def port_rules(policy):
    """port -> list of peers (None: from anywhere)."""
    ports = {}
    for rule in policy["spec"].get("ingress", []):
        for port in rule.get("ports", []):
            check(port.get("protocol") == "TCP", f"{policy['metadata']['name']}: port {port} is TCP")
            ports.setdefault(port["port"], []).append(rule.get("from"))
    return ports


def check_node_policy(docs, label, values):
    values = values or {}
    settings = values.get("nodeNetworkPolicy", {})
    policies = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-nodes")]
    if settings.get("enabled", True) is False:
        check(not policies, f"{label}: no node NetworkPolicy when disabled")
        return
    namespaces = settings.get("namespaces") or [values.get("watchNamespace") or RELEASE_NAMESPACE]
    check(sorted(p["metadata"]["namespace"] for p in policies) == sorted(namespaces),
          f"{label}: one node NetworkPolicy in each of {namespaces}")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    operator_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for policy in policies:
        name = f"{label}: NetworkPolicy {policy['metadata']['namespace']}/{policy['metadata']['name']}"
        spec = policy["spec"]
        node_labels = spec["podSelector"]["matchLabels"]
        check(node_labels and all(operator_pod_labels.get(k) == v for k, v in node_labels.items()),
              f"{name} selects the labels the operator puts on node pods")
        check(spec["policyTypes"] == ["Ingress"], f"{name} restricts ingress only")
        ports = port_rules(policy)
        check(set(ports) == {7000, 7001, 7002, 7003, 9100}, f"{name} admits exactly the node's ports")
        node_peer = {"podSelector": {"matchLabels": node_labels}}
        # Raft: node pods of the namespace only.
        check(ports.get(7001) == [[node_peer]], f"{name}: Raft only from node pods")
        # Admin: node pods, the operator's pods in its namespace, adminFrom.
        admin = [peer for peers in ports.get(7002, []) for peer in (peers or [None])]
        check(None not in admin, f"{name}: admin never from anywhere")
        operator_peers = [p for p in admin if p and "namespaceSelector" in p]
        check(len(operator_peers) == 1
              and operator_peers[0]["namespaceSelector"]["matchLabels"] == {
                  "kubernetes.io/metadata.name": RELEASE_NAMESPACE}
              and operator_peers[0]["podSelector"]["matchLabels"].items() <= operator_labels.items(),
              f"{name}: admin from the operator's pods (its namespace and labels)")
        expected_admin = [node_peer, *operator_peers, *settings.get("adminFrom", [])]
        check(admin == expected_admin, f"{name}: admin only from node pods, the operator and adminFrom")
        for port, key in [(7000, "clientFrom"), (9100, "metricsFrom")]:
            check(ports.get(port) == [settings.get(key) or None], f"{name}: port {port} from {key} or anywhere")
        check(ports.get(7003) == [None], f"{name}: health from anywhere (the kubelet)")


def check_admin_credentials(docs, label, values):
    values = values or {}
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    tls = values.get("adminTls", {}).get("secretName")
    token = values.get("adminToken", {}).get("secretName")
    if tls:
        check(volumes.get("admin-tls", {}).get("secret", {}).get("secretName") == tls
              and mounts.get("admin-tls", {}).get("readOnly") is True,
              f"{label}: adminTls Secret mounted read-only")
        mount = mounts["admin-tls"]["mountPath"]
        check(all(env.get(f"MATCHENGINE_OPERATOR_ADMIN_TLS_{k}") == f"{mount}/{f}"
                  for k, f in [("CERT", "tls.crt"), ("KEY", "tls.key"), ("CA", "ca.crt")]),
              f"{label}: MATCHENGINE_OPERATOR_ADMIN_TLS_* point into the mount")
    else:
        check("admin-tls" not in volumes and not any(k.startswith("MATCHENGINE_OPERATOR_ADMIN_TLS") for k in env),
              f"{label}: no admin TLS without adminTls.secretName")
    if token:
        secret = volumes.get("admin-token", {}).get("secret", {})
        check(secret.get("secretName") == token and mounts.get("admin-token", {}).get("readOnly") is True
              and env.get("MATCHENGINE_OPERATOR_ADMIN_TOKEN_FILE")
              == f"{mounts['admin-token']['mountPath']}/{secret['items'][0]['path']}",
              f"{label}: adminToken Secret mounted read-only, its file in MATCHENGINE_OPERATOR_ADMIN_TOKEN_FILE")
    else:
        check("MATCHENGINE_OPERATOR_ADMIN_TOKEN_FILE" not in env, f"{label}: no token file without adminToken")


with helm.Chart.load(str(CHART)) as chart:
    for label, values in {**VALUE_SETS, **EXTRA_VALUE_SETS}.items():
        try:
            rendered = chart.render(values, name="matchengine", namespace=RELEASE_NAMESPACE,
                                    is_install=True)
        except helm.HelmError as e:
            check(False, f"render with {label}: {e}")
            continue
        docs = [d for path, text in sorted(rendered.items()) if path.endswith((".yaml", ".yml"))
                for d in yaml.safe_load_all(text) if d]
        kinds = validate_docs(docs, f"render ({label})")
        print(f"  rendered with {label}: {', '.join(sorted(kinds))}")
        check_node_policy(docs, label, values)
        check_admin_credentials(docs, label, values)
        if label not in VALUE_SETS:
            continue
        expected = {"Deployment", "Service", "ServiceAccount", "NetworkPolicy"}
        expected |= {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} if values is None \
            else {"Role", "RoleBinding", "ServiceMonitor", "PodMonitor", "ConfigMap"}
        check(expected <= set(kinds), f"render with {label} has {sorted(expected)}")
    chart_crds = chart.crds
    check(len(chart_crds) == 1, "the chart ships one CRD")

# --- the CRD ----------------------------------------------------------------------
crd = yaml.safe_load(CRD.read_text())
chart_crd = yaml.safe_load((CHART / "crds" / CRD.name).read_text())
check(crd == chart_crd, "charts/matchengine-operator/crds holds crds/matchengineclusters.yaml")
validate_docs([crd], "crds/")
version = crd["spec"]["versions"][0]
schema = version["schema"]["openAPIV3Schema"]

# --- the examples ------------------------------------------------------------------
# MatchEngineClusters against the CRD schema; other Kubernetes kinds against
# the Kubernetes schemas; cert-manager kinds (no schema offline) structurally.
validator = jsonschema.Draft7Validator(schema)
examples = sorted(Path("examples").glob("*.yaml"))
CERT_MANAGER = "cert-manager.io/v1"
CERT_MANAGER_KINDS = {"Issuer", "ClusterIssuer", "Certificate"}
mec_api_version = f"{crd['spec']['group']}/{version['name']}"
clusters, certificates = [], []
for path in examples:
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        name = f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc.get("apiVersion") == CERT_MANAGER:
            print(f"  note: {name} is a cert-manager kind, not in the Kubernetes "
                  f"{KUBE_VERSION} schemas: structural check only")
            spec = doc.get("spec") or {}
            ok = doc.get("kind") in CERT_MANAGER_KINDS and bool(doc["metadata"].get("name"))
            if doc["kind"] == "Certificate":
                ok = ok and bool(spec.get("secretName")) and bool(spec.get("issuerRef", {}).get("name")) \
                    and bool(doc["metadata"].get("namespace"))
                certificates.append(doc)
            else:
                ok = ok and len({"selfSigned", "ca", "acme", "vault"} & set(spec)) == 1
            check(ok, f"{name} is a well-formed cert-manager {doc.get('kind')}")
            continue
        if doc.get("kind") != crd["spec"]["names"]["kind"]:
            validate_docs([doc], str(path))
            continue
        clusters.append(doc)
        check(doc.get("apiVersion") == mec_api_version, f"{name}: apiVersion matches the CRD")
        errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
        for e in errors:
            print(f"  {path}: {e}")
        check(not errors, f"{name} validates against the CRD schema")
        # The schema must be able to say no.
        for mutate, what in [
            (lambda d: d["spec"].__setitem__("replicas", 4), "an even replica count"),
            (lambda d: d["spec"].pop("image"), "a missing image"),
            (lambda d: d["spec"].setdefault("storage", {}).__setitem__("reclaimPolicy", "Recycle"),
             "an unknown reclaim policy"),
            (lambda d: d["spec"].__setitem__("tls", {"secretName": ""}), "an empty TLS Secret name"),
        ]:
            bad = copy.deepcopy(doc)
            mutate(bad)
            check(not validator.is_valid(bad), f"{name} with {what} is rejected")
check(bool(clusters), "examples/ holds a MatchEngineCluster")

# A TLS cluster's Certificate (cert-manager) names every pod and the client
# Service, with both usages: nodes are servers and clients of each other.
for mec in clusters:
    tls = mec["spec"].get("tls")
    if not tls:
        continue
    cluster_name, ns = mec["metadata"]["name"], mec["metadata"].get("namespace", "default")
    cert = next((c for c in certificates if c["spec"]["secretName"] == tls["secretName"]
                 and c["metadata"]["namespace"] == ns), None)
    check(cert is not None, f"examples: a Certificate writes {ns}/{tls['secretName']} for {cluster_name}")
    if cert is None:
        continue
    names = set(cert["spec"].get("dnsNames", []))
    wanted = {f"*.{cluster_name}-headless.{ns}.svc", f"*.{cluster_name}-headless.{ns}.svc.cluster.local",
              cluster_name, f"{cluster_name}.{ns}.svc", f"{cluster_name}.{ns}.svc.cluster.local"}
    check(wanted <= names, f"examples: {cluster_name}'s Certificate names {sorted(wanted - names) or 'every pod and the Service'}")
    usages = set(cert["spec"].get("usages", []))
    check({"server auth", "client auth"} <= usages, f"examples: {cluster_name}'s Certificate has server and client auth")
operator_certs = [c for c in certificates if c["metadata"]["namespace"] == RELEASE_NAMESPACE]
check(any("client auth" in c["spec"].get("usages", []) for c in operator_certs) or not any(
    m["spec"].get("tls") for m in clusters), "examples: a client certificate for the operator")

print(f"{passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
