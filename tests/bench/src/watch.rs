//! Watch fan-out: one writer session keeps `setData` on one node going
//! (`writer_depth` outstanding) while N watcher sessions each keep a data
//! watch armed on it (`getData` with watch = true) and re-arm it as soon
//! as it fires.
//!
//! Notification latency is measured from the send of the setData that
//! fired the watch to the arrival of the notification. Which setData that
//! was is known exactly: a watch armed by a read that returned version v
//! is fired by the next change, the one that makes version v + 1, and the
//! writer (one session, so its writes apply in order) records the send
//! time of every version it produces.

use crate::client::Session;
use crate::hist::Histogram;
use crate::jute::{self, Expect};
use crate::run::{Outcome, CONNECT_TIMEOUT};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Parameters of a watch fan-out run.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Servers; watcher i uses `hosts[(i + 1) % len]`, the writer `hosts[0]`.
    pub hosts: Vec<String>,
    /// The node written and watched (it must exist, at version 0).
    pub path: String,
    /// Watcher sessions.
    pub watchers: usize,
    /// setData requests the writer keeps outstanding.
    pub writer_depth: usize,
    /// Not measured.
    pub warmup: Duration,
    /// Measured.
    pub duration: Duration,
    /// Bytes written by each setData.
    pub value_size: usize,
    /// Session timeout asked for, ms.
    pub session_timeout_ms: i32,
    /// Print a progress line to stderr about every second.
    pub progress: bool,
    /// A label for progress lines.
    pub label: String,
}

/// What a watch fan-out run measured.
#[derive(Debug, Clone, Default)]
pub struct WatchOutcome {
    /// The writer's setData figures (ops = writes in the window).
    pub writes: Outcome,
    /// Notifications received inside the window.
    pub notifications: u64,
    /// Notification latency (ns), from setData send to notification.
    pub latency: Histogram,
    /// Watchers' error replies by code (their getData re-arms).
    pub errors: BTreeMap<i32, u64>,
    /// Notifications of the wrong type or path, or with no armed watch.
    pub unexpected: u64,
    /// The first unexpected event, described.
    pub first_unexpected: Option<String>,
    /// The measured duration.
    pub window: Duration,
}

