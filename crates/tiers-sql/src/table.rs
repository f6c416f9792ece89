//! Table access: rows in and out of the storage engine, with the
//! constraints every write must respect (types, NOT NULL, primary key and
//! unique indexes) and every index kept in step with its table.
//!
//! Key formats (all with [`tiers_storage::keyenc`], ascending, NULLS LAST):
//! - row: `tbl.<id>`, key = primary-key values (or the hidden row id),
//!   value = the row ([`crate::row`]);
//! - B+tree index: `idx.<id>`, key = indexed values followed by the
//!   primary key, value empty; a unique index refuses a second entry with
//!   the same non-NULL indexed values;
//! - hash index: `idx.<id>`, key = indexed values, value = primary key.

use std::ops::Bound;

use tiers_storage::WriteTxn;
use tiers_storage::keyenc::{self, KeyColumn, KeyValue};

use crate::catalog::{self, IndexDef, IndexKind, TableDef};
use crate::error::{Result, SqlError, sqlstate};
use crate::reads::Reads;
use crate::row;
use crate::sequence::Sequences;
use crate::value::Value;

fn encode_values(values: impl Iterator<Item = KeyValue>, out: &mut Vec<u8>) {
    for v in values {
        keyenc::encode_value(&v, KeyColumn::ASC, out);
    }
}

/// The storage key of a row: its primary key (or hidden row id) encoded.
fn row_key(def: &TableDef, row: &[Value], rowid: Option<i64>) -> Vec<u8> {
    let mut key = Vec::new();
    if def.primary_key.is_empty() {
        encode_values(
            std::iter::once(KeyValue::Int(rowid.expect("row id"))),
            &mut key,
        );
    } else {
        encode_values(def.primary_key.iter().map(|&c| row[c].to_key()), &mut key);
    }
    key
}

/// The encoded primary key for lookups by primary-key values.
pub fn primary_key(def: &TableDef, values: &[Value]) -> Result<Vec<u8>> {
    if values.len() != def.primary_key.len() || values.is_empty() {
        return Err(SqlError::new(
            sqlstate::INTERNAL_ERROR,
            format!(
                "table \"{}\" needs {} key values",
                def.name,
                def.primary_key.len()
            ),
        ));
    }
    let mut key = Vec::new();
    encode_values(values.iter().map(Value::to_key), &mut key);
    Ok(key)
}

fn index_prefix(index: &IndexDef, row: &[Value]) -> Vec<u8> {
    let mut key = Vec::new();
    encode_values(index.columns.iter().map(|&c| row[c].to_key()), &mut key);
    key
}

/// Brings a row to the table's types and checks NOT NULL. Values not
/// given (`None`, or missing at the end) take the column's default; serial
/// columns draw from their sequence.
fn prepare(
    def: &TableDef,
    mut row: Vec<Option<Value>>,
    seqs: Option<&Sequences>,
) -> Result<Vec<Value>> {
    if row.len() > def.columns.len() {
        return Err(SqlError::new(
            sqlstate::SYNTAX_ERROR,
            format!(
                "INSERT has more expressions than target columns ({})",
                def.columns.len()
            ),
        ));
    }
    row.resize(def.columns.len(), None);
    let mut out = Vec::with_capacity(def.columns.len());
    for (i, col) in def.columns.iter().enumerate() {
        let v = match row[i].take() {
            Some(v) => v,
            None if col.serial => match seqs {
                Some(seqs) => Value::Int(seqs.next(&catalog::sequence_key(def.id, Some(i)))?),
                None => Value::Null,
            },
            None => col.default.clone().map_or(Value::Null, Value::Text),
        };
        let v = col.data_type.assign(v).map_err(|e| SqlError {
            message: format!("{} (column \"{}\")", e.message, col.name),
            ..e
        })?;
        if v.is_null() && col.not_null {
            return Err(SqlError::new(
                sqlstate::NOT_NULL_VIOLATION,
                format!(
                    "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                    col.name, def.name
                ),
            ));
        }
        out.push(v);
    }
    Ok(out)
}

