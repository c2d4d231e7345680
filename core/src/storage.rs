//! On-disk formats, as bytes only (files are the runtime's business): the
//! transaction log and its recovery scan. Documented in docs/storage.md.
//!
//! A log segment is a 16-byte header followed by records:
//!
//! ```text
//! header:  "PKLG" | u32 version (2) | i64 zxid of the first record it may hold
//! record:  u32 len | u32 crc32c(payload) | u32 crc32c(len, crc32c(payload))
//!          | payload (len bytes, a Txn) | u8 0xA5 (end mark)
//! ```
//!
//! The record header checks itself, so a damaged length is recognised before
//! it is believed; the end mark, which no single damaged bit can turn into a
//! zero, tells a record that was written to its end from one whose write was
//! cut short. Version 1 segments (`u32 len | u32 crc32c(payload) | payload`)
//! are still read.
//!
//! Segments are preallocated with zeros, so a record header of all zeros
//! marks the end of the data. A crash during a write leaves a prefix of that
//! write followed by zeros (or the end of the file); recovery calls the
//! damaged record a torn tail — never acknowledged, to be cut off — only if
//! it can be exactly that (see [`scan_log`]). Anything else is corruption,
//! reported with its offset; recovery refuses it.

use crate::txn::Txn;

/// Log segment magic.
pub const LOG_MAGIC: &[u8; 4] = b"PKLG";
/// The log format version new segments are written in.
pub const LOG_VERSION: u32 = 2;
/// The older log format version, still read (no header checksum, no end
/// mark): `u32 len | u32 crc32c(payload) | payload`.
pub const LOG_VERSION_1: u32 = 1;
/// Size of a log segment header.
pub const LOG_HEADER_LEN: usize = 16;
/// Size of a record header (length, payload checksum, header checksum).
pub const RECORD_HEADER_LEN: usize = 12;
/// The byte that ends every record (version 2): four bits set, so no
/// single flipped bit makes it look unwritten (zero).
pub const RECORD_END: u8 = 0xA5;
/// Bytes a record adds to its payload (version 2).
pub const RECORD_OVERHEAD: usize = RECORD_HEADER_LEN + 1;
/// Size of a version 1 record header (length and payload checksum).
pub const V1_RECORD_HEADER_LEN: usize = 8;

/// The smallest encoded transaction (zxid, time, session, cxid, op type).
const MIN_TXN_LEN: usize = 32;

/// The header of a new log segment whose first record will have `zxid`.
pub fn log_header(zxid: i64) -> [u8; LOG_HEADER_LEN] {
    segment_header(LOG_VERSION, zxid)
}

/// A segment header of a given format version.
fn segment_header(version: u32, zxid: i64) -> [u8; LOG_HEADER_LEN] {
    let mut h = [0u8; LOG_HEADER_LEN];
    h[..4].copy_from_slice(LOG_MAGIC);
    h[4..8].copy_from_slice(&version.to_be_bytes());
    h[8..].copy_from_slice(&zxid.to_be_bytes());
    h
}

/// The header checksum of a version 2 record: CRC-32C of its first eight
/// bytes (length and payload checksum).
fn record_header_crc(first8: &[u8]) -> u32 {
    crc32c(first8)
}

/// Appends one record (header, payload, end mark) for `entry` (an encoded
/// Txn, as in `Output::Append`) to `out`, in the current format.
pub fn encode_record(entry: &[u8], out: &mut Vec<u8>) {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[..4].copy_from_slice(&(entry.len() as u32).to_be_bytes());
    h[4..8].copy_from_slice(&crc32c(entry).to_be_bytes());
    let hcrc = record_header_crc(&h[..8]);
    h[8..].copy_from_slice(&hcrc.to_be_bytes());
    out.reserve(entry.len() + RECORD_OVERHEAD);
    out.extend_from_slice(&h);
    out.extend_from_slice(entry);
    out.push(RECORD_END);
}

