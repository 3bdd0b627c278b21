//! Deterministic hashing for state digests: the same input gives the same
//! hash on every platform and build, so replicas can compare digests.
//!
//! The digest is a multiset hash: the sum (mod 2^64, in two lanes) of one
//! hash per order and per remembered finished order, plus the engine's
//! counters. Adding or removing an order is O(1), so the digest is kept up to
//! date as the state changes and reading it costs O(instruments). Time
//! priority is part of each order's hash, so two books that differ only in
//! queue order differ in digest. Not cryptographic: it detects replica
//! divergence, not an adversary.

use std::fmt;

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

/// The 64x64->128 multiply-fold mixer (as in wyhash).
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// Hashes a short sequence of words; the same words give the same hash on
/// every platform.
#[inline]
pub fn hash_words(words: &[u64]) -> u64 {
    let mut state = P2 ^ (words.len() as u64);
    let mut pairs = words.chunks_exact(2);
    for pair in &mut pairs {
        state = fold(pair[0] ^ P0 ^ state, pair[1] ^ P1);
    }
    if let [last] = pairs.remainder() {
        state = fold(*last ^ P0 ^ state, P1);
    }
    fold(state ^ P0, P2)
}

/// Hashes a byte string (multiply-fold over 8-byte words, length-aware).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut state = P2 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut array = [0u8; 8];
        array.copy_from_slice(word);
        state = fold(state ^ u64::from_le_bytes(array) ^ P0, P1);
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    fold(state ^ u64::from_le_bytes(tail) ^ P1, P2)
}

/// A 128-bit digest of the engine's whole state.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StateDigest(pub u128);

impl fmt::Display for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for StateDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateDigest({self})")
    }
}

/// A running multiset hash: add and remove elements (each already hashed
/// to a `u64`) in any order; equal multisets give equal values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetHash {
    low: u64,
    high: u64,
}

impl SetHash {
    #[inline]
    pub fn add(&mut self, element: u64) {
        self.low = self.low.wrapping_add(element);
        self.high = self.high.wrapping_add(fold(element ^ P1, P0));
    }

    #[inline]
    pub fn remove(&mut self, element: u64) {
        self.low = self.low.wrapping_sub(element);
        self.high = self.high.wrapping_sub(fold(element ^ P1, P0));
    }

    /// Combines two sets (the multiset union).
    pub fn combine(self, other: SetHash) -> SetHash {
        SetHash {
            low: self.low.wrapping_add(other.low),
            high: self.high.wrapping_add(other.high),
        }
    }

    /// Folds the set with other state words into a digest.
    pub fn finish(&self, words: &[u64]) -> StateDigest {
        let low = hash_words(&[self.low, hash_words(words)]);
        let high = hash_words(&[self.high, low, P2]);
        StateDigest((u128::from(high) << 64) | u128::from(low))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_hash_is_order_independent_and_reversible() {
        let mut forward = SetHash::default();
        let mut backward = SetHash::default();
        for element in [3, 1, 4, 1, 5] {
            forward.add(hash_words(&[element]));
        }
        for element in [5, 1, 4, 1, 3] {
            backward.add(hash_words(&[element]));
        }
        assert_eq!(forward, backward);
        backward.add(hash_words(&[9]));
        assert_ne!(forward, backward);
        backward.remove(hash_words(&[9]));
        assert_eq!(forward, backward);
    }

    #[test]
    fn hash_bytes_sees_every_byte_and_the_length() {
        let base = hash_bytes(b"matchengine");
        assert_ne!(base, hash_bytes(b"matchenginE"));
        assert_ne!(base, hash_bytes(b"matchengine\0"));
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
    }

    #[test]
    fn hash_words_depends_on_every_word_and_length() {
        let base = hash_words(&[1, 2, 3]);
        assert_ne!(base, hash_words(&[1, 2, 4]));
        assert_ne!(base, hash_words(&[0, 2, 3]));
        assert_ne!(base, hash_words(&[1, 2, 3, 0]));
        assert_ne!(hash_words(&[]), hash_words(&[0]));
    }
}
