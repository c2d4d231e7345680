//! # pookeeper-core: a ZooKeeper server as a pure state machine
//!
//! This crate is the whole of PooKeeper's decision making, with no I/O at all:
//! no sockets, no files, no threads, no clock reads and no unseeded randomness.
//! A runtime (the `pookeeper` mio binary, an async adapter, a fuzzer, a test,
//! or your own event loop) owns the sockets and the clock and moves bytes in
//! and out of a [`Server`].
//!
//! ## Inside: the modules and the request path
//!
//! | module | what it owns |
//! | --- | --- |
//! | [`proto`] | the wire: jute encoding, request and reply records, the text dialect |
//! | `server` | the composition root [`Server`] and one child module per concern (framing, sessions, auth, reads, writes, the per-connection gate, snapshots, four-letter words) |
//! | `prep` | validation of a write into a [`txn::Txn`], as ZooKeeper's PrepRequestProcessor |
//! | `pipeline` | the order of writes and their commit (the `Sequencer`, standalone today) and the changes in flight (`Outstanding`) |
//! | [`txn`] | transactions: their encoding and how one applies to the tree |
//! | `tree` | the DataTree: nodes, ACL cache, ephemerals, quotas, copy-on-write snapshots |
//! | `watch` | one-shot, persistent and recursive watches |
//! | `acl`, `quota`, [`sasl`] | ACL checks and ids, quota accounting, DIGEST-MD5 |
//! | [`storage`] | the log and snapshot file formats (bytes only; files are the runtime's) |
//! | `fourlw`, [`stats`] | four-letter words, counters and latency summaries |
//! | `config`, [`error`] | the configuration the core uses, ZooKeeper's error codes |
//! | [`testing`] | for tests, not runtimes: a harness that drives a `Server` in-process on a virtual clock with a seeded generator, checking the driving contract's guarantees at every drain |
//!
//! **A request's path.** Bytes are framed per connection (`dispatch`). A
//! write is validated against the committed tree plus the writes still in
//! flight (`prep`, `pipeline::Outstanding`), gets the next zxid from the
//! sequencer, and leaves as [`Output::Append`]. When the log reports it
//! durable ([`Input::Durable`]; with an ensemble: when a quorum has it), it
//! is applied to the tree, its watches fire (notifications leave at once),
//! and its reply is built from the result. Each connection keeps a queue of
//! what it waits for: everything a session sends after a write waits for
//! that write (FIFO, read-your-writes), and a read of a session with
//! nothing in flight is answered at once from committed state, whatever
//! other sessions are writing. So nothing that is not committed ever
//! leaves the server, and a session's replies come in its request order.
//!
//! ## The driving contract
//!
//! * [`Server::accept`] registers a new client connection and returns its
//!   [`ConnId`] (a counter, never reused).
//! * [`Server::handle`] feeds one [`Input`]: bytes received on a connection
//!   (split anywhere: one byte at a time works as well as a megabyte), the peer
//!   closing, time passing ([`Input::Tick`]), or the log reporting that entries
//!   are durable ([`Input::Durable`]).
//! * After **every** `accept` or `handle`, drain [`Server::poll_output`] until
//!   it returns `None`, acting on each [`Output`]:
//!   * [`Output::Transmit`]: append the bytes to that connection's send queue,
//!     in order;
//!   * [`Output::Close`]: send what is queued for that connection, then close
//!     it (log the reason);
//!   * [`Output::Append`]: append the entry to the transaction log. Once the
//!     entries up to some zxid are durable (written, and synced if you sync),
//!     call `handle(now, Input::Durable { zxid })`. Batch as much as you like
//!     (group commit): a write is applied and answered only once its
//!     durability is reported, and so is everything its session sent after
//!     it; other sessions' reads do not wait. A purely in-memory server
//!     reports durability right after draining.
//! * One `Received` produces at most [`Config::output_burst`] bytes of
//!   replies for its connection; requests past that stay buffered in the
//!   core ([`Server::has_pending_input`] says so). Feed
//!   `Input::Received` with no bytes to continue, once that connection's
//!   send queue has room: this is how a client that sends requests but never
//!   reads its replies is held to a bounded amount of memory.
//! * Drain [`Server::poll_log`] too, for lines the server's log should
//!   have (sessions established, expired, closed).
//! * Then read [`Server::poll_timeout`] and call `handle(now, Input::Tick)`
//!   once that instant has passed. Ticking early or spuriously is harmless.
//!
//! `now` must never go backwards; if it does, the server treats it as the
//! latest instant it has seen.
//!
//! Bad bytes from a peer never cause a panic or an `Err`: they become an
//! [`Output::Close`] for that one connection with a [`CloseReason`] that says
//! why.
//!
//! ## Snapshots and recovery
//!
//! A runtime that keeps a log also takes snapshots, so recovery does not
//! replay the whole history. [`Server::begin_snapshot`] starts an exact image
//! of the committed state (at [`Server::committed_zxid`], durable by
//! definition, so the finished file may be installed at once); [`Server::snapshot_step`], called between inputs
//! (between drains, never inside one), appends the next part of it to a
//! buffer of the runtime's, about as many bytes as asked, until it returns
//! [`SnapshotProgress::Done`]. The server keeps serving in between: what
//! changes after the snapshot's zxid does not get into it. Write the parts
//! to a file and put it in place once complete; at start,
//! [`Server::recover`] takes the newest valid snapshot and the log segments
//! after it. ([`Server::snapshot`] does it all in one call, for tests and
//! tools.)
//!
//! ## Example: driving the server by hand
//!
//! ```
//! use std::time::Instant;
//! use pookeeper_core::{Config, Input, Output, Server};
//!
//! let now = Instant::now();
//! let mut server = Server::new(Config::default(), now, 1_700_000_000_000).unwrap();
//! let conn = server.accept(now, None);
//!
//! // A ConnectRequest: protocolVersion 0, lastZxidSeen 0, timeout 30000 ms,
//! // sessionId 0, a 16-byte zero password, readOnly false.
//! let mut req = Vec::new();
//! req.extend_from_slice(&0i32.to_be_bytes());
//! req.extend_from_slice(&0i64.to_be_bytes());
//! req.extend_from_slice(&30_000i32.to_be_bytes());
//! req.extend_from_slice(&0i64.to_be_bytes());
//! req.extend_from_slice(&16i32.to_be_bytes());
//! req.extend_from_slice(&[0u8; 16]);
//! req.push(0);
//! let mut frame = (req.len() as u32).to_be_bytes().to_vec();
//! frame.extend_from_slice(&req);
//!
//! server.handle(now, Input::Received { conn, bytes: &frame });
//!
//! // Drain outputs; a session is a logged transaction, so the reply is held
//! // until the (here imaginary) log says it is durable.
//! let mut replies = Vec::new();
//! loop {
//!     let mut durable = None;
//!     while let Some(out) = server.poll_output() {
//!         match out {
//!             Output::Transmit { data, .. } => replies.push(data),
//!             Output::Append { zxid, .. } => durable = Some(zxid),
//!             Output::Close { .. } => unreachable!("a valid handshake"),
//!         }
//!     }
//!     match durable {
//!         Some(zxid) => server.handle(now, Input::Durable { zxid }),
//!         None => break,
//!     }
//! }
//! // One ConnectResponse: 4-byte length, then 36 or 37 bytes of body.
//! assert_eq!(replies.len(), 1);
//! assert_eq!(&replies[0][..4], &37u32.to_be_bytes());
//! assert!(server.poll_timeout().is_some()); // the session will expire one day
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod acl;
mod config;
pub mod error;
mod fourlw;
#[doc(hidden)]
pub mod fuzzing;
mod nodemap;
mod path;
mod pipeline;
mod prep;
pub mod proto;
mod quota;
pub mod sasl;
mod server;
#[cfg(test)]
mod server_tests;
pub mod stats;
pub mod storage;
pub mod testing;
mod tree;
pub mod txn;
mod watch;

