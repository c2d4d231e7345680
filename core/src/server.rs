//! The server: connections, sessions, the request path and its outputs.
//!
//! ## How a request flows
//!
//! Bytes are framed per connection. A read is answered from the tree at
//! once. A write is validated (`prep`), becomes a [`Txn`] with the next zxid,
//! is emitted as [`Output::Append`], and is applied to the tree right away so
//! that later requests are validated against it. Everything a write causes
//! to leave the server (its reply and the watch notifications it fires), and
//! every reply produced after it, waits in one ordered queue until the log
//! reports the write durable ([`Input::Durable`]). So:
//!
//! * no client ever sees a state that is not durable (a read that follows a
//!   pending write is answered only once that write is durable);
//! * replies and notifications leave in exactly the order they were produced,
//!   which gives per-session FIFO and "notifications before the reply of the
//!   op that fired them", as in ZooKeeper;
//! * group commit falls out: all Appends of one loop turn can be synced
//!   together and released by one `Durable`.
//!
//! Applying at ordering time rather than at durability time is a deliberate
//! deviation from a strict "apply after commit" pipeline: it needs no overlay
//! of uncommitted changes for validation (ZooKeeper's `outstandingChanges`),
//! and since nothing derived from an undurable state is released early, it is
//! indistinguishable from the outside. A replicated leader that loses its
//! uncommitted tail will rebuild its tree from snapshot and log.

use crate::acl::{self, perm};
use crate::config::Config;
use crate::path;
use crate::prep::Prep;
use crate::proto::records::{
    self, encode_acls, encode_stat, op, reply_header, xid, ConnectRequest, Id, MultiOp, Request,
};
use crate::proto::text::{self, Command};
use crate::proto::{Reader, Writer};
use crate::txn::{apply, release_triggers, Database, OpResult, Trigger, Txn, TxnOp};
use crate::watch::{Event, Kind, Watches};
use crate::{CloseReason, ConfigError, ConnId, ErrorCode, Input, Output};
use bytes::{Buf, Bytes, BytesMut};
use hashbrown::HashMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What [`Server::recover`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The zxid of the snapshot used, if any.
    pub snapshot_zxid: Option<i64>,
    /// Transactions replayed from the log.
    pub txns_replayed: u64,
    /// The zxid recovered to.
    pub last_zxid: i64,
    /// (segment index, byte offset) of a torn tail that was cut off.
    pub torn_tail: Option<(usize, usize)>,
    /// Sessions restored.
    pub sessions: usize,
    /// Znodes restored.
    pub znodes: usize,
}

/// Why recovery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The snapshot is unusable.
    Snapshot(crate::storage::SnapshotError),
    /// A log segment is damaged.
    Log {
        /// Index of the segment in the list given.
        segment: usize,
        /// What is wrong.
        error: crate::storage::LogError,
    },
    /// Transactions are missing between the snapshot and the log.
    Gap {
        /// The last zxid recovered.
        after: i64,
        /// The next zxid found.
        next: i64,
    },
}

impl std::fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::Snapshot(e) => write!(f, "{e}"),
            Self::Log { segment, error } => write!(f, "log segment #{segment}: {error}"),
            Self::Gap { after, next } => write!(
                f,
                "missing transactions: the log jumps from zxid {after:#x} to {next:#x}"
            ),
        }
    }
}

impl std::error::Error for RecoveryError {}

/// When a request arrived and whether it was a write (latency stats).
#[derive(Debug, Clone, Copy)]
struct Started {
    at: Instant,
    write: bool,
    /// ZooKeeper's name for the operation (`cons` lop), `None` for answers
    /// it keeps out of the connection's stats (auth, sasl).
    op: Option<&'static str>,
}

/// ZooKeeper's FinalRequestProcessor `lastOp` names.
fn op_name(opcode: i32) -> Option<&'static str> {
    Some(match opcode {
        op::PING => "PING",
        op::CREATE_SESSION => "SESS",
        op::MULTI => "MULT",
        op::MULTI_READ => "MLTR",
        op::CREATE | op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => "CREA",
        op::DELETE | op::DELETE_CONTAINER => "DELE",
        op::SET_DATA => "SETD",
        op::RECONFIG => "RECO",
        op::SET_ACL => "SETA",
        op::CLOSE_SESSION => "CLOS",
        op::SYNC => "SYNC",
        op::CHECK => "CHEC",
        op::EXISTS => "EXIS",
        op::GET_DATA => "GETD",
        op::SET_WATCHES => "SETW",
        op::SET_WATCHES2 => "STW2",
        op::ADD_WATCH => "ADDW",
        op::GET_ACL => "GETA",
        op::GET_CHILDREN | op::GET_CHILDREN2 => "GETC",
        op::GET_ALL_CHILDREN_NUMBER => "GETACN",
        op::CHECK_WATCHES => "CHKW",
        op::REMOVE_WATCHES => "REMW",
        op::WHO_AM_I => "HOMI",
        op::GET_EPHEMERALS => "GETE",
        _ => return None,
    })
}

/// What `cons` shows of a connection's replies (ServerCnxn's stats).
#[derive(Debug, Clone)]
struct ConnStats {
    /// Wall-clock ms when the connection was accepted.
    established: i64,
    last_op: &'static str,
    last_cxid: i64,
    last_zxid: i64,
    /// Server uptime (ms) at the last reply.
    last_response: u64,
    last_latency: u64,
    min_latency: u64,
    max_latency: u64,
    total_latency: u64,
    count: u64,
}

/// How long a connection may stay without a session (ZooKeeper's
/// `zookeeper.nio.sessionlessCnxnTimeout`, 10 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Log events kept between two drains of [`Server::poll_log`].
const MAX_LOG_EVENTS: usize = 4096;

/// Server-wide counters, for the four-letter words and embedding users.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Request packets received.
    pub packets_received: u64,
    /// Reply and notification packets sent.
    pub packets_sent: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Sum of request latencies (ms) for the average.
    pub latency_total_ms: u64,
    /// Requests whose latency was measured.
    pub latency_count: u64,
    /// Minimum latency seen (ms).
    pub latency_min_ms: u64,
    /// Maximum latency seen (ms).
    pub latency_max_ms: u64,
    /// Authentication attempts that failed.
    pub auth_failed: u64,
    /// Watch events withheld because the watcher may not read the node (the
    /// watch was consumed all the same).
    pub events_withheld: u64,
    /// Connections refused (maxClientCnxns).
    pub connections_rejected: u64,
    /// Latency of reads (ms), as ZooKeeper's `readlatency`.
    pub read_latency: crate::stats::Summary,
    /// Latency of writes (ms), as ZooKeeper's `updatelatency`.
    pub update_latency: crate::stats::Summary,
    /// Open file descriptors, when the runtime reports them.
    pub open_fds: Option<u64>,
    /// The file descriptor limit, when the runtime reports it.
    pub max_fds: Option<u64>,
    /// Bytes in the snapshot directory, when the runtime reports them.
    pub data_dir_bytes: u64,
    /// Bytes in the log directory, when the runtime reports them.
    pub log_dir_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// Nothing received yet.
    Unknown,
    /// ZooKeeper binary protocol.
    Binary,
    /// The seed's line-based text protocol.
    Text,
}

#[derive(Debug)]
struct Conn {
    peer: Option<SocketAddr>,
    inbuf: BytesMut,
    dialect: Dialect,
    /// The session, once the handshake was accepted.
    session: Option<i64>,
    /// A Close was decided; ignore further input.
    closing: bool,
    /// Authenticated ids (`ip:` is always there when the peer is known).
    auth: crate::acl::AuthIds,
    /// Handshake deadline while there is no session.
    handshake_deadline: Option<Instant>,
    packets_received: u64,
    packets_sent: u64,
    /// Text protocol: skipping the rest of an over-long line.
    discarding: bool,
    /// Text protocol: how many bytes of `inbuf` are known to hold no
    /// newline, so each received byte is looked at once (a line sent a byte
    /// at a time would otherwise be rescanned whole for every byte).
    scanned: usize,
    /// A closeSession was answered: requests pipelined behind it get
    /// SESSIONEXPIRED, then the connection closes after this input.
    session_closed: bool,
    /// The SASL exchange under way, once the client sent a sasl token.
    sasl: Option<Box<crate::sasl::DigestServer>>,
    stats: Box<ConnStats>,
    /// A four-letter-word connection.
    four_letter: bool,
}

