//! A TCP proxy in front of every node's Raft port, to cut, delay and heal
//! links between chosen nodes. Node `i` sends its Raft traffic from the
//! loopback address 127.0.0.(10 + i) (`--raft-source-ip`), so the proxy in
//! front of node `j` knows which node every connection comes from and can
//! refuse or drop the links of a partition, in either direction.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The loopback address node `id` sends Raft traffic from.
pub fn source_ip(id: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8))
}

fn node_of(ip: IpAddr) -> Option<u64> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 0] && v4.octets()[3] > 10 => {
            Some(u64::from(v4.octets()[3]) - 10)
        }
        _ => None,
    }
}

#[derive(Default)]
struct Rules {
    /// (from, to): connections from node `from` to node `to` are refused.
    blocked: BTreeSet<(u64, u64)>,
    delay: Duration,
    links: Vec<(u64, u64, AbortHandle)>,
}

/// The proxies of one cluster.
#[derive(Clone, Default)]
pub struct Network {
    rules: Arc<Mutex<Rules>>,
}

impl Network {
    fn rules(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves `listen` for node `to`, forwarding to its real Raft port.
    pub fn front(&self, to: u64, listen: std::net::TcpListener, target: SocketAddr) {
        listen.set_nonblocking(true).expect("nonblocking listener");
        let listener = TcpListener::from_std(listen).expect("tokio listener");
        let network = self.clone();
        tokio::spawn(async move {
            while let Ok((inbound, peer)) = listener.accept().await {
                let Some(from) = node_of(peer.ip()) else {
                    continue;
                };
                if network.rules().blocked.contains(&(from, to)) {
                    continue; // Dropped: the connection closes at once.
                }
                let network2 = network.clone();
                let link = tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    let there = pump(in_read, out_write, network2.clone());
                    let back = pump(out_read, in_write, network2);
                    tokio::select! {
                        _ = there => {}
                        _ = back => {}
                    }
                });
                let mut rules = network.rules();
                rules.links.retain(|(_, _, handle)| !handle.is_finished());
                rules.links.push((from, to, link.abort_handle()));
            }
        });
    }

    /// Cuts the links between every node of `a` and every node of `b`, in
    /// both directions, including connections already open.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        let mut rules = self.rules();
        for &x in a {
            for &y in b {
                rules.blocked.insert((x, y));
                rules.blocked.insert((y, x));
            }
        }
        let blocked = rules.blocked.clone();
        rules.links.retain(|(from, to, handle)| {
            let cut = blocked.contains(&(*from, *to));
            if cut {
                handle.abort();
            }
            !cut
        });
    }

    /// Delays every chunk of Raft traffic by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        self.rules().delay = delay;
    }

    /// Every link works again, without delay.
    pub fn heal(&self) {
        let mut rules = self.rules();
        rules.blocked.clear();
        rules.delay = Duration::ZERO;
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    network: Network,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = network.rules().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
