//! Translating INSERT, UPDATE, DELETE and queries (SELECT, set operations,
//! FROM items and joins).

use super::*;

// ---------------------------------------------------------------------------
// INSERT, UPDATE, DELETE
// ---------------------------------------------------------------------------

pub(super) fn insert(mut ins: sql::Insert) -> Result<Statement> {
    let on = ins.on.take();
    check_insert_clauses(&ins)?;
    let table = match ins.table {
        sql::TableObject::TableName(name) => relation_name(name)?,
        _ => return Err(unsupported("INSERT into a table function")),
    };
    let columns = ins
        .columns
        .into_iter()
        .map(column_name)
        .collect::<Result<Vec<_>>>()?;
    let rows = match ins.source {
        None => vec![vec![]],
        Some(q) => match insert_source(*q)? {
            SetExpr::Values(rows) => rows,
            body => {
                let returning = Scope::table(&table).returning(ins.returning)?;
                let on_conflict = on_conflict(on, &table)?;
                return Ok(Statement::Insert {
                    table,
                    columns,
                    rows: Vec::new(),
                    query: Some(Box::new(Query::plain(body))),
                    on_conflict,
                    returning,
                });
            }
        },
    };
    let returning = Scope::table(&table).returning(ins.returning)?;
    let on_conflict = on_conflict(on, &table)?;
    Ok(Statement::Insert {
        table,
        columns,
        rows,
        query: None,
        on_conflict,
        returning,
    })
}

