//! The B+tree: root, branch and leaf pages (the book's B-tree index).
//!
//! Keys and values are byte strings compared with `memcmp`; [`crate::keyenc`]
//! turns typed composite keys into such strings. Values too large for a leaf
//! go to overflow page chains. The tree is copy-on-write: a commit copies the
//! path from the root to every leaf it changes (see [`crate::batch`]), so a
//! reader's snapshot is just a root page number, and readers never wait for
//! writers. Leaves have no sibling links (they would defeat copy-on-write);
//! cursors walk with a stack of (page, index) from the root instead.
//!
//! Splits put an appended key alone in the new right page (so sequential
//! loads fill pages) and otherwise split by bytes; separators are the
//! shortest prefix that divides the two halves (suffix truncation). A node
//! below a quarter full is merged with a sibling, or the two are rebalanced
//! when they do not fit in one page; a root branch left with one child is
//! replaced by it.

pub(crate) mod cursor;
pub(crate) mod node;
pub(crate) mod raw_leaf;

use crate::batch::{Batch, Dirty};
use crate::error::{Error, Result};
use crate::page::{self, PageKind, PageNo};
use crate::pool::BufferPool;
use node::{Branch, BranchView, Leaf, LeafValue, LeafView, Limits, RawValue};

/// Reads a value stored in a leaf, following its overflow chain.
pub(crate) fn read_value(pool: &BufferPool, raw: RawValue<'_>) -> Result<Vec<u8>> {
    match raw {
        RawValue::Inline(v) => Ok(v.to_vec()),
        RawValue::Overflow { len, first } => read_overflow(pool, len, first),
    }
}

fn read_overflow(pool: &BufferPool, len: u64, first: PageNo) -> Result<Vec<u8>> {
    // The length comes from disk: cap the up-front allocation.
    let mut out = Vec::with_capacity((len as usize).min(1 << 20));
    let mut no = first;
    let mut pages = 0u64;
    while no != 0 {
        let page = pool.get(no, Some(PageKind::Overflow))?;
        let (next, data) = node::overflow_view(&page, pool.path(), no)?;
        out.extend_from_slice(data);
        pages += 1;
        if out.len() as u64 > len || pages > len / 16 + 2 {
            return Err(page::corrupt(
                pool.path(),
                no,
                "overflow chain longer than its value",
            ));
        }
        no = next;
    }
    if out.len() as u64 != len {
        return Err(page::corrupt(
            pool.path(),
            first,
            format!(
                "overflow chain holds {} bytes, the leaf says {len}",
                out.len()
            ),
        ));
    }
    Ok(out)
}

/// Point lookup in a committed tree.
pub(crate) fn get(pool: &BufferPool, root: PageNo, key: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut no = root;
    for _depth in 0..64 {
        let page = pool.get(no, Some(PageKind::Branch))?;
        if node::is_leaf(&page) {
            let leaf = LeafView::new(&page, pool.path(), no)?;
            return match leaf.search(key)? {
                Ok(i) => Ok(Some(read_value(pool, leaf.entry(i)?.1)?)),
                Err(_) => Ok(None),
            };
        }
        let branch = BranchView::new(&page, pool.path(), no)?;
        no = branch.child(branch.child_index(key)?)?;
    }
    Err(page::corrupt(
        pool.path(),
        root,
        "tree deeper than 64 levels (a cycle?)",
    ))
}

