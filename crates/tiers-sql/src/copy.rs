//! COPY's data formats: PostgreSQL's text format and CSV, read into rows
//! of optional strings (None is NULL) and written from rows of values.
//!
//! Text format: one row per line, fields separated by the delimiter (tab),
//! `\N` for NULL, and backslash escapes (`\t`, `\n`, `\r`, `\\`, `\b`,
//! `\f`, `\v`, octal `\NNN`, hex `\xHH`); a line `\.` ends the data. CSV
//! (RFC 4180): fields may be quoted, quotes doubled inside; an unquoted
//! field equal to the NULL string (empty by default) is NULL; an optional
//! header line is skipped.

use crate::ast::CopyOptions;
use crate::error::{Result, SqlError};
use crate::value::Value;

fn bad(line: usize, what: &str) -> SqlError {
    SqlError::new("22P04", format!("bad COPY data on line {line}: {what}"))
}

/// Splits COPY input into rows of fields.
pub fn parse_rows(data: &str, o: &CopyOptions) -> Result<Vec<Vec<Option<String>>>> {
    rows(data, o).collect()
}

/// The rows of COPY input, split into fields one row at a time as they
/// are asked for: a load holds one row's fields, not all of them. The
/// first malformed row is an error (and ends the rows).
pub fn rows<'a>(
    data: &'a str,
    o: &'a CopyOptions,
) -> Box<dyn Iterator<Item = Result<Vec<Option<String>>>> + 'a> {
    if o.csv {
        Box::new(CsvRows {
            chars: data.chars().peekable(),
            o,
            line: 1,
            first: true,
            done: false,
        })
    } else {
        Box::new(TextRows {
            lines: data.split('\n').enumerate().peekable(),
            o,
            done: false,
        })
    }
}

/// Text-format rows: one per line.
struct TextRows<'a> {
    lines: std::iter::Peekable<std::iter::Enumerate<std::str::Split<'a, char>>>,
    o: &'a CopyOptions,
    done: bool,
}

impl Iterator for TextRows<'_> {
    type Item = Result<Vec<Option<String>>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let (i, line) = self.lines.next()?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "\\." || line.is_empty() && self.lines.peek().is_none() {
            // The end marker, or the newline after the last row.
            self.done = true;
            return None;
        }
        let mut fields = Vec::new();
        for raw in line.split(self.o.delimiter) {
            if raw == self.o.null {
                fields.push(None);
                continue;
            }
            match unescape(raw) {
                Ok(field) => fields.push(Some(field)),
                Err(e) => {
                    self.done = true;
                    return Some(Err(bad(i + 1, &e)));
                }
            }
        }
        Some(Ok(fields))
    }
}

fn unescape(raw: &str) -> std::result::Result<String, String> {
    if !raw.contains('\\') {
        return Ok(raw.to_string());
    }
    let mut out = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&c) = bytes.get(i) else {
            return Err("a backslash at the end of a field".into());
        };
        i += 1;
        match c {
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match bytes.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xFF) as u8);
            }
            b'x' => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 {
                    match bytes.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                            n += 1;
                        }
                        None => break,
                    }
                }
                if n == 0 {
                    out.extend_from_slice(b"x");
                } else {
                    out.push(v as u8);
                }
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|_| "escapes that make invalid UTF-8".into())
}

/// CSV rows: a quoted field may span lines.
struct CsvRows<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    o: &'a CopyOptions,
    line: usize,
    first: bool,
    done: bool,
}

impl Iterator for CsvRows<'_> {
    type Item = Result<Vec<Option<String>>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done && self.chars.peek().is_some() {
            let fields = match self.row() {
                Ok(fields) => fields,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if fields.len() == 1 && fields[0].as_deref() == Some("\\.") {
                self.done = true;
                return None;
            }
            if std::mem::take(&mut self.first) && self.o.header {
                continue;
            }
            return Some(Ok(fields));
        }
        None
    }
}

impl CsvRows<'_> {
    /// Reads one row's fields, through its line end.
    fn row(&mut self) -> Result<Vec<Option<String>>> {
        let (o, chars) = (self.o, &mut self.chars);
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut at_start = true;
        loop {
            let Some(c) = chars.next() else {
                if in_quotes {
                    return Err(bad(self.line, "unterminated CSV quoted field"));
                }
                break;
            };
            if in_quotes {
                if c == o.escape && chars.peek() == Some(&o.quote) && o.escape != o.quote {
                    field.push(chars.next().expect("peeked"));
                } else if c == o.quote {
                    if o.escape == o.quote && chars.peek() == Some(&o.quote) {
                        field.push(chars.next().expect("peeked"));
                    } else {
                        in_quotes = false;
                    }
                } else {
                    if c == '\n' {
                        self.line += 1;
                    }
                    field.push(c);
                }
                continue;
            }
            if c == o.quote && at_start {
                in_quotes = true;
                quoted = true;
                at_start = false;
            } else if c == o.delimiter {
                fields.push(csv_field(std::mem::take(&mut field), quoted, o));
                quoted = false;
                at_start = true;
            } else if c == '\n' || c == '\r' {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                self.line += 1;
                break;
            } else {
                field.push(c);
                at_start = false;
            }
        }
        fields.push(csv_field(field, quoted, o));
        Ok(fields)
    }
}

