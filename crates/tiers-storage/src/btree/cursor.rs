//! Cursors: ordered iteration over a committed B+tree in both directions.
//!
//! A cursor keeps the path from the root to its leaf as a stack of pinned
//! pages and indexes, so moving to the neighbouring leaf climbs only as far
//! as needed. Pages are immutable once committed, so the cursor needs no
//! latches and is never disturbed by concurrent commits.

use std::ops::Bound;
use std::sync::Arc;

use super::node::{self, BranchView, LeafView};
use crate::error::Result;
use crate::page::{PageBuf, PageKind, PageNo};
use crate::pool::BufferPool;

struct Level {
    no: PageNo,
    page: Arc<PageBuf>,
    idx: usize,
    count: usize,
}

/// A position in a tree.
pub(crate) struct Cursor<'a> {
    pool: &'a BufferPool,
    stack: Vec<Level>,
    valid: bool,
}

impl<'a> Cursor<'a> {
    pub fn new(pool: &'a BufferPool) -> Self {
        Cursor {
            pool,
            stack: Vec::new(),
            valid: false,
        }
    }

    fn push(&mut self, no: PageNo) -> Result<bool> {
        if self.stack.len() > 64 {
            return Err(crate::page::corrupt(
                self.pool.path(),
                no,
                "tree deeper than 64 levels",
            ));
        }
        let page = self.pool.get(no, Some(PageKind::Branch))?;
        let leaf = node::is_leaf(&page);
        let count = if leaf {
            LeafView::new(&page, self.pool.path(), no)?.count
        } else {
            BranchView::new(&page, self.pool.path(), no)?.count + 1
        };
        self.stack.push(Level {
            no,
            page,
            idx: 0,
            count,
        });
        Ok(leaf)
    }

    fn child(&self) -> Result<PageNo> {
        let top = self.stack.last().expect("cursor stack");
        BranchView::new(&top.page, self.pool.path(), top.no)?.child(top.idx)
    }

    /// Descends from the top of the stack to a leaf, always taking the first
    /// (or last) child.
    fn descend_edge(&mut self, last: bool) -> Result<()> {
        loop {
            let top = self.stack.last_mut().expect("cursor stack");
            if last {
                top.idx = top.count.saturating_sub(1);
            } else {
                top.idx = 0;
            }
            let leaf = {
                let top = self.stack.last().expect("cursor stack");
                crate::page::page_kind(&top.page) == Some(PageKind::Leaf)
            };
            if leaf {
                return Ok(());
            }
            let child = self.child()?;
            self.push(child)?;
        }
    }

    /// Positions at the first entry `>= key`.
    pub fn seek(&mut self, root: PageNo, key: &[u8]) -> Result<()> {
        self.stack.clear();
        let mut no = root;
        loop {
            let leaf = self.push(no)?;
            let top = self.stack.last_mut().expect("pushed");
            if leaf {
                let view = LeafView::new(&top.page, self.pool.path(), top.no)?;
                top.idx = match view.search(key)? {
                    Ok(i) | Err(i) => i,
                };
                break;
            }
            let view = BranchView::new(&top.page, self.pool.path(), top.no)?;
            top.idx = view.child_index(key)?;
            no = view.child(top.idx)?;
        }
        self.valid = true;
        if self.stack.last().is_some_and(|l| l.idx >= l.count) {
            self.step(true)?;
        }
        Ok(())
    }

    /// Positions at the first (or last) entry.
    pub fn seek_edge(&mut self, root: PageNo, last: bool) -> Result<()> {
        self.stack.clear();
        self.push(root)?;
        self.descend_edge(last)?;
        let top = self.stack.last().expect("leaf");
        self.valid = top.count > 0;
        Ok(())
    }

    /// Positions at the last entry `<= key` (or `< key` when `exclusive`).
    pub fn seek_for_prev(&mut self, root: PageNo, key: &[u8], exclusive: bool) -> Result<()> {
        self.seek(root, key)?;
        if !self.valid {
            return self.seek_edge(root, true);
        }
        let at = self.key()?;
        if at.as_slice() > key || (exclusive && at.as_slice() == key) {
            self.step(false)?;
        }
        Ok(())
    }

    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current key.
    pub fn key(&self) -> Result<Vec<u8>> {
        let top = self.stack.last().expect("valid cursor");
        Ok(LeafView::new(&top.page, self.pool.path(), top.no)?
            .key(top.idx)?
            .to_vec())
    }

