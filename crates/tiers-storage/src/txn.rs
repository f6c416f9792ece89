//! Transactions: snapshot reads and buffered, atomically committed writes.
//!
//! Isolation is snapshot isolation through copy-on-write versions: a
//! transaction reads the version that was newest and durable when it began,
//! whatever commits after. A write transaction buffers its operations (the
//! write set); its own reads see them layered over its snapshot. At commit
//! the write set is checked against the write sets committed since the
//! snapshot (first committer wins: a key written by both is a
//! [`Error::Conflict`]), applied to pages, journaled as one record, and made
//! durable. Rolling back, or dropping the transaction, discards the write
//! set: nothing reached a page, so there is nothing to undo.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use crate::btree::{self, cursor::RangeIter};
use crate::catalog::{self, TreeInfo};
use crate::engine::{Shared, SnapshotGuard, Version};
use crate::error::{Error, Result};
use crate::fasthash::BytesMap;
use crate::hash;
use crate::metrics;
use crate::record::{Op, TreeKind};

mod normalize;
use normalize::normalize;

/// The three edits of a hash index.
#[derive(Clone, Copy)]
enum HashEdit {
    Insert,
    Add,
    Remove,
}

/// Longest tree name.
pub const MAX_TREE_NAME: usize = 255;

/// An entry yielded by range scans: (key, value).
pub type Entry = (Vec<u8>, Vec<u8>);

fn owned_bound(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Reads shared by both transaction kinds.
struct SnapshotReader {
    shared: Arc<Shared>,
    version: Arc<Version>,
    _guard: SnapshotGuard,
}

impl SnapshotReader {
    fn new(shared: Arc<Shared>, writer: bool) -> Self {
        Self::at(shared, writer, false)
    }

    fn at(shared: Arc<Shared>, writer: bool, undurable: bool) -> Self {
        let (version, guard) = shared.register(writer, undurable);
        SnapshotReader {
            shared,
            version,
            _guard: guard,
        }
    }

    fn info(&self, tree: &str) -> Result<Option<TreeInfo>> {
        let mut infos = self.version.infos.lock().expect("catalog cache poisoned");
        if let Some(info) = infos.get(tree) {
            return Ok(*info);
        }
        let info = catalog::lookup(&self.shared.pool, self.version.catalog_root, tree)?;
        if infos.len() < 1024 {
            infos.insert(tree.to_string(), info);
        }
        Ok(info)
    }

    fn need(&self, tree: &str, kind: TreeKind) -> Result<TreeInfo> {
        let info = self
            .info(tree)?
            .ok_or_else(|| Error::NoSuchTree(tree.to_string()))?;
        check_kind(tree, info.kind, kind)?;
        Ok(info)
    }

    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.need(tree, TreeKind::BTree)?.root {
            None => Ok(None),
            Some(root) => btree::get(&self.shared.pool, root, key),
        }
    }

    fn range(
        &self,
        root: Option<u64>,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        forward: bool,
    ) -> RangeIter<'_> {
        RangeIter::new(
            &self.shared.pool,
            root,
            owned_bound(lower),
            owned_bound(upper),
            forward,
        )
    }

    fn hash_get(&self, tree: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        let info = self.need(tree, TreeKind::Hash)?;
        match info.root {
            None => Ok(Vec::new()),
            Some(root) => hash::get(&self.shared.pool, &self.shared.hash_limits, root, key),
        }
    }
}

fn check_kind(tree: &str, actual: TreeKind, expected: TreeKind) -> Result<()> {
    if actual != expected {
        return Err(Error::WrongTreeKind {
            name: tree.to_string(),
            expected: expected.name(),
            actual: actual.name(),
        });
    }
    Ok(())
}

/// A read-only transaction: a consistent snapshot that never blocks and is
/// never blocked by writers.
pub struct ReadTxn {
    r: SnapshotReader,
}

