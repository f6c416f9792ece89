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
        /// Table-level CHECK constraints.
        checks: Vec<Check>,
    },
    /// `DROP TABLE [IF EXISTS] names`
    DropTable {
        /// Tables.
        names: Vec<String>,
        /// No error if absent.
        if_exists: bool,
    },
    /// `DROP INDEX [IF EXISTS] names`
    DropIndex {
        /// Indexes.
        names: Vec<String>,
        /// No error if absent.
        if_exists: bool,
    },
    /// `ALTER TABLE [IF EXISTS] name action`
    AlterTable {
        /// Table.
        table: String,
        /// No error if the table is absent.
        if_exists: bool,
        /// What to change.
        action: AlterAction,
    },
    /// `COPY table [(columns)] FROM STDIN | COPY {table | (query)} TO STDOUT`
    Copy(Box<Copy>),
    /// `TRUNCATE [TABLE] names`
    Truncate {
        /// Tables.
        tables: Vec<String>,
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
    /// `INSERT INTO table [(columns)] { VALUES (...), ... | query } [RETURNING ...]`
    Insert {
        /// Table.
        table: String,
        /// Target columns; empty means all, in order.
        columns: Vec<String>,
        /// Rows of expressions (empty when `query` is given).
        rows: Vec<Vec<Expr>>,
        /// `INSERT ... SELECT`: the rows come from this query.
        query: Option<Box<Query>>,
        /// `ON CONFLICT ...`
        on_conflict: Option<OnConflict>,
        /// RETURNING list (empty if none).
        returning: Vec<SelectItem>,
    },
    /// A query: `SELECT ...`, `VALUES ...`, `WITH ...`, set operations.
    Select(Box<Query>),
    /// `EXPLAIN [ANALYZE] statement`
    Explain {
        /// Run the statement and report what each plan node did.
        analyze: bool,
        /// The statement explained (a query).
        statement: Box<Statement>,
    },
    /// `UPDATE table [AS alias] SET col = expr, ... [FROM ...] [WHERE ...] [RETURNING ...]`
    Update {
        /// Table.
        table: String,
        /// The table's alias (it then qualifies its columns).
        alias: Option<String>,
        /// `FROM` items joined with the table (empty: a plain UPDATE).
        from: Vec<TableRef>,
        /// Assignments.
        set: Vec<(String, Expr)>,
        /// WHERE.
        filter: Option<Expr>,
        /// RETURNING list.
        returning: Vec<SelectItem>,
    },
    /// `DELETE FROM table [AS alias] [USING ...] [WHERE ...] [RETURNING ...]`
    Delete {
        /// Table.
        table: String,
        /// The table's alias (it then qualifies its columns).
        alias: Option<String>,
        /// `USING` items joined with the table (empty: a plain DELETE).
        using: Vec<TableRef>,
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
    /// `BEGIN` / `START TRANSACTION [ISOLATION LEVEL ...]`
    Begin {
        /// The isolation level asked for, if any.
        isolation: Option<Isolation>,
        /// READ ONLY (Some(true)) or READ WRITE (Some(false)), if given.
        read_only: Option<bool>,
    },
    /// `SET TRANSACTION [ISOLATION LEVEL ...] [READ ONLY | READ WRITE]`
    SetTransaction {
        /// The level, if given.
        isolation: Option<Isolation>,
        /// The access mode, if given.
        read_only: Option<bool>,
    },
    /// `SAVEPOINT name`
    Savepoint(String),
    /// `ROLLBACK TO [SAVEPOINT] name`
    RollbackTo(String),
    /// `RELEASE [SAVEPOINT] name`
    Release(String),
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
    /// The DEFAULT expression's SQL text (kept for defaults evaluated per
    /// row, such as `now()`).
    pub default_sql: Option<String>,
    /// Column-level CHECK constraints.
    pub checks: Vec<Check>,
}

/// A COPY statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// What is copied.
    pub source: CopySource,
    /// TO STDOUT (else FROM STDIN).
    pub to: bool,
    /// Format options.
    pub options: CopyOptions,
    /// Rows written inline after the statement (a script's `COPY ... FROM
    /// stdin;` followed by data and `\.`).
    pub payload: Option<String>,
}

