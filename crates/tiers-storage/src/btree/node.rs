//! B+tree node layouts: slotted pages holding variable-length keys and values.
//!
//! Leaf page (after the common 24-byte header):
//!
//! | bytes | field |
//! |---|---|
//! | 24..26 | entry count `n` |
//! | 26..28 | offset of the lowest entry (0 = page end) |
//! | 28..28+2n | slot array: offset of each entry, in key order |
//! | ... | entries: `klen u16, flags u8, vlen u32, key, value` where flags bit 0 means the value lives in an overflow chain and the 8 bytes after the key are its first page |
//!
//! Branch page: count `n` of separator keys at 24..26, the leftmost child at
//! 28..36, the slot array at 36..36+2n, entries `klen u16, child u64, key`.
//! Child `i+1` holds keys `>= key[i]`; child 0 holds keys `< key[0]`.
//!
//! Overflow page: next page (0 = last) at 24..32, byte count at 32..36, data from 36.
//!
//! Readers search raw pages in place (binary search over the slot array).
//! A commit edits copies in place where it can (`raw_leaf`, raw branch
//! pointer patches) and decodes a node into vectors only to split or merge
//! it, encoding it again when the commit's pages are sealed.

use std::path::Path;

use crate::error::Result;
use crate::page::{self, HEADER_LEN, PageKind, PageNo, Reader};

pub(crate) const LEAF_HEADER: usize = HEADER_LEN + 4;
pub(crate) const BRANCH_HEADER: usize = HEADER_LEN + 12;
pub(crate) const OVERFLOW_HEADER: usize = HEADER_LEN + 12;
const LEAF_ENTRY_FIXED: usize = 2 + 7;
const BRANCH_ENTRY_FIXED: usize = 2 + 10;
const FLAG_OVERFLOW: u8 = 1;

/// Size limits derived from the page size.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Page size in bytes.
    pub page_size: usize,
    /// Largest key accepted.
    pub max_key: usize,
    /// Largest entry kept inline in a leaf; larger values go to overflow pages.
    pub max_inline_entry: usize,
}

impl Limits {
    /// Limits for a page size: at least four entries fit in every node.
    pub fn new(page_size: usize) -> Limits {
        let max_inline_entry = (page_size - BRANCH_HEADER) / 4;
        Limits {
            page_size,
            max_key: (max_inline_entry - BRANCH_ENTRY_FIXED - 8).min(u16::MAX as usize),
            max_inline_entry,
        }
    }

    /// Whether a value of `vlen` bytes under a key of `klen` bytes stays inline.
    pub fn inline(&self, klen: usize, vlen: usize) -> bool {
        LEAF_ENTRY_FIXED + klen + vlen <= self.max_inline_entry
    }
}

/// A leaf value: inline bytes or a reference to an overflow chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeafValue {
    Inline(Vec<u8>),
    Overflow { len: u64, first: PageNo },
}

impl LeafValue {
    fn stored_len(&self) -> usize {
        match self {
            LeafValue::Inline(v) => v.len(),
            LeafValue::Overflow { .. } => 8,
        }
    }
}

/// A decoded leaf being edited by a commit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Leaf {
    pub entries: Vec<(Vec<u8>, LeafValue)>,
    pub bytes: usize,
}

/// A decoded branch being edited by a commit.
#[derive(Debug, Clone, Default)]
pub(crate) struct Branch {
    pub keys: Vec<Vec<u8>>,
    pub children: Vec<PageNo>,
    pub bytes: usize,
}

pub(crate) fn leaf_entry_size(key: &[u8], value: &LeafValue) -> usize {
    LEAF_ENTRY_FIXED + key.len() + value.stored_len()
}

pub(crate) fn branch_entry_size(key: &[u8]) -> usize {
    BRANCH_ENTRY_FIXED + key.len()
}

impl Leaf {
    pub fn new(entries: Vec<(Vec<u8>, LeafValue)>) -> Leaf {
        let bytes = LEAF_HEADER
            + entries
                .iter()
                .map(|(k, v)| leaf_entry_size(k, v))
                .sum::<usize>();
        Leaf { entries, bytes }
    }

    pub fn search(&self, key: &[u8]) -> std::result::Result<usize, usize> {
        self.entries
            .binary_search_by(|(k, _)| k.as_slice().cmp(key))
    }

    pub fn insert_at(&mut self, i: usize, key: Vec<u8>, value: LeafValue) {
        self.bytes += leaf_entry_size(&key, &value);
        self.entries.insert(i, (key, value));
    }

    pub fn replace_at(&mut self, i: usize, value: LeafValue) -> LeafValue {
        let slot = &mut self.entries[i].1;
        self.bytes = self.bytes - slot.stored_len() + value.stored_len();
        std::mem::replace(slot, value)
    }

    pub fn remove_at(&mut self, i: usize) -> (Vec<u8>, LeafValue) {
        let (k, v) = self.entries.remove(i);
        self.bytes -= leaf_entry_size(&k, &v);
        (k, v)
    }

