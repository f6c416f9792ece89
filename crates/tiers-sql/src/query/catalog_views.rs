//! The catalog as relations: `information_schema.tables` and `.columns`,
//! and the part of `pg_catalog` psql's `\dt` reads, computed from the
//! table definitions when a query names them.

use crate::ast::Expr;
use crate::catalog::{self, IndexKind};
use crate::error::Result;
use crate::types::DataType;
use crate::value::Value;

use super::plan::{Planner, rename};
use super::{Field, Node, Plan};

impl Planner<'_> {
    /// The catalog view `name` (None if it is not one), built from the catalog.
    pub(super) fn catalog_view(
        &self,
        name: &str,
        label: &str,
        columns: &[String],
    ) -> Result<Option<Plan>> {
        let text = |s: &str| Expr::Literal(Value::Text(s.to_owned()));
        let (names, rows): (&[&str], Vec<Vec<Expr>>) = match name {
            "information_schema.tables" => (
                &["table_catalog", "table_schema", "table_name", "table_type"],
                catalog::tables(self.reads)?
                    .iter()
                    .map(|t| {
                        vec![
                            text("tiers"),
                            text("public"),
                            text(&t.name),
                            text("BASE TABLE"),
                        ]
                    })
                    .collect(),
            ),
            "information_schema.columns" => (
                &[
                    "table_catalog",
                    "table_schema",
                    "table_name",
                    "column_name",
                    "ordinal_position",
                    "column_default",
                    "is_nullable",
                    "data_type",
                ],
                catalog::tables(self.reads)?
                    .iter()
                    .flat_map(|t| {
                        t.columns.iter().enumerate().map(move |(i, c)| {
                            vec![
                                Expr::Literal(Value::Text("tiers".into())),
                                Expr::Literal(Value::Text("public".into())),
                                Expr::Literal(Value::Text(t.name.clone())),
                                Expr::Literal(Value::Text(c.name.clone())),
                                Expr::Literal(Value::Int(i as i64 + 1)),
                                Expr::Literal(column_default(&t.name, c)),
                                Expr::Literal(Value::Text(
                                    if c.not_null { "NO" } else { "YES" }.into(),
                                )),
                                // As in PostgreSQL, without type modifiers.
                                Expr::Literal(Value::Text(
                                    c.data_type
                                        .name()
                                        .split('(')
                                        .next()
                                        .unwrap_or_default()
                                        .to_owned(),
                                )),
                            ]
                        })
                    })
                    .collect(),
            ),
            // Enough of pg_catalog for psql's \dt.
            "pg_catalog.pg_namespace" => (
                &["oid", "nspname"],
                [
                    (PUBLIC_OID, "public"),
                    (11, "pg_catalog"),
                    (INFO_SCHEMA_OID, "information_schema"),
                ]
                .iter()
                .map(|(oid, name)| vec![Expr::Literal(Value::Int(*oid)), text(name)])
                .collect(),
            ),
            "pg_catalog.pg_am" => (
                &["oid", "amname"],
                vec![
                    vec![Expr::Literal(Value::Int(403)), text("btree")],
                    vec![Expr::Literal(Value::Int(405)), text("hash")],
                ],
            ),
            "pg_catalog.pg_class" => {
                let mut rows = Vec::new();
                for t in catalog::tables(self.reads)? {
                    let row = |oid: u64, name: &str, kind: &str, am: i64| {
                        vec![
                            Expr::Literal(Value::Int(RELATION_OID_BASE + oid as i64)),
                            text(name),
                            Expr::Literal(Value::Int(PUBLIC_OID)),
                            text(kind),
                            Expr::Literal(Value::Int(10)),
                            Expr::Literal(Value::Int(am)),
                        ]
                    };
                    rows.push(row(t.id, &t.name, "r", 2));
                    if !t.primary_key.is_empty() {
                        // The rows' own B+tree, keyed by the primary key.
                        rows.push(row(1_000_000 + t.id, &format!("{}_pkey", t.name), "i", 403));
                    }
                    for i in &t.indexes {
                        let am = if i.kind == IndexKind::Hash { 405 } else { 403 };
                        rows.push(row(i.id, &i.name, "i", am));
                    }
                }
                (
                    &[
                        "oid",
                        "relname",
                        "relnamespace",
                        "relkind",
                        "relowner",
                        "relam",
                    ],
                    rows,
                )
            }
            _ => return Ok(None),
        };
        let schema: Vec<Field> = names
            .iter()
            .map(|n| {
                let ty = match *n {
                    "ordinal_position" => DataType::Int4,
                    "oid" | "relnamespace" | "relowner" | "relam" => DataType::Int8,
                    _ => DataType::Text,
                };
                Field::new(None, *n, ty)
            })
            .collect();
        let schema = rename(&schema, label, columns)?;
        Ok(Some(self.node(Node::Values(rows), schema)))
    }
}

/// `information_schema.columns.column_default` as PostgreSQL shows it:
/// `nextval(...)` for serial columns, the expression for per-row defaults,
/// else the default value's text.
fn column_default(table: &str, c: &catalog::ColumnDef) -> Value {
    if c.serial {
        Value::Text(format!("nextval('{table}_{}_seq'::regclass)", c.name))
    } else if let Some(e) = &c.default_expr {
        Value::Text(e.clone())
    } else {
        c.default.clone().map_or(Value::Null, Value::Text)
    }
}

/// pg_catalog object ids: the `public` schema, `information_schema`, and
/// where table and index ids start (above PostgreSQL's system range).
const PUBLIC_OID: i64 = 2200;
const INFO_SCHEMA_OID: i64 = 13_000;
const RELATION_OID_BASE: i64 = 16_384;
