//! System tests: real `matchengine-node` processes on loopback, driven
//! through the client and admin APIs, the operator's planner and fault
//! injection. One test binary (one link), a module per subject.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod corruption;
mod env_contract;
mod faults;
mod full_disk;
mod launcher;
mod operator_loopback;
mod processes;
mod security;
