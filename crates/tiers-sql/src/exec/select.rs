//! SELECT: output columns and their types, filtering, aggregation,
//! ORDER BY, LIMIT and OFFSET.

use super::*;

/// Expands `*` and names every output column.
pub(super) fn output_columns(
    def: Option<&TableDef>,
    items: &[SelectItem],
) -> Result<(Vec<Column>, Vec<Expr>)> {
    let mut columns = Vec::new();
    let mut exprs = Vec::new();
    for item in items {
        match item {
            SelectItem::Wildcard => {
                let Some(def) = def else {
                    return Err(SqlError::new(
                        sqlstate::SYNTAX_ERROR,
                        "SELECT * with no tables specified is not valid",
                    ));
                };
                for c in &def.columns {
                    columns.push(Column {
                        name: c.name.clone(),
                        data_type: c.data_type,
                    });
                    exprs.push(Expr::Column {
                        table: None,
                        name: c.name.clone(),
                    });
                }
            }
            SelectItem::Expr { expr, alias } => {
                let name = alias.clone().unwrap_or_else(|| match expr {
                    Expr::Column { name, .. } => name.clone(),
                    Expr::Function { name, .. } => name.clone(),
                    Expr::Cast { expr, .. } => match &**expr {
                        Expr::Column { name, .. } => name.clone(),
                        _ => "?column?".into(),
                    },
                    _ => "?column?".into(),
                });
                columns.push(Column {
                    name,
                    data_type: type_of(expr, def),
                });
                exprs.push(expr.clone());
            }
        }
    }
    Ok((columns, exprs))
}

/// The static type of an expression (what clients are told in the row
/// description).
pub(super) fn type_of(e: &Expr, def: Option<&TableDef>) -> DataType {
    match e {
        Expr::Literal(Value::Int(i)) => {
            if i32::try_from(*i).is_ok() {
                DataType::Int4
            } else {
                DataType::Int8
            }
        }
        Expr::Literal(Value::Float(_)) => DataType::Float8,
        Expr::Literal(Value::Bool(_)) => DataType::Bool,
        Expr::Literal(Value::Date(_)) => DataType::Date,
        Expr::Literal(Value::Bytes(_)) => DataType::Bytea,
        Expr::Literal(_) | Expr::Parameter(_) => DataType::Text,
        Expr::Column { name, .. } => def
            .and_then(|d| d.columns.iter().find(|c| &c.name == name))
            .map_or(DataType::Text, |c| c.data_type),
        Expr::Binary { op, left, right } => match op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
                let (l, r) = (type_of(left, def), type_of(right, def));
                match (l, r) {
                    (DataType::Float8 | DataType::Float4, _)
                    | (_, DataType::Float8 | DataType::Float4) => DataType::Float8,
                    (DataType::Date, _) => DataType::Date,
                    (DataType::Int8, _) | (_, DataType::Int8) => DataType::Int8,
                    _ => DataType::Int4,
                }
            }
            BinaryOp::Concat => DataType::Text,
            _ => DataType::Bool,
        },
        Expr::Negate(inner) => type_of(inner, def),
        Expr::Cast { to, .. } => *to,
        Expr::Case { branches, .. } => branches
            .first()
            .map_or(DataType::Text, |(_, t)| type_of(t, def)),
        Expr::Function { name, args, .. } => match name.as_str() {
            "count" | "length" | "char_length" => DataType::Int8,
            "avg" => DataType::Float8,
            "sum" => match args.first().map(|a| type_of(a, def)) {
                Some(DataType::Float4 | DataType::Float8) => DataType::Float8,
                _ => DataType::Int8,
            },
            "min" | "max" | "abs" | "coalesce" | "nullif" | "round" => {
                args.first().map_or(DataType::Text, |a| type_of(a, def))
            }
            "now" | "current_timestamp" => DataType::TimestampTz,
            _ => DataType::Text,
        },
        Expr::Not(_)
        | Expr::IsNull { .. }
        | Expr::Like { .. }
        | Expr::InList { .. }
        | Expr::Between { .. } => DataType::Bool,
    }
}

