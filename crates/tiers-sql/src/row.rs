//! The row format: how a table row is stored as the value of its
//! primary-key entry in the table's B+tree.
//!
//! ```text
//! varint  number of columns stored (rows written before ADD COLUMN have fewer;
//!         the missing trailing columns read as NULL)
//! bytes   null bitmap, one bit per column, bit set = NULL
//! then, for each non-NULL column, by its type:
//!   boolean                 1 byte
//!   integers, date, times   zigzag varint
//!   real, double precision  8 bytes (f64 bits, little endian)
//!   text types, bytea       varint length, bytes
//! ```
//!
//! Rows are self-delimiting given the schema, so a decoder reads exactly
//! the bytes it was given and reports anything else as corruption.

use crate::error::{Result, SqlError, sqlstate};
use crate::types::DataType;
use crate::value::Value;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Encodes a row whose values already match `types` (see [`DataType::assign`]).
pub fn encode(types: &[DataType], row: &[Value]) -> Vec<u8> {
    debug_assert_eq!(types.len(), row.len());
    let mut out = Vec::with_capacity(16 + row.len() * 8);
    put_varint(&mut out, row.len() as u64);
    let bitmap_at = out.len();
    out.resize(bitmap_at + row.len().div_ceil(8), 0);
    for (i, v) in row.iter().enumerate() {
        match v {
            Value::Null => out[bitmap_at + i / 8] |= 1 << (i % 8),
            Value::Bool(b) => out.push(u8::from(*b)),
            Value::Int(x) => put_varint(&mut out, zigzag(*x)),
            Value::Date(d) => put_varint(&mut out, zigzag(i64::from(*d))),
            Value::Timestamp(t) | Value::TimestampTz(t) => put_varint(&mut out, zigzag(*t)),
            Value::Float(f) => out.extend_from_slice(&f.to_bits().to_le_bytes()),
            Value::Numeric(d) => out.extend_from_slice(&d.serialize()),
            Value::Text(s) => {
                put_varint(&mut out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Bytes(b) => {
                put_varint(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
        }
    }
    out
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

fn corrupt(detail: &str) -> SqlError {
    SqlError::new(sqlstate::DATA_CORRUPTED, format!("corrupt row: {detail}"))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| corrupt("field runs past the end"))?;
        let b = &self.data[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }
}

/// Decodes a row stored for a table with column types `types`.
pub fn decode(types: &[DataType], data: &[u8]) -> Result<Vec<Value>> {
    let mut r = Reader { data, pos: 0 };
    let stored = r.varint()? as usize;
    if stored > types.len() {
        return Err(corrupt("more columns than the table has"));
    }
    let bitmap = r.take(stored.div_ceil(8))?;
    let mut row = Vec::with_capacity(types.len());
    for (i, ty) in types.iter().enumerate() {
        if i >= stored || bitmap[i / 8] & (1 << (i % 8)) != 0 {
            row.push(Value::Null);
            continue;
        }
        row.push(match ty {
            DataType::Bool => Value::Bool(r.take(1)?[0] != 0),
            DataType::Int2 | DataType::Int4 | DataType::Int8 => Value::Int(unzigzag(r.varint()?)),
            DataType::Date => Value::Date(
                i32::try_from(unzigzag(r.varint()?)).map_err(|_| corrupt("date out of range"))?,
            ),
            DataType::Timestamp => Value::Timestamp(unzigzag(r.varint()?)),
            DataType::TimestampTz => Value::TimestampTz(unzigzag(r.varint()?)),
            DataType::Float4 | DataType::Float8 => Value::Float(f64::from_bits(
                u64::from_le_bytes(r.take(8)?.try_into().expect("8")),
            )),
            DataType::Text | DataType::Varchar(_) | DataType::Char(_) => {
                let n = r.varint()? as usize;
                let s =
                    std::str::from_utf8(r.take(n)?).map_err(|_| corrupt("text is not UTF-8"))?;
                Value::Text(s.to_string())
            }
            DataType::Bytea => {
                let n = r.varint()? as usize;
                Value::Bytes(r.take(n)?.to_vec())
            }
            DataType::Numeric(_) => {
                let b: [u8; 16] = r.take(16)?.try_into().expect("16");
                // Flags: two zero bytes, the scale (at most 28), the sign bit.
                if b[0] != 0 || b[1] != 0 || b[2] > 28 || b[3] & 0x7f != 0 {
                    return Err(corrupt("bad numeric"));
                }
                Value::Numeric(rust_decimal::Decimal::deserialize(b))
            }
        });
    }
    if r.pos != data.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_old_rows_grow_nulls() {
        let types = [
            DataType::Int4,
            DataType::Text,
            DataType::Float8,
            DataType::Bool,
            DataType::Date,
            DataType::Numeric(Some((10, 2))),
        ];
        let row = vec![
            Value::Int(-42),
            Value::Text("héllo".into()),
            Value::Null,
            Value::Bool(true),
            Value::Date(-3),
            Value::Numeric(rust_decimal::Decimal::new(-12345, 2)),
        ];
        let bytes = encode(&types, &row);
        assert_eq!(decode(&types, &bytes).unwrap(), row);
        // A table that gained a column since the row was written.
        let mut wider = types.to_vec();
        wider.push(DataType::Int8);
        let mut want = row.clone();
        want.push(Value::Null);
        assert_eq!(decode(&wider, &bytes).unwrap(), want);
        // Truncated or extended bytes are corruption, not a panic.
        for cut in 0..bytes.len() {
            assert!(decode(&types, &bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode(&types, &longer).unwrap_err().code,
            sqlstate::DATA_CORRUPTED
        );
    }
}
