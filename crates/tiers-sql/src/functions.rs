//! Scalar functions: strings, numbers, dates and times.
//!
//! Every function takes evaluated arguments. Unless it says otherwise
//! (coalesce, concat, ...), a NULL argument gives NULL, as in PostgreSQL.
//! Unknown names and wrong argument counts are SQLSTATE 42883.

use std::cmp::Ordering;

use crate::error::{Result, SqlError, sqlstate};
use crate::expr::compare;
use crate::value::{MICROS_PER_DAY, Value, civil_from_days, days_from_civil};

/// Days between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch).
const UNIX_TO_PG_DAYS: i64 = 10_957;

fn undefined(what: String) -> SqlError {
    SqlError::new("42883", what)
}

fn arity(name: &str, args: &[Value], range: std::ops::RangeInclusive<usize>) -> Result<()> {
    if range.contains(&args.len()) {
        Ok(())
    } else {
        Err(undefined(format!(
            "function {name} with {} arguments does not exist",
            args.len()
        )))
    }
}

fn out_of_range() -> SqlError {
    SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "integer out of range")
}

fn invalid(message: impl Into<String>) -> SqlError {
    SqlError::new("22023", message)
}

/// Microseconds since 2000-01-01 UTC, now.
pub fn now_micros() -> i64 {
    let since_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    since_unix - UNIX_TO_PG_DAYS * MICROS_PER_DAY
}

