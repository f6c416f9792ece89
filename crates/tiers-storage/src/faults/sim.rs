//! [`SimVfs`]: an in-memory file system that simulates power cuts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::vfs::{Vfs, VfsFile};

use super::{SECTOR, not_found, parent};

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
