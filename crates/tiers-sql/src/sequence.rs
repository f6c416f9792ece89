//! Sequences: values for SERIAL columns and hidden row ids.
//!
//! As in PostgreSQL, sequence values are handed out outside the inserting
//! transaction, so concurrent inserts into one table never conflict over
//! its counter (under snapshot isolation they would: both would write the
//! same key). Values are reserved in batches by small transactions of their
//! own that commit durably before any value of the batch is used, so a value
//! is never handed out twice, even across crashes; a crash or a rollback
//! leaves gaps, exactly as in PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tiers_storage::{Engine, Error as StorageError};

use crate::catalog::COUNTERS_TREE;
use crate::error::{Result, SqlError, sqlstate};

/// Values reserved per batch.
const BATCH: i64 = 64;
/// Attempts to reserve a batch before giving up under contention.
const ATTEMPTS: usize = 100;

/// The sequence allocator of one database (share it between sessions).
pub struct Sequences {
    engine: Arc<Engine>,
    /// Reserved, unused values per sequence: (next, last).
    ranges: Mutex<HashMap<Vec<u8>, (i64, i64)>>,
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
        if let Some((next, last)) = ranges.get_mut(key)
            && *next <= *last
        {
            let v = *next;
            *next += 1;
            return Ok(v);
        }
        let (first, last) = self.reserve(key)?;
        ranges.insert(key.to_vec(), (first + 1, last));
        Ok(first)
    }

    fn reserve(&self, key: &[u8]) -> Result<(i64, i64)> {
        for _ in 0..ATTEMPTS {
            let mut tx = self.engine.begin_write()?;
            let current = match tx.get(COUNTERS_TREE, key)? {
                Some(v) => i64::from_le_bytes(
                    v.try_into()
                        .map_err(|_| SqlError::new(sqlstate::DATA_CORRUPTED, "corrupt sequence"))?,
                ),
                None => 0,
            };
            let last = current.checked_add(BATCH).ok_or_else(|| {
                SqlError::new(
                    sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                    "sequence reached its maximum",
                )
            })?;
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

impl Drop for Sequences {
    /// Gives back reserved values nobody used, so a clean shutdown leaves no
    /// gap (a crash still may, as in PostgreSQL). Best effort: a sequence
    /// that moved on meanwhile (another allocator) is left alone.
    fn drop(&mut self) {
        let ranges = std::mem::take(self.ranges.get_mut().expect("sequence cache poisoned"));
        for (key, (next, last)) in ranges {
            if next > last {
                continue;
            }
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
