//! The executor: pulls rows through a plan tree.
//!
//! Scans, filters, projections, joins' probe sides and LIMIT stream;
//! sorts, hash tables, nested-loop inner sides, aggregates, DISTINCT and
//! set operations hold rows in memory, each counted against
//! [`MEMORY_LIMIT`]: a query that needs more fails with SQLSTATE 53200 and
//! says what to do, instead of exhausting the server.

use std::cell::{Cell, RefCell};

use rust_decimal::prelude::ToPrimitive;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::rc::Rc;
use std::time::Instant;

use crate::ast::JoinKind;
use crate::catalog::TableDef;
use crate::error::{Result, SqlError, sqlstate};
use crate::exec::QueryResult;
use crate::expr::{self, Scope};
use crate::reads::Reads;
use crate::table;
use crate::types::DataType;
use crate::value::Value;

use super::aggregate::Accumulator;
use super::{Access, Node, Plan, QueryPlan, SortKey};

mod set_op;
mod subquery;

use subquery::Cached;

/// The most memory one statement's sorts, hash tables and results may use.
pub const MEMORY_LIMIT: usize = 512 << 20;

pub(super) type Row = Vec<Value>;
type Rows<'b> = Box<dyn Iterator<Item = Result<Row>> + 'b>;

/// What one plan node did (EXPLAIN ANALYZE).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct NodeStats {
    pub rows: u64,
    pub loops: u64,
    pub nanos: u64,
    pub hits: u64,
    pub reads: u64,
}

/// Runs a planned query and returns its rows.
pub fn run(r: &dyn Reads, plan: &QueryPlan, params: &[Value]) -> Result<QueryResult> {
    let exec = Exec::new(r, plan, params, false);
    let rows = exec.collect(&plan.root, &[])?;
    Ok(QueryResult {
        columns: plan.columns(),
        tag: format!("SELECT {}", rows.len()),
        rows,
    })
}

pub(super) struct Exec<'a> {
    reads: &'a dyn Reads,
    params: &'a [Value],
    ctes: &'a [Plan],
    cte_rows: RefCell<HashMap<usize, Rc<Vec<Row>>>>,
    cached: RefCell<HashMap<usize, Cached>>,
    memory: Cell<usize>,
    pub stats: Option<RefCell<Vec<NodeStats>>>,
}

fn memory_error() -> SqlError {
    SqlError::new(
        "53200",
        format!(
            "the query needs more than {} MiB of memory for sorting, hashing or its result; \
             narrow it with WHERE or LIMIT, or add an index",
            MEMORY_LIMIT >> 20
        ),
    )
}

/// Approximate bytes a row holds.
fn row_bytes(row: &[Value]) -> usize {
    row.iter()
        .map(|v| {
            32 + match v {
                Value::Text(s) => s.len(),
                Value::Bytes(b) => b.len(),
                _ => 0,
            }
        })
        .sum::<usize>()
        + 24
}

/// The hashing key of values: equal values (NULLs included) give equal keys.
pub(super) fn hash_key(values: &[Value]) -> Vec<u8> {
    let normal: Vec<Value> = values
        .iter()
        .map(|v| match v {
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Int(*f as i64),
            // A whole numeric equals the integer (`2.00 = 2`): one key for both.
            Value::Numeric(d) if d.fract().is_zero() => match d.trunc().to_i64() {
                Some(i) => Value::Int(i),
                None => Value::Numeric(*d),
            },
            other => other.clone(),
        })
        .collect();
    table::encode_key_values(&normal)
}