/// Point lookup through a batch (sees the batch's own edits).
pub(crate) fn lookup(b: &Batch<'_>, root: PageNo, key: &[u8]) -> Result<Option<LeafValue>> {
    let mut no = root;
    for _depth in 0..64 {
        match b.owned(no) {
            Some(Dirty::Branch(br)) => no = br.children[br.child_index(key)],
            Some(Dirty::BranchRaw(raw)) => {
                let view = BranchView::new(raw, b.pool.path(), no)?;
                no = view.child(view.child_index(key)?)?;
            }
            Some(Dirty::Leaf(l)) => return Ok(l.search(key).ok().map(|i| l.entries[i].1.clone())),
            Some(Dirty::LeafRaw(raw)) => {
                let leaf = LeafView::new(raw, b.pool.path(), no)?;
                return match leaf.search(key)? {
                    Ok(i) => Ok(Some(leaf.entry(i)?.1.to_owned())),
                    Err(_) => Ok(None),
                };
            }
            Some(_) => return Err(page::corrupt(b.pool.path(), no, "not a B+tree page")),
            None => {
                let page = b.read(no, Some(PageKind::Branch))?;
                if node::is_leaf(&page) {
                    let leaf = LeafView::new(&page, b.pool.path(), no)?;
                    return match leaf.search(key)? {
                        Ok(i) => Ok(Some(leaf.entry(i)?.1.to_owned())),
                        Err(_) => Ok(None),
                    };
                }
                let branch = BranchView::new(&page, b.pool.path(), no)?;
                no = branch.child(branch.child_index(key)?)?;
            }
        }
    }
    Err(page::corrupt(
        b.pool.path(),
        root,
        "tree deeper than 64 levels (a cycle?)",
    ))
}

/// Reads a value through a batch.
pub(crate) fn lookup_value(b: &Batch<'_>, root: PageNo, key: &[u8]) -> Result<Option<Vec<u8>>> {
    match lookup(b, root, key)? {
        None => Ok(None),
        Some(LeafValue::Inline(v)) => Ok(Some(v)),
        Some(LeafValue::Overflow { len, first }) => Ok(Some(read_overflow(b.pool, len, first)?)),
    }
}

/// The decoded form of an owned leaf, decoding a raw copy on first use.
fn leaf_mut<'b>(b: &'b mut Batch<'_>, no: PageNo) -> &'b mut Leaf {
    if let Dirty::LeafRaw(raw) = b.get_mut(no) {
        // The raw copy passed `raw_leaf::check` when it was owned.
        let decoded = LeafView::new(raw, std::path::Path::new(""), no)
            .and_then(|v| v.decode())
            .expect("raw leaf was checked when copied");
        *b.get_mut(no) = Dirty::Leaf(decoded);
    }
    match b.get_mut(no) {
        Dirty::Leaf(l) => l,
        other => unreachable!("page {no} checked as a leaf, found {other:?}"),
    }
}

/// The decoded form of an owned branch, decoding a raw copy on first use.
fn branch_mut<'b>(b: &'b mut Batch<'_>, no: PageNo) -> &'b mut Branch {
    if let Dirty::BranchRaw(raw) = b.get_mut(no) {
        // The raw copy passed `BranchView::check` when it was owned.
        let decoded = BranchView::new(raw, std::path::Path::new(""), no)
            .and_then(|v| v.decode())
            .expect("raw branch was checked when copied");
        *b.get_mut(no) = Dirty::Branch(decoded);
    }
    match b.get_mut(no) {
        Dirty::Branch(br) => br,
        other => unreachable!("page {no} checked as a branch, found {other:?}"),
    }
}

/// Points child `idx` of owned branch `no` at `child`.
fn set_child(b: &mut Batch<'_>, no: PageNo, idx: usize, child: PageNo) {
    match b.get_mut(no) {
        Dirty::BranchRaw(raw) => node::set_raw_child(raw, idx, child),
        Dirty::Branch(br) => br.children[idx] = child,
        other => unreachable!("page {no} checked as a branch, found {other:?}"),
    }
}

/// Copies the path from `root` to the leaf for `key` into the batch.
/// Returns the ancestors as (branch, child index) and the leaf.
fn own_path(b: &mut Batch<'_>, root: PageNo, key: &[u8]) -> Result<(Vec<(PageNo, usize)>, PageNo)> {
    let mut path = Vec::new();
    let mut cur = b.own(root)?;
    loop {
        let (idx, child) = match b.owned(cur) {
            Some(Dirty::Leaf(_) | Dirty::LeafRaw(_)) => return Ok((path, cur)),
            Some(Dirty::Branch(br)) => {
                let idx = br.child_index(key);
                (idx, br.children[idx])
            }
            Some(Dirty::BranchRaw(raw)) => {
                let view = BranchView::new(raw, b.pool.path(), cur)?;
                let idx = view.child_index(key)?;
                (idx, view.child(idx)?)
            }
            _ => return Err(page::corrupt(b.pool.path(), cur, "not a B+tree page")),
        };
        if path.len() > 64 {
            return Err(page::corrupt(
                b.pool.path(),
                root,
                "tree deeper than 64 levels",
            ));
        }
        let owned = b.own(child)?;
        set_child(b, cur, idx, owned);
        path.push((cur, idx));
        cur = owned;
    }
}

