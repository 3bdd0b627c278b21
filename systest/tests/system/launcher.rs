//! `mectl cluster up|down|status`, the launcher `scripts/cluster` and the
//! benchmarks use, run as a user runs it: a detached cluster that outlives
//! the command, restarted on its data, stopped by PID.

use std::path::Path;
use std::process::{Command, Output};

use matchengine_client::{AdminClient, Client, ConnectOptions, Token, pb};
use matchengine_mectl::cluster::LocalCluster;
use matchengine_mectl::procfs::ProcStat;
use matchengine_systest::{free_base_port, has_order, instrument_spec, limit, mectl_bin, node_bin};

fn mectl(args: &[&str]) -> Output {
    Command::new(mectl_bin())
        .args(args)
        .env("MATCHENGINE_NODE_BIN", node_bin())
        .env_remove("MATCHENGINE_ADMIN_TOKEN_FILE")
        .output()
        .expect("run mectl")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn running_pids(root: &Path) -> Vec<u32> {
    LocalCluster::load(root)
        .expect("readable record")
        .expect("a cluster record")
        .nodes
        .iter()
        .filter_map(|node| node.process.filter(|p| p.is_running()).map(|p| p.pid))
        .collect()
}

/// Clients of the cluster `up` made, with the admin token it made.
fn clients(root: &Path) -> (Client, AdminClient) {
    let cluster = LocalCluster::load(root)
        .expect("record")
        .expect("a cluster");
    let options = ConnectOptions {
        token: Some(Token::from_file(&root.join("admin-token")).expect("the token up made")),
        ..ConnectOptions::default()
    };
    (
        Client::connect(cluster.client_addrs(), options.clone()).expect("client"),
        cluster.admin_client(&options).expect("admin client"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mectl_cluster_up_restarts_on_its_data_and_down_stops_exactly_its_nodes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("cluster");
    let data = root.to_str().expect("utf-8 path");
    let base = free_base_port(3).to_string();
    // Stopped however the test ends.
    struct Down<'a>(&'a str);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = mectl(&["cluster", "down", "--data", self.0, "--grace", "5"]);
        }
    }
    let _down = Down(data);

    let up = mectl(&["cluster", "up", "--data", data, "--base-port", &base]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        text(&up).contains("bootstrapped a new cluster"),
        "{}",
        text(&up)
    );
    let pids = running_pids(&root);
    assert_eq!(pids.len(), 3, "three detached nodes outlive mectl");

    // A cluster that serves: one order, through the token up made.
    let (client, admin) = clients(&root);
    admin
        .add_instrument(instrument_spec(1, "BTC-USD"))
        .await
        .expect("add an instrument");
    client
        .place_order(limit(1, 7, 1, pb::Side::Buy, 100, 1))
        .await
        .expect("place");

    let status = mectl(&["cluster", "status", "--data", data]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("LEADER"), "{}", text(&status));
    assert!(
        text(&status).contains("voters [1,2,3]"),
        "{}",
        text(&status)
    );

    let again = mectl(&["cluster", "up", "--data", data]);
    assert!(
        !again.status.success(),
        "a second up while it runs is refused"
    );
    assert!(text(&again).contains("running already"), "{}", text(&again));

    let down = mectl(&["cluster", "down", "--data", data]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(
        text(&down).matches(": stopped").count(),
        3,
        "{}",
        text(&down)
    );
    for pid in pids {
        assert!(
            !ProcStat::of(pid).is_some_and(|stat| stat.is_alive()),
            "node process {pid} still runs after down"
        );
    }

    let restart = mectl(&["cluster", "up", "--data", data]);
    assert!(restart.status.success(), "{}", text(&restart));
    assert!(
        text(&restart).contains("restarted the cluster on its data"),
        "{}",
        text(&restart)
    );
    assert!(
        has_order(&client, 7, 1).await,
        "the order survived down and up"
    );
}