/// `ON CONFLICT [(columns)] DO NOTHING | DO UPDATE SET ... [WHERE ...]`.
pub(super) fn on_conflict(on: Option<sql::OnInsert>, table: &str) -> Result<Option<OnConflict>> {
    let c = match on {
        None => return Ok(None),
        Some(sql::OnInsert::OnConflict(c)) => c,
        Some(_) => return Err(unsupported("ON DUPLICATE KEY UPDATE")),
    };
    let columns = match c.conflict_target {
        None => Vec::new(),
        Some(sql::ConflictTarget::Columns { columns, .. }) => {
            columns.into_iter().map(ident).collect()
        }
        Some(_) => return Err(unsupported("ON CONFLICT ON CONSTRAINT (name the columns)")),
    };
    let action = match c.action {
        sql::OnConflictAction::DoNothing => ConflictAction::Nothing,
        sql::OnConflictAction::DoUpdate(u) => {
            if columns.is_empty() {
                return Err(syntax(
                    "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                ));
            }
            // Qualifiers stay: `excluded.x` and `<table>.x` are both in scope.
            let _ = table;
            let scope = Scope::default();
            let mut set: Vec<(String, Expr)> = Vec::new();
            for a in u.assignments {
                let (column, value) = scope.assignment(a)?;
                if set.iter().any(|(c, _)| *c == column) {
                    return Err(invalid(format!(
                        "multiple assignments to same column \"{column}\""
                    )));
                }
                set.push((column, value));
            }
            ConflictAction::Update {
                set,
                filter: scope.opt_expr(u.selection)?,
            }
        }
    };
    Ok(Some(OnConflict { columns, action }))
}

pub(super) fn check_insert_clauses(ins: &sql::Insert) -> Result<()> {
    refuse(ins.table_alias.is_some(), "an alias on the INSERT target")?;
    refuse(ins.overriding.is_some(), "OVERRIDING")?;
    refuse(!ins.assignments.is_empty(), "INSERT ... SET")?;
    let other = ins.or.is_some()
        || ins.ignore
        || ins.by_name
        || ins.overwrite
        || ins.partitioned.is_some()
        || !ins.after_columns.is_empty()
        || ins.output.is_some()
        || ins.replace_into
        || ins.priority.is_some()
        || ins.insert_alias.is_some()
        || ins.settings.is_some()
        || ins.format_clause.is_some()
        || ins.multi_table_insert_type.is_some();
    refuse(other, "this form of INSERT")
}

/// What INSERT takes its rows from: `VALUES` lists stay as rows, anything
/// else is a query (its ORDER BY/LIMIT/WITH kept by wrapping it).
pub(super) fn insert_source(q: sql::Query) -> Result<SetExpr> {
    let q = query(q)?;
    if q.with.is_empty() && q.order_by.is_empty() && q.limit.is_none() && q.offset.is_none() {
        Ok(q.body)
    } else {
        Ok(SetExpr::Query(Box::new(q)))
    }
}

/// The rows of a `VALUES (...), ...` list, all the same length.
pub(super) fn values_list(values: sql::Values) -> Result<Vec<Vec<Expr>>> {
    refuse(values.explicit_row, "VALUES ROW(...)")?;
    let rows = values
        .rows
        .into_iter()
        .map(|row| {
            row.content
                .into_iter()
                .map(|e| Scope::default().expr(e))
                .collect()
        })
        .collect::<Result<Vec<Vec<Expr>>>>()?;
    if rows.windows(2).any(|w| w[0].len() != w[1].len()) {
        return Err(invalid("VALUES lists must all be the same length"));
    }
    Ok(rows)
}

pub(super) fn update(u: sql::Update) -> Result<Statement> {
    let from = match u.from {
        None => Vec::new(),
        Some(sql::UpdateTableFromKind::AfterSet(from)) => from,
        Some(sql::UpdateTableFromKind::BeforeSet(_)) => {
            return Err(unsupported("UPDATE FROM ... SET (write SET before FROM)"));
        }
    };
    refuse(
        !u.order_by.is_empty() || u.limit.is_some(),
        "UPDATE ... ORDER BY/LIMIT",
    )?;
    refuse(u.or.is_some() || u.output.is_some(), "this form of UPDATE")?;
    refuse(
        u.on_cluster.is_some() || u.settings.is_some(),
        "this form of UPDATE",
    )?;
    let (table, target) = single_table(u.table)?;
    let from = from
        .into_iter()
        .map(table_with_joins)
        .collect::<Result<Vec<_>>>()?;
    // With FROM, names are resolved against every table, so qualifiers stay.
    let scope = if from.is_empty() {
        Scope::table_as(&table, target.alias.as_deref())
    } else {
        Scope::default()
    };
    let mut set: Vec<(String, Expr)> = Vec::with_capacity(u.assignments.len());
    for assignment in u.assignments {
        let (column, value) = scope.assignment(assignment)?;
        if set.iter().any(|(c, _)| *c == column) {
            return Err(invalid(format!(
                "multiple assignments to same column \"{column}\""
            )));
        }
        set.push((column, value));
    }
    let filter = scope.opt_expr(u.selection)?;
    let returning = target.returning(u.returning)?;
    Ok(Statement::Update {
        table,
        alias: target.alias,
        from,
        set,
        filter,
        returning,
    })
}

pub(super) fn delete(d: sql::Delete) -> Result<Statement> {
    refuse(!d.tables.is_empty(), "DELETE with a table list")?;
    refuse(
        !d.order_by.is_empty() || d.limit.is_some(),
        "DELETE ... ORDER BY/LIMIT",
    )?;
    refuse(
        d.output.is_some() || d.on_cluster.is_some(),
        "this form of DELETE",
    )?;
    refuse(d.settings.is_some(), "this form of DELETE")?;
    let from = match d.from {
        sql::FromTable::WithFromKeyword(from) | sql::FromTable::WithoutKeyword(from) => from,
    };
    let mut from = from.into_iter();
    let (Some(target), None) = (from.next(), from.next()) else {
        return Err(unsupported("DELETE from several tables"));
    };
    let (table, target) = single_table(target)?;
    let using = d
        .using
        .unwrap_or_default()
        .into_iter()
        .map(table_with_joins)
        .collect::<Result<Vec<_>>>()?;
    // With USING, names are resolved against every table, so qualifiers stay.
    let scope = if using.is_empty() {
        Scope::table_as(&table, target.alias.as_deref())
    } else {
        Scope::default()
    };
    let filter = scope.opt_expr(d.selection)?;
    let returning = target.returning(d.returning)?;
    Ok(Statement::Delete {
        table,
        alias: target.alias,
        using,
        filter,
        returning,
    })
}

// ---------------------------------------------------------------------------
// SELECT
// ---------------------------------------------------------------------------

pub(super) fn query(q: sql::Query) -> Result<Query> {
    check_query_extras(&q)?;
    let sql::Query {
        with,
        body,
        order_by,
        limit_clause,
        ..
    } = q;
    let mut ctes = Vec::new();
    if let Some(with) = with {
        refuse(with.recursive, "WITH RECURSIVE")?;
        for cte in with.cte_tables {
            refuse(cte.from.is_some(), "this form of WITH")?;
            let alias = table_alias(cte.alias)?;
            ctes.push(Cte {
                name: alias.name,
                columns: alias.columns,
                query: query(*cte.query)?,
            });
        }
    }
    let scope = Scope::default();
    let (limit, offset) = match limit_clause {
        Some(clause) => scope.limit(clause)?,
        None => (None, None),
    };
    Ok(Query {
        with: ctes,
        body: set_expr(*body)?,
        order_by: order_by
            .map(|o| scope.order_by(o))
            .transpose()?
            .unwrap_or_default(),
        limit,
        offset,
    })
}

pub(super) fn set_expr(body: sql::SetExpr) -> Result<SetExpr> {
    match body {
        sql::SetExpr::Select(select) => Ok(SetExpr::Select(Box::new(select_block(*select)?))),
        sql::SetExpr::Query(q) => Ok(SetExpr::Query(Box::new(query(*q)?))),
        sql::SetExpr::Values(values) => Ok(SetExpr::Values(values_list(values)?)),
        sql::SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } => {
            let op = match op {
                sql::SetOperator::Union => SetOp::Union,
                sql::SetOperator::Intersect => SetOp::Intersect,
                sql::SetOperator::Except => SetOp::Except,
                other => return Err(unsupported(other)),
            };
            let all = match set_quantifier {
                sql::SetQuantifier::All => true,
                sql::SetQuantifier::Distinct | sql::SetQuantifier::None => false,
                _ => return Err(unsupported("BY NAME in a set operation")),
            };
            Ok(SetExpr::SetOp {
                op,
                all,
                left: Box::new(set_expr(*left)?),
                right: Box::new(set_expr(*right)?),
            })
        }
        sql::SetExpr::Table(_) => Err(unsupported("TABLE as a query")),
        _ => Err(unsupported("this query")),
    }
}

pub(super) fn select_block(select: sql::Select) -> Result<Select> {
    check_select_clauses(&select)?;
    let scope = Scope::default();
    let from = select
        .from
        .into_iter()
        .map(table_with_joins)
        .collect::<Result<Vec<_>>>()?;
    let items = select
        .projection
        .into_iter()
        .map(|item| scope.select_item(item))
        .collect::<Result<_>>()?;
    let group_by = match select.group_by {
        sql::GroupByExpr::All(_) => return Err(unsupported("GROUP BY ALL")),
        sql::GroupByExpr::Expressions(exprs, modifiers) => {
            refuse(!modifiers.is_empty(), "GROUP BY modifiers")?;
            exprs
                .into_iter()
                .map(|e| scope.expr(e))
                .collect::<Result<_>>()?
        }
    };
    Ok(Select {
        distinct: matches!(select.distinct, Some(sql::Distinct::Distinct)),
        items,
        from,
        filter: scope.opt_expr(select.selection)?,
        group_by,
        having: scope.opt_expr(select.having)?,
    })
}

/// One comma-separated FROM item with its joins, as a left-deep tree.
pub(super) fn table_with_joins(t: sql::TableWithJoins) -> Result<TableRef> {
    let mut left = table_factor(t.relation)?;
    for join in t.joins {
        refuse(join.global, "GLOBAL JOIN")?;
        use sql::JoinOperator as J;
        let (kind, constraint) = match join.join_operator {
            J::Join(c) | J::Inner(c) => (JoinKind::Inner, c),
            J::Left(c) | J::LeftOuter(c) => (JoinKind::Left, c),
            J::Right(c) | J::RightOuter(c) => (JoinKind::Right, c),
            J::FullOuter(c) => (JoinKind::Full, c),
            J::CrossJoin(c) => (JoinKind::Cross, c),
            _ => return Err(unsupported("this kind of JOIN")),
        };
        let condition = match constraint {
            sql::JoinConstraint::None => JoinCondition::None,
            sql::JoinConstraint::On(e) => JoinCondition::On(Scope::default().expr(e)?),
            sql::JoinConstraint::Using(names) => {
                JoinCondition::Using(names.into_iter().map(column_name).collect::<Result<_>>()?)
            }
            sql::JoinConstraint::Natural => JoinCondition::Natural,
            sql::JoinConstraint::UsingAlias(..) => return Err(unsupported("USING ... AS")),
        };
        if kind != JoinKind::Cross && condition == JoinCondition::None {
            return Err(syntax(
                "JOIN needs ON, USING or NATURAL (or use CROSS JOIN)",
            ));
        }
        left = TableRef::Join {
            left: Box::new(left),
            right: Box::new(table_factor(join.relation)?),
            kind,
            condition,
        };
    }
    Ok(left)
}

pub(super) fn table_factor(factor: sql::TableFactor) -> Result<TableRef> {
    match factor {
        sql::TableFactor::Table {
            name,
            alias,
            args,
            with_hints,
            version,
            with_ordinality,
            partitions,
            json_path,
            sample,
            index_directives,
            ..
        } => {
            let other = !with_hints.is_empty()
                || version.is_some()
                || with_ordinality
                || !partitions.is_empty()
                || json_path.is_some()
                || sample.is_some()
                || !index_directives.is_empty();
            refuse(other, "this FROM clause option")?;
            let alias = alias.map(table_alias).transpose()?;
            match args {
                None => Ok(TableRef::Table {
                    name: relation_name(name)?,
                    alias,
                }),
                Some(args) => {
                    refuse(args.settings.is_some(), "SETTINGS")?;
                    let scope = Scope::default();
                    let args = args
                        .args
                        .into_iter()
                        .map(|a| function_arg(a).and_then(|e| scope.expr(e)))
                        .collect::<Result<_>>()?;
                    Ok(TableRef::Function {
                        name: function_name(name)?,
                        args,
                        alias,
                    })
                }
            }
        }
        sql::TableFactor::Derived {
            lateral,
            subquery,
            alias,
            sample,
        } => {
            refuse(lateral, "LATERAL")?;
            refuse(sample.is_some(), "TABLESAMPLE")?;
            Ok(TableRef::Derived {
                query: Box::new(query(*subquery)?),
                alias: alias.map(table_alias).transpose()?,
            })
        }
        sql::TableFactor::NestedJoin {
            table_with_joins: nested,
            alias,
            ..
        } => {
            refuse(alias.is_some(), "an alias on a parenthesized join")?;
            table_with_joins(*nested)
        }
        other => Err(unsupported(table_factor_name(&other))),
    }
}

/// Refuses the query-level clauses no statement of ours takes.
pub(super) fn check_query_extras(q: &sql::Query) -> Result<()> {
    refuse(q.fetch.is_some(), "FETCH FIRST (use LIMIT)")?;
    refuse(!q.locks.is_empty(), "FOR UPDATE/SHARE")?;
    let other = q.for_clause.is_some()
        || q.settings.is_some()
        || q.format_clause.is_some()
        || !q.pipe_operators.is_empty();
    refuse(other, "this query clause")
}

pub(super) fn check_select_clauses(s: &sql::Select) -> Result<()> {
    refuse(
        matches!(s.distinct, Some(sql::Distinct::On(_))),
        "DISTINCT ON",
    )?;
    refuse(s.into.is_some(), "SELECT INTO")?;
    refuse(!s.named_window.is_empty(), "WINDOW")?;
    let other = s.top.is_some()
        || s.select_modifiers.as_ref().is_some_and(|m| m.is_any_set())
        || s.exclude.is_some()
        || !s.lateral_views.is_empty()
        || s.prewhere.is_some()
        || !s.connect_by.is_empty()
        || !s.cluster_by.is_empty()
        || !s.distribute_by.is_empty()
        || !s.sort_by.is_empty()
        || s.qualify.is_some()
        || s.value_table_mode.is_some()
        || s.flavor != sql::SelectFlavor::Standard;
    refuse(other, "this SELECT clause")
}

/// A single table (possibly aliased) with no joins, and the scope it opens.
pub(super) fn single_table(t: sql::TableWithJoins) -> Result<(String, Scope)> {
    refuse(!t.joins.is_empty(), "JOIN")?;
    let relation = match t.relation {
        plain @ sql::TableFactor::Table { .. } => plain,
        other => return Err(unsupported(table_factor_name(&other))),
    };
    match table_factor(relation)? {
        TableRef::Table { name, alias } => {
            if let Some(a) = &alias {
                refuse(!a.columns.is_empty(), "column aliases on the target table")?;
            }
            Ok((
                name.clone(),
                Scope {
                    table: Some(name),
                    alias: alias.map(|a| a.name),
                },
            ))
        }
        _ => Err(unsupported("table function")),
    }
}

pub(super) fn table_alias(alias: sql::TableAlias) -> Result<Alias> {
    refuse(alias.at.is_some(), "AT in a table alias")?;
    let columns = alias
        .columns
        .into_iter()
        .map(|c| {
            refuse(c.data_type.is_some(), "typed column aliases")?;
            Ok(ident(c.name))
        })
        .collect::<Result<_>>()?;
    Ok(Alias {
        name: ident(alias.name),
        columns,
    })
}

pub(super) fn table_factor_name(factor: &sql::TableFactor) -> &'static str {
    use sql::TableFactor as F;
    match factor {
        F::Derived { .. } => "subquery",
        F::NestedJoin { .. } => "JOIN",
        F::Function { .. } | F::TableFunction { .. } | F::UNNEST { .. } => "table function",
        _ => "this FROM item",
    }
}
