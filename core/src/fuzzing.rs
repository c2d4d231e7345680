//! Entry points for fuzzers and property tests. Each function takes
//! arbitrary input, drives the core, and panics only when an invariant is
//! broken (which is a bug). The `fuzz/` targets are one-line calls into
//! here; with the `arbitrary` feature the step types derive `Arbitrary`.
//!
//! The server is driven through a [`testing::Harness`](crate::testing::Harness),
//! whose drain checks, after every step of [`protocol`] and every input of
//! [`stream`] and [`text`]: no panic; outputs name only live connections
//! and nothing follows a connection's Close; zxids go up by one and every
//! appended entry decodes. The tree is consistent (parents list their
//! children, ephemerals are indexed and owned by open sessions) after every
//! step of [`protocol`], and at the end of [`stream`] and [`text`] (whose
//! inputs are a few bytes each: a check per input would cost most of their
//! speed). Checked here too: the deadline moves forward once it has passed,
//! and a finished snapshot restores exactly the tree as it was when it
//! started.

use crate::proto::records::ConnectRequest;
use crate::testing::{Clock, Durability, Harness, Observer};
use crate::{Config, ConnId, Input, Output, Server, SnapshotProgress};
use std::time::Duration;

/// One thing that happens to the server.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Step {
    /// A new connection.
    Accept,
    /// Raw bytes on connection `conn` (modulo the live connections).
    Bytes {
        /// Which connection.
        conn: u8,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// A well-formed handshake on `conn`, optionally resuming a session
    /// seen before.
    Connect {
        /// Which connection.
        conn: u8,
        /// Resume the n-th session seen, if any.
        resume: Option<u8>,
        /// Requested timeout.
        timeout: u16,
    },
    /// A well-formed request on `conn`.
    Request {
        /// Which connection.
        conn: u8,
        /// Which request (modulo the known kinds).
        kind: u8,
        /// Which path (modulo a small set, so requests collide).
        path: u8,
        /// A small integer (version, flags, watch).
        arg: i8,
        /// Data.
        data: Vec<u8>,
    },
    /// The peer of `conn` goes away.
    PeerClosed {
        /// Which connection.
        conn: u8,
    },
    /// Time passes.
    Advance {
        /// Milliseconds.
        ms: u16,
    },
    /// The log reports everything appended durable.
    Durable,
    /// Starts a snapshot, or writes the next piece of the one under way
    /// (about `budget` × 64 bytes); a finished one must restore exactly the
    /// tree as it was when it started.
    Snapshot {
        /// Piece size, in 64-byte units.
        budget: u8,
    },
}

const PATHS: [&str; 8] = [
    "/",
    "/a",
    "/a/b",
    "/a/b/c",
    "/z",
    "/zookeeper",
    "/a/",
    "bad",
];

