//! The buffer pool: a bounded cache of pages in memory in front of the data
//! file (the book's memory/cache hierarchy, the DB server's shared memory).
//!
//! Pages in the pool are immutable once committed (the B+tree is
//! copy-on-write), so a reader pins a page simply by holding its
//! `Arc<PageBuf>` and needs no page latch while it reads. The pool's own
//! mutex is a short latch held only for map and queue updates; disk reads
//! happen outside it.
//!
//! Eviction is 2Q (Johnson & Shasha): a page seen once enters the FIFO
//! `A1in`; only a page referenced again after falling out of `A1in` (its
//! number is remembered in the ghost list `A1out`) is promoted to the LRU
//! `Am`. A sequential scan therefore cycles through `A1in` (a quarter of the
//! pool) and cannot flush the hot set in `Am`. We chose 2Q over CLOCK-Pro and
//! LRU-K because it is simple, scan resistant, and its cost per access is a
//! couple of ordered-map updates, skipped for a page moved to the front of
//! `Am` only moments ago (so the hottest pages cost a map lookup).
//!
//! Dirty pages (committed but not yet written) are written back by the
//! background writer and at checkpoints (write-back); eviction prefers clean
//! victims and writes a dirty one itself only when it must. A page still
//! pinned is never evicted; if every page is pinned the pool overshoots its
//! capacity until pins are released.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::metrics::{Metrics, add, inc};
use crate::page::{self, PageBuf, PageKind, PageMap, PageNo, PageSet};
use crate::vfs::VfsFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    A1in,
    Am,
}

struct Frame {
    page: Arc<PageBuf>,
    dirty: bool,
    /// LSN of the commit that unlinked this page, if one has.
    retired_at: Option<u64>,
    /// Its structure is known to be sound: this engine built it (a commit
    /// installed it) or a batch checked it before editing a copy.
    sound: bool,
    queue: Queue,
    tick: u64,
}

/// Which dirty pages a write-back pass writes.
#[derive(Debug, Clone, Copy)]
pub enum WriteBack {
    /// Background pass: every dirty page still part of the newest tree.
    Live,
    /// Checkpoint of the version at `lsn`: every dirty page that version
    /// contains. Pages unlinked at or before `lsn` are not written; those
    /// unlinked at or before `forget_through` (which no snapshot can still
    /// read) are marked clean outright.
    Checkpoint {
        /// The checkpoint's LSN.
        lsn: u64,
        /// Oldest LSN any snapshot may still read.
        forget_through: u64,
    },
}

struct PoolState {
    frames: PageMap<Frame>,
    a1in: BTreeMap<u64, PageNo>,
    am: BTreeMap<u64, PageNo>,
    a1out: VecDeque<PageNo>,
    a1out_set: PageSet,
    dirty: usize,
    tick: u64,
    /// An `Am` page touched again within this many ticks of its last move
    /// stays where it is: hot pages (the trees' upper levels, touched by
    /// every lookup) then skip the two ordered-map updates per access, at
    /// the price of an LRU order that is exact only to 1/32 of the pool.
    refresh_age: u64,
    /// Buffers of evicted pages, reused for the next misses (saves an
    /// allocation, a zeroing and the page faults of fresh memory per miss).
    spare: Vec<PageBuf>,
    /// Cached pages that commits unlinked, oldest first, with the unlinking
    /// commit's LSN. Copy-on-write retires a few pages per commit, recently
    /// used ones: left to the LRU order they would push colder live pages
    /// out. Instead each is dropped as soon as it is garbage (see
    /// [`BufferPool::drop_garbage`]).
    retired: VecDeque<(u64, PageNo)>,
}

/// Most spare buffers kept.
const SPARE_MAX: usize = 64;

/// Pages a write-back pass writes between two [`BufferPool::start_writeback`]
/// hints (256 KiB of 8 KiB pages, as PostgreSQL's `checkpoint_flush_after`).
const WRITEBACK_BATCH: usize = 32;