/// The table (and columns) or query of a COPY.
#[derive(Debug, Clone, PartialEq)]
pub enum CopySource {
    /// A table, optionally some of its columns.
    Table {
        /// Table.
        name: String,
        /// Columns (empty: all).
        columns: Vec<String>,
    },
    /// `COPY (query) TO STDOUT`.
    Query(Box<Query>),
}

/// COPY's format options (PostgreSQL's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct CopyOptions {
    /// CSV (else PostgreSQL's text format).
    pub csv: bool,
    /// Field separator (tab for text, comma for CSV).
    pub delimiter: char,
    /// The text of a NULL (`\N` for text, empty for CSV).
    pub null: String,
    /// A header line (CSV).
    pub header: bool,
    /// CSV quote character.
    pub quote: char,
    /// CSV escape character (the quote by default).
    pub escape: char,
}

impl Default for CopyOptions {
    fn default() -> CopyOptions {
        CopyOptions {
            csv: false,
            delimiter: '\t',
            null: "\\N".into(),
            header: false,
            quote: '"',
            escape: '"',
        }
    }
}

/// One ALTER TABLE action.
#[derive(Debug, Clone, PartialEq)]
pub enum AlterAction {
    /// `ADD [COLUMN] [IF NOT EXISTS] column`
    AddColumn {
        /// The new column.
        column: ColumnSpec,
        /// Do nothing if it exists.
        if_not_exists: bool,
    },
    /// `DROP [COLUMN] [IF EXISTS] name`
    DropColumn {
        /// Column.
        name: String,
        /// No error if absent.
        if_exists: bool,
    },
    /// `RENAME [COLUMN] from TO to`
    RenameColumn {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// `RENAME TO name`
    RenameTo(String),
}

/// A CHECK constraint.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Its name, if given.
    pub name: Option<String>,
    /// The condition's SQL text (stored in the catalog, parsed on use).
    pub sql: String,
}

/// `ON CONFLICT [(columns)] DO NOTHING | DO UPDATE SET ... [WHERE ...]`
#[derive(Debug, Clone, PartialEq)]
pub struct OnConflict {
    /// The unique columns whose conflict is handled (empty: any).
    pub columns: Vec<String>,
    /// What to do.
    pub action: ConflictAction,
}

/// The action of ON CONFLICT.
#[derive(Debug, Clone, PartialEq)]
pub enum ConflictAction {
    /// Skip the row.
    Nothing,
    /// Update the existing row (`excluded.col` is the proposed row).
    Update {
        /// Assignments.
        set: Vec<(String, Expr)>,
        /// Only update when this holds.
        filter: Option<Expr>,
    },
}

/// Transaction isolation levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// READ UNCOMMITTED (runs as READ COMMITTED, as in PostgreSQL).
    ReadUncommitted,
    /// READ COMMITTED: each statement sees the newest committed data.
    ReadCommitted,
    /// REPEATABLE READ: one snapshot for the whole transaction.
    RepeatableRead,
    /// SERIALIZABLE (refused: tiers does not detect write skew).
    Serializable,
}

/// A query: `[WITH ...] body [ORDER BY ...] [LIMIT ...] [OFFSET ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Common table expressions, in order (each sees the ones before it).
    pub with: Vec<Cte>,
    /// SELECT, VALUES or a set operation.
    pub body: SetExpr,
    /// ORDER BY.
    pub order_by: Vec<OrderBy>,
    /// LIMIT (an expression evaluating to a count).
    pub limit: Option<Expr>,
    /// OFFSET.
    pub offset: Option<Expr>,
}

impl Query {
    /// A query that is just `body`.
    pub fn plain(body: SetExpr) -> Query {
        Query {
            with: Vec::new(),
            body,
            order_by: Vec::new(),
            limit: None,
            offset: None,
        }
    }
}

/// `name [(columns)] AS (query)` in a WITH clause.
#[derive(Debug, Clone, PartialEq)]
pub struct Cte {
    /// Name.
    pub name: String,
    /// Column names (empty: the query's own).
    pub columns: Vec<String>,
    /// The query.
    pub query: Query,
}

