//! Access paths and plan-tree plumbing shared by the planner: choosing a
//! table's access path from the terms over it, keyed lookups for index
//! joins, serving ORDER BY from a primary-key scan, and renumbering and
//! inspecting bound expressions.

use crate::ast::{BinaryOp, Expr};
use crate::catalog::{IndexKind, TableDef};
use crate::error::{Result, SqlError, sqlstate};

use super::walk::{transform, visit};
use super::{Access, Node, Plan, SortKey};

/// An access path for `inner` (a plain table scan) keyed by expressions
/// over the outer row: when the right keys are columns covering the
/// primary key or an index.
pub(super) fn index_access(inner: &Plan, kl: &[Expr], kr: &[Expr]) -> Option<Access> {
    let Node::Scan { table, access, .. } = &inner.node else {
        return None;
    };
    if kl.is_empty() || !matches!(access, Access::Full) && !matches!(access, Access::Range { .. }) {
        return None;
    }
    let key_for = |col: usize| -> Option<Expr> {
        kr.iter()
            .position(|k| *k == Expr::Bound(col))
            .map(|i| kl[i].clone())
    };
    if !table.primary_key.is_empty()
        && let Some(keys) = table
            .primary_key
            .iter()
            .map(|&c| key_for(c))
            .collect::<Option<Vec<_>>>()
    {
        return Some(Access::PrimaryKey(keys));
    }
    let mut indexes: Vec<_> = table.indexes.iter().collect();
    indexes.sort_by_key(|i| !i.unique);
    for index in indexes {
        if let Some(key) = index
            .columns
            .iter()
            .map(|&c| key_for(c))
            .collect::<Option<Vec<_>>>()
        {
            return Some(Access::Index {
                index: index.clone(),
                key,
            });
        }
    }
    None
}

/// Chooses a table's access path from terms over its columns: the whole
/// primary key by equality, an index by equality (unique first), a range
/// on the leading primary-key or B+tree index column, else a full scan.
pub(super) fn choose_access(def: &TableDef, terms: &[Expr]) -> Access {
    let mut eq: Vec<(usize, Expr)> = Vec::new();
    let mut lo: Vec<(usize, Expr, bool)> = Vec::new();
    let mut hi: Vec<(usize, Expr, bool)> = Vec::new();
    for t in terms {
        match t {
            Expr::Binary { op, left, right } => {
                let (col, other, op) = match (&**left, &**right) {
                    (Expr::Bound(c), o) if is_constant(o) => (*c, o.clone(), *op),
                    (o, Expr::Bound(c)) if is_constant(o) => (*c, o.clone(), flip(*op)),
                    _ => continue,
                };
                match op {
                    BinaryOp::Eq => eq.push((col, other)),
                    BinaryOp::Gt => lo.push((col, other, false)),
                    BinaryOp::GtEq => lo.push((col, other, true)),
                    BinaryOp::Lt => hi.push((col, other, false)),
                    BinaryOp::LtEq => hi.push((col, other, true)),
                    _ => {}
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated: false,
            } => {
                if let Expr::Bound(c) = **expr
                    && is_constant(low)
                    && is_constant(high)
                {
                    lo.push((c, (**low).clone(), true));
                    hi.push((c, (**high).clone(), true));
                }
            }
            _ => {}
        }
    }
    let key_for = |col: usize| eq.iter().find(|(c, _)| *c == col).map(|(_, e)| e.clone());
    if !def.primary_key.is_empty()
        && let Some(keys) = def
            .primary_key
            .iter()
            .map(|&c| key_for(c))
            .collect::<Option<Vec<_>>>()
    {
        return Access::PrimaryKey(keys);
    }
    let mut indexes: Vec<_> = def.indexes.iter().collect();
    indexes.sort_by_key(|i| !i.unique);
    for index in &indexes {
        if let Some(key) = index
            .columns
            .iter()
            .map(|&c| key_for(c))
            .collect::<Option<Vec<_>>>()
        {
            return Access::Index {
                index: (*index).clone(),
                key,
            };
        }
    }
    let range_on = |col: usize| {
        let l = lo
            .iter()
            .find(|(c, _, _)| *c == col)
            .map(|(_, e, i)| (e.clone(), *i));
        let h = hi
            .iter()
            .find(|(c, _, _)| *c == col)
            .map(|(_, e, i)| (e.clone(), *i));
        (l.is_some() || h.is_some()).then_some((l, h))
    };
    if let Some(&first) = def.primary_key.first()
        && let Some((l, h)) = range_on(first)
    {
        return Access::Range {
            index: None,
            lo: l,
            hi: h,
            reverse: false,
        };
    }
    for index in indexes {
        if index.kind == IndexKind::BTree
            && let Some((l, h)) = range_on(index.columns[0])
        {
            return Access::Range {
                index: Some(index.clone()),
                lo: l,
                hi: h,
                reverse: false,
            };
        }
    }
    Access::Full
}

pub(super) fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        other => other,
    }
}

