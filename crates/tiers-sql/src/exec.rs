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

fn constant(e: &Expr) -> Result<Value> {
    expr::eval(e, &Scope::constant(&[])).map_err(|err| {
        SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "only constant DEFAULT expressions are supported yet ({})",
                err.message
            ),
        )
    })
}

fn create_table(
    tx: &mut WriteTxn,
    name: &str,
    if_not_exists: bool,
    specs: &[ColumnSpec],
    table_pk: &[String],
    unique: &[Vec<String>],
) -> Result<QueryResult> {
    if catalog::table(tx, name)?.is_some() && if_not_exists {
        return Ok(QueryResult::command("CREATE TABLE"));
    }
    let mut columns = Vec::with_capacity(specs.len());
    for spec in specs {
        let default = match &spec.default {
            None => None,
            Some(e) => {
                let v = spec.data_type.assign(constant(e)?)?;
                (!v.is_null()).then(|| v.to_text())
            }
        };
        columns.push(ColumnDef {
            name: spec.name.clone(),
            data_type: spec.data_type,
            not_null: spec.not_null,
            default,
            serial: spec.serial,
        });
    }
    let find = |c: &String| {
        columns
            .iter()
            .position(|col| &col.name == c)
            .ok_or_else(|| {
                SqlError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!("column \"{c}\" named in key does not exist"),
                )
            })
    };
    let mut primary_key: Vec<usize> = table_pk.iter().map(find).collect::<Result<_>>()?;
    for (i, spec) in specs.iter().enumerate() {
        if spec.primary_key {
            if !primary_key.is_empty() {
                return Err(SqlError::new(
                    sqlstate::SYNTAX_ERROR,
                    format!("multiple primary keys for table \"{name}\" are not allowed"),
                ));
            }
            primary_key.push(i);
        }
    }
    let mut unique_sets: Vec<Vec<usize>> = unique
        .iter()
        .map(|cols| cols.iter().map(find).collect::<Result<_>>())
        .collect::<Result<_>>()?;
    unique_sets.extend(
        specs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.unique)
            .map(|(i, _)| vec![i]),
    );
    let indexes = unique_sets
        .into_iter()
        .map(|cols| IndexDef {
            id: 0,
            name: format!(
                "{name}_{}_key",
                cols.iter()
                    .map(|&c| columns[c].name.as_str())
                    .collect::<Vec<_>>()
                    .join("_")
            ),
            columns: cols,
            unique: true,
            kind: catalog::IndexKind::BTree,
        })
        .collect();
    catalog::create_table(
        tx,
        TableDef {
            id: 0,
            name: name.to_string(),
            columns,
            primary_key,
            indexes,
        },
    )?;
    Ok(QueryResult::command("CREATE TABLE"))
}

fn insert(
    tx: &mut WriteTxn,
    table_name: &str,
    columns: &[String],
    rows: &[Vec<Expr>],
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let def = catalog::require_table(tx, table_name)?;
    let targets: Vec<usize> = if columns.is_empty() {
        (0..def.columns.len()).collect()
    } else {
        columns
            .iter()
            .map(|c| def.column(c))
            .collect::<Result<_>>()?
    };
    let scope = Scope::constant(params);
    let mut stored = Vec::with_capacity(rows.len());
    for row in rows {
        if row.len() > targets.len() {
            return Err(SqlError::new(
                sqlstate::SYNTAX_ERROR,
                "INSERT has more expressions than target columns",
            ));
        }
        let mut values: Vec<Option<Value>> = vec![None; def.columns.len()];
        for (e, &col) in row.iter().zip(&targets) {
            values[col] = Some(expr::eval(e, &scope)?);
        }
        let row = table::prepare_insert(&def, values, &ctx.db.sequences)?;
        ctx.lock(tx, table::lock_keys(&def, &row))?;
        stored.push(table::insert_prepared(tx, &def, row)?);
    }
    let n = stored.len();
    returning_result(&def, stored, returning, params, format!("INSERT 0 {n}"))
}