impl<'a> Exec<'a> {
    pub(super) fn new(
        reads: &'a dyn Reads,
        plan: &'a QueryPlan,
        params: &'a [Value],
        analyze: bool,
    ) -> Exec<'a> {
        Exec {
            reads,
            params,
            ctes: &plan.ctes,
            cte_rows: RefCell::new(HashMap::new()),
            cached: RefCell::new(HashMap::new()),
            memory: Cell::new(0),
            stats: analyze.then(|| RefCell::new(vec![NodeStats::default(); plan.nodes])),
        }
    }

    /// A join key's values over `row`; None when one is NULL (it matches nothing).
    fn join_key(
        &self,
        keys: &[crate::ast::Expr],
        row: &[Value],
        outer: &[&[Value]],
    ) -> Result<Option<Vec<Value>>> {
        let scope = self.scope(Some(row), outer);
        let key = keys
            .iter()
            .map(|k| expr::eval(k, &scope))
            .collect::<Result<Vec<_>>>()?;
        Ok((!key.iter().any(Value::is_null)).then_some(key))
    }

    /// Counts `bytes` more held in memory.
    fn hold(&self, bytes: usize) -> Result<()> {
        let total = self.memory.get().saturating_add(bytes);
        if total > MEMORY_LIMIT {
            return Err(memory_error());
        }
        self.memory.set(total);
        Ok(())
    }

    fn scope<'b>(&'b self, row: Option<&'b [Value]>, outer: &'b [&'b [Value]]) -> Scope<'b> {
        Scope {
            table: None,
            row,
            params: self.params,
            outer,
            subqueries: Some(self),
        }
    }

    /// Every row of a plan, counted against the memory limit.
    pub(super) fn collect(&self, plan: &Plan, outer: &[&[Value]]) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        for row in self.rows(plan, outer)? {
            let row = row?;
            self.hold(row_bytes(&row))?;
            out.push(row);
        }
        Ok(out)
    }

    /// The rows of a plan node.
    pub(super) fn rows<'b>(&'b self, plan: &'b Plan, outer: &'b [&'b [Value]]) -> Result<Rows<'b>> {
        let Some(stats) = &self.stats else {
            return self.open(plan, outer);
        };
        let id = plan.id;
        let measure = move |started: Instant, before: (u64, u64)| {
            let after = tiers_storage::thread_buffer_counts();
            let mut s = stats.borrow_mut();
            let slot = &mut s[id];
            slot.nanos += started.elapsed().as_nanos() as u64;
            slot.hits += after.0 - before.0;
            slot.reads += after.1 - before.1;
        };
        let (started, before) = (Instant::now(), tiers_storage::thread_buffer_counts());
        stats.borrow_mut()[id].loops += 1;
        let mut inner = self.open(plan, outer);
        measure(started, before);
        let mut inner = match inner.as_mut() {
            Ok(_) => inner?,
            Err(_) => return inner,
        };
        Ok(Box::new(std::iter::from_fn(move || {
            let (started, before) = (Instant::now(), tiers_storage::thread_buffer_counts());
            let next = inner.next();
            measure(started, before);
            if matches!(next, Some(Ok(_))) {
                stats.borrow_mut()[id].rows += 1;
            }
            next
        })))
    }

    fn open<'b>(&'b self, plan: &'b Plan, outer: &'b [&'b [Value]]) -> Result<Rows<'b>> {
        match &plan.node {
            Node::Single => Ok(Box::new(std::iter::once(Ok(Vec::new())))),
            Node::Values(rows) => {
                let scope = self.scope(None, outer);
                let rows = rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|e| expr::eval(e, &scope))
                            .collect::<Result<Row>>()
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Box::new(rows.into_iter().map(Ok)))
            }
            Node::Scan {
                table,
                access,
                filter,
            } => self.scan(table, access, filter.as_ref(), None, outer),
            Node::Series { args } => self.series(args, outer),
            Node::CteScan { index, .. } => {
                let cached = self.cte_rows.borrow().get(index).cloned();
                let rows = match cached {
                    Some(rows) => rows,
                    None => {
                        let rows = Rc::new(self.collect(&self.ctes[*index], &[])?);
                        self.cte_rows.borrow_mut().insert(*index, rows.clone());
                        rows
                    }
                };
                Ok(Box::new((0..rows.len()).map(move |i| Ok(rows[i].clone()))))
            }
            Node::Filter { input, predicate } => {
                let input = self.rows(input, outer)?;
                Ok(Box::new(input.filter_map(move |row| {
                    let row = match row {
                        Ok(r) => r,
                        Err(e) => return Some(Err(e)),
                    };
                    match self.passes(predicate, &row, outer) {
                        Ok(true) => Some(Ok(row)),
                        Ok(false) => None,
                        Err(e) => Some(Err(e)),
                    }
                })))
            }
            Node::Project { input, exprs } => {
                let input = self.rows(input, outer)?;
                Ok(Box::new(input.map(move |row| {
                    let row = row?;
                    let scope = self.scope(Some(&row), outer);
                    exprs.iter().map(|e| expr::eval(e, &scope)).collect()
                })))
            }
            Node::NestedLoop {
                left,
                right,
                kind,
                condition,
            } => {
                let right_rows = self.collect(right, outer)?;
                let width = right.schema.len();
                let all: Vec<usize> = (0..right_rows.len()).collect();
                self.join(
                    left,
                    right_rows,
                    width,
                    *kind,
                    condition.as_ref(),
                    outer,
                    move |_| Ok(all.clone()),
                )
            }
            Node::HashJoin {
                left,
                right,
                kind,
                left_keys,
                right_keys,
                residual,
            } => {
                let right_rows = self.collect(right, outer)?;
                let mut table: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
                for (i, row) in right_rows.iter().enumerate() {
                    let Some(key) = self.join_key(right_keys, row, outer)? else {
                        continue;
                    };
                    let key = hash_key(&key);
                    self.hold(key.len() + 16)?;
                    table.entry(key).or_default().push(i);
                }
                let width = right.schema.len();
                self.join(
                    left,
                    right_rows,
                    width,
                    *kind,
                    residual.as_ref(),
                    outer,
                    move |l| {
                        let Some(key) = self.join_key(left_keys, l, outer)? else {
                            return Ok(Vec::new());
                        };
                        Ok(table.get(&hash_key(&key)).cloned().unwrap_or_default())
                    },
                )
            }
            Node::MergeJoin {
                left,
                right,
                kind,
                left_keys,
                right_keys,
                residual,
            } => {
                let right_rows = self.collect(right, outer)?;
                // The right rows with non-NULL keys, in key order (the planner
                // chose inputs already in it; sorting here is a safety net).
                let mut keyed: Vec<(Vec<Value>, usize)> = Vec::with_capacity(right_rows.len());
                for (i, row) in right_rows.iter().enumerate() {
                    if let Some(key) = self.join_key(right_keys, row, outer)? {
                        keyed.push((key, i));
                    }
                }
                if !keyed
                    .windows(2)
                    .all(|w| key_order(&w[0].0, &w[1].0).is_le())
                {
                    keyed.sort_by(|a, b| key_order(&a.0, &b.0));
                }
                let cursor = Cell::new(0usize);
                let previous: RefCell<Option<Vec<Value>>> = RefCell::new(None);
                let width = right.schema.len();
                self.join(
                    left,
                    right_rows,
                    width,
                    *kind,
                    residual.as_ref(),
                    outer,
                    move |l| {
                        let Some(key) = self.join_key(left_keys, l, outer)? else {
                            return Ok(Vec::new());
                        };
                        // Left keys ascend, so the cursor only moves forward;
                        // should one go back, start over from the beginning.
                        let mut i = cursor.get();
                        if previous
                            .borrow()
                            .as_ref()
                            .is_some_and(|p| key_order(&key, p).is_lt())
                        {
                            i = 0;
                        }
                        while i < keyed.len() && key_order(&keyed[i].0, &key).is_lt() {
                            i += 1;
                        }
                        cursor.set(i);
                        let run = keyed[i..]
                            .iter()
                            .take_while(|(k, _)| key_order(k, &key).is_eq())
                            .map(|(_, r)| *r)
                            .collect();
                        *previous.borrow_mut() = Some(key);
                        Ok(run)
                    },
                )
            }
            Node::IndexJoin {
                left,
                right,
                kind,
                condition,
            } => {
                let Node::Scan {
                    table,
                    access,
                    filter,
                } = &right.node
                else {
                    return Err(SqlError::new(
                        sqlstate::INTERNAL_ERROR,
                        "an index join's inner side is not a table",
                    ));
                };
                let width = right.schema.len();
                let input = self.rows(left, outer)?;
                let kind = *kind;
                Ok(Box::new(
                    input
                        .map(move |l| -> Result<Vec<Result<Row>>> {
                            let l = l?;
                            if let Some(stats) = &self.stats {
                                stats.borrow_mut()[right.id].loops += 1;
                            }
                            let started = Instant::now();
                            let before = tiers_storage::thread_buffer_counts();
                            let matches = self
                                .scan(table, access, filter.as_ref(), Some(&l), outer)?
                                .collect::<Result<Vec<_>>>()?;
                            if let Some(stats) = &self.stats {
                                let after = tiers_storage::thread_buffer_counts();
                                let mut s = stats.borrow_mut();
                                let slot = &mut s[right.id];
                                slot.rows += matches.len() as u64;
                                slot.nanos += started.elapsed().as_nanos() as u64;
                                slot.hits += after.0 - before.0;
                                slot.reads += after.1 - before.1;
                            }
                            let mut out = Vec::new();
                            for r in matches {
                                let mut joined = l.clone();
                                joined.extend(r);
                                if let Some(c) = condition
                                    && !self.passes(c, &joined, outer)?
                                {
                                    continue;
                                }
                                out.push(Ok(joined));
                            }
                            if out.is_empty() && kind == JoinKind::Left {
                                let mut joined = l;
                                joined.extend(std::iter::repeat_n(Value::Null, width));
                                out.push(Ok(joined));
                            }
                            Ok(out)
                        })
                        .flat_map(|r| match r {
                            Ok(rows) => rows,
                            Err(e) => vec![Err(e)],
                        }),
                ))
            }
            Node::Aggregate {
                input,
                group_by,
                aggregates,
            } => {
                let mut groups: HashMap<Vec<u8>, usize> = HashMap::new();
                let mut states: Vec<(Row, Vec<Accumulator>)> = Vec::new();
                for row in self.rows(input, outer)? {
                    let row = row?;
                    let scope = self.scope(Some(&row), outer);
                    let key_values = group_by
                        .iter()
                        .map(|g| expr::eval(g, &scope))
                        .collect::<Result<Vec<_>>>()?;
                    let key = hash_key(&key_values);
                    let slot = match groups.get(&key) {
                        Some(&i) => i,
                        None => {
                            self.hold(row_bytes(&key_values) + key.len() + 64 * aggregates.len())?;
                            states.push((
                                key_values,
                                aggregates.iter().map(Accumulator::new).collect(),
                            ));
                            groups.insert(key, states.len() - 1);
                            states.len() - 1
                        }
                    };
                    for (acc, call) in states[slot].1.iter_mut().zip(aggregates) {
                        let args = call
                            .args
                            .iter()
                            .map(|a| expr::eval(a, &scope))
                            .collect::<Result<Vec<_>>>()?;
                        let grew = acc.add(args)?;
                        self.hold(grew)?;
                    }
                }
                if group_by.is_empty() && states.is_empty() {
                    states.push((
                        Vec::new(),
                        aggregates.iter().map(Accumulator::new).collect(),
                    ));
                }
                let rows = states
                    .into_iter()
                    .map(|(mut key, accs)| {
                        for acc in accs {
                            key.push(acc.finish()?);
                        }
                        Ok(key)
                    })
                    .collect::<Vec<_>>();
                Ok(Box::new(rows.into_iter()))
            }
            Node::Sort { input, keys } => {
                let mut rows = self.collect(input, outer)?;
                let mut failure = None;
                rows.sort_by(|a, b| {
                    compare_rows(keys, a, b).unwrap_or_else(|e| {
                        failure.get_or_insert(e);
                        Ordering::Equal
                    })
                });
                if let Some(e) = failure {
                    return Err(e);
                }
                Ok(Box::new(rows.into_iter().map(Ok)))
            }
            Node::Distinct { input } => {
                let input = self.rows(input, outer)?;
                let mut seen = HashSet::new();
                Ok(Box::new(input.filter_map(move |row| match row {
                    Ok(row) => {
                        let key = hash_key(&row);
                        if seen.contains(&key) {
                            return None;
                        }
                        if let Err(e) = self.hold(key.len() + 32) {
                            return Some(Err(e));
                        }
                        seen.insert(key);
                        Some(Ok(row))
                    }
                    Err(e) => Some(Err(e)),
                })))
            }
            Node::Limit {
                input,
                limit,
                offset,
            } => {
                let scope = self.scope(None, outer);
                let count = |e: &Option<crate::ast::Expr>| -> Result<Option<usize>> {
                    let Some(e) = e else { return Ok(None) };
                    match expr::eval(e, &scope)? {
                        Value::Null => Ok(None),
                        v => {
                            let n = v.to_i64()?;
                            usize::try_from(n).map(Some).map_err(|_| {
                                SqlError::new("2201W", "LIMIT and OFFSET must not be negative")
                            })
                        }
                    }
                };
                let offset = count(offset)?.unwrap_or(0);
                let limit = count(limit)?.unwrap_or(usize::MAX);
                if limit == 0 {
                    return Ok(Box::new(std::iter::empty()));
                }
                let input = self.rows(input, outer)?;
                // Stop pulling (and propagate errors) once the limit is met.
                let mut skipped = 0;
                let mut taken = 0;
                let mut input = input;
                Ok(Box::new(std::iter::from_fn(move || {
                    while taken < limit {
                        match input.next()? {
                            Err(e) => return Some(Err(e)),
                            Ok(_) if skipped < offset => skipped += 1,
                            Ok(row) => {
                                taken += 1;
                                return Some(Ok(row));
                            }
                        }
                    }
                    None
                })))
            }
            Node::SetOp {
                op,
                all,
                left,
                right,
            } => self.set_op(*op, *all, left, right, outer),
        }
    }

    /// Evaluates an expression over a row (no enclosing query).
    pub(super) fn eval_row(&self, e: &crate::ast::Expr, row: &[Value]) -> Result<Value> {
        expr::eval(e, &self.scope(Some(row), &[]))
    }

    fn passes(
        &self,
        predicate: &crate::ast::Expr,
        row: &[Value],
        outer: &[&[Value]],
    ) -> Result<bool> {
        let scope = self.scope(Some(row), outer);
        Ok(expr::truth(&expr::eval(predicate, &scope)?)? == Some(true))
    }

    /// The shared join loop: for each left row, the candidate right rows
    /// (`candidates`), checked with `condition`; outer-join padding; and for
    /// FULL joins the unmatched right rows at the end.
    #[allow(clippy::too_many_arguments)]
    fn join<'b>(
        &'b self,
        left: &'b Plan,
        right_rows: Vec<Row>,
        right_width: usize,
        kind: JoinKind,
        condition: Option<&'b crate::ast::Expr>,
        outer: &'b [&'b [Value]],
        candidates: impl Fn(&[Value]) -> Result<Vec<usize>> + 'b,
    ) -> Result<Rows<'b>> {
        let left_width = left.schema.len();
        let input = self.rows(left, outer)?;
        let right_rows = Rc::new(right_rows);
        let matched = Rc::new(RefCell::new(vec![false; right_rows.len()]));
        let (rr, mm) = (right_rows.clone(), matched.clone());
        let body = input
            .map(move |l| -> Result<Vec<Result<Row>>> {
                let l = l?;
                let mut out = Vec::new();
                for i in candidates(&l)? {
                    crate::limits::check()?;
                    let mut joined = l.clone();
                    joined.extend(rr[i].iter().cloned());
                    if let Some(c) = condition
                        && !self.passes(c, &joined, outer)?
                    {
                        continue;
                    }
                    mm.borrow_mut()[i] = true;
                    out.push(Ok(joined));
                }
                if out.is_empty() && matches!(kind, JoinKind::Left | JoinKind::Full) {
                    let mut joined = l;
                    joined.extend(std::iter::repeat_n(Value::Null, right_width));
                    out.push(Ok(joined));
                }
                Ok(out)
            })
            .flat_map(|r| match r {
                Ok(rows) => rows,
                Err(e) => vec![Err(e)],
            });
        if kind != JoinKind::Full {
            return Ok(Box::new(body));
        }
        let tail = std::iter::once(()).flat_map(move |_| {
            let matched = matched.borrow();
            (0..right_rows.len())
                .filter(|&i| !matched[i])
                .map(|i| {
                    let mut joined = vec![Value::Null; left_width];
                    joined.extend(right_rows[i].iter().cloned());
                    Ok(joined)
                })
                .collect::<Vec<_>>()
        });
        Ok(Box::new(body.chain(tail)))
    }

    /// Reads a table through its access path; `key_row` is the outer row
    /// of an index join (the keys are expressions over it).
    fn scan<'b>(
        &'b self,
        def: &'b TableDef,
        access: &'b Access,
        filter: Option<&'b crate::ast::Expr>,
        key_row: Option<&[Value]>,
        outer: &'b [&'b [Value]],
    ) -> Result<Rows<'b>> {
        let r = self.reads;
        let scope = Scope {
            table: None,
            row: key_row,
            params: self.params,
            outer,
            subqueries: Some(self),
        };
        let keys = |exprs: &[crate::ast::Expr], columns: &[usize]| -> Result<Option<Vec<Value>>> {
            let mut out = Vec::with_capacity(exprs.len());
            for (e, &c) in exprs.iter().zip(columns) {
                match exact(expr::eval(e, &scope)?, def.columns[c].data_type) {
                    Some(v) => out.push(v),
                    None => return Ok(None),
                }
            }
            Ok(Some(out))
        };
        let source: Box<dyn Iterator<Item = Result<table::StoredRow>> + 'b> = match access {
            Access::Full => Box::new(table::scan_stored(r, def)?),
            Access::PrimaryKey(exprs) => match keys(exprs, &def.primary_key)? {
                Some(values) if values.iter().any(Value::is_null) => Box::new(std::iter::empty()),
                Some(values) => {
                    let key = table::primary_key(def, &values)?;
                    Box::new(table::get(r, def, &key)?.into_iter().map(Ok))
                }
                None => Box::new(table::scan_stored(r, def)?),
            },
            Access::Index { index, key } => match keys(key, &index.columns)? {
                Some(values) => {
                    Box::new(table::lookup(r, def, index, &values)?.into_iter().map(Ok))
                }
                None => Box::new(table::scan_stored(r, def)?),
            },
            Access::Range {
                index,
                lo,
                hi,
                reverse,
            } => {
                let column = match index {
                    Some(i) => i.columns[0],
                    None => def.primary_key[0],
                };
                let ty = def.columns[column].data_type;
                let bound =
                    |b: &Option<(crate::ast::Expr, bool)>| -> Result<Option<Bound<Vec<Value>>>> {
                        let Some((e, inclusive)) = b else {
                            return Ok(Some(Bound::Unbounded));
                        };
                        let v = expr::eval(e, &scope)?;
                        if v.is_null() {
                            return Ok(None); // Compared with NULL: no row matches.
                        }
                        Ok(Some(match exact(v, ty) {
                            Some(v) if *inclusive => Bound::Included(vec![v]),
                            Some(v) => Bound::Excluded(vec![v]),
                            // Not exactly representable: let the filter decide.
                            None => Bound::Unbounded,
                        }))
                    };
                match (bound(lo)?, bound(hi)?) {
                    (Some(l), Some(h)) => table::range_rows(
                        r,
                        def,
                        index.as_ref(),
                        table::bound_slice(&l),
                        table::bound_slice(&h),
                        *reverse,
                    )?,
                    _ => Box::new(std::iter::empty()),
                }
            }
        };
        let n = def.columns.len();
        Ok(Box::new(source.filter_map(move |row| {
            if let Err(e) = crate::limits::check() {
                return Some(Err(e));
            }
            let mut values = match row {
                Ok(r) => r.values,
                Err(e) => return Some(Err(e)),
            };
            values.truncate(n);
            match filter.map(|f| self.passes(f, &values, outer)) {
                None | Some(Ok(true)) => Some(Ok(values)),
                Some(Ok(false)) => None,
                Some(Err(e)) => Some(Err(e)),
            }
        })))
    }

    fn series<'b>(
        &'b self,
        args: &'b [crate::ast::Expr],
        outer: &'b [&'b [Value]],
    ) -> Result<Rows<'b>> {
        let scope = self.scope(None, outer);
        let values = args
            .iter()
            .map(|a| expr::eval(a, &scope))
            .collect::<Result<Vec<_>>>()?;
        if values.iter().any(Value::is_null) {
            return Ok(Box::new(std::iter::empty()));
        }
        let start = values[0].to_i64()?;
        let stop = values[1].to_i64()?;
        let step = values.get(2).map(Value::to_i64).transpose()?.unwrap_or(1);
        if step == 0 {
            return Err(SqlError::new("22023", "step size cannot equal zero"));
        }
        let mut next = Some(start);
        Ok(Box::new(std::iter::from_fn(move || {
            let current = next?;
            if (step > 0 && current > stop) || (step < 0 && current < stop) {
                return None;
            }
            if let Err(e) = crate::limits::check() {
                next = None;
                return Some(Err(e));
            }
            next = current.checked_add(step);
            Some(Ok(vec![Value::Int(current)]))
        })))
    }
}

/// `v` as a value of column type `ty`, if it converts without changing
/// (a key lookup with a rounded value would find the wrong rows).
fn exact(v: Value, ty: DataType) -> Option<Value> {
    if v.is_null() {
        return Some(v);
    }
    let converted = ty.assign(v.clone()).ok()?;
    (expr::compare(&converted, &v).ok()? == Some(Ordering::Equal)).then_some(converted)
}

pub(super) fn compare_rows(keys: &[SortKey], a: &[Value], b: &[Value]) -> Result<Ordering> {
    for k in keys {
        let (x, y) = (&a[k.column], &b[k.column]);
        let ord = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if k.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if k.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            _ => {
                let ord = expr::compare(x, y)?.unwrap_or(Ordering::Equal);
                if k.desc { ord.reverse() } else { ord }
            }
        };
        if ord != Ordering::Equal {
            return Ok(ord);
        }
    }
    Ok(Ordering::Equal)
}

/// The order of two non-NULL join keys, column by column.
fn key_order(a: &[Value], b: &[Value]) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.sql_cmp(y).unwrap_or(Ordering::Equal))
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}
