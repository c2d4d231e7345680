//! Rebuilding a tree from a snapshot's records (the reverse of the walk in
//! `image`).

use super::{data_len, DataTree, Node, SnapRecord};
use crate::nodemap::NodeId;
use crate::{path, quota};
use bytes::Bytes;

impl DataTree {
    /// Puts a node back from a snapshot record with exactly its stored
    /// metadata (the parent's is not touched); its parent must be there
    /// already. The four system nodes of a fresh tree are overwritten in
    /// place. Returns false when the parent is missing (a damaged snapshot).
    ///
    /// `last_parent` remembers the previous record's parent between calls:
    /// siblings come one after another, so most records skip the lookup.
    pub(crate) fn restore_record(
        &mut self,
        rec: SnapRecord<'_>,
        last_parent: &mut Option<(String, NodeId)>,
    ) -> bool {
        let data = rec.data.map(Bytes::copy_from_slice);
        // The caller interned the list once; each node holds a reference.
        self.acls.retain(rec.acl);
        let Some(parent_path) = path::parent(rec.path).map(path::normalize) else {
            self.acls.release(rec.acl);
            return false;
        };
        let mut n = Node::new(rec.path, data, rec.acl, 0, 0, 0);
        rec.stat.apply_to(&mut n);
        let pid = match last_parent {
            Some((p, id)) if p == parent_path => Some(*id),
            _ => self.nodes.id(parent_path),
        };
        let inserted = match pid {
            Some(pid) if rec.path != "/" => self.nodes.insert_at(pid, n, Some(rec.seq as u32)),
            _ => Err(n),
        };
        match inserted {
            Ok(_) => {
                if let Some(pid) = pid {
                    if last_parent.as_ref().is_none_or(|(_, id)| *id != pid) {
                        *last_parent = Some((parent_path.to_string(), pid));
                    }
                }
            }
            Err(n) => {
                // The node exists (one of a fresh tree's system nodes):
                // overwrite it in place. Or the parent is missing.
                let Some(old) = self.nodes.get_mut(rec.path) else {
                    self.acls.release(rec.acl);
                    return false;
                };
                let (old_acl, old_len) = (old.acl, data_len(&old.data));
                old.acl = n.acl;
                old.data = n.data;
                rec.stat.apply_to(old);
                self.acls.release(old_acl);
                self.data_size = self.data_size.saturating_sub(old_len as u64)
                    + rec.data.map_or(0, <[u8]>::len) as u64;
                return true;
            }
        }
        self.data_size += (rec.path.len() + rec.data.map_or(0, <[u8]>::len)) as u64;
        self.index_owner(rec.path, rec.stat.ephemeral_owner);
        if path::name(rec.path) == quota::LIMITS {
            if let Some(qp) = parent_path.strip_prefix(quota::QUOTA_ROOT) {
                self.quota_paths.insert(qp.to_string());
            }
        }
        true
    }

    /// Makes room for `n` more nodes (restoring a snapshot).
    pub(crate) fn reserve(&mut self, n: usize) {
        self.nodes.reserve(n);
    }
}
