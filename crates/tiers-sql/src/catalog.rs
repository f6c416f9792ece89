//! The table catalog: table and index definitions, stored in the storage
//! engine itself (tree `sql.tables`, one JSON document per table), so they
//! are journaled, replicated and recovered like any other data, and a DDL
//! statement commits atomically with the data it touches.
//!
//! Each table's rows live in tree `tbl.<id>` keyed by the order-preserving
//! encoding of the primary key (a hidden row id when there is none); each
//! index in tree `idx.<id>` (see [`crate::table`]).

use std::ops::Bound;

use serde::{Deserialize, Serialize};
use tiers_storage::{TreeKind, WriteTxn};

use crate::error::{Result, SqlError, sqlstate};
use crate::reads::Reads;
use crate::types::DataType;

/// Tree holding the table definitions.
pub const TABLES_TREE: &str = "sql.tables";
/// Tree holding counters: object ids and sequences.
pub const COUNTERS_TREE: &str = "sql.counters";
const NEXT_ID_KEY: &[u8] = b"next-object-id";

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name (lower case unless quoted).
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// Whether NULL is refused.
    pub not_null: bool,
    /// Default, as PostgreSQL text input for the type (None = NULL).
    pub default: Option<String>,
    /// Filled from a sequence when not given (SERIAL, GENERATED ... AS IDENTITY).
    pub serial: bool,
    /// A default evaluated for each row (such as `now()`), as SQL text;
    /// takes the place of `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_expr: Option<String>,
}

/// A CHECK constraint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckDef {
    /// Constraint name (reported on violation).
    pub name: String,
    /// The condition as SQL text over the table's columns.
    pub sql: String,
}

/// Index access method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IndexKind {
    /// Ordered: equality, ranges and ORDER BY.
    BTree,
    /// Equality only.
    Hash,
}

/// A secondary index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    /// Object id; its tree is `idx.<id>`.
    pub id: u64,
    /// Index name.
    pub name: String,
    /// Indexed columns (positions in the table).
    pub columns: Vec<usize>,
    /// Whether two rows may not share a non-NULL key.
    pub unique: bool,
    /// Access method.
    pub kind: IndexKind,
}

/// A table definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Object id; rows live in tree `tbl.<id>`.
    pub id: u64,
    /// Table name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
    /// Primary-key columns (positions); empty means a hidden row id.
    pub primary_key: Vec<usize>,
    /// Secondary indexes.
    pub indexes: Vec<IndexDef>,
    /// CHECK constraints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDef>,
}

impl TableDef {
    /// The tree holding the rows.
    pub fn data_tree(&self) -> String {
        format!("tbl.{}", self.id)
    }

    /// Position of a column by name.
    pub fn column(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| {
                SqlError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!(
                        "column \"{name}\" of relation \"{}\" does not exist",
                        self.name
                    ),
                )
            })
    }

    /// Column types in order.
    pub fn types(&self) -> Vec<DataType> {
        self.columns.iter().map(|c| c.data_type).collect()
    }
}

/// The tree of an index.
pub fn index_tree(index: &IndexDef) -> String {
    format!("idx.{}", index.id)
}

fn undefined_table(name: &str) -> SqlError {
    SqlError::new(
        sqlstate::UNDEFINED_TABLE,
        format!("relation \"{name}\" does not exist"),
    )
}

/// Decoded table definitions by their stored bytes. A definition is read
/// from the snapshot on every statement (so it is always the right one for
/// that snapshot), but parsed from JSON only once per distinct version.
/// At most 4,096 are kept.
static DECODED: crate::memo::Memo<Vec<u8>, TableDef> = crate::memo::Memo::new(4096);

fn decode_def(bytes: &[u8]) -> Result<TableDef> {
    DECODED.get_or_make(bytes, || parse_def(bytes))
}

fn parse_def(bytes: &[u8]) -> Result<TableDef> {
    serde_json::from_slice(bytes).map_err(|e| {
        SqlError::new(
            sqlstate::DATA_CORRUPTED,
            format!("corrupt table definition: {e}"),
        )
    })
}

