//! Watches: path → watching connections and connection → paths, so both
//! firing a watch and dropping a connection are cheap. Watches belong to a
//! connection, as in ZooKeeper: a client re-arms them with setWatches after
//! reconnecting.

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

/// Which table a one-shot watch lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// getData and exists watches.
    Data,
    /// getChildren watches.
    Child,
}

type Watchers = SmallVec<[ConnId; 2]>;

/// All one-shot watches.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    data: HashMap<Box<str>, Watchers>,
    child: HashMap<Box<str>, Watchers>,
    by_conn: HashMap<ConnId, HashSet<(Kind, Box<str>)>>,
}

/// One notification to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub(crate) conn: ConnId,
    pub(crate) kind: EventType,
    pub(crate) path: String,
}

impl Watches {
    fn table(&mut self, kind: Kind) -> &mut HashMap<Box<str>, Watchers> {
        match kind {
            Kind::Data => &mut self.data,
            Kind::Child => &mut self.child,
        }
    }

    /// Leaves a one-shot watch (idempotent).
    pub(crate) fn add(&mut self, kind: Kind, path: &str, conn: ConnId) {
        let w = self.table(kind).entry(path.into()).or_default();
        if !w.contains(&conn) {
            w.push(conn);
        }
        self.by_conn
            .entry(conn)
            .or_default()
            .insert((kind, path.into()));
    }

    /// Drops every watch of a connection.
    pub(crate) fn remove_conn(&mut self, conn: ConnId) {
        let Some(set) = self.by_conn.remove(&conn) else {
            return;
        };
        for (kind, path) in set {
            let table = self.table(kind);
            if let Some(w) = table.get_mut(&path) {
                w.retain(|c| *c != conn);
                if w.is_empty() {
                    table.remove(&path);
                }
            }
        }
    }

    /// Removes and returns the watchers of `path` in `kind`.
    fn take(&mut self, kind: Kind, path: &str) -> Watchers {
        let w = self.table(kind).remove(path).unwrap_or_default();
        for c in &w {
            if let Some(set) = self.by_conn.get_mut(c) {
                set.remove(&(kind, Box::<str>::from(path)));
                if set.is_empty() {
                    self.by_conn.remove(c);
                }
            }
        }
        w
    }

    /// Fires the watches a change triggers, appending the notifications in
    /// ZooKeeper's order.
    pub(crate) fn fire(&mut self, trigger: &Trigger, out: &mut Vec<Event>) {
        let emit = |conns: &Watchers, kind: EventType, path: &str, out: &mut Vec<Event>| {
            for &conn in conns {
                out.push(Event {
                    conn,
                    kind,
                    path: path.to_string(),
                });
            }
        };
        match trigger {
            Trigger::Created(p) => {
                let w = self.take(Kind::Data, p);
                emit(&w, EventType::NodeCreated, p, out);
                let parent = parent_of(p);
                let w = self.take(Kind::Child, parent);
                emit(&w, EventType::NodeChildrenChanged, parent, out);
            }
            Trigger::Deleted(p) => {
                let data = self.take(Kind::Data, p);
                emit(&data, EventType::NodeDeleted, p, out);
                // A connection watching both data and children of the node
                // hears of its deletion once.
                let mut child = self.take(Kind::Child, p);
                child.retain(|c| !data.contains(c));
                emit(&child, EventType::NodeDeleted, p, out);
                let parent = parent_of(p);
                let w = self.take(Kind::Child, parent);
                emit(&w, EventType::NodeChildrenChanged, parent, out);
            }
            Trigger::DataChanged(p) => {
                let w = self.take(Kind::Data, p);
                emit(&w, EventType::NodeDataChanged, p, out);
            }
        }
    }

    /// Total number of watches (path, connection pairs).
    pub(crate) fn count(&self) -> usize {
        self.by_conn.values().map(HashSet::len).sum()
    }

    /// Number of distinct watched paths.
    pub(crate) fn path_count(&self) -> usize {
        let mut paths: HashSet<&str> = self.data.keys().map(|k| &**k).collect();
        paths.extend(self.child.keys().map(|k| &**k));
        paths.len()
    }

    /// Number of connections with watches.
    pub(crate) fn conn_count(&self) -> usize {
        self.by_conn.len()
    }

    /// Paths a connection watches, sorted.
    pub(crate) fn paths_of(&self, conn: ConnId) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_conn
            .get(&conn)
            .map(|s| s.iter().map(|(_, p)| p.to_string()).collect())
            .unwrap_or_default();
        v.sort();
        v.dedup();
        v
    }

    /// Watched paths with their connections, sorted by path.
    pub(crate) fn by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        let mut m: std::collections::BTreeMap<String, Vec<ConnId>> = Default::default();
        for (p, w) in self.data.iter().chain(self.child.iter()) {
            let e = m.entry(p.to_string()).or_default();
            for c in w {
                if !e.contains(c) {
                    e.push(*c);
                }
            }
        }
        m.into_iter().collect()
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

    #[test]
    fn one_shot_and_deduplicated_on_delete() {
        let mut w = Watches::default();
        let (a, b) = (ConnId(1), ConnId(2));
        w.add(Kind::Data, "/x", a);
        w.add(Kind::Child, "/x", a);
        w.add(Kind::Child, "/x", b);
        w.add(Kind::Child, "/", b);
        let mut out = Vec::new();
        w.fire(&Trigger::Deleted("/x".into()), &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|e| (e.conn, e.kind, e.path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (a, EventType::NodeDeleted, "/x"),
                (b, EventType::NodeDeleted, "/x"),
                (b, EventType::NodeChildrenChanged, "/"),
            ]
        );
        out.clear();
        w.fire(&Trigger::Deleted("/x".into()), &mut out);
        assert!(out.is_empty(), "watches are one-shot");
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn dropping_a_connection_drops_its_watches() {
        let mut w = Watches::default();
        w.add(Kind::Data, "/x", ConnId(1));
        w.add(Kind::Data, "/x", ConnId(2));
        w.remove_conn(ConnId(1));
        let mut out = Vec::new();
        w.fire(&Trigger::DataChanged("/x".into()), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].conn, ConnId(2));
    }
}
