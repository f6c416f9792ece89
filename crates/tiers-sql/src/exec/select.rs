//! Result columns of RETURNING lists, and static expression types (queries
//! themselves are planned and run by [`crate::query`]).

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
            SelectItem::QualifiedWildcard(t) => {
                return Err(SqlError::new(
                    sqlstate::FEATURE_NOT_SUPPORTED,
                    format!("{t}.* is not supported in RETURNING; use *"),
                ));
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

/// The static type of an expression over `def`'s columns by name
/// (RETURNING lists).
pub(super) fn type_of(e: &Expr, def: Option<&TableDef>) -> DataType {
    match e {
        Expr::Column { name, .. } => def
            .and_then(|d| d.columns.iter().find(|c| &c.name == name))
            .map_or(DataType::Text, |c| c.data_type),
        other => type_of_with(other, &|x| type_of(x, def)),
    }
}

/// The result type of a function call given its argument types.
pub fn type_of_function(name: &str, args: &[DataType]) -> DataType {
    match name {
        "count" | "length" | "char_length" | "octet_length" | "strpos" | "position" => {
            DataType::Int8
        }
        "sqrt" | "power" | "pow" | "exp" | "ln" | "log" | "random" | "pi" => DataType::Float8,
        "avg" => match args.first() {
            Some(DataType::Float4 | DataType::Float8) => DataType::Float8,
            _ => DataType::Numeric(None),
        },
        "sum" => match args.first() {
            Some(DataType::Float4 | DataType::Float8) => DataType::Float8,
            Some(DataType::Numeric(_)) => DataType::Numeric(None),
            _ => DataType::Int8,
        },
        "min" | "max" | "abs" | "coalesce" | "nullif" | "round" | "ceil" | "ceiling" | "floor"
        | "trunc" | "greatest" | "least" | "sign" | "mod" => {
            args.first().copied().unwrap_or(DataType::Text)
        }
        "now"
        | "current_timestamp"
        | "clock_timestamp"
        | "statement_timestamp"
        | "transaction_timestamp" => DataType::TimestampTz,
        "date_trunc" => match args.get(1) {
            Some(DataType::Timestamp) => DataType::Timestamp,
            _ => DataType::TimestampTz,
        },
        "lower" | "upper" | "initcap" | "btrim" | "ltrim" | "rtrim" | "trim" | "substr"
        | "substring" | "replace" | "left" | "right" | "repeat" | "reverse" | "lpad" | "rpad"
        | "split_part" | "concat" | "concat_ws" | "version" | "current_database"
        | "current_schema" => DataType::Text,
        "current_date" => DataType::Date,
        "bool_and"
        | "bool_or"
        | "every"
        | "starts_with"
        | "pg_table_is_visible"
        | "pg_is_in_recovery" => DataType::Bool,
        "extract" | "date_part" => DataType::Float8,
        _ => DataType::Text,
    }
}

/// The static type of an expression, with `sub` typing its operands.
pub fn type_of_with(e: &Expr, sub: &dyn Fn(&Expr) -> DataType) -> DataType {
    match e {
        Expr::Literal(Value::Int(i)) => {
            if i32::try_from(*i).is_ok() {
                DataType::Int4
            } else {
                DataType::Int8
            }
        }
        Expr::Literal(Value::Float(_)) => DataType::Float8,
        Expr::Literal(Value::Numeric(_)) => DataType::Numeric(None),
        Expr::Literal(Value::Bool(_)) => DataType::Bool,
        Expr::Literal(Value::Date(_)) => DataType::Date,
        Expr::Literal(Value::Bytes(_)) => DataType::Bytea,
        Expr::Binary { op, left, right } => match op {
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
                match (sub(left), sub(right)) {
                    (DataType::Date, DataType::Date) => DataType::Int4,
                    (DataType::Float8 | DataType::Float4, _)
                    | (_, DataType::Float8 | DataType::Float4) => DataType::Float8,
                    (DataType::Numeric(_), _) | (_, DataType::Numeric(_)) => {
                        DataType::Numeric(None)
                    }
                    (DataType::Date, _) => DataType::Date,
                    (DataType::Int8, _) | (_, DataType::Int8) => DataType::Int8,
                    (DataType::Text, DataType::Text) => DataType::Text,
                    (DataType::Text, other) | (other, DataType::Text) => other,
                    _ => DataType::Int4,
                }
            }
            BinaryOp::Concat => DataType::Text,
            _ => DataType::Bool,
        },
        Expr::Negate(inner) => sub(inner),
        Expr::Cast { to, .. } => *to,
        Expr::Case {
            branches,
            otherwise,
            ..
        } => branches
            .iter()
            .map(|(_, t)| t)
            .chain(otherwise.as_deref())
            .map(sub)
            .find(|t| *t != DataType::Text)
            .unwrap_or(DataType::Text),
        Expr::Function { name, args, .. } => {
            type_of_function(name, &args.iter().map(sub).collect::<Vec<_>>())
        }
        Expr::Not(_)
        | Expr::IsNull { .. }
        | Expr::Like { .. }
        | Expr::InList { .. }
        | Expr::Between { .. }
        | Expr::Exists { .. }
        | Expr::InSubquery { .. } => DataType::Bool,
        _ => DataType::Text,
    }
}