/// Stores a value, inline or in a new overflow chain.
fn store_value(b: &mut Batch<'_>, limits: &Limits, key: &[u8], value: &[u8]) -> LeafValue {
    if limits.inline(key.len(), value.len()) {
        return LeafValue::Inline(value.to_vec());
    }
    let chunk = limits.page_size - node::OVERFLOW_HEADER;
    let mut next = 0;
    // Build back to front so each page knows its successor.
    let chunks: Vec<&[u8]> = value.chunks(chunk).collect();
    for data in chunks.into_iter().rev() {
        next = b.alloc(Dirty::Overflow {
            next,
            data: data.to_vec(),
        });
    }
    LeafValue::Overflow {
        len: value.len() as u64,
        first: next,
    }
}

fn free_value(b: &mut Batch<'_>, value: &LeafValue) -> Result<()> {
    let LeafValue::Overflow { first, .. } = value else {
        return Ok(());
    };
    let mut no = *first;
    let mut guard = 0u64;
    while no != 0 {
        let next = match b.owned(no) {
            Some(Dirty::Overflow { next, .. }) => *next,
            _ => {
                let page = b.read(no, Some(PageKind::Overflow))?;
                node::overflow_view(&page, b.pool.path(), no)?.0
            }
        };
        b.free(no);
        no = next;
        guard += 1;
        if guard > (1 << 20) {
            return Err(page::corrupt(
                b.pool.path(),
                *first,
                "overflow chain has a cycle",
            ));
        }
    }
    Ok(())
}

/// Inserts or replaces `key`. Returns the new root and whether the key existed.
pub(crate) fn insert(
    b: &mut Batch<'_>,
    limits: &Limits,
    root: Option<PageNo>,
    key: &[u8],
    value: &[u8],
) -> Result<(PageNo, bool)> {
    if key.len() > limits.max_key {
        return Err(Error::TooLarge {
            what: "key",
            len: key.len(),
            max: limits.max_key,
        });
    }
    let stored = store_value(b, limits, key, value);
    let Some(root) = root else {
        let leaf = Leaf::new(vec![(key.to_vec(), stored)]);
        return Ok((b.alloc(Dirty::Leaf(leaf)), false));
    };
    let (path, leaf_no) = own_path(b, root, key)?;
    let (existed, appended) = put_in_leaf(b, leaf_no, key, stored)?;
    let root = fix_path(b, limits, path, leaf_no, appended, false)?;
    Ok((root.expect("a tree with a new key is not empty"), existed))
}

/// Puts an entry into owned leaf `no`, in place when it fits. Returns
/// whether the key existed and whether it was appended at the end.
fn put_in_leaf(
    b: &mut Batch<'_>,
    no: PageNo,
    key: &[u8],
    stored: LeafValue,
) -> Result<(bool, bool)> {
    enum Outcome {
        Done(bool, bool, Option<LeafValue>),
        Decode(std::result::Result<usize, usize>, Option<LeafValue>),
    }
    let outcome = match b.get_mut(no) {
        Dirty::LeafRaw(raw) => {
            let found = LeafView::new(raw, std::path::Path::new(""), no)?.search(key)?;
            let i = match found {
                Ok(i) | Err(i) => i,
            };
            let old = found.is_ok().then(|| raw_leaf::remove(raw, i));
            let appended = found.is_err() && i == raw_leaf::len(raw);
            if raw_leaf::insert(raw, i, key, &stored) {
                Outcome::Done(found.is_ok(), appended, old)
            } else {
                // No room: the entry (if any) is already removed; decode and
                // let the split path take the insert.
                Outcome::Decode(Err(i), old)
            }
        }
        _ => {
            let found = leaf_mut(b, no).search(key);
            Outcome::Decode(found, None)
        }
    };
    let (existed, appended, old) = match outcome {
        Outcome::Done(existed, appended, old) => (existed, appended, old),
        Outcome::Decode(found, removed) => {
            let leaf = leaf_mut(b, no);
            match found {
                Ok(i) => {
                    let old = leaf.replace_at(i, stored);
                    (true, false, Some(old))
                }
                Err(i) => {
                    let appended = removed.is_none() && i == leaf.entries.len();
                    leaf.insert_at(i, key.to_vec(), stored);
                    (removed.is_some(), appended, removed)
                }
            }
        }
    };
    if let Some(old) = old {
        free_value(b, &old)?;
    }
    Ok((existed, appended))
}

