//! Turns the JSON lines a comparison run collected into `BENCHMARKS.md`
//! and a hand-written SVG bar chart.
//!
//! Input lines (see `compare.sh`): benchmark results (`kind=run`, with
//! `server`, `round`, `op` and the figures of `pookeeper-bench --json`),
//! load results (`kind=load`) and memory/restart measurements
//! (`kind=memory`). Machine facts come as `key<TAB>value` lines.

use crate::json::Object;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The two servers compared, in table order: (label in the results, name
/// shown).
pub const SERVERS: [(&str, &str); 2] = [("zookeeper", "ZooKeeper"), ("pookeeper", "pookeeper")];

/// Scenario order in the tables.
const SCENARIOS: [&str; 7] = [
    "get",
    "set",
    "mixed",
    "create-delete",
    "exists",
    "children",
    "watch",
];

/// Everything the report is made from.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The results, one object per line of the results file.
    pub results: Vec<Object>,
    /// Machine and run facts, in order.
    pub meta: Vec<(String, String)>,
    /// The command that produced the results.
    pub command: String,
    /// Where BENCHMARKS.md links the SVG (relative path).
    pub svg_link: String,
}

/// Parses the results file (blank lines and `#` comments are skipped).
pub fn parse_results(text: &str) -> Result<Vec<Object>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| Object::parse(l).map_err(|e| format!("results line {}: {e}", i + 1)))
        .collect()
}

/// Parses `key<TAB>value` lines.
pub fn parse_meta(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The `variant` label of the create run of pookeeper with snapCount
/// effectively infinite (compare.sh); runs with any `variant` are kept out
/// of the head-to-head tables.
pub const SNAP_INF_VARIANT: &str = "snapcount-inf";

/// The best round (highest throughput) of each (scenario, server), among
/// the runs without a `variant`.
fn best_runs(results: &[Object]) -> BTreeMap<(String, String), &Object> {
    let mut best: BTreeMap<(String, String), &Object> = BTreeMap::new();
    for r in results
        .iter()
        .filter(|r| r.get_str("kind") == "run" && r.get_str("variant").is_empty())
    {
        let key = (r.get_str("op").to_string(), r.get_str("server").to_string());
        let better = best
            .get(&key)
            .is_none_or(|b| r.get_num("ops_per_sec") > b.get_num("ops_per_sec"));
        if better {
            best.insert(key, r);
        }
    }
    best
}

/// The runs of `op` by `server` with this `variant` ("" for none).
fn runs_of<'a>(results: &'a [Object], op: &str, server: &str, variant: &str) -> Vec<&'a Object> {
    results
        .iter()
        .filter(|r| {
            r.get_str("kind") == "run"
                && r.get_str("op") == op
                && r.get_str("server") == server
                && r.get_str("variant") == variant
        })
        .collect()
}

/// The run with the highest `ops_per_sec` of those given.
fn best_of<'a>(runs: &[&'a Object]) -> Option<&'a Object> {
    runs.iter()
        .copied()
        .fold(None, |best: Option<&Object>, r| match best {
            Some(b) if b.get_num("ops_per_sec") >= r.get_num("ops_per_sec") => Some(b),
            _ => Some(r),
        })
}

/// Field `k` of an optional run (NaN when absent).
fn field(r: Option<&Object>, k: &str) -> f64 {
    r.map_or(f64::NAN, |r| r.get_num(k))
}

/// `a ÷ b` as a percentage.
fn percent(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        format!("{:.0} %", a / b * 100.0)
    } else {
        "–".into()
    }
}

/// Error count with the detail, if any, for the per-run lists.
fn errors_with_detail(r: &Object) -> String {
    let detail = r.get_str("error_detail");
    if detail.is_empty() {
        thousands(r.get_num("errors"))
    } else {
        format!("{} ({detail})", thousands(r.get_num("errors")))
    }
}

