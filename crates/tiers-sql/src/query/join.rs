//! FROM clauses: flattening, join order and join algorithms (access paths
//! are in [`super::access`]).
//!
//! The FROM list is flattened into units (tables, derived tables, CTEs,
//! functions, and outer joins, which keep their shape) and the AND-ed terms
//! of WHERE and inner-join ON clauses. A term over one unit is pushed down
//! to it (for a table: it may choose the access path). Joins are then built
//! greedily: start from the unit expected to yield the fewest rows; add next
//! a unit that an equality connects to what is joined so far, preferring one
//! whose primary key or index the equality covers (an index nested loop),
//! else a hash join on the equalities, else a nested loop.

use crate::ast::{BinaryOp, Expr, JoinCondition, JoinKind, TableRef};
use crate::catalog::{self, TableDef};
use crate::error::{Result, SqlError, sqlstate};
use crate::types::DataType;
use crate::value::Value;

use super::access::{choose_access, columns_of, has_correlated, index_access, remap, shift};
use super::plan::{CteRef, Env, Frame, Planner, rename};
use super::walk::{conjoin, conjuncts, has_aggregate};
use super::{Access, Field, Node, Plan};

/// One unit of a flattened FROM list.
struct Unit {
    plan: Plan,
    /// The table, when the unit is a plain table scan (access path not yet chosen).
    table: Option<TableDef>,
}

/// The most units one FROM clause may join.
const MAX_UNITS: usize = 64;

