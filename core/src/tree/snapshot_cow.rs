//! Snapshots taken while the tree keeps changing: the copy-on-write
//! preservation of nodes the walk has not reached yet, and the walk itself.

use super::{child_path, AclRef, DataTree, StoredStat};
use crate::nodemap::NodeId;
use crate::path;
use bytes::Bytes;
use hashbrown::HashMap;

/// A node as it was when a snapshot started, saved just before its first
/// change after that point.
#[derive(Debug)]
pub(super) struct Image {
    data: Option<Bytes>,
    /// A reference held on the list until the image is written.
    pub(super) acl: AclRef,
    stat: StoredStat,
    /// Its creation sequence number under its parent, when the node was
    /// deleted (and so may come back under a new number).
    seq: Option<u64>,
}

/// One node of a snapshot, handed to the encoder.
#[derive(Debug)]
pub(crate) struct SnapRecord<'a> {
    pub(crate) path: &'a str,
    /// Creation sequence number under its parent (orders the children).
    pub(crate) seq: u64,
    pub(crate) data: Option<&'a [u8]>,
    pub(crate) acl: AclRef,
    pub(crate) stat: StoredStat,
}

/// The children of one recorded node still to be visited, copied into one
/// buffer when the node was recorded.
#[derive(Debug)]
struct Frame {
    parent: String,
    names: String,
    /// (start, end) in `names`, the creation sequence number, and the
    /// node's number when it was listed (`NO_ID` for one deleted since).
    entries: Vec<(u32, u32, u64, NodeId)>,
    next: usize,
}

/// A frame entry for a child that was deleted (its image is saved).
const NO_ID: NodeId = NodeId::MAX;

/// What the walk records next.
enum Pick {
    /// A saved image, by path.
    Image(String, u64),
    /// A live node, by number.
    Live(NodeId, u64),
}

/// Whether `p` is `parent`'s child `name`, without building the path.
fn is_child(p: &str, parent: &str, name: &str) -> bool {
    let skip = if parent == "/" { 1 } else { parent.len() + 1 };
    p.len() == skip + name.len()
        && p.starts_with(parent)
        && p.as_bytes().get(skip - 1) == Some(&b'/')
        && p.ends_with(name)
}

/// A snapshot of the tree as it was at zxid `zxid`, written a few thousand
/// nodes at a time while requests keep changing the tree.
///
/// The walk is depth-first from the root, parents before children. Any node
/// the walk has not reached yet is saved (an [`Image`]) just before its first
/// change, so the walk records it as it was; nodes created after `zxid`
/// (czxid > zxid) are never recorded, and children deleted before the walk
/// reached their parent are remembered under the parent. A node is marked
/// with the snapshot's `epoch` once recorded or saved, so each node costs at
/// most one copy of its metadata per snapshot, however often it changes.
#[derive(Debug)]
pub(crate) struct SnapTrack {
    epoch: u32,
    zxid: i64,
    pub(super) preserved: HashMap<Box<str>, Image>,
    /// parent → children (sequence number, name) deleted after `zxid` and
    /// before the walk listed the parent's children.
    removed: HashMap<Box<str>, Vec<(u64, Box<str>)>>,
    stack: Vec<Frame>,
    root_done: bool,
    /// Nodes the tree had at `zxid`, and nodes recorded so far.
    total: u64,
    recorded: u64,
}

impl SnapTrack {
    /// Number of nodes the snapshot holds.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Number of nodes recorded so far.
    pub(crate) fn recorded(&self) -> u64 {
        self.recorded
    }
}

impl DataTree {
    /// Starts a snapshot of the tree as it is now (the state after `zxid`).
    /// Returns false when one is already under way.
    pub(crate) fn begin_snapshot(&mut self, zxid: i64) -> bool {
        if self.snap.is_some() {
            return false;
        }
        self.snap_epochs = self.snap_epochs.wrapping_add(1).max(1);
        self.snap = Some(SnapTrack {
            epoch: self.snap_epochs,
            zxid,
            preserved: HashMap::new(),
            removed: HashMap::new(),
            stack: Vec::new(),
            root_done: false,
            total: self.nodes.len() as u64,
            recorded: 0,
        });
        true
    }

    /// The snapshot under way.
    pub(crate) fn snapshot_track(&self) -> Option<&SnapTrack> {
        self.snap.as_ref()
    }

    /// Drops the snapshot under way (finished or abandoned), releasing what
    /// it held.
    pub(crate) fn end_snapshot(&mut self) {
        if let Some(s) = self.snap.take() {
            for (_, img) in s.preserved {
                self.acls.release(img.acl);
            }
        }
    }

    /// Saves the node at `path` for the snapshot under way, if the walk has
    /// not recorded it yet and this is its first change.
    pub(super) fn preserve(&mut self, path: &str) {
        let Some(s) = self.snap.as_mut() else {
            return;
        };
        let Some(n) = self.nodes.get_mut(path) else {
            return;
        };
        if n.snap_epoch == s.epoch || n.czxid > s.zxid {
            return;
        }
        n.snap_epoch = s.epoch;
        self.acls.retain(n.acl);
        s.preserved.insert(
            path.into(),
            Image {
                data: n.data.clone(),
                acl: n.acl,
                stat: StoredStat::of(n),
                seq: None,
            },
        );
    }

