//! Op semantics driven through `Server` with bytes, as a client would.

use crate::proto::records::{decode_stat, encode_acls, op, Acl, ConnectRequest};
use crate::proto::{Reader, Writer};
use crate::testing::{Clock, Durability, Harness, Rng};
use crate::{CloseReason, Config, ConnId, Input, Server, Stat};
use std::time::Duration;

/// A scripted test world: a [`Harness`] (one server, a virtual clock, an
/// in-memory log that becomes durable at once or when the test says so,
/// the checks of every drain) with a ZooKeeper client's helpers on top.
struct World(Harness);

impl std::ops::Deref for World {
    type Target = Harness;
    fn deref(&self) -> &Harness {
        &self.0
    }
}

impl std::ops::DerefMut for World {
    fn deref_mut(&mut self) -> &mut Harness {
        &mut self.0
    }
}

impl World {
    fn new() -> Self {
        Self::with(Config::default())
    }

    fn with(config: Config) -> Self {
        Self(Harness::new(config, 1_000_000).unwrap())
    }

    fn connect(&mut self) -> Client {
        self.connect_as(0, vec![0; 16])
    }

    fn connect_as(&mut self, session: i64, passwd: Vec<u8>) -> Client {
        let conn = self.accept_from("127.0.0.1:5000".parse().unwrap());
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 4000,
            session_id: session,
            passwd,
            read_only: false,
        };
        self.send_raw(conn, &req.encode_frame());
        let body = self.frame(conn).expect("connect response");
        let mut r = Reader::new(&body);
        r.int("pv").unwrap();
        let timeout = r.int("to").unwrap();
        let session = r.long("sid").unwrap();
        let passwd = r.buffer("pw").unwrap().to_vec();
        Client {
            conn,
            session,
            passwd,
            timeout,
            xid: 0,
        }
    }

    fn send_raw(&mut self, conn: ConnId, bytes: &[u8]) {
        self.send(conn, bytes);
    }

    /// Sends a request and returns (err, body) of its reply; notifications
    /// that arrive first are returned in `events`.
    fn call(&mut self, c: &mut Client, opcode: i32, body: &[u8]) -> Reply {
        c.xid += 1;
        let xid = c.xid;
        self.send_frame(c, xid, opcode, body);
        self.reply_for(c, xid)
    }

    fn send_frame(&mut self, c: &Client, xid: i32, opcode: i32, body: &[u8]) {
        let mut w = Writer::frame();
        w.int(xid).int(opcode).raw(body);
        self.send_raw(c.conn, &w.finish_frame());
    }

    fn reply_for(&mut self, c: &Client, xid: i32) -> Reply {
        let mut events = Vec::new();
        loop {
            let f = self.frame(c.conn).expect("a reply");
            let mut r = Reader::new(&f);
            let rx = r.int("xid").unwrap();
            let zxid = r.long("zxid").unwrap();
            let err = r.int("err").unwrap();
            let rest = f[16..].to_vec();
            if rx == -1 {
                let mut r = Reader::new(&rest);
                let t = r.int("type").unwrap();
                let _state = r.int("state").unwrap();
                events.push((t, r.string("path").unwrap()));
                continue;
            }
            assert_eq!(rx, xid, "replies in order");
            return Reply {
                err,
                zxid,
                body: rest,
                events,
            };
        }
    }

    fn events(&mut self, c: &Client) -> Vec<(i32, String)> {
        let mut out = Vec::new();
        while let Some(f) = self.frame(c.conn) {
            let mut r = Reader::new(&f[16..]);
            out.push((r.int("t").unwrap(), {
                r.int("s").unwrap();
                r.string("p").unwrap()
            }));
        }
        out
    }

    /// Sends a four-letter word on a new connection; returns the answer.
    fn four_letter(&mut self, cmd: &str) -> String {
        let conn = self.accept();
        self.send_raw(conn, cmd.as_bytes());
        String::from_utf8(self.take_inbox(conn)).unwrap()
    }

    fn create(&mut self, c: &mut Client, path: &str, data: &[u8], flags: i32) -> Reply {
        self.call(c, op::CREATE, &create_body(path, data, flags))
    }
}

struct Client {
    conn: ConnId,
    session: i64,
    passwd: Vec<u8>,
    timeout: i32,
    xid: i32,
}

#[derive(Debug)]
struct Reply {
    err: i32,
    zxid: i64,
    body: Vec<u8>,
    events: Vec<(i32, String)>,
}

impl Reply {
    fn string(&self) -> String {
        Reader::new(&self.body).string("s").unwrap()
    }
    fn stat(&self) -> Stat {
        decode_stat(&mut Reader::new(&self.body)).unwrap()
    }
    fn data_and_stat(&self) -> (Vec<u8>, Stat) {
        let mut r = Reader::new(&self.body);
        let d = r.buffer("d").unwrap().to_vec();
        (d, decode_stat(&mut r).unwrap())
    }
    fn children(&self) -> Vec<String> {
        Reader::new(&self.body).strings("c").unwrap()
    }
}

fn create_body(path: &str, data: &[u8], flags: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).buffer(data);
    encode_acls(&mut w, &[Acl::open()]);
    w.int(flags);
    w.finish().to_vec()
}

fn path_watch(path: &str, watch: bool) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).boolean(watch);
    w.finish().to_vec()
}

fn path_version(path: &str, version: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).int(version);
    w.finish().to_vec()
}

fn set_body(path: &str, data: &[u8], version: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).buffer(data).int(version);
    w.finish().to_vec()
}

const NONODE: i32 = -101;
const NODEEXISTS: i32 = -110;
const BADVERSION: i32 = -103;
const NOTEMPTY: i32 = -111;
const NOCHILDRENFOREPHEMERALS: i32 = -108;
const BADARGUMENTS: i32 = -8;

#[test]
fn timeout_is_negotiated_within_2_and_20_ticks() {
    let mut w = World::new();
    let c = w.connect();
    assert_eq!(c.timeout, 4000);
    assert_ne!(c.session, 0);
    assert_eq!(c.passwd.len(), 16);
    let conn = w.accept();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 100_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: false,
    };
    w.send_raw(conn, &req.encode_frame());
    let body = w.frame(conn).unwrap();
    assert_eq!(body.len(), 36 + 1);
    assert_eq!(Reader::new(&body[4..]).int("t").unwrap(), 40_000);
}

#[test]
fn crud_and_stat_fields() {
    let mut w = World::new();
    let mut c = w.connect();
    let r = w.create(&mut c, "/a", b"hello", 0);
    assert_eq!(r.err, 0);
    assert_eq!(r.string(), "/a");
    let czxid = r.zxid;
    let r = w.call(&mut c, op::GET_DATA, &path_watch("/a", false));
    let (data, st) = r.data_and_stat();
    assert_eq!(data, b"hello");
    assert_eq!((st.czxid, st.mzxid, st.pzxid), (czxid, czxid, czxid));
    assert_eq!((st.version, st.cversion, st.aversion), (0, 0, 0));
    assert_eq!(
        (st.data_length, st.num_children, st.ephemeral_owner),
        (5, 0, 0)
    );
    assert_eq!(st.ctime, 1_000_000);

    w.clock.advance(Duration::from_millis(10));
    let r = w.call(&mut c, op::SET_DATA, &set_body("/a", b"x", 0));
    assert_eq!(r.err, 0);
    let st = r.stat();
    assert_eq!((st.version, st.mzxid, st.data_length), (1, r.zxid, 1));
    assert_eq!(st.mtime, 1_000_010);
    assert_eq!(
        w.call(&mut c, op::SET_DATA, &set_body("/a", b"y", 0)).err,
        BADVERSION
    );

    let r = w.create(&mut c, "/a/b", b"", 0);
    let st = w.call(&mut c, op::EXISTS, &path_watch("/a", false)).stat();
    assert_eq!((st.cversion, st.num_children, st.pzxid), (1, 1, r.zxid));
    assert_eq!(w.create(&mut c, "/a", b"", 0).err, NODEEXISTS);
    assert_eq!(w.create(&mut c, "/x/y", b"", 0).err, NONODE);
    assert_eq!(w.create(&mut c, "x", b"", 0).err, BADARGUMENTS);
    assert_eq!(
        w.call(&mut c, op::DELETE, &path_version("/a", -1)).err,
        NOTEMPTY
    );
    assert_eq!(
        w.call(&mut c, op::DELETE, &path_version("/a/b", 3)).err,
        BADVERSION
    );
    let d = w.call(&mut c, op::DELETE, &path_version("/a/b", 0));
    assert_eq!(d.err, 0);
    let st = w.call(&mut c, op::EXISTS, &path_watch("/a", false)).stat();
    // Reported cversion counts creates and deletes (2 × creates − children).
    assert_eq!((st.cversion, st.num_children, st.pzxid), (2, 0, d.zxid));
    assert_eq!(
        w.call(&mut c, op::EXISTS, &path_watch("/a/b", false)).err,
        NONODE
    );
    assert_eq!(
        w.call(&mut c, op::DELETE, &path_version("/zookeeper", -1))
            .err,
        BADARGUMENTS
    );

    let r = w.call(&mut c, op::GET_CHILDREN, &path_watch("/", false));
    let mut ch = r.children();
    ch.sort();
    assert_eq!(ch, vec!["a", "zookeeper"]);
}

