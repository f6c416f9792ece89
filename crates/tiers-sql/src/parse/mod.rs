//! The SQL front door: text in, [`crate::ast`] statements out.
//!
//! [`parse`] runs `sqlparser` with its PostgreSQL dialect and translates the
//! resulting syntax tree into tiers' own small AST. Everything tiers cannot
//! execute is refused here, with SQLSTATE `0A000` (feature_not_supported) and
//! a message naming the construct; malformed SQL gets `42601` (syntax_error).
//!
//! The boundary this module keeps: `sqlparser`'s types never leave this file.
//! The planner and executor only see [`crate::ast`], so a new `sqlparser`
//! release (whose AST changes often) touches this file alone.
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
//!   `54000`, which keeps this translation (and every later pass over the
//!   tree) within a bounded stack.

mod template;

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
/// `54000` (program_limit_exceeded) instead of risking the stack.
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
/// `22003` for numeric literals out of range and `54000` for input nested too
/// deeply.
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
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
    SqlError::new(
        sqlstate::PROGRAM_LIMIT_EXCEEDED,
        "statement is too deeply nested",
    )
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
// CREATE TABLE
// ---------------------------------------------------------------------------

fn create_table(mut ct: sql::CreateTable) -> Result<Statement> {
    let columns = std::mem::take(&mut ct.columns);
    let constraints = std::mem::take(&mut ct.constraints);
    check_create_table_options(&ct)?;
    let name = relation_name(ct.name)?;
    let mut columns = columns
        .into_iter()
        .map(|def| column_spec(&name, def))
        .collect::<Result<Vec<_>>>()?;
    let (primary_key, unique, checks) = table_constraints(&name, constraints)?;
    check_keys(&name, &mut columns, &primary_key, &unique)?;
    Ok(Statement::CreateTable {
        name,
        if_not_exists: ct.if_not_exists,
        columns,
        primary_key,
        unique,
        checks,
    })
}

/// Refuses every CREATE TABLE clause beyond name, columns and constraints
/// (which the caller has taken out of `ct`): the well-known ones by name,
/// the rest by comparing with a plain table.
fn check_create_table_options(ct: &sql::CreateTable) -> Result<()> {
    refuse(ct.temporary || ct.global.is_some(), "TEMPORARY table")?;
    refuse(ct.unlogged, "UNLOGGED table")?;
    refuse(ct.or_replace, "CREATE OR REPLACE TABLE")?;
    refuse(ct.query.is_some(), "CREATE TABLE AS")?;
    refuse(
        ct.like.is_some() || ct.clone.is_some(),
        "CREATE TABLE ... LIKE",
    )?;
    refuse(ct.inherits.is_some(), "INHERITS")?;
    refuse(
        ct.partition_of.is_some() || ct.partition_by.is_some(),
        "partitioned table",
    )?;
    refuse(ct.on_commit.is_some(), "ON COMMIT")?;
    let plain = sql::helpers::stmt_create_table::CreateTableBuilder::new(ct.name.clone())
        .if_not_exists(ct.if_not_exists)
        .build();
    refuse(plain != *ct, "this CREATE TABLE option")
}

fn column_spec(table: &str, def: sql::ColumnDef) -> Result<ColumnSpec> {
    let (data_type, serial) = data_type(&def.data_type)?;
    let mut spec = ColumnSpec {
        name: ident(def.name),
        data_type,
        not_null: false,
        primary_key: false,
        unique: false,
        default: None,
        serial,
        default_sql: None,
        checks: Vec::new(),
    };
    check_null_conflict(&spec.name, &def.options)?;
    for option in def.options {
        column_option(table, &mut spec, option.option)?;
    }
    if spec.serial && spec.default.is_some() {
        return Err(invalid(format!(
            "both default and identity specified for column \"{}\"",
            spec.name
        )));
    }
    Ok(spec)
}

fn check_null_conflict(column: &str, options: &[sql::ColumnOptionDef]) -> Result<()> {
    let has = |f: fn(&sql::ColumnOption) -> bool| options.iter().any(|o| f(&o.option));
    let null = has(|o| matches!(o, sql::ColumnOption::Null));
    let not_null = has(|o| matches!(o, sql::ColumnOption::NotNull));
    if null && not_null {
        return Err(invalid(format!(
            "conflicting NULL/NOT NULL declarations for column \"{column}\""
        )));
    }
    Ok(())
}

fn column_option(table: &str, spec: &mut ColumnSpec, option: sql::ColumnOption) -> Result<()> {
    use sql::ColumnOption as O;
    match option {
        O::Null => {}
        O::NotNull => spec.not_null = true,
        O::Default(e) => {
            if spec.default.is_some() {
                let message = format!(
                    "multiple default values specified for column \"{}\"",
                    spec.name
                );
                return Err(invalid(message));
            }
            spec.default_sql = Some(e.to_string());
            spec.default = Some(Scope::default().expr(e)?);
        }
        O::Check(c) => {
            refuse(
                c.no_inherit || c.enforced == Some(false),
                "this CHECK option",
            )?;
            spec.checks.push(check(c)?);
        }
        O::PrimaryKey(pk) => {
            check_key_extras(
                &pk.include,
                &pk.index_options,
                &pk.characteristics,
                &pk.index_type,
            )?;
            if spec.primary_key {
                return Err(multiple_primary_keys(table));
            }
            spec.primary_key = true;
        }
        O::Unique(u) => {
            check_unique_extras(&u)?;
            spec.unique = true;
        }
        O::Generated {
            generated_as,
            sequence_options,
            generation_expr,
            ..
        } => {
            identity(spec, generated_as, sequence_options, generation_expr)?;
        }
        other => return Err(unsupported(column_option_name(&other))),
    }
    Ok(())
}

/// `GENERATED {ALWAYS | BY DEFAULT} AS IDENTITY`: a serial column.
fn identity(
    spec: &mut ColumnSpec,
    generated_as: sql::GeneratedAs,
    sequence_options: Option<Vec<sql::SequenceOptions>>,
    generation_expr: Option<sql::Expr>,
) -> Result<()> {
    refuse(generation_expr.is_some(), "generated column")?;
    refuse(
        generated_as == sql::GeneratedAs::ExpStored,
        "generated column",
    )?;
    refuse(
        sequence_options.is_some_and(|o| !o.is_empty()),
        "identity sequence option",
    )?;
    if !matches!(
        spec.data_type,
        DataType::Int2 | DataType::Int4 | DataType::Int8
    ) {
        return Err(SqlError::new(
            sqlstate::DATATYPE_MISMATCH,
            format!(
                "identity column type must be smallint, integer, or bigint (column \"{}\")",
                spec.name
            ),
        ));
    }
    if spec.serial {
        return Err(invalid(format!(
            "multiple identity specifications for column \"{}\"",
            spec.name
        )));
    }
    spec.serial = true;
    Ok(())
}

fn column_option_name(option: &sql::ColumnOption) -> &'static str {
    use sql::ColumnOption as O;
    match option {
        O::Check(_) => "CHECK constraint",
        O::ForeignKey(_) => "FOREIGN KEY constraint",
        O::Collation(_) | O::CharacterSet(_) => "COLLATE",
        O::Comment(_) => "column COMMENT",
        O::Identity(_) => "IDENTITY",
        _ => "this column option",
    }
}

