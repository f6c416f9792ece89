//! Row locks: the long, queued locks of the book's exclusive control, held
//! by a transaction on every row key it writes until it ends (a commit:
//! until it is journaled, see below).
//!
//! Under READ COMMITTED a statement reads the newest committed data, so two
//! transactions may both decide to update the same row. The second one to
//! reach the row waits here for the first to finish, then re-reads the row
//! and re-checks its WHERE clause before writing (as PostgreSQL does),
//! instead of failing at commit.
//!
//! Early lock release: a committing transaction releases its locks as soon
//! as its commit is in the journal, before the commit is durable, so the
//! next writer of a hot row need not wait out the fsync too. The lock then
//! remembers the commit's LSN until that commit is visible; a writer that
//! takes it over reads from the newest (not yet durable) version, and the
//! SQL layer holds back whatever that statement reports until it is
//! durable (see `Session`). Its own commit comes later in the journal, so
//! a crash can never keep its commit and lose the one it built on.
//!
//! Deadlocks are detected when they form: before waiting, a transaction
//! follows the chain of who waits for whom from the lock's holder; if the
//! chain comes back to itself, waiting would never end, and it fails at
//! once with 40P01 (its statement rolls back, the other goes on). A wait
//! also ends on `lock_timeout` (55P03), on a cancel request and on
//! `statement_timeout` (57014).

use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tiers_storage::fasthash::BytesHasher;
use tiers_storage::page::PageNoHasher;

use crate::error::{Result, SqlError};

/// A lock's identity: a 64-bit hash of its key. Two keys sharing one (odds
/// of about one in 10^10 even with a million locks held) only make one
/// transaction wait for another it need not; a fixed-size id keeps the
/// table free of per-key allocations, which a bulk load holding a lock
/// per row would otherwise spend most of its locking time on.
pub type LockId = u64;

/// The id of the lock on `key`.
pub fn lock_id(key: &[u8]) -> LockId {
    let mut h = BytesHasher::default();
    h.write(key);
    h.finish()
}

/// A set of lock ids (they are hashes already).
pub type LockIdSet = std::collections::HashSet<LockId, BuildHasherDefault<PageNoHasher>>;
type IdMap<V> = std::collections::HashMap<u64, V, BuildHasherDefault<PageNoHasher>>;

#[derive(Default)]
struct Table {
    /// Lock → owner.
    held: IdMap<u64>,
    /// Owner → the lock it waits for.
    waiting: IdMap<LockId>,
    /// Tasks awaiting a lock's release ([`RowLocks::poll_released`]).
    wakers: Vec<(LockId, std::task::Waker)>,
    /// Lock → LSN of the commit that released it, while that commit may not
    /// be visible yet.
    released_by: IdMap<u64>,
    /// The same, by commit, oldest first (to forget them once visible).
    release_order: std::collections::VecDeque<(u64, Vec<LockId>)>,
}

impl Table {
    /// Takes a free lock; returns the commit that released it, if that
    /// commit may not be visible yet.
    fn take(&mut self, key: LockId, owner: u64) -> Option<u64> {
        self.held.insert(key, owner);
        self.released_by.get(&key).copied()
    }

    /// Frees `keys` held by `owner`; returns the tasks awaiting any of them.
    fn free(&mut self, owner: u64, keys: &[LockId]) -> Vec<std::task::Waker> {
        self.waiting.remove(&owner);
        for key in keys {
            if self.held.get(key) == Some(&owner) {
                self.held.remove(key);
            }
        }
        let mut woken = Vec::new();
        let mut i = 0;
        while i < self.wakers.len() {
            if keys.contains(&self.wakers[i].0) {
                woken.push(self.wakers.swap_remove(i).1);
            } else {
                i += 1;
            }
        }
        woken
    }

    /// Forgets the releases of commits through `visible`.
    fn forget_releases_through(&mut self, visible: u64) {
        while self
            .release_order
            .front()
            .is_some_and(|(lsn, _)| *lsn <= visible)
        {
            let (lsn, ids) = self.release_order.pop_front().expect("front exists");
            for id in ids {
                if self.released_by.get(&id) == Some(&lsn) {
                    self.released_by.remove(&id);
                }
            }
        }
    }
}

/// The lock table of one database.
#[derive(Default)]
pub struct RowLocks {
    table: Mutex<Table>,
    released: Condvar,
    waits: AtomicU64,
    deadlocks: AtomicU64,
}

/// How often a waiter looks at its cancel flag and deadlines.
const POLL: Duration = Duration::from_millis(50);

