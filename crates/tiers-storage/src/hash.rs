//! The hash index: extendible hashing on pages (the book's hash table: one
//! step to the bucket for an equality lookup, useless for ranges).
//!
//! A 64-bit hash of the key picks a directory slot by its top `global_depth`
//! bits; the slot names the bucket page. A bucket of local depth `l` is
//! shared by the `2^(global_depth - l)` consecutive slots with the same top
//! `l` bits. A full bucket splits in two by its next hash bit (doubling the
//! directory first when `l == global_depth`); when every entry in it has the
//! same hash (many values under one key), it grows an overflow chain instead.
//! Each key may hold many values (a non-unique index); entries are (key, value)
//! pairs. Empty buckets are kept and the directory never shrinks, as in
//! PostgreSQL's hash indexes.
//!
//! Page layouts (after the common 24-byte header):
//! - header: global depth u8 at 24, entry count u64 at 28, directory page
//!   count u32 at 36, directory page numbers (u64 each) from 40;
//! - directory: slot count u32 at 24, bucket page numbers (u64 each) from 28;
//! - bucket: local depth u8 at 24, entry count u16 at 26, next chain page u64
//!   at 28 (0 = none), entries from 36: `klen u16, vlen u16, hash u64, key, value`.
//!
//! All pages are copy-on-write like the B+tree's, so the hash index shares
//! its checksums, journaling, snapshots and recovery.

use std::path::Path;

use crate::batch::{Batch, Dirty};
use crate::error::{Error, Result};
use crate::page::{self, HEADER_LEN, PageKind, PageNo, Reader};
use crate::pool::BufferPool;

const HEADER_FIXED: usize = HEADER_LEN + 16;
const DIR_FIXED: usize = HEADER_LEN + 4;
const BUCKET_FIXED: usize = HEADER_LEN + 12;
const ENTRY_FIXED: usize = 12;

/// A deterministic 64-bit hash (the same on every machine, so replicas and
/// recovery agree on bucket placement).
pub fn hash64(key: &[u8]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15 ^ (key.len() as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
    for chunk in key.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h = h.rotate_left(29);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Sizes derived from the page size.
#[derive(Debug, Clone, Copy)]
pub struct HashLimits {
    page_size: usize,
    slots_per_dir_page: usize,
    max_depth: u8,
    /// Largest key plus value accepted.
    pub max_entry: usize,
}

impl HashLimits {
    /// Limits for a page size.
    pub fn new(page_size: usize) -> HashLimits {
        let slots_per_dir_page = (page_size - DIR_FIXED) / 8;
        let max_dir_pages = (page_size - HEADER_FIXED) / 8;
        let max_slots = slots_per_dir_page * max_dir_pages;
        let max_depth = (usize::BITS - 1 - max_slots.leading_zeros()).min(32) as u8;
        HashLimits {
            page_size,
            slots_per_dir_page,
            max_depth,
            max_entry: ((page_size - BUCKET_FIXED) / 4 - ENTRY_FIXED).min(u16::MAX as usize),
        }
    }
}

fn slot_of(hash: u64, depth: u8) -> usize {
    if depth == 0 {
        0
    } else {
        (hash >> (64 - depth)) as usize
    }
}

/// A decoded header page.
#[derive(Debug, Clone)]
pub(crate) struct HashHeader {
    pub global_depth: u8,
    pub count: u64,
    pub dir_pages: Vec<PageNo>,
}

impl HashHeader {
    pub fn decode(buf: &[u8], file: &Path, no: PageNo) -> Result<HashHeader> {
        let r = Reader::new(buf, file, no);
        let global_depth = r.u8(HEADER_LEN)?;
        let count = r.u64(HEADER_LEN + 4)?;
        let n = r.u32(HEADER_LEN + 12)? as usize;
        if global_depth > 32 {
            return Err(r.corrupt(format!("hash global depth {global_depth} is over 32")));
        }
        let mut dir_pages = Vec::with_capacity(n.min(8192));
        for i in 0..n {
            dir_pages.push(r.u64(HEADER_FIXED + 8 * i)?);
        }
        Ok(HashHeader {
            global_depth,
            count,
            dir_pages,
        })
    }

    pub fn encode(&self, buf: &mut [u8]) {
        buf[HEADER_LEN] = self.global_depth;
        page::put_u64(buf, HEADER_LEN + 4, self.count);
        page::put_u32(buf, HEADER_LEN + 12, self.dir_pages.len() as u32);
        for (i, p) in self.dir_pages.iter().enumerate() {
            page::put_u64(buf, HEADER_FIXED + 8 * i, *p);
        }
    }
}

pub(crate) fn decode_dir(buf: &[u8], file: &Path, no: PageNo) -> Result<Vec<PageNo>> {
    let r = Reader::new(buf, file, no);
    let n = r.u32(HEADER_LEN)? as usize;
    if DIR_FIXED + 8 * n > buf.len() {
        return Err(r.corrupt(format!("directory page claims {n} slots")));
    }
    (0..n).map(|i| r.u64(DIR_FIXED + 8 * i)).collect()
}

pub(crate) fn encode_dir(buf: &mut [u8], slots: &[PageNo]) {
    page::put_u32(buf, HEADER_LEN, slots.len() as u32);
    for (i, p) in slots.iter().enumerate() {
        page::put_u64(buf, DIR_FIXED + 8 * i, *p);
    }
}

/// One (key, value) entry of a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub hash: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Entry {
    fn size(&self) -> usize {
        ENTRY_FIXED + self.key.len() + self.value.len()
    }
}

/// A bucket page (one page of a bucket's chain) held for editing. Its
/// entries stay in their page encoding (`klen u16, vlen u16, hash u64, key,
/// value`) in one buffer, so copying a page on write costs one allocation,
/// not two per entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bucket {
    pub local_depth: u8,
    pub next: PageNo,
    /// The encoded entries, checked when decoded or built here.
    data: Vec<u8>,
    count: usize,
}