#[test]
fn failed_writes_consume_a_zxid() {
    let mut w = World::new();
    let mut c = w.connect();
    let a = w.create(&mut c, "/a", b"", 0).zxid;
    let b = w.create(&mut c, "/a", b"", 0);
    assert_eq!(b.err, NODEEXISTS);
    assert_eq!(b.zxid, a + 1);
    let r = w.call(&mut c, op::GET_DATA, &path_watch("/a", false));
    assert_eq!(r.zxid, a + 1, "reads report the last zxid");
}

#[test]
fn sequential_names_come_from_parent_cversion() {
    let mut w = World::new();
    let mut c = w.connect();
    w.create(&mut c, "/q", b"", 0);
    assert_eq!(
        w.create(&mut c, "/q/n-", b"", 2).string(),
        "/q/n-0000000000"
    );
    w.create(&mut c, "/q/plain", b"", 0);
    assert_eq!(
        w.create(&mut c, "/q/n-", b"", 2).string(),
        "/q/n-0000000002"
    );
    w.call(&mut c, op::DELETE, &path_version("/q/plain", -1));
    // The suffix counts creates only (ZooKeeper's stored cversion).
    assert_eq!(
        w.create(&mut c, "/q/n-", b"", 3).string(),
        "/q/n-0000000003"
    );
}

#[test]
fn ephemerals_go_with_their_session_close() {
    let mut w = World::new();
    let mut a = w.connect();
    let mut b = w.connect();
    let r = w.create(&mut a, "/e", b"", 1);
    assert_eq!(r.err, 0);
    let st = w.call(&mut b, op::EXISTS, &path_watch("/e", true)).stat();
    assert_eq!(st.ephemeral_owner, a.session);
    assert_eq!(
        w.create(&mut a, "/e/child", b"", 0).err,
        NOCHILDRENFOREPHEMERALS
    );
    let r = w.call(&mut a, op::CLOSE_SESSION, &[]);
    assert_eq!(r.err, 0);
    assert!(w
        .closes()
        .iter()
        .any(|(c, r)| *c == a.conn && *r == CloseReason::SessionClosed));
    assert_eq!(w.events(&b), vec![(2, "/e".to_string())]);
    assert_eq!(
        w.call(&mut b, op::EXISTS, &path_watch("/e", false)).err,
        NONODE
    );
}

#[test]
fn sessions_expire_without_pings_and_survive_with_them() {
    let mut w = World::new();
    let mut a = w.connect();
    let mut b = w.connect();
    w.create(&mut a, "/gone", b"", 1);
    w.create(&mut b, "/kept", b"", 1);
    // a's socket vanishes; b keeps pinging every second.
    w.peer_closed(a.conn);
    for _ in 0..8 {
        w.advance(Duration::from_millis(1000));
        // Clients ping with xid -2; the reply carries -2 too.
        w.send_frame(&b, -2, op::PING, &[]);
        assert_eq!(w.reply_for(&b, -2).err, 0);
    }
    assert_eq!(
        w.call(&mut b, op::EXISTS, &path_watch("/gone", false)).err,
        NONODE
    );
    assert_eq!(
        w.call(&mut b, op::EXISTS, &path_watch("/kept", false)).err,
        0
    );
    // The expired session cannot be resumed.
    let conn = w.accept();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 4000,
        session_id: a.session,
        passwd: a.passwd.clone(),
        read_only: false,
    };
    w.send_raw(conn, &req.encode_frame());
    let body = w.frame(conn).unwrap();
    let mut r = Reader::new(&body);
    r.int("pv").unwrap();
    assert_eq!(r.int("timeout").unwrap(), 0);
    assert_eq!(r.long("session").unwrap(), 0);
    assert!(w.closes().iter().any(|(c, _)| *c == conn));
}

#[test]
fn deadline_moves_forward_after_tick() {
    let mut w = World::new();
    let _a = w.connect();
    let d = w.server.poll_timeout().unwrap();
    w.clock.advance_to(d);
    w.tick();
    if let Some(next) = w.server.poll_timeout() {
        assert!(next > d);
    }
}

#[test]
fn reconnect_with_password_keeps_session_and_closes_old_connection() {
    let mut w = World::new();
    let mut a = w.connect();
    w.create(&mut a, "/mine", b"", 1);
    let mut a2 = w.connect_as(a.session, a.passwd.clone());
    assert_eq!(a2.session, a.session);
    assert!(w
        .closes()
        .iter()
        .any(|(c, r)| *c == a.conn && *r == CloseReason::SessionMoved));
    let st = w
        .call(&mut a2, op::EXISTS, &path_watch("/mine", false))
        .stat();
    assert_eq!(st.ephemeral_owner, a.session);
    // A wrong password is refused like an expired session.
    let bad = w.connect_as(a.session, vec![9; 16]);
    assert_eq!(bad.session, 0);
    assert_eq!(bad.timeout, 0);
}

#[test]
fn client_ahead_of_server_is_refused() {
    let mut w = World::new();
    let conn = w.accept();
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 1_000,
        timeout: 4000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: false,
    };
    w.send_raw(conn, &req.encode_frame());
    assert!(matches!(w.closes()[0].1, CloseReason::ClientAhead { .. }));
    assert!(w.frame(conn).is_none());
}

#[test]
fn every_watch_type_fires_once_in_order() {
    let mut w = World::new();
    let mut a = w.connect();
    let mut b = w.connect();
    // exists watch on a missing node → NodeCreated.
    assert_eq!(
        w.call(&mut b, op::EXISTS, &path_watch("/w", true)).err,
        NONODE
    );
    // getChildren watch on / → NodeChildrenChanged.
    w.call(&mut b, op::GET_CHILDREN, &path_watch("/", true));
    let r = w.create(&mut a, "/w", b"", 0);
    assert_eq!(r.err, 0);
    assert_eq!(
        w.events(&b),
        vec![(1, "/w".to_string()), (4, "/".to_string())]
    );
    // data watch → NodeDataChanged, once.
    w.call(&mut b, op::GET_DATA, &path_watch("/w", true));
    w.call(&mut a, op::SET_DATA, &set_body("/w", b"1", -1));
    w.call(&mut a, op::SET_DATA, &set_body("/w", b"2", -1));
    assert_eq!(w.events(&b), vec![(3, "/w".to_string())]);
    // data + child watch on the same node → one NodeDeleted.
    w.call(&mut b, op::GET_DATA, &path_watch("/w", true));
    w.call(&mut b, op::GET_CHILDREN, &path_watch("/w", true));
    w.call(&mut a, op::DELETE, &path_version("/w", -1));
    assert_eq!(w.events(&b), vec![(2, "/w".to_string())]);
    // The session that makes a change sees the notification before the reply.
    w.call(&mut a, op::EXISTS, &path_watch("/w", true));
    let r = w.create(&mut a, "/w", b"", 0);
    assert_eq!(r.events, vec![(1, "/w".to_string())]);
}

