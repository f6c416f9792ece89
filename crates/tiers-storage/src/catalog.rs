//! The catalog: a B+tree mapping tree names to their kind, root page and
//! entry count. Its root is the one page number a snapshot needs.
//!
//! Entry value: kind u8 (1 = B+tree, 2 = hash), root u64 (0 = empty), count u64.

use std::collections::BTreeMap;

use crate::batch::Batch;
use crate::btree::{self, node::Limits};
use crate::error::{Error, Result};
use crate::hash::{self, HashLimits};
use crate::page::PageNo;
use crate::pool::BufferPool;
use crate::record::{Op, TreeKind};

/// What the catalog records about one tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeInfo {
    /// B+tree or hash index.
    pub kind: TreeKind,
    /// Root page (for a hash index, its header page); None for an empty B+tree.
    pub root: Option<PageNo>,
    /// Number of entries.
    pub count: u64,
}

impl TreeInfo {
    fn encode(&self) -> [u8; 17] {
        let mut out = [0u8; 17];
        out[0] = match self.kind {
            TreeKind::BTree => 1,
            TreeKind::Hash => 2,
        };
        out[1..9].copy_from_slice(&self.root.unwrap_or(0).to_le_bytes());
        out[9..17].copy_from_slice(&self.count.to_le_bytes());
        out
    }

    /// Decodes a catalog value; `None` if malformed.
    pub fn decode(v: &[u8]) -> Option<TreeInfo> {
        if v.len() != 17 {
            return None;
        }
        let kind = match v[0] {
            1 => TreeKind::BTree,
            2 => TreeKind::Hash,
            _ => return None,
        };
        let root = u64::from_le_bytes(v[1..9].try_into().ok()?);
        let count = u64::from_le_bytes(v[9..17].try_into().ok()?);
        Some(TreeInfo {
            kind,
            root: (root != 0).then_some(root),
            count,
        })
    }
}

fn bad_entry(name: &str) -> Error {
    Error::PageCorrupt {
        file: Default::default(),
        page: 0,
        detail: format!("catalog entry for tree {name:?} is malformed"),
    }
}

/// Looks up a tree in a committed catalog.
pub(crate) fn lookup(
    pool: &BufferPool,
    catalog_root: Option<PageNo>,
    name: &str,
) -> Result<Option<TreeInfo>> {
    let Some(root) = catalog_root else {
        return Ok(None);
    };
    match btree::get(pool, root, name.as_bytes())? {
        None => Ok(None),
        Some(v) => TreeInfo::decode(&v)
            .map(Some)
            .ok_or_else(|| bad_entry(name)),
    }
}

/// Lists every tree in a committed catalog, by name.
pub(crate) fn list(
    pool: &BufferPool,
    catalog_root: Option<PageNo>,
) -> Result<Vec<(String, TreeInfo)>> {
    let iter = btree::cursor::RangeIter::new(
        pool,
        catalog_root,
        std::ops::Bound::Unbounded,
        std::ops::Bound::Unbounded,
        true,
    );
    let mut out = Vec::new();
    for entry in iter {
        let (k, v) = entry?;
        let name = String::from_utf8_lossy(&k).into_owned();
        let info = TreeInfo::decode(&v).ok_or_else(|| bad_entry(&name))?;
        out.push((name, info));
    }
    Ok(out)
}

fn need_kind(name: &str, info: Option<TreeInfo>, kind: TreeKind) -> Result<TreeInfo> {
    let info = info.ok_or_else(|| Error::NoSuchTree(name.to_string()))?;
    if info.kind != kind {
        return Err(Error::WrongTreeKind {
            name: name.to_string(),
            expected: kind.name(),
            actual: info.kind.name(),
        });
    }
    Ok(info)
}