/// Slot `index` of an encoded directory page, if it has that many.
fn encoded_dir_slot(buf: &[u8], file: &Path, no: PageNo, index: usize) -> Result<Option<PageNo>> {
    let r = Reader::new(buf, file, no);
    let n = r.u32(HEADER_LEN)? as usize;
    if index >= n {
        return Ok(None);
    }
    r.u64(DIR_FIXED + 8 * index).map(Some)
}

/// Splits the encoded entry at the start of `data` (which is well formed:
/// built by [`Bucket::push`] or checked by [`Bucket::decode`]).
fn split_entry(data: &[u8]) -> (u64, &[u8], &[u8], usize) {
    let klen = u16::from_le_bytes([data[0], data[1]]) as usize;
    let vlen = u16::from_le_bytes([data[2], data[3]]) as usize;
    let hash = u64::from_le_bytes(data[4..12].try_into().expect("8 bytes"));
    let key = &data[ENTRY_FIXED..ENTRY_FIXED + klen];
    let value = &data[ENTRY_FIXED + klen..ENTRY_FIXED + klen + vlen];
    (hash, key, value, ENTRY_FIXED + klen + vlen)
}

impl Bucket {
    fn new(local_depth: u8, next: PageNo, entries: Vec<Entry>) -> Bucket {
        let mut b = Bucket {
            local_depth,
            next,
            data: Vec::new(),
            count: 0,
        };
        for e in &entries {
            b.push(e);
        }
        b
    }

    /// Bytes the page uses, its fixed part included.
    pub fn bytes(&self) -> usize {
        BUCKET_FIXED + self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn push(&mut self, e: &Entry) {
        self.data
            .extend_from_slice(&(e.key.len() as u16).to_le_bytes());
        self.data
            .extend_from_slice(&(e.value.len() as u16).to_le_bytes());
        self.data.extend_from_slice(&e.hash.to_le_bytes());
        self.data.extend_from_slice(&e.key);
        self.data.extend_from_slice(&e.value);
        self.count += 1;
    }

    /// The entries as (hash, key, value).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8], &[u8])> {
        let mut rest = self.data.as_slice();
        (0..self.count).map(move |_| {
            let (hash, key, value, len) = split_entry(rest);
            rest = &rest[len..];
            (hash, key, value)
        })
    }

