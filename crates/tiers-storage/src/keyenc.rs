//! Order-preserving encoding of composite index keys.
//!
//! The B+tree compares keys as plain byte strings (`memcmp` order, a proper
//! prefix sorting first) and knows nothing about columns or types. The SQL
//! layer builds its keys with this module: a primary key is the encoding of
//! the primary key columns, and a secondary index key is the encoding of the
//! index columns followed by the encoding of the primary key columns. For any
//! two tuples encoded with the same [`KeyColumn`]s, comparing the encodings
//! byte-wise gives the same result as comparing the tuples column by column.
//! [`decode_key`] and [`decode_key_prefix`] invert the encoding (the latter
//! splits a secondary index key into its two parts), and [`prefix_successor`]
//! gives the exclusive upper bound of a range scan over a key prefix.
//!
//! # Ordering of one column
//!
//! - NULL sorts first or last as the column's [`NullOrder`] says. This is the
//!   position in the final order, after the direction is applied, as with SQL
//!   `NULLS FIRST` / `NULLS LAST`.
//! - Non-null values of different kinds order by kind: Bool < number < Text <
//!   Bytes. `false < true`.
//! - Numbers: `Int` and `Float` compare with each other by exact numeric value,
//!   for every `i64` and `f64`. Order is total: `-inf < ... < +inf < NaN`; all
//!   NaNs are equal (the largest, as in PostgreSQL), and `-0.0` equals `0.0`.
//!   Tie rule: an `Int` and a `Float` of equal value are distinct keys and the
//!   `Int` sorts first (`Int(2) < Float(2.0) < Int(3)`).
//! - Text and Bytes: byte-wise (for UTF-8 this is code point order); a proper
//!   prefix sorts first.
//! - [`Direction::Desc`] reverses the order of the non-null values.
//!
//! Decoding returns `Float(0.0)` for `-0.0` and the canonical quiet NaN
//! (`0x7FF8_0000_0000_0000`) for every NaN.
//!
//! # Byte format
//!
//! A key is the concatenation of its column encodings, with no header, count
//! or separator. Each column is first written in *ascending form*:
//!
//! | value                | ascending form                                |
//! |----------------------|-----------------------------------------------|
//! | NULL (see below)     | `0x01` or `0xFE`                              |
//! | `false` / `true`     | `0x10` / `0x11`                               |
//! | number               | `0x20`, K (8 bytes), M, then R (2 bytes) if M = `0x03` |
//! | Text (UTF-8 bytes)   | `0x30`, escaped content, `0x00 0x01`          |
//! | Bytes                | `0x40`, escaped content, `0x00 0x01`          |
//!
//! *Escaping*: each `0x00` content byte is written as `0x00 0xFF`; other bytes
//! are written as they are; `0x00 0x01` terminates the content.
//!
//! *Numbers*: let `g` be an `f64`: for a Float, the value itself with `-0.0`
//! replaced by `+0.0` and any NaN by the canonical NaN; for an Int `i`, the
//! largest `f64` that is `<= i` (rounding toward -inf; `g == i` whenever
//! `|i| <= 2^53`). K is the big-endian `u64` order key of `g`'s IEEE bits
//! `b`: `!b` if the sign bit is set, else `b | 0x8000_0000_0000_0000`. M is
//! `0x01` for an Int with `i == g`, `0x02` for a Float, and `0x03` for an Int
//! with `i > g`, followed by R = `i - g` as big-endian `u16` (1..=1023).
//!
//! *Descending columns*: the ascending form is stored with every byte
//! inverted (XOR `0xFF`), tag included; an escaped zero becomes `0xFF 0x00`
//! and the terminator `0xFF 0xFE`. The stored NULL byte does not depend on
//! the direction: `0x01` for NULLS FIRST and `0xFE` for NULLS LAST (so its
//! ascending form is `0xFE` / `0x01` in a Desc column). Stored non-null tags
//! lie in `0x10..=0x40` (Asc) or `0xBF..=0xEF` (Desc), strictly between.
//!
//! Why this orders correctly: two different ascending forms of a column always
//! differ at a position where both have a byte (no encoding is a proper
//! prefix of another: tags, fixed-width numbers and the terminator, which
//! cannot occur inside escaped content, delimit every value). So byte-wise
//! comparison stops inside the first differing column, and inverting the
//! bytes reverses exactly that comparison.
//!
//! Example: `Int(1)` Asc is `20 BF F0 00 00 00 00 00 00 01`; `Text("a")`
//! Asc is `30 61 00 01` and Desc is `CF 9E FF FE`.
//!
//! Decoding is strict: it accepts exactly the byte strings that encoding
//! produces, so `decode_key(b) == Ok(v)` implies that encoding `v` gives `b`.