#[derive(Debug)]
struct Session {
    timeout: Duration,
    conn: Option<ConnId>,
    expires: Instant,
    /// A CloseSession Txn was produced; the session is gone for clients.
    closing: bool,
}

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
    /// Highest zxid handed out (applied to the tree, maybe not durable).
    last_zxid: i64,
    /// Highest zxid reported durable.
    durable_zxid: i64,
    /// Outputs waiting for `durable_zxid` to reach their gate, with the
    /// arrival time of the request they answer (for latency stats).
    gated: VecDeque<(i64, Output, Option<Started>)>,
    ready: VecDeque<Output>,
    start: Instant,
    now: Instant,
    wall_at_start: i64,
    stats: Stats,
    triggers: Vec<Trigger>,
    events: Vec<Event>,
    /// When the container/TTL reaper runs next.
    next_reap: Instant,
    /// Whether the request being handled is a write (latency bookkeeping).
    current_is_write: bool,
    /// The `cons` name of the request being handled.
    current_op: Option<&'static str>,
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
            .field("last_zxid", &self.last_zxid)
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
            last_zxid: 0,
            durable_zxid: 0,
            gated: VecDeque::new(),
            ready: VecDeque::new(),
            start: now,
            now,
            wall_at_start: wall_ms,
            stats: Stats::default(),
            triggers: Vec::new(),
            events: Vec::new(),
            next_reap,
            current_is_write: false,
            current_op: None,
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

    /// Rebuilds a server from its newest valid snapshot (if any) and the log
    /// segments after it, in order. Transactions at or below the snapshot's
    /// zxid are skipped; the rest must follow each other without gaps. A
    /// torn tail is allowed only at the end of the last segment (it is cut
    /// off: `Recovered::torn_tail` says where). Sessions come back with their
    /// timeouts, counted from `now`, so clients can resume them.
    pub fn recover(
        config: Config,
        now: Instant,
        wall_ms: i64,
        snapshot: Option<&[u8]>,
        segments: &[&[u8]],
    ) -> Result<(Self, Recovered), RecoveryError> {
        let mut server = Self::new(config, now, wall_ms).map_err(RecoveryError::Config)?;
        let mut report = Recovered::default();
        if let Some(bytes) = snapshot {
            server.db = crate::storage::decode_snapshot(bytes).map_err(RecoveryError::Snapshot)?;
            report.snapshot_zxid = Some(server.db.last_zxid);
        }
        let mut scratch = Vec::new();
        for (i, bytes) in segments.iter().enumerate() {
            let scan = crate::storage::scan_log(bytes)
                .map_err(|error| RecoveryError::Log { segment: i, error })?;
            if let crate::storage::LogEnd::TornTail { offset } = scan.end {
                if i + 1 != segments.len() {
                    return Err(RecoveryError::Log {
                        segment: i,
                        error: crate::storage::LogError::Corrupt {
                            offset,
                            reason: "torn record in a segment that is not the last".into(),
                        },
                    });
                }
                report.torn_tail = Some((i, offset));
            }
            for txn in scan.txns {
                if txn.zxid <= server.db.last_zxid {
                    continue;
                }
                if txn.zxid != server.db.last_zxid + 1 {
                    return Err(RecoveryError::Gap {
                        after: server.db.last_zxid,
                        next: txn.zxid,
                    });
                }
                apply(&mut server.db, &txn, &mut scratch);
                release_triggers(&mut server.db.tree, &mut scratch);
                report.txns_replayed += 1;
            }
        }
        let last = server.db.last_zxid;
        server.last_zxid = last;
        server.durable_zxid = last;
        report.last_zxid = last;
        let restored: Vec<(i64, i32)> = server.db.sessions.iter().map(|(&k, &v)| (k, v)).collect();
        for (sid, timeout_ms) in restored {
            let timeout = Duration::from_millis(timeout_ms.max(0) as u64);
            let expires = server.expiry_for(timeout);
            server.sessions.insert(
                sid,
                Session {
                    timeout,
                    conn: None,
                    expires,
                    closing: false,
                },
            );
            server.expiry.insert((expires, sid));
            // Never hand out a restored id again.
            if sid >> 56 == server.next_session_id >> 56 && sid >= server.next_session_id {
                server.next_session_id = sid + 1;
            }
        }
        report.sessions = server.sessions.len();
        report.znodes = server.db.tree.len();
        Ok((server, report))
    }

    /// A snapshot of the whole state at the last ordered zxid, in one go
    /// (see `storage` for the format; tests and tools). Abandons a snapshot
    /// under way. Every ordered write is included, so install it only once
    /// the log is durable up to the returned zxid.
    pub fn snapshot(&mut self) -> (i64, Vec<u8>) {
        self.abort_snapshot();
        let zxid = self.begin_snapshot();
        let mut out = Vec::new();
        while self.snapshot_step(&mut out, usize::MAX) == SnapshotProgress::More {}
        (zxid, out)
    }

    /// Starts a snapshot of the state at the last ordered zxid (returned),
    /// to be written piece by piece with [`Server::snapshot_step`] while the
    /// server goes on serving: the snapshot shows the tree exactly as it was
    /// at that zxid, whatever changes in between (each node the walk has not
    /// reached yet is copied just before its first change). If one is under
    /// way already, returns its zxid.
    ///
    /// The runtime must install the finished file (rename it into place)
    /// only once the log is durable up to that zxid; starting when the log
    /// is fully flushed makes that automatic.
    pub fn begin_snapshot(&mut self) -> i64 {
        if let Some(s) = &self.snap {
            return s.zxid();
        }
        let w = crate::storage::SnapshotWriter::begin(&mut self.db);
        let zxid = w.zxid();
        self.snap = Some(w);
        zxid
    }

    /// Appends the next part of the snapshot under way to `out`: about
    /// `budget` bytes (at least one node). Call it between inputs (for
    /// instance once per loop turn with a budget of a megabyte or so, a few
    /// milliseconds of work) until it returns [`SnapshotProgress::Done`];
    /// the concatenation of the parts is the snapshot file.
    pub fn snapshot_step(&mut self, out: &mut Vec<u8>, budget: usize) -> SnapshotProgress {
        let Some(w) = self.snap.as_mut() else {
            return SnapshotProgress::Idle;
        };
        if !w.step(&mut self.db, out, budget) {
            return SnapshotProgress::More;
        }
        let zxid = w.zxid();
        self.snap = None;
        SnapshotProgress::Done { zxid }
    }

    /// The whole tree, for the fuzzer's comparisons.
    pub(crate) fn tree_dump(&self) -> Vec<crate::tree::DumpedNode> {
        self.db.tree.dump()
    }

    /// The zxid of the snapshot under way, if any.
    pub fn snapshot_in_progress(&self) -> Option<i64> {
        self.snap.as_ref().map(|s| s.zxid())
    }

    /// Abandons the snapshot under way (for instance when its file cannot be
    /// written); the runtime deletes what it wrote.
    pub fn abort_snapshot(&mut self) {
        self.snap = None;
        self.db.tree.end_snapshot();
    }

    /// Whether an operator asked for a snapshot since the last call (the
    /// `csnp` four-letter word). The runtime writes one when it sees true.
    pub fn take_snapshot_request(&mut self) -> bool {
        std::mem::take(&mut self.snapshot_requested)
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
        let mut auth = crate::acl::AuthIds::default();
        if let Some(p) = peer {
            auth.insert(Id {
                scheme: "ip".into(),
                id: p.ip().to_string(),
            });
        }
        let deadline = self.now + HANDSHAKE_TIMEOUT;
        self.conns.insert(
            id,
            Conn {
                peer,
                inbuf: BytesMut::new(),
                dialect: Dialect::Unknown,
                session: None,
                closing: false,
                auth,
                handshake_deadline: Some(deadline),
                packets_received: 0,
                packets_sent: 0,
                discarding: false,
                scanned: 0,
                session_closed: false,
                sasl: None,
                stats: Box::new(ConnStats {
                    established: self.wall_now(),
                    last_op: "NA",
                    last_cxid: -1,
                    last_zxid: -1,
                    last_response: 0,
                    last_latency: 0,
                    min_latency: u64::MAX,
                    max_latency: 0,
                    total_latency: 0,
                    count: 0,
                }),
                four_letter: false,
            },
        );
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
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
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

    /// Session expiry rounded up to the next tick, as ZooKeeper's
    /// expiry buckets do.
    fn expiry_for(&self, timeout: Duration) -> Instant {
        let tick = self.config.tick_time.as_millis().max(1);
        let at = (self.now - self.start + timeout).as_millis();
        let rounded = at.div_ceil(tick) * tick;
        self.start + Duration::from_millis(rounded as u64)
    }

    fn touch(&mut self, sid: i64) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        if s.closing {
            return;
        }
        let new = self.expiry_for(s.timeout);
        let old = s.expires;
        if new != old {
            self.expiry.remove(&(old, sid));
            self.expiry.insert((new, sid));
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.expires = new;
            }
        }
    }

    fn on_tick(&mut self) {
        let now = self.now;
        if self.next_reap <= now {
            self.reap();
        }
        while let Some(&(at, sid)) = self.expiry.first() {
            if at > now {
                break;
            }
            self.expiry.remove(&(at, sid));
            self.expire_session(sid, true);
        }
        while let Some(&(at, conn)) = self.handshakes.first() {
            if at > now {
                break;
            }
            self.handshakes.remove(&(at, conn));
            if self.conns.get(&conn).is_some_and(|c| c.session.is_none()) {
                self.close_conn(conn, CloseReason::HandshakeTimeout);
            }
        }
    }

    /// ZooKeeper's ContainerManager: deletes empty containers that have had
    /// children and expired TTL nodes, as ordinary (logged) deletes, which
    /// fire watches like any other.
    fn reap(&mut self) {
        let interval = self.config.container_check_interval;
        self.next_reap = self.now + interval;
        let per_check = (u128::from(self.config.container_max_per_minute) * interval.as_millis()
            / 60_000)
            .max(1) as usize;
        let never_used = self
            .config
            .container_max_never_used
            .map(|d| d.as_millis() as i64);
        let candidates = self
            .db
            .tree
            .reap_candidates(self.wall_now(), never_used, per_check);
        for path in candidates {
            self.write(0, 0, TxnOp::Delete { path });
        }
    }

    /// Ends a session through the log: its timeout passed (`timed_out`), or
    /// its text connection ended.
    fn expire_session(&mut self, sid: i64, timed_out: bool) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.closing {
            return;
        }
        s.closing = true;
        let conn = s.conn;
        let timeout_ms = s.timeout.as_millis() as u64;
        self.log(if timed_out {
            crate::LogEvent::SessionExpired {
                session: sid,
                timeout_ms,
            }
        } else {
            crate::LogEvent::SessionClosed { session: sid }
        });
        let (zxid, _) = self.write(sid, 0, TxnOp::CloseSession);
        self.sessions.remove(&sid);
        if let Some(c) = conn {
            self.close_gated(c, zxid, CloseReason::SessionExpired);
        }
    }

    // ----- outputs -----

    fn emit_timed(&mut self, gate: i64, out: Output, started: Option<Started>) {
        if let Output::Transmit { conn, data } = &out {
            if self.feeding == Some(*conn) {
                self.fed_bytes += data.len();
            }
        }
        if self.gated.is_empty() && gate <= self.durable_zxid {
            if let Some(t) = started {
                self.record_latency(t, &out);
            }
            self.ready.push_back(out);
        } else {
            self.gated.push_back((gate, out, started));
        }
    }

    fn emit(&mut self, gate: i64, out: Output) {
        self.emit_timed(gate, out, None);
    }

    fn record_latency(&mut self, t: Started, out: &Output) {
        let (started, write) = (t.at, t.write);
        let ms = (self.now - started).as_millis() as u64;
        if let (Some(op), Output::Transmit { conn, data }) = (t.op, out) {
            let uptime = (self.now - self.start).as_millis() as u64;
            // Binary connections only: text-protocol lines have no header.
            if let Some(c) = self
                .conns
                .get_mut(conn)
                .filter(|c| c.dialect == Dialect::Binary)
            {
                let s = &mut c.stats;
                // A reply frame: length, xid, zxid, err; the connect answer
                // (SESS) has no header.
                if op != "SESS" && data.len() >= 16 {
                    let xid = i32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                    if xid >= 0 {
                        s.last_cxid = i64::from(xid);
                    }
                    let mut z = [0u8; 8];
                    z.copy_from_slice(&data[8..16]);
                    s.last_zxid = i64::from_be_bytes(z);
                } else {
                    s.last_zxid = self.last_zxid;
                }
                s.last_op = op;
                s.last_response = uptime;
                s.last_latency = ms;
                s.min_latency = s.min_latency.min(ms);
                s.max_latency = s.max_latency.max(ms);
                s.total_latency += ms;
                s.count += 1;
            }
        }
        let s = &mut self.stats;
        if write {
            s.update_latency.add(ms);
        } else {
            s.read_latency.add(ms);
        }
        s.latency_min_ms = if s.latency_count == 0 {
            ms
        } else {
            s.latency_min_ms.min(ms)
        };
        s.latency_max_ms = s.latency_max_ms.max(ms);
        s.latency_total_ms += ms;
        s.latency_count += 1;
    }

    /// Sends a reply once everything ordered so far is durable; its latency
    /// counts from now (the request's arrival) to its release.
    fn send(&mut self, conn: ConnId, data: Bytes) {
        let gate = self.last_zxid;
        let started = Started {
            at: self.now,
            write: self.current_is_write,
            op: self.current_op,
        };
        self.emit_timed(gate, Output::Transmit { conn, data }, Some(started));
    }

    /// Sends a notification (not a reply: no latency).
    fn send_event(&mut self, conn: ConnId, data: Bytes) {
        let gate = self.last_zxid;
        self.emit(gate, Output::Transmit { conn, data });
    }

    fn close_gated(&mut self, conn: ConnId, gate: i64, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.closing {
                return;
            }
            c.closing = true;
            self.emit(gate, Output::Close { conn, reason });
        }
    }

    /// Closes after everything already queued for the connection.
    fn close_conn(&mut self, conn: ConnId, reason: CloseReason) {
        let gate = self.last_zxid;
        self.close_gated(conn, gate, reason);
    }

    /// Closes at once (nothing of this connection is queued yet).
    fn close_now(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
            self.ready.push_back(Output::Close { conn, reason });
        }
    }

    fn on_durable(&mut self, zxid: i64) {
        let zxid = zxid.min(self.last_zxid);
        if zxid > self.durable_zxid {
            self.durable_zxid = zxid;
        }
        while let Some((gate, _, _)) = self.gated.front() {
            if *gate > self.durable_zxid {
                break;
            }
            if let Some((_, out, started)) = self.gated.pop_front() {
                if let Some(t) = started {
                    self.record_latency(t, &out);
                }
                self.ready.push_back(out);
            }
        }
    }

    /// Forgets a connection: its watches go, its session (if any) lives on
    /// until it expires or is resumed.
    fn drop_conn(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.watches.remove_conn(conn);
        if let Some(d) = c.handshake_deadline {
            self.handshakes.remove(&(d, conn));
        }
        if let Some(sid) = c.session {
            if let Some(s) = self.sessions.get_mut(&sid) {
                if s.conn == Some(conn) {
                    s.conn = None;
                }
            }
            // A text connection's session ends with the connection, so its
            // ephemerals go at once (the seed's ECREATE semantics).
            if c.dialect == Dialect::Text {
                self.expire_session(sid, false);
            }
        }
        if let Some(ip) = c.peer.map(|p| p.ip()) {
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }

    // ----- the write path -----

    /// Orders a write: assigns the next zxid, emits the Append, applies it,
    /// fires watches. Returns the zxid and the result; the caller queues the
    /// reply.
    fn write(&mut self, session: i64, cxid: i32, op: TxnOp) -> (i64, OpResult) {
        self.last_zxid += 1;
        let txn = Txn {
            zxid: self.last_zxid,
            time: self.wall_now(),
            session,
            cxid,
            op,
        };
        self.ready.push_back(Output::Append {
            zxid: txn.zxid,
            entry: txn.encode(),
        });
        let mut triggers = std::mem::take(&mut self.triggers);
        triggers.clear();
        let result = apply(&mut self.db, &txn, &mut triggers);
        self.fire(&triggers, txn.zxid);
        release_triggers(&mut self.db.tree, &mut triggers);
        self.triggers = triggers;
        (txn.zxid, result)
    }

    /// Sends a watch notification in the connection's dialect. `zxid` is the
    /// transaction that fired it (ZooKeeper 3.9 puts it in the header; -1
    /// for setWatches' catch-up events, as 3.9, and for everything in 3.8).
    fn notify(&mut self, conn: ConnId, kind: crate::watch::EventType, path: &str, zxid: i64) {
        let text = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.dialect == Dialect::Text);
        let data = if text {
            Bytes::from(format!("EVENT:{}:{path}\n", kind.name()))
        } else {
            let mut w = reply_header(xid::NOTIFICATION, zxid, 0);
            w.int(kind as i32).int(3).string(path);
            w.finish_frame()
        };
        self.send_event(conn, data);
    }

    fn fire(&mut self, triggers: &[Trigger], zxid: i64) {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        for t in triggers {
            self.watches.fire(t, &mut events);
        }
        for e in &events {
            // ZooKeeper 3.9.2 / 3.8.4 (the CVE-2024-23944 fix, in
            // `NIOServerCnxn.process`): an event is delivered only if the
            // watcher's connection, with the ids it has now, holds READ on
            // the node's ACL (the parent's for NodeChildrenChanged).
            let readable = e.acl.is_none_or(|r| {
                acl::allowed(self.db.tree.acl_list(r), perm::READ, self.auth_of(e.conn))
            });
            if readable {
                self.notify(e.conn, e.kind, &e.path, zxid);
            } else {
                self.stats.events_withheld += 1;
            }
        }
        self.events = events;
    }
}

