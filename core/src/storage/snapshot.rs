//! Snapshots: the format, the writer that encodes a frozen image of the
//! tree a piece at a time (on any thread) while the tree keeps changing,
//! and the reader.

use super::{crc32c, crc32c_append};
use crate::tree::TreeImage;

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
pub(crate) fn snapshot_header(db: &crate::txn::Database, image: &TreeImage) -> Vec<u8> {
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
    let slots = image.acl_slots();
    w.int(slots.len() as i32);
    for list in slots {
        encode_acls(&mut w, list);
    }
    w.long(image.count() as i64);
    w.finish().to_vec()
}

/// A snapshot of the state at one zxid, written piece by piece: it holds a
/// frozen image of the tree ([`TreeImage`]), so it needs nothing of the
/// server while it runs, and it is `Send`, so it can run on another thread.
#[derive(Debug)]
pub struct SnapshotWriter {
    zxid: i64,
    /// CRC-32C of everything handed out so far.
    crc: u32,
    /// The header, until the first step hands it out.
    header: Option<Vec<u8>>,
    image: TreeImage,
    done: bool,
}

impl SnapshotWriter {
    /// Starts a snapshot of `db` as it is now.
    pub(crate) fn begin(db: &crate::txn::Database) -> Self {
        let image = db.tree.image();
        Self {
            zxid: db.last_zxid,
            crc: 0,
            header: Some(snapshot_header(db, &image)),
            image,
            done: false,
        }
    }

    /// The zxid the snapshot stands for.
    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    /// Appends about `budget` bytes (at least one record) to `out`; true
    /// when the snapshot is complete (checksum included). Calls after that
    /// append nothing and return true.
    pub fn step(&mut self, out: &mut Vec<u8>, budget: usize) -> bool {
        if self.done {
            return true;
        }
        let start = out.len();
        if let Some(h) = self.header.take() {
            out.extend_from_slice(&h);
        }
        let mut finished = false;
        while out.len() - start < budget || out.len() == start {
            if !self.image.next(&mut |rec| snapshot_record(out, &rec)) {
                finished = true;
                break;
            }
        }
        self.crc = crc32c_append(self.crc, &out[start..]);
        if finished {
            out.extend_from_slice(&self.crc.to_be_bytes());
            // The walk visits exactly the nodes the image holds, the
            // header's count (which the decoder checks).
            debug_assert_eq!(
                self.image.recorded(),
                self.image.count(),
                "snapshot walk missed nodes"
            );
            self.done = true;
        }
        finished
    }
}

/// The whole snapshot of `db` in one go.
#[cfg(test)]
pub(crate) fn encode_snapshot(db: &crate::txn::Database) -> Vec<u8> {
    let mut w = SnapshotWriter::begin(db);
    let mut out = Vec::new();
    while !w.step(&mut out, usize::MAX) {}
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
