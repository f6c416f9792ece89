//! Expression evaluation with SQL's three-valued logic.
//!
//! A [`Scope`] supplies the current row (if any) and the statement's
//! parameters. NULL propagates through operators; AND/OR/NOT follow SQL's
//! three-valued truth tables; comparisons of NULL are NULL. A string literal
//! compared with a number, date or boolean is read as that type, which is how
//! PostgreSQL types its untyped literals.

use rust_decimal::{Decimal, RoundingStrategy};
use std::cmp::Ordering;

use crate::ast::{BinaryOp, Expr};
use crate::catalog::TableDef;
use crate::error::{Result, SqlError, sqlstate};
use crate::query::SubPlan;
use crate::types::DataType;
use crate::value::Value;

/// Runs planned subqueries for the evaluator (the query executor).
pub trait Subqueries {
    /// The value of `sub` evaluated in `scope` (whose row is the enclosing
    /// query's current row).
    fn evaluate(&self, sub: &SubPlan, scope: &Scope<'_>) -> Result<Value>;
}

/// What an expression can refer to.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    /// The table rows come from, for expressions that name columns (None
    /// for planned expressions, which use positions).
    pub table: Option<&'a TableDef>,
    /// The current row's values, in column order.
    pub row: Option<&'a [Value]>,
    /// `$1`, `$2`, ... values.
    pub params: &'a [Value],
    /// Rows of the enclosing queries, innermost last (correlated subqueries).
    pub outer: &'a [&'a [Value]],
    /// Who runs subqueries (None where none were planned).
    pub subqueries: Option<&'a dyn Subqueries>,
}

