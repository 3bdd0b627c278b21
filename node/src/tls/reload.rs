//! Certificate reload without a restart: the files are read again every
//! interval (Kubernetes updates a mounted Secret by swapping a symlink, so
//! only the contents tell a change); new contents that build are used for
//! every new connection, and contents that don't are logged and ignored,
//! keeping the last good configuration.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{TlsConfigs, TlsError, TlsFiles, TlsPem};

/// The node's current TLS configurations.
#[derive(Clone, Debug)]
pub struct TlsWatch {
    current: watch::Receiver<Arc<TlsConfigs>>,
}

impl TlsWatch {
    pub fn current(&self) -> Arc<TlsConfigs> {
        Arc::clone(&self.current.borrow())
    }
}

/// Loads the files (an error stops the node from starting) and starts the
/// task that reloads them every `interval`.
pub fn watch_files(
    files: TlsFiles,
    interval: Duration,
) -> Result<(TlsWatch, JoinHandle<()>), TlsError> {
    let pem = TlsPem::read(&files)?;
    let configs = TlsConfigs::build(&pem, &files)?;
    let (sender, current) = watch::channel(Arc::new(configs));
    let task = tokio::spawn(reload(files, pem, interval, sender));
    Ok((TlsWatch { current }, task))
}

async fn reload(
    files: TlsFiles,
    mut loaded: TlsPem,
    interval: Duration,
    sender: watch::Sender<Arc<TlsConfigs>>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    // The last contents that failed, so a bad file is reported once.
    let mut rejected: Option<TlsPem> = None;
    loop {
        ticks.tick().await;
        let pem = match TlsPem::read(&files) {
            Ok(pem) => pem,
            Err(error) => {
                tracing::warn!(%error, "TLS files unreadable; keeping the loaded certificate");
                continue;
            }
        };
        if pem == loaded || rejected.as_ref() == Some(&pem) {
            continue;
        }
        match TlsConfigs::build(&pem, &files) {
            Ok(configs) => {
                tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                if sender.send(Arc::new(configs)).is_err() {
                    return;
                }
                loaded = pem;
                rejected = None;
            }
            Err(error) => {
                tracing::error!(%error, "new TLS files rejected; keeping the loaded certificate");
                rejected = Some(pem);
            }
        }
    }
}
