//! # Testing: drive a [`Server`] in-process, deterministically
//!
//! The pieces every driver of the core in a test needs, in one place: a
//! seeded random generator ([`Rng`]), a virtual clock ([`Clock`]) and a
//! [`Harness`] that owns a server and runs the drain loop of the driving
//! contract (see the crate docs) for you, keeping what comes out: the bytes
//! each connection received, the connections the server closed and why,
//! and the log (every [`Output::Append`]), reported durable as a
//! [`Durability`] policy says. PooKeeper's own unit tests, its
//! deterministic simulation and its fuzz targets drive the server through
//! it, and so can yours if you embed the core.
//!
//! Every drain checks what any driver may rely on, and panics (it is a
//! test) when the server breaks it:
//!
//! * outputs name only connections accepted through the harness and still
//!   open: nothing after a connection's [`Output::Close`], nothing after its
//!   peer closed;
//! * appended zxids go up by exactly one, and every entry decodes as a
//!   [`Txn`](crate::txn::Txn);
//! * the drain ends (a bounded number of outputs);
//! * the server's own consistency checks hold (parents list their
//!   children, ephemerals are owned by open sessions, ...), unless
//!   [`Harness::invariants_every_drain`] is off.
//!
//! A caller that must act on each output as it happens (route bytes to
//! simulated clients, check each reply against a model) or on each report
//! of durability gives the harness an [`Observer`].
//!
//! Nothing here reads the clock after [`Clock::new`] took its epoch, and
//! all randomness comes from the seeded [`Rng`], so a run replays exactly.
//!
//! ## Example: a session's ConnectResponse
//!
//! ```
//! use pookeeper_core::proto::records::ConnectRequest;
//! use pookeeper_core::testing::Harness;
//! use pookeeper_core::Config;
//! use std::time::Duration;
//!
//! let mut h = Harness::new(Config::default(), 1_700_000_000_000).unwrap();
//! let conn = h.accept();
//! let hello = ConnectRequest {
//!     protocol_version: 0,
//!     last_zxid_seen: 0,
//!     timeout: 30_000,
//!     session_id: 0,
//!     passwd: vec![0; 16],
//!     read_only: false,
//! };
//! // Feeds the bytes and drains; the new session is a logged transaction,
//! // which the default policy (`Durability::Auto`) reports durable at once.
//! h.send(conn, &hello.encode_frame());
//! assert_eq!(h.appended().len(), 1);
//! assert_eq!(h.durable(), 1);
//!
//! // The ConnectResponse: protocolVersion, timeout, sessionId, password.
//! let body = h.frame(conn).expect("a ConnectResponse");
//! assert_eq!(&body[..4], &0i32.to_be_bytes());
//! assert_eq!(&body[4..8], &30_000i32.to_be_bytes());
//! assert_ne!(&body[8..16], &[0; 8], "a session id");
//! assert!(h.frame(conn).is_none());
//! assert!(h.closed(conn).is_none());
//!
//! // Virtual time: without a word from its client the session expires.
//! h.advance(Duration::from_secs(60));
//! assert_eq!(h.server.session_count(), 0);
//! ```

use crate::{CloseReason, Config, ConfigError, ConnId, Input, Output, Server};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A small deterministic random generator: Marsaglia's xorshift64 (shifts
/// 13, 7, 17), whose output is its state. Not for cryptography; for tests
/// that must replay from a seed. (The plain variant, not xorshift64*, so
/// that the simulation's and the fuzzers' seeds replay the runs they did
/// before this module existed.)
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`, mixed so that neighbouring seeds start far
    /// apart (`seed × 0x9E3779B97F4A7C15`, made odd, hence never zero).
    pub fn new(seed: u64) -> Self {
        Self::from_state(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A generator whose state is `state` as given, unmixed; zero (which
    /// xorshift never leaves) is taken as one.
    pub fn from_state(state: u64) -> Self {
        Self(state.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`next_u64() % n`: slightly biased, which no
    /// test minds). Panics if `n` is zero.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0)");
        self.next_u64() % n
    }

    /// True with probability `num / den` (`below(den) < num`).
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// The low byte of [`next_u64`](Self::next_u64).
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// `n` random bytes, one [`byte`](Self::byte) each.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// A virtual clock: an epoch taken from the real clock once, plus an offset
/// that only the test moves. The server sees only differences between
/// instants, so runs do not depend on when they happen.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
    offset: Duration,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock at its epoch. (The one real clock read: std offers no other
    /// way to make an `Instant`.)
    #[allow(clippy::disallowed_methods)]
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            offset: Duration::ZERO,
        }
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.epoch + self.offset
    }

    /// How far the clock has moved since its epoch.
    pub fn elapsed(&self) -> Duration {
        self.offset
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&mut self, d: Duration) {
        self.offset += d;
    }

    /// Moves the clock forward to `t` (a deadline from
    /// [`Server::poll_timeout`], say); never backwards.
    pub fn advance_to(&mut self, t: Instant) {
        self.offset = self.offset.max(t.saturating_duration_since(self.epoch));
    }
}

/// When a [`Harness`] reports appended entries durable
/// ([`Input::Durable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// At the end of each drain, everything appended, and drain again until
    /// nothing more is appended: an in-memory log that is always synced.
    Auto,
    /// Only when the test says so: [`Harness::make_durable`],
    /// [`Harness::make_durable_all`] (writes wait meanwhile, and so does
    /// everything their sessions sent after them).
    Manual,
    /// Late and partly, at random (from the harness's [`Rng`]): each time a
    /// drain runs dry with entries not yet durable, with a chance of one in
    /// `one_in` it reports a random prefix of them durable and drains
    /// again; otherwise it stops, and they stay pending for a later drain
    /// (or [`Harness::make_durable_all`]).
    Lagging {
        /// The odds of a report at each chance (3: one in three).
        one_in: u64,
    },
}

