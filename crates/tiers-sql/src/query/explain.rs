//! EXPLAIN: the plan tree as text, one node per line, children indented
//! under `->` as PostgreSQL prints them. With ANALYZE the query runs and
//! each node reports its rows, loops, time and buffer pool hits and reads.

use crate::ast::{Expr, JoinKind, SetOp};
use crate::catalog::IndexKind;
use crate::error::Result;
use crate::exec::{Column, QueryResult};
use crate::reads::Reads;
use crate::types::DataType;
use crate::value::Value;

use super::run::{Exec, NodeStats};
use super::walk::visit;
use super::{Access, Node, Plan, QueryPlan, SubKind};

/// EXPLAIN [ANALYZE] of a planned query.
pub fn explain(
    r: &dyn Reads,
    plan: &QueryPlan,
    params: &[Value],
    analyze: bool,
) -> Result<QueryResult> {
    let mut stats = None;
    let mut total = None;
    if analyze {
        let exec = Exec::new(r, plan, params, true);
        let started = std::time::Instant::now();
        let rows = exec.collect(&plan.root, &[])?;
        total = Some((started.elapsed(), rows.len()));
        stats = exec.stats.map(|s| s.into_inner());
    }
    let mut lines = Vec::new();
    render(&plan.root, 0, stats.as_deref(), &mut lines);
    for (i, cte) in plan.ctes.iter().enumerate() {
        lines.push(format!("CTE {i}"));
        render(cte, 1, stats.as_deref(), &mut lines);
    }
    if let Some((elapsed, rows)) = total {
        lines.push(format!(
            "Execution Time: {:.3} ms ({rows} rows)",
            elapsed.as_secs_f64() * 1000.0
        ));
    }
    Ok(QueryResult {
        columns: vec![Column {
            name: "QUERY PLAN".into(),
            data_type: DataType::Text,
        }],
        tag: format!("EXPLAIN {}", lines.len()),
        rows: lines.into_iter().map(|l| vec![Value::Text(l)]).collect(),
    })
}

fn join_name(kind: JoinKind) -> &'static str {
    match kind {
        JoinKind::Inner | JoinKind::Cross => "",
        JoinKind::Left => " Left",
        JoinKind::Right => " Right",
        JoinKind::Full => " Full",
    }
}

/// One line describing a node.
fn describe(plan: &Plan) -> String {
    match &plan.node {
        Node::Single => "Result".into(),
        Node::Values(rows) => format!("Values Scan ({} rows)", rows.len()),
        Node::Scan {
            table,
            access,
            filter,
        } => {
            let mut s = match access {
                Access::Full => format!("Seq Scan on {}", table.name),
                Access::PrimaryKey(_) => {
                    format!("Index Scan using {}_pkey on {}", table.name, table.name)
                }
                Access::Index { index, .. } => match index.kind {
                    IndexKind::Hash => {
                        format!("Hash Index Scan using {} on {}", index.name, table.name)
                    }
                    IndexKind::BTree => {
                        format!("Index Scan using {} on {}", index.name, table.name)
                    }
                },
                Access::Range {
                    index,
                    lo,
                    hi,
                    reverse,
                } => {
                    let name = index
                        .as_ref()
                        .map_or(format!("{}_pkey", table.name), |i| i.name.clone());
                    let dir = if *reverse { " Backward" } else { "" };
                    let range = if lo.is_some() || hi.is_some() {
                        " (range)"
                    } else {
                        ""
                    };
                    format!("Index Scan{dir} using {name} on {}{range}", table.name)
                }
            };
            if filter.is_some() {
                s.push_str(" with filter");
            }
            s
        }
        Node::Series { .. } => "Function Scan on generate_series".into(),
        Node::CteScan { name, index } => format!("CTE Scan on {name} (CTE {index})"),
        Node::Filter { .. } => "Filter".into(),
        Node::Project { .. } => "Project".into(),
        Node::NestedLoop { kind, .. } => format!("Nested Loop{}", join_name(*kind)),
        Node::HashJoin {
            kind, left_keys, ..
        } => {
            format!(
                "Hash{} Join ({} key{})",
                join_name(*kind),
                left_keys.len(),
                if left_keys.len() == 1 { "" } else { "s" }
            )
        }
        Node::MergeJoin {
            kind, left_keys, ..
        } => {
            format!(
                "Merge{} Join ({} key{})",
                join_name(*kind),
                left_keys.len(),
                if left_keys.len() == 1 { "" } else { "s" }
            )
        }
        Node::IndexJoin { kind, .. } => {
            format!("Nested Loop{} (index lookup per row)", join_name(*kind))
        }
        Node::Aggregate { group_by, .. } => {
            if group_by.is_empty() {
                "Aggregate".into()
            } else {
                format!(
                    "HashAggregate ({} group key{})",
                    group_by.len(),
                    if group_by.len() == 1 { "" } else { "s" }
                )
            }
        }
        Node::Sort { keys, .. } => format!(
            "Sort ({} key{})",
            keys.len(),
            if keys.len() == 1 { "" } else { "s" }
        ),
        Node::Distinct { .. } => "Unique (hashed)".into(),
        Node::Limit { .. } => "Limit".into(),
        Node::SetOp { op, all, .. } => {
            let name = match op {
                SetOp::Union => "Append (UNION",
                SetOp::Intersect => "HashSetOp (INTERSECT",
                SetOp::Except => "HashSetOp (EXCEPT",
            };
            format!("{name}{})", if *all { " ALL" } else { "" })
        }
    }
}

fn render(plan: &Plan, depth: usize, stats: Option<&[NodeStats]>, out: &mut Vec<String>) {
    // Projections are not worth a line (PostgreSQL does not print them).
    if let Node::Project { input, .. } = &plan.node {
        render(input, depth, stats, out);
        render_subplans(plan, depth, stats, out);
        return;
    }
    let mut line = String::new();
    if depth > 0 {
        line.push_str(&" ".repeat(depth * 6 - 4));
        line.push_str("->  ");
    }
    line.push_str(&describe(plan));
    if let Some(s) = stats.and_then(|s| s.get(plan.id)) {
        if s.loops == 0 {
            line.push_str(" (never executed)");
        } else {
            line.push_str(&format!(
                " (actual time={:.3} ms rows={} loops={}) (buffers: hit={} read={})",
                s.nanos as f64 / 1e6,
                s.rows,
                s.loops,
                s.hits,
                s.reads
            ));
        }
    }
    out.push(line);
    for child in plan.children() {
        render(child, depth + 1, stats, out);
    }
    render_subplans(plan, depth, stats, out);
}

/// The subqueries a node's own expressions run, under it.
fn render_subplans(plan: &Plan, depth: usize, stats: Option<&[NodeStats]>, out: &mut Vec<String>) {
    let mut shown = Vec::new();
    for e in plan.own_exprs() {
        visit(e, &mut |x| {
            if let Expr::SubPlan(sub) = x
                && !shown.contains(&sub.id)
            {
                shown.push(sub.id);
                let kind = match sub.kind {
                    SubKind::Scalar => "scalar",
                    SubKind::Exists { .. } => "EXISTS",
                    SubKind::In { .. } => "IN",
                };
                let when = if sub.correlated { "per row" } else { "once" };
                out.push(format!(
                    "{}SubPlan {} ({kind}, runs {when})",
                    " ".repeat(depth * 6 + 2),
                    sub.id
                ));
                render(&sub.plan, depth + 1, stats, out);
            }
        });
    }
}
