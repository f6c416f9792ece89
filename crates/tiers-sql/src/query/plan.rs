//! The planner: binds a query's names to positions and builds its plan
//! tree (FROM and joins are in [`super::join`]).

use std::cell::{Cell, RefCell};

use crate::ast::{BinaryOp, Expr, OrderBy, Query, Select, SelectItem, SetExpr};
use crate::error::{Result, SqlError, sqlstate};
use crate::exec::Column;
use crate::expr;
use crate::reads::Reads;
use crate::types::DataType;
use crate::value::Value;

use super::walk::{collect_aggregates, has_aggregate, rewrite_grouped};
use super::{AggCall, Field, Node, Plan, SortKey, SubKind, SubPlan, subplan_expr};

mod bind;

/// A planned statement: the plan, the WITH queries it reads, and what the
/// planner learnt about its parameters.
#[derive(Debug)]
pub struct QueryPlan {
    /// The root of the plan tree.
    pub root: Plan,
    /// WITH queries, by [`Node::CteScan`] index.
    pub ctes: Vec<Plan>,
    /// The type each `$n` is compared with or assigned to, where known.
    pub param_types: Vec<Option<DataType>>,
    /// How many plan nodes the statement has (EXPLAIN ANALYZE slots).
    pub nodes: usize,
}

impl QueryPlan {
    /// The result columns.
    pub fn columns(&self) -> Vec<Column> {
        self.root
            .schema
            .iter()
            .map(|f| Column {
                name: f.name.clone(),
                data_type: f.data_type,
            })
            .collect()
    }
}

/// Plans a query.
pub fn plan_query(r: &dyn Reads, q: &Query) -> Result<QueryPlan> {
    let planner = Planner::new(r);
    let root = planner.query(q, &Env::default())?;
    Ok(planner.finish(root))
}

/// Binds standalone expressions over a row of `fields`.
pub(super) fn bind_exprs(
    r: &dyn Reads,
    fields: Vec<Field>,
    exprs: &[&Expr],
) -> Result<super::BoundExprs> {
    let planner = Planner::new(r);
    let frame = Frame {
        fields: &fields,
        parent: None,
    };
    let env = Env::default();
    let mut bound = Vec::with_capacity(exprs.len());
    let mut types = Vec::with_capacity(exprs.len());
    for e in exprs {
        let b = planner.bind(e, &frame, &env)?;
        if has_aggregate(&b) {
            return Err(SqlError::new(
                "42803",
                "aggregate functions are not allowed here",
            ));
        }
        types.push(planner.type_of(&b, &frame));
        bound.push(b);
    }
    let root = planner.node(Node::Single, Vec::new());
    Ok(super::BoundExprs {
        exprs: bound,
        types,
        plan: planner.finish(root),
    })
}

/// One query level's names: its input columns, and the enclosing level.
pub(super) struct Frame<'p> {
    pub fields: &'p [Field],
    pub parent: Option<&'p Frame<'p>>,
}

/// A WITH query visible by name.
#[derive(Clone)]
pub(super) struct CteRef {
    pub name: String,
    pub index: usize,
    pub schema: Vec<Field>,
}

/// What a query level sees of its surroundings.
#[derive(Clone, Default)]
pub(super) struct Env<'p> {
    /// The enclosing query's names (correlated subqueries).
    pub outer: Option<&'p Frame<'p>>,
    /// WITH queries in scope, innermost last.
    pub ctes: Vec<CteRef>,
}

pub(super) struct Planner<'r> {
    pub reads: &'r dyn Reads,
    next_node: Cell<usize>,
    next_sub: Cell<usize>,
    pub ctes: RefCell<Vec<Plan>>,
    params: RefCell<Vec<Option<DataType>>>,
}

pub(super) fn syntax(message: impl Into<String>) -> SqlError {
    SqlError::new(sqlstate::SYNTAX_ERROR, message)
}