/// Builds a request frame of one of the client ops.
fn request_frame(xid: i32, kind: u8, path: &str, arg: i8, data: &[u8]) -> Vec<u8> {
    use crate::proto::records::{encode_acls, op, Acl};
    use crate::proto::Writer;
    let mut w = Writer::frame();
    let ops = [
        op::CREATE,
        op::CREATE2,
        op::DELETE,
        op::EXISTS,
        op::GET_DATA,
        op::SET_DATA,
        op::GET_CHILDREN,
        op::GET_CHILDREN2,
        op::SYNC,
        op::CHECK,
        op::MULTI,
        op::GET_ACL,
        op::SET_ACL,
        op::PING,
        op::CLOSE_SESSION,
        op::ADD_WATCH,
        op::REMOVE_WATCHES,
        op::CREATE_CONTAINER,
        op::CREATE_TTL,
        op::GET_EPHEMERALS,
        op::GET_ALL_CHILDREN_NUMBER,
        op::WHO_AM_I,
        op::AUTH,
        op::SET_WATCHES,
    ];
    let code = ops[kind as usize % ops.len()];
    let xid = match code {
        op::PING => -2,
        op::AUTH => -4,
        op::SET_WATCHES => -8,
        _ => xid,
    };
    w.int(xid).int(code);
    let create = |w: &mut Writer, flags: i32| {
        w.string(path).buffer(data);
        encode_acls(w, &[Acl::open()]);
        w.int(flags);
    };
    match code {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => create(&mut w, i32::from(arg) & 7),
        op::CREATE_TTL => {
            create(&mut w, i32::from(arg) & 7);
            w.long(i64::from(arg) * 100);
        }
        op::DELETE | op::CHECK => {
            w.string(path).int(i32::from(arg) % 3 - 1);
        }
        op::EXISTS | op::GET_DATA | op::GET_CHILDREN | op::GET_CHILDREN2 => {
            w.string(path).boolean(arg & 1 == 1);
        }
        op::SET_DATA => {
            w.string(path).buffer(data).int(i32::from(arg) % 3 - 1);
        }
        op::SET_ACL => {
            w.string(path);
            encode_acls(&mut w, &[Acl::open()]);
            w.int(i32::from(arg) % 3 - 1);
        }
        op::MULTI => {
            for (i, p) in PATHS.iter().take((arg as u8 % 4) as usize + 1).enumerate() {
                let t = [op::CREATE, op::DELETE, op::SET_DATA, op::CHECK][(i + kind as usize) % 4];
                w.int(t).boolean(false).int(-1);
                match t {
                    op::CREATE => {
                        w.string(p).buffer(data);
                        encode_acls(&mut w, &[Acl::open()]);
                        w.int(0);
                    }
                    op::SET_DATA => {
                        w.string(p).buffer(data).int(-1);
                    }
                    _ => {
                        w.string(p).int(-1);
                    }
                }
            }
            w.int(-1).boolean(true).int(-1);
        }
        op::ADD_WATCH | op::REMOVE_WATCHES => {
            w.string(path).int(i32::from(arg) & 7);
        }
        op::AUTH => {
            w.int(0)
                .string(if arg & 1 == 0 { "digest" } else { "bogus" })
                .buffer(data);
        }
        op::SET_WATCHES => {
            w.long(i64::from(arg))
                .strings(&[path])
                .strings(&[path])
                .strings(&[path]);
        }
        op::SYNC | op::GET_EPHEMERALS | op::GET_ALL_CHILDREN_NUMBER => {
            w.string(path);
        }
        _ => {}
    }
    w.finish_frame().to_vec()
}

/// Learns session ids and passwords from connect replies, so later
/// handshakes can resume them.
#[derive(Default)]
struct Sessions(Vec<(i64, Vec<u8>)>);

impl Observer for Sessions {
    fn output(&mut self, out: &Output) {
        // A connect response: 4-byte length 36 or 37, then fields.
        if let Output::Transmit { data, .. } = out {
            if data.len() == 41 && data[..4] == [0, 0, 0, 37] {
                let mut id = [0u8; 8];
                id.copy_from_slice(&data[12..20]);
                let sid = i64::from_be_bytes(id);
                if sid != 0 && self.0.len() < 64 {
                    self.0.push((sid, data[24..40].to_vec()));
                }
            }
        }
    }
}

