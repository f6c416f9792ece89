//! Parsing a repeated statement once: a per-connection cache of parsed
//! statement templates.
//!
//! A client on the simple query protocol writes its values into the SQL
//! text (`... WHERE aid = 4711`), so one statement arrives again and again
//! with different constants, and parsing it costs more than running it.
//! [`StatementCache`] lifts the constants out (`... WHERE aid = $1`), parses
//! that template once, and afterwards puts each statement's own constants
//! back into a copy of the parsed template: the executor sees exactly the
//! tree [`super::parse`] would have built, constants included, so planning
//! and typing are unchanged. (A client on the extended protocol sends the
//! same `$n` text with every Parse; that text is cached as it is.)
//!
//! A template is trusted only once proven: the second time a shape is seen,
//! the statement is parsed both ways and the template is kept only if the
//! two trees are equal. A shape whose template does not parse or differs
//! (a constant where only a literal may stand, such as `DATE '...'` or a
//! `SET` value) is parsed directly from then on, as is any statement the
//! lifter does not fully understand (dollar quotes, escape strings,
//! backslashes in strings, unterminated comments).

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{
    ConflictAction, Expr, JoinCondition, Query, Select, SelectItem, SetExpr, Statement, TableRef,
};
use crate::error::Result;
use crate::value::Value;

/// Statements longer than this are parsed directly and never cached (a
/// 1,000-row multi-row INSERT of a few columns is about 20 KiB).
const MAX_CACHED_SQL: usize = 64 << 10;
/// The most shapes remembered; the cache starts over when it is full.
const MAX_ENTRIES: usize = 256;
/// The most SQL text (summed over cached shapes) remembered: with the
/// parsed trees, a few MiB per connection at most.
const MAX_CACHED_BYTES: usize = 1 << 20;

/// Parsed statement templates of one connection (see the module docs).
#[derive(Default)]
pub struct StatementCache {
    entries: HashMap<String, Entry>,
    bytes: usize,
    hits: u64,
}

enum Entry {
    /// Seen once: a shape seen twice gets its template proven.
    Seen,
    /// The proven template of this shape.
    Template(Arc<Vec<Statement>>),
    /// This shape is parsed directly every time.
    Direct,
}

impl std::fmt::Debug for StatementCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementCache")
            .field("entries", &self.entries.len())
            .field("hits", &self.hits)
            .finish()
    }
}

impl StatementCache {
    /// Parses `sql` as [`super::parse`] does, reusing the parsed template of
    /// an earlier statement of the same shape.
    pub fn parse(&mut self, sql: &str) -> Result<Vec<Statement>> {
        if sql.len() > MAX_CACHED_SQL {
            return super::parse(sql);
        }
        let Some(lifted) = lift(sql) else {
            return super::parse(sql);
        };
        match self.entries.get(&lifted.key) {
            Some(Entry::Template(template)) => {
                if let Some(statements) = fill(template, &lifted, sql) {
                    self.hits += 1;
                    return Ok(statements);
                }
                // A constant that does not convert: the direct parse gives
                // the error exactly as it would without the cache.
                super::parse(sql)
            }
            Some(Entry::Direct) => super::parse(sql),
            Some(Entry::Seen) => {
                let direct = super::parse(sql)?;
                let proven = super::parse(lifted.template())
                    .ok()
                    .filter(|template| {
                        fill(template, &lifted, sql).is_some_and(|filled| filled == direct)
                    })
                    .map(Arc::new);
                let entry = match proven {
                    Some(template) => Entry::Template(template),
                    None => Entry::Direct,
                };
                self.entries.insert(lifted.key, entry);
                Ok(direct)
            }
            None => {
                let direct = super::parse(sql)?;
                if self.entries.len() >= MAX_ENTRIES
                    || self.bytes + lifted.key.len() > MAX_CACHED_BYTES
                {
                    self.entries.clear();
                    self.bytes = 0;
                }
                self.bytes += lifted.key.len();
                self.entries.insert(lifted.key, Entry::Seen);
                Ok(direct)
            }
        }
    }

    /// How many statements were built from a cached template.
    pub fn hits(&self) -> u64 {
        self.hits
    }
}

