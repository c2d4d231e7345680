//! Tests of the data directory: group commit on the sync thread, failures,
//! snapshot points and segments, disk error messages.

use super::*;
use pookeeper_core::proto::records::{Acl, AclList};
use pookeeper_core::txn::{Txn, TxnOp};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh data directory, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("pk-datadir-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn create(z: i64) -> bytes::Bytes {
    Txn {
        zxid: z,
        time: 1_700_000_000_000 + z,
        session: 0,
        cxid: z as i32,
        op: TxnOp::Create {
            path: format!("/n{z}"),
            data: None,
            acl: std::iter::once(Acl::open()).collect::<AclList>(),
            ephemeral_owner: 0,
            parent_cversion: z as i32,
        },
    }
    .encode()
}

/// Polls until the batch in flight is reported (the sync thread runs
/// on its own).
fn wait_flushed(log: &mut DiskLog) -> i64 {
    let t0 = Instant::now();
    loop {
        if let Some(z) = log.poll_flushed().unwrap() {
            return z;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "batch never finished"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A data directory in `dir` that never snapshots on its own.
fn settings_in(dir: &TempDir, force_sync: bool) -> Settings {
    Settings {
        data_dir: dir.0.display().to_string(),
        force_sync,
        snap_count: 1 << 40,
        ..Settings::default()
    }
}

#[test]
fn appends_during_a_sync_share_the_next_single_sync() {
    let dir = TempDir::new("group");
    let settings = settings_in(&dir, true);
    let (_, mut log) = open(&settings, Instant::now(), 0).unwrap();
    let wakes = Arc::new(AtomicUsize::new(0));
    let w = wakes.clone();
    log.set_waker(Box::new(move || {
        w.fetch_add(1, Ordering::SeqCst);
    }));
    let shared = log.sync.shared.clone();
    assert!(!log.start_flush().unwrap(), "nothing to write");

    // Batch 1 (zxid 1) is held in flight by the gate.
    let gate = lock(&shared.gate);
    log.append(1, &create(1));
    assert!(log.start_flush().unwrap());
    assert!(log.in_flight());
    // While it syncs the loop goes on: 2..=4 gather in the buffer and
    // are not handed over (one batch at a time).
    for z in 2..=4 {
        log.append(z, &create(z));
        assert!(!log.start_flush().unwrap(), "a batch is in flight");
    }
    assert_eq!(log.poll_flushed().unwrap(), None);
    assert!(log.has_pending());
    drop(gate);
    assert_eq!(wait_flushed(&mut log), 1);
    assert_eq!(log.syncs(), 1);
    assert_eq!(log.poll_flushed().unwrap(), None, "reported once");
    assert!(!log.in_flight());

    // Batch 2: everything that arrived meanwhile, one write and one
    // sync; 5 and 6 arrive during it.
    let gate = lock(&shared.gate);
    assert!(log.start_flush().unwrap());
    assert!(!log.has_pending());
    log.append(5, &create(5));
    log.append(6, &create(6));
    assert!(!log.start_flush().unwrap());
    drop(gate);
    assert_eq!(wait_flushed(&mut log), 4, "2, 3 and 4 in one batch");
    assert_eq!(log.syncs(), 2);
    assert_eq!(log.last_durable, 4);

    // Batch 3 (5 and 6), then a blocking flush with a batch in flight
    // and 7 waiting: it waits for the one and writes the other.
    assert!(log.start_flush().unwrap());
    log.append(7, &create(7));
    assert_eq!(log.flush().unwrap(), Some(7));
    assert_eq!(log.syncs(), 4);
    assert_eq!(log.poll_flushed().unwrap(), None);
    assert_eq!(log.flush().unwrap(), None);
    // (The wake follows the result: count once the thread has ended.)
    drop(log);
    assert_eq!(wakes.load(Ordering::SeqCst), 4, "one wake per batch");

    // The segment holds 1..=7 in order, and a start recovers them.
    let seg = version_dir(&settings.data_dir).join(format!("log.{:016x}", 1));
    let scan = storage::scan_log(&read(&seg).unwrap()).unwrap();
    let zxids: Vec<i64> = scan.txns.iter().map(|t| t.zxid).collect();
    assert_eq!(zxids, (1..=7).collect::<Vec<_>>());
    assert_eq!(scan.end, LogEnd::Clean);
    let (server, _) = open(&settings, Instant::now(), 0).unwrap();
    assert_eq!(server.last_zxid().0, 7);
}

/// A snapshot makes the next batch start a new segment (once), so that
/// recovery from it reads little log before what it needs.
#[test]
fn the_batch_after_a_snapshot_starts_a_new_segment() {
    let dir = TempDir::new("snaproll");
    let settings = settings_in(&dir, false);
    let (mut server, mut log) = open(&settings, Instant::now(), 0).unwrap();
    for z in 1..=3 {
        log.append(z, &create(z));
    }
    assert_eq!(log.flush().unwrap(), Some(3));
    log.snapshot_work(&mut server, true).unwrap();
    assert!(log.snap_job.is_some(), "a forced snapshot started");
    log.append(4, &create(4));
    assert_eq!(log.flush().unwrap(), Some(4));
    log.append(5, &create(5));
    assert_eq!(log.flush().unwrap(), Some(5));
    let t0 = Instant::now();
    while log.snap_job.is_some() {
        log.snapshot_work(&mut server, false).unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "snapshot never finished"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let logs: Vec<i64> = list(&version_dir(&settings.data_dir), "log")
        .unwrap()
        .into_iter()
        .map(|(z, _)| z)
        .collect();
    assert_eq!(logs, vec![1, 4], "one roll, at the first batch after it");
}

#[test]
fn a_failed_batch_stops_the_log_with_the_same_error_every_time() {
    let dir = TempDir::new("failed");
    let settings = settings_in(&dir, true);
    let (_, mut log) = open(&settings, Instant::now(), 0).unwrap();
    // A file opened read-only: the write fails on the sync thread.
    log.file = Arc::new(File::open(&log.path).unwrap());
    log.append(1, &create(1));
    let e = log.flush().unwrap_err().to_string();
    assert!(e.starts_with("cannot write "), "{e}");
    assert!(e.contains("of the log segment"), "{e}");
    assert!(
        e.ends_with("stopping, no acknowledged write is lost"),
        "{e}"
    );
    log.append(2, &create(2));
    assert_eq!(log.start_flush().unwrap_err().to_string(), e);
    assert_eq!(log.poll_flushed().unwrap_err().to_string(), e);
    assert_eq!(log.flush().unwrap_err().to_string(), e);
    assert_eq!(log.syncs(), 0);
}

/// A full disk: the message names the file, what was being written
/// and the free space (checked by hand on a full tmpfs: "cannot write
/// 1048589 bytes at offset 16 of the log segment …/log.…: No space
/// left on device (os error 28) (0 bytes free on the file system of
/// …); stopping, no acknowledged write is lost").
#[test]
fn snapshot_points_are_spread_over_the_upper_half_of_snap_count() {
    let mut rng = 7;
    let points: Vec<i64> = (0..1000)
        .map(|_| snapshot_point(100_000, &mut rng))
        .collect();
    assert!(
        points.iter().all(|&p| (50_000..100_000).contains(&p)),
        "{points:?}"
    );
    let distinct: std::collections::BTreeSet<_> = points.iter().collect();
    assert!(
        distinct.len() > 900,
        "only {} distinct points",
        distinct.len()
    );
    // The smallest allowed snapCount still gives a point of at least 1.
    assert_eq!(snapshot_point(2, &mut rng), 1);
    // Two servers seeded differently choose different points.
    let (mut a, mut b) = (seed(), seed() ^ 1);
    assert_ne!(
        (0..4)
            .map(|_| snapshot_point(1 << 20, &mut a))
            .collect::<Vec<_>>(),
        (0..4)
            .map(|_| snapshot_point(1 << 20, &mut b))
            .collect::<Vec<_>>()
    );
}

#[test]
fn disk_errors_name_the_file_and_the_free_space() {
    let dir = std::env::temp_dir();
    let path = dir.join("log.0000000000000001");
    let e = disk_error(
        io::Error::from_raw_os_error(28),
        "cannot write 100 bytes at offset 16 of the log segment",
        &path,
    );
    let m = e.to_string();
    assert!(m.contains(&path.display().to_string()), "{m}");
    assert!(m.contains("100 bytes at offset 16"), "{m}");
    assert!(m.contains("os error 28"), "{m}");
    #[cfg(unix)]
    assert!(m.contains("bytes free on the file system of"), "{m}");
    assert_eq!(e.raw_os_error(), None, "wrapped, kind kept");
    assert_eq!(e.kind(), io::Error::from_raw_os_error(28).kind());
}
