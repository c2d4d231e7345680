//! Children orders: creation order, and the order Apache ZooKeeper lists
//! them in (Java `HashSet` iteration, from `String.hashCode`).

use super::{DataTree, Node};

/// Java's `String.hashCode` over UTF-16 code units.
pub(crate) fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// Java's `HashMap.hash`: `String.hashCode` with its high half folded in.
pub(super) fn java_spread(s: &str) -> u32 {
    let h = java_string_hash(s) as u32;
    h ^ (h >> 16)
}

impl DataTree {
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
}
