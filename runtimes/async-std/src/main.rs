//! `pookeeper-async`: the same server as `pookeeper`, driven from async-std.
//!
//! One task owns the [`Driver`] (and so the `Server`); every connection has a
//! reader task that forwards bytes to it over a channel and a writer task
//! that takes bytes from it. The core's deadline is the receive timeout.
//! Configuration, command line, data directory and the loop's logic are the
//! ones of `pookeeper` (pookeeper-common); only sockets and tasks differ.
//! async-std is discontinued upstream: the adapter uses nothing beyond
//! spawn, TCP streams, channels and a timeout, so moving to smol or tokio
//! is a small change.
#![forbid(unsafe_code)]

use async_std::channel::{unbounded, Receiver, Sender};
use async_std::net::{TcpListener, TcpStream};
use async_std::prelude::*;
use async_std::task;
use bytes::Bytes;
use pookeeper_common::cli::{self, Command};
use pookeeper_common::driver::{Action, Driver};
use pookeeper_common::{debug, info, warn, Settings};
use pookeeper_core::{CloseReason, ConnId, Input};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Stop reading from a connection whose unsent replies exceed this...
const HIGH_WATER: usize = 4 << 20;
/// ...and resume below this.
const LOW_WATER: usize = 1 << 20;
/// Unsent bytes past which a connection counts as not reading and is
/// closed (the core stops producing replies for it well before).
const HARD_LIMIT: usize = 64 << 20;

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
    /// The connection's writer got its queue below the low-water mark.
    Drained(ConnId),
    Closed(ConnId),
    /// The log's sync thread finished a batch (`Driver::commit` collects it).
    Flushed,
    Stop,
}

/// What the server task tells a connection's writer.
enum Out {
    Data(Bytes),
    Close,
}

struct Conn {
    peer: SocketAddr,
    tx: Sender<Out>,
    /// Bytes handed to the writer and not yet written (the writer
    /// subtracts; the reader waits while it is over the high-water mark).
    queued: Arc<AtomicUsize>,
}

/// Feeds received bytes, then what the core kept of them while there is
/// room.
fn feed(
    driver: &mut Driver,
    conns: &BTreeMap<ConnId, Conn>,
    now: Instant,
    id: ConnId,
    bytes: &[u8],
    sink: &mut impl FnMut(Action),
    pending: &RefCell<Vec<Action>>,
) {
    driver.handle(now, Input::Received { conn: id, bytes }, sink);
    pump(driver, conns, now, id, sink, pending);
}

