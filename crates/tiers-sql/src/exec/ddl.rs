//! DDL: CREATE TABLE (column specs to a catalog definition), ALTER TABLE,
//! TRUNCATE and DROP INDEX. Every change is one transaction with the data
//! it rewrites.

use super::*;

pub(super) fn constant(e: &Expr) -> Result<Value> {
    expr::eval(e, &Scope::constant(&[])).map_err(|err| {
        SqlError::new(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "only constant DEFAULT expressions are supported yet ({})",
                err.message
            ),
        )
    })
}

/// Functions whose value changes between calls: a DEFAULT using them is
/// evaluated for each row rather than once at CREATE TABLE.
fn is_volatile(e: &Expr) -> bool {
    let mut found = false;
    crate::query::visit_expr(e, &mut |x| {
        if let Expr::Function { name, .. } = x
            && matches!(
                name.as_str(),
                "now"
                    | "current_timestamp"
                    | "current_date"
                    | "random"
                    | "clock_timestamp"
                    | "statement_timestamp"
                    | "transaction_timestamp"
                    | "localtimestamp"
                    | "gen_random_uuid"
            )
        {
            found = true;
        }
    });
    found
}

pub(super) fn create_table(
    tx: &mut WriteTxn,
    name: &str,
    if_not_exists: bool,
    specs: &[ColumnSpec],
    table_pk: &[String],
    unique: &[Vec<String>],
    table_checks: &[Check],
) -> Result<QueryResult> {
    if catalog::table(tx, name)?.is_some() && if_not_exists {
        return Ok(QueryResult::command("CREATE TABLE"));
    }
    let mut columns = Vec::with_capacity(specs.len());
    let mut checks = Vec::new();
    for spec in specs {
        columns.push(column_def(spec)?);
        for (i, c) in spec.checks.iter().enumerate() {
            let suffix = if i == 0 { String::new() } else { i.to_string() };
            checks.push(CheckDef {
                name: c
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{name}_{}_check{suffix}", spec.name)),
                sql: c.sql.clone(),
            });
        }
    }
    for (i, c) in table_checks.iter().enumerate() {
        let suffix = if i == 0 { String::new() } else { i.to_string() };
        checks.push(CheckDef {
            name: c
                .name
                .clone()
                .unwrap_or_else(|| format!("{name}_check{suffix}")),
            sql: c.sql.clone(),
        });
    }
    // Every CHECK must name this table's columns only.
    for c in &checks {
        let e = crate::parse::expression(&c.sql)?;
        let fields = crate::query::table_fields_of(&columns, name);
        crate::query::bind_exprs(tx, fields, &[&e])?;
    }
    let find = |c: &String| {
        columns
            .iter()
            .position(|col| &col.name == c)
            .ok_or_else(|| {
                SqlError::new(
                    sqlstate::UNDEFINED_COLUMN,
                    format!("column \"{c}\" named in key does not exist"),
                )
            })
    };
    let mut primary_key: Vec<usize> = table_pk.iter().map(find).collect::<Result<_>>()?;
    for (i, spec) in specs.iter().enumerate() {
        if spec.primary_key {
            if !primary_key.is_empty() {
                return Err(SqlError::new(
                    sqlstate::SYNTAX_ERROR,
                    format!("multiple primary keys for table \"{name}\" are not allowed"),
                ));
            }
            primary_key.push(i);
        }
    }
    let mut unique_sets: Vec<Vec<usize>> = unique
        .iter()
        .map(|cols| cols.iter().map(find).collect::<Result<_>>())
        .collect::<Result<_>>()?;
    unique_sets.extend(
        specs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.unique)
            .map(|(i, _)| vec![i]),
    );
    let indexes = unique_sets
        .into_iter()
        .map(|cols| IndexDef {
            id: 0,
            name: format!(
                "{name}_{}_key",
                cols.iter()
                    .map(|&c| columns[c].name.as_str())
                    .collect::<Vec<_>>()
                    .join("_")
            ),
            columns: cols,
            unique: true,
            kind: catalog::IndexKind::BTree,
        })
        .collect();
    catalog::create_table(
        tx,
        TableDef {
            id: 0,
            name: name.to_string(),
            columns,
            primary_key,
            indexes,
            checks,
        },
    )?;
    Ok(QueryResult::command("CREATE TABLE"))
}

/// The catalog column for a column spec (ADD COLUMN; CREATE TABLE does the
/// same inline).
fn column_def(spec: &ColumnSpec) -> Result<ColumnDef> {
    let (default, default_expr) = match &spec.default {
        None => (None, None),
        Some(e) if is_volatile(e) => (None, spec.default_sql.clone()),
        Some(e) => {
            let v = spec.data_type.assign(constant(e)?)?;
            ((!v.is_null()).then(|| v.to_text()), None)
        }
    };
    Ok(ColumnDef {
        name: spec.name.clone(),
        data_type: spec.data_type,
        not_null: spec.not_null,
        default,
        serial: spec.serial,
        default_expr,
    })
}

fn mentions_column(sql: &str, column: &str) -> Result<bool> {
    let e = crate::parse::expression(sql)?;
    let mut found = false;
    crate::query::visit_expr(&e, &mut |x| {
        if let Expr::Column { name, .. } = x
            && name == column
        {
            found = true;
        }
    });
    Ok(found)
}

