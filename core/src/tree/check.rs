//! Whole-tree checks for tests and the fuzzer: the invariants, and a
//! sorted dump to compare trees by.

use super::{child_path, is_special_owner, AclRef, DataTree, StoredStat};
use crate::path;
use crate::proto::records::Acl;
use bytes::Bytes;

impl DataTree {
    /// Checks the tree's invariants; used by tests and the fuzzer.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        // Every ACL list is referenced exactly as often as its count says:
        // once per node (a snapshot's image keeps its own copy of the lists).
        let mut refs = vec![0u64; self.acls.lists.len()];
        for r in self.nodes.iter().map(|n| n.acl) {
            match refs.get_mut(r as usize) {
                Some(c) => *c += 1,
                None => return Err(format!("ACL reference {r} out of range")),
            }
        }
        for (i, (list, count)) in self.acls.lists.iter().enumerate() {
            if refs[i] != *count {
                return Err(format!("ACL list {i} counted {count}, used {}", refs[i]));
            }
            if *count > 0 && self.acls.by_list.get(list) != Some(&(i as AclRef)) {
                return Err(format!("ACL list {i} not indexed"));
            }
        }
        let mut listed = 0;
        for n in self.nodes.iter() {
            let p = &*n.path;
            if !self.nodes.get(p).is_some_and(|m| std::ptr::eq(m, n)) {
                return Err(format!("{p} is not found by its path"));
            }
            if p != "/" {
                let parent = path::normalize(path::parent(p).unwrap_or(""));
                match self.nodes.get(parent) {
                    Some(pn) if self.nodes.has_child(pn, path::name(p)) => {}
                    _ => return Err(format!("{p} is not listed by its parent")),
                }
            }
            for c in self.nodes.child_nodes(n) {
                listed += 1;
                if path::parent(&c.path).map(path::normalize) != Some(p) {
                    return Err(format!("{p} lists {} as a child", c.path));
                }
            }
            if n.ephemeral_owner != 0 && !is_special_owner(n.ephemeral_owner) {
                let listed = self
                    .ephemerals
                    .get(&n.ephemeral_owner)
                    .is_some_and(|s| s.paths.contains_key(p));
                if !listed {
                    return Err(format!("ephemeral {p} not indexed"));
                }
                if n.children.len() != 0 {
                    return Err(format!("ephemeral {p} has children"));
                }
            }
        }
        if listed + 1 != self.nodes.len() {
            return Err(format!(
                "{listed} children listed for {} nodes",
                self.nodes.len()
            ));
        }
        Ok(())
    }

    /// Every node with its sequence number, sorted by path, for tests and
    /// the fuzzer comparing trees.
    pub(crate) fn dump(&self) -> Vec<DumpedNode> {
        let mut out = Vec::new();
        let mut stack = vec![("/".to_string(), 0)];
        while let Some((p, seq)) = stack.pop() {
            let Some(n) = self.nodes.get(p.as_str()) else {
                continue;
            };
            out.push((
                p.clone(),
                seq,
                n.data.clone(),
                self.acl_of(n).to_vec(),
                StoredStat::of(n),
            ));
            for (c, s) in self.nodes.children(n) {
                stack.push((child_path(&p, c), u64::from(s)));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// A node as [`DataTree::dump`] lists it: path, sequence number, data, ACL
/// and stored Stat.
pub(crate) type DumpedNode = (String, u64, Option<Bytes>, Vec<Acl>, StoredStat);
