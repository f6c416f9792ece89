//! The SQL front door: text in, [`crate::ast`] statements out.
//!
//! [`parse`] runs `sqlparser` with its PostgreSQL dialect and translates the
//! resulting syntax tree into tiers' own small AST. Everything tiers cannot
//! execute is refused here, with SQLSTATE `0A000` (feature_not_supported) and
//! a message naming the construct; malformed SQL gets `42601` (syntax_error).
//!
//! The boundary this module keeps: `sqlparser`'s types never leave it. The
//! planner and executor only see [`crate::ast`], so a new `sqlparser`
//! release (whose AST changes often) touches this module alone. This file
//! holds the entry points, errors, statement dispatch, names and types;
//! `ddl` translates CREATE TABLE and CREATE INDEX, `dml` the writes and
//! queries, `expr` expressions and literals, and `template` caches parsed
//! statement shapes ([`StatementCache`]).
//!
//! Translation rules worth knowing:
//! - unquoted identifiers are lower-cased (ASCII only, as PostgreSQL does);
//!   quoted ones are kept as written; `public.x` is accepted as `x`;
//! - column qualifiers naming the statement's own table (or its alias) are
//!   dropped, so the executor sees plain column names; any other qualifier
//!   is kept for the executor to reject;
//! - a minus sign directly before a numeric literal is folded into the
//!   literal (as PostgreSQL does), so `-9223372036854775808` is an `Int`;
//! - expressions nested deeper than [`MAX_EXPR_DEPTH`] are refused with
//!   `54001` (statement_too_complex), which keeps this translation (and
//!   every later pass over the tree) within a bounded stack; `depth` bounds
//!   the tree `sqlparser` itself builds before it is built.

mod ddl;
mod depth;
mod dml;
mod expr;
mod template;

pub use ddl::expression;
use ddl::*;
use dml::*;
use expr::*;

pub use template::StatementCache;

use sqlparser::ast as sql;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::ast::{
    Alias, AlterAction, BinaryOp, Check, ColumnSpec, ConflictAction, Copy, CopyOptions, CopySource,
    Cte, Expr, Isolation, JoinCondition, JoinKind, OnConflict, OrderBy, Query, Select, SelectItem,
    SetExpr, SetOp, Statement, TableRef,
};
use crate::catalog::IndexKind;
use crate::error::{Result, SqlError, sqlstate};
use crate::types::DataType;
use crate::value::Value;

/// The deepest expression nesting accepted; deeper input is refused with
/// `54001` (statement_too_complex) instead of risking the stack.
pub const MAX_EXPR_DEPTH: usize = 256;

/// The largest `$n` placeholder accepted (the wire protocol's Bind message
/// cannot carry more parameters).
const MAX_PARAMETER: usize = 65_535;

/// PostgreSQL's limit on `varchar(n)` / `char(n)` lengths.
const MAX_CHAR_LENGTH: u64 = 10_485_760;

/// Parses one or more `;`-separated statements (PostgreSQL dialect).
///
/// Empty input (or only semicolons and comments) gives an empty list. Errors
/// carry `42601` for malformed SQL, `0A000` for SQL tiers does not support,
/// `22003` for numeric literals out of range and `54001` for input nested too
/// deeply.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    depth::check(sql)?;
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(parser_error)?;
    statements.into_iter().map(statement).collect()
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

fn parser_error(e: ParserError) -> SqlError {
    match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => syntax(m),
        ParserError::RecursionLimitExceeded => too_deep(),
    }
}

/// A sqlparser syntax error.
fn syntax(message: impl std::fmt::Display) -> SqlError {
    SqlError::new(sqlstate::SYNTAX_ERROR, format!("syntax error: {message}"))
}

/// A statement that parses but is malformed in a way PostgreSQL reports
/// as a syntax error (42601), with a message of ours.
fn invalid(message: impl Into<String>) -> SqlError {
    SqlError::new(sqlstate::SYNTAX_ERROR, message)
}

fn unsupported(what: impl std::fmt::Display) -> SqlError {
    SqlError::new(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!("{what} is not supported yet"),
    )
}

fn too_deep() -> SqlError {
    depth::too_complex()
}

