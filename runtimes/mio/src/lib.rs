//! The PooKeeper server on a hand-rolled mio event loop driving the sans-IO
//! `pookeeper_core::Server`: the `pookeeper` binary, and [`TestingServer`],
//! an in-process server for other programs' test suites.
//!
//! One thread, one `Poll`. The loop follows the core's contract: after every
//! input, drain the outputs; Transmits go to per-connection write queues,
//! Appends to the transaction log. Once per turn the log hands what was
//! appended to its sync thread (group commit: one write and one fdatasync
//! per batch, one batch at a time), which wakes the loop through the
//! `Waker` when the batch is durable; the loop then reports it as
//! `Input::Durable`. The loop never waits for the disk. The core's next
//! deadline is the poll timeout.
//!
//! Each connection's replies wait in a [`SendQueue`]; clients that do not
//! read them are handled by the rule documented in
//! `pookeeper_common::sendq` (pause reading above 4 MiB unsent, resume
//! below 1 MiB, close after a stall), the same as in the async-std runtime.
#![forbid(unsafe_code)]

use mio::net::{TcpListener, TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use pookeeper_common::driver::{Action, Driver};
use pookeeper_common::sendq::{self, SendQueue, STALL_CHECK_INTERVAL};
use pookeeper_common::{debug, info, warn, Settings};
use pookeeper_core::{CloseReason, ConnId, Input};
use std::collections::BTreeMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LISTENER: Token = Token(usize::MAX - 1);
const TEXT_LISTENER: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);
const WAKER: Token = Token(usize::MAX - 4);

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    /// Unsent replies, whether the core closed it (drop once flushed), and
    /// whether reading is paused because the peer does not read.
    queue: SendQueue,
    interest: Interest,
}

struct Runtime {
    poll: Poll,
    driver: Driver,
    conns: BTreeMap<ConnId, Conn>,
    buf: Vec<u8>,
    /// Connections with new bytes to write.
    dirty: Vec<ConnId>,
    /// How long a client may leave replies unread (see `sendq`).
    stall_limit: Duration,
}

fn bind(host: &str, port: u16) -> io::Result<TcpListener> {
    let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot resolve {host}"),
        )
    })?;
    TcpListener::bind(addr)
}

/// Stops a running server from another thread.
#[derive(Clone, Debug)]
pub struct Stopper {
    waker: Arc<Waker>,
    flag: Arc<AtomicBool>,
}

