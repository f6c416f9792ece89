//! Access paths for UPDATE and DELETE: which rows a filter may match,
//! through the primary key, an index, or a scan (the filter itself is
//! checked by the caller).

use super::*;

/// The rows of `def` the filter may match, through the best access path.
pub(super) fn candidates(
    r: &dyn Reads,
    def: &TableDef,
    filter: Option<&Expr>,
    params: &[Value],
) -> Result<Vec<StoredRow>> {
    if let Some(f) = filter {
        for (col, value) in equalities(def, f, params) {
            if def.primary_key == [col] {
                let key = table::primary_key(def, &[value])?;
                return Ok(table::get(r, def, &key)?.into_iter().collect());
            }
            if let Some(index) = def.indexes.iter().find(|i| i.columns == [col]) {
                return table::lookup(r, def, index, &[value]);
            }
        }
    }
    table::scan_stored(r, def)?.collect()
}

/// `column = constant` terms of a conjunction, with the constant already
/// converted to the column's type (a constant that does not convert gives no
/// access path; the filter then reports the error or matches nothing).
pub(super) fn equalities(def: &TableDef, e: &Expr, params: &[Value]) -> Vec<(usize, Value)> {
    let mut out = Vec::new();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        let Expr::Binary { op, left, right } = e else {
            continue;
        };
        match op {
            BinaryOp::And => {
                stack.push(left);
                stack.push(right);
            }
            BinaryOp::Eq => {
                let pair = match (&**left, &**right) {
                    (Expr::Column { table, name }, other)
                    | (other, Expr::Column { table, name })
                        if table.as_deref().is_none_or(|t| t == def.name) =>
                    {
                        def.columns
                            .iter()
                            .position(|c| &c.name == name)
                            .zip(Some(other))
                    }
                    _ => None,
                };
                let Some((col, other)) = pair else { continue };
                let scope = Scope::constant(params);
                if let Ok(v) = expr::eval(other, &scope)
                    && let Ok(v) = def.columns[col].data_type.assign(v)
                    && !v.is_null()
                {
                    out.push((col, v));
                }
            }
            _ => {}
        }
    }
    out
}
