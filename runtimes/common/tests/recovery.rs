//! Recovery against damaged and torn logs, in process, through the real
//! code path: records written and acknowledged by `DiskLog` (append, then
//! flush: one write per group commit), the segment then damaged on disk,
//! and `datadir::open` run on it, as at a server start.
//!
//! The promise checked: after any single flipped bit, the start either
//! fails with an error naming the file and the offset of the damaged
//! record, or recovers every acknowledged record exactly. Never a start
//! with an acknowledged record missing. And a write cut short by a crash
//! (a prefix of the last group commit, then zeros or the end of the file)
//! always starts, without an operator, with everything acknowledged before.

use bytes::Bytes;
use pookeeper_common::datadir;
use pookeeper_common::txlog::TxLog;
use pookeeper_common::Settings;
use pookeeper_core::proto::records::{Acl, AclList};
use pookeeper_core::storage;
use pookeeper_core::txn::{Txn, TxnOp};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A fresh directory, on tmpfs when there is one (thousands of starts).
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let p = base.join(format!("pk-recovery-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn settings(dir: &Path) -> Settings {
    Settings {
        data_dir: dir.display().to_string(),
        // The write path is the same; only the fdatasync is skipped (speed).
        force_sync: false,
        snap_count: 1 << 40,
        ..Settings::default()
    }
}

/// The test's transactions: creates with data of varied sizes (some empty,
/// some null), and setData on earlier nodes.
fn txn(z: i64) -> Txn {
    let acl: AclList = std::iter::once(Acl::open()).collect();
    let data = match z % 7 {
        0 => None,
        1 => Some(Bytes::new()),
        k => Some(Bytes::from(vec![b'a' + k as u8; (z as usize * 13) % 300])),
    };
    let op = if z % 5 == 0 {
        TxnOp::SetData {
            path: format!("/n{}", z - 1),
            data,
            version: 1,
        }
    } else {
        TxnOp::Create {
            path: format!("/n{z}"),
            data,
            acl,
            ephemeral_owner: 0,
            parent_cversion: (z - z / 5) as i32,
        }
    };
    Txn {
        zxid: z,
        time: 1_700_000_000_000 + z,
        session: 0,
        cxid: z as i32,
        op,
    }
}

/// A log written through `DiskLog`: `n` records in group commits of 1 to 4
/// records, every one acknowledged (flushed).
struct Written {
    /// The segment's bytes up to the end of the records, plus some of the
    /// preallocated zeros (a file may be left at any length).
    bytes: Vec<u8>,
    /// Where each record starts, and the end of the last one.
    starts: Vec<usize>,
    /// Where each group commit's write starts (and the end).
    writes: Vec<usize>,
    /// The segment's file name.
    name: String,
}

fn write_log(n: i64) -> Written {
    let dir = Dir::new("write");
    let s = settings(&dir.0);
    let (_, mut log) = datadir::open(&s, Instant::now(), 0).unwrap();
    let mut overhead = Vec::new();
    storage::encode_record(b"x", &mut overhead);
    let overhead = overhead.len() - 1;
    let mut starts = vec![storage::LOG_HEADER_LEN];
    let mut writes = vec![storage::LOG_HEADER_LEN];
    let mut z = 1;
    let mut group = 0;
    while z <= n {
        group += 1;
        let size = 1 + (group * 7 % 4);
        let upto = (z + size - 1).min(n);
        for k in z..=upto {
            let e = txn(k).encode();
            log.append(k, &e);
            starts.push(starts.last().unwrap() + overhead + e.len());
        }
        assert_eq!(log.flush().unwrap(), Some(upto), "acknowledged");
        writes.push(*starts.last().unwrap());
        z = upto + 1;
    }
    drop(log);
    let seg = std::fs::read_dir(dir.0.join("version-1"))
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.file_name().to_string_lossy().starts_with("log."))
        .unwrap();
    let mut bytes = std::fs::read(seg.path()).unwrap();
    let end = *starts.last().unwrap();
    assert!(
        bytes[end..].iter().all(|&b| b == 0),
        "zeros after the records"
    );
    bytes.truncate(end + 4096);
    Written {
        bytes,
        starts,
        writes,
        name: seg.file_name().to_string_lossy().into_owned(),
    }
}

