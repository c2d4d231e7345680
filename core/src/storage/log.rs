//! The transaction log: segment headers, records (written in version 2,
//! read in versions 1 and 2) and the recovery scan that tells a torn tail
//! from corruption. The format is described in the parent module.

use super::crc32c;
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
pub(super) fn single_bit_error(p: &[u8], crc: u32) -> Option<usize> {
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