use thiserror::Error;

const NULL_FIRST: u8 = 0x01;
const NULL_LAST: u8 = 0xFE;
const TAG_FALSE: u8 = 0x10;
const TAG_TRUE: u8 = 0x11;
const TAG_NUMBER: u8 = 0x20;
const TAG_TEXT: u8 = 0x30;
const TAG_BYTES: u8 = 0x40;
const NUM_INT_EXACT: u8 = 0x01;
const NUM_FLOAT: u8 = 0x02;
const NUM_INT_RESIDUAL: u8 = 0x03;
const SIGN_BIT: u64 = 1 << 63;
const CANONICAL_NAN_BITS: u64 = 0x7FF8_0000_0000_0000;
const TWO_POW_63: f64 = -(i64::MIN as f64);

/// One column value of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer; orders numerically together with [`KeyValue::Float`].
    Int(i64),
    /// A 64-bit float; orders numerically together with [`KeyValue::Int`].
    Float(f64),
    /// UTF-8 text, ordered by bytes (code points).
    Text(String),
    /// A byte string, ordered by bytes.
    Bytes(Vec<u8>),
}

/// Sort direction of one key column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

/// Where NULLs go in the final order of one key column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NullOrder {
    /// NULLs before every non-null value.
    First,
    /// NULLs after every non-null value.
    Last,
}

/// How one key column is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyColumn {
    /// Ascending or descending.
    pub direction: Direction,
    /// NULL placement in the final order.
    pub nulls: NullOrder,
}

impl KeyColumn {
    /// Ascending, NULLS LAST (PostgreSQL's default for `ASC`).
    pub const ASC: KeyColumn = KeyColumn::new(Direction::Asc, NullOrder::Last);
    /// Descending, NULLS FIRST (PostgreSQL's default for `DESC`).
    pub const DESC: KeyColumn = KeyColumn::new(Direction::Desc, NullOrder::First);

    /// A column with the given direction and NULL placement.
    pub const fn new(direction: Direction, nulls: NullOrder) -> Self {
        KeyColumn { direction, nulls }
    }

    const fn mask(self) -> u8 {
        match self.direction {
            Direction::Asc => 0x00,
            Direction::Desc => 0xFF,
        }
    }

    /// The NULL byte as stored (after any inversion).
    const fn stored_null(self) -> u8 {
        match self.nulls {
            NullOrder::First => NULL_FIRST,
            NullOrder::Last => NULL_LAST,
        }
    }
}

impl Default for KeyColumn {
    /// [`KeyColumn::ASC`].
    fn default() -> Self {
        KeyColumn::ASC
    }
}

/// Error from [`encode_key`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyEncodeError {
    /// The number of values differs from the number of columns.
    #[error("key has {values} values but {columns} column descriptions")]
    ColumnCountMismatch {
        /// Number of values given.
        values: usize,
        /// Number of columns given.
        columns: usize,
    },
}

