//! The data directory: log segments and snapshots on disk, recovery at
//! start, group commit, atomic snapshots. Shared by every runtime.
//!
//! Layout (as ZooKeeper's, with our own file formats):
//!
//! ```text
//! <dataLogDir>/version-1/log.<first zxid, 16 hex digits>
//! <dataDir>/version-1/snapshot.<zxid, 16 hex digits>
//! ```

use crate::txlog::TxLog;
use crate::{info, warn, Settings};
use pookeeper_core::storage::{self, LogEnd};
use pookeeper_core::{Recovered, RecoveryError, Server};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Segments are preallocated in steps of this size (zeros), so appends
/// rarely change the file size (one fdatasync then covers data only).
const PREALLOC: u64 = 16 << 20;

fn version_dir(root: &str) -> PathBuf {
    Path::new(root).join("version-1")
}

/// Files of one kind (`log` or `snapshot`) with their zxids, oldest first.
fn list(dir: &Path, prefix: &str) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in rd {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(hex) = name.strip_prefix(prefix).and_then(|n| n.strip_prefix('.')) else {
            continue;
        };
        if let Ok(z) = i64::from_str_radix(hex, 16) {
            out.push((z, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What is on disk, for `pookeeper inspect`.
pub fn describe(settings: &Settings) -> io::Result<String> {
    let mut o = String::new();
    let snap_dir = version_dir(&settings.data_dir);
    let log_dir = version_dir(
        settings
            .data_log_dir
            .as_deref()
            .unwrap_or(&settings.data_dir),
    );
    o.push_str(&format!("snapshots in {}:\n", snap_dir.display()));
    for (z, p) in list(&snap_dir, "snapshot")? {
        let bytes = fs::read(&p)?;
        let verdict =
            match Server::recover(settings.core.clone(), Instant::now(), 0, Some(&bytes), &[]) {
                Ok((_, r)) => format!("valid, {} znodes, {} sessions", r.znodes, r.sessions),
                Err(e) => format!("INVALID: {e}"),
            };
        o.push_str(&format!(
            "  {} zxid {z:#x} {} bytes: {verdict}\n",
            p.display(),
            bytes.len()
        ));
    }
    o.push_str(&format!("log segments in {}:\n", log_dir.display()));
    for (z, p) in list(&log_dir, "log")? {
        let bytes = fs::read(&p)?;
        let verdict = match storage::scan_log(&bytes) {
            Ok(s) => {
                let range = match (s.txns.first(), s.txns.last()) {
                    (Some(a), Some(b)) => format!("zxid {:#x}..={:#x}", a.zxid, b.zxid),
                    _ => "empty".into(),
                };
                let tail = match s.end {
                    LogEnd::Clean => String::new(),
                    LogEnd::TornTail { offset } => format!(", torn tail at offset {offset}"),
                };
                format!("{} txns, {range}{tail}", s.txns.len())
            }
            Err(e) => format!("CORRUPT: {e}"),
        };
        o.push_str(&format!(
            "  {} (first zxid {z:#x}): {verdict}\n",
            p.display()
        ));
    }
    Ok(o)
}

/// Recovers the server from the data directory (newest valid snapshot plus
/// the log after it) and opens the log for appending.
pub fn open(settings: &Settings, now: Instant, wall_ms: i64) -> io::Result<(Server, DiskLog)> {
    let snap_dir = version_dir(&settings.data_dir);
    let log_dir = version_dir(
        settings
            .data_log_dir
            .as_deref()
            .unwrap_or(&settings.data_dir),
    );
    fs::create_dir_all(&snap_dir)?;
    fs::create_dir_all(&log_dir)?;
    // What `conf` shows: the directories the files are in, as ZooKeeper.
    let mut core = settings.core.clone();
    core.data_dir = snap_dir.display().to_string();
    core.data_log_dir = log_dir.display().to_string();
    // A snapshot that was being written when the server stopped.
    for entry in fs::read_dir(&snap_dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".snapshot.") && name.ends_with(".tmp") {
            info!("removing unfinished snapshot {}", entry.path().display());
            let _ = fs::remove_file(entry.path());
        }
    }
    let started = Instant::now();
    let logs = list(&log_dir, "log")?;
    // Segments are read only from the one holding the first transaction
    // after the snapshot used (older ones may not have been purged).
    let mut log_bytes: Vec<Option<Vec<u8>>> = vec![None; logs.len()];
    let first_needed = |zxid: i64| -> usize {
        logs.iter()
            .rposition(|(start, _)| *start <= zxid + 1)
            .unwrap_or(0)
    };
    let load = |from: usize, log_bytes: &mut Vec<Option<Vec<u8>>>| -> io::Result<()> {
        for (i, (_, p)) in logs.iter().enumerate().skip(from) {
            if log_bytes[i].is_none() {
                log_bytes[i] = Some(fs::read(p)?);
            }
        }
        Ok(())
    };
    let snaps = list(&snap_dir, "snapshot")?;
    let bad = |e: RecoveryError, first: usize| -> io::Error {
        let msg = match &e {
            RecoveryError::Log { segment, error } => format!(
                "{}: {error} (move the file away, or truncate it at that offset, to start)",
                logs.get(first + *segment)
                    .map_or_else(String::new, |l| l.1.display().to_string())
            ),
            _ => e.to_string(),
        };
        io::Error::new(io::ErrorKind::InvalidData, msg)
    };
    // Newest valid snapshot first; a damaged one is skipped with a warning.
    let mut result: Option<(Server, Recovered)> = None;
    for (z, path) in snaps.iter().rev() {
        let bytes = fs::read(path)?;
        info!("loading snapshot {} (zxid {z:#x})", path.display());
        let first = first_needed(*z);
        load(first, &mut log_bytes)?;
        let refs: Vec<&[u8]> = log_bytes[first..]
            .iter()
            .flatten()
            .map(Vec::as_slice)
            .collect();
        match Server::recover(core.clone(), now, wall_ms, Some(&bytes), &refs) {
            Ok(r) => {
                result = Some(r);
                break;
            }
            Err(RecoveryError::Snapshot(e)) => {
                warn!("skipping snapshot {}: {e}", path.display())
            }
            Err(e) => return Err(bad(e, first)),
        }
    }
    let (server, report) = match result {
        Some(r) => r,
        None => {
            load(0, &mut log_bytes)?;
            let refs: Vec<&[u8]> = log_bytes.iter().flatten().map(Vec::as_slice).collect();
            Server::recover(core.clone(), now, wall_ms, None, &refs).map_err(|e| bad(e, 0))?
        }
    };
    info!(
        "recovered to zxid {:#x} in {} ms: {} znodes, {} sessions, {} txns replayed from {} log segments",
        report.last_zxid,
        started.elapsed().as_millis(),
        report.znodes,
        report.sessions,
        report.txns_replayed,
        log_bytes.iter().flatten().count()
    );
    // Continue in the last segment after its last valid record (cutting a
    // torn tail off), or start a new one.
    let log = match logs.last() {
        Some((_, path)) => {
            let scan =
                storage::scan_log(log_bytes.last().and_then(Option::as_deref).unwrap_or(&[]))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if let LogEnd::TornTail { offset } = scan.end {
                warn!(
                    "cutting a torn record off {} at offset {offset}",
                    path.display()
                );
            }
            DiskLog::resume(log_dir, path.clone(), scan.valid_len as u64, settings)?
        }
        None => DiskLog::create(log_dir, report.last_zxid + 1, settings)?,
    };
    let mut log = log;
    log.snap_dir = snap_dir;
    log.last_durable = report.last_zxid;
    log.last_snapshot = report.snapshot_zxid.unwrap_or(0);
    Ok((server, log))
}

/// The on-disk transaction log.
#[derive(Debug)]
pub struct DiskLog {
    log_dir: PathBuf,
    snap_dir: PathBuf,
    file: File,
    /// Where the next record goes.
    offset: u64,
    /// Current file size (data plus zero padding).
    allocated: u64,
    segment_limit: u64,
    force_sync: bool,
    /// Records of this loop turn, written by `flush` in one go.
    buf: Vec<u8>,
    first_pending: Option<i64>,
    pending: Option<i64>,
    last_durable: i64,
    last_snapshot: i64,
    snap_count: i64,
    /// `autopurge.snapRetainCount` when `autopurge.purgeInterval` > 0.
    purge_retain: Option<usize>,
    /// The snapshot being written.
    snap_job: Option<SnapJob>,
    /// An operator asked for a snapshot (`csnp`) that has not started yet:
    /// it waits for the one being written, or for the log to be flushed.
    snap_forced: bool,
}

/// How much of a snapshot is encoded per loop turn.
const SNAP_CHUNK: usize = 1 << 20;

/// A snapshot on its way to disk: the loop encodes it chunk by chunk, a
/// thread writes the chunks to a temporary file and puts it in place.
#[derive(Debug)]
struct SnapJob {
    zxid: i64,
    path: PathBuf,
    started: Instant,
    bytes: u64,
    /// None once the last chunk is sent (the writer then syncs and renames).
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    /// A chunk the writer could not take yet (it is behind).
    waiting: Option<Vec<u8>>,
    writer: std::thread::JoinHandle<io::Result<()>>,
}

impl SnapJob {
    fn start(snap_dir: &Path, zxid: i64) -> io::Result<Self> {
        let tmp = snap_dir.join(format!(".snapshot.{zxid:016x}.tmp"));
        let path = snap_dir.join(format!("snapshot.{zxid:016x}"));
        let mut file = File::create(&tmp)?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
        let (dir, dest) = (snap_dir.to_path_buf(), path.clone());
        let writer = std::thread::Builder::new()
            .name("snapshot-writer".into())
            .spawn(move || -> io::Result<()> {
                let written = (|| {
                    let mut complete = false;
                    for chunk in rx {
                        // An empty chunk marks the end of a complete snapshot.
                        if chunk.is_empty() {
                            complete = true;
                            break;
                        }
                        file.write_all(&chunk)?;
                    }
                    if !complete {
                        return Err(io::Error::other("snapshot abandoned"));
                    }
                    file.sync_all()?;
                    fs::rename(&tmp, &dest)?;
                    sync_dir(&dir)
                })();
                if written.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                written
            })?;
        info!("snapshot of zxid {zxid:#x} started");
        Ok(Self {
            zxid,
            path,
            started: Instant::now(),
            bytes: 0,
            tx: Some(tx),
            waiting: None,
            writer,
        })
    }

    fn encoding(&self) -> bool {
        self.tx.is_some()
    }

    fn written(&self) -> bool {
        self.writer.is_finished()
    }

    /// Encodes and hands over the next chunk, unless the writer is behind.
    fn feed(&mut self, server: &mut Server) -> io::Result<()> {
        use std::sync::mpsc::TrySendError;
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        let chunk = match self.waiting.take() {
            Some(c) => c,
            None => {
                let mut c = Vec::with_capacity(SNAP_CHUNK + 4096);
                let done = match server.snapshot_step(&mut c, SNAP_CHUNK) {
                    pookeeper_core::SnapshotProgress::More => false,
                    pookeeper_core::SnapshotProgress::Done { .. } => true,
                    pookeeper_core::SnapshotProgress::Idle => {
                        return Err(io::Error::other("snapshot abandoned by the server"))
                    }
                };
                self.bytes += c.len() as u64;
                if done {
                    // The final chunk, then the end marker; both may block
                    // briefly if the writer is behind (once per snapshot).
                    let lost = || io::Error::other("snapshot writer stopped");
                    tx.send(c).map_err(|_| lost())?;
                    tx.send(Vec::new()).map_err(|_| lost())?;
                    self.tx = None;
                    return Ok(());
                }
                c
            }
        };
        match tx.try_send(chunk) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(c)) => {
                self.waiting = Some(c);
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => Err(io::Error::other("snapshot writer stopped")),
        }
    }

    /// Waits for the writer and reports.
    fn finish(self) -> (i64, io::Result<u64>) {
        drop(self.tx);
        let result = match self.writer.join() {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("snapshot writer panicked")),
        };
        match &result {
            Ok(()) => info!(
                "snapshot {} written: {} bytes in {} ms",
                self.path.display(),
                self.bytes,
                self.started.elapsed().as_millis()
            ),
            Err(e) => warn!("snapshot of zxid {:#x} failed: {e}", self.zxid),
        }
        (self.zxid, result.map(|()| self.bytes))
    }
}

impl DiskLog {
    /// A new, preallocated segment whose first record will be `first_zxid`.
    fn new_segment(log_dir: &Path, first_zxid: i64) -> io::Result<File> {
        let path = log_dir.join(format!("log.{first_zxid:016x}"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        file.write_all(&storage::log_header(first_zxid))?;
        file.set_len(PREALLOC)?;
        file.sync_all()?;
        sync_dir(log_dir)?;
        Ok(file)
    }

    fn create(log_dir: PathBuf, first_zxid: i64, settings: &Settings) -> io::Result<Self> {
        let file = Self::new_segment(&log_dir, first_zxid)?;
        Ok(Self::with_file(
            log_dir,
            file,
            storage::LOG_HEADER_LEN as u64,
            PREALLOC,
            settings,
        ))
    }

    fn resume(
        log_dir: PathBuf,
        path: PathBuf,
        valid_len: u64,
        settings: &Settings,
    ) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        // Zero whatever follows the valid records (a torn write), so a
        // shorter record written there later is not followed by garbage.
        file.set_len(valid_len)?;
        let allocated = (valid_len / PREALLOC + 1) * PREALLOC;
        file.set_len(allocated)?;
        file.sync_all()?;
        Ok(Self::with_file(
            log_dir, file, valid_len, allocated, settings,
        ))
    }

    fn with_file(
        log_dir: PathBuf,
        file: File,
        offset: u64,
        allocated: u64,
        settings: &Settings,
    ) -> Self {
        Self {
            snap_dir: log_dir.clone(),
            log_dir,
            file,
            offset,
            allocated,
            segment_limit: settings.segment_bytes,
            force_sync: settings.force_sync,
            buf: Vec::with_capacity(64 * 1024),
            first_pending: None,
            pending: None,
            last_durable: 0,
            last_snapshot: 0,
            snap_count: settings.snap_count as i64,
            purge_retain: (settings.purge_interval_hours > 0)
                .then_some(settings.snap_retain_count.max(3)),
            snap_job: None,
            snap_forced: false,
        }
    }

    fn roll(&mut self, first_zxid: i64) -> io::Result<()> {
        // Give back the unused preallocation of the finished segment.
        self.file.set_len(self.offset)?;
        self.file = Self::new_segment(&self.log_dir, first_zxid)?;
        self.offset = storage::LOG_HEADER_LEN as u64;
        self.allocated = PREALLOC;
        Ok(())
    }

    /// Whether appended records wait for `flush`.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Snapshot work for one loop turn. Starts a snapshot when `snapCount`
    /// transactions were logged since the last one (or `forced`) and the
    /// log is fully written, so the snapshot's zxid is durable; then, turn
    /// by turn, encodes about a megabyte of it and hands it to a writer
    /// thread (temporary file, fsync, rename, directory fsync), so requests
    /// are never held up for more than a few milliseconds, whatever the
    /// tree's size. When the file is in place, purges old files. The log
    /// rolls to a new segment when a snapshot starts.
    pub fn snapshot_work(&mut self, server: &mut Server, forced: bool) -> io::Result<()> {
        self.snap_forced |= forced;
        let Some(job) = self.snap_job.as_mut() else {
            let due = self.last_durable - self.last_snapshot >= self.snap_count;
            if (due || self.snap_forced) && self.buf.is_empty() && self.pending.is_none() {
                self.snap_forced = false;
                let zxid = server.begin_snapshot();
                match SnapJob::start(&self.snap_dir, zxid) {
                    Ok(job) => self.snap_job = Some(job),
                    Err(e) => {
                        server.abort_snapshot();
                        // Do not retry at once on every turn.
                        self.last_snapshot = self.last_durable;
                        return Err(e);
                    }
                }
                self.roll(zxid + 1)?;
            }
            return Ok(());
        };
        if job.encoding() {
            match job.feed(server) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    server.abort_snapshot();
                    let _ = self.finish_job();
                    self.last_snapshot = self.last_durable;
                    return Err(e);
                }
            }
        }
        if !job.written() {
            return Ok(());
        }
        let (zxid, result) = self.finish_job();
        match result {
            Ok(_) => {
                self.last_snapshot = zxid;
                if let Some(keep) = self.purge_retain {
                    self.purge(keep)?;
                }
                Ok(())
            }
            Err(e) => {
                self.last_snapshot = self.last_durable;
                Err(e)
            }
        }
    }

    /// Bytes in (snapshot directory, log directory), counting only files
    /// (as ZooKeeper's `conf` and `dirs`; the log's preallocated space
    /// counts). One directory holding both is counted for each.
    pub fn dir_sizes(&self) -> (u64, u64) {
        let size = |d: &Path| -> u64 {
            fs::read_dir(d)
                .map(|it| {
                    it.flatten()
                        .filter_map(|e| e.metadata().ok())
                        .filter(|m| m.is_file())
                        .map(|m| m.len())
                        .sum()
                })
                .unwrap_or(0)
        };
        (size(&self.snap_dir), size(&self.log_dir))
    }

    /// When the runtime should come back for snapshot work: at once while
    /// encoding, soon while the writer thread finishes.
    pub fn snapshot_wakeup(&self, now: Instant) -> Option<Instant> {
        let Some(job) = self.snap_job.as_ref() else {
            // A requested snapshot starts on the next turn.
            return self.snap_forced.then_some(now);
        };
        Some(if job.encoding() {
            now
        } else {
            now + std::time::Duration::from_millis(5)
        })
    }

    fn finish_job(&mut self) -> (i64, io::Result<u64>) {
        let Some(job) = self.snap_job.take() else {
            return (0, Ok(0));
        };
        job.finish()
    }

    /// Keeps the newest `keep` snapshots and the log segments needed to
    /// recover from the oldest of them; deletes the rest
    /// (`autopurge.snapRetainCount`).
    pub fn purge(&mut self, keep: usize) -> io::Result<()> {
        let snaps = list(&self.snap_dir, "snapshot")?;
        if snaps.len() <= keep {
            return Ok(());
        }
        let cut = snaps.len() - keep;
        let oldest_kept = snaps[cut].0;
        for (_, p) in &snaps[..cut] {
            fs::remove_file(p)?;
            info!("purged {}", p.display());
        }
        // A segment may go when the next one starts at or before the first
        // transaction after the oldest kept snapshot.
        let logs = list(&self.log_dir, "log")?;
        for w in logs.windows(2) {
            if w[1].0 <= oldest_kept + 1 {
                fs::remove_file(&w[0].1)?;
                info!("purged {}", w[0].1.display());
            }
        }
        Ok(())
    }
}