    /// Removes the `index`th entry.
    fn remove(&mut self, index: usize) {
        let mut at = 0;
        for _ in 0..index {
            at += split_entry(&self.data[at..]).3;
        }
        let len = split_entry(&self.data[at..]).3;
        self.data.drain(at..at + len);
        self.count -= 1;
    }

    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.iter().map(|(hash, key, value)| Entry {
            hash,
            key: key.to_vec(),
            value: value.to_vec(),
        })
    }

    /// Decodes a bucket page for editing: bounds are checked, not each
    /// entry's stored hash (the page passed its checksum when it was read;
    /// [`Bucket::decode_verified`] is the full check).
    pub fn decode(buf: &[u8], file: &Path, no: PageNo) -> Result<Bucket> {
        Bucket::decode_with(buf, file, no, false)
    }

    /// Decodes a bucket page, checking every entry's stored hash against
    /// its key too (verification).
    pub fn decode_verified(buf: &[u8], file: &Path, no: PageNo) -> Result<Bucket> {
        Bucket::decode_with(buf, file, no, true)
    }

    fn decode_with(buf: &[u8], file: &Path, no: PageNo, verify_hashes: bool) -> Result<Bucket> {
        let (mut count, mut mismatch) = (0, false);
        let info = visit_encoded(buf, file, no, &mut |hash, key, _| {
            count += 1;
            mismatch |= verify_hashes && hash64(key) != hash;
        })?;
        if mismatch {
            return Err(Reader::new(buf, file, no)
                .corrupt("hash bucket entry's stored hash does not match its key"));
        }
        Ok(Bucket {
            local_depth: info.local_depth,
            next: info.next,
            data: buf[BUCKET_FIXED..info.bytes].to_vec(),
            count,
        })
    }

    pub fn encode(&self, buf: &mut [u8]) {
        buf[HEADER_LEN] = self.local_depth;
        page::put_u16(buf, HEADER_LEN + 2, self.count as u16);
        page::put_u64(buf, HEADER_LEN + 4, self.next);
        buf[BUCKET_FIXED..BUCKET_FIXED + self.data.len()].copy_from_slice(&self.data);
    }
}

/// What [`Pages::visit`] learns about one bucket page besides its entries.
#[derive(Debug, Clone, Copy)]
struct BucketInfo {
    local_depth: u8,
    next: PageNo,
    /// Bytes in use, header included.
    bytes: usize,
}

/// A callback given each entry of a bucket page as (hash, key, value).
type EntryVisitor<'a> = &'a mut dyn FnMut(u64, &[u8], &[u8]);

/// Calls `f(hash, key, value)` for every entry of an encoded bucket page,
/// without copying it (the page's checksum was verified when it was read).
fn visit_encoded(buf: &[u8], file: &Path, no: PageNo, f: EntryVisitor<'_>) -> Result<BucketInfo> {
    let r = Reader::new(buf, file, no);
    let local_depth = r.u8(HEADER_LEN)?;
    let n = r.u16(HEADER_LEN + 2)? as usize;
    let next = r.u64(HEADER_LEN + 4)?;
    let mut at = BUCKET_FIXED;
    for _ in 0..n {
        let klen = r.u16(at)? as usize;
        let vlen = r.u16(at + 2)? as usize;
        let hash = r.u64(at + 4)?;
        let key = r.slice(at + ENTRY_FIXED, klen)?;
        let value = r.slice(at + ENTRY_FIXED + klen, vlen)?;
        f(hash, key, value);
        at += ENTRY_FIXED + klen + vlen;
    }
    Ok(BucketInfo {
        local_depth,
        next,
        bytes: at,
    })
}

