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
    /// Extra `key=value` fields copied into the result.
    pub labels: Vec<(String, String)>,
}

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
    result
        .str("op", c.mix.name())
        .num("sessions", c.sessions as f64)
        .num("depth", c.depth as f64)
        .num("value_size", c.value_size as f64)
        .num("keys", keys as f64)
        .num("warmup_s", c.warmup.as_secs_f64())
        .num("duration_s", c.duration.as_secs_f64());
    let outcome = (|| -> Result<(), String> {
        if keys > 0 {
            let o = batch("setup").run(true, &key_name, &value, 0..keys as u64)?;
            if o.error_count() > 0 {
                return Err(format!("creating the keys: {}", o.error_summary()));
            }
        }
        if c.mix == Mix::Watch {
            run_watch(c, &root, &mut setup, &mut result)
        } else {
            run_mix(c, &root, keys, &key_name, &value, &mut result)
        }
    })();
    // Teardown, whatever happened (best effort: failures are reported).
    let mut teardown_errors = 0u64;
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