/// Feeds the core the requests it kept (see
/// `Server::has_pending_input`) while the connection's queue has room.
fn pump(
    driver: &mut Driver,
    conns: &BTreeMap<ConnId, Conn>,
    now: Instant,
    id: ConnId,
    sink: &mut impl FnMut(Action),
    pending: &RefCell<Vec<Action>>,
) {
    let unsent = || -> usize {
        pending
            .borrow()
            .iter()
            .map(|a| match a {
                Action::Send(c, d) if *c == id => d.len(),
                _ => 0,
            })
            .sum()
    };
    let Some(c) = conns.get(&id) else {
        return;
    };
    while driver.has_pending_input(id) && c.queued.load(Ordering::Acquire) + unsent() <= HIGH_WATER
    {
        driver.handle(
            now,
            Input::Received {
                conn: id,
                bytes: &[],
            },
            sink,
        );
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

    let mut conns: BTreeMap<ConnId, Conn> = BTreeMap::new();
    let mut fds_checked = Instant::now() - Duration::from_secs(2);
    loop {
        let wait = driver
            .poll_timeout(Instant::now())
            .map(|t| t.saturating_duration_since(Instant::now()));
        let event = match wait {
            Some(d) => async_std::future::timeout(d, inbox.recv()).await.ok(),
            None => Some(inbox.recv().await),
        };
        let now = Instant::now();
        let pending = RefCell::new(Vec::new());
        let mut stopping = false;
        {
            let mut sink = |a: Action| pending.borrow_mut().push(a);
            match event {
                Some(Ok(Event::Accepted(stream, peer, text))) => {
                    let id = driver.accept(now, Some(peer), text);
                    let (tx, rx) = unbounded();
                    let queued = Arc::new(AtomicUsize::new(0));
                    conns.insert(
                        id,
                        Conn {
                            peer,
                            tx,
                            queued: queued.clone(),
                        },
                    );
                    task::spawn(reader(id, stream.clone(), events.clone(), queued.clone()));
                    task::spawn(writer(id, stream, rx, events.clone(), queued));
                    debug!("accepted connection {} from {peer}", id.0);
                    driver.drain(&mut sink);
                }
                Some(Ok(Event::Data(id, bytes))) => {
                    feed(&mut driver, &conns, now, id, &bytes, &mut sink, &pending)
                }
                Some(Ok(Event::Drained(id))) => {
                    pump(&mut driver, &conns, now, id, &mut sink, &pending)
                }
                Some(Ok(Event::Closed(id))) => {
                    if let Some(c) = conns.remove(&id) {
                        debug!("connection {} from {} closed by peer", id.0, c.peer);
                        c.tx.close();
                    }
                    driver.handle(now, Input::PeerClosed { conn: id }, &mut sink);
                }
                Some(Ok(Event::Flushed)) | None => {}
                Some(Ok(Event::Stop)) | Some(Err(_)) => {
                    info!("signal received: shutting down");
                    stopping = true;
                }
            }
            // Everything already waiting is handled in this turn too, so one
            // batch (one fdatasync) covers it: group commit.
            // (Not when stopping: nothing more is taken in.)
            while let Some(Ok(ev)) = (!stopping).then(|| inbox.try_recv()) {
                match ev {
                    Event::Data(id, bytes) => {
                        feed(&mut driver, &conns, now, id, &bytes, &mut sink, &pending)
                    }
                    Event::Drained(id) => pump(&mut driver, &conns, now, id, &mut sink, &pending),
                    Event::Flushed => {}
                    other => {
                        // Rare: re-queue and handle next turn.
                        let _ = events.try_send(other);
                        break;
                    }
                }
            }
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
        }
        for a in pending.into_inner() {
            act(&mut conns, &mut driver, now, a);
        }
        if stopping {
            for c in conns.values() {
                let _ = c.tx.try_send(Out::Close);
            }
            info!("stopped");
            // The process ends next: freeing the tree node by node would
            // only delay the exit.
            std::mem::forget(driver);
            return Ok(());
        }
        if now.duration_since(fds_checked) >= Duration::from_secs(1) {
            fds_checked = now;
            driver.report_process_facts();
        }
    }
}

/// Hands one of the core's actions to the connection's writer.
fn act(conns: &mut BTreeMap<ConnId, Conn>, driver: &mut Driver, now: Instant, a: Action) {
    match a {
        Action::Send(id, data) => {
            let full = match conns.get(&id) {
                Some(c) => {
                    // Counted before the writer can see (and subtract) it.
                    let n = data.len();
                    let total = c.queued.fetch_add(n, Ordering::AcqRel) + n;
                    let _ = c.tx.try_send(Out::Data(data));
                    total > HARD_LIMIT
                }
                None => false,
            };
            if full {
                // The client does not read its replies: drop it rather than
                // buffer without bound.
                if let Some(c) = conns.remove(&id) {
                    warn!(
                        "closing connection {} from {}: client not reading",
                        id.0, c.peer
                    );
                    c.tx.close();
                }
                let mut later = Vec::new();
                driver.handle(now, Input::PeerClosed { conn: id }, &mut |a| later.push(a));
                for a in later {
                    act(conns, driver, now, a);
                }
            }
        }
        Action::Close(id, reason) => {
            if let Some(c) = conns.remove(&id) {
                match reason {
                    CloseReason::CommandDone | CloseReason::SessionClosed => {
                        debug!("closing connection {} from {}: {reason}", id.0, c.peer)
                    }
                    _ => info!("closing connection {} from {}: {reason}", id.0, c.peer),
                }
                let _ = c.tx.try_send(Out::Close);
                c.tx.close();
            }
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

async fn reader(
    id: ConnId,
    mut stream: TcpStream,
    events: Sender<Event>,
    queued: Arc<AtomicUsize>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Backpressure: a client that does not read its replies is not read
        // from either, until its queue is below the low-water mark.
        if queued.load(Ordering::Acquire) > HIGH_WATER {
            while queued.load(Ordering::Acquire) > LOW_WATER {
                task::sleep(Duration::from_millis(2)).await;
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = events.send(Event::Closed(id)).await;
                return;
            }
            Ok(n) => {
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

async fn writer(
    id: ConnId,
    mut stream: TcpStream,
    rx: Receiver<Out>,
    events: Sender<Event>,
    queued: Arc<AtomicUsize>,
) {
    while let Ok(out) = rx.recv().await {
        match out {
            Out::Data(b) => {
                if stream.write_all(&b).await.is_err() {
                    break;
                }
                let before = queued.fetch_sub(b.len(), Ordering::AcqRel);
                if before >= LOW_WATER && before - b.len() < LOW_WATER {
                    // The server task may hold requests of this connection
                    // back until its replies are sent.
                    let _ = events.send(Event::Drained(id)).await;
                }
            }
            Out::Close => break,
        }
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown(std::net::Shutdown::Both);
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
