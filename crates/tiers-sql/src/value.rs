//! SQL values: what a column holds, with PostgreSQL's text formats for
//! input and output and its ordering rules.
//!
//! Dates and timestamps count from PostgreSQL's epoch, 2000-01-01: dates in
//! days, timestamps in microseconds (timestamptz in UTC).

use std::cmp::Ordering;

use rust_decimal::Decimal;
use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use tiers_storage::keyenc::KeyValue;

use crate::error::{Result, SqlError, sqlstate};

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A date as microseconds since 2000-01-01 (its midnight), or 22008 for a
/// date too far out for a timestamp (beyond about 292,000 years).
pub fn date_micros(days: i32) -> Result<i64> {
    i64::from(days)
        .checked_mul(MICROS_PER_DAY)
        .ok_or_else(timestamp_out_of_range)
}

/// 22008: a timestamp beyond what 64-bit microseconds hold.
pub fn timestamp_out_of_range() -> SqlError {
    SqlError::new(
        sqlstate::DATETIME_FIELD_OVERFLOW,
        "timestamp out of range: tiers keeps timestamps as 64-bit microseconds since \
         2000-01-01 (about 292,000 years either way)",
    )
}
/// Most significant digits a `numeric` holds (the 96-bit mantissa of
/// `rust_decimal`; PostgreSQL allows far more).
pub const NUMERIC_MAX_DIGITS: u8 = 28;

/// Days from 1970-01-01 to 2000-01-01.
const UNIX_TO_PG_DAYS: i64 = 10_957;

/// A SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any integer type.
    Int(i64),
    /// `real` or `double precision`.
    Float(f64),
    /// `text`, `varchar`, `char`.
    Text(String),
    /// `bytea`.
    Bytes(Vec<u8>),
    /// Days since 2000-01-01.
    Date(i32),
    /// Microseconds since 2000-01-01 00:00:00.
    Timestamp(i64),
    /// Microseconds since 2000-01-01 00:00:00 UTC.
    TimestampTz(i64),
    /// `numeric`: an exact decimal, keeping its scale (`1.50` stays `1.50`).
    Numeric(Decimal),
}

fn numeric_out_of_range() -> SqlError {
    SqlError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        format!(
            "value out of range for type numeric (at most {NUMERIC_MAX_DIGITS} significant digits)"
        ),
    )
}

/// Parses numeric text: digits with an optional point and exponent.
pub fn parse_numeric(s: &str) -> Result<Decimal> {
    let t = s.trim();
    let plain = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+'));
    let looks_numeric = !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
        && t.bytes().any(|b| b.is_ascii_digit());
    if !looks_numeric {
        return Err(bad_text("numeric", s));
    }
    let parsed = if plain {
        Decimal::from_str_exact(t)
    } else {
        Decimal::from_scientific(t)
    };
    parsed.map_err(|e| match e {
        rust_decimal::Error::ExceedsMaximumPossibleValue
        | rust_decimal::Error::LessThanMinimumPossibleValue
        | rust_decimal::Error::Underflow
        | rust_decimal::Error::ScaleExceedsMaximumPrecision(_) => numeric_out_of_range(),
        _ => bad_text("numeric", s),
    })
}

/// Order-preserving bytes of a decimal (for index keys): a class byte
/// (negative, zero, positive), the decimal exponent, then the significant
/// digits; negatives complemented so that larger magnitudes sort first.
fn numeric_key(d: Decimal) -> Vec<u8> {
    if d.is_zero() {
        return vec![2];
    }
    let n = d.normalize();
    let digits = n.mantissa().unsigned_abs().to_string();
    // value = 0.digits × 10^exp
    let exp = digits.len() as i64 - i64::from(n.scale());
    let digits = digits.trim_end_matches('0');
    let mut out = Vec::with_capacity(digits.len() + 3);
    let negative = n.is_sign_negative();
    let flip = |b: u8| if negative { 255 - b } else { b };
    out.push(if negative { 1 } else { 3 });
    out.push(flip((exp + 64) as u8));
    out.extend(digits.bytes().map(|b| flip(b - b'0' + 1)));
    out.push(flip(0));
    out
}

fn bad_text(ty: &str, s: &str) -> SqlError {
    SqlError::new(
        sqlstate::INVALID_TEXT_REPRESENTATION,
        format!("invalid input syntax for type {ty}: \"{s}\""),
    )
}

