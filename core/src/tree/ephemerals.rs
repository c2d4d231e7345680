//! Who owns a node, by its ephemeralOwner field: sessions' ephemeral sets
//! (in the orders of ZooKeeper's per-session `HashSet`), and container and
//! TTL nodes with the reaper's candidates.

use super::order::java_spread;
use super::DataTree;

/// One session's ephemeral paths. ZooKeeper keeps them in a Java
/// `HashSet<String>` (`DataTree.ephemerals`): closing the session deletes
/// them in that set's iteration order (so its NodeDeleted events come in
/// that order), and getEphemerals lists a clone of it, whose smaller table
/// orders them again. Both orders are modelled here.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionEphemerals {
    /// path → insertion number (order within a Java bucket).
    pub(super) paths: std::collections::BTreeMap<Box<str>, u64>,
    next_seq: u64,
    /// The set's table capacity: 16 from the first add, doubling when more
    /// than 3/4 full, never shrinking.
    java_cap: u32,
}

impl SessionEphemerals {
    pub(super) fn insert(&mut self, path: &str) {
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

    pub(super) fn remove(&mut self, path: &str) {
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
    pub(super) fn clone_order(&self) -> Vec<&str> {
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

impl DataTree {
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

    /// Records an ephemeral node under its session, or a container or TTL
    /// node for the reaper.
    pub(super) fn index_owner(&mut self, path: &str, owner: i64) {
        if owner == 0 {
        } else if is_special_owner(owner) {
            self.special.insert(path.into());
        } else {
            self.ephemerals.entry(owner).or_default().insert(path);
        }
    }
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
