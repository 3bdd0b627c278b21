//! Who may call the admin API. With TLS, the admin port's handshake
//! already refused callers without a certificate from the cluster's CA
//! (see [`crate::tls`]); a configured token is required on top of that,
//! and is the only check where TLS is off (local development). Every
//! refusal is logged with the caller's address.

use std::sync::Arc;

use tonic::{Request, Status};

use crate::tls::ConnectionInfo;

use matchengine_proto::bearer::{self, AUTHORIZATION};

/// The admin API's check of each call.
#[derive(Clone)]
pub struct AdminAuth {
    token: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("reading the admin token file {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the admin token file {path} holds no token (or one with spaces or control characters)"
    )]
    Invalid { path: std::path::PathBuf },
}

/// Reads a token file: one line, surrounding whitespace ignored.
pub fn read_token(path: &std::path::Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    bearer::token_from_file_text(&text)
        .map(str::to_string)
        .ok_or_else(|| TokenError::Invalid {
            path: path.to_path_buf(),
        })
}

/// Equal in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AdminAuth {
    /// Requires `token` on every call when given; otherwise lets every
    /// call through (TLS, or an explicitly insecure node, decided that).
    pub fn new(token: Option<String>) -> AdminAuth {
        AdminAuth {
            token: token.map(|t| Arc::from(t.into_bytes())),
        }
    }

    /// The refusal of a call, or `None` when it may go on.
    fn refusal<T>(&self, request: &Request<T>) -> Option<&'static str> {
        let token = self.token.as_ref()?;
        let Some(value) = request.metadata().get(AUTHORIZATION) else {
            return Some("no authorization metadata");
        };
        let presented = value.as_bytes().strip_prefix(bearer::PREFIX.as_bytes());
        match presented {
            Some(presented) if same(presented, token) => None,
            Some(_) => Some("wrong token"),
            None => Some("authorization is not `Bearer <token>`"),
        }
    }
}

impl tonic::service::Interceptor for AdminAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(reason) = self.refusal(&request) else {
            return Ok(request);
        };
        let peer = request
            .extensions()
            .get::<ConnectionInfo>()
            .and_then(|info| info.remote_addr);
        tracing::warn!(peer = ?peer, reason, "refused an admin call");
        Err(Status::unauthenticated(format!(
            "admin calls need `{AUTHORIZATION}: Bearer <token>` with this cluster's admin token ({reason})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn call(auth: &mut AdminAuth, header: Option<&str>) -> Result<(), Status> {
        let mut request = Request::new(());
        if let Some(header) = header {
            request
                .metadata_mut()
                .insert(AUTHORIZATION, header.parse().unwrap());
        }
        auth.call(request).map(|_| ())
    }

    #[test]
    fn a_configured_token_is_required() {
        let mut auth = AdminAuth::new(Some("s3cret".into()));
        assert!(call(&mut auth, Some("Bearer s3cret")).is_ok());
        for header in [
            None,
            Some("Bearer s3cre"),
            Some("Bearer s3cretx"),
            Some("s3cret"),
        ] {
            let status = call(&mut auth, header).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{header:?}");
        }
        let mut open = AdminAuth::new(None);
        assert!(call(&mut open, None).is_ok());
    }

    #[test]
    fn token_files_are_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        assert_eq!(read_token(&path).unwrap(), "abc123");
        std::fs::write(&path, "  \n").unwrap();
        assert!(read_token(&path).unwrap_err().to_string().contains("token"));
        std::fs::write(&path, "two words").unwrap();
        assert!(read_token(&path).is_err());
        let missing = read_token(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"));
    }

    #[test]
    fn debug_does_not_print_the_token() {
        let auth = AdminAuth::new(Some("s3cret".into()));
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
