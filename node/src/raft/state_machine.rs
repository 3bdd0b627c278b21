//! The Raft state machine: applies committed entries to the replicated
//! state, answers each proposer with its commands' outcomes, and builds and
//! installs snapshots.
//!
//! The state lives in memory; durability comes from the log plus snapshot
//! files. On start the newest snapshot is loaded and openraft replays the
//! log after it. A snapshot is built from a point-in-time copy taken on the
//! apply task (the book is cloned, the key-value map is structure-shared),
//! then encoded and written on a blocking thread while apply goes on.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use matchengine_digest::StateDigest;
use matchengine_proto::v1 as pb;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use prost::Message;

use super::proto::{snapshot_meta_from_pb, snapshot_meta_to_pb};
use super::types::{Entry, LogId, SnapshotMeta, StoredMembership, TypeConfig};
use crate::replica::image::FrozenState;
use crate::replica::outcome::{BatchOutcome, CommandOutcome};
use crate::replica::state::{ReplicatedState, StateLimits};
use crate::storage::snapshot_file::{self, SnapshotFile, SnapshotFileError, SnapshotPosition};

pub(super) type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotData>;

/// What openraft hands around as a snapshot's data: a complete snapshot
/// file on disk (ours, or one received from the leader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotData {
    pub path: PathBuf,
    pub size_bytes: u64,
}

/// The state and how far it has applied the log.
#[derive(Clone, Debug)]
struct Applied {
    state: ReplicatedState,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
}

/// The snapshot a lagging follower is sent.
#[derive(Clone, Debug)]
struct CurrentSnapshot {
    data: SnapshotData,
    meta: SnapshotMeta,
}

/// Told about what the state machine does, on the apply task: the node
/// feeds its event streams and metrics from it. Must be quick and must not
/// block.
pub trait StateMachineObserver: Send + Sync + fmt::Debug {
    /// The entry at `index` was applied; `outcomes` holds one per command.
    fn applied(&self, index: u64, outcomes: &[CommandOutcome]);
    /// A snapshot was built and written.
    fn snapshot_built(&self, size_bytes: u64, elapsed: Duration);
    /// The state was replaced by a snapshot from the leader.
    fn snapshot_installed(&self, size_bytes: u64, state: &ReplicatedState);
}

#[derive(Debug)]
struct Shared {
    applied: RwLock<Applied>,
    current_snapshot: Mutex<Option<CurrentSnapshot>>,
    snapshot_dir: PathBuf,
    observer: OnceLock<Arc<dyn StateMachineObserver>>,
    /// Open orders to pre-allocate for in every state this machine holds.
    orders_reserved: std::sync::atomic::AtomicUsize,
}

/// The state machine handed to openraft; clones share the state, so the
/// node's query handlers hold a clone to read it.
#[derive(Clone, Debug)]
pub struct StateMachineStore {
    shared: Arc<Shared>,
}

/// A state machine that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StateMachineError {
    #[error("snapshot directory {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Snapshot(#[from] SnapshotFileError),
    #[error("snapshot {path} holds an invalid state: {reason}")]
    State { path: PathBuf, reason: String },
    #[error("snapshot {path} has an invalid header: {reason}")]
    Header { path: PathBuf, reason: String },
    #[error("invalid state limits: {0}")]
    Limits(#[from] matchengine_book::LimitsError),
}

fn lock_poisoned() -> io::Error {
    io::Error::other("state machine lock poisoned by a panic")
}

