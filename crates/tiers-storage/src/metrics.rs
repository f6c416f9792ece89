//! Counters the engine keeps about itself, read lock-free and exported by the
//! DB server (`/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated with relaxed atomics (lock-free, the book's CAS).
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) pool_hits: AtomicU64,
    pub(crate) pool_misses: AtomicU64,
    pub(crate) pool_evictions: AtomicU64,
    pub(crate) pool_garbage_dropped: AtomicU64,
    pub(crate) pool_pages_written: AtomicU64,
    pub(crate) journal_bytes: AtomicU64,
    pub(crate) journal_records: AtomicU64,
    pub(crate) journal_fsyncs: AtomicU64,
    pub(crate) journal_bytes_saved_by_compression: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) rollbacks: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) checkpoint_failures: AtomicU64,
    pub(crate) checkpoint_micros_last: AtomicU64,
    pub(crate) checkpoint_micros_total: AtomicU64,
    pub(crate) recovery_micros: AtomicU64,
    pub(crate) recovery_records: AtomicU64,
}

/// A point-in-time copy of [`Metrics`], plus gauges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Buffer pool lookups answered from memory.
    pub pool_hits: u64,
    /// Buffer pool lookups that read the disk.
    pub pool_misses: u64,
    /// Pages evicted from the buffer pool.
    pub pool_evictions: u64,
    /// Pages dropped from the buffer pool as soon as no snapshot could read
    /// them any more (copy-on-write leftovers), without an eviction.
    pub pool_garbage_dropped: u64,
    /// Pages written to the data file (background writer, checkpoints, eviction).
    pub pool_pages_written: u64,
    /// Pages currently cached.
    pub pool_pages_cached: u64,
    /// Cached pages not yet written to the data file.
    pub pool_pages_dirty: u64,
    /// Buffer pool capacity in pages.
    pub pool_capacity_pages: u64,
    /// Bytes appended to the journal (after compression).
    pub journal_bytes: u64,
    /// Commit records appended to the journal.
    pub journal_records: u64,
    /// fsyncs of the journal.
    pub journal_fsyncs: u64,
    /// Bytes LZ4 compression saved in the journal.
    pub journal_bytes_saved_by_compression: u64,
    /// Write transactions committed.
    pub commits: u64,
    /// Commits refused by snapshot-isolation conflict checks.
    pub conflicts: u64,
    /// Write transactions rolled back.
    pub rollbacks: u64,
    /// Checkpoints taken.
    pub checkpoints: u64,
    /// Checkpoints the background writer tried and failed (it retries).
    pub checkpoint_failures: u64,
    /// Duration of the last checkpoint in microseconds.
    pub checkpoint_micros_last: u64,
    /// Total checkpoint time in microseconds.
    pub checkpoint_micros_total: u64,
    /// Time the last open spent in recovery, in microseconds.
    pub recovery_micros: u64,
    /// Commit records replayed by the last recovery.
    pub recovery_records: u64,
    /// Pages in the data file.
    pub file_pages: u64,
    /// Pages free for reuse.
    pub free_pages: u64,
    /// Highest committed LSN.
    pub last_lsn: u64,
    /// Highest LSN known durable in the journal.
    pub durable_lsn: u64,
    /// LSN of the last checkpoint.
    pub checkpoint_lsn: u64,
}

/// Whether a metric only grows (a counter) or goes up and down (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only grows.
    Counter,
    /// Goes up and down.
    Gauge,
}

impl MetricsSnapshot {
    /// Every metric as (name, help, kind, value), for exporters.
    pub fn fields(&self) -> Vec<(&'static str, &'static str, MetricKind, u64)> {
        use MetricKind::{Counter as C, Gauge as G};
        vec![
            (
                "pool_hits",
                "Buffer pool lookups answered from memory",
                C,
                self.pool_hits,
            ),
            (
                "pool_misses",
                "Buffer pool lookups that read the disk",
                C,
                self.pool_misses,
            ),
            (
                "pool_evictions",
                "Pages evicted from the buffer pool",
                C,
                self.pool_evictions,
            ),
            (
                "pool_garbage_dropped",
                "Unlinked pages dropped from the buffer pool once no snapshot could read them",
                C,
                self.pool_garbage_dropped,
            ),
            (
                "pool_pages_written",
                "Pages written to the data file",
                C,
                self.pool_pages_written,
            ),
            (
                "pool_pages_cached",
                "Pages currently cached",
                G,
                self.pool_pages_cached,
            ),
            (
                "pool_pages_dirty",
                "Cached pages not yet written",
                G,
                self.pool_pages_dirty,
            ),
            (
                "pool_capacity_pages",
                "Buffer pool capacity in pages",
                G,
                self.pool_capacity_pages,
            ),
            (
                "journal_bytes",
                "Bytes appended to the journal",
                C,
                self.journal_bytes,
            ),
            (
                "journal_records",
                "Commit records appended to the journal",
                C,
                self.journal_records,
            ),
            (
                "journal_fsyncs",
                "fsyncs of the journal",
                C,
                self.journal_fsyncs,
            ),
            (
                "journal_bytes_saved_by_compression",
                "Bytes LZ4 compression saved in the journal",
                C,
                self.journal_bytes_saved_by_compression,
            ),
            ("commits", "Write transactions committed", C, self.commits),
            (
                "conflicts",
                "Commits refused by snapshot-isolation conflict checks",
                C,
                self.conflicts,
            ),
            (
                "rollbacks",
                "Write transactions rolled back",
                C,
                self.rollbacks,
            ),
            ("checkpoints", "Checkpoints taken", C, self.checkpoints),
            (
                "checkpoint_failures",
                "Background checkpoints that failed and will be retried",
                C,
                self.checkpoint_failures,
            ),
            (
                "checkpoint_micros_last",
                "Duration of the last checkpoint (us)",
                G,
                self.checkpoint_micros_last,
            ),
            (
                "checkpoint_micros_total",
                "Total checkpoint time (us)",
                C,
                self.checkpoint_micros_total,
            ),
            (
                "recovery_micros",
                "Time the last open spent in recovery (us)",
                G,
                self.recovery_micros,
            ),
            (
                "recovery_records",
                "Commit records replayed by the last recovery",
                G,
                self.recovery_records,
            ),
            ("file_pages", "Pages in the data file", G, self.file_pages),
            ("free_pages", "Pages free for reuse", G, self.free_pages),
            ("last_lsn", "Highest committed LSN", G, self.last_lsn),
            (
                "durable_lsn",
                "Highest LSN known durable in the journal",
                G,
                self.durable_lsn,
            ),
            (
                "checkpoint_lsn",
                "LSN of the last checkpoint",
                G,
                self.checkpoint_lsn,
            ),
        ]
    }

    /// Average commits made durable per journal fsync (group commit efficiency).
    pub fn commits_per_fsync(&self) -> f64 {
        if self.journal_fsyncs == 0 {
            0.0
        } else {
            self.journal_records as f64 / self.journal_fsyncs as f64
        }
    }

    /// Buffer pool hit ratio in 0..=1.
    pub fn pool_hit_ratio(&self) -> f64 {
        let total = self.pool_hits + self.pool_misses;
        if total == 0 {
            0.0
        } else {
            self.pool_hits as f64 / total as f64
        }
    }
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

pub(crate) fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}
