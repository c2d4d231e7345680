//! Watches, with ZooKeeper 3.9's rules (`WatchManager`, `DataTree.addWatch`):
//! two tables (data and child), each mapping a path to the connections
//! watching it and the modes they watch in (standard one-shot, persistent,
//! persistent-recursive), plus connection → paths, so firing a watch and
//! dropping a connection are both cheap. Watches belong to a connection: a
//! client re-arms them with setWatches after reconnecting.
//!
//! Each [`Event`] names the ACL list its watcher must hold READ on; the
//! server withholds the event otherwise (ZooKeeper 3.9.2's fix of
//! CVE-2024-23944), after the watch has been consumed here.

use crate::tree::AclRef;
use crate::txn::Trigger;
use crate::ConnId;
use hashbrown::{HashMap, HashSet};
use smallvec::SmallVec;

/// ZooKeeper's `EventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // ZooKeeper's names
pub(crate) enum EventType {
    NodeCreated = 1,
    NodeDeleted = 2,
    NodeDataChanged = 3,
    NodeChildrenChanged = 4,
}

impl EventType {
    /// ZooKeeper's name for the event type.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::NodeCreated => "NodeCreated",
            Self::NodeDeleted => "NodeDeleted",
            Self::NodeDataChanged => "NodeDataChanged",
            Self::NodeChildrenChanged => "NodeChildrenChanged",
        }
    }
}

/// Which table a watch lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// getData and exists watches (and persistent ones).
    Data,
    /// getChildren watches (and persistent, non-recursive ones).
    Child,
}

/// Watch modes, as a bit set per (connection, path).
pub(crate) mod mode {
    /// One-shot.
    pub(crate) const STANDARD: u8 = 1;
    /// Persistent, this path only.
    pub(crate) const PERSISTENT: u8 = 2;
    /// Persistent, this path and every descendant.
    pub(crate) const RECURSIVE: u8 = 4;
}

/// ZooKeeper's `WatcherType` (removeWatches / checkWatches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatcherType {
    Children,
    Data,
    Any,
    Persistent,
    PersistentRecursive,
}

impl WatcherType {
    pub(crate) fn from_code(c: i32) -> Option<Self> {
        Some(match c {
            1 => Self::Children,
            2 => Self::Data,
            3 => Self::Any,
            4 => Self::Persistent,
            5 => Self::PersistentRecursive,
            _ => return None,
        })
    }
}

type Watchers = SmallVec<[(ConnId, u8); 2]>;

#[derive(Debug, Default)]
struct Table {
    by_path: HashMap<Box<str>, Watchers>,
    recursive: usize,
}

impl Table {
    fn add(&mut self, path: &str, conn: ConnId, m: u8) -> bool {
        let w = self.by_path.entry(path.into()).or_default();
        match w.iter_mut().find(|e| e.0 == conn) {
            Some(e) => {
                let old = e.1;
                e.1 |= m;
                if old & mode::RECURSIVE == 0 && e.1 & mode::RECURSIVE != 0 {
                    self.recursive += 1;
                }
                old != e.1
            }
            None => {
                w.push((conn, m));
                if m & mode::RECURSIVE != 0 {
                    self.recursive += 1;
                }
                true
            }
        }
    }

    fn modes(&self, path: &str, conn: ConnId) -> u8 {
        self.by_path
            .get(path)
            .and_then(|w| w.iter().find(|e| e.0 == conn))
            .map_or(0, |e| e.1)
    }

    /// Clears `m` (all modes when `None`); returns (old, new) modes.
    fn remove(&mut self, path: &str, conn: ConnId, m: Option<u8>) -> (u8, u8) {
        let Some(w) = self.by_path.get_mut(path) else {
            return (0, 0);
        };
        let Some(i) = w.iter().position(|e| e.0 == conn) else {
            return (0, 0);
        };
        let old = w[i].1;
        let new = m.map_or(0, |m| old & !m);
        if new == 0 {
            w.remove(i);
            if w.is_empty() {
                self.by_path.remove(path);
            }
        } else {
            w[i].1 = new;
        }
        if old & mode::RECURSIVE != 0 && new & mode::RECURSIVE == 0 {
            self.recursive -= 1;
        }
        (old, new)
    }