impl RowLocks {
    /// Takes the lock on `key` for `owner`, waiting while another owner
    /// holds it (at most `timeout`, if given). Returns the LSN of the
    /// commit that released it, when that commit may not be visible yet
    /// (then the caller must read at least that version: see the module
    /// documentation).
    pub fn acquire(
        &self,
        key: LockId,
        owner: u64,
        timeout: Option<Duration>,
    ) -> Result<Option<u64>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut table = self.table.lock().expect("lock table poisoned");
        let mut waited = false;
        loop {
            let holder = match table.held.get(&key) {
                None => {
                    table.waiting.remove(&owner);
                    return Ok(table.take(key, owner));
                }
                Some(o) if *o == owner => {
                    table.waiting.remove(&owner);
                    return Ok(None);
                }
                Some(o) => *o,
            };
            if !waited {
                self.waits.fetch_add(1, Ordering::Relaxed);
            }
            waited = true;
            table.waiting.insert(owner, key);
            if closes_cycle(&table, owner, holder) {
                table.waiting.remove(&owner);
                self.deadlocks.fetch_add(1, Ordering::Relaxed);
                return Err(SqlError::new(
                    "40P01",
                    "deadlock detected: this transaction and another each wait for a row the \
                     other has locked; this one was rolled back, retry it",
                ));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                table.waiting.remove(&owner);
                return Err(SqlError::new(
                    "55P03",
                    "canceling statement due to lock timeout",
                ));
            }
            if let Err(e) = crate::limits::check_now() {
                table.waiting.remove(&owner);
                return Err(e);
            }
            let pause = deadline.map_or(POLL, |d| (d - now).min(POLL));
            table = self
                .released
                .wait_timeout(table, pause)
                .expect("lock table poisoned")
                .0;
        }
    }

    /// Takes the lock on `key` for `owner` if nobody else holds it (never
    /// waits): Err(()) when another owner holds it, else what
    /// [`RowLocks::acquire`] returns.
    #[allow(clippy::result_unit_err)]
    pub fn try_acquire(&self, key: LockId, owner: u64) -> std::result::Result<Option<u64>, ()> {
        let mut table = self.table.lock().expect("lock table poisoned");
        match table.held.get(&key) {
            None => Ok(table.take(key, owner)),
            Some(o) if *o == owner => Ok(None),
            Some(_) => Err(()),
        }
    }

    /// Releases `keys` held by `owner` (a transaction that wrote nothing,
    /// or rolled back) and wakes the waiters.
    pub fn release(&self, owner: u64, keys: &[LockId]) {
        // Nothing held (a read-only statement): no need for the table's latch.
        // (A waiter always removes its own wait entry before it returns.)
        if keys.is_empty() {
            return;
        }
        let mut table = self.table.lock().expect("lock table poisoned");
        let woken = table.free(owner, keys);
        self.wake(table, woken);
    }

    /// Releases `keys` held by `owner`, whose commit `lsn` is journaled
    /// but perhaps not yet visible (`visible` is the newest visible LSN),
    /// and wakes the waiters. Until the commit is visible, whoever takes one
    /// of these locks learns `lsn` (see the module documentation).
    pub fn release_committed(&self, owner: u64, keys: Vec<LockId>, lsn: u64, visible: u64) {
        if keys.is_empty() || lsn <= visible {
            return self.release(owner, &keys);
        }
        let mut table = self.table.lock().expect("lock table poisoned");
        let woken = table.free(owner, &keys);
        table.forget_releases_through(visible);
        for key in &keys {
            table.released_by.insert(*key, lsn);
        }
        table.release_order.push_back((lsn, keys));
        self.wake(table, woken);
    }

    /// Wakes the tasks `free` found, and the threads blocked in `acquire`.
    fn wake(&self, table: MutexGuard<'_, Table>, woken: Vec<std::task::Waker>) {
        // Only threads blocked in `acquire` wait on the condition variable.
        let blocked = !table.waiting.is_empty();
        drop(table);
        woken.into_iter().for_each(std::task::Waker::wake);
        if blocked {
            self.released.notify_all();
        }
    }

    /// Polls for `key` being free (or held by `owner`): an async task that
    /// must not block waits with this, then tries its statement again.
    /// (It is not a lock wait: it takes no part in deadlock detection, so
    /// the caller bounds it in time.)
    pub fn poll_released(
        &self,
        key: LockId,
        owner: u64,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let mut table = self.table.lock().expect("lock table poisoned");
        match table.held.get(&key) {
            None => std::task::Poll::Ready(()),
            Some(o) if *o == owner => std::task::Poll::Ready(()),
            Some(_) => {
                let waker = cx.waker();
                if !table
                    .wakers
                    .iter()
                    .any(|(k, w)| *k == key && w.will_wake(waker))
                {
                    table.wakers.push((key, waker.clone()));
                    self.waits.fetch_add(1, Ordering::Relaxed);
                }
                std::task::Poll::Pending
            }
        }
    }

    /// Number of locks held (for metrics and tests).
    pub fn len(&self) -> usize {
        self.table.lock().expect("lock table poisoned").held.len()
    }

    /// Whether no lock is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lock waits so far (each wait for a held lock counts once).
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// Deadlocks detected so far.
    pub fn deadlocks(&self) -> u64 {
        self.deadlocks.load(Ordering::Relaxed)
    }
}

