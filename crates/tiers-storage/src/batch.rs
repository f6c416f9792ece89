//! A commit batch: the pages one commit creates, copy-on-write.
//!
//! Applying a write set never modifies a committed page. The first time a
//! commit touches a page it decodes it into a private copy under a newly
//! allocated page number and retires the old number; later touches in the
//! same commit edit the copy in place. When the commit is done, the copies
//! are encoded, stamped with the commit's LSN, sealed with their checksums,
//! and installed in the buffer pool as dirty pages. A failed commit just
//! drops its copies and returns their page numbers: committed state was never
//! touched, which is why aborts need no undo.

use std::sync::Arc;

use crate::alloc::Allocator;
use crate::btree::node::{self, Branch, BranchView, Leaf, LeafView};
use crate::error::Result;
use crate::hash::{Bucket, HashHeader};
use crate::page::{self, PageBuf, PageKind, PageMap, PageNo, PageSet};
use crate::pool::BufferPool;

/// A page owned by the batch, decoded for editing.
#[derive(Debug, Clone)]
pub(crate) enum Dirty {
    Leaf(Leaf),
    /// A leaf copied byte for byte and edited in place (see `btree::raw_leaf`).
    LeafRaw(PageBuf),
    Branch(Branch),
    /// A branch copied byte for byte, whose only edits so far are child
    /// pointers. Copy-on-write of a path changes one pointer per branch, so
    /// most branches never need decoding (hundreds of keys each).
    BranchRaw(PageBuf),
    Overflow {
        next: PageNo,
        data: Vec<u8>,
    },
    HashHeader(HashHeader),
    HashDir(Vec<PageNo>),
    Bucket(Bucket),
}

impl Dirty {
    fn kind(&self) -> PageKind {
        match self {
            Dirty::Leaf(_) | Dirty::LeafRaw(_) => PageKind::Leaf,
            Dirty::Branch(_) | Dirty::BranchRaw(_) => PageKind::Branch,
            Dirty::Overflow { .. } => PageKind::Overflow,
            Dirty::HashHeader(_) => PageKind::HashHeader,
            Dirty::HashDir(_) => PageKind::HashDir,
            Dirty::Bucket(_) => PageKind::HashBucket,
        }
    }
}

/// The pages a finished batch produced.
pub(crate) struct Sealed {
    pub pages: Vec<(PageNo, Arc<PageBuf>)>,
    pub retired: Vec<PageNo>,
}

pub(crate) struct Batch<'a> {
    pub pool: &'a BufferPool,
    pub alloc: &'a mut Allocator,
    pub page_size: usize,
    pub lsn: u64,
    dirty: PageMap<Dirty>,
    allocated: PageSet,
    retired: Vec<PageNo>,
}

impl<'a> Batch<'a> {
    pub fn new(pool: &'a BufferPool, alloc: &'a mut Allocator, page_size: usize, lsn: u64) -> Self {
        Batch {
            pool,
            alloc,
            page_size,
            lsn,
            dirty: PageMap::default(),
            allocated: PageSet::default(),
            retired: Vec::new(),
        }
    }

    /// A new page holding `content`.
    pub fn alloc(&mut self, content: Dirty) -> PageNo {
        let no = self.alloc.allocate();
        self.allocated.insert(no);
        self.dirty.insert(no, content);
        no
    }

    /// Unlinks a page: a page made by this batch is returned at once, a
    /// committed one is retired (reusable once no snapshot or checkpoint needs it).
    pub fn free(&mut self, no: PageNo) {
        if self.allocated.remove(&no) {
            self.dirty.remove(&no);
            self.alloc.release_unused(no);
        } else {
            self.retired.push(no);
        }
    }

    /// The batch's copy of page `no`, if it owns one.
    pub fn owned(&self, no: PageNo) -> Option<&Dirty> {
        self.dirty.get(&no)
    }

    /// Mutable access to a page the batch owns. Panics if it does not: callers
    /// own a page (through [`Batch::own`]) before editing it.
    pub fn get_mut(&mut self, no: PageNo) -> &mut Dirty {
        self.dirty
            .get_mut(&no)
            .expect("batch edits only pages it owns")
    }

    /// Replaces the content of an owned page.
    pub fn set(&mut self, no: PageNo, content: Dirty) {
        debug_assert!(self.allocated.contains(&no));
        self.dirty.insert(no, content);
    }

    /// Reads a committed page through the buffer pool.
    pub fn read(&self, no: PageNo, want: Option<PageKind>) -> Result<Arc<PageBuf>> {
        self.pool.get(no, want)
    }

