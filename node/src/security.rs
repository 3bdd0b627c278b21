//! Who may talk to the node, as loaded at start: the TLS configuration
//! (reloaded from its files, see [`crate::tls`]) and the admin API's check
//! (see [`crate::api::auth`]), with one log line saying which protections
//! are on.

use crate::api::auth::{self, AdminAuth, TokenError};
use crate::config::Security;
use crate::tls::{TlsError, TlsWatch};

/// Security settings that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    AdminToken(#[from] TokenError),
}

/// Loads the TLS files (and starts reloading them) and the admin token.
pub fn load(security: &Security) -> Result<(Option<TlsWatch>, AdminAuth), SecurityError> {
    let tls = match &security.tls {
        Some(settings) => {
            let (watch, _reloading) =
                crate::tls::watch_files(settings.files.clone(), settings.reload_interval)?;
            Some(watch)
        }
        None => None,
    };
    let token = security
        .admin_token_file
        .as_deref()
        .map(auth::read_token)
        .transpose()?;
    let admin = match (tls.is_some(), token.is_some()) {
        (true, true) => "mutual TLS and a token",
        (true, false) => "mutual TLS",
        (false, true) => "a token (no TLS)",
        (false, false) => "nothing (--admin-insecure)",
    };
    if tls.is_none() && token.is_none() {
        tracing::warn!("the admin API is open to anyone who can reach it (--admin-insecure)");
    }
    tracing::info!(tls = tls.is_some(), admin_requires = admin, "security");
    Ok((tls, AdminAuth::new(token)))
}
