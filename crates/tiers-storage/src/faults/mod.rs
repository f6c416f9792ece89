//! Fault injection and power-cut simulation for tests.
//!
//! The engine does all file I/O through [`Vfs`] / [`VfsFile`], so tests can
//! hand it one of the two implementations defined here instead of
//! [`crate::vfs::OsVfs`]:
//!
//! * [`FaultyVfs`] wraps any other `Vfs` and consults a shared [`FaultPlan`]
//!   on every file call. A test arms faults on the plan (fsync failures, torn
//!   and short writes, ENOSPC, bit flips), possibly while the engine is
//!   running, and the next matching call misbehaves.
//! * [`SimVfs`] is an in-memory file system that remembers which writes and
//!   directory changes are durable. [`SimVfs::crash`] simulates a power cut
//!   that keeps a random subset of the non-durable state (and tears writes at
//!   512-byte boundaries); [`SimVfs::crash_clean`] loses all of it.
//!
//! The two compose: wrapping a `SimVfs` in a `FaultyVfs` gives fault injection
//! without touching the real disk.

use std::borrow::Cow;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::vfs::{Vfs, VfsFile};

/// Sector size used to round torn writes.
const SECTOR: usize = 512;
/// `ENOSPC` on Linux.
const ENOSPC: i32 = 28;

fn matches(filter: &Option<String>, path: &str) -> bool {
    filter.as_ref().is_none_or(|f| path.contains(f.as_str()))
}

fn not_found(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such {what}"))
}

/// The directory holding `path` (the empty path for a bare name).
fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new(""))
}

/// Disarms a one-shot fault and returns true if it is armed for `path`.
fn take_if_matches(slot: &mut Option<Option<String>>, path: &str) -> bool {
    slot.take_if(|filter| matches(filter, path)).is_some()
}

/// Lets `left` units (syncs or bytes) of matching requests through, then
/// fails every matching request until cleared.
#[derive(Debug)]
struct Budget {
    left: u64,
    filter: Option<String>,
}

/// Charges `amount` to `budget` if it matches `path`; false means "fail".
fn charge(budget: &mut Option<Budget>, path: &str, amount: u64) -> bool {
    let Some(budget) = budget.as_mut().filter(|b| matches(&b.filter, path)) else {
        return true;
    };
    let allowed = amount <= budget.left;
    budget.left = if allowed { budget.left - amount } else { 0 };
    allowed
}

/// A bit to flip at an absolute file offset.
#[derive(Debug)]
struct BitFlip {
    filter: Option<String>,
    offset: u64,
    mask: u8,
}

impl BitFlip {
    fn new(filter: Option<String>, offset: u64, bit: u8) -> Self {
        let mask = 1u8 << (bit % 8);
        Self {
            filter,
            offset,
            mask,
        }
    }

    /// Index into a buffer placed at `start` with `len` bytes, if covered.
    fn index_in(&self, path: &str, start: u64, len: usize) -> Option<usize> {
        let idx = usize::try_from(self.offset.checked_sub(start)?).ok()?;
        (idx < len && matches(&self.filter, path)).then_some(idx)
    }
}

#[derive(Debug, Default)]
struct ArmedFaults {
    sync: Option<Budget>,
    torn_write: Option<Option<String>>,
    short_write: Option<Option<String>>,
    space: Option<Budget>,
    read_flips: Vec<BitFlip>,
    write_flips: Vec<BitFlip>,
}

/// The faults a [`FaultyVfs`] injects, shared with the test that arms them.
///
/// Every method takes `&self`, so a test can arm or clear faults while the
/// engine is using the file system from other threads. A `filter` of
/// `Some(s)` restricts a fault to files whose path contains `s`; `None`
/// matches every file.
#[derive(Debug, Default)]
pub struct FaultPlan {
    armed: Mutex<ArmedFaults>,
    syncs: AtomicU64,
    writes: AtomicU64,
    bytes_written: AtomicU64,
    faults_fired: AtomicU64,
}

impl FaultPlan {
    /// A plan with nothing armed.
    pub fn new() -> Self {
        Self::default()
    }