/// A source of hash pages: committed pages through the pool, or a batch's copies.
trait Pages {
    fn header(&self, no: PageNo) -> Result<HashHeader>;
    fn dir(&self, no: PageNo) -> Result<Vec<PageNo>>;
    fn bucket(&self, no: PageNo) -> Result<Bucket>;
    /// Slot `index` of directory page `no` (None past its end), without decoding the page.
    fn dir_slot(&self, no: PageNo, index: usize) -> Result<Option<PageNo>>;
    /// Visits one bucket page's entries in place (no decoding into owned entries).
    fn visit(&self, no: PageNo, f: EntryVisitor<'_>) -> Result<BucketInfo>;
}

impl Pages for BufferPool {
    fn header(&self, no: PageNo) -> Result<HashHeader> {
        HashHeader::decode(&self.get(no, Some(PageKind::HashHeader))?, self.path(), no)
    }
    fn dir(&self, no: PageNo) -> Result<Vec<PageNo>> {
        decode_dir(&self.get(no, Some(PageKind::HashDir))?, self.path(), no)
    }
    fn bucket(&self, no: PageNo) -> Result<Bucket> {
        Bucket::decode_verified(&self.get(no, Some(PageKind::HashBucket))?, self.path(), no)
    }
    fn dir_slot(&self, no: PageNo, index: usize) -> Result<Option<PageNo>> {
        encoded_dir_slot(
            &self.get(no, Some(PageKind::HashDir))?,
            self.path(),
            no,
            index,
        )
    }
    fn visit(&self, no: PageNo, f: EntryVisitor<'_>) -> Result<BucketInfo> {
        visit_encoded(
            &self.get(no, Some(PageKind::HashBucket))?,
            self.path(),
            no,
            f,
        )
    }
}

impl Pages for Batch<'_> {
    fn header(&self, no: PageNo) -> Result<HashHeader> {
        match self.decode(no)? {
            Dirty::HashHeader(h) => Ok(h),
            _ => Err(page::corrupt(
                self.pool.path(),
                no,
                "expected a hash header page",
            )),
        }
    }
    fn dir(&self, no: PageNo) -> Result<Vec<PageNo>> {
        match self.decode(no)? {
            Dirty::HashDir(d) => Ok(d),
            _ => Err(page::corrupt(
                self.pool.path(),
                no,
                "expected a hash directory page",
            )),
        }
    }
    fn bucket(&self, no: PageNo) -> Result<Bucket> {
        match self.decode(no)? {
            Dirty::Bucket(b) => Ok(b),
            _ => Err(page::corrupt(
                self.pool.path(),
                no,
                "expected a hash bucket page",
            )),
        }
    }
    fn dir_slot(&self, no: PageNo, index: usize) -> Result<Option<PageNo>> {
        match self.owned(no) {
            Some(Dirty::HashDir(d)) => Ok(d.get(index).copied()),
            Some(_) => Err(page::corrupt(
                self.pool.path(),
                no,
                "expected a hash directory page",
            )),
            None => encoded_dir_slot(
                &self.read(no, Some(PageKind::HashDir))?,
                self.pool.path(),
                no,
                index,
            ),
        }
    }
    fn visit(&self, no: PageNo, f: EntryVisitor<'_>) -> Result<BucketInfo> {
        match self.owned(no) {
            Some(Dirty::Bucket(b)) => {
                for (hash, key, value) in b.iter() {
                    f(hash, key, value);
                }
                Ok(BucketInfo {
                    local_depth: b.local_depth,
                    next: b.next,
                    bytes: b.bytes(),
                })
            }
            Some(_) => Err(page::corrupt(
                self.pool.path(),
                no,
                "expected a hash bucket page",
            )),
            None => visit_encoded(
                &self.read(no, Some(PageKind::HashBucket))?,
                self.pool.path(),
                no,
                f,
            ),
        }
    }
}