/// The rows of `def` the filter may match, through the best access path.
fn candidates(
    r: &dyn Reads,
    def: &TableDef,
    filter: Option<&Expr>,
    params: &[Value],
) -> Result<Vec<StoredRow>> {
    if let Some(f) = filter {
        for (col, value) in equalities(def, f, params) {
            if def.primary_key == [col] {
                let key = table::primary_key(def, &[value])?;
                return Ok(table::get(r, def, &key)?.into_iter().collect());
            }
            if let Some(index) = def.indexes.iter().find(|i| i.columns == [col]) {
                return table::lookup(r, def, index, &[value]);
            }
        }
    }
    table::scan_stored(r, def)?.collect()
}

/// `column = constant` terms of a conjunction, with the constant already
/// converted to the column's type (a constant that does not convert gives no
/// access path; the filter then reports the error or matches nothing).
fn equalities(def: &TableDef, e: &Expr, params: &[Value]) -> Vec<(usize, Value)> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        let Expr::Binary { op, left, right } = e else {
            continue;
        };
        match op {
            BinaryOp::And => {
                stack.push(left);
                stack.push(right);
            }
            BinaryOp::Eq => {
                let pair = match (&**left, &**right) {
                    (Expr::Column { table, name }, other)
                    | (other, Expr::Column { table, name })
                        if table.as_deref().is_none_or(|t| t == def.name) =>
                    {
                        def.columns
                            .iter()
                            .position(|c| &c.name == name)
                            .zip(Some(other))
                    }
                    _ => None,
                };
                let Some((col, other)) = pair else { continue };
                let scope = Scope::constant(params);
                if let Ok(v) = expr::eval(other, &scope)
                    && let Ok(v) = def.columns[col].data_type.assign(v)
                    && !v.is_null()
                {
                    out.push((col, v));
                }
            }
            _ => {}
        }
    }
    out
}

fn matches(def: &TableDef, filter: Option<&Expr>, row: &[Value], params: &[Value]) -> Result<bool> {
    let Some(f) = filter else { return Ok(true) };
    let scope = Scope::row(def, row, params);
    Ok(expr::truth(&expr::eval(f, &scope)?)? == Some(true))
}

fn matching_rows(
    r: &dyn Reads,
    def: &TableDef,
    filter: Option<&Expr>,
    params: &[Value],
) -> Result<Vec<StoredRow>> {
    let mut out = Vec::new();
    for row in candidates(r, def, filter, params)? {
        if matches(def, filter, row.columns(def), params)? {
            out.push(row);
        }
    }
    Ok(out)
}

/// Locks a row found at the statement's snapshot and reads it again at
/// the newest one (the lock holder before us may have changed or deleted
/// it); None when it is gone or no longer matches the filter.
fn lock_and_recheck(
    tx: &mut WriteTxn,
    def: &TableDef,
    row: &StoredRow,
    filter: Option<&Expr>,
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<Option<StoredRow>> {
    ctx.lock(tx, vec![table::lock_keys(def, &row.values).swap_remove(0)])?;
    if !ctx.read_committed {
        return Ok(Some(row.clone()));
    }
    let Some(current) = table::get(tx, def, &row.key)? else {
        return Ok(None);
    };
    Ok(matches(def, filter, current.columns(def), params)?.then_some(current))
}

fn update(
    tx: &mut WriteTxn,
    table_name: &str,
    set: &[(String, Expr)],
    filter: Option<&Expr>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let def = catalog::require_table(tx, table_name)?;
    let targets: Vec<(usize, &Expr)> = set
        .iter()
        .map(|(c, e)| def.column(c).map(|i| (i, e)))
        .collect::<Result<_>>()?;
    // Collect first, then write: a scan must not see its own updates.
    let rows = matching_rows(tx, &def, filter, params)?;
    let mut stored = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(row) = lock_and_recheck(tx, &def, row, filter, params, ctx)? else {
            continue;
        };
        let old = row.columns(&def);
        let scope = Scope::row(&def, old, params);
        let mut new = old.to_vec();
        for (col, e) in &targets {
            new[*col] = expr::eval(e, &scope)?;
        }
        // A changed key or unique value must be locked too before it is written.
        let mut checked = table::coerce_row(&def, new)?;
        checked.extend(row.values[def.columns.len()..].iter().cloned());
        ctx.lock(tx, table::lock_keys(&def, &checked))?;
        checked.truncate(def.columns.len());
        stored.push(table::update(tx, &def, &row, checked)?);
    }
    let n = stored.len();
    returning_result(&def, stored, returning, params, format!("UPDATE {n}"))
}