/// `Err(unsupported(what))` when `present`.
fn refuse(present: bool, what: &str) -> Result<()> {
    if present {
        Err(unsupported(what))
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------

fn statement(stmt: sql::Statement) -> Result<Statement> {
    use sql::Statement as S;
    match stmt {
        S::CreateTable(ct) => create_table(ct),
        S::CreateIndex(ci) => create_index(ci),
        S::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            purge,
            temporary,
            table,
            ..
        } => {
            refuse(cascade, "DROP ... CASCADE")?;
            refuse(purge || temporary || table.is_some(), "this form of DROP")?;
            drop_table(object_type, if_exists, names)
        }
        S::Insert(ins) => insert(ins),
        S::AlterTable(at) => alter_table(at),
        S::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            payload,
        } => copy(source, to, target, options, legacy_options, payload),
        S::Truncate(t) => {
            refuse(
                t.partitions.is_some() || t.identity.is_some() || t.cascade.is_some(),
                "this form of TRUNCATE",
            )?;
            refuse(t.on_cluster.is_some(), "this form of TRUNCATE")?;
            let tables = t
                .table_names
                .into_iter()
                .map(|n| relation_name(n.name))
                .collect::<Result<_>>()?;
            Ok(Statement::Truncate { tables })
        }
        S::Query(q) => Ok(Statement::Select(Box::new(query(*q)?))),
        S::Explain {
            analyze,
            verbose,
            query_plan,
            estimate,
            statement: inner,
            format,
            options,
            ..
        } => {
            refuse(
                verbose || query_plan || estimate || format.is_some() || options.is_some(),
                "EXPLAIN options other than ANALYZE",
            )?;
            let inner = statement(*inner)?;
            if !matches!(inner, Statement::Select(_)) {
                return Err(unsupported("EXPLAIN of a statement other than a query"));
            }
            Ok(Statement::Explain {
                analyze,
                statement: Box::new(inner),
            })
        }
        S::Savepoint { name } => Ok(Statement::Savepoint(ident(name))),
        S::ReleaseSavepoint { name } => Ok(Statement::Release(ident(name))),
        S::Set(sql::Set::SetTransaction {
            modes,
            snapshot,
            session,
        }) => {
            refuse(
                snapshot.is_some() || session,
                "this form of SET TRANSACTION",
            )?;
            let (isolation, read_only) = transaction_modes(&modes)?;
            Ok(Statement::SetTransaction {
                isolation,
                read_only,
            })
        }
        S::Update(u) => update(u),
        S::Delete(d) => delete(d),
        S::StartTransaction {
            modes,
            statements,
            exception,
            modifier,
            ..
        } => {
            refuse(
                !statements.is_empty() || exception.is_some(),
                "BEGIN ... END blocks",
            )?;
            refuse(modifier.is_some(), "this form of BEGIN")?;
            begin(&modes)
        }
        S::Commit {
            chain, modifier, ..
        } => {
            refuse(chain, "COMMIT AND CHAIN")?;
            refuse(modifier.is_some(), "this form of COMMIT")?;
            Ok(Statement::Commit)
        }
        S::Set(sql::Set::SingleAssignment {
            variable, values, ..
        }) => Ok(Statement::Set {
            name: name_parts(variable)?.join("."),
            value: values
                .iter()
                .map(setting_text)
                .collect::<Vec<_>>()
                .join(", "),
        }),
        S::Set(sql::Set::SetTimeZone { value, .. }) => Ok(Statement::Set {
            name: "timezone".into(),
            value: setting_text(&value),
        }),
        S::ShowVariable { variable } => Ok(Statement::Show {
            name: variable
                .into_iter()
                .map(ident)
                .collect::<Vec<_>>()
                .join(" "),
        }),
        S::Rollback { chain, savepoint } => {
            refuse(chain, "ROLLBACK AND CHAIN")?;
            match savepoint {
                Some(name) => Ok(Statement::RollbackTo(ident(name))),
                None => Ok(Statement::Rollback),
            }
        }
        other => Err(unsupported(statement_name(&other))),
    }
}