/// Walks a bucket chain from `head`, visiting every entry; returns the
/// chain's page numbers and what its head page said.
fn walk_chain<P: Pages + ?Sized>(
    p: &P,
    head: PageNo,
    f: EntryVisitor<'_>,
) -> Result<(Vec<PageNo>, BucketInfo)> {
    let mut pages = Vec::new();
    let mut first = None;
    let mut no = head;
    while no != 0 {
        let info = p.visit(no, f)?;
        first.get_or_insert(info);
        pages.push(no);
        no = info.next;
        if pages.len() > 1 << 20 {
            return Err(page::corrupt(
                Path::new(""),
                head,
                "hash bucket chain has a cycle",
            ));
        }
    }
    let first = first.ok_or_else(|| page::corrupt(Path::new(""), head, "empty bucket slot"))?;
    Ok((pages, first))
}

fn dir_slot<P: Pages + ?Sized>(
    p: &P,
    h: &HashHeader,
    lim: &HashLimits,
    slot: usize,
) -> Result<PageNo> {
    let missing = |page| Error::PageCorrupt {
        file: Default::default(),
        page,
        detail: format!(
            "hash directory slot {slot} is missing (global depth {})",
            h.global_depth
        ),
    };
    let page = *h
        .dir_pages
        .get(slot / lim.slots_per_dir_page)
        .ok_or_else(|| missing(0))?;
    p.dir_slot(page, slot % lim.slots_per_dir_page)?
        .ok_or_else(|| missing(page))
}

/// Checks a header read from disk against the limits everything else relies on.
fn check_header(h: &HashHeader, lim: &HashLimits, no: PageNo) -> Result<()> {
    let slots = 1usize << h.global_depth.min(40);
    if h.global_depth > lim.max_depth || h.dir_pages.len() != slots.div_ceil(lim.slots_per_dir_page)
    {
        return Err(Error::PageCorrupt {
            file: Default::default(),
            page: no,
            detail: format!(
                "hash header: global depth {} with {} directory pages",
                h.global_depth,
                h.dir_pages.len()
            ),
        });
    }
    Ok(())
}

/// The span of directory slots a bucket of `local` depth covers.
fn span(h: &HashHeader, local: u8, no: PageNo) -> Result<usize> {
    if local > h.global_depth {
        return Err(Error::PageCorrupt {
            file: Default::default(),
            page: no,
            detail: format!(
                "bucket local depth {local} exceeds global depth {}",
                h.global_depth
            ),
        });
    }
    Ok(1usize << (h.global_depth - local))
}

/// Every value stored under `key`, in insertion order within the bucket chain.
fn get_in<P: Pages + ?Sized>(
    p: &P,
    lim: &HashLimits,
    root: PageNo,
    key: &[u8],
) -> Result<Vec<Vec<u8>>> {
    let h = p.header(root)?;
    check_header(&h, lim, root)?;
    let hash = hash64(key);
    let head = dir_slot(p, &h, lim, slot_of(hash, h.global_depth))?;
    let mut out = Vec::new();
    walk_chain(p, head, &mut |eh, ek, ev| {
        if eh == hash && ek == key {
            out.push(ev.to_vec());
        }
    })?;
    Ok(out)
}

/// Equality lookup in a committed hash index.
pub(crate) fn get(
    pool: &BufferPool,
    lim: &HashLimits,
    root: PageNo,
    key: &[u8],
) -> Result<Vec<Vec<u8>>> {
    get_in(pool, lim, root, key)
}

/// Creates an empty hash index; returns its header page.
pub(crate) fn create(b: &mut Batch<'_>) -> PageNo {
    let bucket = b.alloc(Dirty::Bucket(Bucket::new(0, 0, Vec::new())));
    let dir = b.alloc(Dirty::HashDir(vec![bucket]));
    b.alloc(Dirty::HashHeader(HashHeader {
        global_depth: 0,
        count: 0,
        dir_pages: vec![dir],
    }))
}

