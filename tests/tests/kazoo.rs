//! kazoo (Python) against the real `pookeeper` binary: CRUD, DataWatch,
//! ChildrenWatch, transactions, ephemeral cleanup, the Lock recipe, session
//! expiry of a vanished client and resuming a session with id + password.

use pookeeper_tests::{kazoo_installed, require, run_python, workspace, Pookeeper};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[test]
fn kazoo_crud_watches_transactions_ephemerals_and_lock() {
    require!(kazoo_installed(), "kazoo (pip install kazoo)");
    let server = Pookeeper::start(&[]);
    let (ok, out) = run_python(
        "kazoo_basics.py",
        &[&server.hostport()],
        Duration::from_secs(120),
    );
    assert!(ok && out.contains("OK"), "kazoo_basics failed:\n{out}");
}

/// A kazoo client holding an ephemeral, in a process the test can kill.
struct Holder {
    child: Child,
    session: String,
    passwd: String,
}

impl Holder {
    fn start(hostport: &str, name: &str, timeout_s: &str) -> Self {
        let mut child = Command::new("python3")
            .arg(workspace().join("tests/python/kazoo_session.py"))
            .args([hostport, "hold", name, timeout_s])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let out = child.stdout.take().expect("stdout");
        let line = BufReader::new(out)
            .lines()
            .next()
            .expect("holder printed its session")
            .expect("read");
        let mut parts = line.split_whitespace().skip(1);
        let session = parts.next().expect("session id").to_string();
        let passwd = parts.next().expect("password").to_string();
        Self {
            child,
            session,
            passwd,
        }
    }

    /// The client vanishes: no closeSession, no more pings.
    fn vanish(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.vanish();
    }
}

#[test]
fn kazoo_session_expires_when_client_vanishes() {
    require!(kazoo_installed(), "kazoo (pip install kazoo)");
    let server = Pookeeper::start(&[]);
    let mut holder = Holder::start(&server.hostport(), "gone", "4");
    holder.vanish();
    let (ok, out) = run_python(
        "kazoo_session.py",
        &[&server.hostport(), "check-expired", "gone"],
        Duration::from_secs(60),
    );
    assert!(ok && out.contains("OK"), "expiry check failed:\n{out}");
}

#[test]
fn kazoo_resumes_a_session_with_id_and_password() {
    require!(kazoo_installed(), "kazoo (pip install kazoo)");
    let server = Pookeeper::start(&[]);
    let mut holder = Holder::start(&server.hostport(), "kept", "30");
    holder.vanish();
    let (ok, out) = run_python(
        "kazoo_session.py",
        &[
            &server.hostport(),
            "resume",
            "kept",
            &holder.session,
            &holder.passwd,
        ],
        Duration::from_secs(60),
    );
    assert!(ok && out.contains("OK"), "resume failed:\n{out}");
}

#[test]
fn kazoo_acls_and_auth() {
    require!(kazoo_installed(), "kazoo (pip install kazoo)");
    let server = Pookeeper::start(&[]);
    let (ok, out) = run_python(
        "kazoo_acl.py",
        &[&server.hostport()],
        Duration::from_secs(120),
    );
    assert!(ok && out.contains("OK"), "kazoo_acl failed:\n{out}");
}

/// kazoo's tests that cannot pass against any standalone server: they need
/// a real ensemble (several servers), TLS or a second port.
/// Each entry is a pytest `-k` term (class, or class and test).
const KAZOO_NEEDS_ENSEMBLE: &[&str] = &[
    // Grows the host list to three servers and stops the first one (also
    // inherited by the gevent and eventlet client classes).
    "test_update_host_list",
    // TLS on a secure client port.
    "TestSSLClient",
    // Dynamic reconfiguration of an ensemble (a standalone ZooKeeper answers
    // UNIMPLEMENTED, as pookeeper does).
    "TestReconfig",
    // Stops two of three servers to reach read-only mode.
    "(TestReadOnlyMode and test_read_only)",
];

/// Whether python3 has everything kazoo's own test suite imports.
fn kazoo_suite_installed() -> bool {
    Command::new("python3")
        .args([
            "-c",
            "import kazoo, pytest, pytest_timeout, OpenSSL, jks, objgraph",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// kazoo's own test suite (the one shipped inside the kazoo package: client,
/// connection, watchers, every recipe) against pookeeper instead of the Java
/// cluster its harness would start. The plugin in tests/python/kazoo_suite
/// swaps the cluster for one pookeeper process.
#[test]
fn kazoos_own_test_suite_passes() {
    require!(
        kazoo_suite_installed(),
        "kazoo's test dependencies (pip install kazoo pytest pytest-timeout pyOpenSSL pyjks objgraph)"
    );
    let mut cmd = Command::new("python3");
    cmd.current_dir(std::env::temp_dir())
        .env("POOKEEPER_BIN", pookeeper_tests::pookeeper_bin())
        .env("PYTHONPATH", workspace().join("tests/python/kazoo_suite"))
        .args([
            "-m",
            "pytest",
            "-p",
            "pookeeper_cluster",
            "-p",
            "no:cacheprovider",
        ])
        .args(["--pyargs", "kazoo.tests", "-q", "--timeout", "60", "-rfE"]);
    let deselect: Vec<String> = KAZOO_NEEDS_ENSEMBLE
        .iter()
        .map(|t| format!("not {t}"))
        .collect();
    cmd.args(["-k", &deselect.join(" and ")]);
    let (ok, out) = pookeeper_tests::run_bounded(&mut cmd, Duration::from_secs(900));
    let summary = out
        .lines()
        .rev()
        .find(|l| l.contains(" passed"))
        .unwrap_or("");
    assert!(ok, "kazoo's test suite failed ({summary}):\n{out}");
    // Something ran: a suite that collected nothing would also "pass".
    let passed: u32 = summary
        .split_whitespace()
        .zip(summary.split_whitespace().skip(1))
        .find(|(_, w)| w.starts_with("passed"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 250, "only {passed} kazoo tests passed:\n{out}");
}