    /// `WatchManager.triggerWatch`: every watcher on `path` fires (one-shot
    /// ones are removed); on ancestors, only recursive watchers fire.
    fn trigger(&mut self, path: &str, out: &mut Vec<ConnId>) {
        if let Some(w) = self.by_path.get_mut(path) {
            for e in w.iter_mut() {
                if !out.contains(&e.0) {
                    out.push(e.0);
                }
                e.1 &= !mode::STANDARD;
            }
            w.retain(|e| e.1 != 0);
            if w.is_empty() {
                self.by_path.remove(path);
            }
        }
        if self.recursive == 0 {
            return;
        }
        let mut p = path;
        while p != "/" {
            p = match p.rfind('/') {
                Some(0) | None => "/",
                Some(i) => &p[..i],
            };
            if let Some(w) = self.by_path.get(p) {
                for e in w {
                    if e.1 & mode::RECURSIVE != 0 && !out.contains(&e.0) {
                        out.push(e.0);
                    }
                }
            }
        }
    }
}

/// All watches of the server.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    data: Table,
    child: Table,
    by_conn: HashMap<ConnId, HashSet<(Kind, Box<str>)>>,
}

/// One notification to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) conn: ConnId,
    pub(crate) kind: EventType,
    pub(crate) path: String,
    /// The ACL list the watcher needs READ on for the event to be delivered
    /// (`None`: no check). The watch itself is consumed either way.
    pub(crate) acl: Option<AclRef>,
}

impl Watches {
    fn table(&mut self, kind: Kind) -> &mut Table {
        match kind {
            Kind::Data => &mut self.data,
            Kind::Child => &mut self.child,
        }
    }

    fn add_mode(&mut self, kind: Kind, path: &str, conn: ConnId, m: u8) {
        self.table(kind).add(path, conn, m);
        self.by_conn
            .entry(conn)
            .or_default()
            .insert((kind, path.into()));
    }

    /// Leaves a one-shot watch (idempotent).
    pub(crate) fn add(&mut self, kind: Kind, path: &str, conn: ConnId) {
        self.add_mode(kind, path, conn, mode::STANDARD);
    }

    /// addWatch: persistent (both tables) or persistent-recursive (data
    /// table only, so it never reports NodeChildrenChanged).
    pub(crate) fn add_persistent(&mut self, path: &str, conn: ConnId, recursive: bool) {
        if recursive {
            self.add_mode(Kind::Data, path, conn, mode::RECURSIVE);
        } else {
            self.add_mode(Kind::Data, path, conn, mode::PERSISTENT);
            self.add_mode(Kind::Child, path, conn, mode::PERSISTENT);
        }
    }

    fn forget_if_gone(&mut self, kind: Kind, path: &str, conn: ConnId) {
        if self.table(kind).modes(path, conn) == 0 {
            if let Some(set) = self.by_conn.get_mut(&conn) {
                set.remove(&(kind, Box::<str>::from(path)));
                if set.is_empty() {
                    self.by_conn.remove(&conn);
                }
            }
        }
    }

    fn remove_in(&mut self, kind: Kind, path: &str, conn: ConnId, m: Option<u8>) -> bool {
        let (old, new) = self.table(kind).remove(path, conn, m);
        self.forget_if_gone(kind, path, conn);
        old != new
    }

    /// `DataTree.containsWatcher`.
    pub(crate) fn contains(&self, path: &str, t: WatcherType, conn: ConnId) -> bool {
        let d = self.data.modes(path, conn);
        let c = self.child.modes(path, conn);
        match t {
            WatcherType::Children => c & mode::STANDARD != 0,
            WatcherType::Data => d & mode::STANDARD != 0,
            WatcherType::Persistent => d & mode::PERSISTENT != 0,
            WatcherType::PersistentRecursive => d & mode::RECURSIVE != 0,
            WatcherType::Any => c != 0 || d != 0,
        }
    }