fn delete(
    tx: &mut WriteTxn,
    table_name: &str,
    filter: Option<&Expr>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let def = catalog::require_table(tx, table_name)?;
    let rows = matching_rows(tx, &def, filter, params)?;
    let mut gone = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(row) = lock_and_recheck(tx, &def, row, filter, params, ctx)? else {
            continue;
        };
        table::delete(tx, &def, &row)?;
        gone.push(row.columns(&def).to_vec());
    }
    let n = gone.len();
    returning_result(&def, gone, returning, params, format!("DELETE {n}"))
}

fn returning_result(
    def: &TableDef,
    rows: Vec<Vec<Value>>,
    items: &[SelectItem],
    params: &[Value],
    tag: String,
) -> Result<QueryResult> {
    if items.is_empty() {
        return Ok(QueryResult::command(tag));
    }
    let (columns, exprs) = output_columns(Some(def), items)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let scope = Scope::row(def, row, params);
        out.push(
            exprs
                .iter()
                .map(|e| expr::eval(e, &scope))
                .collect::<Result<_>>()?,
        );
    }
    Ok(QueryResult {
        columns,
        rows: out,
        tag,
    })
}

/// Expands `*` and names every output column.
fn output_columns(
    def: Option<&TableDef>,
    items: &[SelectItem],
) -> Result<(Vec<Column>, Vec<Expr>)> {
    let mut columns = Vec::new();
    let mut exprs = Vec::new();
    for item in items {
        match item {
            SelectItem::Wildcard => {
                let Some(def) = def else {
                    return Err(SqlError::new(
                        sqlstate::SYNTAX_ERROR,
                        "SELECT * with no tables specified is not valid",
                    ));
                };
                for c in &def.columns {
                    columns.push(Column {
                        name: c.name.clone(),
                        data_type: c.data_type,
                    });
                    exprs.push(Expr::Column {
                        table: None,
                        name: c.name.clone(),
                    });
                }
            }
            SelectItem::Expr { expr, alias } => {
                let name = alias.clone().unwrap_or_else(|| match expr {
                    Expr::Column { name, .. } => name.clone(),
                    Expr::Function { name, .. } => name.clone(),
                    Expr::Cast { expr, .. } => match &**expr {
                        Expr::Column { name, .. } => name.clone(),
                        _ => "?column?".into(),
                    },
                    _ => "?column?".into(),
                });
                columns.push(Column {
                    name,
                    data_type: type_of(expr, def),
                });
                exprs.push(expr.clone());
            }
        }
    }
    Ok((columns, exprs))
}