/// Reads every entry of a bucket chain.
fn chain_entries(b: &Batch<'_>, head: PageNo) -> Result<(u8, Vec<PageNo>, Vec<Entry>)> {
    let mut pages = Vec::new();
    let mut entries = Vec::new();
    let mut no = head;
    let mut depth = 0;
    while no != 0 {
        let bucket = b.bucket(no)?;
        if pages.is_empty() {
            depth = bucket.local_depth;
        }
        pages.push(no);
        entries.extend(bucket.entries());
        no = bucket.next;
        if pages.len() > 1 << 20 {
            return Err(page::corrupt(
                b.pool.path(),
                head,
                "hash bucket chain has a cycle",
            ));
        }
    }
    Ok((depth, pages, entries))
}

/// Writes entries as a new chain of bucket pages; returns its head.
fn write_chain(b: &mut Batch<'_>, lim: &HashLimits, depth: u8, entries: Vec<Entry>) -> PageNo {
    let mut pages: Vec<Vec<Entry>> = vec![Vec::new()];
    let mut bytes = BUCKET_FIXED;
    for e in entries {
        if bytes + e.size() > lim.page_size {
            pages.push(Vec::new());
            bytes = BUCKET_FIXED;
        }
        bytes += e.size();
        pages.last_mut().expect("one page").push(e);
    }
    let mut next = 0;
    for entries in pages.into_iter().rev() {
        next = b.alloc(Dirty::Bucket(Bucket::new(depth, next, entries)));
    }
    next
}

/// Points directory slots `[start, start+len)` at `bucket`, copying the
/// directory pages involved.
fn set_slots(
    b: &mut Batch<'_>,
    lim: &HashLimits,
    h: &mut HashHeader,
    start: usize,
    len: usize,
    bucket: PageNo,
) -> Result<()> {
    let per = lim.slots_per_dir_page;
    let first_page = start / per;
    let last_page = (start + len - 1) / per;
    for pi in first_page..=last_page {
        let owned = b.own(h.dir_pages[pi])?;
        h.dir_pages[pi] = owned;
        let Dirty::HashDir(slots) = b.get_mut(owned) else {
            return Err(page::corrupt(
                b.pool.path(),
                owned,
                "expected a hash directory page",
            ));
        };
        let lo = start.max(pi * per) - pi * per;
        let hi = (start + len).min((pi + 1) * per) - pi * per;
        for s in &mut slots[lo..hi] {
            *s = bucket;
        }
    }
    Ok(())
}

/// Doubles the directory: slot `j` of the new one is slot `j / 2` of the old.
fn double_directory(b: &mut Batch<'_>, lim: &HashLimits, h: &mut HashHeader) -> Result<()> {
    let old_len = 1usize << h.global_depth;
    let mut old = Vec::with_capacity(old_len);
    for &p in &h.dir_pages {
        old.extend(b.dir(p)?);
    }
    if old.len() < old_len {
        return Err(page::corrupt(
            b.pool.path(),
            0,
            "hash directory shorter than its depth",
        ));
    }
    old.truncate(old_len);
    let new: Vec<PageNo> = (0..old_len * 2).map(|j| old[j / 2]).collect();
    for p in std::mem::take(&mut h.dir_pages) {
        b.free(p);
    }
    for chunk in new.chunks(lim.slots_per_dir_page) {
        h.dir_pages.push(b.alloc(Dirty::HashDir(chunk.to_vec())));
    }
    h.global_depth += 1;
    Ok(())
}

