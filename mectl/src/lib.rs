//! `mectl`, MatchEngine's command line: the load generator behind `mectl
//! load` and the local cluster launcher behind `mectl cluster`. Apart from
//! the client library (`matchengine-client`), so that a program using the
//! library compiles neither.

pub mod cluster;
pub mod load;
pub mod procfs;
