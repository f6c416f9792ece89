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
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// An operation on a [`SimVfs`] file not yet made durable by `sync`.
#[derive(Debug, Clone)]
enum PendingOp {
    Write { at: usize, data: Vec<u8> },
    SetLen(usize),
}

/// One file's contents (an inode: it may be linked under zero or more names).
#[derive(Debug, Clone, Default)]
struct SimFile {
    durable: Vec<u8>,
    current: Vec<u8>,
    pending: Vec<PendingOp>,
}

fn write_into(content: &mut Vec<u8>, at: usize, data: &[u8]) {
    if data.is_empty() {
        return; // like pwrite: an empty write never extends the file
    }
    if content.len() < at + data.len() {
        content.resize(at + data.len(), 0);
    }
    content[at..at + data.len()].copy_from_slice(data);
}

#[derive(Debug, Default)]
struct SimState {
    /// Bumped by every crash; handles from an older epoch are dead.
    epoch: u64,
    next_inode: u64,
    inodes: HashMap<u64, SimFile>,
    /// Directory entries as the running system sees them.
    names: BTreeMap<PathBuf, u64>,
    /// Directory entries as they would be found after a power cut.
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
}

impl SimState {
    fn dir_exists(&self, dir: &Path) -> bool {
        dir.as_os_str().is_empty() || self.dirs.contains(dir)
    }

    /// Replaces every file by its post-crash content. `choose(n)` picks a
    /// value in `0..n`; 0 always means "lose this change".
    fn crash_with(&mut self, choose: &mut dyn FnMut(u64) -> u64) {
        let mut names = BTreeMap::new();
        let paths: BTreeSet<PathBuf> = self
            .names
            .keys()
            .chain(self.durable_names.keys())
            .cloned()
            .collect();
        for path in paths {
            let (now, durable) = (self.names.get(&path), self.durable_names.get(&path));
            let keep_change = now != durable && choose(2) == 1;
            if let Some(&inode) = if keep_change { now } else { durable } {
                names.insert(path, inode);
            }
        }
        let linked: BTreeSet<u64> = self.names.values().copied().collect();
        let survivors: BTreeSet<u64> = names.values().copied().collect();
        self.inodes.retain(|id, _| survivors.contains(id));
        for (id, file) in &mut self.inodes {
            let mut content = std::mem::take(&mut file.durable);
            // An unlinked file that reappears comes back with its durable content.
            if !linked.contains(id) {
                file.pending.clear();
            }
            for op in file.pending.drain(..) {
                match op {
                    PendingOp::Write { at, data } => {
                        let kept = match choose(3) {
                            0 => 0,
                            1 => data.len(),
                            _ => choose(data.len() as u64 / SECTOR as u64 + 1) as usize * SECTOR,
                        };
                        write_into(&mut content, at, &data[..kept]);
                    }
                    PendingOp::SetLen(len) if choose(2) == 1 => content.resize(len, 0),
                    PendingOp::SetLen(_) => {}
                }
            }
            file.current.clone_from(&content);
            file.durable = content;
        }
        self.durable_names = names.clone();
        self.names = names;
        self.epoch += 1;
    }
}

/// An in-memory file system that can simulate a power cut.
///
/// Each file keeps its durable content, its current content and the writes
/// and truncations made since its last `sync`. Creating or removing a file
/// is durable only after `sync_dir` of its parent. Directories themselves
/// are always durable. Opening a file in a directory that was never created
/// fails with `NotFound`, as on a real disk. Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct SimVfs {
    state: Arc<Mutex<SimState>>,
}