pub use config::{Config, ConfigError};
pub use error::ErrorCode;
pub use server::{Recovered, RecoveryError, Server, SnapshotProgress};
pub use stats::Stats;
pub use tree::Stat;

use bytes::Bytes;

/// A client connection, allocated by [`Server::accept`]. A plain counter that
/// is never reused, so a stale event for a closed connection cannot reach a
/// new one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A transaction id: a write's place in the one total order of writes
/// (ZooKeeper's zxid: the epoch in the high 32 bits, a counter in the low).
/// Shown in hex, as ZooKeeper logs it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Zxid(pub i64);

impl std::fmt::Display for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl std::fmt::LowerHex for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::LowerHex::fmt(&self.0, f)
    }
}

/// A session id (ZooKeeper's layout: the server id in the top byte, then
/// bits of the clock at start, then a counter). Shown in hex, as ZooKeeper
/// logs it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub i64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl std::fmt::LowerHex for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::LowerHex::fmt(&self.0, f)
    }
}

/// Something that happened outside the server.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Bytes arrived on a connection: any split of the stream.
    Received {
        /// The connection.
        conn: ConnId,
        /// The bytes, in stream order after those of earlier `Received`s.
        bytes: &'a [u8],
    },
    /// The peer closed the connection (EOF) or the socket failed. The session
    /// lives on until it expires or the client reconnects to it.
    PeerClosed {
        /// The connection.
        conn: ConnId,
    },
    /// Only time moved. Harmless when nothing is due.
    Tick,
    /// Every [`Output::Append`] entry with a zxid up to and including `zxid`
    /// is durable.
    Durable {
        /// The highest durable zxid.
        zxid: Zxid,
    },
}

/// Something the runtime must do. Drain with [`Server::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Append these bytes to the connection's send queue.
    Transmit {
        /// The connection.
        conn: ConnId,
        /// Bytes to send, in order after earlier ones for this connection.
        data: Bytes,
    },
    /// Send what is queued for the connection, then close it. Nothing more
    /// will be emitted for this connection.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why, for the log line.
        reason: CloseReason,
    },
    /// Append a transaction to the log, then report [`Input::Durable`].
    Append {
        /// The transaction's zxid; strictly increasing.
        zxid: Zxid,
        /// The encoded transaction ([`txn::Txn::decode`] reads it back).
        entry: Bytes,
    },
}

