//! Watch events filtered by the watcher's READ permission (CVE-2024-23944,
//! as ZooKeeper 3.9.2 does it), and the caps on a connection's auth ids.

use super::*;
use crate::proto::records::Id;

const NOWATCHER: i32 = -121;
const AUTHFAILED: i32 = -115;
const NODE_CREATED: i32 = 1;
const NODE_DELETED: i32 = 2;
const NODE_DATA_CHANGED: i32 = 3;
const NODE_CHILDREN_CHANGED: i32 = 4;

fn digest_acl(user_and_hash: &str) -> Acl {
    Acl {
        perms: 31,
        id: Id {
            scheme: "digest".into(),
            id: user_and_hash.into(),
        },
    }
}

/// `digest:bob:…` for bob:secret, all permissions.
fn bob() -> Acl {
    digest_acl("bob:fyVmFCwVbTJYrznoSu1koqYEYF0=")
}

fn set_acl_body(path: &str, acl: &[Acl]) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path);
    encode_acls(&mut w, acl);
    w.int(-1);
    w.finish().to_vec()
}

fn add_watch_body(path: &str, mode: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).int(mode);
    w.finish().to_vec()
}

fn watch_type_body(path: &str, t: i32) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(path).int(t);
    w.finish().to_vec()
}

fn auth(w: &mut World, c: &Client, cred: &[u8]) -> i32 {
    w.send_frame(c, -4, op::AUTH, &auth_body("digest", cred));
    w.reply_for(c, -4).err
}

fn ev(t: i32, p: &str) -> (i32, String) {
    (t, p.to_string())
}

fn world_with_super() -> World {
    World::with(Config {
        super_digest: Some(crate::server::digest_id(b"super:pw")),
        ..Config::default()
    })
}

#[test]
fn watch_events_need_read_permission_for_every_watch_kind() {
    let mut w = world_with_super();
    let mut owner = w.connect();
    let mut b = w.connect(); // one-shot watches, unauthenticated
    let mut c = w.connect(); // persistent on /w/sec, unauthenticated
    let mut d = w.connect(); // persistent-recursive on /w, unauthenticated
    let mut s = w.connect(); // persistent-recursive on /w, super user
    assert_eq!(auth(&mut w, &owner, b"bob:secret"), 0);
    assert_eq!(auth(&mut w, &s, b"super:pw"), 0);
    for p in ["/w", "/w/sec", "/w/pub"] {
        assert_eq!(w.create(&mut owner, p, b"", 0).err, 0);
    }
    // The watches are left while /w/sec is still world-readable.
    w.call(&mut b, op::EXISTS, &path_watch("/w/sec", true));
    w.call(&mut b, op::GET_DATA, &path_watch("/w/sec", true));
    w.call(&mut b, op::GET_CHILDREN, &path_watch("/w/sec", true));
    w.call(&mut b, op::EXISTS, &path_watch("/w/sec/new", true));
    w.call(&mut b, op::EXISTS, &path_watch("/w/pub", true));
    w.call(&mut c, op::ADD_WATCH, &add_watch_body("/w/sec", 0));
    w.call(&mut d, op::ADD_WATCH, &add_watch_body("/w", 1));
    w.call(&mut s, op::ADD_WATCH, &add_watch_body("/w", 1));

    // Owner-only from here: nothing about /w/sec reaches b, c or d.
    let r = w.call(&mut owner, op::SET_ACL, &set_acl_body("/w/sec", &[bob()]));
    assert_eq!(r.err, 0);
    w.call(&mut owner, op::SET_DATA, &set_body("/w/sec", b"1", -1));
    let r = w.call(
        &mut owner,
        op::CREATE,
        &create_with_acl("/w/sec/new", &[bob()]),
    );
    assert_eq!(r.err, 0);
    // A world-readable node is the control: its event is delivered.
    w.call(&mut owner, op::SET_DATA, &set_body("/w/pub", b"1", -1));
    assert_eq!(w.events(&b), vec![ev(NODE_DATA_CHANGED, "/w/pub")]);
    assert_eq!(w.events(&c), vec![]);
    assert_eq!(w.events(&d), vec![ev(NODE_DATA_CHANGED, "/w/pub")]);
    assert_eq!(
        w.events(&s),
        vec![
            ev(NODE_DATA_CHANGED, "/w/sec"),
            ev(NODE_CREATED, "/w/sec/new"),
            ev(NODE_DATA_CHANGED, "/w/pub"),
        ]
    );
    // 7 withheld: b's data (exists + getData: one event), NodeCreated and
    // NodeChildrenChanged; c's data and children; d's data and creation.
    assert_eq!(w.server.stats().events_withheld, 7);

    // b's withheld one-shot watches were consumed all the same.
    for (p, t) in [("/w/sec", 2), ("/w/sec", 1), ("/w/sec/new", 2)] {
        assert_eq!(
            w.call(&mut b, op::CHECK_WATCHES, &watch_type_body(p, t))
                .err,
            NOWATCHER,
            "{p} type {t}"
        );
    }
    // World-readable again: the persistent watches report again, b's
    // consumed one-shots never do.
    w.call(
        &mut owner,
        op::SET_ACL,
        &set_acl_body("/w/sec", &[Acl::open()]),
    );
    w.call(&mut owner, op::SET_DATA, &set_body("/w/sec", b"2", -1));
    w.create(&mut owner, "/w/sec/o", b"", 0);
    // /w/sec/new keeps its owner-only ACL: its deletion is withheld, while
    // the parent's NodeChildrenChanged (parent world-readable) goes out.
    w.call(&mut owner, op::DELETE, &path_version("/w/sec/new", -1));
    assert_eq!(w.events(&b), vec![]);
    assert_eq!(
        w.events(&c),
        vec![
            ev(NODE_DATA_CHANGED, "/w/sec"),
            ev(NODE_CHILDREN_CHANGED, "/w/sec"),
            ev(NODE_CHILDREN_CHANGED, "/w/sec"),
        ]
    );
    assert_eq!(
        w.events(&d),
        vec![
            ev(NODE_DATA_CHANGED, "/w/sec"),
            ev(NODE_CREATED, "/w/sec/o")
        ]
    );
    assert_eq!(w.events(&s).len(), 3);
}