/// The body of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum SetExpr {
    /// `SELECT ...`
    Select(Box<Select>),
    /// `VALUES (...), (...)`
    Values(Vec<Vec<Expr>>),
    /// `left UNION|INTERSECT|EXCEPT [ALL] right`
    SetOp {
        /// Operator.
        op: SetOp,
        /// ALL (keep duplicates).
        all: bool,
        /// Left input.
        left: Box<SetExpr>,
        /// Right input.
        right: Box<SetExpr>,
    },
    /// A parenthesized query with its own ORDER BY / LIMIT.
    Query(Box<Query>),
}

/// Set operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// UNION
    Union,
    /// INTERSECT
    Intersect,
    /// EXCEPT
    Except,
}

/// A SELECT block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Select {
    /// SELECT DISTINCT.
    pub distinct: bool,
    /// The select list.
    pub items: Vec<SelectItem>,
    /// FROM items (empty for `SELECT 1`); several are a cross join.
    pub from: Vec<TableRef>,
    /// WHERE.
    pub filter: Option<Expr>,
    /// GROUP BY expressions.
    pub group_by: Vec<Expr>,
    /// HAVING.
    pub having: Option<Expr>,
}

/// An item of a FROM clause.
#[derive(Debug, Clone, PartialEq)]
pub enum TableRef {
    /// A table (or a CTE) by name.
    Table {
        /// Name.
        name: String,
        /// Alias.
        alias: Option<Alias>,
    },
    /// `(query) AS alias`
    Derived {
        /// The query.
        query: Box<Query>,
        /// Alias.
        alias: Option<Alias>,
    },
    /// A set-returning function such as `generate_series(1, 10)`.
    Function {
        /// Function name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
        /// Alias.
        alias: Option<Alias>,
    },
    /// `left [kind] JOIN right [ON ... | USING (...)]`
    Join {
        /// Left input.
        left: Box<TableRef>,
        /// Right input.
        right: Box<TableRef>,
        /// INNER, LEFT, RIGHT, FULL or CROSS.
        kind: JoinKind,
        /// The join condition.
        condition: JoinCondition,
    },
}

/// `AS name [(columns)]`
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// Name.
    pub name: String,
    /// Column renames, in order.
    pub columns: Vec<String>,
}

/// Join kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// INNER JOIN.
    Inner,
    /// LEFT [OUTER] JOIN.
    Left,
    /// RIGHT [OUTER] JOIN.
    Right,
    /// FULL [OUTER] JOIN.
    Full,
    /// CROSS JOIN (and commas in FROM).
    Cross,
}

/// How a join matches rows.
#[derive(Debug, Clone, PartialEq)]
pub enum JoinCondition {
    /// No condition (CROSS JOIN).
    None,
    /// `ON expr`
    On(Expr),
    /// `USING (columns)`
    Using(Vec<String>),
    /// NATURAL: the columns both sides share.
    Natural,
}

/// One item of a select (or RETURNING) list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`
    Wildcard,
    /// `table.*`
    QualifiedWildcard(String),
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
    /// `~` (POSIX regular expression match), `~*` (case-insensitive), and
    /// their negations `!~`, `!~*`.
    Regex {
        /// `~*`, `!~*`.
        case_insensitive: bool,
        /// `!~`, `!~*`.
        negated: bool,
    },
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
        /// `f(DISTINCT ...)` (aggregates).
        distinct: bool,
    },
    /// `(SELECT ...)` giving one value.
    Subquery(Box<Query>),
    /// `[NOT] EXISTS (SELECT ...)`
    Exists {
        /// The query.
        query: Box<Query>,
        /// NOT EXISTS.
        negated: bool,
    },
    /// `expr [NOT] IN (SELECT ...)`
    InSubquery {
        /// Operand.
        expr: Box<Expr>,
        /// The query (one column).
        query: Box<Query>,
        /// NOT IN.
        negated: bool,
    },
    /// A column of the current input row, by position (made by the planner).
    Bound(usize),
    /// A column of an enclosing query's current row (correlated subqueries):
    /// `depth` 1 is the immediately enclosing query.
    Outer {
        /// How many query levels out.
        depth: usize,
        /// Column position in that level's row.
        index: usize,
    },
    /// A planned subquery (made by the planner).
    SubPlan(std::sync::Arc<crate::query::SubPlan>),
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
