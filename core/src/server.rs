//! The server: the composition root. It holds the state each concern
//! works on, routes inputs to them and merges their outputs and deadlines;
//! the crate docs describe the request path. Each child module is an
//! `impl Server` block for one concern:
//!
//! | module | concern |
//! | --- | --- |
//! | `conn` | what is kept per connection and per session |
//! | `dispatch` | framing, dialect sniffing, one dispatch per decoded request |
//! | `session` | handshake, passwords, expiry buckets, closeSession, the reaper |
//! | `auth` | addauth, SASL, the caps on a connection's ids |
//! | `reads` | reads, multiRead, watches, setWatches, from committed state |
//! | `writes` | prep into a Txn, ordering, apply at commit, watches, replies |
//! | `output` | the per-connection gate, latency statistics, closing |
//! | `snapshot` | recovery from snapshot and log, snapshots while serving |
//! | `text_dialect` | the seed's text protocol |
//! | `views` | four-letter words and what they print |
//! | `crypto` | HMAC-SHA1, digest ids, base64 |

use crate::acl::{self, perm};
use crate::config::Config;
use crate::path;
use crate::pipeline::{Outstanding, Sequencer, Standalone};
use crate::prep::Prep;
use crate::proto::records::{
    self, encode_acls, encode_stat, op, reply_header, xid, ConnectRequest, Id, MultiOp, Request,
};
use crate::proto::text::{self, Command};
use crate::proto::{Reader, Writer};
use crate::txn::{apply, release_triggers, Database, OpResult, Trigger, Txn, TxnOp};
use crate::watch::{Event, Kind, Watches};
use crate::{CloseReason, ConfigError, ConnId, ErrorCode, Input, Output, SessionId, Stats, Zxid};
use bytes::{Buf, Bytes, BytesMut};
use hashbrown::HashMap;
use output::Waiting;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use writes::{Completion, ReplyKind};

mod auth;
mod conn;
mod crypto;
mod dispatch;
mod output;
mod reads;
mod session;
mod snapshot;
mod text_dialect;
mod views;
mod writes;

use auth::{auth_in, is_write};
use conn::{Conn, Dialect, Session};
use crypto::base64;
pub(crate) use crypto::{digest_id, hmac_sha1, seeded_bytes};
use output::op_name;
use output::{ConnStats, Started};
pub use snapshot::{Recovered, RecoveryError};

/// How long a connection may stay without a session (ZooKeeper's
/// `zookeeper.nio.sessionlessCnxnTimeout`, 10 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Log events kept between two drains of [`Server::poll_log`].
const MAX_LOG_EVENTS: usize = 4096;

/// The ZooKeeper server state machine. See the crate docs for the driving
/// contract.
pub struct Server {
    config: Config,
    db: Database,
    watches: Watches,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: u64,
    sessions: HashMap<i64, Session>,
    expiry: BTreeSet<(Instant, i64)>,
    handshakes: BTreeSet<(Instant, ConnId)>,
    per_ip: HashMap<IpAddr, u32>,
    next_session_id: i64,
    /// Orders writes and decides when they commit.
    seq: Standalone,
    /// Writes ordered and not yet committed, oldest first, with what to do
    /// when they commit.
    pending: VecDeque<(Txn, Completion)>,
    /// Their changes, which later writes are validated against.
    outstanding: Outstanding,
    ready: VecDeque<Output>,
    start: Instant,
    now: Instant,
    wall_at_start: i64,
    stats: Stats,
    triggers: Vec<Trigger>,
    events: Vec<Event>,
    /// When the container/TTL reaper runs next.
    next_reap: Instant,
    /// The request being handled: when it arrived, whether it is a write,
    /// its `cons` name (latency bookkeeping of its reply).
    current: Started,
    /// The connection whose waiting requests are being answered.
    flushing: Option<ConnId>,
    /// An operator asked for a snapshot (`csnp`).
    snapshot_requested: bool,
    /// SASL nonces handed out (part of each nonce's seed).
    sasl_nonces: u64,
    /// The snapshot being written, if any.
    snap: Option<crate::storage::SnapshotWriter>,
    /// Log lines for the runtime ([`Server::poll_log`]), at most
    /// `MAX_LOG_EVENTS`; `log_dropped` counts what did not fit.
    log_events: VecDeque<crate::LogEvent>,
    log_dropped: u64,
    /// The connection whose bytes are being handled, and the reply bytes
    /// emitted for it so far (see `Config::output_burst`).
    feeding: Option<ConnId>,
    fed_bytes: usize,
    /// Bytes the text protocol's newline search has looked at (tests check
    /// that it stays linear in the input).
    #[cfg(test)]
    pub(crate) text_bytes_scanned: u64,
}

