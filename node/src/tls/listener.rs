//! Accepted connections for tonic's servers: plain TCP, or TLS with the
//! configuration current when the connection arrived (so a reloaded
//! certificate applies to new connections at once). Handshakes run on
//! their own tasks, bounded in time; a refused one is logged with the
//! caller's address and never reaches a service.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::server::Connected;

use super::{PortPolicy, TlsWatch};

/// A TLS handshake that takes longer is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const ACCEPTED_QUEUE: usize = 64;

/// One accepted connection.
#[derive(Debug)]
pub enum ServerStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// What handlers can learn of their caller (a request extension).
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub remote_addr: Option<SocketAddr>,
    /// The caller presented a certificate that chains to the CA.
    pub client_certificate: bool,
}

impl Connected for ServerStream {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        match self {
            ServerStream::Plain(tcp) => ConnectionInfo {
                remote_addr: tcp.peer_addr().ok(),
                client_certificate: false,
            },
            ServerStream::Tls(tls) => {
                let (tcp, session) = tls.get_ref();
                ConnectionInfo {
                    remote_addr: tcp.peer_addr().ok(),
                    client_certificate: session
                        .peer_certificates()
                        .is_some_and(|certs| !certs.is_empty()),
                }
            }
        }
    }
}

impl AsyncRead for ServerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ServerStream::Plain(s) => s.is_write_vectored(),
            ServerStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ServerStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The connections `listener` accepts, Nagle off; with `tls`, only those
/// whose handshake under `policy` succeeds. `port` names the port in logs.
pub fn incoming(
    listener: TcpListener,
    tls: Option<(TlsWatch, PortPolicy)>,
    port: &'static str,
) -> BoxStream<'static, io::Result<ServerStream>> {
    let Some((configs, policy)) = tls else {
        return TcpListenerStream::new(listener)
            .map(|stream| {
                stream.map(|tcp| {
                    let _ = tcp.set_nodelay(true);
                    ServerStream::Plain(tcp)
                })
            })
            .boxed();
    };
    let (accepted, queue) = mpsc::channel(ACCEPTED_QUEUE);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                // The server stopped taking connections.
                () = accepted.closed() => return,
                result = listener.accept() => match result {
                    Ok(connection) => connection,
                    Err(error) => {
                        // Out of file descriptors and the like: pause, go on.
                        tracing::warn!(port, %error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = TlsAcceptor::from(configs.current().server(policy));
            let accepted = accepted.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = accepted.send(Ok(ServerStream::Tls(Box::new(stream)))).await;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(port, %peer, %error, "refused a TLS connection");
                    }
                    Err(_) => {
                        tracing::warn!(port, %peer, "refused a TLS connection: handshake timed out");
                    }
                }
            });
        }
    });
    ReceiverStream::new(queue).boxed()
}