/// Something an operator wants in the server's log that no [`Output`]
/// shows (a session that expires has no connection to close). Runtimes
/// drain [`Server::poll_log`] after draining outputs and log each at INFO;
/// the [`Display`](std::fmt::Display) text follows ZooKeeper's log lines,
/// which operators grep for.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// A client opened a session.
    SessionEstablished {
        /// The session id.
        session: SessionId,
        /// The negotiated timeout in milliseconds.
        timeout_ms: u64,
    },
    /// A session's timeout passed without a word from its client.
    SessionExpired {
        /// The session id.
        session: SessionId,
        /// Its timeout in milliseconds.
        timeout_ms: u64,
    },
    /// A client closed its session (or its text connection ended).
    SessionClosed {
        /// The session id.
        session: SessionId,
    },
    /// A multiRead would have built a reply over `Config::max_reply`; it
    /// was refused with MARSHALLINGERROR.
    ReplyTooLarge {
        /// The session that asked.
        session: SessionId,
        /// Bytes built when the limit was passed.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// More events came than the queue holds between two drains; this many
    /// were left out.
    Dropped {
        /// How many.
        count: u64,
    },
}

impl std::fmt::Display for LogEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SessionEstablished {
                session,
                timeout_ms,
            } => write!(
                f,
                "Established session 0x{session:x} with negotiated timeout {timeout_ms}"
            ),
            Self::SessionExpired {
                session,
                timeout_ms,
            } => write!(
                f,
                "Expiring session 0x{session:x}, timeout of {timeout_ms}ms exceeded"
            ),
            Self::SessionClosed { session } => write!(f, "Closed session 0x{session:x}"),
            Self::ReplyTooLarge {
                session,
                bytes,
                max,
            } => write!(
                f,
                "multiRead of session 0x{session:x} refused: reply past {bytes} bytes, \
                 over pookeeper.maxReplyBytes={max}"
            ),
            Self::Dropped { count } => write!(f, "{count} log events dropped (queue full)"),
        }
    }
}

/// Why the server closes a connection.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// A frame announced a length over `jute.maxbuffer` (or negative).
    FrameTooLarge {
        /// The announced length.
        len: i64,
        /// The configured maximum.
        max: u32,
    },
    /// A record could not be decoded.
    Malformed(String),
    /// The first bytes were neither a ZooKeeper handshake nor a known command.
    UnknownProtocol,
    /// The client asked for a session that does not exist (or has expired),
    /// or gave the wrong password; it was told so.
    SessionExpired,
    /// The client's lastZxidSeen is ahead of this server.
    ClientAhead {
        /// What the client has seen.
        client_zxid: Zxid,
        /// The server's last zxid.
        server_zxid: Zxid,
    },
    /// The client closed its session.
    SessionClosed,
    /// Another connection took over this connection's session.
    SessionMoved,
    /// Too many connections from this address (`maxClientCnxns`).
    TooManyConnections {
        /// The configured maximum.
        max: u32,
    },
    /// No handshake arrived in time.
    HandshakeTimeout,
    /// A four-letter word was answered; such connections close afterwards.
    CommandDone,
    /// The connection's text-protocol line was too long.
    LineTooLong,
    /// Text-protocol bytes on a client port that does not serve that dialect
    /// (`textOnClientPort=false`).
    TextDisabled,
    /// Authentication failed.
    AuthFailed,
    /// SASL authentication failed, for this reason.
    SaslFailed(String),
    /// An authentication was refused because it would break the server's
    /// caps on a connection's ids (`max_auth_ids`, `max_auth_id_bytes`):
    /// this says which.
    AuthLimit(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FrameTooLarge { len, max } => {
                write!(f, "frame length {len} outside 0..={max} (jute.maxbuffer)")
            }
            Self::Malformed(what) => write!(f, "malformed request: {what}"),
            Self::UnknownProtocol => f.write_str("unrecognised protocol in first bytes"),
            Self::SessionExpired => f.write_str("session expired or unknown"),
            Self::ClientAhead {
                client_zxid,
                server_zxid,
            } => write!(
                f,
                "client has seen zxid {client_zxid}, ahead of our last zxid {server_zxid}"
            ),
            Self::SessionClosed => f.write_str("session closed by client"),
            Self::SessionMoved => f.write_str("session moved to another connection"),
            Self::TooManyConnections { max } => {
                write!(f, "too many connections from this address (max {max})")
            }
            Self::HandshakeTimeout => f.write_str("no handshake in time"),
            Self::CommandDone => f.write_str("four-letter word answered"),
            Self::LineTooLong => f.write_str("text line too long"),
            Self::TextDisabled => {
                f.write_str("text protocol is off on the client port (textOnClientPort=false)")
            }
            Self::AuthFailed => f.write_str("authentication failed"),
            Self::SaslFailed(why) => write!(f, "SASL authentication failed: {why}"),
            Self::AuthLimit(why) => write!(f, "authentication refused: {why}"),
        }
    }
}