fn multiple_primary_keys(table: &str) -> SqlError {
    invalid(format!(
        "multiple primary keys for table \"{table}\" are not allowed"
    ))
}

/// Table-level constraints: the PRIMARY KEY columns and the UNIQUE lists.
/// A CHECK constraint: its condition must translate now (so errors show at
/// CREATE TABLE); the catalog keeps its SQL text.
fn check(c: sql::CheckConstraint) -> Result<Check> {
    let sql = c.expr.to_string();
    Scope::default().expr(*c.expr)?;
    Ok(Check {
        name: c.name.map(ident),
        sql,
    })
}

/// Parses one expression (a stored DEFAULT or CHECK).
pub fn expression(sql: &str) -> Result<Expr> {
    /// Stored expressions (CHECK constraints, column defaults) are parsed
    /// for every statement that writes their table: keep what was parsed.
    static PARSED: std::sync::Mutex<Option<std::collections::HashMap<String, Expr>>> =
        std::sync::Mutex::new(None);
    const MAX_PARSED: usize = 4096;
    if let Some(e) = PARSED
        .lock()
        .expect("expression cache")
        .as_ref()
        .and_then(|m| m.get(sql))
    {
        return Ok(e.clone());
    }
    let e = parse_expression(sql)?;
    let mut cache = PARSED.lock().expect("expression cache");
    let map = cache.get_or_insert_with(Default::default);
    if map.len() >= MAX_PARSED {
        map.clear();
    }
    map.insert(sql.to_string(), e.clone());
    Ok(e)
}

fn parse_expression(sql: &str) -> Result<Expr> {
    let mut parser = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .map_err(parser_error)?;
    let e = parser.parse_expr().map_err(parser_error)?;
    Scope::default().expr(e)
}

type Constraints = (Vec<String>, Vec<Vec<String>>, Vec<Check>);

fn table_constraints(table: &str, constraints: Vec<sql::TableConstraint>) -> Result<Constraints> {
    let mut primary_key: Option<Vec<String>> = None;
    let mut unique = Vec::new();
    let mut checks = Vec::new();
    for constraint in constraints {
        match constraint {
            sql::TableConstraint::PrimaryKey(pk) => {
                check_key_extras(
                    &pk.include,
                    &pk.index_options,
                    &pk.characteristics,
                    &pk.index_type,
                )?;
                if primary_key.is_some() {
                    return Err(multiple_primary_keys(table));
                }
                primary_key = Some(index_columns(pk.columns)?);
            }
            sql::TableConstraint::Unique(u) => {
                check_unique_extras(&u)?;
                unique.push(index_columns(u.columns)?);
            }
            sql::TableConstraint::Check(c) => {
                refuse(
                    c.no_inherit || c.enforced == Some(false),
                    "this CHECK option",
                )?;
                checks.push(check(c)?);
            }
            other => return Err(unsupported(table_constraint_name(&other))),
        }
    }
    Ok((primary_key.unwrap_or_default(), unique, checks))
}

fn table_constraint_name(constraint: &sql::TableConstraint) -> &'static str {
    use sql::TableConstraint as C;
    match constraint {
        C::Check(_) => "CHECK constraint",
        C::ForeignKey(_) => "FOREIGN KEY constraint",
        C::Exclude(_) => "EXCLUDE constraint",
        C::PrimaryKeyUsingIndex(_) | C::UniqueUsingIndex(_) => "constraint USING INDEX",
        _ => "this table constraint",
    }
}

fn check_key_extras(
    include: &[sql::Ident],
    options: &[sql::IndexOption],
    characteristics: &Option<sql::ConstraintCharacteristics>,
    index_type: &Option<sql::IndexType>,
) -> Result<()> {
    refuse(!include.is_empty(), "INCLUDE")?;
    refuse(
        !options.is_empty() || index_type.is_some(),
        "index option on a key",
    )?;
    refuse(characteristics.is_some(), "DEFERRABLE constraint")
}

fn check_unique_extras(u: &sql::UniqueConstraint) -> Result<()> {
    check_key_extras(
        &u.include,
        &u.index_options,
        &u.characteristics,
        &u.index_type,
    )?;
    refuse(
        u.nulls_distinct == sql::NullsDistinctOption::NotDistinct,
        "NULLS NOT DISTINCT",
    )
}

/// Checks the keys against the columns: one primary key at most, key columns
/// that exist; primary key columns become NOT NULL, as in PostgreSQL.
fn check_keys(
    table: &str,
    columns: &mut [ColumnSpec],
    primary_key: &[String],
    unique: &[Vec<String>],
) -> Result<()> {
    let column_keys = columns.iter().filter(|c| c.primary_key).count();
    if column_keys + usize::from(!primary_key.is_empty()) > 1 {
        return Err(multiple_primary_keys(table));
    }
    for name in primary_key.iter().chain(unique.iter().flatten()) {
        if !columns.iter().any(|c| &c.name == name) {
            return Err(SqlError::new(
                sqlstate::UNDEFINED_COLUMN,
                format!("column \"{name}\" named in key does not exist"),
            ));
        }
    }
    for column in columns.iter_mut() {
        if column.primary_key || primary_key.contains(&column.name) {
            column.not_null = true;
        }
    }
    Ok(())
}

/// Key or index columns: plain column names only, ascending.
fn index_columns(columns: Vec<sql::IndexColumn>) -> Result<Vec<String>> {
    columns.into_iter().map(index_column).collect()
}

fn index_column(column: sql::IndexColumn) -> Result<String> {
    refuse(column.operator_class.is_some(), "operator class")?;
    let sql::OrderByExpr {
        expr,
        options,
        with_fill,
    } = column.column;
    refuse(with_fill.is_some(), "WITH FILL")?;
    refuse(
        options.nulls_first.is_some(),
        "NULLS FIRST/LAST on an index column",
    )?;
    match options.sort {
        None | Some(sql::OrderBySort::Asc) => {}
        Some(sql::OrderBySort::Desc) => return Err(unsupported("DESC on an index column")),
        Some(sql::OrderBySort::Using(_)) => return Err(unsupported("USING on an index column")),
    }
    match expr {
        sql::Expr::Identifier(id) => Ok(ident(id)),
        _ => Err(unsupported("index on an expression")),
    }
}

// ---------------------------------------------------------------------------
// CREATE INDEX
// ---------------------------------------------------------------------------

fn create_index(ci: sql::CreateIndex) -> Result<Statement> {
    refuse(!ci.include.is_empty(), "INCLUDE")?;
    refuse(ci.nulls_distinct == Some(false), "NULLS NOT DISTINCT")?;
    refuse(!ci.with.is_empty(), "index storage parameter")?;
    refuse(ci.predicate.is_some(), "partial index")?;
    refuse(
        ci.r#async || !ci.index_options.is_empty(),
        "this index option",
    )?;
    refuse(!ci.alter_options.is_empty(), "this index option")?;
    Ok(Statement::CreateIndex {
        name: ci.name.map(relation_name).transpose()?,
        table: relation_name(ci.table_name)?,
        columns: index_columns(ci.columns)?,
        unique: ci.unique,
        kind: index_kind(ci.using)?,
        if_not_exists: ci.if_not_exists,
    })
}