/// A SET value as text: string literals unquoted, anything else as written.
fn setting_text(e: &sql::Expr) -> String {
    match e {
        sql::Expr::Value(v) => match &v.value {
            sql::Value::SingleQuotedString(s) | sql::Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        sql::Expr::Identifier(id) => id.value.clone(),
        other => {
            // Bounded: a SET value is short; refuse deep expressions rather than print them.
            let text = other.to_string();
            text.chars().take(1024).collect()
        }
    }
}

/// A name for a statement tiers refuses (without formatting the statement,
/// whose expressions may be arbitrarily deep).
fn statement_name(stmt: &sql::Statement) -> &'static str {
    use sql::Statement as S;
    match stmt {
        S::AlterTable { .. } => "ALTER TABLE",
        S::AlterIndex { .. } => "ALTER INDEX",
        S::AlterView { .. } => "ALTER VIEW",
        S::AlterSchema { .. } => "ALTER SCHEMA",
        S::AlterRole { .. } | S::AlterUser { .. } => "ALTER ROLE",
        S::CreateView { .. } => "CREATE VIEW",
        S::CreateSchema { .. } => "CREATE SCHEMA",
        S::CreateDatabase { .. } => "CREATE DATABASE",
        S::CreateSequence { .. } => "CREATE SEQUENCE",
        S::CreateFunction { .. } | S::CreateProcedure { .. } => "CREATE FUNCTION",
        S::CreateTrigger { .. } => "CREATE TRIGGER",
        S::CreateType { .. } | S::CreateDomain { .. } => "CREATE TYPE",
        S::CreateExtension { .. } => "CREATE EXTENSION",
        S::CreateRole { .. } | S::CreateUser { .. } => "CREATE ROLE",
        S::RenameTable { .. } => "RENAME TABLE",
        S::Truncate { .. } => "TRUNCATE",
        S::Explain { .. } | S::ExplainTable { .. } => "EXPLAIN",
        S::Analyze { .. } => "ANALYZE",
        S::Vacuum { .. } => "VACUUM",
        S::Copy { .. } => "COPY",
        S::Set { .. } | S::Reset { .. } => "SET",
        S::ShowVariable { .. } | S::ShowVariables { .. } | S::ShowTables { .. } => "SHOW",
        S::Grant { .. } | S::Revoke { .. } => "GRANT/REVOKE",
        S::Prepare { .. } | S::Execute { .. } | S::Deallocate { .. } => "SQL-level PREPARE",
        S::Declare { .. } | S::Fetch { .. } | S::Close { .. } => "cursor",
        S::Savepoint { .. } | S::ReleaseSavepoint { .. } => "SAVEPOINT",
        S::Merge { .. } => "MERGE",
        S::Lock { .. } | S::LockTables { .. } => "LOCK",
        S::Comment { .. } => "COMMENT",
        S::Discard { .. } => "DISCARD",
        S::Call { .. } => "CALL",
        S::LISTEN { .. } | S::UNLISTEN { .. } | S::NOTIFY { .. } => "LISTEN/NOTIFY",
        S::RefreshMaterializedView { .. } => "REFRESH MATERIALIZED VIEW",
        _ => "this statement",
    }
}

fn begin(modes: &[sql::TransactionMode]) -> Result<Statement> {
    let (isolation, read_only) = transaction_modes(modes)?;
    Ok(Statement::Begin {
        isolation,
        read_only,
    })
}

/// The isolation level and access mode among transaction modes.
fn transaction_modes(modes: &[sql::TransactionMode]) -> Result<(Option<Isolation>, Option<bool>)> {
    let mut level = None;
    let mut read_only = None;
    for mode in modes {
        match mode {
            sql::TransactionMode::IsolationLevel(l) => {
                use sql::TransactionIsolationLevel as L;
                level = Some(match l {
                    L::ReadUncommitted => Isolation::ReadUncommitted,
                    L::ReadCommitted => Isolation::ReadCommitted,
                    L::RepeatableRead | L::Snapshot => Isolation::RepeatableRead,
                    L::Serializable => Isolation::Serializable,
                });
            }
            sql::TransactionMode::AccessMode(sql::TransactionAccessMode::ReadWrite) => {
                read_only = Some(false);
            }
            sql::TransactionMode::AccessMode(sql::TransactionAccessMode::ReadOnly) => {
                read_only = Some(true);
            }
        }
    }
    Ok((level, read_only))
}

