//! `pookeeper-bench`: command line (see `usage`).
#![forbid(unsafe_code)]

use pookeeper_bench::bench::{self, BenchConfig, LoadConfig};
use pookeeper_bench::json::{Object, Value};
use pookeeper_bench::report;
use pookeeper_bench::run::Mix;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
pookeeper-bench: load generator for ZooKeeper-protocol servers

USAGE:
  pookeeper-bench [run] [OPTIONS]     timed benchmark (setup, run, teardown)
  pookeeper-bench load [OPTIONS]      create --count znodes as fast as possible
  pookeeper-bench wait-read --hosts H --path P [--timeout SECS]
                                      retry until a session can read P; print ms
  pookeeper-bench free-port           print a free loopback TCP port
  pookeeper-bench report --results F --meta F --out MD --svg SVG [--svg-link L]
                         [--command CMD] [--subtitle TEXT]
                                      write BENCHMARKS.md and the chart

COMMON OPTIONS:
  --hosts H[,H..]       servers (default 127.0.0.1:2181); sessions round-robin
  --session-timeout MS  session timeout asked for (default 30000)
  --json                one JSON object on stdout instead of text
  --label K=V           extra field in the JSON result (repeatable)
  --quiet               no progress lines on stderr

RUN OPTIONS:
  --op OP               get | set | mixed | create-delete | watch | exists | children
                        | create | readers-writers
                        (default mixed = 90% get, 10% set)
  --sessions N          sessions; for watch, watcher sessions (default 32)
  --depth N             requests outstanding per session; for readers-writers,
                        per writer session (default 16)
  --duration SECS       measured time (default 10); readers-writers: per phase
  --warmup SECS         unmeasured time first (default 2); readers-writers:
                        per phase
  --value-size BYTES    data per znode and per setData (default 100)
  --keys N              znodes get/set spread over (default 10000)
  --writer-depth N      watch: setData outstanding in the writer (default 1)
  --seed N              key choice seed (default 1)
  --count N             create: znodes to create; the run ends when all are
                        acknowledged (no --duration, no --warmup) (default 1000000)
  --parents N           create: parents they are spread over (default 4)
  --readers N           readers-writers: getData sessions, 1 outstanding each
                        (default 16); they run alone first, then beside
  --writers N           readers-writers: setData sessions, --depth outstanding
                        each (default 16)
  --no-teardown         leave the keys / created znodes in place afterwards

LOAD OPTIONS:
  --count N             znodes to create (default 1000000)
  --value-size BYTES    (default 100)
  --sessions N          (default 8)
  --depth N             (default 64)
  --root PATH           parent of everything (default /bench-load; must not exist)
  --fanout N            parents under the root (default 1000)

Every reply is checked: error codes are counted as errors (never as
throughput), replies out of xid order abort the run (exit 3). Exit status 1
when any error reply was counted, 2 on bad usage.
";

/// Parsed `--key value` options.
struct Args {
    items: Vec<(String, Option<String>)>,
}

impl Args {
    fn parse(raw: &[String]) -> Result<Self, String> {
        let flags = ["--json", "--quiet", "--no-teardown", "--help", "-h"];
        let mut items = Vec::new();
        let mut it = raw.iter();
        while let Some(a) = it.next() {
            if !a.starts_with('-') {
                return Err(format!("unexpected argument {a:?}"));
            }
            if let Some((k, v)) = a.split_once('=').filter(|(k, _)| k.starts_with("--")) {
                items.push((k.to_string(), Some(v.to_string())));
            } else if flags.contains(&a.as_str()) {
                items.push((a.clone(), None));
            } else {
                let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
                items.push((a.clone(), Some(v.clone())));
            }
        }
        Ok(Self { items })
    }

    fn flag(&self, k: &str) -> bool {
        self.items.iter().any(|(key, _)| key == k)
    }

    fn all(&self, k: &str) -> Vec<&str> {
        self.items
            .iter()
            .filter(|(key, _)| key == k)
            .filter_map(|(_, v)| v.as_deref())
            .collect()
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.all(k).last().copied()
    }

