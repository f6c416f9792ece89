//! Executing statements: sessions, transactions, and the per-statement
//! plans (access path, filter, projection, aggregation, sort, limit).
//!
//! A [`Session`] is one client's connection state. Outside `BEGIN ...
//! COMMIT` every statement runs in its own transaction (autocommit). Each
//! statement is atomic: it runs from a savepoint and an error rolls back
//! exactly its own changes; inside an explicit transaction the error then
//! marks the transaction failed, and only ROLLBACK (or COMMIT, which rolls
//! back) is accepted, as in PostgreSQL.
//!
//! Access paths: an equality on the whole single-column primary key reads
//! one row; an equality on the single column of an index does an index
//! lookup (B+tree or hash); anything else scans the table in key order. The
//! filter is always re-checked on the rows an access path returns.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use tiers_storage::{Engine, WriteTxn};

use crate::ast::{BinaryOp, ColumnSpec, Expr, OrderBy, Select, SelectItem, Statement};
use crate::catalog::{self, ColumnDef, IndexDef, TableDef};
use crate::error::{Result, SqlError, sqlstate};
use crate::expr::{self, Scope};
use crate::locks::RowLocks;
use crate::reads::Reads;
use crate::sequence::Sequences;
use crate::table::{self, StoredRow};
use crate::types::DataType;
use crate::value::Value;

mod access;
mod ddl;
mod describe;
mod select;
mod write;

use access::*;
use ddl::*;
pub use describe::{describe, parameter_types};
use select::*;
use write::*;

/// A result column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Output name.
    pub name: String,
    /// Type.
    pub data_type: DataType,
}

/// What a statement returns.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// Result columns (empty for statements without rows).
    pub columns: Vec<Column>,
    /// Result rows.
    pub rows: Vec<Vec<Value>>,
    /// The command tag (`SELECT 3`, `INSERT 0 1`, `CREATE TABLE`, ...).
    pub tag: String,
}

impl QueryResult {
    fn command(tag: impl Into<String>) -> QueryResult {
        QueryResult {
            columns: Vec::new(),
            rows: Vec::new(),
            tag: tag.into(),
        }
    }
}

/// What every session of one database shares: the engine, sequences and
/// the row-lock table.
pub struct Database {
    /// The storage engine.
    pub engine: Arc<Engine>,
    /// Sequence values.
    pub sequences: Arc<Sequences>,
    /// Row locks.
    pub locks: RowLocks,
    next_session: AtomicU64,
}

impl Database {
    /// A database on `engine` (creating the catalog trees on first use).
    pub fn new(engine: Arc<Engine>) -> Result<Arc<Database>> {
        let mut tx = engine.begin_write()?;
        catalog::bootstrap(&mut tx)?;
        tx.commit()?;
        Ok(Arc::new(Database {
            sequences: Sequences::new(engine.clone()),
            engine,
            locks: RowLocks::default(),
            next_session: AtomicU64::new(1),
        }))
    }
}

/// How long a statement waits for a row lock before giving up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// One client session.
pub struct Session {
    db: Arc<Database>,
    id: u64,
    settings: std::collections::BTreeMap<String, String>,
    txn: Option<WriteTxn>,
    /// Row locks the open transaction holds.
    held: HashSet<Vec<u8>>,
    /// READ COMMITTED (the default): each statement sees the newest
    /// committed data. Otherwise REPEATABLE READ: one snapshot per transaction.
    read_committed: bool,
    failed: bool,
}

/// What a writing statement needs besides its transaction.
struct WriteCtx<'a> {
    db: &'a Database,
    owner: u64,
    held: &'a mut HashSet<Vec<u8>>,
    read_committed: bool,
}

impl WriteCtx<'_> {
    /// Locks every key (in a fixed order, to avoid deadlocks between two
    /// statements locking the same keys); under READ COMMITTED it then
    /// moves the transaction to the newest snapshot, so what the caller
    /// reads next includes whatever the previous holder committed.
    fn lock(&mut self, tx: &mut WriteTxn, mut keys: Vec<Vec<u8>>) -> Result<()> {
        keys.sort();
        for key in keys {
            self.db.locks.acquire(&key, self.owner, LOCK_TIMEOUT)?;
            self.held.insert(key);
        }
        if self.read_committed {
            tx.refresh_snapshot();
        }
        Ok(())
    }
}