/// Deletes `key`. Returns the new root (None when the tree became empty) and
/// whether the key existed; an absent key copies nothing.
pub(crate) fn delete(
    b: &mut Batch<'_>,
    limits: &Limits,
    root: PageNo,
    key: &[u8],
) -> Result<(Option<PageNo>, bool)> {
    if lookup(b, root, key)?.is_none() {
        return Ok((Some(root), false));
    }
    let (path, leaf_no) = own_path(b, root, key)?;
    let old = match b.get_mut(leaf_no) {
        Dirty::LeafRaw(raw) => {
            let found = LeafView::new(raw, std::path::Path::new(""), leaf_no)?.search(key)?;
            let i = found.expect("key was found by lookup");
            raw_leaf::remove(raw, i)
        }
        _ => {
            let leaf = leaf_mut(b, leaf_no);
            let i = leaf.search(key).expect("key was found by lookup");
            leaf.remove_at(i).1
        }
    };
    free_value(b, &old)?;
    Ok((fix_path(b, limits, path, leaf_no, false, true)?, true))
}

/// The encoded size of an owned node; None for a raw branch, whose size did
/// not change since it was committed (so it neither overflows nor shrank).
fn node_bytes(b: &Batch<'_>, no: PageNo) -> Option<usize> {
    match b.owned(no) {
        Some(Dirty::Leaf(l)) => Some(l.bytes),
        Some(Dirty::LeafRaw(raw)) => Some(raw_leaf::live_bytes(raw)),
        Some(Dirty::Branch(br)) => Some(br.bytes),
        Some(Dirty::BranchRaw(_)) => None,
        _ => unreachable!("fix_path visits owned B+tree nodes"),
    }
}

/// Restores size invariants bottom-up along a modified path: splits nodes
/// that overflow, grows or shrinks the root, and (after a delete, when
/// `shrinking`) merges or rebalances nodes under a quarter full. Inserts
/// leave small nodes alone: the fresh right page of an append split starts
/// nearly empty on purpose, and evening it out would half-fill every page of
/// a sequential load. Returns the new root.
fn fix_path(
    b: &mut Batch<'_>,
    limits: &Limits,
    mut path: Vec<(PageNo, usize)>,
    mut node: PageNo,
    mut appended: bool,
    shrinking: bool,
) -> Result<Option<PageNo>> {
    let ps = limits.page_size;
    while let Some((parent, idx)) = path.pop() {
        match node_bytes(b, node) {
            Some(bytes) if bytes > ps => {
                let (sep, right) = split(b, node, appended);
                let br = branch_mut(b, parent);
                appended = idx + 1 == br.children.len();
                br.insert_at(idx, sep, right);
            }
            Some(bytes) if shrinking && bytes < ps / 4 => {
                appended = false;
                rebalance(b, ps, parent, idx)?;
            }
            _ => appended = false,
        }
        node = parent;
    }
    if node_bytes(b, node).is_some_and(|bytes| bytes > ps) {
        let (sep, right) = split(b, node, appended);
        return Ok(Some(
            b.alloc(Dirty::Branch(Branch::new(vec![sep], vec![node, right]))),
        ));
    }
    match b.owned(node) {
        Some(Dirty::Branch(br)) if br.keys.is_empty() => {
            let only = br.children[0];
            b.free(node);
            Ok(Some(only))
        }
        Some(Dirty::Leaf(l)) if l.entries.is_empty() => {
            b.free(node);
            Ok(None)
        }
        Some(Dirty::LeafRaw(raw)) if raw_leaf::len(raw) == 0 => {
            b.free(node);
            Ok(None)
        }
        _ => Ok(Some(node)),
    }
}

