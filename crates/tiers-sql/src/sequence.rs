//! Sequences: values for SERIAL columns and hidden row ids.
//!
//! As in PostgreSQL, sequence values are handed out outside the inserting
//! transaction, so concurrent inserts into one table never conflict over
//! its counter (under snapshot isolation they would: both would write the
//! same key). Values are reserved in batches by small transactions of their
//! own that commit durably before any value of the batch is used, so a value
//! is never handed out twice, even across crashes; a crash or a rollback
//! leaves gaps, exactly as in PostgreSQL.
//!
//! A batch is 64 values, doubled (up to 4,096) each time the last one ran
//! out within a second: a busy table's inserts then stop for a durable
//! commit only now and then, at the price of a larger gap after a crash
//! (a clean shutdown gives the unused values back).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tiers_storage::{Engine, Error as StorageError};

use crate::catalog::COUNTERS_TREE;
use crate::error::{Result, SqlError, sqlstate};

/// Values reserved per batch, at first.
const BATCH: i64 = 64;
/// The largest batch a busy sequence grows to.
const MAX_BATCH: i64 = 4096;
/// A batch used up within this time makes the next one twice as large.
const BUSY: std::time::Duration = std::time::Duration::from_secs(1);
/// Attempts to reserve a batch before giving up under contention.
const ATTEMPTS: usize = 100;

/// The sequence allocator of one database (share it between sessions).
pub struct Sequences {
    engine: Arc<Engine>,
    /// Reserved, unused values per sequence: (next, last).
    ranges: Mutex<HashMap<Vec<u8>, Batch>>,
}

/// The values of one sequence reserved and not yet handed out.
struct Batch {
    /// The next value to hand out, when `left` is not 0.
    next: i64,
    /// Values not handed out yet (`next` through `next + left - 1`).
    left: i64,
    /// How many values it reserved, and when.
    size: i64,
    reserved_at: std::time::Instant,
}

impl Sequences {
    /// An allocator for `engine`.
    pub fn new(engine: Arc<Engine>) -> Arc<Sequences> {
        Arc::new(Sequences {
            engine,
            ranges: Mutex::new(HashMap::new()),
        })
    }

    /// The next value of sequence `key`.
    pub fn next(&self, key: &[u8]) -> Result<i64> {
        let mut ranges = self.ranges.lock().expect("sequence cache poisoned");
        let size = match ranges.get_mut(key) {
            Some(b) if b.left > 0 => return Ok(b.take()),
            Some(b) if b.reserved_at.elapsed() < BUSY => (b.size * 2).min(MAX_BATCH),
            _ => BATCH,
        };
        let (first, last) = self.reserve(key, size)?;
        let mut batch = Batch {
            next: first,
            left: last - first + 1,
            size,
            reserved_at: std::time::Instant::now(),
        };
        let value = batch.take();
        ranges.insert(key.to_vec(), batch);
        Ok(value)
    }

    fn reserve(&self, key: &[u8], size: i64) -> Result<(i64, i64)> {
        for _ in 0..ATTEMPTS {
            let mut tx = self.engine.begin_write()?;
            let current = match tx.get(COUNTERS_TREE, key)? {
                Some(v) => i64::from_le_bytes(
                    v.try_into()
                        .map_err(|_| SqlError::new(sqlstate::DATA_CORRUPTED, "corrupt sequence"))?,
                ),
                None => 0,
            };
            if current == i64::MAX {
                return Err(SqlError::new(
                    sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                    "sequence reached its maximum",
                ));
            }
            // Near the end, a smaller batch: every value is still handed out.
            let last = current.saturating_add(size);
            tx.put(COUNTERS_TREE, key, &last.to_le_bytes())?;
            match tx.commit() {
                Ok(_) => return Ok((current + 1, last)),
                // Another allocator reserved a batch at the same time: retry.
                Err(StorageError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SqlError::new(
            sqlstate::SERIALIZATION_FAILURE,
            "could not reserve sequence values under contention; retry",
        ))
    }
}

impl Batch {
    /// Hands out the next value (the caller saw `left` above 0); never
    /// steps past the batch's last value, which may be `i64::MAX`.
    fn take(&mut self) -> i64 {
        let value = self.next;
        self.left -= 1;
        if self.left > 0 {
            self.next += 1;
        }
        value
    }
}

impl Drop for Sequences {
    /// Gives back reserved values nobody used, so a clean shutdown leaves no
    /// gap (a crash still may, as in PostgreSQL). Best effort: a sequence
    /// that moved on meanwhile (another allocator) is left alone.
    fn drop(&mut self) {
        let ranges = std::mem::take(self.ranges.get_mut().expect("sequence cache poisoned"));
        for (key, Batch { next, left, .. }) in ranges {
            if left == 0 {
                continue;
            }
            let last = next + (left - 1);
            let Ok(mut tx) = self.engine.begin_write() else {
                return;
            };
            let current = tx.get(COUNTERS_TREE, &key).ok().flatten();
            if current.as_deref() == Some(&last.to_le_bytes()[..])
                && tx
                    .put(COUNTERS_TREE, &key, &(next - 1).to_le_bytes())
                    .is_ok()
            {
                let _ = tx.commit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine with the catalog trees, and `key`'s counter at `start`
    /// when given.
    fn engine(dir: &tempfile::TempDir, start: Option<(&[u8], i64)>) -> Arc<Engine> {
        let engine = Arc::new(Engine::open(dir.path(), tiers_storage::Config::default()).unwrap());
        let mut tx = engine.begin_write().unwrap();
        crate::catalog::bootstrap(&mut tx).unwrap();
        if let Some((key, value)) = start {
            tx.put(COUNTERS_TREE, key, &value.to_le_bytes()).unwrap();
        }
        tx.commit().unwrap();
        engine
    }

    fn counter(engine: &Engine, key: &[u8]) -> i64 {
        let r = engine.begin_read();
        let v = r.get(COUNTERS_TREE, key).unwrap().unwrap();
        i64::from_le_bytes(v.try_into().unwrap())
    }

    #[test]
    fn a_busy_sequence_reserves_growing_batches_and_gives_the_rest_back() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(&dir, None);
        let key = b"seq";
        let seqs = Sequences::new(engine.clone());
        // Quickly used batches double: 64, 128, 256, ... up to 4,096.
        for expected in 1..=64 + 128 + 1 {
            assert_eq!(seqs.next(key).unwrap(), expected);
        }
        assert_eq!(counter(&engine, key), 64 + 128 + 256);
        for expected in 64 + 128 + 2..=20_000 {
            assert_eq!(seqs.next(key).unwrap(), expected);
        }
        let reserved = counter(&engine, key);
        assert!(
            reserved >= 20_000 && reserved - 20_000 <= MAX_BATCH,
            "{reserved}"
        );
        // A clean shutdown gives back what was not handed out.
        drop(seqs);
        assert_eq!(counter(&engine, key), 20_000);
        assert_eq!(Sequences::new(engine.clone()).next(key).unwrap(), 20_001);
    }

    #[test]
    fn the_last_values_before_the_maximum_are_handed_out_then_it_fails() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(&dir, Some((b"k", i64::MAX - 2)));
        let seqs = Sequences::new(engine.clone());
        assert_eq!(seqs.next(b"k").unwrap(), i64::MAX - 1);
        assert_eq!(seqs.next(b"k").unwrap(), i64::MAX);
        let e = seqs.next(b"k").unwrap_err();
        assert_eq!(e.code, sqlstate::NUMERIC_VALUE_OUT_OF_RANGE);
    }
}
