//! Queries: planning a [`Query`] into a tree of plan nodes, and running it.
//!
//! The planner ([`plan`]) binds names to positions (every column reference
//! becomes [`Expr::Bound`], or [`Expr::Outer`] inside a correlated
//! subquery), chooses an access path per table (primary key, B+tree or hash
//! index lookup, B+tree range, or a full scan), orders and implements joins
//! (index nested loop, hash join, nested loop), and adds aggregation,
//! DISTINCT, sorting and LIMIT on top. The executor ([`run`]) pulls rows
//! through the tree; only sorts, hash tables, aggregates and set operations
//! materialise, each within a memory bound. [`explain`] prints the tree,
//! and with ANALYZE what each node did: rows, time, buffer hits and reads.
//!
//! This is the book's full scan versus index made visible: EXPLAIN names
//! the access path each table takes.

use std::sync::Arc;

use crate::ast::{Expr, JoinKind, SetOp};
use crate::catalog::{IndexDef, TableDef};
use crate::types::DataType;

mod access;
mod aggregate;
mod catalog_views;
mod explain;
mod join;
mod plan;
mod run;
mod walk;

pub use explain::explain;
pub use plan::{QueryPlan, plan_query};
pub use run::{MEMORY_LIMIT, run};

/// A column of a plan node's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The table (or alias) it can be qualified with.
    pub table: Option<String>,
    /// Its name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
    /// Hidden from `*` and from unqualified names (the second column of a
    /// `USING` pair).
    pub hidden: bool,
}

impl Field {
    /// A visible field.
    pub fn new(table: Option<String>, name: impl Into<String>, data_type: DataType) -> Field {
        Field {
            table,
            name: name.into(),
            data_type,
            hidden: false,
        }
    }
}

/// A node of a plan, with its output columns.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What it does.
    pub node: Node,
    /// What it produces.
    pub schema: Vec<Field>,
    /// Its number within the statement (EXPLAIN ANALYZE's statistics slot).
    pub id: usize,
}

impl Plan {
    /// The node's inputs.
    pub fn children(&self) -> Vec<&Plan> {
        match &self.node {
            Node::Single
            | Node::Values(_)
            | Node::Scan { .. }
            | Node::Series { .. }
            | Node::CteScan { .. } => Vec::new(),
            Node::Filter { input, .. }
            | Node::Project { input, .. }
            | Node::Aggregate { input, .. }
            | Node::Sort { input, .. }
            | Node::Distinct { input }
            | Node::Limit { input, .. } => vec![input],
            Node::NestedLoop { left, right, .. }
            | Node::HashJoin { left, right, .. }
            | Node::MergeJoin { left, right, .. }
            | Node::IndexJoin { left, right, .. }
            | Node::SetOp { left, right, .. } => vec![left, right],
        }
    }

    /// The expressions the node evaluates itself (not its children's).
    pub fn own_exprs(&self) -> Vec<&Expr> {
        match &self.node {
            Node::Values(rows) => rows.iter().flatten().collect(),
            Node::Scan { access, filter, .. } => {
                let mut v: Vec<&Expr> = filter.iter().collect();
                match access {
                    Access::PrimaryKey(k) | Access::Index { key: k, .. } => v.extend(k),
                    Access::Range { lo, hi, .. } => {
                        v.extend(lo.iter().chain(hi.iter()).map(|(e, _)| e))
                    }
                    Access::Full => {}
                }
                v
            }
            Node::Series { args } => args.iter().collect(),
            Node::Filter { predicate, .. } => vec![predicate],
            Node::Project { exprs, .. } => exprs.iter().collect(),
            Node::NestedLoop { condition, .. } | Node::IndexJoin { condition, .. } => {
                condition.iter().collect()
            }
            Node::HashJoin {
                left_keys,
                right_keys,
                residual,
                ..
            }
            | Node::MergeJoin {
                left_keys,
                right_keys,
                residual,
                ..
            } => left_keys
                .iter()
                .chain(right_keys)
                .chain(residual.iter())
                .collect(),
            Node::Aggregate {
                group_by,
                aggregates,
                ..
            } => group_by
                .iter()
                .chain(aggregates.iter().flat_map(|a| &a.args))
                .collect(),
            Node::Limit { limit, offset, .. } => limit.iter().chain(offset.iter()).collect(),
            _ => Vec::new(),
        }
    }
}