impl<'r> Planner<'r> {
    fn new(reads: &'r dyn Reads) -> Planner<'r> {
        Planner {
            reads,
            next_node: Cell::new(0),
            next_sub: Cell::new(0),
            ctes: RefCell::new(Vec::new()),
            params: RefCell::new(Vec::new()),
        }
    }

    /// The finished plan with `root` on top.
    fn finish(self, root: Plan) -> QueryPlan {
        QueryPlan {
            root,
            ctes: self.ctes.into_inner(),
            param_types: self.params.into_inner(),
            nodes: self.next_node.get(),
        }
    }
}

impl Planner<'_> {
    /// Wraps a node with its schema and a fresh node id.
    pub fn node(&self, node: Node, schema: Vec<Field>) -> Plan {
        let id = self.next_node.get();
        self.next_node.set(id + 1);
        Plan { node, schema, id }
    }

    /// Notes the type a parameter is used as (the first use wins).
    fn note_param(&self, n: usize, ty: DataType) {
        if n == 0 || n > 65_535 {
            return;
        }
        let mut p = self.params.borrow_mut();
        if p.len() < n {
            p.resize(n, None);
        }
        p[n - 1].get_or_insert(ty);
    }

    /// Marks every parameter `e` contains (at any depth) as known to exist.
    fn note_params_seen(&self, e: &Expr) {
        if let Expr::Parameter(n) = e {
            let mut p = self.params.borrow_mut();
            if p.len() < *n && *n <= 65_535 {
                p.resize(*n, None);
            }
        }
    }

    // -----------------------------------------------------------------------
    // Queries
    // -----------------------------------------------------------------------

    pub fn query(&self, q: &Query, env: &Env<'_>) -> Result<Plan> {
        let mut env = env.clone();
        for cte in &q.with {
            let plan = self.query(&cte.query, &env)?;
            let schema = rename(&plan.schema, &cte.name, &cte.columns)?;
            let index = {
                let mut ctes = self.ctes.borrow_mut();
                ctes.push(plan);
                ctes.len() - 1
            };
            env.ctes.push(CteRef {
                name: cte.name.clone(),
                index,
                schema,
            });
        }
        let plan = match &q.body {
            SetExpr::Select(select) => {
                return self.select(
                    select,
                    &q.order_by,
                    q.limit.as_ref(),
                    q.offset.as_ref(),
                    &env,
                );
            }
            body => self.set_expr(body, &env)?,
        };
        // ORDER BY over a VALUES list or set operation names output columns.
        let plan = if q.order_by.is_empty() {
            plan
        } else {
            let keys = q
                .order_by
                .iter()
                .map(|o| {
                    let column = output_position(&o.expr, &plan.schema)?.ok_or_else(|| {
                        SqlError::new(
                            "0A000",
                            "ORDER BY on a set operation or VALUES must name an output column",
                        )
                    })?;
                    Ok(sort_key(o, column))
                })
                .collect::<Result<_>>()?;
            let schema = plan.schema.clone();
            self.node(
                Node::Sort {
                    input: Box::new(plan),
                    keys,
                },
                schema,
            )
        };
        self.limit(plan, q.limit.as_ref(), q.offset.as_ref(), &env)
    }

    fn set_expr(&self, body: &SetExpr, env: &Env<'_>) -> Result<Plan> {
        match body {
            SetExpr::Select(select) => self.select(select, &[], None, None, env),
            SetExpr::Query(q) => self.query(q, env),
            SetExpr::Values(rows) => self.values(rows, env),
            SetExpr::SetOp {
                op,
                all,
                left,
                right,
            } => {
                let left = self.set_expr(left, env)?;
                let right = self.set_expr(right, env)?;
                if left.schema.len() != right.schema.len() {
                    return Err(syntax(format!(
                        "each {} query must have the same number of columns",
                        match op {
                            crate::ast::SetOp::Union => "UNION",
                            crate::ast::SetOp::Intersect => "INTERSECT",
                            crate::ast::SetOp::Except => "EXCEPT",
                        }
                    )));
                }
                let schema = left
                    .schema
                    .iter()
                    .zip(&right.schema)
                    .map(|(l, r)| {
                        Field::new(None, l.name.clone(), unify_types(l.data_type, r.data_type))
                    })
                    .collect();
                Ok(self.node(
                    Node::SetOp {
                        op: *op,
                        all: *all,
                        left: Box::new(left),
                        right: Box::new(right),
                    },
                    schema,
                ))
            }
        }
    }