#[test]
fn set_watches_fires_missed_changes() {
    let mut w = World::new();
    let mut a = w.connect();
    let mut b = w.connect();
    w.create(&mut a, "/d", b"", 0);
    let seen = w.call(&mut a, op::SYNC, &path_watch("/", false)).zxid;
    w.call(&mut a, op::SET_DATA, &set_body("/d", b"1", -1));
    w.create(&mut a, "/new", b"", 0);
    let mut body = Writer::new();
    body.long(seen)
        .strings(&["/d", "/missing"])
        .strings(&["/new", "/nothere"])
        .strings(&["/d"]);
    w.send_frame(&b, -8, op::SET_WATCHES, &body.finish());
    let r = w.reply_for(&b, -8);
    assert_eq!(r.err, 0);
    assert_eq!(
        r.events,
        vec![
            (3, "/d".to_string()),
            (2, "/missing".to_string()),
            (1, "/new".to_string())
        ]
    );
    // The re-armed exist watch fires later.
    w.create(&mut a, "/nothere", b"", 0);
    assert_eq!(w.events(&b), vec![(1, "/nothere".to_string())]);
    let _ = &mut b;
}

fn multi_body(ops: &[(i32, Vec<u8>)]) -> Vec<u8> {
    let mut w = Writer::new();
    for (t, body) in ops {
        w.int(*t).boolean(false).int(-1).raw(body);
    }
    w.int(-1).boolean(true).int(-1);
    w.finish().to_vec()
}

/// (type, err) of each multi result.
fn multi_results(body: &[u8]) -> Vec<(i32, i32)> {
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    loop {
        let t = r.int("t").unwrap();
        let done = r.boolean("d").unwrap();
        let err = r.int("e").unwrap();
        if done {
            return out;
        }
        match t {
            -1 => {
                r.int("err").unwrap();
            }
            1 => {
                r.string("p").unwrap();
            }
            15 => {
                r.string("p").unwrap();
                decode_stat(&mut r).unwrap();
            }
            5 => {
                decode_stat(&mut r).unwrap();
            }
            _ => {}
        }
        out.push((t, err));
    }
}

#[test]
fn multi_is_all_or_nothing_with_zookeeper_results() {
    let mut w = World::new();
    let mut c = w.connect();
    let ok = multi_body(&[
        (op::CREATE, create_body("/m", b"", 0)),
        (op::CREATE2, create_body("/m/c", b"", 0)),
        (op::SET_DATA, set_body("/m", b"v", 0)),
        (op::CHECK, path_version("/m", 1)),
        (op::DELETE, path_version("/m/c", 0)),
    ]);
    let r = w.call(&mut c, op::MULTI, &ok);
    assert_eq!(r.err, 0);
    assert_eq!(
        multi_results(&r.body),
        vec![(1, 0), (15, 0), (5, 0), (13, 0), (2, 0)]
    );
    let bad = multi_body(&[
        (op::CREATE, create_body("/n", b"", 0)),
        (op::CHECK, path_version("/m", 7)),
        (op::CREATE, create_body("/o", b"", 0)),
    ]);
    let r = w.call(&mut c, op::MULTI, &bad);
    assert_eq!(r.err, 0);
    assert_eq!(
        multi_results(&r.body),
        vec![(-1, 0), (-1, BADVERSION), (-1, -2)]
    );
    assert_eq!(
        w.call(&mut c, op::EXISTS, &path_watch("/n", false)).err,
        NONODE
    );
    let r = w.call(&mut c, op::MULTI, &multi_body(&[]));
    assert_eq!((r.err, multi_results(&r.body)), (0, vec![]));
}

/// The gate is per session: a write and everything its session sent after
/// it wait for the write to commit (read-your-writes, FIFO), while a read of
/// another session is answered at once from committed state, which never
/// holds an undurable write.
#[test]
fn a_read_waits_only_for_its_own_sessions_writes() {
    let mut w = World::new();
    let mut a = w.connect();
    let mut b = w.connect();
    w.durability = Durability::Manual;
    a.xid += 1;
    let create = a.xid;
    w.send_frame(&a, create, op::CREATE, &create_body("/d", b"", 0));
    a.xid += 1;
    let own_read = a.xid;
    w.send_frame(&a, own_read, op::EXISTS, &path_watch("/d", false));
    b.xid += 1;
    w.send_frame(&b, b.xid, op::EXISTS, &path_watch("/d", false));
    assert!(w.frame(a.conn).is_none(), "a's replies wait for its write");
    let rb = w.reply_for(&b, b.xid);
    assert_eq!(rb.err, NONODE, "b sees committed state only, at once");
    assert_eq!(rb.zxid, w.server.committed_zxid().0);
    // A write that depends on the one in flight validates against it.
    b.xid += 1;
    let child = b.xid;
    w.send_frame(&b, child, op::CREATE, &create_body("/d/e", b"", 0));
    assert_eq!(w.undurable().len(), 2);
    assert!(w.frame(b.conn).is_none());
    w.make_durable_all();
    w.drain();
    let ra = w.reply_for(&a, create);
    assert_eq!(ra.err, 0);
    let rr = w.reply_for(&a, own_read);
    assert_eq!(rr.err, 0, "a reads its own write");
    assert_eq!(rr.zxid, ra.zxid, "answered in the state that write left");
    assert_eq!(w.reply_for(&b, child).err, 0);
    assert_eq!(
        w.call(&mut b, op::EXISTS, &path_watch("/d/e", false)).err,
        0
    );
}

/// Durability reported for a prefix of the log commits exactly that prefix:
/// the first write is answered (and a read of another session sees it), the
/// second is neither answered nor visible until its own report.
#[test]
fn a_durable_prefix_commits_only_that_prefix() {
    let mut w = World::new();
    let mut a = w.connect();
    let mut b = w.connect();
    w.durability = Durability::Manual;
    let before = w.last_appended();
    a.xid += 1;
    w.send_frame(&a, a.xid, op::CREATE, &create_body("/one", b"", 0));
    a.xid += 1;
    w.send_frame(&a, a.xid, op::CREATE, &create_body("/two", b"", 0));
    assert_eq!(w.last_appended(), before + 2);
    w.make_durable(before + 1);
    w.drain();
    let r1 = w.reply_for(&a, a.xid - 1);
    assert_eq!((r1.err, r1.zxid), (0, before + 1));
    assert!(w.frame(a.conn).is_none(), "the second write is not durable");
    assert_eq!(w.server.committed_zxid().0, before + 1);
    assert_eq!(
        w.call(&mut b, op::EXISTS, &path_watch("/one", false)).err,
        0
    );
    assert_eq!(
        w.call(&mut b, op::EXISTS, &path_watch("/two", false)).err,
        NONODE
    );
    w.make_durable(before + 2);
    w.drain();
    assert_eq!(w.reply_for(&a, a.xid).zxid, before + 2);
    assert_eq!(
        w.call(&mut b, op::EXISTS, &path_watch("/two", false)).err,
        0
    );
}

