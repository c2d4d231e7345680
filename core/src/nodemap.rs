//! The znode store: every node in one vector, found by path through a hash
//! table of node numbers, with each parent's children kept as a hash table
//! of their numbers (a child's name is the end of its own path).
//!
//! Why not `HashMap<Box<str>, Node>` with a `HashMap<Box<str>, _>` of child
//! names per parent: that stores every name twice (two allocations), puts a
//! 24-byte key and the whole node in each of the table's slots (tables run
//! up to half empty), and needs a pointer chase per probe. Here a table
//! slot is 8 bytes (node number and 32 bits of hash, so growing a table
//! never touches the nodes), a node is one path allocation plus its data,
//! and a million 100-byte znodes take about a quarter less memory.

use crate::tree::Node;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::hash::BuildHasher;
use std::sync::Arc;

/// A node's number in the store.
pub(crate) type NodeId = u32;

/// One hash table slot: a node number and 32 bits of the hash of its path
/// (main index) or name (a parent's children).
type Slot = (NodeId, u32);

/// Spreads a stored 32-bit hash over the 64 bits the table wants (its top
/// bits pick the control byte, its low bits the bucket).
fn spread(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The last segment of a path.
fn name_of(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// A parent's children, by node number; allocated on the first child.
#[derive(Debug, Default, Clone)]
pub(crate) struct Children(Option<Box<ChildSet>>);

#[derive(Debug, Default, Clone)]
struct ChildSet {
    table: HashTable<Slot>,
    /// Sequence number of the next child (creation order).
    next_seq: u32,
    /// The table capacity a Java `HashSet` would have for these children (8
    /// from the first one on, doubling when more than 3/4 full, never
    /// shrinking): ZooKeeper lists children in that set's order.
    java_cap: u32,
}

impl Children {
    /// Number of children.
    pub(crate) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |c| c.table.len())
    }

    /// The Java `HashSet` capacity (0 before the first child).
    pub(crate) fn java_cap(&self) -> u32 {
        self.0.as_ref().map_or(0, |c| c.java_cap)
    }

    /// The children's numbers, in no useful order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.0
            .iter()
            .flat_map(|c| c.table.iter().map(|&(id, _)| id))
    }
}

/// Every znode, by path.
///
/// Each node sits behind an `Arc`, so a snapshot is a copy of the slab of
/// pointers ([`NodeMap::image`]): a few milliseconds for a million nodes,
/// after which the tree changes a node by copying it first
/// (`Arc::make_mut`) while the snapshot holds the old one.
#[derive(Debug)]
pub(crate) struct NodeMap {
    slab: Vec<Arc<Node>>,
    free: Vec<NodeId>,
    index: HashTable<Slot>,
    hasher: DefaultHashBuilder,
    /// What a freed slot holds (shared, so freeing allocates nothing).
    vacant: Arc<Node>,
}

impl Default for NodeMap {
    fn default() -> Self {
        Self {
            slab: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            vacant: Arc::new(Node::vacant()),
        }
    }
}

impl NodeMap {
    fn hash(&self, s: &str) -> u32 {
        // The low half of a 64-bit hash; `spread` rebuilds the high half.
        self.hasher.hash_one(s) as u32
    }

    /// The number of the node at `path`.
    pub(crate) fn id(&self, path: &str) -> Option<NodeId> {
        let h = self.hash(path);
        let slab = &self.slab;
        self.index
            .find(spread(h), |&(id, hh)| {
                hh == h && slab.get(id as usize).is_some_and(|n| &*n.path == path)
            })
            .map(|&(id, _)| id)
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Makes room for `n` more nodes.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.index.reserve(n, |&(_, h)| spread(h));
        self.slab.reserve(n.saturating_sub(self.free.len()));
    }

