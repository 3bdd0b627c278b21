//! What the operator's admin calls carry: for a cluster with `spec.tls`, a
//! TLS client identity and the CA that signs the nodes' certificates (the
//! nodes' admin port requires a client certificate: mutual TLS); and, when
//! configured, a bearer token (`authorization: Bearer <token>`).
//!
//! Both are read from files each time a cluster's admin client is built
//! (once per reconcile), so a rotated certificate or token is picked up
//! without a restart. This module never decides whether a cluster uses
//! TLS: the caller says so, from the cluster's spec.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use matchengine_client::transport::{Credentials, TlsOptions, Token};

/// A token or PEM file larger than this is a misconfiguration (a CA bundle
/// is a few KiB); reading it whole would only waste memory.
const CREDENTIAL_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// The PEM files of the operator's client identity: the `--admin-tls-*`
/// flags, in the layout cert-manager writes (`tls.crt`, `tls.key`,
/// `ca.crt`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that signed the nodes' certificates.
    pub ca: PathBuf,
}

/// Where the operator's admin credentials are; nothing when unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdminCredentialFiles {
    pub tls: Option<ClientTlsFiles>,
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "the cluster has spec.tls but the operator has no admin client certificate: set \
         --admin-tls-cert, --admin-tls-key and --admin-tls-ca (MATCHENGINE_OPERATOR_ADMIN_TLS_CERT, \
         _KEY, _CA; in the Helm chart: adminTls.secretName) to a certificate signed by the \
         cluster's CA"
    )]
    NoClientCertificate,
    #[error("{flag} {path}: {source}")]
    Read {
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{flag} {path}: {problem}")]
    Invalid {
        flag: &'static str,
        path: PathBuf,
        problem: &'static str,
    },
    #[error("the admin token is not a valid header value (printable ASCII only)")]
    InvalidToken,
}

impl AuthError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::NoClientCertificate => "admin_no_client_certificate",
            AuthError::Read { .. } | AuthError::Invalid { .. } | AuthError::InvalidToken => {
                "admin_credentials"
            }
        }
    }
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, AuthError> {
    let error = |source| AuthError::Read {
        flag,
        path: path.to_owned(),
        source,
    };
    let bytes_len = std::fs::metadata(path).map_err(error)?.len();
    if bytes_len > CREDENTIAL_FILE_BYTES_MAX {
        return Err(AuthError::Invalid {
            flag,
            path: path.to_owned(),
            problem: "larger than 1 MiB",
        });
    }
    std::fs::read(path).map_err(error)
}

fn read_pem(flag: &'static str, path: &Path) -> Result<Vec<u8>, AuthError> {
    let bytes = read(flag, path)?;
    // tonic parses the PEM only when the channel is configured; checking
    // the armour here names the flag in the error instead.
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(AuthError::Invalid {
            flag,
            path: path.to_owned(),
            problem: "not a PEM file",
        });
    }
    Ok(bytes)
}

/// The operator's client identity and the CA to verify nodes with: the
/// client library's TLS options, read from the operator's files.
pub type ClientTls = TlsOptions;

/// Reads the operator's TLS files, naming the flag of a file that cannot be
/// used.
pub fn read_client_tls(files: &ClientTlsFiles) -> Result<ClientTls, AuthError> {
    Ok(client_tls_from_pem(
        read_pem("--admin-tls-ca", &files.ca)?,
        read_pem("--admin-tls-cert", &files.cert)?,
        read_pem("--admin-tls-key", &files.key)?,
    ))
}

/// Options with the operator's identity; the node's certificate must name
/// the host dialled.
pub fn client_tls_from_pem(ca_pem: Vec<u8>, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> ClientTls {
    TlsOptions {
        ca_pem,
        identity: Some((cert_pem, key_pem)),
        server_name: None,
    }
}

/// What one cluster's admin calls carry. The default is plaintext without
/// a token (a cluster without `spec.tls`, or a loopback test).
#[derive(Clone, Debug, Default)]
pub struct AdminAuth {
    tls: Option<Arc<ClientTls>>,
    credentials: Credentials,
}

impl AdminAuth {
    /// Reads the credentials a cluster needs: the TLS identity when the
    /// cluster uses TLS (an error when the operator has none), the token
    /// whenever one is configured.
    pub fn load(files: &AdminCredentialFiles, cluster_tls: bool) -> Result<Self, AuthError> {
        let mut auth = Self::default();
        if cluster_tls {
            let tls = files.tls.as_ref().ok_or(AuthError::NoClientCertificate)?;
            auth = auth.with_tls(read_client_tls(tls)?);
        }
        if let Some(path) = &files.token_file {
            let bytes = read("--admin-token-file", path)?;
            let text = String::from_utf8_lossy(&bytes);
            let token =
                matchengine_proto::bearer::token_from_file_text(&text).ok_or_else(|| {
                    AuthError::Invalid {
                        flag: "--admin-token-file",
                        path: path.clone(),
                        problem: "it holds no token (or one with spaces or control characters)",
                    }
                })?;
            auth = auth.with_bearer(token)?;
        }
        Ok(auth)
    }

    pub fn with_tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(Arc::new(tls));
        self
    }

    /// Sends `authorization: Bearer <token>` on every call.
    pub fn with_bearer(mut self, token: &str) -> Result<Self, AuthError> {
        self.credentials = Credentials::new(Some(&Token(token.to_string())))
            .map_err(|_| AuthError::InvalidToken)?;
        Ok(self)
    }

    pub fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_deref()
    }

    pub fn has_token(&self) -> bool {
        self.credentials.has_token()
    }

    /// A request carrying the token, if there is one.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        self.credentials.request(message)
    }
}

