//! etcd as a load target, for the side-by-side KV comparison in
//! `scripts/bench-cluster` (feature `etcd`). Requests go straight to the
//! etcd leader, as MatchEngine's client goes to its leader; reads are etcd's
//! default linearizable range reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use etcd_client::Client;

use crate::load::target::{LoadTarget, OpOutcome};
use crate::load::workload::Op;

#[derive(Clone)]
pub struct EtcdTarget {
    clients: Arc<Vec<Client>>,
    next: Arc<AtomicUsize>,
}

impl std::fmt::Debug for EtcdTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EtcdTarget({} connections)", self.clients.len())
    }
}

impl EtcdTarget {
    /// Finds the leader among `endpoints` and opens `connections` to it.
    pub async fn connect(endpoints: &[String], connections: usize) -> anyhow::Result<EtcdTarget> {
        let mut leader_endpoint = None;
        for endpoint in endpoints {
            let mut client = Client::connect([endpoint.as_str()], None).await?;
            let status = client.status().await?;
            let member = status.header().map_or(0, |h| h.member_id());
            if member != 0 && member == status.leader() {
                leader_endpoint = Some(endpoint.clone());
                break;
            }
        }
        let leader =
            leader_endpoint.ok_or_else(|| anyhow::anyhow!("no etcd leader among {endpoints:?}"))?;
        let mut clients = Vec::new();
        for _ in 0..connections.max(1) {
            clients.push(Client::connect([leader.as_str()], None).await?);
        }
        Ok(EtcdTarget {
            clients: Arc::new(clients),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    fn client(&self) -> Client {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.clients[n % self.clients.len()].clone()
    }
}

fn code(error: &etcd_client::Error) -> tonic::Code {
    match error {
        etcd_client::Error::GRpcStatus(status) => status.code(),
        _ => tonic::Code::Unavailable,
    }
}

impl LoadTarget for EtcdTarget {
    async fn execute(&self, op: Op) -> Result<OpOutcome, tonic::Code> {
        let mut client = self.client();
        let done = OpOutcome {
            commands: 1,
            ..OpOutcome::default()
        };
        match op {
            Op::KvPut { key, value } => client
                .put(key, value, None)
                .await
                .map(|_| done)
                .map_err(|e| code(&e)),
            Op::KvGet { key } => client
                .get(key, None)
                .await
                .map(|_| done)
                .map_err(|e| code(&e)),
            // Only the KV workloads have an etcd counterpart.
            _ => Err(tonic::Code::Unimplemented),
        }
    }
}
