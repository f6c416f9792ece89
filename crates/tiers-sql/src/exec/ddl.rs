//! CREATE TABLE: column specs to a catalog definition.

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
        let (default, default_expr) = match &spec.default {
            None => (None, None),
            Some(e) if is_volatile(e) => (None, spec.default_sql.clone()),
            Some(e) => {
                let v = spec.data_type.assign(constant(e)?)?;
                ((!v.is_null()).then(|| v.to_text()), None)
            }
        };
        columns.push(ColumnDef {
            name: spec.name.clone(),
            data_type: spec.data_type,
            not_null: spec.not_null,
            default,
            serial: spec.serial,
            default_expr,
        });
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