/// Starts (in process) on a data directory holding only `bytes` as the
/// segment `name`: the recovered state as a snapshot, or the error.
fn start(dir: &Path, name: &str, bytes: &[u8]) -> Result<(i64, Vec<u8>), String> {
    let v = dir.join("version-1");
    let _ = std::fs::remove_dir_all(&v);
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join(name), bytes).unwrap();
    match datadir::open(&settings(dir), Instant::now(), 0) {
        Ok((mut server, _log)) => {
            let (zxid, snap) = server.snapshot();
            Ok((zxid, canonical(&snap)))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A snapshot (docs/storage.md) with its node records sorted: siblings may
/// come in any order, so this is what two equal states have in common.
fn canonical(snap: &[u8]) -> Vec<u8> {
    struct R<'a>(&'a [u8], usize);
    impl R<'_> {
        fn take(&mut self, n: usize) -> &[u8] {
            let s = &self.0[self.1..self.1 + n];
            self.1 += n;
            s
        }
        fn int(&mut self) -> i32 {
            i32::from_be_bytes(self.take(4).try_into().unwrap())
        }
        fn buf(&mut self) {
            let n = self.int();
            if n > 0 {
                self.take(n as usize);
            }
        }
    }
    let mut r = R(snap, 16);
    let sessions = r.int() as usize;
    r.take(sessions * 12);
    for _ in 0..r.int() {
        for _ in 0..r.int().max(0) {
            r.int();
            r.buf();
            r.buf();
        }
    }
    r.take(8);
    let head = r.1;
    let mut nodes = Vec::new();
    while r.1 < snap.len() - 4 {
        let at = r.1;
        r.buf(); // path
        r.take(8); // seq
        r.buf(); // data
        r.take(4 + 4 * 8 + 3 * 4 + 2 * 8);
        nodes.push(&snap[at..r.1]);
    }
    nodes.sort();
    let mut out = snap[..head].to_vec();
    for n in nodes {
        out.extend_from_slice(n);
    }
    out
}

/// Checks one damaged copy: refused naming the file and a record offset
/// at or before the damage, or every acknowledged record, exactly.
fn check_flip(
    dir: &Path,
    w: &Written,
    full: &(i64, Vec<u8>),
    byte: usize,
    bit: u8,
    refused: &mut usize,
) {
    let mut b = w.bytes.clone();
    b[byte] ^= 1 << bit;
    match start(dir, &w.name, &b) {
        Ok(got) => assert!(
            got == *full,
            "flip of bit {bit} of byte {byte}: started at zxid {:#x} without every acknowledged record (want {:#x}, or a refusal)",
            got.0,
            full.0
        ),
        Err(msg) => {
            let path = dir.join("version-1").join(&w.name);
            assert!(
                msg.contains(&path.display().to_string()),
                "flip {byte}.{bit}: the error names the file: {msg}"
            );
            if byte < storage::LOG_HEADER_LEN {
                // The segment header: no records to point at.
                assert!(msg.contains("bad header"), "flip {byte}.{bit}: {msg}");
                *refused += 1;
                return;
            }
            let named = w
                .starts
                .iter()
                .filter(|&&o| o <= byte)
                .any(|o| msg.contains(&format!("offset {o}:")));
            assert!(
                named,
                "flip {byte}.{bit}: the error names the damaged record's offset: {msg}"
            );
            *refused += 1;
        }
    }
}

const RECORDS: i64 = 240;