    /// Before `path` is deleted: save it for the snapshot under way (with
    /// its sequence number) and remember it under its parent, unless the
    /// walk has recorded it already or it is newer than the snapshot.
    pub(super) fn preserve_deleted(&mut self, path: &str, parent_path: &str) {
        let Some(s) = self.snap.as_ref() else {
            return;
        };
        let Some(n) = self.nodes.get(path) else {
            return;
        };
        // Recorded already: marked, and no saved image waiting.
        if n.czxid > s.zxid || (n.snap_epoch == s.epoch && !s.preserved.contains_key(path)) {
            return;
        }
        let name = path::name(path);
        let seq = u64::from(n.seq);
        self.preserve(path);
        if let Some(s) = self.snap.as_mut() {
            if let Some(img) = s.preserved.get_mut(path) {
                img.seq = Some(seq);
            }
            s.removed
                .entry(parent_path.into())
                .or_default()
                .push((seq, name.into()));
        }
    }

    /// Records the next node of the snapshot under way with `f`. Returns
    /// false when every node has been recorded (or none is under way).
    ///
    /// The walk finds live nodes by number, not by path: a child listed in
    /// its parent's frame is checked to be still the same node (same
    /// sequence number and path) and recorded from the node's own path, so
    /// a node costs no hashing or path building unless images are waiting.
    pub(crate) fn snapshot_next(&mut self, f: &mut impl FnMut(SnapRecord<'_>)) -> bool {
        let Some(s) = self.snap.as_mut() else {
            return false;
        };
        let pick = if !s.root_done {
            s.root_done = true;
            if s.preserved.contains_key("/") {
                Pick::Image("/".to_string(), 0)
            } else {
                match self.nodes.id("/") {
                    Some(id) => Pick::Live(id, 0),
                    None => return false,
                }
            }
        } else {
            loop {
                let Some(frame) = s.stack.last_mut() else {
                    return false;
                };
                let Some(&(a, b, seq, id)) = frame.entries.get(frame.next) else {
                    s.stack.pop();
                    continue;
                };
                frame.next += 1;
                let name = frame.names.get(a as usize..b as usize).unwrap_or("");
                if !s.preserved.is_empty() {
                    let path = child_path(&frame.parent, name);
                    if s.preserved.contains_key(path.as_str()) {
                        break Pick::Image(path, seq);
                    }
                }
                if id == NO_ID {
                    // Deleted since it was listed, its image recorded.
                    continue;
                }
                match self.nodes.by_id(id) {
                    Some(n)
                        if u64::from(n.seq) == seq
                            && is_child(&n.path, &frame.parent, name)
                            && n.czxid <= s.zxid
                            && n.snap_epoch != s.epoch =>
                    {
                        break Pick::Live(id, seq)
                    }
                    _ => continue,
                }
            }
        };
        // Record the node (its saved image, or the node itself), then list
        // its children as they were: the current ones that existed then (a
        // node now at this path that is newer than the snapshot has only
        // newer children), plus those deleted since.
        let mut frame = Frame {
            parent: String::new(),
            names: String::new(),
            entries: Vec::new(),
            next: 0,
        };
        match pick {
            Pick::Image(path, seq) => {
                if let Some(img) = s.preserved.remove(path.as_str()) {
                    f(SnapRecord {
                        path: &path,
                        seq: img.seq.unwrap_or(seq),
                        data: img.data.as_deref(),
                        acl: img.acl,
                        stat: img.stat,
                    });
                    self.acls.release(img.acl);
                }
                let current = self.nodes.get(&path).filter(|n| n.czxid <= s.zxid);
                if let Some(n) = current {
                    frame.entries.reserve(n.children.len());
                    for (id, name, seq) in self.nodes.children_ids(n) {
                        push_entry(&mut frame, name, u64::from(seq), id);
                    }
                }
                frame.parent = path;
            }
            Pick::Live(id, seq) => {
                if let Some(n) = self.nodes.by_id_mut(id) {
                    n.snap_epoch = s.epoch;
                    f(SnapRecord {
                        path: &n.path,
                        seq,
                        data: n.data.as_deref(),
                        acl: n.acl,
                        stat: StoredStat::of(n),
                    });
                }
                if let Some(n) = self.nodes.by_id(id) {
                    let removed = !s.removed.is_empty() && s.removed.contains_key(&*n.path);
                    if n.children.len() > 0 || removed {
                        frame.parent = n.path.to_string();
                        frame.entries.reserve(n.children.len());
                        for (cid, name, seq) in self.nodes.children_ids(n) {
                            push_entry(&mut frame, name, u64::from(seq), cid);
                        }
                    }
                }
            }
        }
        s.recorded += 1;
        if !s.removed.is_empty() && !frame.parent.is_empty() {
            if let Some(gone) = s.removed.remove(frame.parent.as_str()) {
                for (seq, name) in gone {
                    push_entry(&mut frame, &name, seq, NO_ID);
                }
            }
        }
        if !frame.entries.is_empty() {
            s.stack.push(frame);
        }
        true
    }
}

fn push_entry(frame: &mut Frame, name: &str, seq: u64, id: NodeId) {
    let a = frame.names.len() as u32;
    frame.names.push_str(name);
    frame.entries.push((a, frame.names.len() as u32, seq, id));
}
