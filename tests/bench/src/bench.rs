//! The tool's three jobs: a timed benchmark (setup, run, teardown), a bulk
//! load, and waiting for a server to serve a known node (restart time).
//! Each returns a flat JSON object of its figures.

use crate::client::Session;
use crate::hist::Histogram;
use crate::json::Object;
use crate::jute;
use crate::run::{self, Generator, Mix, Outcome, Parallel, Rng, Timing};
use crate::watch::{self, WatchConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sessions used to create or delete the keys around a timed run.
const SETUP_SESSIONS: usize = 8;
/// Requests outstanding per setup session.
const SETUP_DEPTH: usize = 64;

/// A timed benchmark.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Servers, `host:port`.
    pub hosts: Vec<String>,
    /// Sessions (watch: watcher sessions).
    pub sessions: usize,
    /// Requests outstanding per session.
    pub depth: usize,
    /// Measured time.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// What to send.
    pub mix: Mix,
    /// Bytes of data per node and per setData.
    pub value_size: usize,
    /// Nodes get/set/mixed spread over.
    pub keys: usize,
    /// setData requests outstanding in the watch writer.
    pub writer_depth: usize,
    /// Session timeout asked for, ms.
    pub session_timeout_ms: i32,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Seed of the key choice.
    pub seed: u64,
    /// create: znodes to create (the run ends when all are acknowledged).
    pub count: u64,
    /// create: parents the znodes are spread over (round-robin).
    pub parents: u64,
    /// readers-writers: reader sessions (one getData outstanding each).
    pub readers: usize,
    /// readers-writers: writer sessions (`depth` setData outstanding each).
    pub writers: usize,
    /// Remove what the run created afterwards (false: leave it all in
    /// place, e.g. when the server is thrown away after the run).
    pub teardown: bool,
    /// Extra `key=value` fields copied into the result.
    pub labels: Vec<(String, String)>,
}

/// Parts of a create run's count the report gives the rate of (tenths).
pub const CREATE_PARTS: u64 = 10;

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Adds the latency fields `<prefix>p50_us` … `<prefix>max_us`.
fn latency_fields(o: &mut Object, prefix: &str, h: &Histogram) {
    for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
        o.num(&format!("{prefix}{name}_us"), us(h.quantile(q)));
    }
    o.num(&format!("{prefix}max_us"), us(h.max()));
    o.num(&format!("{prefix}mean_us"), h.mean() / 1000.0);
}

fn labelled(labels: &[(String, String)]) -> Object {
    let mut o = Object::new();
    for (k, v) in labels {
        o.label(k, v);
    }
    o
}

/// One synchronous request on a setup session; fails unless the reply is
/// `want`.
fn expect_call(
    s: &mut Session,
    what: &str,
    want: i32,
    build: impl FnOnce(&mut Vec<u8>, i32),
) -> Result<(), String> {
    let (h, _) = s.call(build).map_err(|e| format!("{what}: {e}"))?;
    if h.err == want {
        Ok(())
    } else {
        Err(format!("{what}: error {} ({})", h.err, err_name(h.err)))
    }
}

/// ZooKeeper's name of an error code, or `E<code>`.
pub fn err_name(code: i32) -> String {
    jute::err::name(code).map_or_else(|| format!("E{code}"), str::to_string)
}

/// How a batch of creates or deletes is spread over sessions.
struct Batch<'a> {
    hosts: &'a [String],
    timeout_ms: i32,
    sessions: usize,
    depth: usize,
    progress: bool,
    label: &'a str,
}

impl Batch<'_> {
    /// Creates (with `value`) or deletes `name(i)` for every i in `range`,
    /// pipelined over the batch's sessions.
    fn run(
        &self,
        create: bool,
        name: &run::NameFn,
        value: &Arc<Vec<u8>>,
        range: std::ops::Range<u64>,
    ) -> Result<Outcome, String> {
        let n = range.end.saturating_sub(range.start).max(1);
        let sessions = (self.sessions.max(1) as u64).min(n);
        let gens = (0..sessions)
            .map(|i| Generator::Indexed {
                create,
                name: name.clone(),
                value: value.clone(),
                next: range.start + i,
                end: range.end,
                stride: sessions,
            })
            .collect();
        let p = Parallel {
            hosts: self.hosts.to_vec(),
            depth: self.depth,
            session_timeout_ms: self.timeout_ms,
            timing: Timing::Finite,
            progress: self.progress,
            label: self.label.to_string(),
            marks: Vec::new(),
        };
        run::run_parallel(&p, gens)
    }
}

