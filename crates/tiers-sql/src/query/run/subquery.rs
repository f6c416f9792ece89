//! Subqueries in the executor: scalar, EXISTS and IN, each run when an
//! expression needs it; an uncorrelated one runs once per statement and its
//! result is kept.

use std::collections::HashSet;
use std::rc::Rc;

use crate::error::{Result, SqlError, sqlstate};
use crate::expr::{self, Scope, Subqueries};
use crate::value::Value;

use super::super::{Plan, SubKind, SubPlan};
use super::{Exec, hash_key};

/// Results cached for the statement: uncorrelated subqueries.
pub(super) enum Cached {
    Value(Value),
    Set(Rc<InSet>),
}

/// The values of an `IN (subquery)`.
pub(super) struct InSet {
    keys: HashSet<Vec<u8>>,
    has_null: bool,
}

impl Exec<'_> {
    pub(super) fn in_set(&self, plan: &Plan, outer: &[&[Value]]) -> Result<InSet> {
        let mut set = InSet {
            keys: HashSet::new(),
            has_null: false,
        };
        for row in self.rows(plan, outer)? {
            let row = row?;
            if row[0].is_null() {
                set.has_null = true;
            } else {
                let key = hash_key(&row[..1]);
                self.hold(key.len() + 32)?;
                set.keys.insert(key);
            }
        }
        Ok(set)
    }
}

impl Subqueries for Exec<'_> {
    fn evaluate(&self, sub: &SubPlan, scope: &Scope<'_>) -> Result<Value> {
        let mut stack: Vec<&[Value]> = scope.outer.to_vec();
        stack.push(scope.row.unwrap_or(&[]));
        if !sub.correlated
            && let Some(cached) = self.cached.borrow().get(&sub.id)
        {
            return match cached {
                Cached::Value(v) => Ok(v.clone()),
                Cached::Set(set) => in_result(&sub.kind, set, scope),
            };
        }
        match &sub.kind {
            SubKind::Scalar => {
                let mut rows = self.rows(&sub.plan, &stack)?;
                let value = match rows.next() {
                    None => Value::Null,
                    Some(row) => row?.swap_remove(0),
                };
                if rows.next().transpose()?.is_some() {
                    return Err(SqlError::new(
                        "21000",
                        "more than one row returned by a subquery used as an expression",
                    ));
                }
                if !sub.correlated {
                    self.cached
                        .borrow_mut()
                        .insert(sub.id, Cached::Value(value.clone()));
                }
                Ok(value)
            }
            SubKind::Exists { negated } => {
                let found = self.rows(&sub.plan, &stack)?.next().transpose()?.is_some();
                let value = Value::Bool(found != *negated);
                if !sub.correlated {
                    self.cached
                        .borrow_mut()
                        .insert(sub.id, Cached::Value(value.clone()));
                }
                Ok(value)
            }
            SubKind::In { .. } => {
                let set = Rc::new(self.in_set(&sub.plan, &stack)?);
                let result = in_result(&sub.kind, &set, scope);
                if !sub.correlated {
                    self.cached.borrow_mut().insert(sub.id, Cached::Set(set));
                }
                result
            }
        }
    }
}

/// SQL's `x [NOT] IN (set)`: true on a match; NULL when there is none but
/// `x` or a member is NULL; false otherwise.
fn in_result(kind: &SubKind, set: &InSet, scope: &Scope<'_>) -> Result<Value> {
    let SubKind::In { expr: x, negated } = kind else {
        return Err(SqlError::new(
            sqlstate::INTERNAL_ERROR,
            "not an IN subquery",
        ));
    };
    let v = expr::eval(x, scope)?;
    if v.is_null() {
        return Ok(Value::Null);
    }
    let found = set.keys.contains(&hash_key(std::slice::from_ref(&v)));
    if found {
        return Ok(Value::Bool(!negated));
    }
    if set.has_null {
        return Ok(Value::Null);
    }
    Ok(Value::Bool(*negated))
}
