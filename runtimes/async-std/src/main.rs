//! `pookeeper-async`: the same server as `pookeeper`, driven from async-std.
//!
//! One task owns the [`Driver`] (and so the `Server`); every connection has a
//! reader task that forwards bytes to it over a channel and a writer task
//! that writes what the server task puts in the connection's
//! [`SendQueue`] (shared, behind a mutex that is never held across an
//! `.await`). The core's deadline is the receive timeout. Clients that do
//! not read their replies are handled by the rule documented in
//! `pookeeper_common::sendq`, the same as in the mio runtime: the reader
//! stops reading above 4 MiB unsent and the writer wakes it below 1 MiB;
//! the server task feeds the core only while the queue has room, and
//! closes connections whose queue stalls (checked once a second while any
//! queue is non-empty). The reader also stays at most `MAX_UNFED` ahead of
//! the server task, so that what it reads cannot pile up in the channel
//! before the pause shows (the mio loop reads and feeds in one thread).
//! Configuration, command line, data directory and the loop's logic are the
//! ones of `pookeeper` (pookeeper-common); only sockets and tasks differ.
//! async-std is discontinued upstream: the adapter uses nothing beyond
//! spawn, TCP streams, channels and a timeout, so moving to smol or tokio
//! is a small change.
#![forbid(unsafe_code)]

use async_std::channel::{bounded, unbounded, Receiver, Sender};
use async_std::net::{TcpListener, TcpStream};
use async_std::prelude::*;
use async_std::task;
use bytes::Bytes;
use pookeeper_common::cli::{self, Command};
use pookeeper_common::driver::{Action, Driver};
use pookeeper_common::sendq::{self, SendQueue, STALL_CHECK_INTERVAL};
use pookeeper_common::{debug, info, warn, Settings};
use pookeeper_core::{CloseReason, ConnId, Input};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::IoSlice;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// At most this many buffers go into one vectored write.
const MAX_SLICES: usize = 64;
/// The reader reads no more while this much of what it read waits for the
/// server task: it would otherwise run ahead of a busy server task, and
/// what it read would pile up before the pause could be seen.
const MAX_UNFED: usize = 256 << 10;

fn main() {
    pookeeper_common::log::init_from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match cli::parse("pookeeper-async", &args) {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("pookeeper-async: {e}");
            std::process::exit(2);
        }
    };
    if let Some(code) = cli::run_tool("pookeeper-async", &cmd) {
        std::process::exit(code);
    }
    if let Command::Run { settings, ignored } = cmd {
        for key in ignored {
            warn!("ignoring unsupported configuration key {key}");
        }
        if let Err(e) = task::block_on(run(*settings)) {
            eprintln!("pookeeper-async: {e}");
            std::process::exit(1);
        }
    }
}

/// What the connection tasks and the acceptor tell the server task.
enum Event {
    Accepted(TcpStream, SocketAddr, bool),
    Data(ConnId, Vec<u8>),
    /// The connection's writer ended a pause (its queue fell below the
    /// low-water mark): feed what waited.
    Resumed(ConnId),
    /// The reader saw the end of the stream (or an error).
    PeerClosed(ConnId),
    /// The writer ended: it flushed a closing connection, its write failed,
    /// or the connection was dropped.
    WriterDone(ConnId),
    /// The log's sync thread finished a batch (`Driver::commit` collects it).
    Flushed,
    Stop,
}

/// The send queue the server task and a connection's writer task share.
/// Lock it only between `.await`s (never hold the guard across one).
type SharedQueue = Arc<Mutex<SendQueue>>;

fn lock(q: &Mutex<SendQueue>) -> MutexGuard<'_, SendQueue> {
    // A panicking holder leaves a queue that is still consistent enough to
    // drop the connection with.
    q.lock().unwrap_or_else(|e| e.into_inner())
}

struct Conn {
    peer: SocketAddr,
    /// To shut the socket down from here (a stalled or vanished peer).
    stream: TcpStream,
    queue: SharedQueue,
    /// Wakes the writer when its queue becomes non-empty or closes
    /// (dropped with the connection, which ends an idle writer).
    wake: Sender<()>,
    /// Bytes the reader read that this task has not taken yet (the reader
    /// adds, this task subtracts; see `MAX_UNFED`).
    unfed: Arc<AtomicUsize>,
    /// Wakes the reader when `unfed` falls to `MAX_UNFED` (the writer
    /// holds the other sender, for the end of a pause).
    wake_reader: Sender<()>,
    /// Bytes the reader delivered while the queue had no room: the core
    /// gets them once it has (they are the core's input buffer's, waiting
    /// here instead).
    held: Vec<u8>,
}

