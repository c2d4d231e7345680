//! Latency summaries in the shape of ZooKeeper's `SummarySet` metrics
//! (avg/min/max/cnt/sum and p50/p95/p99/p999), with a fixed-size
//! logarithmic histogram so memory stays constant.

/// Buckets: exact below 16 ms, then 8 per power of two up to ~1e9 ms.
const EXACT: u64 = 16;
const SUB: usize = 8;
const BUCKETS: usize = EXACT as usize + 28 * SUB;

/// One latency summary.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Sum of samples (ms).
    pub sum: u64,
    /// Smallest sample (ms); 0 when empty.
    pub min: u64,
    /// Largest sample (ms).
    pub max: u64,
    hist: Vec<u64>,
}

impl Default for Summary {
    fn default() -> Self {
        Self {
            count: 0,
            sum: 0,
            min: 0,
            max: 0,
            hist: vec![0; BUCKETS],
        }
    }
}

fn bucket(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros() as usize; // >= 4
    let frac = ((v >> (exp - 3)) & 7) as usize;
    (EXACT as usize + (exp - 4) * SUB + frac).min(BUCKETS - 1)
}

fn bucket_low(b: usize) -> u64 {
    if b < EXACT as usize {
        return b as u64;
    }
    let exp = (b - EXACT as usize) / SUB + 4;
    let frac = ((b - EXACT as usize) % SUB) as u64;
    (8 + frac) << (exp - 3)
}

impl Summary {
    /// Adds one sample.
    pub fn add(&mut self, v: u64) {
        self.min = if self.count == 0 { v } else { self.min.min(v) };
        self.max = self.max.max(v);
        self.count += 1;
        self.sum = self.sum.saturating_add(v);
        self.hist[bucket(v)] += 1;
    }

    /// The average, 0 when empty.
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The `q` quantile (0..1), as the lower bound of its bucket.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let want = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, n) in self.hist.iter().enumerate() {
            seen += n;
            if seen >= want {
                return bucket_low(b).min(self.max);
            }
        }
        self.max
    }
}

/// Server-wide counters, for the four-letter words and embedding users.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Request packets received.
    pub packets_received: u64,
    /// Reply and notification packets sent.
    pub packets_sent: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Sum of request latencies (ms) for the average.
    pub latency_total_ms: u64,
    /// Requests whose latency was measured.
    pub latency_count: u64,
    /// Minimum latency seen (ms).
    pub latency_min_ms: u64,
    /// Maximum latency seen (ms).
    pub latency_max_ms: u64,
    /// Authentication attempts that failed.
    pub auth_failed: u64,
    /// Watch events withheld because the watcher may not read the node (the
    /// watch was consumed all the same).
    pub events_withheld: u64,
    /// Connections refused (maxClientCnxns).
    pub connections_rejected: u64,
    /// Latency of reads (ms), as ZooKeeper's `readlatency`.
    pub read_latency: Summary,
    /// Latency of writes (ms), as ZooKeeper's `updatelatency`.
    pub update_latency: Summary,
    /// Open file descriptors, when the runtime reports them.
    pub open_fds: Option<u64>,
    /// The file descriptor limit, when the runtime reports it.
    pub max_fds: Option<u64>,
    /// Bytes in the snapshot directory, when the runtime reports them.
    pub data_dir_bytes: u64,
    /// Bytes in the log directory, when the runtime reports them.
    pub log_dir_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_buckets() {
        let mut s = Summary::default();
        for v in 0..100 {
            s.add(v);
        }
        assert_eq!((s.count, s.min, s.max), (100, 0, 99));
        assert!((s.avg() - 49.5).abs() < 1e-9);
        assert!((44..=50).contains(&s.quantile(0.5)), "{}", s.quantile(0.5));
        assert!(s.quantile(0.99) >= 88);
        for v in [0u64, 1, 15, 16, 17, 100, 1 << 20, u64::MAX] {
            let b = bucket(v);
            assert!(b < BUCKETS);
            assert!(bucket_low(b) <= v, "{v}");
        }
        assert_eq!(Summary::default().quantile(0.5), 0);
    }
}
