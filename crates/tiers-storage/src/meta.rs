//! The two checkpoint meta slots (pages 0 and 1) and the checkpoint's free list.
//!
//! A checkpoint is published by writing the slot it does not currently use
//! and fsyncing: the atomic switch of the book's shadow paging. On open, the
//! valid slot with the higher checkpoint id wins, so a torn meta write just
//! leaves the previous checkpoint in force.
//!
//! Meta page body (after the common header):
//!
//! | bytes | field |
//! |---|---|
//! | 24..32 | magic `TIERSDB1` |
//! | 32..36 | format version (2; version 1 lacks the fields from byte 88) |
//! | 36..40 | page size |
//! | 40..48 | checkpoint id (increments by one) |
//! | 48..56 | LSN of the last commit the checkpoint contains |
//! | 56..64 | catalog B+tree root (0 = no trees) |
//! | 64..72 | pages in the file at the checkpoint |
//! | 72..80 | first free-list page (0 = none) |
//! | 80..88 | number of free pages listed |
//! | 88..96 | term of the last applied entry (a cluster's; 0 on a single node) |
//! | 96..100 | length of the cluster membership (0 = not a cluster member) |
//! | 100.. | the membership as of the last applied entry (the cluster's own encoding) |
//!
//! Free-list page body: next page u64 at 24, count u32 at 32, page numbers from 36.

use std::path::Path;

use crate::error::{Error, Result};
use crate::page::{self, HEADER_LEN, PageKind, PageNo, Reader};
use crate::vfs::VfsFile;

const MAGIC: &[u8; 8] = b"TIERSDB1";
const FORMAT_VERSION: u32 = 2;
const MEMBERSHIP_AT: usize = 100;
const FREELIST_FIXED: usize = HEADER_LEN + 12;

/// The contents of a meta slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Page size of the file.
    pub page_size: usize,
    /// Checkpoint id; the higher valid slot wins.
    pub checkpoint_id: u64,
    /// LSN of the last commit included.
    pub lsn: u64,
    /// Root of the catalog B+tree.
    pub catalog_root: Option<PageNo>,
    /// Pages in the file.
    pub high_water: PageNo,
    /// First free-list page.
    pub freelist_head: Option<PageNo>,
    /// Free pages listed.
    pub freelist_count: u64,
    /// Term of the last applied entry (0 on a single node).
    pub term: u64,
    /// Cluster membership as of the last applied entry (None on a single node).
    pub membership: Option<Vec<u8>>,
}

impl Meta {
    /// The longest membership a meta page of `page_size` holds.
    pub fn max_membership(page_size: usize) -> usize {
        page_size - MEMBERSHIP_AT
    }
}

impl Meta {
    /// Encodes the meta into a sealed page for `slot` (0 or 1).
    pub fn encode(&self, slot: PageNo) -> page::PageBuf {
        let mut buf = page::new_page(self.page_size, slot, PageKind::Meta, self.lsn);
        buf[24..32].copy_from_slice(MAGIC);
        page::put_u32(&mut buf, 32, FORMAT_VERSION);
        page::put_u32(&mut buf, 36, self.page_size as u32);
        page::put_u64(&mut buf, 40, self.checkpoint_id);
        page::put_u64(&mut buf, 48, self.lsn);
        page::put_u64(&mut buf, 56, self.catalog_root.unwrap_or(0));
        page::put_u64(&mut buf, 64, self.high_water);
        page::put_u64(&mut buf, 72, self.freelist_head.unwrap_or(0));
        page::put_u64(&mut buf, 80, self.freelist_count);
        page::put_u64(&mut buf, 88, self.term);
        let membership = self.membership.as_deref().unwrap_or(&[]);
        page::put_u32(&mut buf, 96, membership.len() as u32);
        buf[MEMBERSHIP_AT..MEMBERSHIP_AT + membership.len()].copy_from_slice(membership);
        page::seal(&mut buf);
        buf
    }

