//! Interned ACL lists: each distinct list stored once, reference-counted,
//! and named by its slot (ZooKeeper's `ReferenceCountedACLCache`).

use super::AclRef;
use crate::proto::records::{Acl, AclList};
use hashbrown::HashMap;

/// Interned ACL lists: each distinct list is stored once, with a reference
/// count, as ZooKeeper's `ReferenceCountedACLCache` does.
#[derive(Debug, Default)]
pub(crate) struct AclCache {
    pub(super) by_list: HashMap<AclList, AclRef>,
    pub(super) lists: Vec<(AclList, u64)>,
    free: Vec<AclRef>,
}

impl AclCache {
    pub(super) fn intern(&mut self, acl: &AclList) -> AclRef {
        if let Some(&r) = self.by_list.get(acl) {
            if let Some(e) = self.lists.get_mut(r as usize) {
                e.1 += 1;
            }
            return r;
        }
        let r = match self.free.pop() {
            Some(r) => {
                self.lists[r as usize] = (acl.clone(), 1);
                r
            }
            None => {
                self.lists.push((acl.clone(), 1));
                (self.lists.len() - 1) as AclRef
            }
        };
        self.by_list.insert(acl.clone(), r);
        r
    }

    /// Interns a list for a batch of nodes (each then calls `retain`), and
    /// drops the batch's own reference with `release` when done.
    pub(crate) fn intern_list(&mut self, acl: &AclList) -> AclRef {
        self.intern(acl)
    }

    /// One more node uses list `r`.
    pub(super) fn retain(&mut self, r: AclRef) {
        if let Some(e) = self.lists.get_mut(r as usize) {
            e.1 += 1;
        }
    }

    pub(crate) fn release(&mut self, r: AclRef) {
        if let Some(e) = self.lists.get_mut(r as usize) {
            e.1 = e.1.saturating_sub(1);
            if e.1 == 0 {
                self.by_list.remove(&e.0);
                e.0 = AclList::new();
                self.free.push(r);
            }
        }
    }

    /// Every slot's list, in slot order (a free slot's list is empty): what
    /// a snapshot stores, so that nodes can name their list by slot.
    pub(crate) fn slots(&self) -> Vec<&[Acl]> {
        self.lists.iter().map(|(l, _)| &l[..]).collect()
    }

    pub(crate) fn get(&self, r: AclRef) -> &[Acl] {
        self.lists.get(r as usize).map_or(&[], |e| &e.0)
    }

    /// Number of distinct lists in use.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_list.len()
    }
}
