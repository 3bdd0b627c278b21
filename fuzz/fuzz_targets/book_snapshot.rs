//! The book's snapshot decoder on arbitrary bytes: never a panic; whatever
//! decodes re-encodes to bytes that decode to the same digest, and that
//! encoding is a fixed point.
//!
//! Every input is tried twice: as it is (the checksum path: almost every
//! mutation stops at the checksum), and with its last 8 bytes replaced by
//! the checksum of the rest (`seal_snapshot`), so that a mutated body
//! reaches the decoder behind the checksum. The seeds in
//! fuzz/corpus/book_snapshot/ are valid snapshots, so both start valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matchengine_book::{Engine, seal_snapshot};

/// Checksum trailer length, in bytes (a little-endian u64).
const CHECKSUM_BYTES: usize = 8;

fn check(bytes: &[u8]) {
    let Ok(engine) = Engine::decode_snapshot(bytes) else {
        return;
    };
    let mut again = Vec::new();
    engine.encode_snapshot(&mut again);
    let restored = Engine::decode_snapshot(&again).expect("a re-encoded snapshot decodes");
    assert_eq!(restored.digest(), engine.digest());
    let mut third = Vec::new();
    restored.encode_snapshot(&mut third);
    assert_eq!(third, again, "re-encoding is not a fixed point");
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(body_len) = data.len().checked_sub(CHECKSUM_BYTES) {
        let mut sealed = data[..body_len].to_vec();
        seal_snapshot(&mut sealed);
        if sealed != data {
            check(&sealed);
        }
    }
});
