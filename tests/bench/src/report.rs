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

/// The best round (highest throughput) of each (scenario, server).
fn best_runs(results: &[Object]) -> BTreeMap<(String, String), &Object> {
    let mut best: BTreeMap<(String, String), &Object> = BTreeMap::new();
    for r in results.iter().filter(|r| r.get_str("kind") == "run") {
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

    let failures: Vec<&Object> = inp
        .results
        .iter()
        .filter(|r| r.get_str("kind") == "failure")
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(md, "## Runs that failed\n");
        for f in failures {
            let _ = writeln!(
                md,
                "- {} {} round {}: {}",
                f.get_str("server"),
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
    }
}