#[test]
fn deletions_use_the_acl_the_node_had_and_the_parents_acl() {
    let mut w = World::new();
    let mut owner = w.connect();
    let mut c = w.connect();
    let mut d = w.connect();
    assert_eq!(auth(&mut w, &owner, b"bob:secret"), 0);
    w.create(&mut owner, "/p", b"", 0);
    w.create(&mut owner, "/p/open", b"", 0);
    w.call(
        &mut owner,
        op::CREATE,
        &create_with_acl("/p/shut", &[bob()]),
    );
    w.call(&mut c, op::ADD_WATCH, &add_watch_body("/p", 0));
    w.call(&mut d, op::ADD_WATCH, &add_watch_body("/p", 1));
    // Parent owner-only: NodeChildrenChanged withheld; the world-readable
    // child's NodeDeleted delivered, the owner-only child's withheld.
    w.call(&mut owner, op::SET_ACL, &set_acl_body("/p", &[bob()]));
    w.call(&mut owner, op::DELETE, &path_version("/p/open", -1));
    w.call(&mut owner, op::DELETE, &path_version("/p/shut", -1));
    assert_eq!(w.events(&c), vec![]);
    assert_eq!(w.events(&d), vec![ev(NODE_DELETED, "/p/open")]);
    // The node's own delete: withheld from both (its ACL is owner-only).
    w.call(&mut owner, op::DELETE, &path_version("/p", -1));
    assert_eq!(w.events(&c), vec![]);
    assert_eq!(w.events(&d), vec![]);
}

#[test]
fn a_multi_filters_each_event_by_the_acl_of_its_own_op() {
    let mut w = World::new();
    let mut owner = w.connect();
    let mut d = w.connect();
    assert_eq!(auth(&mut w, &owner, b"bob:secret"), 0);
    w.create(&mut owner, "/m", b"", 0);
    w.call(&mut d, op::ADD_WATCH, &add_watch_body("/m", 1));
    // /m/x's list is used by no other node: the delete frees it, and the
    // new list of /m/y in the same multi could take its place in the ACL
    // cache. /m/x's events must still be judged by its own (owner-only)
    // list, each event by the list of its own op.
    let carol = digest_acl("carol:x");
    // (READ alone is taken: /zookeeper/config's list.)
    let world_read = Acl {
        perms: 3,
        ..Acl::open()
    };
    let r = w.call(
        &mut owner,
        op::MULTI,
        &multi_body(&[
            (op::CREATE, create_with_acl("/m/x", &[bob(), carol])),
            (op::DELETE, path_version("/m/x", -1)),
            (op::CREATE, create_with_acl("/m/y", &[world_read])),
            (op::CREATE, create_with_acl("/m/z", &[bob()])),
            (op::SET_DATA, set_body("/m/z", b"1", -1)),
        ]),
    );
    assert_eq!(r.err, 0);
    assert_eq!(w.events(&d), vec![ev(NODE_CREATED, "/m/y")]);
    w.call(
        &mut owner,
        op::SET_ACL,
        &set_acl_body("/m/z", &[Acl::open()]),
    );
    w.call(&mut owner, op::SET_DATA, &set_body("/m/z", b"2", -1));
    assert_eq!(w.events(&d), vec![ev(NODE_DATA_CHANGED, "/m/z")]);
}

