//! Who may talk to a node, with real processes on loopback: mutual TLS on
//! the Raft and admin ports, TLS on the client port, certificate reload
//! without a restart, the admin token where TLS is off, and a node that
//! refuses to start with an open admin API unless told so. Refusals are
//! logged with the caller's address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use matchengine_client::{AdminClient, Client, ConnectOptions, RetryPolicy, Token, pb};
use matchengine_systest::pki::{Ca, Identity};
use matchengine_systest::{ProcessCluster, WAIT, has_order, limit};
use tokio::time::Instant;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn quick() -> RetryPolicy {
    RetryPolicy {
        deadline: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(1),
        backoff: Duration::from_millis(50),
    }
}

fn options(tls: Option<matchengine_client::TlsOptions>, token: Option<&str>) -> ConnectOptions {
    ConnectOptions {
        policy: quick(),
        tls,
        token: token.map(|t| Token(t.to_string())),
    }
}

async fn admin_status(addr: &str, options: ConnectOptions) -> Result<pb::StatusResponse, String> {
    AdminClient::connect(vec![addr.to_string()], options)
        .unwrap()
        .status(addr)
        .await
        .map_err(|e| e.to_string())
}

async fn place(addr: &str, options: ConnectOptions, n: u64) -> Result<(), String> {
    Client::connect(vec![addr.to_string()], options)
        .unwrap()
        .place_order(limit(1, 7, n, pb::Side::Buy, 100, 1))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Plaintext gRPC health on the health port: what Kubernetes probes use.
async fn plaintext_health(port: u16, service: &str) -> Option<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let response = HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(response.into_inner().status).ok()
}

fn log_of(cluster: &ProcessCluster, id: u64) -> String {
    std::fs::read_to_string(cluster.log_path(id)).unwrap_or_default()
}

