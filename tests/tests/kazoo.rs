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