/// The page cache shared by all transactions.
pub struct BufferPool {
    state: Mutex<PoolState>,
    /// Pages unlinked at or before this LSN are garbage: no snapshot can read
    /// them and no checkpoint (running or future) contains them, so a dirty
    /// one is dropped instead of written. Kept current by the engine.
    forget_through: AtomicU64,
    /// Serializes write-back passes, so a slow pass can never land a stale
    /// copy of a page after a later pass (or checkpoint) wrote a newer one.
    flushing: Mutex<()>,
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    page_size: usize,
    capacity: usize,
    metrics: Arc<Metrics>,
}

impl BufferPool {
    /// A pool of `capacity_bytes / page_size` pages over `file`.
    pub fn new(
        file: Arc<dyn VfsFile>,
        path: PathBuf,
        page_size: usize,
        capacity_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        BufferPool {
            state: Mutex::new(PoolState {
                frames: PageMap::default(),
                a1in: BTreeMap::new(),
                am: BTreeMap::new(),
                a1out: VecDeque::new(),
                a1out_set: PageSet::default(),
                dirty: 0,
                tick: 0,
                refresh_age: ((capacity_bytes / page_size).max(16) / 32) as u64,
                spare: Vec::new(),
                retired: VecDeque::new(),
            }),
            flushing: Mutex::new(()),
            forget_through: AtomicU64::new(0),
            file,
            path,
            page_size,
            capacity: (capacity_bytes / page_size).max(16),
            metrics,
        }
    }

    /// Capacity in pages.
    pub fn capacity_pages(&self) -> usize {
        self.capacity
    }

    /// (cached pages, dirty pages).
    pub fn usage(&self) -> (usize, usize) {
        let s = self.lock();
        (s.frames.len(), s.dirty)
    }