/// Adds (key, value); with `check_present`, only if it is not there yet
/// (without, the caller guarantees it is not). Returns the new header page
/// and whether it was added.
pub(crate) fn insert(
    b: &mut Batch<'_>,
    lim: &HashLimits,
    root: PageNo,
    key: &[u8],
    value: &[u8],
    check_present: bool,
) -> Result<(PageNo, bool)> {
    if key.len() + value.len() > lim.max_entry {
        return Err(Error::TooLarge {
            what: "hash index entry (key plus value)",
            len: key.len() + value.len(),
            max: lim.max_entry,
        });
    }
    let entry = Entry {
        hash: hash64(key),
        key: key.to_vec(),
        value: value.to_vec(),
    };
    let h = b.header(root)?;
    check_header(&h, lim, root)?;
    if check_present {
        // One pass over the chain, in place: is the pair there already?
        let head = dir_slot(b, &h, lim, slot_of(entry.hash, h.global_depth))?;
        let mut present = false;
        walk_chain(b, head, &mut |eh, ek, ev| {
            present |= eh == entry.hash && ek == key && ev == value;
        })?;
        if present {
            return Ok((root, false));
        }
    }
    let root = b.own(root)?;
    let mut h = h;
    let top = |hash: u64| slot_of(hash, lim.max_depth);
    loop {
        let slot = slot_of(entry.hash, h.global_depth);
        let head = dir_slot(b, &h, lim, slot)?;
        let mut head_uniform = true;
        let info = b.visit(head, &mut |eh, _, _| {
            head_uniform &= top(eh) == top(entry.hash);
        })?;
        if info.bytes + entry.size() <= lim.page_size {
            // Room in the head page: copy just that page.
            let owned = b.own(head)?;
            if let Dirty::Bucket(bk) = b.get_mut(owned) {
                bk.push(&entry);
            }
            if owned != head {
                let span = span(&h, info.local_depth, head)?;
                set_slots(b, lim, &mut h, slot / span * span, span, owned)?;
            }
            break;
        }
        // The head is full. Splitting helps only if some entry's hash differs
        // from the new one's in the bits a split can use. A chain grows only
        // for one such hash, and other keys landing in the bucket go to its
        // head first: a chain whose full head holds only the new entry's
        // hash is taken as all of that hash without reading the rest (at
        // worst a split is put off, which costs lookups, never correctness).
        let separable = !head_uniform;
        let depth = info.local_depth;
        if !separable || depth >= lim.max_depth {
            // Same hash throughout (one key with many values): grow a chain
            // by putting a new head page in front of the old one.
            let span = span(&h, depth, head)?;
            let new_head = b.alloc(Dirty::Bucket(Bucket::new(depth, head, vec![entry])));
            set_slots(b, lim, &mut h, slot / span * span, span, new_head)?;
            break;
        }
        let (depth, pages, entries) = chain_entries(b, head)?;
        span(&h, depth, head)?;
        if depth == h.global_depth {
            double_directory(b, lim, &mut h)?;
        }
        // Split the bucket by hash bit `depth` (counting from the top).
        let bit = 63 - depth as u32;
        let (ones, zeros): (Vec<Entry>, Vec<Entry>) =
            entries.into_iter().partition(|e| e.hash >> bit & 1 == 1);
        for p in pages {
            b.free(p);
        }
        let low = write_chain(b, lim, depth + 1, zeros);
        let high = write_chain(b, lim, depth + 1, ones);
        let slot = slot_of(entry.hash, h.global_depth);
        let span = 1usize << (h.global_depth - depth);
        let start = slot / span * span;
        set_slots(b, lim, &mut h, start, span / 2, low)?;
        set_slots(b, lim, &mut h, start + span / 2, span / 2, high)?;
    }
    h.count += 1;
    b.set(root, Dirty::HashHeader(h));
    Ok((root, true))
}