    /// `DataTree.removeWatch`; true when something was removed.
    pub(crate) fn remove(&mut self, path: &str, t: WatcherType, conn: ConnId) -> bool {
        match t {
            WatcherType::Children => self.remove_in(Kind::Child, path, conn, Some(mode::STANDARD)),
            WatcherType::Data => self.remove_in(Kind::Data, path, conn, Some(mode::STANDARD)),
            WatcherType::Persistent => {
                let a = self.remove_in(Kind::Child, path, conn, Some(mode::PERSISTENT));
                let b = self.remove_in(Kind::Data, path, conn, Some(mode::PERSISTENT));
                a || b
            }
            WatcherType::PersistentRecursive => {
                self.remove_in(Kind::Data, path, conn, Some(mode::RECURSIVE))
            }
            WatcherType::Any => {
                let a = self.remove_in(Kind::Child, path, conn, None);
                let b = self.remove_in(Kind::Data, path, conn, None);
                a || b
            }
        }
    }

    /// Drops every watch of a connection.
    pub(crate) fn remove_conn(&mut self, conn: ConnId) {
        let Some(set) = self.by_conn.remove(&conn) else {
            return;
        };
        for (kind, path) in set {
            self.table(kind).remove(&path, conn, None);
        }
    }

    fn take(&mut self, kind: Kind, path: &str, out: &mut Vec<ConnId>) {
        let start = out.len();
        self.table(kind).trigger(path, out);
        let fired: SmallVec<[ConnId; 4]> = out[start..].iter().copied().collect();
        for c in fired {
            self.forget_if_gone(kind, path, c);
        }
    }

    /// Fires the watches a change triggers, appending the notifications in
    /// ZooKeeper's order. One-shot watches are consumed here, whether or not
    /// the server then withholds the event for want of READ permission.
    pub(crate) fn fire(&mut self, trigger: &Trigger, out: &mut Vec<Event>) {
        let emit = |conns: &[ConnId],
                    kind: EventType,
                    path: &str,
                    acl: Option<AclRef>,
                    out: &mut Vec<Event>| {
            for &conn in conns {
                out.push(Event {
                    conn,
                    kind,
                    path: path.to_string(),
                    acl,
                });
            }
        };
        let mut w = Vec::new();
        match trigger {
            Trigger::Created(p, acls) => {
                self.take(Kind::Data, p, &mut w);
                emit(&w, EventType::NodeCreated, p, acls.node, out);
                w.clear();
                let parent = parent_of(p);
                self.take(Kind::Child, parent, &mut w);
                emit(&w, EventType::NodeChildrenChanged, parent, acls.parent, out);
            }
            Trigger::Deleted(p, acls) => {
                self.take(Kind::Data, p, &mut w);
                emit(&w, EventType::NodeDeleted, p, acls.node, out);
                // A connection that heard of the deletion through a data
                // watch is not told again through a child watch.
                let mut child = Vec::new();
                self.take(Kind::Child, p, &mut child);
                child.retain(|c| !w.contains(c));
                emit(&child, EventType::NodeDeleted, p, acls.node, out);
                w.clear();
                let parent = parent_of(p);
                self.take(Kind::Child, parent, &mut w);
                emit(&w, EventType::NodeChildrenChanged, parent, acls.parent, out);
            }
            Trigger::DataChanged(p, acls) => {
                self.take(Kind::Data, p, &mut w);
                emit(&w, EventType::NodeDataChanged, p, acls.node, out);
            }
        }
    }

    /// Total number of watches (path, connection, table) triples.
    pub(crate) fn count(&self) -> usize {
        self.by_conn.values().map(HashSet::len).sum()
    }

    /// `wchs`: (connections, paths, watches) of the data watches only, as
    /// ZooKeeper reports them (getData, exists and addWatch watches; child
    /// watches are left out).
    pub(crate) fn data_summary(&self) -> (usize, usize, usize) {
        let mut conns: HashSet<ConnId> = HashSet::new();
        let mut total = 0;
        for w in self.data.by_path.values() {
            total += w.len();
            conns.extend(w.iter().map(|e| e.0));
        }
        (conns.len(), self.data.by_path.len(), total)
    }