    pub fn encode(&self, buf: &mut [u8]) {
        debug_assert!(self.bytes <= buf.len());
        page::put_u16(buf, HEADER_LEN, self.entries.len() as u16);
        let mut end = buf.len();
        for (i, (key, value)) in self.entries.iter().enumerate() {
            let size = leaf_entry_size(key, value) - 2;
            end -= size;
            page::put_u16(buf, LEAF_HEADER + 2 * i, end as u16);
            page::put_u16(buf, end, key.len() as u16);
            let (flags, vlen) = match value {
                LeafValue::Inline(v) => (0, v.len() as u32),
                LeafValue::Overflow { len, .. } => (FLAG_OVERFLOW, *len as u32),
            };
            buf[end + 2] = flags;
            page::put_u32(buf, end + 3, vlen);
            let kstart = end + 7;
            buf[kstart..kstart + key.len()].copy_from_slice(key);
            let vstart = kstart + key.len();
            match value {
                LeafValue::Inline(v) => buf[vstart..vstart + v.len()].copy_from_slice(v),
                LeafValue::Overflow { first, .. } => page::put_u64(buf, vstart, *first),
            }
        }
        super::raw_leaf::set_data_start(buf, end);
    }
}

impl Branch {
    pub fn new(keys: Vec<Vec<u8>>, children: Vec<PageNo>) -> Branch {
        debug_assert_eq!(keys.len() + 1, children.len());
        let bytes = BRANCH_HEADER + keys.iter().map(|k| branch_entry_size(k)).sum::<usize>();
        Branch {
            keys,
            children,
            bytes,
        }
    }

    /// Index of the child whose range holds `key`.
    pub fn child_index(&self, key: &[u8]) -> usize {
        match self.keys.last() {
            Some(last) if last.as_slice() <= key => self.keys.len(),
            _ => self.keys.partition_point(|k| k.as_slice() <= key),
        }
    }

    pub fn insert_at(&mut self, i: usize, key: Vec<u8>, right: PageNo) {
        self.bytes += branch_entry_size(&key);
        self.keys.insert(i, key);
        self.children.insert(i + 1, right);
    }

    pub fn remove_key_at(&mut self, i: usize) -> Vec<u8> {
        let key = self.keys.remove(i);
        self.children.remove(i + 1);
        self.bytes -= branch_entry_size(&key);
        key
    }

    pub fn set_key(&mut self, i: usize, key: Vec<u8>) {
        self.bytes = self.bytes - branch_entry_size(&self.keys[i]) + branch_entry_size(&key);
        self.keys[i] = key;
    }

    pub fn encode(&self, buf: &mut [u8]) {
        debug_assert!(self.bytes <= buf.len());
        page::put_u16(buf, HEADER_LEN, self.keys.len() as u16);
        page::put_u64(buf, HEADER_LEN + 4, self.children[0]);
        let mut end = buf.len();
        for (i, key) in self.keys.iter().enumerate() {
            let size = branch_entry_size(key) - 2;
            end -= size;
            page::put_u16(buf, BRANCH_HEADER + 2 * i, end as u16);
            page::put_u16(buf, end, key.len() as u16);
            page::put_u64(buf, end + 2, self.children[i + 1]);
            buf[end + 10..end + 10 + key.len()].copy_from_slice(key);
        }
    }
}

/// A leaf value as stored in a raw page.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RawValue<'a> {
    Inline(&'a [u8]),
    Overflow { len: u64, first: PageNo },
}

impl RawValue<'_> {
    pub fn to_owned(self) -> LeafValue {
        match self {
            RawValue::Inline(v) => LeafValue::Inline(v.to_vec()),
            RawValue::Overflow { len, first } => LeafValue::Overflow { len, first },
        }
    }
}

/// Read-only access to a raw leaf page.
pub(crate) struct LeafView<'a> {
    r: Reader<'a>,
    pub count: usize,
}

impl<'a> LeafView<'a> {
    pub fn new(buf: &'a [u8], file: &'a Path, no: PageNo) -> Result<LeafView<'a>> {
        let r = Reader::new(buf, file, no);
        let count = r.u16(HEADER_LEN)? as usize;
        if LEAF_HEADER + 2 * count > buf.len() {
            return Err(r.corrupt(format!("leaf claims {count} entries, more than fit")));
        }
        Ok(LeafView { r, count })
    }

    fn entry_at(&self, i: usize) -> Result<usize> {
        Ok(self.r.u16(LEAF_HEADER + 2 * i)? as usize)
    }

    pub fn key(&self, i: usize) -> Result<&'a [u8]> {
        let at = self.entry_at(i)?;
        let klen = self.r.u16(at)? as usize;
        self.r.slice(at + 7, klen)
    }

    pub fn entry(&self, i: usize) -> Result<(&'a [u8], RawValue<'a>)> {
        let at = self.entry_at(i)?;
        let klen = self.r.u16(at)? as usize;
        let flags = self.r.u8(at + 2)?;
        let vlen = self.r.u32(at + 3)? as usize;
        let key = self.r.slice(at + 7, klen)?;
        let vat = at + 7 + klen;
        let value = if flags & FLAG_OVERFLOW != 0 {
            RawValue::Overflow {
                len: vlen as u64,
                first: self.r.u64(vat)?,
            }
        } else {
            RawValue::Inline(self.r.slice(vat, vlen)?)
        };
        Ok((key, value))
    }

    /// Binary search: `Ok(i)` if found at `i`, `Err(i)` for the insertion point.
    pub fn search(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid)?.cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(lo))
    }

    pub fn decode(&self) -> Result<Leaf> {
        let mut entries: Vec<(Vec<u8>, LeafValue)> = Vec::with_capacity(self.count);
        for i in 0..self.count {
            let (k, v) = self.entry(i)?;
            if let Some((prev, _)) = entries.last()
                && prev.as_slice() >= k
            {
                return Err(self
                    .r
                    .corrupt(format!("leaf keys out of order at entry {i}")));
            }
            entries.push((k.to_vec(), v.to_owned()));
        }
        Ok(Leaf::new(entries))
    }
}