fn copy(
    source: sql::CopySource,
    to: bool,
    target: sql::CopyTarget,
    options: Vec<sql::CopyOption>,
    legacy: Vec<sql::CopyLegacyOption>,
    payload: Option<sql::CopyPayload>,
) -> Result<Statement> {
    match (&target, to) {
        (sql::CopyTarget::Stdin, false) | (sql::CopyTarget::Stdout, true) => {}
        (sql::CopyTarget::File { .. } | sql::CopyTarget::Program { .. }, _) => {
            return Err(unsupported(
                "COPY to or from a server file or program (use STDIN/STDOUT, e.g. psql's \\copy)",
            ));
        }
        _ => return Err(syntax("COPY FROM reads STDIN and COPY TO writes STDOUT")),
    }
    let source = match source {
        sql::CopySource::Table {
            table_name,
            columns,
        } => CopySource::Table {
            name: relation_name(table_name)?,
            columns: columns.into_iter().map(ident).collect(),
        },
        sql::CopySource::Query(q) => {
            if !to {
                return Err(syntax("COPY (query) works only with TO"));
            }
            CopySource::Query(Box::new(query(*q)?))
        }
    };
    let mut o = CopyOptions::default();
    let mut delimiter = None;
    let mut null = None;
    for option in options {
        match option {
            sql::CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                "csv" => o.csv = true,
                "text" => o.csv = false,
                other => return Err(unsupported(format!("COPY format {other}"))),
            },
            sql::CopyOption::Delimiter(c) => delimiter = Some(c),
            sql::CopyOption::Null(n) => null = Some(n),
            sql::CopyOption::Header(h) => o.header = h,
            sql::CopyOption::Quote(c) => o.quote = c,
            sql::CopyOption::Escape(c) => o.escape = c,
            sql::CopyOption::Encoding(e)
                if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            sql::CopyOption::Freeze(_) => {}
            _ => return Err(unsupported("this COPY option")),
        }
    }
    for option in legacy {
        match option {
            sql::CopyLegacyOption::Csv(csv) => {
                o.csv = true;
                for c in csv {
                    match c {
                        sql::CopyLegacyCsvOption::Header => o.header = true,
                        sql::CopyLegacyCsvOption::Quote(q) => o.quote = q,
                        sql::CopyLegacyCsvOption::Escape(e) => o.escape = e,
                        _ => return Err(unsupported("this COPY CSV option")),
                    }
                }
            }
            sql::CopyLegacyOption::Delimiter(c) => delimiter = Some(c),
            sql::CopyLegacyOption::Null(n) => null = Some(n),
            sql::CopyLegacyOption::Header => o.header = true,
            sql::CopyLegacyOption::Binary => return Err(unsupported("COPY BINARY")),
            _ => return Err(unsupported("this COPY option")),
        }
    }
    if o.csv {
        o.delimiter = ',';
        o.null = String::new();
    } else if o.header {
        return Err(unsupported("COPY HEADER in text format (use CSV)"));
    }
    if let Some(d) = delimiter {
        o.delimiter = d;
    }
    if let Some(n) = null {
        o.null = n;
    }
    if o.delimiter == '\n' || o.delimiter == '\r' || (!o.csv && o.delimiter == '\\') {
        return Err(invalid(
            "COPY delimiter cannot be newline, carriage return or backslash",
        ));
    }
    Ok(Statement::Copy(Box::new(Copy {
        source,
        to,
        options: o,
        payload: payload.map(|p| p.data),
    })))
}

