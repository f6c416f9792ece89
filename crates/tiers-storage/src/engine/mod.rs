//! The engine: opening and recovering a data directory, committing write
//! sets, publishing snapshots, the background writer, and checkpoints.
//!
//! Concurrency, and which waits are which (the book's latches vs locks):
//! - *Short latches* (plain mutexes held for map or queue updates, never
//!   across I/O except where noted): the buffer pool's map, the journal
//!   buffer, the snapshot registry.
//! - *The commit lock* (a queued mutex): one commit at a time applies its
//!   write set to pages and appends its journal record. It is held for
//!   microseconds per small commit and never while waiting for fsync, so
//!   committers queue briefly here and then share the journal's fsync.
//! - *Transaction isolation* needs no locks at all: readers see immutable
//!   copy-on-write snapshots, and writers buffer their changes and are
//!   checked at commit (first committer wins).
//! - *The checkpoint lock*: one checkpoint at a time.
//!
//! Lock order: commit lock → snapshot registry; checkpoint lock → commit lock.
//!
//! Visibility: a commit's new version becomes visible to new snapshots only
//! once its journal record is durable, so nobody ever reads data a crash
//! could take back. The one exception is a writer that asks for the newest
//! version (`WriteTxn::refresh_snapshot_latest`, early lock release): it
//! commits after what it read, and reports nothing before that is durable.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

mod checkpoint;
mod conflicts;
mod replicated;
mod snapshot;

pub(crate) use replicated::ProposalSlot;
pub use replicated::{Applied, ProposalDone, Replicator};
pub use snapshot::{SnapshotInfo, snapshot_header, verify_snapshot};

use crate::alloc::{Allocator, FIRST_DATA_PAGE};
use crate::batch::{Batch, Sealed};
use crate::btree::node::Limits;
use crate::catalog;
use crate::config::{Config, Durability};
use crate::error::{Error, Result};
use crate::hash::HashLimits;
use crate::journal::{self, Journal};
use crate::meta::{self, Meta};
use crate::metrics::{self, Metrics, MetricsSnapshot};
use crate::page::{PageKind, PageNo};
use crate::pool::BufferPool;
use crate::record::{self, Op};
use crate::vfs::{OsVfs, Vfs, VfsFile};
use conflicts::{conflict_keys, conflicts};

/// Name of the data file inside a data directory.
pub const DATA_FILE: &str = "data.tdb";
/// Name of the journal directory inside a data directory.
pub const JOURNAL_DIR: &str = "journal";
const LOCK_FILE: &str = "LOCK";

/// One committed state of the database: what a snapshot sees.
#[derive(Debug)]
pub(crate) struct Version {
    pub lsn: u64,
    /// The term of the entry that made it (replicated mode; 0 otherwise).
    pub term: u64,
    /// The cluster membership as of it (replicated mode).
    pub membership: Option<Arc<[u8]>>,
    pub catalog_root: Option<PageNo>,
    /// Catalog entries already looked up at this version, shared by every
    /// snapshot of it: the version is immutable, so they never go stale,
    /// and a statement's reads skip the catalog descent when an earlier
    /// statement at the same version made it.
    pub infos: std::sync::Mutex<std::collections::HashMap<String, Option<crate::TreeInfo>>>,
}

impl Version {
    pub(crate) fn new(lsn: u64, catalog_root: Option<PageNo>) -> Version {
        Version {
            lsn,
            term: 0,
            membership: None,
            catalog_root,
            infos: Default::default(),
        }
    }
}

/// Commit-lock state.
struct Writer {
    latest: Arc<Version>,
    alloc: Allocator,
    /// Write sets of recent commits, for first-committer-wins checks. Only
    /// checked when a transaction that began earlier commits, so the common
    /// case pays nothing beyond keeping the Arc.
    history: VecDeque<(u64, Arc<Vec<Op>>)>,
    /// Replicated mode: write sets proposed to the cluster and not yet
    /// applied, by proposal id. A later commit is checked against them
    /// too, since they will be applied after whatever it read.
    proposed: Vec<(u64, Arc<Vec<Op>>)>,
    next_proposal: u64,
}

/// Who is reading what.
pub(crate) struct Snapshots {
    visible: Arc<Version>,
    unpublished: VecDeque<Arc<Version>>,
    readers: BTreeMap<u64, usize>,
    writers: BTreeMap<u64, usize>,
}