fn duplicate(def: &TableDef, what: &str) -> SqlError {
    SqlError::new(
        sqlstate::UNIQUE_VIOLATION,
        format!(
            "duplicate key value violates unique constraint \"{what}\" on \"{}\"",
            def.name
        ),
    )
}

/// Where one row's entry in an index lives: the index tree, the encoded
/// indexed values, and the row's storage key.
struct IndexEntry {
    tree: String,
    prefix: Vec<u8>,
    pk: Vec<u8>,
}

impl IndexEntry {
    fn of(def: &TableDef, index: &IndexDef, row: &[Value]) -> IndexEntry {
        IndexEntry {
            tree: catalog::index_tree(index),
            prefix: index_prefix(index, row),
            pk: row_key(def, row, row_id_of(def, row)),
        }
    }

    /// The B+tree key: indexed values followed by the row key.
    fn btree_key(&self) -> Vec<u8> {
        let mut key = self.prefix.clone();
        key.extend_from_slice(&self.pk);
        key
    }
}

/// Adds one row's entry to an index, enforcing uniqueness.
pub(crate) fn add_index_entry(
    tx: &mut WriteTxn,
    def: &TableDef,
    index: &IndexDef,
    row: &[Value],
) -> Result<()> {
    let entry = IndexEntry::of(def, index, row);
    match index.kind {
        // The value is the row key, unique per row: no pair is added twice,
        // so the key's values need no search (a popular key stays cheap).
        IndexKind::Hash => tx.hash_add(&entry.tree, &entry.prefix, &entry.pk)?,
        IndexKind::BTree => {
            let has_null = index.columns.iter().any(|&c| row[c].is_null());
            if index.unique && !has_null {
                let upper = keyenc::prefix_successor(&entry.prefix);
                let hi = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                let lo = Bound::Included(entry.prefix.as_slice());
                if tx.scan(&entry.tree, lo, hi)?.next().transpose()?.is_some() {
                    return Err(duplicate(def, &index.name));
                }
            }
            tx.put(&entry.tree, &entry.btree_key(), &[])?;
        }
    }
    Ok(())
}

fn remove_index_entry(
    tx: &mut WriteTxn,
    def: &TableDef,
    index: &IndexDef,
    row: &[Value],
) -> Result<()> {
    let entry = IndexEntry::of(def, index, row);
    match index.kind {
        IndexKind::Hash => tx.hash_remove(&entry.tree, &entry.prefix, &entry.pk)?,
        IndexKind::BTree => tx.delete(&entry.tree, &entry.btree_key())?,
    }
    Ok(())
}

/// The storage key of a row of a table with a primary key, from its
/// column values.
pub(crate) fn primary_key_of(def: &TableDef, row: &[Value]) -> Vec<u8> {
    row_key(def, row, None)
}

/// Tables without a primary key keep their hidden row id as an extra
/// trailing value of the stored row, so it can be found again.
fn row_id_of(def: &TableDef, row: &[Value]) -> Option<i64> {
    if !def.primary_key.is_empty() {
        return None;
    }
    match row.get(def.columns.len()) {
        Some(Value::Int(id)) => Some(*id),
        _ => None,
    }
}

fn stored_types(def: &TableDef) -> Vec<crate::types::DataType> {
    let mut types = def.types();
    if def.primary_key.is_empty() {
        types.push(crate::types::DataType::Int8);
    }
    types
}

/// Inserts a row: values in column order, `None` (or missing at the end)
/// for "not given", which takes the column's default. Returns the row as
/// stored (without any hidden row id).
pub fn insert(
    tx: &mut WriteTxn,
    def: &TableDef,
    values: Vec<Option<Value>>,
    seqs: &Sequences,
) -> Result<Vec<Value>> {
    let row = prepare_insert(def, values, seqs)?;
    insert_prepared(tx, def, row)
}