impl AdminCredentialFiles {
    /// Reads every configured file once, so that a wrong path or an empty
    /// token stops the operator at start-up with the flag's name.
    pub fn check(&self) -> Result<(), AuthError> {
        AdminAuth::load(self, self.tls.is_some()).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchengine_proto::bearer::AUTHORIZATION;

    fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "matchengine-operator-auth-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn tls_files(dir: &Path) -> ClientTlsFiles {
        ClientTlsFiles {
            cert: write(dir, "tls.crt", PEM),
            key: write(dir, "tls.key", PEM),
            ca: write(dir, "ca.crt", PEM),
        }
    }

    #[test]
    fn a_tls_cluster_needs_the_operators_certificate() {
        let error = AdminAuth::load(&AdminCredentialFiles::default(), true).unwrap_err();
        assert!(matches!(error, AuthError::NoClientCertificate));
        let message = error.to_string();
        assert!(message.contains("--admin-tls-cert"), "{message}");
        assert!(message.contains("adminTls.secretName"), "{message}");
        // Without spec.tls: plaintext, nothing to read.
        let auth = AdminAuth::load(&AdminCredentialFiles::default(), false).unwrap();
        assert!(auth.tls().is_none() && !auth.has_token());
    }

    #[test]
    fn identity_is_read_per_load_and_its_digest_follows_the_files() {
        let dir = temp_dir("rotate");
        let files = AdminCredentialFiles {
            tls: Some(tls_files(&dir)),
            token_file: None,
        };
        let first = AdminAuth::load(&files, true).unwrap();
        let again = AdminAuth::load(&files, true).unwrap();
        assert_eq!(first.tls().unwrap().digest(), again.tls().unwrap().digest());
        // A plaintext cluster does not use the identity even when set.
        assert!(AdminAuth::load(&files, false).unwrap().tls().is_none());
        write(&dir, "tls.crt", &PEM.replace("MIIB", "MIIC"));
        let rotated = AdminAuth::load(&files, true).unwrap();
        assert_ne!(
            first.tls().unwrap().digest(),
            rotated.tls().unwrap().digest()
        );
        assert!(!format!("{rotated:?}").contains("MIIC"));
    }

    #[test]
    fn bad_files_name_their_flag() {
        let dir = temp_dir("bad");
        let mut tls = tls_files(&dir);
        tls.key = write(&dir, "tls.key", "not pem");
        let files = AdminCredentialFiles {
            tls: Some(tls.clone()),
            token_file: None,
        };
        let error = files.check().unwrap_err().to_string();
        assert!(error.starts_with("--admin-tls-key "), "{error}");
        tls.ca = dir.join("missing.crt");
        let error = AdminAuth::load(
            &AdminCredentialFiles {
                tls: Some(tls),
                token_file: None,
            },
            true,
        )
        .unwrap_err();
        assert!(
            matches!(
                error,
                AuthError::Read {
                    flag: "--admin-tls-ca",
                    ..
                }
            ),
            "{error}"
        );
        let empty = AdminCredentialFiles {
            tls: None,
            token_file: Some(write(&dir, "token", " \n")),
        };
        assert!(
            empty
                .check()
                .unwrap_err()
                .to_string()
                .starts_with("--admin-token-file ")
        );
    }

    #[test]
    fn token_is_sent_as_a_sensitive_bearer_header() {
        let dir = temp_dir("token");
        let files = AdminCredentialFiles {
            tls: None,
            token_file: Some(write(&dir, "token", "s3cret\n")),
        };
        let auth = AdminAuth::load(&files, false).unwrap();
        let request = auth.request(());
        let value = request.metadata().get(AUTHORIZATION).unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer s3cret");
        assert!(value.is_sensitive());
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert!(
            AdminAuth::default()
                .request(())
                .metadata()
                .get(AUTHORIZATION)
                .is_none()
        );
        assert!(matches!(
            AdminAuth::default().with_bearer("line\nbreak"),
            Err(AuthError::InvalidToken)
        ));
    }
}
