//! Every decoder of bytes that come from outside the process (peers, disk,
//! clients) on random and mutated input: an error, never a panic. (The
//! book's snapshot decoder and the command batch decoder are also fuzzed
//! with cargo fuzz: scripts/fuzz.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use matchengine_codec::batch::{CommandBatch, KvCommand, NodeCommand};
use matchengine_node::raft::network::messages::{append_request_from_pb, vote_request_from_pb};
use matchengine_node::raft::proto::entry_from_pb;
use matchengine_node::replica::state::{ReplicatedState, StateLimits};
use matchengine_node::storage::snapshot_file;
use matchengine_proto::v1 as pb;
use proptest::prelude::*;
use prost::Message;

fn sample_state_body() -> Vec<u8> {
    let mut state = ReplicatedState::new(StateLimits::default()).unwrap();
    let batch = CommandBatch::new(
        1,
        &[
            NodeCommand::Kv(KvCommand::Put {
                key: Bytes::from_static(b"k1"),
                value: Bytes::from_static(b"v1"),
            }),
            NodeCommand::Kv(KvCommand::Put {
                key: Bytes::from_static(b"k2"),
                value: Bytes::from_static(b"v2"),
            }),
        ],
    );
    state.apply(&batch.decode().unwrap(), &mut Vec::new());
    let mut body = Vec::new();
    state.encode(&mut body);
    body
}

fn decode_everything(bytes: &[u8]) {
    let _ = CommandBatch::from_encoded(Bytes::copy_from_slice(bytes)).decode();
    let _ = ReplicatedState::decode(Bytes::copy_from_slice(bytes));
    let _ = snapshot_file::decode(
        std::path::Path::new("fuzz.snap"),
        Bytes::copy_from_slice(bytes),
    );
    if let Ok(entry) = pb::Entry::decode(bytes) {
        let _ = entry_from_pb(entry);
    }
    if let Ok(request) = pb::AppendEntriesRequest::decode(bytes) {
        let _ = append_request_from_pb(request);
    }
    if let Ok(request) = pb::VoteRequest::decode(bytes) {
        let _ = vote_request_from_pb(request);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    #[test]
    fn mutated_state_snapshots_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut body = sample_state_body();
        for (at, bits) in flips {
            let at = at % body.len();
            body[at] ^= bits | 1;
        }
        decode_everything(&body);
        let file = snapshot_file::encode(b"", &body);
        decode_everything(&file);
    }
}