    fn armed(&self) -> MutexGuard<'_, ArmedFaults> {
        self.armed.lock().expect("fault plan mutex poisoned")
    }

    fn fired(&self) {
        self.faults_fired.fetch_add(1, Ordering::Relaxed);
    }

    /// After `after` more successful syncs of matching files, every further
    /// sync of a matching file fails with "injected fsync failure" until
    /// [`clear`](Self::clear).
    pub fn fail_sync(&self, after: u64, filter: Option<String>) {
        self.armed().sync = Some(Budget {
            left: after,
            filter,
        });
    }

    /// The next matching write stores only the first half of its buffer,
    /// rounded down to a multiple of 512 bytes, then fails with "injected
    /// torn write".
    pub fn torn_write_next(&self, filter: Option<String>) {
        self.armed().torn_write = Some(filter);
    }

    /// The next matching write stores all but its last byte, then fails with
    /// [`io::ErrorKind::WriteZero`] ("injected short write").
    pub fn short_write_next(&self, filter: Option<String>) {
        self.armed().short_write = Some(filter);
    }

    /// Matching writes succeed while their total from now on stays within `n`
    /// bytes. The write that would exceed it, and every matching write after
    /// it until [`clear`](Self::clear), fails with ENOSPC and writes nothing.
    pub fn enospc_after_bytes(&self, n: u64, filter: Option<String>) {
        self.armed().space = Some(Budget { left: n, filter });
    }

    /// Every read of a matching file covering absolute `offset` returns that
    /// byte with bit `bit % 8` flipped; the stored data is unchanged.
    pub fn flip_bit_on_read(&self, filter: Option<String>, offset: u64, bit: u8) {
        self.armed()
            .read_flips
            .push(BitFlip::new(filter, offset, bit));
    }

    /// The next matching write covering absolute `offset` stores that byte
    /// with bit `bit % 8` flipped and reports success (one-shot).
    pub fn flip_bit_on_write(&self, filter: Option<String>, offset: u64, bit: u8) {
        self.armed()
            .write_flips
            .push(BitFlip::new(filter, offset, bit));
    }

    /// Disarms every fault. Counters are kept.
    pub fn clear(&self) {
        *self.armed() = ArmedFaults::default();
    }

    /// Number of `sync` calls made on files of the [`FaultyVfs`].
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Number of `write_at` calls made on files of the [`FaultyVfs`].
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Bytes actually passed on to the wrapped file system.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
    }

    /// How many times an injected fault took effect.
    pub fn faults_fired(&self) -> u64 {
        self.faults_fired.load(Ordering::Relaxed)
    }

    /// Decides what a write really does: the bytes to store (possibly a
    /// bit-flipped copy), how many of them, and the error to report.
    fn plan_write<'a>(
        &self,
        path: &str,
        buf: &'a [u8],
        offset: u64,
    ) -> (Cow<'a, [u8]>, usize, Option<io::Error>) {
        let mut armed = self.armed();
        let (stored, error) = if !charge(&mut armed.space, path, buf.len() as u64) {
            (0, Some(io::Error::from_raw_os_error(ENOSPC)))
        } else if take_if_matches(&mut armed.torn_write, path) {
            let torn = buf.len() / 2 / SECTOR * SECTOR;
            (torn, Some(io::Error::other("injected torn write")))
        } else if take_if_matches(&mut armed.short_write, path) {
            let error = io::Error::new(io::ErrorKind::WriteZero, "injected short write");
            (buf.len().saturating_sub(1), Some(error))
        } else {
            (buf.len(), None)
        };
        if error.is_some() {
            self.fired();
        }
        let mut data = Cow::Borrowed(buf);
        let hit = armed
            .write_flips
            .iter()
            .enumerate()
            .find_map(|(i, flip)| flip.index_in(path, offset, stored).map(|idx| (i, idx)));
        if let Some((i, idx)) = hit {
            let flip = armed.write_flips.remove(i);
            data.to_mut()[idx] ^= flip.mask;
            self.fired();
        }
        (data, stored, error)
    }
}

