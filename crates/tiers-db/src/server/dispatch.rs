//! Where a statement runs: on the connection's own thread (point reads, and
//! short writes whose commit is awaited there), or on the blocking pool
//! (anything else). On a multi-threaded runtime (`connection_loops = 0`),
//! other reads and statements inside a transaction run on the worker inside
//! `block_in_place` instead.

use std::sync::Arc;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::time::Instant;

use tiers_sql::ast::Statement;
use tiers_sql::exec::{self, QueryResult};
use tiers_sql::{SqlError, Value};

use super::Backend;

impl Backend {
    /// Runs statements. Point reads (one table, an equality in WHERE, no
    /// grouping or subqueries) run right here on the connection's thread: a
    /// hop to another thread per statement costs more than the read. On a
    /// multi-threaded runtime, other reads run here too, but inside
    /// `block_in_place`, which hands the worker's other tasks to another
    /// thread so a long query never starves them; on a connection loop they
    /// go to the blocking pool. Anything that may commit (and so wait for an
    /// fsync) runs on the blocking pool, so it never stalls the other
    /// connections.
    pub(super) async fn run(
        &self,
        statements: Arc<[Statement]>,
        params: Vec<Value>,
        plan: Option<Arc<exec::PlanCache>>,
    ) -> Vec<Result<QueryResult, SqlError>> {
        if let [stmt] = &*statements
            && is_short_write(stmt)
        {
            // A row lock held by a committing transaction is usually free
            // within an fsync: wait for it here, briefly, then try again.
            let give_up = tokio::time::Instant::now() + ASYNC_LOCK_WAIT;
            loop {
                let release = match self.run_short_write(stmt, &params, plan.as_deref()).await {
                    ShortWrite::Done(r) => return vec![r],
                    ShortWrite::WouldWait(release) => release,
                };
                let freed = match release {
                    Some(release) => tokio::time::timeout_at(give_up, release).await.is_ok(),
                    None => false,
                };
                if !freed {
                    break;
                }
            }
        }
        let reads_only = statements.iter().all(|s| matches!(s, Statement::Select(_)));
        let point_reads = reads_only && statements.iter().all(is_point_query);
        // Inside an explicit transaction, a statement other than COMMIT
        // waits for no fsync (only for row locks, rarely): it runs on this
        // thread, without the hop to the blocking pool.
        let no_commit = statements.iter().all(|s| {
            !matches!(
                s,
                Statement::Commit | Statement::Begin { .. } | Statement::Rollback
            )
        }) && self.session.try_lock().is_ok_and(|s| s.in_transaction());
        let session = self.session.clone();
        *self.last_active.lock().expect("activity clock") = Instant::now();
        let shared = self.shared.clone();
        let work = move || {
            let mut s = session.lock().expect("session lock");
            let mut out = Vec::new();
            for stmt in statements.iter() {
                let started = Instant::now();
                let r = match &plan {
                    Some(cache) => s.run_prepared(stmt, &params, cache),
                    None => s.run(stmt, &params),
                };
                let failed = r.is_err();
                shared.count_statement(started, failed);
                out.push(r);
                if failed {
                    break;
                }
            }
            out
        };
        let out = if point_reads {
            work()
        } else if (reads_only || no_commit) && on_worker_pool() {
            // Run here, but tell the runtime this worker is busy: its other
            // tasks move to another thread, so a long read (or a lock wait)
            // never starves them (a cancel request among them, say).
            tokio::task::block_in_place(work)
        } else {
            tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
                vec![Err(SqlError::new(
                    tiers_sql::error::sqlstate::INTERNAL_ERROR,
                    format!("statement aborted: {e}"),
                ))]
            })
        };
        *self.last_active.lock().expect("activity clock") = Instant::now();
        out
    }

    /// Runs a short write right here on the connection's thread, in the session's
    /// async mode: no thread hop, and its commit's fsync is awaited (shared
    /// with every other commit in flight) instead of blocking a thread. When
    /// the statement would have to wait for a row lock it changes nothing
    /// and says so, with the lock's release to await.
    async fn run_short_write(
        &self,
        stmt: &Statement,
        params: &[Value],
        plan: Option<&exec::PlanCache>,
    ) -> ShortWrite {
        *self.last_active.lock().expect("activity clock") = Instant::now();
        let started = Instant::now();
        let (result, pending, release) = {
            let mut s = self.session.lock().expect("session lock");
            s.set_async_mode(true);
            let r = match plan {
                Some(cache) => s.run_prepared(stmt, params, cache),
                None => s.run(stmt, params),
            };
            s.set_async_mode(false);
            let would_wait = r
                .as_ref()
                .is_err_and(|e| e.code == tiers_sql::error::sqlstate::WOULD_WAIT);
            (
                r,
                s.take_pending_commit(),
                would_wait.then(|| s.lock_release()),
            )
        };
        if let Some(release) = release {
            return ShortWrite::WouldWait(release);
        }
        let result = match pending {
            None => result,
            Some(commit) => commit.await.map_err(SqlError::from).and(result),
        };
        self.shared.count_statement(started, result.is_err());
        *self.last_active.lock().expect("activity clock") = Instant::now();
        ShortWrite::Done(result)
    }
}

/// Whether this thread is a worker of a multi-threaded runtime, where
/// `block_in_place` may hand its other tasks to another worker (on a
/// connection loop, the work goes to the blocking pool instead).
fn on_worker_pool() -> bool {
    tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
}