impl<'a> Scope<'a> {
    /// A scope with no row: only constants and parameters resolve.
    pub fn constant(params: &'a [Value]) -> Scope<'a> {
        Scope {
            table: None,
            row: None,
            params,
            outer: &[],
            subqueries: None,
        }
    }

    /// A row of `table`.
    pub fn row(table: &'a TableDef, row: &'a [Value], params: &'a [Value]) -> Scope<'a> {
        Scope {
            table: Some(table),
            row: Some(row),
            params,
            outer: &[],
            subqueries: None,
        }
    }

    /// The same scope with another current row.
    pub fn with_row(self, row: &'a [Value]) -> Scope<'a> {
        Scope {
            row: Some(row),
            ..self
        }
    }
}

/// Aggregate function names.
pub fn is_aggregate(name: &str) -> bool {
    matches!(
        name,
        "count" | "sum" | "avg" | "min" | "max" | "string_agg" | "bool_and" | "bool_or" | "every"
    )
}

fn undefined_function(what: String) -> SqlError {
    SqlError::new("42883", what)
}

/// Resolves a column reference to its position in the scope's table.
pub fn resolve_column(scope: &Scope<'_>, table: Option<&str>, name: &str) -> Result<usize> {
    let Some(def) = scope.table else {
        return Err(SqlError::new(
            sqlstate::UNDEFINED_COLUMN,
            format!("column \"{name}\" does not exist"),
        ));
    };
    if let Some(t) = table
        && t != def.name
    {
        return Err(SqlError::new(
            sqlstate::UNDEFINED_TABLE,
            format!("missing FROM-clause entry for table \"{t}\""),
        ));
    }
    def.columns
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| {
            SqlError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!("column \"{name}\" does not exist"),
            )
        })
}

/// Evaluates an expression.
pub fn eval(e: &Expr, scope: &Scope<'_>) -> Result<Value> {
    match e {
        Expr::Literal(v) => Ok(v.clone()),
        Expr::Column { table, name } => {
            let i = resolve_column(scope, table.as_deref(), name)?;
            Ok(scope
                .row
                .and_then(|r| r.get(i))
                .cloned()
                .unwrap_or(Value::Null))
        }
        Expr::Parameter(n) => scope
            .params
            .get(n.wrapping_sub(1))
            .cloned()
            .ok_or_else(|| SqlError::new("42P02", format!("there is no parameter ${n}"))),
        Expr::Binary { op, left, right } => binary(*op, left, right, scope),
        Expr::Not(inner) => match eval(inner, scope)? {
            Value::Null => Ok(Value::Null),
            v => Ok(Value::Bool(!v.to_bool()?)),
        },
        Expr::Negate(inner) => match eval(inner, scope)? {
            Value::Null => Ok(Value::Null),
            Value::Int(i) => i.checked_neg().map(Value::Int).ok_or_else(out_of_range),
            Value::Float(f) => Ok(Value::Float(-f)),
            Value::Numeric(d) => Ok(Value::Numeric(-d)),
            v => Err(undefined_function(format!(
                "operator does not exist: - {}",
                v.to_text()
            ))),
        },
        Expr::IsNull { expr, negated } => Ok(Value::Bool(eval(expr, scope)?.is_null() != *negated)),
        Expr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => {
            let (v, p) = (eval(expr, scope)?, eval(pattern, scope)?);
            if v.is_null() || p.is_null() {
                return Ok(Value::Null);
            }
            let (mut s, mut p) = (v.to_text(), p.to_text());
            if *case_insensitive {
                s = s.to_lowercase();
                p = p.to_lowercase();
            }
            Ok(Value::Bool(like(&s, &p) != *negated))
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let v = eval(expr, scope)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            for item in list {
                match compare(&v, &eval(item, scope)?)? {
                    Some(Ordering::Equal) => return Ok(Value::Bool(!negated)),
                    None => saw_null = true,
                    _ => {}
                }
            }
            Ok(if saw_null {
                Value::Null
            } else {
                Value::Bool(*negated)
            })
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let v = eval(expr, scope)?;
            let ge = compare(&v, &eval(low, scope)?)?.map(|o| o != Ordering::Less);
            let le = compare(&v, &eval(high, scope)?)?.map(|o| o != Ordering::Greater);
            Ok(match and3(ge, le) {
                None => Value::Null,
                Some(b) => Value::Bool(b != *negated),
            })
        }
        Expr::Cast { expr, to } => cast(eval(expr, scope)?, *to),
        Expr::Bound(i) => Ok(scope
            .row
            .and_then(|r| r.get(*i))
            .cloned()
            .unwrap_or(Value::Null)),
        Expr::Outer { depth, index } => scope
            .outer
            .len()
            .checked_sub(*depth)
            .and_then(|level| scope.outer[level].get(*index))
            .cloned()
            .ok_or_else(|| {
                SqlError::new(
                    sqlstate::INTERNAL_ERROR,
                    "an outer column reference has no enclosing row",
                )
            }),
        Expr::SubPlan(sub) => match scope.subqueries {
            Some(runner) => runner.evaluate(sub, scope),
            None => Err(SqlError::new(
                sqlstate::INTERNAL_ERROR,
                "a subquery was evaluated outside a query",
            )),
        },
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => Err(SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "subqueries are not supported in this statement",
        )),
        Expr::Function { name, args, .. } => {
            if is_aggregate(name) {
                return Err(SqlError::new(
                    "42803",
                    format!("aggregate functions are not allowed here ({name})"),
                ));
            }
            let values: Vec<Value> = args.iter().map(|a| eval(a, scope)).collect::<Result<_>>()?;
            crate::functions::call(name, values)
        }
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => {
            let subject = operand.as_ref().map(|o| eval(o, scope)).transpose()?;
            for (when, then) in branches {
                let hit = match &subject {
                    Some(s) => compare(s, &eval(when, scope)?)? == Some(Ordering::Equal),
                    None => truth(&eval(when, scope)?)? == Some(true),
                };
                if hit {
                    return eval(then, scope);
                }
            }
            match otherwise {
                Some(e) => eval(e, scope),
                None => Ok(Value::Null),
            }
        }
    }
}