/// The first half of [`insert`]: defaults, sequences, types and NOT NULL.
/// The result (with the hidden row id, if any) goes to [`insert_prepared`]
/// once the caller holds its locks ([`lock_keys`]).
pub fn prepare_insert(
    def: &TableDef,
    values: Vec<Option<Value>>,
    seqs: &Sequences,
) -> Result<Vec<Value>> {
    let mut row = prepare(def, values, Some(seqs))?;
    if def.primary_key.is_empty() {
        row.push(Value::Int(seqs.next(&catalog::sequence_key(def.id, None))?));
    }
    Ok(row)
}

/// The second half of [`insert`]: uniqueness checks, index entries, the row.
pub fn insert_prepared(
    tx: &mut WriteTxn,
    def: &TableDef,
    mut row: Vec<Value>,
) -> Result<Vec<Value>> {
    let tree = def.data_tree();
    let key = row_key(def, &row, row_id_of(def, &row));
    if !def.primary_key.is_empty() && tx.get(&tree, &key)?.is_some() {
        return Err(duplicate(def, &format!("{}_pkey", def.name)));
    }
    for index in &def.indexes {
        add_index_entry(tx, def, index, &row)?;
    }
    tx.put(&tree, &key, &row::encode(&stored_types(def), &row))?;
    row.truncate(def.columns.len());
    Ok(row)
}

/// Brings new column values to the table's types and checks NOT NULL
/// (what [`update`] does first), so a caller can lock before updating.
pub fn coerce_row(def: &TableDef, values: Vec<Value>) -> Result<Vec<Value>> {
    prepare(def, values.into_iter().map(Some).collect(), None)
}

/// The row-lock keys a write of `row` (as stored, with any hidden row id)
/// must hold: the row itself and each non-NULL unique-index value.
pub fn lock_keys(def: &TableDef, row: &[Value]) -> Vec<Vec<u8>> {
    let mut keys = Vec::with_capacity(1 + def.indexes.len());
    let mut key = b"r".to_vec();
    key.extend_from_slice(&def.id.to_be_bytes());
    key.extend_from_slice(&row_key(def, row, row_id_of(def, row)));
    keys.push(key);
    for index in def.indexes.iter().filter(|i| i.unique) {
        if index.columns.iter().any(|&c| row[c].is_null()) {
            continue;
        }
        let mut key = b"u".to_vec();
        key.extend_from_slice(&index.id.to_be_bytes());
        key.extend_from_slice(&index_prefix(index, row));
        keys.push(key);
    }
    keys
}

/// A row as read back, with the key that finds it again.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    /// The storage key (primary key or hidden row id).
    pub key: Vec<u8>,
    /// Column values in order (plus the hidden row id for tables without a primary key).
    pub values: Vec<Value>,
}

impl StoredRow {
    /// Just the table's columns.
    pub fn columns(&self, def: &TableDef) -> &[Value] {
        &self.values[..def.columns.len()]
    }
}

/// Every row, in primary-key order.
pub fn scan_stored<'a>(
    r: &'a dyn Reads,
    def: &TableDef,
) -> Result<impl Iterator<Item = Result<StoredRow>> + 'a> {
    let types = stored_types(def);
    let it = r.scan(&def.data_tree(), Bound::Unbounded, Bound::Unbounded)?;
    Ok(it.map(move |e| {
        let (key, bytes) = e?;
        Ok(StoredRow {
            key,
            values: row::decode(&types, &bytes)?,
        })
    }))
}

/// Every row's column values, in primary-key order.
pub fn scan<'a>(
    r: &'a dyn Reads,
    def: &TableDef,
) -> Result<impl Iterator<Item = Result<Vec<Value>>> + 'a> {
    let n = def.columns.len();
    Ok(scan_stored(r, def)?.map(move |row| {
        let mut v = row?.values;
        v.truncate(n);
        Ok(v)
    }))
}