    fn decode(buf: &[u8], file: &Path, slot: PageNo) -> Result<Meta> {
        page::check(buf, file, slot, Some(PageKind::Meta))?;
        let r = Reader::new(buf, file, slot);
        if r.slice(24, 8)? != MAGIC {
            return Err(r.corrupt("meta page lacks the TIERSDB1 magic"));
        }
        let version = r.u32(32)?;
        if version != 1 && version != FORMAT_VERSION {
            return Err(r.corrupt(format!(
                "unsupported data file format version {version} (this build reads versions 1 and 2)"
            )));
        }
        let page_size = r.u32(36)? as usize;
        if page_size != buf.len() {
            return Err(r.corrupt(format!(
                "meta says page size {page_size}, slot is {}",
                buf.len()
            )));
        }
        let opt = |v: u64| if v == 0 { None } else { Some(v) };
        Ok(Meta {
            page_size,
            checkpoint_id: r.u64(40)?,
            lsn: r.u64(48)?,
            catalog_root: opt(r.u64(56)?),
            high_water: r.u64(64)?,
            freelist_head: opt(r.u64(72)?),
            freelist_count: r.u64(80)?,
            term: if version == 1 { 0 } else { r.u64(88)? },
            membership: if version == 1 {
                None
            } else {
                let len = r.u32(96)? as usize;
                if len > Meta::max_membership(buf.len()) {
                    return Err(r.corrupt(format!("meta claims a {len}-byte membership")));
                }
                (len > 0).then(|| buf[MEMBERSHIP_AT..MEMBERSHIP_AT + len].to_vec())
            },
        })
    }
}

/// Reads both slots and returns the newest valid one, with the problems
/// found in the other (a torn or corrupt slot is expected after a crash
/// during a checkpoint and is not fatal while the other slot is good).
pub fn read_meta(file: &dyn VfsFile, path: &Path) -> Result<(Meta, Vec<String>)> {
    let mut found: Vec<Meta> = Vec::new();
    let mut problems = Vec::new();
    let mut head = [0u8; 40];
    let n = file
        .read_at(&mut head, 0)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let hinted = (n == 40 && &head[24..32] == MAGIC)
        .then(|| u32::from_le_bytes(head[36..40].try_into().expect("4")) as usize)
        .filter(|ps| (4096..=65536).contains(ps) && ps.is_power_of_two());
    let sizes: Vec<usize> = match hinted {
        Some(ps) => vec![ps],
        None => (12..=16).map(|s| 1usize << s).collect(),
    };
    for ps in sizes {
        for slot in 0..2u64 {
            let mut buf = vec![0u8; ps];
            let got = file
                .read_at(&mut buf, slot * ps as u64)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            if got < ps {
                problems.push(format!(
                    "meta slot {slot} is incomplete ({got} of {ps} bytes)"
                ));
                continue;
            }
            match Meta::decode(&buf, path, slot) {
                Ok(m) => found.push(m),
                Err(e) => problems.push(format!(
                    "meta slot {slot} is unusable (the other slot is in force): {e}"
                )),
            }
        }
        if !found.is_empty() {
            break;
        }
    }
    match found.into_iter().max_by_key(|m| m.checkpoint_id) {
        Some(m) => Ok((
            m,
            if hinted.is_some() {
                problems
            } else {
                Vec::new()
            },
        )),
        None => Err(Error::BadDirectory {
            dir: path.to_path_buf(),
            detail: format!(
                "no valid meta page: {}",
                if problems.is_empty() {
                    "file too short".to_string()
                } else {
                    problems.join("; ")
                }
            ),
        }),
    }
}

/// Free-list entries one page holds.
pub fn freelist_capacity(page_size: usize) -> usize {
    (page_size - FREELIST_FIXED) / 8
}

/// Encodes `free` into sealed pages stored at `pages` (chained in order).
pub fn encode_freelist(
    page_size: usize,
    lsn: u64,
    pages: &[PageNo],
    free: &[PageNo],
) -> Vec<page::PageBuf> {
    let cap = freelist_capacity(page_size);
    let chunks: Vec<&[PageNo]> = free.chunks(cap).collect();
    debug_assert!(chunks.len() <= pages.len());
    pages
        .iter()
        .enumerate()
        .map(|(i, &no)| {
            let mut buf = page::new_page(page_size, no, PageKind::FreeList, lsn);
            let next = pages.get(i + 1).copied().unwrap_or(0);
            let entries = chunks.get(i).copied().unwrap_or(&[]);
            page::put_u64(&mut buf, HEADER_LEN, next);
            page::put_u32(&mut buf, HEADER_LEN + 8, entries.len() as u32);
            for (j, p) in entries.iter().enumerate() {
                page::put_u64(&mut buf, FREELIST_FIXED + 8 * j, *p);
            }
            page::seal(&mut buf);
            buf
        })
        .collect()
}

/// Decodes one free-list page: (next page, entries).
pub fn decode_freelist(buf: &[u8], file: &Path, no: PageNo) -> Result<(PageNo, Vec<PageNo>)> {
    let r = Reader::new(buf, file, no);
    let next = r.u64(HEADER_LEN)?;
    let n = r.u32(HEADER_LEN + 8)? as usize;
    if n > freelist_capacity(buf.len()) {
        return Err(r.corrupt(format!("free-list page claims {n} entries")));
    }
    let entries = (0..n)
        .map(|j| r.u64(FREELIST_FIXED + 8 * j))
        .collect::<Result<_>>()?;
    Ok((next, entries))
}