struct CheckpointState {
    id: u64,
    journal_bytes_at: u64,
    at: Instant,
}

pub(crate) struct Shared {
    pub config: Config,
    data: Arc<dyn VfsFile>,
    pub pool: BufferPool,
    journal: Journal,
    pub limits: Limits,
    pub hash_limits: HashLimits,
    pub page_size: usize,
    writer: Mutex<Writer>,
    snapshots: Mutex<Snapshots>,
    checkpoint: Mutex<CheckpointState>,
    checkpoint_lsn: AtomicU64,
    /// The LSN of `Snapshots::visible`, readable without the latch.
    visible_lsn: AtomicU64,
    /// LSN captured by the checkpoint in progress (u64::MAX when none).
    checkpoint_capture: AtomicU64,
    pub metrics: Arc<Metrics>,
    poisoned: Mutex<Option<String>>,
    /// Set once `poisoned` is (read without the latch by every transaction).
    poisoned_flag: AtomicBool,
    shutdown: Mutex<bool>,
    wake: Condvar,
    closed: AtomicBool,
    /// Replicated mode: where commits are proposed (set by the cluster layer).
    replicator: std::sync::OnceLock<Arc<dyn Replicator>>,
    _lock: Option<std::fs::File>,
}

/// An open storage engine over one data directory.
pub struct Engine {
    shared: Arc<Shared>,
    background: Option<JoinHandle<()>>,
    /// Fsyncs the journal for commits waited on asynchronously.
    flusher: Option<JoinHandle<()>>,
}

/// A registration of a snapshot in use; unregisters on drop.
pub(crate) struct SnapshotGuard {
    shared: Arc<Shared>,
    lsn: u64,
    writer: bool,
}

impl Drop for SnapshotGuard {
    fn drop(&mut self) {
        let mut s = self.shared.snapshots();
        let map = if self.writer {
            &mut s.writers
        } else {
            &mut s.readers
        };
        if let Some(n) = map.get_mut(&self.lsn) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.lsn);
            }
        }
    }
}

/// What a checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The checkpoint's id.
    pub id: u64,
    /// The LSN it covers.
    pub lsn: u64,
    /// Dirty pages written.
    pub pages_written: usize,
}

