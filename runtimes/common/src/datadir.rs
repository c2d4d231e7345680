//! The data directory: log segments and snapshots on disk, recovery at
//! start, group commit, atomic snapshots. Shared by every runtime. This
//! file holds recovery, repair and the `DiskLog` itself; `sync` is the
//! thread that writes and fdatasyncs each batch, `snapjob` the thread that
//! encodes and installs a snapshot.
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
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod snapjob;
mod sync;
#[cfg(test)]
mod tests;

use snapjob::SnapJob;
use sync::{lock, Batch, Finished, SyncThread};

/// Segments are preallocated in steps of this size (zeros), so appends
/// rarely change the file size (one fdatasync then covers data only).
const PREALLOC: u64 = 16 << 20;

fn version_dir(root: &str) -> PathBuf {
    Path::new(root).join("version-1")
}

/// The snapshot and log directories (`version-1/` of dataDir and dataLogDir).
fn dirs(settings: &Settings) -> (PathBuf, PathBuf) {
    let snap_dir = version_dir(&settings.data_dir);
    let log_dir = version_dir(
        settings
            .data_log_dir
            .as_deref()
            .unwrap_or(&settings.data_dir),
    );
    (snap_dir, log_dir)
}

/// Wraps an I/O error so that it names the file or directory (every file
/// error the server reports says which file).
fn at<'a>(what: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Free space for unprivileged users on the file system holding `path`.
fn free_space(path: &Path) -> String {
    #[cfg(unix)]
    {
        let dir = if path.is_dir() {
            path
        } else {
            path.parent().unwrap_or(path)
        };
        match rustix::fs::statvfs(dir) {
            Ok(s) => format!(
                "{} bytes free on the file system of {}",
                s.f_bavail.saturating_mul(s.f_frsize),
                dir.display()
            ),
            Err(e) => format!("free space unknown: {e}"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        "free space unknown".to_string()
    }
}

/// A failed log write or sync: names the file, what was being written,
/// and the free space (a full disk is the usual cause). The server stops
/// on it: nothing that was not durable has been acknowledged.
fn disk_error(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(
        e.kind(),
        format!(
            "{what} {}: {e} ({}); stopping, no acknowledged write is lost",
            path.display(),
            free_space(path)
        ),
    )
}

/// Files of one kind (`log` or `snapshot`) with their zxids, oldest first.
fn list(dir: &Path, prefix: &str) -> io::Result<Vec<(i64, PathBuf)>> {
    list_inner(dir, prefix).map_err(at("cannot list", dir))
}

fn list_inner(dir: &Path, prefix: &str) -> io::Result<Vec<(i64, PathBuf)>> {
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
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(at("cannot sync directory", dir))
}

fn read(path: &Path) -> io::Result<Vec<u8>> {
    fs::read(path).map_err(at("cannot read", path))
}

/// What is on disk, for `pookeeper inspect`.
pub fn describe(settings: &Settings) -> io::Result<String> {
    let mut o = String::new();
    let (snap_dir, log_dir) = dirs(settings);
    o.push_str(&format!("snapshots in {}:\n", snap_dir.display()));
    for (z, p) in list(&snap_dir, "snapshot")? {
        let bytes = read(&p)?;
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
    let logs = list(&log_dir, "log")?;
    for (i, (z, p)) in logs.iter().enumerate() {
        let bytes = read(p)?;
        let verdict = match storage::scan_log(&bytes) {
            _ if i + 1 == logs.len() && storage::is_unfinished_segment(&bytes, *z) => {
                "unfinished (its creation was cut short; holds no data)".to_string()
            }
            Ok(s) => {
                let range = match (s.txns.first(), s.txns.last()) {
                    (Some(a), Some(b)) => format!("zxid {:#x}..={:#x}", a.zxid, b.zxid),
                    _ => "empty".into(),
                };
                let tail = match s.end {
                    LogEnd::Clean => String::new(),
                    LogEnd::TornTail { offset } if i + 1 == logs.len() => {
                        format!(", torn tail at offset {offset} (cut off at start)")
                    }
                    LogEnd::TornTail { offset } => format!(
                        ", CORRUPT: torn record at offset {offset} in a segment that is not the last"
                    ),
                };
                format!("format {}, {} txns, {range}{tail}", s.version, s.txns.len())
            }
            Err(e @ storage::LogError::Corrupt { offset, .. }) => format!(
                "CORRUPT: {e} (the server refuses to start; see `pookeeper repair {} --truncate-at {}:{offset}`)",
                settings.data_dir,
                p.display()
            ),
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
///
/// Nothing on disk is shortened, zeroed, renamed or removed, except a real
/// torn tail of the newest segment (cut off), a newest segment whose
/// creation was cut short (holding nothing; written again) and unfinished
/// `.snapshot.*.tmp` files. Damage that a crash cannot explain stops the
/// start with an error naming the file and the offset;
/// [`repair`] (`pookeeper repair`) is the operator's way past it.
pub fn open(settings: &Settings, now: Instant, wall_ms: i64) -> io::Result<(Server, DiskLog)> {
    let (snap_dir, log_dir) = dirs(settings);
    fs::create_dir_all(&snap_dir).map_err(at("cannot create data directory", &snap_dir))?;
    fs::create_dir_all(&log_dir).map_err(at("cannot create data log directory", &log_dir))?;
    let (server, report, _logs, last) = recover(settings, &snap_dir, &log_dir, now, wall_ms, true)?;
    // Continue in the last segment after its last valid record (cutting a
    // torn tail off), or start a new one.
    let log = match last {
        Some(Last::Unfinished(path)) => {
            info!(
                "{} was being created when the server stopped (it holds no data): writing it again",
                path.display()
            );
            DiskLog::create(log_dir, report.last_zxid + 1, settings)?
        }
        Some(Last::Scanned { path, scan }) => {
            if let LogEnd::TornTail { offset } = scan.end {
                warn!(
                    "cutting a torn record (a write cut short by a crash, never acknowledged) off {} at offset {offset}",
                    path.display()
                );
            }
            if scan.version == storage::LOG_VERSION {
                DiskLog::resume(log_dir, path, scan.valid_len as u64, scan.end, settings)?
            } else {
                // An older format: cut a torn tail only, and continue in a
                // new segment of the current format.
                if let LogEnd::TornTail { offset } = scan.end {
                    cut_torn_tail(&path, offset as u64)?;
                }
                info!(
                    "{} is in log format {}: new records go to a new segment",
                    path.display(),
                    scan.version
                );
                DiskLog::create(log_dir, report.last_zxid + 1, settings)?
            }
        }
        None => DiskLog::create(log_dir, report.last_zxid + 1, settings)?,
    };
    let mut log = log;
    log.snap_dir = snap_dir;
    log.last_durable = report.last_zxid;
    log.last_snapshot = report.snapshot_zxid.unwrap_or(0);
    Ok((server, log))
}

/// The newest log segment, as recovery found it.
enum Last {
    /// Its creation was cut short: no data (`storage::is_unfinished_segment`).
    Unfinished(PathBuf),
    /// Read; `scan` says where its records end.
    Scanned {
        path: PathBuf,
        scan: storage::LogScan,
    },
}

type Recovery = (Server, Recovered, Vec<(i64, PathBuf)>, Option<Last>);

/// The read-only part of [`open`]: the state the files hold, or why they
/// cannot be used. Changes nothing, except removing stale
/// `.snapshot.*.tmp` files when `remove_tmp`.
fn recover(
    settings: &Settings,
    snap_dir: &Path,
    log_dir: &Path,
    now: Instant,
    wall_ms: i64,
    remove_tmp: bool,
) -> io::Result<Recovery> {
    // What `conf` shows: the directories the files are in, as ZooKeeper.
    let mut core = settings.core.clone();
    core.data_dir = snap_dir.display().to_string();
    core.data_log_dir = log_dir.display().to_string();
    // A snapshot that was being written when the server stopped.
    for entry in fs::read_dir(snap_dir)
        .map_err(at("cannot list", snap_dir))?
        .flatten()
    {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if remove_tmp && name.starts_with(".snapshot.") && name.ends_with(".tmp") {
            info!("removing unfinished snapshot {}", entry.path().display());
            let _ = fs::remove_file(entry.path());
        }
    }
    let started = Instant::now();
    let mut logs = list(log_dir, "log")?;
    // A newest segment whose creation was cut short holds nothing: leave it
    // out of recovery (it is written again).
    let mut unfinished = None;
    let mut last_bytes = None;
    if let Some((z, p)) = logs.last() {
        let bytes = read(p)?;
        if storage::is_unfinished_segment(&bytes, *z) {
            unfinished = logs.pop();
        } else {
            last_bytes = Some(bytes);
        }
    }
    // Segments are read only from the one holding the first transaction
    // after the snapshot used (older ones may not have been purged); the
    // newest always is.
    let mut log_bytes: Vec<Option<Vec<u8>>> = vec![None; logs.len()];
    if let Some(last) = log_bytes.last_mut() {
        *last = last_bytes;
    }
    let first_needed = |zxid: i64| -> usize {
        logs.iter()
            .rposition(|(start, _)| *start <= zxid + 1)
            .unwrap_or(0)
    };
    let load = |from: usize, log_bytes: &mut Vec<Option<Vec<u8>>>| -> io::Result<()> {
        for (i, (_, p)) in logs.iter().enumerate().skip(from) {
            if log_bytes[i].is_none() {
                log_bytes[i] = Some(read(p)?);
            }
        }
        Ok(())
    };
    let snaps = list(snap_dir, "snapshot")?;
    let bad = |e: RecoveryError, first: usize| -> io::Error {
        let msg = match &e {
            RecoveryError::Log { segment, error } => {
                let file = logs
                    .get(first + *segment)
                    .map_or_else(String::new, |l| l.1.display().to_string());
                match error {
                    storage::LogError::Corrupt { offset, .. } => format!(
                        "{file}: {error}; refusing to start, nothing was changed. \
                         To start anyway, accepting the loss of the transactions from there on: \
                         `pookeeper repair {}{} --truncate-at {file}:{offset}` \
                         (keeps a copy of what it cuts; see docs/storage.md)",
                        settings.data_dir,
                        settings
                            .data_log_dir
                            .as_ref()
                            .map_or_else(String::new, |d| format!(" --data-log-dir {d}"))
                    ),
                    _ => format!("{file}: {error}; refusing to start, nothing was changed"),
                }
            }
            _ => format!("{e}; refusing to start, nothing was changed"),
        };
        io::Error::new(io::ErrorKind::InvalidData, msg)
    };
    // Newest valid snapshot first; a damaged one is skipped with a warning.
    let mut result: Option<(Server, Recovered)> = None;
    for (z, path) in snaps.iter().rev() {
        let bytes = read(path)?;
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
    let last = match (unfinished, logs.last()) {
        (Some((z, path)), _) => {
            if z != report.last_zxid + 1 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: holds only part of a segment header, but the next transaction is {:#x}, not {z:#x}; refusing to start (move the file away)",
                        path.display(),
                        report.last_zxid + 1
                    ),
                ));
            }
            Some(Last::Unfinished(path))
        }
        (None, Some((_, path))) => {
            let bytes = log_bytes.last().and_then(Option::as_deref).unwrap_or(&[]);
            let scan = storage::scan_log(bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                .map_err(at("cannot read", path))?;
            Some(Last::Scanned {
                path: path.clone(),
                scan,
            })
        }
        (None, None) => None,
    };
    Ok((server, report, logs, last))
}

/// Cuts a torn tail (and the zeros after it) off a segment.
fn cut_torn_tail(path: &Path, offset: u64) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(at("cannot open", path))?;
    file.set_len(offset)
        .and_then(|()| file.sync_all())
        .map_err(at("cannot cut the torn tail off", path))
}

/// What `pookeeper repair` did or found.
#[derive(Debug)]
pub struct RepairReport {
    /// For the operator.
    pub text: String,
    /// Whether the data directory can be started from (after the repair).
    pub startable: bool,
}

/// `pookeeper repair DATADIR [--truncate-at FILE:OFFSET]`: the operator's
/// way past damage that recovery refuses.
///
/// Without `truncate_at` nothing is changed: it says whether the server
/// would start and, if a log segment is damaged, the command that cuts it.
/// With `truncate_at`, the bytes of FILE from OFFSET on are first copied to
/// `damaged/FILE.from-OFFSET` next to it (synced), then FILE is cut at
/// OFFSET; later segments that can no longer follow it (their first zxid
/// is beyond the last one left) are moved to `damaged/` as well. Stop the
/// server first.
pub fn repair(settings: &Settings, truncate_at: Option<(String, u64)>) -> io::Result<RepairReport> {
    let (snap_dir, log_dir) = dirs(settings);
    let mut text = String::new();
    if let Some((file, offset)) = truncate_at {
        let path = if file.contains('/') {
            PathBuf::from(&file)
        } else {
            log_dir.join(&file)
        };
        text.push_str(&truncate_segment(&path, offset)?);
    }
    // What a start would do now (read-only: a torn tail is reported, not cut).
    let readonly_check = if snap_dir.is_dir() && log_dir.is_dir() {
        recover(settings, &snap_dir, &log_dir, Instant::now(), 0, false)
            .map(|(_, r, _, last)| (r, last))
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no data directory at {}", snap_dir.display()),
        ))
    };
    let startable = match readonly_check {
        Ok((r, last)) => {
            text.push_str(&format!(
                "the server can start: it recovers to zxid {:#x} ({} znodes, {} sessions)\n",
                r.last_zxid, r.znodes, r.sessions
            ));
            if let Some(Last::Scanned {
                path,
                scan:
                    storage::LogScan {
                        end: LogEnd::TornTail { offset },
                        ..
                    },
            }) = last
            {
                text.push_str(&format!(
                    "{} ends in a torn record at offset {offset} (a write cut short, never acknowledged): it is cut off at start\n",
                    path.display()
                ));
            }
            true
        }
        Err(e) => {
            text.push_str(&format!("the server cannot start: {e}\n"));
            false
        }
    };
    Ok(RepairReport { text, startable })
}

/// A path in `dir` named `name` that does not exist yet.
fn fresh_name(dir: &Path, name: &str) -> PathBuf {
    let mut p = dir.join(name);
    let mut n = 1;
    while p.exists() {
        n += 1;
        p = dir.join(format!("{name}.{n}"));
    }
    p
}

/// Cuts the segment `path` at `offset`, keeping a copy of what goes.
fn truncate_segment(path: &Path, offset: u64) -> io::Result<String> {
    let bytes = read(path)?;
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.starts_with("log."))
        .ok_or_else(|| invalid(format!("{} is not a log segment (log.*)", path.display())))?
        .to_string();
    if bytes.get(..4) != Some(&storage::LOG_MAGIC[..]) {
        return Err(invalid(format!(
            "{} is not a log segment (bad header)",
            path.display()
        )));
    }
    if offset < storage::LOG_HEADER_LEN as u64 || offset > bytes.len() as u64 {
        return Err(invalid(format!(
            "offset {offset} is outside the records of {} ({} to {} bytes)",
            path.display(),
            storage::LOG_HEADER_LEN,
            bytes.len()
        )));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let damaged = dir.join("damaged");
    fs::create_dir_all(&damaged).map_err(at("cannot create", &damaged))?;
    let mut text = String::new();
    // 1. A copy of what is cut, made durable before anything is cut.
    let copy = fresh_name(&damaged, &format!("{name}.from-{offset}"));
    let removed = &bytes[offset as usize..];
    (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&copy)?;
        f.write_all(removed)?;
        f.sync_all()
    })()
    .map_err(|e| disk_error(e, "cannot save the bytes to be cut to", &copy))?;
    sync_dir(&damaged)?;
    // 2. The cut.
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(at("cannot open", path))?;
    file.set_len(offset)
        .and_then(|()| file.sync_all())
        .map_err(|e| disk_error(e, "cannot cut", path))?;
    text.push_str(&format!(
        "cut {} bytes off {} at offset {offset}; they are kept in {}\n",
        removed.len(),
        path.display(),
        copy.display()
    ));
    // 3. Later segments that can no longer follow.
    let mut last = match storage::scan_log(&bytes[..offset as usize]) {
        Ok(s) => s
            .txns
            .last()
            .map_or(s.first_zxid.saturating_sub(1), |t| t.zxid),
        Err(e) => {
            text.push_str(&format!(
                "{} is still damaged before that offset: {e}\n",
                path.display()
            ));
            return Ok(text);
        }
    };
    text.push_str(&format!(
        "{} now ends with zxid {last:#x}\n",
        path.display()
    ));
    let start = list(dir, "log")?
        .into_iter()
        .filter(|(_, p)| p.file_name() != path.file_name());
    let this = name
        .strip_prefix("log.")
        .and_then(|h| i64::from_str_radix(h, 16).ok())
        .unwrap_or(i64::MIN);
    let mut moving = false;
    for (z, p) in start.filter(|(z, _)| *z > this) {
        if !moving {
            if z <= last + 1 {
                if let Ok(s) = storage::scan_log(&read(&p)?) {
                    last = s.txns.last().map_or(last, |t| t.zxid.max(last));
                }
                continue;
            }
            moving = true;
        }
        let to = fresh_name(
            &damaged,
            p.file_name().and_then(|n| n.to_str()).unwrap_or("log"),
        );
        fs::rename(&p, &to).map_err(at("cannot move", &p))?;
        text.push_str(&format!(
            "moved {} to {} (its transactions cannot follow zxid {last:#x})\n",
            p.display(),
            to.display()
        ));
    }
    sync_dir(&damaged)?;
    sync_dir(dir)?;
    Ok(text)
}