impl WatchOutcome {
    /// Notifications per second inside the window.
    pub fn rate(&self) -> f64 {
        self.notifications as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Every error: the writer's, the watchers', unexpected events.
    pub fn error_count(&self) -> u64 {
        self.writes.error_count() + self.errors.values().sum::<u64>() + self.unexpected
    }
}

/// Send times of the writer's versions: `times[v]` is when the setData
/// that produced version v was written (index 0: the node's creation).
type Versions = Arc<Mutex<Vec<Instant>>>;

/// Runs the fan-out. Fails on transport errors or out-of-order replies.
pub fn run_watch(c: &WatchConfig) -> Result<WatchOutcome, String> {
    let n = c.watchers + 1;
    let connected = Arc::new(Barrier::new(n + 1));
    let go = Arc::new(Barrier::new(n + 1));
    let t0: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let abort = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let versions: Versions = Arc::new(Mutex::new(vec![Instant::now()]));
    let mut writer = None;
    let mut watchers = Vec::new();
    for i in 0..n {
        let host = c.hosts[i % c.hosts.len()].clone();
        let (connected, go, t0, abort, progress, versions, c) = (
            connected.clone(),
            go.clone(),
            t0.clone(),
            abort.clone(),
            progress.clone(),
            versions.clone(),
            c.clone(),
        );
        let abort_connect = abort.clone();
        let body = move || -> Result<Session, String> {
            let abort = abort_connect;
            let conn = Session::connect(&host, c.session_timeout_ms, CONNECT_TIMEOUT);
            connected.wait();
            go.wait();
            let s = conn.map_err(|e| {
                abort.store(true, Ordering::Relaxed);
                format!("connecting to {host}: {e}")
            })?;
            Ok(s)
        };
        let start = move |t0: &OnceLock<Instant>, c: &WatchConfig| {
            let s = *t0.get().expect("t0 is set before the go barrier");
            (s + c.warmup, s + c.warmup + c.duration)
        };
        let spawned = if i == 0 {
            std::thread::Builder::new()
                .name("writer".into())
                .spawn(move || {
                    let mut s = body()?;
                    let (from, to) = start(&t0, &c);
                    let r = write_loop(&mut s, &c, from, to, &versions, &abort);
                    finish(s, r, &abort).map(|o| (Some(o), None))
                })
                .map(|h| writer = Some(h))
        } else {
            std::thread::Builder::new()
                .name(format!("watcher-{i}"))
                .spawn(move || {
                    let mut s = body()?;
                    let (from, to) = start(&t0, &c);
                    let r = watch_loop(&mut s, &c, from, to, &versions, &abort, &progress);
                    finish(s, r, &abort).map(|o| (None, Some(o)))
                })
                .map(|h| watchers.push(h))
        };
        if let Err(e) = spawned {
            eprintln!("cannot spawn session thread: {e}");
            std::process::exit(3);
        }
    }
    connected.wait();
    let t = Instant::now();
    t0.set(t).expect("t0 is set once");
    go.wait();
    let total = c.warmup + c.duration;
    let show = c.progress && total > Duration::from_secs(5);
    let mut next_report = t + Duration::from_secs(1);
    let (mut last_n, mut last_t) = (0, t);
    let mut handles: Vec<_> = writer.into_iter().chain(watchers).collect();
    while !handles.iter().all(|h| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if show && now >= next_report {
            let d = progress.load(Ordering::Relaxed);
            let writes = versions.lock().map_or(0, |v| v.len() - 1);
            eprintln!(
                "[{} {:>4.0}s/{}s] {:>9.0} notifications/s, {writes} writes sent",
                c.label,
                (now - t).as_secs_f64(),
                total.as_secs(),
                (d - last_n) as f64 / (now - last_t).as_secs_f64(),
            );
            (last_n, last_t) = (d, now);
            next_report += Duration::from_secs(1);
        }
    }
    let mut out = WatchOutcome {
        window: c.duration,
        ..WatchOutcome::default()
    };
    let mut first_err = None;
    for h in handles.drain(..) {
        match h.join() {
            Ok(Ok((Some(w), _))) => out.writes.merge(&w),
            Ok(Ok((_, Some(o)))) => {
                out.notifications += o.notifications;
                out.latency.merge(&o.latency);
                for (k, v) in o.errors {
                    *out.errors.entry(k).or_default() += v;
                }
                out.unexpected += o.unexpected;
                if out.first_unexpected.is_none() {
                    out.first_unexpected = o.first_unexpected;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e == ABORTED => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert("a session thread panicked".into());
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    out.writes.window = c.duration;
    Ok(out)
}

const ABORTED: &str = "\u{0}aborted";

/// Closes the session after a clean loop, or flags the abort.
fn finish<T>(s: Session, r: Result<T, String>, abort: &AtomicBool) -> Result<T, String> {
    match r {
        Ok(v) => {
            s.close();
            Ok(v)
        }
        Err(e) => {
            abort.store(true, Ordering::Relaxed);
            Err(e)
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The writer: pipelined setData, each reply's version checked (1, 2, …).
fn write_loop(
    s: &mut Session,
    c: &WatchConfig,
    from: Instant,
    to: Instant,
    versions: &Versions,
    abort: &AtomicBool,
) -> Result<Outcome, String> {
    let value = vec![b'w'; c.value_size];
    let mut o = Outcome::default();
    let mut pending: VecDeque<(i32, Instant, i32)> = VecDeque::new();
    let mut next_version = 1;
    loop {
        if abort.load(Ordering::Relaxed) {
            return Err(ABORTED.into());
        }
        let now = Instant::now();
        if now < to && pending.len() < c.writer_depth {
            let k = c.writer_depth - pending.len();
            for _ in 0..k {
                let xid = s.xid();
                jute::set_data(s.out(), xid, &c.path, &value, -1);
                pending.push_back((xid, now, next_version));
                next_version += 1;
            }
            let sent = Instant::now();
            let mut v = versions.lock().map_err(|_| "version log poisoned")?;
            for p in pending.iter_mut().rev().take(k) {
                p.1 = sent;
            }
            v.extend(std::iter::repeat_n(sent, k));
            drop(v);
            s.flush().map_err(|e| format!("writer: write: {e}"))?;
        }
        if pending.is_empty() {
            return Ok(o);
        }
        s.fill().map_err(|e| format!("writer: read: {e}"))?;
        let t = Instant::now();
        while let Some(f) = s.frame().map_err(|e| format!("writer: {e}"))? {
            let (h, body) = jute::reply_header(f).map_err(|e| format!("writer: {e}"))?;
            if h.xid == jute::NOTIFICATION_XID {
                o.notifications += 1;
                continue;
            }
            if h.xid == jute::PING_XID {
                continue;
            }
            let Some((xid, sent, version)) = pending.pop_front() else {
                return Err(format!(
                    "writer: reply xid {} with nothing outstanding",
                    h.xid
                ));
            };
            if h.xid != xid {
                return Err(format!(
                    "writer: reply xid {} arrived while xid {xid} was the oldest outstanding \
                     request: replies are out of order",
                    h.xid
                ));
            }
            o.replies += 1;
            if h.err != jute::err::OK {
                *o.errors.entry(h.err).or_default() += 1;
                continue;
            }
            match jute::stat_version(body) {
                Ok(v) if v == version => {}
                Ok(v) => {
                    o.malformed += 1;
                    o.first_malformed.get_or_insert_with(|| {
                        format!("setData reply has version {v}, expected {version}")
                    });
                    continue;
                }
                Err(e) => {
                    o.malformed += 1;
                    o.first_malformed.get_or_insert(e.to_string());
                    continue;
                }
            }
            if t >= from && t < to {
                o.ops += 1;
                o.latency.record(nanos(t - sent));
            }
        }
    }
}

/// What one watcher saw.
#[derive(Debug, Default)]
struct WatcherFigures {
    notifications: u64,
    latency: Histogram,
    errors: BTreeMap<i32, u64>,
    unexpected: u64,
    first_unexpected: Option<String>,
}

/// A watcher: keep one data watch armed, re-arm on every notification.
fn watch_loop(
    s: &mut Session,
    c: &WatchConfig,
    from: Instant,
    to: Instant,
    versions: &Versions,
    abort: &AtomicBool,
    progress: &AtomicU64,
) -> Result<WatcherFigures, String> {
    let mut o = WatcherFigures::default();
    // Short reads so the loop notices the end and keeps the session alive.
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    let arm = |s: &mut Session| -> Result<i32, String> {
        let xid = s.xid();
        jute::path_watch(s.out(), xid, jute::op::GET_DATA, &c.path, true);
        s.flush().map_err(|e| format!("watcher: write: {e}"))?;
        Ok(xid)
    };
    let mut outstanding = Some(arm(s)?);
    let mut armed: Option<i32> = None;
    loop {
        if abort.load(Ordering::Relaxed) {
            return Err(ABORTED.into());
        }
        if Instant::now() >= to && outstanding.is_none() {
            return Ok(o);
        }
        match s.fill() {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                s.ping_if_idle()
                    .map_err(|e| format!("watcher: ping: {e}"))?;
                continue;
            }
            Err(e) => return Err(format!("watcher: read: {e}")),
        }
        let t = Instant::now();
        let mut rearm = false;
        while let Some(f) = s.frame().map_err(|e| format!("watcher: {e}"))? {
            let (h, body) = jute::reply_header(f).map_err(|e| format!("watcher: {e}"))?;
            if h.xid == jute::PING_XID {
                continue;
            }
            if h.xid == jute::NOTIFICATION_XID {
                let ev = jute::watcher_event(body).map_err(|e| format!("watcher: {e}"))?;
                let fired = armed.take();
                let ok = ev.kind == jute::EVENT_NODE_DATA_CHANGED
                    && ev.state == jute::STATE_SYNC_CONNECTED
                    && ev.path == c.path;
                let Some(v) = fired.filter(|_| ok) else {
                    o.unexpected += 1;
                    o.first_unexpected.get_or_insert_with(|| {
                        format!(
                            "event type {} state {} path {:?} (watch armed: {})",
                            ev.kind,
                            ev.state,
                            ev.path,
                            fired.is_some()
                        )
                    });
                    continue;
                };
                let sent = versions
                    .lock()
                    .map_err(|_| "version log poisoned")?
                    .get(v as usize + 1)
                    .copied();
                match sent {
                    Some(sent) if t >= from && t < to => {
                        o.notifications += 1;
                        o.latency.record(nanos(t.saturating_duration_since(sent)));
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {}
                    None => {
                        o.unexpected += 1;
                        o.first_unexpected.get_or_insert_with(|| {
                            format!("notification for version {} never written", v + 1)
                        });
                    }
                }
                rearm = true;
                continue;
            }
            if Some(h.xid) != outstanding {
                return Err(format!(
                    "watcher: reply xid {} but the outstanding request is {outstanding:?}: \
                     replies are out of order",
                    h.xid
                ));
            }
            outstanding = None;
            if h.err != jute::err::OK {
                *o.errors.entry(h.err).or_default() += 1;
                rearm = true;
                continue;
            }
            let mut r = jute::Reader::new(body);
            let stat = r
                .buffer()
                .and_then(|d| {
                    jute::check_body(Expect::Data(d.map_or(0, <[u8]>::len)), body)?;
                    Ok(&body[body.len() - jute::STAT_LEN..])
                })
                .and_then(jute::stat_version);
            match stat {
                Ok(v) => armed = Some(v),
                Err(e) => {
                    o.unexpected += 1;
                    o.first_unexpected.get_or_insert(e.to_string());
                    rearm = true;
                }
            }
        }
        if rearm && outstanding.is_none() && armed.is_none() && t < to {
            outstanding = Some(arm(s)?);
        }
    }
}