/// Runs one timed benchmark: creates `/bench-<pid>` and its keys, runs
/// the mix, removes everything again. Setup failures are errors; error
/// replies during the run are counted in the result.
pub fn bench(c: &BenchConfig) -> Result<Object, String> {
    let root = format!("/bench-{}", std::process::id());
    let host = &c.hosts[0];
    let mut setup = Session::connect(host, c.session_timeout_ms, run::CONNECT_TIMEOUT)
        .map_err(|e| format!("connecting to {host}: {e}"))?;
    expect_call(&mut setup, &format!("create {root}"), 0, |b, x| {
        jute::create(b, x, &root, b"", 0)
    })?;
    let value = Arc::new(vec![b'x'; c.value_size]);
    let keys = if c.mix.uses_keys() { c.keys.max(1) } else { 0 };
    let batch = |label| Batch {
        hosts: &c.hosts,
        timeout_ms: c.session_timeout_ms,
        sessions: SETUP_SESSIONS,
        depth: SETUP_DEPTH,
        progress: false,
        label,
    };
    let key_root = root.clone();
    let key_name: run::NameFn = Arc::new(move |i| format!("{key_root}/k{i}"));
    let mut result = labelled(&c.labels);
    let sessions = match c.mix {
        Mix::ReadersWriters => c.readers + c.writers,
        _ => c.sessions,
    };
    result
        .str("op", c.mix.name())
        .num("sessions", sessions as f64)
        .num("depth", c.depth as f64)
        .num("value_size", c.value_size as f64)
        .num("keys", keys as f64);
    if c.mix != Mix::Create {
        result
            .num("warmup_s", c.warmup.as_secs_f64())
            .num("duration_s", c.duration.as_secs_f64());
    }
    let parents = c.parents.max(1);
    let parent = {
        let root = root.clone();
        move |j: u64| format!("{root}/p{j}")
    };
    let created = std::cell::Cell::new(0u64);
    let outcome = (|| -> Result<(), String> {
        if keys > 0 {
            let o = batch("setup").run(true, &key_name, &value, 0..keys as u64)?;
            if o.error_count() > 0 {
                return Err(format!("creating the keys: {}", o.error_summary()));
            }
        }
        match c.mix {
            Mix::Watch => run_watch(c, &root, &mut setup, &mut result),
            Mix::Create => {
                for j in 0..parents {
                    let p = parent(j);
                    expect_call(&mut setup, &format!("create {p}"), 0, |b, x| {
                        jute::create(b, x, &p, b"", 0)
                    })?;
                }
                created.set(c.count);
                run_create(c, &root, parents, &value, &mut result)
            }
            Mix::ReadersWriters => run_readers_writers(c, &key_name, keys, &value, &mut result),
            _ => run_mix(c, &root, keys, &key_name, &value, &mut result),
        }
    })();
    if !c.teardown {
        setup.close();
        outcome?;
        result.str("root", root).num("teardown_errors", 0u32);
        return Ok(result);
    }
    // Teardown, whatever happened (best effort: failures are reported).
    let mut teardown_errors = 0u64;
    if created.get() > 0 {
        let name = create_name(&root, parents);
        let mut del = batch("teardown");
        del.progress = c.progress;
        match del.run(false, &name, &value, 0..created.get()) {
            Ok(o) => teardown_errors += o.error_count(),
            Err(e) => {
                eprintln!("teardown: {e}");
                teardown_errors += 1;
            }
        }
        for j in 0..parents {
            let p = parent(j);
            if let Err(e) = expect_call(&mut setup, &format!("delete {p}"), 0, |b, x| {
                jute::delete(b, x, &p, -1)
            }) {
                eprintln!("teardown: {e}");
                teardown_errors += 1;
            }
        }
    }
    if keys > 0 {
        match batch("teardown").run(false, &key_name, &value, 0..keys as u64) {
            Ok(o) => teardown_errors += o.error_count(),
            Err(e) => {
                eprintln!("teardown: {e}");
                teardown_errors += 1;
            }
        }
    }
    if c.mix == Mix::Watch {
        let w = format!("{root}/w");
        if let Err(e) = expect_call(&mut setup, "delete watch node", 0, |b, x| {
            jute::delete(b, x, &w, -1)
        }) {
            eprintln!("teardown: {e}");
            teardown_errors += 1;
        }
    }
    if let Err(e) = expect_call(&mut setup, &format!("delete {root}"), 0, |b, x| {
        jute::delete(b, x, &root, -1)
    }) {
        eprintln!("teardown: {e}");
        teardown_errors += 1;
    }
    setup.close();
    outcome?;
    result.num("teardown_errors", teardown_errors as f64);
    Ok(result)
}

