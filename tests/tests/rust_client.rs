//! The `zookeeper-client` crate (a client we did not write) against the real
//! `pookeeper` binary: CRUD, Stat values, sequential and ephemeral nodes,
//! every watch type, multi, and ZooKeeper's errors.

use pookeeper_tests::Pookeeper;
use std::time::Duration;
use zk::{Acls, CreateMode, EventType};
use zookeeper_client as zk;

async fn connect(server: &Pookeeper) -> zk::Client {
    zk::Client::connector()
        .with_session_timeout(Duration::from_secs(6))
        .connect(&server.hostport())
        .await
        .expect("connect")
}

fn persistent() -> zk::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_and_stat_values() {
    let server = Pookeeper::start(&[]);
    let c = connect(&server).await;
    let (stat, _) = c.create("/a", b"hello", &persistent()).await.unwrap();
    assert_eq!(stat.version, 0);
    assert_eq!(stat.czxid, stat.mzxid);
    assert_eq!(stat.data_length, 5);
    let (data, st) = c.get_data("/a").await.unwrap();
    assert_eq!(data, b"hello");
    assert_eq!(st, stat);
    let st2 = c.set_data("/a", b"x", Some(0)).await.unwrap();
    assert_eq!(st2.version, 1);
    assert!(st2.mzxid > st.mzxid);
    assert_eq!(st2.czxid, st.czxid);
    assert_eq!(
        c.set_data("/a", b"y", Some(0)).await,
        Err(zk::Error::BadVersion)
    );
    c.create("/a/b", b"", &persistent()).await.unwrap();
    let (children, st3) = c.get_children("/a").await.unwrap();
    assert_eq!(children, vec!["b"]);
    assert_eq!((st3.num_children, st3.cversion), (1, 1));
    assert_eq!(c.delete("/a", None).await, Err(zk::Error::NotEmpty));
    c.delete("/a/b", Some(0)).await.unwrap();
    c.delete("/a", Some(1)).await.unwrap();
    assert_eq!(c.check_stat("/a").await.unwrap(), None);
    assert_eq!(c.get_data("/a").await, Err(zk::Error::NoNode));
    assert_eq!(
        c.create("/x/y", b"", &persistent()).await.unwrap_err(),
        zk::Error::NoNode
    );
    c.create("/dup", b"", &persistent()).await.unwrap();
    assert_eq!(
        c.create("/dup", b"", &persistent()).await.unwrap_err(),
        zk::Error::NodeExists
    );
    let mut kids = c.list_children("/").await.unwrap();
    kids.sort();
    assert_eq!(kids, vec!["dup", "zookeeper"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_and_ephemeral_nodes() {
    let server = Pookeeper::start(&[]);
    let c = connect(&server).await;
    c.create("/q", b"", &persistent()).await.unwrap();
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let (_, s0) = c.create("/q/n-", b"", &seq).await.unwrap();
    let (_, s1) = c.create("/q/n-", b"", &seq).await.unwrap();
    assert_eq!((s0.into_i64(), s1.into_i64()), (0, 1));
    let mut kids = c.list_children("/q").await.unwrap();
    kids.sort();
    assert_eq!(kids, vec!["n-0000000000", "n-0000000001"]);

    let other = connect(&server).await;
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let (st, _) = other.create("/e", b"", &eph).await.unwrap();
    assert_eq!(st.ephemeral_owner, other.session_id().0);
    assert_eq!(
        other
            .create("/e/child", b"", &persistent())
            .await
            .unwrap_err(),
        zk::Error::NoChildrenForEphemerals
    );
    let (_, watcher) = c.check_and_watch_stat("/e").await.unwrap();
    drop(other); // closes the session
    let ev = tokio::time::timeout(Duration::from_secs(10), watcher.changed())
        .await
        .expect("ephemeral removed after close");
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    assert_eq!(c.check_stat("/e").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_watch_type() {
    let server = Pookeeper::start(&[]);
    let c = connect(&server).await;
    let w = connect(&server).await;
    let timeout = Duration::from_secs(10);

    let (stat, created) = w.check_and_watch_stat("/w").await.unwrap();
    assert!(stat.is_none());
    let (_, _, children) = w.get_and_watch_children("/").await.unwrap();
    c.create("/w", b"1", &persistent()).await.unwrap();
    let ev = tokio::time::timeout(timeout, created.changed())
        .await
        .unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeCreated, "/w")
    );
    let ev = tokio::time::timeout(timeout, children.changed())
        .await
        .unwrap();
    assert_eq!(ev.event_type, EventType::NodeChildrenChanged);

    let (_, _, data) = w.get_and_watch_data("/w").await.unwrap();
    c.set_data("/w", b"2", None).await.unwrap();
    let ev = tokio::time::timeout(timeout, data.changed()).await.unwrap();
    assert_eq!(ev.event_type, EventType::NodeDataChanged);

    let (_, _, deleted) = w.get_and_watch_data("/w").await.unwrap();
    c.delete("/w", None).await.unwrap();
    let ev = tokio::time::timeout(timeout, deleted.changed())
        .await
        .unwrap();
    assert_eq!(ev.event_type, EventType::NodeDeleted);

    // Persistent recursive watch.
    let mut rec = w
        .watch("/r", zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    c.create("/r", b"", &persistent()).await.unwrap();
    c.create("/r/x", b"", &persistent()).await.unwrap();
    for want in ["/r", "/r/x"] {
        let ev = tokio::time::timeout(timeout, rec.changed()).await.unwrap();
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeCreated, want)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_success_and_failure() {
    let server = Pookeeper::start(&[]);
    let c = connect(&server).await;
    let mut m = c.new_multi_writer();
    m.add_create("/m", b"v", &persistent()).unwrap();
    m.add_create("/m/c", b"", &persistent()).unwrap();
    m.add_set_data("/m", b"w", Some(0)).unwrap();
    m.add_check_version("/m", 1).unwrap();
    m.add_delete("/m/c", Some(0)).unwrap();
    let results = m.commit().await.unwrap();
    assert_eq!(results.len(), 5);
    assert!(matches!(&results[0], zk::MultiWriteResult::Create { path, .. } if path == "/m"));
    assert_eq!(results[4], zk::MultiWriteResult::Delete);
    assert_eq!(c.get_data("/m").await.unwrap().0, b"w");

    let mut m = c.new_multi_writer();
    m.add_create("/n", b"", &persistent()).unwrap();
    m.add_check_version("/m", 7).unwrap();
    m.add_create("/o", b"", &persistent()).unwrap();
    let err = m.commit().await.unwrap_err();
    assert_eq!(
        err,
        zk::MultiWriteError::OperationFailed {
            index: 1,
            source: zk::Error::BadVersion
        }
    );
    assert_eq!(c.check_stat("/n").await.unwrap(), None, "all or nothing");

    let mut r = c.new_multi_reader();
    r.add_get_data("/m").unwrap();
    r.add_get_children("/").unwrap();
    let res = r.commit().await.unwrap();
    assert_eq!(res.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_acl_and_auth() {
    let server = Pookeeper::start(&[]);
    let c = connect(&server).await;
    assert!(c.get_data("relative").await.is_err());
    c.auth("digest", b"bob:secret").await.unwrap();
    let users = c.list_auth_users().await.unwrap();
    assert!(
        users
            .iter()
            .any(|u| u.scheme() == "digest" && u.user() == "bob"),
        "{users:?}"
    );
    let mine = CreateMode::Persistent.with_acls(Acls::creator_all());
    c.create("/private", b"s", &mine).await.unwrap();
    let stranger = connect(&server).await;
    assert_eq!(stranger.get_data("/private").await, Err(zk::Error::NoAuth));
    assert_eq!(c.get_data("/private").await.unwrap().0, b"s");
    assert_eq!(
        stranger.create("/p2", b"", &mine).await.unwrap_err(),
        zk::Error::InvalidAcl
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_and_ttl_nodes_are_reaped() {
    let server = Pookeeper::start(&[
        "--set",
        "extendedTypesEnabled=true",
        "--set",
        "znode.container.checkIntervalMs=200",
    ]);
    let c = connect(&server).await;
    let container = CreateMode::Container.with_acls(Acls::anyone_all());
    c.create("/box", b"", &container).await.unwrap();
    c.create("/box/item", b"", &persistent()).await.unwrap();
    let (_, gone) = c.check_and_watch_stat("/box").await.unwrap();
    c.delete("/box/item", None).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), gone.changed())
        .await
        .expect("the emptied container is reaped");
    assert_eq!(ev.event_type, EventType::NodeDeleted);

    let ttl = CreateMode::Persistent
        .with_acls(Acls::anyone_all())
        .with_ttl(Duration::from_millis(300));
    c.create("/ttl", b"", &ttl).await.unwrap();
    let (stat, expired) = c.check_and_watch_stat("/ttl").await.unwrap();
    assert_eq!(stat.expect("exists").ephemeral_owner, 0);
    let ev = tokio::time::timeout(Duration::from_secs(10), expired.changed())
        .await
        .expect("the TTL node expires");
    assert_eq!(ev.event_type, EventType::NodeDeleted);

    // Without extendedTypesEnabled, TTL creates are UNIMPLEMENTED.
    let plain = Pookeeper::start(&[]);
    let p = connect(&plain).await;
    assert_eq!(
        p.create("/ttl", b"", &ttl).await.unwrap_err(),
        zk::Error::Unimplemented
    );
}
