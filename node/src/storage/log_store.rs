//! The Raft log and vote on RocksDB.
//!
//! Column family `log` maps big-endian log indexes to prost-encoded entries;
//! `meta` holds the vote, the last purged log id and the committed log id.
//! An append is one `WriteBatch` written to the WAL without waiting; the
//! entries are readable when `append` returns, and openraft's flush callback
//! fires only after a group-commit thread has synced the WAL. Appends that
//! arrive while a sync is running share the next one. The vote is synced
//! before `save_vote` returns. Truncate and purge are range deletes. Never
//! knows what the entries mean.

use std::fmt;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use matchengine_proto::v1 as pb;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, RaftTypeConfig};
use prost::Message;
use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};

use crate::codec::raft::{
    entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, vote_from_pb, vote_to_pb,
};
use crate::raft_types::{Entry, LogId, LogState, TypeConfig, Vote};

const CF_LOG: &str = "log";
const CF_META: &str = "meta";
const KEY_VOTE: &[u8] = b"vote";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
const KEY_COMMITTED: &[u8] = b"committed";

/// Counters of the log store's disk work, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct LogStats {
    pub entries_appended: AtomicU64,
    pub appends: AtomicU64,
    pub fsyncs: AtomicU64,
    pub fsync_nanos_total: AtomicU64,
    fsync_observer: OnceLock<FsyncObserver>,
}

/// Called with the duration of every WAL sync, on the sync thread.
pub struct FsyncObserver(pub Box<dyn Fn(Duration) + Send + Sync>);

impl fmt::Debug for FsyncObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FsyncObserver")
    }
}

/// A point-in-time copy of [`LogStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStatsSnapshot {
    pub entries_appended: u64,
    pub appends: u64,
    pub fsyncs: u64,
    pub fsync_nanos_total: u64,
}

impl LogStats {
    /// Sets the fsync observer; only the first call takes effect.
    pub fn set_fsync_observer(&self, observer: FsyncObserver) {
        let _ = self.fsync_observer.set(observer);
    }

    pub fn snapshot(&self) -> LogStatsSnapshot {
        LogStatsSnapshot {
            entries_appended: self.entries_appended.load(Ordering::Relaxed),
            appends: self.appends.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            fsync_nanos_total: self.fsync_nanos_total.load(Ordering::Relaxed),
        }
    }
}

/// The log store; clones share the database (a clone is the log reader).
/// When the last clone is dropped the sync thread finishes its pending
/// syncs and stops, and the database is closed, before the drop returns.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    syncer: Arc<Syncer>,
    stats: Arc<LogStats>,
}

/// The group-commit thread and the channel that feeds it.
struct Syncer {
    requests: Mutex<Option<mpsc::Sender<IOFlushed<TypeConfig>>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has drained it.
        drop(self.requests.lock().map(|mut sender| sender.take()));
        let thread = self.thread.lock().ok().and_then(|mut thread| thread.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore")
            .field("path", &self.db.path())
            .finish()
    }
}

/// A log store that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening the RocksDB log at {path}: {source}")]
    Rocks {
        path: String,
        source: rocksdb::Error,
    },
    #[error("starting the log sync thread: {0}")]
    Thread(io::Error),
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn rocks_error(context: &str, error: rocksdb::Error) -> io::Error {
    io::Error::other(format!("{context}: {error}"))
}

impl LogStore {
    /// Opens (or creates) the log under `dir` and starts its sync thread.
    pub fn open(dir: &Path) -> Result<LogStore, OpenError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let families =
            [CF_LOG, CF_META].map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&options, dir, families).map_err(|source| {
            OpenError::Rocks {
                path: dir.display().to_string(),
                source,
            }
        })?;
        let db = Arc::new(db);
        let stats = Arc::new(LogStats::default());
        let (requests, pending) = mpsc::channel();
        let (sync_db, sync_stats) = (Arc::clone(&db), Arc::clone(&stats));
        let thread = std::thread::Builder::new()
            .name("log-fsync".into())
            .spawn(move || group_commit(&sync_db, &pending, &sync_stats))
            .map_err(OpenError::Thread)?;
        Ok(LogStore {
            db,
            syncer: Arc::new(Syncer {
                requests: Mutex::new(Some(requests)),
                thread: Mutex::new(Some(thread)),
            }),
            stats,
        })
    }

    pub fn stats(&self) -> Arc<LogStats> {
        Arc::clone(&self.stats)
    }

    fn cf(&self, name: &str) -> io::Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| io::Error::other(format!("column family {name} missing")))
    }

    fn get_meta<T: Message + Default>(&self, key: &[u8]) -> io::Result<Option<T>> {
        let bytes = self
            .db
            .get_cf(self.cf(CF_META)?, key)
            .map_err(|e| rocks_error("reading log metadata", e))?;
        bytes
            .map(|bytes| {
                T::decode(bytes.as_slice()).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "log metadata {} fails to decode: {e}",
                            String::from_utf8_lossy(key)
                        ),
                    )
                })
            })
            .transpose()
    }

    fn put_meta(&self, key: &[u8], value: &impl Message, sync: bool) -> io::Result<()> {
        let mut options = WriteOptions::default();
        options.set_sync(sync);
        self.db
            .put_cf_opt(self.cf(CF_META)?, key, value.encode_to_vec(), &options)
            .map_err(|e| rocks_error("writing log metadata", e))
    }

    fn read_log_id(&self, key: &[u8]) -> io::Result<Option<LogId>> {
        self.get_meta::<pb::LogId>(key)?
            .map(|log_id| {
                log_id_from_pb(log_id).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            })
            .transpose()
    }
}