/// Every bit of every record's length field; every bit of the checksums
/// and end mark of every 8th record (and the last); three payload bytes of
/// every record; every bit of the segment header; the zeros after the
/// records (the first 40 bytes, then a sample).
#[test]
fn every_flipped_length_bit_is_refused_or_harmless() {
    let w = write_log(RECORDS);
    let dir = Dir::new("flip");
    let full = start(&dir.0, &w.name, &w.bytes).unwrap();
    assert_eq!(full.0, RECORDS, "the intact log recovers everything");
    assert!(
        start(&dir.0, &w.name, &w.bytes).unwrap() == full,
        "deterministic"
    );
    let (mut cases, mut refused) = (0, 0);
    let records = w.starts.len() - 1;
    for (r, win) in w.starts.windows(2).enumerate() {
        let (at, end) = (win[0], win[1]);
        let mut flips: Vec<usize> = (at..at + 4).collect(); // the length field
        if r % 8 == 0 || r + 1 == records {
            flips.extend(at + 4..(at + 12).min(end)); // the checksums
            flips.push(end - 1); // the end mark (or last payload byte)
        }
        // Some payload bytes: first, middle, last.
        let payload = (at + storage::RECORD_HEADER_LEN).min(end - 1);
        flips.extend([payload, (payload + end) / 2, end - 2]);
        flips.sort();
        flips.dedup();
        for byte in flips {
            for bit in 0..8 {
                check_flip(&dir.0, &w, &full, byte, bit, &mut refused);
                cases += 1;
            }
        }
    }
    // The segment header.
    for byte in 0..storage::LOG_HEADER_LEN {
        for bit in 0..8 {
            check_flip(&dir.0, &w, &full, byte, bit, &mut refused);
            cases += 1;
        }
    }
    // The zeros after the records: the first bytes, and a sample further on.
    let end = *w.starts.last().unwrap();
    for byte in (end..end + 40).chain((end + 40..w.bytes.len()).step_by(97)) {
        check_flip(&dir.0, &w, &full, byte, (byte % 8) as u8, &mut refused);
        cases += 1;
    }
    eprintln!(
        "{cases} damaged copies of a {records}-record log: {refused} refused, {} recovered everything",
        cases - refused
    );
    assert!(cases > 8000);
    assert!(refused > 7000, "length flips are refused");
}

/// A crash during the last group commit leaves any prefix of its write,
/// then zeros (preallocated) or the end of the file: the start needs no
/// operator and recovers everything acknowledged before that write (and
/// whatever whole records of it got there); the torn part is cut off and
/// writing continues after it.
#[test]
fn a_torn_last_write_starts_without_an_operator() {
    let w = write_log(RECORDS);
    let dir = Dir::new("torn");
    let n = w.writes.len();
    let (from, to) = (w.writes[n - 2], w.writes[n - 1]);
    let before = (w.starts.iter().filter(|&&s| s <= from).count() - 1) as i64;
    assert!(to - from > 100, "the last write holds a few records");
    // What a start recovers from the first k records.
    let reference = |k: usize| start(&dir.0, &w.name, &w.bytes[..w.starts[k]]).unwrap();
    let refs: std::collections::BTreeMap<usize, (i64, Vec<u8>)> = (before as usize..w.starts.len())
        .map(|k| (k, reference(k)))
        .collect();
    let mut cases = 0;
    for cut in from..=to {
        let whole = w.starts.iter().filter(|&&s| s <= cut).count() - 1;
        for zeros in [0, 4096] {
            let mut b = w.bytes[..cut].to_vec();
            b.resize(cut + zeros, 0);
            let got = start(&dir.0, &w.name, &b)
                .unwrap_or_else(|e| panic!("cut at {cut} (+{zeros} zeros) refused: {e}"));
            assert!(got.0 >= before, "cut at {cut}: acknowledged records lost");
            assert!(
                got == refs[&whole],
                "cut at {cut}: exactly the whole records"
            );
            cases += 1;
        }
    }
    // After a start that cut a torn record, writing continues and the next
    // start has everything.
    for cut in [from + 3, (from + to) / 2, to - 1] {
        let whole = w.starts.iter().filter(|&&s| s <= cut).count() - 1;
        let mut b = w.bytes[..cut].to_vec();
        b.resize(cut + 4096, 0);
        start(&dir.0, &w.name, &b).unwrap();
        let s = settings(&dir.0);
        let (_, mut log) = datadir::open(&s, Instant::now(), 0).unwrap();
        let z = whole as i64 + 1;
        log.append(z, &txn(z).encode());
        assert_eq!(log.flush().unwrap(), Some(z));
        drop(log);
        let (server, _) = datadir::open(&s, Instant::now(), 0).unwrap();
        assert_eq!(
            server.last_zxid().0,
            z,
            "cut at {cut}: appended after the cut"
        );
    }
    eprintln!("{cases} torn last writes, all started");
}

