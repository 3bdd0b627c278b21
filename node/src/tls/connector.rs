//! Outgoing TLS connections to peers' Raft ports, for tonic's
//! `connect_with_connector_lazy`: TCP (from the configured source IP, Nagle
//! off), then a handshake with this node's certificate under the TLS
//! configuration current at connect time, verifying that the peer's
//! certificate chains to the CA and names the host being dialled.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::TlsWatch;

/// Dials the endpoint's `host:port` with hyper's TCP connector, then does
/// the TLS handshake.
#[derive(Clone, Debug)]
pub struct PeerConnector {
    tcp: HttpConnector,
    configs: TlsWatch,
}

impl PeerConnector {
    pub fn new(source_ip: Option<IpAddr>, configs: TlsWatch) -> PeerConnector {
        let mut tcp = HttpConnector::new();
        // The scheme is http (tonic adds no TLS of its own); TLS is ours.
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_local_address(source_ip);
        PeerConnector { tcp, configs }
    }
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TokioIo<TlsStream<TcpStream>>>> + Send>>;

impl tower::Service<http::Uri> for PeerConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tcp.poll_ready(cx).map_err(io::Error::other)
    }

    fn call(&mut self, uri: http::Uri) -> Connecting {
        let connector = TlsConnector::from(std::sync::Arc::clone(&self.configs.current().peer));
        let name = server_name(&uri);
        let connecting = self.tcp.call(uri);
        Box::pin(async move {
            let name = name?;
            let tcp = connecting.await.map_err(io::Error::other)?.into_inner();
            let tls = connector.connect(name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}

/// The name the peer's certificate must carry: the host dialled (an IPv6
/// literal without its brackets).
fn server_name(uri: &http::Uri) -> io::Result<ServerName<'static>> {
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} is not a TLS server name: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(uri: &str) -> String {
        match server_name(&uri.parse().unwrap()).unwrap() {
            ServerName::DnsName(dns) => dns.as_ref().to_string(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(ip).to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn the_server_name_is_the_host_dialled() {
        assert_eq!(name("http://me-0.me.ns.svc:7001"), "me-0.me.ns.svc");
        assert_eq!(name("http://127.0.0.1:7001"), "127.0.0.1");
        assert_eq!(name("http://[::1]:7001"), "::1");
    }
}
