//! INSERT, UPDATE and DELETE: row locks, READ COMMITTED re-checks, CHECK
//! constraints, per-row defaults, ON CONFLICT and RETURNING.
//!
//! Expressions are bound by the query planner ([`crate::query::bind_exprs`]),
//! so WHERE, SET, VALUES and RETURNING may hold subqueries. Each statement
//! reads first and writes after: evaluation borrows the transaction for
//! reading, and is done before each write.

use super::*;
use crate::ast::{ConflictAction, OnConflict};
use crate::query::{self, BoundExprs};

/// A table's CHECK constraints and per-row defaults, ready for one statement.
pub(super) struct Rules {
    checks: BoundExprs,
    names: Vec<String>,
    defaults: Vec<(usize, Expr)>,
}

pub(super) fn rules(r: &dyn Reads, def: &TableDef) -> Result<Rules> {
    let parsed = def
        .checks
        .iter()
        .map(|c| crate::parse::expression(&c.sql))
        .collect::<Result<Vec<_>>>()?;
    let checks = query::bind_exprs(
        r,
        query::table_fields(def, &def.name),
        &parsed.iter().collect::<Vec<_>>(),
    )?;
    let mut defaults = Vec::new();
    for (i, c) in def.columns.iter().enumerate() {
        if let Some(sql) = &c.default_expr {
            defaults.push((i, crate::parse::expression(sql)?));
        }
    }
    Ok(Rules {
        checks,
        names: def.checks.iter().map(|c| c.name.clone()).collect(),
        defaults,
    })
}