/// The shortest key `s` with `left < s <= right`.
fn separator(left: &[u8], right: &[u8]) -> Vec<u8> {
    debug_assert!(left < right);
    let common = left.iter().zip(right).take_while(|(a, c)| a == c).count();
    right[..(common + 1).min(right.len())].to_vec()
}

/// Index at which to cut `sizes` so both halves weigh about the same.
fn balanced_cut(sizes: impl Iterator<Item = usize> + Clone, min: usize, max: usize) -> usize {
    let total: usize = sizes.clone().sum();
    let mut acc = 0;
    for (i, s) in sizes.enumerate() {
        if acc + s / 2 >= total / 2 {
            return i.clamp(min, max);
        }
        acc += s;
    }
    max
}

/// Splits an overflowing node; returns the separator and the new right node.
fn split(b: &mut Batch<'_>, no: PageNo, appended: bool) -> (Vec<u8>, PageNo) {
    match b.get_mut(no) {
        Dirty::Leaf(leaf) => {
            let n = leaf.entries.len();
            debug_assert!(n >= 2);
            let cut = if appended {
                n - 1
            } else {
                balanced_cut(
                    leaf.entries
                        .iter()
                        .map(|(k, v)| node::leaf_entry_size(k, v)),
                    1,
                    n - 1,
                )
            };
            let right = leaf.entries.split_off(cut);
            *leaf = Leaf::new(std::mem::take(&mut leaf.entries));
            let sep = separator(&leaf.entries[cut - 1].0, &right[0].0);
            let right_no = b.alloc(Dirty::Leaf(Leaf::new(right)));
            (sep, right_no)
        }
        Dirty::Branch(br) => {
            let n = br.keys.len();
            debug_assert!(n >= 3);
            let mid = if appended {
                n - 2
            } else {
                balanced_cut(br.keys.iter().map(|k| node::branch_entry_size(k)), 1, n - 2)
            };
            let right_keys = br.keys.split_off(mid + 1);
            let sep = br.keys.pop().expect("mid key");
            let right_children = br.children.split_off(mid + 1);
            *br = Branch::new(
                std::mem::take(&mut br.keys),
                std::mem::take(&mut br.children),
            );
            let right_no = b.alloc(Dirty::Branch(Branch::new(right_keys, right_children)));
            (sep, right_no)
        }
        other => unreachable!("split of a non-B+tree page {other:?}"),
    }
}