/// The path of the i-th znode of a create run: spread round-robin over
/// the parents `root/p<j>`.
fn create_name(root: &str, parents: u64) -> run::NameFn {
    let root = root.to_string();
    Arc::new(move |i| format!("{root}/p{}/n{i}", i % parents))
}

/// Create-only load: `c.sessions` sessions with `c.depth` outstanding
/// each create `c.count` fresh znodes (indices from a shared counter) under
/// the parents, as fast as the server acknowledges them. Throughput is
/// over the whole run (start to last reply); the time each tenth of the
/// count was reached gives the rate as the tree grew.
fn run_create(
    c: &BenchConfig,
    root: &str,
    parents: u64,
    value: &Arc<Vec<u8>>,
    result: &mut Object,
) -> Result<(), String> {
    let name = create_name(root, parents);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let gens = (0..c.sessions)
        .map(|_| Generator::Shared {
            name: name.clone(),
            value: value.clone(),
            next: next.clone(),
            end: c.count,
        })
        .collect();
    let bounds = part_bounds(c.count);
    let p = Parallel {
        hosts: c.hosts.clone(),
        depth: c.depth,
        session_timeout_ms: c.session_timeout_ms,
        timing: Timing::Finite,
        progress: c.progress,
        label: c.mix.name().to_string(),
        marks: bounds[1..].to_vec(),
    };
    let o = run::run_parallel(&p, gens)?;
    result
        .num("count", c.count as f64)
        .num("parents", parents as f64)
        .num("elapsed_s", o.window.as_secs_f64())
        .num("ops", o.ops as f64)
        .num("ops_per_sec", o.throughput())
        .num("errors", o.error_count() as f64)
        .str("error_detail", o.error_summary())
        .num("unexpected_notifications", o.notifications as f64);
    if let Some(m) = &o.first_malformed {
        result.str("first_malformed", m.clone());
    }
    latency_fields(result, "", &o.latency);
    for (k, rate) in part_rates(&bounds, &o.marks).into_iter().enumerate() {
        result.num(&format!("part{}_ops_per_sec", k + 1), rate);
    }
    Ok(())
}

/// `0, count/10, 2·count/10, …, count`: where the tenths of a create run
/// begin and end (in successful creates).
pub fn part_bounds(count: u64) -> Vec<u64> {
    (0..=CREATE_PARTS)
        .map(|k| (u128::from(count) * u128::from(k) / u128::from(CREATE_PARTS)) as u64)
        .collect()
}

/// Creates per second in each part, from the times its end was reached
/// (`marks[k]`: the end of part k + 1); NaN when a part is empty or its
/// end was never reached.
pub fn part_rates(bounds: &[u64], marks: &[Option<Duration>]) -> Vec<f64> {
    (1..bounds.len())
        .map(|k| {
            let from = if k == 1 {
                Some(Duration::ZERO)
            } else {
                marks.get(k - 2).copied().flatten()
            };
            match (from, marks.get(k - 1).copied().flatten()) {
                (Some(a), Some(b)) if b > a && bounds[k] > bounds[k - 1] => {
                    (bounds[k] - bounds[k - 1]) as f64 / (b - a).as_secs_f64()
                }
                _ => f64::NAN,
            }
        })
        .collect()
}