fn invalid_data(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// The snapshot file header: the snapshot's position and membership.
fn encode_header(meta: &SnapshotMeta) -> Vec<u8> {
    snapshot_meta_to_pb(meta).encode_to_vec()
}

fn decode_header(header: Bytes) -> Result<SnapshotMeta, String> {
    let meta = pb::SnapshotMeta::decode(header).map_err(|e| e.to_string())?;
    snapshot_meta_from_pb(meta).map_err(|e| e.to_string())
}

fn position(meta: &SnapshotMeta) -> Option<SnapshotPosition> {
    meta.last_log_id.as_ref().map(|log_id| SnapshotPosition {
        index: log_id.index,
        term: log_id.leader_id.term,
        node_id: log_id.leader_id.node_id,
    })
}

/// Writes a snapshot file durably (a blocking call: file I/O and fsync).
fn write_snapshot(dir: &Path, meta: &SnapshotMeta, body: &[u8]) -> io::Result<CurrentSnapshot> {
    let header = encode_header(meta);
    debug_assert_eq!(
        decode_header(Bytes::from(header.clone())).as_ref(),
        Ok(meta),
        "a snapshot header reads back as written"
    );
    let file = snapshot_file::write(dir, position(meta), &header, body)
        .map_err(SnapshotFileError::into_io)?;
    Ok(CurrentSnapshot {
        data: SnapshotData {
            path: file.path,
            size_bytes: file.size_bytes,
        },
        meta: meta.clone(),
    })
}

fn header_of(file: &SnapshotFile) -> Result<SnapshotMeta, StateMachineError> {
    decode_header(file.header.clone()).map_err(|reason| StateMachineError::Header {
        path: file.path.clone(),
        reason,
    })
}

/// Checks one of our own snapshot files' header against the position its
/// name gives: a file renamed or copied to the wrong name must not be taken
/// for another position.
fn check_name(file: &SnapshotFile, meta: &SnapshotMeta) -> Result<(), StateMachineError> {
    let named = snapshot_file::position_of(&file.path);
    if named == position(meta) {
        return Ok(());
    }
    Err(StateMachineError::Header {
        path: file.path.clone(),
        reason: format!(
            "the file name says {named:?}, the header {:?}",
            position(meta)
        ),
    })
}

/// Reads and verifies a snapshot file: its metadata and its state.
fn read_snapshot(path: &Path) -> Result<(SnapshotFile, SnapshotMeta, Bytes), StateMachineError> {
    let (file, body) = snapshot_file::read(path)?;
    let meta = header_of(&file)?;
    Ok((file, meta, body))
}

impl StateMachineStore {
    /// Opens the state machine on `snapshot_dir`, loading its newest
    /// snapshot. A damaged newest snapshot stops start-up with an error
    /// naming the file.
    pub fn open(
        snapshot_dir: &Path,
        limits: StateLimits,
    ) -> Result<StateMachineStore, StateMachineError> {
        std::fs::create_dir_all(snapshot_dir).map_err(|source| StateMachineError::Dir {
            path: snapshot_dir.to_path_buf(),
            source,
        })?;
        let newest = snapshot_file::newest(snapshot_dir)?;
        let (applied, current) = match newest {
            None => (
                Applied {
                    state: ReplicatedState::new(limits)?,
                    last_applied: None,
                    last_membership: StoredMembership::default(),
                },
                None,
            ),
            Some((file, body)) => {
                let meta = header_of(&file)?;
                check_name(&file, &meta)?;
                let state =
                    ReplicatedState::decode(body).map_err(|e| StateMachineError::State {
                        path: file.path.clone(),
                        reason: e.to_string(),
                    })?;
                let applied = Applied {
                    state,
                    last_applied: meta.last_log_id,
                    last_membership: meta.last_membership.clone(),
                };
                let current = CurrentSnapshot {
                    data: SnapshotData {
                        path: file.path,
                        size_bytes: file.size_bytes,
                    },
                    meta,
                };
                (applied, Some(current))
            }
        };
        Ok(StateMachineStore {
            shared: Arc::new(Shared {
                applied: RwLock::new(applied),
                current_snapshot: Mutex::new(current),
                snapshot_dir: snapshot_dir.to_path_buf(),
                observer: OnceLock::new(),
                orders_reserved: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// Sets the observer; only the first call takes effect. Set it before
    /// the state machine is handed to Raft, or early applies go unseen.
    pub fn set_observer(&self, observer: Arc<dyn StateMachineObserver>) {
        let _ = self.shared.observer.set(observer);
    }

    /// Pre-allocates room for `open_orders` resting orders now, and in
    /// every state installed from a snapshot later (see
    /// [`ReplicatedState::reserve_orders`]). Hash map growth would otherwise
    /// stall apply for tens of milliseconds at each doubling.
    pub fn reserve_orders(&self, open_orders: usize) -> io::Result<()> {
        use std::sync::atomic::Ordering;
        self.shared
            .orders_reserved
            .store(open_orders, Ordering::Relaxed);
        let mut applied = self.shared.applied.write().map_err(|_| lock_poisoned())?;
        applied.state.reserve_orders(open_orders);
        Ok(())
    }

    fn observer(&self) -> Option<&Arc<dyn StateMachineObserver>> {
        self.shared.observer.get()
    }

    fn read_applied<T>(&self, read: impl FnOnce(&Applied) -> T) -> io::Result<T> {
        let applied = self.shared.applied.read().map_err(|_| lock_poisoned())?;
        Ok(read(&applied))
    }

    /// Runs `read` against the applied state (a read lock: apply waits).
    pub fn read<T>(&self, read: impl FnOnce(&ReplicatedState) -> T) -> io::Result<T> {
        self.read_applied(|applied| read(&applied.state))
    }

    pub fn digest(&self) -> io::Result<StateDigest> {
        self.read(ReplicatedState::digest)
    }

    /// The state's digest and the index of the last entry applied to it,
    /// read together (0: nothing applied yet).
    pub fn digest_at_index(&self) -> io::Result<(StateDigest, u64)> {
        self.read_applied(|applied| {
            (
                applied.state.digest(),
                applied.last_applied.map_or(0, |log_id| log_id.index),
            )
        })
    }

    /// The index of the last entry applied (`None`: nothing yet).
    pub fn applied_index(&self) -> io::Result<Option<u64>> {
        self.read_applied(|applied| applied.last_applied.map(|log_id| log_id.index))
    }

    /// The snapshot file a lagging follower would be sent, if any.
    pub fn current_snapshot_file(&self) -> io::Result<Option<SnapshotData>> {
        Ok(self.current_snapshot()?.map(|current| current.data))
    }

    fn current_snapshot(&self) -> io::Result<Option<CurrentSnapshot>> {
        Ok(self
            .shared
            .current_snapshot
            .lock()
            .map_err(|_| lock_poisoned())?
            .clone())
    }

    /// Makes `snapshot` the current one unless a newer one already is, and
    /// removes the others from disk.
    fn publish_snapshot(&self, snapshot: &CurrentSnapshot) -> io::Result<()> {
        let mut current = self
            .shared
            .current_snapshot
            .lock()
            .map_err(|_| lock_poisoned())?;
        let newer = current
            .as_ref()
            .is_none_or(|existing| existing.meta.last_log_id <= snapshot.meta.last_log_id);
        if newer {
            *current = Some(snapshot.clone());
            snapshot_file::remove_others(&self.shared.snapshot_dir, &snapshot.data.path)?;
        }
        Ok(())
    }

    fn apply_entry(&self, entry: Entry) -> io::Result<BatchOutcome> {
        let mut outcome = BatchOutcome::default();
        match entry.payload {
            EntryPayload::Blank => {
                let mut applied = self.shared.applied.write().map_err(|_| lock_poisoned())?;
                applied.last_applied = Some(entry.log_id);
            }
            EntryPayload::Normal(batch) => {
                // Decoded before the lock is taken, so readers wait less.
                let decoded = batch.decode().map_err(|e| {
                    invalid_data(format!(
                        "log entry at index {} fails to decode: {e}",
                        entry.log_id.index
                    ))
                })?;
                {
                    let mut applied = self.shared.applied.write().map_err(|_| lock_poisoned())?;
                    applied.state.apply(&decoded, &mut outcome.outcomes);
                    applied.last_applied = Some(entry.log_id);
                }
                debug_assert_eq!(
                    outcome.outcomes.len(),
                    decoded.commands.len(),
                    "one outcome per command"
                );
                if let Some(observer) = self.observer() {
                    observer.applied(entry.log_id.index, &outcome.outcomes);
                }
            }
            EntryPayload::Membership(membership) => {
                let mut applied = self.shared.applied.write().map_err(|_| lock_poisoned())?;
                applied.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                applied.last_applied = Some(entry.log_id);
            }
        }
        Ok(outcome)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotData;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        self.read_applied(|applied| (applied.last_applied, applied.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        // The lock is taken per entry and never held across an await.
        while let Some((entry, responder)) = entries.try_next().await? {
            let outcome = self.apply_entry(entry)?;
            if let Some(responder) = responder {
                responder.send(outcome);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // The point-in-time copy: the only part of a snapshot apply waits
        // for. Frozen, not cloned: no index is copied (see FrozenEngine).
        let copy = self.read_applied(|applied| SnapshotCopy {
            state: applied.state.freeze(),
            last_applied: applied.last_applied,
            last_membership: applied.last_membership.clone(),
        });
        SnapshotBuilder {
            store: self.clone(),
            copy: copy.ok(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: SnapshotData,
    ) -> Result<(), io::Error> {
        let (_, file_meta, body) =
            read_snapshot(&snapshot.path).map_err(|e| invalid_data(e.to_string()))?;
        if &file_meta != meta {
            return Err(invalid_data(format!(
                "snapshot {} covers {:?}, not the announced {:?}",
                snapshot.path.display(),
                file_meta.last_log_id,
                meta.last_log_id
            )));
        }
        let mut state = ReplicatedState::decode(body.clone()).map_err(|e| {
            invalid_data(format!(
                "snapshot {} holds an invalid state: {e}",
                snapshot.path.display()
            ))
        })?;
        state.reserve_orders(
            self.shared
                .orders_reserved
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        // Keep our own durable copy before switching to it.
        let dir = self.shared.snapshot_dir.clone();
        let own_meta = meta.clone();
        let current = tokio::task::spawn_blocking(move || write_snapshot(&dir, &own_meta, &body))
            .await
            .map_err(io::Error::other)??;
        {
            let mut applied = self.shared.applied.write().map_err(|_| lock_poisoned())?;
            *applied = Applied {
                state,
                last_applied: meta.last_log_id,
                last_membership: meta.last_membership.clone(),
            };
            if let Some(observer) = self.observer() {
                observer.snapshot_installed(current.data.size_bytes, &applied.state);
            }
        }
        self.publish_snapshot(&current)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        Ok(self.current_snapshot()?.map(|current| Snapshot {
            meta: current.meta,
            snapshot: current.data,
        }))
    }
}

/// What a snapshot is built from: taken on the apply task, encoded off it.
#[derive(Debug)]
struct SnapshotCopy {
    state: FrozenState,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
}

/// Encodes and writes a snapshot of a point-in-time copy of the state.
pub struct SnapshotBuilder {
    store: StateMachineStore,
    copy: Option<SnapshotCopy>,
}

impl fmt::Debug for SnapshotBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotBuilder")
            .field(
                "last_applied",
                &self.copy.as_ref().map(|copy| copy.last_applied),
            )
            .finish()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = SnapshotData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let copy = self.copy.take().ok_or_else(lock_poisoned)?;
        let meta = SnapshotMeta {
            last_log_id: copy.last_applied,
            last_membership: copy.last_membership.clone(),
        };
        let dir = self.store.shared.snapshot_dir.clone();
        let file_meta = meta.clone();
        let started = Instant::now();
        let current = tokio::task::spawn_blocking(move || {
            let mut body = Vec::new();
            copy.state.encode(&mut body);
            write_snapshot(&dir, &file_meta, &body)
        })
        .await
        .map_err(io::Error::other)??;
        self.store.publish_snapshot(&current)?;
        if let Some(observer) = self.store.observer() {
            observer.snapshot_built(current.data.size_bytes, started.elapsed());
        }
        Ok(Snapshot {
            meta,
            snapshot: current.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::LeaderId;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId {
                leader_id: LeaderId {
                    term: 2,
                    node_id: 1,
                },
                index,
            }),
            last_membership: StoredMembership::default(),
        }
    }

    fn empty_body() -> Vec<u8> {
        let mut body = Vec::new();
        ReplicatedState::new(StateLimits::default())
            .unwrap()
            .encode(&mut body);
        body
    }

    #[test]
    fn the_newest_snapshot_loads_at_its_position() {
        let dir = tempfile::tempdir().unwrap();
        write_snapshot(dir.path(), &meta(7), &empty_body()).unwrap();
        let store = StateMachineStore::open(dir.path(), StateLimits::default()).unwrap();
        assert_eq!(store.applied_index().unwrap(), Some(7));
    }

    /// A snapshot file renamed to another position (by hand, or a bad
    /// copy) is refused: loading it would claim log entries it lacks.
    #[test]
    fn a_snapshot_whose_name_and_header_disagree_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let current = write_snapshot(dir.path(), &meta(7), &empty_body()).unwrap();
        let renamed = dir
            .path()
            .join(format!("snapshot-{:020}-{:020}-{:020}.snap", 9, 2, 1));
        std::fs::rename(&current.data.path, &renamed).unwrap();
        let error = StateMachineStore::open(dir.path(), StateLimits::default()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("the file name says"), "{message}");
        assert!(
            message.contains(&renamed.display().to_string()),
            "{message}"
        );
    }
}
