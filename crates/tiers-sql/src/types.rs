//! SQL data types: their PostgreSQL names and type OIDs, and the
//! assignment rules (range and length checks) applied when a value is
//! stored in a column of the type.

use serde::{Deserialize, Serialize};

use crate::error::{Result, SqlError, sqlstate};
use crate::value::Value;

/// A column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataType {
    /// `boolean`
    Bool,
    /// `smallint` (16-bit)
    Int2,
    /// `integer` (32-bit)
    Int4,
    /// `bigint` (64-bit)
    Int8,
    /// `real` (32-bit float)
    Float4,
    /// `double precision`
    Float8,
    /// `text`
    Text,
    /// `varchar(n)`; None = unlimited
    Varchar(Option<u32>),
    /// `char(n)`, blank-padded
    Char(u32),
    /// `bytea`
    Bytea,
    /// `date`
    Date,
    /// `timestamp` (without time zone)
    Timestamp,
    /// `timestamptz` (stored as UTC)
    TimestampTz,
    /// `numeric(precision, scale)`, or `numeric` (None): exact decimal, up to
    /// [`crate::value::NUMERIC_MAX_DIGITS`] significant digits.
    Numeric(Option<(u8, u8)>),
}

impl DataType {
    /// The PostgreSQL type OID, which drivers use to decode values.
    pub fn oid(self) -> u32 {
        match self {
            DataType::Bool => 16,
            DataType::Int2 => 21,
            DataType::Int4 => 23,
            DataType::Int8 => 20,
            DataType::Float4 => 700,
            DataType::Float8 => 701,
            DataType::Text => 25,
            DataType::Varchar(_) => 1043,
            DataType::Char(_) => 1042,
            DataType::Bytea => 17,
            DataType::Date => 1082,
            DataType::Timestamp => 1114,
            DataType::TimestampTz => 1184,
            DataType::Numeric(_) => 1700,
        }
    }

    /// The type's name as PostgreSQL prints it.
    pub fn name(self) -> String {
        match self {
            DataType::Bool => "boolean".into(),
            DataType::Int2 => "smallint".into(),
            DataType::Int4 => "integer".into(),
            DataType::Int8 => "bigint".into(),
            DataType::Float4 => "real".into(),
            DataType::Float8 => "double precision".into(),
            DataType::Text => "text".into(),
            DataType::Varchar(None) => "character varying".into(),
            DataType::Varchar(Some(n)) => format!("character varying({n})"),
            DataType::Char(n) => format!("character({n})"),
            DataType::Bytea => "bytea".into(),
            DataType::Date => "date".into(),
            DataType::Timestamp => "timestamp without time zone".into(),
            DataType::TimestampTz => "timestamp with time zone".into(),
            DataType::Numeric(None) => "numeric".into(),
            DataType::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
        }
    }