/// Sees what a [`Harness`] sees, as it happens. Both methods do nothing
/// unless overridden; `()` observes nothing.
pub trait Observer {
    /// Each output, in order, after the harness's own checks and before it
    /// records the output.
    fn output(&mut self, _output: &Output) {}

    /// The harness is about to report the entries up to `zxid` durable to
    /// the server (whatever the policy, or a direct call).
    fn durable(&mut self, _zxid: i64) {}
}

impl Observer for () {}

/// More outputs than this in one drain means the server never runs dry.
const OUTPUT_LIMIT: usize = 1_000_000;

/// A server, a virtual clock, a seeded generator, and everything the server
/// said: see the [module docs](self).
///
/// The input methods that end in a drain are [`send`](Self::send),
/// [`peer_closed`](Self::peer_closed), [`tick`](Self::tick) and
/// [`advance`](Self::advance). [`handle`](Self::handle), the `accept`
/// methods, [`make_durable`](Self::make_durable) and
/// [`make_durable_all`](Self::make_durable_all) only feed the server:
/// [`drain`](Self::drain) before the next input, as the driving contract
/// asks (a driver that batches several inputs per drain uses these).
/// `server` is public for whatever else a test needs (statistics,
/// snapshots, log lines); connections must be accepted through the
/// harness, which refuses outputs for connections it does not know.
#[derive(Debug)]
pub struct Harness<O: Observer = ()> {
    /// The server under test.
    pub server: Server,
    /// The virtual clock; every input is fed at its [`now`](Clock::now).
    pub clock: Clock,
    /// The generator behind [`Durability::Lagging`], free for the test's
    /// own choices too (one stream, so a seed replays the whole run).
    pub rng: Rng,
    /// When appended entries are reported durable; may change mid-test.
    pub durability: Durability,
    /// Sees each output and each durability report.
    pub observer: O,
    /// Whether each drain ends with [`Server::check_invariants`] (on unless
    /// turned off). A driver that drains many times per step of its own
    /// may check at its own pace instead: the simulation checks once per
    /// step, which halves its run time.
    pub invariants_every_drain: bool,
    /// Connections accepted and not closed by either side.
    live: BTreeSet<ConnId>,
    /// Bytes received per connection, not yet taken.
    inbox: BTreeMap<ConnId, Vec<u8>>,
    /// Connections the server closed, in order, with the reason.
    closed: Vec<(ConnId, CloseReason)>,
    /// Every appended entry, in zxid order.
    appended: Vec<(i64, Bytes)>,
    /// The zxid of the last append (the server's last zxid at the start).
    last_appended: i64,
    /// The highest zxid reported durable.
    durable: i64,
}

impl Harness {
    /// A new server with `config` and wall time `wall_ms` at a new clock's
    /// epoch; [`Durability::Auto`], `Rng::new(0)`, no observer.
    pub fn new(config: Config, wall_ms: i64) -> Result<Self, ConfigError> {
        let clock = Clock::new();
        let server = Server::new(config, clock.now(), wall_ms)?;
        Ok(Self::from_server(server, clock))
    }

