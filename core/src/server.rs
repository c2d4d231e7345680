//! The server: connections, sessions, dispatch. (stub, being written)
use crate::{Config, ConfigError, ConnId, Input, Output};
use std::net::SocketAddr;
use std::time::Instant;

/// Counters for monitoring.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Packets received.
    pub packets_received: u64,
}

/// The ZooKeeper server state machine.
pub struct Server {
    _config: Config,
}

impl Server {
    /// Creates a server. `wall_ms` is the wall clock at `now`.
    pub fn new(config: Config, _now: Instant, _wall_ms: i64) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self { _config: config })
    }
    /// Registers a new connection.
    pub fn accept(&mut self, _now: Instant, _peer: Option<SocketAddr>) -> ConnId {
        ConnId(1)
    }
    /// Feeds one input.
    pub fn handle(&mut self, _now: Instant, _input: Input<'_>) {}
    /// Next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        None
    }
    /// Next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}
