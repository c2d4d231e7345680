//! The data tree: znodes, their Stat, children, ephemerals and interned ACLs.
//!
//! The tree only knows how to change itself; whether a change is allowed is
//! decided before (see `prep`), and every change arrives through
//! [`crate::txn::apply`], so the same calls serve live requests and recovery.

use crate::path;
use crate::proto::records::{Acl, AclList};
use crate::quota;
use bytes::Bytes;
use hashbrown::HashMap;
use std::collections::BTreeSet;

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
use crate::nodemap::{NodeId, NodeMap};

/// Java's `String.hashCode` over UTF-16 code units.
pub(crate) fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

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
    /// The number of the snapshot that has recorded (or preserved) this
    /// node; see [`SnapTrack`].
    snap_epoch: u32,
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
            snap_epoch: 0,
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

/// Interned ACL lists: each distinct list is stored once, with a reference
/// count, as ZooKeeper's `ReferenceCountedACLCache` does.
#[derive(Debug, Default)]
pub(crate) struct AclCache {
    by_list: HashMap<AclList, AclRef>,
    lists: Vec<(AclList, u64)>,
    free: Vec<AclRef>,
}

impl AclCache {
    fn intern(&mut self, acl: &AclList) -> AclRef {
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
    fn retain(&mut self, r: AclRef) {
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

/// One session's ephemeral paths. ZooKeeper keeps them in a Java
/// `HashSet<String>` (`DataTree.ephemerals`): closing the session deletes
/// them in that set's iteration order (so its NodeDeleted events come in
/// that order), and getEphemerals lists a clone of it, whose smaller table
/// orders them again. Both orders are modelled here.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionEphemerals {
    /// path → insertion number (order within a Java bucket).
    paths: std::collections::BTreeMap<Box<str>, u64>,
    next_seq: u64,
    /// The set's table capacity: 16 from the first add, doubling when more
    /// than 3/4 full, never shrinking.
    java_cap: u32,
}

impl SessionEphemerals {
    fn insert(&mut self, path: &str) {
        if self.java_cap == 0 {
            self.java_cap = 16;
        }
        if self.paths.insert(path.into(), self.next_seq).is_none() {
            self.next_seq += 1;
            while self.paths.len() as u64 * 4 > u64::from(self.java_cap) * 3 {
                self.java_cap = self.java_cap.saturating_mul(2);
            }
        }
    }

    fn remove(&mut self, path: &str) {
        self.paths.remove(path);
    }

    fn len(&self) -> usize {
        self.paths.len()
    }

    /// Iteration order of the set itself.
    fn java_order(&self) -> Vec<&str> {
        let mask = self.java_cap.max(1) - 1;
        let mut v: Vec<(u32, u64, &str)> = self
            .paths
            .iter()
            .map(|(p, &seq)| (java_spread(p) & mask, seq, &**p))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, _, p)| p).collect()
    }

    /// Iteration order of `HashSet.clone()`: a table sized for the current
    /// size (`tableSizeFor(size / 0.75 + 1)`), filled in the set's order.
    fn clone_order(&self) -> Vec<&str> {
        let n = self.paths.len();
        if n == 0 {
            return Vec::new();
        }
        let t = (n as f32 / 0.75f32 + 1.0f32) as u32;
        let mask = t.max(1).next_power_of_two() - 1;
        let mut v = self.java_order();
        // Stable: within a bucket the set's own order stays.
        v.sort_by_key(|p| java_spread(p) & mask);
        v
    }
}

