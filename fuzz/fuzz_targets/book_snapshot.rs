//! The book's snapshot decoder on arbitrary bytes: never a panic; whatever
//! decodes re-encodes to bytes that decode to the same digest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matchengine_book::Engine;

fuzz_target!(|data: &[u8]| {
    if let Ok(engine) = Engine::decode_snapshot(data) {
        let mut again = Vec::new();
        engine.encode_snapshot(&mut again);
        let restored = Engine::decode_snapshot(&again).expect("a re-encoded snapshot decodes");
        assert_eq!(restored.digest(), engine.digest());
    }
});