/// The row with this encoded primary key.
pub fn get(r: &dyn Reads, def: &TableDef, key: &[u8]) -> Result<Option<StoredRow>> {
    match r.get(&def.data_tree(), key)? {
        None => Ok(None),
        Some(bytes) => Ok(Some(StoredRow {
            key: key.to_vec(),
            values: row::decode(&stored_types(def), &bytes)?,
        })),
    }
}

/// Rows whose indexed columns equal `values` (an index lookup).
pub fn lookup(
    r: &dyn Reads,
    def: &TableDef,
    index: &IndexDef,
    values: &[Value],
) -> Result<Vec<StoredRow>> {
    if values.iter().any(Value::is_null) {
        return Ok(Vec::new()); // NULL equals nothing.
    }
    let mut prefix = Vec::new();
    encode_values(values.iter().map(Value::to_key), &mut prefix);
    let tree = catalog::index_tree(index);
    let keys: Vec<Vec<u8>> = match index.kind {
        IndexKind::Hash => r.hash_get(&tree, &prefix)?,
        IndexKind::BTree => {
            let upper = keyenc::prefix_successor(&prefix);
            let hi = upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            r.scan(&tree, Bound::Included(&prefix), hi)?
                .map(|e| e.map(|(k, _)| k[prefix.len()..].to_vec()))
                .collect::<tiers_storage::Result<_>>()?
        }
    };
    let mut rows = Vec::with_capacity(keys.len());
    for key in keys {
        match get(r, def, &key)? {
            Some(row) => rows.push(row),
            None => {
                return Err(SqlError::new(
                    sqlstate::DATA_CORRUPTED,
                    format!("index \"{}\" points at a missing row", index.name),
                ));
            }
        }
    }
    Ok(rows)
}

/// The order-preserving key encoding of `values` (a key prefix).
pub fn encode_key_values(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_values(values.iter().map(Value::to_key), &mut out);
    out
}

/// A bound on a vector as a bound on its slice.
pub fn bound_slice<T>(b: &Bound<Vec<T>>) -> Bound<&[T]> {
    match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
    }
}

/// Turns bounds on the leading key columns into byte bounds on keys that
/// start with those columns' encoding (and continue with more columns).
fn prefix_bounds(lo: Bound<&[Value]>, hi: Bound<&[Value]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let after = |v: &[Value]| {
        keyenc::prefix_successor(&encode_key_values(v)).map_or(Bound::Unbounded, Bound::Included)
    };
    let lo = match lo {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(v) => Bound::Included(encode_key_values(v)),
        Bound::Excluded(v) => after(v),
    };
    let hi = match hi {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(v) => match after(v) {
            Bound::Included(k) => Bound::Excluded(k),
            other => other,
        },
        Bound::Excluded(v) => Bound::Excluded(encode_key_values(v)),
    };
    (lo, hi)
}