/// How a table scan finds its rows.
#[derive(Debug, Clone)]
pub enum Access {
    /// Every row, in primary-key order.
    Full,
    /// The rows whose whole primary key equals these values.
    PrimaryKey(Vec<Expr>),
    /// The rows whose index columns equal these values.
    Index {
        /// The index.
        index: IndexDef,
        /// One value per index column.
        key: Vec<Expr>,
    },
    /// The rows whose leading primary-key column (no index) or leading
    /// B+tree index column lies in a range, possibly in reverse order.
    Range {
        /// The index, or None for the primary key.
        index: Option<IndexDef>,
        /// Lower bound and whether it is inclusive.
        lo: Option<(Expr, bool)>,
        /// Upper bound and whether it is inclusive.
        hi: Option<(Expr, bool)>,
        /// Descending order.
        reverse: bool,
    },
}

/// One sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// Column position in the input.
    pub column: usize,
    /// DESC.
    pub desc: bool,
    /// NULLS FIRST.
    pub nulls_first: bool,
}

/// An aggregate call of an Aggregate node.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    /// Function name (`count`, `sum`, ...).
    pub name: String,
    /// Arguments over the input row (empty for `count(*)`).
    pub args: Vec<Expr>,
    /// `f(DISTINCT x)`.
    pub distinct: bool,
}

/// Plan nodes.
#[derive(Debug, Clone)]
pub enum Node {
    /// One row of no columns (`SELECT` without FROM).
    Single,
    /// `VALUES` rows (or rows computed at plan time, such as catalog views).
    Values(Vec<Vec<Expr>>),
    /// A table read through an access path, with a filter over its rows.
    Scan {
        /// The table.
        table: Box<TableDef>,
        /// How rows are found.
        access: Access,
        /// A filter over the table's columns.
        filter: Option<Expr>,
    },
    /// `generate_series(start, stop [, step])`.
    Series {
        /// start, stop and step.
        args: Vec<Expr>,
    },
    /// The rows of a WITH query (computed once per statement).
    CteScan {
        /// Which CTE (index into [`QueryPlan::ctes`]).
        index: usize,
        /// Its name (for EXPLAIN).
        name: String,
    },
    /// Rows of the input that satisfy the predicate.
    Filter {
        /// Input.
        input: Box<Plan>,
        /// Predicate.
        predicate: Expr,
    },
    /// Computes new columns from each input row.
    Project {
        /// Input.
        input: Box<Plan>,
        /// One expression per output column.
        exprs: Vec<Expr>,
    },
    /// For each left row, every right row (re-read from memory) that
    /// satisfies the condition.
    NestedLoop {
        /// Outer input.
        left: Box<Plan>,
        /// Inner input (materialised once).
        right: Box<Plan>,
        /// Join kind.
        kind: JoinKind,
        /// Join condition over left ++ right.
        condition: Option<Expr>,
    },
    /// Builds a hash table of the right input on its keys, then probes it
    /// with each left row.
    HashJoin {
        /// Probe side.
        left: Box<Plan>,
        /// Build side.
        right: Box<Plan>,
        /// Join kind.
        kind: JoinKind,
        /// Key expressions over the left row.
        left_keys: Vec<Expr>,
        /// Key expressions over the right row.
        right_keys: Vec<Expr>,
        /// Extra condition over left ++ right.
        residual: Option<Expr>,
    },
    /// Walks both inputs in key order (each read once: both are scans in
    /// primary-key order on the join key), pairing each left row with the
    /// run of right rows whose key equals its own.
    MergeJoin {
        /// Outer input, in key order.
        left: Box<Plan>,
        /// Inner input, in key order (read once and kept).
        right: Box<Plan>,
        /// Join kind.
        kind: JoinKind,
        /// Key expressions over the left row.
        left_keys: Vec<Expr>,
        /// Key expressions over the right row.
        right_keys: Vec<Expr>,
        /// Extra condition over left ++ right.
        residual: Option<Expr>,
    },
    /// For each left row, looks the right table up through its primary key
    /// or an index (an index nested loop).
    IndexJoin {
        /// Outer input.
        left: Box<Plan>,
        /// The inner table, its access path with keys over the left row,
        /// and its own filter over its columns.
        right: Box<Plan>,
        /// Inner or left.
        kind: JoinKind,
        /// Extra condition over left ++ right.
        condition: Option<Expr>,
    },
    /// Groups rows and computes aggregates: outputs the group values, then
    /// the aggregate values.
    Aggregate {
        /// Input.
        input: Box<Plan>,
        /// GROUP BY expressions over the input.
        group_by: Vec<Expr>,
        /// Aggregates.
        aggregates: Vec<AggCall>,
    },
    /// Sorts the input.
    Sort {
        /// Input.
        input: Box<Plan>,
        /// Keys, most significant first.
        keys: Vec<SortKey>,
    },
    /// Drops duplicate rows.
    Distinct {
        /// Input.
        input: Box<Plan>,
    },
    /// OFFSET then LIMIT.
    Limit {
        /// Input.
        input: Box<Plan>,
        /// Row count (None: all).
        limit: Option<Expr>,
        /// Rows skipped.
        offset: Option<Expr>,
    },
    /// UNION / INTERSECT / EXCEPT [ALL].
    SetOp {
        /// Operator.
        op: SetOp,
        /// Keep duplicates.
        all: bool,
        /// Left input.
        left: Box<Plan>,
        /// Right input.
        right: Box<Plan>,
    },
}