impl Value {
    /// Whether this is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// As a boolean (from booleans and PostgreSQL's boolean words).
    pub fn to_bool(&self) -> Result<bool> {
        match self {
            Value::Bool(b) => Ok(*b),
            Value::Int(i) => Ok(*i != 0),
            Value::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "yes" | "y" | "on" | "1" => Ok(true),
                "f" | "false" | "no" | "n" | "off" | "0" => Ok(false),
                _ => Err(bad_text("boolean", s)),
            },
            other => Err(mismatch(other, "boolean")),
        }
    }

    /// As an exact decimal (integers exactly, floats to their shortest
    /// round-trip digits, text parsed).
    pub fn to_decimal(&self) -> Result<Decimal> {
        match self {
            Value::Numeric(d) => Ok(*d),
            Value::Int(i) => Ok(Decimal::from(*i)),
            Value::Float(f) => {
                if !f.is_finite() {
                    return Err(SqlError::new(
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        format!(
                            "cannot convert {} to numeric: tiers' numeric has no NaN or infinity",
                            format_float(*f)
                        ),
                    ));
                }
                parse_numeric(&format_float(*f))
                    .or_else(|_| Decimal::from_f64(*f).ok_or_else(numeric_out_of_range))
            }
            Value::Bool(b) => Ok(Decimal::from(i64::from(*b))),
            Value::Text(s) => parse_numeric(s),
            other => Err(mismatch(other, "numeric")),
        }
    }

    /// As an integer (floats are rounded half away from zero, as PostgreSQL does).
    pub fn to_i64(&self) -> Result<i64> {
        match self {
            Value::Int(i) => Ok(*i),
            Value::Numeric(d) => d
                .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
                .to_i64()
                .ok_or_else(|| {
                    SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "bigint out of range")
                }),
            Value::Bool(b) => Ok(i64::from(*b)),
            Value::Float(f) => {
                let r = f.round();
                if !r.is_finite() || r < i64::MIN as f64 || r >= i64::MAX as f64 {
                    return Err(SqlError::new(
                        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
                        "bigint out of range",
                    ));
                }
                Ok(r as i64)
            }
            Value::Text(s) => s.trim().parse::<i64>().map_err(|_| bad_text("integer", s)),
            other => Err(mismatch(other, "integer")),
        }
    }

    /// As a float.
    pub fn to_f64(&self) -> Result<f64> {
        match self {
            Value::Float(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            Value::Numeric(d) => d.to_f64().ok_or_else(numeric_out_of_range),
            Value::Text(s) => {
                let t = s.trim();
                match t.to_ascii_lowercase().as_str() {
                    "nan" => Ok(f64::NAN),
                    "infinity" | "inf" | "+infinity" => Ok(f64::INFINITY),
                    "-infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                    _ => t
                        .parse::<f64>()
                        .map_err(|_| bad_text("double precision", s)),
                }
            }
            other => Err(mismatch(other, "double precision")),
        }
    }

    /// The PostgreSQL text representation (what `psql` prints). NULL is
    /// the empty string here; the wire protocol sends NULL separately.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => if *b { "t" } else { "f" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format_float(*f),
            Value::Numeric(d) => d.to_string(),
            Value::Text(s) => s.clone(),
            Value::Bytes(b) => {
                let mut s = String::with_capacity(2 + b.len() * 2);
                s.push_str("\\x");
                for byte in b {
                    s.push_str(&format!("{byte:02x}"));
                }
                s
            }
            Value::Date(d) => format_date(*d),
            Value::Timestamp(t) => format_timestamp(*t),
            Value::TimestampTz(t) => format!("{}+00", format_timestamp(*t)),
        }
    }

    /// The order-preserving key form, for primary keys and indexes.
    pub fn to_key(&self) -> KeyValue {
        match self {
            Value::Null => KeyValue::Null,
            Value::Bool(b) => KeyValue::Bool(*b),
            Value::Int(i) => KeyValue::Int(*i),
            Value::Float(f) => KeyValue::Float(*f),
            Value::Numeric(d) => KeyValue::Bytes(numeric_key(*d)),
            Value::Text(s) => KeyValue::Text(s.clone()),
            Value::Bytes(b) => KeyValue::Bytes(b.clone()),
            Value::Date(d) => KeyValue::Int(i64::from(*d)),
            Value::Timestamp(t) | Value::TimestampTz(t) => KeyValue::Int(*t),
        }
    }

    /// SQL comparison: None when either side is NULL (the result is unknown).
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        Some(match (self, other) {
            (Null, _) | (_, Null) => return None,
            (Int(a), Int(b)) => a.cmp(b),
            (Numeric(a), Numeric(b)) => a.cmp(b),
            (Numeric(a), Int(b)) => a.cmp(&Decimal::from(*b)),
            (Int(a), Numeric(b)) => Decimal::from(*a).cmp(b),
            (Numeric(a), Float(b)) => a.to_f64().unwrap_or(f64::NAN).total_cmp(b),
            (Float(a), Numeric(b)) => a.total_cmp(&b.to_f64().unwrap_or(f64::NAN)),
            (Int(a), Float(b)) => (*a as f64).total_cmp(b),
            (Float(a), Int(b)) => a.total_cmp(&(*b as f64)),
            // PostgreSQL orders NaN above every other float and equal to itself.
            (Float(a), Float(b)) => match (a.is_nan(), b.is_nan()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
            },
            (Bool(a), Bool(b)) => a.cmp(b),
            (Text(a), Text(b)) => a.cmp(b),
            (Bytes(a), Bytes(b)) => a.cmp(b),
            (Date(a), Date(b)) => a.cmp(b),
            (Timestamp(a) | TimestampTz(a), Timestamp(b) | TimestampTz(b)) => a.cmp(b),
            (Date(a), Timestamp(b) | TimestampTz(b)) => {
                (i128::from(*a) * i128::from(MICROS_PER_DAY)).cmp(&i128::from(*b))
            }
            (Timestamp(a) | TimestampTz(a), Date(b)) => {
                i128::from(*a).cmp(&(i128::from(*b) * i128::from(MICROS_PER_DAY)))
            }
            // Mixed kinds compare by their text, as a last resort.
            (a, b) => a.to_text().cmp(&b.to_text()),
        })
    }
}

