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
        (_, other) => other.to_text().into_bytes(),
    })
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
        DataType::Text | DataType::Varchar(_) | DataType::Char(_) => Value::Text(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| SqlError::new("22021", "invalid UTF-8 in a text parameter"))?,
        ),
    })
}