impl SimVfs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().expect("SimVfs mutex poisoned")
    }

    /// Simulates power loss. Every pending write is independently kept,
    /// dropped or torn to a 512-byte-multiple prefix; every pending `set_len`
    /// is kept or dropped; every unsynced directory change is kept or lost.
    /// The outcome is a deterministic function of `seed`. Afterwards
    /// everything is durable and all previously opened handles fail.
    pub fn crash(&self, seed: u64) {
        let mut rng = SplitMix64(seed);
        self.state().crash_with(&mut |n| rng.next() % n);
    }

    /// Simulates power loss that loses every unsynced write, truncation and
    /// directory change. Previously opened handles fail afterwards.
    pub fn crash_clean(&self) {
        self.state().crash_with(&mut |_| 0);
    }

    /// All files currently visible, sorted.
    pub fn file_names(&self) -> Vec<PathBuf> {
        self.state().names.keys().cloned().collect()
    }

    /// The current (not necessarily durable) content of `path`.
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state();
        let inode = state.names.get(path)?;
        state.inodes.get(inode).map(|f| f.current.clone())
    }

    /// XORs the byte at `offset` of `path` with `xor_mask` in the current
    /// content, the durable content and any pending write covering it, as if
    /// the medium had rotted. Fails with `NotFound` for a missing file and
    /// `InvalidInput` when `offset` is beyond the current end.
    pub fn corrupt(&self, path: &Path, offset: u64, xor_mask: u8) -> io::Result<()> {
        let mut state = self.state();
        let inode = *state.names.get(path).ok_or_else(|| not_found("file"))?;
        let file = state
            .inodes
            .get_mut(&inode)
            .ok_or_else(|| not_found("file"))?;
        let at = usize::try_from(offset).unwrap_or(usize::MAX);
        if at >= file.current.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "offset beyond end",
            ));
        }
        file.current[at] ^= xor_mask;
        let pending = file.pending.iter_mut().filter_map(|op| match op {
            PendingOp::Write { at: start, data } => data.get_mut(at.wrapping_sub(*start)),
            PendingOp::SetLen(_) => None,
        });
        for byte in file.durable.get_mut(at).into_iter().chain(pending) {
            *byte ^= xor_mask;
        }
        Ok(())
    }
}

impl Vfs for SimVfs {
    fn open(&self, path: &Path, create: bool) -> io::Result<Arc<dyn VfsFile>> {
        let mut state = self.state();
        let inode = match state.names.get(path) {
            Some(&inode) => inode,
            None if !create => return Err(not_found("file")),
            None => {
                if !state.dir_exists(parent(path)) || state.dirs.contains(path) {
                    return Err(not_found("directory"));
                }
                let inode = state.next_inode;
                state.next_inode += 1;
                state.inodes.insert(inode, SimFile::default());
                state.names.insert(path.to_path_buf(), inode);
                inode
            }
        };
        let epoch = state.epoch;
        Ok(Arc::new(SimHandle {
            state: Arc::clone(&self.state),
            inode,
            epoch,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        match self.state().names.remove(path) {
            Some(_) => Ok(()),
            None => Err(not_found("file")),
        }
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        if state.names.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file has that name",
            ));
        }
        for dir in path.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            state.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let state = self.state();
        if !state.dir_exists(dir) {
            return Err(not_found("directory"));
        }
        let in_dir = state.names.keys().filter(|p| parent(p) == dir);
        Ok(in_dir.cloned().collect())
    }

    fn exists(&self, path: &Path) -> bool {
        let state = self.state();
        state.names.contains_key(path) || state.dirs.contains(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        if !state.dir_exists(dir) {
            return Err(not_found("directory"));
        }
        let state = &mut *state;
        state.durable_names.retain(|p, _| parent(p) != dir);
        let in_dir = state.names.iter().filter(|(p, _)| parent(p) == dir);
        state
            .durable_names
            .extend(in_dir.map(|(p, &i)| (p.clone(), i)));
        Ok(())
    }
}

/// A file opened on a [`SimVfs`]; dead once the file system has crashed.
struct SimHandle {
    state: Arc<Mutex<SimState>>,
    inode: u64,
    epoch: u64,
}

impl SimHandle {
    fn with_file<T>(&self, f: impl FnOnce(&mut SimFile) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.state.lock().expect("SimVfs mutex poisoned");
        if state.epoch != self.epoch {
            return Err(io::Error::other("handle from before a simulated crash"));
        }
        let file = state
            .inodes
            .get_mut(&self.inode)
            .ok_or_else(|| io::Error::other("file vanished"))?;
        f(file)
    }
}

impl VfsFile for SimHandle {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.with_file(|file| {
            let start = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(file.current.len());
            let n = buf.len().min(file.current.len() - start);
            buf[..n].copy_from_slice(&file.current[start..start + n]);
            Ok(n)
        })
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with_file(|file| {
            let at = usize::try_from(offset)
                .ok()
                .filter(|at| at.checked_add(buf.len()).is_some());
            let at = at.ok_or_else(|| io::Error::other("offset too large"))?;
            write_into(&mut file.current, at, buf);
            file.pending.push(PendingOp::Write {
                at,
                data: buf.to_vec(),
            });
            Ok(())
        })
    }