/// The "Create into a growing tree" section (empty without create runs).
fn create_section(results: &[Object]) -> String {
    let mut md = String::new();
    let zk = runs_of(results, "create", "zookeeper", "");
    let pk = runs_of(results, "create", "pookeeper", "");
    let inf = runs_of(results, "create", "pookeeper", SNAP_INF_VARIANT);
    if zk.is_empty() && pk.is_empty() && inf.is_empty() {
        return md;
    }
    let (z, p, i) = (best_of(&zk), best_of(&pk), best_of(&inf));
    let any = z.or(p).or(i).expect("some create run");
    let count = any.get_num("count");
    let snap_inf = field(i, "snap_count");
    let inf_name = if snap_inf.is_finite() {
        format!("pookeeper, snapCount={}", thousands(snap_inf))
    } else {
        "pookeeper, snapCount=∞".to_string()
    };
    let _ = writeln!(md, "## Create into a growing tree\n");
    let _ = writeln!(
        md,
        "{} sessions × {} outstanding creates each, every create a fresh znode \
         with {}-byte data, spread round-robin over {} parents, until {} znodes \
         exist; no deletes. Each server runs on a fresh data directory with the \
         settings above (snapCount default), after a few seconds of unrecorded \
         mixed load. Throughput is creates acknowledged over the whole run, from \
         the first request to the last reply; the tenths are the rate while the \
         tree grew through each tenth of its final size. pookeeper ran once more \
         with snapCount so large that it takes no snapshot during the run, to \
         show what its snapshots cost it.\n",
        any.get_num("sessions"),
        any.get_num("depth"),
        any.get_num("value_size"),
        any.get_num("parents"),
        thousands(count),
    );
    let _ = writeln!(md, "| | ZooKeeper | pookeeper | ratio | {inf_name} |");
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    let parts = crate::bench::CREATE_PARTS;
    let last_part = format!("part{parts}_ops_per_sec");
    let rows: [Row; 7] = [
        ("creates/s, whole run", "ops_per_sec", thousands),
        (
            "creates/s, first tenth of the znodes",
            "part1_ops_per_sec",
            thousands,
        ),
        ("creates/s, last tenth of the znodes", "", thousands),
        ("p50 latency", "p50_us", latency),
        ("p99 latency", "p99_us", latency),
        ("max latency", "max_us", latency),
        ("time to create them all", "elapsed_s", |v| {
            if v.is_finite() {
                format!("{v:.1} s")
            } else {
                "–".into()
            }
        }),
    ];
    for (label, k, f) in rows {
        let k = if k.is_empty() { last_part.as_str() } else { k };
        let (zv, pv, iv) = (field(z, k), field(p, k), field(i, k));
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} | {} |",
            f(zv),
            f(pv),
            ratio(pv, zv),
            f(iv)
        );
    }
    let fall = |r: Option<&Object>| field(r, &last_part) / field(r, "part1_ops_per_sec");
    let fmt_fall = |v: f64| {
        if v.is_finite() {
            format!("{v:.2}×")
        } else {
            "–".into()
        }
    };
    let _ = writeln!(
        md,
        "| last tenth ÷ first tenth | {} | {} | | {} |",
        fmt_fall(fall(z)),
        fmt_fall(fall(p)),
        fmt_fall(fall(i))
    );
    let _ = writeln!(
        md,
        "| errors | {} | {} | | {} |",
        thousands(field(z, "errors")),
        thousands(field(p, "errors")),
        thousands(field(i, "errors"))
    );
    let _ = writeln!(md);
    if p.is_some() || i.is_some() {
        let _ = writeln!(
            md,
            "pookeeper with the default snapCount creates at **{}** of its \
             snapCount={} rate ({} vs {} creates/s; p99 {} vs {}).\n",
            percent(field(p, "ops_per_sec"), field(i, "ops_per_sec")),
            if snap_inf.is_finite() {
                thousands(snap_inf)
            } else {
                "∞".into()
            },
            thousands(field(p, "ops_per_sec")),
            thousands(field(i, "ops_per_sec")),
            latency(field(p, "p99_us")),
            latency(field(i, "p99_us")),
        );
    }
    let _ = writeln!(md, "Creates/s as the tree grew:\n");
    let _ = writeln!(
        md,
        "| znodes created | ZooKeeper | pookeeper | ratio | {inf_name} |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|");
    let bounds = crate::bench::part_bounds(if count.is_finite() { count as u64 } else { 0 });
    for k in 1..=parts as usize {
        let key = format!("part{k}_ops_per_sec");
        let (zv, pv, iv) = (field(z, &key), field(p, &key), field(i, &key));
        let _ = writeln!(
            md,
            "| {} – {} | {} | {} | {} | {} |",
            thousands(bounds[k - 1] as f64),
            thousands(bounds[k] as f64),
            thousands(zv),
            thousands(pv),
            ratio(pv, zv),
            thousands(iv)
        );
    }
    let _ = writeln!(md);
    let all: Vec<(&str, &Object)> = [
        ("ZooKeeper", &zk),
        ("pookeeper", &pk),
        (inf_name.as_str(), &inf),
    ]
    .into_iter()
    .flat_map(|(name, runs)| runs.iter().map(move |r| (name, *r)))
    .collect();
    if zk.len() > 1 || pk.len() > 1 || inf.len() > 1 {
        let _ = writeln!(md, "Every create run:\n");
        let _ = writeln!(
            md,
            "| server | round | creates/s | p50 | p99 | max | time | errors |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|");
        for (name, r) in all {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {} | {:.1} s | {} |",
                r.get_num("round"),
                thousands(r.get_num("ops_per_sec")),
                latency(r.get_num("p50_us")),
                latency(r.get_num("p99_us")),
                latency(r.get_num("max_us")),
                r.get_num("elapsed_s"),
                errors_with_detail(r),
            );
        }
        let _ = writeln!(md);
    } else {
        for (name, r) in all {
            if !r.get_str("error_detail").is_empty() {
                let _ = writeln!(md, "- {name} errors: {}", r.get_str("error_detail"));
            }
        }
    }
    md
}