/// The server task's state: the driver and the connections.
struct ServerTask {
    driver: Driver,
    conns: BTreeMap<ConnId, Conn>,
    events: Sender<Event>,
    /// How long a client may leave replies unread (see `sendq`).
    stall_limit: Duration,
    /// A queue became non-empty or started closing in this turn (arms the
    /// stall check).
    busy: Cell<bool>,
    /// When to look for stalled queues next, while any may stall.
    stall_check: Option<Instant>,
}

/// Applies one of the core's actions to the connection's send queue (its
/// writer task sends it).
fn act(conns: &BTreeMap<ConnId, Conn>, now: Instant, busy: &Cell<bool>, a: Action) {
    match a {
        Action::Send(id, data) => {
            if let Some(c) = conns.get(&id) {
                let was_empty = {
                    let mut q = lock(&c.queue);
                    let was_empty = q.is_empty();
                    q.push(data, now);
                    was_empty
                };
                if was_empty {
                    // A writer that found the queue empty waits for this.
                    let _ = c.wake.try_send(());
                    busy.set(true);
                }
            }
        }
        Action::Close(id, reason) => {
            if let Some(c) = conns.get(&id) {
                match reason {
                    CloseReason::CommandDone | CloseReason::SessionClosed => {
                        debug!("closing connection {} from {}: {reason}", id.0, c.peer)
                    }
                    _ => info!("closing connection {} from {}: {reason}", id.0, c.peer),
                }
                // The writer flushes what is queued, then ends the
                // connection (and reports `WriterDone`).
                lock(&c.queue).close(now);
                let _ = c.wake.try_send(());
                busy.set(true);
            }
        }
    }
}

impl ServerTask {
    /// Handles one event; returns false for `Stop`.
    fn on_event(&mut self, now: Instant, event: Event) -> bool {
        match event {
            Event::Accepted(stream, peer, text) => {
                let id = self.driver.accept(now, Some(peer), text);
                let queue = Arc::new(Mutex::new(SendQueue::new()));
                let (wake, woken) = bounded(1);
                let (resume, resumed) = bounded(1);
                let unfed = Arc::new(AtomicUsize::new(0));
                self.conns.insert(
                    id,
                    Conn {
                        peer,
                        stream: stream.clone(),
                        queue: queue.clone(),
                        wake,
                        unfed: unfed.clone(),
                        wake_reader: resume.clone(),
                        held: Vec::new(),
                    },
                );
                task::spawn(reader(
                    id,
                    stream.clone(),
                    queue.clone(),
                    unfed,
                    resumed,
                    self.events.clone(),
                ));
                task::spawn(writer(
                    id,
                    stream,
                    queue,
                    woken,
                    resume,
                    self.events.clone(),
                ));
                debug!("accepted connection {} from {peer}", id.0);
                // A refused connection is closed at once.
                self.driver
                    .drain(&mut |a| act(&self.conns, now, &self.busy, a));
            }
            Event::Data(id, bytes) => {
                if let Some(c) = self.conns.get(&id) {
                    let n = bytes.len();
                    let before = c.unfed.fetch_sub(n, Ordering::AcqRel);
                    if before > MAX_UNFED && before - n <= MAX_UNFED {
                        let _ = c.wake_reader.try_send(());
                    }
                }
                self.feed(now, id, bytes)
            }
            Event::Resumed(id) => self.feed(now, id, Vec::new()),
            Event::PeerClosed(id) => {
                // A closing connection is the writer's to finish (or the
                // stall check's to drop).
                if self
                    .conns
                    .get(&id)
                    .is_some_and(|c| !lock(&c.queue).is_closing())
                {
                    if let Some(c) = self.conns.get(&id) {
                        debug!("connection {} from {} closed by peer", id.0, c.peer);
                    }
                    self.drop_conn(now, id);
                }
            }
            Event::WriterDone(id) => self.drop_conn(now, id),
            Event::Flushed => {}
            Event::Stop => return false,
        }
        true
    }

