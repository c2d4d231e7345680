//! Unit tests of the log and snapshot formats.

use super::log::single_bit_error;
use super::snapshot::encode_snapshot;
use super::*;
use crate::txn::Txn;
use crate::txn::TxnOp;

fn txn(zxid: i64, path: &str) -> Txn {
    Txn {
        zxid,
        time: 1,
        session: 2,
        cxid: 3,
        op: TxnOp::Delete { path: path.into() },
    }
}

fn segment(n: i64, padding: usize) -> Vec<u8> {
    let mut v = log_header(1).to_vec();
    for z in 1..=n {
        encode_record(&txn(z, &format!("/n{z}")).encode(), &mut v);
    }
    v.resize(v.len() + padding, 0);
    v
}

#[test]
fn snapshot_round_trip_and_damage() {
    use crate::proto::records::{Acl, AclList, Id};
    use crate::txn::{apply, Database};
    let mut db = Database::default();
    let open: AclList = smallvec::smallvec![Acl::open()];
    let bob: AclList = smallvec::smallvec![Acl {
        perms: 1,
        id: Id {
            scheme: "digest".into(),
            id: "bob:x".into()
        }
    }];
    let mut zxid = 0;
    let mut run = |db: &mut Database, session, op| {
        zxid += 1;
        let mut triggers = Vec::new();
        apply(
            db,
            &Txn {
                zxid,
                time: 1000 + zxid,
                session,
                cxid: 0,
                op,
            },
            &mut triggers,
        );
        crate::txn::release_triggers(&mut db.tree, &mut triggers);
    };
    run(&mut db, 7, TxnOp::CreateSession { timeout: 4000 });
    for (p, acl, owner) in [
        ("/a", &open, 0),
        ("/a/b", &bob, 0),
        ("/a/c", &open, 7),
        ("/z", &bob, i64::MIN),
    ] {
        run(
            &mut db,
            7,
            TxnOp::Create {
                path: p.into(),
                data: Some(bytes::Bytes::from(p.as_bytes().to_vec())),
                acl: acl.clone(),
                ephemeral_owner: owner,
                parent_cversion: 1,
            },
        );
    }
    run(
        &mut db,
        7,
        TxnOp::SetData {
            path: "/a".into(),
            data: Some(bytes::Bytes::from_static(b"v2")),
            version: 1,
        },
    );
    let snap = encode_snapshot(&db);
    let back = decode_snapshot(&snap).unwrap();
    assert_eq!(back.last_zxid, db.last_zxid);
    assert_eq!(back.sessions, db.sessions);
    // Same nodes, same Stats, same children order, same ACLs.
    assert_eq!(back.tree.dump(), db.tree.dump());
    assert_eq!(listings(&back), listings(&db));
    assert_eq!(back.tree.ephemerals_of(7), vec!["/a/c".to_string()]);
    let again = encode_snapshot(&back);
    assert_eq!(again.len(), snap.len(), "same content");
    assert_eq!(decode_snapshot(&again).unwrap().tree.dump(), db.tree.dump());
    // Every truncation and every bit flip is refused, never misread.
    for cut in 0..snap.len() {
        assert!(decode_snapshot(&snap[..cut]).is_err());
    }
    for i in 0..snap.len() {
        let mut b = snap.clone();
        b[i] ^= 0x10;
        assert!(decode_snapshot(&b).is_err(), "flip at {i}");
    }
}

use crate::txn::Database;

/// Every node's listing of its children in creation order. (ZooKeeper's
/// HashSet order also depends on how many children a node ever had at
/// once, which a restart forgets, in ZooKeeper as here.)
fn listings(db: &Database) -> Vec<(String, String)> {
    db.tree
        .dump()
        .into_iter()
        .map(|(p, ..)| {
            let n = db.tree.get(&p).unwrap();
            (p, db.tree.creation_order(n).join(","))
        })
        .collect()
}

