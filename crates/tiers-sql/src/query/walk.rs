//! Walking and rewriting bound expressions: visiting, transforming,
//! splitting predicates into AND-ed terms, and the aggregation rewrite
//! (aggregate calls and GROUP BY expressions become the Aggregate node's
//! columns).

use crate::ast::{BinaryOp, Expr};
use crate::error::{Result, SqlError, sqlstate};
use crate::expr;

use super::{AggCall, Field, SubKind, SubPlan, subplan_expr};

pub(super) fn grouping_error(name: &str) -> SqlError {
    SqlError::new(
        "42803",
        format!(
            "column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"
        ),
    )
}

/// Whether a bound expression contains an aggregate call (not counting
/// those inside subqueries).
pub(super) fn has_aggregate(e: &Expr) -> bool {
    let mut found = false;
    visit(e, &mut |x| {
        if let Expr::Function { name, .. } = x
            && expr::is_aggregate(name)
        {
            found = true;
        }
    });
    found
}

/// Calls `f` on `e` and every sub-expression (not entering subqueries).
pub(super) fn visit(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::Binary { left, right, .. } => {
            visit(left, f);
            visit(right, f);
        }
        Expr::Not(x)
        | Expr::Negate(x)
        | Expr::IsNull { expr: x, .. }
        | Expr::Cast { expr: x, .. } => visit(x, f),
        Expr::Like { expr, pattern, .. } => {
            visit(expr, f);
            visit(pattern, f);
        }
        Expr::InList { expr, list, .. } => {
            visit(expr, f);
            list.iter().for_each(|x| visit(x, f));
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            visit(expr, f);
            visit(low, f);
            visit(high, f);
        }
        Expr::Function { args, .. } => args.iter().for_each(|x| visit(x, f)),
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => {
            if let Some(o) = operand {
                visit(o, f);
            }
            for (w, t) in branches {
                visit(w, f);
                visit(t, f);
            }
            if let Some(o) = otherwise {
                visit(o, f);
            }
        }
        Expr::SubPlan(sub) => {
            if let SubKind::In { expr, .. } = &sub.kind {
                visit(expr, f);
            }
        }
        Expr::InSubquery { expr, .. } => visit(expr, f),
        Expr::Literal(_)
        | Expr::Column { .. }
        | Expr::Parameter(_)
        | Expr::Bound(_)
        | Expr::Outer { .. }
        | Expr::Subquery(_)
        | Expr::Exists { .. } => {}
    }
}

/// Rebuilds `e` bottom-up, letting `f` replace any node first.
pub(super) fn transform(
    e: &Expr,
    f: &mut dyn FnMut(&Expr) -> Result<Option<Expr>>,
) -> Result<Expr> {
    if let Some(replaced) = f(e)? {
        return Ok(replaced);
    }
    Ok(match e {
        Expr::Binary { op, left, right } => Expr::Binary {
            op: *op,
            left: tb(left, f)?,
            right: tb(right, f)?,
        },
        Expr::Not(x) => Expr::Not(tb(x, f)?),
        Expr::Negate(x) => Expr::Negate(tb(x, f)?),
        Expr::IsNull { expr, negated } => Expr::IsNull {
            expr: tb(expr, f)?,
            negated: *negated,
        },
        Expr::Cast { expr, to } => Expr::Cast {
            expr: tb(expr, f)?,
            to: *to,
        },
        Expr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => Expr::Like {
            expr: tb(expr, f)?,
            pattern: tb(pattern, f)?,
            negated: *negated,
            case_insensitive: *case_insensitive,
        },
        Expr::InList {
            expr,
            list,
            negated,
        } => Expr::InList {
            expr: tb(expr, f)?,
            list: list
                .iter()
                .map(|x| transform(x, f))
                .collect::<Result<_>>()?,
            negated: *negated,
        },
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => Expr::Between {
            expr: tb(expr, f)?,
            low: tb(low, f)?,
            high: tb(high, f)?,
            negated: *negated,
        },
        Expr::Function {
            name,
            args,
            star,
            distinct,
        } => Expr::Function {
            name: name.clone(),
            args: args
                .iter()
                .map(|x| transform(x, f))
                .collect::<Result<_>>()?,
            star: *star,
            distinct: *distinct,
        },
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => Expr::Case {
            operand: operand.as_ref().map(|o| tb(o, f)).transpose()?,
            branches: branches
                .iter()
                .map(|(w, x)| Ok((transform(w, f)?, transform(x, f)?)))
                .collect::<Result<_>>()?,
            otherwise: otherwise.as_ref().map(|o| tb(o, f)).transpose()?,
        },
        Expr::SubPlan(sub) => match &sub.kind {
            SubKind::In { expr, negated } => {
                let new_expr = transform(expr, f)?;
                if new_expr == *expr {
                    e.clone()
                } else {
                    subplan_expr(SubPlan {
                        id: sub.id,
                        kind: SubKind::In {
                            expr: new_expr,
                            negated: *negated,
                        },
                        plan: sub.plan.clone(),
                        correlated: sub.correlated,
                    })
                }
            }
            _ => e.clone(),
        },
        other => other.clone(),
    })
}

