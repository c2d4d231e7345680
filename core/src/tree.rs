//! The data tree: znodes, their Stat, children, ephemerals and interned ACLs.
//!
//! The tree only knows how to change itself; whether a change is allowed is
//! decided before (see `prep`), and every change arrives through
//! [`crate::txn::apply`], so the same calls serve live requests and recovery.
//!
//! ## Where each concern lives
//!
//! This file holds the node types ([`Stat`], `Node`, `StoredStat`), the
//! `DataTree` type and its core operations (create, delete, setData,
//! setACL, lookups). The rest is split by concern into child modules:
//!
//! | module | concern |
//! | --- | --- |
//! | `acl_cache` | interned, reference-counted ACL lists |
//! | `ephemerals` | the ephemeralOwner field: sessions' ephemerals, containers, TTL nodes, the reaper's candidates |
//! | `order` | children in creation order and in ZooKeeper's `HashSet` order (Java hashes) |
//! | `quotas` | quota paths, their stats nodes, the hard-limit check |
//! | `image` | snapshots while the tree changes: a frozen image of the nodes and the walk over it |
//! | `restore` | rebuilding a tree from snapshot records |
//! | `check` | invariants and the sorted dump, for tests and the fuzzer |

use crate::path;
use crate::proto::records::{Acl, AclList};
use crate::quota;
use bytes::Bytes;
use hashbrown::HashMap;
use std::collections::BTreeSet;

mod acl_cache;
mod check;
mod ephemerals;
mod image;
mod order;
mod quotas;
mod restore;
#[cfg(test)]
mod tests;

pub(crate) use acl_cache::AclCache;
pub(crate) use check::DumpedNode;
use ephemerals::SessionEphemerals;
pub(crate) use ephemerals::{is_special_owner, CONTAINER_OWNER, MAX_TTL, TTL_MASK};
pub(crate) use image::{SnapRecord, TreeImage};
pub(crate) use order::java_string_hash;

/// A znode's metadata, exactly ZooKeeper's `Stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    /// zxid of the create.
    pub czxid: i64,
    /// zxid of the last data change.
    pub mzxid: i64,
    /// Creation time, ms since the epoch.
    pub ctime: i64,
    /// Last modification time, ms since the epoch.
    pub mtime: i64,
    /// Number of data changes.
    pub version: i32,
    /// Number of child changes (creates; ZooKeeper does not count deletes).
    pub cversion: i32,
    /// Number of ACL changes.
    pub aversion: i32,
    /// Owning session of an ephemeral node, else 0.
    pub ephemeral_owner: i64,
    /// Length of the data.
    pub data_length: i32,
    /// Number of children.
    pub num_children: i32,
    /// zxid of the last child create or delete.
    pub pzxid: i64,
}

/// Index of an interned ACL list.
pub(crate) type AclRef = u32;

pub(crate) use crate::nodemap::Children;
use crate::nodemap::NodeMap;

/// The length of znode data, 0 for null (as in ZooKeeper's Stat).
pub(crate) fn data_len(data: &Option<Bytes>) -> usize {
    data.as_ref().map_or(0, Bytes::len)
}

/// One znode.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Its full path (its name is the last segment).
    pub(crate) path: Box<str>,
    /// `None` is null data, which ZooKeeper keeps apart from empty data.
    pub(crate) data: Option<Bytes>,
    pub(crate) acl: AclRef,
    pub(crate) czxid: i64,
    pub(crate) mzxid: i64,
    pub(crate) ctime: i64,
    pub(crate) mtime: i64,
    pub(crate) version: i32,
    pub(crate) cversion: i32,
    pub(crate) aversion: i32,
    pub(crate) ephemeral_owner: i64,
    pub(crate) pzxid: i64,
    /// Creation sequence number among its siblings.
    pub(crate) seq: u32,
    pub(crate) children: Children,
}

impl Node {
    fn new(
        path: &str,
        data: Option<Bytes>,
        acl: AclRef,
        zxid: i64,
        time: i64,
        ephemeral_owner: i64,
    ) -> Self {
        Self {
            path: path.into(),
            data,
            acl,
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            pzxid: zxid,
            seq: 0,
            children: Children::default(),
        }
    }

    /// What an unused slot of the node store holds.
    pub(crate) fn vacant() -> Self {
        Self::new("", None, 0, 0, 0, 0)
    }