impl Engine {
    /// Opens (creating if empty) the data directory `dir` on the real file
    /// system, holding its lock file so no second process can open it.
    pub fn open(dir: impl AsRef<Path>, config: Config) -> Result<Engine> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating data directory {}", dir.display()), e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("opening {}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked(dir.to_path_buf())),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", lock_path.display()), e));
            }
        }
        Self::open_inner(dir, config, Arc::new(OsVfs), Some(lock))
    }

    /// Opens a data directory through any [`Vfs`] (fault injection, simulation).
    pub fn open_with_vfs(
        dir: impl AsRef<Path>,
        config: Config,
        vfs: Arc<dyn Vfs>,
    ) -> Result<Engine> {
        Self::open_inner(dir.as_ref(), config, vfs, None)
    }

    fn open_inner(
        dir: &Path,
        config: Config,
        vfs: Arc<dyn Vfs>,
        lock: Option<std::fs::File>,
    ) -> Result<Engine> {
        let started = Instant::now();
        config.validate()?;
        let journal_dir = dir.join(JOURNAL_DIR);
        let io = |what: &str, p: &Path| {
            let msg = format!("{what} {}", p.display());
            move |e| Error::io(msg, e)
        };
        vfs.create_dir_all(dir).map_err(io("creating", dir))?;
        vfs.create_dir_all(&journal_dir)
            .map_err(io("creating", &journal_dir))?;
        vfs.sync_dir(dir).map_err(io("syncing", dir))?;
        let data_path = dir.join(DATA_FILE);
        let data = vfs
            .open(&data_path, true)
            .map_err(io("opening", &data_path))?;
        let len = data.len().map_err(io("reading", &data_path))?;
        let meta = if len == 0 {
            // Both slots start valid (ids 0 and 1); checkpoint n writes slot n % 2.
            let mut meta = Meta {
                page_size: config.page_size,
                checkpoint_id: 0,
                lsn: 0,
                catalog_root: None,
                high_water: FIRST_DATA_PAGE,
                freelist_head: None,
                freelist_count: 0,
                term: 0,
                membership: None,
            };
            data.write_at(&meta.encode(0), 0)
                .map_err(io("initialising", &data_path))?;
            meta.checkpoint_id = 1;
            data.write_at(&meta.encode(1), config.page_size as u64)
                .map_err(io("initialising", &data_path))?;
            data.sync().map_err(io("syncing", &data_path))?;
            vfs.sync_dir(dir).map_err(io("syncing", dir))?;
            meta
        } else {
            meta::read_meta(&*data, &data_path)?.0
        };
        let page_size = meta.page_size;
        let file_pages = len / page_size as u64;
        if meta.high_water > file_pages.max(FIRST_DATA_PAGE) && len != 0 {
            return Err(Error::BadDirectory {
                dir: dir.to_path_buf(),
                detail: format!(
                    "checkpoint {} needs {} pages but {} has only {file_pages} (the file was truncated)",
                    meta.checkpoint_id,
                    meta.high_water,
                    data_path.display()
                ),
            });
        }
        if len > meta.high_water * page_size as u64 {
            // Pages written after the checkpoint belong to no durable tree.
            data.set_len(meta.high_water * page_size as u64)
                .map_err(io("truncating", &data_path))?;
        }
        let metrics = Arc::new(Metrics::default());
        let pool = BufferPool::new(
            data.clone(),
            data_path.clone(),
            page_size,
            config.cache_bytes,
            metrics.clone(),
        );
        let (free, freelist_pages) = load_freelist(&pool, &meta)?;
        let mut alloc = Allocator::new(meta.high_water, free);
        alloc.checkpoint_pages = freelist_pages;
        let limits = Limits::new(page_size);
        let hash_limits = HashLimits::new(page_size);

        if meta.membership.is_some() && !config.replicated {
            return Err(Error::BadDirectory {
                dir: dir.to_path_buf(),
                detail: "it belongs to a cluster member: its journal is a replicated log whose \
                    uncommitted entries only the cluster can resolve (start it as a cluster node)"
                    .into(),
            });
        }
        // Roll forward: replay every committed record after the checkpoint.
        // A replicated log is not replayed here: which of its records are
        // committed only the cluster knows, and it applies them.
        let mut latest = Version::new(meta.lsn, meta.catalog_root);
        latest.term = meta.term;
        latest.membership = meta.membership.as_deref().map(Arc::from);
        let mut replayed = 0u64;
        let replay = !config.replicated;
        let summary = journal::scan(&*vfs, &journal_dir, true, |id, payload| {
            let lsn = id.lsn;
            if !replay || lsn <= latest.lsn || id.kind != journal::RecordKind::Data {
                return Ok(());
            }
            if lsn != latest.lsn + 1 {
                return Err(Error::JournalCorrupt {
                    file: journal_dir.clone(),
                    offset: 0,
                    detail: format!(
                        "the checkpoint ends at lsn {} but the journal resumes at lsn {lsn}: records are missing",
                        latest.lsn
                    ),
                });
            }
            let ops = record::decode(payload, lsn)?;
            let mut batch = Batch::new(&pool, &mut alloc, page_size, lsn);
            let root = match catalog::apply(
                &mut batch,
                &limits,
                &hash_limits,
                latest.catalog_root,
                &ops,
            ) {
                Ok(root) => root,
                Err(e) => {
                    batch.abort();
                    return Err(Error::BadRecord {
                        lsn,
                        detail: format!("replaying it failed: {e}"),
                    });
                }
            };
            let sealed = batch.seal();
            for (no, page) in sealed.pages {
                pool.install(no, page);
            }
            pool.retire(&sealed.retired, lsn);
            alloc.retire(lsn, sealed.retired);
            latest = Version::new(lsn, root);
            replayed += 1;
            Ok(())
        })?;
        if let Some(first) = summary.first_lsn
            && first > meta.lsn + 1
            && replay
        {
            return Err(Error::JournalCorrupt {
                file: journal_dir.clone(),
                offset: 0,
                detail: format!(
                    "the checkpoint ends at lsn {} but the oldest journal record is lsn {first}",
                    meta.lsn
                ),
            });
        }
        let next_lsn = match summary.last_lsn {
            Some(last) if !replay => last + 1,
            _ => latest.lsn + 1,
        };
        let journal = Journal::create(
            vfs.clone(),
            &journal_dir,
            next_lsn,
            &summary.segments,
            config.journal_segment_bytes,
            config.journal_compression,
            metrics.clone(),
        )?;
        let latest = Arc::new(latest);
        let visible_lsn = latest.lsn;
        let shared = Arc::new(Shared {
            data,
            pool,
            journal,
            limits,
            hash_limits,
            page_size,
            writer: Mutex::new(Writer {
                latest: latest.clone(),
                alloc,
                history: VecDeque::new(),
                proposed: Vec::new(),
                // Unique across restarts, so an old entry of this node's
                // is never taken for a new proposal.
                next_proposal: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64),
            }),
            snapshots: Mutex::new(Snapshots {
                visible: latest,
                unpublished: VecDeque::new(),
                readers: BTreeMap::new(),
                writers: BTreeMap::new(),
            }),
            checkpoint: Mutex::new(CheckpointState {
                id: meta.checkpoint_id,
                journal_bytes_at: 0,
                at: Instant::now(),
            }),
            checkpoint_lsn: AtomicU64::new(meta.lsn),
            visible_lsn: AtomicU64::new(visible_lsn),
            checkpoint_capture: AtomicU64::new(u64::MAX),
            metrics,
            poisoned: Mutex::new(None),
            poisoned_flag: AtomicBool::new(false),
            shutdown: Mutex::new(false),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            replicator: std::sync::OnceLock::new(),
            config,
            _lock: lock,
        });
        // A checkpoint right after recovery bounds the next recovery and
        // lets the replayed journal segments go.
        shared.checkpoint_now()?;
        metrics::add(&shared.metrics.recovery_records, replayed);
        shared
            .metrics
            .recovery_micros
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        let background = if shared.config.background_writer {
            let s = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("tiers-bgwriter".into())
                    .spawn(move || s.background_loop())
                    .map_err(|e| Error::io("starting the background writer", e))?,
            )
        } else {
            None
        };
        let flusher = if shared.config.durability == Durability::Full || shared.config.replicated {
            let s = shared.clone();
            Some(
                std::thread::Builder::new()
                    .name("tiers-journal".into())
                    .spawn(move || s.journal.run_flusher())
                    .map_err(|e| Error::io("starting the journal flusher", e))?,
            )
        } else {
            None
        };
        Ok(Engine {
            shared,
            background,
            flusher,
        })
    }

    /// Starts a read-only transaction on the newest durable snapshot.
    pub fn begin_read(&self) -> crate::ReadTxn {
        crate::txn::ReadTxn::new(self.shared.clone())
    }

    /// The LSN of the newest version visible to new snapshots: every
    /// commit through it is durable.
    pub fn visible_lsn(&self) -> u64 {
        self.shared.visible_lsn()
    }

    /// A wait for every commit through `lsn` to be durable and visible (a
    /// future, or [`PendingCommit::wait`] to block): what a caller awaits
    /// before it reports anything it read from a snapshot newer than
    /// [`Engine::visible_lsn`].
    pub fn visible_at(&self, lsn: u64) -> crate::PendingCommit {
        crate::txn::PendingCommit::new(self.shared.clone(), lsn)
    }

    /// Starts a write transaction. Its reads see a snapshot plus its own
    /// writes; its writes are buffered until commit. In replicated mode it
    /// starts on any member; a commit that writes is refused unless this
    /// node is the cluster's ready leader ([`Engine::accepts_writes`]).
    pub fn begin_write(&self) -> Result<crate::WriteTxn> {
        self.shared.check_writable()?;
        Ok(crate::txn::WriteTxn::new(self.shared.clone()))
    }

    /// Applies a committed record produced elsewhere (replication): `lsn`
    /// must be the next LSN. The record is journaled like a local commit.
    pub fn apply_record(&self, lsn: u64, record: &[u8]) -> Result<()> {
        if self.shared.config.replicated {
            return Err(Error::Config(
                "apply_record is for a single node; a replicated engine applies through apply_committed"
                    .into(),
            ));
        }
        let ops = record::decode(record, lsn)?;
        self.shared.commit_ops(ops, None, Some(lsn)).map(|_| ())
    }

    /// Flushes dirty pages and records a checkpoint now.
    pub fn checkpoint(&self) -> Result<CheckpointInfo> {
        self.shared.checkpoint_now()
    }

    /// Counters and gauges.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.shared.metrics_snapshot()
    }

    /// Why the engine refuses writes (after an fsync failure), if it does.
    pub fn write_failure(&self) -> Option<String> {
        self.shared.poison_reason()
    }

    /// The page size of the data file.
    pub fn page_size(&self) -> usize {
        self.shared.page_size
    }

    /// The largest key a B+tree accepts.
    pub fn max_key_len(&self) -> usize {
        self.shared.limits.max_key
    }

    /// Stops the background writer and takes a final checkpoint.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        *self.shared.shutdown.lock().expect("shutdown flag") = true;
        self.shared.wake.notify_all();
        if let Some(handle) = self.background.take() {
            let _ = handle.join();
        }
        self.shared.journal.stop_flusher();
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
        if self.shared.poison_reason().is_some() {
            return Ok(());
        }
        self.shared.checkpoint_now().map(|_| ())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn load_freelist(pool: &BufferPool, meta: &Meta) -> Result<(Vec<PageNo>, Vec<PageNo>)> {
    let mut free = Vec::new();
    let mut pages = Vec::new();
    let mut no = meta.freelist_head.unwrap_or(0);
    while no != 0 {
        if pages.len() as u64 > meta.high_water {
            return Err(crate::page::corrupt(
                pool.path(),
                no,
                "free-list chain has a cycle",
            ));
        }
        let buf = pool.read_from_disk(no, Some(PageKind::FreeList))?;
        let (next, entries) = meta::decode_freelist(&buf, pool.path(), no)?;
        pages.push(no);
        free.extend(entries);
        no = next;
    }
    if free.len() as u64 != meta.freelist_count {
        return Err(crate::page::corrupt(
            pool.path(),
            meta.freelist_head.unwrap_or(0),
            format!(
                "free list holds {} pages, the meta says {}",
                free.len(),
                meta.freelist_count
            ),
        ));
    }
    let mut sorted = free.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(crate::page::corrupt(
            pool.path(),
            meta.freelist_head.unwrap_or(0),
            format!("free list names page {} twice", w[0]),
        ));
    }
    if let Some(bad) = free
        .iter()
        .find(|p| **p < FIRST_DATA_PAGE || **p >= meta.high_water)
    {
        return Err(crate::page::corrupt(
            pool.path(),
            meta.freelist_head.unwrap_or(0),
            format!("free list names page {bad}, outside the file"),
        ));
    }
    Ok((free, pages))
}