/// Calls a scalar function.
pub fn call(name: &str, args: Vec<Value>) -> Result<Value> {
    // Functions that look at NULLs themselves.
    match name {
        "coalesce" => {
            return Ok(args
                .into_iter()
                .find(|v| !v.is_null())
                .unwrap_or(Value::Null));
        }
        "nullif" => {
            arity(name, &args, 2..=2)?;
            let equal = compare(&args[0], &args[1])? == Some(Ordering::Equal);
            return Ok(if equal { Value::Null } else { args[0].clone() });
        }
        "greatest" | "least" => {
            let mut best: Option<Value> = None;
            for v in args.into_iter().filter(|v| !v.is_null()) {
                let better = match &best {
                    None => true,
                    Some(b) => {
                        let o = compare(&v, b)?.unwrap_or(Ordering::Equal);
                        (name == "greatest" && o == Ordering::Greater)
                            || (name == "least" && o == Ordering::Less)
                    }
                };
                if better {
                    best = Some(v);
                }
            }
            return Ok(best.unwrap_or(Value::Null));
        }
        "concat" => return Ok(Value::Text(args.iter().map(Value::to_text).collect())),
        "concat_ws" => {
            arity(name, &args, 1..=usize::MAX)?;
            if args[0].is_null() {
                return Ok(Value::Null);
            }
            let sep = args[0].to_text();
            let parts: Vec<String> = args[1..]
                .iter()
                .filter(|v| !v.is_null())
                .map(Value::to_text)
                .collect();
            return Ok(Value::Text(parts.join(&sep)));
        }
        "now"
        | "current_timestamp"
        | "statement_timestamp"
        | "transaction_timestamp"
        | "clock_timestamp" => {
            arity(name, &args, 0..=0)?;
            return Ok(Value::TimestampTz(now_micros()));
        }
        "current_date" => {
            arity(name, &args, 0..=0)?;
            return Ok(Value::Date(now_micros().div_euclid(MICROS_PER_DAY) as i32));
        }
        "random" => {
            arity(name, &args, 0..=0)?;
            return Ok(Value::Float(random_unit()));
        }
        "pi" => {
            arity(name, &args, 0..=0)?;
            return Ok(Value::Float(std::f64::consts::PI));
        }
        "version" => {
            return Ok(Value::Text(format!(
                "PostgreSQL 15.0 (tiers {}) on Rust",
                env!("CARGO_PKG_VERSION")
            )));
        }
        "current_database" => return Ok(Value::Text("tiers".into())),
        "pg_is_in_recovery" => {
            arity(name, &args, 0..=0)?;
            return Ok(Value::Bool(crate::limits::in_recovery()));
        }
        // psql's catalog queries: one owner, every table visible.
        "pg_get_userbyid" | "current_user" | "session_user" => {
            return Ok(Value::Text("tiers".into()));
        }
        "pg_table_is_visible" => return Ok(Value::Bool(true)),
        "current_schema" => return Ok(Value::Text("public".into())),
        _ => {}
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    match name {
        "lower" | "upper" | "length" | "char_length" | "character_length" | "octet_length"
        | "abs" | "sqrt" | "exp" | "ln" | "sign" | "reverse" | "initcap" | "ceil" | "ceiling"
        | "floor" => arity(name, &args, 1..=1)?,
        "round" | "trunc" | "log" | "btrim" | "ltrim" | "rtrim" | "trim" => {
            arity(name, &args, 1..=2)?
        }
        "substr" | "substring" | "lpad" | "rpad" => arity(name, &args, 2..=3)?,
        "replace" | "split_part" => arity(name, &args, 3..=3)?,
        "strpos" | "left" | "right" | "repeat" | "starts_with" | "power" | "pow" | "mod"
        | "date_trunc" | "date_part" => arity(name, &args, 2..=2)?,
        _ => {}
    }
    let text = |i: usize| args[i].to_text();
    let int = |i: usize| args[i].to_i64();
    let float = |i: usize| args[i].to_f64();
    match name {
        "lower" => Ok(Value::Text(text(0).to_lowercase())),
        "upper" => Ok(Value::Text(text(0).to_uppercase())),
        "initcap" => {
            let mut out = String::new();
            let mut start = true;
            for c in text(0).chars() {
                if c.is_alphanumeric() {
                    if start {
                        out.extend(c.to_uppercase());
                    } else {
                        out.extend(c.to_lowercase());
                    }
                    start = false;
                } else {
                    out.push(c);
                    start = true;
                }
            }
            Ok(Value::Text(out))
        }
        "length" | "char_length" | "character_length" => {
            Ok(Value::Int(text(0).chars().count() as i64))
        }
        "octet_length" => Ok(Value::Int(match &args[0] {
            Value::Bytes(b) => b.len() as i64,
            v => v.to_text().len() as i64,
        })),
        "btrim" | "trim" | "ltrim" | "rtrim" => {
            let s = text(0);
            let set: Vec<char> = if args.len() > 1 {
                text(1).chars().collect()
            } else {
                vec![' ']
            };
            let f = |c: char| set.contains(&c);
            Ok(Value::Text(match name {
                "ltrim" => s.trim_start_matches(f).to_string(),
                "rtrim" => s.trim_end_matches(f).to_string(),
                _ => s.trim_matches(f).to_string(),
            }))
        }
        "substr" | "substring" => {
            let s: Vec<char> = text(0).chars().collect();
            let from = int(1)?;
            let len = args.get(2).map(Value::to_i64).transpose()?;
            if len.is_some_and(|l| l < 0) {
                return Err(SqlError::new(
                    "22011",
                    "negative substring length not allowed",
                ));
            }
            // SQL positions start at 1; a start before 1 eats into the length.
            let end = len.map_or(i64::MAX, |l| from.saturating_add(l));
            let start = from.max(1);
            let take = end.saturating_sub(start).max(0) as usize;
            let skip = (start - 1).min(s.len() as i64) as usize;
            Ok(Value::Text(s.iter().skip(skip).take(take).collect()))
        }
        "replace" => {
            let from = text(1);
            if from.is_empty() {
                return Ok(Value::Text(text(0)));
            }
            Ok(Value::Text(text(0).replace(&from, &text(2))))
        }
        "strpos" => {
            let (s, sub) = (text(0), text(1));
            Ok(Value::Int(match s.find(&sub) {
                Some(byte) => s[..byte].chars().count() as i64 + 1,
                None => 0,
            }))
        }
        "left" | "right" => {
            let s: Vec<char> = text(0).chars().collect();
            let n = int(1)?;
            let len = s.len() as i64;
            let keep = if n >= 0 { n.min(len) } else { (len + n).max(0) } as usize;
            Ok(Value::Text(if name == "left" {
                s[..keep].iter().collect()
            } else {
                s[s.len() - keep..].iter().collect()
            }))
        }
        "repeat" => {
            let n = int(1)?.max(0) as usize;
            let s = text(0);
            if s.len().saturating_mul(n) > 64 << 20 {
                return Err(SqlError::new("54000", "repeat() result is too large"));
            }
            Ok(Value::Text(s.repeat(n)))
        }
        "reverse" => Ok(Value::Text(text(0).chars().rev().collect())),
        "lpad" | "rpad" => {
            let s: Vec<char> = text(0).chars().collect();
            let n = int(1)?.max(0) as usize;
            if n > 64 << 20 {
                return Err(SqlError::new("54000", "padded length is too large"));
            }
            let fill: Vec<char> = if args.len() > 2 {
                text(2).chars().collect()
            } else {
                vec![' ']
            };
            if s.len() >= n || fill.is_empty() {
                return Ok(Value::Text(s.iter().take(n).collect()));
            }
            let pad: String = fill.iter().cycle().take(n - s.len()).collect();
            let s: String = s.iter().collect();
            Ok(Value::Text(if name == "lpad" {
                pad + &s
            } else {
                s + &pad
            }))
        }
        "split_part" => {
            let n = int(2)?;
            if n == 0 {
                return Err(invalid("field position must not be zero"));
            }
            let s = text(0);
            let parts: Vec<&str> = s.split(&text(1)).collect();
            let i = if n > 0 { n - 1 } else { parts.len() as i64 + n };
            Ok(Value::Text(
                usize::try_from(i)
                    .ok()
                    .and_then(|i| parts.get(i))
                    .map_or(String::new(), |p| p.to_string()),
            ))
        }
        "starts_with" => Ok(Value::Bool(text(0).starts_with(&text(1)))),
        "abs" => match &args[0] {
            Value::Int(i) => i.checked_abs().map(Value::Int).ok_or_else(out_of_range),
            Value::Numeric(d) => Ok(Value::Numeric(d.abs())),
            _ => Ok(Value::Float(float(0)?.abs())),
        },
        "sign" => Ok(match &args[0] {
            Value::Int(i) => Value::Int(i.signum()),
            Value::Numeric(d) => Value::Numeric(if d.is_zero() {
                rust_decimal::Decimal::ZERO
            } else if d.is_sign_negative() {
                rust_decimal::Decimal::NEGATIVE_ONE
            } else {
                rust_decimal::Decimal::ONE
            }),
            _ => Value::Float(float(0)?.signum()),
        }),
        "round" | "trunc" => {
            let digits = args.get(1).map(Value::to_i64).transpose()?.unwrap_or(0);
            let scale = 10f64.powi(digits.clamp(-300, 300) as i32);
            match &args[0] {
                Value::Int(i) if digits >= 0 => Ok(Value::Int(*i)),
                Value::Numeric(d) => {
                    use rust_decimal::RoundingStrategy as R;
                    let how = if name == "round" {
                        R::MidpointAwayFromZero
                    } else {
                        R::ToZero
                    };
                    if digits >= 0 {
                        let dp = digits.min(28) as u32;
                        let mut r = d.round_dp_with_strategy(dp, how);
                        r.rescale(dp);
                        Ok(Value::Numeric(r))
                    } else {
                        // Negative digits round to tens, hundreds...
                        let unit = rust_decimal::Decimal::from_i128_with_scale(
                            10i128.pow(digits.unsigned_abs().min(28) as u32),
                            0,
                        );
                        let q = (d / unit).round_dp_with_strategy(0, how);
                        Ok(Value::Numeric((q * unit).trunc()))
                    }
                }
                v => {
                    let x = v.to_f64()? * scale;
                    let r = if name == "round" {
                        x.round()
                    } else {
                        x.trunc()
                    };
                    Ok(Value::Float(r / scale))
                }
            }
        }
        "ceil" | "ceiling" | "floor" => match &args[0] {
            Value::Int(i) => Ok(Value::Int(*i)),
            Value::Numeric(d) => Ok(Value::Numeric(if name == "floor" {
                d.floor()
            } else {
                d.ceil()
            })),
            v => {
                let x = v.to_f64()?;
                Ok(Value::Float(if name == "floor" {
                    x.floor()
                } else {
                    x.ceil()
                }))
            }
        },
        "sqrt" => {
            let x = float(0)?;
            if x < 0.0 {
                return Err(SqlError::new(
                    "2201F",
                    "cannot take square root of a negative number",
                ));
            }
            Ok(Value::Float(x.sqrt()))
        }
        "exp" => Ok(Value::Float(float(0)?.exp())),
        "ln" | "log" => {
            let (base, x) = if args.len() == 2 {
                (Some(float(0)?), float(1)?)
            } else {
                ((name == "log").then_some(10.0), float(0)?)
            };
            if x <= 0.0 {
                return Err(SqlError::new(
                    "2201E",
                    "cannot take logarithm of zero or a negative number",
                ));
            }
            Ok(Value::Float(match base {
                Some(b) => x.ln() / b.ln(),
                None => x.ln(),
            }))
        }
        "power" | "pow" => Ok(Value::Float(float(0)?.powf(float(1)?))),
        "mod" => match (&args[0], &args[1]) {
            (Value::Int(_), Value::Int(0)) => Err(SqlError::new(
                sqlstate::DIVISION_BY_ZERO,
                "division by zero",
            )),
            (Value::Int(a), Value::Int(b)) => Ok(Value::Int(a.wrapping_rem(*b))),
            (Value::Numeric(_), Value::Numeric(_) | Value::Int(_))
            | (Value::Int(_), Value::Numeric(_)) => {
                crate::expr::arithmetic(crate::ast::BinaryOp::Mod, args[0].clone(), args[1].clone())
            }
            _ => Ok(Value::Float(float(0)? % float(1)?)),
        },
        "date_part" => date_part(&text(0), &args[1]),
        "date_trunc" => date_trunc(&text(0), &args[1]),
        _ => Err(undefined(format!("function {name}() does not exist"))),
    }
}

/// A uniform pseudo-random number in [0, 1) (not for cryptography).
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_micros());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A date or timestamp as (microseconds since 2000-01-01, is_date).
fn micros_of(v: &Value) -> Result<i64> {
    match v {
        Value::Date(d) => crate::value::date_micros(*d),
        Value::Timestamp(t) | Value::TimestampTz(t) => Ok(*t),
        Value::Text(s) => crate::value::parse_timestamp(s, true),
        other => Err(undefined(format!(
            "date_part/date_trunc need a date or timestamp, not {}",
            other.to_text()
        ))),
    }
}