impl Planner<'_> {
    /// Plans a FROM list with its WHERE clause.
    pub(super) fn from(
        &self,
        from: &[TableRef],
        filter: Option<&Expr>,
        env: &Env<'_>,
    ) -> Result<Plan> {
        let mut units = Vec::new();
        let mut terms = Vec::new();
        for item in from {
            self.flatten(item, env, &mut units, &mut terms)?;
        }
        if units.is_empty() {
            units.push(Unit {
                plan: self.node(Node::Single, Vec::new()),
                table: None,
            });
        }
        let canonical: Vec<Field> = units.iter().flat_map(|u| u.plan.schema.clone()).collect();
        if let Some(f) = filter {
            let frame = Frame {
                fields: &canonical,
                parent: env.outer,
            };
            let bound = self.bind(f, &frame, env)?;
            if has_aggregate(&bound) {
                return Err(SqlError::new(
                    "42803",
                    "aggregate functions are not allowed in WHERE",
                ));
            }
            conjuncts(bound, &mut terms);
        }
        self.join_units(units, terms)
    }

    /// Adds the units of one FROM item, and its inner-join conditions
    /// (bound against the whole list's columns).
    fn flatten(
        &self,
        item: &TableRef,
        env: &Env<'_>,
        units: &mut Vec<Unit>,
        terms: &mut Vec<Expr>,
    ) -> Result<()> {
        if units.len() >= MAX_UNITS {
            return Err(SqlError::new(
                "54000",
                format!("too many tables in FROM (at most {MAX_UNITS})"),
            ));
        }
        match item {
            TableRef::Join {
                left,
                right,
                kind: kind @ (JoinKind::Inner | JoinKind::Cross),
                condition,
            } => {
                let first = units.len();
                self.flatten(left, env, units, terms)?;
                let split = units.len();
                self.flatten(right, env, units, terms)?;
                let offset: usize = units[..first].iter().map(|u| u.plan.schema.len()).sum();
                let left_width: usize = units[first..split]
                    .iter()
                    .map(|u| u.plan.schema.len())
                    .sum();
                let _ = kind;
                let mut fields: Vec<Field> = units[first..]
                    .iter()
                    .flat_map(|u| u.plan.schema.clone())
                    .collect();
                let found =
                    self.join_condition(condition, &mut fields, left_width, JoinKind::Inner, env)?;
                // Write back hidden flags (USING / NATURAL).
                let mut i = 0;
                for u in &mut units[first..] {
                    for f in &mut u.plan.schema {
                        f.hidden = fields[i].hidden;
                        i += 1;
                    }
                }
                for t in found {
                    terms.push(shift(&t, offset)?);
                }
                Ok(())
            }
            TableRef::Join {
                left,
                right,
                kind,
                condition,
            } => {
                let plan = self.outer_join(left, right, *kind, condition, env)?;
                units.push(Unit { plan, table: None });
                Ok(())
            }
            TableRef::Table { name, alias } => {
                let label = alias.as_ref().map_or(name.as_str(), |a| a.name.as_str());
                let columns = alias.as_ref().map_or(&[][..], |a| a.columns.as_slice());
                if let Some(cte) = env.ctes.iter().rev().find(|c| &c.name == name) {
                    let CteRef { index, schema, .. } = cte.clone();
                    let schema = rename(&schema, label, columns)?;
                    let plan = self.node(
                        Node::CteScan {
                            index,
                            name: name.clone(),
                        },
                        schema,
                    );
                    units.push(Unit { plan, table: None });
                    return Ok(());
                }
                if let Some(plan) = self.catalog_view(name, label, columns)? {
                    units.push(Unit { plan, table: None });
                    return Ok(());
                }
                let def = catalog::require_table(self.reads, name)?;
                let schema: Vec<Field> = def
                    .columns
                    .iter()
                    .map(|c| Field::new(None, c.name.clone(), c.data_type))
                    .collect();
                let schema = rename(&schema, label, columns)?;
                let plan = self.node(
                    Node::Scan {
                        table: Box::new(def.clone()),
                        access: Access::Full,
                        filter: None,
                    },
                    schema,
                );
                units.push(Unit {
                    plan,
                    table: Some(def),
                });
                Ok(())
            }
            TableRef::Derived { query, alias } => {
                let Some(alias) = alias else {
                    return Err(SqlError::new(
                        sqlstate::SYNTAX_ERROR,
                        "subquery in FROM must have an alias",
                    ));
                };
                let mut plan = self.query(query, env)?;
                plan.schema = rename(&plan.schema, &alias.name, &alias.columns)?;
                units.push(Unit { plan, table: None });
                Ok(())
            }
            TableRef::Function { name, args, alias } => {
                if name != "generate_series" {
                    return Err(SqlError::new(
                        "42883",
                        format!("function {name}() does not exist as a table function"),
                    ));
                }
                if !(2..=3).contains(&args.len()) {
                    return Err(SqlError::new(
                        "42883",
                        "generate_series takes (start, stop [, step])",
                    ));
                }
                let frame = Frame {
                    fields: &[],
                    parent: env.outer,
                };
                let args = args
                    .iter()
                    .map(|a| self.bind(a, &frame, env))
                    .collect::<Result<Vec<_>>>()?;
                let ty =
                    match args
                        .iter()
                        .map(|a| self.type_of(a, &frame))
                        .max_by_key(|t| match t {
                            DataType::Int8 => 2,
                            DataType::Int4 | DataType::Int2 => 1,
                            _ => 0,
                        }) {
                        Some(DataType::Int8) => DataType::Int8,
                        _ => DataType::Int4,
                    };
                let label = alias
                    .as_ref()
                    .map_or("generate_series", |a| a.name.as_str());
                let mut schema = vec![Field::new(Some(label.into()), "generate_series", ty)];
                if let Some(a) = alias {
                    schema = rename(&schema, &a.name, &a.columns)?;
                    if a.columns.is_empty() {
                        schema[0].name = a.name.clone();
                    }
                }
                units.push(Unit {
                    plan: self.node(Node::Series { args }, schema),
                    table: None,
                });
                Ok(())
            }
        }
    }

    /// Binds a join condition over `fields` (left side first, `left_width`
    /// columns) into AND-ed terms; USING and NATURAL hide the duplicate.
    fn join_condition(
        &self,
        condition: &JoinCondition,
        fields: &mut [Field],
        left_width: usize,
        kind: JoinKind,
        env: &Env<'_>,
    ) -> Result<Vec<Expr>> {
        let mut out = Vec::new();
        let names: Vec<String> = match condition {
            JoinCondition::None => return Ok(out),
            JoinCondition::On(e) => {
                let frame = Frame {
                    fields,
                    parent: env.outer,
                };
                conjuncts(self.bind(e, &frame, env)?, &mut out);
                return Ok(out);
            }
            JoinCondition::Using(names) => names.clone(),
            JoinCondition::Natural => {
                let left: Vec<&Field> = fields[..left_width].iter().filter(|f| !f.hidden).collect();
                fields[left_width..]
                    .iter()
                    .filter(|f| !f.hidden && left.iter().any(|l| l.name == f.name))
                    .map(|f| f.name.clone())
                    .collect()
            }
        };
        for name in names {
            let find = |range: std::ops::Range<usize>, side: &str| -> Result<usize> {
                let hits: Vec<usize> = range
                    .filter(|&i| !fields[i].hidden && fields[i].name == name)
                    .collect();
                match hits.as_slice() {
                    [i] => Ok(*i),
                    [] => Err(SqlError::new(
                        sqlstate::UNDEFINED_COLUMN,
                        format!(
                            "column \"{name}\" specified in USING clause does not exist in {side} table"
                        ),
                    )),
                    _ => Err(SqlError::new(
                        "42702",
                        format!(
                            "common column name \"{name}\" appears more than once in {side} table"
                        ),
                    )),
                }
            };
            let l = find(0..left_width, "left")?;
            let r = find(left_width..fields.len(), "right")?;
            if kind == JoinKind::Right {
                fields[l].hidden = true;
            } else {
                fields[r].hidden = true;
            }
            out.push(Expr::Binary {
                op: BinaryOp::Eq,
                left: Box::new(Expr::Bound(l)),
                right: Box::new(Expr::Bound(r)),
            });
        }
        Ok(out)
    }

    /// A LEFT, RIGHT or FULL join, planned as one unit.
    fn outer_join(
        &self,
        left: &TableRef,
        right: &TableRef,
        kind: JoinKind,
        condition: &JoinCondition,
        env: &Env<'_>,
    ) -> Result<Plan> {
        let mut l = self.from(std::slice::from_ref(left), None, env)?;
        let mut r = self.from(std::slice::from_ref(right), None, env)?;
        let mut fields: Vec<Field> = l.schema.iter().chain(&r.schema).cloned().collect();
        let left_width = l.schema.len();
        let terms = self.join_condition(condition, &mut fields, left_width, kind, env)?;
        l.schema = fields[..left_width].to_vec();
        r.schema = fields[left_width..].to_vec();
        let schema = fields.clone();
        // A RIGHT join is a LEFT join with the sides swapped, then the
        // columns put back in order.
        let (outer, inner, terms, swapped) = if kind == JoinKind::Right {
            let lw = l.schema.len();
            let rw = r.schema.len();
            let terms = terms
                .iter()
                .map(|t| remap(t, &|i| Some(if i < lw { i + rw } else { i - lw })))
                .collect::<Result<Vec<_>>>()?;
            (r, l, terms, true)
        } else {
            (l, r, terms, false)
        };
        let kind = if swapped { JoinKind::Left } else { kind };
        let outer_width = outer.schema.len();
        // Terms over the inner side alone filter it before the join (for a
        // LEFT join they decide matches, never remove outer rows).
        let mut inner = inner;
        let mut rest = Vec::new();
        let mut inner_terms = Vec::new();
        for t in terms {
            let refs = columns_of(&t);
            if kind == JoinKind::Left
                && !refs.is_empty()
                && refs.iter().all(|&c| c >= outer_width)
                && !has_correlated(&t)
            {
                inner_terms.push(remap(&t, &|c| c.checked_sub(outer_width))?);
            } else {
                rest.push(t);
            }
        }
        if !inner_terms.is_empty() {
            inner = self.filtered(inner, inner_terms);
        }
        let joined_schema: Vec<Field> = outer.schema.iter().chain(&inner.schema).cloned().collect();
        let (keys_l, keys_r, residual) = equi_keys(&rest, outer_width, inner.schema.len());
        let plan = if let Some(access) = index_access(&inner, &keys_l, &keys_r)
            && kind == JoinKind::Left
        {
            let mut inner = inner;
            if let Node::Scan { access: a, .. } = &mut inner.node {
                *a = access;
            }
            self.node(
                Node::IndexJoin {
                    left: Box::new(outer),
                    right: Box::new(inner),
                    kind,
                    condition: conjoin(rest),
                },
                joined_schema,
            )
        } else if !keys_l.is_empty() {
            let (mut keys_l, mut keys_r) = (keys_l, keys_r);
            align_key_types(&mut keys_l, &mut keys_r, &outer.schema, &inner.schema);
            self.node(
                Node::HashJoin {
                    left: Box::new(outer),
                    right: Box::new(inner),
                    kind,
                    left_keys: keys_l,
                    right_keys: keys_r,
                    residual: conjoin(residual),
                },
                joined_schema,
            )
        } else {
            self.node(
                Node::NestedLoop {
                    left: Box::new(outer),
                    right: Box::new(inner),
                    kind,
                    condition: conjoin(rest),
                },
                joined_schema,
            )
        };
        if swapped {
            let lw = schema.len() - outer_width;
            let exprs = (0..schema.len())
                .map(|i| Expr::Bound(if i < lw { outer_width + i } else { i - lw }))
                .collect();
            return Ok(self.node(
                Node::Project {
                    input: Box::new(plan),
                    exprs,
                },
                schema,
            ));
        }
        let mut plan = plan;
        plan.schema = schema;
        Ok(plan)
    }

    /// Applies terms over a unit's own columns: a table scan takes them as
    /// its filter and chooses its access path from them.
    fn filtered(&self, mut plan: Plan, terms: Vec<Expr>) -> Plan {
        if terms.is_empty() {
            return plan;
        }
        if let Node::Scan {
            table,
            access: access @ Access::Full,
            filter: filter @ None,
        } = &mut plan.node
        {
            *access = choose_access(table, &terms);
            *filter = conjoin(terms);
            return plan;
        }
        let schema = plan.schema.clone();
        self.node(
            Node::Filter {
                input: Box::new(plan),
                predicate: conjoin(terms).expect("terms"),
            },
            schema,
        )
    }

    /// Joins the units with the terms (bound over their concatenation).
    fn join_units(&self, units: Vec<Unit>, terms: Vec<Expr>) -> Result<Plan> {
        let widths: Vec<usize> = units.iter().map(|u| u.plan.schema.len()).collect();
        let offsets: Vec<usize> = widths
            .iter()
            .scan(0, |acc, w| {
                let o = *acc;
                *acc += w;
                Some(o)
            })
            .collect();
        let total: usize = widths.iter().sum();
        let unit_of = |c: usize| -> usize {
            (0..widths.len())
                .rev()
                .find(|&u| offsets[u] <= c && (widths[u] > 0 && c < offsets[u] + widths[u]))
                .unwrap_or(0)
        };
        // Sort the terms: per unit, multi-unit, or for the top.
        let mut local: Vec<Vec<Expr>> = vec![Vec::new(); units.len()];
        let mut pending: Vec<(Expr, u64)> = Vec::new();
        let mut top: Vec<Expr> = Vec::new();
        for t in terms {
            let cols = columns_of(&t);
            if has_correlated(&t) || cols.is_empty() {
                top.push(t);
                continue;
            }
            let mask = cols.iter().fold(0u64, |m, &c| m | (1 << unit_of(c)));
            if mask.count_ones() == 1 {
                let u = unit_of(cols[0]);
                local[u].push(remap(&t, &|c| c.checked_sub(offsets[u]))?);
            } else {
                pending.push((t, mask));
            }
        }
        let mut planned: Vec<Option<Unit>> = Vec::new();
        let mut estimates = Vec::new();
        for (u, unit) in units.into_iter().enumerate() {
            let terms = std::mem::take(&mut local[u]);
            let table = unit.table.clone();
            let plan = self.filtered(unit.plan, terms);
            estimates.push(estimate(&plan));
            planned.push(Some(Unit { plan, table }));
        }
        // Greedy join order.
        let start = (0..planned.len())
            .min_by(|&a, &b| estimates[a].total_cmp(&estimates[b]).then(a.cmp(&b)))
            .expect("at least one unit");
        let mut order = vec![start];
        let mut joined_mask = 1u64 << start;
        let mut plan = planned[start].take().expect("unit").plan;
        while order.len() < planned.len() {
            let layout = layout_map(&order, &offsets, &widths, total);
            let mut best: Option<(usize, u8, f64)> = None;
            for r in 0..planned.len() {
                let Some(unit) = &planned[r] else { continue };
                let (kl, kr) = self.pairs_for(&pending, joined_mask, r, &layout, offsets[r]);
                let rank = if index_access(&unit.plan, &kl, &kr).is_some() {
                    0
                } else if !kl.is_empty() {
                    1
                } else {
                    2
                };
                let better = match best {
                    None => true,
                    Some((_, br, be)) => rank < br || (rank == br && estimates[r] < be),
                };
                if better {
                    best = Some((r, rank, estimates[r]));
                }
            }
            let (r, _, _) = best.expect("a unit remains");
            let unit = planned[r].take().expect("unit");
            let (kl, kr) = self.pairs_for(&pending, joined_mask, r, &layout, offsets[r]);
            let new_mask = joined_mask | (1 << r);
            let mut new_order = order.clone();
            new_order.push(r);
            let new_layout = layout_map(&new_order, &offsets, &widths, total);
            let mut covered = Vec::new();
            pending.retain(|(t, m)| {
                if m & !new_mask == 0 {
                    covered.push(t.clone());
                    false
                } else {
                    true
                }
            });
            let covered = covered
                .iter()
                .map(|t| remap(t, &|c| new_layout[c]))
                .collect::<Result<Vec<_>>>()?;
            let schema: Vec<Field> = plan
                .schema
                .iter()
                .chain(&unit.plan.schema)
                .cloned()
                .collect();
            plan = if let Some((lk, rk)) = merge_keys(&plan, &unit.plan, &kl, &kr) {
                // Two whole tables, each read in primary-key order on the
                // join key: merge them instead of probing one per row.
                let left_width = plan.schema.len();
                let (lk, rk) = (vec![lk], vec![rk]);
                let residual: Vec<Expr> = covered
                    .into_iter()
                    .filter(|t| !is_key_term(t, &lk, &rk, left_width))
                    .collect();
                self.node(
                    Node::MergeJoin {
                        left: Box::new(plan),
                        right: Box::new(unit.plan),
                        kind: JoinKind::Inner,
                        left_keys: lk,
                        right_keys: rk,
                        residual: conjoin(residual),
                    },
                    schema,
                )
            } else if let Some(access) = index_access(&unit.plan, &kl, &kr) {
                let mut inner = unit.plan;
                if let Node::Scan { access: a, .. } = &mut inner.node {
                    *a = access;
                }
                self.node(
                    Node::IndexJoin {
                        left: Box::new(plan),
                        right: Box::new(inner),
                        kind: JoinKind::Inner,
                        condition: conjoin(covered),
                    },
                    schema,
                )
            } else if !kl.is_empty() {
                let left_width = plan.schema.len();
                let residual: Vec<Expr> = covered
                    .into_iter()
                    .filter(|t| !is_key_term(t, &kl, &kr, left_width))
                    .collect();
                let (mut kl, mut kr) = (kl, kr);
                align_key_types(&mut kl, &mut kr, &plan.schema, &unit.plan.schema);
                self.node(
                    Node::HashJoin {
                        left: Box::new(plan),
                        right: Box::new(unit.plan),
                        kind: JoinKind::Inner,
                        left_keys: kl,
                        right_keys: kr,
                        residual: conjoin(residual),
                    },
                    schema,
                )
            } else {
                self.node(
                    Node::NestedLoop {
                        left: Box::new(plan),
                        right: Box::new(unit.plan),
                        kind: JoinKind::Inner,
                        condition: conjoin(covered),
                    },
                    schema,
                )
            };
            order = new_order;
            joined_mask = new_mask;
        }
        // Back to FROM order.
        let in_order = order.windows(2).all(|w| w[0] < w[1]);
        if !in_order {
            let layout = layout_map(&order, &offsets, &widths, total);
            let canonical: Vec<Field> = (0..planned.len())
                .flat_map(|u| {
                    let start = layout[offsets[u]].unwrap_or(0);
                    plan.schema[start..start + widths[u]].to_vec()
                })
                .collect();
            let exprs = (0..total)
                .map(|c| Expr::Bound(layout[c].expect("every unit joined")))
                .collect();
            plan = self.node(
                Node::Project {
                    input: Box::new(plan),
                    exprs,
                },
                canonical,
            );
        }
        if !top.is_empty() {
            let schema = plan.schema.clone();
            plan = self.node(
                Node::Filter {
                    input: Box::new(plan),
                    predicate: conjoin(top).expect("terms"),
                },
                schema,
            );
        }
        Ok(plan)
    }

    /// Equality terms between the joined units and unit `r`: key
    /// expressions over the joined layout and over `r`'s own columns.
    fn pairs_for(
        &self,
        pending: &[(Expr, u64)],
        joined: u64,
        r: usize,
        layout: &[Option<usize>],
        r_offset: usize,
    ) -> (Vec<Expr>, Vec<Expr>) {
        let mut kl = Vec::new();
        let mut kr = Vec::new();
        let bit = 1u64 << r;
        for (t, mask) in pending {
            if mask & !(joined | bit) != 0 || mask & bit == 0 {
                continue;
            }
            let Expr::Binary {
                op: BinaryOp::Eq,
                left,
                right,
            } = t
            else {
                continue;
            };
            let side = |e: &Expr| -> Option<bool> {
                let cols = columns_of(e);
                if cols.is_empty() {
                    return None;
                }
                if cols.iter().all(|&c| layout[c].is_some()) {
                    Some(true)
                } else if cols.iter().all(|&c| c >= r_offset && layout[c].is_none()) {
                    Some(false)
                } else {
                    None
                }
            };
            let (l, rr) = match (side(left), side(right)) {
                (Some(true), Some(false)) => (&**left, &**right),
                (Some(false), Some(true)) => (&**right, &**left),
                _ => continue,
            };
            let (Ok(l), Ok(rr)) = (
                remap(l, &|c| layout[c]),
                remap(rr, &|c| c.checked_sub(r_offset)),
            ) else {
                continue;
            };
            kl.push(l);
            kr.push(rr);
        }
        (kl, kr)
    }
}