impl TxLog for DiskLog {
    fn append(&mut self, zxid: i64, entry: &[u8]) {
        if self.first_pending.is_none() {
            self.first_pending = Some(zxid);
        }
        storage::encode_record(entry, &mut self.buf);
        self.pending = Some(zxid);
    }

    fn flush(&mut self) -> io::Result<Option<i64>> {
        let Some(upto) = self.pending.take() else {
            return Ok(None);
        };
        let first = self.first_pending.take().unwrap_or(upto);
        if self.offset + self.buf.len() as u64 > self.segment_limit
            && self.offset > storage::LOG_HEADER_LEN as u64
        {
            self.roll(first)?;
        }
        let end = self.offset + self.buf.len() as u64;
        if end > self.allocated {
            self.allocated = (end / PREALLOC + 1) * PREALLOC;
            self.file.set_len(self.allocated)?;
        }
        let started = Instant::now();
        self.file.seek(SeekFrom::Start(self.offset))?;
        self.file.write_all(&self.buf)?;
        if self.force_sync {
            self.file.sync_data()?;
        }
        // ZooKeeper's fsync.warningthresholdms (default 1000).
        let took = started.elapsed();
        if took.as_millis() >= 1000 {
            warn!(
                "writing and syncing {} bytes of the transaction log took {} ms: the disk is slow, and every write waits for it",
                self.buf.len(),
                took.as_millis()
            );
        }
        self.offset = end;
        self.buf.clear();
        self.last_durable = upto;
        Ok(Some(upto))
    }
}