/// How long a short write awaits a row lock's release on the connection's thread
/// before it runs where it may block (with deadlock detection and
/// lock_timeout): longer than a commit's fsync, short enough that a
/// deadlock or a long transaction is soon handed over.
const ASYNC_LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// What became of a short write run on the connection's thread.
enum ShortWrite {
    Done(Result<QueryResult, SqlError>),
    /// It needs a row lock another transaction holds, and changed nothing;
    /// the lock's release, if known.
    WouldWait(Option<exec::LockRelease>),
}

impl super::Shared {
    /// Counts a statement that started at `started` in the metrics.
    fn count_statement(&self, started: Instant, failed: bool) {
        self.latency.observe(started.elapsed());
        self.statements.fetch_add(1, AtomicOrdering::Relaxed);
        if failed {
            self.failed_statements.fetch_add(1, AtomicOrdering::Relaxed);
        }
    }
}

/// A SELECT that reads one table through an equality (`WHERE k = ...`),
/// with no grouping, sorting, joins or subqueries: a key lookup in the
/// common case, cheap enough to run inline on the connection's thread.
fn is_point_query(stmt: &Statement) -> bool {
    use tiers_sql::ast::{Expr, SetExpr, TableRef};
    let Statement::Select(q) = stmt else {
        return false;
    };
    let SetExpr::Select(s) = &q.body else {
        return false;
    };
    let plain_items = s.items.iter().all(|i| match i {
        tiers_sql::ast::SelectItem::Expr { expr, .. } => {
            matches!(
                expr,
                Expr::Column { .. } | Expr::Literal(_) | Expr::Parameter(_)
            )
        }
        _ => true,
    });
    q.with.is_empty()
        && q.order_by.is_empty()
        && !s.distinct
        && s.group_by.is_empty()
        && s.having.is_none()
        && plain_items
        && matches!(s.from.as_slice(), [TableRef::Table { .. }])
        && s.filter.as_ref().is_some_and(has_point_equality)
}

/// Whether a WHERE clause pins a column to a constant (`col = value`,
/// possibly among ANDed terms): the shape of an index lookup.
fn has_point_equality(filter: &tiers_sql::ast::Expr) -> bool {
    use tiers_sql::ast::{BinaryOp, Expr};
    let simple_value = |e: &Expr| is_constant(e, 0);
    let mut stack = vec![filter];
    while let Some(e) = stack.pop() {
        if let Expr::Binary { op, left, right } = e {
            match op {
                BinaryOp::And => {
                    stack.push(left);
                    stack.push(right);
                }
                BinaryOp::Eq
                    if matches!(**left, Expr::Column { .. }) && simple_value(right)
                        || matches!(**right, Expr::Column { .. }) && simple_value(left) =>
                {
                    return true;
                }
                _ => {}
            }
        }
    }
    false
}

/// Whether an expression is a constant computed from literals and
/// parameters with operators and casts only (`$1`, `$1 + 1`, `'7'::int`),
/// nested at most a few levels.
fn is_constant(e: &tiers_sql::ast::Expr, depth: usize) -> bool {
    use tiers_sql::ast::Expr;
    const DEPTH: usize = 4;
    match e {
        Expr::Literal(_) | Expr::Parameter(_) => true,
        _ if depth == DEPTH => false,
        Expr::Binary { left, right, .. } => {
            is_constant(left, depth + 1) && is_constant(right, depth + 1)
        }
        Expr::Negate(inner) | Expr::Not(inner) | Expr::Cast { expr: inner, .. } => {
            is_constant(inner, depth + 1)
        }
        _ => false,
    }
}

/// Whether a statement is short work that may run on the connection's thread in
/// the session's async mode: a small INSERT ... VALUES, an UPDATE or DELETE
/// of rows found by equality, or transaction control. (A row lock it would
/// wait for sends it to the blocking pool instead; its commit is awaited.)
fn is_short_write(stmt: &Statement) -> bool {
    match stmt {
        Statement::Insert { rows, query, .. } => query.is_none() && rows.len() <= 64,
        Statement::Update { filter, from, .. }
        | Statement::Delete {
            filter,
            using: from,
            ..
        } => from.is_empty() && filter.as_ref().is_some_and(has_point_equality),
        Statement::Begin { .. } | Statement::Commit | Statement::Rollback => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Statement {
        let mut parsed = tiers_sql::parse::parse(sql).expect("valid SQL");
        assert_eq!(parsed.len(), 1);
        parsed.remove(0)
    }

    #[test]
    fn point_shapes_include_constant_expressions() {
        for sql in [
            "SELECT v FROM t WHERE k = $1",
            "SELECT v FROM t WHERE k = $1 + 1",
            "SELECT v FROM t WHERE k = -($1 * 2) AND v > 0",
            "SELECT v FROM t WHERE '7'::int = k",
        ] {
            assert!(is_point_query(&one(sql)), "{sql}");
        }
        for sql in [
            "SELECT v FROM t WHERE k = other",
            "SELECT v FROM t WHERE k = $1 + other",
            "SELECT v FROM t WHERE k = (SELECT 1)",
            "SELECT v FROM t WHERE k = abs($1)",
            "SELECT v FROM t WHERE k > $1",
            "SELECT v FROM t WHERE k = ((((($1 + 1) + 1) + 1) + 1) + 1)",
        ] {
            assert!(!is_point_query(&one(sql)), "{sql}");
        }
        assert!(is_short_write(&one(
            "UPDATE t SET v = v + $2 WHERE k = $1 + 2"
        )));
        assert!(!is_short_write(&one("UPDATE t SET v = 0 WHERE k < $1")));
    }
}