/// The "Readers beside writers" section (empty without such runs).
fn readers_writers_section(results: &[Object]) -> String {
    let mut md = String::new();
    let op = "readers-writers";
    let zk = runs_of(results, op, "zookeeper", "");
    let pk = runs_of(results, op, "pookeeper", "");
    if zk.is_empty() && pk.is_empty() {
        return md;
    }
    let (z, p) = (best_of(&zk), best_of(&pk));
    let any = z.or(p).expect("some readers-writers run");
    let _ = writeln!(md, "## Readers beside writers\n");
    let _ = writeln!(
        md,
        "{} reader sessions, each with one getData of a random key outstanding \
         (a client that waits for every reply), run alone for {} s after {} s \
         of warmup; then, on the same server and keys with fresh sessions, the \
         same readers run again beside {} writer sessions keeping {} setData of \
         random keys outstanding each (durable writes, {}-byte values, {} keys). \
         The table shows each server's best round by the readers' throughput \
         beside the writers. Beside ÷ alone: 1.00× means the writers cost the \
         readers nothing; latency above 1 and throughput below 1 mean they slow \
         them down.\n",
        any.get_num("readers"),
        any.get_num("duration_s"),
        any.get_num("warmup_s"),
        any.get_num("writers"),
        any.get_num("depth"),
        any.get_num("value_size"),
        thousands(any.get_num("keys")),
    );
    let _ = writeln!(md, "| | ZooKeeper | pookeeper | ratio |");
    let _ = writeln!(md, "|---|---:|---:|---:|");
    let rows: [Row; 9] = [
        ("readers alone: reads/s", "alone_ops_per_sec", thousands),
        ("readers alone: p50", "alone_p50_us", latency),
        ("readers alone: p99", "alone_p99_us", latency),
        ("readers beside writers: reads/s", "ops_per_sec", thousands),
        ("readers beside writers: p50", "p50_us", latency),
        ("readers beside writers: p99", "p99_us", latency),
        ("writers: writes/s", "write_ops_per_sec", thousands),
        ("writers: p50", "write_p50_us", latency),
        ("writers: p99", "write_p99_us", latency),
    ];
    for (label, k, f) in rows {
        let (zv, pv) = (field(z, k), field(p, k));
        let _ = writeln!(
            md,
            "| {label} | {} | {} | {} |",
            f(zv),
            f(pv),
            ratio(pv, zv)
        );
    }
    for (label, beside, alone) in [
        ("reader p50, beside ÷ alone", "p50_us", "alone_p50_us"),
        ("reader p99, beside ÷ alone", "p99_us", "alone_p99_us"),
        (
            "reads/s, beside ÷ alone",
            "ops_per_sec",
            "alone_ops_per_sec",
        ),
    ] {
        let _ = writeln!(
            md,
            "| **{label}** | **{}** | **{}** | |",
            ratio(field(z, beside), field(z, alone)),
            ratio(field(p, beside), field(p, alone)),
        );
    }
    let _ = writeln!(
        md,
        "| errors | {} | {} | |",
        thousands(field(z, "errors")),
        thousands(field(p, "errors"))
    );
    let _ = writeln!(md);
    let _ = writeln!(md, "Every round:\n");
    let _ = writeln!(
        md,
        "| server | round | alone reads/s | alone p50 | alone p99 | beside reads/s | \
         beside p50 | beside p99 | writes/s | write p50 | write p99 | errors |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for (name, runs) in [("ZooKeeper", &zk), ("pookeeper", &pk)] {
        for r in runs {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.get_num("round"),
                thousands(r.get_num("alone_ops_per_sec")),
                latency(r.get_num("alone_p50_us")),
                latency(r.get_num("alone_p99_us")),
                thousands(r.get_num("ops_per_sec")),
                latency(r.get_num("p50_us")),
                latency(r.get_num("p99_us")),
                thousands(r.get_num("write_ops_per_sec")),
                latency(r.get_num("write_p50_us")),
                latency(r.get_num("write_p99_us")),
                errors_with_detail(r),
            );
        }
    }
    let _ = writeln!(md);
    md
}

fn scenarios_present(results: &[Object]) -> Vec<&'static str> {
    SCENARIOS
        .into_iter()
        .filter(|s| {
            results
                .iter()
                .any(|r| r.get_str("kind") == "run" && r.get_str("op") == *s)
        })
        .collect()
}

/// `12345.6` -> `12,346`.
fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// A latency in µs, shown in µs or ms.
fn latency(us: f64) -> String {
    if !us.is_finite() {
        "–".into()
    } else if us >= 10_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn ratio(pk: f64, zk: f64) -> String {
    if pk.is_finite() && zk.is_finite() && zk > 0.0 {
        format!("{:.2}×", pk / zk)
    } else {
        "–".into()
    }
}

/// Short value labels for the chart: `52.1k`, `1.23M`.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn memory(results: &[Object], server: &str) -> Option<Object> {
    let mut merged = Object::new();
    let mut any = false;
    for r in results.iter().filter(|r| r.get_str("server") == server) {
        let prefix = match r.get_str("kind") {
            "memory" => "",
            "load" => "load_",
            _ => continue,
        };
        any = true;
        for (k, v) in &r.0 {
            merged.0.push((format!("{prefix}{k}"), v.clone()));
        }
    }
    any.then_some(merged)
}