/// A statement with its constants lifted out.
struct Lifted {
    /// The template text, then a NUL and one letter per constant (`n`
    /// number, `s` string): statements with equal keys share a template.
    key: String,
    template_len: usize,
    literals: Vec<Literal>,
}

impl Lifted {
    fn template(&self) -> &str {
        &self.key[..self.template_len]
    }
}

enum Literal {
    /// A numeric literal's text (a byte range of the statement), with a
    /// minus sign written before it.
    Number {
        start: usize,
        end: usize,
        negative: bool,
    },
    /// A string literal's value (quotes removed, `''` unescaped).
    Text(String),
}

impl Literal {
    /// The value the parser gives this literal (None if it would fail).
    fn value(&self, sql: &str) -> Option<Value> {
        match self {
            Literal::Number {
                start,
                end,
                negative,
            } => super::number(&sql[*start..*end], *negative).ok(),
            Literal::Text(s) => Some(Value::Text(s.clone())),
        }
    }
}

/// Words after which a minus sign is a sign, not a subtraction.
const OPERATOR_WORDS: &[&str] = &[
    "and",
    "between",
    "by",
    "else",
    "in",
    "is",
    "like",
    "ilike",
    "limit",
    "not",
    "offset",
    "or",
    "returning",
    "select",
    "set",
    "then",
    "values",
    "when",
    "where",
    "having",
    "on",
];

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Lifts the constants out of `sql`. None: a statement this lexer does not
/// fully understand (it is then parsed directly). A statement that already
/// has `$n` placeholders is kept as it is, constants included.
fn lift(sql: &str) -> Option<Lifted> {
    let b = sql.as_bytes();
    let mut out = Lifting {
        template: String::with_capacity(sql.len()),
        kinds: String::new(),
        literals: Vec::new(),
        copied: 0,
    };
    let mut placeholders = false;
    // Whether the last token ends an operand (a minus sign after it
    // subtracts) or not (a minus sign after it is a sign).
    let mut after_operand = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0c => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&x| x == b'\n')
                    .map_or(b.len(), |p| i + p);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i)?,
            b'\'' => {
                if i > 0 && is_word_byte(b[i - 1]) {
                    return None; // E'...', B'...', X'...', N'...'
                }
                let (value, end) = string_literal(sql, i)?;
                out.lift(sql, i, end, Literal::Text(value));
                i = end;
                after_operand = true;
            }
            b'"' => {
                i = quoted_identifier_end(b, i)?;
                after_operand = true;
            }
            b'$' => {
                if !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    return None; // a dollar-quoted string
                }
                placeholders = true;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                after_operand = true;
            }
            // A number; `.5` only where an operand may start (not `t.5`).
            b'0'..=b'9' | b'.' if c != b'.' || (!after_operand && starts_number(b, i)) => {
                let end = number_end(b, i)?;
                let number = Literal::Number {
                    start: i,
                    end,
                    negative: false,
                };
                out.lift(sql, i, end, number);
                i = end;
                after_operand = true;
            }
            b'-' if !after_operand => {
                // A sign: folded into a number that follows (as the parser
                // folds it), else an operator.
                let mut j = i + 1;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                if starts_number(b, j) {
                    let end = number_end(b, j)?;
                    let number = Literal::Number {
                        start: j,
                        end,
                        negative: true,
                    };
                    out.lift(sql, i, end, number);
                    i = end;
                    after_operand = true;
                } else {
                    i += 1;
                }
            }
            _ if is_word_byte(c) => {
                let start = i;
                while i < b.len() && is_word_byte(b[i]) {
                    i += 1;
                }
                let word = &sql[start..i];
                after_operand = !OPERATOR_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word));
            }
            b')' | b']' => {
                i += 1;
                after_operand = true;
            }
            _ => {
                i += 1;
                after_operand = false;
            }
        }
    }
    if placeholders {
        // Already parameterised (the extended protocol): cache the text.
        return Some(Lifted {
            template_len: sql.len(),
            key: sql.to_owned(),
            literals: Vec::new(),
        });
    }
    let Lifting {
        mut template,
        kinds,
        literals,
        copied,
    } = out;
    template.push_str(&sql[copied..]);
    let template_len = template.len();
    template.push('\0');
    template.push_str(&kinds);
    Some(Lifted {
        key: template,
        template_len,
        literals,
    })
}