    /// Feeds received bytes (or what waited of them) while the queue has
    /// room, then what the core kept of them (see
    /// `Server::has_pending_input`) while it still has.
    fn feed(&mut self, now: Instant, id: ConnId, bytes: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&id) else {
            // Gone: the core has forgotten it too.
            return;
        };
        let bytes = {
            let q = lock(&c.queue);
            if q.is_closing() {
                return;
            }
            if !q.has_room() {
                c.held.extend_from_slice(&bytes);
                return;
            }
            if c.held.is_empty() {
                bytes
            } else {
                c.held.extend_from_slice(&bytes);
                std::mem::take(&mut c.held)
            }
        };
        if !bytes.is_empty() {
            self.driver.handle(
                now,
                Input::Received {
                    conn: id,
                    bytes: &bytes,
                },
                &mut |a| act(&self.conns, now, &self.busy, a),
            );
        }
        self.pump(now, id);
    }

    /// Feeds the core the requests it kept while the queue has room.
    fn pump(&mut self, now: Instant, id: ConnId) {
        let Some(c) = self.conns.get(&id) else {
            return;
        };
        loop {
            let room = lock(&c.queue).has_room();
            if !room || !self.driver.has_pending_input(id) {
                return;
            }
            self.driver.handle(
                now,
                Input::Received {
                    conn: id,
                    bytes: &[],
                },
                &mut |a| act(&self.conns, now, &self.busy, a),
            );
        }
    }

    /// Forgets a connection: shuts its socket down (its reader and writer
    /// end) and, unless the core closed it itself, tells the core the peer
    /// is gone.
    fn drop_conn(&mut self, now: Instant, id: ConnId) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        if !lock(&c.queue).is_closing() {
            self.driver
                .handle(now, Input::PeerClosed { conn: id }, &mut |a| {
                    act(&self.conns, now, &self.busy, a)
                });
        }
    }

    /// The stall check of `sendq`: at most every `STALL_CHECK_INTERVAL`
    /// while some queue is non-empty or closing.
    fn check_stalled(&mut self, now: Instant) {
        if self.busy.take() && self.stall_check.is_none() {
            self.stall_check = Some(now + STALL_CHECK_INTERVAL);
        }
        if self.stall_check.is_none_or(|t| t > now) {
            return;
        }
        let limit = self.stall_limit;
        let stalled: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| lock(&c.queue).stalled(now, limit))
            .map(|(id, _)| *id)
            .collect();
        for id in stalled {
            if let Some(c) = self.conns.get(&id) {
                warn!("{}", sendq::stall_message(id, c.peer, &lock(&c.queue), now));
            }
            self.drop_conn(now, id);
        }
        let watch = self.conns.values().any(|c| {
            let q = lock(&c.queue);
            !q.is_empty() || q.is_closing()
        });
        self.busy.set(false);
        self.stall_check = watch.then(|| now + STALL_CHECK_INTERVAL);
    }
}

async fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("cannot resolve {host}"),
        )
    })?;
    TcpListener::bind(addr).await
}