/// Readers beside writers: `c.readers` sessions with one getData of a
/// random key outstanding each run alone for warmup + duration (the
/// baseline), then again beside `c.writers` sessions keeping `c.depth`
/// setData of random keys outstanding each (fresh sessions, same keys).
/// The readers alone go into `alone_*`, the readers beside the writers
/// into the plain fields (`ops_per_sec`, `p50_us`, …), the writers into
/// `write_*`.
fn run_readers_writers(
    c: &BenchConfig,
    key_name: &run::NameFn,
    keys: usize,
    value: &Arc<Vec<u8>>,
    result: &mut Object,
) -> Result<(), String> {
    let paths: Arc<Vec<String>> = Arc::new((0..keys as u64).map(|i| key_name(i)).collect());
    let gens = |mix: Mix, n: usize, salt: u64| -> Vec<Generator> {
        (0..n)
            .map(|i| Generator::Random {
                mix,
                keys: paths.clone(),
                value: value.clone(),
                rng: Rng::new(c.seed ^ salt ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            })
            .collect()
    };
    let readers = c.readers.max(1);
    let writers = c.writers.max(1);
    let p = |label: &str| Parallel {
        hosts: c.hosts.clone(),
        depth: 1,
        session_timeout_ms: c.session_timeout_ms,
        timing: Timing::Timed {
            warmup: c.warmup,
            duration: c.duration,
        },
        progress: c.progress,
        label: label.to_string(),
        marks: Vec::new(),
    };
    let alone = run::run_parallel(&p("readers alone"), gens(Mix::Get, readers, 0))?;
    let mut both = run::run_groups(
        &p("readers-writers"),
        vec![
            run::Group {
                depth: 1,
                gens: gens(Mix::Get, readers, 0x5EED_0001),
            },
            run::Group {
                depth: c.depth,
                gens: gens(Mix::Set, writers, 0x5EED_0002),
            },
        ],
    )?
    .into_iter();
    let (read, write) = match (both.next(), both.next()) {
        (Some(r), Some(w)) => (r, w),
        _ => return Err("readers-writers: missing group results".into()),
    };
    let detail: Vec<String> = [("alone", &alone), ("readers", &read), ("writers", &write)]
        .into_iter()
        .filter(|(_, o)| o.error_count() > 0)
        .map(|(what, o)| format!("{what}: {}", o.error_summary()))
        .collect();
    let malformed = [&alone, &read, &write]
        .into_iter()
        .find_map(|o| o.first_malformed.clone());
    result
        .num("readers", readers as f64)
        .num("writers", writers as f64)
        .num("reader_depth", 1u32)
        .num("ops", read.ops as f64)
        .num("ops_per_sec", read.throughput())
        .num(
            "errors",
            (alone.error_count() + read.error_count() + write.error_count()) as f64,
        )
        .str("error_detail", detail.join("; "))
        .num(
            "unexpected_notifications",
            (alone.notifications + read.notifications + write.notifications) as f64,
        );
    if let Some(m) = malformed {
        result.str("first_malformed", m);
    }
    latency_fields(result, "", &read.latency);
    result
        .num("alone_ops", alone.ops as f64)
        .num("alone_ops_per_sec", alone.throughput());
    latency_fields(result, "alone_", &alone.latency);
    result
        .num("write_ops", write.ops as f64)
        .num("write_ops_per_sec", write.throughput());
    latency_fields(result, "write_", &write.latency);
    Ok(())
}

fn run_mix(
    c: &BenchConfig,
    root: &str,
    keys: usize,
    key_name: &run::NameFn,
    value: &Arc<Vec<u8>>,
    result: &mut Object,
) -> Result<(), String> {
    let paths: Arc<Vec<String>> = Arc::new((0..keys as u64).map(|i| key_name(i)).collect());
    let gens = (0..c.sessions)
        .map(|i| match c.mix {
            Mix::CreateDelete => Generator::CreateDelete {
                prefix: format!("{root}/s{i}-"),
                value: value.clone(),
                n: 0,
                created: None,
            },
            mix => Generator::Random {
                mix,
                keys: paths.clone(),
                value: value.clone(),
                rng: Rng::new(c.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            },
        })
        .collect();
    let p = Parallel {
        hosts: c.hosts.clone(),
        depth: c.depth,
        session_timeout_ms: c.session_timeout_ms,
        timing: Timing::Timed {
            warmup: c.warmup,
            duration: c.duration,
        },
        progress: c.progress,
        label: c.mix.name().to_string(),
        marks: Vec::new(),
    };
    let o = run::run_parallel(&p, gens)?;
    result
        .num("ops", o.ops as f64)
        .num("ops_per_sec", o.throughput())
        .num("errors", o.error_count() as f64)
        .str("error_detail", o.error_summary())
        .num("unexpected_notifications", o.notifications as f64);
    if let Some(m) = &o.first_malformed {
        result.str("first_malformed", m.clone());
    }
    latency_fields(result, "", &o.latency);
    Ok(())
}

fn run_watch(
    c: &BenchConfig,
    root: &str,
    setup: &mut Session,
    result: &mut Object,
) -> Result<(), String> {
    let path = format!("{root}/w");
    let value = vec![b'x'; c.value_size];
    expect_call(setup, "create watch node", 0, |b, x| {
        jute::create(b, x, &path, &value, 0)
    })?;
    let w = watch::run_watch(&WatchConfig {
        hosts: c.hosts.clone(),
        path,
        watchers: c.sessions,
        writer_depth: c.writer_depth.max(1),
        warmup: c.warmup,
        duration: c.duration,
        value_size: c.value_size,
        session_timeout_ms: c.session_timeout_ms,
        progress: c.progress,
        label: "watch".into(),
    })?;
    let mut detail = w.writes.error_summary();
    for (code, n) in &w.errors {
        if !detail.is_empty() {
            detail.push_str(", ");
        }
        detail.push_str(&format!("watcher {}({code})x{n}", err_name(*code)));
    }
    if w.unexpected > 0 {
        if !detail.is_empty() {
            detail.push_str(", ");
        }
        detail.push_str(&format!(
            "unexpected events x{}: {}",
            w.unexpected,
            w.first_unexpected.as_deref().unwrap_or("")
        ));
    }
    result
        .num("writer_depth", c.writer_depth.max(1) as f64)
        .num("ops", w.notifications as f64)
        .num("ops_per_sec", w.rate())
        .num("errors", w.error_count() as f64)
        .str("error_detail", detail)
        .num("writes", w.writes.ops as f64)
        .num("writes_per_sec", w.writes.throughput());
    latency_fields(result, "", &w.latency);
    latency_fields(result, "write_", &w.writes.latency);
    Ok(())
}

/// A bulk load of `count` znodes.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Servers, `host:port`.
    pub hosts: Vec<String>,
    /// Znodes to create (parents included).
    pub count: u64,
    /// Bytes of data per znode.
    pub value_size: usize,
    /// Sessions creating in parallel.
    pub sessions: usize,
    /// Creates outstanding per session.
    pub depth: usize,
    /// The node everything goes under (created; must not exist).
    pub root: String,
    /// Parents under the root: znode i < fanout is `root/d<i>`, the others
    /// are `root/d<i % fanout>/n<i>`, so no child list gets huge.
    pub fanout: u64,
    /// Session timeout asked for, ms.
    pub session_timeout_ms: i32,
    /// Progress lines on stderr.
    pub progress: bool,
    /// Extra `key=value` fields copied into the result.
    pub labels: Vec<(String, String)>,
}

/// The path of znode `i` of a load (see [`LoadConfig::fanout`]).
pub fn load_path(root: &str, fanout: u64, i: u64) -> String {
    if i < fanout {
        format!("{root}/d{i}")
    } else {
        format!("{root}/d{}/n{i}", i % fanout)
    }
}

/// Creates the znodes (parents first, then the rest) and reports the
/// rate; the last znode's path is in `last_path`.
pub fn load(c: &LoadConfig) -> Result<Object, String> {
    let host = &c.hosts[0];
    let fanout = c.fanout.max(1);
    let mut s = Session::connect(host, c.session_timeout_ms, run::CONNECT_TIMEOUT)
        .map_err(|e| format!("connecting to {host}: {e}"))?;
    expect_call(&mut s, &format!("create {}", c.root), 0, |b, x| {
        jute::create(b, x, &c.root, b"", 0)
    })?;
    s.close();
    let value = Arc::new(vec![b'x'; c.value_size]);
    let root = c.root.clone();
    let name: run::NameFn = Arc::new(move |i| load_path(&root, fanout, i));
    let t = Instant::now();
    let parents = c.count.min(fanout);
    let batch = Batch {
        hosts: &c.hosts,
        timeout_ms: c.session_timeout_ms,
        sessions: c.sessions,
        depth: c.depth,
        progress: c.progress,
        label: "load",
    };
    let mut o = batch.run(true, &name, &value, 0..parents)?;
    if c.count > parents {
        o.merge(&batch.run(true, &name, &value, parents..c.count)?);
    }
    let elapsed = t.elapsed();
    let mut r = labelled(&c.labels);
    r.str("op", "load")
        .num("count", c.count as f64)
        .num("value_size", c.value_size as f64)
        .num("sessions", c.sessions as f64)
        .num("depth", c.depth as f64)
        .str("root", c.root.clone())
        .num("fanout", fanout as f64)
        .num("elapsed_s", elapsed.as_secs_f64())
        .num("ops", o.ops as f64)
        .num(
            "ops_per_sec",
            o.ops as f64 / elapsed.as_secs_f64().max(1e-9),
        )
        .num("errors", o.error_count() as f64)
        .str("error_detail", o.error_summary())
        .str(
            "last_path",
            load_path(&c.root, fanout, c.count.saturating_sub(1)),
        );
    latency_fields(&mut r, "", &o.latency);
    Ok(r)
}

/// Tries, every 20 ms, to open a session on `host` and read `path`
/// (getData must succeed); returns how long it took until it did, or an
/// error after `timeout`.
pub fn wait_read(host: &str, path: &str, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let mut last_err = String::from("no attempt");
    while start.elapsed() < timeout {
        match Session::connect(host, 30_000, Duration::from_secs(1)) {
            Ok(mut s) => {
                let r = s.call(|b, x| jute::path_watch(b, x, jute::op::GET_DATA, path, false));
                match r {
                    Ok((h, _)) if h.err == 0 => {
                        let took = start.elapsed();
                        s.close();
                        return Ok(took);
                    }
                    Ok((h, _)) => last_err = format!("getData {path}: {}", err_name(h.err)),
                    Err(e) => last_err = e.to_string(),
                }
            }
            Err(e) => last_err = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "{host} did not serve {path} within {timeout:?}: {last_err}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_parts() {
        assert_eq!(
            part_bounds(1_000_000),
            (0..=10).map(|k| k * 100_000).collect::<Vec<u64>>()
        );
        let b = part_bounds(15);
        assert_eq!(b.len(), 11);
        assert_eq!((b[0], b[1], b[5], b[10]), (0, 1, 7, 15));
        // Ten parts of 100 creates each, the k-th taking k × 10 ms.
        let bounds = part_bounds(1000);
        let mut t = Duration::ZERO;
        let mut marks = Vec::new();
        for k in 1..=10u64 {
            t += Duration::from_millis(10 * k);
            marks.push(Some(t));
        }
        marks[9] = None;
        let rates = part_rates(&bounds, &marks);
        assert_eq!(rates.len(), 10);
        assert!((rates[0] - 10_000.0).abs() < 1e-6, "{rates:?}");
        assert!((rates[1] - 5_000.0).abs() < 1e-6, "{rates:?}");
        assert!((rates[8] - 100.0 / 0.09).abs() < 1e-6, "{rates:?}");
        // The end of the last part was never reached.
        assert!(rates[9].is_nan());
        // Fewer creates than parts: empty parts have no rate.
        assert!(part_rates(&part_bounds(5), &[Some(t); 10])[0].is_nan());
    }
}