/// A template being built: the text up to `copied`, with a `$n` for each
/// constant lifted so far.
struct Lifting {
    template: String,
    /// One letter per constant: `n` number, `s` string.
    kinds: String,
    literals: Vec<Literal>,
    /// How much of the statement the template covers.
    copied: usize,
}

impl Lifting {
    /// Replaces the statement's bytes `from..to` (a constant, with any sign
    /// and blanks before it) by the next placeholder.
    fn lift(&mut self, sql: &str, from: usize, to: usize, literal: Literal) {
        use std::fmt::Write;
        self.template.push_str(&sql[self.copied..from]);
        self.kinds.push(match literal {
            Literal::Number { .. } => 'n',
            Literal::Text(_) => 's',
        });
        self.literals.push(literal);
        let _ = write!(self.template, "${}", self.literals.len());
        self.copied = to;
    }
}

/// Whether a numeric literal starts at `i` (a digit, or `.` and a digit).
fn starts_number(b: &[u8], i: usize) -> bool {
    match b.get(i) {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'.') => b.get(i + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// The end of the numeric literal starting at `i`; None for anything the
/// parser might read differently (`1e`, `1_000`, `0x1F`, `1.2.3`, `1abc`).
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    i = digits(b, i);
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if !b.get(j).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        i = digits(b, j);
    }
    if b.get(i).is_some_and(|&x| is_word_byte(x) || x == b'.') {
        return None;
    }
    Some(i)
}

/// The value and end of the string literal starting at `i`. None for a
/// backslash (whose meaning depends on settings) or an unterminated string.
fn string_literal(sql: &str, i: usize) -> Option<(String, usize)> {
    let b = sql.as_bytes();
    let mut value = String::new();
    let mut from = i + 1;
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'\\' => return None,
            b'\'' if b.get(j + 1) == Some(&b'\'') => {
                value.push_str(&sql[from..=j]);
                j += 2;
                from = j;
            }
            b'\'' => {
                value.push_str(&sql[from..j]);
                return Some((value, j + 1));
            }
            _ => j += 1,
        }
    }
}

fn quoted_identifier_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'"' if b.get(j + 1) == Some(&b'"') => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

/// The end of the (possibly nested) block comment at `i`.
fn skip_block_comment(b: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    while j + 1 < b.len() {
        if b[j] == b'/' && b[j + 1] == b'*' {
            depth += 1;
            j += 2;
        } else if b[j] == b'*' && b[j + 1] == b'/' {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return Some(j);
            }
        } else {
            j += 1;
        }
    }
    None
}

/// The template with the statement's constants put back; None if a
/// constant does not convert or the template has a statement this does
/// not walk.
fn fill(template: &[Statement], lifted: &Lifted, sql: &str) -> Option<Vec<Statement>> {
    let mut statements = template.to_vec();
    if lifted.literals.is_empty() {
        return Some(statements);
    }
    let values: Vec<Value> = lifted
        .literals
        .iter()
        .map(|l| l.value(sql))
        .collect::<Option<_>>()?;
    let mut filler = Filler {
        values: &values,
        ok: true,
    };
    for stmt in &mut statements {
        filler.statement(stmt);
    }
    filler.ok.then_some(statements)
}

/// Replaces `$n` with the n-th constant throughout a statement.
struct Filler<'a> {
    values: &'a [Value],
    ok: bool,
}

