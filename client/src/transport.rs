//! How the library and every other MatchEngine client (mectl, the
//! operator's admin client) reach a node: TLS from PEM, the bearer token
//! (by the node's own token-file rule), the interceptor that sends it, the
//! endpoint settings, and a cache of channels keyed by address and TLS
//! identity. One transport for every client, so that none of them dials,
//! authenticates or caches differently.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::ClientError;

/// A bearer token; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads a token file: one line, surrounding whitespace ignored.
    pub fn from_file(path: &std::path::Path) -> Result<Token, ClientError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Config(format!("reading {}: {e}", path.display())))?;
        matchengine_proto::bearer::token_from_file_text(&text)
            .map(|token| Token(token.to_string()))
            .ok_or_else(|| {
                ClientError::Config(format!(
                    "{} holds no token (or one with spaces or control characters)",
                    path.display()
                ))
            })
    }
}

/// TLS to the nodes, from PEM.
#[derive(Clone)]
pub struct TlsOptions {
    /// The CA bundle the nodes' certificates chain to.
    pub ca_pem: Vec<u8>,
    /// A certificate and key to present; the admin API requires one.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name the nodes' certificates carry, when it is not the host
    /// dialled.
    pub server_name: Option<String>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsOptions {
    /// Reads the CA bundle and, when both are given, a certificate and key.
    pub fn from_files(
        ca: &std::path::Path,
        identity: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<TlsOptions, ClientError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path)
                .map_err(|e| ClientError::Config(format!("reading {}: {e}", path.display())))
        };
        Ok(TlsOptions {
            ca_pem: read(ca)?,
            identity: match identity {
                Some((cert, key)) => Some((read(cert)?, read(key)?)),
                None => None,
            },
            server_name: None,
        })
    }

    /// Changes whenever a PEM's content does, so that a rotated identity
    /// gets new channels. Compared only within one process.
    pub fn digest(&self) -> u64 {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&self.ca_pem, &self.identity, &self.server_name).hash(&mut hasher);
        hasher.finish()
    }

    /// The channel's TLS settings. The node's certificate must name the
    /// host dialled (tonic takes it from the URI), or `server_name`.
    pub fn config(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        config
    }
}

/// Adds the token to every request.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    authorization: Option<tonic::metadata::AsciiMetadataValue>,
}

impl Credentials {
    /// Sends `token` (when given) on every call; an error when it holds
    /// characters a metadata value cannot carry.
    pub fn new(token: Option<&Token>) -> Result<Credentials, ClientError> {
        let authorization = token
            .map(|Token(token)| {
                let mut value: tonic::metadata::AsciiMetadataValue =
                    format!("{}{token}", matchengine_proto::bearer::PREFIX)
                        .parse()
                        .map_err(|_| {
                            ClientError::Config(
                                "the token has characters metadata cannot carry".into(),
                            )
                        })?;
                // Kept out of debug output and HPACK's dynamic table.
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        Ok(Credentials { authorization })
    }

    pub fn has_token(&self) -> bool {
        self.authorization.is_some()
    }

    /// A request for `message` carrying the token, if there is one.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        self.authorize(&mut request);
        request
    }

    fn authorize<T>(&self, request: &mut tonic::Request<T>) {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert(matchengine_proto::bearer::AUTHORIZATION, value.clone());
        }
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        self.authorize(&mut request);
        Ok(request)
    }
}

/// A connection to one node, carrying the credentials.
pub type Transport = InterceptedService<Channel, Credentials>;

/// The endpoint for a node at `addr` (`host:port`, with or without a
/// scheme): https when `tls` is given, with keep-alives and no Nagle.
pub fn endpoint(
    addr: &str,
    tls: Option<&TlsOptions>,
    connect_timeout: Duration,
) -> Result<Endpoint, ClientError> {
    let endpoint = plain_endpoint(addr, tls.is_some(), connect_timeout)
        .map_err(|e| ClientError::Config(format!("bad address {addr:?}: {e}")))?;
    match tls {
        Some(tls) => endpoint
            .tls_config(tls.config())
            .map_err(|e| ClientError::Config(format!("TLS for {addr}: {e}"))),
        None => Ok(endpoint),
    }
}

/// [`endpoint`] before its TLS settings: the scheme (https when `tls`), the
/// connect timeout, keep-alives and no Nagle. For callers that report a
/// bad address and a bad TLS configuration apart (the operator).
pub fn plain_endpoint(
    addr: &str,
    tls: bool,
    connect_timeout: Duration,
) -> Result<Endpoint, tonic::transport::Error> {
    let host_port = addr
        .strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))
        .unwrap_or(addr);
    let scheme = if tls { "https" } else { "http" };
    Ok(Endpoint::from_shared(format!("{scheme}://{host_port}"))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_while_idle(true))
}

/// What a cached channel is for: an address, and the TLS identity it was
/// built with (`None`: plaintext). A TLS and a plaintext channel to one
/// address never stand in for each other, and a rotated identity (a new
/// digest) gets a new channel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelKey {
    pub addr: String,
    pub tls_digest: Option<u64>,
}

/// Lazily connected channels, shared by every client made from it (tonic
/// reconnects, and re-resolves DNS, when a node comes back with a new IP).
#[derive(Clone, Debug, Default)]
pub struct ChannelCache {
    channels: Arc<Mutex<HashMap<ChannelKey, Channel>>>,
}

impl ChannelCache {
    /// The channel to `addr` with `tls`, made by `connect` the first time.
    /// One transport per address at a time: what another identity (or the
    /// other scheme) left behind is dropped, so that the cache does not
    /// grow with every certificate rotation.
    pub fn get_or_connect<E>(
        &self,
        addr: &str,
        tls: Option<&TlsOptions>,
        connect: impl FnOnce() -> Result<Channel, E>,
    ) -> Result<Channel, E> {
        let key = ChannelKey {
            addr: addr.to_string(),
            tls_digest: tls.map(TlsOptions::digest),
        };
        // A poisoned lock only means another call panicked mid-insert; the
        // map itself is still a valid cache.
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(&key) {
            return Ok(channel.clone());
        }
        let channel = connect()?;
        channels.retain(|k, _| k.addr != key.addr);
        channels.insert(key, channel.clone());
        Ok(channel)
    }

    /// The keys of the channels held (for tests and metrics).
    pub fn keys(&self) -> Vec<ChannelKey> {
        let channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node refuses to start on a token file with a space in it; the
    /// client must refuse the same file rather than send what no node takes.
    #[test]
    fn token_files_follow_the_nodes_rule() {
        let dir = std::env::temp_dir().join(format!("matchengine-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        assert_eq!(Token::from_file(&path).unwrap().0, "s3cret");
        for bad in ["", "two words", "tab\there"] {
            std::fs::write(&path, bad).unwrap();
            assert!(Token::from_file(&path).is_err(), "{bad:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