    /// The Stat clients see.
    pub(crate) fn stat(&self) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            aversion: self.aversion,
            // Containers and TTL nodes keep their type in the owner field;
            // clients see 0 there, as in ZooKeeper.
            ephemeral_owner: if is_special_owner(self.ephemeral_owner) {
                0
            } else {
                self.ephemeral_owner
            },
            data_length: data_len(&self.data) as i32,
            // ZooKeeper stores the number of creates and reports the number
            // of changes: every create has a delete except for the children
            // still present (DataNode.copyStat). A fresh root reads -1.
            cversion: self
                .cversion
                .wrapping_mul(2)
                .wrapping_sub(self.children.len() as i32),
            num_children: self.children.len() as i32,
            pzxid: self.pzxid,
        }
    }
}

/// A node's metadata as stored (cversion is the create count, not the
/// reported value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StoredStat {
    pub(crate) czxid: i64,
    pub(crate) mzxid: i64,
    pub(crate) ctime: i64,
    pub(crate) mtime: i64,
    pub(crate) version: i32,
    pub(crate) cversion: i32,
    pub(crate) aversion: i32,
    pub(crate) ephemeral_owner: i64,
    pub(crate) pzxid: i64,
}

impl StoredStat {
    pub(crate) fn of(n: &Node) -> Self {
        Self {
            czxid: n.czxid,
            mzxid: n.mzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion: n.cversion,
            aversion: n.aversion,
            ephemeral_owner: n.ephemeral_owner,
            pzxid: n.pzxid,
        }
    }

    fn apply_to(&self, n: &mut Node) {
        n.czxid = self.czxid;
        n.mzxid = self.mzxid;
        n.ctime = self.ctime;
        n.mtime = self.mtime;
        n.version = self.version;
        n.cversion = self.cversion;
        n.aversion = self.aversion;
        n.ephemeral_owner = self.ephemeral_owner;
        n.pzxid = self.pzxid;
    }
}