impl Session {
    /// A session on its own database object for `engine` (tests, tools).
    pub fn new(engine: Arc<Engine>) -> Result<Session> {
        Ok(Session::open(&Database::new(engine)?))
    }

    /// A session of a shared database (what a server does per connection).
    pub fn open(db: &Arc<Database>) -> Session {
        Session {
            id: db.next_session.fetch_add(1, AtomicOrdering::Relaxed),
            db: db.clone(),
            settings: default_settings(),
            txn: None,
            held: HashSet::new(),
            read_committed: true,
            failed: false,
        }
    }

    /// Ends the transaction's hold on its row locks.
    fn release_locks(&mut self) {
        let keys: Vec<Vec<u8>> = self.held.drain().collect();
        self.db.locks.release(self.id, &keys);
    }

    /// Whether an explicit transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// Whether the open transaction failed (only ROLLBACK is accepted).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Parses and runs every statement of `sql`, stopping at the first error.
    pub fn execute(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        let mut out = Vec::new();
        for stmt in crate::parse::parse(sql)? {
            out.push(self.run(&stmt, &[])?);
        }
        Ok(out)
    }

    /// Runs one statement with parameter values for `$1`, `$2`, ...
    pub fn run(&mut self, stmt: &Statement, params: &[Value]) -> Result<QueryResult> {
        match stmt {
            Statement::Begin => {
                if self.txn.is_none() {
                    self.txn = Some(self.db.engine.begin_write()?);
                    self.failed = false;
                }
                return Ok(QueryResult::command("BEGIN"));
            }
            Statement::Commit => {
                let failed = std::mem::take(&mut self.failed);
                let result = match self.txn.take() {
                    Some(tx) if failed => {
                        tx.rollback();
                        Ok(QueryResult::command("ROLLBACK"))
                    }
                    Some(tx) => tx
                        .commit()
                        .map(|_| QueryResult::command("COMMIT"))
                        .map_err(SqlError::from),
                    None => Ok(QueryResult::command("COMMIT")),
                };
                self.release_locks();
                return result;
            }
            Statement::Set { name, value } => return self.set(name, value),
            Statement::Show { name } => return self.show(name),
            Statement::Rollback => {
                self.failed = false;
                if let Some(tx) = self.txn.take() {
                    tx.rollback();
                }
                self.release_locks();
                return Ok(QueryResult::command("ROLLBACK"));
            }
            _ => {}
        }
        if self.failed {
            return Err(SqlError::new(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        let (mut tx, autocommit) = match self.txn.take() {
            Some(mut tx) => {
                if self.read_committed {
                    // READ COMMITTED: every statement starts from the newest data.
                    tx.refresh_snapshot();
                }
                (tx, false)
            }
            None => (self.db.engine.begin_write()?, true),
        };
        let savepoint = tx.savepoint();
        let mut ctx = WriteCtx {
            db: &self.db,
            owner: self.id,
            held: &mut self.held,
            read_committed: self.read_committed,
        };
        let result = execute(&mut tx, stmt, params, &mut ctx);
        if result.is_err() {
            tx.rollback_to(savepoint);
        }
        match (autocommit, result) {
            (true, r) => {
                let committed = match r {
                    Ok(r) => tx.commit().map(|_| r).map_err(SqlError::from),
                    Err(e) => Err(e),
                };
                self.release_locks();
                committed
            }
            (false, r) => {
                self.failed = r.is_err();
                self.txn = Some(tx);
                r
            }
        }
    }
}

/// Session parameters and their defaults (what `SHOW` reports).
fn default_settings() -> std::collections::BTreeMap<String, String> {
    [
        ("application_name", ""),
        ("client_encoding", "UTF8"),
        ("client_min_messages", "notice"),
        ("datestyle", "ISO, MDY"),
        ("default_transaction_isolation", "repeatable read"),
        ("extra_float_digits", "1"),
        ("idle_in_transaction_session_timeout", "0"),
        ("intervalstyle", "postgres"),
        ("lock_timeout", "0"),
        ("search_path", "\"$user\", public"),
        ("server_encoding", "UTF8"),
        (
            "server_version",
            concat!("15.0 (tiers ", env!("CARGO_PKG_VERSION"), ")"),
        ),
        ("standard_conforming_strings", "on"),
        ("statement_timeout", "0"),
        ("timezone", "UTC"),
        ("transaction isolation level", "repeatable read"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn unknown_setting(name: &str) -> SqlError {
    SqlError::new(
        "42704",
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

impl Session {
    fn set(&mut self, name: &str, value: &str) -> Result<QueryResult> {
        let name = name.to_ascii_lowercase();
        let fixed = |wanted: &[&str]| -> Result<()> {
            if wanted.iter().any(|w| w.eq_ignore_ascii_case(value)) {
                Ok(())
            } else {
                Err(SqlError::new(
                    "22023",
                    format!(
                        "tiers supports only {} for {name}, not \"{value}\"",
                        wanted[0]
                    ),
                ))
            }
        };
        match name.as_str() {
            "client_encoding" => fixed(&["UTF8", "UTF-8", "UNICODE", "DEFAULT"])?,
            "standard_conforming_strings" => fixed(&["on", "true", "DEFAULT"])?,
            "timezone" => fixed(&["UTC", "Etc/UTC", "GMT", "Z", "DEFAULT"])?,
            "server_version" | "server_encoding" | "transaction isolation level" => {
                return Err(SqlError::new(
                    "55P02",
                    format!("parameter \"{name}\" cannot be changed"),
                ));
            }
            _ if !self.settings.contains_key(&name) => return Err(unknown_setting(&name)),
            _ => {}
        }
        let value = if value.eq_ignore_ascii_case("default") {
            default_settings().remove(&name).unwrap_or_default()
        } else {
            value.to_string()
        };
        self.settings.insert(name, value);
        Ok(QueryResult::command("SET"))
    }

    fn show(&self, name: &str) -> Result<QueryResult> {
        let name = name.to_ascii_lowercase();
        let value = self
            .settings
            .get(&name)
            .ok_or_else(|| unknown_setting(&name))?;
        Ok(QueryResult {
            columns: vec![Column {
                name: name.clone(),
                data_type: DataType::Text,
            }],
            rows: vec![vec![Value::Text(value.clone())]],
            tag: "SHOW".into(),
        })
    }
}

fn execute(
    tx: &mut WriteTxn,
    stmt: &Statement,
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    match stmt {
        Statement::CreateTable {
            name,
            if_not_exists,
            columns,
            primary_key,
            unique,
        } => create_table(tx, name, *if_not_exists, columns, primary_key, unique),
        Statement::DropTable { names, if_exists } => {
            for name in names {
                if catalog::table(tx, name)?.is_none() && *if_exists {
                    continue;
                }
                catalog::drop_table(tx, name)?;
            }
            Ok(QueryResult::command("DROP TABLE"))
        }
        Statement::CreateIndex {
            name,
            table,
            columns,
            unique,
            kind,
            if_not_exists,
        } => {
            let def = catalog::require_table(tx, table)?;
            let name = name
                .clone()
                .unwrap_or_else(|| format!("{table}_{}_idx", columns.join("_")));
            let exists = catalog::tables(tx)?
                .iter()
                .any(|t| t.indexes.iter().any(|i| i.name == name));
            if exists && *if_not_exists {
                return Ok(QueryResult::command("CREATE INDEX"));
            }
            let columns = columns
                .iter()
                .map(|c| def.column(c))
                .collect::<Result<_>>()?;
            let index = IndexDef {
                id: 0,
                name,
                columns,
                unique: *unique,
                kind: *kind,
            };
            catalog::create_index(tx, table, index)?;
            Ok(QueryResult::command("CREATE INDEX"))
        }
        Statement::Insert {
            table,
            columns,
            rows,
            returning,
        } => insert(tx, table, columns, rows, returning, params, ctx),
        Statement::Select(select) => run_select(tx, select, params),
        Statement::Update {
            table,
            set,
            filter,
            returning,
        } => update(tx, table, set, filter.as_ref(), returning, params, ctx),
        Statement::Delete {
            table,
            filter,
            returning,
        } => delete(tx, table, filter.as_ref(), returning, params, ctx),
        Statement::Begin
        | Statement::Commit
        | Statement::Rollback
        | Statement::Set { .. }
        | Statement::Show { .. } => {
            unreachable!("session statements are handled by the session")
        }
    }
}
