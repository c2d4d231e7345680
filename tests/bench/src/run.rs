//! Pipelined request loops: N sessions, each on its own thread, each
//! keeping up to `depth` requests outstanding.
//!
//! A session thread alternates between writing and reading: it tops its
//! window up to `depth` requests (encoded into one buffer and written with
//! one `write_all`, all stamped with the same send time), then reads
//! whatever the socket has, checks every complete reply in order and
//! stamps them with the same receive time. Latency is receive time minus
//! send time per request. Replies must come back in xid order; anything
//! else aborts the run.

use crate::client::Session;
use crate::hist::Histogram;
use crate::jute::{self, Expect};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

/// How long connecting (TCP and handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a timed run's sessions send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// getData of a random key (no watch).
    Get,
    /// setData of a random key (any version).
    Set,
    /// 90 % getData, 10 % setData of random keys.
    Mixed,
    /// create of a fresh node, then delete of it (two requests per pair;
    /// both count as operations).
    CreateDelete,
    /// exists of a random key (no watch).
    Exists,
    /// getChildren of a random key (a leaf: the list is empty).
    Children,
    /// Watch fan-out (see `crate::watch`); not a pipelined mix.
    Watch,
    /// Create-only load into a growing tree: fresh nodes under a few
    /// parents until a target count; no deletes, not timed.
    Create,
    /// Depth-1 getData readers alone, then beside pipelined setData
    /// writers (two phases, each timed; see `crate::bench`).
    ReadersWriters,
}

impl Mix {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Set => "set",
            Self::Mixed => "mixed",
            Self::CreateDelete => "create-delete",
            Self::Exists => "exists",
            Self::Children => "children",
            Self::Watch => "watch",
            Self::Create => "create",
            Self::ReadersWriters => "readers-writers",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Get,
            Self::Set,
            Self::Mixed,
            Self::CreateDelete,
            Self::Exists,
            Self::Children,
            Self::Watch,
            Self::Create,
            Self::ReadersWriters,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }

    /// Whether the mix reads or writes pre-created keys.
    pub fn uses_keys(self) -> bool {
        !matches!(self, Self::CreateDelete | Self::Watch | Self::Create)
    }
}

/// A small deterministic PRNG (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Names the i-th node of an indexed batch.
pub type NameFn = Arc<dyn Fn(u64) -> String + Send + Sync>;

/// Produces one session's requests.
pub enum Generator {
    /// Random keys, for get/set/mixed/exists/children.
    Random {
        /// Which operation mix.
        mix: Mix,
        /// The key paths.
        keys: Arc<Vec<String>>,
        /// The data setData writes.
        value: Arc<Vec<u8>>,
        /// This session's random source.
        rng: Rng,
    },
    /// Alternating create and delete of `prefix<n>`.
    CreateDelete {
        /// Path prefix unique to the session.
        prefix: String,
        /// The data created nodes hold.
        value: Arc<Vec<u8>>,
        /// Pairs started.
        n: u64,
        /// The node created last, while its delete is still to be sent.
        created: Option<String>,
    },
    /// create (with `value`) or delete of `name(i)` for `i` in
    /// `next, next + stride, …` below `end`: setup, teardown and loading.
    Indexed {
        /// true: create; false: delete.
        create: bool,
        /// The path of node i.
        name: NameFn,
        /// The data created nodes hold.
        value: Arc<Vec<u8>>,
        /// The next index.
        next: u64,
        /// One past the last index.
        end: u64,
        /// The step between this session's indices.
        stride: u64,
    },
    /// create (with `value`) of `name(i)` for the next `i` taken from a
    /// counter shared by all sessions, while `i < end`: every session
    /// keeps its window full until the last index is taken.
    Shared {
        /// The path of node i.
        name: NameFn,
        /// The data created nodes hold.
        value: Arc<Vec<u8>>,
        /// The next index, shared.
        next: Arc<AtomicU64>,
        /// One past the last index.
        end: u64,
    },
}