// ----- connections, handshake and requests -----

impl Server {
    fn on_bytes(&mut self, conn: ConnId, bytes: &[u8]) {
        match self.conns.get_mut(&conn) {
            Some(c) if !c.closing => c.inbuf.extend_from_slice(bytes),
            _ => return,
        }
        self.feeding = Some(conn);
        self.fed_bytes = 0;
        self.on_frames(conn);
        self.feeding = None;
        // After a closeSession the requests that came with it were answered
        // (SESSIONEXPIRED); the connection ends after them.
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.session_closed && !c.closing)
        {
            self.close_conn(conn, CloseReason::SessionClosed);
        }
    }

    /// Decodes and handles every complete frame (or text line) buffered for
    /// `conn`.
    fn on_frames(&mut self, conn: ConnId) {
        let max = self.config.max_buffer;
        loop {
            if self.fed_bytes >= self.config.output_burst {
                // Enough replies for one input: the rest waits in `inbuf`
                // until the runtime has sent these (`has_pending_input`).
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.closing {
                c.inbuf = BytesMut::new();
                return;
            }
            if c.inbuf.len() < 4 {
                return;
            }
            let head = [c.inbuf[0], c.inbuf[1], c.inbuf[2], c.inbuf[3]];
            if c.dialect == Dialect::Unknown {
                if let Some(cmd) = crate::fourlw::recognise(&head) {
                    c.inbuf = BytesMut::new();
                    // ZooKeeper counts the word as a received packet.
                    c.packets_received += 1;
                    self.stats.packets_received += 1;
                    self.four_letter_word(conn, cmd);
                    return;
                }
                if text::looks_like_text(&head) {
                    if !self.config.text_on_client_port {
                        self.close_conn(conn, CloseReason::TextDisabled);
                        continue;
                    }
                    self.start_text(conn);
                    continue;
                }
                c.dialect = Dialect::Binary;
            }
            if c.dialect == Dialect::Text {
                self.text_lines(conn);
                return;
            }
            let len = i32::from_be_bytes(head);
            if len < 0 || len as u32 > max {
                self.close_conn(
                    conn,
                    CloseReason::FrameTooLarge {
                        len: len as i64,
                        max,
                    },
                );
                continue;
            }
            let total = 4 + len as usize;
            if c.inbuf.len() < total {
                c.inbuf.reserve(total - c.inbuf.len());
                return;
            }
            let mut frame = c.inbuf.split_to(total);
            frame.advance(4);
            let frame = frame.freeze();
            c.packets_received += 1;
            self.stats.packets_received += 1;
            match c.session {
                None => self.on_connect(conn, &frame),
                Some(sid) => self.on_request(conn, sid, &frame),
            }
        }
    }

    fn negotiate(&self, requested: i32) -> Duration {
        let req = Duration::from_millis(requested.max(0) as u64);
        req.clamp(self.config.min_timeout(), self.config.max_timeout())
    }

    /// The session's password: HMAC-SHA1 keyed with the server's secret over
    /// the session id, cut to 16 bytes. ZooKeeper derives it from the id and
    /// a constant (`superSecret`), so anyone who knows a session id can take
    /// the session over; without our secret that is not possible.
    fn password(&self, sid: i64) -> [u8; 16] {
        let mac = hmac_sha1(&self.config.secret, &sid.to_be_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&mac[..16]);
        out
    }

    fn connect_response(timeout: Duration, sid: i64, passwd: &[u8]) -> Bytes {
        Self::connect_response_for(timeout, sid, passwd, true)
    }

    /// The handshake answer; `read_only` says whether to end it with the
    /// readOnly flag, which ZooKeeper leaves out for clients (before 3.4)
    /// that did not send one.
    fn connect_response_for(timeout: Duration, sid: i64, passwd: &[u8], read_only: bool) -> Bytes {
        let mut w = Writer::frame();
        w.int(0)
            .int(timeout.as_millis() as i32)
            .long(sid)
            .buffer(passwd);
        if read_only {
            w.boolean(false);
        }
        w.finish_frame()
    }

    fn on_connect(&mut self, conn: ConnId, frame: &[u8]) {
        self.current_op = Some("SESS");
        self.current_is_write = true;
        let req = match ConnectRequest::decode(frame) {
            Ok(r) => r,
            Err(e) => {
                self.close_conn(
                    conn,
                    CloseReason::Malformed(format!("connect request: {e}")),
                );
                return;
            }
        };
        if req.last_zxid_seen > self.last_zxid {
            self.close_conn(
                conn,
                CloseReason::ClientAhead {
                    client_zxid: req.last_zxid_seen,
                    server_zxid: self.last_zxid,
                },
            );
            return;
        }
        let timeout = self.negotiate(req.timeout);
        // protocolVersion, lastZxidSeen, timeOut, sessionId, passwd: then
        // the optional readOnly byte.
        let ro = frame.len() > 28 + req.passwd.len();
        let answer =
            |timeout, sid, passwd: &[u8]| Self::connect_response_for(timeout, sid, passwd, ro);
        if req.session_id == 0 {
            let mut sid = self.next_session_id;
            if sid == crate::prep::CONTAINER_OWNER {
                sid += 1;
            }
            self.next_session_id = sid.wrapping_add(1);
            let expires = self.expiry_for(timeout);
            self.sessions.insert(
                sid,
                Session {
                    timeout,
                    conn: Some(conn),
                    expires,
                    closing: false,
                },
            );
            self.expiry.insert((expires, sid));
            self.bind(conn, sid);
            self.write(
                sid,
                0,
                TxnOp::CreateSession {
                    timeout: timeout.as_millis() as i32,
                },
            );
            let passwd = self.password(sid);
            self.send(conn, answer(timeout, sid, &passwd));
            self.log(crate::LogEvent::SessionEstablished {
                session: sid,
                timeout_ms: timeout.as_millis() as u64,
            });
            return;
        }
        let sid = req.session_id;
        let valid = self.sessions.get(&sid).is_some_and(|s| !s.closing)
            && req.passwd.as_slice() == self.password(sid);
        if !valid {
            self.send(conn, answer(Duration::ZERO, 0, &[0; 16]));
            self.close_conn(conn, CloseReason::SessionExpired);
            return;
        }
        let old = self.sessions.get(&sid).and_then(|s| s.conn);
        if let Some(old) = old.filter(|&o| o != conn) {
            self.close_conn(old, CloseReason::SessionMoved);
        }
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.conn = Some(conn);
        }
        self.bind(conn, sid);
        self.touch(sid);
        let passwd = self.password(sid);
        self.send(conn, answer(timeout, sid, &passwd));
    }

    fn bind(&mut self, conn: ConnId, sid: i64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(sid);
            if let Some(d) = c.handshake_deadline.take() {
                self.handshakes.remove(&(d, conn));
            }
        }
    }

    fn reply(&mut self, conn: ConnId, xid: i32, zxid: i64, err: ErrorCode) {
        self.send(conn, reply_header(xid, zxid, err.code()).finish_frame());
    }

    fn on_request(&mut self, conn: ConnId, sid: i64, frame: &[u8]) {
        if frame.len() < 8 {
            self.close_conn(
                conn,
                CloseReason::Malformed("request header truncated".into()),
            );
            return;
        }
        let mut r = Reader::new(frame);
        let (Ok(xid), Ok(opcode)) = (r.int("xid"), r.int("type")) else {
            return;
        };
        let body = &frame[8..];
        if !self.sessions.contains_key(&sid) {
            // The session was closed or expired while bytes were in flight:
            // ZooKeeper answers SESSIONEXPIRED.
            self.reply(conn, xid, self.last_zxid, ErrorCode::SessionExpired);
            if !self.conns.get(&conn).is_some_and(|c| c.session_closed) {
                self.close_conn(conn, CloseReason::SessionExpired);
            }
            return;
        }
        self.touch(sid);
        self.current_is_write = is_write(opcode) || opcode == op::CLOSE_SESSION;
        self.current_op = op_name(opcode);
        let req = match Request::decode(opcode, body) {
            Ok(r) => r,
            Err(e) => {
                if opcode == op::AUTH {
                    self.close_conn(conn, CloseReason::Malformed(format!("auth packet: {e}")));
                } else if is_write(opcode) {
                    let code = ErrorCode::MarshallingError;
                    let (zxid, _) = self.write(sid, xid, TxnOp::Error { code: code.code() });
                    self.reply(conn, xid, zxid, code);
                } else {
                    self.reply(conn, xid, self.last_zxid, ErrorCode::MarshallingError);
                }
                return;
            }
        };
        match req {
            Request::Ping => self.reply(conn, xid::PING, self.last_zxid, ErrorCode::Ok),
            Request::CloseSession => {
                if let Some(s) = self.sessions.remove(&sid) {
                    self.expiry.remove(&(s.expires, sid));
                }
                let (zxid, _) = self.write(sid, xid, TxnOp::CloseSession);
                self.reply(conn, xid, zxid, ErrorCode::Ok);
                self.log(crate::LogEvent::SessionClosed { session: sid });
                // Closed once the requests pipelined behind it are answered
                // (see `on_bytes`).
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.session_closed = true;
                }
            }
            Request::Auth { scheme, auth, .. } => self.on_auth(conn, xid, &scheme, &auth),
            Request::Create(_)
            | Request::Delete { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Check { .. }
                if is_write(opcode) =>
            {
                self.on_write(conn, sid, xid, opcode, &req)
            }
            Request::Multi(ops) if opcode == op::MULTI => self.on_multi(conn, sid, xid, &ops),
            Request::Multi(ops) => self.on_multi_read(conn, xid, &ops),
            Request::Other if opcode == op::SASL => self.on_sasl(conn, xid, body),
            Request::Other if opcode == op::DELETE_CONTAINER => {
                // ZooKeeper accepts this internal op from clients, reads the
                // whole packet (header included) as the path, finds a NUL in
                // it and fails the write with BADARGUMENTS.
                let code = ErrorCode::BadArguments;
                let (zxid, _) = self.write(sid, xid, TxnOp::Error { code: code.code() });
                self.reply(conn, xid, zxid, code);
            }
            Request::Other if opcode == op::CREATE_SESSION => {
                // A createSession sent inside a session: ZooKeeper logs a
                // CreateSession txn for it and answers with a fresh
                // ConnectResponse for the connection's session.
                let timeout = self
                    .sessions
                    .get(&sid)
                    .map_or(Duration::ZERO, |s| s.timeout);
                let requested = Reader::new(body)
                    .int("timeout")
                    .unwrap_or(timeout.as_millis() as i32);
                self.write(sid, xid, TxnOp::CreateSession { timeout: requested });
                let passwd = self.password(sid);
                self.send(conn, Self::connect_response(timeout, sid, &passwd));
            }
            Request::Other if opcode == op::RECONFIG => {
                // A failed write, as in a standalone ZooKeeper: disabled, or
                // (reconfigEnabled=true) not possible without an ensemble.
                let code = if self.config.reconfig_enabled {
                    ErrorCode::Unimplemented
                } else {
                    ErrorCode::ReconfigDisabled
                };
                let (zxid, _) = self.write(sid, xid, TxnOp::Error { code: code.code() });
                self.reply(conn, xid, zxid, code);
            }
            Request::Other
            | Request::Create(_)
            | Request::Delete { .. }
            | Request::SetData { .. }
            | Request::SetAcl { .. }
            | Request::Check { .. } => {
                // ZooKeeper answers opcodes it does not serve with
                // UNIMPLEMENTED (zxid -1) and closes the connection.
                self.reply(conn, xid, -1, ErrorCode::Unimplemented);
                self.close_conn(
                    conn,
                    CloseReason::Malformed(format!("unsupported opcode {opcode}")),
                );
            }
            read => self.on_read(conn, sid, xid, opcode, read),
        }
    }

    /// A SASL token (`GetSASLRequest`), answered with `SetSASLResponse` and
    /// zxid 0 as ZooKeeper does; a failure is AUTHFAILED and the connection
    /// closes (the session lives on until it expires).
    fn on_sasl(&mut self, conn: ConnId, xid: i32, body: &[u8]) {
        let Some(users) = self.config.sasl_users.as_ref() else {
            // A ZooKeeper without SASL configured answers OK with a null
            // token.
            let mut w = reply_header(xid, 0, 0);
            w.null();
            self.send(conn, w.finish_frame());
            return;
        };
        let token = match Reader::new(body).buffer("token") {
            Ok(t) => t.to_vec(),
            Err(e) => {
                self.close_conn(conn, CloseReason::Malformed(format!("sasl request: {e}")));
                return;
            }
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let step = c
            .sasl
            .get_or_insert_with(|| {
                // 30 bytes, 40 base64 characters, as ZooKeeper's nonces.
                self.sasl_nonces = self.sasl_nonces.wrapping_add(1);
                let key = hmac_sha1(&self.config.secret, b"sasl nonce");
                let mut k = [0u8; 8];
                k.copy_from_slice(&key[..8]);
                let seed = u64::from_be_bytes(k) ^ self.sasl_nonces.rotate_left(32) ^ conn.0;
                Box::new(crate::sasl::DigestServer::new(base64(&seeded_bytes::<30>(
                    seed,
                ))))
            })
            .step(&token, |u| {
                users
                    .iter()
                    .find(|(name, _)| name == u)
                    .map(|(_, p)| p.clone())
            });
        let token = match step {
            crate::sasl::Step::Continue(t) => t,
            crate::sasl::Step::Done { token, authz } => {
                let is_super = self.config.sasl_super_users.contains(&authz);
                let mut ids = vec![Id {
                    scheme: "sasl".into(),
                    id: authz,
                }];
                if is_super {
                    ids.push(Id {
                        scheme: "super".into(),
                        id: String::new(),
                    });
                }
                if let Err(why) = admit_ids(c, ids, &self.config) {
                    self.stats.auth_failed += 1;
                    let mut w = reply_header(xid, 0, ErrorCode::AuthFailed.code());
                    w.null();
                    self.send(conn, w.finish_frame());
                    self.close_conn(conn, CloseReason::AuthLimit(why));
                    return;
                }
                token
            }
            crate::sasl::Step::Fail(why) => {
                self.stats.auth_failed += 1;
                let mut w = reply_header(xid, 0, ErrorCode::AuthFailed.code());
                w.null();
                self.send(conn, w.finish_frame());
                self.close_conn(conn, CloseReason::SaslFailed(why));
                return;
            }
        };
        let mut w = reply_header(xid, 0, 0);
        w.buffer(&token);
        self.send(conn, w.finish_frame());
    }

    fn on_auth(&mut self, conn: ConnId, xid: i32, scheme: &str, auth: &[u8]) {
        let id = match scheme {
            "digest" => Some(digest_id(auth)),
            "ip" => self
                .conns
                .get(&conn)
                .and_then(|c| c.peer)
                .map(|p| p.ip().to_string()),
            _ => None,
        };
        let Some(id) = id else {
            self.stats.auth_failed += 1;
            self.send(
                conn,
                reply_header(xid, 0, ErrorCode::AuthFailed.code()).finish_frame(),
            );
            self.close_conn(conn, CloseReason::AuthFailed);
            return;
        };
        let is_super = scheme == "digest" && self.config.super_digest.as_deref() == Some(&id);
        if let Some(c) = self.conns.get_mut(&conn) {
            let mut ids = vec![Id {
                scheme: scheme.to_string(),
                id,
            }];
            if is_super {
                ids.insert(
                    0,
                    Id {
                        scheme: "super".into(),
                        id: String::new(),
                    },
                );
            }
            if let Err(why) = admit_ids(c, ids, &self.config) {
                self.stats.auth_failed += 1;
                self.send(
                    conn,
                    reply_header(xid, 0, ErrorCode::AuthFailed.code()).finish_frame(),
                );
                self.close_conn(conn, CloseReason::AuthLimit(why));
                return;
            }
        }
        self.send(conn, reply_header(xid, 0, 0).finish_frame());
    }

    /// The connection's authenticated ids, borrowed (never copied per
    /// request: a connection may hold up to `max_auth_ids` of them).
    pub(crate) fn auth_of(&self, conn: ConnId) -> &[Id] {
        auth_in(&self.conns, conn)
    }

    fn on_write(&mut self, conn: ConnId, sid: i64, xid: i32, opcode: i32, req: &Request) {
        let auth = self.auth_of(conn);
        let prepared = {
            let mut p = Prep::new(&self.db.tree, sid, auth).options(&self.config);
            match req {
                Request::Create(c) => p.create(c),
                Request::Delete { path, version } => p.delete(path, *version),
                Request::SetData {
                    path,
                    data,
                    version,
                } => p.set_data(path, data, *version),
                Request::SetAcl { path, acl, version } => p.set_acl(path, acl.as_deref(), *version),
                Request::Check { path, version } => p.check(path, *version),
                _ => Err(ErrorCode::Unimplemented),
            }
        };
        let txn = match prepared {
            Ok(t) => t,
            Err(code) => {
                let (zxid, _) = self.write(sid, xid, TxnOp::Error { code: code.code() });
                self.reply(conn, xid, zxid, code);
                return;
            }
        };
        let (zxid, result) = self.write(sid, xid, txn);
        let mut w = reply_header(xid, zxid, 0);
        match result {
            OpResult::Created { path, stat } => {
                w.string(&path);
                if opcode != op::CREATE {
                    encode_stat(&mut w, &stat);
                }
            }
            OpResult::SetData { stat } | OpResult::SetAcl { stat } | OpResult::Check { stat } => {
                encode_stat(&mut w, &stat)
            }
            OpResult::Error(code) => {
                // A validated Txn does not fail to apply; report it if it does.
                w = reply_header(xid, zxid, code);
            }
            OpResult::Deleted | OpResult::Multi(_) | OpResult::Session => {}
        }
        self.send(conn, w.finish_frame());
    }

    fn on_multi(&mut self, conn: ConnId, sid: i64, xid: i32, ops: &[MultiOp]) {
        if ops.iter().any(MultiOp::is_read) {
            // ZooKeeper fails the whole write (a NullPointerException in its
            // PrepRequestProcessor): an error txn, MARSHALLINGERROR, no body.
            let code = ErrorCode::MarshallingError;
            let (zxid, _) = self.write(sid, xid, TxnOp::Error { code: code.code() });
            self.reply(conn, xid, zxid, code);
            return;
        }
        let auth = self.auth_of(conn);
        let txn = Prep::new(&self.db.tree, sid, auth)
            .options(&self.config)
            .multi(ops);
        let (zxid, result) = self.write(sid, xid, txn);
        let results = match result {
            OpResult::Multi(r) => r,
            _ => Vec::new(),
        };
        let mut w = reply_header(xid, zxid, 0);
        for (o, res) in ops.iter().zip(&results) {
            match res {
                OpResult::Error(code) => {
                    w.int(op::ERROR).boolean(false).int(*code).int(*code);
                }
                OpResult::Created { path, stat } => {
                    if o.op_code() == op::CREATE {
                        w.int(op::CREATE).boolean(false).int(0).string(path);
                    } else {
                        w.int(op::CREATE2).boolean(false).int(0).string(path);
                        encode_stat(&mut w, stat);
                    }
                }
                OpResult::Deleted => {
                    w.int(op::DELETE).boolean(false).int(0);
                }
                OpResult::SetData { stat } => {
                    w.int(op::SET_DATA).boolean(false).int(0);
                    encode_stat(&mut w, stat);
                }
                OpResult::Check { .. } => {
                    w.int(op::CHECK).boolean(false).int(0);
                }
                OpResult::SetAcl { .. } | OpResult::Multi(_) | OpResult::Session => {
                    w.int(op::ERROR).boolean(false).int(-2).int(-2);
                }
            }
        }
        w.int(-1).boolean(true).int(-1);
        self.send(conn, w.finish_frame());
    }

    fn on_multi_read(&mut self, conn: ConnId, xid: i32, ops: &[MultiOp]) {
        let zxid = self.last_zxid;
        let reads = ops.iter().filter(|o| o.is_read()).count();
        if reads < ops.len() {
            // ZooKeeper refuses to decode a multi that mixes reads and writes
            // (MARSHALLINGERROR, no body); writes alone decode, and its
            // multiRead loop fails on the first with an empty result list.
            if reads > 0 {
                self.reply(conn, xid, zxid, ErrorCode::MarshallingError);
            } else {
                let mut w = reply_header(xid, zxid, ErrorCode::MarshallingError.code());
                w.int(-1).boolean(true).int(-1);
                self.send(conn, w.finish_frame());
            }
            return;
        }
        let mut w = reply_header(xid, zxid, 0);
        let auth = self.auth_of(conn);
        let tree = &self.db.tree;
        let denied = |n: &crate::tree::Node| !acl::allowed(tree.acl_of(n), perm::READ, auth);
        let no_auth = ErrorCode::NoAuth.code();
        let limit = self.config.max_reply;
        for o in ops {
            if w.len() > limit {
                break;
            }
            match o {
                MultiOp::GetData { path } => match tree.get(path) {
                    Some(n) if denied(n) => {
                        w.int(op::ERROR).boolean(false).int(no_auth).int(no_auth);
                    }
                    Some(n) => {
                        w.int(op::GET_DATA)
                            .boolean(false)
                            .int(0)
                            .buffer_opt(n.data.as_deref());
                        encode_stat(&mut w, &n.stat());
                    }
                    None => {
                        let c = ErrorCode::NoNode.code();
                        w.int(op::ERROR).boolean(false).int(c).int(c);
                    }
                },
                MultiOp::GetChildren { path } => match tree.get(path) {
                    Some(n) if denied(n) => {
                        w.int(op::ERROR).boolean(false).int(no_auth).int(no_auth);
                    }
                    Some(n) => {
                        w.int(op::GET_CHILDREN).boolean(false).int(0);
                        w.strings(&tree.zookeeper_order(n));
                    }
                    None => {
                        let c = ErrorCode::NoNode.code();
                        w.int(op::ERROR).boolean(false).int(c).int(c);
                    }
                },
                // Write ops were answered above.
                _ => {}
            }
        }
        if w.len() > limit {
            // One request must not make the server build a reply of any
            // size (ZooKeeper does: 1 GB from a 16 KB multiRead). No client
            // with default settings could read it anyway.
            let bytes = w.len();
            let session = self.conns.get(&conn).and_then(|c| c.session).unwrap_or(0);
            self.log(crate::LogEvent::ReplyTooLarge {
                session,
                bytes,
                max: limit,
            });
            self.reply(conn, xid, zxid, ErrorCode::MarshallingError);
            return;
        }
        w.int(-1).boolean(true).int(-1);
        self.send(conn, w.finish_frame());
    }

    fn on_read(&mut self, conn: ConnId, sid: i64, xid: i32, opcode: i32, req: Request) {
        let zxid = self.last_zxid;
        let mut w = reply_header(xid, zxid, 0);
        let auth = auth_in(&self.conns, conn);
        let tree = &self.db.tree;
        let can = |n: &crate::tree::Node, p: i32| acl::allowed(tree.acl_of(n), p, auth);
        let result: Result<(), ErrorCode> = match req {
            Request::Exists { path, watch } => {
                if path.contains('\0') {
                    Err(ErrorCode::BadArguments)
                } else if tree.get(&path).is_some_and(|n| !can(n, perm::READ)) {
                    // ZooKeeper 3.9.2 / 3.8.4 (ZOOKEEPER-2590): exists() on a
                    // node needs READ, checked before any watch is set;
                    // 3.8.0 answered the Stat.
                    Err(ErrorCode::NoAuth)
                } else {
                    if watch {
                        self.watches.add(Kind::Data, &path, conn);
                    }
                    match tree.get(&path) {
                        Some(n) => {
                            encode_stat(&mut w, &n.stat());
                            Ok(())
                        }
                        None => Err(ErrorCode::NoNode),
                    }
                }
            }
            Request::GetData { path, watch } => match tree.get(&path) {
                Some(n) if !can(n, perm::READ) => Err(ErrorCode::NoAuth),
                Some(n) => {
                    w.buffer_opt(n.data.as_deref());
                    encode_stat(&mut w, &n.stat());
                    if watch {
                        self.watches.add(Kind::Data, &path, conn);
                    }
                    Ok(())
                }
                None => Err(ErrorCode::NoNode),
            },
            Request::GetChildren { path, watch } => match tree.get(&path) {
                Some(n) if !can(n, perm::READ) => Err(ErrorCode::NoAuth),
                Some(n) => {
                    w.strings(&tree.zookeeper_order(n));
                    if opcode == op::GET_CHILDREN2 {
                        encode_stat(&mut w, &n.stat());
                    }
                    if watch {
                        self.watches.add(Kind::Child, &path, conn);
                    }
                    Ok(())
                }
                None => Err(ErrorCode::NoNode),
            },
            Request::GetAcl { path } => match tree.get(&path) {
                Some(n) if !can(n, perm::READ | perm::ADMIN) => Err(ErrorCode::NoAuth),
                Some(n) => {
                    if can(n, perm::ADMIN) {
                        encode_acls(&mut w, tree.acl_of(n));
                    } else {
                        // Without ADMIN, digest hashes are hidden.
                        let masked: Vec<records::Acl> = tree
                            .acl_of(n)
                            .iter()
                            .map(|a| {
                                let mut a = a.clone();
                                if a.id.scheme == "digest" {
                                    let user = a.id.id.split(':').next().unwrap_or("");
                                    a.id.id = format!("{user}:x");
                                }
                                a
                            })
                            .collect();
                        encode_acls(&mut w, &masked);
                    }
                    encode_stat(&mut w, &n.stat());
                    Ok(())
                }
                None => Err(ErrorCode::NoNode),
            },
            Request::Sync { path } => {
                w.string(&path);
                Ok(())
            }
            Request::GetEphemerals { prefix } => {
                let all = tree.ephemerals_of(sid);
                let p = prefix.trim();
                let v: Vec<&String> = all
                    .iter()
                    .filter(|e| p.is_empty() || p == "/" || e.starts_with(prefix.as_str()))
                    .collect();
                w.strings(&v);
                Ok(())
            }
            Request::GetAllChildrenNumber { path } => match tree.get(&path) {
                Some(n) if !can(n, perm::READ) => Err(ErrorCode::NoAuth),
                Some(_) => {
                    // ZooKeeper counts the keys that start with `path + "/"`:
                    // for "" that includes its second key for the root, "/".
                    let alias = usize::from(path.is_empty());
                    w.int((tree.descendant_count(&path) + alias) as i32);
                    Ok(())
                }
                None => Err(ErrorCode::NoNode),
            },
            Request::WhoAmI => {
                w.int(auth.len() as i32);
                for id in auth {
                    // The provider's user name: digest ids show the user
                    // only; schemes without a provider show "".
                    let user = match id.scheme.as_str() {
                        "digest" => id.id.split(':').next().unwrap_or(""),
                        "ip" | "sasl" => id.id.as_str(),
                        _ => "",
                    };
                    w.string(&id.scheme).string(user);
                }
                Ok(())
            }
            Request::AddWatch { path, mode } => match mode {
                0 | 1 => {
                    self.watches.add_persistent(&path, conn, mode == 1);
                    // ZooKeeper answers with an ErrorResponse(0) body.
                    w.int(0);
                    Ok(())
                }
                _ => Err(ErrorCode::MarshallingError),
            },
            Request::WatchOp { path, watcher_type } => {
                match crate::watch::WatcherType::from_code(watcher_type) {
                    None => Err(ErrorCode::MarshallingError),
                    // ZooKeeper's checkWatches walks the path's parents (for
                    // recursive watches) and fails on a relative path with an
                    // exception it answers as MARSHALLINGERROR; removeWatches
                    // just finds nothing.
                    Some(_)
                        if opcode == op::CHECK_WATCHES
                            && !path.is_empty()
                            && !path.starts_with('/') =>
                    {
                        Err(ErrorCode::MarshallingError)
                    }
                    Some(t) => {
                        let found = if opcode == op::REMOVE_WATCHES {
                            self.watches.remove(&path, t, conn)
                        } else {
                            self.watches.contains(&path, t, conn)
                        };
                        if found {
                            Ok(())
                        } else {
                            Err(ErrorCode::NoWatcher)
                        }
                    }
                }
            }
            Request::SetWatches {
                relative_zxid,
                data,
                exist,
                child,
                persistent,
                persistent_recursive,
            } => {
                self.set_watches(conn, relative_zxid, &data, &exist, &child);
                for p in &persistent {
                    self.watches.add_persistent(p, conn, false);
                }
                for p in &persistent_recursive {
                    self.watches.add_persistent(p, conn, true);
                }
                w = reply_header(xid, self.last_zxid, 0);
                Ok(())
            }
            _ => Err(ErrorCode::Unimplemented),
        };
        match result {
            Ok(()) => self.send(conn, w.finish_frame()),
            Err(code) => self.reply(conn, xid, zxid, code),
        }
    }

    /// ZooKeeper's `DataTree.setWatches`: re-arm the watches a reconnecting
    /// client had, firing at once those whose change it missed.
    fn set_watches(
        &mut self,
        conn: ConnId,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
    ) {
        use crate::watch::EventType as E;
        let mut fired: Vec<(E, String)> = Vec::new();
        for p in data {
            match self.db.tree.get(p) {
                None => fired.push((E::NodeDeleted, p.clone())),
                Some(n) if n.mzxid > relative_zxid => fired.push((E::NodeDataChanged, p.clone())),
                Some(_) => self.watches.add(Kind::Data, p, conn),
            }
        }
        for p in exist {
            match self.db.tree.get(p) {
                Some(_) => fired.push((E::NodeCreated, p.clone())),
                None => self.watches.add(Kind::Data, p, conn),
            }
        }
        for p in child {
            match self.db.tree.get(p) {
                None => fired.push((E::NodeDeleted, p.clone())),
                Some(n) if n.pzxid > relative_zxid => {
                    fired.push((E::NodeChildrenChanged, p.clone()))
                }
                Some(_) => self.watches.add(Kind::Child, p, conn),
            }
        }
        for (kind, path) in fired {
            self.notify(conn, kind, &path, -1);
        }
    }

    fn four_letter_word(&mut self, conn: ConnId, cmd: &'static str) {
        let text = if self.config.four_letter_word_allowed(cmd) {
            match cmd {
                "srst" => {
                    let s = &mut self.stats;
                    (s.packets_received, s.packets_sent) = (0, 0);
                    (s.latency_min_ms, s.latency_max_ms) = (0, 0);
                    (s.latency_total_ms, s.latency_count) = (0, 0);
                    s.read_latency = Default::default();
                    s.update_latency = Default::default();
                }
                "csnp" => self.snapshot_requested = true,
                "crst" => {
                    // ServerCnxn.resetStats (the connection time stays).
                    for c in self.conns.values_mut() {
                        (c.packets_received, c.packets_sent) = (0, 0);
                        let st = &mut c.stats;
                        st.last_op = "NA";
                        (st.last_cxid, st.last_zxid) = (-1, -1);
                        (st.last_response, st.last_latency) = (0, 0);
                        (st.min_latency, st.max_latency) = (u64::MAX, 0);
                        (st.total_latency, st.count) = (0, 0);
                    }
                }
                _ => {}
            }
            crate::fourlw::answer(self, cmd)
        } else {
            format!("{cmd} is not executed because it is not in the whitelist.\n")
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.four_letter = true;
        }
        // Not a reply: no latency, and not counted as a sent packet.
        self.send_event(conn, Bytes::from(text));
        self.close_conn(conn, CloseReason::CommandDone);
    }
}