/// Error from [`decode_key`] or [`decode_key_prefix`]: the bytes are not a
/// key encoded with the given columns. Offsets are from the start of the
/// input; bytes are reported as stored (inverted in Desc columns).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyDecodeError {
    /// The input ended inside a value.
    #[error("key ends at offset {offset} while reading {what}")]
    UnexpectedEnd {
        /// The input length.
        offset: usize,
        /// What was being read.
        what: &'static str,
    },
    /// A byte that is not a valid type tag for the column.
    #[error("invalid type tag 0x{tag:02x} at offset {offset}")]
    InvalidTag {
        /// Offset of the tag.
        offset: usize,
        /// The stored byte.
        tag: u8,
    },
    /// A NULL byte whose placement does not match the column's [`NullOrder`].
    #[error("NULL tag 0x{tag:02x} at offset {offset} does not match the column's NULL order")]
    NullOrderMismatch {
        /// Offset of the tag.
        offset: usize,
        /// The stored byte.
        tag: u8,
    },
    /// A zero content byte followed by neither an escape nor a terminator.
    #[error("invalid escape in text or bytes: stored byte 0x{byte:02x} at offset {offset}")]
    InvalidEscape {
        /// Offset of the byte after the zero byte.
        offset: usize,
        /// The stored byte.
        byte: u8,
    },
    /// Text content that is not UTF-8.
    #[error("text value at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Offset of the value's tag.
        offset: usize,
    },
    /// An unknown number marker byte.
    #[error("invalid number marker 0x{marker:02x} at offset {offset}")]
    InvalidNumberMarker {
        /// Offset of the marker.
        offset: usize,
        /// The stored byte.
        marker: u8,
    },
    /// A number whose bytes are not what encoding would produce.
    #[error("non-canonical or out-of-range number at offset {offset}")]
    NonCanonicalNumber {
        /// Offset of the value's tag.
        offset: usize,
    },
    /// Bytes left after the last column.
    #[error("{count} trailing byte(s) at offset {offset} after the last key column")]
    TrailingBytes {
        /// Offset of the first trailing byte.
        offset: usize,
        /// Number of trailing bytes.
        count: usize,
    },
}

/// Appends the encoding of `values`, ordered as `columns` say, to `out`.
///
/// On error nothing is appended.
pub fn encode_key(
    values: &[KeyValue],
    columns: &[KeyColumn],
    out: &mut Vec<u8>,
) -> Result<(), KeyEncodeError> {
    if values.len() != columns.len() {
        return Err(KeyEncodeError::ColumnCountMismatch {
            values: values.len(),
            columns: columns.len(),
        });
    }
    for (value, &column) in values.iter().zip(columns) {
        encode_value(value, column, out);
    }
    Ok(())
}

/// Appends the encoding of one column value to `out`.
pub fn encode_value(value: &KeyValue, column: KeyColumn, out: &mut Vec<u8>) {
    let start = out.len();
    match value {
        KeyValue::Null => out.push(column.stored_null() ^ column.mask()),
        KeyValue::Bool(b) => out.push(if *b { TAG_TRUE } else { TAG_FALSE }),
        KeyValue::Int(i) => push_number(int_parts(*i), out),
        KeyValue::Float(f) => push_number(float_parts(*f), out),
        KeyValue::Text(s) => push_escaped(TAG_TEXT, s.as_bytes(), out),
        KeyValue::Bytes(b) => push_escaped(TAG_BYTES, b, out),
    }
    if column.direction == Direction::Desc {
        out[start..].iter_mut().for_each(|b| *b = !*b);
    }
}

/// Decodes a key made of exactly `columns.len()` values.
pub fn decode_key(bytes: &[u8], columns: &[KeyColumn]) -> Result<Vec<KeyValue>, KeyDecodeError> {
    let (values, used) = decode_key_prefix(bytes, columns)?;
    if used != bytes.len() {
        return Err(KeyDecodeError::TrailingBytes {
            offset: used,
            count: bytes.len() - used,
        });
    }
    Ok(values)
}

