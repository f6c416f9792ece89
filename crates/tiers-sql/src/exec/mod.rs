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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use tiers_storage::{Engine, PendingCommit, WriteTxn};

use crate::ast::{BinaryOp, Check, ColumnSpec, Expr, Isolation, SelectItem, Statement};
use crate::catalog::{self, CheckDef, ColumnDef, IndexDef, TableDef};
use crate::error::{Result, SqlError, sqlstate};
use crate::expr::{self, Scope};
use crate::locks::{LockId, LockIdSet, RowLocks};
use crate::reads::Reads;
use crate::sequence::Sequences;
use crate::table::{self, StoredRow};
use crate::types::DataType;
use crate::value::Value;

mod access;
mod copy;
mod ddl;
mod describe;
mod joined;
mod locking;
mod plan_cache;
mod select;
mod settings;
mod write;

use access::*;
use copy::*;
use ddl::*;
pub use describe::{describe, parameter_types, prepare};
use joined::*;
pub use locking::LockRelease;
use locking::*;
pub use plan_cache::PlanCache;
use select::*;
pub use select::{type_of_function, type_of_with};
use settings::*;
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
    /// Explicit transactions open now (BEGIN without COMMIT/ROLLBACK yet).
    pub open_transactions: AtomicU64,
    /// Bumped by every DDL statement and again when its transaction ends:
    /// a cached plan made at another epoch may see an old catalog.
    ddl_epoch: AtomicU64,
    /// Transactions that ran DDL and have not ended: while there are any,
    /// a new snapshot may or may not show their catalog changes, so plans
    /// are neither cached nor reused (see [`Database::plan_epoch`]).
    ddl_in_flight: AtomicU64,
    next_session: AtomicU64,
}

impl Database {
    /// A database on `engine` (creating the catalog trees on first use).
    /// On a cluster member the catalog is created by the first leader
    /// ([`Database::ensure_catalog`]), and replicated to the others.
    pub fn new(engine: Arc<Engine>) -> Result<Arc<Database>> {
        if !engine.is_replicated() {
            let mut tx = engine.begin_write()?;
            catalog::bootstrap(&mut tx)?;
            tx.commit()?;
        }
        Ok(Arc::new(Database {
            sequences: Sequences::new(engine.clone()),
            engine,
            locks: RowLocks::default(),
            open_transactions: AtomicU64::new(0),
            ddl_epoch: AtomicU64::new(0),
            ddl_in_flight: AtomicU64::new(0),
            next_session: AtomicU64::new(1),
        }))
    }

    /// Creates the catalog trees if they are missing (a cluster's leader
    /// calls this once it takes writes). Returns whether it wrote.
    pub fn ensure_catalog(&self) -> Result<bool> {
        let r = self.engine.begin_read();
        if r.tree(catalog::TABLES_TREE)?.is_some() && r.tree(catalog::COUNTERS_TREE)?.is_some() {
            return Ok(false);
        }
        drop(r);
        let mut tx = self.engine.begin_write()?;
        catalog::bootstrap(&mut tx)?;
        tx.commit()?;
        Ok(true)
    }

    /// The catalog epoch a plan may be cached under or reused at, read
    /// before the snapshot it goes with; None while a DDL transaction is
    /// open (it may become visible before its epoch moves at its end).
    fn plan_epoch(&self) -> Option<u64> {
        let epoch = self.ddl_epoch.load(AtomicOrdering::SeqCst);
        (self.ddl_in_flight.load(AtomicOrdering::SeqCst) == 0).then_some(epoch)
    }
}

/// One client session.
pub struct Session {
    db: Arc<Database>,
    id: u64,
    settings: std::collections::BTreeMap<String, String>,
    txn: Option<WriteTxn>,
    /// Row locks the open transaction holds.
    held: LockIdSet,
    /// READ COMMITTED (the default): each statement sees the newest
    /// committed data. Otherwise REPEATABLE READ: one snapshot per transaction.
    read_committed: bool,
    failed: bool,
    /// SQL savepoints of the open transaction, oldest first.
    savepoints: Vec<(String, tiers_storage::Savepoint)>,
    /// Set to cancel the running statement (a client's cancel request).
    interrupt: Arc<std::sync::atomic::AtomicBool>,
    /// An explicit transaction (BEGIN) is open and counted.
    explicit: bool,
    /// The open transaction ran DDL (the DDL epoch moves again at its end).
    did_ddl: bool,
    /// The transaction (or, outside one, the next) is READ ONLY.
    read_only: bool,
    /// Async mode (see [`Session::set_async_mode`]).
    async_mode: bool,
    /// What the last statement, in async mode, must await before its result
    /// goes out: its commit's durability, or that of what it read.
    pending: Option<PendingCommit>,
    /// The row lock the last statement would have waited for (async mode).
    blocked_on: Option<LockId>,
}