/// Drives a server through `steps`, checking the invariants after each
/// (the [`Harness`]'s drain checks the outputs and the tree).
pub fn protocol(steps: &[Step]) {
    let mut clock = Clock::new();
    clock.advance(Duration::from_secs(1));
    let config = Config {
        container_check_interval: Duration::from_millis(500),
        extended_types: true,
        four_letter_words: vec!["*".into()],
        // SASL on, so sasl tokens reach the DIGEST-MD5 parser.
        sasl_users: Some(vec![("u".into(), "p".into())]),
        sasl_acl: true,
        ..Config::default()
    };
    let Ok(server) = Server::new(config, clock.now(), 1_600_000_000_000) else {
        return;
    };
    let mut h = Harness::from_server(server, clock)
        .with_durability(Durability::Manual)
        .with_observer(Sessions::default());
    let mut xid = 0;
    // The tree when the snapshot under way started, and its bytes so far.
    let mut snap: Option<(TreeDump, Vec<u8>)> = None;
    let pick = |h: &Harness<Sessions>, i: u8| -> Option<ConnId> {
        let n = h.live().len();
        (n > 0).then(|| h.live().nth(i as usize % n)).flatten()
    };
    for step in steps.iter().take(400) {
        match step {
            Step::Accept => {
                if h.live().len() < 16 {
                    h.accept();
                }
            }
            Step::Bytes { conn, bytes } => {
                if let Some(c) = pick(&h, *conn) {
                    h.handle(Input::Received { conn: c, bytes });
                }
            }
            Step::Connect {
                conn,
                resume,
                timeout,
            } => {
                if let Some(c) = pick(&h, *conn) {
                    let sessions = &h.observer.0;
                    let (session_id, passwd) = resume
                        .and_then(|r| sessions.get(r as usize % sessions.len().max(1)))
                        .cloned()
                        .unwrap_or((0, vec![0; 16]));
                    let req = ConnectRequest {
                        protocol_version: 0,
                        last_zxid_seen: 0,
                        timeout: i32::from(*timeout),
                        session_id,
                        passwd,
                        read_only: false,
                    };
                    h.handle(Input::Received {
                        conn: c,
                        bytes: &req.encode_frame(),
                    });
                }
            }
            Step::Request {
                conn,
                kind,
                path,
                arg,
                data,
            } => {
                if let Some(c) = pick(&h, *conn) {
                    xid += 1;
                    let p = PATHS[*path as usize % PATHS.len()];
                    let f = request_frame(xid, *kind, p, *arg, &data[..data.len().min(64)]);
                    h.handle(Input::Received { conn: c, bytes: &f });
                }
            }
            Step::PeerClosed { conn } => {
                if let Some(c) = pick(&h, *conn) {
                    // The harness refuses any output for `c` from now on.
                    h.handle(Input::PeerClosed { conn: c });
                }
            }
            Step::Advance { ms } => {
                h.clock.advance(Duration::from_millis(u64::from(*ms)));
                let now = h.now();
                let due = h.server.poll_timeout();
                h.tick();
                if let (Some(d), Some(next)) = (due, h.server.poll_timeout()) {
                    assert!(d > now || next > now, "deadline did not move past {now:?}");
                }
            }
            Step::Durable => h.make_durable_all(),
            Step::Snapshot { budget } => match snap.as_mut() {
                None => {
                    snap = Some((h.server.tree_dump(), Vec::new()));
                    h.server.begin_snapshot();
                }
                Some((want, out)) => {
                    let budget = usize::from(*budget) * 64;
                    if let SnapshotProgress::Done { .. } = h.server.snapshot_step(out, budget) {
                        let db = crate::storage::decode_snapshot(out)
                            .unwrap_or_else(|e| panic!("a fresh snapshot does not decode: {e}"));
                        assert!(
                            db.tree.dump() == *want,
                            "snapshot differs from the tree at its start"
                        );
                        snap = None;
                    }
                }
            },
        }
        h.drain();
    }
}

/// A whole tree, for comparisons.
type TreeDump = Vec<crate::tree::DumpedNode>;

/// Feeds `data` as the client side of one connection (for corpora recorded
/// from real clients), split at a few places, reporting durability as it
/// goes; invariants are checked at the end.
pub fn stream(data: &[u8]) {
    let Ok(h) = Harness::new(Config::default(), 1_600_000_000_000) else {
        return;
    };
    let mut h = h.with_durability(Durability::Manual);
    // Chunks may be single bytes: the tree is checked once, at the end.
    h.invariants_every_drain = false;
    let conn = h.accept();
    let step = 1 + data.first().copied().unwrap_or(0) as usize * 7;
    for chunk in data.chunks(step) {
        if h.live().len() == 0 {
            break;
        }
        h.send(conn, chunk);
        if h.last_appended() > h.durable() {
            h.make_durable_all();
            h.drain();
        }
    }
    if let Err(e) = h.server.check_invariants() {
        panic!("{e}");
    }
}

