//! The SQL statements tiers executes, as its own small syntax tree.
//!
//! The parser ([`crate::parse`]) translates `sqlparser`'s PostgreSQL syntax
//! tree into these types, refusing what tiers does not support with a clear
//! error; the planner and executor only ever see this tree. Keeping the
//! boundary here means a new `sqlparser` release touches one file.

use crate::catalog::IndexKind;
use crate::types::DataType;
use crate::value::Value;

/// A statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE TABLE [IF NOT EXISTS] name (columns, constraints)`
    CreateTable {
        /// Table name (lower-cased unless quoted).
        name: String,
        /// Do nothing if it exists.
        if_not_exists: bool,
        /// Columns in order.
        columns: Vec<ColumnSpec>,
        /// Table-level `PRIMARY KEY (...)`, by column name.
        primary_key: Vec<String>,
        /// Table-level `UNIQUE (...)` constraints, by column names.
        unique: Vec<Vec<String>>,
    },
    /// `DROP TABLE [IF EXISTS] names`
    DropTable {
        /// Tables.
        names: Vec<String>,
        /// No error if absent.
        if_exists: bool,
    },
    /// `CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON table [USING kind] (columns)`
    CreateIndex {
        /// Index name (generated as `<table>_<cols>_idx` when omitted).
        name: Option<String>,
        /// Table.
        table: String,
        /// Indexed columns.
        columns: Vec<String>,
        /// UNIQUE.
        unique: bool,
        /// USING btree (default) or hash.
        kind: IndexKind,
        /// Do nothing if it exists.
        if_not_exists: bool,
    },
    /// `INSERT INTO table [(columns)] VALUES (...), ... [RETURNING ...]`
    Insert {
        /// Table.
        table: String,
        /// Target columns; empty means all, in order.
        columns: Vec<String>,
        /// Rows of expressions.
        rows: Vec<Vec<Expr>>,
        /// RETURNING list (empty if none).
        returning: Vec<SelectItem>,
    },
    /// `SELECT ...`
    Select(Box<Select>),
    /// `UPDATE table SET col = expr, ... [WHERE ...] [RETURNING ...]`
    Update {
        /// Table.
        table: String,
        /// Assignments.
        set: Vec<(String, Expr)>,
        /// WHERE.
        filter: Option<Expr>,
        /// RETURNING list.
        returning: Vec<SelectItem>,
    },
    /// `DELETE FROM table [WHERE ...] [RETURNING ...]`
    Delete {
        /// Table.
        table: String,
        /// WHERE.
        filter: Option<Expr>,
        /// RETURNING list.
        returning: Vec<SelectItem>,
    },
    /// `SET name { TO | = } value` (and `SET TIME ZONE value`)
    Set {
        /// Parameter name, lower case.
        name: String,
        /// The value as text (`DEFAULT` for the default).
        value: String,
    },
    /// `SHOW name`
    Show {
        /// Parameter name, lower case (words joined by spaces).
        name: String,
    },
    /// `BEGIN` / `START TRANSACTION`
    Begin,
    /// `COMMIT` / `END`
    Commit,
    /// `ROLLBACK` / `ABORT`
    Rollback,
}

/// A column in CREATE TABLE.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    /// Name.
    pub name: String,
    /// Type (SERIAL maps to Int4/Int8 with `serial`).
    pub data_type: DataType,
    /// NOT NULL.
    pub not_null: bool,
    /// Column-level PRIMARY KEY.
    pub primary_key: bool,
    /// Column-level UNIQUE.
    pub unique: bool,
    /// DEFAULT expression.
    pub default: Option<Expr>,
    /// SERIAL / BIGSERIAL / GENERATED ... AS IDENTITY.
    pub serial: bool,
}

/// A SELECT.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    /// The select list.
    pub items: Vec<SelectItem>,
    /// FROM table (None for `SELECT 1`).
    pub from: Option<String>,
    /// WHERE.
    pub filter: Option<Expr>,
    /// ORDER BY.
    pub order_by: Vec<OrderBy>,
    /// LIMIT (an expression evaluating to a count).
    pub limit: Option<Expr>,
    /// OFFSET.
    pub offset: Option<Expr>,
}

/// One item of a select (or RETURNING) list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`
    Wildcard,
    /// `expr [AS alias]`
    Expr {
        /// The expression.
        expr: Expr,
        /// Its output name, if given.
        alias: Option<String>,
    },
}

/// ORDER BY term.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// Sort key.
    pub expr: Expr,
    /// DESC.
    pub desc: bool,
    /// NULLS FIRST (Some(true)) / NULLS LAST (Some(false)); None = the default
    /// (NULLS LAST for ASC, NULLS FIRST for DESC, as in PostgreSQL).
    pub nulls_first: Option<bool>,
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `=`
    Eq,
    /// `<>` or `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
    /// `||`
    Concat,
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant (numbers are Int when integral and fit i64, else Float;
    /// strings are Text; `NULL`, `TRUE`, `FALSE`).
    Literal(Value),
    /// A column, optionally qualified by its table.
    Column {
        /// Table qualifier.
        table: Option<String>,
        /// Column name.
        name: String,
    },
    /// `$n` (1-based) in a prepared statement.
    Parameter(usize),
    /// `left op right`
    Binary {
        /// Operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `NOT expr`
    Not(Box<Expr>),
    /// `-expr`
    Negate(Box<Expr>),
    /// `expr IS [NOT] NULL`
    IsNull {
        /// Operand.
        expr: Box<Expr>,
        /// IS NOT NULL.
        negated: bool,
    },
    /// `expr [NOT] LIKE/ILIKE pattern`
    Like {
        /// Operand.
        expr: Box<Expr>,
        /// Pattern.
        pattern: Box<Expr>,
        /// NOT LIKE.
        negated: bool,
        /// ILIKE.
        case_insensitive: bool,
    },
    /// `expr [NOT] IN (list)`
    InList {
        /// Operand.
        expr: Box<Expr>,
        /// Candidates.
        list: Vec<Expr>,
        /// NOT IN.
        negated: bool,
    },
    /// `expr [NOT] BETWEEN low AND high`
    Between {
        /// Operand.
        expr: Box<Expr>,
        /// Lower bound.
        low: Box<Expr>,
        /// Upper bound.
        high: Box<Expr>,
        /// NOT BETWEEN.
        negated: bool,
    },
    /// `CAST(expr AS type)` or `expr::type`
    Cast {
        /// Operand.
        expr: Box<Expr>,
        /// Target type.
        to: DataType,
    },
    /// `name(args)`; the name is lower-cased. `count(*)` has no args and `star`.
    Function {
        /// Function name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
        /// `f(*)`.
        star: bool,
    },
    /// `CASE [operand] WHEN ... THEN ... [ELSE ...] END`
    Case {
        /// `CASE x WHEN ...` operand.
        operand: Option<Box<Expr>>,
        /// WHEN/THEN pairs.
        branches: Vec<(Expr, Expr)>,
        /// ELSE.
        otherwise: Option<Box<Expr>>,
    },
}
