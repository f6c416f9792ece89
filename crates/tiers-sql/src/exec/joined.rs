//! `UPDATE ... FROM` and `DELETE ... USING`: writes to one table, choosing
//! (and for UPDATE, computing) the rows through a join with other tables.
//!
//! The target joined with the other FROM items under the WHERE clause is
//! planned and run as a query (so it gets the planner's access paths and
//! join algorithms), and every joined row names a target row by its primary
//! key. As in PostgreSQL, a target row that joins several rows is written
//! once, from the first of them. Each target row is then locked and, under
//! READ COMMITTED, read again at the newest snapshot; the WHERE clause is
//! checked again on the joined row with the target's current values (what
//! PostgreSQL's recheck does), and SET is computed from those values, so
//! concurrent `SET n = n + u.delta` lose nothing.

use std::collections::HashSet;

use tiers_storage::WriteTxn;

use super::write::{lock_and_recheck, returning_result, rules, write_update};
use super::{QueryResult, WriteCtx};
use crate::ast::{Alias, Expr, Query, Select, SelectItem, SetExpr, TableRef};
use crate::catalog::{self, TableDef};
use crate::error::{Result, SqlError, sqlstate};
use crate::table;
use crate::value::Value;

/// The table a joined write changes, and what it is joined with.
pub(super) struct Target<'a> {
    /// The table written.
    pub table: &'a str,
    /// Its alias in the statement, if any.
    pub alias: Option<&'a str>,
    /// The FROM (UPDATE) or USING (DELETE) items.
    pub joined: &'a [TableRef],
}

/// Writes one target row: given the transaction, the row as it is now,
/// its joined row (target values current) and the write context.
type TargetWriter<'a> =
    dyn FnMut(&mut WriteTxn, &table::StoredRow, &[Value], &mut WriteCtx<'_>) -> Result<()> + 'a;

/// The target joined with the other items: the joined rows, their fields,
/// and where the target's columns sit in them.
struct Joined {
    def: TableDef,
    fields: Vec<crate::query::Field>,
    rows: Vec<Vec<Value>>,
    target_at: Vec<usize>,
}

fn join(
    tx: &WriteTxn,
    target: &Target<'_>,
    filter: Option<&Expr>,
    params: &[Value],
) -> Result<Joined> {
    let def = catalog::require_table(tx, target.table)?;
    if def.primary_key.is_empty() {
        return Err(SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "UPDATE ... FROM and DELETE ... USING need a target table with a primary key, \
                 and \"{}\" has none; select the rows with WHERE ... IN (SELECT ...) instead",
                def.name
            ),
        ));
    }
    let mut from = vec![TableRef::Table {
        name: target.table.to_owned(),
        alias: target.alias.map(|a| Alias {
            name: a.to_owned(),
            columns: Vec::new(),
        }),
    }];
    from.extend(target.joined.iter().cloned());
    let query = Query::plain(SetExpr::Select(Box::new(Select {
        distinct: false,
        items: vec![SelectItem::Wildcard],
        from,
        filter: filter.cloned(),
        group_by: Vec::new(),
        having: None,
    })));
    let plan = crate::query::plan_query(tx, &query)?;
    let fields = plan.root.schema.clone();
    let label = target.alias.unwrap_or(target.table);
    let target_at = def
        .columns
        .iter()
        .map(|c| {
            fields
                .iter()
                .position(|f| f.table.as_deref() == Some(label) && f.name == c.name)
                .ok_or_else(|| {
                    SqlError::new(
                        sqlstate::INTERNAL_ERROR,
                        format!("column {label}.{} is missing from the join", c.name),
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let rows = crate::query::run(tx, &plan, params)?.rows;
    Ok(Joined {
        def,
        fields,
        rows,
        target_at,
    })
}

impl Joined {
    /// Visits each target row once: locked, read again under READ
    /// COMMITTED, and still matching the WHERE clause (expression 0 of
    /// `bound`, when `filtered`) on its joined row, which `f` gets with the
    /// target's current values in place.
    fn for_each_target(
        &self,
        tx: &mut WriteTxn,
        bound: &crate::query::BoundExprs,
        filtered: bool,
        params: &[Value],
        ctx: &mut WriteCtx<'_>,
        f: &mut TargetWriter<'_>,
    ) -> Result<()> {
        let def = &self.def;
        let mut done: HashSet<Vec<u8>> = HashSet::new();
        for joined in &self.rows {
            crate::limits::check()?;
            let target: Vec<Value> = self.target_at.iter().map(|&i| joined[i].clone()).collect();
            let key = table::primary_key_of(def, &target);
            if done.contains(&key) {
                continue;
            }
            let Some(seen) = table::get(tx, def, &key)? else {
                continue;
            };
            let Some(current) = lock_and_recheck(tx, def, &seen, None, params, ctx)? else {
                continue;
            };
            let mut row = joined.clone();
            for (j, &i) in self.target_at.iter().enumerate() {
                row[i] = current.values[j].clone();
            }
            if filtered && !bound.evaluator(tx, params).holds(0, &row)? {
                continue;
            }
            f(tx, &current, &row, ctx)?;
            done.insert(key);
        }
        Ok(())
    }
}

/// `UPDATE target SET ... FROM ... [WHERE ...] [RETURNING ...]`.
pub(super) fn update_joined(
    tx: &mut WriteTxn,
    target: &Target<'_>,
    set: &[(String, Expr)],
    filter: Option<&Expr>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let joined = join(tx, target, filter, params)?;
    let def = &joined.def;
    let cols: Vec<usize> = set
        .iter()
        .map(|(c, _)| def.column(c))
        .collect::<Result<_>>()?;
    let rules = rules(tx, def)?;
    let mut exprs: Vec<&Expr> = filter.iter().copied().collect();
    let first_set = exprs.len();
    exprs.extend(set.iter().map(|(_, e)| e));
    let bound = crate::query::bind_exprs(tx, joined.fields.clone(), &exprs)?;
    let mut written = Vec::new();
    joined.for_each_target(
        tx,
        &bound,
        filter.is_some(),
        params,
        ctx,
        &mut |tx, current, row, ctx| {
            let mut new = current.columns(def).to_vec();
            {
                let ev = bound.evaluator(tx, params);
                for (i, &col) in cols.iter().enumerate() {
                    new[col] = ev.eval(first_set + i, row)?;
                }
            }
            written.push(write_update(tx, def, &rules, current, new, params, ctx)?);
            Ok(())
        },
    )?;
    let n = written.len();
    returning_result(tx, def, written, returning, params, format!("UPDATE {n}"))
}

/// `DELETE FROM target USING ... [WHERE ...] [RETURNING ...]`.
pub(super) fn delete_joined(
    tx: &mut WriteTxn,
    target: &Target<'_>,
    filter: Option<&Expr>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let joined = join(tx, target, filter, params)?;
    let def = &joined.def;
    let bound = crate::query::bind_exprs(
        tx,
        joined.fields.clone(),
        &filter.iter().copied().collect::<Vec<_>>(),
    )?;
    let mut gone = Vec::new();
    joined.for_each_target(
        tx,
        &bound,
        filter.is_some(),
        params,
        ctx,
        &mut |tx, current, _, _| {
            table::delete(tx, def, current)?;
            gone.push(current.columns(def).to_vec());
            Ok(())
        },
    )?;
    let n = gone.len();
    returning_result(tx, def, gone, returning, params, format!("DELETE {n}"))
}