/// Decodes `columns.len()` values from the start of `bytes` and returns them
/// with the number of bytes they took; the rest of `bytes` is not looked at.
/// Used to split a secondary index key into index columns and primary key.
pub fn decode_key_prefix(
    bytes: &[u8],
    columns: &[KeyColumn],
) -> Result<(Vec<KeyValue>, usize), KeyDecodeError> {
    let mut r = Reader {
        bytes,
        pos: 0,
        mask: 0,
    };
    let values = columns
        .iter()
        .map(|&column| decode_value(&mut r, column))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((values, r.pos))
}

/// The smallest byte string greater than every string that starts with
/// `prefix`: the exclusive upper bound of a prefix range scan. `None` when
/// there is no such bound (`prefix` empty or all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut succ = prefix[..=last].to_vec();
    succ[last] += 1;
    Some(succ)
}

/// The number-specific part of an ascending encoding: K, M and R.
#[derive(Debug, PartialEq, Eq)]
struct NumParts {
    key: u64,
    marker: u8,
    residual: u16,
}

fn f64_key(f: f64) -> u64 {
    let bits = f.to_bits();
    if bits & SIGN_BIT != 0 {
        !bits
    } else {
        bits | SIGN_BIT
    }
}

fn f64_from_key(key: u64) -> f64 {
    f64::from_bits(if key & SIGN_BIT != 0 {
        key & !SIGN_BIT
    } else {
        !key
    })
}

fn float_parts(f: f64) -> NumParts {
    let canonical = if f.is_nan() {
        f64::from_bits(CANONICAL_NAN_BITS)
    } else if f == 0.0 {
        0.0
    } else {
        f
    };
    NumParts {
        key: f64_key(canonical),
        marker: NUM_FLOAT,
        residual: 0,
    }
}

fn int_parts(i: i64) -> NumParts {
    // `as f64` rounds to nearest; step down if that overshot. Every f64 in
    // [-2^63, 2^63] converts to i128 exactly.
    let mut g = i as f64;
    if g as i128 > i128::from(i) {
        g = g.next_down();
    }
    // Below 2^63 in magnitude consecutive f64s are at most 1024 apart.
    let residual = (i128::from(i) - g as i128) as u16;
    let marker = if residual == 0 {
        NUM_INT_EXACT
    } else {
        NUM_INT_RESIDUAL
    };
    NumParts {
        key: f64_key(g),
        marker,
        residual,
    }
}

fn push_number(p: NumParts, out: &mut Vec<u8>) {
    out.push(TAG_NUMBER);
    out.extend_from_slice(&p.key.to_be_bytes());
    out.push(p.marker);
    if p.marker == NUM_INT_RESIDUAL {
        out.extend_from_slice(&p.residual.to_be_bytes());
    }
}

fn push_escaped(tag: u8, content: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    for &b in content {
        out.push(b);
        if b == 0x00 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Reads bytes, undoing the current column's inversion.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    mask: u8,
}

impl Reader<'_> {
    fn next(&mut self, what: &'static str) -> Result<u8, KeyDecodeError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or(KeyDecodeError::UnexpectedEnd {
                offset: self.pos,
                what,
            })?;
        self.pos += 1;
        Ok(b ^ self.mask)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], KeyDecodeError> {
        let mut a = [0; N];
        for b in &mut a {
            *b = self.next(what)?;
        }
        Ok(a)
    }
}

fn decode_value(r: &mut Reader<'_>, column: KeyColumn) -> Result<KeyValue, KeyDecodeError> {
    let start = r.pos;
    r.mask = 0;
    let tag = r.next("a type tag")?;
    if tag == NULL_FIRST || tag == NULL_LAST {
        return if tag == column.stored_null() {
            Ok(KeyValue::Null)
        } else {
            Err(KeyDecodeError::NullOrderMismatch { offset: start, tag })
        };
    }
    r.mask = column.mask();
    match tag ^ r.mask {
        TAG_FALSE => Ok(KeyValue::Bool(false)),
        TAG_TRUE => Ok(KeyValue::Bool(true)),
        TAG_NUMBER => decode_number(r, start),
        TAG_TEXT => String::from_utf8(decode_escaped(r)?)
            .map(KeyValue::Text)
            .map_err(|_| KeyDecodeError::InvalidUtf8 { offset: start }),
        TAG_BYTES => decode_escaped(r).map(KeyValue::Bytes),
        _ => Err(KeyDecodeError::InvalidTag { offset: start, tag }),
    }
}