/// Whether `t` is one of the equalities a hash join already checks.
fn is_key_term(t: &Expr, kl: &[Expr], kr: &[Expr], left_width: usize) -> bool {
    let Expr::Binary {
        op: BinaryOp::Eq,
        left,
        right,
    } = t
    else {
        return false;
    };
    let shifted: Vec<Expr> = kr
        .iter()
        .filter_map(|k| remap(k, &|c| Some(c + left_width)).ok())
        .collect();
    kl.iter()
        .zip(&shifted)
        .any(|(l, r)| (**left == *l && **right == *r) || (**left == *r && **right == *l))
}

/// Where each FROM-order column sits in a join of units in `order`.
fn layout_map(
    order: &[usize],
    offsets: &[usize],
    widths: &[usize],
    total: usize,
) -> Vec<Option<usize>> {
    let mut map = vec![None; total];
    let mut pos = 0;
    for &u in order {
        for i in 0..widths[u] {
            map[offsets[u] + i] = Some(pos + i);
        }
        pos += widths[u];
    }
    map
}

/// The static type of a key expression over a plan's output.
fn key_type(e: &Expr, schema: &[Field]) -> DataType {
    match e {
        Expr::Bound(i) => schema.get(*i).map_or(DataType::Text, |f| f.data_type),
        other => crate::exec::type_of_with(other, &|x| key_type(x, schema)),
    }
}

