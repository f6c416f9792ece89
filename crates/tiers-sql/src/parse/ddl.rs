//! Translating CREATE TABLE and CREATE INDEX: columns, types' options,
//! constraints and index definitions.

use super::*;

// ---------------------------------------------------------------------------
// CREATE TABLE
// ---------------------------------------------------------------------------

pub(super) fn create_table(mut ct: sql::CreateTable) -> Result<Statement> {
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
pub(super) fn check_create_table_options(ct: &sql::CreateTable) -> Result<()> {
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

pub(super) fn column_spec(table: &str, def: sql::ColumnDef) -> Result<ColumnSpec> {
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

pub(super) fn check_null_conflict(column: &str, options: &[sql::ColumnOptionDef]) -> Result<()> {
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

pub(super) fn column_option(
    table: &str,
    spec: &mut ColumnSpec,
    option: sql::ColumnOption,
) -> Result<()> {
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
            check_primary_key_extras(&pk)?;
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
pub(super) fn identity(
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

pub(super) fn column_option_name(option: &sql::ColumnOption) -> &'static str {
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

pub(super) fn multiple_primary_keys(table: &str) -> SqlError {
    invalid(format!(
        "multiple primary keys for table \"{table}\" are not allowed"
    ))
}

/// Table-level constraints: the PRIMARY KEY columns and the UNIQUE lists.
/// A CHECK constraint: its condition must translate now (so errors show at
/// CREATE TABLE); the catalog keeps its SQL text.
pub(super) fn check(c: sql::CheckConstraint) -> Result<Check> {
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
    static PARSED: crate::memo::Memo<String, Expr> = crate::memo::Memo::new(4096);
    PARSED.get_or_make(sql, || parse_expression(sql))
}

pub(super) fn parse_expression(sql: &str) -> Result<Expr> {
    let mut parser = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .map_err(parser_error)?;
    let e = parser.parse_expr().map_err(parser_error)?;
    Scope::default().expr(e)
}

type Constraints = (Vec<String>, Vec<Vec<String>>, Vec<Check>);

pub(super) fn table_constraints(
    table: &str,
    constraints: Vec<sql::TableConstraint>,
) -> Result<Constraints> {
    let mut primary_key: Option<Vec<String>> = None;
    let mut unique = Vec::new();
    let mut checks = Vec::new();
    for constraint in constraints {
        match constraint {
            sql::TableConstraint::PrimaryKey(pk) => {
                check_primary_key_extras(&pk)?;
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

pub(super) fn table_constraint_name(constraint: &sql::TableConstraint) -> &'static str {
    use sql::TableConstraint as C;
    match constraint {
        C::Check(_) => "CHECK constraint",
        C::ForeignKey(_) => "FOREIGN KEY constraint",
        C::Exclude(_) => "EXCLUDE constraint",
        C::PrimaryKeyUsingIndex(_) | C::UniqueUsingIndex(_) => "constraint USING INDEX",
        _ => "this table constraint",
    }
}

pub(super) fn check_key_extras(
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

fn check_primary_key_extras(pk: &sql::PrimaryKeyConstraint) -> Result<()> {
    check_key_extras(
        &pk.include,
        &pk.index_options,
        &pk.characteristics,
        &pk.index_type,
    )
}

pub(super) fn check_unique_extras(u: &sql::UniqueConstraint) -> Result<()> {
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
pub(super) fn check_keys(
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
pub(super) fn index_columns(columns: Vec<sql::IndexColumn>) -> Result<Vec<String>> {
    columns.into_iter().map(index_column).collect()
}

pub(super) fn index_column(column: sql::IndexColumn) -> Result<String> {
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

pub(super) fn create_index(ci: sql::CreateIndex) -> Result<Statement> {
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

pub(super) fn index_kind(using: Option<sql::IndexType>) -> Result<IndexKind> {
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