fn index_kind(using: Option<sql::IndexType>) -> Result<IndexKind> {
    match using {
        None | Some(sql::IndexType::BTree) => Ok(IndexKind::BTree),
        Some(sql::IndexType::Hash) => Ok(IndexKind::Hash),
        Some(sql::IndexType::Custom(name)) => match ident(name).as_str() {
            "btree" => Ok(IndexKind::BTree),
            "hash" => Ok(IndexKind::Hash),
            other => Err(unsupported(format!("index method \"{other}\""))),
        },
        Some(other) => Err(unsupported(format!("index method {other}"))),
    }
}

// ---------------------------------------------------------------------------
// INSERT, UPDATE, DELETE
// ---------------------------------------------------------------------------

fn insert(mut ins: sql::Insert) -> Result<Statement> {
    let on = ins.on.take();
    check_insert_clauses(&ins)?;
    let table = match ins.table {
        sql::TableObject::TableName(name) => relation_name(name)?,
        _ => return Err(unsupported("INSERT into a table function")),
    };
    let columns = ins
        .columns
        .into_iter()
        .map(column_name)
        .collect::<Result<Vec<_>>>()?;
    let rows = match ins.source {
        None => vec![vec![]],
        Some(q) => match insert_source(*q)? {
            SetExpr::Values(rows) => rows,
            body => {
                let returning = Scope::table(&table).returning(ins.returning)?;
                let on_conflict = on_conflict(on, &table)?;
                return Ok(Statement::Insert {
                    table,
                    columns,
                    rows: Vec::new(),
                    query: Some(Box::new(Query::plain(body))),
                    on_conflict,
                    returning,
                });
            }
        },
    };
    let returning = Scope::table(&table).returning(ins.returning)?;
    let on_conflict = on_conflict(on, &table)?;
    Ok(Statement::Insert {
        table,
        columns,
        rows,
        query: None,
        on_conflict,
        returning,
    })
}