    /// The data file path (for error messages).
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().expect("buffer pool latch poisoned")
    }

    /// Returns page `no`, reading and checking it on a miss. Holding the
    /// returned `Arc` pins the page.
    pub fn get(&self, no: PageNo, want: Option<PageKind>) -> Result<Arc<PageBuf>> {
        self.get_with_soundness(no, want).map(|(page, _)| page)
    }

    /// Like [`BufferPool::get`], also saying whether the page's structure is
    /// known to be sound: a commit built it, or a check passed on this very
    /// buffer (see [`BufferPool::mark_sound`]). A page just read from disk
    /// has passed only its checksum.
    pub fn get_with_soundness(
        &self,
        no: PageNo,
        want: Option<PageKind>,
    ) -> Result<(Arc<PageBuf>, bool)> {
        {
            let mut s = self.lock();
            if let Some(found) = s.touch(no) {
                inc(&self.metrics.pool_hits);
                THREAD_BUFFERS.with(|c| c.set((c.get().0 + 1, c.get().1)));
                return Ok(found);
            }
        }
        inc(&self.metrics.pool_misses);
        THREAD_BUFFERS.with(|c| c.set((c.get().0, c.get().1 + 1)));
        let spare = self.lock().spare.pop();
        let buf = self.read_into(spare, no, want)?;
        let page = Arc::new(buf);
        let mut s = self.lock();
        if let Some(found) = s.touch(no) {
            return Ok(found);
        }
        let queue = if s.a1out_set.remove(&no) {
            Queue::Am
        } else {
            Queue::A1in
        };
        s.insert(no, page.clone(), false, queue);
        self.evict_excess(&mut s);
        Ok((page, false))
    }

    /// A page buffer to fill: one an eviction freed, or a new one. Commits
    /// make new pages as fast as eviction drops old ones, so recycling them
    /// spares the allocator two large blocks per page.
    pub(crate) fn page_buffer(&self) -> PageBuf {
        match self.lock().spare.pop() {
            Some(buf) => buf,
            None => vec![0u8; self.page_size].into_boxed_slice(),
        }
    }

    /// Records that a structural check of the cached page `no` (this very
    /// buffer) passed, so editing it again need not repeat the check.
    pub fn mark_sound(&self, no: PageNo, page: &Arc<PageBuf>) {
        if let Some(f) = self.lock().frames.get_mut(&no)
            && Arc::ptr_eq(&f.page, page)
        {
            f.sound = true;
        }
    }

    /// Reads and checks a page from disk without caching it.
    pub fn read_from_disk(&self, no: PageNo, want: Option<PageKind>) -> Result<PageBuf> {
        self.read_into(None, no, want)
    }

    fn read_into(
        &self,
        spare: Option<PageBuf>,
        no: PageNo,
        want: Option<PageKind>,
    ) -> Result<PageBuf> {
        let offset = self.offset(no)?;
        let mut buf = spare.unwrap_or_else(|| vec![0u8; self.page_size].into_boxed_slice());
        let n = self
            .file
            .read_at(&mut buf, offset)
            .map_err(|e| Error::io(format!("reading page {no} of {}", self.path.display()), e))?;
        if n < self.page_size {
            return Err(page::corrupt(
                &self.path,
                no,
                format!(
                    "page lies past the end of the file ({n} of {} bytes read)",
                    self.page_size
                ),
            ));
        }
        page::check(&buf, &self.path, no, want)?;
        Ok(buf)
    }

    /// Installs a freshly committed page as dirty, replacing any older
    /// content cached under the same number.
    pub fn install(&self, no: PageNo, page: Arc<PageBuf>) {
        let mut s = self.lock();
        s.remove(no);
        s.a1out_set.remove(&no);
        s.insert(no, page, true, Queue::Am);
        self.evict_excess(&mut s);
    }

    /// Notes that the commit at `lsn` unlinked `pages`. A dirty page that is
    /// unlinked before it was ever written need never be written: this is
    /// how write-back absorbs the many copies copy-on-write makes of hot
    /// pages (a root rewritten by every commit is written once per checkpoint).
    pub fn retire(&self, pages: &[PageNo], lsn: u64) {
        let mut s = self.lock();
        for no in pages {
            if let Some(frame) = s.frames.get_mut(no) {
                frame.retired_at = Some(lsn);
                s.retired.push_back((lsn, *no));
            }
        }
        self.drop_garbage(&mut s);
    }

    /// Drops the unlinked pages that have become garbage (unlinked at or
    /// before `forget_through`) from the pool, keeping their buffers as
    /// spares; a dirty one is never written. A pinned one stays until
    /// eviction finds it. While a long snapshot holds the horizon back the
    /// list is kept to the pages still cached.
    fn drop_garbage(&self, s: &mut PoolState) {
        let forget = self.forget_through.load(Ordering::Acquire);
        while let Some(&(lsn, no)) = s.retired.front() {
            if lsn > forget {
                break;
            }
            s.retired.pop_front();
            let droppable = s
                .frames
                .get(&no)
                .is_some_and(|f| f.retired_at == Some(lsn) && Arc::strong_count(&f.page) == 1);
            if droppable && let Some(frame) = s.remove(no) {
                s.recycle(frame.page);
                add(&self.metrics.pool_garbage_dropped, 1);
            }
        }
        if s.retired.len() > 2 * self.capacity + 1024 {
            let PoolState {
                retired, frames, ..
            } = s;
            retired.retain(|(lsn, no)| frames.get(no).is_some_and(|f| f.retired_at == Some(*lsn)));
        }
    }

    /// Raises the LSN through which unlinked pages are garbage (see the field).
    pub fn set_forget_through(&self, lsn: u64) {
        self.forget_through.store(lsn, Ordering::Release);
    }

    fn garbage(&self, frame: &Frame) -> bool {
        frame
            .retired_at
            .is_some_and(|r| r <= self.forget_through.load(Ordering::Acquire))
    }

    /// Writes dirty pages to the data file (no fsync) and marks them clean,
    /// as `mode` says. Returns the number written.
    pub fn flush_dirty(&self, mode: WriteBack) -> Result<usize> {
        let _pass = self.flushing.lock().expect("flush latch poisoned");
        let mut dirty: Vec<(PageNo, Arc<PageBuf>)> = {
            let mut s = self.lock();
            let st = &mut *s;
            let mut out = Vec::new();
            let forget = self.forget_through.load(Ordering::Acquire);
            for (no, f) in st.frames.iter_mut().filter(|(_, f)| f.dirty) {
                if f.retired_at.is_some_and(|r| r <= forget) {
                    f.dirty = false;
                    st.dirty -= 1;
                    continue;
                }
                match (f.retired_at, mode) {
                    (None, _) => out.push((*no, f.page.clone())),
                    (Some(_), WriteBack::Live) => {}
                    (
                        Some(r),
                        WriteBack::Checkpoint {
                            lsn,
                            forget_through,
                        },
                    ) => {
                        if r > lsn {
                            out.push((*no, f.page.clone()));
                        } else if r <= forget_through {
                            f.dirty = false;
                            st.dirty -= 1;
                        }
                    }
                }
            }
            out
        };
        // Ascending page order turns the write-back into mostly sequential I/O.
        dirty.sort_unstable_by_key(|(no, _)| *no);
        for (i, (no, page)) in dirty.iter().enumerate() {
            self.write_page(*no, page)?;
            if i % WRITEBACK_BATCH == WRITEBACK_BATCH - 1 {
                self.start_writeback();
            }
        }
        if !dirty.is_empty() {
            self.start_writeback();
        }
        let mut s = self.lock();
        for (no, page) in &dirty {
            let st = &mut *s;
            if let Some(frame) = st.frames.get_mut(no)
                && frame.dirty
                && Arc::ptr_eq(&frame.page, page)
            {
                frame.dirty = false;
                st.dirty -= 1;
            }
        }
        Ok(dirty.len())
    }

    /// Lets the device start on the pages written so far, so that they
    /// trickle out as they are written instead of all at the checkpoint's
    /// fsync, where they would stall every commit's journal fsync behind
    /// them. A failure here is only a lost hint: the fsync reports errors.
    fn start_writeback(&self) {
        let _ = self.file.start_writeback();
    }

    /// Byte offset of page `no`; page numbers come from disk, so a corrupt
    /// one must not overflow.
    fn offset(&self, no: PageNo) -> Result<u64> {
        no.checked_mul(self.page_size as u64)
            .ok_or_else(|| page::corrupt(&self.path, no, "page number is beyond any possible file"))
    }

    fn write_page(&self, no: PageNo, page: &[u8]) -> Result<()> {
        debug_assert!(page::page_kind(page).is_some());
        self.file
            .write_at(page, self.offset(no)?)
            .map_err(|e| Error::io(format!("writing page {no} of {}", self.path.display()), e))?;
        inc(&self.metrics.pool_pages_written);
        Ok(())
    }

    /// Evicts until the pool is within capacity. A failed write-back leaves
    /// the dirty page cached (it is still in the journal) and stops eviction;
    /// the next flush or checkpoint retries it and reports the error.
    fn evict_excess(&self, s: &mut PoolState) {
        while s.frames.len() > self.capacity {
            let forget = self.forget_through.load(Ordering::Acquire);
            let Some(victim) = s.pick_victim(self.capacity, forget) else {
                // Everything is pinned: overshoot rather than block.
                return;
            };
            let frame = s.frames.get(&victim).expect("victim is cached");
            if frame.dirty && !self.garbage(frame) {
                // Write-back under the latch: rare, only when no clean page
                // could be found, and it keeps a dirty page from being lost.
                let page = frame.page.clone();
                if self.write_page(victim, &page).is_err() {
                    return;
                }
            }
            let frame = s.remove(victim).expect("victim is cached");
            let queue = frame.queue;
            s.recycle(frame.page);
            if queue == Queue::A1in {
                s.a1out.push_back(victim);
                s.a1out_set.insert(victim);
                // The ghost list remembers half a pool's worth of page numbers.
                while s.a1out.len() > self.capacity / 2 {
                    if let Some(old) = s.a1out.pop_front() {
                        s.a1out_set.remove(&old);
                    }
                }
            }
            add(&self.metrics.pool_evictions, 1);
        }
    }
}