/// SQL truth of a value: None for NULL.
pub fn truth(v: &Value) -> Result<Option<bool>> {
    match v {
        Value::Null => Ok(None),
        other => other.to_bool().map(Some),
    }
}

fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

fn out_of_range() -> SqlError {
    SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "integer out of range")
}

/// Reads a text value as the type of the other operand (untyped literals).
fn unify(a: Value, b: Value) -> Result<(Value, Value)> {
    let as_kind = |text: &str, like: &Value| -> Result<Value> {
        match like {
            Value::Int(_) => Value::Text(text.into()).to_i64().map(Value::Int),
            Value::Float(_) => Value::Text(text.into()).to_f64().map(Value::Float),
            Value::Numeric(_) => crate::value::parse_numeric(text).map(Value::Numeric),
            Value::Bool(_) => Value::Text(text.into()).to_bool().map(Value::Bool),
            Value::Date(_) => crate::value::parse_date(text).map(Value::Date),
            Value::Timestamp(_) => crate::value::parse_timestamp(text, false).map(Value::Timestamp),
            Value::TimestampTz(_) => {
                crate::value::parse_timestamp(text, true).map(Value::TimestampTz)
            }
            Value::Bytes(_) => crate::value::parse_bytea(text).map(Value::Bytes),
            _ => Ok(Value::Text(text.into())),
        }
    };
    Ok(match (a, b) {
        (Value::Text(t), other) if !matches!(other, Value::Text(_) | Value::Null) => {
            (as_kind(&t, &other)?, other)
        }
        (other, Value::Text(t)) if !matches!(other, Value::Text(_) | Value::Null) => {
            let converted = as_kind(&t, &other)?;
            (other, converted)
        }
        pair => pair,
    })
}

/// SQL comparison with literal unification; None when either side is NULL.
pub fn compare(a: &Value, b: &Value) -> Result<Option<Ordering>> {
    let (a, b) = unify(a.clone(), b.clone())?;
    Ok(a.sql_cmp(&b))
}

fn binary(op: BinaryOp, left: &Expr, right: &Expr, scope: &Scope<'_>) -> Result<Value> {
    match op {
        BinaryOp::And | BinaryOp::Or => {
            let l = truth(&eval(left, scope)?)?;
            // Short-circuit where SQL allows it.
            if (op == BinaryOp::And && l == Some(false)) || (op == BinaryOp::Or && l == Some(true))
            {
                return Ok(Value::Bool(l == Some(true)));
            }
            let r = truth(&eval(right, scope)?)?;
            let out = if op == BinaryOp::And {
                and3(l, r)
            } else {
                or3(l, r)
            };
            return Ok(out.map_or(Value::Null, Value::Bool));
        }
        _ => {}
    }
    let (l, r) = (eval(left, scope)?, eval(right, scope)?);
    if l.is_null() || r.is_null() {
        return Ok(Value::Null);
    }
    let ord = |want: fn(Ordering) -> bool| -> Result<Value> {
        Ok(compare(&l, &r)?.map_or(Value::Null, |o| Value::Bool(want(o))))
    };
    match op {
        BinaryOp::Eq => ord(|o| o == Ordering::Equal),
        BinaryOp::NotEq => ord(|o| o != Ordering::Equal),
        BinaryOp::Lt => ord(|o| o == Ordering::Less),
        BinaryOp::LtEq => ord(|o| o != Ordering::Greater),
        BinaryOp::Gt => ord(|o| o == Ordering::Greater),
        BinaryOp::GtEq => ord(|o| o != Ordering::Less),
        BinaryOp::Concat => Ok(Value::Text(l.to_text() + &r.to_text())),
        BinaryOp::Regex {
            case_insensitive,
            negated,
        } => {
            let found = regex_matches(&l.to_text(), &r.to_text(), case_insensitive)?;
            Ok(Value::Bool(found != negated))
        }
        BinaryOp::And | BinaryOp::Or => unreachable!("handled above"),
        arith => arithmetic(arith, l, r),
    }
}

