//! `pookeeper-bench`: a load generator that speaks the ZooKeeper binary
//! protocol itself (a minimal jute client over `std::net::TcpStream`), so
//! pookeeper and Apache ZooKeeper are measured by exactly the same code.
//!
//! - [`jute`]: the few records the client sends and reads.
//! - [`client`]: one session (handshake, framing, batched writes).
//! - [`run`]: pipelined sessions, one thread each, `depth` outstanding.
//! - [`watch`]: watch fan-out (one writer, N re-arming watchers).
//! - [`bench`](mod@bench): setup / run / teardown, bulk load, wait-until-readable.
//! - [`hist`]: the log-linear latency histogram.
//! - [`json`], [`report`]: results as JSON lines, and BENCHMARKS.md + SVG.
//!
//! The side-by-side comparison is `tests/bench/compare.sh` (see
//! `tests/bench/README.md`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bench;
pub mod client;
pub mod hist;
pub mod json;
pub mod jute;
pub mod report;
pub mod run;
pub mod watch;