/// `ON CONFLICT [(columns)] DO NOTHING | DO UPDATE SET ... [WHERE ...]`.
fn on_conflict(on: Option<sql::OnInsert>, table: &str) -> Result<Option<OnConflict>> {
    let c = match on {
        None => return Ok(None),
        Some(sql::OnInsert::OnConflict(c)) => c,
        Some(_) => return Err(unsupported("ON DUPLICATE KEY UPDATE")),
    };
    let columns = match c.conflict_target {
        None => Vec::new(),
        Some(sql::ConflictTarget::Columns { columns, .. }) => {
            columns.into_iter().map(ident).collect()
        }
        Some(_) => return Err(unsupported("ON CONFLICT ON CONSTRAINT (name the columns)")),
    };
    let action = match c.action {
        sql::OnConflictAction::DoNothing => ConflictAction::Nothing,
        sql::OnConflictAction::DoUpdate(u) => {
            if columns.is_empty() {
                return Err(syntax(
                    "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                ));
            }
            // Qualifiers stay: `excluded.x` and `<table>.x` are both in scope.
            let _ = table;
            let scope = Scope::default();
            let mut set: Vec<(String, Expr)> = Vec::new();
            for a in u.assignments {
                let (column, value) = scope.assignment(a)?;
                if set.iter().any(|(c, _)| *c == column) {
                    return Err(invalid(format!(
                        "multiple assignments to same column \"{column}\""
                    )));
                }
                set.push((column, value));
            }
            ConflictAction::Update {
                set,
                filter: scope.opt_expr(u.selection)?,
            }
        }
    };
    Ok(Some(OnConflict { columns, action }))
}

fn check_insert_clauses(ins: &sql::Insert) -> Result<()> {
    refuse(ins.table_alias.is_some(), "an alias on the INSERT target")?;
    refuse(ins.overriding.is_some(), "OVERRIDING")?;
    refuse(!ins.assignments.is_empty(), "INSERT ... SET")?;
    let other = ins.or.is_some()
        || ins.ignore
        || ins.by_name
        || ins.overwrite
        || ins.partitioned.is_some()
        || !ins.after_columns.is_empty()
        || ins.output.is_some()
        || ins.replace_into
        || ins.priority.is_some()
        || ins.insert_alias.is_some()
        || ins.settings.is_some()
        || ins.format_clause.is_some()
        || ins.multi_table_insert_type.is_some();
    refuse(other, "this form of INSERT")
}

/// What INSERT takes its rows from: `VALUES` lists stay as rows, anything
/// else is a query (its ORDER BY/LIMIT/WITH kept by wrapping it).
fn insert_source(q: sql::Query) -> Result<SetExpr> {
    let q = query(q)?;
    if q.with.is_empty() && q.order_by.is_empty() && q.limit.is_none() && q.offset.is_none() {
        Ok(q.body)
    } else {
        Ok(SetExpr::Query(Box::new(q)))
    }
}

/// The rows of a `VALUES (...), ...` list, all the same length.
fn values_list(values: sql::Values) -> Result<Vec<Vec<Expr>>> {
    refuse(values.explicit_row, "VALUES ROW(...)")?;
    let rows = values
        .rows
        .into_iter()
        .map(|row| {
            row.content
                .into_iter()
                .map(|e| Scope::default().expr(e))
                .collect()
        })
        .collect::<Result<Vec<Vec<Expr>>>>()?;
    if rows.windows(2).any(|w| w[0].len() != w[1].len()) {
        return Err(invalid("VALUES lists must all be the same length"));
    }
    Ok(rows)
}

fn update(u: sql::Update) -> Result<Statement> {
    let from = match u.from {
        None => Vec::new(),
        Some(sql::UpdateTableFromKind::AfterSet(from)) => from,
        Some(sql::UpdateTableFromKind::BeforeSet(_)) => {
            return Err(unsupported("UPDATE FROM ... SET (write SET before FROM)"));
        }
    };
    refuse(
        !u.order_by.is_empty() || u.limit.is_some(),
        "UPDATE ... ORDER BY/LIMIT",
    )?;
    refuse(u.or.is_some() || u.output.is_some(), "this form of UPDATE")?;
    refuse(
        u.on_cluster.is_some() || u.settings.is_some(),
        "this form of UPDATE",
    )?;
    let (table, target) = single_table(u.table)?;
    let from = from
        .into_iter()
        .map(table_with_joins)
        .collect::<Result<Vec<_>>>()?;
    // With FROM, names are resolved against every table, so qualifiers stay.
    let scope = if from.is_empty() {
        Scope::table_as(&table, target.alias.as_deref())
    } else {
        Scope::default()
    };
    let mut set: Vec<(String, Expr)> = Vec::with_capacity(u.assignments.len());
    for assignment in u.assignments {
        let (column, value) = scope.assignment(assignment)?;
        if set.iter().any(|(c, _)| *c == column) {
            return Err(invalid(format!(
                "multiple assignments to same column \"{column}\""
            )));
        }
        set.push((column, value));
    }
    let filter = scope.opt_expr(u.selection)?;
    let returning = target.returning(u.returning)?;
    Ok(Statement::Update {
        table,
        alias: target.alias,
        from,
        set,
        filter,
        returning,
    })
}

fn delete(d: sql::Delete) -> Result<Statement> {
    refuse(!d.tables.is_empty(), "DELETE with a table list")?;
    refuse(
        !d.order_by.is_empty() || d.limit.is_some(),
        "DELETE ... ORDER BY/LIMIT",
    )?;
    refuse(
        d.output.is_some() || d.on_cluster.is_some(),
        "this form of DELETE",
    )?;
    refuse(d.settings.is_some(), "this form of DELETE")?;
    let from = match d.from {
        sql::FromTable::WithFromKeyword(from) | sql::FromTable::WithoutKeyword(from) => from,
    };
    let mut from = from.into_iter();
    let (Some(target), None) = (from.next(), from.next()) else {
        return Err(unsupported("DELETE from several tables"));
    };
    let (table, target) = single_table(target)?;
    let using = d
        .using
        .unwrap_or_default()
        .into_iter()
        .map(table_with_joins)
        .collect::<Result<Vec<_>>>()?;
    // With USING, names are resolved against every table, so qualifiers stay.
    let scope = if using.is_empty() {
        Scope::table_as(&table, target.alias.as_deref())
    } else {
        Scope::default()
    };
    let filter = scope.opt_expr(d.selection)?;
    let returning = target.returning(d.returning)?;
    Ok(Statement::Delete {
        table,
        alias: target.alias,
        using,
        filter,
        returning,
    })
}

// ---------------------------------------------------------------------------
// SELECT
// ---------------------------------------------------------------------------

fn query(q: sql::Query) -> Result<Query> {
    check_query_extras(&q)?;
    let sql::Query {
        with,
        body,
        order_by,
        limit_clause,
        ..
    } = q;
    let mut ctes = Vec::new();
    if let Some(with) = with {
        refuse(with.recursive, "WITH RECURSIVE")?;
        for cte in with.cte_tables {
            refuse(cte.from.is_some(), "this form of WITH")?;
            let alias = table_alias(cte.alias)?;
            ctes.push(Cte {
                name: alias.name,
                columns: alias.columns,
                query: query(*cte.query)?,
            });
        }
    }
    let scope = Scope::default();
    let (limit, offset) = match limit_clause {
        Some(clause) => scope.limit(clause)?,
        None => (None, None),
    };
    Ok(Query {
        with: ctes,
        body: set_expr(*body)?,
        order_by: order_by
            .map(|o| scope.order_by(o))
            .transpose()?
            .unwrap_or_default(),
        limit,
        offset,
    })
}

fn set_expr(body: sql::SetExpr) -> Result<SetExpr> {
    match body {
        sql::SetExpr::Select(select) => Ok(SetExpr::Select(Box::new(select_block(*select)?))),
        sql::SetExpr::Query(q) => Ok(SetExpr::Query(Box::new(query(*q)?))),
        sql::SetExpr::Values(values) => Ok(SetExpr::Values(values_list(values)?)),
        sql::SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } => {
            let op = match op {
                sql::SetOperator::Union => SetOp::Union,
                sql::SetOperator::Intersect => SetOp::Intersect,
                sql::SetOperator::Except => SetOp::Except,
                other => return Err(unsupported(other)),
            };
            let all = match set_quantifier {
                sql::SetQuantifier::All => true,
                sql::SetQuantifier::Distinct | sql::SetQuantifier::None => false,
                _ => return Err(unsupported("BY NAME in a set operation")),
            };
            Ok(SetExpr::SetOp {
                op,
                all,
                left: Box::new(set_expr(*left)?),
                right: Box::new(set_expr(*right)?),
            })
        }
        sql::SetExpr::Table(_) => Err(unsupported("TABLE as a query")),
        _ => Err(unsupported("this query")),
    }
}

fn select_block(select: sql::Select) -> Result<Select> {
    check_select_clauses(&select)?;
    let scope = Scope::default();
    let from = select
        .from
        .into_iter()
        .map(table_with_joins)
        .collect::<Result<Vec<_>>>()?;
    let items = select
        .projection
        .into_iter()
        .map(|item| scope.select_item(item))
        .collect::<Result<_>>()?;
    let group_by = match select.group_by {
        sql::GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
        sql::GroupByExpr::Expressions(exprs, modifiers) => {
            refuse(!modifiers.is_empty(), "GROUP BY modifiers")?;
            exprs
                .into_iter()
                .map(|e| scope.expr(e))
                .collect::<Result<_>>()?
        }
    };
    Ok(Select {
        distinct: matches!(select.distinct, Some(sql::Distinct::Distinct)),
        items,
        from,
        filter: scope.opt_expr(select.selection)?,
        group_by,
        having: scope.opt_expr(select.having)?,
    })
}

/// One comma-separated FROM item with its joins, as a left-deep tree.
fn table_with_joins(t: sql::TableWithJoins) -> Result<TableRef> {
    let mut left = table_factor(t.relation)?;
    for join in t.joins {
        refuse(join.global, "GLOBAL JOIN")?;
        use sql::JoinOperator as J;
        let (kind, constraint) = match join.join_operator {
            J::Join(c) | J::Inner(c) => (JoinKind::Inner, c),
            J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, c),
            J::Right(c) | J::RightOuter(c) => (JoinKind::Right, c),
            J::FullOuter(c) => (JoinKind::Full, c),
            J::CrossJoin(c) => (JoinKind::Cross, c),
            _ => return Err(unsupported("this kind of JOIN")),
        };
        let condition = match constraint {
            sql::JoinConstraint::None => JoinCondition::None,
            sql::JoinConstraint::On(e) => JoinCondition::On(Scope::default().expr(e)?),
            sql::JoinConstraint::Using(names) => {
                JoinCondition::Using(names.into_iter().map(column_name).collect::<Result<_>>()?)
            }
            sql::JoinConstraint::Natural => JoinCondition::Natural,
            sql::JoinConstraint::UsingAlias(..) => return Err(unsupported("USING ... AS")),
        };
        if kind != JoinKind::Cross && condition == JoinCondition::None {
            return Err(syntax(
                "JOIN needs ON, USING or NATURAL (or use CROSS JOIN)",
            ));
        }
        left = TableRef::Join {
            left: Box::new(left),
            right: Box::new(table_factor(join.relation)?),
            kind,
            condition,
        };
    }
    Ok(left)
}