/// The tree of znodes.
#[derive(Debug)]
pub(crate) struct DataTree {
    nodes: NodeMap,
    pub(crate) acls: AclCache,
    /// session id → its ephemeral paths, with what orders them as
    /// ZooKeeper's per-session `HashSet` does.
    ephemerals: HashMap<i64, SessionEphemerals>,
    /// Container and TTL nodes, for the reaper.
    special: BTreeSet<Box<str>>,
    /// Paths with a quota (a zookeeper_limits node): ZooKeeper's pTrie.
    quota_paths: BTreeSet<String>,
    /// Total bytes of paths and data, for `mntr`'s approximate_data_size.
    data_size: u64,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree: `/`, `/zookeeper`, `/zookeeper/quota` and
    /// `/zookeeper/config` (read-only to the world), all with zero Stats, as
    /// in a fresh Apache ZooKeeper.
    pub(crate) fn new() -> Self {
        let mut t = Self {
            nodes: NodeMap::default(),
            acls: AclCache::default(),
            ephemerals: HashMap::new(),
            special: BTreeSet::new(),
            quota_paths: BTreeSet::new(),
            data_size: 0,
        };
        let open: AclList = smallvec::smallvec![Acl::open()];
        let read_only: AclList = smallvec::smallvec![Acl {
            perms: 1,
            ..Acl::open()
        }];
        for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            let acl = if p == "/zookeeper/config" {
                t.acls.intern(&read_only)
            } else {
                t.acls.intern(&open)
            };
            let n = Node::new(p, Some(Bytes::new()), acl, 0, 0, 0);
            t.data_size += p.len() as u64;
            match path::parent(p).map(path::normalize) {
                Some(parent) if p != "/" => {
                    t.nodes.insert(parent, n, None);
                }
                _ => t.nodes.insert_root(n),
            }
        }
        // ZooKeeper sets /zookeeper/config's ACL with setACL(..., -1), which
        // stores aversion -1.
        if let Some(n) = t.nodes.get_mut("/zookeeper/config") {
            n.aversion = -1;
        }
        t
    }

    /// The node at `path` (`""` is the root, as in ZooKeeper).
    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path::normalize(path))
    }

    /// Number of znodes.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Approximate bytes of paths and data.
    pub(crate) fn data_size(&self) -> u64 {
        self.data_size
    }

    /// The ACL list of a node.
    pub(crate) fn acl_of(&self, node: &Node) -> &[Acl] {
        self.acls.get(node.acl)
    }

    /// Takes one more reference to the ACL list of the node at `path` (none
    /// when there is no such node), so that the list outlives the node or a
    /// change of its ACL; give it back with [`DataTree::release_acl`].
    pub(crate) fn hold_acl(&mut self, path: &str) -> Option<AclRef> {
        let r = self.nodes.get(path)?.acl;
        self.acls.retain(r);
        Some(r)
    }

    /// Gives back a reference taken by [`DataTree::hold_acl`].
    pub(crate) fn release_acl(&mut self, r: AclRef) {
        self.acls.release(r);
    }

    /// The ACL list behind a reference (empty for a freed one).
    pub(crate) fn acl_list(&self, r: AclRef) -> &[Acl] {
        self.acls.get(r)
    }

    /// Number of descendants of `path` (not counting itself).
    pub(crate) fn descendant_count(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path::normalize(path).to_string()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(p.as_str()) {
                for (c, _) in self.nodes.children(n) {
                    count += 1;
                    stack.push(child_path(&p, c));
                }
            }
        }
        count
    }

    /// Creates a node. Returns false (and changes nothing) when the parent is
    /// missing or the node exists; validated transactions never hit that.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: &AclList,
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> bool {
        let Some(parent_path) = path::parent(path) else {
            return false;
        };
        let parent_path = path::normalize(parent_path);
        if self.nodes.contains(path) || !self.nodes.contains(parent_path) {
            return false;
        }
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            if parent_cversion > parent.cversion {
                parent.cversion = parent_cversion;
                parent.pzxid = zxid;
            }
        }
        let acl = self.acls.intern(acl);
        self.data_size += (path.len() + data_len(&data)) as u64;
        let node = Node::new(path, data, acl, zxid, time, ephemeral_owner);
        if !self.nodes.insert(parent_path, node, None) {
            return false;
        }
        self.index_owner(path, ephemeral_owner);
        self.quota_on_create(path, parent_path);
        true
    }

    /// Deletes a node (and only that node: callers ensure it has no
    /// children). Returns false when it does not exist.
    pub(crate) fn delete(&mut self, path: &str, zxid: i64) -> bool {
        let Some(parent_path) = path::parent(path) else {
            return false;
        };
        let parent_path = path::normalize(parent_path);
        if path::is_special(path) || !self.nodes.contains(path) {
            return false;
        }
        let Some(node) = self.nodes.remove(path, parent_path) else {
            return false;
        };
        // Orphaned grandchildren cannot happen for validated transactions,
        // but `apply` must be total: remove the whole subtree.
        if node.children.len() > 0 {
            let orphans: Vec<String> = self
                .creation_order(&node)
                .into_iter()
                .map(|c| child_path(path, c))
                .collect();
            for c in orphans {
                self.delete(&c, zxid);
            }
        }
        self.acls.release(node.acl);
        self.data_size = self
            .data_size
            .saturating_sub((path.len() + data_len(&node.data)) as u64);
        if is_special_owner(node.ephemeral_owner) {
            self.special.remove(path);
        }
        if node.ephemeral_owner != 0 && !is_special_owner(node.ephemeral_owner) {
            // The (maybe empty) set stays until the session ends, as in
            // ZooKeeper: its table size orders later additions.
            if let Some(set) = self.ephemerals.get_mut(&node.ephemeral_owner) {
                set.remove(path);
            }
        }
        if let Some(parent) = self.nodes.get_mut(parent_path) {
            if zxid > parent.pzxid {
                parent.pzxid = zxid;
            }
        }
        if path::name(path) == quota::LIMITS {
            if let Some(p) = parent_path.strip_prefix(quota::QUOTA_ROOT) {
                self.quota_paths.remove(p);
            }
        }
        if let Some(prefix) = self.quota_prefix(path) {
            self.add_to_quota_stats(&prefix, -(data_len(&node.data) as i64), -1);
        }
        true
    }

    /// Sets a node's data and version. Returns its new Stat, or None when it
    /// does not exist.
    pub(crate) fn set_data(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Option<Stat> {
        let n = self.nodes.get_mut(path::normalize(path))?;
        self.data_size =
            self.data_size.saturating_sub(data_len(&n.data) as u64) + data_len(&data) as u64;
        let diff = data_len(&data) as i64 - data_len(&n.data) as i64;
        n.data = data;
        n.version = version;
        n.mzxid = zxid;
        n.mtime = time;
        let stat = n.stat();
        if let Some(prefix) = self.quota_prefix(path) {
            self.add_to_quota_stats(&prefix, diff, 0);
        }
        Some(stat)
    }

    /// Replaces a node's ACL and sets its aversion.
    pub(crate) fn set_acl(&mut self, path: &str, acl: &AclList, aversion: i32) -> Option<Stat> {
        let new = self.acls.intern(acl);
        let Some(n) = self.nodes.get_mut(path::normalize(path)) else {
            self.acls.release(new);
            return None;
        };
        let old = std::mem::replace(&mut n.acl, new);
        n.aversion = aversion;
        let stat = n.stat();
        self.acls.release(old);
        Some(stat)
    }
}

/// `parent` + `/` + `name`, without a double slash at the root.
pub(crate) fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" || parent.is_empty() {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}