pub(super) fn has_aggregate(e: &Expr) -> bool {
    match e {
        Expr::Function { name, args, .. } => {
            expr::is_aggregate(name) || args.iter().any(has_aggregate)
        }
        Expr::Binary { left, right, .. } => has_aggregate(left) || has_aggregate(right),
        Expr::Not(x)
        | Expr::Negate(x)
        | Expr::Cast { expr: x, .. }
        | Expr::IsNull { expr: x, .. } => has_aggregate(x),
        _ => false,
    }
}

pub(super) fn run_select(r: &dyn Reads, select: &Select, params: &[Value]) -> Result<QueryResult> {
    let def = select
        .from
        .as_deref()
        .map(|t| catalog::require_table(r, t))
        .transpose()?;
    let (columns, exprs) = output_columns(def.as_ref(), &select.items)?;
    let rows: Vec<Vec<Value>> = match &def {
        None => vec![Vec::new()],
        Some(d) => matching_rows(r, d, select.filter.as_ref(), params)?
            .into_iter()
            .map(|row| row.columns(d).to_vec())
            .collect(),
    };
    let mut out: Vec<(Vec<Value>, Vec<Value>)> = if exprs.iter().any(has_aggregate) {
        vec![(
            aggregate_row(&exprs, &rows, def.as_ref(), params)?,
            Vec::new(),
        )]
    } else {
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let scope = Scope {
                table: def.as_ref(),
                row: Some(row),
                params,
            };
            let values = exprs
                .iter()
                .map(|e| expr::eval(e, &scope))
                .collect::<Result<_>>()?;
            let keys = sort_keys(&select.order_by, &exprs, &columns, &scope)?;
            out.push((values, keys));
        }
        out
    };
    if !select.order_by.is_empty() {
        let mut failure = None;
        out.sort_by(|a, b| {
            compare_keys(&select.order_by, &a.1, &b.1).unwrap_or_else(|e| {
                failure.get_or_insert(e);
                Ordering::Equal
            })
        });
        if let Some(e) = failure {
            return Err(e);
        }
    }
    let constant = Scope::constant(params);
    let count = |e: &Option<Expr>| -> Result<Option<usize>> {
        let Some(e) = e else { return Ok(None) };
        match expr::eval(e, &constant)? {
            Value::Null => Ok(None),
            v => {
                let n = v.to_i64()?;
                usize::try_from(n)
                    .map(Some)
                    .map_err(|_| SqlError::new("2201W", "LIMIT and OFFSET must not be negative"))
            }
        }
    };
    let offset = count(&select.offset)?.unwrap_or(0);
    let limit = count(&select.limit)?.unwrap_or(usize::MAX);
    let rows: Vec<Vec<Value>> = out
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(v, _)| v)
        .collect();
    let tag = format!("SELECT {}", rows.len());
    Ok(QueryResult { columns, rows, tag })
}

/// ORDER BY keys for a row: a position (`ORDER BY 2`), an output name, or
/// any expression over the row.
pub(super) fn sort_keys(
    order: &[OrderBy],
    exprs: &[Expr],
    columns: &[Column],
    scope: &Scope<'_>,
) -> Result<Vec<Value>> {
    order
        .iter()
        .map(|o| match &o.expr {
            Expr::Literal(Value::Int(n)) => {
                let i = usize::try_from(*n)
                    .ok()
                    .filter(|i| (1..=exprs.len()).contains(i))
                    .ok_or_else(|| {
                        SqlError::new(
                            "42P10",
                            format!("ORDER BY position {n} is not in select list"),
                        )
                    })?;
                expr::eval(&exprs[i - 1], scope)
            }
            Expr::Column { table: None, name }
                if columns.iter().any(|c| &c.name == name)
                    && scope.table.is_none_or(|d| d.column(name).is_err()) =>
            {
                let i = columns.iter().position(|c| &c.name == name).expect("found");
                expr::eval(&exprs[i], scope)
            }
            e => expr::eval(e, scope),
        })
        .collect()
}

