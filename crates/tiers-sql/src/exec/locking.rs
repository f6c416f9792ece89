//! How a session takes and gives back row locks: the locking a writing
//! statement does ([`WriteCtx`]), the await of a lock's release in async
//! mode ([`LockRelease`]), and commits that release their locks early, with
//! the wait for durability that whatever read the commit then owes before
//! it reports (see [`crate::locks`]).

use std::sync::Arc;
use std::time::Duration;

use tiers_storage::{PendingCommit, WriteTxn};

use super::{Database, Session};
use crate::error::{Result, SqlError, sqlstate};
use crate::locks::{LockId, LockIdSet, lock_id};

/// A transaction holding more row locks than this (a bulk load) keeps them
/// until its commit is durable instead of releasing them early.
const EARLY_RELEASE_MAX_LOCKS: usize = 10_000;

/// Resolves once a row lock is free (see [`Session::lock_release`]).
pub struct LockRelease {
    db: Arc<Database>,
    key: LockId,
    owner: u64,
}

impl std::future::Future for LockRelease {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.db.locks.poll_released(self.key, self.owner, cx)
    }
}

/// What a writing statement needs besides its transaction.
pub(super) struct WriteCtx<'a> {
    pub(super) db: &'a Database,
    pub(super) owner: u64,
    pub(super) held: &'a mut LockIdSet,
    pub(super) read_committed: bool,
    /// `lock_timeout` (None: wait until the lock frees, a deadlock is
    /// found, or the statement is cancelled or times out).
    pub(super) lock_timeout: Option<Duration>,
    /// Never wait for a lock: fail with [`sqlstate::WOULD_WAIT`] instead.
    pub(super) no_wait: bool,
    /// The lock a `no_wait` statement found taken.
    pub(super) blocked_on: Option<LockId>,
}

impl WriteCtx<'_> {
    /// Locks every key (in a fixed order, to avoid deadlocks between two
    /// statements locking the same keys); under READ COMMITTED it then
    /// moves the transaction to the newest snapshot, so what the caller
    /// reads next includes whatever the previous holder committed (even
    /// before that commit is durable: see [`crate::locks`]).
    pub(super) fn lock(&mut self, tx: &mut WriteTxn, keys: Vec<Vec<u8>>) -> Result<()> {
        let mut ids: Vec<u64> = keys.iter().map(|k| lock_id(k)).collect();
        ids.sort_unstable();
        let mut after = 0;
        for key in ids {
            if self.held.contains(&key) {
                continue;
            }
            let released_by = if self.no_wait {
                match self.db.locks.try_acquire(key, self.owner) {
                    Ok(by) => by,
                    Err(()) => {
                        self.blocked_on = Some(key);
                        return Err(SqlError::new(
                            sqlstate::WOULD_WAIT,
                            "a row is locked by another transaction",
                        ));
                    }
                }
            } else {
                self.db.locks.acquire(key, self.owner, self.lock_timeout)?
            };
            after = after.max(released_by.unwrap_or(0));
            self.held.insert(key);
        }
        if self.read_committed {
            // A commit that released one of these locks before it was
            // durable is not visible yet: read past the visible version.
            if after > tx.snapshot_lsn() && after > self.db.engine.visible_lsn() {
                tx.refresh_snapshot_latest();
            } else {
                tx.refresh_snapshot();
            }
        }
        Ok(())
    }
}

impl Session {
    /// After a statement failed with [`sqlstate::WOULD_WAIT`]: a future
    /// that resolves once the row lock it found taken is free, after which
    /// the statement may be tried again (in async mode it may find the lock
    /// taken again). It is no lock wait (no deadlock detection, no
    /// lock_timeout): bound it in time, then run the statement with waiting
    /// allowed. None when the session set a `lock_timeout`: its waits are
    /// timed exactly only where waiting is allowed.
    pub fn lock_release(&self) -> Option<LockRelease> {
        if self.lock_timeout().is_some() {
            return None;
        }
        self.blocked_on.map(|key| LockRelease {
            db: self.db.clone(),
            key,
            owner: self.id,
        })
    }

    /// What the last statement run in async mode must await before its
    /// result goes out (its commit, or what it read becoming durable).
    pub fn take_pending_commit(&mut self) -> Option<PendingCommit> {
        self.pending.take()
    }

    /// Commits `tx`: durably, or in async mode up to a pending commit. The
    /// row locks go as soon as the commit is journaled (early lock release:
    /// see [`crate::locks`]); the result waits for durability.
    pub(super) fn commit_tx(&mut self, tx: WriteTxn) -> Result<()> {
        let pending = tx.commit_pending()?;
        if pending.is_proposal() {
            // A cluster commit is visible only once the cluster committed
            // it: its row locks go then, so the next writer of a row reads
            // this commit instead of conflicting with it.
            let keys: Vec<u64> = self.held.drain().collect();
            let (db, owner) = (self.db.clone(), self.id);
            pending.when_settled(Box::new(move || db.locks.release(owner, &keys)));
            self.shrink_held();
            if self.async_mode {
                self.pending = Some(pending);
            } else {
                pending.wait()?;
            }
            return Ok(());
        }
        if !self.async_mode && self.held.len() > EARLY_RELEASE_MAX_LOCKS {
            // A bulk write: marking each of its locks released costs more
            // than the fsync it would spare the next writers of its rows.
            let durable = pending.wait();
            self.release_locks();
            durable?;
            return Ok(());
        }
        let keys: Vec<u64> = self.held.drain().collect();
        let visible = self.db.engine.visible_lsn();
        self.db
            .locks
            .release_committed(self.id, keys, pending.lsn(), visible);
        self.shrink_held();
        if self.async_mode {
            self.pending = Some(pending);
        } else {
            pending.wait()?;
        }
        Ok(())
    }

    /// After a statement that read at snapshot `read_at`: when that is not
    /// yet durable (it took over a row lock early: see [`crate::locks`]),
    /// waits for it, or in async mode leaves the wait to the caller.
    pub(super) fn settle_read(&mut self, read_at: u64) -> Result<()> {
        if read_at <= self.db.engine.visible_lsn() {
            return Ok(());
        }
        if self.pending.as_ref().is_some_and(|p| p.lsn() >= read_at) {
            return Ok(()); // its own commit comes later in the journal
        }
        let wait = self.db.engine.visible_at(read_at);
        if self.async_mode {
            self.pending = Some(wait);
        } else {
            wait.wait()?;
        }
        Ok(())
    }

    /// Ends the transaction's hold on its row locks.
    pub(super) fn release_locks(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let keys: Vec<u64> = self.held.drain().collect();
        self.db.locks.release(self.id, &keys);
        self.shrink_held();
    }

    /// After a bulk write: don't keep (and later scan) a huge empty table.
    fn shrink_held(&mut self) {
        if self.held.capacity() > 4096 {
            self.held = LockIdSet::default();
        }
    }
}