/// `l op r` for an arithmetic operator (also for functions that are
/// operators in disguise, such as `mod`).
pub(crate) fn arithmetic(op: BinaryOp, l: Value, r: Value) -> Result<Value> {
    let (l, r) = unify(l, r)?;
    let symbol = match op {
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        _ => "%",
    };
    match (&l, &r) {
        (Value::Int(a), Value::Int(b)) => {
            let (a, b) = (*a, *b);
            if matches!(op, BinaryOp::Div | BinaryOp::Mod) && b == 0 {
                return Err(SqlError::new(
                    sqlstate::DIVISION_BY_ZERO,
                    "division by zero",
                ));
            }
            let out = match op {
                BinaryOp::Add => a.checked_add(b),
                BinaryOp::Sub => a.checked_sub(b),
                BinaryOp::Mul => a.checked_mul(b),
                BinaryOp::Div => a.checked_div(b),
                _ => a.checked_rem(b),
            };
            out.map(Value::Int).ok_or_else(out_of_range)
        }
        (Value::Numeric(_), Value::Numeric(_) | Value::Int(_))
        | (Value::Int(_), Value::Numeric(_)) => {
            numeric_arithmetic(op, l.to_decimal()?, r.to_decimal()?).map(Value::Numeric)
        }
        (
            Value::Int(_) | Value::Float(_) | Value::Numeric(_),
            Value::Int(_) | Value::Float(_) | Value::Numeric(_),
        ) => {
            let (a, b) = (l.to_f64()?, r.to_f64()?);
            if matches!(op, BinaryOp::Div | BinaryOp::Mod) && b == 0.0 {
                return Err(SqlError::new(
                    sqlstate::DIVISION_BY_ZERO,
                    "division by zero",
                ));
            }
            Ok(Value::Float(match op {
                BinaryOp::Add => a + b,
                BinaryOp::Sub => a - b,
                BinaryOp::Mul => a * b,
                BinaryOp::Div => a / b,
                _ => a % b,
            }))
        }
        (Value::Date(d), Value::Int(n)) if matches!(op, BinaryOp::Add | BinaryOp::Sub) => {
            let n = i32::try_from(*n).map_err(|_| out_of_range())?;
            let out = if op == BinaryOp::Add {
                d.checked_add(n)
            } else {
                d.checked_sub(n)
            };
            out.map(Value::Date).ok_or_else(out_of_range)
        }
        (Value::Date(a), Value::Date(b)) if op == BinaryOp::Sub => {
            Ok(Value::Int(i64::from(*a) - i64::from(*b)))
        }
        _ => Err(undefined_function(format!(
            "operator does not exist: {} {symbol} {}",
            kind_name(&l),
            kind_name(&r)
        ))),
    }
}

/// `numeric` arithmetic with PostgreSQL's result scales: the larger input
/// scale for + - %, their sum for *, and for / at least 16 significant
/// digits (and never fewer decimals than either input has).
pub(crate) fn numeric_arithmetic(op: BinaryOp, a: Decimal, b: Decimal) -> Result<Decimal> {
    let overflow = || {
        SqlError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            "value out of range: numeric overflow",
        )
    };
    if matches!(op, BinaryOp::Div | BinaryOp::Mod) && b.is_zero() {
        return Err(SqlError::new(
            sqlstate::DIVISION_BY_ZERO,
            "division by zero",
        ));
    }
    match op {
        BinaryOp::Add => a.checked_add(b).ok_or_else(overflow),
        BinaryOp::Sub => a.checked_sub(b).ok_or_else(overflow),
        BinaryOp::Mul => a.checked_mul(b).ok_or_else(overflow),
        BinaryOp::Div => {
            let q = a.checked_div(b).ok_or_else(overflow)?;
            let scale = division_scale(a, b);
            let mut r = q.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
            r.rescale(scale);
            Ok(r)
        }
        _ => a.checked_rem(b).ok_or_else(overflow),
    }
}

