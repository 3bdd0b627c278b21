//! Making started nodes one cluster through the admin API: wait until
//! each answers, make the first the cluster's only member, add the others
//! as learners, then promote them all. Every step repeats until it
//! succeeds or the deadline passes.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use matchengine_client::{AdminClient, pb};
use tokio::time::Instant;

use super::LaunchError;

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(25);

/// Calls `check` until it returns `Some`, or fails once `deadline` passes.
pub async fn wait_for<T, Fut>(
    what: &str,
    deadline: Instant,
    mut check: impl FnMut() -> Fut,
) -> Result<T, LaunchError>
where
    Fut: Future<Output = Option<T>>,
{
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(LaunchError::Timeout {
                what: what.to_string(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the node at `admin_addr` answers Status. Fails early, with
/// the end of its log, if `child` exits first.
pub async fn wait_until_answers(
    admin: &AdminClient,
    id: u64,
    admin_addr: &str,
    mut child: Option<&mut Child>,
    log: &Path,
    deadline: Instant,
) -> Result<(), LaunchError> {
    loop {
        if admin.status(admin_addr).await.is_ok() {
            return Ok(());
        }
        if let Some(child) = child.as_deref_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(LaunchError::Exited {
                id,
                status: status.to_string(),
                log_tail: log_tail(log),
            });
        }
        if Instant::now() >= deadline {
            return Err(LaunchError::Timeout {
                what: format!("node {id}'s admin API at {admin_addr}"),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The last lines of a node's log, for an error message.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Whether any of `admin_addrs` already belongs to a cluster (a restart
/// rather than a first start).
pub async fn is_initialized(admin: &AdminClient, admin_addrs: &[String]) -> bool {
    for addr in admin_addrs {
        if let Ok(status) = admin.status(addr).await
            && status.initialized
        {
            return true;
        }
    }
    false
}

/// Makes the node at `first_admin` a cluster of one, then adds `others`
/// as learners (each caught up before the next) and promotes them to
/// voters.
///
/// An election while this runs can leave a membership change's outcome
/// unknown, which the client library does not repeat by itself. Adding
/// the same learner or promoting the same voters again changes nothing,
/// so each step is repeated until it succeeds.
pub async fn bootstrap(
    admin: &AdminClient,
    first_admin: &str,
    others: &[pb::NodeRecord],
    deadline: Instant,
) -> Result<(), LaunchError> {
    admin
        .initialize(first_admin, vec![])
        .await
        .map_err(|source| LaunchError::Admin {
            what: format!("initialize the cluster at {first_admin}"),
            source,
        })?;
    for record in others {
        wait_for(
            &format!("node {} added as a learner", record.node_id),
            deadline,
            || async { admin.add_learner(record.clone(), true).await.ok() },
        )
        .await?;
    }
    if !others.is_empty() {
        let voters: Vec<u64> = others.iter().map(|record| record.node_id).collect();
        wait_for("the learners promoted to voters", deadline, || async {
            admin.change_membership(voters.clone(), vec![]).await.ok()
        })
        .await?;
    }
    Ok(())
}

/// The leader every node in `admin_addrs` that answers agrees on.
pub async fn agreed_leader(
    admin: &AdminClient,
    admin_addrs: &[String],
    deadline: Instant,
) -> Result<u64, LaunchError> {
    wait_for("a leader every node agrees on", deadline, || async {
        let mut leaders = std::collections::BTreeSet::new();
        for addr in admin_addrs {
            leaders.insert(admin.status(addr).await.ok()?.leader_id);
        }
        let leader = leaders.pop_first()?;
        (leaders.is_empty() && leader != 0).then_some(leader)
    })
    .await
}
