//! A log-linear latency histogram (the HdrHistogram layout, written out).
//!
//! Precision: values below 128 are counted exactly. Above, every
//! power-of-two range `[2^e, 2^(e+1))` is cut into 128 equal sub-buckets,
//! so two values in one bucket differ by less than 1/128 of the smaller
//! (0.78 %): two significant decimal digits, the same as HdrHistogram with
//! `sigfig = 2`. A percentile is reported as the highest value its bucket
//! can hold (never below the true value), clamped to the exact maximum;
//! min, max, count and the mean are exact. Recording is an index
//! computation and an add, and the whole u64 range fits in 7424 counters
//! (58 KiB).

/// Sub-bucket bits: 2^7 = 128 sub-buckets per power of two.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets for all of u64: 128 exact values, then 57 power-of-two ranges
/// (2^7 .. 2^64) of 128 sub-buckets each.
const BUCKETS: usize = (SUB as usize) * (64 - SUB_BITS as usize + 1);

/// Counts of u64 values (here: nanoseconds) in log-linear buckets.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("max", &self.max)
            .finish()
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    // e >= SUB_BITS: the value's top bit; keep SUB_BITS bits below it.
    let e = 63 - v.leading_zeros();
    let shift = e - SUB_BITS;
    let mantissa = v >> shift; // in SUB..2*SUB
    ((u64::from(shift) + 1) * SUB + (mantissa - SUB)) as usize
}

/// The largest value that lands in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i / SUB - 1) as u32;
    let mantissa = SUB + i % SUB;
    let high = (u128::from(mantissa + 1) << shift) - 1;
    u64::try_from(high).unwrap_or(u64::MAX)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            count: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Counts one value.
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.count += 1;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    /// Adds every value counted by `other`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The smallest value (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// The largest value (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The exact mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` in [0, 1]: the top of the bucket holding
    /// the `ceil(q * count)`-th smallest value, at most the maximum (0 when
    /// empty).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range() {
        // Every bucket's top is one below the next bucket's bottom, and
        // each value maps into a bucket whose top is >= it.
        for i in 0..BUCKETS - 1 {
            assert_eq!(index(bucket_high(i)), i, "bucket {i}");
            assert_eq!(index(bucket_high(i) + 1), i + 1, "bucket {i}");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_high(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn precision_is_under_one_percent() {
        let mut v = 1u64;
        while v < u64::MAX / 3 {
            let high = bucket_high(index(v));
            assert!(high >= v);
            assert!((high - v) as f64 <= v as f64 / 128.0, "{v} -> {high}");
            v = v * 3 / 2 + 1;
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=100u64 {
            h.record(v);
        }
        // Below 128 every value is exact.
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!((h.min(), h.max(), h.count()), (1, 100, 100));
        assert!((h.mean() - 50.5).abs() < 1e-9);

        let mut big = Histogram::new();
        for v in 0..10_000u64 {
            big.record(1_000_000 + v * 1000); // 1 ms .. 11 ms
        }
        let p50 = big.quantile(0.5) as f64;
        assert!(
            (p50 - 5_999_000.0).abs() / 5_999_000.0 < 1.0 / 128.0,
            "{p50}"
        );
        assert_eq!(big.quantile(1.0), 1_000_000 + 9_999 * 1000);

        h.merge(&big);
        assert_eq!(h.count(), 10_100);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), big.max());
    }
}