fn mismatch(v: &Value, ty: &str) -> SqlError {
    SqlError::new(
        sqlstate::DATATYPE_MISMATCH,
        format!("cannot use {} as {ty}", v.to_text()),
    )
}

/// Formats a float as PostgreSQL does (shortest round-trip digits).
fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f == f64::INFINITY {
        "Infinity".into()
    } else if f == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        let s = format!("{f}");
        if s.contains('e') { format!("{f:e}") } else { s }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn bad_datetime(ty: &str, s: &str) -> SqlError {
    SqlError::new(
        sqlstate::INVALID_DATETIME_FORMAT,
        format!("invalid input syntax for type {ty}: \"{s}\""),
    )
}

/// Parses `YYYY-MM-DD` into days since 2000-01-01.
pub fn parse_date(s: &str) -> Result<i32> {
    let t = s.trim();
    let mut parts = t.splitn(3, '-');
    let mut num = |max_len: usize| -> Option<i64> {
        let p = parts.next()?;
        (!p.is_empty() && p.len() <= max_len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let (Some(y), Some(m), Some(d)) = (num(6), num(2), num(2)) else {
        return Err(bad_datetime("date", s));
    };
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(SqlError::new(
            sqlstate::INVALID_DATETIME_FORMAT,
            format!("date/time field value out of range: \"{s}\""),
        ));
    }
    let days = days_from_civil(y, m, d) - UNIX_TO_PG_DAYS;
    i32::try_from(days).map_err(|_| bad_datetime("date", s))
}

/// Parses `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]]` with, for timestamptz, an
/// optional `Z` or `±HH[:MM]` offset (UTC when absent). Returns microseconds
/// since 2000-01-01 (UTC for timestamptz).
pub fn parse_timestamp(s: &str, with_tz: bool) -> Result<i64> {
    let ty = if with_tz {
        "timestamp with time zone"
    } else {
        "timestamp"
    };
    let t = s.trim();
    let (date, rest) = match t.find([' ', 'T']) {
        Some(i) => (&t[..i], t[i + 1..].trim()),
        None => (t, ""),
    };
    let days = i64::from(parse_date(date).map_err(|_| bad_datetime(ty, s))?);
    let (time, offset_secs) = split_offset(rest, with_tz).ok_or_else(|| bad_datetime(ty, s))?;
    let mut micros = 0i64;
    if !time.is_empty() {
        let mut hms = time.split(':');
        let h: i64 = hms
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad_datetime(ty, s))?;
        let m: i64 = hms
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad_datetime(ty, s))?;
        let sec = hms.next().unwrap_or("0");
        if hms.next().is_some() || !(0..24).contains(&h) || !(0..60).contains(&m) {
            return Err(bad_datetime(ty, s));
        }
        let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
        let whole: i64 = whole.parse().map_err(|_| bad_datetime(ty, s))?;
        if !(0..60).contains(&whole) || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad_datetime(ty, s));
        }
        let mut frac_micros = 0i64;
        for (i, b) in frac.bytes().take(6).enumerate() {
            frac_micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
        }
        micros = ((h * 60 + m) * 60 + whole) * 1_000_000 + frac_micros;
    }
    days.checked_mul(MICROS_PER_DAY)
        .and_then(|t| t.checked_add(micros))
        .and_then(|t| t.checked_sub(offset_secs * 1_000_000))
        .ok_or_else(timestamp_out_of_range)
}