/// What [`Server::snapshot_step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotProgress {
    /// No snapshot is under way.
    Idle,
    /// Bytes were appended; more will follow.
    More,
    /// The last bytes were appended: the snapshot of the state at `zxid` is
    /// complete.
    Done {
        /// The zxid the snapshot stands for.
        zxid: i64,
    },
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("connections", &self.conns.len())
            .field("sessions", &self.sessions.len())
            .field("znodes", &self.db.tree.len())
            .field("last_zxid", &self.seq.last_ordered())
            .field("committed_zxid", &self.seq.committed())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Creates a server with an empty tree. `now` is the current monotonic
    /// time and `wall_ms` the wall clock (ms since the Unix epoch) at that
    /// instant; later wall times are derived from `now`, so the server never
    /// reads a clock.
    pub fn new(config: Config, now: Instant, wall_ms: i64) -> Result<Self, ConfigError> {
        config.validate()?;
        // ZooKeeper: ((wall << 24) >>> 8) | (myid << 56).
        let base = (((wall_ms as u64) << 24) >> 8) as i64;
        let next_session_id = base | ((config.server_id as i64) << 56);
        let next_reap = now + config.container_check_interval;
        Ok(Self {
            config,
            db: Database::default(),
            watches: Watches::default(),
            conns: BTreeMap::new(),
            next_conn: 1,
            sessions: HashMap::new(),
            expiry: BTreeSet::new(),
            handshakes: BTreeSet::new(),
            per_ip: HashMap::new(),
            next_session_id,
            seq: Standalone::default(),
            pending: VecDeque::new(),
            outstanding: Outstanding::default(),
            ready: VecDeque::new(),
            start: now,
            now,
            wall_at_start: wall_ms,
            stats: Stats::default(),
            triggers: Vec::new(),
            events: Vec::new(),
            next_reap,
            current: Started {
                at: now,
                write: false,
                op: None,
            },
            flushing: None,
            snapshot_requested: false,
            sasl_nonces: 0,
            snap: None,
            log_events: VecDeque::new(),
            log_dropped: 0,
            feeding: None,
            fed_bytes: 0,
            #[cfg(test)]
            text_bytes_scanned: 0,
        })
    }

    /// Registers a new connection. `peer` is the client's address when known
    /// (used for `maxClientCnxns`, `ip` ACLs and the four-letter words).
    /// Drain [`Server::poll_output`] afterwards: a refused connection is
    /// closed at once.
    pub fn accept(&mut self, now: Instant, peer: Option<SocketAddr>) -> ConnId {
        self.advance(now);
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.stats.connections_accepted += 1;
        let deadline = self.now + HANDSHAKE_TIMEOUT;
        let conn = Conn::new(peer, deadline, self.wall_now());
        self.conns.insert(id, conn);
        self.handshakes.insert((deadline, id));
        if let Some(ip) = peer.map(|p| p.ip()) {
            let n = self.per_ip.entry(ip).or_insert(0);
            *n += 1;
            let max = self.config.max_client_cnxns;
            if max != 0 && *n > max {
                self.stats.connections_rejected += 1;
                self.close_now(id, CloseReason::TooManyConnections { max });
            }
        }
        id
    }

    /// Feeds one input. Never fails: bad peer bytes close that connection.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        self.advance(now);
        match input {
            Input::Received { conn, bytes } => self.on_bytes(conn, bytes),
            Input::PeerClosed { conn } => self.drop_conn(conn),
            Input::Tick => self.on_tick(),
            Input::Durable { zxid } => self.on_durable(zxid),
        }
    }

    /// The next thing to do, if any. Drain until `None` after every
    /// `accept`/`handle`.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        while let Some(out) = self.ready.pop_front() {
            match &out {
                Output::Append { .. } => return Some(out),
                Output::Transmit { conn, .. } => {
                    if let Some(c) = self.conns.get_mut(conn) {
                        // A four-letter word's answer is not a packet to
                        // ZooKeeper's counters.
                        if !c.four_letter {
                            c.packets_sent += 1;
                            self.stats.packets_sent += 1;
                        }
                        return Some(out);
                    }
                }
                Output::Close { conn, .. } => {
                    if self.conns.contains_key(conn) {
                        self.drop_conn(*conn);
                        return Some(out);
                    }
                }
            }
        }
        None
    }

    /// The next line for the server's log, if any (see [`crate::LogEvent`]).
    /// Drain it after the outputs; what is not drained is bounded (the
    /// oldest events stay, later ones are only counted).
    pub fn poll_log(&mut self) -> Option<crate::LogEvent> {
        if let Some(e) = self.log_events.pop_front() {
            return Some(e);
        }
        let count = std::mem::take(&mut self.log_dropped);
        (count > 0).then_some(crate::LogEvent::Dropped { count })
    }

    fn log(&mut self, e: crate::LogEvent) {
        if self.log_events.len() < MAX_LOG_EVENTS {
            self.log_events.push_back(e);
        } else {
            self.log_dropped += 1;
        }
    }

    /// Whether `conn` has received requests that are not handled yet,
    /// because one input produced `Config::output_burst` bytes of replies.
    /// Once the runtime has room for more replies for it, it feeds
    /// `Input::Received` with no bytes to continue. Never true for a
    /// connection that is closing or unknown.
    pub fn has_pending_input(&self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        if c.closing || c.inbuf.len() < 4 {
            return false;
        }
        match c.dialect {
            Dialect::Text => c.inbuf.len() > c.scanned,
            Dialect::Unknown => true,
            Dialect::Binary => {
                let len = i32::from_be_bytes([c.inbuf[0], c.inbuf[1], c.inbuf[2], c.inbuf[3]]);
                len < 0 || c.inbuf.len() >= 4 + len as usize
            }
        }
    }

    /// When to call `handle(now, Input::Tick)` next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let s = self.expiry.first().map(|e| e.0);
        let h = self.handshakes.first().map(|e| e.0);
        let r = self.db.tree.has_special().then_some(self.next_reap);
        [s, h, r].into_iter().flatten().min()
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Lets the runtime report process facts the core cannot see, for
    /// `mntr` (open file descriptors and their limit).
    pub fn set_fd_counts(&mut self, open: u64, max: u64) {
        self.stats.open_fds = Some(open);
        self.stats.max_fds = Some(max);
    }

    /// Lets the runtime report the size of its files, for `conf` and `dirs`
    /// (snapshot directory, log directory).
    pub fn set_disk_usage(&mut self, data_dir_bytes: u64, log_dir_bytes: u64) {
        self.stats.data_dir_bytes = data_dir_bytes;
        self.stats.log_dir_bytes = log_dir_bytes;
    }

    /// Number of znodes.
    pub fn znode_count(&self) -> usize {
        self.db.tree.len()
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The zxid of the last write ordered.
    pub fn last_zxid(&self) -> Zxid {
        Zxid(self.seq.last_ordered())
    }

    /// The zxid of the last write committed and applied: what every read
    /// sees.
    pub fn committed_zxid(&self) -> Zxid {
        Zxid(self.db.last_zxid)
    }

    /// Checks internal invariants (tree consistency, ephemeral owners are
    /// open sessions). For tests and fuzzing.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.db.tree.check_invariants()?;
        for (owner, paths) in self.db.tree.all_ephemerals() {
            if !self.db.sessions.contains_key(&owner) {
                return Err(format!("ephemerals {paths:?} of closed session {owner:#x}"));
            }
        }
        Ok(())
    }

    // ----- time -----

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn wall_now(&self) -> i64 {
        self.wall_at_start + (self.now - self.start).as_millis() as i64
    }
}