/// Appends one record in the version 1 format (tests and tools: version 1
/// segments are read, never written by the server).
pub fn encode_record_v1(entry: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(entry.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c(entry).to_be_bytes());
    out.extend_from_slice(entry);
}

/// The header of a version 1 segment (tests and tools).
pub fn log_header_v1(zxid: i64) -> [u8; LOG_HEADER_LEN] {
    segment_header(LOG_VERSION_1, zxid)
}

/// How a scan of a segment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// The data ends cleanly (end of bytes, or zero padding).
    Clean,
    /// A partly written record at `offset`: everything from there is to be
    /// cut off.
    TornTail {
        /// Byte offset of the torn record.
        offset: usize,
    },
}

/// Why a segment cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogError {
    /// Not a log segment of ours (or a version we do not know).
    BadHeader,
    /// A damaged record that cannot be a torn tail (valid-looking data
    /// after it, or a record written to its end).
    Corrupt {
        /// Byte offset of the damaged record.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadHeader => f.write_str("not a pookeeper log segment (bad header)"),
            Self::Corrupt { offset, reason } => {
                write!(f, "corrupt record at offset {offset}: {reason}")
            }
        }
    }
}

impl std::error::Error for LogError {}

/// The valid records of a segment.
#[derive(Debug)]
pub struct LogScan {
    /// The format version from the segment header.
    pub version: u32,
    /// The zxid from the segment header.
    pub first_zxid: i64,
    /// The transactions, in order.
    pub txns: Vec<Txn>,
    /// Byte offset just after the last valid record (where appending may
    /// continue after cutting off a torn tail).
    pub valid_len: usize,
    /// How the data ended.
    pub end: LogEnd,
}

/// What one record turned out to be.
enum Record {
    /// A valid transaction, and where the next record starts.
    Valid(Txn, usize),
    /// The write of this record was cut short by a crash.
    Torn,
    /// Damage that a crash cannot explain.
    Corrupt(String),
}