fn table_factor(factor: sql::TableFactor) -> Result<TableRef> {
    match factor {
        sql::TableFactor::Table {
            name,
            alias,
            args,
            with_hints,
            version,
            with_ordinality,
            partitions,
            json_path,
            sample,
            index_directives,
            ..
        } => {
            let other = !with_hints.is_empty()
                || version.is_some()
                || with_ordinality
                || !partitions.is_empty()
                || json_path.is_some()
                || sample.is_some()
                || !index_directives.is_empty();
            refuse(other, "this FROM clause option")?;
            let alias = alias.map(table_alias).transpose()?;
            match args {
                None => Ok(TableRef::Table {
                    name: relation_name(name)?,
                    alias,
                }),
                Some(args) => {
                    refuse(args.settings.is_some(), "SETTINGS")?;
                    let scope = Scope::default();
                    let args = args
                        .args
                        .into_iter()
                        .map(|a| function_arg(a).and_then(|e| scope.expr(e)))
                        .collect::<Result<_>>()?;
                    Ok(TableRef::Function {
                        name: function_name(name)?,
                        args,
                        alias,
                    })
                }
            }
        }
        sql::TableFactor::Derived {
            lateral,
            subquery,
            alias,
            sample,
        } => {
            refuse(lateral, "LATERAL")?;
            refuse(sample.is_some(), "TABLESAMPLE")?;
            Ok(TableRef::Derived {
                query: Box::new(query(*subquery)?),
                alias: alias.map(table_alias).transpose()?,
            })
        }
        sql::TableFactor::NestedJoin {
            table_with_joins: nested,
            alias,
            ..
        } => {
            refuse(alias.is_some(), "an alias on a parenthesized join")?;
            table_with_joins(*nested)
        }
        other => Err(unsupported(table_factor_name(&other))),
    }
}

/// Refuses the query-level clauses no statement of ours takes.
fn check_query_extras(q: &sql::Query) -> Result<()> {
    refuse(q.fetch.is_some(), "FETCH FIRST (use LIMIT)")?;
    refuse(!q.locks.is_empty(), "FOR UPDATE/SHARE")?;
    let other = q.for_clause.is_some()
        || q.settings.is_some()
        || q.format_clause.is_some()
        || !q.pipe_operators.is_empty();
    refuse(other, "this query clause")
}

fn check_select_clauses(s: &sql::Select) -> Result<()> {
    refuse(
        matches!(s.distinct, Some(sql::Distinct::On(_))),
        "DISTINCT ON",
    )?;
    refuse(s.into.is_some(), "SELECT INTO")?;
    refuse(!s.named_window.is_empty(), "WINDOW")?;
    let other = s.top.is_some()
        || s.select_modifiers.as_ref().is_some_and(|m| m.is_any_set())
        || s.exclude.is_some()
        || !s.lateral_views.is_empty()
        || s.prewhere.is_some()
        || !s.connect_by.is_empty()
        || !s.cluster_by.is_empty()
        || !s.distribute_by.is_empty()
        || !s.sort_by.is_empty()
        || s.qualify.is_some()
        || s.value_table_mode.is_some()
        || s.flavor != sql::SelectFlavor::Standard;
    refuse(other, "this SELECT clause")
}

/// A single table (possibly aliased) with no joins, and the scope it opens.
fn single_table(t: sql::TableWithJoins) -> Result<(String, Scope)> {
    refuse(!t.joins.is_empty(), "JOIN")?;
    let relation = match t.relation {
        plain @ sql::TableFactor::Table { .. } => plain,
        other => return Err(unsupported(table_factor_name(&other))),
    };
    match table_factor(relation)? {
        TableRef::Table { name, alias } => {
            if let Some(a) = &alias {
                refuse(!a.columns.is_empty(), "column aliases on the target table")?;
            }
            Ok((
                name.clone(),
                Scope {
                    table: Some(name),
                    alias: alias.map(|a| a.name),
                },
            ))
        }
        _ => Err(unsupported("table function")),
    }
}

fn table_alias(alias: sql::TableAlias) -> Result<Alias> {
    refuse(alias.at.is_some(), "AT in a table alias")?;
    let columns = alias
        .columns
        .into_iter()
        .map(|c| {
            refuse(c.data_type.is_some(), "typed column aliases")?;
            Ok(ident(c.name))
        })
        .collect::<Result<_>>()?;
    Ok(Alias {
        name: ident(alias.name),
        columns,
    })
}