// ----- views for the four-letter words -----

impl Server {
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn uptime_ms(&self) -> u128 {
        (self.now - self.start).as_millis()
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.gated.len()
    }

    /// `wchs`: (connections, paths, watches) of the data watches.
    pub(crate) fn watch_summary(&self) -> (usize, usize, usize) {
        self.watches.data_summary()
    }

    /// `zk_watch_count`: data and child watches together.
    pub(crate) fn watch_count(&self) -> usize {
        self.watches.count()
    }

    pub(crate) fn ephemeral_count(&self) -> usize {
        self.db.tree.ephemeral_count()
    }

    pub(crate) fn data_size(&self) -> u64 {
        self.db.tree.data_size()
    }

    /// `cons` lines (`brief`: `stat`'s, up to the sent count).
    pub(crate) fn connection_lines(&self, brief: bool) -> Vec<String> {
        self.conns
            .values()
            .map(|c| {
                let peer = c.peer.map_or_else(|| "unknown".to_string(), |p| p.to_string());
                let session = c.session.and_then(|s| self.sessions.get(&s).map(|x| (s, x)));
                match session.filter(|_| !brief) {
                    Some((sid, s)) => {
                        let st = &c.stats;
                        let lcxid = if st.last_cxid >= 0 {
                            format!(",lcxid={:#x}", st.last_cxid)
                        } else {
                            String::new()
                        };
                        let min = if st.count == 0 { 0 } else { st.min_latency };
                        let avg = st.total_latency.checked_div(st.count).unwrap_or(0);
                        format!(
                            " /{peer}[1](queued=0,recved={},sent={},sid={sid:#x},lop={},est={},to={}{lcxid},lzxid={:#x},lresp={},llat={},minlat={min},avglat={avg},maxlat={})",
                            c.packets_received,
                            c.packets_sent,
                            st.last_op,
                            st.established,
                            s.timeout.as_millis(),
                            st.last_zxid,
                            st.last_response,
                            st.last_latency,
                            st.max_latency,
                        )
                    }
                    None => format!(
                        " /{peer}[{}](queued=0,recved={},sent={})",
                        u8::from(session.is_some()),
                        c.packets_received,
                        c.packets_sent
                    ),
                }
            })
            .collect()
    }

