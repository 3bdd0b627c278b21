//! TLS for the node's gRPC ports, from PEM files (the layout cert-manager
//! writes: `tls.crt`, `tls.key`, `ca.crt`), reloaded without a restart.
//!
//! One certificate serves every role: the node presents it on its client,
//! admin and Raft ports, and as a client when it connects to its peers.
//! The admin and Raft ports require the caller's certificate to chain to
//! the CA (mutual TLS); the client port accepts callers without one.

mod connector;
mod listener;
mod reload;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub use connector::PeerConnector;
pub use listener::{ConnectionInfo, ServerStream, incoming};
pub use reload::{TlsWatch, watch_files};

/// Where the node's certificate, key and CA bundle are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// Why TLS material could not be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not PEM of the expected kind: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("the CA bundle {path}: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error("the certificate {cert} with the key {key}: {reason}")]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// Which TLS policy a listening port applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortPolicy {
    /// Any caller may connect; a presented certificate must chain to the CA.
    ClientCertificateOptional,
    /// The caller must present a certificate chaining to the CA.
    ClientCertificateRequired,
}

/// Every rustls configuration the node uses, built from one reading of the
/// files.
#[derive(Debug)]
pub struct TlsConfigs {
    /// The client port.
    pub client_port: Arc<ServerConfig>,
    /// The admin and Raft ports.
    pub mutual: Arc<ServerConfig>,
    /// Connections to peers' Raft ports.
    pub peer: Arc<ClientConfig>,
}

impl TlsConfigs {
    pub fn server(&self, policy: PortPolicy) -> Arc<ServerConfig> {
        match policy {
            PortPolicy::ClientCertificateOptional => Arc::clone(&self.client_port),
            PortPolicy::ClientCertificateRequired => Arc::clone(&self.mutual),
        }
    }
}

/// The raw bytes of the three files; a reload rebuilds only when they
/// change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPem {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub ca: Vec<u8>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl TlsPem {
    pub fn read(files: &TlsFiles) -> Result<TlsPem, TlsError> {
        Ok(TlsPem {
            cert: read(&files.cert)?,
            key: read(&files.key)?,
            ca: read(&files.ca)?,
        })
    }
}

fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// HTTP/2 only: gRPC.
const ALPN_H2: &[u8] = b"h2";

impl TlsConfigs {
    /// Builds every configuration from the files' contents; `files` only
    /// names them in errors.
    pub fn build(pem: &TlsPem, files: &TlsFiles) -> Result<TlsConfigs, TlsError> {
        let chain = certificates(&pem.cert, &files.cert)?;
        let key = PrivateKeyDer::from_pem_slice(&pem.key).map_err(|e| TlsError::Pem {
            path: files.key.clone(),
            reason: e.to_string(),
        })?;
        let mut roots = RootCertStore::empty();
        for ca in certificates(&pem.ca, &files.ca)? {
            roots.add(ca).map_err(|e| TlsError::Ca {
                path: files.ca.clone(),
                reason: e.to_string(),
            })?;
        }
        let roots = Arc::new(roots);
        let identity_error = |e: rustls::Error| TlsError::Identity {
            cert: files.cert.clone(),
            key: files.key.clone(),
            reason: e.to_string(),
        };
        let ca_error = |reason: String| TlsError::Ca {
            path: files.ca.clone(),
            reason,
        };

        let server = |policy: PortPolicy| -> Result<Arc<ServerConfig>, TlsError> {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), provider());
            let verifier = match policy {
                PortPolicy::ClientCertificateOptional => verifier.allow_unauthenticated(),
                PortPolicy::ClientCertificateRequired => verifier,
            }
            .build()
            .map_err(|e| ca_error(e.to_string()))?;
            let mut config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(identity_error)?
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain.clone(), key.clone_key())
                .map_err(identity_error)?;
            config.alpn_protocols = vec![ALPN_H2.to_vec()];
            Ok(Arc::new(config))
        };
        let mut peer = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(identity_error)?
            .with_root_certificates(Arc::clone(&roots))
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(identity_error)?;
        peer.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(TlsConfigs {
            client_port: server(PortPolicy::ClientCertificateOptional)?,
            mutual: server(PortPolicy::ClientCertificateRequired)?,
            peer: Arc::new(peer),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
            ca: dir.path().join("ca.crt"),
        };
        let missing = TlsPem::read(&files).unwrap_err().to_string();
        assert!(missing.contains("tls.crt"), "{missing}");

        let pem = TlsPem {
            cert: b"not pem".to_vec(),
            key: b"not pem".to_vec(),
            ca: b"not pem".to_vec(),
        };
        let error = TlsConfigs::build(&pem, &files).unwrap_err().to_string();
        assert!(error.contains("tls.crt"), "{error}");
    }
}
