//! Ordering a write set for applying ([`normalize`]): what a commit does
//! to its operations before they reach the pages and the journal.

use crate::record::Op;

/// The key an operation writes, if any.
fn op_key(op: &Op) -> &[u8] {
    match op {
        Op::Put { key, .. }
        | Op::Delete { key, .. }
        | Op::HashInsert { key, .. }
        | Op::HashAdd { key, .. }
        | Op::HashRemove { key, .. } => key,
        Op::Create { .. } | Op::Drop { .. } => &[],
    }
}

/// Orders a write set for applying. Between tree creations and drops, the
/// operations are stably sorted by (tree, key), which keeps the program order
/// of writes to the same key, and only the last B+tree write to each key is
/// kept. The result has the same effect, but applies far faster (each page on
/// a path is visited once per run of neighbouring keys, and appends fill
/// pages) and journals less. Deterministic, so replicas agree.
pub(super) fn normalize(mut ops: Vec<Op>) -> Vec<Op> {
    if !ops.iter().any(splits_runs) {
        // The usual case, one run: sorted and thinned in place.
        sort_and_thin(&mut ops);
        return ops;
    }
    let mut out = Vec::with_capacity(ops.len());
    let mut run = Vec::new();
    for op in ops {
        if splits_runs(&op) {
            sort_and_thin(&mut run);
            out.append(&mut run);
            out.push(op);
        } else {
            run.push(op);
        }
    }
    sort_and_thin(&mut run);
    out.append(&mut run);
    out
}

/// Tree creations and drops: nothing moves across them.
fn splits_runs(op: &Op) -> bool {
    matches!(op, Op::Create { .. } | Op::Drop { .. })
}

/// Sorts a run by (tree, key), keeping program order per key, and drops
/// each B+tree write a later one to the same key overwrites.
fn sort_and_thin(run: &mut Vec<Op>) {
    if !run.windows(2).all(|w| in_order(&w[0], &w[1])) {
        sort_run(run);
    }
    let mut kept = 0;
    for i in 0..run.len() {
        if i + 1 < run.len() && supersedes(&run[i], &run[i + 1]) {
            continue;
        }
        run.swap(kept, i);
        kept += 1;
    }
    run.truncate(kept);
}

/// Whether `a` sorts at or before `b` by (tree, key). Runs of operations
/// on one tree share its name, so the names are compared by address first.
fn in_order(a: &Op, b: &Op) -> bool {
    let (x, y) = (a.tree(), b.tree());
    if std::ptr::eq(x, y) || x == y {
        op_key(a) <= op_key(b)
    } else {
        x < y
    }
}

/// Whether `next` overwrites `op` (B+tree writes to the same key).
fn supersedes(op: &Op, next: &Op) -> bool {
    let btree = |o: &Op| matches!(o, Op::Put { .. } | Op::Delete { .. });
    btree(op) && btree(next) && op_key(next) == op_key(op) && {
        let (x, y) = (op.tree(), next.tree());
        std::ptr::eq(x, y) || x == y
    }
}

/// The first eight bytes of a key as a big-endian integer (zero padded):
/// comparing these orders keys exactly as comparing the bytes would, except
/// that equal prefixes need the full comparison (PostgreSQL's abbreviated keys).
fn key_prefix(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

/// Sorts by (tree, key, position): the position keeps the program order of
/// writes to the same key. Sorting small (prefix, position) pairs instead
/// of the operations keeps most comparisons to one integer compare.
fn sort_run(run: &mut Vec<Op>) {
    let mut order: Vec<(u64, u32)> = run
        .iter()
        .enumerate()
        .map(|(i, op)| (key_prefix(op_key(op)), i as u32))
        .collect();
    order.sort_unstable_by(|a, b| {
        let (x, y) = (&run[a.1 as usize], &run[b.1 as usize]);
        x.tree()
            .cmp(y.tree())
            .then(a.0.cmp(&b.0))
            .then_with(|| op_key(x).cmp(op_key(y)))
            .then(a.1.cmp(&b.1))
    });
    let mut slots: Vec<Option<Op>> = run.drain(..).map(Some).collect();
    run.extend(
        order
            .iter()
            .map(|(_, i)| slots[*i as usize].take().expect("each once")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::TreeKind;
    use std::sync::Arc;

    fn put(tree: &Arc<str>, key: &str, value: &str) -> Op {
        Op::Put {
            tree: tree.clone(),
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        }
    }

    fn delete(tree: &Arc<str>, key: &str) -> Op {
        Op::Delete {
            tree: tree.clone(),
            key: key.as_bytes().to_vec(),
        }
    }

    /// (tree, key, value) of each operation, for comparing.
    fn shape(ops: &[Op]) -> Vec<(String, String, String)> {
        ops.iter()
            .map(|op| {
                let value = match op {
                    Op::Put { value, .. } => String::from_utf8_lossy(value).into_owned(),
                    Op::Delete { .. } => "-".into(),
                    Op::Create { .. } => "create".into(),
                    _ => "?".into(),
                };
                (
                    op.tree().to_string(),
                    String::from_utf8_lossy(op_key(op)).into_owned(),
                    value,
                )
            })
            .collect()
    }

    fn row(tree: &str, key: &str, value: &str) -> (String, String, String) {
        (tree.into(), key.into(), value.into())
    }

    #[test]
    fn normalize_sorts_by_tree_and_key_and_keeps_the_last_write_to_each_key() {
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        // A second, equal name in another allocation still counts as the same tree.
        let b2: Arc<str> = Arc::from("b");
        let ops = vec![
            put(&b, "2", "x"),
            put(&a, "9", "first"),
            delete(&b2, "2"),
            put(&a, "1", "one"),
            put(&a, "9", "last"),
            put(&b, "1", "y"),
        ];
        assert_eq!(
            shape(&normalize(ops)),
            [
                row("a", "1", "one"),
                row("a", "9", "last"),
                row("b", "1", "y"),
                row("b", "2", "-"),
            ]
        );
        // Already in order, with repeats: thinned in place.
        let ops = vec![
            put(&a, "1", "p"),
            put(&a, "1", "q"),
            put(&a, "2", "r"),
            put(&b, "2", "s"),
            put(&b, "2", "t"),
        ];
        assert_eq!(
            shape(&normalize(ops)),
            [row("a", "1", "q"), row("a", "2", "r"), row("b", "2", "t")]
        );
        // A tree creation splits the write set: writes before it are not
        // moved after it, and the order around it is kept.
        let ops = vec![
            put(&b, "5", "before"),
            Op::Create {
                tree: a.clone(),
                kind: TreeKind::BTree,
            },
            put(&a, "2", "z"),
            put(&a, "1", "w"),
            put(&b, "5", "after"),
        ];
        assert_eq!(
            shape(&normalize(ops)),
            [
                row("b", "5", "before"),
                row("a", "", "create"),
                row("a", "1", "w"),
                row("a", "2", "z"),
                row("b", "5", "after"),
            ]
        );
    }
}