pub(super) fn compare_keys(order: &[OrderBy], a: &[Value], b: &[Value]) -> Result<Ordering> {
    for (o, (x, y)) in order.iter().zip(a.iter().zip(b)) {
        let nulls_first = o.nulls_first.unwrap_or(o.desc);
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            _ => {
                let ord = expr::compare(x, y)?.unwrap_or(Ordering::Equal);
                if o.desc { ord.reverse() } else { ord }
            }
        };
        if ord != Ordering::Equal {
            return Ok(ord);
        }
    }
    Ok(Ordering::Equal)
}

/// One output row of aggregates over all `rows` (no GROUP BY yet).
pub(super) fn aggregate_row(
    exprs: &[Expr],
    rows: &[Vec<Value>],
    def: Option<&TableDef>,
    params: &[Value],
) -> Result<Vec<Value>> {
    exprs
        .iter()
        .map(|e| match e {
            Expr::Function { name, args, star } if expr::is_aggregate(name) => {
                aggregate(name, args.first(), *star, rows, def, params)
            }
            e if !has_aggregate(e) && !references_columns(e) => expr::eval(
                e,
                &Scope {
                    table: def,
                    row: None,
                    params,
                },
            ),
            _ => Err(SqlError::new(
                "42803",
                "columns must appear in an aggregate function (GROUP BY is not supported yet)",
            )),
        })
        .collect()
}

pub(super) fn references_columns(e: &Expr) -> bool {
    match e {
        Expr::Column { .. } => true,
        Expr::Binary { left, right, .. } => references_columns(left) || references_columns(right),
        Expr::Not(x)
        | Expr::Negate(x)
        | Expr::Cast { expr: x, .. }
        | Expr::IsNull { expr: x, .. } => references_columns(x),
        Expr::Function { args, .. } => args.iter().any(references_columns),
        _ => false,
    }
}

pub(super) fn aggregate(
    name: &str,
    arg: Option<&Expr>,
    star: bool,
    rows: &[Vec<Value>],
    def: Option<&TableDef>,
    params: &[Value],
) -> Result<Value> {
    if name == "count" && (star || arg.is_none()) {
        return Ok(Value::Int(rows.len() as i64));
    }
    let arg = arg.ok_or_else(|| SqlError::new("42883", format!("{name}() needs an argument")))?;
    let mut values = Vec::with_capacity(rows.len());
    for row in rows {
        let v = expr::eval(
            arg,
            &Scope {
                table: def,
                row: Some(row),
                params,
            },
        )?;
        if !v.is_null() {
            values.push(v);
        }
    }
    match name {
        "count" => Ok(Value::Int(values.len() as i64)),
        "min" | "max" => {
            let mut best: Option<Value> = None;
            for v in values {
                let better = match &best {
                    None => true,
                    Some(b) => {
                        let o = expr::compare(&v, b)?.unwrap_or(Ordering::Equal);
                        if name == "min" {
                            o == Ordering::Less
                        } else {
                            o == Ordering::Greater
                        }
                    }
                };
                if better {
                    best = Some(v);
                }
            }
            Ok(best.unwrap_or(Value::Null))
        }
        _ => {
            if values.is_empty() {
                return Ok(Value::Null);
            }
            let all_int = values.iter().all(|v| matches!(v, Value::Int(_)));
            if name == "sum" && all_int {
                let mut total: i64 = 0;
                for v in &values {
                    total = total.checked_add(v.to_i64()?).ok_or_else(|| {
                        SqlError::new(sqlstate::NUMERIC_VALUE_OUT_OF_RANGE, "bigint out of range")
                    })?;
                }
                return Ok(Value::Int(total));
            }
            let mut total = 0f64;
            for v in &values {
                total += v.to_f64()?;
            }
            Ok(Value::Float(if name == "avg" {
                total / values.len() as f64
            } else {
                total
            }))
        }
    }
}
