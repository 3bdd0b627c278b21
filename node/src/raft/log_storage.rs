//! openraft's log storage over the byte-level RocksDB log
//! ([`crate::storage::log_store`]): entries, the vote, the purge point and
//! the committed position are encoded as `matchengine.v1` messages here,
//! and decoded (and checked against the index they are stored under) on
//! the way back.

use std::fmt;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use matchengine_proto::v1 as pb;
use openraft::OptionalSend;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use prost::Message;

use super::proto::{
    entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, vote_from_pb, vote_to_pb,
};
use super::types::{Entry, LogId, LogState, TypeConfig, Vote};
use crate::storage::log_store::{Durability, LogStats, LogStore, MetaKey, OpenError};

/// The log handed to openraft; clones share the store (a clone is the
/// log reader).
#[derive(Clone, Debug)]
pub struct RaftLogStore {
    store: LogStore,
}

fn corrupt(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn decode_entry(index: u64, bytes: &[u8]) -> io::Result<Entry> {
    let failed = |what: String| {
        corrupt(format!(
            "log entry at index {index} fails to decode: {what}"
        ))
    };
    let entry = pb::Entry::decode(bytes).map_err(|e| failed(e.to_string()))?;
    let entry = entry_from_pb(entry).map_err(|e| failed(e.to_string()))?;
    if entry.log_id.index != index {
        return Err(failed(format!(
            "stored under index {index} but claims {}",
            entry.log_id.index
        )));
    }
    Ok(entry)
}

impl RaftLogStore {
    /// Opens (or creates) the log under `dir`.
    pub fn open(dir: &std::path::Path) -> Result<RaftLogStore, OpenError> {
        Ok(RaftLogStore {
            store: LogStore::open(dir)?,
        })
    }

    pub fn stats(&self) -> Arc<LogStats> {
        self.store.stats()
    }

    fn meta<T: Message + Default>(&self, key: MetaKey) -> io::Result<Option<T>> {
        self.store
            .meta(key)?
            .map(|bytes| {
                T::decode(bytes.as_slice())
                    .map_err(|e| corrupt(format!("log metadata {key:?} fails to decode: {e}")))
            })
            .transpose()
    }

    fn log_id(&self, key: MetaKey) -> io::Result<Option<LogId>> {
        self.meta::<pb::LogId>(key)?
            .map(|log_id| log_id_from_pb(log_id).map_err(|e| corrupt(e.to_string())))
            .transpose()
    }

    /// The committed position last recorded (for readiness at start).
    pub fn committed(&self) -> io::Result<Option<LogId>> {
        self.log_id(MetaKey::Committed)
    }
}

impl RaftLogReader<TypeConfig> for RaftLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(&index) => index,
            Bound::Excluded(&index) => index.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&index) => index.saturating_add(1),
            Bound::Excluded(&index) => index,
            Bound::Unbounded => u64::MAX,
        };
        self.store
            .entries(start, end)?
            .iter()
            .map(|(index, bytes)| decode_entry(*index, bytes))
            .collect()
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.meta::<pb::Vote>(MetaKey::Vote)?
            .map(|vote| vote_from_pb(vote).map_err(|e| corrupt(e.to_string())))
            .transpose()
    }
}

impl RaftLogStorage<TypeConfig> for RaftLogStore {
    type LogReader = RaftLogStore;

    async fn get_log_state(&mut self) -> Result<LogState, io::Error> {
        let last_purged_log_id = self.log_id(MetaKey::LastPurged)?;
        let last_log_id = match self.store.last_entry()? {
            None => last_purged_log_id,
            Some((index, bytes)) => Some(decode_entry(index, &bytes)?.log_id),
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
        // Synced: the vote (and every append before it) is on disk before
        // this returns.
        self.store.put_meta(
            MetaKey::Vote,
            &vote_to_pb(vote).encode_to_vec(),
            Durability::Synced,
        )
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // Not synced: it reaches disk with the next append or vote, and a
        // lost value only means re-applying from the snapshot on restart.
        match committed {
            Some(log_id) => self.store.put_meta(
                MetaKey::Committed,
                &log_id_to_pb(&log_id).encode_to_vec(),
                Durability::Buffered,
            ),
            None => Ok(()),
        }
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        self.committed()
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
        let encoded = entries
            .into_iter()
            .map(|entry| (entry.log_id.index, entry_to_pb(&entry).encode_to_vec()));
        self.store.append(
            encoded,
            Box::new(move |synced| callback.io_completed(synced)),
        )
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.store
            .truncate_from(last_log_id.map_or(0, |log_id| log_id.index + 1))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.store
            .purge_through(log_id.index, &log_id_to_pb(&log_id).encode_to_vec())
    }
}

// `RaftLogStore` must satisfy openraft's bounds; keep the assertion near
// the impls.
const _: fn() = || {
    fn assert_log_storage<T: RaftLogStorage<TypeConfig>>() {}
    assert_log_storage::<RaftLogStore>();
};