impl ReadTxn {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ReadTxn {
            r: SnapshotReader::new(shared, false),
        }
    }

    /// The LSN of the last commit this snapshot includes.
    pub fn lsn(&self) -> u64 {
        self.r.version.lsn
    }

    /// The value of `key` in B+tree `tree`.
    pub fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.r.get(tree, key)
    }

    /// Entries of B+tree `tree` within `range`, in ascending key order.
    pub fn range<'a>(
        &'a self,
        tree: &str,
        range: impl RangeBounds<[u8]>,
    ) -> Result<impl Iterator<Item = Result<Entry>> + 'a> {
        let root = self.r.need(tree, TreeKind::BTree)?.root;
        Ok(self
            .r
            .range(root, range.start_bound(), range.end_bound(), true))
    }

    /// Entries of B+tree `tree` within `range`, in descending key order.
    pub fn range_rev<'a>(
        &'a self,
        tree: &str,
        range: impl RangeBounds<[u8]>,
    ) -> Result<impl Iterator<Item = Result<Entry>> + 'a> {
        let root = self.r.need(tree, TreeKind::BTree)?.root;
        Ok(self
            .r
            .range(root, range.start_bound(), range.end_bound(), false))
    }

    /// Every value stored under `key` in hash index `tree`.
    pub fn hash_get(&self, tree: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.r.hash_get(tree, key)
    }

    /// The catalog entry of a tree.
    pub fn tree(&self, name: &str) -> Result<Option<TreeInfo>> {
        self.r.info(name)
    }

    /// Every tree, by name.
    pub fn trees(&self) -> Result<Vec<(String, TreeInfo)>> {
        catalog::list(&self.r.shared.pool, self.r.version.catalog_root)
    }

    /// The version this transaction reads (snapshots of the engine).
    pub(crate) fn version(&self) -> &Arc<Version> {
        &self.r.version
    }

    /// Visits every (key, value) entry of hash index `tree`, bucket by bucket.
    pub(crate) fn hash_entries(&self, tree: &str, f: hash::KeyValueVisitor<'_>) -> Result<()> {
        match self.r.need(tree, TreeKind::Hash)?.root {
            Some(root) => crate::hash::for_each_entry(&self.r.shared.pool, root, f),
            None => Ok(()),
        }
    }
}

/// A position in a write transaction's write set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint {
    ops: usize,
    bytes: usize,
}

/// What a write transaction did to one tree, for its own reads.
#[derive(Debug, Default)]
struct Overlay {
    /// Key → the write set's position of its last put (None: deleted); the
    /// value stays in the write set, not copied here.
    btree: BTreeMap<Vec<u8>, Option<usize>>,
    /// Hash entries added (true) or removed (false), by key then value.
    hash: HashMap<Vec<u8>, BTreeMap<Vec<u8>, bool>>,
}

/// A read-write transaction.
///
/// Writes are appended to the write set and indexed for the transaction's
/// own reads only when it next reads, so a write-only transaction (a bulk
/// load) pays nothing for the index.
pub struct WriteTxn {
    r: SnapshotReader,
    ops: Vec<Op>,
    overlay: RefCell<BytesMap<String, Overlay>>,
    /// How many of `ops` the overlay reflects.
    indexed: Cell<usize>,
    /// The tree name of the last operation, shared by the next ones.
    last_name: Option<Arc<str>>,
    /// Trees this transaction created (Some) or dropped (None), kept
    /// eagerly so that validating a write never needs the overlay.
    ddl: HashMap<String, Option<TreeKind>>,
    /// For each B+tree written, the write-set position of the greatest key
    /// put or deleted: a read of a greater key cannot find it in the write
    /// set, so it skips the overlay (and an ascending bulk load, checking
    /// each new key for a duplicate, never builds the overlay at all).
    ceilings: Vec<(Arc<str>, usize)>,
    bytes: usize,
    finished: bool,
}

