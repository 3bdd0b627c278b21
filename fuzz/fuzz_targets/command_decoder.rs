//! The log entry's command batch decoder (bytes -> `matchengine.v1`
//! CommandBatch -> validated commands) on arbitrary bytes: never a panic;
//! whatever decodes re-encodes to a batch that decodes to the same value.
//! The book commands it accepts then run on an engine with the full range
//! of wire values (the book_commands target only makes small ones): never
//! a panic, and a rejection changes nothing.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use matchengine_book::{Engine, Limits};
use matchengine_codec::batch::{CommandBatch, NodeCommand};

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = CommandBatch::from_encoded(Bytes::copy_from_slice(data)).decode() else {
        return;
    };
    // Byte equality with the input cannot hold (protobuf allows unknown
    // fields, repeated fields and long varints); value equality must.
    let encoded = CommandBatch::new(decoded.timestamp_ns, &decoded.commands);
    assert_eq!(
        encoded.decode().as_ref(),
        Ok(&decoded),
        "a decoded batch does not survive re-encoding"
    );

    let limits = Limits {
        instruments_max: 4,
        orders_open_max: 32,
        orders_per_account_max: 8,
        price_levels_per_side_max: 8,
        finished_orders_retained_max: 16,
    };
    let mut engine = Engine::new(limits).expect("valid limits");
    let mut events = Vec::new();
    for command in &decoded.commands {
        let NodeCommand::Book(command) = command else {
            continue;
        };
        let before = engine.digest();
        events.clear();
        let reply = engine.execute(command, decoded.timestamp_ns, &mut events);
        if reply.result.is_err() {
            assert_eq!(engine.digest(), before, "a rejection changed the state");
            assert!(events.is_empty(), "a rejection emitted events");
        }
    }
});
