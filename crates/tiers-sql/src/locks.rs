//! Row locks: the long, queued locks of the book's exclusive control, held
//! by a transaction on every row key it writes until it ends.
//!
//! Under READ COMMITTED a statement reads the newest committed data, so two
//! transactions may both decide to update the same row. The second one to
//! reach the row waits here for the first to finish, then re-reads the row
//! and re-checks its WHERE clause before writing (as PostgreSQL does),
//! instead of failing at commit. A wait that lasts longer than the lock
//! timeout ends with an error (a deadlock, most likely).

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Result, SqlError};

/// The lock table of one database.
#[derive(Default)]
pub struct RowLocks {
    held: Mutex<HashMap<Vec<u8>, u64>>,
    released: Condvar,
}

impl RowLocks {
    /// Takes the lock on `key` for `owner`, waiting while another owner
    /// holds it. Returns whether it had to wait (then the caller must
    /// re-read what it locked: the other owner may have changed it).
    pub fn acquire(&self, key: &[u8], owner: u64, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut held = self.held.lock().expect("lock table poisoned");
        let mut waited = false;
        loop {
            match held.get(key) {
                None => {
                    held.insert(key.to_vec(), owner);
                    return Ok(waited);
                }
                Some(o) if *o == owner => return Ok(waited),
                Some(_) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(SqlError::new(
                            "40P01",
                            format!(
                                "gave up waiting {} ms for a row lock (a deadlock, or a long transaction holds the row); retry the transaction",
                                timeout.as_millis()
                            ),
                        ));
                    }
                    waited = true;
                    held = self
                        .released
                        .wait_timeout(held, deadline - now)
                        .expect("lock table poisoned")
                        .0;
                }
            }
        }
    }

    /// Releases `keys` held by `owner` and wakes the waiters.
    pub fn release(&self, owner: u64, keys: &[Vec<u8>]) {
        if keys.is_empty() {
            return;
        }
        let mut held = self.held.lock().expect("lock table poisoned");
        for key in keys {
            if held.get(key) == Some(&owner) {
                held.remove(key);
            }
        }
        drop(held);
        self.released.notify_all();
    }

    /// Number of locks held (for metrics and tests).
    pub fn len(&self) -> usize {
        self.held.lock().expect("lock table poisoned").len()
    }

    /// Whether no lock is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