/// Version 1 segments (no header checksum) are still read, with the best
/// rule they allow: a flipped length bit is refused or harmless there too;
/// new records go to a new version 2 segment.
#[test]
fn version_1_segments_are_read_and_continued_in_version_2() {
    let dir = Dir::new("v1");
    let mut bytes = storage::log_header_v1(1).to_vec();
    let mut starts = vec![bytes.len()];
    for z in 1..=120 {
        storage::encode_record_v1(&txn(z).encode(), &mut bytes);
        starts.push(bytes.len());
    }
    let mut writes = starts.clone();
    writes.retain(|s| *s == starts[0] || *s == *starts.last().unwrap() || s % 3 == 0);
    bytes.resize(bytes.len() + 4096, 0);
    let w = Written {
        bytes,
        starts,
        writes,
        name: "log.0000000000000001".into(),
    };
    let full = start(&dir.0, &w.name, &w.bytes).unwrap();
    assert_eq!(full.0, 120);
    let (mut cases, mut refused) = (0, 0);
    for win in w.starts.windows(2) {
        for byte in [win[0], win[0] + 1, win[0] + 2, win[0] + 3, win[1] - 1] {
            for bit in 0..8 {
                check_flip(&dir.0, &w, &full, byte, bit, &mut refused);
                cases += 1;
            }
        }
    }
    // Every bit of the last record (no record after it to give it away).
    for byte in w.starts[119]..w.starts[120] {
        for bit in 0..8 {
            check_flip(&dir.0, &w, &full, byte, bit, &mut refused);
            cases += 1;
        }
    }
    eprintln!("{cases} damaged version 1 copies: {refused} refused");
    // Torn last record, at every byte, with zeros after. Version 1 cannot
    // tell a cut that leaves out one set bit from that bit damaged: those
    // few are refused (no guessing), every other one starts.
    let (a, b) = (w.starts[119], w.starts[120]);
    let mut ambiguous = 0;
    for cut in a..b {
        let mut t = w.bytes[..cut].to_vec();
        t.resize(cut + 64, 0);
        match start(&dir.0, &w.name, &t) {
            Ok(got) => assert_eq!(got.0, 119, "v1 cut at {cut}"),
            Err(e) if e.contains("either a write cut short or one damaged bit") => ambiguous += 1,
            Err(e) => panic!("v1 cut {cut}: {e}"),
        }
    }
    eprintln!(
        "{} torn version 1 records: {ambiguous} ambiguous, refused",
        b - a
    );
    assert!(ambiguous <= 8, "only cuts that leave out a single set bit");
    // A start continues in a version 2 segment; the old one is untouched.
    start(&dir.0, &w.name, &w.bytes).unwrap();
    let s = settings(&dir.0);
    let (_, mut log) = datadir::open(&s, Instant::now(), 0).unwrap();
    log.append(121, &txn(121).encode());
    assert_eq!(log.flush().unwrap(), Some(121));
    drop(log);
    let v = dir.0.join("version-1");
    assert_eq!(
        std::fs::read(v.join(&w.name)).unwrap(),
        w.bytes,
        "v1 untouched"
    );
    let new = std::fs::read(v.join("log.0000000000000079")).unwrap();
    assert_eq!(scan_version(&new), storage::LOG_VERSION);
    let (server, _) = datadir::open(&s, Instant::now(), 0).unwrap();
    assert_eq!(server.last_zxid().0, 121);
}

fn scan_version(b: &[u8]) -> u32 {
    storage::scan_log(b).unwrap().version
}

/// `pookeeper repair`: diagnoses without changing anything; with
/// `--truncate-at` keeps a copy of the cut bytes, then the server starts
/// with the records before the cut.
#[test]
fn repair_keeps_a_copy_and_cuts() {
    let w = write_log(60);
    let dir = Dir::new("repair");
    let mut b = w.bytes.clone();
    let at = w.starts[30];
    b[at + 1] ^= 0x02;
    let err = start(&dir.0, &w.name, &b).unwrap_err();
    let path = dir.0.join("version-1").join(&w.name);
    assert!(
        err.contains(&format!("--truncate-at {}:{at}", path.display())),
        "{err}"
    );
    let s = settings(&dir.0);
    let r = datadir::repair(&s, None).unwrap();
    assert!(!r.startable, "{}", r.text);
    assert!(r.text.contains(&format!("offset {at}")), "{}", r.text);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b,
        "diagnosis changes nothing"
    );
    let r = datadir::repair(&s, Some((path.display().to_string(), at as u64))).unwrap();
    assert!(r.startable, "{}", r.text);
    let copy = dir
        .0
        .join("version-1/damaged")
        .join(format!("{}.from-{at}", w.name));
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        &b[at..],
        "the cut bytes kept"
    );
    assert_eq!(std::fs::read(&path).unwrap(), &b[..at]);
    let (server, _) = datadir::open(&s, Instant::now(), 0).unwrap();
    assert_eq!(server.last_zxid().0, 30);
}