/// A [`Vfs`] that forwards to another one and injects the faults armed on its
/// [`FaultPlan`]. Directory operations pass through unchanged.
#[derive(Clone)]
pub struct FaultyVfs {
    inner: Arc<dyn Vfs>,
    plan: Arc<FaultPlan>,
}

impl FaultyVfs {
    /// Wraps `inner` with a fresh plan; returns the file system and the plan.
    pub fn new(inner: Arc<dyn Vfs>) -> (FaultyVfs, Arc<FaultPlan>) {
        let plan = Arc::new(FaultPlan::new());
        (Self::with_plan(inner, Arc::clone(&plan)), plan)
    }

    /// Wraps `inner`, injecting the faults of an existing `plan`.
    pub fn with_plan(inner: Arc<dyn Vfs>, plan: Arc<FaultPlan>) -> FaultyVfs {
        FaultyVfs { inner, plan }
    }

    /// The plan this file system consults.
    pub fn plan(&self) -> &Arc<FaultPlan> {
        &self.plan
    }
}

impl Vfs for FaultyVfs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VfsFile>> {
        let inner = self.inner.open(path, create)?;
        Ok(Arc::new(FaultyFile {
            inner,
            path: path.to_string_lossy().into_owned(),
            plan: Arc::clone(&self.plan),
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        self.inner.list(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

/// A file opened through [`FaultyVfs`].
struct FaultyFile {
    inner: Arc<dyn VfsFile>,
    path: String,
    plan: Arc<FaultPlan>,
}

impl VfsFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = self.inner.read_at(buf, offset)?;
        let armed = self.plan.armed();
        for flip in &armed.read_flips {
            if let Some(idx) = flip.index_in(&self.path, offset, n) {
                buf[idx] ^= flip.mask;
                self.plan.fired();
            }
        }
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.plan.writes.fetch_add(1, Ordering::Relaxed);
        let (data, stored, error) = self.plan.plan_write(&self.path, buf, offset);
        if stored > 0 {
            self.inner.write_at(&data[..stored], offset)?;
            self.plan
                .bytes_written
                .fetch_add(stored as u64, Ordering::Relaxed);
        }
        error.map_or(Ok(()), Err)
    }

    fn sync(&self) -> io::Result<()> {
        self.plan.syncs.fetch_add(1, Ordering::Relaxed);
        if !charge(&mut self.plan.armed().sync, &self.path, 1) {
            self.plan.fired();
            return Err(io::Error::other("injected fsync failure"));
        }
        self.inner.sync()
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

mod harness;
mod sim;

pub use harness::open_untrusted_image;
pub use sim::SimVfs;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn wal() -> Option<String> {
        Some("wal".to_string())
    }

    /// A `FaultyVfs` over a `SimVfs` with `/db` created.
    fn faulty() -> (SimVfs, FaultyVfs, Arc<FaultPlan>) {
        let sim = SimVfs::new();
        sim.create_dir_all(Path::new("/db")).unwrap();
        let (vfs, plan) = FaultyVfs::new(Arc::new(sim.clone()));
        (sim, vfs, plan)
    }

    fn open(vfs: &dyn Vfs, path: &str) -> Arc<dyn VfsFile> {
        vfs.open(Path::new(path), true).unwrap()
    }

    fn content(sim: &SimVfs, path: &str) -> Vec<u8> {
        sim.read_file(Path::new(path)).unwrap()
    }

    #[test]
    fn sync_fails_persistently_after_n_successes_until_cleared() {
        let (_, vfs, plan) = faulty();
        let (log, data) = (open(&vfs, "/db/wal"), open(&vfs, "/db/data"));
        plan.fail_sync(2, wal());
        log.sync().unwrap();
        data.sync().unwrap();
        log.sync().unwrap();
        for _ in 0..3 {
            let err = log.sync().unwrap_err();
            assert_eq!(err.to_string(), "injected fsync failure");
        }
        data.sync().unwrap();
        assert_eq!((plan.faults_fired(), plan.syncs()), (3, 7));
        plan.clear();
        log.sync().unwrap();
    }

    #[test]
    fn torn_write_keeps_sector_aligned_half_once() {
        let (sim, vfs, plan) = faulty();
        let file = open(&vfs, "/db/wal");
        plan.torn_write_next(wal());
        let err = file.write_at(&[7; 2000], 0).unwrap_err();
        assert_eq!(err.to_string(), "injected torn write");
        assert_eq!(content(&sim, "/db/wal"), vec![7; 512]);
        file.write_at(&[1; 100], 0).unwrap();
        assert_eq!(plan.bytes_written(), 612);
        assert_eq!(plan.writes(), 2);
    }

    #[test]
    fn short_write_drops_last_byte_with_write_zero() {
        let (sim, vfs, plan) = faulty();
        let (data, log) = (open(&vfs, "/db/data"), open(&vfs, "/db/wal"));
        plan.short_write_next(wal());
        data.write_at(b"hello", 0).unwrap();
        let err = log.write_at(b"hello", 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
        assert_eq!(content(&sim, "/db/wal"), b"hell");
        assert_eq!(content(&sim, "/db/data"), b"hello");
        assert_eq!(plan.faults_fired(), 1);
    }

    #[test]
    fn enospc_fails_writes_beyond_budget_until_cleared() {
        let (sim, vfs, plan) = faulty();
        let file = open(&vfs, "/db/wal");
        plan.enospc_after_bytes(100, None);
        file.write_at(&[1; 60], 0).unwrap();
        for len in [60, 10] {
            let err = file.write_at(&vec![2; len], 60).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(28));
        }
        assert_eq!(content(&sim, "/db/wal"), vec![1; 60]);
        plan.clear();
        file.write_at(&[2; 60], 60).unwrap();
        assert_eq!(file.len().unwrap(), 120);
    }

    #[test]
    fn read_flip_changes_only_reads_covering_offset() {
        let (sim, vfs, plan) = faulty();
        let file = open(&vfs, "/db/wal");
        file.write_at(&[0; 16], 0).unwrap();
        plan.flip_bit_on_read(wal(), 10, 3);
        let mut buf = [0; 16];
        for _ in 0..2 {
            assert_eq!(file.read_at(&mut buf, 0).unwrap(), 16);
            assert_eq!(buf[10], 8);
            assert_eq!(buf.iter().filter(|&&b| b != 0).count(), 1);
        }
        assert_eq!(file.read_at(&mut buf[..4], 12).unwrap(), 4);
        assert_eq!(buf[..4], [0; 4]);
        assert_eq!(content(&sim, "/db/wal"), vec![0; 16]);
    }

    #[test]
    fn write_flip_is_stored_once() {
        let (sim, vfs, plan) = faulty();
        let file = open(&vfs, "/db/wal");
        plan.flip_bit_on_write(None, 5, 0);
        file.write_at(&[0; 4], 0).unwrap(); // does not cover offset 5
        file.write_at(&[0; 8], 0).unwrap();
        assert_eq!(content(&sim, "/db/wal"), [0, 0, 0, 0, 0, 1, 0, 0]);
        file.write_at(&[0; 8], 0).unwrap();
        assert_eq!(content(&sim, "/db/wal"), vec![0; 8]);
        assert_eq!(plan.faults_fired(), 1);
    }

    #[test]
    fn sim_basic_file_system_semantics() {
        let sim = SimVfs::new();
        let missing = sim.open(Path::new("/d/a"), true).err().unwrap();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        sim.create_dir_all(Path::new("/d/sub")).unwrap();
        assert!(sim.exists(Path::new("/d")) && !sim.exists(Path::new("/d/b")));
        let err = sim.open(Path::new("/d/b"), false).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let b = open(&sim, "/d/b");
        open(&sim, "/d/a");
        open(&sim, "/d/sub/c");
        b.write_at(b"xy", 4).unwrap();
        assert_eq!(content(&sim, "/d/b"), b"\0\0\0\0xy");
        let mut buf = [0; 8];
        assert_eq!(b.read_at(&mut buf, 3).unwrap(), 3);
        assert_eq!(b.read_at(&mut buf, 100).unwrap(), 0);
        b.set_len(2).unwrap();
        assert_eq!(b.len().unwrap(), 2);
        let listed = sim.list(Path::new("/d")).unwrap();
        assert_eq!(listed, [PathBuf::from("/d/a"), PathBuf::from("/d/b")]);
        sim.remove(Path::new("/d/a")).unwrap();
        assert!(!sim.exists(Path::new("/d/a")));
        assert_eq!(sim.file_names().len(), 2);
        sim.corrupt(Path::new("/d/b"), 1, 0xff).unwrap();
        assert_eq!(content(&sim, "/d/b"), [0, 0xff]);
    }

    /// `/d/f` holding `synced` durably, then `extra` written at its end unsynced.
    fn sim_with_unsynced_tail(synced: &[u8], extra: &[u8]) -> (SimVfs, Arc<dyn VfsFile>) {
        let sim = SimVfs::new();
        sim.create_dir_all(Path::new("/d")).unwrap();
        let file = open(&sim, "/d/f");
        file.write_at(synced, 0).unwrap();
        file.sync().unwrap();
        sim.sync_dir(Path::new("/d")).unwrap();
        file.write_at(extra, synced.len() as u64).unwrap();
        (sim, file)
    }

    #[test]
    fn crash_keeps_synced_data_and_clean_crash_drops_the_rest() {
        for seed in 0..20 {
            let (sim, _) = sim_with_unsynced_tail(b"durable", b"");
            sim.crash(seed);
            assert_eq!(content(&sim, "/d/f"), b"durable");
        }
        let (sim, _) = sim_with_unsynced_tail(b"durable", b"volatile");
        sim.crash_clean();
        assert_eq!(content(&sim, "/d/f"), b"durable");
    }

    #[test]
    fn crash_outcomes_vary_with_seed_and_tear_at_sectors() {
        let mut lengths = BTreeSet::new();
        for seed in 0..200 {
            let (sim, _) = sim_with_unsynced_tail(&[1; 512], &[2; 2048]);
            sim.crash(seed);
            let after = content(&sim, "/d/f");
            assert_eq!(after[..512], [1; 512]);
            assert!(after[512..].iter().all(|&b| b == 2));
            assert_eq!(after.len() % SECTOR, 0);
            lengths.insert(after.len());
        }
        assert!(lengths.contains(&512) && lengths.contains(&2560));
        assert!(lengths.len() > 2, "expected some torn writes: {lengths:?}");
    }

    #[test]
    fn handles_from_before_crash_are_dead() {
        let (sim, file) = sim_with_unsynced_tail(b"abc", b"");
        sim.crash(1);
        let err = file.write_at(b"x", 0).unwrap_err();
        assert_eq!(err.to_string(), "handle from before a simulated crash");
        assert!(file.read_at(&mut [0; 3], 0).is_err() && file.sync().is_err());
        assert!(file.len().is_err() && file.set_len(0).is_err());
        let reopened = sim.open(Path::new("/d/f"), false).unwrap();
        assert_eq!(reopened.len().unwrap(), 3);
    }

    #[test]
    fn unsynced_directory_changes_may_be_lost() {
        let (mut vanished, mut survived) = (false, false);
        for seed in 0..50 {
            let (sim, _) = sim_with_unsynced_tail(b"old", b"");
            let new = open(&sim, "/d/new");
            new.write_at(b"n", 0).unwrap();
            new.sync().unwrap();
            sim.crash(seed);
            match sim.read_file(Path::new("/d/new")) {
                None => vanished = true,
                Some(data) => survived |= data == b"n",
            }
        }
        assert!(vanished && survived);
        let (sim, _) = sim_with_unsynced_tail(b"old", b"");
        open(&sim, "/d/new").sync().unwrap();
        sim.crash_clean();
        assert!(!sim.exists(Path::new("/d/new")));
        open(&sim, "/d/new");
        sim.sync_dir(Path::new("/d")).unwrap();
        sim.remove(Path::new("/d/f")).unwrap();
        sim.crash_clean();
        assert!(sim.exists(Path::new("/d/new")));
        assert_eq!(content(&sim, "/d/f"), b"old", "unsynced removal is undone");
    }
}
