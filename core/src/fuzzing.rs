//! Entry points for fuzzers and property tests. Each function takes
//! arbitrary input, drives the core, and panics only when an invariant is
//! broken (which is a bug). The `fuzz/` targets are one-line calls into
//! here; with the `arbitrary` feature the step types derive `Arbitrary`.
//!
//! Checked after every step of [`protocol`]: no panic; outputs name only
//! live connections and nothing follows a connection's Close; the deadline
//! moves forward once it has passed; the tree is consistent (parents list
//! their children, ephemerals are indexed and owned by open sessions).

use crate::proto::records::ConnectRequest;
use crate::{Config, ConnId, Input, Output, Server, SnapshotProgress};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

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

/// The drivers' epoch. Outcomes depend only on differences from it, so runs
/// stay deterministic; std offers no other way to make an `Instant`.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
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

/// Drives a server through `steps`, checking the invariants after each.
pub fn protocol(steps: &[Step]) {
    let mut now = epoch() + Duration::from_secs(1);
    let config = Config {
        container_check_interval: Duration::from_millis(500),
        extended_types: true,
        four_letter_words: vec!["*".into()],
        // SASL on, so sasl tokens reach the DIGEST-MD5 parser.
        sasl_users: Some(vec![("u".into(), "p".into())]),
        sasl_acl: true,
        ..Config::default()
    };
    let Ok(mut server) = Server::new(config, now, 1_600_000_000_000) else {
        return;
    };
    let mut live: Vec<ConnId> = Vec::new();
    let mut closed: BTreeSet<ConnId> = BTreeSet::new();
    let mut sessions: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut appended: Option<i64> = None;
    let mut xid = 0;
    // The tree when the snapshot under way started, and its bytes so far.
    let mut snap: Option<(TreeDump, Vec<u8>)> = None;
    let pick = |live: &[ConnId], i: u8| -> Option<ConnId> {
        (!live.is_empty()).then(|| live[i as usize % live.len()])
    };
    for step in steps.iter().take(400) {
        match step {
            Step::Accept => {
                if live.len() < 16 {
                    live.push(server.accept(now, None));
                }
            }
            Step::Bytes { conn, bytes } => {
                if let Some(c) = pick(&live, *conn) {
                    server.handle(now, Input::Received { conn: c, bytes });
                }
            }
            Step::Connect {
                conn,
                resume,
                timeout,
            } => {
                if let Some(c) = pick(&live, *conn) {
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
                    server.handle(
                        now,
                        Input::Received {
                            conn: c,
                            bytes: &req.encode_frame(),
                        },
                    );
                }
            }
            Step::Request {
                conn,
                kind,
                path,
                arg,
                data,
            } => {
                if let Some(c) = pick(&live, *conn) {
                    xid += 1;
                    let p = PATHS[*path as usize % PATHS.len()];
                    let f = request_frame(xid, *kind, p, *arg, &data[..data.len().min(64)]);
                    server.handle(now, Input::Received { conn: c, bytes: &f });
                }
            }
            Step::PeerClosed { conn } => {
                if let Some(c) = pick(&live, *conn) {
                    server.handle(now, Input::PeerClosed { conn: c });
                    live.retain(|x| *x != c);
                    closed.insert(c);
                }
            }
            Step::Advance { ms } => {
                now += Duration::from_millis(u64::from(*ms));
                let due = server.poll_timeout();
                server.handle(now, Input::Tick);
                drain(
                    &mut server,
                    &mut live,
                    &mut closed,
                    &mut appended,
                    &mut sessions,
                );
                if let (Some(d), Some(next)) = (due, server.poll_timeout()) {
                    assert!(d > now || next > now, "deadline did not move past {now:?}");
                }
            }
            Step::Durable => {
                if let Some(z) = appended.take() {
                    server.handle(now, Input::Durable { zxid: z });
                }
            }
            Step::Snapshot { budget } => match snap.as_mut() {
                None => {
                    snap = Some((server.tree_dump(), Vec::new()));
                    server.begin_snapshot();
                }
                Some((want, out)) => {
                    let budget = usize::from(*budget) * 64;
                    if let SnapshotProgress::Done { .. } = server.snapshot_step(out, budget) {
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
        drain(
            &mut server,
            &mut live,
            &mut closed,
            &mut appended,
            &mut sessions,
        );
        if let Err(e) = server.check_invariants() {
            panic!("invariant broken after {step:?}: {e}");
        }
    }
}

/// A whole tree, for comparisons.
type TreeDump = Vec<crate::tree::DumpedNode>;

/// Drains outputs, checking that they name live connections and nothing
/// follows a Close; learns session ids and passwords from connect replies.
fn drain(
    server: &mut Server,
    live: &mut Vec<ConnId>,
    closed: &mut BTreeSet<ConnId>,
    appended: &mut Option<i64>,
    sessions: &mut Vec<(i64, Vec<u8>)>,
) {
    for _ in 0..100_000 {
        let Some(out) = server.poll_output() else {
            return;
        };
        match out {
            Output::Transmit { conn, data } => {
                assert!(!closed.contains(&conn), "output after close on {conn:?}");
                assert!(live.contains(&conn), "output for unknown {conn:?}");
                // A connect response: 4-byte length 36 or 37, then fields.
                if data.len() == 41 && data[..4] == [0, 0, 0, 37] {
                    let mut id = [0u8; 8];
                    id.copy_from_slice(&data[12..20]);
                    let sid = i64::from_be_bytes(id);
                    if sid != 0 && sessions.len() < 64 {
                        sessions.push((sid, data[24..40].to_vec()));
                    }
                }
            }
            Output::Close { conn, .. } => {
                assert!(!closed.contains(&conn), "second close of {conn:?}");
                assert!(live.contains(&conn), "close of unknown {conn:?}");
                live.retain(|c| *c != conn);
                closed.insert(conn);
            }
            Output::Append { zxid, entry } => {
                assert!(appended.is_none_or(|z| zxid > z), "zxids go up");
                assert!(
                    crate::txn::Txn::decode(&entry).is_ok(),
                    "appended txn decodes"
                );
                *appended = Some(zxid);
            }
        }
    }
    panic!("outputs never ran dry");
}

/// Feeds `data` as the client side of one connection (for corpora recorded
/// from real clients), split at a few places, reporting durability as it
/// goes; invariants are checked at the end.
pub fn stream(data: &[u8]) {
    let now = epoch();
    let Ok(mut server) = Server::new(Config::default(), now, 1_600_000_000_000) else {
        return;
    };
    let conn = server.accept(now, None);
    let mut live = vec![conn];
    let mut closed = BTreeSet::new();
    let mut appended = None;
    let mut sessions = Vec::new();
    let step = 1 + data.first().copied().unwrap_or(0) as usize * 7;
    for chunk in data.chunks(step) {
        if live.is_empty() {
            break;
        }
        server.handle(now, Input::Received { conn, bytes: chunk });
        drain(
            &mut server,
            &mut live,
            &mut closed,
            &mut appended,
            &mut sessions,
        );
        if let Some(z) = appended.take() {
            server.handle(now, Input::Durable { zxid: z });
            drain(
                &mut server,
                &mut live,
                &mut closed,
                &mut appended,
                &mut sessions,
            );
        }
    }
    if let Err(e) = server.check_invariants() {
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

/// Feeds `data` to a text-protocol connection in pieces.
pub fn text(data: &[u8]) {
    let now = epoch();
    let Ok(mut server) = Server::new(
        Config {
            max_buffer: 4096,
            ..Config::default()
        },
        now,
        0,
    ) else {
        return;
    };
    let conn = server.accept(now, None);
    let mut bytes = b"SYNC:/\n".to_vec();
    bytes.extend_from_slice(data);
    for chunk in bytes.chunks(7) {
        server.handle(now, Input::Received { conn, bytes: chunk });
        loop {
            let mut durable = None;
            while let Some(o) = server.poll_output() {
                if let Output::Append { zxid, .. } = o {
                    durable = Some(zxid);
                }
            }
            match durable {
                Some(zxid) => server.handle(now, Input::Durable { zxid }),
                None => break,
            }
        }
    }
    if let Err(e) = server.check_invariants() {
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
    let now = epoch();
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

    /// A deterministic generator standing in for the fuzzer in `cargo test`.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn byte(&mut self) -> u8 {
            self.next() as u8
        }
    }

    fn random_steps(rng: &mut Rng, n: usize) -> Vec<Step> {
        (0..n)
            .map(|_| match rng.next() % 12 {
                0 => Step::Accept,
                10 | 11 => Step::Snapshot {
                    budget: rng.byte() % 8,
                },
                1 => Step::Bytes {
                    conn: rng.byte(),
                    bytes: (0..rng.next() % 40).map(|_| rng.byte()).collect(),
                },
                2 => Step::Connect {
                    conn: rng.byte(),
                    resume: (rng.next() % 3 == 0).then(|| rng.byte()),
                    timeout: rng.next() as u16,
                },
                3 => Step::PeerClosed { conn: rng.byte() },
                4 => Step::Advance {
                    ms: (rng.next() % 5000) as u16,
                },
                5 => Step::Durable,
                _ => Step::Request {
                    conn: rng.byte(),
                    kind: rng.byte(),
                    path: rng.byte(),
                    arg: rng.byte() as i8,
                    data: (0..rng.next() % 8).map(|_| rng.byte()).collect(),
                },
            })
            .collect()
    }

    #[test]
    fn protocol_invariants_hold_for_many_random_runs() {
        for seed in 1..300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let steps = random_steps(&mut rng, 200);
            let r = std::panic::catch_unwind(|| protocol(&steps));
            assert!(r.is_ok(), "seed {seed} broke an invariant");
        }
    }

    #[test]
    fn jute_text_and_storage_survive_random_bytes() {
        let mut rng = Rng(0xdead_beef);
        for _ in 0..2000 {
            let n = (rng.next() % 200) as usize;
            let data: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            jute(&data);
            text(&data);
            storage(&data);
            stream(&data);
        }
    }
}
