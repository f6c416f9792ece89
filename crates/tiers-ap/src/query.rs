//! SQL with named parameters, bound safely, and rows turned into JSON.
//!
//! Routes write `SELECT * FROM posts WHERE id = :id`. [`compile`] turns the
//! names into `$1, $2...` (skipping string literals, quoted identifiers,
//! comments and `::` casts), so values are always sent as bind parameters
//! and never spliced into SQL text: SQL injection is impossible by
//! construction. Values are sent in PostgreSQL's text format and typed by
//! the server, exactly as psql does, so one value works for any column
//! type. Results are decoded from the binary format by column type into
//! JSON with proper types.

use std::error::Error;

use serde_json::{Map, Number, Value};
use tokio_postgres::Row;
use tokio_postgres::types::{Format, FromSql, IsNull, ToSql, Type, to_sql_checked};

/// SQL with its named parameters replaced by positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedSql {
    /// The SQL with `$1...`.
    pub text: String,
    /// The name behind each position (`names[0]` is `$1`).
    pub names: Vec<String>,
}

/// Replaces `:name` with `$n` (the same name, the same position).
pub fn compile(sql: &str) -> Result<NamedSql, String> {
    let b = sql.as_bytes();
    let mut text = String::with_capacity(sql.len());
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let quote = b[i];
                i += 1;
                while i < b.len() {
                    if b[i] == quote {
                        if b.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Err("unterminated quote".into());
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = sql[i + 2..].find("*/").ok_or("unterminated /* comment")?;
                i += 2 + end + 2;
            }
            b':' if b.get(i + 1) == Some(&b':') => i += 2,
            b':' if b
                .get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') =>
            {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                let name = &sql[start..end];
                let position = match names.iter().position(|n| n == name) {
                    Some(p) => p + 1,
                    None => {
                        names.push(name.to_string());
                        names.len()
                    }
                };
                text.push_str(&sql[copied..i]);
                text.push_str(&format!("${position}"));
                copied = end;
                i = end;
            }
            _ => i += 1,
        }
    }
    text.push_str(&sql[copied..]);
    Ok(NamedSql { text, names })
}

/// A parameter value from a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// SQL NULL.
    Null,
    /// Sent as its text; the server gives it the column's type.
    Text(String),
}

impl Param {
    /// A value from JSON (strings as they are, numbers and booleans as
    /// their text, null as NULL; arrays and objects as JSON text).
    pub fn from_json(v: &Value) -> Param {
        match v {
            Value::Null => Param::Null,
            Value::String(s) => Param::Text(s.clone()),
            Value::Bool(b) => Param::Text(b.to_string()),
            Value::Number(n) => Param::Text(n.to_string()),
            other => Param::Text(other.to_string()),
        }
    }
}