/// Decodes `data` as every kind of request record and as a handshake;
/// whatever decodes must re-encode to something that decodes the same.
pub fn jute(data: &[u8]) {
    use crate::proto::records::Request;
    if let Ok(c) = ConnectRequest::decode(data) {
        let f = c.encode_frame();
        assert_eq!(ConnectRequest::decode(&f[4..]).as_ref(), Ok(&c));
    }
    for op in (-11..=22).chain(100..=107) {
        let _ = Request::decode(op, data);
    }
    if let Ok(t) = crate::txn::Txn::decode(data) {
        assert_eq!(crate::txn::Txn::decode(&t.encode()).as_ref(), Ok(&t));
    }
}

/// Feeds `data` to a text-protocol connection in pieces, everything
/// appended reported durable as it comes; invariants are checked at the
/// end.
pub fn text(data: &[u8]) {
    let config = Config {
        max_buffer: 4096,
        ..Config::default()
    };
    let Ok(mut h) = Harness::new(config, 0) else {
        return;
    };
    // The tree is checked once, at the end.
    h.invariants_every_drain = false;
    let conn = h.accept();
    let mut bytes = b"SYNC:/\n".to_vec();
    bytes.extend_from_slice(data);
    for chunk in bytes.chunks(7) {
        h.send(conn, chunk);
    }
    if let Err(e) = h.server.check_invariants() {
        panic!("{e}");
    }
}

/// Reads `data` as a log segment and as a snapshot, and recovers from it.
pub fn storage(data: &[u8]) {
    if let Ok(scan) = crate::storage::scan_log(data) {
        // A scan stops where its records stop: never past the bytes.
        assert!(scan.valid_len <= data.len().max(crate::storage::LOG_HEADER_LEN));
    }
    let _ = crate::storage::is_unfinished_segment(data, 1);
    let _ = crate::storage::decode_snapshot(data);
    let now = Clock::new().now();
    if let Ok((server, _)) = Server::recover(Config::default(), now, 0, None, &[data]) {
        let _ = server.check_invariants();
    }
    if let Ok((server, _)) = Server::recover(Config::default(), now, 0, Some(data), &[]) {
        let _ = server.check_invariants();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A deterministic generator stands in for the fuzzer in `cargo test`.
    use crate::testing::Rng;

    fn random_steps(rng: &mut Rng, n: usize) -> Vec<Step> {
        (0..n)
            .map(|_| match rng.next_u64() % 12 {
                0 => Step::Accept,
                10 | 11 => Step::Snapshot {
                    budget: rng.byte() % 8,
                },
                1 => Step::Bytes {
                    conn: rng.byte(),
                    bytes: (0..rng.next_u64() % 40).map(|_| rng.byte()).collect(),
                },
                2 => Step::Connect {
                    conn: rng.byte(),
                    resume: (rng.next_u64() % 3 == 0).then(|| rng.byte()),
                    timeout: rng.next_u64() as u16,
                },
                3 => Step::PeerClosed { conn: rng.byte() },
                4 => Step::Advance {
                    ms: (rng.next_u64() % 5000) as u16,
                },
                5 => Step::Durable,
                _ => Step::Request {
                    conn: rng.byte(),
                    kind: rng.byte(),
                    path: rng.byte(),
                    arg: rng.byte() as i8,
                    data: (0..rng.next_u64() % 8).map(|_| rng.byte()).collect(),
                },
            })
            .collect()
    }

    #[test]
    fn protocol_invariants_hold_for_many_random_runs() {
        for seed in 1..300u64 {
            let mut rng = Rng::new(seed);
            let steps = random_steps(&mut rng, 200);
            let r = std::panic::catch_unwind(|| protocol(&steps));
            assert!(r.is_ok(), "seed {seed} broke an invariant");
        }
    }

    #[test]
    fn jute_text_and_storage_survive_random_bytes() {
        let mut rng = Rng::from_state(0xdead_beef);
        for _ in 0..2000 {
            let n = (rng.next_u64() % 200) as usize;
            let data: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            jute(&data);
            text(&data);
            storage(&data);
            stream(&data);
        }
    }
}
