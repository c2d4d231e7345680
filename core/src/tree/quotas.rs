//! Quotas (DataTree's pTrie, updateQuotaStat, updateQuotaForPath): the
//! paths with a quota, their stats nodes kept up to date, and the
//! hard-limit check.

use super::{child_path, data_len, DataTree};
use crate::{path, quota};
use bytes::Bytes;

impl DataTree {
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

    pub(super) fn quota_on_create(&mut self, path: &str, parent_path: &str) {
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

    pub(super) fn add_to_quota_stats(&mut self, prefix: &str, bytes: i64, count: i64) {
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
}