/// The static type of an expression (what clients are told in the row
/// description).
fn type_of(e: &Expr, def: Option<&TableDef>) -> DataType {
    match e {
        Expr::Literal(Value::Int(i)) => {
            if i32::try_from(*i).is_ok() {
                DataType::Int4
            } else {
                DataType::Int8
            }
        }
        Expr::Literal(Value::Float(_)) => DataType::Float8,
        Expr::Literal(Value::Bool(_)) => DataType::Bool,
        Expr::Literal(Value::Date(_)) => DataType::Date,
        Expr::Literal(Value::Bytes(_)) => DataType::Bytea,
        Expr::Literal(_) | Expr::Parameter(_) => DataType::Text,
        Expr::Column { name, .. } => def
            .and_then(|d| d.columns.iter().find(|c| &c.name == name))
            .map_or(DataType::Text, |c| c.data_type),
        Expr::Binary { op, left, right } => match op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
                let (l, r) = (type_of(left, def), type_of(right, def));
                match (l, r) {
                    (DataType::Float8 | DataType::Float4, _)
                    | (_, DataType::Float8 | DataType::Float4) => DataType::Float8,
                    (DataType::Date, _) => DataType::Date,
                    (DataType::Int8, _) | (_, DataType::Int8) => DataType::Int8,
                    _ => DataType::Int4,
                }
            }
            BinaryOp::Concat => DataType::Text,
            _ => DataType::Bool,
        },
        Expr::Negate(inner) => type_of(inner, def),
        Expr::Cast { to, .. } => *to,
        Expr::Case { branches, .. } => branches
            .first()
            .map_or(DataType::Text, |(_, t)| type_of(t, def)),
        Expr::Function { name, args, .. } => match name.as_str() {
            "count" | "length" | "char_length" => DataType::Int8,
            "avg" => DataType::Float8,
            "sum" => match args.first().map(|a| type_of(a, def)) {
                Some(DataType::Float4 | DataType::Float8) => DataType::Float8,
                _ => DataType::Int8,
            },
            "min" | "max" | "abs" | "coalesce" | "nullif" | "round" => {
                args.first().map_or(DataType::Text, |a| type_of(a, def))
            }
            "now" | "current_timestamp" => DataType::TimestampTz,
            _ => DataType::Text,
        },
        Expr::Not(_)
        | Expr::IsNull { .. }
        | Expr::Like { .. }
        | Expr::InList { .. }
        | Expr::Between { .. } => DataType::Bool,
    }
}

fn has_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Function { name, args, .. } => {
            expr::is_aggregate(name) || args.iter().any(has_aggregate)
        }
        Expr::Binary { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::Not(x)
        | Expr::Negate(x)
        | Expr::Cast { expr: x, .. }
        | Expr::IsNull { expr: x, .. } => has_aggregate(x),
        _ => false,
    }
}

fn run_select(r: &dyn Reads, select: &Select, params: &[Value]) -> Result<QueryResult> {
    let def = select
        .from
        .as_deref()
        .map(|t| catalog::require_table(r, t))
        .transpose()?;
    let (columns, exprs) = output_columns(def.as_ref(), &select.items)?;
    let rows: Vec<Vec<Value>> = match &def {
        None => vec![Vec::new()],
        Some(d) => matching_rows(r, d, select.filter.as_ref(), params)?
            .into_iter()
            .map(|row| row.columns(d).to_vec())
            .collect(),
    };
    let mut out: Vec<(Vec<Value>, Vec<Value>)> = if exprs.iter().any(has_aggregate) {
        vec![(
            aggregate_row(&exprs, &rows, def.as_ref(), params)?,
            Vec::new(),
        )]
    } else {
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let scope = Scope {
                table: def.as_ref(),
                row: Some(row),
                params,
            };
            let values = exprs
                .iter()
                .map(|e| expr::eval(e, &scope))
                .collect::<Result<_>>()?;
            let keys = sort_keys(&select.order_by, &exprs, &columns, &scope)?;
            out.push((values, keys));
        }
        out
    };
    if !select.order_by.is_empty() {
        let mut failure = None;
        out.sort_by(|a, b| {
            compare_keys(&select.order_by, &a.1, &b.1).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                Ordering::Equal
            })
        });
        if let Some(e) = failure {
            return Err(e);
        }
    }
    let constant = Scope::constant(params);
    let count = |e: &Option<Expr>| -> Result<Option<usize>> {
        let Some(e) = e else { return Ok(None) };
        match expr::eval(e, &constant)? {
            Value::Null => Ok(None),
            v => {
                let n = v.to_i64()?;
                usize::try_from(n)
                    .map(Some)
                    .map_err(|_| SqlError::new("2201W", "LIMIT and OFFSET must not be negative"))
            }
        }
    };
    let offset = count(&select.offset)?.unwrap_or(0);
    let limit = count(&select.limit)?.unwrap_or(usize::MAX);
    let rows: Vec<Vec<Value>> = out
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(v, _)| v)
        .collect();
    let tag = format!("SELECT {}", rows.len());
    Ok(QueryResult { columns, rows, tag })
}

