//! Describing a statement before it runs: its result columns and the types
//! of its parameters (the wire protocol's Describe).

use super::*;

/// The result columns a statement will return, without running it (for
/// the wire protocol's Describe).
pub fn describe(r: &dyn Reads, stmt: &Statement) -> Result<Vec<Column>> {
    if let Statement::Show { name } = stmt {
        return Ok(vec![Column {
            name: name.to_ascii_lowercase(),
            data_type: DataType::Text,
        }]);
    }
    let (table, items) = match stmt {
        Statement::Select(q) => return Ok(crate::query::plan_query(r, q)?.columns()),
        Statement::Explain { .. } => {
            return Ok(vec![Column {
                name: "QUERY PLAN".into(),
                data_type: DataType::Text,
            }]);
        }
        Statement::Insert {
            table, returning, ..
        }
        | Statement::Update {
            table, returning, ..
        }
        | Statement::Delete {
            table, returning, ..
        } => (Some(table.as_str()), returning),
        _ => return Ok(Vec::new()),
    };
    let def = table.map(|t| catalog::require_table(r, t)).transpose()?;
    Ok(output_columns(def.as_ref(), items)?.0)
}

/// The types of `$1..$n` as far as the statement's context tells them
/// (compared with or assigned to a column, LIMIT/OFFSET); `text` otherwise.
pub fn parameter_types(r: &dyn Reads, stmt: &Statement) -> Result<Vec<DataType>> {
    let mut types: Vec<Option<DataType>> = Vec::new();
    let mut note = |n: usize, t: Option<DataType>| {
        if n == 0 || n > 65_535 {
            return;
        }
        if types.len() < n {
            types.resize(n, None);
        }
        if types[n - 1].is_none() {
            types[n - 1] = t;
        }
    };
    let table_of = |name: &str| catalog::table(r, name).ok().flatten();
    match stmt {
        Statement::Insert {
            table,
            columns,
            rows,
            query,
            returning,
            ..
        } => {
            let def = table_of(table);
            if let Some(q) = query {
                let plan = crate::query::plan_query(r, q)?;
                for (n, t) in plan.param_types.iter().enumerate() {
                    note(n + 1, *t);
                }
            }
            for row in rows {
                for (j, e) in row.iter().enumerate() {
                    let ty = def.as_ref().and_then(|d| {
                        let col = if columns.is_empty() {
                            Some(j)
                        } else {
                            d.column(&columns[j]).ok()
                        };
                        col.and_then(|c| d.columns.get(c)).map(|c| c.data_type)
                    });
                    visit_params(e, def.as_ref(), ty, &mut note);
                }
            }
            returning_params(returning, def.as_ref(), &mut note);
        }
        Statement::Explain { statement, .. } => return parameter_types(r, statement),
        Statement::Select(q) => {
            let plan = crate::query::plan_query(r, q)?;
            for (n, t) in plan.param_types.iter().enumerate() {
                note(n + 1, *t);
            }
        }
        Statement::Update {
            table,
            set,
            filter,
            returning,
            ..
        } => {
            let def = table_of(table);
            for (col, e) in set {
                let ty = def
                    .as_ref()
                    .and_then(|d| d.column(col).ok().map(|c| d.columns[c].data_type));
                visit_params(e, def.as_ref(), ty, &mut note);
            }
            if let Some(f) = filter {
                visit_params(f, def.as_ref(), None, &mut note);
            }
            returning_params(returning, def.as_ref(), &mut note);
        }
        Statement::Delete {
            table,
            filter,
            returning,
            ..
        } => {
            let def = table_of(table);
            if let Some(f) = filter {
                visit_params(f, def.as_ref(), None, &mut note);
            }
            returning_params(returning, def.as_ref(), &mut note);
        }
        _ => {}
    }
    Ok(types
        .into_iter()
        .map(|t| t.unwrap_or(DataType::Text))
        .collect())
}

fn returning_params(
    items: &[SelectItem],
    def: Option<&TableDef>,
    note: &mut dyn FnMut(usize, Option<DataType>),
) {
    for item in items {
        if let SelectItem::Expr { expr, .. } = item {
            visit_params(expr, def, None, note);
        }
    }
}

