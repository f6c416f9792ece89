//! Values on the wire: PostgreSQL's binary formats for our types, and
//! parameter decoding (text or binary) into SQL values.

use pgwire::api::Type;
use tiers_sql::{DataType, SqlError, Value};

/// The wire type of a column type.
pub fn pg_type(t: DataType) -> Type {
    Type::from_oid(t.oid()).unwrap_or(Type::TEXT)
}

/// The column type for a parameter type a client declared.
pub fn from_pg_type(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::BOOL => DataType::Bool,
        Type::INT2 => DataType::Int2,
        Type::INT4 => DataType::Int4,
        Type::INT8 => DataType::Int8,
        Type::FLOAT4 => DataType::Float4,
        Type::FLOAT8 => DataType::Float8,
        Type::TEXT | Type::UNKNOWN => DataType::Text,
        Type::VARCHAR => DataType::Varchar(None),
        Type::BPCHAR => DataType::Char(1),
        Type::BYTEA => DataType::Bytea,
        Type::DATE => DataType::Date,
        Type::TIMESTAMP => DataType::Timestamp,
        Type::TIMESTAMPTZ => DataType::TimestampTz,
        Type::NUMERIC => DataType::Numeric(None),
        _ => return None,
    })
}

/// PostgreSQL's binary encoding of a non-NULL value of column type `t`.
pub fn to_binary(v: &Value, t: DataType) -> Result<Vec<u8>, SqlError> {
    let v = t.assign(v.clone())?;
    Ok(match (t, &v) {
        (DataType::Bool, Value::Bool(b)) => vec![u8::from(*b)],
        (DataType::Int2, Value::Int(i)) => (*i as i16).to_be_bytes().to_vec(),
        (DataType::Int4, Value::Int(i)) => (*i as i32).to_be_bytes().to_vec(),
        (DataType::Int8, Value::Int(i)) => i.to_be_bytes().to_vec(),
        (DataType::Float4, Value::Float(f)) => (*f as f32).to_be_bytes().to_vec(),
        (DataType::Float8, Value::Float(f)) => f.to_be_bytes().to_vec(),
        (DataType::Bytea, Value::Bytes(b)) => b.clone(),
        (DataType::Date, Value::Date(d)) => d.to_be_bytes().to_vec(),
        (
            DataType::Timestamp | DataType::TimestampTz,
            Value::Timestamp(x) | Value::TimestampTz(x),
        ) => x.to_be_bytes().to_vec(),
        (DataType::Numeric(_), Value::Numeric(d)) => numeric_to_binary(d),
        (_, other) => other.to_text().into_bytes(),
    })
}

/// PostgreSQL's binary `numeric`: digit count, weight, sign and display
/// scale (int16 each), then base-10000 digits, most significant first.
fn numeric_to_binary(d: &tiers_sql::Decimal) -> Vec<u8> {
    let scale = d.scale() as usize;
    let digits = d.mantissa().unsigned_abs().to_string();
    let (int_part, frac_part) = if digits.len() > scale {
        digits.split_at(digits.len() - scale)
    } else {
        ("", digits.as_str())
    };
    let frac = format!("{frac_part:0>scale$}");
    let int_part = int_part.trim_start_matches('0');
    // Integer groups from the right, fraction groups from the left.
    let mut groups: Vec<u16> = Vec::new();
    let lead = int_part.len() % 4;
    let mut at = 0;
    if lead > 0 {
        groups.push(int_part[..lead].parse().expect("digits"));
        at = lead;
    }
    while at < int_part.len() {
        groups.push(int_part[at..at + 4].parse().expect("digits"));
        at += 4;
    }
    let mut weight = groups.len() as i16 - 1;
    let padded = format!("{frac:0<width$}", width = frac.len().div_ceil(4) * 4);
    for chunk in padded.as_bytes().chunks(4) {
        groups.push(
            std::str::from_utf8(chunk)
                .expect("ascii")
                .parse()
                .expect("digits"),
        );
    }
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if d.is_sign_negative() && !d.is_zero() {
        0x4000
    } else {
        0
    };
    let mut out = Vec::with_capacity(8 + groups.len() * 2);
    out.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale as i16).to_be_bytes());
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    out
}