/// Reads every valid record of a segment. Never panics, whatever the bytes.
///
/// A damaged record is a torn tail only if a crash during its write can
/// explain it — the bytes from the record on are a prefix of what was being
/// written, followed only by zeros or the end of the file:
///
/// * version 2: the header is incomplete (its checksum fails and nothing
///   but zeros follows the header), or the header is valid and the record
///   runs past the end of the file, or the header is valid and the end mark
///   is still zero with only zeros after it (the payload need not check
///   then: it was not completely written, so never acknowledged). A header
///   that fails its checksum with data after it, a record whose end mark is
///   there but whose payload fails, a wrong end mark, data after a zero end
///   mark, a valid record that does not decode, and non-zero bytes after
///   zeros are corruption.
/// * version 1 (no header checksum): the record must not have non-zero
///   bytes after where its length says it ends, its last byte must be zero
///   (unwritten) if it lies in the file, no valid record may start anywhere
///   after it, and no single-bit repair of its length or checksum field may
///   make it a valid record; nor of its payload (when that bit lies in the
///   zeros at its end, a write cut short there looks the same: such a
///   record is refused, not guessed at). Otherwise it is corruption.
pub fn scan_log(bytes: &[u8]) -> Result<LogScan, LogError> {
    let header = bytes.get(..LOG_HEADER_LEN).ok_or(LogError::BadHeader)?;
    if &header[..4] != LOG_MAGIC {
        return Err(LogError::BadHeader);
    }
    let version = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if version != LOG_VERSION && version != LOG_VERSION_1 {
        return Err(LogError::BadHeader);
    }
    let mut z = [0u8; 8];
    z.copy_from_slice(&header[8..16]);
    let first_zxid = i64::from_be_bytes(z);
    // Everything from `data_end` on is zero.
    let data_end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let mut txns: Vec<Txn> = Vec::new();
    let mut pos = LOG_HEADER_LEN;
    let end = loop {
        if pos >= data_end {
            break LogEnd::Clean;
        }
        let prev_zxid = txns.last().map_or(first_zxid.wrapping_sub(1), |t| t.zxid);
        let record = if version == LOG_VERSION {
            record_v2(bytes, pos, data_end)
        } else {
            record_v1(bytes, pos, data_end, prev_zxid)
        };
        match record {
            Record::Valid(t, next) => {
                txns.push(t);
                pos = next;
            }
            Record::Torn => break LogEnd::TornTail { offset: pos },
            Record::Corrupt(reason) => {
                return Err(LogError::Corrupt {
                    offset: pos,
                    reason,
                })
            }
        }
    };
    let valid_len = match end {
        LogEnd::TornTail { offset } => offset,
        LogEnd::Clean => pos,
    };
    Ok(LogScan {
        version,
        first_zxid,
        txns,
        valid_len,
        end,
    })
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Non-zero bytes after the end of the records.
fn data_after_zeros(data_end: usize) -> Record {
    Record::Corrupt(format!(
        "zeros (the end of the records) followed by data up to offset {data_end}"
    ))
}

/// One version 2 record at `pos` (< `data_end`).
fn record_v2(bytes: &[u8], pos: usize, data_end: usize) -> Record {
    let rest = &bytes[pos..];
    if rest.len() < RECORD_HEADER_LEN {
        // The file ends inside the header: a write cut short.
        return Record::Torn;
    }
    let len = be32(rest, 0) as usize;
    let pcrc = be32(rest, 4);
    let header_end = pos + RECORD_HEADER_LEN;
    if record_header_crc(&rest[..8]) != be32(rest, 8) {
        if rest[..RECORD_HEADER_LEN].iter().all(|&b| b == 0) {
            return data_after_zeros(data_end);
        }
        if data_end <= header_end {
            // Part of a header, then only zeros: its write was cut short
            // (a complete record has at least its end mark after it).
            return Record::Torn;
        }
        return Record::Corrupt(
            "record header checksum mismatch (damaged length or checksum), with data after it"
                .into(),
        );
    }
    let Some(end) = header_end.checked_add(len).and_then(|e| e.checked_add(1)) else {
        return Record::Torn;
    };
    if end > bytes.len() {
        // A verified header whose record the file ends inside of.
        return Record::Torn;
    }
    let mark = bytes[end - 1];
    if mark == 0 {
        if data_end < end {
            return Record::Torn;
        }
        return Record::Corrupt("record end mark missing, with data after it".into());
    }
    if mark != RECORD_END {
        return Record::Corrupt(format!("bad record end mark {mark:#04x}"));
    }
    let payload = &bytes[header_end..end - 1];
    if crc32c(payload) != pcrc {
        return Record::Corrupt("payload checksum mismatch in a complete record".into());
    }
    match Txn::decode(payload) {
        Ok(t) => Record::Valid(t, end),
        Err(e) => Record::Corrupt(format!("undecodable transaction (checksum valid): {e}")),
    }
}

/// A valid version 1 record of `len` bytes with checksum `crc` at
/// `payload_at`, whose zxid is after `prev_zxid`.
fn valid_v1(bytes: &[u8], payload_at: usize, len: usize, crc: u32, prev_zxid: i64) -> Option<Txn> {
    if len < MIN_TXN_LEN {
        return None;
    }
    let p = bytes.get(payload_at..payload_at.checked_add(len)?)?;
    let mut z = [0u8; 8];
    z.copy_from_slice(&p[..8]);
    let zxid = i64::from_be_bytes(z);
    // Records follow one another by one zxid; allow a wide window.
    if zxid <= prev_zxid || zxid.wrapping_sub(prev_zxid) > 1 << 24 {
        return None;
    }
    if crc32c(p) != crc {
        return None;
    }
    Txn::decode(p).ok()
}

/// One version 1 record at `pos` (< `data_end`).
fn record_v1(bytes: &[u8], pos: usize, data_end: usize, prev_zxid: i64) -> Record {
    let rest = &bytes[pos..];
    if rest.len() < V1_RECORD_HEADER_LEN {
        // The file ends inside the header: a write cut short.
        return Record::Torn;
    }
    let len = be32(rest, 0) as usize;
    let crc = be32(rest, 4);
    if len == 0 && crc == 0 {
        return data_after_zeros(data_end);
    }
    let at = pos + V1_RECORD_HEADER_LEN;
    let claimed_end = at.saturating_add(len);
    if let Some(p) = bytes.get(at..claimed_end) {
        if crc32c(p) == crc {
            return match Txn::decode(p) {
                Ok(t) => Record::Valid(t, claimed_end),
                Err(e) => Record::Corrupt(format!("undecodable transaction (checksum valid): {e}")),
            };
        }
    }
    let what = if claimed_end > bytes.len() {
        "record runs past the end of the file"
    } else {
        "checksum mismatch"
    };
    // A torn write leaves the end of the record unwritten (zero) and
    // nothing after it.
    if claimed_end <= data_end {
        return Record::Corrupt(format!("{what}, with data at or after its end"));
    }
    // Not torn if a valid record follows: the length was damaged.
    for q in pos + 1..data_end {
        if q + V1_RECORD_HEADER_LEN > bytes.len() {
            break;
        }
        let l = be32(bytes, q) as usize;
        if l >= MIN_TXN_LEN
            && valid_v1(
                bytes,
                q + V1_RECORD_HEADER_LEN,
                l,
                be32(bytes, q + 4),
                prev_zxid,
            )
            .is_some()
        {
            return Record::Corrupt(format!(
                "{what}, yet a valid record follows at offset {q} (damaged length?)"
            ));
        }
    }
    // Not torn if one flipped bit of the payload explains the mismatch.
    if let Some(p) = bytes.get(at..claimed_end) {
        if let Some(i) = single_bit_error(p, crc) {
            let mut fixed = p.to_vec();
            fixed[i / 8] ^= 1 << (i % 8);
            if Txn::decode(&fixed).is_ok() {
                // If that bit lies after the last non-zero byte, a write cut
                // short just before it looks the same: refuse rather than
                // risk dropping an acknowledged record (version 2's end
                // mark tells the two apart).
                let last_nonzero = p.iter().rposition(|&b| b != 0);
                let reason = if last_nonzero.is_none_or(|l| i / 8 > l) {
                    format!(
                        "{what}: either a write cut short or one damaged bit (byte {} of the payload); \
                         a version 1 record cannot tell, so it is not dropped silently",
                        i / 8
                    )
                } else {
                    format!(
                        "{what}: one damaged bit in the payload (byte {}), the record is complete",
                        i / 8
                    )
                };
                return Record::Corrupt(reason);
            }
        }
    }
    // Not torn if one flipped bit in the length or checksum explains it:
    // the record is complete.
    for bit in 0..32 {
        let l = len ^ (1usize << bit);
        if valid_v1(bytes, at, l, crc, prev_zxid).is_some() {
            return Record::Corrupt(format!(
                "{what}: the length field is damaged (a complete record of {l} bytes is there)"
            ));
        }
        if valid_v1(bytes, at, len, crc ^ (1 << bit), prev_zxid).is_some() {
            return Record::Corrupt(format!(
                "{what}: the checksum field is damaged (the record is complete)"
            ));
        }
    }
    Record::Torn
}

/// The bit (byte * 8 + bit) whose flip would make `crc32c(p) == crc`, if
/// one does. CRC-32C is linear: for messages of one length, the checksum
/// difference of one flipped bit depends only on its position, and is the
/// bare CRC register of that bit followed by the zero bytes after it.
fn single_bit_error(p: &[u8], crc: u32) -> Option<usize> {
    const POLY: u32 = 0x82F6_3B78; // CRC-32C, reflected
    let step = |mut r: u32| {
        for _ in 0..8 {
            r = (r >> 1) ^ if r & 1 != 0 { POLY } else { 0 };
        }
        r
    };
    let diff = crc32c(p) ^ crc;
    if p.is_empty() || diff == 0 {
        return None;
    }
    for bit in 0..8 {
        let mut r = step(1u32 << bit);
        for byte in (0..p.len()).rev() {
            if r == diff {
                return Some(byte * 8 + bit);
            }
            r = step(r);
        }
    }
    None
}

/// Whether `bytes`, the newest segment file `log.<zxid>`, is one whose
/// creation was cut short by a crash: shorter than a header, or part of
/// the header that belongs there followed only by zeros. It holds no data.
/// (A complete header with nothing after it is an empty segment, read
/// normally.)
pub fn is_unfinished_segment(bytes: &[u8], zxid: i64) -> bool {
    if bytes.iter().skip(LOG_HEADER_LEN).any(|&b| b != 0) {
        return false;
    }
    let n = bytes.len().min(LOG_HEADER_LEN);
    [LOG_VERSION, LOG_VERSION_1].iter().any(|&v| {
        let h = segment_header(v, zxid);
        let k = (0..n).find(|&i| bytes[i] != h[i]).unwrap_or(n);
        k < LOG_HEADER_LEN && bytes[k..n].iter().all(|&b| b == 0)
    })
}

// ----- snapshots -----

/// Snapshot magic.
pub const SNAP_MAGIC: &[u8; 4] = b"PKSN";
/// Snapshot format version.
pub const SNAP_VERSION: u32 = 2;

/// Why a snapshot cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Not a snapshot of ours, or a version we do not know.
    BadHeader,
    /// The checksum does not match: the file is damaged or incomplete.
    Checksum,
    /// The checksum matched but the content is inconsistent.
    Malformed(String),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadHeader => f.write_str("not a pookeeper snapshot (bad header)"),
            Self::Checksum => f.write_str("snapshot checksum mismatch (damaged or incomplete)"),
            Self::Malformed(m) => write!(f, "malformed snapshot: {m}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Snapshot layout (version 2; version 1 lacked the sequence numbers and
/// listed children in creation order instead):
///
/// ```text
/// "PKSN" | u32 version | i64 zxid
/// u32 sessions | (i64 id, i32 timeout)*
/// u32 acl slots | (acl vector)*                   the interned lists; a free
///                                                 slot is an empty vector
/// u64 nodes | (path, i64 seq, data, u32 acl slot,
///              i64 czxid mzxid ctime mtime, i32 version cversion aversion,
///              i64 ephemeralOwner pzxid)*         parents first
/// u32 crc32c of everything before
/// ```
///
/// `seq` is the node's creation sequence number under its parent, which
/// orders the children (the seed's creation-order listing and ZooKeeper's
/// HashSet order both depend on it); siblings may come in any order.
pub(crate) fn snapshot_header(db: &crate::txn::Database, nodes: u64) -> Vec<u8> {
    use crate::proto::records::encode_acls;
    use crate::proto::Writer;
    let mut w = Writer::new();
    w.raw(SNAP_MAGIC)
        .int(SNAP_VERSION as i32)
        .long(db.last_zxid);
    w.int(db.sessions.len() as i32);
    for (&id, &timeout) in &db.sessions {
        w.long(id).int(timeout);
    }
    let slots = db.tree.acls.slots();
    w.int(slots.len() as i32);
    for list in slots {
        encode_acls(&mut w, list);
    }
    w.long(nodes as i64);
    w.finish().to_vec()
}

/// A snapshot being written piece by piece while the tree keeps changing
/// (the walk itself is the tree's: [`crate::tree::SnapTrack`]).
#[derive(Debug)]
pub(crate) struct SnapshotWriter {
    zxid: i64,
    /// CRC-32C of everything handed out so far.
    crc: u32,
    /// The header, until the first step hands it out.
    header: Option<Vec<u8>>,
}

impl SnapshotWriter {
    /// Starts a snapshot of `db` as it is now.
    pub(crate) fn begin(db: &mut crate::txn::Database) -> Self {
        db.tree.end_snapshot();
        db.tree.begin_snapshot(db.last_zxid);
        let nodes = db.tree.len() as u64;
        Self {
            zxid: db.last_zxid,
            crc: 0,
            header: Some(snapshot_header(db, nodes)),
        }
    }

    /// The zxid the snapshot stands for.
    pub(crate) fn zxid(&self) -> i64 {
        self.zxid
    }

    /// Appends about `budget` bytes (at least one record) to `out`; true
    /// when the snapshot is complete (checksum included).
    pub(crate) fn step(
        &mut self,
        db: &mut crate::txn::Database,
        out: &mut Vec<u8>,
        budget: usize,
    ) -> bool {
        let start = out.len();
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
        }
        let mut finished = false;
        while out.len() - start < budget || out.len() == start {
            if !db.tree.snapshot_next(&mut |rec| snapshot_record(out, &rec)) {
                finished = true;
                break;
            }
        }
        self.crc = crc32c_append(self.crc, &out[start..]);
        if finished {
            out.extend_from_slice(&self.crc.to_be_bytes());
            // The walk visits exactly the nodes the tree had at `zxid`, the
            // header's count (which the decoder checks).
            if let Some(t) = db.tree.snapshot_track() {
                debug_assert_eq!(t.recorded(), t.total(), "snapshot walk missed nodes");
            }
            db.tree.end_snapshot();
        }
        finished
    }
}

/// The whole snapshot of `db` in one go.
#[cfg(test)]
pub(crate) fn encode_snapshot(db: &mut crate::txn::Database) -> Vec<u8> {
    let mut w = SnapshotWriter::begin(db);
    let mut out = Vec::new();
    while !w.step(db, &mut out, usize::MAX) {}
    out
}

/// Appends one node record of a snapshot.
pub(crate) fn snapshot_record(out: &mut Vec<u8>, rec: &crate::tree::SnapRecord<'_>) {
    let s = &rec.stat;
    let data = rec.data.unwrap_or_default();
    out.reserve(rec.path.len() + data.len() + 88);
    out.extend_from_slice(&(rec.path.len() as i32).to_be_bytes());
    out.extend_from_slice(rec.path.as_bytes());
    out.extend_from_slice(&(rec.seq as i64).to_be_bytes());
    // Null data is length -1, as in jute.
    let len = rec.data.map_or(-1, |d| d.len() as i32);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&rec.acl.to_be_bytes());
    for v in [s.czxid, s.mzxid, s.ctime, s.mtime] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    for v in [s.version, s.cversion, s.aversion] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&s.ephemeral_owner.to_be_bytes());
    out.extend_from_slice(&s.pzxid.to_be_bytes());
}