fn table_factor_name(factor: &sql::TableFactor) -> &'static str {
    use sql::TableFactor as F;
    match factor {
        F::Derived { .. } => "subquery",
        F::NestedJoin { .. } => "JOIN",
        F::Function { .. } | F::TableFunction { .. } | F::UNNEST { .. } => "table function",
        _ => "this FROM item",
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

// ---------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------

/// The table a statement works on, for resolving column qualifiers.
#[derive(Debug, Default)]
struct Scope {
    /// The table's real name.
    table: Option<String>,
    /// Its alias, which hides the real name as a qualifier.
    alias: Option<String>,
}

impl Scope {
    fn table(name: &str) -> Scope {
        Scope {
            table: Some(name.to_owned()),
            alias: None,
        }
    }

    fn table_as(name: &str, alias: Option<&str>) -> Scope {
        Scope {
            table: Some(name.to_owned()),
            alias: alias.map(str::to_owned),
        }
    }

    /// Drops a qualifier that names this scope's table (by its alias if it
    /// has one, else by its name); keeps any other for the executor to reject.
    fn qualifier(&self, q: String) -> Option<String> {
        let visible = self.alias.as_ref().or(self.table.as_ref());
        if visible == Some(&q) { None } else { Some(q) }
    }

    fn expr(&self, e: sql::Expr) -> Result<Expr> {
        self.expr_at(Box::new(e), 0)
    }

    fn opt_expr(&self, e: Option<sql::Expr>) -> Result<Option<Expr>> {
        e.map(|e| self.expr(e)).transpose()
    }

    fn returning(&self, items: Option<Vec<sql::SelectItem>>) -> Result<Vec<SelectItem>> {
        items
            .unwrap_or_default()
            .into_iter()
            .map(|i| self.select_item(i))
            .collect()
    }

    fn select_item(&self, item: sql::SelectItem) -> Result<SelectItem> {
        match item {
            sql::SelectItem::UnnamedExpr(e) => Ok(SelectItem::Expr {
                expr: self.expr(e)?,
                alias: None,
            }),
            sql::SelectItem::ExprWithAlias { expr, alias } => Ok(SelectItem::Expr {
                expr: self.expr(expr)?,
                alias: Some(ident(alias)),
            }),
            sql::SelectItem::Wildcard(options) => {
                let plain = options.opt_ilike.is_none()
                    && options.opt_exclude.is_none()
                    && options.opt_except.is_none()
                    && options.opt_replace.is_none()
                    && options.opt_rename.is_none()
                    && options.opt_alias.is_none();
                refuse(!plain, "this wildcard option")?;
                Ok(SelectItem::Wildcard)
            }
            sql::SelectItem::QualifiedWildcard(kind, _) => match kind {
                sql::SelectItemQualifiedWildcardKind::ObjectName(name) => {
                    Ok(SelectItem::QualifiedWildcard(relation_name(name)?))
                }
                _ => Err(unsupported("this wildcard")),
            },
            sql::SelectItem::ExprWithAliases { .. } => Err(unsupported("multiple aliases")),
        }
    }

    fn assignment(&self, a: sql::Assignment) -> Result<(String, Expr)> {
        let column = match a.target {
            sql::AssignmentTarget::ColumnName(name) => column_name(name)?,
            sql::AssignmentTarget::Tuple(_) => return Err(unsupported("multi-column assignment")),
        };
        Ok((column, self.expr(a.value)?))
    }

    fn order_by(&self, o: sql::OrderBy) -> Result<Vec<OrderBy>> {
        refuse(o.interpolate.is_some(), "INTERPOLATE")?;
        match o.kind {
            sql::OrderByKind::Expressions(terms) => {
                terms.into_iter().map(|t| self.order_term(t)).collect()
            }
            sql::OrderByKind::All(_) => Err(unsupported("ORDER BY ALL")),
        }
    }

    fn order_term(&self, term: sql::OrderByExpr) -> Result<OrderBy> {
        refuse(term.with_fill.is_some(), "WITH FILL")?;
        let desc = match term.options.sort {
            None | Some(sql::OrderBySort::Asc) => false,
            Some(sql::OrderBySort::Desc) => true,
            Some(sql::OrderBySort::Using(_)) => return Err(unsupported("ORDER BY ... USING")),
        };
        Ok(OrderBy {
            expr: self.expr(term.expr)?,
            desc,
            nulls_first: term.options.nulls_first,
        })
    }

    /// LIMIT and OFFSET; `LIMIT ALL` is no limit.
    fn limit(&self, clause: sql::LimitClause) -> Result<(Option<Expr>, Option<Expr>)> {
        match clause {
            sql::LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            } => {
                refuse(!limit_by.is_empty(), "LIMIT BY")?;
                Ok((
                    self.opt_expr(limit)?,
                    self.opt_expr(offset.map(|o| o.value))?,
                ))
            }
            sql::LimitClause::OffsetCommaLimit { .. } => Err(unsupported("LIMIT offset, count")),
        }
    }

    /// Translates a child expression one level deeper.
    fn sub(&self, e: Box<sql::Expr>, depth: usize) -> Result<Box<Expr>> {
        self.expr_at(e, depth + 1).map(Box::new)
    }

    /// Translates an expression at nesting level `depth`, refusing depth
    /// beyond [`MAX_EXPR_DEPTH`]. This is the recursion the input controls:
    /// sqlparser bounds its own recursion, but parses operator chains
    /// (`a + b + ...`, `a::int::text`, `a IS NULL IS NULL`) iteratively into
    /// arbitrarily deep trees. Those chainable forms are handled here, with
    /// small bindings, so each level costs little stack even unoptimized.
    fn expr_at(&self, e: Box<sql::Expr>, depth: usize) -> Result<Expr> {
        if depth > MAX_EXPR_DEPTH {
            return Err(too_deep());
        }
        use sql::Expr as E;
        match *e {
            E::BinaryOp { left, op, right } => self.binary(left, &op, right, depth),
            E::Cast {
                kind,
                expr,
                data_type,
                format,
            } => self.cast(kind, expr, &data_type, format.is_some(), depth),
            E::IsNull(e) => self.is_null(e, false, depth),
            E::IsNotNull(e) => self.is_null(e, true, depth),
            E::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                let flags = LikeFlags {
                    negated,
                    any,
                    escape: escape_char.is_some(),
                    ci: false,
                };
                self.like(expr, pattern, flags, depth)
            }
            E::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                let flags = LikeFlags {
                    negated,
                    any,
                    escape: escape_char.is_some(),
                    ci: true,
                };
                self.like(expr, pattern, flags, depth)
            }
            E::In {
                expr,
                target,
                negated,
                global,
            } => self.in_list(expr, target, negated, global, depth),
            E::Between {
                expr,
                negated,
                low,
                high,
            } => self.between(expr, [low, high], negated, depth),
            _ => self.prefix_expr(e, depth),
        }
    }

    /// The other expressions: leaves, and forms whose nesting sqlparser's
    /// recursion limit already bounds.
    fn prefix_expr(&self, e: Box<sql::Expr>, depth: usize) -> Result<Expr> {
        use sql::Expr as E;
        match *e {
            E::Identifier(id) => self.column(vec![id]),
            E::CompoundIdentifier(ids) => self.column(ids),
            E::Value(v) => value_expr(v.value),
            E::Nested(inner) => self.sub(inner, depth).map(|b| *b),
            E::UnaryOp { op, expr } => self.unary(op, expr, depth),
            E::TypedString(ts) => typed_string(ts),
            E::Function(f) => self.function(f, depth),
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand, conditions, else_result, depth),
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => self.substring(expr, substring_from, substring_for, depth),
            E::Ceil { expr, field } => self.rounding("ceil", expr, field, depth),
            E::Subquery(q) => Ok(Expr::Subquery(Box::new(query(*q)?))),
            E::Exists { subquery, negated } => Ok(Expr::Exists {
                query: Box::new(query(*subquery)?),
                negated,
            }),
            E::Floor { expr, field } => self.rounding("floor", expr, field, depth),
            E::Extract { field, expr, .. } => {
                let field = Expr::Literal(Value::Text(field.to_string().to_lowercase()));
                Ok(function_call(
                    "date_part",
                    vec![field, *self.sub(expr, depth)?],
                ))
            }
            // POSITION(a IN b) is strpos(b, a).
            E::Position { expr, r#in } => Ok(function_call(
                "strpos",
                vec![*self.sub(r#in, depth)?, *self.sub(expr, depth)?],
            )),
            E::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                refuse(trim_characters.is_some(), "TRIM with a character list")?;
                let name = match trim_where {
                    None | Some(sql::TrimWhereField::Both) => "btrim",
                    Some(sql::TrimWhereField::Leading) => "ltrim",
                    Some(sql::TrimWhereField::Trailing) => "rtrim",
                };
                let mut args = vec![*self.sub(expr, depth)?];
                if let Some(what) = trim_what {
                    args.push(*self.sub(what, depth)?);
                }
                Ok(function_call(name, args))
            }
            other => Err(unsupported(expr_name(&other))),
        }
    }

    fn binary(
        &self,
        left: Box<sql::Expr>,
        op: &sql::BinaryOperator,
        right: Box<sql::Expr>,
        depth: usize,
    ) -> Result<Expr> {
        let op = binary_op(op)?;
        let left = self.sub(left, depth)?;
        Ok(Expr::Binary {
            op,
            left,
            right: self.sub(right, depth)?,
        })
    }

    fn is_null(&self, e: Box<sql::Expr>, negated: bool, depth: usize) -> Result<Expr> {
        Ok(Expr::IsNull {
            expr: self.sub(e, depth)?,
            negated,
        })
    }

    fn between(
        &self,
        expr: Box<sql::Expr>,
        [low, high]: [Box<sql::Expr>; 2],
        negated: bool,
        depth: usize,
    ) -> Result<Expr> {
        let expr = self.sub(expr, depth)?;
        let low = self.sub(low, depth)?;
        Ok(Expr::Between {
            expr,
            low,
            high: self.sub(high, depth)?,
            negated,
        })
    }

    fn cast(
        &self,
        kind: sql::CastKind,
        expr: Box<sql::Expr>,
        to: &sql::DataType,
        has_format: bool,
        depth: usize,
    ) -> Result<Expr> {
        let standard = matches!(kind, sql::CastKind::Cast | sql::CastKind::DoubleColon);
        refuse(!standard, "TRY_CAST")?;
        refuse(has_format, "CAST ... FORMAT")?;
        let to = cast_type(to)?;
        Ok(Expr::Cast {
            expr: self.sub(expr, depth)?,
            to,
        })
    }

    fn substring(
        &self,
        expr: Box<sql::Expr>,
        from: Option<Box<sql::Expr>>,
        count: Option<Box<sql::Expr>>,
        depth: usize,
    ) -> Result<Expr> {
        let args = [Some(expr), from, count].into_iter().flatten().map(|e| *e);
        self.call("substring", args, depth)
    }

    /// A column reference: `c`, `t.c` or `public.t.c`.
    fn column(&self, ids: Vec<sql::Ident>) -> Result<Expr> {
        if let [id] = ids.as_slice()
            && id.quote_style.is_none()
            && id.value.eq_ignore_ascii_case("default")
        {
            return Err(unsupported("DEFAULT in an expression"));
        }
        let mut parts: Vec<String> = ids.into_iter().map(ident).collect();
        let name = parts
            .pop()
            .ok_or_else(|| invalid("empty column reference"))?;
        let table = match parts.len() {
            0 => None,
            1 => parts.pop(),
            2 if parts[0] == "public" => parts.pop(),
            _ => return Err(unsupported("a column reference with this many qualifiers")),
        };
        Ok(Expr::Column {
            table: table.and_then(|t| self.qualifier(t)),
            name,
        })
    }

    fn unary(&self, op: sql::UnaryOperator, operand: Box<sql::Expr>, depth: usize) -> Result<Expr> {
        match op {
            sql::UnaryOperator::Plus => self.sub(operand, depth).map(|b| *b),
            sql::UnaryOperator::Minus => match *operand {
                sql::Expr::Value(sql::ValueWithSpan {
                    value: sql::Value::Number(n, _),
                    ..
                }) => Ok(Expr::Literal(number(&n, true)?)),
                other => Ok(Expr::Negate(self.sub(Box::new(other), depth)?)),
            },
            sql::UnaryOperator::Not => Ok(Expr::Not(self.sub(operand, depth)?)),
            other => Err(unsupported(format!("operator {other}"))),
        }
    }

    fn like(
        &self,
        expr: Box<sql::Expr>,
        pattern: Box<sql::Expr>,
        flags: LikeFlags,
        depth: usize,
    ) -> Result<Expr> {
        refuse(flags.any, "LIKE ANY")?;
        refuse(flags.escape, "LIKE ... ESCAPE")?;
        let expr = self.sub(expr, depth)?;
        Ok(Expr::Like {
            expr,
            pattern: self.sub(pattern, depth)?,
            negated: flags.negated,
            case_insensitive: flags.ci,
        })
    }

    fn in_list(
        &self,
        expr: Box<sql::Expr>,
        target: sql::InTarget,
        negated: bool,
        global: bool,
        depth: usize,
    ) -> Result<Expr> {
        refuse(global, "GLOBAL IN")?;
        let list = match target {
            sql::InTarget::List(list) => list,
            sql::InTarget::Subquery(q) => {
                return Ok(Expr::InSubquery {
                    expr: self.sub(expr, depth)?,
                    query: Box::new(query(*q)?),
                    negated,
                });
            }
            _ => return Err(unsupported("this IN form")),
        };
        if list.is_empty() {
            return Err(invalid("IN needs at least one value"));
        }
        let expr = self.sub(expr, depth)?;
        let list = list
            .into_iter()
            .map(|e| self.expr_at(Box::new(e), depth + 1))
            .collect::<Result<_>>()?;
        Ok(Expr::InList {
            expr,
            list,
            negated,
        })
    }

    fn function(&self, f: sql::Function, depth: usize) -> Result<Expr> {
        refuse(f.over.is_some(), "window function")?;
        refuse(f.filter.is_some(), "FILTER")?;
        refuse(!f.within_group.is_empty(), "WITHIN GROUP")?;
        refuse(f.null_treatment.is_some(), "IGNORE/RESPECT NULLS")?;
        let plain = !f.uses_odbc_syntax && matches!(f.parameters, sql::FunctionArguments::None);
        refuse(!plain, "this function call syntax")?;
        let name = function_name(f.name)?;
        let list = match f.args {
            sql::FunctionArguments::None => return self.call(&name, [], depth),
            sql::FunctionArguments::Subquery(_) => return Err(unsupported("subquery")),
            sql::FunctionArguments::List(list) => list,
        };
        let distinct = list.duplicate_treatment == Some(sql::DuplicateTreatment::Distinct);
        refuse(
            !list.clauses.is_empty(),
            "ORDER BY/LIMIT in function arguments",
        )?;
        if let [sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Wildcard)] = list.args.as_slice() {
            refuse(distinct, "DISTINCT *")?;
            return Ok(Expr::Function {
                name,
                args: vec![],
                star: true,
                distinct: false,
            });
        }
        let args = list
            .args
            .into_iter()
            .map(function_arg)
            .collect::<Result<Vec<_>>>()?;
        let mut call = self.call(&name, args, depth)?;
        if let Expr::Function { distinct: d, .. } = &mut call {
            *d = distinct;
        }
        Ok(call)
    }

    /// `name(args)` from already unwrapped sqlparser arguments.
    fn call(
        &self,
        name: &str,
        args: impl IntoIterator<Item = sql::Expr>,
        depth: usize,
    ) -> Result<Expr> {
        let args = args
            .into_iter()
            .map(|a| self.expr_at(Box::new(a), depth + 1))
            .collect::<Result<_>>()?;
        Ok(function_call(name, args))
    }

    /// `ceil(x)` / `floor(x)`, which sqlparser parses specially.
    fn rounding(
        &self,
        name: &str,
        expr: Box<sql::Expr>,
        field: sql::CeilFloorKind,
        depth: usize,
    ) -> Result<Expr> {
        match field {
            sql::CeilFloorKind::DateTimeField(sql::DateTimeField::NoDateTime) => {
                self.call(name, [*expr], depth)
            }
            _ => Err(unsupported(format!("{name} with a second argument"))),
        }
    }

    fn case(
        &self,
        operand: Option<Box<sql::Expr>>,
        conditions: Vec<sql::CaseWhen>,
        else_result: Option<Box<sql::Expr>>,
        depth: usize,
    ) -> Result<Expr> {
        let branches = conditions
            .into_iter()
            .map(|w| {
                Ok((
                    self.expr_at(Box::new(w.condition), depth + 1)?,
                    self.expr_at(Box::new(w.result), depth + 1)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Expr::Case {
            operand: operand.map(|o| self.sub(o, depth)).transpose()?,
            branches,
            otherwise: else_result.map(|e| self.sub(e, depth)).transpose()?,
        })
    }
}

/// A plain call of a scalar function.
fn function_call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function {
        name: name.to_owned(),
        args,
        star: false,
        distinct: false,
    }
}

/// The modifiers of a LIKE / ILIKE.
struct LikeFlags {
    negated: bool,
    any: bool,
    escape: bool,
    /// ILIKE.
    ci: bool,
}

fn function_arg(arg: sql::FunctionArg) -> Result<sql::Expr> {
    match arg {
        sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e)) => Ok(e),
        sql::FunctionArg::Unnamed(_) => Err(unsupported("* among function arguments")),
        _ => Err(unsupported("named function arguments")),
    }
}