/// Writes are validated against the writes still in flight (ZooKeeper's
/// outstanding changes): a create, a child under it, a sequential child,
/// a setData with the version the create gives and a delete of the child,
/// all pipelined before any is durable, all succeed; a delete of a node
/// with a child on its way fails NOTEMPTY.
#[test]
fn a_pipeline_validates_against_the_writes_in_flight() {
    let mut w = World::new();
    let mut a = w.connect();
    w.durability = Durability::Manual;
    let ops: Vec<(i32, Vec<u8>)> = vec![
        (op::CREATE, create_body("/p", b"", 0)),
        (op::CREATE, create_body("/p/c", b"", 0)),
        (op::CREATE, create_body("/p/s-", b"", 2)),
        (op::SET_DATA, set_body("/p", b"x", 0)),
        (op::DELETE, path_version("/p", -1)),
        (op::DELETE, path_version("/p/c", 0)),
        (op::CREATE, create_body("/p/c", b"", 0)),
    ];
    let mut xids = Vec::new();
    for (opcode, body) in &ops {
        a.xid += 1;
        xids.push(a.xid);
        w.send_frame(&a, a.xid, *opcode, body);
    }
    assert_eq!(w.undurable().len(), ops.len(), "all ordered, none durable");
    assert!(w.frame(a.conn).is_none());
    assert_eq!(
        w.server.committed_zxid().0 + ops.len() as i64,
        w.server.last_zxid().0
    );
    w.make_durable_all();
    w.drain();
    let errs: Vec<i32> = xids.iter().map(|&x| w.reply_for(&a, x).err).collect();
    assert_eq!(errs, vec![0, 0, 0, 0, -111, 0, 0]);
    let r = w.call(&mut a, op::GET_CHILDREN, &path_watch("/p", false));
    assert_eq!(r.err, 0);
}

/// A closeSession counts the session's ephemerals as gone for the writes
/// behind it, including one whose create is still in flight.
#[test]
fn close_session_sees_the_ephemerals_in_flight() {
    let mut w = World::new();
    let mut a = w.connect();
    let mut b = w.connect();
    assert_eq!(w.create(&mut a, "/e1", b"", 1).err, 0);
    w.durability = Durability::Manual;
    a.xid += 1;
    w.send_frame(&a, a.xid, op::CREATE, &create_body("/e2", b"", 1));
    a.xid += 1;
    w.send_frame(&a, a.xid, op::CLOSE_SESSION, &[]);
    for (i, path) in ["/e1", "/e2"].into_iter().enumerate() {
        b.xid += 1;
        w.send_frame(&b, 100 + i as i32, op::CREATE, &create_body(path, b"", 0));
    }
    w.make_durable_all();
    w.drain();
    assert_eq!(w.reply_for(&b, 100).err, 0, "/e1 was gone for b's create");
    assert_eq!(w.reply_for(&b, 101).err, 0, "/e2 too, though in flight");
    let r = w.call(&mut b, op::GET_DATA, &path_watch("/e2", false));
    assert_eq!(r.err, 0);
}

#[test]
fn bad_frames_close_only_their_connection() {
    let mut w = World::new();
    let mut good = w.connect();
    let huge = w.accept();
    w.send_raw(huge, &0x8000_0000u32.to_be_bytes());
    let neg = w.accept();
    w.send_raw(neg, &[0xff, 0xff, 0xff, 0xfe, 1, 2]);
    let garbage = w.accept();
    w.send_raw(garbage, &[0, 0, 0, 3, 1, 2, 3]);
    let mut short = w.connect();
    w.send_raw(short.conn, &[0, 0, 0, 2, 0, 0]);
    let reasons: Vec<_> = w.closes().iter().map(|c| c.0).collect();
    assert_eq!(reasons, vec![huge, neg, garbage, short.conn]);
    assert!(matches!(w.closes()[0].1, CloseReason::FrameTooLarge { .. }));
    assert_eq!(w.create(&mut good, "/still", b"", 0).err, 0);
    let _ = &mut short;
    // A truncated body is a MARSHALLINGERROR reply, as ZooKeeper answers.
    let r = w.call(&mut good, op::GET_DATA, &[0, 0]);
    assert_eq!(r.err, -5);
    // Random bytes in any chunking never panic and leave the tree sound.
    let mut rng = Rng::from_state(0x1234_5678);
    for i in 0..200 {
        let c = w.accept();
        let mut bytes = vec![0u8; 200 + i * 7];
        for b in &mut bytes {
            *b = rng.byte();
        }
        if i % 2 == 0 {
            bytes[..4].copy_from_slice(&40u32.to_be_bytes());
        }
        for chunk in bytes.chunks(1 + i % 13) {
            w.send_raw(c, chunk);
        }
    }
    assert_eq!(w.create(&mut good, "/after", b"", 0).err, 0);
}

#[test]
fn unknown_opcode_is_unimplemented_and_closes() {
    let mut w = World::new();
    let mut c = w.connect();
    let r = w.call(&mut c, 99, &[]);
    assert_eq!((r.err, r.zxid), (-6, -1));
    assert!(w.closes().iter().any(|x| x.0 == c.conn));
}

#[test]
fn four_letter_words_answer_and_close() {
    let cfg = Config {
        four_letter_words: vec!["ruok".into(), "mntr".into()],
        ..Config::default()
    };
    let mut w = World::with(cfg);
    for (cmd, want) in [
        ("ruok", "imok"),
        (
            "srvr",
            "srvr is not executed because it is not in the whitelist.\n",
        ),
    ] {
        let c = w.accept();
        w.send_raw(c, cmd.as_bytes());
        assert_eq!(w.take_inbox(c), want.as_bytes());
        assert_eq!(w.closes().last().unwrap().0, c);
    }
    let text = w.four_letter("mntr");
    // Four znodes; ZooKeeper counts its root twice, and so do we.
    assert!(text.contains("zk_znode_count\t5\n"), "{text}");
    assert!(text.contains("zk_avg_latency\t0.0\n"), "{text}");
}

#[test]
fn latency_averages_print_as_java_doubles() {
    assert_eq!(crate::fourlw::java_avg(0.0), "0.0");
    assert_eq!(crate::fourlw::java_avg(2.0), "2.0");
    assert_eq!(crate::fourlw::java_avg(2.27034), "2.2703");
    assert_eq!(crate::fourlw::java_avg(12.5), "12.5");
    assert_eq!(crate::fourlw::java_avg(1.0 / 3.0), "0.3333");
}

#[test]
fn too_many_connections_from_one_address() {
    let cfg = Config {
        max_client_cnxns: 2,
        ..Config::default()
    };
    let mut w = World::with(cfg);
    let peer = "10.1.2.3:1".parse().unwrap();
    let a = w.accept_from(peer);
    let _b = w.accept_from(peer);
    let c = w.accept_from(peer);
    w.drain();
    assert_eq!(w.closes().len(), 1);
    assert_eq!(w.closes()[0].0, c);
    w.handle(Input::PeerClosed { conn: a });
    let d = w.accept_from(peer);
    w.drain();
    assert_eq!(w.closes().len(), 1, "a slot was freed for {d:?}");
}

#[test]
fn digest_ids_match_zookeeper() {
    // Checked against ZooKeeper's DigestAuthenticationProvider.
    assert_eq!(
        crate::server::digest_id(b"bob:secret"),
        "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="
    );
}

#[test]
fn get_acl_returns_stored_acl() {
    let mut w = World::new();
    let mut c = w.connect();
    let r = w.call(
        &mut c,
        op::GET_ACL,
        &path_watch("/zookeeper/config", false)[..4 + 17],
    );
    assert_eq!(r.err, 0);
    let mut rd = Reader::new(&r.body);
    assert_eq!(rd.int("n").unwrap(), 1);
    assert_eq!(rd.int("perms").unwrap(), 1);
    assert_eq!(rd.string("scheme").unwrap(), "world");
}

fn auth_body(scheme: &str, cred: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.int(0).string(scheme).buffer(cred);
    w.finish().to_vec()
}

fn create_with_acl(path: &str, acl: &[Acl]) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).buffer(b"secret");
    encode_acls(&mut w, acl);
    w.int(0);
    w.finish().to_vec()
}