impl Shared {
    pub(crate) fn snapshots(&self) -> MutexGuard<'_, Snapshots> {
        self.snapshots.lock().expect("snapshot registry poisoned")
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().expect("commit lock poisoned")
    }

    fn poison_reason(&self) -> Option<String> {
        if !self.poisoned_flag.load(Ordering::Acquire) {
            return self.journal.poisoned();
        }
        self.poisoned
            .lock()
            .expect("poison flag")
            .clone()
            .or_else(|| self.journal.poisoned())
    }

    fn poison(&self, why: String) -> Error {
        let mut p = self.poisoned.lock().expect("poison flag");
        self.poisoned_flag.store(true, Ordering::Release);
        p.get_or_insert(why.clone());
        Error::Poisoned(p.clone().unwrap_or(why))
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        match self.poison_reason() {
            Some(why) => Err(Error::Poisoned(why)),
            None => Ok(()),
        }
    }

    /// The LSN of the newest visible version.
    pub(crate) fn visible_lsn(&self) -> u64 {
        self.visible_lsn.load(Ordering::Acquire)
    }

    /// The LSN of the newest committed version, durable or not.
    pub(crate) fn newest_lsn(&self) -> u64 {
        let s = self.snapshots();
        s.unpublished.back().map_or(s.visible.lsn, |v| v.lsn)
    }

    /// Registers a snapshot of the newest visible version.
    /// With `undurable`, of the newest committed one instead, durable or
    /// not (see [`crate::WriteTxn::refresh_snapshot_latest`]).
    pub(crate) fn register(
        self: &Arc<Self>,
        writer: bool,
        undurable: bool,
    ) -> (Arc<Version>, SnapshotGuard) {
        let mut s = self.snapshots();
        let v = match s.unpublished.back() {
            Some(newest) if undurable => newest.clone(),
            _ => s.visible.clone(),
        };
        let map = if writer {
            &mut s.writers
        } else {
            &mut s.readers
        };
        *map.entry(v.lsn).or_default() += 1;
        drop(s);
        let lsn = v.lsn;
        (
            v,
            SnapshotGuard {
                shared: self.clone(),
                lsn,
                writer,
            },
        )
    }

    /// The oldest LSN any snapshot may still read, and the LSN through
    /// which committed write sets are no longer needed for conflict checks.
    fn read_horizon(&self) -> (u64, u64) {
        let s = self.snapshots();
        let oldest_reader = [s.readers.keys().next(), s.writers.keys().next()]
            .into_iter()
            .flatten()
            .copied()
            .min()
            .unwrap_or(u64::MAX);
        // Write sets must be kept for every commit a registered writer, or a
        // writer that registers later (at the visible version), may not have
        // seen: prune only at or below both.
        let prune_through = s
            .writers
            .keys()
            .next()
            .copied()
            .unwrap_or(u64::MAX)
            .min(s.visible.lsn);
        (oldest_reader.min(s.visible.lsn), prune_through)
    }

    /// Commits a write set: checks it, applies it, and appends its record
    /// to the journal, without waiting for the record to be durable (see
    /// [`Shared::wait_committed`] and [`Shared::poll_committed`]); until
    /// then the commit is invisible to new snapshots. `snapshot` is the LSN
    /// the transaction read at (None for replayed or replicated records,
    /// which are never checked); `expect_lsn` pins the LSN (replication).
    pub(crate) fn commit_ops_unsynced(
        &self,
        ops: Vec<Op>,
        snapshot: Option<u64>,
        expect_lsn: Option<u64>,
    ) -> Result<u64> {
        debug_assert!(!self.config.replicated, "replicated commits are proposed");
        let ops = Arc::new(ops);
        let mut guard = self.writer();
        self.check_writable()?;
        if let Some(snap) = snapshot
            && guard.history.iter().any(|(lsn, _)| *lsn > snap)
        {
            let mine = conflict_keys(&ops);
            for (lsn, theirs) in &guard.history {
                if *lsn > snap
                    && let Some(tree) = conflicts(&mine, theirs)
                {
                    metrics::inc(&self.metrics.conflicts);
                    return Err(Error::Conflict { tree });
                }
            }
        }
        let lsn = guard.latest.lsn + 1;
        if let Some(expected) = expect_lsn
            && expected != lsn
        {
            return Err(Error::LsnOrder {
                expected: lsn,
                got: expected,
            });
        }
        let (horizon, prune_through) = self.read_horizon();
        let w = &mut *guard;
        let (sealed, root) = self.stage(w, lsn, &ops, horizon)?;
        let payload = record::encode(&ops);
        if let Err(e) = self.journal.append(lsn, &payload) {
            for (no, _) in &sealed.pages {
                w.alloc.release_unused(*no);
            }
            return Err(e);
        }
        self.install(w, lsn, sealed);
        let version = Arc::new(Version::new(lsn, root));
        w.latest = version.clone();
        // Keep write sets only while a transaction that started earlier may still commit.
        while w.history.front().is_some_and(|(l, _)| *l <= prune_through) {
            w.history.pop_front();
        }
        w.history.push_back((lsn, ops));
        self.snapshots().unpublished.push_back(version);
        drop(guard);
        metrics::inc(&self.metrics.commits);
        Ok(lsn)
    }

    /// Applies `ops` to private copies of the pages for version `lsn`
    /// (first letting go of pages no snapshot below `horizon` nor the last
    /// checkpoint needs); returns the sealed copies, not yet installed, and
    /// the new catalog root.
    fn stage(
        &self,
        w: &mut Writer,
        lsn: u64,
        ops: &[Op],
        horizon: u64,
    ) -> Result<(Sealed, Option<PageNo>)> {
        let checkpointed = self.checkpoint_lsn.load(Ordering::Acquire);
        w.alloc.reclaim(horizon.min(checkpointed));
        self.update_forget_horizon(horizon);
        let mut batch = Batch::new(&self.pool, &mut w.alloc, self.page_size, lsn);
        match catalog::apply(
            &mut batch,
            &self.limits,
            &self.hash_limits,
            w.latest.catalog_root,
            ops,
        ) {
            Ok(root) => Ok((batch.seal(), root)),
            Err(e) => {
                batch.abort();
                Err(e)
            }
        }
    }

    /// Makes staged page copies the pages of version `lsn`.
    fn install(&self, w: &mut Writer, lsn: u64, sealed: Sealed) {
        for (no, page) in sealed.pages {
            self.pool.install(no, page);
        }
        self.pool.retire(&sealed.retired, lsn);
        w.alloc.retire(lsn, sealed.retired);
    }

    /// Commits a write set and waits until it is durable and visible.
    pub(crate) fn commit_ops(
        &self,
        ops: Vec<Op>,
        snapshot: Option<u64>,
        expect_lsn: Option<u64>,
    ) -> Result<u64> {
        let lsn = self.commit_ops_unsynced(ops, snapshot, expect_lsn)?;
        self.wait_committed(lsn)?;
        Ok(lsn)
    }

    /// Waits (blocking) until commit `lsn` is durable, then publishes it.
    pub(crate) fn wait_committed(&self, lsn: u64) -> Result<()> {
        if self.config.durability == Durability::Full
            && let Err(e) = self.journal.wait_durable(lsn)
        {
            return Err(self.poison(e.to_string()));
        }
        self.publish();
        Ok(())
    }

    /// Polls (without blocking) for commit `lsn` becoming durable; once it
    /// is, publishes it.
    pub(crate) fn poll_committed(
        &self,
        lsn: u64,
        waker: &std::task::Waker,
    ) -> std::task::Poll<Result<()>> {
        use std::task::Poll;
        if self.config.durability == Durability::Full {
            match self.journal.poll_durable(lsn, waker) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.poison(e.to_string()))),
                Poll::Ready(Ok(())) => {}
            }
        }
        self.publish();
        Poll::Ready(Ok(()))
    }

    /// Tells the pool which unlinked pages are garbage: those no snapshot
    /// can read (`horizon`) and no running checkpoint contains.
    fn update_forget_horizon(&self, horizon: u64) {
        let capture = self.checkpoint_capture.load(Ordering::Acquire);
        self.pool.set_forget_through(horizon.min(capture));
    }

    /// Makes durable versions visible to new snapshots.
    fn publish(&self) {
        let durable = match self.config.durability {
            Durability::Full => self.journal.durable_lsn(),
            Durability::Relaxed => u64::MAX,
        };
        let mut s = self.snapshots();
        while s.unpublished.front().is_some_and(|v| v.lsn <= durable) {
            let v = s.unpublished.pop_front().expect("front exists");
            self.visible_lsn.store(v.lsn, Ordering::Release);
            s.visible = v;
        }
    }

    pub(crate) fn metrics_snapshot(&self) -> MetricsSnapshot {
        let m = &self.metrics;
        let (cached, dirty) = self.pool.usage();
        let (file_pages, free_pages, last_lsn) = {
            let w = self.writer();
            (
                w.alloc.high_water,
                w.alloc.free_count() as u64,
                w.latest.lsn,
            )
        };
        MetricsSnapshot {
            pool_hits: metrics::get(&m.pool_hits),
            pool_misses: metrics::get(&m.pool_misses),
            pool_evictions: metrics::get(&m.pool_evictions),
            pool_garbage_dropped: metrics::get(&m.pool_garbage_dropped),
            pool_pages_written: metrics::get(&m.pool_pages_written),
            pool_pages_cached: cached as u64,
            pool_pages_dirty: dirty as u64,
            pool_capacity_pages: self.pool.capacity_pages() as u64,
            journal_bytes: metrics::get(&m.journal_bytes),
            journal_records: metrics::get(&m.journal_records),
            journal_fsyncs: metrics::get(&m.journal_fsyncs),
            journal_bytes_saved_by_compression: metrics::get(&m.journal_bytes_saved_by_compression),
            commits: metrics::get(&m.commits),
            conflicts: metrics::get(&m.conflicts),
            rollbacks: metrics::get(&m.rollbacks),
            checkpoints: metrics::get(&m.checkpoints),
            checkpoint_failures: metrics::get(&m.checkpoint_failures),
            checkpoint_micros_last: metrics::get(&m.checkpoint_micros_last),
            checkpoint_micros_total: metrics::get(&m.checkpoint_micros_total),
            recovery_micros: metrics::get(&m.recovery_micros),
            recovery_records: metrics::get(&m.recovery_records),
            file_pages,
            free_pages,
            last_lsn,
            durable_lsn: self.journal.durable_lsn(),
            checkpoint_lsn: self.checkpoint_lsn.load(Ordering::Relaxed),
        }
    }
}