    /// Wraps a server made elsewhere (by [`Server::recover`], say) that has
    /// no connections and whose outputs so far were drained: its last zxid
    /// counts as appended, its committed zxid as durable. `clock` must not
    /// be behind the last instant the server was fed (the clock it was
    /// made with, or a fresh [`Clock::new`]).
    pub fn from_server(server: Server, clock: Clock) -> Self {
        let last_appended = server.last_zxid().0;
        let durable = server.committed_zxid().0;
        Self {
            server,
            clock,
            rng: Rng::new(0),
            durability: Durability::Auto,
            observer: (),
            invariants_every_drain: true,
            live: BTreeSet::new(),
            inbox: BTreeMap::new(),
            closed: Vec::new(),
            appended: Vec::new(),
            last_appended,
            durable,
        }
    }
}

impl<O: Observer> Harness<O> {
    /// The same harness with durability policy `durability`.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The same harness with generator `rng`.
    pub fn with_rng(mut self, rng: Rng) -> Self {
        self.rng = rng;
        self
    }

    /// The same harness, observed by `observer`.
    pub fn with_observer<P: Observer>(self, observer: P) -> Harness<P> {
        Harness {
            server: self.server,
            clock: self.clock,
            rng: self.rng,
            durability: self.durability,
            observer,
            invariants_every_drain: self.invariants_every_drain,
            live: self.live,
            inbox: self.inbox,
            closed: self.closed,
            appended: self.appended,
            last_appended: self.last_appended,
            durable: self.durable,
        }
    }

    /// The clock's current instant.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Accepts a client connection with no peer address. Does not drain.
    pub fn accept(&mut self) -> ConnId {
        self.register(|s, now| s.accept(now, None))
    }

    /// Accepts a client connection from `peer` (`maxClientCnxns` counts per
    /// address). Does not drain.
    pub fn accept_from(&mut self, peer: SocketAddr) -> ConnId {
        self.register(|s, now| s.accept(now, Some(peer)))
    }

    /// Accepts a connection on the text-protocol port
    /// ([`Server::accept_text`]). Does not drain.
    pub fn accept_text(&mut self) -> ConnId {
        self.register(|s, now| s.accept_text(now, None))
    }

    fn register(&mut self, accept: impl FnOnce(&mut Server, Instant) -> ConnId) -> ConnId {
        let conn = accept(&mut self.server, self.clock.now());
        self.live.insert(conn);
        conn
    }

    /// Feeds one input at the clock's now, without draining. A
    /// `PeerClosed` ends the connection for the harness too (any output for
    /// it after this is an error); a `Durable` goes through
    /// [`make_durable`](Self::make_durable).
    pub fn handle(&mut self, input: Input<'_>) {
        match input {
            Input::Durable { zxid } => self.make_durable(zxid.0),
            Input::PeerClosed { conn } => {
                self.live.remove(&conn);
                self.server.handle(self.clock.now(), input);
            }
            Input::Received { .. } | Input::Tick => self.server.handle(self.clock.now(), input),
        }
    }

    /// Feeds `bytes` as received on `conn`, then drains.
    pub fn send(&mut self, conn: ConnId, bytes: &[u8]) {
        self.handle(Input::Received { conn, bytes });
        self.drain();
    }

    /// The peer of `conn` goes away; then drains.
    pub fn peer_closed(&mut self, conn: ConnId) {
        self.handle(Input::PeerClosed { conn });
        self.drain();
    }

    /// Feeds a tick at the clock's now, then drains.
    pub fn tick(&mut self) {
        self.handle(Input::Tick);
        self.drain();
    }

    /// Moves the clock forward by `d`, then ticks and drains.
    pub fn advance(&mut self, d: Duration) {
        self.clock.advance(d);
        self.tick();
    }

    /// Reports the entries up to `zxid` durable (telling the observer
    /// first), without draining. Panics if `zxid` was never appended.
    pub fn make_durable(&mut self, zxid: i64) {
        assert!(
            zxid <= self.last_appended,
            "durable to {zxid}, but only {} appended",
            self.last_appended
        );
        self.observer.durable(zxid);
        self.durable = self.durable.max(zxid);
        self.server.handle(
            self.clock.now(),
            Input::Durable {
                zxid: crate::Zxid(zxid),
            },
        );
    }

    /// Reports everything appended durable, if anything is not yet;
    /// without draining.
    pub fn make_durable_all(&mut self) {
        if self.last_appended > self.durable {
            self.make_durable(self.last_appended);
        }
    }