fn decode_number(r: &mut Reader<'_>, start: usize) -> Result<KeyValue, KeyDecodeError> {
    let key = u64::from_be_bytes(r.array("a number")?);
    let marker_at = r.pos;
    let marker = r.next("a number marker")?;
    let residual = match marker {
        NUM_FLOAT | NUM_INT_EXACT => 0,
        NUM_INT_RESIDUAL => u16::from_be_bytes(r.array("a number residual")?),
        _ => {
            let marker = marker ^ r.mask;
            return Err(KeyDecodeError::InvalidNumberMarker {
                offset: marker_at,
                marker,
            });
        }
    };
    let non_canonical = KeyDecodeError::NonCanonicalNumber { offset: start };
    let g = f64_from_key(key);
    let (value, expected) = if marker == NUM_FLOAT {
        (KeyValue::Float(g), float_parts(g))
    } else if (-TWO_POW_63..TWO_POW_63).contains(&g) && g.fract() == 0.0 {
        let i =
            i64::try_from(g as i128 + i128::from(residual)).map_err(|_| non_canonical.clone())?;
        (KeyValue::Int(i), int_parts(i))
    } else {
        return Err(non_canonical);
    };
    // Reject what encoding would not produce: -0.0, other NaNs, a residual
    // that is zero or does not belong to K.
    if (NumParts {
        key,
        marker,
        residual,
    }) != expected
    {
        return Err(non_canonical);
    }
    Ok(value)
}