impl PoolState {
    /// A cached page and whether it is sound, noted as used.
    fn touch(&mut self, no: PageNo) -> Option<(Arc<PageBuf>, bool)> {
        self.tick += 1;
        let tick = self.tick;
        let frame = self.frames.get_mut(&no)?;
        if frame.queue == Queue::Am && tick - frame.tick > self.refresh_age {
            self.am.remove(&frame.tick);
            frame.tick = tick;
            self.am.insert(tick, no);
        }
        Some((frame.page.clone(), frame.sound))
    }

    fn insert(&mut self, no: PageNo, page: Arc<PageBuf>, dirty: bool, queue: Queue) {
        self.tick += 1;
        let tick = self.tick;
        match queue {
            Queue::A1in => self.a1in.insert(tick, no),
            Queue::Am => self.am.insert(tick, no),
        };
        if dirty {
            self.dirty += 1;
        }
        self.frames.insert(
            no,
            Frame {
                page,
                dirty,
                retired_at: None,
                // A page enters dirty only when a commit built it; one read
                // from disk enters clean, its structure unchecked.
                sound: dirty,
                queue,
                tick,
            },
        );
    }

    /// Keeps a dropped page's buffer for reuse, if it is the last reference.
    fn recycle(&mut self, page: Arc<PageBuf>) {
        if self.spare.len() < SPARE_MAX
            && let Ok(buf) = Arc::try_unwrap(page)
        {
            self.spare.push(buf);
        }
    }