fn split_offset(rest: &str, with_tz: bool) -> Option<(&str, i64)> {
    if let Some(t) = rest.strip_suffix('Z').or_else(|| rest.strip_suffix("UTC")) {
        return with_tz.then_some((t.trim(), 0)).or(Some((t.trim(), 0)));
    }
    if let Some(i) = rest.rfind(['+', '-']) {
        let (time, off) = (&rest[..i], &rest[i..]);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let digits = &off[1..];
        let (h, m) = digits.split_once(':').unwrap_or((digits, "0"));
        let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
        // Without time zone, PostgreSQL ignores an offset.
        let secs = if with_tz {
            sign * (h * 3600 + m * 60)
        } else {
            0
        };
        return Some((time.trim(), secs));
    }
    Some((rest, 0))
}

fn format_date(d: i32) -> String {
    let (y, m, day) = civil_from_days(i64::from(d) + UNIX_TO_PG_DAYS);
    if y > 0 {
        format!("{y:04}-{m:02}-{day:02}")
    } else {
        format!("{:04}-{m:02}-{day:02} BC", 1 - y)
    }
}

fn format_timestamp(t: i64) -> String {
    let days = t.div_euclid(MICROS_PER_DAY);
    let micros = t.rem_euclid(MICROS_PER_DAY);
    let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
    let mut s = format!(
        "{} {:02}:{:02}:{:02}",
        format_date(days as i32),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

/// Parses bytea input: `\x` hex format or raw text.
pub fn parse_bytea(s: &str) -> Result<Vec<u8>> {
    let Some(hex) = s.strip_prefix("\\x") else {
        return Ok(s.as_bytes().to_vec());
    };
    if hex.len() % 2 != 0 {
        return Err(bad_text("bytea", s));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad_text("bytea", s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_text() {
        for s in [
            "2000-01-01",
            "1999-12-31",
            "2024-02-29",
            "1970-01-01",
            "0001-01-01",
            "9999-12-31",
        ] {
            let d = parse_date(s).unwrap();
            assert_eq!(Value::Date(d).to_text(), s);
        }
        assert_eq!(parse_date("2000-01-01").unwrap(), 0);
        assert_eq!(parse_date("2000-01-02").unwrap(), 1);
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("2023-13-01").is_err());
        assert!(parse_date("yesterday").is_err());
    }

    #[test]
    fn timestamps_parse_with_fractions_and_offsets() {
        let t = parse_timestamp("2026-11-28 07:30:15.25", false).unwrap();
        assert_eq!(Value::Timestamp(t).to_text(), "2026-11-28 07:30:15.25");
        let z = parse_timestamp("2026-11-28T09:30:15+02:00", true).unwrap();
        assert_eq!(Value::TimestampTz(z).to_text(), "2026-11-28 07:30:15+00");
        assert!(parse_timestamp("2026-11-28 25:00", false).is_err());
    }

    #[test]
    fn comparisons_follow_sql_rules() {
        assert_eq!(Value::Int(1).sql_cmp(&Value::Null), None);
        assert_eq!(
            Value::Int(2).sql_cmp(&Value::Float(1.5)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            Value::Float(f64::NAN).sql_cmp(&Value::Float(f64::INFINITY)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            Value::Text("a".into()).sql_cmp(&Value::Text("b".into())),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn bytea_hex_round_trips() {
        let v = parse_bytea("\\x00ff10").unwrap();
        assert_eq!(v, vec![0, 255, 16]);
        assert_eq!(Value::Bytes(v).to_text(), "\\x00ff10");
        assert!(parse_bytea("\\x0").is_err());
    }
}