/// Merges the underfull child `idx` of `parent` with a sibling, or evens
/// the two out when they do not fit in one page.
fn rebalance(b: &mut Batch<'_>, ps: usize, parent: PageNo, idx: usize) -> Result<()> {
    let br = branch_mut(b, parent);
    if br.children.len() < 2 {
        return Ok(());
    }
    let li = if idx > 0 { idx - 1 } else { idx };
    let (l0, r0) = (br.children[li], br.children[li + 1]);
    let sep = br.keys[li].clone();
    let left = b.own(l0)?;
    let right = b.own(r0)?;
    for n in [left, right] {
        match b.owned(n) {
            Some(Dirty::BranchRaw(_)) => {
                branch_mut(b, n);
            }
            Some(Dirty::LeafRaw(_)) => {
                leaf_mut(b, n);
            }
            _ => {}
        }
    }
    {
        let br = branch_mut(b, parent);
        br.children[li] = left;
        br.children[li + 1] = right;
    }
    let right_node = b.decode(right)?;
    match (b.get_mut(left), right_node) {
        (Dirty::Leaf(l), Dirty::Leaf(r)) => {
            let mut entries = std::mem::take(&mut l.entries);
            entries.extend(r.entries);
            let merged = Leaf::new(entries);
            if merged.bytes <= ps {
                *l = merged;
                b.free(right);
                branch_mut(b, parent).remove_key_at(li);
            } else {
                let mut entries = merged.entries;
                let n = entries.len();
                let cut = balanced_cut(
                    entries.iter().map(|(k, v)| node::leaf_entry_size(k, v)),
                    1,
                    n - 1,
                );
                let tail = entries.split_off(cut);
                let sep = separator(&entries[cut - 1].0, &tail[0].0);
                *l = Leaf::new(entries);
                b.set(right, Dirty::Leaf(Leaf::new(tail)));
                branch_mut(b, parent).set_key(li, sep);
            }
        }
        (Dirty::Branch(l), Dirty::Branch(r)) => {
            let mut keys = std::mem::take(&mut l.keys);
            let mut children = std::mem::take(&mut l.children);
            keys.push(sep);
            keys.extend(r.keys);
            children.extend(r.children);
            let merged = Branch::new(keys, children);
            if merged.bytes <= ps {
                *l = merged;
                b.free(right);
                branch_mut(b, parent).remove_key_at(li);
            } else {
                let (mut keys, mut children) = (merged.keys, merged.children);
                let n = keys.len();
                let mid = balanced_cut(keys.iter().map(|k| node::branch_entry_size(k)), 1, n - 2);
                let right_keys = keys.split_off(mid + 1);
                let up = keys.pop().expect("mid key");
                let right_children = children.split_off(mid + 1);
                *l = Branch::new(keys, children);
                b.set(
                    right,
                    Dirty::Branch(Branch::new(right_keys, right_children)),
                );
                branch_mut(b, parent).set_key(li, up);
            }
        }
        _ => {
            return Err(page::corrupt(
                b.pool.path(),
                parent,
                "siblings at the same level are of different kinds",
            ));
        }
    }
    Ok(())
}

/// Frees every page of a tree (for dropping it).
pub(crate) fn free_tree(b: &mut Batch<'_>, root: PageNo) -> Result<()> {
    let mut stack = vec![root];
    while let Some(no) = stack.pop() {
        match b.decode(no)? {
            Dirty::Branch(br) => stack.extend(br.children),
            Dirty::Leaf(l) => {
                for (_, v) in &l.entries {
                    free_value(b, v)?;
                }
            }
            _ => return Err(page::corrupt(b.pool.path(), no, "not a B+tree page")),
        }
        b.free(no);
    }
    Ok(())
}

/// Visits every page of a committed tree: (page, kind, depth). Used by
/// verification and inspection. Returns the tree height.
pub(crate) fn walk(
    pool: &BufferPool,
    root: PageNo,
    visit: &mut dyn FnMut(PageNo, PageKind) -> Result<()>,
) -> Result<u32> {
    let mut height = 0;
    let mut stack = vec![(root, 1u32)];
    // A page reached twice means a corrupt tree (and, unchecked, an
    // exponential walk), so every page is visited at most once.
    let mut seen = std::collections::HashSet::new();
    while let Some((no, depth)) = stack.pop() {
        if depth > 64 {
            return Err(page::corrupt(pool.path(), no, "tree deeper than 64 levels"));
        }
        if !seen.insert(no) {
            return Err(page::corrupt(
                pool.path(),
                no,
                "page is referenced twice within one tree",
            ));
        }
        let page = pool.get(no, Some(PageKind::Branch))?;
        height = height.max(depth);
        if node::is_leaf(&page) {
            visit(no, PageKind::Leaf)?;
            let leaf = LeafView::new(&page, pool.path(), no)?;
            let decoded = leaf.decode()?;
            for (_, v) in decoded.entries {
                if let LeafValue::Overflow { first, .. } = v {
                    let mut o = first;
                    while o != 0 {
                        let p = pool.get(o, Some(PageKind::Overflow))?;
                        visit(o, PageKind::Overflow)?;
                        o = node::overflow_view(&p, pool.path(), o)?.0;
                    }
                }
            }
        } else {
            visit(no, PageKind::Branch)?;
            let br = BranchView::new(&page, pool.path(), no)?.decode()?;
            for child in br.children {
                stack.push((child, depth + 1));
            }
        }
    }
    Ok(height)
}