/// Java's `HashMap.hash`: `String.hashCode` with its high half folded in.
fn java_spread(s: &str) -> u32 {
    let h = java_string_hash(s) as u32;
    h ^ (h >> 16)
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
    /// The snapshot being written, if any (see [`SnapTrack`]).
    snap: Option<SnapTrack>,
    /// Snapshots started so far (each one's number marks the nodes it has
    /// recorded).
    snap_epochs: u32,
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
            snap: None,
            snap_epochs: 0,
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

    /// The children of `node` in creation order.
    pub(crate) fn creation_order<'a>(&'a self, node: &'a Node) -> Vec<&'a str> {
        let mut v: Vec<(&str, u32)> = self.nodes.children(node).collect();
        v.sort_unstable_by_key(|&(_, s)| s);
        v.into_iter().map(|(k, _)| k).collect()
    }

    /// The children of `node` in the order Apache ZooKeeper lists them:
    /// Java `HashSet` iteration order (bucket by the spread
    /// `String.hashCode`, then insertion order within a bucket).
    pub(crate) fn zookeeper_order<'a>(&'a self, node: &'a Node) -> Vec<&'a str> {
        let mask = node.children.java_cap().max(1) - 1;
        let mut v: Vec<(u32, u32, &str)> = self
            .nodes
            .children(node)
            .map(|(k, s)| {
                let h = java_string_hash(k) as u32;
                ((h ^ (h >> 16)) & mask, s, k)
            })
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, _, k)| k).collect()
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

    /// The ephemeral paths a session owns, in the order ZooKeeper's
    /// getEphemerals lists them, which is also the order it deletes them in
    /// when the session ends (its closeSession txn carries the list, taken
    /// from the same clone of the set).
    pub(crate) fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.clone_order().into_iter().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Forgets a session's (now empty) ephemeral set: the session ended.
    pub(crate) fn end_session(&mut self, session: i64) {
        self.ephemerals.remove(&session);
    }

    /// Number of ephemeral nodes.
    pub(crate) fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(SessionEphemerals::len).sum()
    }

    /// Sessions that own ephemerals, with their paths, sorted by session.
    pub(crate) fn all_ephemerals(&self) -> Vec<(i64, Vec<String>)> {
        let mut v: Vec<(i64, Vec<String>)> = self
            .ephemerals
            .iter()
            .filter(|(_, set)| set.len() > 0)
            .map(|(&s, set)| (s, set.paths.keys().map(|p| p.to_string()).collect()))
            .collect();
        v.sort_unstable_by_key(|e| e.0);
        v
    }

    /// Whether any container or TTL node exists (the reaper has work).
    pub(crate) fn has_special(&self) -> bool {
        !self.special.is_empty()
    }

    /// ZooKeeper's `ContainerManager.getCandidates`: containers that have had
    /// children and have none left (or, with `never_used_ms`, that never had
    /// any for that long), and TTL nodes without children unmodified for
    /// longer than their TTL. Sorted, at most `max`.
    pub(crate) fn reap_candidates(
        &self,
        now_ms: i64,
        never_used_ms: Option<i64>,
        max: usize,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.special {
            if out.len() >= max {
                break;
            }
            let Some(n) = self.nodes.get(p) else {
                continue;
            };
            if n.children.len() != 0 {
                continue;
            }
            let elapsed = now_ms.saturating_sub(n.mtime);
            let reap = if n.ephemeral_owner == CONTAINER_OWNER {
                n.cversion > 0 || never_used_ms.is_some_and(|ms| elapsed > ms)
            } else {
                let ttl = ttl_of(n.ephemeral_owner);
                ttl != 0 && elapsed > ttl
            };
            if reap {
                out.push(p.to_string());
            }
        }
        out
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
        self.preserve(parent_path);
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

    /// Records an ephemeral node under its session, or a container or TTL
    /// node for the reaper.
    fn index_owner(&mut self, path: &str, owner: i64) {
        if owner == 0 {
        } else if is_special_owner(owner) {
            self.special.insert(path.into());
        } else {
            self.ephemerals.entry(owner).or_default().insert(path);
        }
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
        self.preserve_deleted(path, parent_path);
        self.preserve(parent_path);
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
        self.preserve(path::normalize(path));
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

    // ----- quotas (DataTree's pTrie, updateQuotaStat, updateQuotaForPath) -----

    /// The longest quota path that is `path` or an ancestor of it
    /// (`getMaxPrefixWithQuota`; never the root).
    pub(crate) fn quota_prefix(&self, path: &str) -> Option<String> {
        if self.quota_paths.is_empty() {
            return None;
        }
        let mut p = path;
        loop {
            if p.is_empty() || p == "/" {
                return None;
            }
            if self.quota_paths.contains(p) {
                return Some(p.to_string());
            }
            p = path::parent(p)?;
        }
    }

    fn quota_on_create(&mut self, path: &str, parent_path: &str) {
        if let Some(qp) = parent_path.strip_prefix(quota::QUOTA_ROOT) {
            match path::name(path) {
                quota::LIMITS => {
                    self.quota_paths.insert(qp.to_string());
                }
                quota::STATS => self.recount_quota(qp),
                _ => {}
            }
        }
        let len = self.nodes.get(path).map_or(0, |n| data_len(&n.data) as i64);
        if let Some(prefix) = self.quota_prefix(path) {
            self.add_to_quota_stats(&prefix, len, 1);
        }
    }

    /// Rewrites the stats node of quota path `qp` from a count of its
    /// subtree (itself included), as ZooKeeper does when the stats node is
    /// created.
    fn recount_quota(&mut self, qp: &str) {
        let (mut count, mut bytes) = (0i64, 0i64);
        let mut stack = vec![qp.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(n) = self.nodes.get(p.as_str()) {
                count += 1;
                bytes += data_len(&n.data) as i64;
                for (c, _) in self.nodes.children(n) {
                    stack.push(child_path(&p, c));
                }
            }
        }
        let mut st = quota::StatsTrack::default();
        st.set("count", count);
        st.set("bytes", bytes);
        self.replace_data_in_place(&quota::stats_path(qp), st.to_bytes());
    }

    fn add_to_quota_stats(&mut self, prefix: &str, bytes: i64, count: i64) {
        let sp = quota::stats_path(prefix);
        let Some(n) = self.nodes.get(sp.as_str()) else {
            return;
        };
        let mut st = quota::StatsTrack::parse(n.data.as_deref().unwrap_or_default());
        st.set("count", st.get("count") + count);
        st.set("bytes", st.get("bytes") + bytes);
        self.replace_data_in_place(&sp, st.to_bytes());
    }

    /// Changes a node's data without a version or zxid change, as
    /// ZooKeeper updates stats nodes.
    fn replace_data_in_place(&mut self, path: &str, data: Vec<u8>) {
        self.preserve(path);
        if let Some(n) = self.nodes.get_mut(path) {
            self.data_size =
                self.data_size.saturating_sub(data_len(&n.data) as u64) + data.len() as u64;
            n.data = Some(Bytes::from(data));
        }
    }

    /// ZooKeeperServer.checkQuota: would a change of `count` nodes and
    /// `bytes` bytes under `path` break a hard limit? Soft limits only
    /// matter to logs.
    pub(crate) fn quota_allows(&self, path: &str, bytes: i64, count: i64) -> bool {
        let Some(prefix) = self.quota_prefix(path) else {
            return true;
        };
        let Some(limits) = self.nodes.get(quota::limits_path(&prefix).as_str()) else {
            return true;
        };
        let limits = quota::StatsTrack::parse(limits.data.as_deref().unwrap_or_default());
        let current = self
            .nodes
            .get(quota::stats_path(&prefix).as_str())
            .map(|n| quota::StatsTrack::parse(n.data.as_deref().unwrap_or_default()))
            .unwrap_or_default();
        let over = |diff: i64, hard: &str, cur: &str| {
            diff != 0 && limits.get(hard) > -1 && current.get(cur) + diff > limits.get(hard)
        };
        !(over(count, "countHardLimit", "count") || over(bytes, "byteHardLimit", "bytes"))
    }

    /// Replaces a node's ACL and sets its aversion.
    pub(crate) fn set_acl(&mut self, path: &str, acl: &AclList, aversion: i32) -> Option<Stat> {
        let new = self.acls.intern(acl);
        self.preserve(path::normalize(path));
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

    /// Checks the tree's invariants; used by tests and the fuzzer.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        // Every ACL list is referenced exactly as often as its count says:
        // once per node, once per node image a snapshot under way holds.
        let mut refs = vec![0u64; self.acls.lists.len()];
        let images = self
            .snap
            .iter()
            .flat_map(|s| s.preserved.values().map(|i| i.acl));
        for r in self.nodes.iter().map(|n| n.acl).chain(images) {
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
}

// ----- snapshots taken while the tree keeps changing -----

/// A node as it was when a snapshot started, saved just before its first
/// change after that point.
#[derive(Debug)]
struct Image {
    data: Option<Bytes>,
    /// A reference held on the list until the image is written.
    acl: AclRef,
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
    /// (start, end) in `names`, and the creation sequence number.
    entries: Vec<(u32, u32, u64)>,
    next: usize,
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
    preserved: HashMap<Box<str>, Image>,
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
    fn preserve(&mut self, path: &str) {
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
    fn preserve_deleted(&mut self, path: &str, parent_path: &str) {
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
    pub(crate) fn snapshot_next(&mut self, f: &mut impl FnMut(SnapRecord<'_>)) -> bool {
        let Some(s) = self.snap.as_mut() else {
            return false;
        };
        let (path, seq) = if !s.root_done {
            s.root_done = true;
            ("/".to_string(), 0)
        } else {
            loop {
                let Some(frame) = s.stack.last_mut() else {
                    return false;
                };
                let Some(&(a, b, seq)) = frame.entries.get(frame.next) else {
                    s.stack.pop();
                    continue;
                };
                frame.next += 1;
                let name = frame.names.get(a as usize..b as usize).unwrap_or("");
                let path = child_path(&frame.parent, name);
                if s.preserved.contains_key(path.as_str()) {
                    break (path, seq);
                }
                match self.nodes.get(path.as_str()) {
                    Some(n) if n.czxid <= s.zxid && n.snap_epoch != s.epoch => break (path, seq),
                    _ => continue,
                }
            }
        };
        // Record the node: its saved image, or the node itself.
        if let Some(img) = s.preserved.remove(path.as_str()) {
            f(SnapRecord {
                path: &path,
                seq: img.seq.unwrap_or(seq),
                data: img.data.as_deref(),
                acl: img.acl,
                stat: img.stat,
            });
            self.acls.release(img.acl);
        } else if let Some(n) = self.nodes.get_mut(path.as_str()) {
            n.snap_epoch = s.epoch;
            f(SnapRecord {
                path: &path,
                seq,
                data: n.data.as_deref(),
                acl: n.acl,
                stat: StoredStat::of(n),
            });
        }
        s.recorded += 1;
        // Its children as they were: the current ones that existed then
        // (a node now at this path that is newer than the snapshot has only
        // newer children), plus those deleted since.
        let mut frame = Frame {
            parent: path,
            names: String::new(),
            entries: Vec::new(),
            next: 0,
        };
        let current = self
            .nodes
            .get(frame.parent.as_str())
            .filter(|n| n.czxid <= s.zxid);
        if let Some(n) = current {
            frame.entries.reserve(n.children.len());
            for (name, seq) in self.nodes.children(n) {
                push_entry(&mut frame, name, u64::from(seq));
            }
        }
        if let Some(gone) = s.removed.remove(frame.parent.as_str()) {
            for (seq, name) in gone {
                push_entry(&mut frame, &name, seq);
            }
        }
        if !frame.entries.is_empty() {
            s.stack.push(frame);
        }
        true
    }

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

fn push_entry(frame: &mut Frame, name: &str, seq: u64) {
    let a = frame.names.len() as u32;
    frame.names.push_str(name);
    frame.entries.push((a, frame.names.len() as u32, seq));
}

/// Container and TTL nodes keep their type in ephemeralOwner (top bits);
/// they are not owned by a session.
pub(crate) fn is_special_owner(owner: i64) -> bool {
    owner < 0
}

/// ephemeralOwner of container nodes (`EphemeralType.CONTAINER_EPHEMERAL_OWNER`).
pub(crate) const CONTAINER_OWNER: i64 = i64::MIN;

/// ephemeralOwner marker of TTL nodes (`EphemeralType.EXTENDED_MASK`); the
/// TTL sits in the low 40 bits.
pub(crate) const TTL_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;

/// Largest TTL (`EphemeralType.TTL.maxValue()`): 40 bits of milliseconds.
pub(crate) const MAX_TTL: i64 = 0x00ff_ffff_ffff;

/// The TTL of a TTL node's owner field (0 for anything else).
pub(crate) fn ttl_of(owner: i64) -> i64 {
    if owner & TTL_MASK == TTL_MASK {
        owner & MAX_TTL
    } else {
        0
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

#[cfg(test)]
mod tests {
    /// getEphemerals order (and closeSession's delete order) recorded from
    /// Apache ZooKeeper 3.8.0: 13 ephemerals created in this order by one
    /// session, then /x and /q deleted.
    #[test]
    fn ephemerals_in_zookeepers_hash_set_clone_order() {
        let names = [
            "zeta",
            "a",
            "b9",
            "lock-0000000001",
            "x",
            "c",
            "q",
            "mm",
            "k",
            "e1",
            "e2",
            "e3",
            "e4",
        ];
        for (base, want) in [
            ("/ephp1", "k e3 e4 lock-0000000001 e1 e2 a mm c b9 zeta"),
            ("/ephp3", "e2 e1 mm k e4 zeta e3 a lock-0000000001 c b9"),
        ] {
            let mut e = SessionEphemerals::default();
            for n in names {
                e.insert(&format!("{base}/{n}"));
            }
            e.remove(&format!("{base}/x"));
            e.remove(&format!("{base}/q"));
            let got: Vec<&str> = e
                .clone_order()
                .into_iter()
                .map(|p| &p[base.len() + 1..])
                .collect();
            assert_eq!(got.join(" "), want, "{base}");
        }
    }

    use super::*;

    fn open() -> AclList {
        smallvec::smallvec![Acl::open()]
    }

    #[test]
    fn fresh_tree_looks_like_zookeeper() {
        let t = DataTree::new();
        assert_eq!(t.len(), 4);
        let root = t.get("/").unwrap().stat();
        assert_eq!(root.num_children, 1);
        // As a fresh Apache ZooKeeper reports it.
        assert_eq!(root.cversion, -1);
        assert_eq!(root.czxid, 0);
        assert_eq!(t.descendant_count("/"), 3);
        assert_eq!(t.acl_of(t.get("/zookeeper/config").unwrap())[0].perms, 1);
        t.check_invariants().unwrap();
    }

    #[test]
    fn create_and_delete_update_parent_stat() {
        let mut t = DataTree::new();
        assert!(t.create("/a", Some(Bytes::from_static(b"x")), &open(), 0, 1, 5, 100));
        assert!(!t.create("/a", Some(Bytes::new()), &open(), 0, 2, 6, 100));
        assert!(!t.create("/no/b", Some(Bytes::new()), &open(), 0, 1, 6, 100));
        let root = t.get("/").unwrap().stat();
        // Reported: 2 × creates − children = 2 × 1 − 2.
        assert_eq!((root.cversion, root.pzxid, root.num_children), (0, 5, 2));
        assert!(t.create("/a/e", Some(Bytes::new()), &open(), 42, 1, 7, 100));
        assert_eq!(t.ephemerals_of(42), vec!["/a/e".to_string()]);
        assert!(t.delete("/a/e", 8));
        let a = t.get("/a").unwrap().stat();
        // Stored cversion counts creates; the reported one counts deletes too.
        assert_eq!((a.cversion, a.pzxid, a.num_children), (2, 8, 0));
        assert_eq!(t.get("/a").unwrap().cversion, 1);
        assert!(t.ephemerals_of(42).is_empty());
        assert!(!t.delete("/zookeeper", 9));
        t.check_invariants().unwrap();
    }

    #[test]
    fn acl_lists_are_shared() {
        let mut t = DataTree::new();
        for i in 0..100 {
            t.create(
                &format!("/n{i}"),
                Some(Bytes::new()),
                &open(),
                0,
                i + 1,
                10,
                0,
            );
        }
        assert_eq!(t.acls.len(), 2); // open, and /zookeeper/config's read-only
        for i in 0..100 {
            t.delete(&format!("/n{i}"), 200);
        }
        assert_eq!(t.acls.len(), 2);
    }

    /// A tree with `/p` and the given children created under it in order.
    fn with_children(names: &[&str]) -> DataTree {
        let mut t = DataTree::new();
        t.create("/p", Some(Bytes::new()), &open(), 0, 1, 1, 0);
        for (i, n) in names.iter().enumerate() {
            let z = i as i64 + 2;
            assert!(t.create(
                &format!("/p/{n}"),
                Some(Bytes::new()),
                &open(),
                0,
                z as i32,
                z,
                0
            ));
        }
        t
    }

    fn zk_order(t: &DataTree) -> String {
        t.zookeeper_order(t.get("/p").unwrap()).join(", ")
    }

    #[test]
    fn children_in_java_hashset_order() {
        // Java: new HashSet<>(8) with "b","a","c" added iterates a, b, c
        // ("a".hashCode() = 97 → bucket 1, "b" → 2, "c" → 3).
        let t = with_children(&["b", "a", "c"]);
        assert_eq!(zk_order(&t), "a, b, c");
        assert_eq!(t.creation_order(t.get("/p").unwrap()), vec!["b", "a", "c"]);
        // Values printed by Java 17 for the same inserts.
        assert_eq!(java_string_hash("zookeeper"), 1_600_681_804);
        let t = with_children(&[
            "zz",
            "b",
            "a",
            "c",
            "node-0000000001",
            "lock-",
            "x",
            "y",
            "q",
            "longer-name",
        ]);
        let want = "zz, longer-name, a, q, b, c, node-0000000001, lock-, x, y";
        assert_eq!(zk_order(&t), want);
        let names: Vec<String> = (0..20).map(|i| format!("n{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut t = with_children(&refs);
        assert!(t.delete("/p/n3", 30));
        assert!(t.create("/p/n3", Some(Bytes::new()), &open(), 0, 30, 31, 0));
        let want = "n0, n1, n2, n3, n4, n5, n6, n7, n8, n9, n10, n12, n11, n14, n13, n16, n15, n18, n17, n19";
        assert_eq!(zk_order(&t), want);
        t.check_invariants().unwrap();
    }
}