    /// Polls every output, checking, observing and recording each, and
    /// reports durability as the policy says (polling again after each
    /// report); then checks the server's invariants (unless
    /// [`invariants_every_drain`](Self::invariants_every_drain) is off).
    /// Panics when something is wrong (see the [module docs](self)).
    pub fn drain(&mut self) {
        let mut seen = 0usize;
        loop {
            while let Some(out) = self.server.poll_output() {
                seen += 1;
                assert!(
                    seen <= OUTPUT_LIMIT,
                    "outputs never ran dry ({OUTPUT_LIMIT} in one drain)"
                );
                self.check(&out);
                self.observer.output(&out);
                self.record(out);
            }
            let behind = self.last_appended - self.durable;
            let report = match self.durability {
                Durability::Auto => (behind > 0).then_some(self.last_appended),
                Durability::Manual => None,
                Durability::Lagging { one_in } => (behind > 0 && self.rng.chance(1, one_in))
                    .then(|| self.durable + 1 + self.rng.below(behind as u64) as i64),
            };
            match report {
                Some(zxid) => self.make_durable(zxid),
                None => break,
            }
        }
        if self.invariants_every_drain {
            if let Err(e) = self.server.check_invariants() {
                panic!("server invariant broken: {e}");
            }
        }
    }

    fn check(&self, out: &Output) {
        match out {
            Output::Transmit { conn, .. } | Output::Close { conn, .. } => {
                if !self.live.contains(conn) {
                    match self.closed(*conn) {
                        Some(why) => panic!("{out:?} after the server closed {conn:?} ({why})"),
                        None => panic!(
                            "{out:?} for {conn:?}, which is not open (its peer closed, \
                             or the harness did not accept it)"
                        ),
                    }
                }
            }
            Output::Append { zxid, entry } => {
                assert_eq!(
                    zxid.0,
                    self.last_appended + 1,
                    "appended zxid {zxid} after {}",
                    self.last_appended
                );
                if let Err(e) = crate::txn::Txn::decode(entry) {
                    panic!("appended entry {zxid} does not decode: {e:?}");
                }
            }
        }
    }

    fn record(&mut self, out: Output) {
        match out {
            Output::Transmit { conn, data } => {
                self.inbox.entry(conn).or_default().extend_from_slice(&data);
            }
            Output::Close { conn, reason } => {
                self.live.remove(&conn);
                self.closed.push((conn, reason));
            }
            Output::Append { zxid, entry } => {
                self.last_appended = zxid.0;
                self.appended.push((zxid.0, entry));
            }
        }
    }

    /// The bytes `conn` received and nobody took yet.
    pub fn inbox(&self, conn: ConnId) -> &[u8] {
        self.inbox.get(&conn).map_or(&[], Vec::as_slice)
    }

    /// Takes the bytes `conn` received so far (empty if none).
    pub fn take_inbox(&mut self, conn: ConnId) -> Vec<u8> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    /// Takes the next whole length-prefixed frame `conn` received, and
    /// returns its body (without the 4-byte length); `None` until one is
    /// complete.
    pub fn frame(&mut self, conn: ConnId) -> Option<Vec<u8>> {
        let buf = self.inbox.get_mut(&conn)?;
        let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
        let body = buf.get(4..4 + len)?.to_vec();
        buf.drain(..4 + len);
        Some(body)
    }

    /// Why the server closed `conn`, if it did.
    pub fn closed(&self, conn: ConnId) -> Option<&CloseReason> {
        self.closed.iter().find(|c| c.0 == conn).map(|c| &c.1)
    }

    /// Every connection the server closed, in order, with the reason.
    pub fn closes(&self) -> &[(ConnId, CloseReason)] {
        &self.closed
    }

    /// The open connections (accepted, closed by neither side), in
    /// acceptance order.
    pub fn live(&self) -> impl ExactSizeIterator<Item = ConnId> + '_ {
        self.live.iter().copied()
    }

    /// Whether `conn` is open.
    pub fn is_live(&self, conn: ConnId) -> bool {
        self.live.contains(&conn)
    }

    /// Every entry appended since the harness started, as (zxid, entry).
    pub fn appended(&self) -> &[(i64, Bytes)] {
        &self.appended
    }

    /// The appended entries not yet reported durable.
    pub fn undurable(&self) -> &[(i64, Bytes)] {
        let from = self.appended.partition_point(|(z, _)| *z <= self.durable);
        &self.appended[from..]
    }

    /// The zxid of the last append (at the start: the server's last zxid).
    pub fn last_appended(&self) -> i64 {
        self.last_appended
    }

    /// The highest zxid reported durable.
    pub fn durable(&self) -> i64 {
        self.durable
    }

    /// Every appended entry as one log segment holds it (a header naming
    /// the first entry's zxid, then a record per entry), ready for
    /// [`Server::recover`].
    pub fn log_segment(&self) -> Vec<u8> {
        let first = self
            .appended
            .first()
            .map_or(self.last_appended + 1, |a| a.0);
        let mut log = crate::storage::log_header(first).to_vec();
        for (_, entry) in &self.appended {
            crate::storage::encode_record(entry, &mut log);
        }
        log
    }
}