/// Applies a write set to the tree whose catalog root is `catalog_root`,
/// inside batch `b`; returns the new catalog root. This is the one place
/// where committed changes reach pages: commits, recovery and replication
/// all come through here, so they cannot disagree.
pub(crate) fn apply(
    b: &mut Batch<'_>,
    limits: &Limits,
    hlimits: &HashLimits,
    catalog_root: Option<PageNo>,
    ops: &[Op],
) -> Result<Option<PageNo>> {
    let mut touched: BTreeMap<String, (Option<TreeInfo>, Option<TreeInfo>)> = BTreeMap::new();
    // Write sets are sorted by tree, so most operations hit the same tree as
    // the one before: remember it instead of searching `touched` each time.
    let mut last: Option<(&str, Option<TreeInfo>)> = None;
    for op in ops {
        let name = op.tree();
        let current = match last {
            Some((n, info)) if n == name => info,
            _ => {
                if let Some((n, info)) = last.take() {
                    touched.get_mut(n).expect("tracked").1 = info;
                }
                match touched.get(name) {
                    Some((_, now)) => *now,
                    None => {
                        let before = match catalog_root {
                            None => None,
                            Some(root) => match btree::lookup_value(b, root, name.as_bytes())? {
                                None => None,
                                Some(v) => {
                                    Some(TreeInfo::decode(&v).ok_or_else(|| bad_entry(name))?)
                                }
                            },
                        };
                        touched.insert(name.to_string(), (before, before));
                        before
                    }
                }
            }
        };
        let next = match op {
            Op::Create { kind, .. } => {
                if current.is_some() {
                    return Err(Error::TreeExists(name.to_string()));
                }
                let root = match kind {
                    TreeKind::BTree => None,
                    TreeKind::Hash => Some(hash::create(b)),
                };
                Some(TreeInfo {
                    kind: *kind,
                    root,
                    count: 0,
                })
            }
            Op::Drop { .. } => {
                let info = current.ok_or_else(|| Error::NoSuchTree(name.to_string()))?;
                match (info.kind, info.root) {
                    (TreeKind::BTree, Some(root)) => btree::free_tree(b, root)?,
                    (TreeKind::Hash, Some(root)) => hash::free_all(b, root)?,
                    (_, None) => {}
                }
                None
            }
            Op::Put { key, value, .. } => {
                let mut info = need_kind(name, current, TreeKind::BTree)?;
                let (root, existed) = btree::insert(b, limits, info.root, key, value)?;
                info.root = Some(root);
                info.count += u64::from(!existed);
                Some(info)
            }
            Op::Delete { key, .. } => {
                let mut info = need_kind(name, current, TreeKind::BTree)?;
                if let Some(root) = info.root {
                    let (root, existed) = btree::delete(b, limits, root, key)?;
                    info.root = root;
                    info.count = info.count.saturating_sub(u64::from(existed));
                }
                Some(info)
            }
            Op::HashInsert { key, value, .. }
            | Op::HashAdd { key, value, .. }
            | Op::HashRemove { key, value, .. } => {
                let mut info = need_kind(name, current, TreeKind::Hash)?;
                let root = info.root.ok_or_else(|| bad_entry(name))?;
                let (root, changed) = match op {
                    Op::HashRemove { .. } => hash::remove(b, hlimits, root, key, value)?,
                    Op::HashAdd { .. } => hash::insert(b, hlimits, root, key, value, false)?,
                    _ => hash::insert(b, hlimits, root, key, value, true)?,
                };
                info.root = Some(root);
                if changed {
                    if matches!(op, Op::HashRemove { .. }) {
                        info.count = info.count.saturating_sub(1);
                    } else {
                        info.count += 1;
                    }
                }
                Some(info)
            }
        };
        last = Some((name, next));
    }
    if let Some((name, info)) = last {
        touched.get_mut(name).expect("inserted above").1 = info;
    }
    let mut root = catalog_root;
    for (name, (before, after)) in touched {
        if before == after {
            continue;
        }
        root = match after {
            Some(info) => Some(btree::insert(b, limits, root, name.as_bytes(), &info.encode())?.0),
            None => match root {
                Some(r) => btree::delete(b, limits, r, name.as_bytes())?.0,
                None => None,
            },
        };
    }
    Ok(root)
}