/// PostgreSQL's `select_div_scale`, in its base-10000 digits.
fn division_scale(a: Decimal, b: Decimal) -> u32 {
    // (weight, first base-10000 digit) of a nonzero value.
    let lead = |d: Decimal| -> (i64, u32) {
        if d.is_zero() {
            return (0, 0);
        }
        let digits = d.mantissa().unsigned_abs().to_string();
        let e10 = digits.len() as i64 - 1 - i64::from(d.scale());
        let weight = e10.div_euclid(4);
        let take = (e10 - weight * 4 + 1) as usize;
        let mut first = 0u32;
        for i in 0..take {
            let digit = digits.as_bytes().get(i).map_or(0, |b| u32::from(b - b'0'));
            first = first * 10 + digit;
        }
        (weight, first)
    };
    let ((w1, f1), (w2, f2)) = (lead(a), lead(b));
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let scale = (16 - qweight * 4)
        .max(i64::from(a.scale()))
        .max(i64::from(b.scale()))
        .max(0);
    scale.min(i64::from(crate::value::NUMERIC_MAX_DIGITS)) as u32
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "unknown",
        Value::Numeric(_) => "numeric",
        Value::Bool(_) => "boolean",
        Value::Int(_) => "integer",
        Value::Float(_) => "double precision",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytea",
        Value::Date(_) => "date",
        Value::Timestamp(_) => "timestamp without time zone",
        Value::TimestampTz(_) => "timestamp with time zone",
    }
}

/// Whether `pattern` (a POSIX-style regular expression) matches anywhere
/// in `s`. The last pattern compiled on this thread is reused.
fn regex_matches(s: &str, pattern: &str, case_insensitive: bool) -> Result<bool> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, bool, regex::Regex)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        let fresh = !matches!(&*last, Some((p, ci, _)) if p == pattern && *ci == case_insensitive);
        if fresh {
            let re = regex::RegexBuilder::new(pattern)
                .case_insensitive(case_insensitive)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    SqlError::new(
                        "2201B",
                        format!("invalid regular expression {pattern:?}: {e}"),
                    )
                })?;
            *last = Some((pattern.to_owned(), case_insensitive, re));
        }
        Ok(last.as_ref().expect("compiled").2.is_match(s))
    })
}

/// An explicit cast (`CAST(x AS t)`, `x::t`).
pub fn cast(v: Value, to: DataType) -> Result<Value> {
    match (&v, to) {
        (Value::Bool(b), DataType::Int2 | DataType::Int4 | DataType::Int8) => {
            Ok(Value::Int(i64::from(*b)))
        }
        (Value::Float(_), DataType::Text | DataType::Varchar(_)) => Ok(Value::Text(v.to_text())),
        _ => to.assign(v),
    }
}

/// SQL LIKE: `%` matches any run, `_` one character, `\` escapes.
pub fn like(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Iterative matcher with backtracking to the last `%` (linear in practice).
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == '\\' && pi + 1 < p.len() && p[pi + 1] == s[si] {
            si += 1;
            pi += 2;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] != '\\' && (p[pi] == '_' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("hello", "h%o"));
        assert!(like("hello", "_ello"));
        assert!(like("hello", "%"));
        assert!(!like("hello", "h_o"));
        assert!(like("50%", "50\\%"));
        assert!(!like("500", "50\\%"));
        assert!(like("", "%"));
        assert!(like("aaa", "%a%a%"));
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(and3(None, Some(false)), Some(false));
        assert_eq!(and3(None, Some(true)), None);
        assert_eq!(or3(None, Some(true)), Some(true));
        assert_eq!(or3(None, Some(false)), None);
    }
}