/// Hash keys compare by their encoded bytes, so a `numeric` key paired
/// with a floating-point one is cast to `double precision` first: that is
/// how PostgreSQL compares the two, and without it `1.5` would never meet
/// `1.5::float8`.
fn align_key_types(kl: &mut [Expr], kr: &mut [Expr], left: &[Field], right: &[Field]) {
    let float = |t: DataType| matches!(t, DataType::Float4 | DataType::Float8);
    for (l, r) in kl.iter_mut().zip(kr.iter_mut()) {
        let (tl, tr) = (key_type(l, left), key_type(r, right));
        let target = match (tl, tr) {
            (DataType::Numeric(_), t) if float(t) => Some(&mut *l),
            (t, DataType::Numeric(_)) if float(t) => Some(&mut *r),
            _ => None,
        };
        if let Some(e) = target {
            let inner = std::mem::replace(e, Expr::Literal(Value::Null));
            *e = Expr::Cast {
                expr: Box::new(inner),
                to: DataType::Float8,
            };
        }
    }
}

/// A merge join's key pair, when both sides are whole tables read in
/// primary-key order (unfiltered full scans) and one equality pairs their
/// leading primary-key columns.
fn merge_keys(left: &Plan, right: &Plan, kl: &[Expr], kr: &[Expr]) -> Option<(Expr, Expr)> {
    let leading = |p: &Plan| match &p.node {
        Node::Scan {
            table,
            access: Access::Full,
            filter: None,
        } => table.primary_key.first().map(|&c| Expr::Bound(c)),
        _ => None,
    };
    let (l, r) = (leading(left)?, leading(right)?);
    kl.iter()
        .zip(kr)
        .find(|(a, b)| **a == l && **b == r)
        .map(|(a, b)| (a.clone(), b.clone()))
}