    fn remove(&mut self, no: PageNo) -> Option<Frame> {
        let frame = self.frames.remove(&no)?;
        match frame.queue {
            Queue::A1in => self.a1in.remove(&frame.tick),
            Queue::Am => self.am.remove(&frame.tick),
        };
        if frame.dirty {
            self.dirty -= 1;
        }
        Some(frame)
    }

    /// The oldest unpinned page of the queue 2Q says to shrink; clean pages
    /// are preferred over dirty ones.
    fn pick_victim(&self, capacity: usize, forget: u64) -> Option<PageNo> {
        let first = if self.a1in.len() > capacity / 4 || self.am.is_empty() {
            [&self.a1in, &self.am]
        } else {
            [&self.am, &self.a1in]
        };
        let unpinned = |no: &PageNo| {
            let frame = &self.frames[no];
            Arc::strong_count(&frame.page) == 1
        };
        // Look at a bounded number of candidates so eviction stays cheap.
        const SCAN: usize = 64;
        for queue in first {
            if let Some(no) = queue.values().take(SCAN).find(|no| {
                let f = &self.frames[*no];
                unpinned(no) && (!f.dirty || f.retired_at.is_some_and(|r| r <= forget))
            }) {
                return Some(*no);
            }
        }
        for queue in first {
            if let Some(no) = queue.values().take(SCAN).find(|no| unpinned(no)) {
                return Some(*no);
            }
        }
        None
    }
}