#[test]
fn ephemerals_of_a_closed_session_are_filtered_too() {
    let mut w = World::new();
    let mut owner = w.connect();
    let mut d = w.connect();
    assert_eq!(auth(&mut w, &owner, b"bob:secret"), 0);
    w.create(&mut owner, "/e", b"", 0);
    let mut body = create_with_acl("/e/mine", &[bob()]);
    let n = body.len();
    body[n - 4..].copy_from_slice(&1i32.to_be_bytes());
    assert_eq!(w.call(&mut owner, op::CREATE, &body).err, 0);
    w.call(&mut d, op::ADD_WATCH, &add_watch_body("/e", 1));
    w.call(&mut d, op::GET_CHILDREN, &path_watch("/e", true));
    w.call(&mut owner, op::CLOSE_SESSION, &[]);
    // The parent is world-readable, the ephemeral is not.
    assert_eq!(w.events(&d), vec![ev(NODE_CHILDREN_CHANGED, "/e")]);
}

#[test]
fn set_watches_catch_up_events_are_not_filtered() {
    // ZooKeeper's DataTree.setWatches calls process(event) without an ACL,
    // which its checkACL lets through.
    let mut w = World::new();
    let mut owner = w.connect();
    let b = w.connect();
    assert_eq!(auth(&mut w, &owner, b"bob:secret"), 0);
    w.call(&mut owner, op::CREATE, &create_with_acl("/s", &[bob()]));
    w.call(&mut owner, op::CREATE, &create_with_acl("/s/c", &[bob()]));
    let mut body = Writer::new();
    body.long(0)
        .strings(&["/s"])
        .strings(&["/s/c"])
        .strings(&["/s"]);
    w.send_frame(&b, -8, op::SET_WATCHES, &body.finish());
    let r = w.reply_for(&b, -8);
    assert_eq!(r.err, 0);
    assert_eq!(
        r.events,
        vec![
            ev(NODE_DATA_CHANGED, "/s"),
            ev(NODE_CREATED, "/s/c"),
            ev(NODE_CHILDREN_CHANGED, "/s"),
        ]
    );
}

#[test]
fn auth_ids_are_capped_in_number() {
    let mut w = World::new();
    let mut c = w.connect();
    // The connection's ip id is one of the 32.
    assert_eq!(w.server.auth_of(c.conn).len(), 1);
    for i in 0..31 {
        let cred = format!("user{i}:pw");
        assert_eq!(auth(&mut w, &c, cred.as_bytes()), 0, "auth #{i}");
    }
    assert_eq!(w.server.auth_of(c.conn).len(), 32);
    // An id the connection holds adds nothing, so it is still accepted.
    assert_eq!(auth(&mut w, &c, b"user7:pw"), 0);
    let r = w.call(&mut c, op::WHO_AM_I, &[]);
    assert_eq!(Reader::new(&r.body).int("n").unwrap(), 32);
    // One more distinct id: AUTHFAILED, and the connection closes saying
    // why.
    assert_eq!(auth(&mut w, &c, b"user31:pw"), AUTHFAILED);
    assert_eq!(w.closes().len(), 1);
    assert_eq!(w.closes()[0].0, c.conn);
    let CloseReason::AuthLimit(why) = &w.closes()[0].1 else {
        panic!("{:?}", w.closes()[0].1);
    };
    assert!(why.contains("pookeeper.maxAuthIds"), "{why}");
    assert_eq!(w.server.stats().auth_failed, 1);
}

#[test]
fn repeated_auths_do_not_grow_the_list() {
    let mut w = World::new();
    let c = w.connect();
    for _ in 0..100 {
        assert_eq!(auth(&mut w, &c, b"bob:secret"), 0);
    }
    assert_eq!(w.server.auth_of(c.conn).len(), 2);
    assert!(w.closes().is_empty());
}

#[test]
fn auth_ids_are_capped_in_size() {
    let mut w = World::new();
    let c = w.connect();
    // digest ids are "user:" + 28 characters of base64(sha1).
    let user = "u".repeat(1024 - 29);
    assert_eq!(auth(&mut w, &c, format!("{user}:pw").as_bytes()), 0);
    assert_eq!(w.server.auth_of(c.conn)[0].id.len(), 1024);
    let big = "u".repeat(100_000);
    assert_eq!(auth(&mut w, &c, format!("{big}:pw").as_bytes()), AUTHFAILED);
    let CloseReason::AuthLimit(why) = &w.closes()[0].1 else {
        panic!("{:?}", w.closes()[0].1);
    };
    assert!(why.contains("pookeeper.maxAuthIdBytes"), "{why}");
}

#[test]
fn auth_ids_are_borrowed_not_copied() {
    // Structural: the connection's ids are handed out as a borrowed slice,
    // so no request copies them (it used to clone the whole Vec<Id>).
    let f: for<'a> fn(&'a Server, ConnId) -> &'a [Id] = Server::auth_of;
    let _ = f;
    // The caps cannot be configured away below the ip id and one more.
    let bad = Config {
        max_auth_ids: 1,
        ..Config::default()
    };
    assert!(Server::new(bad, Clock::new().now(), 0).is_err());
}