impl ToSql for Param {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Text(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// One cell, decoded from the binary format into JSON by its type.
struct Cell(Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Cell, Box<dyn Error + Sync + Send>> {
        let v = match *ty {
            Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::from(i16::from_sql(ty, raw)?),
            Type::INT4 => Value::from(i32::from_sql(ty, raw)?),
            Type::INT8 => Value::from(i64::from_sql(ty, raw)?),
            Type::OID => Value::from(u32::from_sql(ty, raw)?),
            Type::FLOAT4 => float(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => float(f64::from_sql(ty, raw)?),
            Type::TIMESTAMP => Value::String(timestamp(i64::from_sql(&Type::INT8, raw)?, "")),
            Type::TIMESTAMPTZ => Value::String(timestamp(i64::from_sql(&Type::INT8, raw)?, "Z")),
            Type::DATE => Value::String(date(i32::from_sql(&Type::INT4, raw)?)),
            Type::NUMERIC => Value::String(numeric(raw)?),
            Type::BYTEA => Value::String(format!(
                "\\x{}",
                raw.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )),
            Type::JSON => serde_json::from_slice(raw)?,
            Type::JSONB => serde_json::from_slice(raw.get(1..).unwrap_or_default())?,
            _ => Value::String(String::from_utf8_lossy(raw).into_owned()),
        };
        Ok(Cell(v))
    }

    fn from_sql_null(_ty: &Type) -> Result<Cell, Box<dyn Error + Sync + Send>> {
        Ok(Cell(Value::Null))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

fn float(f: f64) -> Value {
    // JSON has no NaN or infinities; send those as strings, as PostgREST does.
    Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
}

/// Days since 2000-01-01 → `YYYY-MM-DD`.
fn date(days: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(days) + 10_957);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Microseconds since 2000-01-01 → ISO 8601.
fn timestamp(micros: i64, suffix: &str) -> String {
    if micros == i64::MAX {
        return "infinity".into();
    }
    if micros == i64::MIN {
        return "-infinity".into();
    }
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days + 10_957);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if frac != 0 {
        let f = format!("{frac:06}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push_str(suffix);
    out
}

/// Howard Hinnant's civil_from_days (days since 1970-01-01).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// PostgreSQL's binary NUMERIC (base-10000 digits) → decimal text.
fn numeric(raw: &[u8]) -> Result<String, Box<dyn Error + Sync + Send>> {
    let word = |i: usize| -> Result<i16, Box<dyn Error + Sync + Send>> {
        let b = raw.get(i * 2..i * 2 + 2).ok_or("short numeric")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<i16> = (0..ndigits as usize)
        .map(|i| word(4 + i))
        .collect::<Result<_, _>>()?;
    let mut int_part = String::new();
    for w in 0..=weight.max(-1) {
        let d = digits.get(w as usize).copied().unwrap_or(0);
        if int_part.is_empty() {
            if d != 0 {
                int_part = d.to_string();
            }
        } else {
            int_part.push_str(&format!("{d:04}"));
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    let mut frac = String::new();
    let mut k = weight as i32 + 1;
    while (frac.len() as i32) < i32::from(dscale) {
        let d = if k < 0 {
            0
        } else {
            digits.get(k as usize).copied().unwrap_or(0)
        };
        frac.push_str(&format!("{d:04}"));
        k += 1;
    }
    frac.truncate(dscale.max(0) as usize);
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    out.push_str(&int_part);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(&frac);
    }
    Ok(out)
}

/// The most row data (as the database sends it) one response may carry:
/// rows are read one at a time, and a result bigger than this is refused
/// instead of being held in memory whole.
pub const MAX_RESPONSE_BYTES: usize = 32 << 20;

/// Why [`collect_json`] stopped.
#[derive(Debug)]
pub enum CollectError {
    /// The database failed.
    Db(tokio_postgres::Error),
    /// More than [`MAX_RESPONSE_BYTES`] of row data; `rows` were read.
    TooLarge {
        /// Rows read before the limit.
        rows: usize,
    },
}

/// Reads a result row by row into JSON objects, within `max_bytes` of row
/// data. Dropping the stream early makes the connection discard the rest.
pub async fn collect_json(
    rows: tokio_postgres::RowStream,
    max_bytes: usize,
) -> Result<Vec<Value>, CollectError> {
    use futures::StreamExt;
    let mut rows = std::pin::pin!(rows);
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next().await {
        let row = row.map_err(CollectError::Db)?;
        for i in 0..row.len() {
            let RawLen(n) = row.try_get(i).map_err(CollectError::Db)?;
            bytes += n;
        }
        if bytes > max_bytes {
            return Err(CollectError::TooLarge { rows: out.len() });
        }
        out.push(Value::Object(row_to_json(&row).map_err(CollectError::Db)?));
    }
    Ok(out)
}

/// The size of one cell as sent, whatever its type.
struct RawLen(usize);

impl<'a> FromSql<'a> for RawLen {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<RawLen, Box<dyn Error + Sync + Send>> {
        Ok(RawLen(raw.len()))
    }

    fn from_sql_null(_ty: &Type) -> Result<RawLen, Box<dyn Error + Sync + Send>> {
        Ok(RawLen(0))
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// A row as a JSON object keyed by column name.
pub fn row_to_json(row: &Row) -> Result<Map<String, Value>, tokio_postgres::Error> {
    let mut obj = Map::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let Cell(v) = row.try_get(i)?;
        obj.insert(col.name().to_string(), v);
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_positions_outside_quotes_comments_and_casts() {
        let c = compile(
            "SELECT ':x', \":y\", a::text /* :z */ FROM t -- :w\nWHERE id = :id AND (:id IS NULL OR b = :b_2)",
        )
        .unwrap();
        assert_eq!(c.names, ["id", "b_2"]);
        assert!(
            c.text.ends_with("WHERE id = $1 AND ($1 IS NULL OR b = $2)"),
            "{}",
            c.text
        );
        assert!(c.text.contains("':x', \":y\", a::text /* :z */"));
        assert_eq!(compile("SELECT 'it''s :no'").unwrap().names.len(), 0);
        assert!(compile("SELECT 'open").is_err());
        assert!(compile("SELECT /* open").is_err());
    }

    #[test]
    fn dates_times_and_numerics_decode() {
        assert_eq!(date(0), "2000-01-01");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(date(9190), "2025-02-28");
        assert_eq!(timestamp(0, "Z"), "2000-01-01T00:00:00Z");
        assert_eq!(
            timestamp(86_400_000_000 + 1_500_000, ""),
            "2000-01-02T00:00:01.5"
        );
        assert_eq!(timestamp(-1, ""), "1999-12-31T23:59:59.999999");
        // 12345.678: ndigits 3, weight 1, +, dscale 3: [1, 2345, 6780]
        let raw: Vec<u8> = [3i16, 1, 0, 3, 1, 2345, 6780]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(numeric(&raw).unwrap(), "12345.678");
        // -0.05: ndigits 1, weight -1, -, dscale 2: [500]
        let raw: Vec<u8> = [1i16, -1, 0x4000, 2, 500]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(numeric(&raw).unwrap(), "-0.05");
        let raw: Vec<u8> = [0i16, 0, 0, 0]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect();
        assert_eq!(numeric(&raw).unwrap(), "0");
    }
}