fn decode_entry(index: u64, bytes: &[u8]) -> io::Result<Entry> {
    let corrupt = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("log entry at index {index} fails to decode: {what}"),
        )
    };
    let entry = pb::Entry::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
    let entry = entry_from_pb(entry).map_err(|e| corrupt(e.to_string()))?;
    if entry.log_id.index != index {
        return Err(corrupt(format!(
            "stored under index {index} but claims {}",
            entry.log_id.index
        )));
    }
    Ok(entry)
}

/// The sync thread: takes every pending flush request, syncs the WAL once,
/// then completes them all in arrival order. Ends when the store is dropped.
fn group_commit(db: &DB, pending: &mpsc::Receiver<IOFlushed<TypeConfig>>, stats: &LogStats) {
    while let Ok(first) = pending.recv() {
        let mut waiting = vec![first];
        waiting.extend(pending.try_iter());
        let started = Instant::now();
        let result = db.flush_wal(true);
        let elapsed = started.elapsed();
        stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        stats
            .fsync_nanos_total
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        if let Some(observer) = stats.fsync_observer.get() {
            (observer.0)(elapsed);
        }
        for callback in waiting {
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(io::Error::other(format!("syncing the log WAL: {error}"))),
            };
            callback.io_completed(outcome);
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        use std::ops::Bound;
        let start = match range.start_bound() {
            Bound::Included(&index) => index,
            Bound::Excluded(&index) => index.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let cf = self.cf(CF_LOG)?;
        let mut entries = Vec::new();
        for item in self.db.iterator_cf(
            cf,
            IteratorMode::From(&index_key(start), Direction::Forward),
        ) {
            let (key, value) = item.map_err(|e| rocks_error("reading the log", e))?;
            let key: [u8; 8] = key.as_ref().try_into().map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "log key is not 8 bytes")
            })?;
            let index = u64::from_be_bytes(key);
            if !range.contains(&index) {
                break;
            }
            entries.push(decode_entry(index, &value)?);
        }
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta::<pb::Vote>(KEY_VOTE)?
            .map(|vote| {
                vote_from_pb(vote).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            })
            .transpose()
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState, io::Error> {
        let last_purged_log_id = self.read_log_id(KEY_LAST_PURGED)?;
        let last = self
            .db
            .iterator_cf(self.cf(CF_LOG)?, IteratorMode::End)
            .next();
        let last_log_id = match last {
            None => last_purged_log_id,
            Some(item) => {
                let (key, value) = item.map_err(|e| rocks_error("reading the log tail", e))?;
                let index = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "log key is not 8 bytes")
                })?);
                Some(decode_entry(index, &value)?.log_id)
            }
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        // A synced write: the vote (and every append before it) is on disk
        // before this returns.
        self.put_meta(KEY_VOTE, &vote_to_pb(vote), true)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not synced: it reaches disk with the next append or vote, and a
        // lost value only means re-applying from the snapshot on restart.
        match committed {
            Some(log_id) => self.put_meta(KEY_COMMITTED, &log_id_to_pb(&log_id), false),
            None => Ok(()),
        }
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        self.read_log_id(KEY_COMMITTED)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.cf(CF_LOG)?;
        let mut batch = WriteBatch::default();
        let mut count = 0u64;
        for entry in entries {
            batch.put_cf(
                cf,
                index_key(entry.log_id.index),
                entry_to_pb(&entry).encode_to_vec(),
            );
            count += 1;
        }
        self.db
            .write(batch)
            .map_err(|e| rocks_error("appending to the log", e))?;
        self.stats
            .entries_appended
            .fetch_add(count, Ordering::Relaxed);
        self.stats.appends.fetch_add(1, Ordering::Relaxed);
        let requests = self
            .syncer
            .requests
            .lock()
            .map_err(|_| io::Error::other("the log sync channel lock is poisoned"))?;
        requests
            .as_ref()
            .ok_or_else(|| io::Error::other("the log store is closing"))?
            .send(callback)
            .map_err(|_| io::Error::other("the log sync thread has stopped"))
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        // Not synced: a truncation lost in a crash is redone by the leader,
        // and the next synced append orders it on disk before new entries.
        let start = last_log_id.map_or(0, |log_id| log_id.index + 1);
        let mut batch = WriteBatch::default();
        let cf = self.cf(CF_LOG)?;
        batch.delete_range_cf(cf, index_key(start), index_key(u64::MAX));
        batch.delete_cf(cf, index_key(u64::MAX));
        self.db
            .write(batch)
            .map_err(|e| rocks_error("truncating the log", e))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        // The purge point is recorded before anything is deleted, so the log
        // never has a hole below what `get_log_state` reports.
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_META)?,
            KEY_LAST_PURGED,
            log_id_to_pb(&log_id).encode_to_vec(),
        );
        batch.delete_range_cf(self.cf(CF_LOG)?, index_key(0), index_key(log_id.index + 1));
        self.db
            .write(batch)
            .map_err(|e| rocks_error("purging the log", e))
    }
}

// `LogStore` must satisfy openraft's bounds; keep the assertion near the impls.
const _: fn() = || {
    fn assert_log_storage<T: RaftLogStorage<TypeConfig>>() {}
    assert_log_storage::<LogStore>();
    fn assert_config<C: RaftTypeConfig>() {}
    assert_config::<TypeConfig>();
};