    #[allow(clippy::type_complexity)]
    pub(crate) fn session_dump(&self) -> (Vec<(i64, Duration)>, Vec<(i64, Vec<String>)>) {
        let mut s: Vec<(i64, Duration)> = self
            .sessions
            .iter()
            .map(|(&id, s)| (id, s.timeout))
            .collect();
        s.sort_unstable();
        (s, self.db.tree.all_ephemerals())
    }

    pub(crate) fn watches_by_session(&self) -> Vec<(i64, Vec<String>)> {
        let mut out = Vec::new();
        for (id, c) in &self.conns {
            let paths = self.watches.data_paths_of(*id);
            if let (Some(sid), false) = (c.session, paths.is_empty()) {
                out.push((sid, paths));
            }
        }
        out
    }

    pub(crate) fn watches_by_path(&self) -> Vec<(String, Vec<i64>)> {
        self.watches
            .data_by_path()
            .into_iter()
            .map(|(p, conns)| {
                let sids = conns
                    .iter()
                    .filter_map(|c| self.conns.get(c).and_then(|c| c.session))
                    .collect();
                (p, sids)
            })
            .collect()
    }
}

/// Adds authenticated `ids` to a connection, all or none: an id it already
/// holds adds nothing (ZooKeeper's `addAuthInfo` skips duplicates); a new
/// one must fit `max_auth_id_bytes`, and the list `max_auth_ids`. On `Err`
/// (which says which cap) nothing was added. With `before_ip`, new ids go
/// before the connection's `ip` id, as Apache ZooKeeper's whoAmI lists
/// addauth ids.
fn admit_ids(c: &mut Conn, ids: Vec<Id>, config: &Config) -> Result<(), String> {
    let mut fresh: Vec<Id> = Vec::with_capacity(ids.len());
    for id in ids {
        if !c.auth.contains(&id) && !fresh.contains(&id) {
            fresh.push(id);
        }
    }
    if let Some(long) = fresh.iter().find(|i| i.id.len() > config.max_auth_id_bytes) {
        return Err(format!(
            "{} id of {} bytes, over the {}-byte cap (pookeeper.maxAuthIdBytes)",
            long.scheme,
            long.id.len(),
            config.max_auth_id_bytes
        ));
    }
    if c.auth.len() + fresh.len() > config.max_auth_ids {
        return Err(format!(
            "the connection already holds {} authenticated ids, the cap is {} \
             (pookeeper.maxAuthIds)",
            c.auth.len(),
            config.max_auth_ids
        ));
    }
    // ZooKeeper's order: see `AuthIds`.
    for id in fresh {
        c.auth.insert(id);
    }
    Ok(())
}