/// What a planned subquery computes.
#[derive(Debug, Clone)]
pub enum SubKind {
    /// One value (NULL for no rows; more than one row is an error).
    Scalar,
    /// Whether it returns a row.
    Exists {
        /// NOT EXISTS.
        negated: bool,
    },
    /// Whether `expr` is among its values (SQL's three-valued IN).
    In {
        /// The left operand, over the enclosing row.
        expr: Expr,
        /// NOT IN.
        negated: bool,
    },
}

/// A subquery inside an expression, planned.
#[derive(Debug)]
pub struct SubPlan {
    /// Its number within the statement (caches uncorrelated results).
    pub id: usize,
    /// What it computes.
    pub kind: SubKind,
    /// The query.
    pub plan: Plan,
    /// Whether it refers to the enclosing query's row (then it runs once
    /// per row; otherwise once per statement).
    pub correlated: bool,
}

impl PartialEq for SubPlan {
    fn eq(&self, other: &SubPlan) -> bool {
        std::ptr::eq(self, other)
    }
}

/// Builds an expression that runs a planned subquery.
pub(crate) fn subplan_expr(sub: SubPlan) -> Expr {
    Expr::SubPlan(Arc::new(sub))
}

/// Expressions over one row of known columns (UPDATE's SET and WHERE,
/// RETURNING, ON CONFLICT), bound like a query's so they may hold
/// subqueries.
#[derive(Debug)]
pub struct BoundExprs {
    /// The bound expressions, in the order given.
    pub exprs: Vec<Expr>,
    /// Their result types.
    pub types: Vec<DataType>,
    plan: QueryPlan,
}

impl BoundExprs {
    /// An evaluator reading through `r` (holds the statement's subquery caches).
    pub fn evaluator<'a>(
        &'a self,
        r: &'a dyn crate::reads::Reads,
        params: &'a [crate::value::Value],
    ) -> Evaluator<'a> {
        Evaluator {
            exec: run::Exec::new(r, &self.plan, params, false),
            exprs: &self.exprs,
        }
    }
}

/// Evaluates [`BoundExprs`] over rows.
pub struct Evaluator<'a> {
    exec: run::Exec<'a>,
    exprs: &'a [Expr],
}

impl Evaluator<'_> {
    /// The value of expression `i` over `row`.
    pub fn eval(
        &self,
        i: usize,
        row: &[crate::value::Value],
    ) -> crate::error::Result<crate::value::Value> {
        self.exec.eval_row(&self.exprs[i], row)
    }

    /// Whether expression `i` is true over `row` (NULL is not).
    pub fn holds(&self, i: usize, row: &[crate::value::Value]) -> crate::error::Result<bool> {
        Ok(crate::expr::truth(&self.eval(i, row)?)? == Some(true))
    }
}

/// Binds expressions over a row with these columns.
pub fn bind_exprs(
    r: &dyn crate::reads::Reads,
    fields: Vec<Field>,
    exprs: &[&Expr],
) -> crate::error::Result<BoundExprs> {
    plan::bind_exprs(r, fields, exprs)
}

/// The columns of a table as a row's fields, qualified by `label`.
pub fn table_fields(def: &TableDef, label: &str) -> Vec<Field> {
    table_fields_of(&def.columns, label)
}

/// Columns as a row's fields, qualified by `label`.
pub fn table_fields_of(columns: &[crate::catalog::ColumnDef], label: &str) -> Vec<Field> {
    columns
        .iter()
        .map(|c| Field::new(Some(label.to_owned()), c.name.clone(), c.data_type))
        .collect()
}

/// Calls `f` on `e` and each of its sub-expressions (not inside subqueries).
pub fn visit_expr(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    walk::visit(e, f)
}