    /// The node at `path`.
    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.id(path)
            .and_then(|id| self.slab.get(id as usize))
            .map(|n| &**n)
    }

    /// The node at `path`, to change it (its path and children stay as
    /// they are: only this map changes those).
    pub(crate) fn get_mut(&mut self, path: &str) -> Option<&mut Node> {
        let id = self.id(path)?;
        self.slab.get_mut(id as usize).map(Arc::make_mut)
    }

    /// Whether a node is at `path`.
    pub(crate) fn contains(&self, path: &str) -> bool {
        self.id(path).is_some()
    }

    /// Every node, in no useful order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Node> + '_ {
        self.index
            .iter()
            .filter_map(|&(id, _)| self.slab.get(id as usize))
            .map(|n| &**n)
    }

    /// The root, the only node without a parent. Replaces any node at "/".
    pub(crate) fn insert_root(&mut self, node: Node) {
        if let Some(old) = self.get_mut("/") {
            *old = node;
            return;
        }
        let h = self.hash(&node.path);
        let id = self.alloc(node);
        self.index
            .insert_unique(spread(h), (id, h), |&(_, h)| spread(h));
    }

    fn alloc(&mut self, node: Node) -> NodeId {
        match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.slab.get_mut(id as usize) {
                    *slot = Arc::new(node);
                }
                id
            }
            None => {
                self.slab.push(Arc::new(node));
                (self.slab.len() - 1) as NodeId
            }
        }
    }

    /// Adds `node` (at `node.path`) as a child of the node at `parent`,
    /// with creation sequence number `seq` (a restored snapshot's) or the
    /// parent's next one. Returns false, changing nothing, when the parent
    /// is missing or a node is at that path already.
    pub(crate) fn insert(&mut self, parent: &str, node: Node, seq: Option<u32>) -> bool {
        match self.id(parent) {
            Some(pid) => self.insert_at(pid, node, seq).is_ok(),
            None => false,
        }
    }

    /// [`NodeMap::insert`] under the parent numbered `pid`; gives the node
    /// back when its path is taken (or `pid` names no node), else returns
    /// its number. (The node comes back by value on the rare failure so the
    /// caller can still use it; boxing it would cost every success.)
    #[allow(clippy::result_large_err)]
    pub(crate) fn insert_at(
        &mut self,
        pid: NodeId,
        mut node: Node,
        seq: Option<u32>,
    ) -> Result<NodeId, Node> {
        let h = self.hash(&node.path);
        let nh = self.hash(name_of(&node.path));
        // The number the node will get, so the tables can be filled before
        // it moves in.
        let id = self
            .free
            .last()
            .copied()
            .unwrap_or(self.slab.len() as NodeId);
        let Self { slab, index, .. } = self;
        if slab.get(pid as usize).is_none() {
            return Err(node);
        }
        let entry = index.entry(
            spread(h),
            |&(i, hh)| hh == h && slab.get(i as usize).is_some_and(|n| n.path == node.path),
            |&(_, h)| spread(h),
        );
        let hashbrown::hash_table::Entry::Vacant(vacant) = entry else {
            return Err(node);
        };
        vacant.insert((id, h));
        let Some(p) = slab.get_mut(pid as usize).map(Arc::make_mut) else {
            return Err(node);
        };
        let set = p.children.0.get_or_insert_with(|| {
            Box::new(ChildSet {
                java_cap: 8,
                ..ChildSet::default()
            })
        });
        let seq = seq.unwrap_or(set.next_seq);
        set.next_seq = set.next_seq.max(seq.saturating_add(1));
        node.seq = seq;
        set.table
            .insert_unique(spread(nh), (id, nh), |&(_, h)| spread(h));
        while set.table.len() as u64 * 4 > u64::from(set.java_cap) * 3 {
            set.java_cap = set.java_cap.saturating_mul(2);
        }
        let got = self.alloc(node);
        debug_assert_eq!(got, id);
        Ok(id)
    }

    /// Removes the node at `path` (not the root) from the map and from its
    /// parent's children, and returns it. Its own children, if any, stay in
    /// the map without a parent listing them: the caller removes them.
    pub(crate) fn remove(&mut self, path: &str, parent: &str) -> Option<Arc<Node>> {
        let id = self.id(path)?;
        let h = self.hash(path);
        if let Ok(e) = self.index.find_entry(spread(h), |&(i, _)| i == id) {
            e.remove();
        }
        let nh = self.hash(name_of(path));
        if let Some(pid) = self.id(parent) {
            if let Some(set) = self
                .slab
                .get_mut(pid as usize)
                .map(Arc::make_mut)
                .and_then(|p| p.children.0.as_mut())
            {
                if let Ok(e) = set.table.find_entry(spread(nh), |&(i, _)| i == id) {
                    e.remove();
                }
            }
        }
        let vacant = Arc::clone(&self.vacant);
        let node = std::mem::replace(self.slab.get_mut(id as usize)?, vacant);
        self.free.push(id);
        Some(node)
    }

    /// The children of `node`: name and creation sequence number, in no
    /// useful order.
    pub(crate) fn children<'a>(
        &'a self,
        node: &'a Node,
    ) -> impl Iterator<Item = (&'a str, u32)> + 'a {
        node.children
            .ids()
            .filter_map(|id| self.slab.get(id as usize))
            .map(|c| (name_of(&c.path), c.seq))
    }

    /// A frozen copy of every node, by number, and the root's number: what
    /// a snapshot walks while the tree goes on changing.
    pub(crate) fn image(&self) -> (Vec<Arc<Node>>, Option<NodeId>) {
        (self.slab.clone(), self.id("/"))
    }

    /// The child nodes of `node`, in no useful order.
    pub(crate) fn child_nodes<'a>(&'a self, node: &'a Node) -> impl Iterator<Item = &'a Node> + 'a {
        node.children
            .ids()
            .filter_map(|id| self.slab.get(id as usize))
            .map(|n| &**n)
    }

    /// Whether `node` has a child called `name`.
    pub(crate) fn has_child(&self, node: &Node, name: &str) -> bool {
        let Some(set) = node.children.0.as_ref() else {
            return false;
        };
        let h = self.hash(name);
        set.table
            .find(spread(h), |&(id, hh)| {
                hh == h
                    && self
                        .slab
                        .get(id as usize)
                        .is_some_and(|c| name_of(&c.path) == name)
            })
            .is_some()
    }
}