/// Reads a snapshot back. Never panics, whatever the bytes.
pub(crate) fn decode_snapshot(bytes: &[u8]) -> Result<crate::txn::Database, SnapshotError> {
    use crate::proto::records::decode_acls;
    use crate::proto::Reader;
    if bytes.len() < 12 || &bytes[..4] != SNAP_MAGIC {
        return Err(SnapshotError::BadHeader);
    }
    let version = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if version != 1 && version != SNAP_VERSION {
        return Err(SnapshotError::BadHeader);
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    if crc32c(body) != u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]) {
        return Err(SnapshotError::Checksum);
    }
    let bad = |e: crate::proto::DecodeError| SnapshotError::Malformed(e.to_string());
    let mut r = Reader::new(&body[8..]);
    let mut db = crate::txn::Database {
        last_zxid: r.long("zxid").map_err(bad)?,
        ..Default::default()
    };
    let n = r.count("sessions", 12).map_err(bad)?;
    for _ in 0..n {
        let id = r.long("session").map_err(bad)?;
        let timeout = r.int("timeout").map_err(bad)?;
        db.sessions.insert(id, timeout);
    }
    let n = r.count("acl lists", 4).map_err(bad)?;
    // Slot (or, in version 1, list) number → interned list; None for a free
    // slot, which no node may name.
    let mut lists = Vec::with_capacity(n);
    for _ in 0..n {
        let list = decode_acls(&mut r).map_err(bad)?.unwrap_or_default();
        lists.push((!list.is_empty()).then(|| db.tree.acls.intern_list(&list)));
    }
    let nodes = r.long("nodes").map_err(bad)?;
    if nodes < 0 || nodes as u64 > r.remaining() as u64 / 60 {
        return Err(SnapshotError::Malformed(format!("node count {nodes}")));
    }
    db.tree.reserve(nodes as usize);
    let mut last_parent = None;
    for i in 0..nodes {
        let path = r.buffer("path").map_err(bad)?;
        let path = std::str::from_utf8(path)
            .map_err(|_| SnapshotError::Malformed(format!("path of node {i} is not UTF-8")))?;
        let seq = if version == 1 {
            i as u64
        } else {
            r.long("seq").map_err(bad)? as u64
        };
        let data = r.buffer_opt("data").map_err(bad)?;
        let acl = r.int("acl").map_err(bad)?;
        let stat = crate::tree::StoredStat {
            czxid: r.long("czxid").map_err(bad)?,
            mzxid: r.long("mzxid").map_err(bad)?,
            ctime: r.long("ctime").map_err(bad)?,
            mtime: r.long("mtime").map_err(bad)?,
            version: r.int("version").map_err(bad)?,
            cversion: r.int("cversion").map_err(bad)?,
            aversion: r.int("aversion").map_err(bad)?,
            ephemeral_owner: r.long("ephemeralOwner").map_err(bad)?,
            pzxid: r.long("pzxid").map_err(bad)?,
        };
        let acl = usize::try_from(acl)
            .ok()
            .and_then(|i| lists.get(i).copied().flatten())
            .ok_or_else(|| SnapshotError::Malformed(format!("acl index {acl} of {path}")))?;
        let rec = crate::tree::SnapRecord {
            path,
            seq,
            data,
            acl,
            stat,
        };
        if !crate::path::is_valid(path) || !db.tree.restore_record(rec, &mut last_parent) {
            return Err(SnapshotError::Malformed(format!(
                "node {path:?} without parent"
            )));
        }
    }
    if !r.is_empty() {
        return Err(SnapshotError::Malformed("trailing bytes".into()));
    }
    // Drop the references the list table itself held.
    for l in lists.into_iter().flatten() {
        db.tree.acls.release(l);
    }
    // Parents come before children (checked above), so the tree and its
    // indexes are consistent by construction.
    Ok(db)
}