/// ORDER BY keys for a row: a position (`ORDER BY 2`), an output name, or
/// any expression over the row.
fn sort_keys(
    order: &[OrderBy],
    exprs: &[Expr],
    columns: &[Column],
    scope: &Scope<'_>,
) -> Result<Vec<Value>> {
    order
        .iter()
        .map(|o| match &o.expr {
            Expr::Literal(Value::Int(n)) => {
                let i = usize::try_from(*n)
                    .ok()
                    .filter(|i| (1..=exprs.len()).contains(i))
                    .ok_or_else(|| {
                        SqlError::new(
                            "42P10",
                            format!("ORDER BY position {n} is not in select list"),
                        )
                    })?;
                expr::eval(&exprs[i - 1], scope)
            }
            Expr::Column { table: None, name }
                if columns.iter().any(|c| &c.name == name)
                    && scope.table.is_none_or(|d| d.column(name).is_err()) =>
            {
                let i = columns.iter().position(|c| &c.name == name).expect("found");
                expr::eval(&exprs[i], scope)
            }
            e => expr::eval(e, scope),
        })
        .collect()
}

fn compare_keys(order: &[OrderBy], a: &[Value], b: &[Value]) -> Result<Ordering> {
    for (o, (x, y)) in order.iter().zip(a.iter().zip(b)) {
        let nulls_first = o.nulls_first.unwrap_or(o.desc);
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            _ => {
                let ord = expr::compare(x, y)?.unwrap_or(Ordering::Equal);
                if o.desc { ord.reverse() } else { ord }
            }
        };
        if ord != Ordering::Equal {
            return Ok(ord);
        }
    }
    Ok(Ordering::Equal)
}

/// One output row of aggregates over all `rows` (no GROUP BY yet).
fn aggregate_row(
    exprs: &[Expr],
    rows: &[Vec<Value>],
    def: Option<&TableDef>,
    params: &[Value],
) -> Result<Vec<Value>> {
    exprs
        .iter()
        .map(|e| match e {
            Expr::Function { name, args, star } if expr::is_aggregate(name) => {
                aggregate(name, args.first(), *star, rows, def, params)
            }
            e if !has_aggregate(e) && !references_columns(e) => expr::eval(
                e,
                &Scope {
                    table: def,
                    row: None,
                    params,
                },
            ),
            _ => Err(SqlError::new(
                "42803",
                "columns must appear in an aggregate function (GROUP BY is not supported yet)",
            )),
        })
        .collect()
}

fn references_columns(e: &Expr) -> bool {
    match e {
        Expr::Column { .. } => true,
        Expr::Binary { left, right, .. } => references_columns(left) || references_columns(right),
        Expr::Not(x)
        | Expr::Negate(x)
        | Expr::Cast { expr: x, .. }
        | Expr::IsNull { expr: x, .. } => references_columns(x),
        Expr::Function { args, .. } => args.iter().any(references_columns),
        _ => false,
    }
}

