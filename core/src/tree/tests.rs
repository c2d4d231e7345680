//! Unit tests of the data tree.

/// getEphemerals order (and closeSession's delete order) recorded from
/// Apache ZooKeeper 3.8.0: 13 ephemerals created in this order by one
/// session, then /x and /q deleted.
#[test]
fn ephemerals_in_zookeepers_hash_set_clone_order() {
    let names = [
        "zeta",
        "a",
        "b9",
        "lock-0000000001",
        "x",
        "c",
        "q",
        "mm",
        "k",
        "e1",
        "e2",
        "e3",
        "e4",
    ];
    for (base, want) in [
        ("/ephp1", "k e3 e4 lock-0000000001 e1 e2 a mm c b9 zeta"),
        ("/ephp3", "e2 e1 mm k e4 zeta e3 a lock-0000000001 c b9"),
    ] {
        let mut e = SessionEphemerals::default();
        for n in names {
            e.insert(&format!("{base}/{n}"));
        }
        e.remove(&format!("{base}/x"));
        e.remove(&format!("{base}/q"));
        let got: Vec<&str> = e
            .clone_order()
            .into_iter()
            .map(|p| &p[base.len() + 1..])
            .collect();
        assert_eq!(got.join(" "), want, "{base}");
    }
}

use super::*;

fn open() -> AclList {
    smallvec::smallvec![Acl::open()]
}

#[test]
fn fresh_tree_looks_like_zookeeper() {
    let t = DataTree::new();
    assert_eq!(t.len(), 4);
    let root = t.get("/").unwrap().stat();
    assert_eq!(root.num_children, 1);
    // As a fresh Apache ZooKeeper reports it.
    assert_eq!(root.cversion, -1);
    assert_eq!(root.czxid, 0);
    assert_eq!(t.descendant_count("/"), 3);
    assert_eq!(t.acl_of(t.get("/zookeeper/config").unwrap())[0].perms, 1);
    t.check_invariants().unwrap();
}

#[test]
fn create_and_delete_update_parent_stat() {
    let mut t = DataTree::new();
    assert!(t.create("/a", Some(Bytes::from_static(b"x")), &open(), 0, 1, 5, 100));
    assert!(!t.create("/a", Some(Bytes::new()), &open(), 0, 2, 6, 100));
    assert!(!t.create("/no/b", Some(Bytes::new()), &open(), 0, 1, 6, 100));
    let root = t.get("/").unwrap().stat();
    // Reported: 2 × creates − children = 2 × 1 − 2.
    assert_eq!((root.cversion, root.pzxid, root.num_children), (0, 5, 2));
    assert!(t.create("/a/e", Some(Bytes::new()), &open(), 42, 1, 7, 100));
    assert_eq!(t.ephemerals_of(42), vec!["/a/e".to_string()]);
    assert!(t.delete("/a/e", 8));
    let a = t.get("/a").unwrap().stat();
    // Stored cversion counts creates; the reported one counts deletes too.
    assert_eq!((a.cversion, a.pzxid, a.num_children), (2, 8, 0));
    assert_eq!(t.get("/a").unwrap().cversion, 1);
    assert!(t.ephemerals_of(42).is_empty());
    assert!(!t.delete("/zookeeper", 9));
    t.check_invariants().unwrap();
}

#[test]
fn acl_lists_are_shared() {
    let mut t = DataTree::new();
    for i in 0..100 {
        t.create(
            &format!("/n{i}"),
            Some(Bytes::new()),
            &open(),
            0,
            i + 1,
            10,
            0,
        );
    }
    assert_eq!(t.acls.len(), 2); // open, and /zookeeper/config's read-only
    for i in 0..100 {
        t.delete(&format!("/n{i}"), 200);
    }
    assert_eq!(t.acls.len(), 2);
}

/// A tree with `/p` and the given children created under it in order.
fn with_children(names: &[&str]) -> DataTree {
    let mut t = DataTree::new();
    t.create("/p", Some(Bytes::new()), &open(), 0, 1, 1, 0);
    for (i, n) in names.iter().enumerate() {
        let z = i as i64 + 2;
        assert!(t.create(
            &format!("/p/{n}"),
            Some(Bytes::new()),
            &open(),
            0,
            z as i32,
            z,
            0
        ));
    }
    t
}

fn zk_order(t: &DataTree) -> String {
    t.zookeeper_order(t.get("/p").unwrap()).join(", ")
}

#[test]
fn children_in_java_hashset_order() {
    // Java: new HashSet<>(8) with "b","a","c" added iterates a, b, c
    // ("a".hashCode() = 97 → bucket 1, "b" → 2, "c" → 3).
    let t = with_children(&["b", "a", "c"]);
    assert_eq!(zk_order(&t), "a, b, c");
    assert_eq!(t.creation_order(t.get("/p").unwrap()), vec!["b", "a", "c"]);
    // Values printed by Java 17 for the same inserts.
    assert_eq!(java_string_hash("zookeeper"), 1_600_681_804);
    let t = with_children(&[
        "zz",
        "b",
        "a",
        "c",
        "node-0000000001",
        "lock-",
        "x",
        "y",
        "q",
        "longer-name",
    ]);
    let want = "zz, longer-name, a, q, b, c, node-0000000001, lock-, x, y";
    assert_eq!(zk_order(&t), want);
    let names: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut t = with_children(&refs);
    assert!(t.delete("/p/n3", 30));
    assert!(t.create("/p/n3", Some(Bytes::new()), &open(), 0, 30, 31, 0));
    let want =
        "n0, n1, n2, n3, n4, n5, n6, n7, n8, n9, n10, n12, n11, n14, n13, n16, n15, n18, n17, n19";
    assert_eq!(zk_order(&t), want);
    t.check_invariants().unwrap();
}