impl Generator {
    /// Appends the next request with `xid` to `out` and says what its
    /// reply must hold; `None` when the generator is exhausted.
    pub fn next(&mut self, xid: i32, out: &mut Vec<u8>) -> Option<Expect> {
        match self {
            Self::Random {
                mix,
                keys,
                value,
                rng,
            } => {
                let key = &keys[rng.below(keys.len())];
                let mix = match *mix {
                    Mix::Mixed if rng.below(10) == 0 => Mix::Set,
                    Mix::Mixed => Mix::Get,
                    m => m,
                };
                Some(match mix {
                    Mix::Set => {
                        jute::set_data(out, xid, key, value, -1);
                        Expect::Stat
                    }
                    Mix::Exists => {
                        jute::path_watch(out, xid, jute::op::EXISTS, key, false);
                        Expect::Stat
                    }
                    Mix::Children => {
                        jute::path_watch(out, xid, jute::op::GET_CHILDREN, key, false);
                        Expect::Children
                    }
                    _ => {
                        jute::path_watch(out, xid, jute::op::GET_DATA, key, false);
                        Expect::Data(value.len())
                    }
                })
            }
            Self::CreateDelete {
                prefix,
                value,
                n,
                created,
            } => Some(match created.take() {
                Some(path) => {
                    jute::delete(out, xid, &path, -1);
                    Expect::Empty
                }
                None => {
                    let path = format!("{prefix}{n}");
                    *n += 1;
                    jute::create(out, xid, &path, value, 0);
                    *created = Some(path);
                    Expect::Path
                }
            }),
            Self::Indexed {
                create,
                name,
                value,
                next,
                end,
                stride,
            } => {
                if *next >= *end {
                    return None;
                }
                let path = name(*next);
                *next += *stride;
                if *create {
                    jute::create(out, xid, &path, value, 0);
                    Some(Expect::Path)
                } else {
                    jute::delete(out, xid, &path, -1);
                    Some(Expect::Empty)
                }
            }
            Self::Shared {
                name,
                value,
                next,
                end,
            } => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= *end {
                    return None;
                }
                jute::create(out, xid, &name(i), value, 0);
                Some(Expect::Path)
            }
        }
    }

    /// Whether the session may stop here (a create-delete pair is never
    /// left half done).
    pub fn at_boundary(&self) -> bool {
        match self {
            Self::CreateDelete { created, .. } => created.is_none(),
            _ => true,
        }
    }
}

/// What a set of sessions measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Successful replies received inside the measurement window.
    pub ops: u64,
    /// Every reply received (window or not, success or not).
    pub replies: u64,
    /// Error replies by code, over the whole run (warmup included).
    pub errors: BTreeMap<i32, u64>,
    /// Successful replies whose record did not have the promised shape.
    pub malformed: u64,
    /// The first malformed reply, described.
    pub first_malformed: Option<String>,
    /// Notifications (xid -1) received.
    pub notifications: u64,
    /// Latency of the successful in-window replies, in nanoseconds.
    pub latency: Histogram,
    /// The measurement window (timed runs: the duration; finite runs:
    /// from the start to the last reply).
    pub window: Duration,
    /// For each of [`Parallel::marks`]: when (after the start) the
    /// successful replies of all sessions together reached it; `None` if
    /// they never did. Set by [`run_groups`] on every group's outcome.
    pub marks: Vec<Option<Duration>>,
}

impl Outcome {
    /// Adds another session's figures (the window is the longer one).
    pub fn merge(&mut self, o: &Self) {
        self.ops += o.ops;
        self.replies += o.replies;
        for (k, v) in &o.errors {
            *self.errors.entry(*k).or_default() += v;
        }
        self.malformed += o.malformed;
        if self.first_malformed.is_none() {
            self.first_malformed.clone_from(&o.first_malformed);
        }
        self.notifications += o.notifications;
        self.latency.merge(&o.latency);
        self.window = self.window.max(o.window);
        if self.marks.is_empty() {
            self.marks.clone_from(&o.marks);
        }
    }

    /// Error replies of every code, plus malformed ones.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.malformed
    }

    /// Successful in-window operations per second.
    pub fn throughput(&self) -> f64 {
        let s = self.window.as_secs_f64();
        if s > 0.0 {
            self.ops as f64 / s
        } else {
            0.0
        }
    }

    /// Errors as `NAME(code)×count, …` (empty when none).
    pub fn error_summary(&self) -> String {
        let mut parts: Vec<String> = self
            .errors
            .iter()
            .map(|(code, n)| match jute::err::name(*code) {
                Some(name) => format!("{name}({code})x{n}"),
                None => format!("E{code}x{n}"),
            })
            .collect();
        if self.malformed > 0 {
            parts.push(format!("malformed x{}", self.malformed));
        }
        parts.join(", ")
    }
}

