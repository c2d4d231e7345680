//! Test harness: start the real `pookeeper` binary (and, when installed,
//! Apache ZooKeeper from the Debian package) on ephemeral loopback ports,
//! with every process killed when its handle drops.
//!
//! Tests that need a tool that is not installed (Apache ZooKeeper, kazoo,
//! zkCli.sh, cli_mt) print `SKIP: ...` and pass, unless the environment sets
//! `POOKEEPER_REQUIRE_INTEROP=1` (as `.ci/run` does): then they fail.
#![forbid(unsafe_code)]
#![allow(missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether missing interop tools fail the test instead of skipping it.
pub fn interop_required() -> bool {
    std::env::var("POOKEEPER_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// Skips (returns) when `tool` is unavailable, or fails when interop is
/// required.
#[macro_export]
macro_rules! require {
    ($ok:expr, $what:expr) => {
        if !$ok {
            if $crate::interop_required() {
                panic!(
                    "{} is required (POOKEEPER_REQUIRE_INTEROP=1) but missing",
                    $what
                );
            }
            eprintln!("SKIP: {} is not installed", $what);
            return;
        }
    };
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The server binary under test, built on first use (a no-op when it is
/// fresh): `pookeeper` (mio), or `pookeeper-async` (async-std) when
/// `POOKEEPER_RUNTIME=async`; `POOKEEPER_BIN` names a binary directly.
pub fn pookeeper_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("POOKEEPER_BIN") {
            return PathBuf::from(p);
        }
        let (package, bin) = match std::env::var("POOKEEPER_RUNTIME").as_deref() {
            Ok("async") | Ok("async-std") => ("pookeeper-async-std", "pookeeper-async"),
            _ => ("pookeeper-mio", "pookeeper"),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", package, "--bin", bin])
            .current_dir(workspace())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building {bin} failed");
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace().join("target"));
        target.join("debug").join(bin)
    })
    .clone()
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("pk-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `pookeeper`, killed on drop.
pub struct Pookeeper {
    child: Child,
    pub addr: SocketAddr,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    _data: Option<TempDir>,
}

impl Pookeeper {
    /// Starts `pookeeper --port 0` with extra arguments and a data
    /// directory of its own (removed when the server is dropped).
    pub fn start(args: &[&str]) -> Self {
        let dir = TempDir::new("data");
        let mut s = Self::start_in(&dir.0, args);
        s._data = Some(dir);
        s
    }

    /// Starts `pookeeper --port 0` on the data directory `dir` (kept).
    pub fn start_in(dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(pookeeper_bin())
            .args(["--port", "0", "--host", "127.0.0.1", "--data-dir"])
            .arg(dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pookeeper");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next()
            .expect("pookeeper printed nothing")
            .expect("read stdout");
        let addr = line
            .strip_prefix("pookeeper listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("address");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        let mut err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Self {
            child,
            addr,
            stderr: log,
            _data: None,
        }
    }

    /// `host:port` for clients.
    pub fn hostport(&self) -> String {
        self.addr.to_string()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits (up to 5 s) until the log contains `needle`; returns the log.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/PID/status` field of the server in kB (`VmRSS`, `VmHWM`).
    pub fn status_kb(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the server dies at once, as in a crash.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Pookeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Sends a four-letter word and returns the answer.
pub fn four_letter_word(addr: &str, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(cmd.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

const ZK_HOME: &str = "/usr/share/zookeeper";

/// Whether Apache ZooKeeper (Debian package) is installed.
pub fn zookeeper_installed() -> bool {
    Path::new(ZK_HOME).join("bin/zkServer.sh").exists() && which("java")
}

/// Whether a program is on PATH.
pub fn which(prog: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(prog).is_file()))
}

/// A running Apache ZooKeeper, killed (with its JVM) on drop.
pub struct ZooKeeper {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl ZooKeeper {
    /// Starts a standalone Apache ZooKeeper on a free loopback port with a
    /// fresh data directory; waits until it answers `ruok`.
    pub fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("pk-zk-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("zk dir");
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=*\nmaxClientCnxns=0\n\
                 extendedTypesEnabled=true\n",
                dir.join("data").display()
            ),
        )
        .expect("zoo.cfg");
        let mut cmd = Command::new(Path::new(ZK_HOME).join("bin/zkServer.sh"));
        cmd.arg("start-foreground")
            .arg(&cfg)
            .env("ZOO_LOG_DIR", &dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group, so the JVM dies with the script.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("start zookeeper");
        let zk = Self { child, port, dir };
        let addr = zk.hostport();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if four_letter_word(&addr, "ruok").is_ok_and(|a| a == "imok") {
                break;
            }
            assert!(Instant::now() < deadline, "ZooKeeper did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        zk
    }

    /// `host:port` for clients.
    pub fn hostport(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let pgid = self.child.id();
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether `python3 -c "import kazoo"` works.
pub fn kazoo_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import kazoo"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `python3 tests/python/<script> args...` with a time limit; returns
/// (success, combined output).
pub fn run_python(script: &str, args: &[&str], limit: Duration) -> (bool, String) {
    let path = workspace().join("tests/python").join(script);
    run_bounded(Command::new("python3").arg(path).args(args), limit)
}

/// Runs a command with a time limit (killed past it), stdin closed; returns
/// (success, stdout + stderr).
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}{}",
        t_out.join().unwrap_or_default(),
        t_err.join().unwrap_or_default()
    );
    match status {
        Some(s) => (s.success(), text),
        None => (false, format!("{text}\n<killed after {limit:?}>")),
    }
}