#[test]
fn acls_are_enforced_with_digest_auth() {
    use crate::proto::records::Id;
    let mut w = World::with(Config {
        super_digest: Some(crate::server::digest_id(b"super:pw")),
        ..Config::default()
    });
    let mut bob = w.connect();
    let mut eve = w.connect();
    w.send_frame(&bob, -4, op::AUTH, &auth_body("digest", b"bob:secret"));
    assert_eq!(w.reply_for(&bob, -4).err, 0);
    let bob_acl = Acl {
        perms: 31,
        id: Id {
            scheme: "digest".into(),
            id: "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=".into(),
        },
    };
    let r = w.call(&mut bob, op::CREATE, &create_with_acl("/p", &[bob_acl]));
    assert_eq!(r.err, 0);
    assert_eq!(
        w.call(&mut bob, op::GET_DATA, &path_watch("/p", false)).err,
        0
    );
    assert_eq!(
        w.call(&mut eve, op::GET_DATA, &path_watch("/p", false)).err,
        -102
    );
    assert_eq!(
        w.call(&mut eve, op::SET_DATA, &set_body("/p", b"x", -1))
            .err,
        -102
    );
    assert_eq!(w.create(&mut eve, "/p/c", b"", 0).err, -102);
    assert_eq!(
        w.call(&mut eve, op::GET_ACL, &path_watch("/p", false)[..6])
            .err,
        -102
    );
    // The "auth" scheme needs an authenticated id.
    let auth_acl = Acl {
        perms: 31,
        id: Id {
            scheme: "auth".into(),
            id: String::new(),
        },
    };
    let r = w.call(
        &mut eve,
        op::CREATE,
        &create_with_acl("/q", std::slice::from_ref(&auth_acl)),
    );
    assert_eq!(r.err, -114);
    assert_eq!(
        w.call(&mut bob, op::CREATE, &create_with_acl("/q", &[auth_acl]))
            .err,
        0
    );
    // The super digest bypasses ACLs.
    w.send_frame(&eve, -4, op::AUTH, &auth_body("digest", b"super:pw"));
    assert_eq!(w.reply_for(&eve, -4).err, 0);
    assert_eq!(
        w.call(&mut eve, op::GET_DATA, &path_watch("/p", false)).err,
        0
    );
    // An unknown scheme fails authentication and ends the connection.
    w.send_frame(&eve, -4, op::AUTH, &auth_body("kerberos", b"x"));
    assert_eq!(w.reply_for(&eve, -4).err, -115);
    assert!(w.closes().iter().any(|c| c.0 == eve.conn));
}

impl World {
    /// Sends text and returns the reply lines received since.
    fn text(&mut self, conn: ConnId, s: &str) -> Vec<String> {
        self.send_raw(conn, s.as_bytes());
        let buf = self.take_inbox(conn);
        String::from_utf8(buf)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn text_protocol_line_by_line() {
    let mut w = World::new();
    let t = w.accept();
    assert_eq!(w.text(t, "CREATE:/yolo\n"), vec!["true:Connected", "true"]);
    assert_eq!(w.text(t, "CREATE:/yolo\n"), vec!["false:NodeExists"]);
    assert_eq!(w.text(t, "SET:/yolo:swag:1\r\n"), vec!["true"]);
    assert_eq!(w.text(t, "GET:/yolo\n"), vec!["true:swag:1"]);
    for c in ["zz", "b", "a"] {
        assert_eq!(w.text(t, &format!("CREATE:/yolo/{c}\n")), vec!["true"]);
    }
    // Creation order, not ZooKeeper's hash order.
    assert_eq!(w.text(t, "CHILDREN:/yolo\n"), vec!["true:zz,b,a"]);
    assert_eq!(w.text(t, "EXISTS:/nope\n"), vec!["false:NoNode"]);
    assert_eq!(w.text(t, "DELETE:/yolo\n"), vec!["false:NotEmpty"]);
    assert_eq!(
        w.text(t, "SCREATE:/yolo/s-\n"),
        vec!["true:/yolo/s-0000000003"]
    );
    assert_eq!(w.text(t, "BOGUS\n"), vec!["false:UnknownCommand"]);
    assert_eq!(w.text(t, "GET:relative\n"), vec!["false:NoNode"]);
    assert!(w.text(t, "HELP\n")[0].starts_with("true:commands"));
    // Two commands in one chunk, one reply each, in order.
    assert_eq!(w.text(t, "EXISTS:/yolo\nSTAT:/yolo/a\n").len(), 2,);
    assert!(w.closes().is_empty(), "bad lines never drop the connection");
}

#[test]
fn text_ephemerals_and_events_interoperate_with_binary() {
    let mut w = World::new();
    let mut bin = w.connect();
    let t = w.accept();
    assert_eq!(w.text(t, "ECREATE:/e:x\n"), vec!["true:Connected", "true"]);
    w.create(&mut bin, "/b", b"", 0);
    assert_eq!(w.text(t, "WATCH:/b\n"), vec!["true"]);
    w.call(&mut bin, op::SET_DATA, &set_body("/b", b"new", -1));
    assert_eq!(w.text(t, ""), vec!["EVENT:NodeDataChanged:/b"]);
    // The binary client sees the text client's ephemeral, then its removal
    // when the telnet connection closes.
    let st = w.call(&mut bin, op::EXISTS, &path_watch("/e", true)).stat();
    assert_ne!(st.ephemeral_owner, 0);
    w.peer_closed(t);
    assert_eq!(w.events(&bin), vec![(2, "/e".to_string())]);
}

#[test]
fn text_lines_are_bounded() {
    let mut w = World::with(Config {
        text_max_line: 2048,
        ..Config::default()
    });
    let t = w.accept();
    w.text(t, "EXISTS:/\n");
    let long = "SET:/x:".to_string() + &"a".repeat(5000);
    assert_eq!(w.text(t, &long), vec!["false:LineTooLong"]);
    assert_eq!(w.text(t, "aaaa\nEXISTS:/\n"), vec!["true"]);
    // A too-long line that arrives whole, newline included.
    let whole = "SET:/x:".to_string() + &"b".repeat(3000) + "\nEXISTS:/\n";
    assert_eq!(w.text(t, &whole), vec!["false:LineTooLong", "true"]);
    assert!(w.closes().is_empty());
}

/// The default text line limit is far below jute.maxbuffer (1 MB).
#[test]
fn text_line_limit_defaults_to_8k() {
    let mut w = World::new();
    let t = w.accept();
    w.text(t, "EXISTS:/\n");
    let ok = "CREATE:/x:".to_string() + &"a".repeat(8000) + "\n";
    assert_eq!(w.text(t, &ok), vec!["true"]);
    let long = "SET:/x:".to_string() + &"a".repeat(9000) + "\n";
    assert_eq!(w.text(t, &long), vec!["false:LineTooLong"]);
}

/// A line sent one byte per segment: the newline search looks at each byte
/// once, not the whole buffered line again for every byte (that was
/// quadratic: 20 slow connections pinned a core).
#[test]
fn text_line_scan_is_linear_in_the_input() {
    let mut w = World::new();
    let t = w.accept();
    w.text(t, "EXISTS:/\n");
    let before = w.server.text_bytes_scanned;
    let line = "CREATE:/slow:".to_string() + &"z".repeat(7000) + "\n";
    for b in line.as_bytes() {
        w.send_raw(t, std::slice::from_ref(b));
    }
    let scanned = w.server.text_bytes_scanned - before;
    assert!(
        scanned <= 2 * line.len() as u64,
        "{scanned} bytes scanned for a {}-byte line",
        line.len()
    );
    assert_eq!(w.text(t, "EXISTS:/slow\n"), vec!["true", "true"]);
}

/// `textOnClientPort=false`: text bytes on the client port close the
/// connection with a reason naming the setting; binary clients still work.
#[test]
fn text_dialect_can_be_turned_off_on_the_client_port() {
    let mut w = World::with(Config {
        text_on_client_port: false,
        ..Config::default()
    });
    let t = w.accept();
    assert!(w.text(t, "CREATE:/yolo\n").is_empty());
    assert_eq!(
        w.closes().iter().find(|c| c.0 == t).map(|c| c.1.clone()),
        Some(CloseReason::TextDisabled)
    );
    let mut c = w.connect();
    assert_eq!(w.create(&mut c, "/bin", b"", 0).err, 0);
    // The text port itself still serves text.
    let tp = w.accept_text();
    assert_eq!(w.text(tp, "EXISTS:/bin\n"), vec!["true:Connected", "true"]);
}

/// Requests pipelined behind a closeSession are answered SESSIONEXPIRED (as
/// ZooKeeper answers them), then the connection closes.
#[test]
fn requests_after_close_session_get_session_expired() {
    let mut w = World::new();
    let c = w.connect();
    let mut bytes = Vec::new();
    for (xid, opcode, body) in [
        (1, op::CLOSE_SESSION, Vec::new()),
        (2, op::EXISTS, path_watch("/", false)),
        (3, op::CREATE, create_body("/after", b"", 0)),
    ] {
        let mut f = Writer::frame();
        f.int(xid).int(opcode).raw(&body);
        bytes.extend_from_slice(&f.finish_frame());
    }
    w.send_raw(c.conn, &bytes);
    let close = w.reply_for(&c, 1);
    assert_eq!(close.err, 0);
    for xid in [2, 3] {
        let r = w.reply_for(&c, xid);
        assert_eq!(r.err, -112, "xid {xid}");
        assert_eq!(r.zxid, close.zxid);
    }
    assert!(w.closes().iter().any(|x| x.0 == c.conn));
    let mut d = w.connect();
    assert_eq!(
        w.call(&mut d, op::EXISTS, &path_watch("/after", false)).err,
        NONODE
    );
}

/// Session passwords are HMAC-SHA1(secret, id) cut to 16 bytes: nobody
/// without the secret computes one, ZooKeeper's constant-derived password is
/// refused, and another secret gives other passwords.
#[test]
fn session_passwords_are_keyed_by_the_secret() {
    let mut w = World::new();
    // RFC 2104 HMAC-SHA1 under the default (test) secret, from Python's hmac.
    assert_eq!(
        &crate::server::hmac_sha1(
            &Config::default().secret,
            &0x0123_4567_89ab_cdef_i64.to_be_bytes()
        )[..16],
        &[
            0xcd, 0xe7, 0xff, 0xc2, 0xfd, 0x11, 0xb9, 0x0b, 0x2a, 0xdc, 0x81, 0x1f, 0xab, 0x92,
            0x63, 0x3c
        ]
    );
    let c = w.connect();
    // What a 3.8 ZooKeeper (and we, before) would hand out for this id.
    let guessed = crate::server::seeded_bytes::<16>((c.session as u64) ^ 0xB341_5C00);
    assert_ne!(c.passwd, guessed.to_vec());
    let thief = w.accept_from("127.0.0.1:6000".parse().unwrap());
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout: 4000,
        session_id: c.session,
        passwd: guessed.to_vec(),
        read_only: false,
    };
    w.send_raw(thief, &req.encode_frame());
    let body = w.frame(thief).expect("connect answer");
    assert_eq!(&body[8..16], &[0; 8], "session 0: refused");
    assert!(w.closes().iter().any(|x| x.0 == thief));
    // The owner still resumes with the real password.
    let back = w.connect_as(c.session, c.passwd.clone());
    assert_eq!(back.session, c.session);
    // Another secret, other passwords for the same id.
    let mut other = World::with(Config {
        secret: [7; 32],
        ..Config::default()
    });
    let o = other.connect();
    assert_eq!(o.session, c.session, "ids are deterministic");
    assert_ne!(o.passwd, c.passwd);
}

/// Session starts, expiries and closes reach the runtime's log
/// (ZooKeeper's "Expiring session 0x..., timeout of ...ms exceeded").
#[test]
fn session_expiry_and_close_are_logged() {
    let mut w = World::new();
    let a = w.connect();
    let b = w.connect();
    w.call(&mut Client { xid: 10, ..b }, op::CLOSE_SESSION, &[]);
    let lines: Vec<String> = std::iter::from_fn(|| w.server.poll_log())
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        lines,
        vec![
            format!(
                "Established session 0x{:x} with negotiated timeout 4000",
                a.session
            ),
            format!(
                "Established session 0x{:x} with negotiated timeout 4000",
                a.session + 1
            ),
            format!("Closed session 0x{:x}", a.session + 1),
        ]
    );
    w.advance(Duration::from_secs(10));
    let e = w.server.poll_log().expect("expiry logged");
    assert_eq!(
        e.to_string(),
        format!(
            "Expiring session 0x{:x}, timeout of 4000ms exceeded",
            a.session
        )
    );
    assert_eq!(w.server.poll_log(), None);
}