impl WriteTxn {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        WriteTxn {
            r: SnapshotReader::new(shared, true),
            ops: Vec::new(),
            overlay: RefCell::new(BytesMap::default()),
            indexed: Cell::new(0),
            last_name: None,
            ddl: HashMap::new(),
            ceilings: Vec::new(),
            bytes: 0,
            finished: false,
        }
    }

    /// The LSN of the snapshot this transaction reads.
    pub fn snapshot_lsn(&self) -> u64 {
        self.r.version.lsn
    }

    /// Moves the transaction to the newest visible snapshot, keeping its own
    /// writes (READ COMMITTED's per-statement snapshot). Commits at or below
    /// the new snapshot no longer count as conflicts, so a caller that
    /// refreshes must itself make sure nobody else wrote its keys meanwhile
    /// (the SQL layer holds row locks on every key it writes).
    /// It never moves back: a transaction already past the visible version
    /// (see [`WriteTxn::refresh_snapshot_latest`]) stays where it is.
    pub fn refresh_snapshot(&mut self) {
        if self.r.shared.visible_lsn() <= self.r.version.lsn {
            return; // already the newest: keep it (and its catalog cache)
        }
        self.r = SnapshotReader::new(self.r.shared.clone(), true);
    }

    /// Moves the transaction to the newest committed version, durable or
    /// not, keeping its own writes; returns the new snapshot's LSN.
    ///
    /// This is for a writer that takes over a row lock a committing
    /// transaction released before its commit was durable (early lock
    /// release): it must read that commit's writes, or it would overwrite
    /// them. What it reads may still be lost in a crash, so nothing derived
    /// from it may reach a client before [`crate::Engine::visible_at`] the
    /// returned LSN; its own commit comes later in the journal, so that
    /// commit's durability covers it too.
    pub fn refresh_snapshot_latest(&mut self) -> u64 {
        if self.r.shared.newest_lsn() > self.r.version.lsn {
            self.r = SnapshotReader::at(self.r.shared.clone(), true, true);
        }
        self.r.version.lsn
    }

    /// The tree's kind as this transaction sees it, or None if absent.
    fn kind(&self, tree: &str) -> Result<Option<TreeKind>> {
        if let Some(kind) = self.ddl.get(tree) {
            return Ok(*kind);
        }
        Ok(self.r.info(tree)?.map(|i| i.kind))
    }

    /// The shared name for operations on `tree` (one allocation per run of
    /// operations on the same tree, not one per operation).
    fn name(&mut self, tree: &str) -> Arc<str> {
        match &self.last_name {
            Some(name) if &**name == tree => name.clone(),
            _ => {
                let name: Arc<str> = Arc::from(tree);
                self.last_name = Some(name.clone());
                name
            }
        }
    }

    /// Brings the overlay up to date with the write set.
    fn index(&self) {
        let mut overlay = self.overlay.borrow_mut();
        // The tree's overlay, without allocating its name when it exists.
        fn of<'a>(overlay: &'a mut BytesMap<String, Overlay>, tree: &str) -> &'a mut Overlay {
            if !overlay.contains_key(tree) {
                overlay.insert(tree.to_string(), Overlay::default());
            }
            overlay.get_mut(tree).expect("just inserted")
        }
        let start = self.indexed.get();
        for (at, op) in self.ops.iter().enumerate().skip(start) {
            match op {
                Op::Put { tree, key, .. } => {
                    of(&mut overlay, tree).btree.insert(key.clone(), Some(at));
                }
                Op::Delete { tree, key } => {
                    of(&mut overlay, tree).btree.insert(key.clone(), None);
                }
                Op::HashInsert { tree, key, value }
                | Op::HashAdd { tree, key, value }
                | Op::HashRemove { tree, key, value } => {
                    let added = !matches!(op, Op::HashRemove { .. });
                    let o = of(&mut overlay, tree);
                    o.hash
                        .entry(key.clone())
                        .or_default()
                        .insert(value.clone(), added);
                }
                // Creating or dropping a tree hides its snapshot contents
                // and everything written to it before.
                Op::Create { tree, .. } | Op::Drop { tree } => {
                    overlay.insert(tree.to_string(), Overlay::default());
                }
            }
        }
        self.indexed.set(self.ops.len());
    }

    /// The value of the put at position `at` of the write set.
    fn put_value(&self, at: usize) -> &[u8] {
        match &self.ops[at] {
            Op::Put { value, .. } => value,
            _ => unreachable!("the overlay indexes puts only"),
        }
    }

    fn need(&self, tree: &str, kind: TreeKind) -> Result<()> {
        let actual = self
            .kind(tree)?
            .ok_or_else(|| Error::NoSuchTree(tree.to_string()))?;
        check_kind(tree, actual, kind)
    }

    /// Whether reads of `tree` fall through to the snapshot.
    fn base_visible(&self, tree: &str) -> bool {
        !self.ddl.contains_key(tree)
    }

    fn record(&mut self, op: Op) -> Result<()> {
        let size = op.size();
        let limit = self.r.shared.config.max_write_set_bytes;
        if self.bytes + size > limit {
            return Err(Error::TooLarge {
                what: "transaction write set",
                len: self.bytes + size,
                max: limit,
            });
        }
        self.bytes += size;
        self.ops.push(op);
        raise_ceiling(&mut self.ceilings, &self.ops, self.ops.len() - 1);
        Ok(())
    }

    /// Whether `key` is greater than every key this transaction wrote to
    /// B+tree `tree`, so the write set has nothing to say about it.
    fn above_writes(&self, tree: &str, key: &[u8]) -> bool {
        match self.ceilings.iter().rev().find(|(t, _)| **t == *tree) {
            None => true,
            Some(&(_, top)) => btree_key(&self.ops[top]).is_some_and(|k| key > k),
        }
    }

    /// Creates an empty tree of `kind`.
    pub fn create_tree(&mut self, name: &str, kind: TreeKind) -> Result<()> {
        if name.is_empty() || name.len() > MAX_TREE_NAME || name.contains('\0') {
            return Err(Error::Config(format!(
                "tree name {name:?} must be 1 to {MAX_TREE_NAME} bytes without NUL"
            )));
        }
        if self.kind(name)?.is_some() {
            return Err(Error::TreeExists(name.to_string()));
        }
        let shared_name = self.name(name);
        self.record(Op::Create {
            tree: shared_name,
            kind,
        })?;
        self.ddl.insert(name.to_string(), Some(kind));
        Ok(())
    }

    /// Drops a tree and everything in it.
    pub fn drop_tree(&mut self, name: &str) -> Result<()> {
        if self.kind(name)?.is_none() {
            return Err(Error::NoSuchTree(name.to_string()));
        }
        let shared_name = self.name(name);
        self.record(Op::Drop { tree: shared_name })?;
        self.ddl.insert(name.to_string(), None);
        Ok(())
    }

    /// Inserts or replaces `key` in B+tree `tree`.
    pub fn put(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.need(tree, TreeKind::BTree)?;
        let max = self.r.shared.limits.max_key;
        if key.len() > max {
            return Err(Error::TooLarge {
                what: "key",
                len: key.len(),
                max,
            });
        }
        if value.len() > u32::MAX as usize {
            return Err(Error::TooLarge {
                what: "value",
                len: value.len(),
                max: u32::MAX as usize,
            });
        }
        let name = self.name(tree);
        self.record(Op::Put {
            tree: name,
            key: key.to_vec(),
            value: value.to_vec(),
        })?;
        Ok(())
    }

    /// Deletes `key` from B+tree `tree` (no effect if absent).
    pub fn delete(&mut self, tree: &str, key: &[u8]) -> Result<()> {
        self.need(tree, TreeKind::BTree)?;
        let name = self.name(tree);
        self.record(Op::Delete {
            tree: name,
            key: key.to_vec(),
        })?;
        Ok(())
    }

    /// Adds (key, value) to hash index `tree` (no effect if present).
    pub fn hash_insert(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.hash_op(tree, key, value, HashEdit::Insert)
    }

    /// Removes (key, value) from hash index `tree` (no effect if absent).
    pub fn hash_remove(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.hash_op(tree, key, value, HashEdit::Remove)
    }

    /// Adds (key, value) to hash index `tree`, which the caller guarantees
    /// holds no such pair (an index whose values are unique row keys). It
    /// skips the search for the pair, so adding costs the same however many
    /// values the key already has; a pair added twice is held twice.
    pub fn hash_add(&mut self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.hash_op(tree, key, value, HashEdit::Add)
    }

    fn hash_op(&mut self, tree: &str, key: &[u8], value: &[u8], edit: HashEdit) -> Result<()> {
        self.need(tree, TreeKind::Hash)?;
        let max = self.r.shared.hash_limits.max_entry;
        if key.len() + value.len() > max {
            return Err(Error::TooLarge {
                what: "hash index entry (key plus value)",
                len: key.len() + value.len(),
                max,
            });
        }
        let (tree_s, key_v, value_v) = (self.name(tree), key.to_vec(), value.to_vec());
        self.record(match edit {
            HashEdit::Insert => Op::HashInsert {
                tree: tree_s,
                key: key_v,
                value: value_v,
            },
            HashEdit::Add => Op::HashAdd {
                tree: tree_s,
                key: key_v,
                value: value_v,
            },
            HashEdit::Remove => Op::HashRemove {
                tree: tree_s,
                key: key_v,
                value: value_v,
            },
        })?;
        Ok(())
    }

    /// The value of `key` in B+tree `tree`, including this transaction's writes.
    pub fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.need(tree, TreeKind::BTree)?;
        if !self.above_writes(tree, key) {
            self.index();
            if let Some(at) = self
                .overlay
                .borrow()
                .get(tree)
                .and_then(|o| o.btree.get(key).copied())
            {
                return Ok(at.map(|at| self.put_value(at).to_vec()));
            }
        }
        if !self.base_visible(tree) {
            return Ok(None);
        }
        self.r.get(tree, key)
    }

    /// Every value under `key` in hash index `tree`, including this transaction's writes.
    pub fn hash_get(&self, tree: &str, key: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.need(tree, TreeKind::Hash)?;
        let mut values = if self.base_visible(tree) {
            self.r.hash_get(tree, key)?
        } else {
            Vec::new()
        };
        self.index();
        if let Some(changes) = self
            .overlay
            .borrow()
            .get(tree)
            .and_then(|o| o.hash.get(key))
        {
            values.retain(|v| changes.get(v) != Some(&false));
            for (v, added) in changes {
                if *added && !values.contains(v) {
                    values.push(v.clone());
                }
            }
        }
        Ok(values)
    }

    fn merged<'a>(
        &'a self,
        tree: &str,
        range: impl RangeBounds<[u8]>,
        forward: bool,
    ) -> Result<MergeIter<'a>> {
        self.need(tree, TreeKind::BTree)?;
        let (lo, hi) = (range.start_bound(), range.end_bound());
        let base = if self.base_visible(tree) {
            let root = self.r.info(tree)?.and_then(|i| i.root);
            Some(self.r.range(root, lo, hi, forward))
        } else {
            None
        };
        self.index();
        // BTreeMap::range panics on an inverted or empty range; such a range
        // simply holds nothing.
        let empty = match (lo, hi) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
            _ => false,
        };
        let mut local: Vec<LocalWrite> = match self.overlay.borrow().get(tree) {
            _ if empty => Vec::new(),
            Some(o) => o
                .btree
                .range::<[u8], _>((lo, hi))
                .map(|(k, at)| (k.clone(), at.map(|at| self.put_value(at).to_vec())))
                .collect(),
            None => Vec::new(),
        };
        if !forward {
            local.reverse();
        }
        Ok(MergeIter {
            base,
            base_next: None,
            local: local.into_iter().peekable(),
            forward,
        })
    }

    /// Entries of B+tree `tree` within `range`, ascending, including this transaction's writes.
    pub fn range<'a>(
        &'a self,
        tree: &str,
        range: impl RangeBounds<[u8]>,
    ) -> Result<impl Iterator<Item = Result<Entry>> + 'a> {
        self.merged(tree, range, true)
    }

    /// Entries of B+tree `tree` within `range`, descending, including this transaction's writes.
    pub fn range_rev<'a>(
        &'a self,
        tree: &str,
        range: impl RangeBounds<[u8]>,
    ) -> Result<impl Iterator<Item = Result<Entry>> + 'a> {
        self.merged(tree, range, false)
    }

    /// Marks the current end of the write set, for [`WriteTxn::rollback_to`]
    /// (statement-level atomicity and SQL savepoints).
    pub fn savepoint(&self) -> Savepoint {
        Savepoint {
            ops: self.ops.len(),
            bytes: self.bytes,
        }
    }

    /// Discards every change made since `savepoint`; earlier ones stay.
    pub fn rollback_to(&mut self, savepoint: Savepoint) {
        if savepoint.ops >= self.ops.len() {
            return;
        }
        self.ops.truncate(savepoint.ops);
        self.bytes = savepoint.bytes;
        self.overlay.borrow_mut().clear();
        self.indexed.set(0);
        self.ddl.clear();
        self.ceilings.clear();
        for at in 0..self.ops.len() {
            raise_ceiling(&mut self.ceilings, &self.ops, at);
        }
        for op in &self.ops {
            match op {
                Op::Create { tree, kind } => {
                    self.ddl.insert(tree.to_string(), Some(*kind));
                }
                Op::Drop { tree } => {
                    self.ddl.insert(tree.to_string(), None);
                }
                _ => {}
            }
        }
    }

    /// The operations buffered so far.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Commits atomically and durably (per the configured durability).
    /// Returns the commit's LSN (the snapshot's LSN if nothing was written).
    pub fn commit(mut self) -> Result<u64> {
        self.finished = true;
        if self.ops.is_empty() {
            return Ok(self.r.version.lsn);
        }
        if self.r.shared.config.replicated {
            return self.commit_pending()?.wait();
        }
        let ops = normalize(std::mem::take(&mut self.ops));
        self.r
            .shared
            .commit_ops(ops, Some(self.r.version.lsn), None)
    }

    /// Commits like [`WriteTxn::commit`] but returns as soon as the commit
    /// is applied and journaled, before its record is durable. The commit
    /// is invisible to other transactions, and must not be acknowledged,
    /// until the returned [`PendingCommit`] completes: await it (it never
    /// blocks a thread; the engine's journal flusher fsyncs for it), or
    /// [`PendingCommit::wait`] for it. Concurrent pending commits share fsyncs.
    pub fn commit_pending(mut self) -> Result<PendingCommit> {
        self.finished = true;
        if self.ops.is_empty() {
            return Ok(PendingCommit {
                shared: None,
                lsn: self.r.version.lsn,
                proposal: None,
            });
        }
        let ops = normalize(std::mem::take(&mut self.ops));
        if self.r.shared.config.replicated {
            let (_, slot) = self.r.shared.propose(ops, self.r.version.lsn)?;
            return Ok(PendingCommit {
                shared: None,
                lsn: 0,
                proposal: Some(slot),
            });
        }
        let lsn = self
            .r
            .shared
            .commit_ops_unsynced(ops, Some(self.r.version.lsn), None)?;
        Ok(PendingCommit {
            shared: Some(self.r.shared.clone()),
            lsn,
            proposal: None,
        })
    }

    /// Discards every buffered change.
    pub fn rollback(mut self) {
        self.finished = true;
        metrics::inc(&self.r.shared.metrics.rollbacks);
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if !self.finished {
            metrics::inc(&self.r.shared.metrics.rollbacks);
        }
    }
}