fn aggregate(
    name: &str,
    arg: Option<&Expr>,
    star: bool,
    rows: &[Vec<Value>],
    def: Option<&TableDef>,
    params: &[Value],
) -> Result<Value> {
    if name == "count" && (star || arg.is_none()) {
        return Ok(Value::Int(rows.len() as i64));
    }
    let arg = arg.ok_or_else(|| SqlError::new("42883", format!("{name}() needs an argument")))?;
    let mut values = Vec::with_capacity(rows.len());
    for row in rows {
        let v = expr::eval(
            arg,
            &Scope {
                table: def,
                row: Some(row),
                params,
            },
        )?;
        if !v.is_null() {
            values.push(v);
        }
    }
    match name {
        "count" => Ok(Value::Int(values.len() as i64)),
        "min" | "max" => {
            let mut best: Option<Value> = None;
            for v in values {
                let better = match &best {
                    None => true,
                    Some(b) => {
                        let o = expr::compare(&v, b)?.unwrap_or(Ordering::Equal);
                        if name == "min" {
                            o == Ordering::Less
                        } else {
                            o == Ordering::Greater
                        }
                    }
                };
                if better {
                    best = Some(v);
                }
            }
            Ok(best.unwrap_or(Value::Null))
        }
        _ => {
            if values.is_empty() {
                return Ok(Value::Null);
            }
            let all_int = values.iter().all(|v| matches!(v, Value::Int(_)));
            if name == "sum" && all_int {
                let mut total: i64 = 0;
                for v in &values {
                    total = total.checked_add(v.to_i64()?).ok_or_else(|| {
                        SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "bigint out of range")
                    })?;
                }
                return Ok(Value::Int(total));
            }
            let mut total = 0f64;
            for v in &values {
                total += v.to_f64()?;
            }
            Ok(Value::Float(if name == "avg" {
                total / values.len() as f64
            } else {
                total
            }))
        }
    }
}

/// The result columns a statement will return, without running it (for
/// the wire protocol's Describe).
pub fn describe(r: &dyn Reads, stmt: &Statement) -> Result<Vec<Column>> {
    if let Statement::Show { name } = stmt {
        return Ok(vec![Column {
            name: name.to_ascii_lowercase(),
            data_type: DataType::Text,
        }]);
    }
    let (table, items) = match stmt {
        Statement::Select(s) => (s.from.as_deref(), &s.items),
        Statement::Insert {
            table, returning, ..
        }
        | Statement::Update {
            table, returning, ..
        }
        | Statement::Delete {
            table, returning, ..
        } => (Some(table.as_str()), returning),
        _ => return Ok(Vec::new()),
    };
    let def = table.map(|t| catalog::require_table(r, t)).transpose()?;
    Ok(output_columns(def.as_ref(), items)?.0)
}

/// The types of `$1..$n` as far as the statement's context tells them
/// (compared with or assigned to a column, LIMIT/OFFSET); `text` otherwise.
pub fn parameter_types(r: &dyn Reads, stmt: &Statement) -> Result<Vec<DataType>> {
    let mut types: Vec<Option<DataType>> = Vec::new();
    let mut note = |n: usize, t: Option<DataType>| {
        if n == 0 || n > 65_535 {
            return;
        }
        if types.len() < n {
            types.resize(n, None);
        }
        if types[n - 1].is_none() {
            types[n - 1] = t;
        }
    };
    let table_of = |name: &str| catalog::table(r, name).ok().flatten();
    match stmt {
        Statement::Insert {
            table,
            columns,
            rows,
            returning,
        } => {
            let def = table_of(table);
            for row in rows {
                for (j, e) in row.iter().enumerate() {
                    let ty = def.as_ref().and_then(|d| {
                        let col = if columns.is_empty() {
                            Some(j)
                        } else {
                            d.column(&columns[j]).ok()
                        };
                        col.and_then(|c| d.columns.get(c)).map(|c| c.data_type)
                    });
                    visit_params(e, def.as_ref(), ty, &mut note);
                }
            }
            returning_params(returning, def.as_ref(), &mut note);
        }
        Statement::Select(s) => {
            let def = s.from.as_deref().and_then(table_of);
            for item in &s.items {
                if let SelectItem::Expr { expr, .. } = item {
                    visit_params(expr, def.as_ref(), None, &mut note);
                }
            }
            if let Some(f) = &s.filter {
                visit_params(f, def.as_ref(), None, &mut note);
            }
            for e in s.limit.iter().chain(s.offset.iter()) {
                visit_params(e, def.as_ref(), Some(DataType::Int8), &mut note);
            }
            for o in &s.order_by {
                visit_params(&o.expr, def.as_ref(), None, &mut note);
            }
        }
        Statement::Update {
            table,
            set,
            filter,
            returning,
        } => {
            let def = table_of(table);
            for (col, e) in set {
                let ty = def
                    .as_ref()
                    .and_then(|d| d.column(col).ok().map(|c| d.columns[c].data_type));
                visit_params(e, def.as_ref(), ty, &mut note);
            }
            if let Some(f) = filter {
                visit_params(f, def.as_ref(), None, &mut note);
            }
            returning_params(returning, def.as_ref(), &mut note);
        }
        Statement::Delete {
            table,
            filter,
            returning,
        } => {
            let def = table_of(table);
            if let Some(f) = filter {
                visit_params(f, def.as_ref(), None, &mut note);
            }
            returning_params(returning, def.as_ref(), &mut note);
        }
        _ => {}
    }
    Ok(types
        .into_iter()
        .map(|t| t.unwrap_or(DataType::Text))
        .collect())
}