/// `DATE '2024-01-01'` and the like: a cast of a text literal.
fn typed_string(ts: sql::TypedString) -> Result<Expr> {
    refuse(ts.uses_odbc_syntax, "ODBC literal syntax")?;
    match literal(ts.value.value)? {
        text @ Value::Text(_) => Ok(Expr::Cast {
            expr: Box::new(Expr::Literal(text)),
            to: cast_type(&ts.data_type)?,
        }),
        _ => Err(invalid("a typed literal needs a string")),
    }
}

fn binary_op(op: &sql::BinaryOperator) -> Result<BinaryOp> {
    use sql::BinaryOperator as B;
    Ok(match op {
        B::Plus => BinaryOp::Add,
        B::Minus => BinaryOp::Sub,
        B::Multiply => BinaryOp::Mul,
        B::Divide => BinaryOp::Div,
        B::Modulo => BinaryOp::Mod,
        B::Eq => BinaryOp::Eq,
        B::NotEq => BinaryOp::NotEq,
        B::Lt => BinaryOp::Lt,
        B::LtEq => BinaryOp::LtEq,
        B::Gt => BinaryOp::Gt,
        B::GtEq => BinaryOp::GtEq,
        B::And => BinaryOp::And,
        B::Or => BinaryOp::Or,
        B::StringConcat => BinaryOp::Concat,
        B::PGRegexMatch => BinaryOp::Regex {
            case_insensitive: false,
            negated: false,
        },
        B::PGRegexIMatch => BinaryOp::Regex {
            case_insensitive: true,
            negated: false,
        },
        B::PGRegexNotMatch => BinaryOp::Regex {
            case_insensitive: false,
            negated: true,
        },
        B::PGRegexNotIMatch => BinaryOp::Regex {
            case_insensitive: true,
            negated: true,
        },
        other => return Err(unsupported(format!("operator {other}"))),
    })
}