/// Waits until node `id`'s log holds `needle`.
async fn wait_log(cluster: &ProcessCluster, id: u64, needle: &str) {
    let deadline = Instant::now() + WAIT;
    while !log_of(cluster, id).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "node {id} never logged {needle:?}:\n{}",
            log_of(cluster, id)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_cluster_serves_members_and_refuses_outsiders() {
    let mut cluster = ProcessCluster::new();
    let ca = Ca::new("matchengine test CA");
    let node = ca.issue("node", &cluster.root.join("pki/node"));
    let operator = ca.issue("operator", &cluster.root.join("pki/operator"));
    let rogue = Ca::new("someone else").issue("rogue", &cluster.root.join("pki/rogue"));
    cluster.env.extend(node.node_env());
    cluster
        .env
        .push(("MATCHENGINE_ADMIN_INSECURE".into(), "false".into()));
    cluster.connect.tls = Some(operator.client_tls(true));

    // Bootstrap and replication to learners go over mutual TLS.
    cluster.bootstrap(&[1, 2, 3]).await;
    cluster.add_instrument(1).await;
    let leader = cluster.leader().await;
    let client_addr = cluster.ports[&leader].client_addr();
    let admin_addr = cluster.ports[&leader].admin_addr();

    // The client port needs only the CA, no client certificate.
    place(
        &client_addr,
        options(Some(operator.client_tls(false)), None),
        1,
    )
    .await
    .unwrap();
    assert!(has_order(&cluster.client(), 7, 1).await);
    let digest = cluster.converged_digest().await;
    assert!(!digest.is_empty());

    // The admin port: a certificate from the cluster's CA, or nothing.
    admin_status(&admin_addr, options(Some(operator.client_tls(true)), None))
        .await
        .unwrap();
    let no_certificate =
        admin_status(&admin_addr, options(Some(operator.client_tls(false)), None)).await;
    assert!(no_certificate.is_err(), "admin call without a certificate");
    let wrong_ca = admin_status(&admin_addr, options(Some(rogue.client_tls(true)), None)).await;
    assert!(
        wrong_ca.is_err(),
        "admin call with another CA's certificate"
    );
    wait_log(&cluster, leader, "refused a TLS connection").await;
    let log = log_of(&cluster, leader);
    assert!(
        log.lines()
            .any(|l| l.contains("refused a TLS connection") && l.contains("port=\"admin\"")),
        "the refusal names the port:\n{log}"
    );

    // Plaintext to TLS ports gets nowhere; a client that does not trust the
    // cluster's CA is refused by its own check.
    assert!(
        admin_status(&admin_addr, options(None, None))
            .await
            .is_err()
    );
    assert!(place(&client_addr, options(None, None), 2).await.is_err());
    assert!(
        place(
            &client_addr,
            options(Some(rogue.client_tls(false)), None),
            3
        )
        .await
        .is_err()
    );
    // A Raft peer without the cluster's certificate cannot vote or append.
    let raft_port = cluster.ports[&leader].raft;
    let outsider = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{raft_port}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = outsider {
        let vote = matchengine_proto::v1::raft_client::RaftClient::new(channel)
            .vote(pb::VoteRequest::default())
            .await;
        assert!(vote.is_err(), "plaintext Raft RPC answered");
    }

    // Probes stay plaintext, on their own port.
    let health = cluster.ports[&leader].health;
    assert_eq!(
        plaintext_health(health, "").await,
        Some(ServingStatus::Serving)
    );
    assert_eq!(
        plaintext_health(health, "matchengine.v1.Client").await,
        Some(ServingStatus::Serving)
    );
    // Nothing an outsider tried changed the state.
    assert_eq!(cluster.converged_digest().await, digest);
}

/// Replaces the node's certificate, key and CA with ones from `ca`.
fn rotate(ca: &Ca, files: &Identity) {
    let staged = files.cert.parent().unwrap().join("staged");
    let fresh = ca.issue("node", &staged);
    std::fs::copy(&fresh.ca, &files.ca).unwrap();
    std::fs::copy(&fresh.key, &files.key).unwrap();
    std::fs::copy(&fresh.cert, &files.cert).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_without_a_restart() {
    let mut cluster = ProcessCluster::new();
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let node = old_ca.issue("node", &cluster.root.join("pki/node"));
    let old_admin = old_ca.issue("admin", &cluster.root.join("pki/old-admin"));
    let new_admin = new_ca.issue("admin", &cluster.root.join("pki/new-admin"));
    cluster.env.extend(node.node_env());
    cluster
        .env
        .push(("MATCHENGINE_TLS_RELOAD_INTERVAL_MS".into(), "200".into()));
    cluster
        .env
        .push(("MATCHENGINE_ADMIN_INSECURE".into(), "false".into()));
    cluster.connect.tls = Some(old_admin.client_tls(true));
    cluster.bootstrap(&[1]).await;
    let pid = cluster.pid(1);
    let admin_addr = cluster.ports[&1].admin_addr();
    admin_status(&admin_addr, options(Some(old_admin.client_tls(true)), None))
        .await
        .unwrap();

    rotate(&new_ca, &node);
    wait_log(&cluster, 1, "TLS certificate reloaded").await;
    // New connections get the new certificate and trust only the new CA.
    let deadline = Instant::now() + WAIT;
    while admin_status(&admin_addr, options(Some(new_admin.client_tls(true)), None))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the new CA never took effect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        admin_status(&admin_addr, options(Some(old_admin.client_tls(true)), None))
            .await
            .is_err(),
        "a certificate from the replaced CA still admitted"
    );
    assert_eq!(cluster.pid(1), pid, "the node restarted");

    // A broken file is reported and ignored: the loaded certificate stays.
    std::fs::write(&node.cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    wait_log(&cluster, 1, "new TLS files rejected").await;
    assert!(log_of(&cluster, 1).contains(&node.cert.display().to_string()));
    admin_status(&admin_addr, options(Some(new_admin.client_tls(true)), None))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_the_admin_api_requires_the_token() {
    let mut cluster = ProcessCluster::new();
    let token_file = cluster.root.join("admin-token");
    std::fs::write(&token_file, "correct-horse-battery\n").unwrap();
    cluster.env.push((
        "MATCHENGINE_ADMIN_TOKEN_FILE".into(),
        token_file.display().to_string(),
    ));
    cluster
        .env
        .push(("MATCHENGINE_ADMIN_INSECURE".into(), "false".into()));
    cluster.connect.token = Some(Token("correct-horse-battery".into()));
    cluster.bootstrap(&[1]).await;
    cluster.add_instrument(1).await;
    let admin_addr = cluster.ports[&1].admin_addr();

    admin_status(&admin_addr, options(None, Some("correct-horse-battery")))
        .await
        .unwrap();
    for token in [None, Some("wrong")] {
        let error = admin_status(&admin_addr, options(None, token))
            .await
            .unwrap_err();
        assert!(error.contains("Unauthenticated"), "{token:?}: {error}");
    }
    wait_log(&cluster, 1, "refused an admin call").await;
    assert!(log_of(&cluster, 1).contains("wrong token"));
    // The client API does not need the token.
    place(&cluster.ports[&1].client_addr(), options(None, None), 1)
        .await
        .unwrap();
}

#[test]
fn a_node_without_admin_protection_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(matchengine_systest::node_bin())
        .env("MATCHENGINE_NODE_ID", "1")
        .env("MATCHENGINE_DATA_DIR", dir.path())
        .env_remove("MATCHENGINE_ADMIN_INSECURE")
        .env_remove("MATCHENGINE_ADMIN_TOKEN_FILE")
        .env_remove("MATCHENGINE_TLS_CERT")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--admin-insecure"), "{stderr}");
    // Nothing was created: it stopped before touching the data directory.
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}
