//! A latency histogram: fixed buckets, atomic counters, no locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (Prometheus `le` labels).
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Counts of observed durations per bucket, plus their sum.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket bound (the last is +Inf), the sum in
    /// seconds, and the total count.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut cumulative = 0;
        let mut out = Vec::with_capacity(BUCKETS.len() + 1);
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            out.push((BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), cumulative));
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (out, sum, cumulative)
    }

    /// The duration below which `q` (0..=1) of observations fall, at
    /// bucket resolution (None when empty).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let (buckets, _, total) = self.snapshot();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil() as u64;
        buckets.iter().find(|(_, c)| *c >= want).map(|(b, _)| *b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let (buckets, sum, count) = h.snapshot();
        assert_eq!(count, 3);
        assert_eq!(buckets[0], (0.0001, 1));
        assert_eq!(buckets.iter().find(|(b, _)| *b == 0.005).unwrap().1, 2);
        assert_eq!(buckets.last().unwrap().1, 3);
        assert!((sum - 10.00305).abs() < 1e-6);
        assert_eq!(h.quantile(0.5), Some(0.005));
    }
}