#[test]
fn add_watch_remove_watches_and_check_watches() {
    let mut w = World::new();
    let mut a = w.connect();
    let mut b = w.connect();
    let add = |path: &str, mode: i32| {
        let mut x = Writer::new();
        x.string(path).int(mode);
        x.finish().to_vec()
    };
    let wop = |path: &str, t: i32| {
        let mut x = Writer::new();
        x.string(path).int(t);
        x.finish().to_vec()
    };
    let r = w.call(&mut b, op::ADD_WATCH, &add("/r", 1));
    assert_eq!((r.err, r.body.as_slice()), (0, &[0u8, 0, 0, 0][..]));
    w.create(&mut a, "/r", b"", 0);
    w.create(&mut a, "/r/x", b"", 0);
    w.call(&mut a, op::SET_DATA, &set_body("/r/x", b"1", -1));
    assert_eq!(
        w.events(&b),
        vec![
            (1, "/r".to_string()),
            (1, "/r/x".to_string()),
            (3, "/r/x".to_string())
        ]
    );
    assert_eq!(w.call(&mut b, op::CHECK_WATCHES, &wop("/r", 5)).err, 0);
    assert_eq!(w.call(&mut b, op::CHECK_WATCHES, &wop("/r", 2)).err, -121);
    assert_eq!(w.call(&mut b, op::REMOVE_WATCHES, &wop("/r", 5)).err, 0);
    assert_eq!(w.call(&mut b, op::REMOVE_WATCHES, &wop("/r", 5)).err, -121);
    w.call(&mut a, op::SET_DATA, &set_body("/r/x", b"2", -1));
    assert!(w.events(&b).is_empty());
    // A one-shot data watch can be removed before it fires.
    w.call(&mut b, op::GET_DATA, &path_watch("/r", true));
    assert_eq!(w.call(&mut b, op::REMOVE_WATCHES, &wop("/r", 2)).err, 0);
    w.call(&mut a, op::SET_DATA, &set_body("/r", b"2", -1));
    assert!(w.events(&b).is_empty());
}

fn ttl_body(path: &str, flags: i32, ttl: i64) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).buffer(b"");
    encode_acls(&mut w, &[Acl::open()]);
    w.int(flags).long(ttl);
    w.finish().to_vec()
}

#[test]
fn containers_are_reaped_once_emptied() {
    let mut w = World::with(Config {
        container_check_interval: Duration::from_secs(1),
        ..Config::default()
    });
    let mut c = w.connect();
    let r = w.call(&mut c, op::CREATE_CONTAINER, &create_body("/box", b"", 4));
    assert_eq!(r.err, 0);
    let r = w.call(&mut c, op::EXISTS, &path_watch("/box", true));
    assert_eq!(r.stat().ephemeral_owner, 0, "clients see 0 for containers");
    // Never had a child: stays.
    w.advance(Duration::from_millis(1500));
    assert_eq!(
        w.call(&mut c, op::EXISTS, &path_watch("/box", false)).err,
        0
    );
    w.create(&mut c, "/box/item", b"", 0);
    w.call(&mut c, op::DELETE, &path_version("/box/item", -1));
    w.advance(Duration::from_millis(1500));
    let r = w.call(&mut c, op::EXISTS, &path_watch("/box", false));
    assert_eq!(r.err, NONODE);
    // The reaper's delete fired the exists watch.
    assert!(
        r.events.contains(&(2, "/box".to_string())),
        "{:?}",
        r.events
    );
}

