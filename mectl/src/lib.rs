//! `mectl`, MatchEngine's command line, and the load generator behind
//! `mectl load`. Apart from the client library (`matchengine-client`), so
//! that a program using the library compiles neither.

pub mod load;