/// CRC-32C (Castagnoli), the checksum of log records and snapshots.
pub fn crc32c(data: &[u8]) -> u32 {
    ::crc32c::crc32c(data)
}

/// Continues a CRC-32C: `crc32c_append(crc32c(a), b) == crc32c(a ++ b)`.
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    ::crc32c::crc32c_append(crc, data)
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let snap = encode_snapshot(&mut db);
        let mut back = decode_snapshot(&snap).unwrap();
        assert_eq!(back.last_zxid, db.last_zxid);
        assert_eq!(back.sessions, db.sessions);
        // Same nodes, same Stats, same children order, same ACLs.
        assert_eq!(back.tree.dump(), db.tree.dump());
        assert_eq!(listings(&back), listings(&db));
        assert_eq!(back.tree.ephemerals_of(7), vec!["/a/c".to_string()]);
        let again = encode_snapshot(&mut back);
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
            let mut w = SnapshotWriter::begin(&mut db);
            let mut out = Vec::new();
            let budget = 1 + next(300) as usize;
            while !w.step(&mut db, &mut out, budget) {
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
            // The tree holds no snapshot state any more, and the ACL
            // references taken for saved nodes were given back (checked by
            // check_invariants above).
            assert!(db.tree.snapshot_track().is_none());
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
}
