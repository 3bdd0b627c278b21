//! The replicated state's snapshot image: the body of a snapshot file (the
//! book snapshot, then the key-value limits and entries in key order), a
//! cheap point-in-time copy to encode off the apply path, and the
//! validating decoder that rebuilds a state from the bytes.

use bytes::{Buf, Bytes};
use matchengine_book::{Engine, FrozenEngine, SnapshotError};

use super::kv::{KvLimits, KvStore};
use super::state::ReplicatedState;

/// A state snapshot body that cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateDecodeError {
    #[error("book snapshot: {0}")]
    Book(#[from] SnapshotError),
    #[error("key-value section: {0}")]
    Kv(&'static str),
}

impl ReplicatedState {
    /// Appends the state's snapshot body: the book snapshot (length-prefixed),
    /// then the key-value limits and entries in key order (varint lengths).
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_body(|book| self.engine.encode_snapshot(book), &self.kv, out);
    }

    /// A cheap point-in-time copy to encode later, off the apply path: the
    /// book without its indexes, the key-value map shared (persistent).
    pub fn freeze(&self) -> FrozenState {
        FrozenState {
            engine: self.engine.freeze(),
            kv: self.kv.clone(),
        }
    }

    /// Rebuilds a state from a snapshot body, checking every bound.
    pub fn decode(mut bytes: Bytes) -> Result<ReplicatedState, StateDecodeError> {
        let kv_error = StateDecodeError::Kv;
        if bytes.remaining() < 8 {
            return Err(kv_error("truncated before the book section"));
        }
        let book_len =
            usize::try_from(bytes.get_u64_le()).map_err(|_| kv_error("book section too long"))?;
        if book_len > bytes.remaining() {
            return Err(kv_error("book section longer than the snapshot"));
        }
        let engine = Engine::decode_snapshot(&bytes.split_to(book_len))?;
        let varint = |bytes: &mut Bytes| {
            prost::encoding::decode_varint(bytes).map_err(|_| kv_error("bad varint"))
        };
        let limit = |bytes: &mut Bytes| {
            u32::try_from(varint(bytes)?).map_err(|_| kv_error("limit out of range"))
        };
        let limits = KvLimits {
            key_bytes_max: limit(&mut bytes)?,
            value_bytes_max: limit(&mut bytes)?,
            keys_max: limit(&mut bytes)?,
        };
        let mut kv = KvStore::new(limits);
        let count =
            prost::encoding::decode_varint(&mut bytes).map_err(|_| kv_error("bad key count"))?;
        if count > u64::from(limits.keys_max) {
            return Err(kv_error("more keys than keys_max"));
        }
        let mut previous: Option<Bytes> = None;
        for _ in 0..count {
            let key = take_bytes(&mut bytes, limits.key_bytes_max)?;
            let value = take_bytes(&mut bytes, limits.value_bytes_max)?;
            if previous.as_ref().is_some_and(|previous| previous >= &key) {
                return Err(kv_error("keys out of order"));
            }
            previous = Some(key.clone());
            kv.put(key, value)
                .map_err(|_| kv_error("entry outside the key-value limits"))?;
        }
        if bytes.has_remaining() {
            return Err(kv_error("trailing bytes"));
        }
        Ok(ReplicatedState { engine, kv })
    }
}

/// A point-in-time copy of a [`ReplicatedState`], for snapshots.
#[derive(Clone, Debug)]
pub struct FrozenState {
    engine: FrozenEngine,
    kv: KvStore,
}

impl FrozenState {
    /// The same bytes [`ReplicatedState::encode`] gave when it was taken.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_body(|book| self.engine.encode_snapshot(book), &self.kv, out);
    }
}

fn encode_body(encode_book: impl FnOnce(&mut Vec<u8>), kv: &KvStore, out: &mut Vec<u8>) {
    let mut book = Vec::new();
    encode_book(&mut book);
    out.extend_from_slice(&(book.len() as u64).to_le_bytes());
    out.extend_from_slice(&book);
    let limits = kv.limits();
    for value in [
        limits.key_bytes_max,
        limits.value_bytes_max,
        limits.keys_max,
    ] {
        prost::encoding::encode_varint(u64::from(value), out);
    }
    prost::encoding::encode_varint(kv.len() as u64, out);
    for (key, value) in kv.iter() {
        prost::encoding::encode_varint(key.len() as u64, out);
        out.extend_from_slice(key);
        prost::encoding::encode_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }
}

fn take_bytes(bytes: &mut Bytes, max: u32) -> Result<Bytes, StateDecodeError> {
    let len =
        prost::encoding::decode_varint(bytes).map_err(|_| StateDecodeError::Kv("bad length"))?;
    if len > u64::from(max) || len > bytes.remaining() as u64 {
        return Err(StateDecodeError::Kv(
            "length over its bound or past the end",
        ));
    }
    Ok(bytes.split_to(len as usize))
}