impl Filler<'_> {
    fn statement(&mut self, stmt: &mut Statement) {
        match stmt {
            Statement::Select(q) => self.query(q),
            Statement::Insert {
                rows,
                query,
                on_conflict,
                returning,
                ..
            } => {
                rows.iter_mut().flatten().for_each(|e| self.expr(e));
                if let Some(q) = query {
                    self.query(q);
                }
                if let Some(c) = on_conflict
                    && let ConflictAction::Update { set, filter } = &mut c.action
                {
                    set.iter_mut().for_each(|(_, e)| self.expr(e));
                    filter.iter_mut().for_each(|e| self.expr(e));
                }
                self.items(returning);
            }
            Statement::Update {
                from,
                set,
                filter,
                returning,
                ..
            } => {
                from.iter_mut().for_each(|t| self.table(t));
                set.iter_mut().for_each(|(_, e)| self.expr(e));
                filter.iter_mut().for_each(|e| self.expr(e));
                self.items(returning);
            }
            Statement::Delete {
                using,
                filter,
                returning,
                ..
            } => {
                using.iter_mut().for_each(|t| self.table(t));
                filter.iter_mut().for_each(|e| self.expr(e));
                self.items(returning);
            }
            Statement::Explain { statement, .. } => self.statement(statement),
            // Constants anywhere else are not walked: refuse the template.
            _ => self.ok = false,
        }
    }

    fn query(&mut self, q: &mut Query) {
        for cte in &mut q.with {
            self.query(&mut cte.query);
        }
        self.set_expr(&mut q.body);
        q.order_by.iter_mut().for_each(|o| self.expr(&mut o.expr));
        q.limit.iter_mut().for_each(|e| self.expr(e));
        q.offset.iter_mut().for_each(|e| self.expr(e));
    }

    fn set_expr(&mut self, s: &mut SetExpr) {
        match s {
            SetExpr::Select(select) => self.select(select),
            SetExpr::Values(rows) => rows.iter_mut().flatten().for_each(|e| self.expr(e)),
            SetExpr::SetOp { left, right, .. } => {
                self.set_expr(left);
                self.set_expr(right);
            }
            SetExpr::Query(q) => self.query(q),
        }
    }

    fn select(&mut self, s: &mut Select) {
        self.items(&mut s.items);
        s.from.iter_mut().for_each(|t| self.table(t));
        s.filter.iter_mut().for_each(|e| self.expr(e));
        s.group_by.iter_mut().for_each(|e| self.expr(e));
        s.having.iter_mut().for_each(|e| self.expr(e));
    }

    fn items(&mut self, items: &mut [SelectItem]) {
        for item in items {
            if let SelectItem::Expr { expr, .. } = item {
                self.expr(expr);
            }
        }
    }

    fn table(&mut self, t: &mut TableRef) {
        match t {
            TableRef::Table { .. } => {}
            TableRef::Derived { query, .. } => self.query(query),
            TableRef::Function { args, .. } => args.iter_mut().for_each(|e| self.expr(e)),
            TableRef::Join {
                left,
                right,
                condition,
                ..
            } => {
                self.table(left);
                self.table(right);
                if let JoinCondition::On(e) = condition {
                    self.expr(e);
                }
            }
        }
    }

    fn expr(&mut self, e: &mut Expr) {
        match e {
            Expr::Parameter(n) => match n.checked_sub(1).and_then(|i| self.values.get(i)) {
                Some(v) => *e = Expr::Literal(v.clone()),
                None => self.ok = false,
            },
            Expr::Literal(_)
            | Expr::Column { .. }
            | Expr::Bound(_)
            | Expr::Outer { .. }
            | Expr::SubPlan(_) => {}
            Expr::Binary { left, right, .. } => {
                self.expr(left);
                self.expr(right);
            }
            Expr::Not(x)
            | Expr::Negate(x)
            | Expr::IsNull { expr: x, .. }
            | Expr::Cast { expr: x, .. } => self.expr(x),
            Expr::Like { expr, pattern, .. } => {
                self.expr(expr);
                self.expr(pattern);
            }
            Expr::InList { expr, list, .. } => {
                self.expr(expr);
                list.iter_mut().for_each(|x| self.expr(x));
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                self.expr(expr);
                self.expr(low);
                self.expr(high);
            }
            Expr::Function { args, .. } => args.iter_mut().for_each(|x| self.expr(x)),
            Expr::Subquery(q) | Expr::Exists { query: q, .. } => self.query(q),
            Expr::InSubquery { expr, query, .. } => {
                self.expr(expr);
                self.query(query);
            }
            Expr::Case {
                operand,
                branches,
                otherwise,
            } => {
                operand.iter_mut().for_each(|x| self.expr(x));
                for (when, then) in branches {
                    self.expr(when);
                    self.expr(then);
                }
                otherwise.iter_mut().for_each(|x| self.expr(x));
            }
        }
    }
}

#[cfg(test)]
mod tests;