/// The on-disk transaction log.
#[derive(Debug)]
pub struct DiskLog {
    log_dir: PathBuf,
    snap_dir: PathBuf,
    /// The current segment (shared with the sync thread while it writes a
    /// batch; segments are rolled and extended only between batches).
    file: Arc<File>,
    /// The current segment.
    path: PathBuf,
    /// Where the next batch goes (the batch in flight ends here).
    offset: u64,
    /// Current file size (data plus zero padding).
    allocated: u64,
    segment_limit: u64,
    force_sync: bool,
    /// Records appended since the last batch was handed to the sync
    /// thread: the next batch, written in one go.
    buf: Vec<u8>,
    /// The buffer of the last finished batch, for reuse.
    spare: Vec<u8>,
    first_pending: Option<i64>,
    pending: Option<i64>,
    /// The last zxid of the batch the sync thread has (at most one).
    in_flight: Option<i64>,
    /// The thread that writes and syncs batches.
    sync: SyncThread,
    /// The log failed (a write, a sync, a roll): every later call reports
    /// this again, and nothing more is written.
    failed: Option<(io::ErrorKind, String)>,
    last_durable: i64,
    last_snapshot: i64,
    snap_count: i64,
    /// Transactions after the last snapshot that start the next one:
    /// snapCount/2 plus a random part below snapCount/2, drawn again after
    /// each snapshot (ZooKeeper's `SyncRequestProcessor` does the same, so
    /// the members of an ensemble do not all snapshot at once).
    snap_threshold: i64,
    /// State of the generator for `snap_threshold`.
    snap_rng: u64,
    /// `autopurge.snapRetainCount` when `autopurge.purgeInterval` > 0.
    purge_retain: Option<usize>,
    /// The snapshot being written.
    snap_job: Option<SnapJob>,
    /// An operator asked for a snapshot (`csnp`) that has not started yet:
    /// it waits for the one being written, or for the log to be flushed.
    snap_forced: bool,
    /// A snapshot started since the last batch: the next batch starts a
    /// new segment, so that recovery from that snapshot reads little log
    /// before the first transaction it needs, and purging can drop whole
    /// segments.
    roll_for_snapshot: bool,
}

