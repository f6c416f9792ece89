//! In-place edits of a leaf page copied byte for byte.
//!
//! Copy-on-write changes a leaf by one entry per key written; decoding the
//! whole leaf into vectors for that (one allocation per entry) and encoding it
//! back costs far more than the change. A commit therefore copies the leaf's
//! bytes and edits the slotted page directly: a new entry goes into the free
//! gap between the slot array and the entries, the slot array shifts by one
//! slot, and a removed entry leaves dead space that is compacted away when the
//! gap runs out. Only a leaf that must split is decoded.
//!
//! Bytes 26..28 of a leaf hold the offset of its lowest entry (0 meaning the
//! page end), so the free gap is known without scanning the slots.

use std::path::Path;

use super::node::{LEAF_HEADER, LeafValue, LeafView};
use crate::error::Result;
use crate::page::{self, HEADER_LEN, PageNo};

const FLAG_OVERFLOW: u8 = 1;
const ENTRY_FIXED: usize = 7;

fn count(buf: &[u8]) -> usize {
    u16::from_le_bytes([buf[HEADER_LEN], buf[HEADER_LEN + 1]]) as usize
}

fn set_count(buf: &mut [u8], n: usize) {
    page::put_u16(buf, HEADER_LEN, n as u16);
}

/// Offset of the lowest entry (the end of the free gap).
pub(crate) fn data_start(buf: &[u8]) -> usize {
    match u16::from_le_bytes([buf[HEADER_LEN + 2], buf[HEADER_LEN + 3]]) as usize {
        0 => buf.len(),
        v => v,
    }
}

pub(crate) fn set_data_start(buf: &mut [u8], at: usize) {
    let v = if at >= buf.len() { 0 } else { at as u16 };
    page::put_u16(buf, HEADER_LEN + 2, v);
}

fn slot(buf: &[u8], i: usize) -> usize {
    let at = LEAF_HEADER + 2 * i;
    u16::from_le_bytes([buf[at], buf[at + 1]]) as usize
}

fn entry_len(buf: &[u8], off: usize) -> usize {
    let klen = u16::from_le_bytes([buf[off], buf[off + 1]]) as usize;
    let vlen = u32::from_le_bytes(buf[off + 3..off + 7].try_into().expect("4")) as usize;
    let stored = if buf[off + 2] & FLAG_OVERFLOW != 0 {
        8
    } else {
        vlen
    };
    ENTRY_FIXED + klen + stored
}

/// Checks everything the in-place edits rely on: slots and entries inside
/// the page, entries above the data start, keys in order.
pub(crate) fn check(buf: &[u8], file: &Path, no: PageNo) -> Result<()> {
    let view = LeafView::new(buf, file, no)?;
    let start = data_start(buf);
    let slots_end = LEAF_HEADER + 2 * view.count;
    if start < slots_end || start > buf.len() {
        return Err(page::corrupt(
            file,
            no,
            format!(
                "leaf data start {start} is outside {slots_end}..={}",
                buf.len()
            ),
        ));
    }
    let mut prev: Option<&[u8]> = None;
    for i in 0..view.count {
        let (key, _) = view.entry(i)?;
        let off = slot(buf, i);
        if off < start {
            return Err(page::corrupt(
                file,
                no,
                format!("leaf entry {i} lies below the data start"),
            ));
        }
        if prev.is_some_and(|p| p >= key) {
            return Err(page::corrupt(
                file,
                no,
                format!("leaf keys out of order at entry {i}"),
            ));
        }
        prev = Some(key);
    }
    Ok(())
}

/// The page's size if its entries were packed: header, slots and entries.
pub(crate) fn live_bytes(buf: &[u8]) -> usize {
    let n = count(buf);
    LEAF_HEADER
        + (0..n)
            .map(|i| 2 + entry_len(buf, slot(buf, i)))
            .sum::<usize>()
}

/// Moves every entry to the end of the page, in slot order, removing dead space.
fn compact(buf: &mut [u8]) {
    let n = count(buf);
    let entries: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let off = slot(buf, i);
            buf[off..off + entry_len(buf, off)].to_vec()
        })
        .collect();
    let mut end = buf.len();
    for (i, e) in entries.iter().enumerate() {
        end -= e.len();
        buf[end..end + e.len()].copy_from_slice(e);
        page::put_u16(buf, LEAF_HEADER + 2 * i, end as u16);
    }
    set_data_start(buf, end);
}

/// Inserts an entry at slot `i`; false (page untouched) when it does not fit.
pub(crate) fn insert(buf: &mut [u8], i: usize, key: &[u8], value: &LeafValue) -> bool {
    let stored = match value {
        LeafValue::Inline(v) => v.len(),
        LeafValue::Overflow { .. } => 8,
    };
    let need = ENTRY_FIXED + key.len() + stored;
    let n = count(buf);
    let gap = |buf: &[u8]| data_start(buf).saturating_sub(LEAF_HEADER + 2 * n);
    if gap(buf) < need + 2 {
        if live_bytes(buf) + 2 + need > buf.len() {
            return false;
        }
        compact(buf);
    }
    let at = data_start(buf) - need;
    page::put_u16(buf, at, key.len() as u16);
    let (flags, vlen) = match value {
        LeafValue::Inline(v) => (0, v.len() as u32),
        LeafValue::Overflow { len, .. } => (FLAG_OVERFLOW, *len as u32),
    };
    buf[at + 2] = flags;
    page::put_u32(buf, at + 3, vlen);
    let k = at + ENTRY_FIXED;
    buf[k..k + key.len()].copy_from_slice(key);
    match value {
        LeafValue::Inline(v) => buf[k + key.len()..k + key.len() + v.len()].copy_from_slice(v),
        LeafValue::Overflow { first, .. } => page::put_u64(buf, k + key.len(), *first),
    }
    let slots = LEAF_HEADER + 2 * i;
    buf.copy_within(slots..LEAF_HEADER + 2 * n, slots + 2);
    page::put_u16(buf, slots, at as u16);
    set_count(buf, n + 1);
    set_data_start(buf, at);
    true
}

/// Removes the entry at slot `i` and returns its value. Its bytes become
/// dead space until the next compaction.
pub(crate) fn remove(buf: &mut [u8], i: usize) -> LeafValue {
    let n = count(buf);
    let off = slot(buf, i);
    let klen = u16::from_le_bytes([buf[off], buf[off + 1]]) as usize;
    let vlen = u32::from_le_bytes(buf[off + 3..off + 7].try_into().expect("4"));
    let v = off + ENTRY_FIXED + klen;
    let value = if buf[off + 2] & FLAG_OVERFLOW != 0 {
        LeafValue::Overflow {
            len: u64::from(vlen),
            first: u64::from_le_bytes(buf[v..v + 8].try_into().expect("8")),
        }
    } else {
        LeafValue::Inline(buf[v..v + vlen as usize].to_vec())
    };
    let slots = LEAF_HEADER + 2 * i;
    buf.copy_within(slots + 2..LEAF_HEADER + 2 * n, slots);
    set_count(buf, n - 1);
    if n == 1 {
        set_data_start(buf, buf.len());
    }
    value
}

/// Number of entries.
pub(crate) fn len(buf: &[u8]) -> usize {
    count(buf)
}