/// When sessions stop and which replies count.
#[derive(Debug, Clone, Copy)]
pub enum Timing {
    /// Run for `warmup + duration`; count replies received in the last
    /// `duration`.
    Timed {
        /// Not measured.
        warmup: Duration,
        /// Measured.
        duration: Duration,
    },
    /// Run every generator to exhaustion; count everything.
    Finite,
}

/// Parameters shared by all sessions of one parallel run.
#[derive(Debug, Clone)]
pub struct Parallel {
    /// Servers, `host:port`; session i uses `hosts[i % len]`.
    pub hosts: Vec<String>,
    /// Requests outstanding per session.
    pub depth: usize,
    /// Session timeout asked for, ms.
    pub session_timeout_ms: i32,
    /// When to stop and what counts.
    pub timing: Timing,
    /// Print a progress line to stderr about every second.
    pub progress: bool,
    /// A label for progress lines and error messages.
    pub label: String,
    /// Counts of successful replies (all sessions together, ascending)
    /// whose times to record in [`Outcome::marks`]; usually empty.
    pub marks: Vec<u64>,
}

/// Sessions of one kind in a parallel run: their generators and how many
/// requests each keeps outstanding.
pub struct Group {
    /// Requests outstanding per session of the group.
    pub depth: usize,
    /// One generator per session.
    pub gens: Vec<Generator>,
}

/// The times at which the shared count of successful replies passed each
/// threshold.
struct Marks {
    thresholds: Vec<u64>,
    times: Vec<OnceLock<Instant>>,
}