impl Stopper {
    /// Asks the loop to shut down (it flushes, closes and returns).
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// Runs a server until it is stopped (SIGINT/SIGTERM when `signals`, or
/// the [`Stopper`] handed to `on_ready` together with the bound address,
/// once the data directory is recovered and the port listens).
pub fn run(
    settings: &Settings,
    signals: bool,
    on_ready: impl FnOnce(SocketAddr, Stopper),
) -> io::Result<()> {
    let poll = Poll::new()?;
    let stopper = Stopper {
        waker: Arc::new(Waker::new(poll.registry(), WAKER)?),
        flag: Arc::new(AtomicBool::new(false)),
    };
    let mut listener = bind(&settings.host, settings.port).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {}:{}: {e}", settings.host, settings.port),
        )
    })?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut text_listener = match settings.text_port {
        Some(p) => {
            let mut l = bind(&settings.host, p)?;
            poll.registry()
                .register(&mut l, TEXT_LISTENER, Interest::READABLE)?;
            Some(l)
        }
        None => None,
    };
    // SIGINT/SIGTERM arrive as bytes on a socket pair the loop polls.
    let mut _sig_read = None;
    if signals {
        let (sig_read, sig_write) = std::os::unix::net::UnixStream::pair()?;
        sig_read.set_nonblocking(true)?;
        sig_write.set_nonblocking(true)?;
        signal_hook::low_level::pipe::register(
            signal_hook::consts::SIGINT,
            sig_write.try_clone()?,
        )?;
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, sig_write)?;
        let mut sig_read = UnixStream::from_std(sig_read);
        poll.registry()
            .register(&mut sig_read, SIGNALS, Interest::READABLE)?;
        _sig_read = Some(sig_read);
    }

    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let addr = listener.local_addr()?;
    // `conf` shows the port actually bound (`--port 0` picks one).
    let mut settings = settings.clone();
    settings.core.client_port = addr.port();
    let settings = &settings;
    let mut driver = Driver::open(settings, Instant::now(), wall)?;
    // The log's sync thread wakes the loop when a batch is durable (the
    // WAKER event; `commit` runs every turn and collects it).
    let waker = stopper.waker.clone();
    driver.set_waker(Box::new(move || {
        let _ = waker.wake();
    }));
    driver.report_process_facts();
    on_ready(addr, stopper.clone());
    info!(
        "serving ZooKeeper clients on {addr} (tickTime {} ms, sessions {}..{} ms, maxClientCnxns {}, jute.maxbuffer {})",
        settings.core.tick_time.as_millis(),
        settings.core.min_timeout().as_millis(),
        settings.core.max_timeout().as_millis(),
        settings.core.max_client_cnxns,
        settings.core.max_buffer
    );
    if let Some(l) = &text_listener {
        info!("serving the text protocol on {}", l.local_addr()?);
    }

    let mut rt = Runtime {
        poll,
        driver,
        conns: BTreeMap::new(),
        buf: vec![0; 64 * 1024],
        dirty: Vec::new(),
        stall_limit: settings.core.max_timeout(),
    };
    let mut events = Events::with_capacity(1024);
    let mut fds_checked = Instant::now() - Duration::from_secs(2);
    loop {
        let timeout = rt.poll_timeout();
        if let Err(e) = rt.poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let now = Instant::now();
        let mut stop = false;
        for ev in events.iter() {
            match ev.token() {
                LISTENER => rt.accept(&mut listener, false, now),
                TEXT_LISTENER => {
                    if let Some(l) = text_listener.as_mut() {
                        rt.accept(l, true, now);
                    }
                }
                SIGNALS => stop = true,
                WAKER => stop |= stopper.flag.load(Ordering::SeqCst),
                Token(t) => {
                    let id = ConnId(t as u64);
                    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                        rt.read(id, now, ev.is_read_closed() || ev.is_error());
                    }
                    if ev.is_writable() {
                        rt.dirty.push(id);
                    }
                }
            }
        }
        if now.duration_since(fds_checked) >= Duration::from_secs(1) {
            fds_checked = now;
            rt.driver.report_process_facts();
        }
        if rt.driver.tick_due(now) {
            rt.driver.feed(now, Input::Tick);
            rt.drain(now);
        }
        // Commit, then write replies. Log entries that wait for a batch
        // (appended after this commit, e.g. by a paused client that writing
        // resumed, or held back by `commit` right after a batch) make the
        // next poll return at once.
        rt.commit(now);
        rt.flush_all(now);
        rt.check_stalled(now);
        if stop {
            info!("signal received: shutting down");
            // What was appended is made durable (the batch in flight, then
            // the rest) before exiting, and the replies it releases are
            // sent if the clients take them.
            rt.flush_log();
            rt.shutdown();
            if signals {
                // The process ends next: handing a million znodes back to
                // the allocator one by one would only delay the exit
                // (0.4 s). The log is written; nothing else needs a drop.
                std::mem::forget(rt);
            }
            return Ok(());
        }
    }
}

/// Applies one of the core's connection actions to the write queues.
fn act(conns: &mut BTreeMap<ConnId, Conn>, dirty: &mut Vec<ConnId>, now: Instant, a: Action) {
    match a {
        Action::Send(conn, data) => {
            if let Some(c) = conns.get_mut(&conn) {
                c.queue.push(data, now);
                dirty.push(conn);
            }
        }
        Action::Close(conn, reason) => {
            if let Some(c) = conns.get_mut(&conn) {
                match reason {
                    CloseReason::CommandDone | CloseReason::SessionClosed => {
                        debug!("closing connection {} from {}: {reason}", conn.0, c.peer)
                    }
                    _ => info!("closing connection {} from {}: {reason}", conn.0, c.peer),
                }
                c.queue.close(now);
                dirty.push(conn);
            }
        }
    }
}