/// Every error about a data file names it: a dataDir that is a regular
/// file (root ignores permissions, so this stands in for a read-only
/// directory), and a segment that cannot be read.
#[test]
fn start_up_errors_name_the_path() {
    let dir = Dir::new("paths");
    let file = dir.0.join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let e = datadir::open(&settings(&file), Instant::now(), 0).unwrap_err();
    assert!(e.to_string().contains(&file.display().to_string()), "{e}");
    // A segment that is a directory cannot be read.
    let d = Dir::new("paths2");
    let seg = d.0.join("version-1/log.0000000000000001");
    std::fs::create_dir_all(&seg).unwrap();
    let e = datadir::open(&settings(&d.0), Instant::now(), 0).unwrap_err();
    assert!(e.to_string().contains(&seg.display().to_string()), "{e}");
}

/// A newest segment whose creation a crash cut short (part of its header,
/// then zeros) holds nothing: the start writes it again, by itself.
#[test]
fn an_unfinished_newest_segment_is_written_again() {
    let w = write_log(20);
    let dir = Dir::new("unfinished");
    start(&dir.0, &w.name, &w.bytes).unwrap();
    let s = settings(&dir.0);
    let next = dir.0.join("version-1/log.0000000000000015");
    for cut in [0, 5, 15] {
        let mut h = storage::log_header(21)[..cut].to_vec();
        h.resize(cut + 100, 0);
        std::fs::write(&next, &h).unwrap();
        let (server, mut log) = datadir::open(&s, Instant::now(), 0)
            .unwrap_or_else(|e| panic!("header cut at {cut}: {e}"));
        assert_eq!(server.last_zxid().0, 20);
        log.append(21, &txn(21).encode());
        assert_eq!(log.flush().unwrap(), Some(21));
        drop(log);
        let b = std::fs::read(&next).unwrap();
        assert_eq!(storage::scan_log(&b).unwrap().txns.len(), 1, "cut {cut}");
        let (server, _) = datadir::open(&s, Instant::now(), 0).unwrap();
        assert_eq!(server.last_zxid().0, 21);
        std::fs::remove_file(&next).unwrap();
    }
}

/// Cutting a segment that is not the newest: the later ones cannot follow
/// it any more, so `repair` moves them to `damaged/` as well.
#[test]
fn repair_moves_segments_that_cannot_follow() {
    let dir = Dir::new("repair2");
    let v = dir.0.join("version-1");
    std::fs::create_dir_all(&v).unwrap();
    let mut offsets = Vec::new();
    for (first, last) in [(1, 30), (31, 60)] {
        let mut b = storage::log_header(first).to_vec();
        for z in first..=last {
            if first == 1 {
                offsets.push(b.len());
            }
            storage::encode_record(&txn(z).encode(), &mut b);
        }
        std::fs::write(v.join(format!("log.{first:016x}")), b).unwrap();
    }
    let a = v.join("log.0000000000000001");
    let mut b = std::fs::read(&a).unwrap();
    let at = offsets[9];
    b[at] ^= 0x80;
    std::fs::write(&a, &b).unwrap();
    let s = settings(&dir.0);
    let e = datadir::open(&s, Instant::now(), 0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("{}: corrupt record at offset {at}", a.display())),
        "{e}"
    );
    let r = datadir::repair(&s, Some(("log.0000000000000001".into(), at as u64))).unwrap();
    assert!(r.startable, "{}", r.text);
    assert!(r.text.contains("moved"), "{}", r.text);
    assert!(v.join("damaged/log.000000000000001f").is_file());
    assert!(!v.join("log.000000000000001f").exists());
    let (server, _) = datadir::open(&s, Instant::now(), 0).unwrap();
    assert_eq!(server.last_zxid().0, 9);
}
