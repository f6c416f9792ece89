//! Page allocation and the free-page list.
//!
//! Because committed pages are never overwritten (copy-on-write), a page a
//! commit unlinks stays readable until two things are true: no reader's
//! snapshot can still reach it, and a checkpoint that no longer references it
//! is durable (recovery starts from the last checkpoint's tree, so that tree's
//! pages must survive until the next one). Until then it waits in `pending`,
//! keyed by the LSN of the commit that freed it.

use std::collections::{BTreeMap, BTreeSet};

use crate::page::PageNo;

/// First page number available for data (pages 0 and 1 are the meta slots).
pub const FIRST_DATA_PAGE: PageNo = 2;

/// The allocator, owned by the writer (guarded by the commit lock).
#[derive(Debug, Default)]
pub(crate) struct Allocator {
    /// Number of pages in the data file: the next page appended.
    pub high_water: PageNo,
    /// Pages that may be reused right away.
    free_now: BTreeSet<PageNo>,
    /// Pages unlinked by the commit at each LSN, not yet reusable.
    pending: BTreeMap<u64, Vec<PageNo>>,
    /// Pages holding the last durable checkpoint's free list.
    pub checkpoint_pages: Vec<PageNo>,
}

impl Allocator {
    /// An allocator for a file of `high_water` pages with `free` reusable.
    pub fn new(high_water: PageNo, free: impl IntoIterator<Item = PageNo>) -> Allocator {
        Allocator {
            high_water: high_water.max(FIRST_DATA_PAGE),
            free_now: free.into_iter().collect(),
            pending: BTreeMap::new(),
            checkpoint_pages: Vec::new(),
        }
    }

    /// Takes a page: the lowest free one (keeps the file compact), else a new one.
    pub fn allocate(&mut self) -> PageNo {
        if let Some(no) = self.free_now.pop_first() {
            return no;
        }
        let no = self.high_water;
        self.high_water += 1;
        no
    }

    /// Returns a page that was allocated but never became visible.
    pub fn release_unused(&mut self, no: PageNo) {
        // A page outside the file or freed twice can only come from a corrupt
        // tree; never let it into the free set twice (it would be handed out
        // twice).
        if no >= FIRST_DATA_PAGE && no < self.high_water {
            self.free_now.insert(no);
        }
    }

    /// Records the pages the commit at `lsn` unlinked.
    pub fn retire(&mut self, lsn: u64, pages: Vec<PageNo>) {
        if !pages.is_empty() {
            self.pending.entry(lsn).or_default().extend(pages);
        }
    }

    /// Makes pages freed at or before `horizon` reusable.
    pub fn reclaim(&mut self, horizon: u64) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > horizon {
                break;
            }
            for no in entry.remove() {
                if no >= FIRST_DATA_PAGE && no < self.high_water {
                    self.free_now.insert(no);
                }
            }
        }
    }

    /// Every page free relative to the newest committed tree: what a
    /// checkpoint of that tree records as its free list.
    pub fn free_relative_to_latest(&self) -> Vec<PageNo> {
        let mut all: Vec<PageNo> = self.free_now.iter().copied().collect();
        all.extend(self.pending.values().flatten().copied());
        all.extend(self.checkpoint_pages.iter().copied());
        all.sort_unstable();
        all
    }

    /// Takes `n` pages to hold a checkpoint's free list, preferring pages at
    /// the end of the free set so data stays low in the file.
    pub fn reserve(&mut self, n: usize) -> Vec<PageNo> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.free_now.pop_last() {
                Some(no) => out.push(no),
                None => {
                    out.push(self.high_water);
                    self.high_water += 1;
                }
            }
        }
        out
    }

    /// Pages free right now.
    pub fn free_count(&self) -> usize {
        self.free_now.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_pages_wait_for_the_horizon() {
        let mut a = Allocator::new(2, []);
        let p = a.allocate();
        let q = a.allocate();
        assert_eq!((p, q), (2, 3));
        a.retire(5, vec![p]);
        a.reclaim(4);
        assert_eq!(a.allocate(), 4);
        a.reclaim(5);
        assert_eq!(a.allocate(), 2);
        assert_eq!(a.free_relative_to_latest(), Vec::<u64>::new());
    }
}
