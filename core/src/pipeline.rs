//! The write pipeline between validation and the tree: who decides the
//! order of writes and when they commit ([`Sequencer`], standalone today),
//! and the changes of writes ordered but not yet committed
//! ([`Outstanding`], ZooKeeper's `outstandingChanges`), which later writes
//! are validated against.
//!
//! The tree holds committed state only. A write is validated against the
//! tree plus [`Outstanding`], ordered (it gets its zxid and goes to the
//! log), and applied when the sequencer reports it committed; then its
//! changes leave [`Outstanding`].

use crate::prep::View;
use hashbrown::HashMap;
use std::collections::VecDeque;

/// The component that orders writes and decides when they commit. The
/// standalone server commits what its own log made durable; a replicated
/// one (next) commits what a quorum has.
pub(crate) trait Sequencer {
    /// Hands out the zxid of the next write.
    fn next_zxid(&mut self) -> i64;
    /// The log reports everything up to `zxid` durable; returns the new
    /// commit point.
    fn durable(&mut self, zxid: i64) -> i64;
    /// Highest zxid handed out.
    fn last_ordered(&self) -> i64;
    /// Highest zxid committed (everything up to it may be applied).
    fn committed(&self) -> i64;
}

/// A single server: a write commits once it is durable on its own disk.
#[derive(Debug, Default, Clone)]
pub(crate) struct Standalone {
    last: i64,
    committed: i64,
}

impl Standalone {
    /// A sequencer whose log holds everything up to `zxid`, all committed.
    pub(crate) fn at(zxid: i64) -> Self {
        Self {
            last: zxid,
            committed: zxid,
        }
    }
}

impl Sequencer for Standalone {
    fn next_zxid(&mut self) -> i64 {
        self.last += 1;
        self.last
    }

    fn durable(&mut self, zxid: i64) -> i64 {
        // Never beyond what was handed out (a confused log cannot make the
        // server apply writes it never ordered).
        self.committed = self.committed.max(zxid.min(self.last));
        self.committed
    }

    fn last_ordered(&self) -> i64 {
        self.last
    }

    fn committed(&self) -> i64 {
        self.committed
    }
}

/// What validation sees of one path after the writes in flight: `None`
/// when one of them deletes it.
pub(crate) type Change = Option<View>;

/// Changes of writes ordered but not committed, newest per path.
#[derive(Debug, Default)]
pub(crate) struct Outstanding {
    /// Path → (zxid of the newest write that changes it, what it left).
    changes: HashMap<String, (i64, Change)>,
    /// The paths each write in flight changed, oldest first.
    by_zxid: VecDeque<(i64, Vec<String>)>,
}

impl Outstanding {
    /// The newest change in flight for `path`, if any.
    pub(crate) fn get(&self, path: &str) -> Option<&Change> {
        self.changes.get(path).map(|(_, c)| c)
    }

    /// Records the changes of the write ordered as `zxid`.
    pub(crate) fn record(&mut self, zxid: i64, changes: HashMap<String, Change>) {
        if changes.is_empty() {
            return;
        }
        let mut paths = Vec::with_capacity(changes.len());
        for (path, change) in changes {
            paths.push(path.clone());
            self.changes.insert(path, (zxid, change));
        }
        self.by_zxid.push_back((zxid, paths));
    }

    /// Forgets the changes of writes up to `zxid`: the tree has them now.
    pub(crate) fn committed(&mut self, zxid: i64) {
        while let Some((z, _)) = self.by_zxid.front() {
            if *z > zxid {
                break;
            }
            let Some((z, paths)) = self.by_zxid.pop_front() else {
                break;
            };
            for p in paths {
                // A later write may have changed the path again: keep it.
                if self.changes.get(&p).is_some_and(|(newest, _)| *newest == z) {
                    self.changes.remove(&p);
                }
            }
        }
    }

    /// Every path with a change in flight, and that change.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Change)> {
        self.changes.iter().map(|(p, (_, c))| (p.as_str(), c))
    }

    /// Paths with a change in flight.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.changes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(version: i32) -> View {
        View {
            acl: Default::default(),
            data_len: 0,
            version,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            num_children: 0,
        }
    }

    #[test]
    fn a_change_stays_until_its_newest_write_commits() {
        let mut o = Outstanding::default();
        o.record(5, [("/a".to_string(), Some(view(1)))].into_iter().collect());
        o.record(6, [("/a".to_string(), Some(view(2)))].into_iter().collect());
        o.record(7, [("/b".to_string(), None)].into_iter().collect());
        assert_eq!(o.get("/a").unwrap().as_ref().unwrap().version, 2);
        o.committed(5);
        // Zxid 6 changed /a again: still in flight.
        assert_eq!(o.get("/a").unwrap().as_ref().unwrap().version, 2);
        assert!(matches!(o.get("/b"), Some(None)));
        o.committed(6);
        assert!(o.get("/a").is_none());
        assert_eq!(o.len(), 1);
        o.committed(100);
        assert_eq!(o.len(), 0);
        assert!(o.by_zxid.is_empty());
    }

    #[test]
    fn standalone_commits_only_what_it_ordered() {
        let mut s = Standalone::at(10);
        assert_eq!(s.next_zxid(), 11);
        assert_eq!(s.next_zxid(), 12);
        assert_eq!(s.durable(11), 11);
        assert_eq!(s.durable(99), 12, "durable beyond the last ordered zxid");
        assert_eq!(s.durable(3), 12, "the commit point never goes back");
        assert_eq!((s.last_ordered(), s.committed()), (12, 12));
    }
}