    /// Converts `v` for storage in a column of this type (PostgreSQL's
    /// assignment cast): numbers are range-checked, strings length-checked,
    /// text is parsed. NULL stays NULL.
    pub fn assign(self, v: Value) -> Result<Value> {
        if v.is_null() {
            return Ok(Value::Null);
        }
        match self {
            DataType::Bool => v.to_bool().map(Value::Bool),
            DataType::Int2 => int_in_range(v, i16::MIN.into(), i16::MAX.into(), "smallint"),
            DataType::Int4 => int_in_range(v, i32::MIN.into(), i32::MAX.into(), "integer"),
            DataType::Int8 => int_in_range(v, i64::MIN, i64::MAX, "bigint"),
            DataType::Float4 => {
                let f = v.to_f64()?;
                if f.is_finite() && (f as f32).is_infinite() {
                    return Err(SqlError::new(
                        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                        format!("value {f} is out of range for type real"),
                    ));
                }
                Ok(Value::Float(f64::from(f as f32)))
            }
            DataType::Float8 => v.to_f64().map(Value::Float),
            DataType::Text => Ok(Value::Text(v.to_text())),
            DataType::Varchar(limit) => {
                let s = v.to_text();
                if let Some(n) = limit
                    && s.chars().count() > n as usize
                {
                    // PostgreSQL trims trailing spaces that would not fit.
                    let trimmed = s.trim_end_matches(' ');
                    if trimmed.chars().count() > n as usize {
                        return Err(too_long(n, "character varying"));
                    }
                    return Ok(Value::Text(s.chars().take(n as usize).collect()));
                }
                Ok(Value::Text(s))
            }
            DataType::Char(n) => {
                let s = v.to_text();
                let len = s.chars().count();
                if len > n as usize {
                    if s.trim_end_matches(' ').chars().count() > n as usize {
                        return Err(too_long(n, "character"));
                    }
                    return Ok(Value::Text(s.chars().take(n as usize).collect()));
                }
                let mut padded = s;
                padded.extend(std::iter::repeat_n(' ', n as usize - len));
                Ok(Value::Text(padded))
            }
            DataType::Bytea => match v {
                Value::Bytes(b) => Ok(Value::Bytes(b)),
                other => crate::value::parse_bytea(&other.to_text()).map(Value::Bytes),
            },
            DataType::Date => match v {
                Value::Date(d) => Ok(Value::Date(d)),
                Value::Timestamp(t) | Value::TimestampTz(t) => Ok(Value::Date(
                    t.div_euclid(crate::value::MICROS_PER_DAY) as i32,
                )),
                other => crate::value::parse_date(&other.to_text()).map(Value::Date),
            },
            DataType::Timestamp => match v {
                Value::Timestamp(t) | Value::TimestampTz(t) => Ok(Value::Timestamp(t)),
                Value::Date(d) => crate::value::date_micros(d).map(Value::Timestamp),
                other => {
                    crate::value::parse_timestamp(&other.to_text(), false).map(Value::Timestamp)
                }
            },
            DataType::TimestampTz => match v {
                Value::Timestamp(t) | Value::TimestampTz(t) => Ok(Value::TimestampTz(t)),
                Value::Date(d) => crate::value::date_micros(d).map(Value::TimestampTz),
                other => {
                    crate::value::parse_timestamp(&other.to_text(), true).map(Value::TimestampTz)
                }
            },
            DataType::Numeric(spec) => {
                let d = v.to_decimal()?;
                match spec {
                    None => Ok(Value::Numeric(d)),
                    Some((p, s)) => fit_numeric(d, p, s).map(Value::Numeric),
                }
            }
        }
    }
}

/// Rounds `d` to `scale` digits after the point (half away from zero, as
/// PostgreSQL does) and checks it has at most `precision - scale` before it.
fn fit_numeric(
    d: rust_decimal::Decimal,
    precision: u8,
    scale: u8,
) -> Result<rust_decimal::Decimal> {
    use rust_decimal::RoundingStrategy;
    let mut r = d.round_dp_with_strategy(u32::from(scale), RoundingStrategy::MidpointAwayFromZero);
    r.rescale(u32::from(scale));
    let whole_digits = r
        .trunc()
        .abs()
        .mantissa()
        .to_string()
        .trim_start_matches('0')
        .len();
    if whole_digits > usize::from(precision - scale) {
        return Err(SqlError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!(
                "numeric field overflow: a field with precision {precision}, scale {scale} must \
                 round to an absolute value less than 10^{}",
                precision - scale
            ),
        ));
    }
    Ok(r)
}

fn too_long(n: u32, ty: &str) -> SqlError {
    SqlError::new(
        sqlstate::STRING_DATA_RIGHT_TRUNCATION,
        format!("value too long for type {ty}({n})"),
    )
}

fn int_in_range(v: Value, min: i64, max: i64, ty: &str) -> Result<Value> {
    let i = v.to_i64()?;
    if i < min || i > max {
        return Err(SqlError::new(
            sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
            format!("{ty} out of range"),
        ));
    }
    Ok(Value::Int(i))
}