/// A table row: label, field, formatter.
type Row = (&'static str, &'static str, fn(f64) -> String);

/// The markdown of BENCHMARKS.md.
pub fn markdown(inp: &Inputs) -> String {
    let mut md = String::new();
    let meta = |k: &str| {
        inp.meta
            .iter()
            .find(|(key, _)| key == k)
            .map_or("?", |(_, v)| v.as_str())
    };
    let best = best_runs(&inp.results);
    let scenarios = scenarios_present(&inp.results);
    let rounds = inp
        .results
        .iter()
        .filter(|r| r.get_str("kind") == "run")
        .map(|r| r.get_num("round"))
        .fold(0.0f64, f64::max);
    let _ = writeln!(
        md,
        "# Benchmarks: pookeeper and Apache ZooKeeper side by side\n"
    );
    let _ = writeln!(
        md,
        "Generated by `tests/bench/compare.sh` ({}) on {}. Both servers run \
         standalone on this machine's loopback, one at a time (the idle one is \
         stopped with SIGSTOP), with the same zoo.cfg settings (tickTime={}, \
         forceSync={}, snapCount default); the load generator \
         (`pookeeper-bench`, `tests/bench/`) speaks the binary protocol \
         itself and measures both the same way. Figures are as measured, \
         on a machine whose client and server share {} cores.\n",
        meta("mode"),
        meta("date"),
        meta("tickTime"),
        meta("forceSync"),
        meta("nproc"),
    );
    let _ = writeln!(md, "![throughput per scenario]({})\n", inp.svg_link);
    // The timed scenarios' tables (none when only create or
    // readers-writers ran).
    if !scenarios.is_empty() {
        let _ = writeln!(md, "## Throughput and latency\n");
        let _ = writeln!(
            md,
            "{} sessions × {} outstanding requests each (pipelined), {}-byte \
         values over {} keys; each scenario ran {} round(s) per server, \
         alternating servers (A, B, A, B …), {} s measured after {} s of \
         warmup; the table shows each server's best round by throughput \
         (every round is listed below). Ratio = pookeeper ÷ ZooKeeper: above 1 \
         means pookeeper has more throughput, below 1 means pookeeper has lower \
         latency.\n",
            meta("sessions"),
            meta("depth"),
            meta("value_size"),
            meta("keys"),
            rounds,
            meta("duration"),
            meta("warmup"),
        );
        let _ = writeln!(
            md,
            "| scenario | ZooKeeper ops/s | pookeeper ops/s | ratio | ZooKeeper p50 | \
         pookeeper p50 | ratio | ZooKeeper p99 | pookeeper p99 | ratio | errors (ZK / pk) |"
        );
        let _ = writeln!(
            md,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for s in &scenarios {
            let get = |server: &str, f: &str| {
                best.get(&(s.to_string(), server.to_string()))
                    .map_or(f64::NAN, |r| r.get_num(f))
            };
            let (zt, pt) = (
                get("zookeeper", "ops_per_sec"),
                get("pookeeper", "ops_per_sec"),
            );
            let (z50, p50) = (get("zookeeper", "p50_us"), get("pookeeper", "p50_us"));
            let (z99, p99) = (get("zookeeper", "p99_us"), get("pookeeper", "p99_us"));
            let _ = writeln!(
                md,
                "| {s} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
                thousands(zt),
                thousands(pt),
                ratio(pt, zt),
                latency(z50),
                latency(p50),
                ratio(p50, z50),
                latency(z99),
                latency(p99),
                ratio(p99, z99),
                thousands(get("zookeeper", "errors")),
                thousands(get("pookeeper", "errors")),
            );
        }
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "- **get**: getData of a random key. **set**: setData of a random key \
         (durable: each reply waits for the transaction log). **mixed**: 90 % \
         get, 10 % set. **create-delete**: each session creates a fresh node \
         and deletes it (two requests per pair, both counted). Every reply of \
         these mixes must be OK; anything else is an error, never throughput.\n\
         - **watch**: {} watcher sessions each keep a data watch on one node \
         (getData with watch, re-armed on every notification) while one writer \
         session runs setData on it with {} outstanding; ops/s is \
         notifications received per second, latency is from the send of the \
         setData that fired the watch to the arrival of the notification.\n\
         - Latency is per request, from the write of the request to the read \
         of its reply, in a log-linear histogram with under 0.8 % bucket \
         error (percentiles are bucket tops; max is exact).\n",
            meta("sessions"),
            meta("writer_depth"),
        );
    }
    if scenarios.contains(&"watch") {
        let _ = writeln!(md, "Watch writer (setData with watchers attached):\n");
        let _ = writeln!(md, "| server | writes/s | write p50 | write p99 |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        for (key, name) in SERVERS {
            if let Some(r) = best.get(&("watch".to_string(), key.to_string())) {
                let _ = writeln!(
                    md,
                    "| {name} | {} | {} | {} |",
                    thousands(r.get_num("writes_per_sec")),
                    latency(r.get_num("write_p50_us")),
                    latency(r.get_num("write_p99_us")),
                );
            }
        }
        let _ = writeln!(md);
    }

    md.push_str(&create_section(&inp.results));
    md.push_str(&readers_writers_section(&inp.results));

    let (zm, pm) = (
        memory(&inp.results, "zookeeper"),
        memory(&inp.results, "pookeeper"),
    );
    if zm.is_some() || pm.is_some() {
        let count = zm
            .as_ref()
            .or(pm.as_ref())
            .map_or(f64::NAN, |m| m.get_num("znodes"));
        let _ = writeln!(
            md,
            "## Memory and restart with {} znodes\n",
            thousands(count)
        );
        let _ = writeln!(
            md,
            "Each server starts on an empty data directory; `pookeeper-bench \
             load` creates the znodes ({}-byte data, 1000 parents with the \
             rest spread under them, {} sessions × {} outstanding creates). \
             Resident memory is VmRSS of the server process (for ZooKeeper the \
             JVM, given `{}`), read {} s after the load finished. Restart: the \
             server is stopped with SIGTERM, started again on the same data \
             directory, and timed from the start of the process until a new \
             client session has read the last znode created.\n",
            meta("value_size_load"),
            meta("load_sessions"),
            meta("load_depth"),
            meta("jvm_flags"),
            meta("settle"),
        );
        let _ = writeln!(md, "| | ZooKeeper | pookeeper | ratio |");
        let _ = writeln!(md, "|---|---:|---:|---:|");
        let g = |m: &Option<Object>, k: &str| m.as_ref().map_or(f64::NAN, |m| m.get_num(k));
        let mb = |kb: f64| {
            if kb.is_finite() {
                format!("{:.0} MB", kb / 1024.0)
            } else {
                "–".into()
            }
        };
        let rows: [Row; 2] = [
            ("load rate (creates/s)", "load_ops_per_sec", thousands),
            ("load time (s)", "load_elapsed_s", |v| format!("{v:.1}")),
        ];
        for (label, k, f) in rows {
            let (z, p) = (g(&zm, k), g(&pm, k));
            let _ = writeln!(md, "| {label} | {} | {} | {} |", f(z), f(p), ratio(p, z));
        }
        for (label, k) in [
            ("RSS, empty server", "rss_idle_kb"),
            ("RSS after the load", "rss_loaded_kb"),
            ("RSS after restart", "rss_restarted_kb"),
        ] {
            let (z, p) = (g(&zm, k), g(&pm, k));
            let _ = writeln!(md, "| {label} | {} | {} | {} |", mb(z), mb(p), ratio(p, z));
        }
        let per = |m: &Option<Object>| {
            (g(m, "rss_loaded_kb") - g(m, "rss_idle_kb")) * 1024.0 / g(m, "znodes")
        };
        let (z, p) = (per(&zm), per(&pm));
        let _ = writeln!(
            md,
            "| memory per znode ((loaded − empty) ÷ znodes) | {} B | {} B | {} |",
            thousands(z),
            thousands(p),
            ratio(p, z)
        );
        let (z, p) = (g(&zm, "restart_ms"), g(&pm, "restart_ms"));
        let _ = writeln!(
            md,
            "| restart until the last znode is readable | {:.2} s | {:.2} s | {} |",
            z / 1000.0,
            p / 1000.0,
            ratio(p, z)
        );
        let (z, p) = (g(&zm, "stop_ms"), g(&pm, "stop_ms"));
        let _ = writeln!(
            md,
            "| stop (SIGTERM until the process exited) | {:.2} s | {:.2} s | {} |",
            z / 1000.0,
            p / 1000.0,
            ratio(p, z)
        );
        let (z, p) = (g(&zm, "load_errors"), g(&pm, "load_errors"));
        let _ = writeln!(
            md,
            "| load errors | {} | {} | |",
            thousands(z),
            thousands(p)
        );
        let heap = g(&zm, "heap_used_kb");
        if heap.is_finite() {
            let _ = writeln!(
                md,
                "\nZooKeeper's live Java heap after a full GC (`jcmd GC.run`, then \
                 `GC.heap_info`, after the RSS reading): {} ({:.0} B per znode). \
                 The RSS figure is what the process costs the machine; the heap \
                 figure is what its objects need.",
                mb(heap),
                heap * 1024.0 / count,
            );
        }
        let _ = writeln!(md);
    }

    if !scenarios.is_empty() {
        let _ = writeln!(md, "## Every round\n");
        let _ = writeln!(
            md,
            "| scenario | server | round | ops/s | p50 | p90 | p99 | p99.9 | max | errors |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
        for s in &scenarios {
            for r in inp
                .results
                .iter()
                .filter(|r| r.get_str("kind") == "run" && r.get_str("op") == *s)
            {
                let detail = r.get_str("error_detail");
                let _ = writeln!(
                    md,
                    "| {s} | {} | {} | {} | {} | {} | {} | {} | {} | {}{} |",
                    r.get_str("server"),
                    r.get_num("round"),
                    thousands(r.get_num("ops_per_sec")),
                    latency(r.get_num("p50_us")),
                    latency(r.get_num("p90_us")),
                    latency(r.get_num("p99_us")),
                    latency(r.get_num("p999_us")),
                    latency(r.get_num("max_us")),
                    thousands(r.get_num("errors")),
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(" ({detail})")
                    },
                );
            }
        }
        let _ = writeln!(md);
    }

    let failures: Vec<&Object> = inp
        .results
        .iter()
        .filter(|r| r.get_str("kind") == "failure")
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(md, "## Runs that failed\n");
        for f in failures {
            let variant = f.get_str("variant");
            let _ = writeln!(
                md,
                "- {}{} {} round {}: {}",
                f.get_str("server"),
                if variant.is_empty() {
                    String::new()
                } else {
                    format!(" ({variant})")
                },
                f.get_str("op"),
                f.get_num("round"),
                f.get_str("message")
            );
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## Machine and settings\n");
    let _ = writeln!(md, "| | |");
    let _ = writeln!(md, "|---|---|");
    for (k, v) in &inp.meta {
        let _ = writeln!(md, "| {k} | {} |", v.replace('|', "\\|"));
    }
    let _ = writeln!(md);
    let _ = writeln!(md, "## Command\n");
    let _ = writeln!(md, "```sh\n{}\n```\n", inp.command);
    let _ = writeln!(
        md,
        "Raw results (one JSON object per run) are printed by the command and \
         kept in its work directory with `--keep`; see `tests/bench/README.md`."
    );
    md
}

/// One panel of the chart: a title, a unit, and each server's value.
struct Panel {
    title: String,
    unit: &'static str,
    values: [f64; 2],
    /// Whether a larger value is better (for the ratio caption).
    higher_better: bool,
}

fn panels(results: &[Object]) -> Vec<Panel> {
    let best = best_runs(results);
    let mut out: Vec<Panel> = scenarios_present(results)
        .into_iter()
        .map(|s| Panel {
            title: s.to_string(),
            unit: if s == "watch" {
                "notifications/s"
            } else {
                "ops/s"
            },
            values: SERVERS.map(|(k, _)| {
                best.get(&(s.to_string(), k.to_string()))
                    .map_or(f64::NAN, |r| r.get_num("ops_per_sec"))
            }),
            higher_better: true,
        })
        .collect();
    for (op, unit) in [
        ("create", "creates/s"),
        ("readers-writers", "reads/s beside writers"),
    ] {
        let values = SERVERS.map(|(k, _)| {
            best.get(&(op.to_string(), k.to_string()))
                .map_or(f64::NAN, |r| r.get_num("ops_per_sec"))
        });
        if values.iter().any(|v| v.is_finite()) {
            out.push(Panel {
                title: op.to_string(),
                unit,
                values,
                higher_better: true,
            });
        }
    }
    let mem = SERVERS.map(|(k, _)| memory(results, k));
    if mem.iter().any(Option::is_some) {
        let g = |i: usize, k: &str| mem[i].as_ref().map_or(f64::NAN, |m| m.get_num(k));
        out.push(Panel {
            title: "memory".into(),
            unit: "MB RSS, loaded",
            values: [0, 1].map(|i| g(i, "rss_loaded_kb") / 1024.0),
            higher_better: false,
        });
        out.push(Panel {
            title: "restart".into(),
            unit: "seconds",
            values: [0, 1].map(|i| g(i, "restart_ms") / 1000.0),
            higher_better: false,
        });
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A hand-written SVG: one small panel per scenario (each with its own
/// scale, so slow and fast scenarios are both readable), a bar per server.
pub fn svg(results: &[Object], subtitle: &str) -> String {
    const COLORS: [&str; 2] = ["#d95f02", "#1b9e77"];
    let panels = panels(results);
    let (pw, ph, top, left) = (150.0, 230.0, 70.0, 20.0);
    let width = left * 2.0 + pw * panels.len().max(1) as f64;
    let height = top + ph + 10.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="22" font-size="16" font-weight="bold">pookeeper vs Apache ZooKeeper</text><text x="{left}" y="40" fill="#555">{}</text>"##,
        esc(subtitle)
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="60" fill="#555">under each panel: pookeeper ÷ ZooKeeper</text>"##,
        left + 240.0
    );
    for (i, (_, name)) in SERVERS.iter().enumerate() {
        let x = left + 10.0 + i as f64 * 110.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="50" width="12" height="12" fill="{}"/><text x="{}" y="60">{name}</text>"#,
            COLORS[i],
            x + 16.0
        );
    }
    let bar_w = 44.0;
    let chart_h = ph - 60.0;
    for (pi, p) in panels.iter().enumerate() {
        let x0 = left + pi as f64 * pw;
        let base = top + 20.0 + chart_h;
        let max = p
            .values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let _ = writeln!(
            s,
            r##"<g><text x="{}" y="{}" text-anchor="middle" font-weight="bold">{}</text><line x1="{}" y1="{base}" x2="{}" y2="{base}" stroke="#999"/>"##,
            x0 + pw / 2.0,
            top + 8.0,
            esc(&p.title),
            x0 + 12.0,
            x0 + pw - 12.0
        );
        for (bi, v) in p.values.iter().enumerate() {
            let bx = x0 + pw / 2.0 - bar_w - 3.0 + bi as f64 * (bar_w + 6.0);
            if !v.is_finite() {
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{}" text-anchor="middle" fill="#999">n/a</text>"##,
                    bx + bar_w / 2.0,
                    base - 4.0
                );
                continue;
            }
            // The tallest bar leaves room for its label under the title.
            let h = if max > 0.0 {
                v / max * (chart_h - 28.0)
            } else {
                0.0
            };
            let _ = writeln!(
                s,
                r#"<rect x="{bx:.1}" y="{:.1}" width="{bar_w}" height="{h:.1}" fill="{}"><title>{}: {v:.1} {}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
                base - h,
                COLORS[bi],
                SERVERS[bi].1,
                p.unit,
                bx + bar_w / 2.0,
                base - h - 4.0,
                short(*v)
            );
        }
        let [z, k] = p.values;
        let caption = if z.is_finite() && k.is_finite() && z > 0.0 {
            let r = k / z;
            let better = if p.higher_better { r >= 1.0 } else { r <= 1.0 };
            format!("{r:.2}× ({})", if better { "better" } else { "worse" })
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#555" font-size="11">{}</text><text x="{}" y="{}" text-anchor="middle" font-size="11">{}</text></g>"##,
            x0 + pw / 2.0,
            base + 16.0,
            esc(p.unit),
            x0 + pw / 2.0,
            base + 32.0,
            esc(&caption)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(server: &str, op: &str, round: f64, ops: f64) -> Object {
        let mut o = Object::new();
        o.str("kind", "run")
            .str("server", server)
            .str("op", op)
            .num("round", round)
            .num("ops_per_sec", ops)
            .num("p50_us", 100.0)
            .num("p99_us", 900.0)
            .num("errors", 0u32);
        o
    }

    #[test]
    fn best_round_and_ratio() {
        let results = vec![
            run("zookeeper", "get", 1.0, 1000.0),
            run("pookeeper", "get", 1.0, 3000.0),
            run("zookeeper", "get", 2.0, 1500.0),
            run("pookeeper", "get", 2.0, 2500.0),
        ];
        let md = markdown(&Inputs {
            results: results.clone(),
            meta: vec![("nproc".into(), "2".into())],
            command: "tests/bench/compare.sh".into(),
            svg_link: "docs/benchmarks.svg".into(),
        });
        assert!(md.contains("| get | 1,500 | 3,000 | 2.00× |"), "{md}");
        assert!(md.contains("| nproc | 2 |"));
        let svg = svg(&results, "test");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("2.00× (better)"));
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(short(52_100.0), "52k");
        assert!(md.contains("## Throughput and latency"), "{md}");
        // No new sections without their runs.
        assert!(!md.contains("## Create into a growing tree"));
        assert!(!md.contains("## Readers beside writers"));
    }

    /// A create run: `rate` creates/s overall, falling linearly from
    /// `first` to `last` over the tenths.
    fn create(server: &str, variant: &str, rate: f64, first: f64, last: f64) -> Object {
        let mut o = run(server, "create", 1.0, rate);
        o.num("count", 1_000_000u32)
            .num("parents", 4u32)
            .num("sessions", 32u32)
            .num("depth", 16u32)
            .num("value_size", 100u32)
            .num("elapsed_s", 1e6 / rate)
            .num("max_us", 5000.0);
        for k in 1..=10 {
            o.num(
                &format!("part{k}_ops_per_sec"),
                first + (last - first) * f64::from(k - 1) / 9.0,
            );
        }
        if !variant.is_empty() {
            o.str("variant", variant).num("snap_count", 1e9);
        }
        o
    }

    fn readers_writers(server: &str, round: f64, alone: f64, beside: f64) -> Object {
        let mut o = run(server, "readers-writers", round, beside);
        o.num("readers", 16u32)
            .num("writers", 16u32)
            .num("depth", 16u32)
            .num("duration_s", 5u32)
            .num("warmup_s", 1u32)
            .num("value_size", 100u32)
            .num("keys", 10_000u32)
            .num("p50_us", 400.0)
            .num("p99_us", 3000.0)
            .num("alone_ops_per_sec", alone)
            .num("alone_p50_us", 100.0)
            .num("alone_p99_us", 1000.0)
            .num("write_ops_per_sec", 20_000.0)
            .num("write_p50_us", 2000.0)
            .num("write_p99_us", 9000.0);
        o
    }

    fn md_of(results: Vec<Object>) -> String {
        markdown(&Inputs {
            results,
            meta: Vec::new(),
            command: "tests/bench/compare.sh".into(),
            svg_link: "docs/benchmarks.svg".into(),
        })
    }

    #[test]
    fn create_tables() {
        let results = vec![
            create("zookeeper", "", 20_000.0, 25_000.0, 15_000.0),
            create("pookeeper", "", 40_000.0, 44_000.0, 36_000.0),
            create("pookeeper", SNAP_INF_VARIANT, 50_000.0, 50_000.0, 50_000.0),
        ];
        let md = md_of(results.clone());
        assert!(md.contains("## Create into a growing tree"), "{md}");
        assert!(md.contains("until 1,000,000 znodes exist"), "{md}");
        assert!(
            md.contains("| | ZooKeeper | pookeeper | ratio | pookeeper, snapCount=1,000,000,000 |"),
            "{md}"
        );
        // The snapCount=∞ run is its own column, not pookeeper's best.
        assert!(
            md.contains("| creates/s, whole run | 20,000 | 40,000 | 2.00× | 50,000 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| creates/s, first tenth of the znodes | 25,000 | 44,000 | 1.76× | 50,000 |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| creates/s, last tenth of the znodes | 15,000 | 36,000 | 2.40× | 50,000 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| last tenth ÷ first tenth | 0.60× | 0.82× | | 1.00× |"),
            "{md}"
        );
        assert!(
            md.contains("| time to create them all | 50.0 s | 25.0 s | 0.50× | 20.0 s |"),
            "{md}"
        );
        assert!(
            md.contains(
                "creates at **80 %** of its snapCount=1,000,000,000 rate (40,000 vs 50,000"
            ),
            "{md}"
        );
        assert!(
            md.contains("| 0 – 100,000 | 25,000 | 44,000 | 1.76× | 50,000 |"),
            "{md}"
        );
        assert!(
            md.contains("| 900,000 – 1,000,000 | 15,000 | 36,000 | 2.40× | 50,000 |"),
            "{md}"
        );
        // Not in the head-to-head table of the timed scenarios.
        assert!(!md.contains("| create |"), "{md}");
        let svg = svg(&results, "test");
        assert!(svg.contains(">create</text>"), "{svg}");
        assert!(svg.contains("creates/s"), "{svg}");
    }

    #[test]
    fn readers_writers_tables() {
        let mut failed = Object::new();
        failed
            .str("kind", "failure")
            .str("server", "pookeeper")
            .str("variant", SNAP_INF_VARIANT)
            .str("op", "create")
            .num("round", 1u32)
            .str("message", "exit 3: boom");
        let results = vec![
            readers_writers("zookeeper", 1.0, 40_000.0, 10_000.0),
            readers_writers("pookeeper", 1.0, 80_000.0, 60_000.0),
            readers_writers("zookeeper", 2.0, 42_000.0, 12_000.0),
            failed,
        ];
        let md = md_of(results.clone());
        assert!(md.contains("## Readers beside writers"), "{md}");
        assert!(md.contains("16 reader sessions"), "{md}");
        // ZooKeeper's best round is round 2 (by reads/s beside writers).
        assert!(
            md.contains("| readers alone: reads/s | 42,000 | 80,000 | 1.90× |"),
            "{md}"
        );
        assert!(
            md.contains("| readers beside writers: reads/s | 12,000 | 60,000 | 5.00× |"),
            "{md}"
        );
        assert!(
            md.contains("| readers beside writers: p50 | 400 µs | 400 µs | 1.00× |"),
            "{md}"
        );
        assert!(
            md.contains("| writers: writes/s | 20,000 | 20,000 | 1.00× |"),
            "{md}"
        );
        assert!(
            md.contains("| **reader p50, beside ÷ alone** | **4.00×** | **4.00×** | |"),
            "{md}"
        );
        assert!(
            md.contains("| **reader p99, beside ÷ alone** | **3.00×** | **3.00×** | |"),
            "{md}"
        );
        assert!(
            md.contains("| **reads/s, beside ÷ alone** | **0.29×** | **0.75×** | |"),
            "{md}"
        );
        assert!(
            md.contains("| ZooKeeper | 1 | 40,000 | 100 µs | 1.00 ms | 10,000 | 400 µs |"),
            "{md}"
        );
        assert!(
            md.contains("- pookeeper (snapcount-inf) create round 1: exit 3: boom"),
            "{md}"
        );
        assert!(!md.contains("## Create into a growing tree"), "{md}");
        // No empty tables of the timed scenarios.
        assert!(!md.contains("## Throughput and latency"), "{md}");
        assert!(!md.contains("## Every round\n"), "{md}");
        let svg = svg(&results, "test");
        assert!(svg.contains("reads/s beside writers"), "{svg}");
        assert!(svg.contains("5.00× (better)"), "{svg}");
    }
}