    /// Makes page `no` editable: returns the number of the batch's copy,
    /// copying (and retiring `no`) on first touch.
    pub fn own(&mut self, no: PageNo) -> Result<PageNo> {
        if self.allocated.contains(&no) {
            return Ok(no);
        }
        let (buf, sound) = self.pool.get_with_soundness(no, None)?;
        // Branches and leaves are copied raw; they are validated first so
        // later raw edits cannot run into a malformed page. A page this
        // engine built (or one checked before) is skipped in release builds;
        // debug builds, and so the tests, check every one.
        let needs_check = cfg!(debug_assertions) || !sound;
        let decoded = match page::page_kind(&buf) {
            Some(PageKind::Branch) => {
                if needs_check {
                    BranchView::new(&buf, self.pool.path(), no)?.check()?;
                    self.pool.mark_sound(no, &buf);
                }
                Dirty::BranchRaw(self.copy_of(&buf))
            }
            Some(PageKind::Leaf) => {
                if needs_check {
                    crate::btree::raw_leaf::check(&buf, self.pool.path(), no)?;
                    self.pool.mark_sound(no, &buf);
                }
                Dirty::LeafRaw(self.copy_of(&buf))
            }
            _ => self.decode(no)?,
        };
        self.retired.push(no);
        Ok(self.alloc(decoded))
    }

    /// A private copy of a committed page, in a recycled buffer if one is spare.
    fn copy_of(&self, page: &[u8]) -> PageBuf {
        debug_assert_eq!(page.len(), self.page_size);
        let mut copy = self.pool.page_buffer();
        copy.copy_from_slice(page);
        copy
    }

    /// Decodes a committed page (or clones the batch's copy).
    pub fn decode(&self, no: PageNo) -> Result<Dirty> {
        if let Some(d) = self.dirty.get(&no) {
            if let Dirty::BranchRaw(raw) = d {
                return Ok(Dirty::Branch(
                    BranchView::new(raw, self.pool.path(), no)?.decode()?,
                ));
            }
            if let Dirty::LeafRaw(raw) = d {
                return Ok(Dirty::Leaf(
                    LeafView::new(raw, self.pool.path(), no)?.decode()?,
                ));
            }
            return Ok(d.clone());
        }
        let buf = self.read(no, None)?;
        let path = self.pool.path();
        let kind = page::page_kind(&buf).expect("checked by the pool");
        Ok(match kind {
            PageKind::Leaf => Dirty::Leaf(LeafView::new(&buf, path, no)?.decode()?),
            PageKind::Branch => Dirty::Branch(BranchView::new(&buf, path, no)?.decode()?),
            PageKind::Overflow => {
                let (next, data) = node::overflow_view(&buf, path, no)?;
                Dirty::Overflow {
                    next,
                    data: data.to_vec(),
                }
            }
            PageKind::HashHeader => Dirty::HashHeader(HashHeader::decode(&buf, path, no)?),
            PageKind::HashDir => Dirty::HashDir(crate::hash::decode_dir(&buf, path, no)?),
            PageKind::HashBucket => Dirty::Bucket(Bucket::decode(&buf, path, no)?),
            PageKind::Meta | PageKind::FreeList => {
                return Err(page::corrupt(
                    path,
                    no,
                    format!("a tree points at a {} page", kind.name()),
                ));
            }
        })
    }

    /// Encodes, stamps and seals every page of the batch.
    pub fn seal(self) -> Sealed {
        let mut pages = Vec::with_capacity(self.dirty.len());
        for (no, content) in self.dirty {
            let kind = content.kind();
            let mut buf = match content {
                // A page copied byte for byte becomes the new page itself:
                // only its header changes.
                Dirty::BranchRaw(mut raw) | Dirty::LeafRaw(mut raw) => {
                    page::stamp(&mut raw, no, kind, self.lsn);
                    raw
                }
                content => {
                    let mut buf = self.pool.page_buffer();
                    page::reset_page(&mut buf, no, kind, self.lsn);
                    match &content {
                        Dirty::Leaf(l) => l.encode(&mut buf),
                        Dirty::Branch(b) => b.encode(&mut buf),
                        Dirty::BranchRaw(_) | Dirty::LeafRaw(_) => unreachable!("handled above"),
                        Dirty::Overflow { next, data } => {
                            node::encode_overflow(&mut buf, *next, data)
                        }
                        Dirty::HashHeader(h) => h.encode(&mut buf),
                        Dirty::HashDir(d) => crate::hash::encode_dir(&mut buf, d),
                        Dirty::Bucket(b) => b.encode(&mut buf),
                    }
                    buf
                }
            };
            page::seal(&mut buf);
            pages.push((no, Arc::new(buf)));
        }
        pages.sort_unstable_by_key(|(no, _)| *no);
        Sealed {
            pages,
            retired: self.retired,
        }
    }

    /// Gives back every page this batch allocated; committed state is untouched.
    pub fn abort(self) {
        for no in self.allocated {
            self.alloc.release_unused(no);
        }
    }
}