/// `extract(field FROM x)` / `date_part('field', x)`.
fn date_part(field: &str, v: &Value) -> Result<Value> {
    let t = micros_of(v)?;
    let days = t.div_euclid(MICROS_PER_DAY);
    let in_day = t.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days + UNIX_TO_PG_DAYS);
    let value = match field.to_ascii_lowercase().as_str() {
        "year" => y as f64,
        "month" => m as f64,
        "day" => d as f64,
        "hour" => (in_day / 3_600_000_000) as f64,
        "minute" => (in_day / 60_000_000 % 60) as f64,
        "second" => (in_day % 60_000_000) as f64 / 1e6,
        "dow" => (days + 6).rem_euclid(7) as f64,
        "doy" => (days + UNIX_TO_PG_DAYS - days_from_civil(y, 1, 1) + 1) as f64,
        "quarter" => ((m - 1) / 3 + 1) as f64,
        "week" => {
            // ISO week: the week with the year's first Thursday is week 1.
            let wd = (days + 5).rem_euclid(7); // Monday = 0
            let thursday = days + UNIX_TO_PG_DAYS - wd + 3;
            let (ty, _, _) = civil_from_days(thursday);
            ((thursday - days_from_civil(ty, 1, 1)) / 7 + 1) as f64
        }
        "epoch" => (i128::from(t) + i128::from(UNIX_TO_PG_DAYS * MICROS_PER_DAY)) as f64 / 1e6,
        other => {
            return Err(invalid(format!(
                "unit \"{other}\" not recognized for date_part/extract"
            )));
        }
    };
    Ok(Value::Float(value))
}

