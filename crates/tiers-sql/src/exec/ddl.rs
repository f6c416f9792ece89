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

pub(super) fn create_table(
    tx: &mut WriteTxn,
    name: &str,
    if_not_exists: bool,
    specs: &[ColumnSpec],
    table_pk: &[String],
    unique: &[Vec<String>],
) -> Result<QueryResult> {
    if catalog::table(tx, name)?.is_some() && if_not_exists {
        return Ok(QueryResult::command("CREATE TABLE"));
    }
    let mut columns = Vec::with_capacity(specs.len());
    for spec in specs {
        let default = match &spec.default {
            None => None,
            Some(e) => {
                let v = spec.data_type.assign(constant(e)?)?;
                (!v.is_null()).then(|| v.to_text())
            }
        };
        columns.push(ColumnDef {
            name: spec.name.clone(),
            data_type: spec.data_type,
            not_null: spec.not_null,
            default,
            serial: spec.serial,
        });
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
        },
    )?;
    Ok(QueryResult::command("CREATE TABLE"))
}