/// Rows whose leading primary-key columns (or, with `index`, leading
/// B+tree index columns) lie between `lo` and `hi`, in key order or
/// reversed. An index scan fetches each row by its primary key.
pub fn range_rows<'a>(
    r: &'a dyn Reads,
    def: &TableDef,
    index: Option<&IndexDef>,
    lo: Bound<&[Value]>,
    hi: Bound<&[Value]>,
    reverse: bool,
) -> Result<Box<dyn Iterator<Item = Result<StoredRow>> + 'a>> {
    let (lo, hi) = prefix_bounds(lo, hi);
    let scan = |tree: &str| {
        if reverse {
            r.scan_rev(tree, bound_slice(&lo), bound_slice(&hi))
        } else {
            r.scan(tree, bound_slice(&lo), bound_slice(&hi))
        }
    };
    match index {
        None => {
            let types = stored_types(def);
            let it = scan(&def.data_tree())?;
            Ok(Box::new(it.map(move |e| {
                let (key, bytes) = e?;
                Ok(StoredRow {
                    key,
                    values: row::decode(&types, &bytes)?,
                })
            })))
        }
        Some(index) => {
            let width = index.columns.len();
            let it = scan(&catalog::index_tree(index))?;
            let def = def.clone();
            let name = index.name.clone();
            Ok(Box::new(it.map(move |e| {
                let (key, _) = e?;
                let columns = vec![KeyColumn::ASC; width];
                let prefix = keyenc::decode_key_prefix(&key, &columns).map_err(|e| {
                    SqlError::new(
                        sqlstate::DATA_CORRUPTED,
                        format!("index \"{name}\" holds a bad key: {e}"),
                    )
                })?;
                get(r, &def, &key[prefix.1..])?.ok_or_else(|| {
                    SqlError::new(
                        sqlstate::DATA_CORRUPTED,
                        format!("index \"{name}\" points at a missing row"),
                    )
                })
            })))
        }
    }
}

/// Re-encodes every row of `old` as a row of `new` (ALTER TABLE ADD/DROP
/// COLUMN): `map` turns the old column values into the new ones; any
/// hidden row id is kept. Both definitions share the data tree.
pub fn rewrite_rows(
    tx: &mut WriteTxn,
    old: &TableDef,
    new: &TableDef,
    mut map: impl FnMut(Vec<Value>) -> Result<Vec<Value>>,
) -> Result<()> {
    let rows: Vec<StoredRow> = scan_stored(tx, old)?.collect::<Result<_>>()?;
    let types = stored_types(new);
    let n = old.columns.len();
    for row in rows {
        let mut values = row.values;
        let hidden = values.split_off(n);
        let mut mapped = map(values)?;
        mapped.extend(hidden);
        tx.put(&new.data_tree(), &row.key, &row::encode(&types, &mapped))?;
    }
    Ok(())
}

/// Deletes a row read with [`scan_stored`], [`get`] or [`lookup`].
pub fn delete(tx: &mut WriteTxn, def: &TableDef, row: &StoredRow) -> Result<()> {
    for index in &def.indexes {
        remove_index_entry(tx, def, index, &row.values)?;
    }
    tx.delete(&def.data_tree(), &row.key)?;
    Ok(())
}

/// Replaces a row with new column values (checked like an insert).
/// Returns the row as stored.
pub fn update(
    tx: &mut WriteTxn,
    def: &TableDef,
    old: &StoredRow,
    values: Vec<Value>,
) -> Result<Vec<Value>> {
    let mut new = prepare(def, values.into_iter().map(Some).collect(), None)?;
    if let Some(id) = row_id_of(def, &old.values) {
        new.push(Value::Int(id));
    }
    let new_key = row_key(def, &new, row_id_of(def, &new));
    let tree = def.data_tree();
    if new_key != old.key && tx.get(&tree, &new_key)?.is_some() {
        return Err(duplicate(def, &format!("{}_pkey", def.name)));
    }
    // Only entries whose indexed values or row key changed are touched: an
    // unchanged entry stays (and stays unique).
    let changed: Vec<&IndexDef> = def
        .indexes
        .iter()
        .filter(|index| {
            let (before, after) = (
                IndexEntry::of(def, index, &old.values),
                IndexEntry::of(def, index, &new),
            );
            before.prefix != after.prefix || before.pk != after.pk
        })
        .collect();
    for index in &changed {
        remove_index_entry(tx, def, index, &old.values)?;
    }
    for index in &changed {
        add_index_entry(tx, def, index, &new)?;
    }
    if new_key != old.key {
        tx.delete(&tree, &old.key)?;
    }
    tx.put(&tree, &new_key, &row::encode(&stored_types(def), &new))?;
    new.truncate(def.columns.len());
    Ok(new)
}