fn decode_escaped(r: &mut Reader<'_>) -> Result<Vec<u8>, KeyDecodeError> {
    let mut content = Vec::new();
    loop {
        match r.next("text or bytes content")? {
            0x00 => {
                let at = r.pos;
                match r.next("an escape or terminator")? {
                    0xFF => content.push(0x00),
                    0x01 => return Ok(content),
                    b => {
                        return Err(KeyDecodeError::InvalidEscape {
                            offset: at,
                            byte: b ^ r.mask,
                        });
                    }
                }
            }
            b => content.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyValue::{Bool, Bytes, Float, Int, Null, Text};
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn enc(values: &[KeyValue], columns: &[KeyColumn]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key(values, columns, &mut out).unwrap();
        out
    }

    /// The documented order, written directly on values.
    fn model_cmp(a: &[KeyValue], b: &[KeyValue], columns: &[KeyColumn]) -> Ordering {
        let col = |(x, y, c): (&KeyValue, &KeyValue, &KeyColumn)| {
            let null_side = if c.nulls == NullOrder::First {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            let rank = |v: &KeyValue| match v {
                Null => 0,
                Bool(_) => 1,
                Int(_) | Float(_) => 2,
                Text(_) => 3,
                Bytes(_) => 4,
            };
            let o = match (x, y) {
                (Null, Null) => return Ordering::Equal,
                (Null, _) => return null_side,
                (_, Null) => return null_side.reverse(),
                (Bool(p), Bool(q)) => p.cmp(q),
                (Int(p), Int(q)) => p.cmp(q),
                (Float(p), Float(q)) => p
                    .is_nan()
                    .cmp(&q.is_nan())
                    .then(p.partial_cmp(q).unwrap_or(Ordering::Equal)),
                (Int(i), Float(f)) => int_vs_float(*i, *f),
                (Float(f), Int(i)) => int_vs_float(*i, *f).reverse(),
                (Text(p), Text(q)) => p.cmp(q),
                (Bytes(p), Bytes(q)) => p.cmp(q),
                _ => rank(x).cmp(&rank(y)),
            };
            if c.direction == Direction::Desc {
                o.reverse()
            } else {
                o
            }
        };
        a.iter()
            .zip(b)
            .zip(columns)
            .map(|((x, y), c)| col((x, y, c)))
            .fold(Ordering::Equal, Ordering::then)
    }

    /// `i` vs `f` exactly; equal values put the Int first. `floor(f)` is an
    /// exact integer, and the saturating cast keeps the order for huge `f`.
    fn int_vs_float(i: i64, f: f64) -> Ordering {
        if f.is_nan() || i128::from(i) <= f.floor() as i128 {
            Ordering::Less
        } else {
            Ordering::Greater
        }
    }

    /// Equality after a round trip: all NaNs are equal and -0.0 == 0.0.
    fn same(a: &[KeyValue], b: &[KeyValue]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| match (x, y) {
                (Float(p), Float(q)) => (p.is_nan() && q.is_nan()) || p == q,
                _ => x == y,
            })
    }

    fn int() -> impl Strategy<Value = i64> {
        let bases = vec![
            0,
            1 << 53,
            -(1 << 53),
            1 << 62,
            -(1 << 62),
            i64::MAX,
            i64::MIN,
            1 << 60,
        ];
        prop_oneof![
            any::<i64>(),
            -4i64..4,
            (prop::sample::select(bases), -1100i64..1100).prop_map(|(b, d)| b.wrapping_add(d)),
        ]
    }

    fn float() -> impl Strategy<Value = f64> {
        let specials = vec![
            0.0,
            -0.0,
            f64::NAN,
            f64::from_bits(0xFFF0_0000_0000_0001),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            TWO_POW_63,
            -TWO_POW_63,
        ];
        prop_oneof![
            any::<f64>(),
            prop::sample::select(specials),
            (-16i32..16).prop_map(|x| f64::from(x) / 4.0),
            (int(), -1i32..=1).prop_map(|(i, step)| match step {
                -1 => (i as f64).next_down(),
                0 => i as f64,
                _ => (i as f64).next_up(),
            }),
        ]
    }

    fn number() -> impl Strategy<Value = KeyValue> {
        prop_oneof![int().prop_map(Int), float().prop_map(Float)]
    }

    fn value() -> impl Strategy<Value = KeyValue> {
        let ch = prop_oneof![
            prop::sample::select(vec!['\0', 'a', 'b', '\u{7f}', 'é', '\u{10FFFF}']),
            any::<char>()
        ];
        let byte = prop_oneof![
            prop::sample::select(vec![0x00u8, 0x01, 0xFE, 0xFF, b'a']),
            any::<u8>()
        ];
        prop_oneof![
            Just(Null),
            any::<bool>().prop_map(Bool),
            number(),
            number(),
            prop::collection::vec(ch, 0..5).prop_map(|c| Text(c.into_iter().collect())),
            prop::collection::vec(byte, 0..6).prop_map(Bytes),
        ]
    }

    fn column() -> impl Strategy<Value = KeyColumn> {
        use {Direction::*, NullOrder::*};
        let all = [(Asc, First), (Asc, Last), (Desc, First), (Desc, Last)];
        prop::sample::select(all.map(|(d, n)| KeyColumn::new(d, n)).to_vec())
    }

    /// Columns and two tuples; each value of `b` copies `a`'s half the time.
    fn key_pair() -> impl Strategy<Value = (Vec<KeyColumn>, Vec<KeyValue>, Vec<KeyValue>)> {
        use prop::collection::vec;
        (1usize..5)
            .prop_flat_map(|n| {
                (
                    vec(column(), n),
                    vec(value(), n),
                    vec(value(), n),
                    vec(any::<bool>(), n),
                )
            })
            .prop_map(|(cols, a, b, copy)| {
                let b = b
                    .into_iter()
                    .zip(&a)
                    .zip(copy)
                    .map(|((y, x), c)| if c { x.clone() } else { y })
                    .collect();
                (cols, a, b)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn byte_order_matches_model((cols, a, b) in key_pair()) {
            prop_assert_eq!(enc(&a, &cols).cmp(&enc(&b, &cols)), model_cmp(&a, &b, &cols));
        }

        #[test]
        fn number_order_matches_model(a in number(), b in number(), c in column()) {
            let (a, b) = ([a], [b]);
            prop_assert_eq!(enc(&a, &[c]).cmp(&enc(&b, &[c])), model_cmp(&a, &b, &[c]));
        }

        #[test]
        fn round_trip_and_split((cols, a, b) in key_pair()) {
            let (ka, kb) = (enc(&a, &cols), enc(&b, &cols));
            prop_assert!(same(&decode_key(&ka, &cols).unwrap(), &a));
            let joined = [ka.as_slice(), kb.as_slice()].concat();
            let (first, used) = decode_key_prefix(&joined, &cols).unwrap();
            prop_assert!(same(&first, &a));
            prop_assert_eq!(used, ka.len());
            prop_assert!(same(&decode_key(&joined[used..], &cols).unwrap(), &b));
        }

        #[test]
        fn decode_is_total_and_strict(
            (cols, a, _) in key_pair(),
            noise in prop::collection::vec(any::<u8>(), 0..24),
            edit in 0usize..4,
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            // Random bytes, or a valid key truncated, with a byte replaced,
            // inserted or the noise appended.
            let mut bytes = enc(&a, &cols);
            let i = at.index(bytes.len());
            match edit {
                0 => bytes = noise,
                1 => bytes.truncate(i),
                2 => bytes[i] = byte,
                _ => bytes.insert(i, byte),
            }
            if let Ok(values) = decode_key(&bytes, &cols) {
                prop_assert_eq!(enc(&values, &cols), bytes);
            }
        }

        #[test]
        fn prefix_successor_bounds_prefix(
            prefix in prop::collection::vec(prop_oneof![Just(0xFFu8), any::<u8>()], 0..5),
            tail in prop::collection::vec(prop_oneof![Just(0xFFu8), any::<u8>()], 0..5),
            cut in any::<prop::sample::Index>(),
            other in any::<bool>(),
        ) {
            // Candidates: prefix + tail, and a random-ish string near the prefix.
            let t = if other { tail.clone() } else { [&prefix[..cut.index(prefix.len() + 1)], &tail[..]].concat() };
            match prefix_successor(&prefix) {
                None => prop_assert!(prefix.iter().all(|&b| b == 0xFF)),
                Some(succ) => {
                    prop_assert!(succ > prefix);
                    let in_range = t >= prefix && t < succ;
                    prop_assert_eq!(in_range, t.starts_with(&prefix));
                }
            }
        }
    }

    #[test]
    fn concrete_bytes() {
        let (asc, desc) = (KeyColumn::ASC, KeyColumn::DESC);
        let cases: [(&[KeyValue], &[KeyColumn], &[u8]); 6] = [
            (
                &[Int(1)],
                &[asc],
                &[0x20, 0xBF, 0xF0, 0, 0, 0, 0, 0, 0, 0x01],
            ),
            (
                &[Int(i64::MAX)],
                &[asc],
                &[
                    0x20, 0xC3, 0xDF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x03, 0x03, 0xFF,
                ],
            ),
            (&[Text("a".into())], &[asc], &[0x30, 0x61, 0x00, 0x01]),
            (&[Text("a".into())], &[desc], &[0xCF, 0x9E, 0xFF, 0xFE]),
            (
                &[Bytes(vec![0]), Bool(true)],
                &[asc, desc],
                &[0x40, 0x00, 0xFF, 0x00, 0x01, 0xEE],
            ),
            (&[Null, Null], &[asc, desc], &[0xFE, 0x01]),
        ];
        for (values, columns, bytes) in cases {
            assert_eq!(enc(values, columns), bytes, "{values:?}");
        }
    }

    #[test]
    fn mixed_numbers_sort_numerically() {
        let sorted = [
            Float(f64::NEG_INFINITY),
            Int(i64::MIN),
            Float(-1.5),
            Int(0),
            Float(-0.0),
            Float(0.5),
            Int(2),
            Float(2.0),
            Int(3),
            Float(TWO_POW_63 - 1024.0),
            Int(i64::MAX),
            Float(TWO_POW_63),
            Float(f64::INFINITY),
            Float(f64::NAN),
        ];
        let keys: Vec<_> = sorted
            .iter()
            .map(|v| enc(std::slice::from_ref(v), &[KeyColumn::ASC]))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            decode_key(&keys[4], &[KeyColumn::ASC]).unwrap(),
            [Float(0.0)]
        );
    }

    #[test]
    fn secondary_index_key_splits() {
        let (idx, pk) = ([KeyColumn::DESC], [KeyColumn::ASC, KeyColumn::ASC]);
        let mut key = enc(&[Text("bob".into())], &idx);
        let pk_start = key.len();
        encode_key(&[Int(7), Bytes(vec![0, 0xFF])], &pk, &mut key).unwrap();
        let (cols, used) = decode_key_prefix(&key, &idx).unwrap();
        assert_eq!((cols, used), (vec![Text("bob".into())], pk_start));
        assert_eq!(
            decode_key(&key[used..], &pk).unwrap(),
            [Int(7), Bytes(vec![0, 0xFF])]
        );
        let succ = prefix_successor(&key[..used]).unwrap();
        assert!(key.as_slice() < succ.as_slice() && enc(&[Text("bo".into())], &idx) > succ);
    }

    #[test]
    fn errors_name_problem_and_offset() {
        let mut out = vec![9];
        let err = encode_key(&[Null], &[], &mut out).unwrap_err();
        assert_eq!(
            (err.to_string().as_str(), out),
            ("key has 1 values but 0 column descriptions", vec![9])
        );
        let neg_zero = [&[TAG_NUMBER][..], &f64_key(-0.0).to_be_bytes()].concat();
        let cases: [(&[u8], &str); 9] = [
            (
                &[0x30, 0x61],
                "key ends at offset 2 while reading text or bytes content",
            ),
            (&[0x20, 1, 2], "key ends at offset 3 while reading a number"),
            (&[0x77], "invalid type tag 0x77 at offset 0"),
            (
                &[0x01],
                "NULL tag 0x01 at offset 0 does not match the column's NULL order",
            ),
            (
                &[0x40, 0x00, 0x05],
                "invalid escape in text or bytes: stored byte 0x05 at offset 2",
            ),
            (
                &[0x30, 0xC3, 0x00, 0x01],
                "text value at offset 0 is not valid UTF-8",
            ),
            (
                &[0x10, 0x11],
                "1 trailing byte(s) at offset 1 after the last key column",
            ),
            (
                &[&neg_zero[..], &[0x02]].concat(),
                "non-canonical or out-of-range number at offset 0",
            ),
            (
                &[&neg_zero[..], &[0x09]].concat(),
                "invalid number marker 0x09 at offset 9",
            ),
        ];
        for (bytes, msg) in cases {
            assert_eq!(
                decode_key(bytes, &[KeyColumn::ASC])
                    .unwrap_err()
                    .to_string(),
                msg
            );
        }
    }

    #[test]
    fn prefix_successor_examples() {
        assert_eq!(prefix_successor(b""), None);
        assert_eq!(prefix_successor(&[0xFF, 0xFF]), None);
        assert_eq!(prefix_successor(&[0x01, 0xFF]), Some(vec![0x02]));
        assert_eq!(prefix_successor(&[0x01, 0x02]), Some(vec![0x01, 0x03]));
    }
}