/// A snapshot written a few nodes at a time while creates, deletes
/// (also of nodes deleted and created again), setData and setACL keep
/// changing the tree restores exactly the tree as it was when the
/// snapshot started: every node, Stat, ACL and children order.
#[test]
fn snapshot_during_changes_is_the_tree_at_its_zxid() {
    use crate::proto::records::{Acl, Id};
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let open: crate::proto::records::AclList = smallvec::smallvec![Acl::open()];
    let other: crate::proto::records::AclList = smallvec::smallvec![Acl {
        perms: 3,
        id: Id {
            scheme: "digest".into(),
            id: "bob:x".into(),
        },
    }];
    for round in 0..40 {
        let mut db = Database::default();
        let mut zxid = 0;
        let mut paths: Vec<String> = Vec::new();
        let op = |db: &mut Database, zxid: &mut i64, paths: &mut Vec<String>, r: u64| {
            *zxid += 1;
            let z = *zxid;
            match r % 10 {
                0..=3 => {
                    let parent = if paths.is_empty() || r % 3 == 0 {
                        "/".to_string()
                    } else {
                        paths[(r / 10) as usize % paths.len()].clone()
                    };
                    let p = crate::tree::child_path(&parent, &format!("n{}", r % 50));
                    let c = db.tree.get(&parent).map_or(0, |n| n.cversion) + 1;
                    let acl = if r % 7 == 0 { &other } else { &open };
                    // Some nodes hold null data, which must survive.
                    let data = (r % 5 != 0).then(|| bytes::Bytes::from(format!("d{z}")));
                    if db.tree.create(&p, data, acl, 0, c, z, z) {
                        paths.push(p);
                    }
                }
                4..=5 => {
                    if !paths.is_empty() {
                        let i = (r / 10) as usize % paths.len();
                        let p = paths[i].clone();
                        if db.tree.get(&p).is_some_and(|n| n.children.len() == 0) {
                            db.tree.delete(&p, z);
                            paths.swap_remove(i);
                        }
                    }
                }
                6..=8 => {
                    if !paths.is_empty() {
                        let p = &paths[(r / 10) as usize % paths.len()];
                        let v = db.tree.get(p).map_or(0, |n| n.version) + 1;
                        db.tree
                            .set_data(p, Some(bytes::Bytes::from(format!("s{z}"))), v, z, z);
                    }
                }
                _ => {
                    if !paths.is_empty() {
                        let p = &paths[(r / 10) as usize % paths.len()];
                        let acl = if r % 2 == 0 { &other } else { &open };
                        db.tree.set_acl(p, acl, (z % 100) as i32);
                    }
                }
            }
            db.last_zxid = z;
        };
        for _ in 0..200 + round * 20 {
            let r = next(1 << 40);
            op(&mut db, &mut zxid, &mut paths, r);
        }
        let want = db.tree.dump();
        let want_acls: Vec<_> = want.iter().map(|n| n.3.clone()).collect();
        let want_listings = listings(&db);
        let mut w = SnapshotWriter::begin(&db);
        let mut out = Vec::new();
        let budget = 1 + next(300) as usize;
        while !w.step(&mut out, budget) {
            for _ in 0..next(6) {
                let r = next(1 << 40);
                op(&mut db, &mut zxid, &mut paths, r);
            }
        }
        db.tree.check_invariants().unwrap();
        let back = decode_snapshot(&out).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(back.tree.dump(), want, "round {round}");
        let got_acls: Vec<_> = back.tree.dump().iter().map(|n| n.3.clone()).collect();
        assert_eq!(got_acls, want_acls);
        assert_eq!(listings(&back), want_listings, "round {round}");
        back.tree.check_invariants().unwrap();
    }
}

