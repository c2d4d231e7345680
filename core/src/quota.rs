//! Quotas, as ZooKeeper keeps them: a quota on path P is the node
//! `/zookeeper/quota/P/zookeeper_limits` (text like
//! `count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=20`), and the server
//! maintains `/zookeeper/quota/P/zookeeper_stats` (`count=N,bytes=B`) as
//! nodes under P change (`StatsTrack`, `DataTree.updateQuotaStat`).

use std::collections::BTreeMap;

/// Where quota nodes live.
pub(crate) const QUOTA_ROOT: &str = "/zookeeper/quota";
/// The limits node's name.
pub(crate) const LIMITS: &str = "zookeeper_limits";
/// The stats node's name.
pub(crate) const STATS: &str = "zookeeper_stats";

/// ZooKeeper's `StatsTrack`: named counters, -1 meaning unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatsTrack {
    stats: BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses `k=v` pairs separated by `,` or `;` (an empty value is -1).
    /// Malformed pairs are skipped (ZooKeeper would throw while applying a
    /// transaction; we never let stored data break `apply`).
    pub(crate) fn parse(data: &[u8]) -> Self {
        let mut stats = BTreeMap::new();
        let text = String::from_utf8_lossy(data);
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
                continue;
            };
            let v = if v.is_empty() {
                Ok(-1)
            } else {
                v.parse::<i64>()
            };
            if let Ok(v) = v {
                stats.insert(k.to_string(), v);
            }
        }
        Self { stats }
    }

    pub(crate) fn get(&self, key: &str) -> i64 {
        self.stats.get(key).copied().unwrap_or(-1)
    }

    pub(crate) fn set(&mut self, key: &str, v: i64) {
        self.stats.insert(key.to_string(), v);
    }

    /// `StatsTrack.toString`: count and bytes first, then `=` and the other
    /// keys sorted, each after a `;`.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("count={},bytes={}", self.get("count"), self.get("bytes"));
        let extra: Vec<(&String, &i64)> = self
            .stats
            .iter()
            .filter(|(k, _)| *k != "count" && *k != "bytes")
            .collect();
        if !extra.is_empty() {
            s.push('=');
            for (k, v) in extra {
                s.push_str(&format!(";{k}={v}"));
            }
        }
        s.into_bytes()
    }
}

/// `/zookeeper/quota/P/zookeeper_stats` for quota path P.
pub(crate) fn stats_path(p: &str) -> String {
    format!("{QUOTA_ROOT}{p}/{STATS}")
}

/// `/zookeeper/quota/P/zookeeper_limits` for quota path P.
pub(crate) fn limits_path(p: &str) -> String {
    format!("{QUOTA_ROOT}{p}/{LIMITS}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_text_as_zookeeper_writes_it() {
        let mut s = StatsTrack::parse(b"count=3,bytes=10");
        assert_eq!((s.get("count"), s.get("bytes")), (3, 10));
        assert_eq!(s.to_bytes(), b"count=3,bytes=10");
        s.set("countHardLimit", 20);
        s.set("byteHardLimit", -1);
        assert_eq!(
            String::from_utf8(s.to_bytes()).unwrap(),
            "count=3,bytes=10=;byteHardLimit=-1;countHardLimit=20"
        );
        let back = StatsTrack::parse(&s.to_bytes());
        assert_eq!(back, s);
        assert_eq!(StatsTrack::parse(b"count=,bytes=x;junk").get("count"), -1);
        assert_eq!(StatsTrack::parse(b"").get("bytes"), -1);
    }
}