/// Walks an expression, telling `note` each parameter and the type its
/// context implies (`hint` for the expression itself).
fn visit_params(
    e: &Expr,
    def: Option<&TableDef>,
    hint: Option<DataType>,
    note: &mut dyn FnMut(usize, Option<DataType>),
) {
    let column_type = |e: &Expr| match e {
        Expr::Column { name, .. } => def
            .and_then(|d| d.columns.iter().find(|c| &c.name == name))
            .map(|c| c.data_type),
        Expr::Cast { to, .. } => Some(*to),
        _ => None,
    };
    match e {
        Expr::Parameter(n) => note(*n, hint),
        Expr::Binary { op, left, right } => {
            let side_hint = match op {
                BinaryOp::And | BinaryOp::Or => Some(DataType::Bool),
                BinaryOp::Concat => Some(DataType::Text),
                _ => None,
            };
            visit_params(
                left,
                def,
                side_hint.or_else(|| column_type(right)).or(hint),
                note,
            );
            visit_params(
                right,
                def,
                side_hint.or_else(|| column_type(left)).or(hint),
                note,
            );
        }
        Expr::Not(x) => visit_params(x, def, Some(DataType::Bool), note),
        Expr::Negate(x) => visit_params(x, def, hint, note),
        Expr::IsNull { expr, .. } => visit_params(expr, def, None, note),
        Expr::Like { expr, pattern, .. } => {
            visit_params(expr, def, Some(DataType::Text), note);
            visit_params(pattern, def, Some(DataType::Text), note);
        }
        Expr::InList { expr, list, .. } => {
            let ty = column_type(expr);
            visit_params(expr, def, None, note);
            for item in list {
                visit_params(item, def, ty, note);
            }
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            let ty = column_type(expr);
            visit_params(expr, def, None, note);
            visit_params(low, def, ty, note);
            visit_params(high, def, ty, note);
        }
        Expr::Cast { expr, to } => visit_params(expr, def, Some(*to), note),
        Expr::Function { args, .. } => {
            for a in args {
                visit_params(a, def, None, note);
            }
        }
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => {
            if let Some(o) = operand {
                visit_params(o, def, None, note);
            }
            for (w, t) in branches {
                visit_params(w, def, None, note);
                visit_params(t, def, hint, note);
            }
            if let Some(o) = otherwise {
                visit_params(o, def, hint, note);
            }
        }
        Expr::InSubquery { expr, .. } => visit_params(expr, def, None, note),
        Expr::Literal(_)
        | Expr::Column { .. }
        | Expr::Subquery(_)
        | Expr::Exists { .. }
        | Expr::Bound(_)
        | Expr::Outer { .. }
        | Expr::SubPlan(_) => {}
    }
}

/// What the extended protocol's Parse needs of a statement: its parameter
/// types and result columns, and, for a query, its plan, made here once
/// and kept for the statement's executions (a Parse, Describe, Bind,
/// Execute round with an unnamed statement then plans once, not three times).
pub fn prepare(db: &Database, stmt: &Statement) -> Result<(Vec<DataType>, Vec<Column>, PlanCache)> {
    // The epoch before the snapshot, as in `Session::run_statement`: the plan
    // never reflects an older catalog than the epoch it is filed under.
    let epoch = db.plan_epoch();
    let snapshot = db.engine.begin_read();
    let Statement::Select(q) = stmt else {
        return Ok((
            parameter_types(&snapshot, stmt)?,
            describe(&snapshot, stmt)?,
            PlanCache::default(),
        ));
    };
    let cache = PlanCache::default();
    let plan = cache.get_or_plan(epoch, || crate::query::plan_query(&snapshot, q))?;
    let mut types: Vec<DataType> = plan
        .param_types
        .iter()
        .map(|t| t.unwrap_or(DataType::Text))
        .collect();
    types.truncate(65_535);
    let columns = plan.columns();
    Ok((types, columns, cache))
}