fn alter_table(at: sql::AlterTable) -> Result<Statement> {
    refuse(
        at.only || at.on_cluster.is_some(),
        "this form of ALTER TABLE",
    )?;
    let table = relation_name(at.name)?;
    let mut ops = at.operations.into_iter();
    let (Some(op), None) = (ops.next(), ops.next()) else {
        return Err(unsupported(
            "several actions in one ALTER TABLE (use one per statement)",
        ));
    };
    use sql::AlterTableOperation as O;
    let action = match op {
        O::AddColumn {
            if_not_exists,
            column_def,
            column_position,
            ..
        } => {
            refuse(column_position.is_some(), "a column position")?;
            let column = column_spec(&table, column_def)?;
            refuse(
                column.primary_key || column.unique || column.serial,
                "adding a PRIMARY KEY, UNIQUE or serial column (add the column, then CREATE UNIQUE INDEX)",
            )?;
            AlterAction::AddColumn {
                column,
                if_not_exists,
            }
        }
        O::DropColumn {
            column_names,
            if_exists,
            drop_behavior,
            ..
        } => {
            refuse(drop_behavior.is_some(), "CASCADE/RESTRICT")?;
            let mut names = column_names.into_iter();
            let (Some(name), None) = (names.next(), names.next()) else {
                return Err(unsupported("dropping several columns at once"));
            };
            AlterAction::DropColumn {
                name: ident(name),
                if_exists,
            }
        }
        O::RenameColumn {
            old_column_name,
            new_column_name,
        } => AlterAction::RenameColumn {
            from: ident(old_column_name),
            to: ident(new_column_name),
        },
        O::RenameTable { table_name } => {
            let (sql::RenameTableNameKind::As(name) | sql::RenameTableNameKind::To(name)) =
                table_name;
            AlterAction::RenameTo(relation_name(name)?)
        }
        _ => return Err(unsupported("this ALTER TABLE action")),
    };
    Ok(Statement::AlterTable {
        table,
        if_exists: at.if_exists,
        action,
    })
}

