//! The Raft log and its metadata on RocksDB, as bytes.
//!
//! Column family `log` maps big-endian log indexes to encoded entries;
//! `meta` holds small records by name (the vote, the purge point, the
//! committed position). An append is one `WriteBatch` written to the WAL
//! without waiting; the entries are readable when `append` returns, and its
//! callback fires only after a group-commit thread has synced the WAL.
//! Appends that arrive while a sync is running share the next one. Truncate
//! and purge are range deletes. Never knows what the entries mean: the
//! openraft adapter in `crate::raft::log_storage` encodes and decodes them.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};

const CF_LOG: &str = "log";
const CF_META: &str = "meta";

/// The metadata records the log keeps beside its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaKey {
    Vote,
    LastPurged,
    Committed,
}

impl MetaKey {
    fn name(self) -> &'static [u8] {
        match self {
            MetaKey::Vote => b"vote",
            MetaKey::LastPurged => b"last_purged",
            MetaKey::Committed => b"committed",
        }
    }
}

/// Whether a metadata write waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Synced (with every append before it) before the call returns.
    Synced,
    /// Reaches the disk with the next synced write.
    Buffered,
}

/// Called once the entries of one append are on disk, or with the error
/// that kept them off it. Runs on the sync thread.
pub type OnSynced = Box<dyn FnOnce(io::Result<()>) + Send>;

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
    requests: Mutex<Option<mpsc::Sender<OnSynced>>>,
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

    /// The metadata record `key`, as written.
    pub fn meta(&self, key: MetaKey) -> io::Result<Option<Vec<u8>>> {
        self.db
            .get_cf(self.cf(CF_META)?, key.name())
            .map_err(|e| rocks_error("reading log metadata", e))
    }

    pub fn put_meta(&self, key: MetaKey, bytes: &[u8], durability: Durability) -> io::Result<()> {
        let mut options = WriteOptions::default();
        options.set_sync(durability == Durability::Synced);
        self.db
            .put_cf_opt(self.cf(CF_META)?, key.name(), bytes, &options)
            .map_err(|e| rocks_error("writing log metadata", e))
    }

    /// The entries with `start <= index < end`, in index order, stopping at
    /// the first gap (the log never has one between its first and last).
    pub fn entries(&self, start: u64, end: u64) -> io::Result<Vec<(u64, Vec<u8>)>> {
        let cf = self.cf(CF_LOG)?;
        let mut entries = Vec::new();
        for item in self.db.iterator_cf(
            cf,
            IteratorMode::From(&index_key(start), Direction::Forward),
        ) {
            let (key, value) = item.map_err(|e| rocks_error("reading the log", e))?;
            let index = index_of(&key)?;
            if index >= end {
                break;
            }
            // Assert on the way out what append asserted on the way in.
            if let Some((previous, _)) = entries.last()
                && index != previous + 1
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the log has a gap: index {index} follows {previous}"),
                ));
            }
            entries.push((index, value.into_vec()));
        }
        Ok(entries)
    }

    /// The entry with the highest index.
    pub fn last_entry(&self) -> io::Result<Option<(u64, Vec<u8>)>> {
        match self
            .db
            .iterator_cf(self.cf(CF_LOG)?, IteratorMode::End)
            .next()
        {
            None => Ok(None),
            Some(item) => {
                let (key, value) = item.map_err(|e| rocks_error("reading the log tail", e))?;
                Ok(Some((index_of(&key)?, value.into_vec())))
            }
        }
    }

    /// Writes `entries` (consecutive indexes, ascending) and returns once
    /// they are readable; `on_synced` runs once they are on disk.
    pub fn append(
        &self,
        entries: impl IntoIterator<Item = (u64, Vec<u8>)>,
        on_synced: OnSynced,
    ) -> io::Result<()> {
        let cf = self.cf(CF_LOG)?;
        let mut batch = WriteBatch::default();
        let mut count = 0u64;
        let mut previous: Option<u64> = None;
        for (index, bytes) in entries {
            assert!(
                previous.is_none_or(|previous| index == previous + 1),
                "log append out of order: index {index} after {previous:?}"
            );
            previous = Some(index);
            batch.put_cf(cf, index_key(index), bytes);
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
            .send(on_synced)
            .map_err(|_| io::Error::other("the log sync thread has stopped"))
    }

    /// Removes every entry from `start` on.
    pub fn truncate_from(&self, start: u64) -> io::Result<()> {
        // Not synced: a truncation lost in a crash is redone by the leader,
        // and the next synced append orders it on disk before new entries.
        let mut batch = WriteBatch::default();
        let cf = self.cf(CF_LOG)?;
        batch.delete_range_cf(cf, index_key(start), index_key(u64::MAX));
        batch.delete_cf(cf, index_key(u64::MAX));
        self.db
            .write(batch)
            .map_err(|e| rocks_error("truncating the log", e))
    }

    /// Removes every entry up to and including `index`, recording
    /// `last_purged` (the purge point, as the caller encodes it) in the same
    /// write, so the log never has a hole below what it reports.
    pub fn purge_through(&self, index: u64, last_purged: &[u8]) -> io::Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META)?, MetaKey::LastPurged.name(), last_purged);
        batch.delete_range_cf(
            self.cf(CF_LOG)?,
            index_key(0),
            index_key(index.saturating_add(1)),
        );
        self.db
            .write(batch)
            .map_err(|e| rocks_error("purging the log", e))
    }
}

fn index_of(key: &[u8]) -> io::Result<u64> {
    let key: [u8; 8] = key
        .try_into()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "log key is not 8 bytes"))?;
    Ok(u64::from_be_bytes(key))
}

/// The sync thread: takes every pending append, syncs the WAL once, then
/// completes them all in arrival order. Ends when the store is dropped.
fn group_commit(db: &DB, pending: &mpsc::Receiver<OnSynced>, stats: &LogStats) {
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
        for on_synced in waiting {
            let outcome = match &result {
                Ok(()) => Ok(()),
                Err(error) => Err(io::Error::other(format!("syncing the log WAL: {error}"))),
            };
            on_synced(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    /// An append is acknowledged only once the WAL sync that covers it has
    /// completed: with the sync thread held inside its observer (after the
    /// sync, before any callback), the append's callback has not fired;
    /// released, it fires with success.
    #[test]
    fn an_append_is_acknowledged_only_after_its_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let (entered, synced) = mpsc::channel::<()>();
        let (release, held) = mpsc::channel::<()>();
        let held = Mutex::new(held);
        store
            .stats()
            .set_fsync_observer(FsyncObserver(Box::new(move |_| {
                let _ = entered.send(());
                let _ = held.lock().map(|held| held.recv_timeout(WAIT));
            })));
        let (acknowledge, acknowledged) = mpsc::channel();
        store
            .append(
                [(1, b"one".to_vec()), (2, b"two".to_vec())],
                Box::new(move |result| {
                    let _ = acknowledge.send(result.is_ok());
                }),
            )
            .unwrap();
        // Readable as soon as append returns; not yet acknowledged.
        assert_eq!(store.entries(0, u64::MAX).unwrap().len(), 2);
        synced.recv_timeout(WAIT).unwrap();
        assert!(
            acknowledged
                .recv_timeout(Duration::from_millis(200))
                .is_err(),
            "the append was acknowledged before its sync completed"
        );
        release.send(()).unwrap();
        assert_eq!(acknowledged.recv_timeout(WAIT), Ok(true));
    }

    #[test]
    #[should_panic(expected = "log append out of order")]
    fn an_append_out_of_order_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let _ = store.append([(1, Vec::new()), (3, Vec::new())], Box::new(|_| {}));
    }
}