#[test]
fn ttl_nodes_need_extended_types_and_expire() {
    let mut w = World::new();
    let mut c = w.connect();
    let r = w.call(&mut c, op::CREATE_TTL, &ttl_body("/t", 5, 1000));
    assert_eq!(r.err, -6, "UNIMPLEMENTED without extendedTypesEnabled");
    let mut w = World::with(Config {
        extended_types: true,
        container_check_interval: Duration::from_secs(1),
        ..Config::default()
    });
    let mut c = w.connect();
    // The 3.8.0 poison request (non-TTL mode with createTTL) is refused.
    assert_eq!(
        w.call(&mut c, op::CREATE_TTL, &ttl_body("/p", 0, -1)).err,
        BADARGUMENTS
    );
    assert_eq!(
        w.call(&mut c, op::CREATE_TTL, &ttl_body("/p", 5, 0)).err,
        BADARGUMENTS
    );
    assert_eq!(
        w.call(&mut c, op::CREATE, &create_body("/p", b"", 5)).err,
        BADARGUMENTS
    );
    let r = w.call(&mut c, op::CREATE_TTL, &ttl_body("/t", 6, 500));
    assert_eq!(r.err, 0);
    let mut rd = Reader::new(&r.body);
    assert_eq!(rd.string("p").unwrap(), "/t0000000000");
    w.advance(Duration::from_millis(300));
    w.advance(Duration::from_millis(1000));
    assert_eq!(
        w.call(&mut c, op::EXISTS, &path_watch("/t0000000000", false))
            .err,
        NONODE
    );
}

#[test]
fn quota_stats_are_maintained_and_hard_limits_enforced() {
    let mut w = World::with(Config {
        enforce_quota: true,
        ..Config::default()
    });
    let mut c = w.connect();
    w.create(&mut c, "/q", b"", 0);
    w.create(&mut c, "/q/a", b"12345", 0);
    // What zkCli's `setquota -N 3 /q` does.
    w.create(&mut c, "/zookeeper/quota/q", b"", 0);
    let limits = b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3";
    w.create(&mut c, "/zookeeper/quota/q/zookeeper_limits", limits, 0);
    w.create(
        &mut c,
        "/zookeeper/quota/q/zookeeper_stats",
        b"count=0,bytes=0",
        0,
    );
    let stats = |w: &mut World, c: &mut Client| {
        let r = w.call(
            c,
            op::GET_DATA,
            &path_watch("/zookeeper/quota/q/zookeeper_stats", false),
        );
        String::from_utf8(r.data_and_stat().0).unwrap()
    };
    // The server recounts the subtree when the stats node appears.
    assert_eq!(stats(&mut w, &mut c), "count=2,bytes=5");
    w.call(&mut c, op::SET_DATA, &set_body("/q/a", b"1", -1));
    assert_eq!(stats(&mut w, &mut c), "count=2,bytes=1");
    assert_eq!(w.create(&mut c, "/q/b", b"xy", 0).err, 0);
    assert_eq!(stats(&mut w, &mut c), "count=3,bytes=3");
    assert_eq!(w.create(&mut c, "/q/c", b"", 0).err, -125, "QUOTAEXCEEDED");
    w.call(&mut c, op::DELETE, &path_version("/q/b", -1));
    assert_eq!(stats(&mut w, &mut c), "count=2,bytes=1");
    assert_eq!(w.create(&mut c, "/q/c", b"", 0).err, 0);
}

#[test]
fn recovery_from_snapshot_and_log_restores_everything() {
    let mut w = World::new();
    let mut a = w.connect();
    w.create(&mut a, "/p", b"1", 0);
    w.create(&mut a, "/p/e", b"", 1);
    w.create(&mut a, "/p/s-", b"", 2);
    let (snap_zxid, snap) = w.server.snapshot();
    w.call(&mut a, op::SET_DATA, &set_body("/p", b"2", -1));
    w.create(&mut a, "/p/s-", b"", 2);
    let mut gone = w.connect();
    w.create(&mut gone, "/p/g", b"", 1);
    w.call(&mut gone, op::CLOSE_SESSION, &[]);
    let last = w.server.last_zxid().0;
    let log = w.log_segment();
    for (snapshot, replayed) in [(Some(&snap[..]), last - snap_zxid), (None, last)] {
        let (server, report) =
            Server::recover(Config::default(), w.now(), 2_000_000, snapshot, &[&log]).unwrap();
        assert_eq!(report.last_zxid, last);
        assert_eq!(report.txns_replayed as i64, replayed);
        assert_eq!(report.torn_tail, None);
        let mut r = World(Harness::from_server(server, Clock::new()));
        r.server.check_invariants().unwrap();
        // The live session comes back: resume it with id and password.
        let mut a2 = r.connect_as(a.session, a.passwd.clone());
        assert_eq!(a2.session, a.session);
        let (data, st) = r
            .call(&mut a2, op::GET_DATA, &path_watch("/p", false))
            .data_and_stat();
        assert_eq!((data.as_slice(), st.version), (&b"2"[..], 1));
        let st = r
            .call(&mut a2, op::EXISTS, &path_watch("/p/e", false))
            .stat();
        assert_eq!(st.ephemeral_owner, a.session);
        assert_eq!(
            r.call(&mut a2, op::EXISTS, &path_watch("/p/g", false)).err,
            NONODE
        );
        // Sequence counters continue.
        assert_eq!(
            r.create(&mut a2, "/p/s-", b"", 2).string(),
            "/p/s-0000000004"
        );
        // New sessions do not reuse recovered ids.
        let fresh = r.connect();
        assert_ne!(fresh.session, a.session);
    }
    // A torn tail is cut; a gap is refused.
    let torn = &log[..log.len() - 3];
    let (_, report) = Server::recover(Config::default(), w.now(), 0, None, &[torn]).unwrap();
    assert_eq!(report.last_zxid, last - 1);
    assert!(report.torn_tail.is_some());
    let err = Server::recover(Config::default(), w.now(), 0, None, &[torn, &log]).unwrap_err();
    assert!(
        matches!(err, crate::RecoveryError::Log { segment: 0, .. }),
        "{err}"
    );
}

#[test]
fn null_data_stays_null_and_empty_stays_empty() {
    let mut w = World::new();
    let mut c = w.connect();
    let raw_len = |r: &Reply| i32::from_be_bytes(r.body[..4].try_into().unwrap());
    // create with a null data buffer (length -1), as zkCli's `create /n`.
    let mut b = Writer::new();
    b.string("/n").null();
    encode_acls(&mut b, &[Acl::open()]);
    b.int(0);
    assert_eq!(w.call(&mut c, op::CREATE, &b.finish()).err, 0);
    let r = w.call(&mut c, op::GET_DATA, &path_watch("/n", false));
    assert_eq!(raw_len(&r), -1, "null comes back as null");
    let mut rd = Reader::new(&r.body);
    assert_eq!(rd.buffer_opt("d").unwrap(), None);
    assert_eq!(decode_stat(&mut rd).unwrap().data_length, 0);
    // Empty is not null.
    assert_eq!(
        w.call(&mut c, op::SET_DATA, &set_body("/n", b"", -1)).err,
        0
    );
    let r = w.call(&mut c, op::GET_DATA, &path_watch("/n", false));
    assert_eq!(raw_len(&r), 0);
    // setData with null data.
    let mut b = Writer::new();
    b.string("/n").null().int(-1);
    assert_eq!(w.call(&mut c, op::SET_DATA, &b.finish()).err, 0);
    let r = w.call(&mut c, op::GET_DATA, &path_watch("/n", false));
    assert_eq!(raw_len(&r), -1);
    // The root and /zookeeper hold empty data, as in ZooKeeper.
    let r = w.call(&mut c, op::GET_DATA, &path_watch("/", false));
    assert_eq!(raw_len(&r), 0);
}

#[test]
fn wchs_counts_data_watches_like_zookeeper() {
    let cfg = Config {
        four_letter_words: vec!["wchs".into(), "wchp".into(), "mntr".into()],
        ..Config::default()
    };
    let mut w = World::with(cfg);
    let mut c = w.connect();
    assert_eq!(w.create(&mut c, "/a", b"", 0).err, 0);
    // A data watch, a child watch and an exists watch on a missing node.
    assert_eq!(w.call(&mut c, op::GET_DATA, &path_watch("/a", true)).err, 0);
    assert_eq!(
        w.call(&mut c, op::GET_CHILDREN, &path_watch("/a", true))
            .err,
        0
    );
    assert_eq!(
        w.call(&mut c, op::EXISTS, &path_watch("/b", true)).err,
        NONODE
    );
    // ZooKeeper's wchs/wchp report the data watch table only.
    assert_eq!(
        w.four_letter("wchs"),
        "1 connections watching 2 paths\nTotal watches:2\n"
    );
    let sid = format!("{:#x}", c.session);
    assert_eq!(
        w.four_letter("wchp"),
        format!("/a\n\t{sid}\n/b\n\t{sid}\n\n")
    );
    // mntr counts both tables.
    assert!(w.four_letter("mntr").contains("zk_watch_count\t3\n"));
}