    /// `wchc`: the paths a connection holds data watches on, sorted.
    pub(crate) fn data_paths_of(&self, conn: ConnId) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_conn
            .get(&conn)
            .map(|s| {
                s.iter()
                    .filter(|(k, _)| *k == Kind::Data)
                    .map(|(_, p)| p.to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// `wchp`: data-watched paths with their connections, sorted by path.
    pub(crate) fn data_by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        let mut v: Vec<(String, Vec<ConnId>)> = self
            .data
            .by_path
            .iter()
            .map(|(p, w)| (p.to_string(), w.iter().map(|e| e.0).collect()))
            .collect();
        v.sort();
        v
    }
}

fn parent_of(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &p[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire(w: &mut Watches, t: Trigger) -> Vec<(ConnId, EventType, String)> {
        let mut out = Vec::new();
        w.fire(&t, &mut out);
        out.into_iter().map(|e| (e.conn, e.kind, e.path)).collect()
    }

    #[test]
    fn one_shot_and_deduplicated_on_delete() {
        let mut w = Watches::default();
        let (a, b) = (ConnId(1), ConnId(2));
        w.add(Kind::Data, "/x", a);
        w.add(Kind::Child, "/x", a);
        w.add(Kind::Child, "/x", b);
        w.add(Kind::Child, "/", b);
        assert_eq!(
            fire(&mut w, Trigger::Deleted("/x".into(), Default::default())),
            vec![
                (a, EventType::NodeDeleted, "/x".into()),
                (b, EventType::NodeDeleted, "/x".into()),
                (b, EventType::NodeChildrenChanged, "/".into()),
            ]
        );
        assert!(fire(&mut w, Trigger::Deleted("/x".into(), Default::default())).is_empty());
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn dropping_a_connection_drops_its_watches() {
        let mut w = Watches::default();
        w.add(Kind::Data, "/x", ConnId(1));
        w.add(Kind::Data, "/x", ConnId(2));
        w.add_persistent("/", ConnId(1), true);
        w.remove_conn(ConnId(1));
        let got = fire(
            &mut w,
            Trigger::DataChanged("/x".into(), Default::default()),
        );
        assert_eq!(
            got,
            vec![(ConnId(2), EventType::NodeDataChanged, "/x".into())]
        );
        assert_eq!(w.data.recursive, 0);
    }

    #[test]
    fn persistent_and_recursive_watches() {
        let mut w = Watches::default();
        let (p, r) = (ConnId(1), ConnId(2));
        w.add_persistent("/a", p, false);
        w.add_persistent("/a", r, true);
        // Persistent on /a: data changes of /a and its children list.
        for _ in 0..2 {
            assert_eq!(
                fire(
                    &mut w,
                    Trigger::DataChanged("/a".into(), Default::default())
                ),
                vec![
                    (p, EventType::NodeDataChanged, "/a".into()),
                    (r, EventType::NodeDataChanged, "/a".into())
                ]
            );
        }
        // Recursive: the child's creation, but never NodeChildrenChanged.
        assert_eq!(
            fire(
                &mut w,
                Trigger::Created("/a/b/c".into(), Default::default())
            ),
            vec![(r, EventType::NodeCreated, "/a/b/c".into())]
        );
        assert_eq!(
            fire(&mut w, Trigger::Created("/a/b".into(), Default::default())),
            vec![
                (r, EventType::NodeCreated, "/a/b".into()),
                (p, EventType::NodeChildrenChanged, "/a".into())
            ]
        );
        assert!(w.contains("/a", WatcherType::PersistentRecursive, r));
        assert!(!w.contains("/a", WatcherType::Data, r));
        assert!(w.remove("/a", WatcherType::Persistent, p));
        assert!(!w.remove("/a", WatcherType::Persistent, p));
        assert!(w.remove("/a", WatcherType::Any, r));
        assert!(fire(&mut w, Trigger::Created("/a/z".into(), Default::default())).is_empty());
        assert_eq!(w.count(), 0);
    }
}