impl Rules {
    /// Fails with 23514 when a CHECK constraint is false for `row` (NULL passes).
    fn check(&self, r: &dyn Reads, def: &TableDef, row: &[Value], params: &[Value]) -> Result<()> {
        if self.names.is_empty() {
            return Ok(());
        }
        let ev = self.checks.evaluator(r, params);
        for (i, name) in self.names.iter().enumerate() {
            if expr::truth(&ev.eval(i, &row[..def.columns.len()])?)? == Some(false) {
                return Err(SqlError::new(
                    "23514",
                    format!(
                        "new row for relation \"{}\" violates check constraint \"{name}\"",
                        def.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The positions of INSERT's or COPY's target columns (all, when none are named).
pub(super) fn target_columns(def: &TableDef, columns: &[String]) -> Result<Vec<usize>> {
    if columns.is_empty() {
        return Ok((0..def.columns.len()).collect());
    }
    columns.iter().map(|c| def.column(c)).collect()
}

#[allow(clippy::too_many_arguments)]
pub(super) fn insert(
    tx: &mut WriteTxn,
    table_name: &str,
    columns: &[String],
    rows: &[Vec<Expr>],
    on_conflict: Option<&OnConflict>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let plan = plan_insert(tx, table_name, columns, rows)?;
    run_insert(tx, &plan, rows, on_conflict, returning, params, ctx)
}

/// What an INSERT ... VALUES works out from the catalog before it writes:
/// kept between executions of a prepared statement, as [`UpdatePlan`] is.
pub(super) struct InsertPlan {
    def: TableDef,
    /// The table column each given value goes to, in order.
    targets: Vec<usize>,
    /// The values that are not literals, bound, in order.
    values: BoundExprs,
    rules: Rules,
}

pub(super) fn plan_insert(
    r: &dyn Reads,
    table_name: &str,
    columns: &[String],
    rows: &[Vec<Expr>],
) -> Result<InsertPlan> {
    let def = catalog::require_table(r, table_name)?;
    let targets = target_columns(&def, columns)?;
    // Constants (most of a multi-row INSERT) are taken as they are; only
    // the other expressions are bound and evaluated.
    let computed: Vec<&Expr> = rows
        .iter()
        .flatten()
        .filter(|e| !matches!(e, Expr::Literal(_)))
        .collect();
    let values = query::bind_exprs(r, Vec::new(), &computed)?;
    let rules = rules(r, &def)?;
    Ok(InsertPlan {
        def,
        targets,
        values,
        rules,
    })
}

/// Runs an INSERT planned by [`plan_insert`] with the same `rows`.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_insert(
    tx: &mut WriteTxn,
    plan: &InsertPlan,
    rows: &[Vec<Expr>],
    on_conflict: Option<&OnConflict>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let InsertPlan {
        def,
        targets,
        values,
        rules,
    } = plan;
    let mut given_rows = Vec::with_capacity(rows.len());
    {
        let ev = values.evaluator(tx, params);
        let mut next = 0;
        for row in rows {
            if row.len() > targets.len() {
                return Err(SqlError::new(
                    sqlstate::SYNTAX_ERROR,
                    "INSERT has more expressions than target columns",
                ));
            }
            let mut given: Vec<Option<Value>> = vec![None; def.columns.len()];
            for (&col, e) in targets.iter().zip(row) {
                given[col] = Some(match e {
                    Expr::Literal(v) => v.clone(),
                    _ => {
                        next += 1;
                        ev.eval(next - 1, &[])?
                    }
                });
            }
            given_rows.push(given);
        }
    }
    let keep = !returning.is_empty();
    let (n, stored) = insert_rows(tx, def, rules, given_rows, on_conflict, params, ctx, keep)?;
    returning_result(tx, def, stored, returning, params, format!("INSERT 0 {n}"))
}

/// Inserts rows of values in table order (None: not given, so the
/// default), with CHECK constraints, row locks and ON CONFLICT. Returns
/// how many rows were written (inserted or updated) and, when `keep` (for
/// RETURNING), the rows themselves; a load without RETURNING keeps none.
#[allow(clippy::too_many_arguments)]
pub(super) fn insert_rows(
    tx: &mut WriteTxn,
    def: &TableDef,
    rules: &Rules,
    rows: Vec<Vec<Option<Value>>>,
    on_conflict: Option<&OnConflict>,
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
    keep: bool,
) -> Result<(usize, Vec<Vec<Value>>)> {
    let conflict = on_conflict.map(|c| Conflict::new(tx, def, c)).transpose()?;
    let mut count = 0;
    let mut stored = Vec::with_capacity(if keep { rows.len() } else { 0 });
    for mut given in rows {
        crate::limits::check()?;
        for (col, e) in &rules.defaults {
            if given[*col].is_none() {
                given[*col] = Some(expr::eval(e, &Scope::constant(params))?);
            }
        }
        let row = table::prepare_insert(def, given, &ctx.db.sequences)?;
        rules.check(tx, def, &row, params)?;
        ctx.lock(tx, table::lock_keys(def, &row))?;
        if let Some(conflict) = &conflict
            && let Some(existing) = conflict.existing(tx, def, &row)?
        {
            if let Some(new) = conflict.update(tx, def, rules, &existing, &row, params, ctx)? {
                count += 1;
                if keep {
                    stored.push(new);
                }
            }
            continue;
        }
        let new = table::insert_prepared(tx, def, row)?;
        count += 1;
        if keep {
            stored.push(new);
        }
    }
    Ok((count, stored))
}

/// ON CONFLICT: which unique constraint, and the bound DO UPDATE.
struct Conflict {
    /// None: the primary key; Some(i): unique index `i`; empty `any` list
    /// checks them all.
    targets: Vec<Option<usize>>,
    /// SET expressions then the WHERE, over existing ++ excluded columns.
    update: Option<(Vec<usize>, BoundExprs, bool)>,
}

impl Conflict {
    fn new(r: &dyn Reads, def: &TableDef, c: &OnConflict) -> Result<Conflict> {
        let mut wanted: Vec<usize> = c
            .columns
            .iter()
            .map(|n| def.column(n))
            .collect::<Result<_>>()?;
        wanted.sort_unstable();
        let sorted = |cols: &[usize]| {
            let mut v = cols.to_vec();
            v.sort_unstable();
            v
        };
        let mut targets = Vec::new();
        if !def.primary_key.is_empty() && (wanted.is_empty() || sorted(&def.primary_key) == wanted)
        {
            targets.push(None);
        }
        for (i, index) in def.indexes.iter().enumerate() {
            if index.unique && (wanted.is_empty() || sorted(&index.columns) == wanted) {
                targets.push(Some(i));
            }
        }
        if !wanted.is_empty() && targets.is_empty() {
            return Err(SqlError::new(
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            ));
        }
        let update = match &c.action {
            ConflictAction::Nothing => None,
            ConflictAction::Update { set, filter } => {
                let mut fields = query::table_fields(def, &def.name);
                fields.extend(query::table_fields(def, "excluded"));
                let cols = set
                    .iter()
                    .map(|(n, _)| def.column(n))
                    .collect::<Result<Vec<_>>>()?;
                let mut exprs: Vec<&Expr> = set.iter().map(|(_, e)| e).collect();
                exprs.extend(filter.iter());
                let bound = query::bind_exprs(r, fields, &exprs)?;
                Some((cols, bound, filter.is_some()))
            }
        };
        Ok(Conflict { targets, update })
    }

    /// The row that `row` conflicts with, if any.
    fn existing(&self, tx: &WriteTxn, def: &TableDef, row: &[Value]) -> Result<Option<StoredRow>> {
        for target in &self.targets {
            let found = match target {
                None => {
                    let key: Vec<Value> = def.primary_key.iter().map(|&c| row[c].clone()).collect();
                    table::get(tx, def, &table::primary_key(def, &key)?)?
                }
                Some(i) => {
                    let index = &def.indexes[*i];
                    let key: Vec<Value> = index.columns.iter().map(|&c| row[c].clone()).collect();
                    table::lookup(tx, def, index, &key)?.into_iter().next()
                }
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// DO UPDATE of `existing` with the proposed `row` (None for DO NOTHING
    /// or when the WHERE is not met).
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        tx: &mut WriteTxn,
        def: &TableDef,
        rules: &Rules,
        existing: &StoredRow,
        row: &[Value],
        params: &[Value],
        ctx: &mut WriteCtx<'_>,
    ) -> Result<Option<Vec<Value>>> {
        let Some((cols, bound, has_filter)) = &self.update else {
            return Ok(None);
        };
        ctx.lock(
            tx,
            vec![table::lock_keys(def, &existing.values).swap_remove(0)],
        )?;
        let Some(current) = table::get(tx, def, &existing.key)? else {
            return Ok(None);
        };
        let n = def.columns.len();
        let mut both = current.columns(def).to_vec();
        both.extend(row[..n].iter().cloned());
        let mut new = current.columns(def).to_vec();
        {
            let ev = bound.evaluator(tx, params);
            if *has_filter && !ev.holds(cols.len(), &both)? {
                return Ok(None);
            }
            for (i, &c) in cols.iter().enumerate() {
                new[c] = ev.eval(i, &both)?;
            }
        }
        write_update(tx, def, rules, &current, new, params, ctx).map(Some)
    }
}

/// Coerces, checks, locks and writes an updated row.
pub(super) fn write_update(
    tx: &mut WriteTxn,
    def: &TableDef,
    rules: &Rules,
    row: &StoredRow,
    new: Vec<Value>,
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<Vec<Value>> {
    // A changed key or unique value must be locked too before it is written.
    let mut checked = table::coerce_row(def, new)?;
    rules.check(tx, def, &checked, params)?;
    checked.extend(row.values[def.columns.len()..].iter().cloned());
    ctx.lock(tx, table::lock_keys(def, &checked))?;
    checked.truncate(def.columns.len());
    table::update(tx, def, row, checked)
}

/// The rows of `def` the statement's WHERE (expression 0 of `bound`, when
/// `filtered`) selects, through the best access path.
fn selected(
    r: &dyn Reads,
    def: &TableDef,
    filter: Option<&Expr>,
    bound: &BoundExprs,
    params: &[Value],
) -> Result<Vec<StoredRow>> {
    let ev = bound.evaluator(r, params);
    let mut out = Vec::new();
    for row in candidates(r, def, filter, params)? {
        crate::limits::check()?;
        if filter.is_none() || ev.holds(0, row.columns(def))? {
            out.push(row);
        }
    }
    Ok(out)
}

/// Locks a row found at the statement's snapshot and reads it again at
/// the newest one (the lock holder before us may have changed or deleted
/// it); None when it is gone or no longer matches the filter (expression
/// 0 of `filter`).
pub(super) fn lock_and_recheck(
    tx: &mut WriteTxn,
    def: &TableDef,
    row: &StoredRow,
    filter: Option<&BoundExprs>,
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
    let keep = match filter {
        None => true,
        Some(b) => b.evaluator(tx, params).holds(0, current.columns(def))?,
    };
    Ok(keep.then_some(current))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn update(
    tx: &mut WriteTxn,
    table_name: &str,
    set: &[(String, Expr)],
    filter: Option<&Expr>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let plan = plan_update(tx, table_name, set, filter)?;
    run_update(tx, &plan, filter, returning, params, ctx)
}

/// What an UPDATE (without FROM) works out from the catalog before it
/// touches a row: kept between executions of a prepared statement (see
/// `PlanCache`), as long as no DDL ran.
pub(super) struct UpdatePlan {
    def: TableDef,
    /// The columns SET assigns, in order.
    cols: Vec<usize>,
    rules: Rules,
    /// The WHERE (when there is one) and then the SET expressions.
    bound: BoundExprs,
}

pub(super) fn plan_update(
    r: &dyn Reads,
    table_name: &str,
    set: &[(String, Expr)],
    filter: Option<&Expr>,
) -> Result<UpdatePlan> {
    let def = catalog::require_table(r, table_name)?;
    let cols: Vec<usize> = set
        .iter()
        .map(|(c, _)| def.column(c))
        .collect::<Result<_>>()?;
    let rules = rules(r, &def)?;
    let fields = query::table_fields(&def, &def.name);
    let mut exprs: Vec<&Expr> = filter.iter().copied().collect();
    exprs.extend(set.iter().map(|(_, e)| e));
    let bound = query::bind_exprs(r, fields, &exprs)?;
    Ok(UpdatePlan {
        def,
        cols,
        rules,
        bound,
    })
}

/// Runs an UPDATE planned by [`plan_update`] with the same `filter`.
pub(super) fn run_update(
    tx: &mut WriteTxn,
    plan: &UpdatePlan,
    filter: Option<&Expr>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let UpdatePlan {
        def,
        cols,
        rules,
        bound,
    } = plan;
    let first_set = usize::from(filter.is_some());
    // The WHERE is expression 0 of `bound` when there is one.
    let recheck = filter.is_some().then_some(bound);
    // Collect first, then write: a scan must not see its own updates.
    let rows = selected(tx, def, filter, bound, params)?;
    let mut stored = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(row) = lock_and_recheck(tx, def, row, recheck, params, ctx)? else {
            continue;
        };
        let old = row.columns(def);
        let mut new = old.to_vec();
        {
            let ev = bound.evaluator(tx, params);
            for (i, &col) in cols.iter().enumerate() {
                new[col] = ev.eval(first_set + i, old)?;
            }
        }
        stored.push(write_update(tx, def, rules, &row, new, params, ctx)?);
    }
    let n = stored.len();
    returning_result(tx, def, stored, returning, params, format!("UPDATE {n}"))
}

pub(super) fn delete(
    tx: &mut WriteTxn,
    table_name: &str,
    filter: Option<&Expr>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let def = catalog::require_table(tx, table_name)?;
    let fields = query::table_fields(&def, &def.name);
    let bound = query::bind_exprs(tx, fields, &filter.iter().copied().collect::<Vec<_>>())?;
    let rows = selected(tx, &def, filter, &bound, params)?;
    let recheck = filter.is_some().then_some(&bound);
    let mut gone = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(row) = lock_and_recheck(tx, &def, row, recheck, params, ctx)? else {
            continue;
        };
        table::delete(tx, &def, &row)?;
        gone.push(row.columns(&def).to_vec());
    }
    let n = gone.len();
    returning_result(tx, &def, gone, returning, params, format!("DELETE {n}"))
}

/// The RETURNING list over the written rows.
pub(super) fn returning_result(
    r: &dyn Reads,
    def: &TableDef,
    rows: Vec<Vec<Value>>,
    items: &[SelectItem],
    params: &[Value],
    tag: String,
) -> Result<QueryResult> {
    if items.is_empty() {
        return Ok(QueryResult::command(tag));
    }
    let (mut columns, exprs) = output_columns(Some(def), items)?;
    let bound = query::bind_exprs(
        r,
        query::table_fields(def, &def.name),
        &exprs.iter().collect::<Vec<_>>(),
    )?;
    for (c, t) in columns.iter_mut().zip(&bound.types) {
        c.data_type = *t;
    }
    let ev = bound.evaluator(r, params);
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push(
            (0..exprs.len())
                .map(|i| ev.eval(i, row))
                .collect::<Result<_>>()?,
        );
    }
    Ok(QueryResult {
        columns,
        rows: out,
        tag,
    })
}