async fn run(settings: Settings) -> std::io::Result<()> {
    let listener = bind(&settings.host, settings.port).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {}:{}: {e}", settings.host, settings.port),
        )
    })?;
    let text_listener = match settings.text_port {
        Some(p) => Some(bind(&settings.host, p).await?),
        None => None,
    };
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let addr = listener.local_addr()?;
    // `conf` shows the port actually bound (`--port 0` picks one).
    let mut settings = settings;
    settings.core.client_port = addr.port();
    let mut driver = Driver::open(&settings, Instant::now(), wall)?;
    driver.report_process_facts();
    println!("pookeeper listening on {addr}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    info!("serving ZooKeeper clients on {addr} (async-std runtime)");

    let (events, inbox) = unbounded::<Event>();
    // The log's sync thread wakes this task when a batch is durable.
    let flushed = events.clone();
    driver.set_waker(Box::new(move || {
        let _ = flushed.try_send(Event::Flushed);
    }));
    task::spawn(accept_loop(listener, false, events.clone()));
    if let Some(l) = text_listener {
        info!("serving the text protocol on {}", l.local_addr()?);
        task::spawn(accept_loop(l, true, events.clone()));
    }
    spawn_signal_watch(events.clone())?;

    let mut srv = ServerTask {
        driver,
        conns: BTreeMap::new(),
        events,
        stall_limit: settings.core.max_timeout(),
        busy: Cell::new(false),
        stall_check: None,
    };
    let mut fds_checked = Instant::now() - Duration::from_secs(2);
    loop {
        // The core's deadline, or the next stall check if sooner.
        let start = Instant::now();
        let deadline = match (srv.driver.poll_timeout(start), srv.stall_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let event = match deadline.map(|t| t.saturating_duration_since(start)) {
            Some(d) => async_std::future::timeout(d, inbox.recv()).await.ok(),
            None => Some(inbox.recv().await),
        };
        let now = Instant::now();
        let mut stopping = match event {
            Some(Ok(ev)) => !srv.on_event(now, ev),
            Some(Err(_)) => true,
            None => false,
        };
        // Everything already waiting is handled in this turn too, so one
        // batch (one fdatasync) covers it: group commit. (Not when
        // stopping: nothing more is taken in.)
        while !stopping {
            let Ok(ev) = inbox.try_recv() else { break };
            stopping = !srv.on_event(now, ev);
        }
        if stopping {
            info!("signal received: shutting down");
        }
        let ServerTask {
            driver,
            conns,
            busy,
            ..
        } = &mut srv;
        let mut sink = |a| act(conns, now, busy, a);
        driver.tick_if_due(now, &mut sink);
        let committed = if stopping {
            // Everything appended is made durable (the batch in flight,
            // then the rest) before exiting; the replies it releases
            // are handed to the writers.
            driver.flush_log(now, &mut sink)
        } else {
            driver.commit(now, &mut sink)
        };
        if let Err(e) = committed {
            warn!("transaction log failed: {e}; shutting down");
            std::process::exit(1);
        }
        if stopping {
            for c in srv.conns.values() {
                lock(&c.queue).close(now);
                let _ = c.wake.try_send(());
            }
            info!("stopped");
            // The process ends next: freeing the tree node by node would
            // only delay the exit.
            std::mem::forget(srv);
            return Ok(());
        }
        srv.check_stalled(now);
        if now.duration_since(fds_checked) >= Duration::from_secs(1) {
            fds_checked = now;
            srv.driver.report_process_facts();
        }
    }
}

async fn accept_loop(listener: TcpListener, text: bool, events: Sender<Event>) {
    let mut incoming = listener.incoming();
    while let Some(stream) = incoming.next().await {
        match stream {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                let Ok(peer) = s.peer_addr() else { continue };
                if events.send(Event::Accepted(s, peer, text)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                warn!("accept failed: {e}");
                task::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Reads what the peer sends and hands it to the server task, except
/// while the connection's queue says reading is paused (see `sendq`): then
/// it waits until the writer ends the pause. It also waits while the
/// server task has not taken `MAX_UNFED` of what it read.
async fn reader(
    id: ConnId,
    mut stream: TcpStream,
    queue: SharedQueue,
    unfed: Arc<AtomicUsize>,
    woken: Receiver<()>,
    events: Sender<Event>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Backpressure: a client that does not read its replies is not read
        // from either, until its queue is below the low-water mark.
        loop {
            let paused = lock(&queue).reading_paused();
            if !paused && unfed.load(Ordering::Acquire) <= MAX_UNFED {
                break;
            }
            // (A wake-up left over from before only makes it look again.)
            if woken.recv().await.is_err() {
                // The writer ended and the server task dropped the
                // connection.
                return;
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = events.send(Event::PeerClosed(id)).await;
                return;
            }
            Ok(n) => {
                // Counted before the server task can see (and subtract) it.
                unfed.fetch_add(n, Ordering::AcqRel);
                if events
                    .send(Event::Data(id, buf[..n].to_vec()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Writes what the connection's queue holds, in vectored writes, and
/// reports the progress to the queue; ends the connection once a closing
/// queue is flushed, on a write error, or when the server task drops it.
async fn writer(
    id: ConnId,
    mut stream: TcpStream,
    queue: SharedQueue,
    woken: Receiver<()>,
    resume: Sender<()>,
    events: Sender<Event>,
) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(MAX_SLICES);
    loop {
        // Lock, take cheap clones of the front, unlock; write; lock,
        // advance.
        let flushed = {
            let q = lock(&queue);
            q.clone_front(&mut batch, MAX_SLICES);
            batch.is_empty() && q.is_closing()
        };
        if flushed {
            break;
        }
        if batch.is_empty() {
            if woken.recv().await.is_err() {
                break;
            }
            continue;
        }
        let written = {
            let slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
            stream.write_vectored(&slices).await
        };
        batch.clear();
        match written {
            Ok(0) => break,
            Ok(n) => {
                let resumed = lock(&queue).advance(n, Instant::now());
                if resumed {
                    let _ = resume.try_send(());
                    // The server task holds this connection's requests
                    // until its replies are sent.
                    if events.send(Event::Resumed(id)).await.is_err() {
                        break;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                debug!("connection {}: write error: {e}", id.0);
                break;
            }
        }
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = events.send(Event::WriterDone(id)).await;
}

/// SIGINT/SIGTERM become an `Event::Stop`, through a socket pair a task
/// reads.
fn spawn_signal_watch(events: Sender<Event>) -> std::io::Result<()> {
    let (r, w) = std::os::unix::net::UnixStream::pair()?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, w.try_clone()?)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, w)?;
    let mut r = async_std::os::unix::net::UnixStream::from(r);
    task::spawn(async move {
        let mut b = [0u8; 1];
        if r.read(&mut b).await.is_ok() {
            let _ = events.send(Event::Stop).await;
        }
    });
    Ok(())
}
