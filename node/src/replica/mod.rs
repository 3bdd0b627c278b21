//! The replicated state machine's pure core: the state every replica holds
//! (the order books and the key-value namespace), the one deterministic
//! function that applies a command batch to it, what each command did, the
//! admission check run before a command is proposed, and the state's
//! snapshot image. No I/O, no clock, no Raft: the Raft layer
//! ([`crate::raft`]) feeds it committed batches and stores its images.

pub mod admission;
pub mod image;
pub mod kv;
pub mod outcome;
pub mod state;