pub(super) fn tb(e: &Expr, f: &mut dyn FnMut(&Expr) -> Result<Option<Expr>>) -> Result<Box<Expr>> {
    transform(e, f).map(Box::new)
}

pub(super) fn collect_aggregates(e: &Expr, out: &mut Vec<AggCall>) -> Result<()> {
    let mut failure = None;
    visit(e, &mut |x| {
        if let Expr::Function {
            name,
            args,
            distinct,
            ..
        } = x
            && expr::is_aggregate(name)
        {
            if args.iter().any(has_aggregate) {
                failure.get_or_insert_with(|| {
                    SqlError::new("42803", "aggregate function calls cannot be nested")
                });
            }
            let call = AggCall {
                name: name.clone(),
                args: args.clone(),
                distinct: *distinct,
            };
            if !out.contains(&call) {
                out.push(call);
            }
        }
    });
    failure.map_or(Ok(()), Err)
}

/// Rewrites a post-aggregation expression over the Aggregate node's output:
/// GROUP BY expressions and aggregate calls become its columns; any other
/// input column is an error.
pub(super) fn rewrite_grouped(
    e: &Expr,
    group_by: &[Expr],
    aggs: &[AggCall],
    input: &[Field],
) -> Result<Expr> {
    transform(e, &mut |x| {
        if let Some(i) = group_by.iter().position(|g| g == x) {
            return Ok(Some(Expr::Bound(i)));
        }
        match x {
            Expr::Function {
                name,
                args,
                distinct,
                ..
            } if expr::is_aggregate(name) => {
                let call = AggCall {
                    name: name.clone(),
                    args: args.clone(),
                    distinct: *distinct,
                };
                let j = aggs.iter().position(|a| *a == call).expect("collected");
                Ok(Some(Expr::Bound(group_by.len() + j)))
            }
            Expr::Bound(i) => Err(grouping_error(
                input.get(*i).map_or("?", |f| f.name.as_str()),
            )),
            Expr::SubPlan(sub) if sub.correlated => Err(SqlError::new(
                sqlstate::FEATURE_NOT_SUPPORTED,
                "correlated subqueries in an aggregated select list are not supported",
            )),
            _ => Ok(None),
        }
    })
}

/// Splits a predicate into its AND-ed terms.
pub(super) fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::Binary {
            op: BinaryOp::And,
            left,
            right,
        } => {
            conjuncts(*left, out);
            conjuncts(*right, out);
        }
        other => out.push(other),
    }
}

/// AND-s terms back together.
pub(super) fn conjoin(terms: Vec<Expr>) -> Option<Expr> {
    terms.into_iter().reduce(|a, b| Expr::Binary {
        op: BinaryOp::And,
        left: Box::new(a),
        right: Box::new(b),
    })
}
