//! INSERT, UPDATE and DELETE: row locks, READ COMMITTED re-checks, RETURNING.

use super::*;

pub(super) fn insert(
    tx: &mut WriteTxn,
    table_name: &str,
    columns: &[String],
    rows: &[Vec<Expr>],
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let def = catalog::require_table(tx, table_name)?;
    let targets: Vec<usize> = if columns.is_empty() {
        (0..def.columns.len()).collect()
    } else {
        columns
            .iter()
            .map(|c| def.column(c))
            .collect::<Result<_>>()?
    };
    let scope = Scope::constant(params);
    let mut stored = Vec::with_capacity(rows.len());
    for row in rows {
        if row.len() > targets.len() {
            return Err(SqlError::new(
                sqlstate::SYNTAX_ERROR,
                "INSERT has more expressions than target columns",
            ));
        }
        let mut values: Vec<Option<Value>> = vec![None; def.columns.len()];
        for (e, &col) in row.iter().zip(&targets) {
            values[col] = Some(expr::eval(e, &scope)?);
        }
        let row = table::prepare_insert(&def, values, &ctx.db.sequences)?;
        ctx.lock(tx, table::lock_keys(&def, &row))?;
        stored.push(table::insert_prepared(tx, &def, row)?);
    }
    let n = stored.len();
    returning_result(&def, stored, returning, params, format!("INSERT 0 {n}"))
}

/// Locks a row found at the statement's snapshot and reads it again at
/// the newest one (the lock holder before us may have changed or deleted
/// it); None when it is gone or no longer matches the filter.
pub(super) fn lock_and_recheck(
    tx: &mut WriteTxn,
    def: &TableDef,
    row: &StoredRow,
    filter: Option<&Expr>,
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<Option<StoredRow>> {
    ctx.lock(tx, vec![table::lock_keys(def, &row.values).swap_remove(0)])?;
    if !ctx.read_committed {
        return Ok(Some(row.clone()));
    }
    let Some(current) = table::get(tx, def, &row.key)? else {
        return Ok(None);
    };
    Ok(matches(def, filter, current.columns(def), params)?.then_some(current))
}

pub(super) fn update(
    tx: &mut WriteTxn,
    table_name: &str,
    set: &[(String, Expr)],
    filter: Option<&Expr>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let def = catalog::require_table(tx, table_name)?;
    let targets: Vec<(usize, &Expr)> = set
        .iter()
        .map(|(c, e)| def.column(c).map(|i| (i, e)))
        .collect::<Result<_>>()?;
    // Collect first, then write: a scan must not see its own updates.
    let rows = matching_rows(tx, &def, filter, params)?;
    let mut stored = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(row) = lock_and_recheck(tx, &def, row, filter, params, ctx)? else {
            continue;
        };
        let old = row.columns(&def);
        let scope = Scope::row(&def, old, params);
        let mut new = old.to_vec();
        for (col, e) in &targets {
            new[*col] = expr::eval(e, &scope)?;
        }
        // A changed key or unique value must be locked too before it is written.
        let mut checked = table::coerce_row(&def, new)?;
        checked.extend(row.values[def.columns.len()..].iter().cloned());
        ctx.lock(tx, table::lock_keys(&def, &checked))?;
        checked.truncate(def.columns.len());
        stored.push(table::update(tx, &def, &row, checked)?);
    }
    let n = stored.len();
    returning_result(&def, stored, returning, params, format!("UPDATE {n}"))
}

pub(super) fn delete(
    tx: &mut WriteTxn,
    table_name: &str,
    filter: Option<&Expr>,
    returning: &[SelectItem],
    params: &[Value],
    ctx: &mut WriteCtx<'_>,
) -> Result<QueryResult> {
    let def = catalog::require_table(tx, table_name)?;
    let rows = matching_rows(tx, &def, filter, params)?;
    let mut gone = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(row) = lock_and_recheck(tx, &def, row, filter, params, ctx)? else {
            continue;
        };
        table::delete(tx, &def, &row)?;
        gone.push(row.columns(&def).to_vec());
    }
    let n = gone.len();
    returning_result(&def, gone, returning, params, format!("DELETE {n}"))
}

pub(super) fn returning_result(
    def: &TableDef,
    rows: Vec<Vec<Value>>,
    items: &[SelectItem],
    params: &[Value],
    tag: String,
) -> Result<QueryResult> {
    if items.is_empty() {
        return Ok(QueryResult::command(tag));
    }
    let (columns, exprs) = output_columns(Some(def), items)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let scope = Scope::row(def, row, params);
        out.push(
            exprs
                .iter()
                .map(|e| expr::eval(e, &scope))
                .collect::<Result<_>>()?,
        );
    }
    Ok(QueryResult {
        columns,
        rows: out,
        tag,
    })
}
