//! The commit record: one self-contained, deterministic description of a
//! transaction's effects (its write set, in the order the transaction made
//! them).
//!
//! The record is what the journal stores, what recovery replays, and what
//! replication will ship: applying the same records in LSN order to the same
//! starting state always yields the same state. Byte layout (integers are
//! LEB128 varints unless noted):
//!
//! ```text
//! u8      format version (1)
//! varint  number of tree names N, then N × (varint len, bytes)
//! varint  number of operations M, then M × operation:
//!   u8 tag, varint tree-name index, then by tag:
//!   1 create B+tree        (nothing)
//!   2 create hash index    (nothing)
//!   3 drop tree            (nothing)
//!   4 put                  key, value
//!   5 delete               key
//!   6 hash insert          key, value
//!   7 hash remove          key, value
//! where key and value are (varint len, bytes).
//! ```

use std::sync::Arc;

use crate::error::{Error, Result};

const FORMAT_VERSION: u8 = 1;

/// The kind of a named tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TreeKind {
    /// An ordered B+tree: point lookups and range scans.
    BTree,
    /// An extendible hash index: equality lookups only; a key may hold many values.
    Hash,
}

impl TreeKind {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            TreeKind::BTree => "btree",
            TreeKind::Hash => "hash",
        }
    }
}

