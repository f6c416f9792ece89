//! First committer wins: the keys a write set touches, and whether a
//! commit made since a transaction's snapshot wrote any of them.

use std::collections::HashSet;

use crate::record::Op;

/// Conflict-detection keys of a write set.
pub(super) fn conflict_keys(ops: &[Op]) -> HashSet<Vec<u8>> {
    let mut keys = HashSet::new();
    let tagged = |tag: u8, parts: &[&[u8]]| {
        let mut k = vec![tag];
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                k.push(0);
            }
            k.extend_from_slice(p);
        }
        k
    };
    for op in ops {
        let tree = op.tree().as_bytes();
        keys.insert(tagged(b't', &[tree]));
        match op {
            Op::Create { .. } | Op::Drop { .. } => {
                keys.insert(tagged(b'd', &[tree]));
            }
            Op::Put { key, .. } | Op::Delete { key, .. } => {
                keys.insert(tagged(b'k', &[tree, key]));
            }
            Op::HashInsert { key, value, .. }
            | Op::HashAdd { key, value, .. }
            | Op::HashRemove { key, value, .. } => {
                let mut kv = key.clone();
                kv.extend_from_slice(&(key.len() as u32).to_le_bytes());
                kv.extend_from_slice(value);
                keys.insert(tagged(b'h', &[tree, &kv]));
            }
        }
    }
    keys
}

/// Whether a later commit's write set `theirs` conflicts with `mine` (the
/// conflict keys of the committing transaction): the same key written by
/// both, or a tree one side created or dropped while the other wrote it.
/// Returns the tree's name.
pub(super) fn conflicts(mine: &HashSet<Vec<u8>>, theirs: &[Op]) -> Option<String> {
    for k in conflict_keys(theirs) {
        let clash = match k[0] {
            b'k' | b'h' => mine.contains(&k),
            b't' | b'd' => {
                let mut other = k.clone();
                other[0] = if k[0] == b't' { b'd' } else { b't' };
                mine.contains(&other)
            }
            _ => false,
        };
        if clash {
            let end = k
                .iter()
                .skip(1)
                .position(|b| *b == 0)
                .map_or(k.len(), |p| p + 1);
            return Some(String::from_utf8_lossy(&k[1..end]).into_owned());
        }
    }
    None
}