impl Drop for Session {
    /// A session that ends mid-transaction (its client went away) rolls
    /// back and frees its row locks.
    fn drop(&mut self) {
        self.abort_transaction();
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
            held: LockIdSet::default(),
            read_committed: true,
            failed: false,
            savepoints: Vec::new(),
            interrupt: Arc::default(),
            explicit: false,
            did_ddl: false,
            read_only: false,
            async_mode: false,
            pending: None,
            blocked_on: None,
        }
    }

    /// Async mode, for a server that runs statements on an async runtime's
    /// threads, which must never block: a statement that would wait for a
    /// row lock fails at once with [`sqlstate::WOULD_WAIT`], leaving the
    /// session as it was before the statement (run it again with async mode
    /// off), and a commit returns before it is durable, leaving a
    /// [`PendingCommit`] to await ([`Session::take_pending_commit`]) before
    /// the result goes out. A statement that read commits not yet durable
    /// (see [`crate::locks`]) leaves one too.
    pub fn set_async_mode(&mut self, on: bool) {
        self.async_mode = on;
    }

    /// The flag that cancels this session's running statement when set.
    pub fn interrupt_flag(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.interrupt.clone()
    }

    /// The session's `statement_timeout` (None: no limit).
    fn statement_timeout(&self) -> Option<Duration> {
        self.settings
            .get("statement_timeout")
            .and_then(|v| crate::limits::parse_duration(v))
            .flatten()
    }

    /// The session's `lock_timeout` (None: no limit).
    fn lock_timeout(&self) -> Option<Duration> {
        self.settings
            .get("lock_timeout")
            .and_then(|v| crate::limits::parse_duration(v))
            .flatten()
    }

    /// The session's `idle_in_transaction_session_timeout` (None: no limit).
    pub fn idle_in_transaction_timeout(&self) -> Option<Duration> {
        self.settings
            .get("idle_in_transaction_session_timeout")
            .and_then(|v| crate::limits::parse_duration(v))
            .flatten()
    }

    /// Rolls back the open transaction, if any (a session ended by the server).
    pub fn abort_transaction(&mut self) {
        // A pending commit nobody awaits any more still lands; its locks go.
        self.pending = None;
        if let Some(tx) = self.txn.take() {
            tx.rollback();
        }
        self.end_transaction();
    }

    /// Whether new transactions start in READ COMMITTED (the session's
    /// `default_transaction_isolation`).
    fn default_read_committed(&self) -> bool {
        !self
            .settings
            .get("default_transaction_isolation")
            .is_some_and(|v| v.eq_ignore_ascii_case("repeatable read"))
    }

    /// Applies an isolation level to the transaction about to run.
    fn set_isolation(&mut self, isolation: Isolation) -> Result<()> {
        match isolation {
            Isolation::ReadUncommitted | Isolation::ReadCommitted => self.read_committed = true,
            Isolation::RepeatableRead => self.read_committed = false,
            Isolation::Serializable => {
                return Err(SqlError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "SERIALIZABLE is not supported: tiers provides READ COMMITTED and \
                     REPEATABLE READ (snapshot isolation, which allows write skew); \
                     use REPEATABLE READ with SELECT ... FOR UPDATE-style explicit row updates",
                ));
            }
        }
        Ok(())
    }

    /// Ends the transaction's session state (after COMMIT or ROLLBACK).
    fn end_transaction(&mut self) {
        if std::mem::take(&mut self.did_ddl) {
            self.db.ddl_epoch.fetch_add(1, AtomicOrdering::SeqCst);
            self.db.ddl_in_flight.fetch_sub(1, AtomicOrdering::SeqCst);
        }
        if std::mem::take(&mut self.explicit) {
            self.db
                .open_transactions
                .fetch_sub(1, AtomicOrdering::Relaxed);
        }
        self.release_locks();
        self.savepoints.clear();
        self.failed = false;
        self.read_committed = self.default_read_committed();
        self.read_only = self
            .settings
            .get("default_transaction_read_only")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "on" | "true"));
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

    /// Installs the running statement's limits and context on this thread
    /// (see [`crate::limits`]).
    fn enter_statement(&self) -> crate::limits::Guard {
        crate::limits::enter(
            self.interrupt.clone(),
            self.statement_timeout(),
            !self.db.engine.accepts_writes(),
        )
    }

    /// Runs one statement with parameter values for `$1`, `$2`, ...
    pub fn run(&mut self, stmt: &Statement, params: &[Value]) -> Result<QueryResult> {
        let _limits = self.enter_statement();
        self.run_statement(stmt, params, None)
    }

    /// Runs a prepared statement, reusing its plan from `cache` while no
    /// DDL has run since it was made.
    pub fn run_prepared(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        cache: &PlanCache,
    ) -> Result<QueryResult> {
        let _limits = self.enter_statement();
        self.run_statement(stmt, params, Some(cache))
    }

    fn run_statement(
        &mut self,
        stmt: &Statement,
        params: &[Value],
        cache: Option<&PlanCache>,
    ) -> Result<QueryResult> {
        match stmt {
            Statement::Begin {
                isolation,
                read_only,
            } => {
                if self.txn.is_none() {
                    if let Some(level) = isolation {
                        self.set_isolation(*level)?;
                    }
                    if let Some(r) = read_only {
                        self.read_only = *r;
                    }
                    self.txn = Some(self.db.engine.begin_write()?);
                    self.db
                        .open_transactions
                        .fetch_add(1, AtomicOrdering::Relaxed);
                    self.explicit = true;
                    self.failed = false;
                }
                return Ok(QueryResult::command("BEGIN"));
            }
            Statement::SetTransaction {
                isolation,
                read_only,
            } => {
                if self.txn.is_some() {
                    if let Some(level) = isolation {
                        self.set_isolation(*level)?;
                    }
                    if let Some(r) = read_only {
                        self.read_only = *r;
                    }
                }
                return Ok(QueryResult::command("SET"));
            }
            Statement::Savepoint(name) => {
                let Some(tx) = &self.txn else {
                    return Err(no_transaction_block("SAVEPOINT"));
                };
                if self.failed {
                    return Err(aborted());
                }
                let mark = tx.savepoint();
                self.savepoints.push((name.clone(), mark));
                return Ok(QueryResult::command("SAVEPOINT"));
            }
            Statement::RollbackTo(name) | Statement::Release(name) => {
                let rollback = matches!(stmt, Statement::RollbackTo(_));
                let what = if rollback {
                    "ROLLBACK TO SAVEPOINT"
                } else {
                    "RELEASE SAVEPOINT"
                };
                let Some(tx) = &mut self.txn else {
                    return Err(no_transaction_block(what));
                };
                if self.failed && !rollback {
                    return Err(aborted());
                }
                let Some(at) = self.savepoints.iter().rposition(|(n, _)| n == name) else {
                    self.failed = true;
                    return Err(SqlError::new(
                        "3B001",
                        format!("savepoint \"{name}\" does not exist"),
                    ));
                };
                if rollback {
                    tx.rollback_to(self.savepoints[at].1);
                    self.savepoints.truncate(at + 1);
                    self.failed = false;
                    return Ok(QueryResult::command("ROLLBACK"));
                }
                self.savepoints.truncate(at);
                return Ok(QueryResult::command("RELEASE"));
            }
            Statement::Commit => {
                let failed = std::mem::take(&mut self.failed);
                let result = match self.txn.take() {
                    Some(tx) if failed => {
                        tx.rollback();
                        Ok(QueryResult::command("ROLLBACK"))
                    }
                    Some(tx) => self.commit_tx(tx).map(|()| QueryResult::command("COMMIT")),
                    None => Ok(QueryResult::command("COMMIT")),
                };
                self.end_transaction();
                return result;
            }
            Statement::Set { name, value } => return self.set(name, value),
            Statement::Show { name } => return self.show(name),
            Statement::Rollback => {
                self.failed = false;
                if let Some(tx) = self.txn.take() {
                    tx.rollback();
                }
                self.end_transaction();
                return Ok(QueryResult::command("ROLLBACK"));
            }
            _ => {}
        }
        if self.failed {
            return Err(aborted());
        }
        let writes = writes(stmt);
        if self.read_only && writes {
            return Err(SqlError::new(
                "25006",
                "cannot execute a write in a read-only transaction",
            ));
        }
        if writes && !self.db.engine.accepts_writes() {
            return Err(SqlError::new(
                sqlstate::READ_ONLY_SQL_TRANSACTION,
                match self.db.engine.leader_hint() {
                    Some(leader) => format!(
                        "cannot write here: this node is a read-only cluster follower; the leader is {leader} (connect with target_session_attrs=read-write)"
                    ),
                    None => "cannot write here: this cluster has no leader right now (an election is under way); retry shortly".into(),
                },
            ));
        }
        // Read the DDL epoch before the snapshot: a plan cached under this
        // epoch then never reflects an older catalog than the epoch says.
        let epoch = self.db.plan_epoch();
        let fresh_snapshot = self.txn.is_none() || self.read_committed;
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
        let lock_timeout = self.lock_timeout();
        let mut ctx = WriteCtx {
            db: &self.db,
            owner: self.id,
            held: &mut self.held,
            read_committed: self.read_committed,
            lock_timeout,
            no_wait: self.async_mode,
            blocked_on: None,
        };
        if is_ddl(stmt) && self.db.engine.is_replicated() {
            // A new cluster's catalog is created by its first leader shortly
            // after the election; DDL that comes first creates it itself.
            catalog::bootstrap(&mut tx)?;
        }
        if is_ddl(stmt) {
            if !self.did_ddl {
                self.db.ddl_in_flight.fetch_add(1, AtomicOrdering::SeqCst);
            }
            self.did_ddl = true;
            self.db.ddl_epoch.fetch_add(1, AtomicOrdering::SeqCst);
        }
        // A plan is cached, or reused, only for a statement that reads the
        // newest catalog and in a transaction that changed none of it.
        let epoch = epoch.filter(|_| fresh_snapshot && !self.did_ddl);
        let result = match (stmt, cache) {
            (Statement::Select(q), Some(cache)) if fresh_snapshot => cache
                .get_or_plan(epoch, || crate::query::plan_query(&tx, q))
                .and_then(|p| crate::query::run(&tx, &p, params)),
            (
                Statement::Update {
                    table,
                    from,
                    set,
                    filter,
                    returning,
                    ..
                },
                Some(cache),
            ) if from.is_empty() && epoch.is_some() => cache
                .get_or_plan(epoch, || {
                    write::plan_update(&tx, table, set, filter.as_ref())
                })
                .and_then(|p| {
                    write::run_update(&mut tx, &p, filter.as_ref(), returning, params, &mut ctx)
                }),
            (
                Statement::Insert {
                    table,
                    columns,
                    rows,
                    query: None,
                    on_conflict,
                    returning,
                },
                Some(cache),
            ) if epoch.is_some() => cache
                .get_or_plan(epoch, || write::plan_insert(&tx, table, columns, rows))
                .and_then(|p| {
                    let conflict = on_conflict.as_ref();
                    write::run_insert(&mut tx, &p, rows, conflict, returning, params, &mut ctx)
                }),
            _ => execute(&mut tx, stmt, params, &mut ctx),
        };
        self.blocked_on = ctx.blocked_on;
        if result.is_err() {
            tx.rollback_to(savepoint);
        }
        let read_at = tx.snapshot_lsn();
        let result = match (autocommit, result) {
            (true, r) => {
                let committed = match r {
                    Ok(r) => self.commit_tx(tx).map(|()| r),
                    Err(e) => Err(e),
                };
                self.end_transaction();
                committed
            }
            (false, r) => {
                // A statement undone to run again (async mode) did not fail.
                self.failed = r.as_ref().is_err_and(|e| e.code != sqlstate::WOULD_WAIT);
                self.txn = Some(tx);
                r
            }
        };
        // Whatever the statement says, a result or an error, it may have
        // learnt from commits not yet durable.
        match self.settle_read(read_at) {
            Ok(()) => result,
            Err(e) => Err(e),
        }
    }
}