fn csv_field(field: String, quoted: bool, o: &CopyOptions) -> Option<String> {
    (quoted || field != o.null).then_some(field)
}

/// One row in COPY's output format, with its line end.
pub fn encode_row(row: &[Value], o: &CopyOptions) -> String {
    let mut out = String::new();
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            out.push(o.delimiter);
        }
        if v.is_null() {
            out.push_str(&o.null);
            continue;
        }
        let text = v.to_text();
        if o.csv {
            let needs_quotes = text.is_empty()
                || text == o.null
                || text
                    .chars()
                    .any(|c| c == o.delimiter || c == o.quote || c == '\n' || c == '\r');
            if needs_quotes {
                out.push(o.quote);
                for c in text.chars() {
                    if c == o.quote || c == o.escape {
                        out.push(o.escape);
                    }
                    out.push(c);
                }
                out.push(o.quote);
            } else {
                out.push_str(&text);
            }
        } else {
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == o.delimiter => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
        }
    }
    out.push('\n');
    out
}

/// The header line of CSV output.
pub fn encode_header(names: &[String], o: &CopyOptions) -> String {
    let values: Vec<Value> = names.iter().map(|n| Value::Text(n.clone())).collect();
    encode_row(&values, o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv() -> CopyOptions {
        CopyOptions {
            csv: true,
            delimiter: ',',
            null: String::new(),
            ..CopyOptions::default()
        }
    }

    #[test]
    fn text_format_round_trip() {
        let o = CopyOptions::default();
        let rows = parse_rows("1\ta\\tb\t\\N\n2\tline\\nbreak\t\\\\x\n\\.\nignored\n", &o).unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("a\tb".into()), None],
                vec![
                    Some("2".into()),
                    Some("line\nbreak".into()),
                    Some("\\x".into())
                ],
            ]
        );
        let line = encode_row(
            &[Value::Int(1), Value::Text("a\tb\\".into()), Value::Null],
            &o,
        );
        assert_eq!(line, "1\ta\\tb\\\\\t\\N\n");
        assert_eq!(
            parse_rows(&line, &o).unwrap()[0][1].as_deref(),
            Some("a\tb\\")
        );
        assert_eq!(
            parse_rows("\\101\\x42", &o).unwrap()[0][0].as_deref(),
            Some("AB")
        );
        assert!(parse_rows("bad\\", &o).is_err());
    }

    #[test]
    fn rows_come_one_at_a_time_and_stop_at_the_first_bad_one() {
        let o = CopyOptions::default();
        let mut text = rows("1\ta\n2\tb\\\n3\tc\n", &o);
        assert_eq!(
            text.next().unwrap().unwrap(),
            vec![Some("1".into()), Some("a".into())]
        );
        let e = text.next().unwrap().unwrap_err();
        assert_eq!(e.code, "22P04");
        assert!(e.message.contains("line 2"), "{}", e.message);
        assert!(text.next().is_none());
        let o = csv();
        let mut csv_rows = rows("1,x\n2,\"open\n", &o);
        assert_eq!(
            csv_rows.next().unwrap().unwrap(),
            vec![Some("1".into()), Some("x".into())]
        );
        let e = csv_rows.next().unwrap().unwrap_err();
        assert!(e.message.contains("unterminated"), "{}", e.message);
        assert!(csv_rows.next().is_none());
    }

    #[test]
    fn csv_quotes_nulls_and_header() {
        let o = CopyOptions {
            header: true,
            ..csv()
        };
        let rows = parse_rows(
            "id,name\n1,\"a,b\"\n2,\"say \"\"hi\"\"\"\n3,\n4,\"\"\r\n",
            &o,
        )
        .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("a,b".into())],
                vec![Some("2".into()), Some("say \"hi\"".into())],
                vec![Some("3".into()), None],
                vec![Some("4".into()), Some(String::new())],
            ]
        );
        let o = csv();
        assert_eq!(
            encode_row(
                &[
                    Value::Text("a,b".into()),
                    Value::Null,
                    Value::Text(String::new())
                ],
                &o
            ),
            "\"a,b\",,\"\"\n"
        );
        assert!(parse_rows("1,\"open", &o).is_err());
        assert_eq!(
            parse_rows("\"multi\nline\",x\n", &o).unwrap()[0][0].as_deref(),
            Some("multi\nline")
        );
    }
}