thread_local! {
    /// Buffer pool hits and misses by page reads on this thread.
    static THREAD_BUFFERS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Buffer pool (hits, misses) of page reads made by the calling thread so
/// far: the difference across a piece of work is what it read (EXPLAIN
/// ANALYZE's per-node buffer counts).
pub fn thread_buffer_counts() -> (u64, u64) {
    THREAD_BUFFERS.with(|c| c.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::{new_page, seal};
    use crate::vfs::{OsVfs, Vfs};

    fn pool(pages: usize) -> (tempfile::TempDir, BufferPool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.tdb");
        let file = OsVfs.open(&path, true).unwrap();
        for no in 0..300u64 {
            let mut p = new_page(4096, no, PageKind::Leaf, 1);
            seal(&mut p);
            file.write_at(&p, no * 4096).unwrap();
        }
        let metrics = Arc::new(Metrics::default());
        (
            dir,
            BufferPool::new(file, path, 4096, pages * 4096, metrics),
        )
    }

    #[test]
    fn a_sequential_scan_does_not_flush_the_hot_set() {
        let (_dir, pool) = pool(32);
        // Make pages 0..8 hot: touched, evicted from A1in, touched again.
        for round in 0..3 {
            for no in 0..8 {
                pool.get(no, None).unwrap();
            }
            for no in 100 + round * 40..140 + round * 40 {
                pool.get(no, None).unwrap();
            }
        }
        let misses_before = crate::metrics::get(&pool.metrics.pool_misses);
        // A long scan over cold pages...
        for no in 20..100 {
            pool.get(no, None).unwrap();
        }
        // ...leaves the hot pages cached.
        let before_hot = crate::metrics::get(&pool.metrics.pool_misses);
        for no in 0..8 {
            pool.get(no, None).unwrap();
        }
        assert_eq!(crate::metrics::get(&pool.metrics.pool_misses), before_hot);
        assert!(before_hot > misses_before);
        assert!(pool.usage().0 <= 32);
    }

    #[test]
    fn a_hot_page_moves_in_the_lru_queue_only_after_others_were_touched() {
        let (_dir, pool) = pool(64); // refresh_age: 64 / 32 = 2 ticks
        // Page 1 into Am: seen, pushed out of A1in, seen again.
        pool.get(1, None).unwrap();
        for no in 100..170 {
            pool.get(no, None).unwrap();
        }
        pool.get(1, None).unwrap();
        let queued_at = |pool: &BufferPool| pool.lock().frames[&1].tick;
        assert_eq!(pool.lock().frames[&1].queue, Queue::Am);
        let first = queued_at(&pool);
        // Touched again at once: it stays where it is.
        pool.get(1, None).unwrap();
        assert_eq!(queued_at(&pool), first);
        // Touched after more than refresh_age other touches: it moves to
        // the front, and the queue holds it exactly once.
        for _ in 0..3 {
            pool.get(169, None).unwrap();
        }
        pool.get(1, None).unwrap();
        let s = pool.lock();
        assert!(s.frames[&1].tick > first);
        assert_eq!(s.am.values().filter(|&&no| no == 1).count(), 1);
        assert_eq!(s.am.get(&s.frames[&1].tick), Some(&1));
    }

    #[test]
    fn pinned_pages_are_not_evicted_and_dirty_pages_are_written_back() {
        let (_dir, pool) = pool(16);
        let pinned = pool.get(5, None).unwrap();
        for no in 150..170u64 {
            let mut fresh = new_page(4096, no, PageKind::Leaf, 9);
            fresh[200] = no as u8;
            seal(&mut fresh);
            pool.install(no, Arc::new(fresh));
        }
        assert!(pool.lock().frames.contains_key(&5));
        assert!(!pool.lock().frames.contains_key(&150));
        drop(pinned);
        // The oldest dirty page was evicted by writing it back: it reads back intact.
        let again = pool.read_from_disk(150, None).unwrap();
        assert_eq!(again[200], 150);
    }

    impl BufferPool {
        /// Whether the cached page `no`, this very buffer, counts as sound.
        fn is_sound(&self, no: PageNo, page: &Arc<PageBuf>) -> bool {
            self.lock()
                .frames
                .get(&no)
                .is_some_and(|f| f.sound && Arc::ptr_eq(&f.page, page))
        }
    }

    #[test]
    fn only_pages_built_here_or_checked_count_as_sound() {
        let (_dir, pool) = pool(16);
        // Read from disk: only its checksum was checked.
        let read = pool.get(3, None).unwrap();
        assert!(!pool.is_sound(3, &read));
        assert!(!pool.get_with_soundness(3, None).unwrap().1);
        pool.mark_sound(3, &read);
        assert!(pool.is_sound(3, &read));
        assert!(pool.get_with_soundness(3, None).unwrap().1);
        // Installed by a commit: built by this engine.
        let mut fresh = new_page(4096, 40, PageKind::Leaf, 9);
        seal(&mut fresh);
        let built = Arc::new(fresh);
        pool.install(40, built.clone());
        assert!(pool.is_sound(40, &built));
        // A mark for another buffer under the same number does not count.
        let other = Arc::new(built.as_ref().clone());
        assert!(!pool.is_sound(40, &other));
        pool.mark_sound(7, &other);
        assert!(!pool.lock().frames.contains_key(&7));
    }

    /// A real file that counts the write-back hints it is given.
    struct HintCounting(Arc<dyn VfsFile>, std::sync::atomic::AtomicUsize);

    impl VfsFile for HintCounting {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
            self.0.read_at(buf, offset)
        }
        fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
            self.0.write_at(buf, offset)
        }
        fn sync(&self) -> std::io::Result<()> {
            self.0.sync()
        }
        fn start_writeback(&self) -> std::io::Result<()> {
            self.1.fetch_add(1, Ordering::Relaxed);
            self.0.start_writeback()
        }
        fn len(&self) -> std::io::Result<u64> {
            self.0.len()
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.0.set_len(len)
        }
    }

    #[test]
    fn write_back_hints_the_kernel_every_batch_of_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.tdb");
        let file = Arc::new(HintCounting(
            OsVfs.open(&path, true).unwrap(),
            Default::default(),
        ));
        let metrics = Arc::new(Metrics::default());
        let pool = BufferPool::new(file.clone(), path, 4096, 256 * 4096, metrics);
        let pages = WRITEBACK_BATCH as u64 + 8;
        for no in 0..pages {
            let mut fresh = new_page(4096, no, PageKind::Leaf, 9);
            fresh[300] = no as u8;
            seal(&mut fresh);
            pool.install(no, Arc::new(fresh));
        }
        assert_eq!(pool.flush_dirty(WriteBack::Live).unwrap(), pages as usize);
        // One hint after the first full batch, one for the rest.
        assert_eq!(file.1.load(Ordering::Relaxed), 2);
        assert_eq!(pool.usage().1, 0);
        assert_eq!(
            pool.read_from_disk(pages - 1, None).unwrap()[300],
            (pages - 1) as u8
        );
        // Nothing dirty: no write, no hint.
        assert_eq!(pool.flush_dirty(WriteBack::Live).unwrap(), 0);
        assert_eq!(file.1.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn unlinked_pages_leave_the_pool_once_garbage_and_spare_the_live_ones() {
        let (_dir, pool) = pool(32);
        let dirty_page = |no: u64| {
            let mut fresh = new_page(4096, no, PageKind::Leaf, 9);
            seal(&mut fresh);
            Arc::new(fresh)
        };
        // Twenty live pages, read from disk.
        for no in 0..20 {
            pool.get(no, None).unwrap();
        }
        // Commits at LSN 1..=40, each writing a new copy of a hot page and
        // unlinking the previous copy, which snapshots may read until the
        // horizon passes the commit's LSN.
        let mut current = 200u64;
        pool.install(current, dirty_page(current));
        let mut pinned = None;
        for lsn in 1..=40u64 {
            let copy = 200 + lsn;
            pool.install(copy, dirty_page(copy));
            if lsn == 3 {
                // A reader still holds the copy unlinked at LSN 3.
                pinned = Some(pool.get(current, None).unwrap());
            }
            pool.set_forget_through(lsn - 1);
            pool.retire(&[current], lsn);
            current = copy;
        }
        let s = pool.lock();
        // Every copy unlinked at or before the horizon (39) is gone, except
        // the pinned one; the one unlinked at 40 is still readable.
        let cached: Vec<u64> = (200..=240).filter(|no| s.frames.contains_key(no)).collect();
        assert_eq!(cached, vec![202, 239, 240]);
        assert_eq!(crate::metrics::get(&pool.metrics.pool_garbage_dropped), 38);
        // No live page was evicted to make room, and no garbage was written.
        assert_eq!(crate::metrics::get(&pool.metrics.pool_evictions), 0);
        assert_eq!(crate::metrics::get(&pool.metrics.pool_pages_written), 0);
        assert!((0..20).all(|no| s.frames.contains_key(&no)));
        // Only pages still cached stay listed.
        assert!(s.retired.len() <= 3);
        drop(s);
        drop(pinned);
    }
}