/// Makes sure the catalog trees exist (first use of a database).
pub fn bootstrap(tx: &mut WriteTxn) -> Result<()> {
    for (tree, kind) in [
        (TABLES_TREE, TreeKind::BTree),
        (COUNTERS_TREE, TreeKind::BTree),
    ] {
        match tx.create_tree(tree, kind) {
            Ok(()) | Err(tiers_storage::Error::TreeExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Looks a table up by name.
pub fn table(r: &dyn Reads, name: &str) -> Result<Option<TableDef>> {
    match r.get(TABLES_TREE, name.as_bytes())? {
        None => Ok(None),
        Some(bytes) => decode_def(&bytes).map(Some),
    }
}

/// Looks a table up by name; an error if it does not exist.
pub fn require_table(r: &dyn Reads, name: &str) -> Result<TableDef> {
    table(r, name)?.ok_or_else(|| undefined_table(name))
}

/// Every table, by name.
pub fn tables(r: &dyn Reads) -> Result<Vec<TableDef>> {
    r.scan(TABLES_TREE, Bound::Unbounded, Bound::Unbounded)?
        .map(|e| decode_def(&e?.1))
        .collect()
}

/// Takes the next value of a counter (object ids, sequences).
pub fn next_counter(tx: &mut WriteTxn, key: &[u8]) -> Result<i64> {
    let current = match tx.get(COUNTERS_TREE, key)? {
        Some(v) => i64::from_le_bytes(
            v.try_into()
                .map_err(|_| SqlError::new(sqlstate::DATA_CORRUPTED, "corrupt counter"))?,
        ),
        None => 0,
    };
    let next = current.checked_add(1).ok_or_else(|| {
        SqlError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "counter reached its maximum",
        )
    })?;
    tx.put(COUNTERS_TREE, key, &next.to_le_bytes())?;
    Ok(next)
}

/// The sequence key of a table's serial column (or of its hidden row id).
pub fn sequence_key(table_id: u64, column: Option<usize>) -> Vec<u8> {
    match column {
        Some(c) => format!("seq.{table_id}.{c}").into_bytes(),
        None => format!("seq.{table_id}.rowid").into_bytes(),
    }
}

/// Creates a table (and its trees). `def.id` and index ids are assigned here.
pub fn create_table(tx: &mut WriteTxn, mut def: TableDef) -> Result<TableDef> {
    if table(tx, &def.name)?.is_some() {
        return Err(SqlError::new(
            sqlstate::DUPLICATE_TABLE,
            format!("relation \"{}\" already exists", def.name),
        ));
    }
    for (i, c) in def.columns.iter().enumerate() {
        if def.columns[..i].iter().any(|o| o.name == c.name) {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_COLUMN,
                format!("column \"{}\" specified more than once", c.name),
            ));
        }
    }
    if def.primary_key.iter().any(|p| *p >= def.columns.len()) {
        return Err(SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            "primary key names no column",
        ));
    }
    for p in def.primary_key.clone() {
        def.columns[p].not_null = true;
    }
    def.id = next_counter(tx, NEXT_ID_KEY)? as u64;
    tx.create_tree(&def.data_tree(), TreeKind::BTree)?;
    let indexes = std::mem::take(&mut def.indexes);
    put_def(tx, &def)?;
    for index in indexes {
        def = create_index(tx, &def.name, index)?;
    }
    Ok(def)
}

fn put_def(tx: &mut WriteTxn, def: &TableDef) -> Result<()> {
    let json = serde_json::to_vec(def).expect("table definitions serialize");
    tx.put(TABLES_TREE, def.name.as_bytes(), &json)?;
    Ok(())
}

/// Stores a changed definition (ALTER TABLE, DROP INDEX), under a new name
/// when it was renamed from `old_name`.
pub fn replace_table(tx: &mut WriteTxn, old_name: &str, def: &TableDef) -> Result<()> {
    if old_name != def.name {
        if table(tx, &def.name)?.is_some() {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_TABLE,
                format!("relation \"{}\" already exists", def.name),
            ));
        }
        tx.delete(TABLES_TREE, old_name.as_bytes())?;
    }
    put_def(tx, def)
}

/// The table that owns the index named `index`.
pub fn index_owner(r: &dyn Reads, index: &str) -> Result<Option<TableDef>> {
    Ok(tables(r)?
        .into_iter()
        .find(|t| t.indexes.iter().any(|i| i.name == index)))
}

/// Drops a table, its rows and its indexes.
pub fn drop_table(tx: &mut WriteTxn, name: &str) -> Result<()> {
    let def = require_table(tx, name)?;
    for index in &def.indexes {
        tx.drop_tree(&index_tree(index))?;
    }
    tx.drop_tree(&def.data_tree())?;
    tx.delete(TABLES_TREE, name.as_bytes())?;
    Ok(())
}

/// Adds an index to a table and fills it from the existing rows (checking
/// uniqueness). Returns the updated definition.
pub fn create_index(tx: &mut WriteTxn, table_name: &str, mut index: IndexDef) -> Result<TableDef> {
    let mut def = require_table(tx, table_name)?;
    let exists = tables(tx)?
        .iter()
        .any(|t| t.indexes.iter().any(|i| i.name == index.name));
    if exists {
        return Err(SqlError::new(
            sqlstate::DUPLICATE_TABLE,
            format!("relation \"{}\" already exists", index.name),
        ));
    }
    if index.columns.is_empty() || index.columns.iter().any(|c| *c >= def.columns.len()) {
        return Err(SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            "index names no column",
        ));
    }
    if index.kind == IndexKind::Hash && (index.unique || index.columns.len() != 1) {
        return Err(SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "hash indexes cover exactly one column and cannot be unique (as in PostgreSQL)",
        ));
    }
    index.id = next_counter(tx, NEXT_ID_KEY)? as u64;
    let kind = match index.kind {
        IndexKind::BTree => TreeKind::BTree,
        IndexKind::Hash => TreeKind::Hash,
    };
    tx.create_tree(&index_tree(&index), kind)?;
    let rows: Vec<crate::table::StoredRow> =
        crate::table::scan_stored(tx, &def)?.collect::<Result<_>>()?;
    for row in &rows {
        crate::table::add_index_entry(tx, &def, &index, &row.values)?;
    }
    def.indexes.push(index);
    put_def(tx, &def)?;
    Ok(def)
}
