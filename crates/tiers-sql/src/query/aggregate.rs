//! Aggregate functions: count, sum, avg, min, max, string_agg, bool_and,
//! bool_or (and `every`), each optionally over DISTINCT values.

use std::cmp::Ordering;
use std::collections::HashSet;

use crate::error::{Result, SqlError, sqlstate};
use crate::expr;
use crate::value::Value;

use super::AggCall;
use super::run::hash_key;

/// The running state of one aggregate for one group.
pub(super) struct Accumulator {
    name: String,
    star: bool,
    distinct: Option<HashSet<Vec<u8>>>,
    count: i64,
    int_sum: Option<i128>,
    float_sum: f64,
    any_float: bool,
    /// The exact sum (None once it overflowed `numeric`).
    numeric_sum: Option<rust_decimal::Decimal>,
    any_numeric: bool,
    best: Option<Value>,
    text: Option<String>,
    flag: Option<bool>,
}

impl Accumulator {
    pub(super) fn new(call: &AggCall) -> Accumulator {
        Accumulator {
            name: call.name.clone(),
            star: call.args.is_empty(),
            distinct: call.distinct.then(HashSet::new),
            count: 0,
            int_sum: Some(0),
            float_sum: 0.0,
            any_float: false,
            numeric_sum: Some(rust_decimal::Decimal::ZERO),
            any_numeric: false,
            best: None,
            text: None,
            flag: None,
        }
    }

    /// Adds one row's argument values; returns the bytes of memory it added.
    pub(super) fn add(&mut self, args: Vec<Value>) -> Result<usize> {
        if self.star {
            self.count += 1;
            return Ok(0);
        }
        let Some(v) = args.first() else {
            return Err(SqlError::new(
                "42883",
                format!("{}() needs an argument", self.name),
            ));
        };
        if v.is_null() {
            return Ok(0);
        }
        let mut grew = 0;
        if let Some(seen) = &mut self.distinct {
            let key = hash_key(std::slice::from_ref(v));
            grew = key.len() + 32;
            if !seen.insert(key) {
                return Ok(0);
            }
        }
        self.count += 1;
        match self.name.as_str() {
            "count" => {}
            "sum" | "avg" => match v {
                Value::Int(i) => {
                    self.int_sum = self.int_sum.and_then(|s| s.checked_add(i128::from(*i)));
                    self.float_sum += *i as f64;
                    self.numeric_sum = self
                        .numeric_sum
                        .and_then(|s| s.checked_add(rust_decimal::Decimal::from(*i)));
                }
                Value::Numeric(d) => {
                    self.any_numeric = true;
                    self.float_sum += v.to_f64()?;
                    self.numeric_sum = self.numeric_sum.and_then(|s| s.checked_add(*d));
                }
                other => {
                    self.any_float = true;
                    self.float_sum += other.to_f64()?;
                }
            },
            "min" | "max" => {
                let better = match &self.best {
                    None => true,
                    Some(b) => {
                        let o = expr::compare(v, b)?.unwrap_or(Ordering::Equal);
                        if self.name == "min" {
                            o == Ordering::Less
                        } else {
                            o == Ordering::Greater
                        }
                    }
                };
                if better {
                    self.best = Some(v.clone());
                }
            }
            "string_agg" => {
                let sep = args.get(1).map(Value::to_text).unwrap_or_default();
                let text = v.to_text();
                grew += text.len() + sep.len();
                match &mut self.text {
                    None => self.text = Some(text),
                    Some(t) => {
                        t.push_str(&sep);
                        t.push_str(&text);
                    }
                }
            }
            _ => {
                let b = v.to_bool()?;
                self.flag = Some(match (self.name.as_str(), self.flag) {
                    ("bool_or", Some(f)) => f || b,
                    (_, Some(f)) => f && b,
                    (_, None) => b,
                });
            }
        }
        Ok(grew)
    }

    /// The aggregate's value.
    pub(super) fn finish(self) -> Result<Value> {
        Ok(match self.name.as_str() {
            "count" => Value::Int(self.count),
            _ if self.count == 0 => Value::Null,
            "sum" | "avg" if !self.any_float && (self.any_numeric || self.name == "avg") => {
                let sum = self.numeric_sum.ok_or_else(|| {
                    SqlError::new(
                        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                        "value out of range: numeric overflow",
                    )
                })?;
                if self.name == "sum" {
                    Value::Numeric(sum)
                } else {
                    Value::Numeric(expr::numeric_arithmetic(
                        crate::ast::BinaryOp::Div,
                        sum,
                        rust_decimal::Decimal::from(self.count),
                    )?)
                }
            }
            "sum" if !self.any_float => match self.int_sum.and_then(|s| i64::try_from(s).ok()) {
                Some(s) => Value::Int(s),
                None => {
                    return Err(SqlError::new(
                        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                        "bigint out of range",
                    ));
                }
            },
            "sum" => Value::Float(self.float_sum),
            "avg" => Value::Float(self.float_sum / self.count as f64),
            "min" | "max" => self.best.unwrap_or(Value::Null),
            "string_agg" => self.text.map_or(Value::Null, Value::Text),
            _ => self.flag.map_or(Value::Null, Value::Bool),
        })
    }
}