/// A name for an expression tiers refuses (without formatting it).
fn expr_name(e: &sql::Expr) -> &'static str {
    use sql::Expr as E;
    match e {
        E::Subquery(_) | E::Exists { .. } => "subquery",
        E::IsTrue(_) | E::IsNotTrue(_) | E::IsFalse(_) | E::IsNotFalse(_) => "IS [NOT] TRUE/FALSE",
        E::IsUnknown(_) | E::IsNotUnknown(_) => "IS [NOT] UNKNOWN",
        E::IsDistinctFrom(..) | E::IsNotDistinctFrom(..) => "IS [NOT] DISTINCT FROM",
        E::SimilarTo { .. } | E::RLike { .. } => "regular expression matching",
        E::AnyOp { .. } | E::AllOp { .. } => "ANY/ALL",
        E::AtTimeZone { .. } => "AT TIME ZONE",
        E::Extract { .. } => "EXTRACT",
        E::Position { .. } => "POSITION",
        E::Trim { .. } => "TRIM",
        E::Overlay { .. } => "OVERLAY",
        E::Collate { .. } => "COLLATE",
        E::Interval(_) => "INTERVAL",
        E::Array(_) => "ARRAY",
        E::Tuple(_) => "row constructor",
        E::CompoundFieldAccess { .. } | E::JsonAccess { .. } => "subscript or field access",
        E::Wildcard(_) | E::QualifiedWildcard(..) => "* in an expression",
        _ => "this expression",
    }
}

// ---------------------------------------------------------------------------
// Literals
// ---------------------------------------------------------------------------

fn literal(v: sql::Value) -> Result<Value> {
    use sql::Value as V;
    match v {
        V::Number(text, _) => number(&text, false),
        V::SingleQuotedString(s)
        | V::EscapedStringLiteral(s)
        | V::UnicodeStringLiteral(s)
        | V::NationalStringLiteral(s) => Ok(Value::Text(s)),
        V::DollarQuotedString(s) => Ok(Value::Text(s.value)),
        V::Boolean(b) => Ok(Value::Bool(b)),
        V::Null => Ok(Value::Null),
        V::Placeholder(p) => Err(parameter_literal(&p)),
        V::HexStringLiteral(_) => Err(unsupported("bit-string literal")),
        _ => Err(unsupported("this kind of literal")),
    }
}

/// A literal or a `$n` placeholder.
fn value_expr(v: sql::Value) -> Result<Expr> {
    match v {
        sql::Value::Placeholder(p) => Ok(Expr::Parameter(parameter(&p)?)),
        other => Ok(Expr::Literal(literal(other)?)),
    }
}

/// The error for a placeholder where only a constant may stand (typed
/// literals such as `DATE $1` never parse that way, but stay safe).
fn parameter_literal(p: &str) -> SqlError {
    match parameter(p) {
        Ok(_) => invalid(format!("parameter {p} is not allowed here")),
        Err(e) => e,
    }
}

/// `$n` with `1 <= n <= 65535`.
fn parameter(p: &str) -> Result<usize> {
    let digits = p.strip_prefix('$').unwrap_or_default();
    let n = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<usize>().ok()
    } else {
        None
    };
    match n {
        Some(n @ 1..=MAX_PARAMETER) => Ok(n),
        _ => Err(invalid(format!("invalid parameter reference {p}"))),
    }
}

/// A numeric literal: `Int` when written as an integer that fits `i64`,
/// otherwise `Numeric` (as in PostgreSQL), or `Float` beyond what
/// `numeric` holds. Accepts `_` separators and `0x`/`0o`/`0b` integers.
fn number(text: &str, negative: bool) -> Result<Value> {
    let cleaned: String = text.chars().filter(|&c| c != '_').collect();
    let sign = if negative { "-" } else { "" };
    if let Some((radix, digits)) = radix_prefix(&cleaned) {
        return radix_integer(text, &format!("{sign}{digits}"), radix);
    }
    let signed = format!("{sign}{cleaned}");
    if cleaned.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = signed.parse::<i64>()
    {
        return Ok(Value::Int(i));
    }
    if let Ok(d) = crate::value::parse_numeric(&signed) {
        return Ok(Value::Numeric(d));
    }
    match signed.parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(Value::Float(f)),
        Ok(_) => Err(out_of_range(text)),
        Err(_) => Err(invalid(format!("invalid number \"{text}\""))),
    }
}

fn radix_prefix(text: &str) -> Option<(u32, &str)> {
    let (prefix, digits) = text.split_at_checked(2)?;
    match prefix {
        "0x" | "0X" => Some((16, digits)),
        "0o" | "0O" => Some((8, digits)),
        "0b" | "0B" => Some((2, digits)),
        _ => None,
    }
}

fn radix_integer(text: &str, signed_digits: &str, radix: u32) -> Result<Value> {
    let valid = signed_digits
        .trim_start_matches('-')
        .chars()
        .all(|c| c.is_digit(radix));
    if !valid || signed_digits.trim_start_matches('-').is_empty() {
        return Err(invalid(format!("invalid number \"{text}\"")));
    }
    i64::from_str_radix(signed_digits, radix)
        .map(Value::Int)
        .map_err(|_| out_of_range(text))
}

fn out_of_range(text: &str) -> SqlError {
    SqlError::new(
        sqlstate::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("\"{text}\" is out of range for type double precision"),
    )
}

#[cfg(test)]
mod tests;