/// A seed for the snapshot point: the clock and the process id, enough to
/// make two servers started together differ.
fn seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    splitmix64(nanos ^ (u64::from(std::process::id()) << 32))
}

/// Transactions from one snapshot to the next: `snap_count / 2` plus a
/// random part below `snap_count / 2` (ZooKeeper's `randRoll`).
fn snapshot_point(snap_count: i64, rng: &mut u64) -> i64 {
    *rng = splitmix64(*rng);
    let half = (snap_count / 2).max(1);
    half + (*rng % half as u64) as i64
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl DiskLog {
    /// A new, preallocated segment whose first record will be `first_zxid`.
    /// A file of that name is replaced only if it holds no records.
    fn new_segment(log_dir: &Path, first_zxid: i64) -> io::Result<(File, PathBuf)> {
        let path = log_dir.join(format!("log.{first_zxid:016x}"));
        if path.exists() {
            let bytes = read(&path)?;
            let empty = storage::is_unfinished_segment(&bytes, first_zxid)
                || storage::scan_log(&bytes)
                    .is_ok_and(|s| s.txns.is_empty() && s.end == LogEnd::Clean);
            if !empty {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "cannot start log segment {}: the file exists and holds data (not overwriting it)",
                        path.display()
                    ),
                ));
            }
        }
        let created = (|| {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            file.write_all(&storage::log_header(first_zxid))?;
            file.set_len(PREALLOC)?;
            file.sync_all()?;
            Ok(file)
        })()
        .map_err(|e| disk_error(e, "cannot create log segment", &path))?;
        sync_dir(log_dir)?;
        Ok((created, path))
    }

    fn create(log_dir: PathBuf, first_zxid: i64, settings: &Settings) -> io::Result<Self> {
        let (file, path) = Self::new_segment(&log_dir, first_zxid)?;
        Self::with_file(
            log_dir,
            file,
            path,
            storage::LOG_HEADER_LEN as u64,
            PREALLOC,
            settings,
        )
    }

    /// Continues the segment at `path` after its valid records, which end
    /// at `valid_len`; `end` says what follows them.
    fn resume(
        log_dir: PathBuf,
        path: PathBuf,
        valid_len: u64,
        end: LogEnd,
        settings: &Settings,
    ) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(at("cannot open log segment", &path))?;
        let allocated = (valid_len / PREALLOC + 1) * PREALLOC;
        (|| {
            // Zero what follows the valid records only when it is a torn
            // write (so a shorter record written there later is not
            // followed by its garbage); a clean end is followed by zeros.
            if let LogEnd::TornTail { .. } = end {
                file.set_len(valid_len)?;
            }
            let size = file.metadata()?.len();
            if size < allocated {
                file.set_len(allocated)?;
            }
            file.sync_all()
        })()
        .map_err(|e| disk_error(e, "cannot prepare log segment", &path))?;
        let allocated = allocated.max(file.metadata().map_or(allocated, |m| m.len()));
        Self::with_file(log_dir, file, path, valid_len, allocated, settings)
    }

    fn with_file(
        log_dir: PathBuf,
        file: File,
        path: PathBuf,
        offset: u64,
        allocated: u64,
        settings: &Settings,
    ) -> io::Result<Self> {
        let mut log = Self {
            snap_dir: log_dir.clone(),
            log_dir,
            file: Arc::new(file),
            path,
            offset,
            allocated,
            segment_limit: settings.segment_bytes,
            force_sync: settings.force_sync,
            buf: Vec::with_capacity(64 * 1024),
            spare: Vec::with_capacity(64 * 1024),
            first_pending: None,
            pending: None,
            in_flight: None,
            sync: SyncThread::start()?,
            failed: None,
            last_durable: 0,
            last_snapshot: 0,
            snap_count: settings.snap_count as i64,
            snap_threshold: settings.snap_count as i64,
            snap_rng: seed(),
            purge_retain: (settings.purge_interval_hours > 0)
                .then_some(settings.snap_retain_count.max(3)),
            snap_job: None,
            snap_forced: false,
            roll_for_snapshot: false,
        };
        log.next_threshold();
        Ok(log)
    }

    /// Starts a new segment. Only between batches (none in flight), so
    /// the sync thread is not writing to the file being finished.
    fn roll(&mut self, first_zxid: i64) -> io::Result<()> {
        debug_assert!(self.in_flight.is_none());
        // Give back the unused preallocation of the finished segment (only
        // zeros: nothing was written after `offset`).
        self.file
            .set_len(self.offset)
            .map_err(|e| disk_error(e, "cannot finish log segment", &self.path))?;
        let (file, path) = Self::new_segment(&self.log_dir, first_zxid)?;
        (self.file, self.path) = (Arc::new(file), path);
        self.offset = storage::LOG_HEADER_LEN as u64;
        self.allocated = PREALLOC;
        Ok(())
    }

    /// Draws the point of the next snapshot: in `[snapCount/2, snapCount)`.
    fn next_threshold(&mut self) {
        self.snap_threshold = snapshot_point(self.snap_count, &mut self.snap_rng);
    }

    /// Whether appended records wait to be handed to the sync thread (by
    /// `start_flush` or `flush`).
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Installs what the sync thread calls (on its own thread) when a batch
    /// is written, so the loop wakes up and collects it with
    /// `poll_flushed`: a `mio::Waker`, a channel send.
    pub fn set_waker(&mut self, wake: Box<dyn Fn() + Send>) {
        *lock(&self.sync.shared.wake) = Some(wake);
    }

    /// The error the log failed with, again.
    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
            None => Ok(()),
        }
    }

    /// Records a failure: the log writes nothing more.
    fn fail(&mut self, e: io::Error) -> io::Error {
        self.failed = Some((e.kind(), e.to_string()));
        e
    }

    /// Takes in a finished batch.
    fn collect(&mut self, f: Finished) -> io::Result<Option<i64>> {
        self.in_flight = None;
        self.spare = f.buf;
        match f.result {
            Ok(()) => {
                self.last_durable = f.upto;
                Ok(Some(f.upto))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Before a batch of `len` bytes starting with `first`: rolls to a new
    /// segment past `segmentBytes`, extends the preallocation if needed.
    fn make_room(&mut self, first: i64, len: u64) -> io::Result<()> {
        let started = self.offset > storage::LOG_HEADER_LEN as u64;
        let full = self.offset + len > self.segment_limit;
        let snapshot = std::mem::take(&mut self.roll_for_snapshot);
        if started && (full || snapshot) {
            self.roll(first)?;
        }
        let end = self.offset + len;
        if end > self.allocated {
            let grown = (end / PREALLOC + 1) * PREALLOC;
            self.file.set_len(grown).map_err(|e| {
                disk_error(
                    e,
                    &format!("cannot extend to {grown} bytes the log segment"),
                    &self.path,
                )
            })?;
            self.allocated = grown;
        }
        Ok(())
    }

    /// fdatasyncs the sync thread has done.
    #[cfg(test)]
    fn syncs(&self) -> u64 {
        self.sync.syncs()
    }

    /// Snapshot work for one loop turn. Starts a snapshot when `snapCount`
    /// transactions were logged since the last one (or `forced`): the core
    /// hands over a frozen image of its committed tree (one pointer copied
    /// per node), and a writer thread encodes it, writes a temporary file,
    /// syncs it, renames it into place and syncs the directory, so the loop
    /// neither encodes nor waits for the log, whatever the tree's size.
    /// When the file is in place, purges old files (a segment goes once the
    /// next one starts at or before the first transaction after the oldest
    /// kept snapshot).
    pub fn snapshot_work(&mut self, server: &mut Server, forced: bool) -> io::Result<()> {
        self.snap_forced |= forced;
        let Some(job) = self.snap_job.as_mut() else {
            let due = self.last_durable - self.last_snapshot >= self.snap_threshold;
            // The core's image is of its committed tree, all of it durable
            // in the log already (the core applies a write only once the
            // log reported it), so the file may be put in place as soon as
            // it is written, whatever batch is being written meanwhile.
            if due || self.snap_forced {
                self.snap_forced = false;
                self.next_threshold();
                let snapshot = server.snapshot_writer();
                let zxid = snapshot.zxid();
                debug_assert!(zxid <= self.last_durable, "snapshot beyond the durable log");
                match SnapJob::start(&self.snap_dir, snapshot) {
                    Ok(job) => {
                        self.snap_job = Some(job);
                        self.roll_for_snapshot = true;
                    }
                    Err(e) => {
                        // Do not retry at once on every turn.
                        self.last_snapshot = self.last_durable;
                        return Err(e);
                    }
                }
            }
            return Ok(());
        };
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

    /// When the runtime should come back for snapshot work: on the next
    /// turn for a requested snapshot, every few milliseconds while the
    /// writer thread works.
    pub fn snapshot_wakeup(&self, now: Instant) -> Option<Instant> {
        if self.snap_job.is_none() {
            return self.snap_forced.then_some(now);
        }
        Some(now + std::time::Duration::from_millis(5))
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
            fs::remove_file(p).map_err(at("cannot purge", p))?;
            info!("purged {}", p.display());
        }
        // A segment may go when the next one starts at or before the first
        // transaction after the oldest kept snapshot.
        let logs = list(&self.log_dir, "log")?;
        for w in logs.windows(2) {
            if w[1].0 <= oldest_kept + 1 {
                fs::remove_file(&w[0].1).map_err(at("cannot purge", &w[0].1))?;
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

    fn start_flush(&mut self) -> io::Result<bool> {
        self.check()?;
        if self.in_flight.is_some() {
            return Ok(false);
        }
        let Some(upto) = self.pending.take() else {
            return Ok(false);
        };
        let first = self.first_pending.take().unwrap_or(upto);
        let len = self.buf.len() as u64;
        if let Err(e) = self.make_room(first, len) {
            return Err(self.fail(e));
        }
        let buf = std::mem::replace(&mut self.buf, std::mem::take(&mut self.spare));
        self.sync.hand_over(Batch {
            file: self.file.clone(),
            path: self.path.clone(),
            offset: self.offset,
            buf,
            upto,
            force_sync: self.force_sync,
        });
        self.offset += len;
        self.in_flight = Some(upto);
        Ok(true)
    }

    fn poll_flushed(&mut self) -> io::Result<Option<i64>> {
        self.check()?;
        if self.in_flight.is_none() {
            return Ok(None);
        }
        match self.sync.try_take() {
            Ok(Some(f)) => self.collect(f),
            Ok(None) => Ok(None),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    fn has_pending(&self) -> bool {
        DiskLog::has_pending(self)
    }

    fn set_waker(&mut self, wake: Box<dyn Fn() + Send>) {
        DiskLog::set_waker(self, wake)
    }

    fn snapshot_work(&mut self, server: &mut Server, forced: bool) -> io::Result<()> {
        DiskLog::snapshot_work(self, server, forced)
    }

    fn snapshot_wakeup(&self, now: Instant) -> Option<Instant> {
        DiskLog::snapshot_wakeup(self, now)
    }

    fn dir_sizes(&self) -> (u64, u64) {
        DiskLog::dir_sizes(self)
    }

    fn flush(&mut self) -> io::Result<Option<i64>> {
        self.check()?;
        let mut durable = None;
        loop {
            if self.in_flight.is_some() {
                let f = match self.sync.wait() {
                    Ok(f) => f,
                    Err(e) => return Err(self.fail(e)),
                };
                durable = self.collect(f)?.or(durable);
            } else if !self.start_flush()? {
                return Ok(durable);
            }
        }
    }
}