/// Read-only access to a raw branch page.
pub(crate) struct BranchView<'a> {
    r: Reader<'a>,
    pub count: usize,
}

impl<'a> BranchView<'a> {
    pub fn new(buf: &'a [u8], file: &'a Path, no: PageNo) -> Result<BranchView<'a>> {
        let r = Reader::new(buf, file, no);
        let count = r.u16(HEADER_LEN)? as usize;
        if count == 0 || BRANCH_HEADER + 2 * count > buf.len() {
            return Err(r.corrupt(format!("branch claims {count} keys")));
        }
        Ok(BranchView { r, count })
    }

    fn entry_at(&self, i: usize) -> Result<usize> {
        Ok(self.r.u16(BRANCH_HEADER + 2 * i)? as usize)
    }

    pub fn key(&self, i: usize) -> Result<&'a [u8]> {
        let at = self.entry_at(i)?;
        let klen = self.r.u16(at)? as usize;
        self.r.slice(at + 10, klen)
    }

    /// Child `i` for `i` in `0..=count`.
    pub fn child(&self, i: usize) -> Result<PageNo> {
        if i == 0 {
            self.r.u64(HEADER_LEN + 4)
        } else {
            let at = self.entry_at(i - 1)?;
            self.r.u64(at + 2)
        }
    }

    /// Index of the child whose range holds `key`.
    pub fn child_index(&self, key: &[u8]) -> Result<usize> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.key(mid)? <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Checks every slot and key of the page (what [`BranchView::decode`]
    /// checks) without building anything.
    pub fn check(&self) -> Result<()> {
        self.child(0)?;
        let mut prev: Option<&[u8]> = None;
        for i in 0..self.count {
            let k = self.key(i)?;
            if prev.is_some_and(|p| p >= k) {
                return Err(self
                    .r
                    .corrupt(format!("branch keys out of order at key {i}")));
            }
            self.child(i + 1)?;
            prev = Some(k);
        }
        Ok(())
    }

    pub fn decode(&self) -> Result<Branch> {
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(self.count);
        let mut children = Vec::with_capacity(self.count + 1);
        children.push(self.child(0)?);
        for i in 0..self.count {
            let k = self.key(i)?;
            if let Some(prev) = keys.last()
                && prev.as_slice() >= k
            {
                return Err(self
                    .r
                    .corrupt(format!("branch keys out of order at key {i}")));
            }
            keys.push(k.to_vec());
            children.push(self.child(i + 1)?);
        }
        Ok(Branch::new(keys, children))
    }
}

/// Sets child `i` of a raw branch page that [`BranchView::check`] accepted.
pub(crate) fn set_raw_child(buf: &mut [u8], i: usize, child: PageNo) {
    let at = if i == 0 {
        HEADER_LEN + 4
    } else {
        let slot = BRANCH_HEADER + 2 * (i - 1);
        u16::from_le_bytes([buf[slot], buf[slot + 1]]) as usize + 2
    };
    page::put_u64(buf, at, child);
}

/// Reads an overflow page: (next page, data).
pub(crate) fn overflow_view<'a>(
    buf: &'a [u8],
    file: &'a Path,
    no: PageNo,
) -> Result<(PageNo, &'a [u8])> {
    let r = Reader::new(buf, file, no);
    let next = r.u64(HEADER_LEN)?;
    let len = r.u32(HEADER_LEN + 8)? as usize;
    Ok((next, r.slice(OVERFLOW_HEADER, len)?))
}

/// Writes an overflow page's body.
pub(crate) fn encode_overflow(buf: &mut [u8], next: PageNo, data: &[u8]) {
    page::put_u64(buf, HEADER_LEN, next);
    page::put_u32(buf, HEADER_LEN + 8, data.len() as u32);
    buf[OVERFLOW_HEADER..OVERFLOW_HEADER + data.len()].copy_from_slice(data);
}

/// Whether a raw page is a leaf.
pub(crate) fn is_leaf(buf: &[u8]) -> bool {
    page::page_kind(buf) == Some(PageKind::Leaf)
}