#[test]
fn connect_answer_has_read_only_flag_only_when_asked() {
    let mut w = World::new();
    for (with_flag, want_len) in [(true, 37), (false, 36)] {
        let conn = w.accept();
        let mut b = Writer::frame();
        b.int(0).long(0).int(4000).long(0).buffer(&[0; 16]);
        if with_flag {
            b.boolean(false);
        }
        w.send_raw(conn, &b.finish_frame());
        let body = w.frame(conn).expect("connect response");
        assert_eq!(body.len(), want_len, "readOnly byte sent: {with_flag}");
    }
}

#[test]
fn cons_shows_each_connections_last_operation() {
    let cfg = Config {
        four_letter_words: vec!["cons".into(), "srvr".into()],
        ..Config::default()
    };
    let mut w = World::with(cfg);
    let mut c = w.connect();
    assert_eq!(w.create(&mut c, "/a", b"", 0).err, 0);
    assert_eq!(w.call(&mut c, op::EXISTS, &path_watch("/a", false)).err, 0);
    let cons = w.four_letter("cons");
    let line = cons
        .lines()
        .find(|l| l.contains(",sid="))
        .expect("session line");
    assert!(line.contains(",lop=EXIS,"), "{line}");
    assert!(line.contains(",lcxid=0x2,"), "{line}");
    assert!(
        line.contains("recved=3,sent=3,"),
        "connect + 2 requests: {line}"
    );
    // Answers to four-letter words are not counted as sent packets.
    let sent = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("Sent: "))
            .map(str::to_string)
    };
    let before = sent(&w.four_letter("srvr"));
    assert_eq!(sent(&w.four_letter("srvr")), before);
}

mod watch_acl;

/// ZooKeeper 3.9.2 (ZOOKEEPER-2590): exists() on a node the caller cannot
/// read answers NOAUTH and sets no watch; on a missing node it still sets
/// one (NONODE).
#[test]
fn exists_needs_read_on_an_existing_node() {
    use crate::proto::records::Id;
    let mut w = World::new();
    let mut owner = w.connect();
    let mut other = w.connect();
    let private = Acl {
        perms: 31,
        id: Id {
            scheme: "digest".into(),
            id: crate::server::digest_id(b"bob:pw"),
        },
    };
    assert_eq!(
        w.call(&mut owner, op::CREATE, &create_with_acl("/p", &[private]))
            .err,
        0
    );
    assert_eq!(
        w.call(&mut other, op::EXISTS, &path_watch("/p", true)).err,
        -102
    );
    let mut cw = Writer::new();
    cw.string("/p").int(2);
    assert_eq!(
        w.call(&mut other, op::CHECK_WATCHES, &cw.finish()).err,
        -121,
        "no watch set"
    );
    assert_eq!(
        w.call(&mut other, op::EXISTS, &path_watch("/q", true)).err,
        NONODE
    );
    assert_eq!(w.create(&mut owner, "/q", b"", 0).err, 0);
    assert_eq!(w.events(&other), vec![(1, "/q".to_string())]);
}

/// ZooKeeper 3.9: a notification's header carries the zxid of the
/// transaction that fired it (3.8.0 sends -1).
#[test]
fn notifications_carry_the_firing_zxid() {
    let mut w = World::new();
    let mut a = w.connect();
    let mut b = w.connect();
    w.create(&mut a, "/n", b"", 0);
    assert_eq!(w.call(&mut b, op::GET_DATA, &path_watch("/n", true)).err, 0);
    let set = w.call(&mut a, op::SET_DATA, &set_body("/n", b"x", -1));
    let f = w.frame(b.conn).expect("a notification");
    let mut r = Reader::new(&f);
    assert_eq!(r.int("xid").unwrap(), -1);
    assert_eq!(r.long("zxid").unwrap(), set.zxid);
    assert_eq!(r.int("err").unwrap(), 0);
}

/// A multiRead whose reply would pass `max_reply` fails with
/// MARSHALLINGERROR and a log line instead of building it (ZooKeeper builds
/// a reply of any size: 1 GB from a 16 KB request).
#[test]
fn multi_read_replies_are_bounded() {
    let mut w = World::with(Config {
        max_reply: 8192,
        ..Config::default()
    });
    let mut c = w.connect();
    assert_eq!(w.create(&mut c, "/k", &[1u8; 1000], 0).err, 0);
    let multi = |n: usize| {
        let mut x = Writer::new();
        for _ in 0..n {
            x.int(op::GET_DATA)
                .boolean(false)
                .int(-1)
                .string("/k")
                .boolean(false);
        }
        x.int(-1).boolean(true).int(-1);
        x.finish().to_vec()
    };
    let ok = w.call(&mut c, op::MULTI_READ, &multi(4));
    assert_eq!(ok.err, 0);
    while w.server.poll_log().is_some() {}
    let big = w.call(&mut c, op::MULTI_READ, &multi(100));
    assert_eq!(big.err, -5, "reply of {} bytes", big.body.len());
    assert!(big.body.is_empty());
    let line = w.server.poll_log().expect("logged").to_string();
    assert!(line.contains("pookeeper.maxReplyBytes=8192"), "{line}");
    // The connection goes on.
    assert_eq!(w.call(&mut c, op::MULTI_READ, &multi(1)).err, 0);
}

/// A way to make the server close a client's connection.
type Closer = dyn Fn(&mut World, &Client);

/// Watches live and die with their connection, as in ZooKeeper: AUTHFAILED,
/// an unknown opcode and an oversized or negative frame close the
/// connection and take its watches; a truncated request body answers
/// MARSHALLINGERROR and keeps both.
#[test]
fn watches_go_with_the_connection_that_closes() {
    let mut w = World::new();
    let mut owner = w.connect();
    w.create(&mut owner, "/w", b"", 0);
    let watch = |w: &mut World, c: &mut Client| {
        assert_eq!(w.call(c, op::GET_DATA, &path_watch("/w", true)).err, 0);
    };
    // A truncated body: MARSHALLINGERROR, the connection and watch stay.
    let mut keep = w.connect();
    watch(&mut w, &mut keep);
    let before = w.server.watch_count();
    assert_eq!(w.call(&mut keep, op::GET_DATA, &[0, 0, 0, 9, b'/']).err, -5);
    assert!(!w.closes().iter().any(|c| c.0 == keep.conn));
    assert_eq!(w.server.watch_count(), before);
    // Each of these closes its connection, and its watch goes with it.
    let closers: [&Closer; 4] = [
        &|w, c| w.send_frame(c, -4, op::AUTH, &auth_body("kerberos", b"x")),
        &|w, c| w.send_frame(c, 7, 99, &[]),
        &|w, c| w.send_raw(c.conn, &0x7fff_ffffu32.to_be_bytes()),
        &|w, c| w.send_raw(c.conn, &(-5i32).to_be_bytes()),
    ];
    for (i, close) in closers.iter().enumerate() {
        let mut c = w.connect();
        watch(&mut w, &mut c);
        let with = w.server.watch_count();
        close(&mut w, &c);
        assert!(w.closes().iter().any(|x| x.0 == c.conn), "case {i} closes");
        assert_eq!(w.server.watch_count(), with - 1, "case {i} takes its watch");
    }
    // The survivor's watch still fires.
    w.call(&mut owner, op::SET_DATA, &set_body("/w", b"x", -1));
    assert_eq!(w.events(&keep), vec![(3, "/w".to_string())]);
}