/// Rough row count a unit yields (for join order).
fn estimate(plan: &Plan) -> f64 {
    match &plan.node {
        Node::Single => 1.0,
        Node::Values(rows) => rows.len() as f64,
        Node::Scan { access, filter, .. } => match access {
            Access::PrimaryKey(_) => 1.0,
            Access::Index { index, .. } if index.unique => 1.0,
            Access::Index { .. } => 10.0,
            Access::Range { .. } => 10_000.0,
            Access::Full if filter.is_some() => 100_000.0,
            Access::Full => 1_000_000.0,
        },
        Node::Filter { input, .. } => estimate(input) / 10.0,
        _ => 1_000.0,
    }
}

/// Hash join keys between the left (first `left_width` columns) and right
/// sides of `terms`, re-based on each side, and the terms left over.
fn equi_keys(
    terms: &[Expr],
    left_width: usize,
    right_width: usize,
) -> (Vec<Expr>, Vec<Expr>, Vec<Expr>) {
    let mut kl = Vec::new();
    let mut kr = Vec::new();
    let mut rest = Vec::new();
    for t in terms {
        if let Expr::Binary {
            op: BinaryOp::Eq,
            left,
            right,
        } = t
            && !has_correlated(t)
        {
            let side = |e: &Expr| {
                let cols = columns_of(e);
                if cols.is_empty() {
                    None
                } else if cols.iter().all(|&c| c < left_width) {
                    Some(true)
                } else if cols
                    .iter()
                    .all(|&c| c >= left_width && c < left_width + right_width)
                {
                    Some(false)
                } else {
                    None
                }
            };
            let pair = match (side(left), side(right)) {
                (Some(true), Some(false)) => Some((&**left, &**right)),
                (Some(false), Some(true)) => Some((&**right, &**left)),
                _ => None,
            };
            if let Some((l, r)) = pair
                && let Ok(r) = remap(r, &|c| c.checked_sub(left_width))
            {
                kl.push(l.clone());
                kr.push(r);
                rest.push(t.clone());
                continue;
            }
        }
        rest.push(t.clone());
    }
    // The residual still re-checks the key terms: cheap, and exact for
    // values the hash keys compare loosely.
    (kl, kr, rest)
}