fn aborted() -> SqlError {
    SqlError::new(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

fn no_transaction_block(what: &str) -> SqlError {
    SqlError::new(
        "25P01",
        format!("{what} can only be used in transaction blocks"),
    )
}

/// Statements that change data or the catalog (refused in READ ONLY).
fn writes(stmt: &Statement) -> bool {
    match stmt {
        Statement::Copy(c) => !c.to,
        Statement::Insert { .. }
        | Statement::Update { .. }
        | Statement::Delete { .. }
        | Statement::Truncate { .. } => true,
        other => is_ddl(other),
    }
}

/// Statements that change the catalog.
fn is_ddl(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::CreateTable { .. }
            | Statement::DropTable { .. }
            | Statement::CreateIndex { .. }
            | Statement::DropIndex { .. }
            | Statement::AlterTable { .. }
    )
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
            checks,
        } => create_table(
            tx,
            name,
            *if_not_exists,
            columns,
            primary_key,
            unique,
            checks,
        ),
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
            query,
            on_conflict,
            returning,
        } => match query {
            None => insert(
                tx,
                table,
                columns,
                rows,
                on_conflict.as_ref(),
                returning,
                params,
                ctx,
            ),
            Some(q) => {
                let plan = crate::query::plan_query(tx, q)?;
                let values = crate::query::run(tx, &plan, params)?.rows;
                let rows: Vec<Vec<Expr>> = values
                    .into_iter()
                    .map(|r| r.into_iter().map(Expr::Literal).collect())
                    .collect();
                insert(
                    tx,
                    table,
                    columns,
                    &rows,
                    on_conflict.as_ref(),
                    returning,
                    params,
                    ctx,
                )
            }
        },
        Statement::Select(q) => {
            let plan = crate::query::plan_query(tx, q)?;
            crate::query::run(tx, &plan, params)
        }
        Statement::AlterTable {
            table,
            if_exists,
            action,
        } => alter_table(tx, table, *if_exists, action),
        Statement::Truncate { tables } => truncate(tx, tables),
        Statement::Copy(copy) => {
            if copy.to {
                return copy_out(tx, copy, params);
            }
            let Some(payload) = &copy.payload else {
                return Err(SqlError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "COPY FROM STDIN needs the COPY sub-protocol of a client connection",
                ));
            };
            copy_in(tx, copy, crate::copy::rows(payload, &copy.options), ctx)
        }
        Statement::DropIndex { names, if_exists } => drop_index(tx, names, *if_exists),
        Statement::Explain { analyze, statement } => match &**statement {
            Statement::Select(q) => {
                let plan = crate::query::plan_query(tx, q)?;
                crate::query::explain(tx, &plan, params, *analyze)
            }
            _ => Err(SqlError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "EXPLAIN supports queries only",
            )),
        },
        Statement::Update {
            table,
            alias,
            from,
            set,
            filter,
            returning,
        } if !from.is_empty() => {
            let target = Target {
                table,
                alias: alias.as_deref(),
                joined: from,
            };
            update_joined(tx, &target, set, filter.as_ref(), returning, params, ctx)
        }
        Statement::Update {
            table,
            set,
            filter,
            returning,
            ..
        } => update(tx, table, set, filter.as_ref(), returning, params, ctx),
        Statement::Delete {
            table,
            alias,
            using,
            filter,
            returning,
        } if !using.is_empty() => {
            let target = Target {
                table,
                alias: alias.as_deref(),
                joined: using,
            };
            delete_joined(tx, &target, filter.as_ref(), returning, params, ctx)
        }
        Statement::Delete {
            table,
            filter,
            returning,
            ..
        } => delete(tx, table, filter.as_ref(), returning, params, ctx),
        Statement::Begin { .. }
        | Statement::Commit
        | Statement::Rollback
        | Statement::SetTransaction { .. }
        | Statement::Savepoint(_)
        | Statement::RollbackTo(_)
        | Statement::Release(_)
        | Statement::Set { .. }
        | Statement::Show { .. } => {
            unreachable!("session statements are handled by the session")
        }
    }
}
