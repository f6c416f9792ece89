//! COPY as statements: `COPY ... TO STDOUT` runs a query for the server to
//! encode; `COPY ... FROM STDIN` inserts the rows in one statement, parsing
//! them from the data one batch at a time.

use super::*;

/// `COPY ... TO STDOUT`: the rows, for the server to encode.
pub(super) fn copy_out(
    tx: &mut WriteTxn,
    copy: &crate::ast::Copy,
    params: &[Value],
) -> Result<QueryResult> {
    let query = match &copy.source {
        crate::ast::CopySource::Query(q) => (**q).clone(),
        crate::ast::CopySource::Table { name, columns } => {
            let items = if columns.is_empty() {
                vec![SelectItem::Wildcard]
            } else {
                columns
                    .iter()
                    .map(|c| SelectItem::Expr {
                        expr: Expr::Column {
                            table: None,
                            name: c.clone(),
                        },
                        alias: None,
                    })
                    .collect()
            };
            crate::ast::Query::plain(crate::ast::SetExpr::Select(Box::new(crate::ast::Select {
                items,
                from: vec![crate::ast::TableRef::Table {
                    name: name.clone(),
                    alias: None,
                }],
                ..crate::ast::Select::default()
            })))
        }
    };
    let plan = crate::query::plan_query(tx, &query)?;
    let mut result = crate::query::run(tx, &plan, params)?;
    result.tag = format!("COPY {}", result.rows.len());
    Ok(result)
}

/// `COPY table FROM STDIN` with its rows parsed: one INSERT of them all.
pub(super) fn copy_in(
    tx: &mut WriteTxn,
    copy: &crate::ast::Copy,
    rows: impl Iterator<Item = Result<Vec<Option<String>>>>,
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let crate::ast::CopySource::Table { name, columns } = &copy.source else {
        return Err(SqlError::new(
            sqlstate::SYNTAX_ERROR,
            "COPY FROM needs a table",
        ));
    };
    let def = catalog::require_table(tx, name)?;
    let targets = target_columns(&def, columns)?;
    let rules = super::write::rules(tx, &def)?;
    // Rows go in by batches, in order, as PostgreSQL's COPY does: the first
    // bad row stops it (and the statement's rollback undoes it all), and
    // only one batch of converted rows exists at a time.
    const BATCH: usize = 4096;
    let mut n = 0;
    let mut given_rows = Vec::with_capacity(BATCH);
    for (i, row) in rows.enumerate() {
        let row = row?;
        if row.len() != targets.len() {
            return Err(SqlError::new(
                "22P04",
                format!(
                    "COPY row {} has {} fields, the table expects {}",
                    i + 1,
                    row.len(),
                    targets.len()
                ),
            ));
        }
        let mut given: Vec<Option<Value>> = vec![None; def.columns.len()];
        for (field, &col) in row.into_iter().zip(&targets) {
            given[col] = Some(field.map_or(Value::Null, Value::Text));
        }
        given_rows.push(given);
        if given_rows.len() == BATCH {
            let batch = std::mem::replace(&mut given_rows, Vec::with_capacity(BATCH));
            n += insert_rows(tx, &def, &rules, batch, None, &[], ctx, false)?.0;
        }
    }
    n += insert_rows(tx, &def, &rules, given_rows, None, &[], ctx, false)?.0;
    Ok(QueryResult::command(format!("COPY {n}")))
}