fn returning_params(
    items: &[SelectItem],
    def: Option<&TableDef>,
    note: &mut dyn FnMut(usize, Option<DataType>),
) {
    for item in items {
        if let SelectItem::Expr { expr, .. } = item {
            visit_params(expr, def, None, note);
        }
    }
}

/// Walks an expression, telling `note` each parameter and the type its
/// context implies (`hint` for the expression itself).
fn visit_params(
    e: &Expr,
    def: Option<&TableDef>,
    hint: Option<DataType>,
    note: &mut dyn FnMut(usize, Option<DataType>),
) {
    let column_type = |e: &Expr| match e {
        Expr::Column { name, .. } => def
            .and_then(|d| d.columns.iter().find(|c| &c.name == name))
            .map(|c| c.data_type),
        Expr::Cast { to, .. } => Some(*to),
        _ => None,
    };
    match e {
        Expr::Parameter(n) => note(*n, hint),
        Expr::Binary { op, left, right } => {
            let side_hint = match op {
                BinaryOp::And | BinaryOp::Or => Some(DataType::Bool),
                BinaryOp::Concat => Some(DataType::Text),
                _ => None,
            };
            visit_params(
                left,
                def,
                side_hint.or_else(|| column_type(right)).or(hint),
                note,
            );
            visit_params(
                right,
                def,
                side_hint.or_else(|| column_type(left)).or(hint),
                note,
            );
        }
        Expr::Not(x) => visit_params(x, def, Some(DataType::Bool), note),
        Expr::Negate(x) => visit_params(x, def, hint, note),
        Expr::IsNull { expr, .. } => visit_params(expr, def, None, note),
        Expr::Like { expr, pattern, .. } => {
            visit_params(expr, def, Some(DataType::Text), note);
            visit_params(pattern, def, Some(DataType::Text), note);
        }
        Expr::InList { expr, list, .. } => {
            let ty = column_type(expr);
            visit_params(expr, def, None, note);
            for item in list {
                visit_params(item, def, ty, note);
            }
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            let ty = column_type(expr);
            visit_params(expr, def, None, note);
            visit_params(low, def, ty, note);
            visit_params(high, def, ty, note);
        }
        Expr::Cast { expr, to } => visit_params(expr, def, Some(*to), note),
        Expr::Function { args, .. } => {
            for a in args {
                visit_params(a, def, None, note);
            }
        }
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => {
            if let Some(o) = operand {
                visit_params(o, def, None, note);
            }
            for (w, t) in branches {
                visit_params(w, def, None, note);
                visit_params(t, def, hint, note);
            }
            if let Some(o) = otherwise {
                visit_params(o, def, hint, note);
            }
        }
        Expr::Literal(_) | Expr::Column { .. } => {}
    }
}