/// Decodes PostgreSQL's binary `numeric` (see [`numeric_to_binary`]).
fn numeric_from_binary(bytes: &[u8]) -> Result<Value, SqlError> {
    let bad = || bad_binary(DataType::Numeric(None));
    let word = |i: usize| -> Result<i16, SqlError> {
        bytes
            .get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(bad)
    };
    let (n, weight, sign, dscale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
    if n < 0 || dscale < 0 || bytes.len() != 8 + 2 * n as usize {
        return Err(bad());
    }
    if sign == 0xC000 {
        return Err(SqlError::new(
            "0A000",
            "numeric NaN is not supported by tiers",
        ));
    }
    if sign != 0 && sign != 0x4000 {
        return Err(bad());
    }
    let mut groups = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        let g = word(4 + i)?;
        if !(0..10_000).contains(&g) {
            return Err(bad());
        }
        groups.push(g);
    }
    // Integer groups are those of weight >= 0; the rest are the fraction.
    let group = |w: i32| -> i16 {
        let i = i32::from(weight) - w;
        if i < 0 || i as usize >= groups.len() {
            0
        } else {
            groups[i as usize]
        }
    };
    if i32::from(weight) > 8 || i32::from(dscale) > 28 {
        return Err(SqlError::new(
            "22003",
            "numeric parameter out of range (at most 28 significant digits)",
        ));
    }
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    let mut int_digits = String::new();
    for w in (0..=i32::from(weight).max(0)).rev() {
        int_digits.push_str(&format!("{:04}", group(w)));
    }
    let int_digits = int_digits.trim_start_matches('0');
    text.push_str(if int_digits.is_empty() {
        "0"
    } else {
        int_digits
    });
    let dscale = dscale as usize;
    if dscale > 0 {
        let mut frac = String::new();
        let mut w = -1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", group(w)));
            w -= 1;
        }
        frac.truncate(dscale);
        text.push('.');
        text.push_str(&frac);
    }
    tiers_sql::value::parse_numeric(&text).map(Value::Numeric)
}

fn bad_binary(t: DataType) -> SqlError {
    SqlError::new(
        "22P03",
        format!("incorrect binary data format for a {} parameter", t.name()),
    )
}

/// Decodes a parameter sent in binary for type `t`.
pub fn from_binary(bytes: &[u8], t: DataType) -> Result<Value, SqlError> {
    let fixed = |n: usize| -> Result<&[u8], SqlError> {
        if bytes.len() == n {
            Ok(bytes)
        } else {
            Err(bad_binary(t))
        }
    };
    Ok(match t {
        DataType::Bool => Value::Bool(fixed(1)?[0] != 0),
        DataType::Int2 => Value::Int(i16::from_be_bytes(fixed(2)?.try_into().expect("2")).into()),
        DataType::Int4 => Value::Int(i32::from_be_bytes(fixed(4)?.try_into().expect("4")).into()),
        DataType::Int8 => Value::Int(i64::from_be_bytes(fixed(8)?.try_into().expect("8"))),
        DataType::Float4 => {
            Value::Float(f32::from_be_bytes(fixed(4)?.try_into().expect("4")).into())
        }
        DataType::Float8 => Value::Float(f64::from_be_bytes(fixed(8)?.try_into().expect("8"))),
        DataType::Bytea => Value::Bytes(bytes.to_vec()),
        DataType::Date => Value::Date(i32::from_be_bytes(fixed(4)?.try_into().expect("4"))),
        DataType::Timestamp => {
            Value::Timestamp(i64::from_be_bytes(fixed(8)?.try_into().expect("8")))
        }
        DataType::TimestampTz => {
            Value::TimestampTz(i64::from_be_bytes(fixed(8)?.try_into().expect("8")))
        }
        DataType::Numeric(_) => numeric_from_binary(bytes)?,
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => Value::Text(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| SqlError::new("22021", "invalid UTF-8 in a text parameter"))?,
        ),
    })
}