/// Removes (key, value) if present. Returns the new header page and whether it was removed.
pub(crate) fn remove(
    b: &mut Batch<'_>,
    lim: &HashLimits,
    root: PageNo,
    key: &[u8],
    value: &[u8],
) -> Result<(PageNo, bool)> {
    let hash = hash64(key);
    let h = b.header(root)?;
    check_header(&h, lim, root)?;
    let slot = slot_of(hash, h.global_depth);
    let head = dir_slot(b, &h, lim, slot)?;
    // Find the page holding the pair, in place.
    let mut seen = 0usize;
    let mut found = None;
    let mut page_index = 0usize;
    let mut no = head;
    let mut chain = Vec::new();
    while no != 0 && found.is_none() {
        let info = b.visit(no, &mut |eh, ek, ev| {
            if found.is_none() && eh == hash && ek == key && ev == value {
                found = Some(seen);
            }
            seen += 1;
        })?;
        chain.push((no, info));
        if found.is_none() {
            no = info.next;
            page_index += 1;
            seen = 0;
        }
        if chain.len() > 1 << 20 {
            return Err(page::corrupt(
                Path::new(""),
                head,
                "hash bucket chain has a cycle",
            ));
        }
    }
    let Some(at) = found else {
        return Ok((root, false));
    };
    let root = b.own(root)?;
    let mut h = h;
    // Copy the pages from the head to the one holding the pair (each copy
    // gets a new number, so its predecessor must point at it), and drop
    // the entry; a page left empty behind the head is unlinked.
    let mut successor: Option<PageNo> = None;
    for (i, &(no, _)) in chain.iter().enumerate().rev() {
        let owned = b.own(no)?;
        let Dirty::Bucket(bk) = b.get_mut(owned) else {
            return Err(page::corrupt(
                b.pool.path(),
                owned,
                "expected a hash bucket page",
            ));
        };
        if i == page_index {
            bk.remove(at);
            if bk.is_empty() && i > 0 {
                let next = bk.next;
                b.free(owned);
                successor = Some(next);
                continue;
            }
        } else if let Some(next) = successor {
            bk.next = next;
        }
        successor = Some(owned);
    }
    let new_head = successor.expect("the chain has a head");
    if new_head != head {
        let span = span(&h, chain[0].1.local_depth, head)?;
        set_slots(b, lim, &mut h, slot / span * span, span, new_head)?;
    }
    h.count -= 1;
    b.set(root, Dirty::HashHeader(h));
    Ok((root, true))
}

/// Frees every page of a hash index.
pub(crate) fn free_all(b: &mut Batch<'_>, root: PageNo) -> Result<()> {
    let h = b.header(root)?;
    let mut buckets = std::collections::BTreeSet::new();
    for &p in &h.dir_pages {
        buckets.extend(b.dir(p)?);
        b.free(p);
    }
    for head in buckets {
        let (_, pages, _) = chain_entries(b, head)?;
        for p in pages {
            b.free(p);
        }
    }
    b.free(root);
    Ok(())
}

/// Visits every page of a committed hash index; returns the global depth.
pub(crate) fn walk(
    pool: &BufferPool,
    root: PageNo,
    visit: &mut dyn FnMut(PageNo, PageKind) -> Result<()>,
) -> Result<u8> {
    let h = pool.header(root)?;
    visit(root, PageKind::HashHeader)?;
    let mut buckets = std::collections::BTreeSet::new();
    for &p in &h.dir_pages {
        visit(p, PageKind::HashDir)?;
        buckets.extend(pool.dir(p)?);
    }
    for head in buckets {
        let mut no = head;
        let mut n = 0u64;
        while no != 0 {
            visit(no, PageKind::HashBucket)?;
            no = pool.bucket(no)?.next;
            n += 1;
            if n > 1 << 20 {
                return Err(page::corrupt(
                    pool.path(),
                    head,
                    "hash bucket chain has a cycle",
                ));
            }
        }
    }
    Ok(h.global_depth)
}

/// A callback given each (key, value) entry of a hash index; an error stops the visit.
pub(crate) type KeyValueVisitor<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<()>;

/// Calls `f(key, value)` for every entry of a committed hash index, one
/// bucket chain at a time (a snapshot's export).
pub(crate) fn for_each_entry(
    pool: &BufferPool,
    root: PageNo,
    f: KeyValueVisitor<'_>,
) -> Result<()> {
    let h = pool.header(root)?;
    let mut heads = std::collections::BTreeSet::new();
    for &p in &h.dir_pages {
        heads.extend(pool.dir(p)?);
    }
    let mut chain: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for head in heads {
        chain.clear();
        walk_chain(pool, head, &mut |_, key, value| {
            chain.push((key.to_vec(), value.to_vec()));
        })?;
        for (key, value) in &chain {
            f(key, value)?;
        }
    }
    Ok(())
}