    fn values(&self, rows: &[Vec<Expr>], env: &Env<'_>) -> Result<Plan> {
        let frame = Frame {
            fields: &[],
            parent: env.outer,
        };
        let bound = rows
            .iter()
            .map(|row| row.iter().map(|e| self.bind(e, &frame, env)).collect())
            .collect::<Result<Vec<Vec<Expr>>>>()?;
        let width = bound.first().map_or(0, Vec::len);
        let schema = (0..width)
            .map(|i| {
                let ty = bound
                    .iter()
                    .map(|r| self.type_of(&r[i], &frame))
                    .find(|t| *t != DataType::Text)
                    .unwrap_or(DataType::Text);
                Field::new(None, format!("column{}", i + 1), ty)
            })
            .collect();
        Ok(self.node(Node::Values(bound), schema))
    }

    fn limit(
        &self,
        plan: Plan,
        limit: Option<&Expr>,
        offset: Option<&Expr>,
        env: &Env<'_>,
    ) -> Result<Plan> {
        if limit.is_none() && offset.is_none() {
            return Ok(plan);
        }
        let frame = Frame {
            fields: &[],
            parent: env.outer,
        };
        let bind = |e: Option<&Expr>| -> Result<Option<Expr>> {
            let Some(e) = e else { return Ok(None) };
            let b = self.bind(e, &frame, env)?;
            if let Expr::Parameter(n) = b {
                self.note_param(n, DataType::Int8);
            }
            Ok(Some(b))
        };
        let (limit, offset) = (bind(limit)?, bind(offset)?);
        let schema = plan.schema.clone();
        Ok(self.node(
            Node::Limit {
                input: Box::new(plan),
                limit,
                offset,
            },
            schema,
        ))
    }