fn drop_table(
    kind: sql::ObjectType,
    if_exists: bool,
    names: Vec<sql::ObjectName>,
) -> Result<Statement> {
    let names = names
        .into_iter()
        .map(relation_name)
        .collect::<Result<_>>()?;
    match kind {
        sql::ObjectType::Table => Ok(Statement::DropTable { names, if_exists }),
        sql::ObjectType::Index => Ok(Statement::DropIndex { names, if_exists }),
        other => Err(unsupported(format!("DROP {other}"))),
    }
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

/// An identifier: unquoted ones are lower-cased (ASCII, as PostgreSQL does).
fn ident(id: sql::Ident) -> String {
    if id.quote_style.is_some() {
        id.value
    } else {
        id.value.to_ascii_lowercase()
    }
}

fn name_parts(name: sql::ObjectName) -> Result<Vec<String>> {
    name.0
        .into_iter()
        .map(|part| match part {
            sql::ObjectNamePart::Identifier(id) => Ok(ident(id)),
            sql::ObjectNamePart::Function(_) => Err(unsupported("a computed name")),
        })
        .collect()
}

/// A table or index name; `public.x` is `x`, other schemas are refused.
fn relation_name(name: sql::ObjectName) -> Result<String> {
    let mut parts = name_parts(name)?;
    let last = parts.pop().ok_or_else(|| invalid("empty name"))?;
    match parts.as_slice() {
        [] => Ok(last),
        [schema] if schema == "public" => Ok(last),
        [schema] if schema == "information_schema" || schema == "pg_catalog" => {
            Ok(format!("{schema}.{last}"))
        }
        _ => Err(unsupported("a schema other than public")),
    }
}

/// An unqualified column name (INSERT column lists, SET targets).
fn column_name(name: sql::ObjectName) -> Result<String> {
    let mut parts = name_parts(name)?;
    match (parts.pop(), parts.is_empty()) {
        (Some(column), true) => Ok(column),
        (Some(_), false) => Err(unsupported("a qualified column name here")),
        (None, _) => Err(invalid("empty column name")),
    }
}

/// A function name; `pg_catalog.f` is `f`.
fn function_name(name: sql::ObjectName) -> Result<String> {
    let mut parts = name_parts(name)?;
    let last = parts.pop().ok_or_else(|| invalid("empty function name"))?;
    match parts.as_slice() {
        [] => Ok(last),
        [schema] if schema == "pg_catalog" => Ok(last),
        _ => Err(unsupported("a schema-qualified function name")),
    }
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// Maps a type name; the flag is true for the SERIAL family.
fn data_type(t: &sql::DataType) -> Result<(DataType, bool)> {
    use sql::DataType as T;
    let mapped = match t {
        T::Bool | T::Boolean => DataType::Bool,
        T::SmallInt(None) | T::Int2(None) => DataType::Int2,
        T::Int(None) | T::Integer(None) | T::Int4(None) => DataType::Int4,
        T::BigInt(None) | T::Int8(None) => DataType::Int8,
        T::Real | T::Float4 => DataType::Float4,
        T::DoublePrecision | T::Float8 | T::Float(sql::ExactNumberInfo::None) => DataType::Float8,
        T::Float(sql::ExactNumberInfo::Precision(p)) => float_with_precision(*p)?,
        T::Text => DataType::Text,
        T::Varchar(len) | T::CharacterVarying(len) | T::CharVarying(len) => {
            DataType::Varchar(char_length(len, "varchar")?)
        }
        T::Char(len) | T::Character(len) => DataType::Char(char_length(len, "char")?.unwrap_or(1)),
        T::Bytea => DataType::Bytea,
        T::Date => DataType::Date,
        T::Timestamp(None, sql::TimezoneInfo::None | sql::TimezoneInfo::WithoutTimeZone) => {
            DataType::Timestamp
        }
        T::Timestamp(None, sql::TimezoneInfo::WithTimeZone | sql::TimezoneInfo::Tz) => {
            DataType::TimestampTz
        }
        T::Timestamp(Some(_), _) => return Err(unsupported("timestamp precision")),
        T::Numeric(info) | T::Decimal(info) | T::Dec(info) => numeric_type(info)?,
        T::Custom(name, modifiers) if modifiers.is_empty() => return custom_type(name),
        other => return Err(unsupported(format!("type {other}"))),
    };
    Ok((mapped, false))
}

/// A type in an expression (CAST, `::`, typed literals): no SERIAL.
fn cast_type(t: &sql::DataType) -> Result<DataType> {
    match data_type(t)? {
        (mapped, false) => Ok(mapped),
        (_, true) => Err(unsupported("a serial type outside CREATE TABLE")),
    }
}

/// Type names sqlparser does not know: the SERIAL family.
fn custom_type(name: &sql::ObjectName) -> Result<(DataType, bool)> {
    let parts = name_parts(name.clone())?;
    let serial = match parts.as_slice() {
        [n] if n == "serial" || n == "serial4" => DataType::Int4,
        [n] if n == "bigserial" || n == "serial8" => DataType::Int8,
        [n] if n == "smallserial" || n == "serial2" => DataType::Int2,
        _ => return Err(unsupported(format!("type {name}"))),
    };
    Ok((serial, true))
}

/// `numeric`, `numeric(p)` or `numeric(p, s)`.
fn numeric_type(info: &sql::ExactNumberInfo) -> Result<DataType> {
    let max = crate::value::NUMERIC_MAX_DIGITS;
    let (p, s) = match *info {
        sql::ExactNumberInfo::None => return Ok(DataType::Numeric(None)),
        sql::ExactNumberInfo::Precision(p) => (p, 0),
        sql::ExactNumberInfo::PrecisionAndScale(p, s) => (p, s),
    };
    if p == 0 {
        return Err(invalid(format!(
            "NUMERIC precision {p} must be between 1 and {max}"
        )));
    }
    if p > u64::from(max) {
        return Err(unsupported(format!(
            "NUMERIC precision {p} (tiers' numeric holds at most {max} digits)"
        )));
    }
    if s < 0 || s as u64 > p {
        return Err(unsupported(format!(
            "NUMERIC scale {s} outside 0 to the precision {p}"
        )));
    }
    Ok(DataType::Numeric(Some((p as u8, s as u8))))
}

/// `float(p)`: PostgreSQL's `real` up to 24 bits of precision, then `double`.
fn float_with_precision(p: u64) -> Result<DataType> {
    match p {
        1..=24 => Ok(DataType::Float4),
        25..=53 => Ok(DataType::Float8),
        _ => Err(invalid(format!(
            "precision for type float must be between 1 and 53 bits, not {p}"
        ))),
    }
}

fn char_length(len: &Option<sql::CharacterLength>, type_name: &str) -> Result<Option<u32>> {
    match len {
        None => Ok(None),
        Some(sql::CharacterLength::IntegerLength { length, unit: None }) => {
            if *length == 0 || *length > MAX_CHAR_LENGTH {
                return Err(invalid(format!(
                    "length for type {type_name} must be between 1 and {MAX_CHAR_LENGTH}"
                )));
            }
            u32::try_from(*length)
                .map(Some)
                .map_err(|_| invalid("length out of range"))
        }
        Some(_) => Err(unsupported(format!("this length for type {type_name}"))),
    }
}

#[cfg(test)]
mod tests;