/// An expression that does not depend on the current row (constants,
/// parameters, outer columns, uncorrelated subqueries).
pub(super) fn is_constant(e: &Expr) -> bool {
    columns_of(e).is_empty() && !has_correlated(e)
}

/// The input columns an expression reads (not inside subqueries).
pub(super) fn columns_of(e: &Expr) -> Vec<usize> {
    let mut out = Vec::new();
    visit(e, &mut |x| {
        if let Expr::Bound(i) = x {
            out.push(*i);
        }
    });
    out
}

/// Whether an expression holds a correlated subquery.
pub(super) fn has_correlated(e: &Expr) -> bool {
    let mut found = false;
    visit(e, &mut |x| {
        if let Expr::SubPlan(s) = x
            && s.correlated
        {
            found = true;
        }
    });
    found
}

/// Renumbers input columns; `map` returning None is an internal error.
pub(super) fn remap(e: &Expr, map: &dyn Fn(usize) -> Option<usize>) -> Result<Expr> {
    transform(e, &mut |x| match x {
        Expr::Bound(i) => map(*i).map(|j| Some(Expr::Bound(j))).ok_or_else(|| {
            SqlError::new(
                sqlstate::INTERNAL_ERROR,
                "a join term refers to a column out of place",
            )
        }),
        _ => Ok(None),
    })
}

pub(super) fn shift(e: &Expr, by: usize) -> Result<Expr> {
    remap(e, &|c| Some(c + by))
}

/// Serves ORDER BY from a primary-key scan, when the keys are a prefix of
/// the primary key all in one direction and the plan is that scan (through
/// at most a projection). Returns whether it did.
pub(super) fn order_by_scan(plan: &mut Plan, keys: &[SortKey]) -> bool {
    let (exprs, scan) = match &mut plan.node {
        Node::Project { input, exprs } => (Some(exprs.clone()), &mut **input),
        _ => (None, &mut *plan),
    };
    let Node::Scan { table, access, .. } = &mut scan.node else {
        return false;
    };
    let desc = keys[0].desc;
    if keys.len() > table.primary_key.len() || keys.iter().any(|k| k.desc != desc) {
        return false;
    }
    for (k, &pk) in keys.iter().zip(&table.primary_key) {
        let col = match &exprs {
            Some(exprs) => match exprs.get(k.column) {
                Some(Expr::Bound(c)) => *c,
                _ => return false,
            },
            None => k.column,
        };
        if col != pk {
            return false;
        }
    }
    match access {
        Access::Full => {
            *access = Access::Range {
                index: None,
                lo: None,
                hi: None,
                reverse: desc,
            };
            true
        }
        Access::Range {
            index: None,
            reverse,
            ..
        } => {
            *reverse = desc;
            true
        }
        Access::PrimaryKey(_) => table.primary_key.len() == keys.len(),
        _ => false,
    }
}

/// Calls `f` on every expression node of a plan (and of the plans of its
/// subqueries, with `nesting` one deeper).
pub(super) fn visit_plan_exprs(plan: &Plan, nesting: usize, f: &mut dyn FnMut(&Expr, usize)) {
    for e in plan.own_exprs() {
        visit(e, &mut |x| {
            f(x, nesting);
            if let Expr::SubPlan(sub) = x {
                visit_plan_exprs(&sub.plan, nesting + 1, f);
            }
        });
    }
    for child in plan.children() {
        visit_plan_exprs(child, nesting, f);
    }
}