/// One change in a transaction's write set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create an empty tree.
    Create {
        /// Tree name.
        tree: Arc<str>,
        /// Tree kind.
        kind: TreeKind,
    },
    /// Drop a tree and everything in it.
    Drop {
        /// Tree name.
        tree: Arc<str>,
    },
    /// Insert or replace a key in a B+tree.
    Put {
        /// Tree name.
        tree: Arc<str>,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Delete a key from a B+tree (no effect if absent).
    Delete {
        /// Tree name.
        tree: Arc<str>,
        /// Key.
        key: Vec<u8>,
    },
    /// Add a (key, value) entry to a hash index (no effect if present).
    HashInsert {
        /// Tree name.
        tree: Arc<str>,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Add a (key, value) entry to a hash index that the writer guarantees
    /// is absent (its values are unique, row keys say): no search for it.
    HashAdd {
        /// Tree name.
        tree: Arc<str>,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove a (key, value) entry from a hash index (no effect if absent).
    HashRemove {
        /// Tree name.
        tree: Arc<str>,
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
}

impl Op {
    /// The tree the operation touches.
    pub fn tree(&self) -> &str {
        match self {
            Op::Create { tree, .. }
            | Op::Drop { tree }
            | Op::Put { tree, .. }
            | Op::Delete { tree, .. }
            | Op::HashInsert { tree, .. }
            | Op::HashAdd { tree, .. }
            | Op::HashRemove { tree, .. } => tree,
        }
    }

    /// Approximate memory the operation holds, for the write-set bound.
    pub fn size(&self) -> usize {
        32 + self.tree().len()
            + match self {
                Op::Put { key, value, .. }
                | Op::HashInsert { key, value, .. }
                | Op::HashAdd { key, value, .. }
                | Op::HashRemove { key, value, .. } => key.len() + value.len(),
                Op::Delete { key, .. } => key.len(),
                Op::Create { .. } | Op::Drop { .. } => 0,
            }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A key and, for operations that carry one, a value.
type KeyAndValue<'a> = (&'a [u8], Option<&'a [u8]>);

/// Encodes a write set as a commit record.
pub fn encode(ops: &[Op]) -> Vec<u8> {
    let mut names: Vec<&str> = Vec::new();
    let mut index = std::collections::HashMap::new();
    // Operation indexes into `names`; consecutive operations mostly share a tree.
    let mut op_names = Vec::with_capacity(ops.len());
    let mut last: Option<(&str, usize)> = None;
    for op in ops {
        let i = match last {
            Some((name, i)) if name == op.tree() => i,
            _ => *index.entry(op.tree()).or_insert_with(|| {
                names.push(op.tree());
                names.len() - 1
            }),
        };
        last = Some((op.tree(), i));
        op_names.push(i);
    }
    let mut out = Vec::with_capacity(16 + ops.iter().map(Op::size).sum::<usize>());
    out.push(FORMAT_VERSION);
    put_varint(&mut out, names.len() as u64);
    for name in &names {
        put_bytes(&mut out, name.as_bytes());
    }
    put_varint(&mut out, ops.len() as u64);
    for (op, name_index) in ops.iter().zip(op_names) {
        let (tag, kv): (u8, Option<KeyAndValue<'_>>) = match op {
            Op::Create {
                kind: TreeKind::BTree,
                ..
            } => (1, None),
            Op::Create {
                kind: TreeKind::Hash,
                ..
            } => (2, None),
            Op::Drop { .. } => (3, None),
            Op::Put { key, value, .. } => (4, Some((key, Some(value)))),
            Op::Delete { key, .. } => (5, Some((key, None))),
            Op::HashInsert { key, value, .. } => (6, Some((key, Some(value)))),
            Op::HashRemove { key, value, .. } => (7, Some((key, Some(value)))),
            Op::HashAdd { key, value, .. } => (8, Some((key, Some(value)))),
        };
        out.push(tag);
        put_varint(&mut out, name_index as u64);
        if let Some((key, value)) = kv {
            put_bytes(&mut out, key);
            if let Some(value) = value {
                put_bytes(&mut out, value);
            }
        }
    }
    out
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    lsn: u64,
}

impl<'a> Cursor<'a> {
    fn err(&self, detail: impl Into<String>) -> Error {
        Error::BadRecord {
            lsn: self.lsn,
            detail: format!("{} (at byte {})", detail.into(), self.pos),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| self.err("record ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.err("varint longer than 10 bytes"))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.err("length overflows"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.data.len())
            .ok_or_else(|| self.err(format!("field of {len} bytes runs past the record")))?;
        let b = &self.data[self.pos..end];
        self.pos = end;
        Ok(b)
    }
}

/// Decodes a commit record; `lsn` is only used in error messages.
pub fn decode(data: &[u8], lsn: u64) -> Result<Vec<Op>> {
    let mut c = Cursor { data, pos: 0, lsn };
    let version = c.u8()?;
    if version != FORMAT_VERSION {
        return Err(c.err(format!("unsupported record format version {version}")));
    }
    let name_count = c.varint()?;
    let mut names = Vec::new();
    for _ in 0..name_count {
        let raw = c.bytes()?;
        let name = std::str::from_utf8(raw).map_err(|_| c.err("tree name is not UTF-8"))?;
        names.push(Arc::<str>::from(name));
    }
    let op_count = c.varint()?;
    let mut ops = Vec::new();
    for _ in 0..op_count {
        let tag = c.u8()?;
        let idx = c.varint()?;
        let tree = usize::try_from(idx)
            .ok()
            .and_then(|i| names.get(i))
            .ok_or_else(|| c.err(format!("tree index {idx} out of range")))?
            .clone();
        let op = match tag {
            1 => Op::Create {
                tree,
                kind: TreeKind::BTree,
            },
            2 => Op::Create {
                tree,
                kind: TreeKind::Hash,
            },
            3 => Op::Drop { tree },
            4 => Op::Put {
                tree,
                key: c.bytes()?.to_vec(),
                value: c.bytes()?.to_vec(),
            },
            5 => Op::Delete {
                tree,
                key: c.bytes()?.to_vec(),
            },
            6 => Op::HashInsert {
                tree,
                key: c.bytes()?.to_vec(),
                value: c.bytes()?.to_vec(),
            },
            7 => Op::HashRemove {
                tree,
                key: c.bytes()?.to_vec(),
                value: c.bytes()?.to_vec(),
            },
            8 => Op::HashAdd {
                tree,
                key: c.bytes()?.to_vec(),
                value: c.bytes()?.to_vec(),
            },
            other => return Err(c.err(format!("unknown operation tag {other}"))),
        };
        ops.push(op);
    }
    if c.pos != data.len() {
        return Err(c.err("trailing bytes after the last operation"));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation_is_an_error() {
        let ops = vec![
            Op::Create {
                tree: "t".into(),
                kind: TreeKind::BTree,
            },
            Op::Put {
                tree: "t".into(),
                key: b"k".to_vec(),
                value: vec![7; 300],
            },
            Op::HashInsert {
                tree: "h".into(),
                key: b"a".to_vec(),
                value: b"b".to_vec(),
            },
            Op::HashAdd {
                tree: "h".into(),
                key: b"a".to_vec(),
                value: b"c".to_vec(),
            },
            Op::Delete {
                tree: "t".into(),
                key: b"k".to_vec(),
            },
            Op::Drop { tree: "h".into() },
        ];
        let rec = encode(&ops);
        assert_eq!(decode(&rec, 1).unwrap(), ops);
        for cut in 0..rec.len() {
            assert!(decode(&rec[..cut], 1).is_err(), "cut at {cut}");
        }
    }
}