/// `date_trunc('unit', x)`.
fn date_trunc(unit: &str, v: &Value) -> Result<Value> {
    let t = micros_of(v)?;
    let days = t.div_euclid(MICROS_PER_DAY);
    let in_day = t.rem_euclid(MICROS_PER_DAY);
    let (y, m, _) = civil_from_days(days + UNIX_TO_PG_DAYS);
    let day_start = |d: i64| d * MICROS_PER_DAY;
    let out = match unit.to_ascii_lowercase().as_str() {
        "year" => day_start(days_from_civil(y, 1, 1) - UNIX_TO_PG_DAYS),
        "quarter" => day_start(days_from_civil(y, (m - 1) / 3 * 3 + 1, 1) - UNIX_TO_PG_DAYS),
        "month" => day_start(days_from_civil(y, m, 1) - UNIX_TO_PG_DAYS),
        "week" => day_start(days - (days + 5).rem_euclid(7)),
        "day" => day_start(days),
        "hour" => day_start(days) + in_day / 3_600_000_000 * 3_600_000_000,
        "minute" => day_start(days) + in_day / 60_000_000 * 60_000_000,
        "second" => day_start(days) + in_day / 1_000_000 * 1_000_000,
        other => {
            return Err(invalid(format!(
                "unit \"{other}\" not recognized for date_trunc"
            )));
        }
    };
    Ok(match v {
        Value::Timestamp(_) => Value::Timestamp(out),
        _ => Value::TimestampTz(out),
    })
}