    fn parsed<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, String> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{k}: bad value {v:?}")),
        }
    }

    fn secs(&self, k: &str, default: f64) -> Result<Duration, String> {
        let v: f64 = self.parsed(k, default)?;
        Duration::try_from_secs_f64(v).map_err(|_| format!("{k}: bad duration {v}"))
    }

    fn check_known(&self, known: &[&str]) -> Result<(), String> {
        let common = [
            "--hosts",
            "--session-timeout",
            "--json",
            "--label",
            "--quiet",
        ];
        for (k, _) in &self.items {
            if !known.contains(&k.as_str()) && !common.contains(&k.as_str()) {
                return Err(format!("unknown option {k}"));
            }
        }
        Ok(())
    }

    fn hosts(&self) -> Vec<String> {
        self.get("--hosts")
            .unwrap_or("127.0.0.1:2181")
            .split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect()
    }

    fn labels(&self) -> Result<Vec<(String, String)>, String> {
        self.all("--label")
            .into_iter()
            .map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| format!("--label needs K=V, got {l:?}"))
            })
            .collect()
    }
}

/// How a command ended.
enum Failure {
    Usage(String),
    Run(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Self::Usage(s)
    }
}

fn main() -> ExitCode {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match raw.first().map(String::as_str) {
        Some(c @ ("run" | "load" | "wait-read" | "free-port" | "report" | "help")) => {
            (c, &raw[1..])
        }
        _ => ("run", &raw[..]),
    };
    let result = Args::parse(rest).map_err(Failure::Usage).and_then(|a| {
        if a.flag("--help") || a.flag("-h") || cmd == "help" {
            print!("{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        match cmd {
            "load" => cmd_load(&a),
            "wait-read" => cmd_wait_read(&a),
            "free-port" => cmd_free_port(),
            "report" => cmd_report(&a),
            _ => cmd_run(&a),
        }
    });
    match result {
        Ok(code) => code,
        Err(Failure::Usage(e)) => {
            eprintln!("pookeeper-bench: {e}\n(see pookeeper-bench --help)");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("pookeeper-bench: {}", e.trim_start_matches('\0'));
            ExitCode::from(3)
        }
    }
}

fn cmd_run(a: &Args) -> Result<ExitCode, Failure> {
    a.check_known(&[
        "--op",
        "--sessions",
        "--depth",
        "--duration",
        "--warmup",
        "--value-size",
        "--keys",
        "--writer-depth",
        "--seed",
        "--count",
        "--parents",
        "--readers",
        "--writers",
        "--no-teardown",
    ])?;
    let op = a.get("--op").unwrap_or("mixed");
    let mix = Mix::parse(op).ok_or_else(|| format!("--op: unknown operation {op:?}"))?;
    let c = BenchConfig {
        hosts: a.hosts(),
        sessions: a.parsed("--sessions", 32usize)?.max(1),
        depth: a.parsed("--depth", 16usize)?.max(1),
        duration: a.secs("--duration", 10.0)?,
        warmup: a.secs("--warmup", 2.0)?,
        mix,
        value_size: a.parsed("--value-size", 100usize)?,
        keys: a.parsed("--keys", 10_000usize)?,
        writer_depth: a.parsed("--writer-depth", 1usize)?,
        session_timeout_ms: a.parsed("--session-timeout", 30_000i32)?,
        progress: !a.flag("--quiet"),
        seed: a.parsed("--seed", 1u64)?,
        count: a.parsed("--count", 1_000_000u64)?,
        parents: a.parsed("--parents", 4u64)?.max(1),
        readers: a.parsed("--readers", 16usize)?.max(1),
        writers: a.parsed("--writers", 16usize)?.max(1),
        teardown: !a.flag("--no-teardown"),
        labels: a.labels()?,
    };
    if c.hosts.is_empty() {
        return Err(Failure::Usage("--hosts is empty".into()));
    }
    let r = bench::bench(&c).map_err(Failure::Run)?;
    emit(a, &r);
    Ok(exit_for(&r))
}

fn cmd_load(a: &Args) -> Result<ExitCode, Failure> {
    a.check_known(&[
        "--count",
        "--value-size",
        "--sessions",
        "--depth",
        "--root",
        "--fanout",
    ])?;
    let root = a.get("--root").unwrap_or("/bench-load").to_string();
    if !root.starts_with('/') || root.len() < 2 || root.ends_with('/') {
        return Err(Failure::Usage(format!("--root: bad path {root:?}")));
    }
    let c = LoadConfig {
        hosts: a.hosts(),
        count: a.parsed("--count", 1_000_000u64)?,
        value_size: a.parsed("--value-size", 100usize)?,
        sessions: a.parsed("--sessions", 8usize)?.max(1),
        depth: a.parsed("--depth", 64usize)?.max(1),
        root,
        fanout: a.parsed("--fanout", 1000u64)?.max(1),
        session_timeout_ms: a.parsed("--session-timeout", 30_000i32)?,
        progress: !a.flag("--quiet"),
        labels: a.labels()?,
    };
    let r = bench::load(&c).map_err(Failure::Run)?;
    emit(a, &r);
    Ok(exit_for(&r))
}

fn cmd_wait_read(a: &Args) -> Result<ExitCode, Failure> {
    a.check_known(&["--path", "--timeout"])?;
    let path = a
        .get("--path")
        .ok_or_else(|| "wait-read needs --path".to_string())?;
    let hosts = a.hosts();
    let took =
        bench::wait_read(&hosts[0], path, a.secs("--timeout", 120.0)?).map_err(Failure::Run)?;
    let ms = took.as_secs_f64() * 1000.0;
    if a.flag("--json") {
        let mut o = Object::new();
        for (k, v) in a.labels()? {
            o.label(&k, &v);
        }
        o.str("op", "wait-read").str("path", path).num("ms", ms);
        println!("{}", o.to_line());
    } else {
        println!("{ms:.1}");
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_free_port() -> Result<ExitCode, Failure> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Failure::Run(format!("binding a free port: {e}")))?
        .port();
    println!("{port}");
    Ok(ExitCode::SUCCESS)
}

fn cmd_report(a: &Args) -> Result<ExitCode, Failure> {
    a.check_known(&[
        "--results",
        "--meta",
        "--out",
        "--svg",
        "--svg-link",
        "--command",
        "--subtitle",
    ])?;
    let need = |k: &str| a.get(k).ok_or_else(|| format!("report needs {k}"));
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
    let results = report::parse_results(&read(need("--results")?)?).map_err(Failure::Run)?;
    let meta = match a.get("--meta") {
        Some(p) => report::parse_meta(&read(p)?),
        None => Vec::new(),
    };
    let svg_path = need("--svg")?;
    let inputs = report::Inputs {
        results,
        meta,
        command: a.get("--command").unwrap_or("").to_string(),
        svg_link: a.get("--svg-link").unwrap_or(svg_path).to_string(),
    };
    let write = |p: &str, text: &str| {
        std::fs::write(p, text).map_err(|e| Failure::Run(format!("{p}: {e}")))
    };
    write(
        svg_path,
        &report::svg(&inputs.results, a.get("--subtitle").unwrap_or("")),
    )?;
    write(need("--out")?, &report::markdown(&inputs))?;
    Ok(ExitCode::SUCCESS)
}

/// Exit status 1 when the result counted errors.
fn exit_for(r: &Object) -> ExitCode {
    if r.get_num("errors") > 0.0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints a result: one JSON line, or aligned `key  value` text.
fn emit(a: &Args, r: &Object) {
    if a.flag("--json") {
        println!("{}", r.to_line());
        return;
    }
    let width = r.0.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &r.0 {
        let v = match v {
            Value::Str(s) if s.is_empty() => "-".to_string(),
            Value::Str(s) => s.clone(),
            Value::Num(n) if n.fract() == 0.0 => format!("{n:.0}"),
            Value::Num(n) => format!("{n:.1}"),
        };
        println!("{k:width$}  {v}");
    }
}