/// The ids of `conn` in `conns`, borrowing only the connection table (so
/// callers can change the watches or the tree meanwhile).
fn auth_in(conns: &BTreeMap<ConnId, Conn>, conn: ConnId) -> &[Id] {
    conns.get(&conn).map_or(&[], |c| c.auth.as_slice())
}

fn is_write(opcode: i32) -> bool {
    matches!(
        opcode,
        op::CREATE
            | op::CREATE2
            | op::CREATE_CONTAINER
            | op::CREATE_TTL
            | op::DELETE
            | op::SET_DATA
            | op::SET_ACL
            | op::CHECK
            | op::MULTI
    )
}

/// Deterministic bytes from `seed` (session passwords, SASL nonces).
pub(crate) fn seeded_bytes<const N: usize>(seed: u64) -> [u8; N] {
    let mut x = seed;
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        x = splitmix64(x);
        chunk.copy_from_slice(&x.to_be_bytes()[..chunk.len()]);
    }
    out
}

/// HMAC-SHA1 (RFC 2104) of `msg` under `key` (at most one 64-byte block).
pub(crate) fn hmac_sha1(key: &[u8; 32], msg: &[u8]) -> [u8; 20] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = sha1_smol::Sha1::new();
    inner.update(&ipad);
    inner.update(msg);
    let mut outer = sha1_smol::Sha1::new();
    outer.update(&opad);
    outer.update(&inner.digest().bytes());
    outer.digest().bytes()
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `user:base64(sha1("user:password"))`, ZooKeeper's digest id.
pub(crate) fn digest_id(auth: &[u8]) -> String {
    let text = String::from_utf8_lossy(auth);
    let user = text.split(':').next().unwrap_or("");
    let hash = sha1_smol::Sha1::from(text.as_bytes()).digest().bytes();
    format!("{user}:{}", base64(&hash))
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ----- the seed's text protocol -----

impl Server {
    /// Registers a connection on a port that serves only the text protocol:
    /// it is greeted at once and gets a session, as if it had sent a first
    /// command.
    pub fn accept_text(&mut self, now: Instant, peer: Option<SocketAddr>) -> ConnId {
        let id = self.accept(now, peer);
        if self.conns.get(&id).is_some_and(|c| !c.closing) {
            self.start_text(id);
        }
        id
    }

    /// Makes `conn` a text connection with a session of its own (kept alive
    /// while the connection is open, closed with it).
    fn start_text(&mut self, conn: ConnId) {
        let timeout = self.config.max_timeout();
        let mut sid = self.next_session_id;
        if sid == crate::prep::CONTAINER_OWNER {
            sid += 1;
        }
        self.next_session_id = sid.wrapping_add(1);
        // Not in the expiry set: a telnet user does not ping.
        self.sessions.insert(
            sid,
            Session {
                timeout,
                conn: Some(conn),
                expires: self.now,
                closing: false,
            },
        );
        if let Some(c) = self.conns.get_mut(&conn) {
            c.dialect = Dialect::Text;
        }
        self.bind(conn, sid);
        self.write(
            sid,
            0,
            TxnOp::CreateSession {
                timeout: timeout.as_millis() as i32,
            },
        );
        self.send(conn, Bytes::from_static(b"true:Connected\n"));
    }

    fn text_lines(&mut self, conn: ConnId) {
        let max = self.config.text_max_line as usize;
        loop {
            if self.fed_bytes >= self.config.output_burst {
                return;
            }
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.closing {
                return;
            }
            // Only the bytes not looked at before: constant work per byte.
            let from = c.scanned.min(c.inbuf.len());
            #[cfg(test)]
            {
                self.text_bytes_scanned += (c.inbuf.len() - from) as u64;
            }
            let Some(nl) = c.inbuf[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| from + i)
            else {
                c.scanned = c.inbuf.len();
                if c.inbuf.len() > max {
                    c.inbuf = BytesMut::new();
                    c.scanned = 0;
                    if !c.discarding {
                        c.discarding = true;
                        self.send(conn, Bytes::from_static(b"false:LineTooLong\n"));
                    }
                }
                return;
            };
            let line = c.inbuf.split_to(nl + 1);
            c.scanned = 0;
            if std::mem::take(&mut c.discarding) {
                continue;
            }
            if line.len() > max + 1 {
                // The whole line arrived in one piece, longer than allowed.
                self.send(conn, Bytes::from_static(b"false:LineTooLong\n"));
                continue;
            }
            c.packets_received += 1;
            self.stats.packets_received += 1;
            let line = &line[..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Some(sid) = c.session else {
                return;
            };
            let reply = match text::parse(line) {
                Ok(cmd) => self.text_command(conn, sid, cmd),
                Err(reason) => format!("false:{reason}"),
            };
            self.send(conn, Bytes::from(reply + "\n"));
        }
    }

    fn text_command(&mut self, conn: ConnId, sid: i64, cmd: Command) -> String {
        let auth = self.auth_of(conn);
        let write = |s: &mut Self, r: Result<TxnOp, ErrorCode>| -> Result<OpResult, ErrorCode> {
            match r {
                Ok(t) => match s.write(sid, 0, t).1 {
                    OpResult::Error(c) => {
                        Err(ErrorCode::from_code(c).unwrap_or(ErrorCode::SystemError))
                    }
                    ok => Ok(ok),
                },
                Err(code) => {
                    s.write(sid, 0, TxnOp::Error { code: code.code() });
                    Err(code)
                }
            }
        };
        let fail = |e: ErrorCode| format!("false:{}", e.name());
        let tree = &self.db.tree;
        let readable = |path: &str| -> Result<&crate::tree::Node, ErrorCode> {
            let n = tree.get(path).ok_or(ErrorCode::NoNode)?;
            if acl::allowed(tree.acl_of(n), perm::READ, auth) {
                Ok(n)
            } else {
                Err(ErrorCode::NoAuth)
            }
        };
        match cmd {
            Command::Help => text::HELP.to_string(),
            Command::Exists(p) => match tree.get(&p) {
                Some(_) => "true".into(),
                None => fail(ErrorCode::NoNode),
            },
            Command::Get(p) => match readable(&p) {
                Ok(n) => format!("true:{}", escape(n.data.as_deref().unwrap_or_default())),
                Err(e) => fail(e),
            },
            Command::Children(p) => match readable(&p) {
                Ok(n) => format!("true:{}", self.db.tree.creation_order(n).join(",")),
                Err(e) => fail(e),
            },
            Command::Stat(p) => match tree.get(&p) {
                Some(n) => {
                    let s = n.stat();
                    format!(
                        "true:czxid={:#x},mzxid={:#x},pzxid={:#x},ctime={},mtime={},version={},cversion={},aversion={},ephemeralOwner={:#x},dataLength={},numChildren={}",
                        s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, s.version, s.cversion,
                        s.aversion, s.ephemeral_owner, s.data_length, s.num_children
                    )
                }
                None => fail(ErrorCode::NoNode),
            },
            Command::Sync(_) => "true".into(),
            Command::Watch(p) => {
                if !path::is_valid(&p) {
                    return fail(ErrorCode::BadArguments);
                }
                let exists = tree.get(&p).is_some();
                self.watches.add(Kind::Data, &p, conn);
                if exists {
                    self.watches.add(Kind::Child, &p, conn);
                }
                "true".into()
            }
            Command::Create {
                path,
                data,
                ephemeral,
                sequential,
            } => {
                let req = records::CreateRequest {
                    op: op::CREATE,
                    path,
                    data: Some(Bytes::from(data)),
                    acl: Some(smallvec::smallvec![records::Acl::open()]),
                    flags: i32::from(ephemeral) | (i32::from(sequential) << 1),
                    ttl: -1,
                };
                let r = Prep::new(tree, sid, auth)
                    .options(&self.config)
                    .create(&req);
                match write(self, r) {
                    Ok(OpResult::Created { path, .. }) if sequential => format!("true:{path}"),
                    Ok(_) => "true".into(),
                    Err(e) => fail(e),
                }
            }
            Command::Delete(p) => {
                let r = Prep::new(tree, sid, auth)
                    .options(&self.config)
                    .delete(&p, -1);
                match write(self, r) {
                    Ok(_) => "true".into(),
                    Err(e) => fail(e),
                }
            }
            Command::Set(p, data) => {
                let r = Prep::new(tree, sid, auth).options(&self.config).set_data(
                    &p,
                    &Some(Bytes::from(data)),
                    -1,
                );
                match write(self, r) {
                    Ok(_) => "true".into(),
                    Err(e) => fail(e),
                }
            }
        }
    }
}

/// Data as one printable line: UTF-8 (lossy) with `\` and line breaks
/// escaped.
fn escape(data: &[u8]) -> String {
    String::from_utf8_lossy(data)
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}