#[test]
fn crc32c_known_value() {
    // The standard check value of CRC-32C.
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

fn segment_v1(n: i64, padding: usize) -> Vec<u8> {
    let mut v = log_header_v1(1).to_vec();
    for z in 1..=n {
        encode_record_v1(&txn(z, &format!("/n{z}")).encode(), &mut v);
    }
    v.resize(v.len() + padding, 0);
    v
}

/// Record start offsets of `segment(n, _)` (or v1), and the end.
fn record_starts(n: i64, overhead: usize) -> Vec<usize> {
    let mut v = vec![LOG_HEADER_LEN];
    let mut pos = LOG_HEADER_LEN;
    for z in 1..=n {
        pos += overhead + txn(z, &format!("/n{z}")).encode().len();
        v.push(pos);
    }
    v
}

fn assert_prefix(s: &LogScan, at_least: usize, what: &str) {
    assert!(s.txns.len() >= at_least, "{what}: {} txns", s.txns.len());
    for (k, t) in s.txns.iter().enumerate() {
        assert_eq!(*t, txn(k as i64 + 1, &format!("/n{}", k + 1)), "{what}");
    }
}

#[test]
fn clean_segments_with_and_without_padding() {
    for seg in [segment, segment_v1] {
        for pad in [0, 3, 4096] {
            let s = scan_log(&seg(5, pad)).unwrap();
            assert_eq!(s.txns.len(), 5);
            assert_eq!(s.end, LogEnd::Clean);
            assert_eq!(s.first_zxid, 1);
            assert_eq!(s.txns[4], txn(5, "/n5"));
        }
    }
    assert_eq!(scan_log(&segment(1, 0)).unwrap().version, LOG_VERSION);
    assert_eq!(scan_log(&segment_v1(1, 0)).unwrap().version, 1);
}

#[test]
fn truncation_at_every_byte_keeps_a_valid_prefix() {
    for (seg, overhead) in [
        (segment as fn(i64, usize) -> Vec<u8>, RECORD_OVERHEAD),
        (segment_v1, V1_RECORD_HEADER_LEN),
    ] {
        let full = seg(6, 0);
        let ends = record_starts(6, overhead);
        for cut in LOG_HEADER_LEN..=full.len() {
            // Cut by the end of the file, or zeros after the cut (the
            // preallocated area).
            for pad in [0, 40] {
                let mut b = full[..cut].to_vec();
                b.resize(cut + pad, 0);
                match scan_log(&b) {
                    Err(e) => panic!("cut at {cut} (+{pad} zeros): {e}"),
                    Ok(s) => {
                        let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
                        assert_eq!(s.txns.len(), whole, "cut at {cut}");
                        assert_eq!(s.valid_len, ends[whole]);
                        assert_prefix(&s, whole, "cut");
                        if ends.contains(&cut) {
                            assert_eq!(s.end, LogEnd::Clean);
                        }
                    }
                }
            }
        }
    }
}

/// Every single flipped bit of a segment (records and padding) is
/// either refused as corruption at or before the flip, or harmless:
/// every record is still read, exactly. Never a record lost.
#[test]
fn bit_flips_are_refused_or_harmless() {
    for (seg, overhead) in [
        (segment as fn(i64, usize) -> Vec<u8>, RECORD_OVERHEAD),
        (segment_v1, V1_RECORD_HEADER_LEN),
    ] {
        let full = seg(5, 64);
        let starts = record_starts(5, overhead);
        for i in LOG_HEADER_LEN..full.len() {
            for bit in 0..8 {
                let mut b = full.clone();
                b[i] ^= 1 << bit;
                match scan_log(&b) {
                    Ok(s) => assert_prefix(&s, 5, &format!("flip {i}.{bit}")),
                    Err(LogError::Corrupt { offset, .. }) => {
                        assert!(offset <= i, "flip {i}.{bit} at {offset}");
                        assert!(starts.contains(&offset), "{offset} is a record");
                    }
                    Err(LogError::BadHeader) => panic!("header untouched"),
                }
            }
        }
    }
}

/// The defect this format fixes: a damaged length in the middle made
/// the rest look like a torn tail. Version 2 refuses it; version 1 does
/// too (a valid record follows).
#[test]
fn damaged_length_in_the_middle_is_corruption() {
    for (seg, overhead) in [
        (segment as fn(i64, usize) -> Vec<u8>, RECORD_OVERHEAD),
        (segment_v1, V1_RECORD_HEADER_LEN),
    ] {
        let starts = record_starts(8, overhead);
        let mut b = seg(8, 1 << 12);
        b[starts[2]] ^= 0x40; // a huge length: "runs past the end"
        let e = scan_log(&b).unwrap_err();
        assert!(
            matches!(e, LogError::Corrupt { offset, .. } if offset == starts[2]),
            "{e}"
        );
    }
}

#[test]
fn single_bit_errors_are_located() {
    let p: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(37)).collect();
    let crc = crc32c(&p);
    assert_eq!(single_bit_error(&p, crc), None);
    for i in 0..p.len() * 8 {
        let mut b = p.clone();
        b[i / 8] ^= 1 << (i % 8);
        assert_eq!(single_bit_error(&b, crc), Some(i));
    }
    let mut b = p.clone();
    b[3] ^= 0x11;
    assert_eq!(single_bit_error(&b, crc), None, "two bits");
}

#[test]
fn unfinished_segments_are_recognised() {
    let z = 0x1_0000_0101;
    let h = log_header(z);
    for cut in 0..LOG_HEADER_LEN {
        let mut b = h[..cut].to_vec();
        assert!(is_unfinished_segment(&b, z), "{cut}");
        b.resize(4096, 0);
        assert!(is_unfinished_segment(&b, z), "{cut} + zeros");
    }
    assert!(!is_unfinished_segment(&h, z), "complete header");
    assert!(!is_unfinished_segment(&log_header(7), z), "other zxid");
    assert!(!is_unfinished_segment(&segment(1, 0)[..40], 1));
    assert!(!is_unfinished_segment(b"PKLX", 1));
}
