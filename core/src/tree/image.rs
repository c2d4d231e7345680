//! Snapshots taken while the tree keeps changing: a frozen image of every
//! node (a copy of the slab of `Arc`s, see `NodeMap::image`) and the walk
//! over it, parents before children. The image is `Send`, so a runtime can
//! encode it on another thread while the tree serves on.

use super::{AclRef, DataTree, Node, StoredStat};
use crate::nodemap::NodeId;
use crate::proto::records::AclList;
use std::sync::Arc;

/// One node of a snapshot, handed to the encoder (and, decoding, to
/// `restore_record`).
#[derive(Debug)]
pub(crate) struct SnapRecord<'a> {
    pub(crate) path: &'a str,
    /// Creation sequence number under its parent (orders the children).
    pub(crate) seq: u64,
    pub(crate) data: Option<&'a [u8]>,
    pub(crate) acl: AclRef,
    pub(crate) stat: StoredStat,
}

/// The tree as it was at one instant: every node as it was then (later
/// changes copy a node before changing it, so these stay as they are), the
/// ACL lists they name, and the state of a depth-first walk over them.
#[derive(Debug)]
pub(crate) struct TreeImage {
    nodes: Vec<Arc<Node>>,
    /// The interned ACL lists by slot, as they were.
    acl_slots: Vec<AclList>,
    /// Nodes in the image.
    count: u64,
    /// Nodes still to visit (the root first).
    stack: Vec<NodeId>,
    recorded: u64,
}

impl TreeImage {
    /// Number of nodes the image holds.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Number of nodes the walk has recorded so far.
    pub(crate) fn recorded(&self) -> u64 {
        self.recorded
    }

    /// The ACL lists by slot, as they were.
    pub(crate) fn acl_slots(&self) -> &[AclList] {
        &self.acl_slots
    }

    /// Records the next node with `f`, parents before children; false when
    /// every node has been recorded.
    pub(crate) fn next(&mut self, f: &mut impl FnMut(SnapRecord<'_>)) -> bool {
        let Some(id) = self.stack.pop() else {
            return false;
        };
        let Some(n) = self.nodes.get(id as usize) else {
            return true;
        };
        f(SnapRecord {
            path: &n.path,
            seq: u64::from(n.seq),
            data: n.data.as_deref(),
            acl: n.acl,
            stat: StoredStat::of(n),
        });
        self.recorded += 1;
        self.stack.extend(n.children.ids());
        true
    }
}

impl DataTree {
    /// A frozen image of the tree as it is now, for a snapshot: a copy of
    /// the node pointers (no node is copied until it changes).
    pub(crate) fn image(&self) -> TreeImage {
        let (nodes, root) = self.nodes.image();
        TreeImage {
            nodes,
            acl_slots: self
                .acls
                .slots()
                .into_iter()
                .map(|l| l.iter().cloned().collect())
                .collect(),
            count: self.nodes.len() as u64,
            stack: root.into_iter().collect(),
            recorded: 0,
        }
    }
}