    fn sync(&self) -> io::Result<()> {
        self.with_file(|file| {
            file.durable.clone_from(&file.current);
            file.pending.clear();
            Ok(())
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with_file(|file| Ok(file.current.len() as u64))
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with_file(|file| {
            let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
            file.current.resize(len, 0);
            file.pending.push(PendingOp::SetLen(len));
            Ok(())
        })
    }
}

/// SplitMix64: a tiny, well-mixed PRNG so crash outcomes depend only on the seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Opens untrusted bytes as a data directory and exercises it: the fuzz
/// targets' harness (and their replay in the normal test suite).
///
/// `data` becomes the data file and `journal` the first journal segment of a
/// simulated directory; with `reseal`, every page's checksum is recomputed
/// first so the engine's structural checks (not just its CRCs) are
/// exercised. The engine must answer with data or an error; it must never
/// panic, hang or allocate without bound. Returns whether the open succeeded.
pub fn open_untrusted_image(data: &[u8], journal: &[u8], reseal: bool) -> bool {
    use crate::page::{self, HEADER_LEN};
    let sim = SimVfs::new();
    let dir = Path::new("/fuzz");
    let write = |path: &Path, bytes: &[u8]| {
        let f = sim.open(path, true).expect("simulated open");
        f.write_at(bytes, 0).expect("simulated write");
        f.sync().expect("simulated sync");
    };
    let _ = sim.create_dir_all(&dir.join(crate::JOURNAL_DIR));
    let mut data = data.to_vec();
    if reseal {
        for page_size in [4096usize, 8192] {
            for chunk in data.chunks_mut(page_size) {
                if chunk.len() == page_size && chunk.len() > HEADER_LEN {
                    page::seal(chunk);
                }
            }
        }
    }
    write(&dir.join(crate::DATA_FILE), &data);
    if !journal.is_empty() {
        write(
            &dir.join(crate::JOURNAL_DIR)
                .join(crate::journal::segment_name(1)),
            journal,
        );
    }
    let _ = crate::verify::verify_with(dir, Arc::new(sim.clone()));
    let config = crate::Config {
        page_size: 4096,
        cache_bytes: 64 * 4096,
        background_writer: false,
        journal_segment_bytes: 256 << 10,
        ..crate::Config::default()
    };
    let Ok(engine) = crate::Engine::open_with_vfs(dir, config, Arc::new(sim.clone())) else {
        return false;
    };
    let r = engine.begin_read();
    if let Ok(trees) = r.trees() {
        for (name, info) in trees.into_iter().take(16) {
            match info.kind {
                crate::TreeKind::BTree => {
                    if let Ok(it) = r.range(&name, ..) {
                        for entry in it.take(2000) {
                            if entry.is_err() {
                                break;
                            }
                        }
                    }
                    if let Ok(it) = r.range_rev(&name, ..) {
                        let _ = it.take(2000).count();
                    }
                    let _ = r.get(&name, b"k");
                }
                crate::TreeKind::Hash => {
                    let _ = r.hash_get(&name, b"k");
                }
            }
        }
    }
    drop(r);
    if let Ok(mut tx) = engine.begin_write() {
        let _ = tx.create_tree("fuzz-new", crate::TreeKind::BTree);
        let _ = tx.put("fuzz-new", b"k", b"v");
        let _ = tx.commit();
    }
    true
}

#[cfg(test)]
mod tests {
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