/// Whether `holder`, following who-waits-for-whom, reaches `owner`.
fn closes_cycle(table: &Table, owner: u64, holder: u64) -> bool {
    let mut current = holder;
    for _ in 0..=table.waiting.len() {
        if current == owner {
            return true;
        }
        let Some(key) = table.waiting.get(&current) else {
            return false;
        };
        let Some(&next) = table.held.get(key) else {
            return false;
        };
        current = next;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_deadlock_fails_one_waiter_at_once() {
        let locks = Arc::new(RowLocks::default());
        locks.acquire(lock_id(b"a"), 1, None).unwrap();
        locks.acquire(lock_id(b"b"), 2, None).unwrap();
        let l = locks.clone();
        let first = std::thread::spawn(move || l.acquire(lock_id(b"b"), 1, None));
        // Let owner 1 start waiting for "b".
        while locks.waits() == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let started = Instant::now();
        let e = locks.acquire(lock_id(b"a"), 2, None).unwrap_err();
        assert_eq!(e.code, "40P01");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(locks.deadlocks(), 1);
        // Owner 2 gives up its locks (its transaction rolls back): 1 goes on.
        locks.release(2, &[lock_id(b"b")]);
        assert_eq!(
            first.join().unwrap().unwrap(),
            None,
            "owner 1 waited, then got the lock, released by no commit"
        );
    }

    /// Counts its wakes.
    struct CountingWaker(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn an_awaited_release_wakes_the_task_and_only_for_its_lock() {
        let locks = RowLocks::default();
        let (a, b) = (lock_id(b"a"), lock_id(b"b"));
        locks.acquire(a, 1, None).unwrap();
        locks.acquire(b, 1, None).unwrap();
        let counter = Arc::new(CountingWaker(Default::default()));
        let waker = std::task::Waker::from(counter.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(locks.poll_released(a, 2, &mut cx).is_pending());
        assert_eq!(locks.waits(), 1);
        // Polled again: still one registration, one wait.
        assert!(locks.poll_released(a, 2, &mut cx).is_pending());
        // The owner itself never waits.
        assert!(locks.poll_released(a, 1, &mut cx).is_ready());
        assert_eq!(locks.waits(), 1);
        locks.release(1, &[b]);
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            0,
            "another lock's release"
        );
        locks.release(1, &[a]);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(locks.poll_released(a, 2, &mut cx).is_ready());
        assert_eq!(locks.try_acquire(a, 2), Ok(None));
        assert_eq!(locks.try_acquire(a, 3), Err(()), "held by 2");
    }

    #[test]
    fn a_lock_released_by_an_undurable_commit_names_it_until_visible() {
        let locks = RowLocks::default();
        let (a, b, c) = (lock_id(b"a"), lock_id(b"b"), lock_id(b"c"));
        locks.acquire(a, 1, None).unwrap();
        locks.acquire(b, 1, None).unwrap();
        // Commit 10 is journaled; 9 is the newest visible.
        locks.release_committed(1, vec![a, b], 10, 9);
        assert_eq!(locks.try_acquire(a, 2), Ok(Some(10)));
        assert_eq!(locks.acquire(b, 3, None).unwrap(), Some(10));
        // A commit already visible leaves no mark.
        locks.acquire(c, 4, None).unwrap();
        locks.release_committed(4, vec![c], 8, 9);
        assert_eq!(locks.try_acquire(c, 5), Ok(None));
        locks.release(5, &[c]);
        // 2 commits `a` again at 12 while 10 is still not visible; then 3's
        // commit 11 releases `b` after 10 became visible: 10's marks go,
        // 12's stays.
        locks.release_committed(2, vec![a], 12, 9);
        locks.release_committed(3, vec![b], 11, 10);
        assert_eq!(locks.try_acquire(a, 6), Ok(Some(12)));
        assert_eq!(locks.try_acquire(b, 6), Ok(Some(11)));
        locks.release(6, &[a, b]);
        locks.acquire(c, 7, None).unwrap();
        locks.release_committed(7, vec![c], 13, 12);
        assert_eq!(locks.try_acquire(a, 8), Ok(None), "12 is visible");
        assert_eq!(locks.try_acquire(b, 8), Ok(None), "11 is visible");
        assert_eq!(locks.try_acquire(c, 8), Ok(Some(13)));
    }

    #[test]
    fn lock_timeout() {
        let locks = RowLocks::default();
        locks.acquire(lock_id(b"k"), 1, None).unwrap();
        let e = locks
            .acquire(lock_id(b"k"), 2, Some(Duration::from_millis(30)))
            .unwrap_err();
        assert_eq!(e.code, "55P03");
        assert_eq!(locks.acquire(lock_id(b"k"), 1, None).unwrap(), None);
    }
}