    /// The current entry with its value read in full.
    pub fn entry(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        let top = self.stack.last().expect("valid cursor");
        let view = LeafView::new(&top.page, self.pool.path(), top.no)?;
        let (k, v) = view.entry(top.idx)?;
        Ok((k.to_vec(), super::read_value(self.pool, v)?))
    }

    /// Moves to the next (`forward`) or previous entry.
    pub fn step(&mut self, forward: bool) -> Result<()> {
        {
            let top = self.stack.last_mut().expect("cursor stack");
            if forward && top.idx + 1 < top.count {
                top.idx += 1;
                return Ok(());
            }
            if !forward && top.idx > 0 && top.idx <= top.count {
                top.idx -= 1;
                return Ok(());
            }
        }
        // Climb to the nearest ancestor with a neighbour in that direction.
        loop {
            self.stack.pop();
            let Some(top) = self.stack.last_mut() else {
                self.valid = false;
                return Ok(());
            };
            if forward && top.idx + 1 < top.count {
                top.idx += 1;
                break;
            }
            if !forward && top.idx > 0 {
                top.idx -= 1;
                break;
            }
        }
        let child = self.child()?;
        self.push(child)?;
        self.descend_edge(!forward)?;
        let top = self.stack.last().expect("leaf");
        if top.count == 0 {
            // Only an empty root leaf has no entries; a non-root one is corruption.
            return Err(crate::page::corrupt(
                self.pool.path(),
                top.no,
                "empty non-root leaf",
            ));
        }
        Ok(())
    }
}

/// An iterator over a key range of a committed tree, in either direction.
pub(crate) struct RangeIter<'a> {
    cursor: Cursor<'a>,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    forward: bool,
    started: bool,
    root: Option<PageNo>,
    done: bool,
}

impl<'a> RangeIter<'a> {
    pub fn new(
        pool: &'a BufferPool,
        root: Option<PageNo>,
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        forward: bool,
    ) -> Self {
        RangeIter {
            cursor: Cursor::new(pool),
            lower,
            upper,
            forward,
            started: false,
            root,
            done: root.is_none(),
        }
    }

    fn start(&mut self) -> Result<()> {
        let root = self.root.expect("started only with a root");
        if self.forward {
            match &self.lower {
                Bound::Unbounded => self.cursor.seek_edge(root, false)?,
                Bound::Included(k) => self.cursor.seek(root, k)?,
                Bound::Excluded(k) => {
                    let k = k.clone();
                    self.cursor.seek(root, &k)?;
                    if self.cursor.valid() && self.cursor.key()? == k {
                        self.cursor.step(true)?;
                    }
                }
            }
        } else {
            match &self.upper {
                Bound::Unbounded => self.cursor.seek_edge(root, true)?,
                Bound::Included(k) => {
                    let k = k.clone();
                    self.cursor.seek_for_prev(root, &k, false)?
                }
                Bound::Excluded(k) => {
                    let k = k.clone();
                    self.cursor.seek_for_prev(root, &k, true)?
                }
            }
        }
        Ok(())
    }

    fn in_range(&self, key: &[u8]) -> bool {
        if self.forward {
            match &self.upper {
                Bound::Unbounded => true,
                Bound::Included(u) => key <= u.as_slice(),
                Bound::Excluded(u) => key < u.as_slice(),
            }
        } else {
            match &self.lower {
                Bound::Unbounded => true,
                Bound::Included(l) => key >= l.as_slice(),
                Bound::Excluded(l) => key > l.as_slice(),
            }
        }
    }

    fn next_entry(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        if !self.started {
            self.started = true;
            self.start()?;
        } else {
            self.cursor.step(self.forward)?;
        }
        if !self.cursor.valid() {
            self.done = true;
            return Ok(None);
        }
        let (k, v) = self.cursor.entry()?;
        if !self.in_range(&k) {
            self.done = true;
            return Ok(None);
        }
        Ok(Some((k, v)))
    }
}

impl Iterator for RangeIter<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