impl Runtime {
    fn poll_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let core = self
            .driver
            .poll_timeout(now)
            .map(|t| t.saturating_duration_since(now));
        // While some client has unsent replies, wake up to check for stalls.
        let stall = self
            .conns
            .values()
            .any(|c| !c.queue.is_empty())
            .then_some(STALL_CHECK_INTERVAL);
        match (core, stall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn accept(&mut self, listener: &mut TcpListener, text: bool, now: Instant) {
        loop {
            let (mut stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors and the like: keep serving the others.
                    warn!("accept failed: {e}");
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            let id = self.driver.accept(now, Some(peer), text);
            if let Err(e) =
                self.poll
                    .registry()
                    .register(&mut stream, Token(id.0 as usize), Interest::READABLE)
            {
                warn!("cannot register connection from {peer}: {e}");
                self.driver.feed(now, Input::PeerClosed { conn: id });
                self.drain(now);
                continue;
            }
            debug!("accepted connection {} from {peer}", id.0);
            self.conns.insert(
                id,
                Conn {
                    stream,
                    peer,
                    queue: SendQueue::new(),
                    interest: Interest::READABLE,
                },
            );
            self.drain(now);
        }
    }

    /// Reads until WouldBlock, feeding each chunk to the core.
    /// Reads what the connection has. A short read means the socket is
    /// empty for now (more data raises a new readiness event), so it stops
    /// there rather than spending a syscall on `WouldBlock`, unless the
    /// event also reported the peer gone (`to_end`: read up to the EOF).
    fn read(&mut self, id: ConnId, now: Instant, to_end: bool) {
        loop {
            // Requests the core kept (one input may produce only so many
            // replies) come first, while the send queue has room: the
            // high-water mark is checked between requests, not after a
            // whole read burst.
            self.pump(id, now);
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            if c.queue.reading_paused() || c.queue.is_closing() {
                return;
            }
            match c.stream.read(&mut self.buf) {
                Ok(0) => {
                    debug!("connection {} from {} closed by peer", id.0, c.peer);
                    self.peer_gone(id, now);
                    return;
                }
                Ok(n) => {
                    let bytes = &self.buf[..n];
                    self.driver.feed(now, Input::Received { conn: id, bytes });
                    self.drain(now);
                    if n < self.buf.len() && !to_end {
                        self.pump(id, now);
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("connection {} from {}: read error: {e}", id.0, c.peer);
                    self.peer_gone(id, now);
                    return;
                }
            }
        }
    }

    /// Feeds the core's kept requests while the send queue has room (once
    /// it has none, reading is paused too: see `sendq`).
    fn pump(&mut self, id: ConnId, now: Instant) {
        loop {
            let Some(c) = self.conns.get(&id) else {
                return;
            };
            if c.queue.is_closing() || !c.queue.has_room() || !self.driver.has_pending_input(id) {
                return;
            }
            self.driver.feed(
                now,
                Input::Received {
                    conn: id,
                    bytes: &[],
                },
            );
            self.drain(now);
        }
    }

    fn peer_gone(&mut self, id: ConnId, now: Instant) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
        self.driver.feed(now, Input::PeerClosed { conn: id });
        self.drain(now);
    }

    /// Drains the core's outputs into the connections' queues. Log entries
    /// wait in the log's buffer until `commit`: once per loop turn, so every
    /// write of the turn shares one fdatasync (group commit).
    fn drain(&mut self, now: Instant) {
        let Runtime {
            driver,
            conns,
            dirty,
            ..
        } = self;
        driver.drain(&mut |a| act(conns, dirty, now, a));
    }

    /// Makes this turn's appends durable, tells the core, and queues what
    /// that releases.
    fn commit(&mut self, now: Instant) {
        let Runtime {
            driver,
            conns,
            dirty,
            ..
        } = self;
        if let Err(e) = driver.commit(now, &mut |a| act(conns, dirty, now, a)) {
            // A log that cannot be written cannot acknowledge writes.
            warn!("transaction log failed: {e}; shutting down");
            std::process::exit(1);
        }
    }

    /// Waits until the whole log is durable and queues what that releases.
    fn flush_log(&mut self) {
        let now = Instant::now();
        let Runtime {
            driver,
            conns,
            dirty,
            ..
        } = self;
        if let Err(e) = driver.flush_log(now, &mut |a| act(conns, dirty, now, a)) {
            warn!("transaction log failed: {e}; shutting down");
            std::process::exit(1);
        }
        self.flush_all(now);
    }

    fn flush_all(&mut self, now: Instant) {
        while !self.dirty.is_empty() {
            let mut dirty = std::mem::take(&mut self.dirty);
            dirty.sort_unstable();
            dirty.dedup();
            for id in dirty {
                self.flush(id, now);
            }
        }
    }

    /// Writes what is queued until WouldBlock; closes a connection whose
    /// Close has been flushed; updates interest and backpressure.
    fn flush(&mut self, id: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let mut failed = false;
        // Whether a pause ended (it may have begun with this turn's
        // replies, before any write).
        let was_paused = c.queue.reading_paused();
        while !c.queue.is_empty() {
            let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(64);
            c.queue.io_slices(&mut slices, 64);
            match c.stream.write_vectored(&slices) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => {
                    c.queue.advance(n, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!("connection {} from {}: write error: {e}", id.0, c.peer);
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            if c.queue.is_closing() {
                self.drop_conn(id);
            } else {
                self.peer_gone(id, now);
            }
            return;
        }
        if c.queue.is_empty() && c.queue.is_closing() {
            self.drop_conn(id);
            return;
        }
        // Backpressure: a client that does not read its replies stops being
        // read from, so the server does not buffer without bound.
        let paused = c.queue.reading_paused();
        let mut want = if paused || c.queue.is_closing() {
            None
        } else {
            Some(Interest::READABLE)
        };
        if !c.queue.is_empty() {
            want = Some(want.map_or(Interest::WRITABLE, |w| w | Interest::WRITABLE));
        }
        let want = want.unwrap_or(Interest::WRITABLE);
        if want != c.interest {
            c.interest = want;
            let _ = self
                .poll
                .registry()
                .reregister(&mut c.stream, Token(id.0 as usize), want);
        }
        if was_paused && !paused {
            // Edge-triggered: bytes that arrived while paused raise no new
            // event, so read now.
            self.read(id, now, true);
        }
    }

    fn drop_conn(&mut self, id: ConnId) {
        if let Some(mut c) = self.conns.remove(&id) {
            let _ = self.poll.registry().deregister(&mut c.stream);
            let _ = c.stream.shutdown(std::net::Shutdown::Write);
        }
    }

    /// Closes clients that leave their replies unread for too long, and
    /// closing connections that will not take their last bytes (the rule
    /// of `sendq`).
    fn check_stalled(&mut self, now: Instant) {
        let limit = self.stall_limit;
        let stalled: Vec<(ConnId, bool)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.queue.stalled(now, limit))
            .map(|(id, c)| (*id, c.queue.is_closing()))
            .collect();
        for (id, closing) in stalled {
            if let Some(c) = self.conns.get(&id) {
                warn!("{}", sendq::stall_message(id, c.peer, &c.queue, now));
            }
            if closing {
                self.drop_conn(id);
            } else {
                self.peer_gone(id, now);
            }
        }
    }

    /// Flushes what can be flushed without blocking, then closes everything.
    fn shutdown(&mut self) {
        let now = Instant::now();
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.flush(id, now);
            self.drop_conn(id);
        }
        info!("stopped");
    }
}

/// An in-process server for a test suite, like Curator's `TestingServer`:
/// listens on a free loopback port with its own temporary data directory
/// (no fsync), runs on a background thread, and stops (and removes its
/// data) when dropped.
///
/// ```no_run
/// let server = pookeeper_mio::TestingServer::start().unwrap();
/// let connect_string = server.connect_string(); // "127.0.0.1:PORT"
/// // ... point your ZooKeeper client at connect_string ...
/// drop(server);
/// ```
#[derive(Debug)]
pub struct TestingServer {
    addr: SocketAddr,
    stopper: Stopper,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    dir: std::path::PathBuf,
}

impl TestingServer {
    /// Starts a server with default settings.
    pub fn start() -> io::Result<Self> {
        Self::with_settings(Settings::default())
    }

    /// Starts a server with these settings, except port 0 on 127.0.0.1, a
    /// temporary data directory and forceSync=no.
    pub fn with_settings(mut settings: Settings) -> io::Result<Self> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pookeeper-testing-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        settings.host = "127.0.0.1".into();
        settings.port = 0;
        settings.data_dir = dir.to_string_lossy().into_owned();
        settings.data_log_dir = None;
        settings.force_sync = false;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("pookeeper-testing".into())
            .spawn(move || {
                let tx2 = tx.clone();
                let r = run(&settings, false, move |addr, stopper| {
                    let _ = tx2.send(Ok((addr, stopper)));
                });
                if let Err(e) = &r {
                    let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                }
                r
            })?;
        let (addr, stopper) = rx
            .recv()
            .map_err(|_| io::Error::other("the server thread ended before listening"))??;
        Ok(Self {
            addr,
            stopper,
            thread: Some(thread),
            dir,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port`, as ZooKeeper clients take it.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.stopper.stop();
        let r = match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other("server thread panicked"))?,
            None => Ok(()),
        };
        let _ = std::fs::remove_dir_all(&self.dir);
        r
    }
}

impl Drop for TestingServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
