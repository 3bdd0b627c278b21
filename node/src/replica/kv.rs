//! The replicated key-value namespace beside the order books: put, get,
//! delete and range by prefix over byte strings, with bounded key and value
//! sizes and a bounded number of keys. Pure and deterministic. The map is
//! persistent (structure-shared), so a point-in-time copy for a snapshot is
//! O(1) and never stalls apply.

use bytes::Bytes;
use imbl::OrdMap;
use matchengine_digest::{SetHash, hash_bytes, hash_words};

/// Bounds on the namespace. Part of the replicated state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KvLimits {
    pub key_bytes_max: u32,
    pub value_bytes_max: u32,
    pub keys_max: u32,
}

impl Default for KvLimits {
    fn default() -> Self {
        KvLimits {
            key_bytes_max: 1_024,
            value_bytes_max: 64 * 1_024,
            keys_max: 10_000_000,
        }
    }
}

/// Why a write was refused. Refusals change nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvReject {
    #[error("key is empty")]
    EmptyKey,
    #[error("key is longer than {0} bytes")]
    KeyTooLarge(u32),
    #[error("value is longer than {0} bytes")]
    ValueTooLarge(u32),
    #[error("the store holds its maximum of {0} keys")]
    KeyLimitReached(u32),
}

impl KvLimits {
    /// Checks a key (and value) against the bounds. The API runs this before
    /// proposing; apply runs it again so that the outcome is deterministic
    /// whatever was proposed.
    pub fn check(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), KvReject> {
        if key.is_empty() {
            return Err(KvReject::EmptyKey);
        }
        if key.len() > self.key_bytes_max as usize {
            return Err(KvReject::KeyTooLarge(self.key_bytes_max));
        }
        if let Some(value) = value
            && value.len() > self.value_bytes_max as usize
        {
            return Err(KvReject::ValueTooLarge(self.value_bytes_max));
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct KvStore {
    limits: KvLimits,
    map: OrdMap<Bytes, Bytes>,
    digest: SetHash,
}

fn entry_hash(key: &[u8], value: &[u8]) -> u64 {
    hash_words(&[3, hash_bytes(key), hash_bytes(value)])
}

impl KvStore {
    pub fn new(limits: KvLimits) -> KvStore {
        KvStore {
            limits,
            map: OrdMap::new(),
            digest: SetHash::default(),
        }
    }

    pub fn limits(&self) -> &KvLimits {
        &self.limits
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Sets `key` to `value`; returns whether the key held a value before.
    pub fn put(&mut self, key: Bytes, value: Bytes) -> Result<bool, KvReject> {
        self.limits.check(&key, Some(&value))?;
        let existed = self.map.contains_key(&key);
        if !existed && self.map.len() >= self.limits.keys_max as usize {
            return Err(KvReject::KeyLimitReached(self.limits.keys_max));
        }
        self.digest.add(entry_hash(&key, &value));
        if let Some(old) = self.map.insert(key.clone(), value) {
            self.digest.remove(entry_hash(&key, &old));
        }
        Ok(existed)
    }

    /// Removes `key`; returns whether there was anything to remove.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, KvReject> {
        self.limits.check(key, None)?;
        match self.map.remove(key) {
            Some(old) => {
                self.digest.remove(entry_hash(key, &old));
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.map.get(key)
    }

    /// Up to `limit` entries whose keys start with `prefix`, in key order,
    /// starting after `start_after` when given (for paging).
    pub fn range_by_prefix(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Bytes, Bytes)> {
        let start = Bytes::copy_from_slice(start_after.unwrap_or(prefix));
        self.map
            .range(start..)
            .skip_while(|(key, _)| start_after.is_some_and(|after| key.as_ref() == after))
            .take_while(|(key, _)| key.starts_with(prefix))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// Entries in key order (for snapshots).
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> + '_ {
        self.map.iter()
    }

    /// The multiset hash of every entry, kept up to date as it changes.
    pub fn digest(&self) -> SetHash {
        self.digest
    }

    /// Bytes of keys and values held (not counting the tree's own nodes).
    pub fn payload_bytes(&self) -> usize {
        self.map
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn put_get_delete_report_what_happened() {
        let mut kv = KvStore::new(KvLimits::default());
        assert_eq!(kv.put(bytes("a"), bytes("1")), Ok(false));
        assert_eq!(kv.put(bytes("a"), bytes("2")), Ok(true));
        assert_eq!(kv.get(b"a"), Some(&bytes("2")));
        assert_eq!(kv.delete(b"a"), Ok(true));
        assert_eq!(kv.delete(b"a"), Ok(false), "nothing was deleted");
        assert_eq!(kv.get(b"a"), None);
    }

    #[test]
    fn bounds_are_rejections_that_change_nothing() {
        let limits = KvLimits {
            key_bytes_max: 4,
            value_bytes_max: 4,
            keys_max: 2,
        };
        let mut kv = KvStore::new(limits);
        assert_eq!(kv.put(bytes(""), bytes("v")), Err(KvReject::EmptyKey));
        assert_eq!(
            kv.put(bytes("toolong"), bytes("v")),
            Err(KvReject::KeyTooLarge(4))
        );
        assert_eq!(
            kv.put(bytes("k"), bytes("toolong")),
            Err(KvReject::ValueTooLarge(4))
        );
        kv.put(bytes("k1"), bytes("v")).unwrap();
        kv.put(bytes("k2"), bytes("v")).unwrap();
        let digest = kv.digest();
        assert_eq!(
            kv.put(bytes("k3"), bytes("v")),
            Err(KvReject::KeyLimitReached(2))
        );
        assert_eq!(
            kv.put(bytes("k1"), bytes("w")),
            Ok(true),
            "overwrites stay allowed"
        );
        assert_ne!(kv.digest(), digest);
        assert_eq!(kv.len(), 2);
    }

    #[test]
    fn digest_depends_on_content_not_history() {
        let mut first = KvStore::new(KvLimits::default());
        let mut second = KvStore::new(KvLimits::default());
        first.put(bytes("a"), bytes("1")).unwrap();
        first.put(bytes("b"), bytes("2")).unwrap();
        second.put(bytes("b"), bytes("x")).unwrap();
        second.put(bytes("a"), bytes("1")).unwrap();
        assert_ne!(first.digest(), second.digest());
        second.put(bytes("b"), bytes("2")).unwrap();
        assert_eq!(first.digest(), second.digest());
        second.delete(b"b").unwrap();
        assert_ne!(first.digest(), second.digest());
    }

    #[test]
    fn range_by_prefix_pages_in_key_order() {
        let mut kv = KvStore::new(KvLimits::default());
        for key in ["user/3", "user/1", "order/1", "user/2", "usex"] {
            kv.put(bytes(key), bytes("v")).unwrap();
        }
        let keys = |page: Vec<(Bytes, Bytes)>| page.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(kv.range_by_prefix(b"user/", None, 2)),
            vec![bytes("user/1"), bytes("user/2")]
        );
        assert_eq!(
            keys(kv.range_by_prefix(b"user/", Some(b"user/2"), 10)),
            vec![bytes("user/3")]
        );
        assert!(kv.range_by_prefix(b"none", None, 10).is_empty());
    }
}

#[cfg(test)]
mod scale_tests {
    use super::*;

    #[test]
    fn range_by_prefix_sees_every_key_of_a_large_map() {
        let mut kv = KvStore::new(KvLimits::default());
        for id in 0..10_000u64 {
            kv.put(
                Bytes::from(format!("crash/{id:012}")),
                Bytes::from_static(b"v"),
            )
            .unwrap();
        }
        kv.put(Bytes::from_static(b"other"), Bytes::from_static(b"v"))
            .unwrap();
        assert_eq!(
            kv.range_by_prefix(b"crash/", None, usize::MAX).len(),
            10_000
        );
        assert_eq!(kv.range_by_prefix(b"crash/", None, 10).len(), 10);
    }
}