impl Marks {
    fn new(thresholds: &[u64]) -> Self {
        Self {
            thresholds: thresholds.to_vec(),
            times: thresholds.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// The count went from `before` to `after` at `t`.
    fn passed(&self, before: u64, after: u64, t: Instant) {
        for (th, slot) in self.thresholds.iter().zip(&self.times) {
            if before < *th && *th <= after {
                let _ = slot.set(t);
            }
        }
    }
}

/// Marks sessions that stopped because another one failed.
const ABORTED: &str = "\u{0}aborted";

/// Runs one session per generator in parallel, each keeping `p.depth`
/// requests outstanding, and merges their figures. Any transport error or
/// out-of-order reply aborts the run with a message naming the session.
pub fn run_parallel(p: &Parallel, gens: Vec<Generator>) -> Result<Outcome, String> {
    let mut v = run_groups(
        p,
        vec![Group {
            depth: p.depth,
            gens,
        }],
    )?;
    Ok(v.pop().unwrap_or_default())
}

/// Runs the sessions of every group in parallel (all connect, then all
/// start together) and returns each group's merged figures, in order.
/// `p.depth` is not used: each group has its own. Any transport error or
/// out-of-order reply aborts the run with a message naming the session.
pub fn run_groups(p: &Parallel, groups: Vec<Group>) -> Result<Vec<Outcome>, String> {
    let n: usize = groups.iter().map(|g| g.gens.len()).sum();
    let ngroups = groups.len();
    let connected = Arc::new(Barrier::new(n + 1));
    let go = Arc::new(Barrier::new(n + 1));
    let t0: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let abort = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let marks = Arc::new(Marks::new(&p.marks));
    let mut handles = Vec::with_capacity(n);
    let sessions = groups
        .into_iter()
        .enumerate()
        .flat_map(|(g, group)| group.gens.into_iter().map(move |gen| (g, group.depth, gen)));
    for (i, (g, depth, mut gen)) in sessions.enumerate() {
        let host = p.hosts[i % p.hosts.len()].clone();
        let (connected, go, t0, abort, done, marks) = (
            connected.clone(),
            go.clone(),
            t0.clone(),
            abort.clone(),
            done.clone(),
            marks.clone(),
        );
        let (timing, timeout) = (p.timing, p.session_timeout_ms);
        let spawned = std::thread::Builder::new()
            .name(format!("session-{i}"))
            .spawn(move || {
                let conn = Session::connect(&host, timeout, CONNECT_TIMEOUT);
                connected.wait();
                go.wait();
                let mut s = match conn {
                    Ok(s) => s,
                    Err(e) => {
                        abort.store(true, Ordering::Relaxed);
                        return Err(format!("session {i}: connecting to {host}: {e}"));
                    }
                };
                // Set by the main thread between the two barriers.
                let start = *t0.get().expect("t0 is set before the go barrier");
                let window = match timing {
                    Timing::Timed { warmup, duration } => {
                        Window::new(start + warmup, Some(start + warmup + duration))
                    }
                    Timing::Finite => Window::new(start, None),
                };
                let shared = Shared {
                    abort: &abort,
                    done: &done,
                    marks: &marks,
                };
                let r = drive(&mut s, &mut gen, depth.max(1), window, &shared, i);
                if r.is_err() {
                    abort.store(true, Ordering::Relaxed);
                } else {
                    s.close();
                }
                r.map(|(mut o, last)| {
                    if matches!(timing, Timing::Finite) {
                        o.window = last.saturating_duration_since(start);
                    }
                    o
                })
            });
        match spawned {
            Ok(h) => handles.push((g, h)),
            Err(e) => {
                // The barriers count on every thread: give up loudly.
                eprintln!("cannot spawn session thread: {e}");
                std::process::exit(3);
            }
        }
    }
    connected.wait();
    let start = Instant::now();
    t0.set(start).expect("t0 is set once");
    go.wait();
    let total = match p.timing {
        Timing::Timed { warmup, duration } => Some(warmup + duration),
        Timing::Finite => None,
    };
    let show = p.progress && total.is_none_or(|t| t > Duration::from_secs(5));
    let mut next_report = start + Duration::from_secs(1);
    let mut last_done = 0;
    let mut last_time = start;
    while !handles.iter().all(|(_, h)| h.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if show && now >= next_report {
            let d = done.load(Ordering::Relaxed);
            let rate = (d - last_done) as f64 / (now - last_time).as_secs_f64();
            let of = total.map_or(String::new(), |t| format!("/{}s", t.as_secs()));
            eprintln!(
                "[{} {:>4.0}s{of}] {:>9.0} ops/s, {d} replies",
                p.label,
                (now - start).as_secs_f64(),
                rate
            );
            (last_done, last_time) = (d, now);
            next_report += Duration::from_secs(1);
        }
    }
    let mut out = vec![Outcome::default(); ngroups];
    let mut first_err = None;
    for (g, h) in handles {
        match h.join() {
            Ok(Ok(o)) => out[g].merge(&o),
            Ok(Err(e)) if e == ABORTED => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert("a session thread panicked".to_string());
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let reached: Vec<Option<Duration>> = marks
        .times
        .iter()
        .map(|t| t.get().map(|t| t.saturating_duration_since(start)))
        .collect();
    for o in &mut out {
        if let Timing::Timed { duration, .. } = p.timing {
            o.window = duration;
        }
        o.marks.clone_from(&reached);
    }
    Ok(out)
}

/// What the sessions of one run share.
struct Shared<'a> {
    abort: &'a AtomicBool,
    done: &'a AtomicU64,
    marks: &'a Marks,
}

/// Which receive times count as measured.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Option<Instant>,
}

impl Window {
    fn new(start: Instant, end: Option<Instant>) -> Self {
        Self { start, end }
    }

    fn contains(&self, t: Instant) -> bool {
        t >= self.start && self.end.is_none_or(|e| t < e)
    }
}

/// One session's loop; returns its figures and the time of its last reply.
fn drive(
    s: &mut Session,
    gen: &mut Generator,
    depth: usize,
    window: Window,
    shared: &Shared<'_>,
    idx: usize,
) -> Result<(Outcome, Instant), String> {
    let Shared { abort, done, marks } = *shared;
    let sid = s.session_id;
    let fail = |what: String| format!("session {idx} (id 0x{sid:x}): {what}");
    let mut o = Outcome::default();
    let mut pending: VecDeque<(i32, Instant, Expect)> = VecDeque::with_capacity(depth);
    let mut exhausted = false;
    let mut last = Instant::now();
    loop {
        if abort.load(Ordering::Relaxed) {
            return Err(ABORTED.into());
        }
        let now = Instant::now();
        let stopping = exhausted || window.end.is_some_and(|e| now >= e);
        let before = pending.len();
        while pending.len() < depth && !(stopping && gen.at_boundary()) {
            let xid = s.xid();
            match gen.next(xid, s.out()) {
                Some(e) => pending.push_back((xid, now, e)),
                None => {
                    exhausted = true;
                    break;
                }
            }
        }
        if pending.len() > before {
            let sent = Instant::now();
            for p in pending.range_mut(before..) {
                p.1 = sent;
            }
            s.flush().map_err(|e| fail(format!("write: {e}")))?;
        }
        if pending.is_empty() {
            if stopping || exhausted {
                return Ok((o, last));
            }
            continue;
        }
        s.fill().map_err(|e| {
            fail(format!(
                "read with {} requests outstanding: {e}",
                pending.len()
            ))
        })?;
        let t = Instant::now();
        let counted = window.contains(t);
        let mut ok = 0;
        while let Some(f) = s.frame().map_err(|e| fail(e.to_string()))? {
            let (h, body) = jute::reply_header(f).map_err(|e| fail(e.to_string()))?;
            if h.xid == jute::NOTIFICATION_XID {
                o.notifications += 1;
                continue;
            }
            if h.xid == jute::PING_XID {
                continue;
            }
            let Some((xid, sent, expect)) = pending.pop_front() else {
                return Err(fail(format!(
                    "reply with xid {} while no request was outstanding",
                    h.xid
                )));
            };
            if h.xid != xid {
                return Err(fail(format!(
                    "reply xid {} arrived while xid {xid} was the oldest outstanding \
                     request: replies are out of order",
                    h.xid
                )));
            }
            o.replies += 1;
            last = t;
            if h.err != jute::err::OK {
                *o.errors.entry(h.err).or_default() += 1;
                continue;
            }
            if let Err(e) = jute::check_body(expect, body) {
                o.malformed += 1;
                o.first_malformed
                    .get_or_insert_with(|| format!("{expect:?} reply: {e}"));
                continue;
            }
            ok += 1;
            if counted {
                o.ops += 1;
                o.latency
                    .record(u64::try_from((t - sent).as_nanos()).unwrap_or(u64::MAX));
            }
        }
        let before = done.fetch_add(ok, Ordering::Relaxed);
        marks.passed(before, before + ok, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::FrameReader;
    use std::io::Write;
    use std::net::TcpListener;

    /// How the fake server misbehaves.
    #[derive(Clone, Copy)]
    enum Fake {
        /// Answers the first two requests in swapped order.
        Swap,
        /// Answers every getData with NONODE.
        NoNode,
        /// Answers everything with OK (a create with its path).
        Ok,
    }

    /// A one-connection fake ZooKeeper on a free port; returns `host:port`.
    fn fake_server(mode: Fake) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut sock, _) = l.accept().unwrap();
            let mut r = FrameReader::new();
            let mut held: Option<Vec<u8>> = None;
            let mut connected = false;
            loop {
                let mut out = Vec::new();
                while let Some(f) = r.next_frame().unwrap() {
                    if !connected {
                        connected = true;
                        let mut w = jute::FrameWriter::new(&mut out);
                        w.int(0).int(30_000).long(1).buffer(&[0; 16]).bool(false);
                        w.finish();
                        continue;
                    }
                    let xid = i32::from_be_bytes([f[0], f[1], f[2], f[3]]);
                    let op = i32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                    let mut reply = Vec::new();
                    let err = match (mode, op) {
                        (Fake::NoNode, jute::op::GET_DATA) => jute::err::NONODE,
                        _ => 0,
                    };
                    let mut w = jute::FrameWriter::new(&mut reply);
                    w.int(xid).long(1).int(err);
                    if err == 0 && op == jute::op::CREATE {
                        // The request's path: after xid, type, path length.
                        let n = i32::from_be_bytes([f[8], f[9], f[10], f[11]]) as usize;
                        w.string(std::str::from_utf8(&f[12..12 + n]).unwrap());
                    }
                    if err == 0 && op == jute::op::GET_DATA {
                        w.buffer(&[7; 5]);
                        for _ in 0..jute::STAT_LEN {
                            w.bool(false);
                        }
                    }
                    w.finish();
                    match (mode, xid, held.take()) {
                        (Fake::Swap, 1, _) => held = Some(reply),
                        (_, _, Some(first)) => {
                            out.extend_from_slice(&reply);
                            out.extend_from_slice(&first);
                        }
                        _ => out.extend_from_slice(&reply),
                    }
                }
                if sock.write_all(&out).is_err() {
                    return;
                }
                match r.read_from(&mut sock) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        });
        addr
    }

    fn get_run(addr: String) -> Result<Outcome, String> {
        let p = Parallel {
            hosts: vec![addr],
            depth: 4,
            session_timeout_ms: 30_000,
            timing: Timing::Timed {
                warmup: Duration::ZERO,
                duration: Duration::from_millis(200),
            },
            progress: false,
            label: "test".into(),
            marks: Vec::new(),
        };
        let gen = Generator::Random {
            mix: Mix::Get,
            keys: Arc::new(vec!["/k".into()]),
            value: Arc::new(vec![0; 5]),
            rng: Rng::new(1),
        };
        run_parallel(&p, vec![gen])
    }

    #[test]
    fn shared_creates_and_marks() {
        let p = Parallel {
            hosts: vec![fake_server(Fake::Ok), fake_server(Fake::Ok)],
            depth: 8,
            session_timeout_ms: 30_000,
            timing: Timing::Finite,
            progress: false,
            label: "test".into(),
            marks: vec![50, 100, 101],
        };
        let next = Arc::new(AtomicU64::new(0));
        let name: NameFn = Arc::new(|i| format!("/p{}/n{i}", i % 3));
        let gens = (0..2)
            .map(|_| Generator::Shared {
                name: name.clone(),
                value: Arc::new(vec![0; 5]),
                next: next.clone(),
                end: 100,
            })
            .collect();
        let o = run_parallel(&p, gens).unwrap();
        assert_eq!((o.ops, o.error_count()), (100, 0));
        assert_eq!(o.marks.len(), 3);
        let (a, b) = (o.marks[0].unwrap(), o.marks[1].unwrap());
        assert!(a <= b && b <= o.window, "{:?} {:?}", o.marks, o.window);
        // 101 successful replies never happened.
        assert_eq!(o.marks[2], None);
    }

    #[test]
    fn groups_keep_their_own_depth_and_figures() {
        let p = Parallel {
            hosts: vec![fake_server(Fake::Ok), fake_server(Fake::NoNode)],
            depth: 99,
            session_timeout_ms: 30_000,
            timing: Timing::Timed {
                warmup: Duration::ZERO,
                duration: Duration::from_millis(200),
            },
            progress: false,
            label: "test".into(),
            marks: Vec::new(),
        };
        let gen = || Generator::Random {
            mix: Mix::Get,
            keys: Arc::new(vec!["/k".into()]),
            value: Arc::new(vec![0; 5]),
            rng: Rng::new(1),
        };
        // Session 0 (group 0) talks to the OK server, session 1 (group 1)
        // to the NONODE one.
        let out = run_groups(
            &p,
            vec![
                Group {
                    depth: 1,
                    gens: vec![gen()],
                },
                Group {
                    depth: 4,
                    gens: vec![gen()],
                },
            ],
        )
        .unwrap();
        assert_eq!(out.len(), 2);
        assert!(out[0].ops > 0 && out[0].error_count() == 0);
        assert!(out[1].ops == 0 && out[1].error_count() > 0);
        assert_eq!(out[0].window, Duration::from_millis(200));
    }

    #[test]
    fn out_of_order_replies_abort() {
        let err = get_run(fake_server(Fake::Swap)).unwrap_err();
        assert!(err.contains("reply xid 2 arrived while xid 1"), "{err}");
        assert!(err.contains("out of order"), "{err}");
    }

    #[test]
    fn error_replies_are_errors_not_throughput() {
        let o = get_run(fake_server(Fake::NoNode)).unwrap();
        assert_eq!(o.ops, 0);
        assert!(o.errors[&jute::err::NONODE] > 0);
        assert_eq!(o.error_count(), o.replies);
        assert!(o.error_summary().starts_with("NONODE(-101)x"));
    }

    #[test]
    fn mixes_parse_and_generate() {
        for m in [
            "get",
            "set",
            "mixed",
            "create-delete",
            "watch",
            "create",
            "readers-writers",
        ] {
            assert_eq!(Mix::parse(m).unwrap().name(), m);
        }
        assert!(Mix::parse("nope").is_none());

        let mut g = Generator::CreateDelete {
            prefix: "/b/s0-".into(),
            value: Arc::new(vec![b'x'; 3]),
            n: 0,
            created: None,
        };
        let mut out = Vec::new();
        assert!(g.at_boundary());
        assert_eq!(g.next(1, &mut out), Some(Expect::Path));
        assert!(!g.at_boundary());
        assert_eq!(g.next(2, &mut out), Some(Expect::Empty));
        assert!(g.at_boundary());

        let mut mixed = Generator::Random {
            mix: Mix::Mixed,
            keys: Arc::new(vec!["/k".into()]),
            value: Arc::new(vec![0; 5]),
            rng: Rng::new(1),
        };
        let sets = (0..10_000)
            .filter(|&i| mixed.next(i, &mut out) == Some(Expect::Stat))
            .count();
        assert!((800..1200).contains(&sets), "{sets} sets in 10000");
    }
}