pub(super) fn alter_table(
    tx: &mut WriteTxn,
    table: &str,
    if_exists: bool,
    action: &crate::ast::AlterAction,
) -> Result<QueryResult> {
    use crate::ast::AlterAction as A;
    let done = Ok(QueryResult::command("ALTER TABLE"));
    let Some(old) = catalog::table(tx, table)? else {
        if if_exists {
            return done;
        }
        return Err(catalog::require_table(tx, table).expect_err("absent"));
    };
    let mut def = old.clone();
    match action {
        A::AddColumn {
            column,
            if_not_exists,
        } => {
            if def.columns.iter().any(|c| c.name == column.name) {
                if *if_not_exists {
                    return done;
                }
                return Err(SqlError::new(
                    sqlstate::DUPLICATE_COLUMN,
                    format!(
                        "column \"{}\" of relation \"{table}\" already exists",
                        column.name
                    ),
                ));
            }
            let col = column_def(column)?;
            def.columns.push(col.clone());
            for (i, c) in column.checks.iter().enumerate() {
                let suffix = if i == 0 { String::new() } else { i.to_string() };
                def.checks.push(CheckDef {
                    name: c
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{table}_{}_check{suffix}", column.name)),
                    sql: c.sql.clone(),
                });
            }
            let default_expr = col
                .default_expr
                .as_deref()
                .map(crate::parse::expression)
                .transpose()?;
            let checks = def
                .checks
                .iter()
                .map(|c| crate::parse::expression(&c.sql))
                .collect::<Result<Vec<_>>>()?;
            let new_def = def.clone();
            table::rewrite_rows(tx, &old, &def, |mut values| {
                let v = match &default_expr {
                    Some(e) => expr::eval(e, &Scope::constant(&[]))?,
                    None => col.default.clone().map_or(Value::Null, Value::Text),
                };
                let v = col.data_type.assign(v)?;
                if v.is_null() && col.not_null {
                    return Err(SqlError::new(
                        sqlstate::NOT_NULL_VIOLATION,
                        format!(
                            "column \"{}\" of relation \"{}\" contains null values",
                            col.name, new_def.name
                        ),
                    ));
                }
                values.push(v);
                for c in &checks {
                    let scope = Scope::row(&new_def, &values, &[]);
                    if expr::truth(&expr::eval(c, &scope)?)? == Some(false) {
                        return Err(SqlError::new(
                            "23514",
                            format!(
                                "check constraint of relation \"{}\" is violated by some row",
                                new_def.name
                            ),
                        ));
                    }
                }
                Ok(values)
            })?;
        }
        A::DropColumn { name, if_exists } => {
            let Some(at) = def.columns.iter().position(|c| &c.name == name) else {
                if *if_exists {
                    return done;
                }
                return Err(def.column(name).expect_err("absent"));
            };
            if def.primary_key.contains(&at) {
                return Err(SqlError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    format!(
                        "cannot drop primary-key column \"{name}\": the primary key is how tiers stores rows"
                    ),
                ));
            }
            if def.columns.len() == 1 {
                return Err(SqlError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    "cannot drop a table's only column; drop the table",
                ));
            }
            def.columns.remove(at);
            for index in def.indexes.iter().filter(|i| i.columns.contains(&at)) {
                tx.drop_tree(&catalog::index_tree(index))?;
            }
            def.indexes.retain(|i| !i.columns.contains(&at));
            let shift = |c: &mut usize| {
                if *c > at {
                    *c -= 1;
                }
            };
            def.primary_key.iter_mut().for_each(shift);
            for index in &mut def.indexes {
                index.columns.iter_mut().for_each(shift);
            }
            let mut kept = Vec::new();
            for c in std::mem::take(&mut def.checks) {
                if !mentions_column(&c.sql, name)? {
                    kept.push(c);
                }
            }
            def.checks = kept;
            table::rewrite_rows(tx, &old, &def, |mut values| {
                values.remove(at);
                Ok(values)
            })?;
        }
        A::RenameColumn { from, to } => {
            let at = def.column(from)?;
            if def.columns.iter().any(|c| &c.name == to) {
                return Err(SqlError::new(
                    sqlstate::DUPLICATE_COLUMN,
                    format!("column \"{to}\" of relation \"{table}\" already exists"),
                ));
            }
            for c in &def.checks {
                if mentions_column(&c.sql, from)? {
                    return Err(SqlError::new(
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        format!(
                            "column \"{from}\" is used by check constraint \"{}\"; drop the constraint first",
                            c.name
                        ),
                    ));
                }
            }
            def.columns[at].name = to.clone();
        }
        A::RenameTo(name) => def.name = name.clone(),
    }
    catalog::replace_table(tx, table, &def)?;
    done
}

pub(super) fn truncate(tx: &mut WriteTxn, tables: &[String]) -> Result<QueryResult> {
    for name in tables {
        let def = catalog::require_table(tx, name)?;
        let rows: Vec<StoredRow> = table::scan_stored(tx, &def)?.collect::<Result<_>>()?;
        for row in &rows {
            table::delete(tx, &def, row)?;
        }
    }
    Ok(QueryResult::command("TRUNCATE TABLE"))
}

pub(super) fn drop_index(
    tx: &mut WriteTxn,
    names: &[String],
    if_exists: bool,
) -> Result<QueryResult> {
    for name in names {
        let Some(mut def) = catalog::index_owner(tx, name)? else {
            if if_exists {
                continue;
            }
            return Err(SqlError::new(
                sqlstate::UNDEFINED_TABLE,
                format!("index \"{name}\" does not exist"),
            ));
        };
        let at = def
            .indexes
            .iter()
            .position(|i| &i.name == name)
            .expect("owner has the index");
        let index = def.indexes.remove(at);
        tx.drop_tree(&catalog::index_tree(&index))?;
        let table = def.name.clone();
        catalog::replace_table(tx, &table, &def)?;
    }
    Ok(QueryResult::command("DROP INDEX"))
}
