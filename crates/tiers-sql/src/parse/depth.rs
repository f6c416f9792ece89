//! A bound on how deep `sqlparser` may nest a statement's syntax tree,
//! checked on the tokens before it is parsed.
//!
//! `sqlparser` guards its recursive descent (50 levels), but it builds
//! chains of infix operators (`1 + 1 + ... + 1`, `x::int::int...`,
//! `a IS NULL IS NULL ...`) in a loop, as left-deep trees of any depth. A
//! tree of 100,000 levels would be translated, refused by our own limit
//! and then dropped, and dropping it recursively overflows the stack of
//! the thread running it: one statement would abort the whole process.
//!
//! So before parsing, [`check`] bounds the depth such a tree can reach: it
//! counts the operator tokens along every path of brackets (parentheses,
//! square brackets, `CASE ... END`), restarting at the separators that
//! cannot lie inside one expression (commas, and clause keywords at the
//! same level), and refuses the statement with 54001 when a path holds
//! more than [`MAX_OPERATORS_ON_A_PATH`]. Every level of an infix chain
//! costs at least one operator token, so the tree `sqlparser` builds is
//! then at most that deep (plus its own 50 guarded levels), which any
//! thread's stack can drop. Statements shorter than the bound cannot
//! exceed it and are not scanned.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::{Result, SqlError, sqlstate};

/// Operator tokens allowed on one path. Far above what our own nesting
/// limit ([`super::MAX_EXPR_DEPTH`]) lets through, so no statement it
/// accepts is refused here.
pub const MAX_OPERATORS_ON_A_PATH: usize = 8 * super::MAX_EXPR_DEPTH;

/// One open bracket (or the statement itself).
struct Level {
    /// Depth reachable outside this level: the enclosing levels' operators
    /// and deepest closed brackets, one per level.
    base: usize,
    /// Operators of the current segment (since the last separator).
    segment: usize,
    /// The deepest bracket closed within the current segment.
    child: usize,
    /// The deepest finished segment of this level.
    best: usize,
    /// Opened by CASE, closed by END.
    case: bool,
}

impl Level {
    fn open(&self, case: bool) -> Level {
        Level {
            base: self.base + self.segment + self.child + 1,
            segment: 0,
            child: 0,
            best: 0,
            case,
        }
    }

    fn separate(&mut self) {
        self.best = self.best.max(self.segment + self.child);
        self.segment = 0;
        self.child = 0;
    }

    /// How deep the tree inside this level can be.
    fn depth(&self) -> usize {
        self.best.max(self.segment + self.child) + 1
    }
}

/// Refuses (54001) a statement whose syntax tree could nest deeper than
/// the bound, without building the tree.
pub fn check(sql: &str) -> Result<()> {
    if sql.len() <= MAX_OPERATORS_ON_A_PATH {
        return Ok(());
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        // The parser reports the tokenizer's error itself.
        return Ok(());
    };
    let mut levels = vec![Level {
        base: 0,
        segment: 0,
        child: 0,
        best: 0,
        case: false,
    }];
    let close = |levels: &mut Vec<Level>| {
        let inner = levels.pop().expect("an inner level");
        let outer = levels.last_mut().expect("the outermost level stays");
        outer.child = outer.child.max(inner.depth());
    };
    for token in &tokens {
        let top = levels.last_mut().expect("the outermost level stays");
        match token {
            Token::Whitespace(_) => continue,
            Token::Comma | Token::SemiColon => top.separate(),
            Token::LParen | Token::LBracket => {
                let inner = top.open(false);
                levels.push(inner);
            }
            Token::RParen | Token::RBracket => {
                if !top.case && levels.len() > 1 {
                    close(&mut levels);
                }
            }
            Token::Word(w) => match w.keyword {
                Keyword::CASE => {
                    let inner = top.open(true);
                    levels.push(inner);
                }
                Keyword::END if top.case => close(&mut levels),
                Keyword::WHEN | Keyword::THEN | Keyword::ELSE if top.case => top.separate(),
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::OFFSET
                | Keyword::VALUES
                | Keyword::SET
                | Keyword::RETURNING
                | Keyword::UNION
                | Keyword::INTERSECT
                | Keyword::EXCEPT
                    if !top.case =>
                {
                    top.separate()
                }
                Keyword::NoKeyword => {}
                // AND, OR, NOT, IS, IN, BETWEEN, LIKE, COLLATE, AT...
                _ => top.segment += 1,
            },
            Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::EscapedStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::Placeholder(_) => {}
            // Every other token may continue an infix chain.
            _ => top.segment += 1,
        }
        let top = levels.last().expect("the outermost level stays");
        if top.base + top.segment + top.child > MAX_OPERATORS_ON_A_PATH {
            return Err(too_complex());
        }
    }
    Ok(())
}

/// 54001, as PostgreSQL answers a statement that exhausts its stack.
pub fn too_complex() -> SqlError {
    SqlError::new(
        sqlstate::STATEMENT_TOO_COMPLEX,
        format!(
            "statement is too deeply nested (more than {} levels of expressions); \
             split it into several statements or pass long lists as one array or \
             with IN (...)",
            super::MAX_EXPR_DEPTH
        ),
    )
}