/// A transaction's own write to a key: the new value, or None for a delete.
type LocalWrite = (Vec<u8>, Option<Vec<u8>>);

/// Merges a transaction's own writes into a snapshot range scan.
struct MergeIter<'a> {
    base: Option<RangeIter<'a>>,
    base_next: Option<Entry>,
    local: std::iter::Peekable<std::vec::IntoIter<LocalWrite>>,
    forward: bool,
}

impl MergeIter<'_> {
    fn fill_base(&mut self) -> Result<()> {
        if self.base_next.is_none()
            && let Some(base) = &mut self.base
        {
            match base.next() {
                Some(e) => self.base_next = Some(e?),
                None => self.base = None,
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Entry>> {
        loop {
            self.fill_base()?;
            let take_local = match (&self.base_next, self.local.peek()) {
                (None, None) => return Ok(None),
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((bk, _)), Some((lk, _))) => {
                    if bk == lk {
                        self.base_next = None;
                        true
                    } else {
                        (lk < bk) == self.forward
                    }
                }
            };
            if take_local {
                let (k, v) = self.local.next().expect("peeked");
                match v {
                    Some(v) => return Ok(Some((k, v))),
                    None => continue,
                }
            }
            return Ok(self.base_next.take());
        }
    }
}

impl Iterator for MergeIter<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

/// A commit that is applied and journaled but not yet known durable (from
/// [`WriteTxn::commit_pending`]). As a future it resolves to the commit's
/// LSN once the journal holds it durably and the commit is visible.
/// Dropping it does not undo the commit: it still becomes durable with the
/// next fsync, it is just not waited for.
#[must_use = "a pending commit must be waited for before it is acknowledged"]
pub struct PendingCommit {
    /// The engine to wait on; None when there was nothing to commit, or
    /// for a proposal (its slot says when it settles).
    shared: Option<Arc<Shared>>,
    /// 0 for a proposal (its log index is known only once committed).
    lsn: u64,
    /// Replicated mode: where the cluster reports the proposal's outcome.
    proposal: Option<Arc<crate::engine::ProposalSlot>>,
}

impl PendingCommit {
    pub(crate) fn new(shared: Arc<Shared>, lsn: u64) -> PendingCommit {
        PendingCommit {
            shared: Some(shared),
            lsn,
            proposal: None,
        }
    }

    /// The commit's LSN (0 for a replicated commit still in flight).
    pub fn lsn(&self) -> u64 {
        self.lsn
    }

    /// Whether this is a commit proposed to a cluster.
    pub fn is_proposal(&self) -> bool {
        self.proposal.is_some()
    }

    /// Runs `then` once the commit's outcome is known (a replicated
    /// commit's: committed and visible, or failed); at once otherwise.
    pub fn when_settled(&self, then: Box<dyn FnOnce() + Send>) {
        match &self.proposal {
            Some(slot) => slot.when_settled(then),
            None => then(),
        }
    }

    /// Blocks until the commit is durable and visible.
    pub fn wait(self) -> Result<u64> {
        if let Some(slot) = &self.proposal {
            return slot.wait();
        }
        if let Some(shared) = &self.shared {
            shared.wait_committed(self.lsn)?;
        }
        Ok(self.lsn)
    }
}

impl std::future::Future for PendingCommit {
    type Output = Result<u64>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<u64>> {
        if let Some(slot) = &self.proposal {
            return slot.poll(cx.waker());
        }
        let lsn = self.lsn;
        match &self.shared {
            None => std::task::Poll::Ready(Ok(lsn)),
            Some(shared) => shared.poll_committed(lsn, cx.waker()).map_ok(|()| lsn),
        }
    }
}

/// The key of a B+tree operation (a put or a delete).
fn btree_key(op: &Op) -> Option<&[u8]> {
    match op {
        Op::Put { key, .. } | Op::Delete { key, .. } => Some(key),
        _ => None,
    }
}

/// Records the write-set operation at `at` in its tree's ceiling (see
/// `WriteTxn::ceilings`).
fn raise_ceiling(ceilings: &mut Vec<(Arc<str>, usize)>, ops: &[Op], at: usize) {
    let (Op::Put { tree, key, .. } | Op::Delete { tree, key }) = &ops[at] else {
        return;
    };
    match ceilings
        .iter_mut()
        .rev()
        .find(|(t, _)| Arc::ptr_eq(t, tree) || **t == **tree)
    {
        Some((_, top)) => {
            if btree_key(&ops[*top]).is_none_or(|k| key.as_slice() > k) {
                *top = at;
            }
        }
        None => ceilings.push((tree.clone(), at)),
    }
}