    /// A SELECT block with the ORDER BY / LIMIT of its query.
    fn select(
        &self,
        select: &Select,
        order_by: &[OrderBy],
        limit: Option<&Expr>,
        offset: Option<&Expr>,
        env: &Env<'_>,
    ) -> Result<Plan> {
        let from = self.from(&select.from, select.filter.as_ref(), env)?;
        let input_fields = from.schema.clone();
        let frame = Frame {
            fields: &input_fields,
            parent: env.outer,
        };
        // The select list, with wildcards expanded.
        let mut items: Vec<(Expr, Field)> = Vec::new();
        for item in &select.items {
            match item {
                SelectItem::Wildcard => {
                    if input_fields.is_empty() && select.from.is_empty() {
                        return Err(syntax("SELECT * with no tables specified is not valid"));
                    }
                    for (i, f) in input_fields.iter().enumerate() {
                        if !f.hidden {
                            items.push((Expr::Bound(i), f.clone()));
                        }
                    }
                }
                SelectItem::QualifiedWildcard(t) => {
                    let before = items.len();
                    for (i, f) in input_fields.iter().enumerate() {
                        if f.table.as_deref() == Some(t.as_str()) {
                            items.push((Expr::Bound(i), f.clone()));
                        }
                    }
                    if items.len() == before {
                        return Err(SqlError::new(
                            sqlstate::UNDEFINED_TABLE,
                            format!("missing FROM-clause entry for table \"{t}\""),
                        ));
                    }
                }
                SelectItem::Expr { expr, alias } => {
                    let bound = self.bind(expr, &frame, env)?;
                    let name = alias.clone().unwrap_or_else(|| output_name(expr));
                    let ty = self.type_of(&bound, &frame);
                    items.push((bound, Field::new(None, name, ty)));
                }
            }
        }
        // GROUP BY may name output columns by position or alias.
        let group_by = select
            .group_by
            .iter()
            .map(|g| {
                if let Expr::Literal(Value::Int(n)) = g {
                    let i = usize::try_from(*n)
                        .ok()
                        .filter(|i| (1..=items.len()).contains(i))
                        .ok_or_else(|| {
                            SqlError::new(
                                "42P10",
                                format!("GROUP BY position {n} is not in select list"),
                            )
                        })?;
                    return Ok(items[i - 1].0.clone());
                }
                match self.bind(g, &frame, env) {
                    Err(e) if e.code == sqlstate::UNDEFINED_COLUMN => {
                        if let Expr::Column { table: None, name } = g
                            && let Some((e, _)) = items.iter().find(|(_, f)| &f.name == name)
                        {
                            return Ok(e.clone());
                        }
                        Err(e)
                    }
                    other => other,
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let having = select
            .having
            .as_ref()
            .map(|h| self.bind(h, &frame, env))
            .transpose()?;
        // ORDER BY: output columns by position or name, else expressions
        // over the input (added as hidden columns).
        enum Key {
            Output(usize),
            Input(Expr),
        }
        let mut order = Vec::new();
        for o in order_by {
            let key = match output_position(&o.expr, &items_schema(&items))? {
                Some(i) => Key::Output(i),
                _ => Key::Input(self.bind(&o.expr, &frame, env)?),
            };
            order.push((key, o));
        }
        let aggregated = !group_by.is_empty()
            || items.iter().any(|(e, _)| has_aggregate(e))
            || having.is_some()
            || order
                .iter()
                .any(|(k, _)| matches!(k, Key::Input(e) if has_aggregate(e)));
        let (mut plan, mut items, having, mut order) = if aggregated {
            let mut aggs: Vec<AggCall> = Vec::new();
            for (e, _) in &items {
                collect_aggregates(e, &mut aggs)?;
            }
            if let Some(h) = &having {
                collect_aggregates(h, &mut aggs)?;
            }
            for (k, _) in &order {
                if let Key::Input(e) = k {
                    collect_aggregates(e, &mut aggs)?;
                }
            }
            let mut schema: Vec<Field> = group_by
                .iter()
                .map(|g| match g {
                    Expr::Bound(i) => input_fields[*i].clone(),
                    other => Field::new(None, "?column?", self.type_of(other, &frame)),
                })
                .collect();
            for a in &aggs {
                schema.push(Field::new(
                    None,
                    a.name.clone(),
                    self.aggregate_type(a, &frame),
                ));
            }
            let rewrite = |e: &Expr| rewrite_grouped(e, &group_by, &aggs, &input_fields);
            let items = items
                .iter()
                .map(|(e, f)| Ok((rewrite(e)?, f.clone())))
                .collect::<Result<Vec<_>>>()?;
            let having = having.as_ref().map(rewrite).transpose()?;
            let order = order
                .into_iter()
                .map(|(k, o)| {
                    Ok((
                        match k {
                            Key::Input(e) => Key::Input(rewrite(&e)?),
                            out => out,
                        },
                        o,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let plan = self.node(
                Node::Aggregate {
                    input: Box::new(from),
                    group_by: group_by.clone(),
                    aggregates: aggs,
                },
                schema,
            );
            (plan, items, having, order)
        } else {
            (from, items, None, order)
        };
        if let Some(h) = having {
            let schema = plan.schema.clone();
            plan = self.node(
                Node::Filter {
                    input: Box::new(plan),
                    predicate: h,
                },
                schema,
            );
        }
        // Project the select list plus hidden sort columns.
        let visible = items.len();
        let mut keys = Vec::new();
        for (k, o) in order.drain(..) {
            let column = match k {
                Key::Output(i) => i,
                Key::Input(e) => match items.iter().position(|(x, _)| *x == e) {
                    Some(i) => i,
                    None => {
                        if select.distinct {
                            return Err(SqlError::new(
                                "42P10",
                                "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                            ));
                        }
                        let ty = self.type_of(&e, &frame);
                        items.push((e, Field::new(None, "?sort?", ty)));
                        items.len() - 1
                    }
                },
            };
            keys.push(sort_key(o, column));
        }
        let (exprs, schema): (Vec<Expr>, Vec<Field>) = items.into_iter().unzip();
        let identity = exprs.len() == plan.schema.len()
            && exprs.iter().enumerate().all(|(i, e)| *e == Expr::Bound(i))
            && schema
                .iter()
                .zip(&plan.schema)
                .all(|(a, b)| a.name == b.name);
        if identity {
            plan.schema = schema;
        } else {
            plan = self.node(
                Node::Project {
                    input: Box::new(plan),
                    exprs,
                },
                schema,
            );
        }
        if select.distinct {
            let schema = plan.schema.clone();
            plan = self.node(
                Node::Distinct {
                    input: Box::new(plan),
                },
                schema,
            );
        }
        if !keys.is_empty() {
            plan = self.sort(plan, keys);
        }
        plan = self.limit(plan, limit, offset, env)?;
        if plan.schema.len() > visible {
            let exprs = (0..visible).map(Expr::Bound).collect();
            let schema = plan.schema[..visible].to_vec();
            plan = self.node(
                Node::Project {
                    input: Box::new(plan),
                    exprs,
                },
                schema,
            );
        }
        Ok(plan)
    }

    /// A Sort, unless the input already comes in that order from a
    /// primary-key scan (then the scan is just told the direction).
    fn sort(&self, mut plan: Plan, keys: Vec<SortKey>) -> Plan {
        if super::access::order_by_scan(&mut plan, &keys) {
            return plan;
        }
        let schema = plan.schema.clone();
        self.node(
            Node::Sort {
                input: Box::new(plan),
                keys,
            },
            schema,
        )
    }
}

/// Renames a plan's output for `AS alias (columns)` or a CTE.
pub(super) fn rename(schema: &[Field], table: &str, columns: &[String]) -> Result<Vec<Field>> {
    if columns.len() > schema.len() {
        return Err(syntax(format!(
            "\"{table}\" has {} columns available but {} columns specified",
            schema.len(),
            columns.len()
        )));
    }
    Ok(schema
        .iter()
        .enumerate()
        .map(|(i, f)| Field {
            table: Some(table.to_owned()),
            name: columns.get(i).cloned().unwrap_or_else(|| f.name.clone()),
            data_type: f.data_type,
            hidden: f.hidden,
        })
        .collect())
}

fn items_schema(items: &[(Expr, Field)]) -> Vec<Field> {
    items.iter().map(|(_, f)| f.clone()).collect()
}

/// An ORDER BY term naming an output column: `ORDER BY 2` or a bare name.
fn output_position(e: &Expr, schema: &[Field]) -> Result<Option<usize>> {
    match e {
        Expr::Literal(Value::Int(n)) => usize::try_from(*n)
            .ok()
            .filter(|i| (1..=schema.len()).contains(i))
            .map(|i| Some(i - 1))
            .ok_or_else(|| {
                SqlError::new(
                    "42P10",
                    format!("ORDER BY position {n} is not in select list"),
                )
            }),
        Expr::Column { table: None, name } => {
            Ok(schema.iter().position(|f| &f.name == name && !f.hidden))
        }
        _ => Ok(None),
    }
}

fn sort_key(o: &OrderBy, column: usize) -> SortKey {
    SortKey {
        column,
        desc: o.desc,
        nulls_first: o.nulls_first.unwrap_or(o.desc),
    }
}

/// The name PostgreSQL gives an unaliased select-list expression.
pub(super) fn output_name(e: &Expr) -> String {
    match e {
        Expr::Column { name, .. } => name.clone(),
        Expr::Function { name, .. } => name.clone(),
        Expr::Cast { expr, .. } => match &**expr {
            Expr::Column { .. } | Expr::Function { .. } => output_name(expr),
            _ => "?column?".into(),
        },
        Expr::Case { .. } => "case".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Subquery(q) => match &q.body {
            SetExpr::Select(s) => match s.items.as_slice() {
                [SelectItem::Expr { alias: Some(a), .. }] => a.clone(),
                [SelectItem::Expr { expr, .. }] => output_name(expr),
                _ => "?column?".into(),
            },
            _ => "?column?".into(),
        },
        _ => "?column?".into(),
    }
}

/// Common type of two set-operation columns.
fn unify_types(a: DataType, b: DataType) -> DataType {
    use DataType as T;
    match (a, b) {
        (x, y) if x == y => x,
        (T::Float4 | T::Float8, _) | (_, T::Float4 | T::Float8) => T::Float8,
        (T::Numeric(_), _) | (_, T::Numeric(_)) => T::Numeric(None),
        (T::Int8, T::Int2 | T::Int4) | (T::Int2 | T::Int4, T::Int8) => T::Int8,
        (T::Int4, T::Int2) | (T::Int2, T::Int4) => T::Int4,
        (T::Text, other) | (other, T::Text) => other,
        (x, _) => x,
    }
}
