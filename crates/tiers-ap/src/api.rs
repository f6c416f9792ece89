//! The automatic REST API over tables (PostgREST-style), for the tables an
//! application exposes in `app.toml`:
//!
//! ```toml
//! [api.posts]
//! access = "read-write"      # default "read-only"; tables not listed are hidden
//! key = "id"                 # the column /api/posts/{key} looks up (default "id")
//! writable = ["title", "body"]   # the columns POST and PATCH may set (read-write needs it)
//! max_len = { title = 200 }      # the longest value of a column, in characters
//! ```
//!
//! `GET /api/posts?author=eq.kim&order=id.desc&limit=10&select=id,title`,
//! `GET /api/posts/1`, `POST /api/posts` (a JSON object), `PATCH` and
//! `DELETE /api/posts/1`, and an OpenAPI document at `/api/openapi.json`.
//! Column names from the request are checked against the table's columns
//! (read from `information_schema` at start) and quoted; values are always
//! bind parameters. Write bodies must be JSON sent as `application/json`
//! (checked by the server), so a cross-site HTML form cannot post here.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::query::Param;
use crate::routes::parse_form;

/// `[api.TABLE]` in `app.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSpec {
    /// `read-write` or `read-only` (the default).
    #[serde(default = "default_access")]
    pub access: String,
    /// The key column for `/api/TABLE/{key}`.
    #[serde(default = "default_key")]
    pub key: String,
    /// The columns a POST or PATCH may set; every other column (the key,
    /// `created_at`...) is the database's to fill. Required for `read-write`.
    #[serde(default)]
    pub writable: Vec<String>,
    /// The longest value, in characters, per writable column.
    #[serde(default)]
    pub max_len: BTreeMap<String, usize>,
}

fn default_access() -> String {
    "read-only".into()
}

fn default_key() -> String {
    "id".into()
}

/// A column of an exposed table.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its SQL type, as `information_schema` says.
    pub data_type: String,
    /// May be NULL.
    pub nullable: bool,
    /// Has a default (so it may be left out of a POST).
    pub has_default: bool,
}

/// An exposed table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Its name.
    pub name: String,
    /// Writes allowed.
    pub writable: bool,
    /// The columns a write may set, each with its longest value in
    /// characters (`None`: no limit beyond the body's size).
    pub settable: BTreeMap<String, Option<usize>>,
    /// The key column.
    pub key: String,
    /// Its columns, in order.
    pub columns: Vec<Column>,
}

/// The exposed tables.
#[derive(Debug, Clone, Default)]
pub struct Api {
    /// By name.
    pub tables: BTreeMap<String, Table>,
}

/// A request turned into one SQL statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The statement, with `$n` parameters.
    pub sql: String,
    /// Its parameters.
    pub params: Vec<Param>,
    /// How to answer.
    pub shape: Shape,
    /// The table it writes, if it does.
    pub writes: Option<String>,
}

/// How an API response is shaped.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// An array of rows.
    Many,
    /// One row, or 404.
    One,
    /// The created row, 201 with `Location`.
    Created,
    /// 204 if a row was affected, else 404.
    Deleted,
}

/// A request the API refuses: status and message.
pub type Refusal = (u16, String);

const MAX_ROWS: u64 = 10_000;

/// The deepest `offset` accepted: each skipped row is read, so deeper
/// pages are refused (400) with a hint to filter on the key instead.
pub const MAX_OFFSET: u64 = 100_000;

/// The longest filter value (after percent-decoding), in bytes.
pub const MAX_FILTER_BYTES: usize = 4096;

/// Filters (`col=op.value` terms) in one request.
pub const MAX_FILTERS: usize = 16;

/// Values in one `in.(...)` list.
pub const MAX_IN_VALUES: usize = 100;

impl Api {
    /// Reads the exposed tables' columns.
    pub async fn load(
        client: &tokio_postgres::Client,
        specs: &BTreeMap<String, ApiSpec>,
    ) -> Result<Api, String> {
        let mut tables = BTreeMap::new();
        for (name, spec) in specs {
            let writable = match spec.access.as_str() {
                "read-write" => true,
                "read-only" => false,
                other => {
                    return Err(format!(
                        "api.{name}.access {other:?}: use \"read-write\" or \"read-only\""
                    ));
                }
            };
            let rows = client
                .query(
                    "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text \
                     FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 \
                     ORDER BY ordinal_position",
                    &[name],
                )
                .await
                .map_err(|e| format!("api.{name}: reading its columns: {e}"))?;
            if rows.is_empty() {
                return Err(format!("api.{name}: no such table (check the migrations)"));
            }
            let columns: Vec<Column> = rows
                .iter()
                .map(|r| Column {
                    name: r.get(0),
                    data_type: r.get(1),
                    nullable: r.get::<_, String>(2) == "YES",
                    has_default: r.get::<_, Option<String>>(3).is_some(),
                })
                .collect();
            if !columns.iter().any(|c| c.name == spec.key) {
                return Err(format!("api.{name}.key: no column {:?}", spec.key));
            }
            let settable = settable(name, spec, writable, &columns)?;
            tables.insert(
                name.clone(),
                Table {
                    name: name.clone(),
                    writable,
                    settable,
                    key: spec.key.clone(),
                    columns,
                },
            );
        }
        Ok(Api { tables })
    }

    /// Plans `method` on `rest` (the path after `/api/`).
    pub fn plan(
        &self,
        method: &str,
        rest: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<Planned, Refusal> {
        let mut parts = rest.splitn(2, '/');
        let name = parts.next().unwrap_or("");
        let key = parts.next().filter(|k| !k.is_empty());
        let table = self
            .tables
            .get(name)
            .ok_or((404, format!("no table {name:?} in the API")))?;
        let writes = Some(table.name.clone());
        match (method, key) {
            ("GET", None) => list(table, query),
            ("GET", Some(k)) => Ok(Planned {
                sql: format!(
                    "SELECT {} FROM {} WHERE {} = $1",
                    columns(table),
                    quote(&table.name),
                    quote(&table.key)
                ),
                params: vec![Param::Text(decode(k)?)],
                shape: Shape::One,
                writes: None,
            }),
            ("POST" | "PATCH" | "DELETE", _) if !table.writable => {
                Err((405, format!("{name} is read-only in the API")))
            }
            ("POST", None) => {
                let obj = object(table, body)?;
                if obj.is_empty() {
                    return Err((400, "the body has no columns".into()));
                }
                let names: Vec<String> = obj.keys().map(|c| quote(c)).collect();
                let marks: Vec<String> = (1..=obj.len()).map(|i| format!("${i}")).collect();
                Ok(Planned {
                    sql: format!(
                        "INSERT INTO {} ({}) VALUES ({}) RETURNING {}",
                        quote(&table.name),
                        names.join(", "),
                        marks.join(", "),
                        columns(table)
                    ),
                    params: obj.values().map(Param::from_json).collect(),
                    shape: Shape::Created,
                    writes,
                })
            }
            ("PATCH", Some(k)) => {
                let obj = object(table, body)?;
                if obj.is_empty() {
                    return Err((400, "the body has no columns".into()));
                }
                let sets: Vec<String> = obj
                    .keys()
                    .enumerate()
                    .map(|(i, c)| format!("{} = ${}", quote(c), i + 1))
                    .collect();
                let mut params: Vec<Param> = obj.values().map(Param::from_json).collect();
                params.push(Param::Text(decode(k)?));
                Ok(Planned {
                    sql: format!(
                        "UPDATE {} SET {} WHERE {} = ${} RETURNING {}",
                        quote(&table.name),
                        sets.join(", "),
                        quote(&table.key),
                        params.len(),
                        columns(table)
                    ),
                    params,
                    shape: Shape::One,
                    writes,
                })
            }
            ("DELETE", Some(k)) => Ok(Planned {
                sql: format!(
                    "DELETE FROM {} WHERE {} = $1 RETURNING {}",
                    quote(&table.name),
                    quote(&table.key),
                    quote(&table.key)
                ),
                params: vec![Param::Text(decode(k)?)],
                shape: Shape::Deleted,
                writes,
            }),
            _ => Err((405, format!("{method} is not supported on this API path"))),
        }
    }

    /// The OpenAPI 3 document describing the exposed tables.
    pub fn openapi(&self, app: &str) -> Value {
        let mut paths = Map::new();
        let mut schemas = Map::new();
        for t in self.tables.values() {
            let props: Map<String, Value> = t
                .columns
                .iter()
                .map(|c| (c.name.clone(), json!({ "type": json_type(&c.data_type), "nullable": c.nullable, "description": c.data_type })))
                .collect();
            let required: Vec<&str> = t
                .columns
                .iter()
                .filter(|c| !c.nullable && !c.has_default)
                .map(|c| c.name.as_str())
                .collect();
            schemas.insert(
                t.name.clone(),
                json!({ "type": "object", "properties": props, "required": required }),
            );
            let schema = json!({ "$ref": format!("#/components/schemas/{}", t.name) });
            let filters: Vec<Value> = t
                .columns
                .iter()
                .map(|c| json!({ "name": c.name, "in": "query", "required": false, "schema": { "type": "string" },
                                  "description": "eq.v, neq.v, gt.v, gte.v, lt.v, lte.v, like.a*, ilike.a*, in.(a,b), is.null" }))
                .chain(["select", "order", "limit", "offset"].iter().map(|p| json!({ "name": p, "in": "query", "required": false, "schema": { "type": "string" } })))
                .collect();
            let mut list = json!({ "get": { "summary": format!("List {}", t.name), "parameters": filters,
                "responses": { "200": { "description": "rows", "content": { "application/json": { "schema": { "type": "array", "items": schema } } } } } } });
            let key_param = json!([{ "name": t.key, "in": "path", "required": true, "schema": { "type": "string" } }]);
            let mut one = json!({ "get": { "summary": format!("One of {}", t.name), "parameters": key_param,
                "responses": { "200": { "description": "the row", "content": { "application/json": { "schema": schema } } }, "404": { "description": "no such row" } } } });
            if t.writable {
                list["post"] = json!({ "summary": format!("Create in {}", t.name),
                    "requestBody": { "content": { "application/json": { "schema": schema } } },
                    "responses": { "201": { "description": "created", "content": { "application/json": { "schema": schema } } }, "400": { "description": "invalid" }, "409": { "description": "conflict" } } });
                one["patch"] = json!({ "parameters": key_param, "requestBody": { "content": { "application/json": { "schema": schema } } },
                    "responses": { "200": { "description": "updated" }, "404": { "description": "no such row" } } });
                one["delete"] = json!({ "parameters": key_param, "responses": { "204": { "description": "deleted" }, "404": { "description": "no such row" } } });
            }
            paths.insert(format!("/api/{}", t.name), list);
            paths.insert(format!("/api/{}/{{{}}}", t.name, t.key), one);
        }
        json!({
            "openapi": "3.0.3",
            "info": { "title": format!("{app} API"), "version": "1" },
            "paths": paths,
            "components": { "schemas": schemas },
        })
    }
}

/// Checks `writable` and `max_len` of `[api.NAME]` against the columns.
fn settable(
    name: &str,
    spec: &ApiSpec,
    writable: bool,
    columns: &[Column],
) -> Result<BTreeMap<String, Option<usize>>, String> {
    if writable && spec.writable.is_empty() {
        return Err(format!(
            "api.{name}: access = \"read-write\" needs writable = [\"column\", ...], \
             the columns a client may set (the key and columns the database fills stay out)"
        ));
    }
    if !writable && !spec.writable.is_empty() {
        return Err(format!(
            "api.{name}.writable: the table is read-only; set access = \"read-write\" or drop writable"
        ));
    }
    let mut out = BTreeMap::new();
    for col in &spec.writable {
        if !columns.iter().any(|c| &c.name == col) {
            return Err(format!("api.{name}.writable: no column {col:?}"));
        }
        out.insert(col.clone(), None);
    }
    for (col, max) in &spec.max_len {
        match out.get_mut(col) {
            Some(slot) => *slot = Some(*max),
            None => {
                return Err(format!(
                    "api.{name}.max_len.{col}: not a writable column (list it in writable)"
                ));
            }
        }
    }
    Ok(out)
}

fn json_type(data_type: &str) -> &'static str {
    let t = data_type.to_ascii_lowercase();
    if t.contains("int") || t == "serial" || t == "bigserial" {
        "integer"
    } else if t.contains("double")
        || t.contains("real")
        || t.contains("numeric")
        || t.contains("decimal")
    {
        "number"
    } else if t.starts_with("bool") {
        "boolean"
    } else {
        "string"
    }
}

/// `"name"` with inner quotes doubled (names come from the catalog).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn columns(t: &Table) -> String {
    t.columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn decode(s: &str) -> Result<String, Refusal> {
    crate::routes::percent_decode(s).ok_or((400, "malformed path".into()))
}

fn column<'a>(t: &'a Table, name: &str) -> Result<&'a Column, Refusal> {
    t.columns
        .iter()
        .find(|c| c.name == name)
        .ok_or((400, format!("{} has no column {name:?}", t.name)))
}

/// The body of a write: a JSON object whose every key is a writable
/// column and whose values keep within their `max_len`.
fn object(t: &Table, body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Err((400, "the body must be a JSON object".into()));
    };
    for (k, v) in &obj {
        column(t, k)?;
        let Some(max) = t.settable.get(k) else {
            let list: Vec<&str> = t.settable.keys().map(String::as_str).collect();
            return Err((
                400,
                format!(
                    "{}.{k} is not writable through the API (writable: {})",
                    t.name,
                    list.join(", ")
                ),
            ));
        };
        let len = match v {
            Value::String(s) => s.chars().count(),
            Value::Null => 0,
            other => other.to_string().chars().count(),
        };
        if let Some(max) = max
            && len > *max
        {
            return Err((
                400,
                format!("{}.{k} may be at most {max} characters (got {len})", t.name),
            ));
        }
    }
    Ok(obj)
}

fn list(t: &Table, query: Option<&str>) -> Result<Planned, Refusal> {
    let values = match query {
        Some(q) => parse_form(q).ok_or((400, "malformed query string".to_string()))?,
        None => BTreeMap::new(),
    };
    let mut select = columns(t);
    let mut wheres = Vec::new();
    let mut params = Vec::new();
    let mut order = Vec::new();
    let mut limit = MAX_ROWS;
    let mut offset = 0u64;
    for (name, value) in &values {
        let value = value.as_str().unwrap_or_default();
        match name.as_str() {
            "select" => {
                let cols = value
                    .split(',')
                    .map(|c| column(t, c.trim()).map(|c| quote(&c.name)))
                    .collect::<Result<Vec<_>, _>>()?;
                select = cols.join(", ");
            }
            "order" => {
                for term in value.split(',') {
                    let mut bits = term.split('.');
                    let col = column(t, bits.next().unwrap_or(""))?;
                    let mut sql = quote(&col.name);
                    for b in bits {
                        sql.push_str(match b {
                            "asc" => " ASC",
                            "desc" => " DESC",
                            "nullsfirst" => " NULLS FIRST",
                            "nullslast" => " NULLS LAST",
                            other => return Err((400, format!("order: unknown {other:?}; use asc, desc, nullsfirst, nullslast"))),
                        });
                    }
                    order.push(sql);
                }
            }
            "limit" => {
                limit = value
                    .parse::<u64>()
                    .map_err(|_| (400, "limit must be a whole number".to_string()))?
                    .min(MAX_ROWS);
            }
            "offset" => {
                offset = value
                    .parse()
                    .map_err(|_| (400, "offset must be a whole number".to_string()))?;
                if offset > MAX_OFFSET {
                    return Err((
                        400,
                        format!(
                            "offset may be at most {MAX_OFFSET}; page deeper by filtering on the key \
                             (e.g. {}=gt.LAST_SEEN&order={}) instead",
                            t.key, t.key
                        ),
                    ));
                }
            }
            col => {
                let c = quote(&column(t, col)?.name);
                if wheres.len() >= MAX_FILTERS {
                    return Err((400, format!("at most {MAX_FILTERS} filters per request")));
                }
                if value.len() > MAX_FILTER_BYTES {
                    return Err((
                        400,
                        format!("{col}: a filter value may be at most {MAX_FILTER_BYTES} bytes"),
                    ));
                }
                let (op, arg) = value
                    .split_once('.')
                    .ok_or((400, format!("{col}: write op.value, e.g. eq.1")))?;
                let mut bind = |v: &str| {
                    params.push(Param::Text(v.to_string()));
                    format!("${}", params.len())
                };
                let cond = match op {
                    "eq" => format!("{c} = {}", bind(arg)),
                    "neq" => format!("{c} <> {}", bind(arg)),
                    "gt" => format!("{c} > {}", bind(arg)),
                    "gte" => format!("{c} >= {}", bind(arg)),
                    "lt" => format!("{c} < {}", bind(arg)),
                    "lte" => format!("{c} <= {}", bind(arg)),
                    "like" => format!("{c} LIKE {}", bind(&arg.replace('*', "%"))),
                    "ilike" => format!("{c} ILIKE {}", bind(&arg.replace('*', "%"))),
                    "in" => {
                        let inner = arg
                            .strip_prefix('(')
                            .and_then(|a| a.strip_suffix(')'))
                            .ok_or((400, format!("{col}: write in.(a,b)")))?;
                        if inner.split(',').count() > MAX_IN_VALUES {
                            return Err((
                                400,
                                format!("{col}: at most {MAX_IN_VALUES} values in in.(...)"),
                            ));
                        }
                        let marks: Vec<String> = inner.split(',').map(|v| bind(v.trim())).collect();
                        format!("{c} IN ({})", marks.join(", "))
                    }
                    "is" => match arg {
                        "null" => format!("{c} IS NULL"),
                        "true" => format!("{c} IS TRUE"),
                        "false" => format!("{c} IS FALSE"),
                        _ => return Err((400, format!("{col}: is.null, is.true or is.false"))),
                    },
                    other => return Err((400, format!("{col}: unknown operator {other:?}"))),
                };
                wheres.push(cond);
            }
        }
    }
    let mut sql = format!("SELECT {select} FROM {}", quote(&t.name));
    if !wheres.is_empty() {
        sql.push_str(&format!(" WHERE {}", wheres.join(" AND ")));
    }
    if !order.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    // Bound, not written into the text: every page of a listing is one
    // prepared statement, not one per distinct limit and offset.
    params.push(Param::Text(limit.to_string()));
    params.push(Param::Text(offset.to_string()));
    sql.push_str(&format!(
        " LIMIT ${} OFFSET ${}",
        params.len() - 1,
        params.len()
    ));
    Ok(Planned {
        sql,
        params,
        shape: Shape::Many,
        writes: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Api {
        let col = |n: &str, t: &str| Column {
            name: n.into(),
            data_type: t.into(),
            nullable: n != "id",
            has_default: n == "id",
        };
        let mut tables = BTreeMap::new();
        tables.insert(
            "posts".to_string(),
            Table {
                name: "posts".into(),
                writable: true,
                settable: [
                    ("title".to_string(), Some(10)),
                    ("author".to_string(), None),
                ]
                .into_iter()
                .collect(),
                key: "id".into(),
                columns: vec![
                    col("id", "integer"),
                    col("title", "text"),
                    col("author", "text"),
                ],
            },
        );
        Api { tables }
    }

    #[test]
    fn writable_columns_are_checked_against_the_table() {
        let cols = &api().tables["posts"].columns;
        let spec = |toml: &str| toml::from_str::<ApiSpec>(toml).unwrap();
        let e = settable("posts", &spec("access = \"read-write\""), true, cols).unwrap_err();
        assert!(e.contains("needs writable"), "{e}");
        let e = settable("posts", &spec("writable = [\"nope\"]"), true, cols).unwrap_err();
        assert!(e.contains("no column \"nope\""), "{e}");
        let e = settable("posts", &spec("writable = [\"title\"]"), false, cols).unwrap_err();
        assert!(e.contains("read-only"), "{e}");
        let e = settable(
            "posts",
            &spec("writable = [\"title\"]\nmax_len = { author = 3 }"),
            true,
            cols,
        )
        .unwrap_err();
        assert!(e.contains("max_len.author: not a writable column"), "{e}");
        let ok = settable(
            "posts",
            &spec("writable = [\"title\", \"author\"]\nmax_len = { title = 9 }"),
            true,
            cols,
        )
        .unwrap();
        assert_eq!(ok["title"], Some(9));
        assert_eq!(ok["author"], None);
        assert_eq!(spec("").access, "read-only", "read-only by default");
    }

    #[test]
    fn filters_order_and_paging_become_parameterised_sql() {
        let p = api()
            .plan("GET", "posts", Some("author=eq.kim&title=like.*rust*&id=in.(1,2)&order=id.desc&limit=5&offset=10&select=id,title"), b"")
            .unwrap();
        assert_eq!(
            p.sql,
            "SELECT \"id\", \"title\" FROM \"posts\" WHERE \"author\" = $1 AND \"id\" IN ($2, $3) AND \"title\" LIKE $4 ORDER BY \"id\" DESC LIMIT $5 OFFSET $6"
        );
        assert_eq!(
            p.params,
            [
                Param::Text("kim".into()),
                Param::Text("1".into()),
                Param::Text("2".into()),
                Param::Text("%rust%".into()),
                Param::Text("5".into()),
                Param::Text("10".into())
            ]
        );
    }

    #[test]
    fn hostile_listings_are_refused_with_a_reason() {
        let refused = |q: &str| api().plan("GET", "posts", Some(q), b"").unwrap_err();
        assert!(refused("offset=100001").1.contains("filtering on the key"));
        let long = format!("author=eq.{}", "a".repeat(MAX_FILTER_BYTES + 1));
        assert!(refused(&long).1.contains("at most 4096 bytes"));
        let list: Vec<String> = (0..=MAX_IN_VALUES).map(|i| i.to_string()).collect();
        assert!(
            refused(&format!("id=in.({})", list.join(",")))
                .1
                .contains("at most 100 values")
        );
        // Distinct pages share one statement text.
        let a = api()
            .plan("GET", "posts", Some("limit=3&offset=7"), b"")
            .unwrap();
        let b = api()
            .plan("GET", "posts", Some("limit=9&offset=70000"), b"")
            .unwrap();
        assert_eq!(a.sql, b.sql);
    }

    #[test]
    fn unknown_names_and_operators_are_400() {
        let a = api();
        for q in [
            "nope=eq.1",
            "author=zz.1",
            "author=kim",
            "order=title.sideways",
            "select=id,secret",
            "limit=x",
            "title=is.maybe",
        ] {
            let e = a.plan("GET", "posts", Some(q), b"").unwrap_err();
            assert_eq!(e.0, 400, "{q}: {e:?}");
        }
        assert_eq!(a.plan("GET", "users", None, b"").unwrap_err().0, 404);
        let e = a
            .plan(
                "POST",
                "posts",
                None,
                br#"{"title": "x", "evil\"; DROP": 1}"#,
            )
            .unwrap_err();
        assert_eq!(e.0, 400);
    }

    #[test]
    fn writes_are_planned_with_returning() {
        let a = api();
        let p = a
            .plan("POST", "posts", None, br#"{"title": "t", "author": "a"}"#)
            .unwrap();
        assert_eq!(
            p.sql,
            "INSERT INTO \"posts\" (\"author\", \"title\") VALUES ($1, $2) RETURNING \"id\", \"title\", \"author\""
        );
        assert_eq!(
            (p.shape, p.writes.as_deref()),
            (Shape::Created, Some("posts"))
        );
        let p = a
            .plan("PATCH", "posts/7", None, br#"{"title": "u"}"#)
            .unwrap();
        assert_eq!(
            p.sql,
            "UPDATE \"posts\" SET \"title\" = $1 WHERE \"id\" = $2 RETURNING \"id\", \"title\", \"author\""
        );
        let p = a.plan("DELETE", "posts/7", None, b"").unwrap();
        assert_eq!(p.shape, Shape::Deleted);
        // Only writable columns, within their lengths.
        let e = a
            .plan("POST", "posts", None, br#"{"id": 1, "title": "t"}"#)
            .unwrap_err();
        assert_eq!(e.0, 400);
        assert!(
            e.1.contains("posts.id is not writable") && e.1.contains("author, title"),
            "{e:?}"
        );
        let e = a
            .plan(
                "PATCH",
                "posts/7",
                None,
                r#"{"title": "ééééééééééé"}"#.as_bytes(),
            )
            .unwrap_err();
        assert!(e.1.contains("at most 10 characters (got 11)"), "{e:?}");
        assert!(
            a.plan(
                "PATCH",
                "posts/7",
                None,
                r#"{"title": "éééééééééé"}"#.as_bytes()
            )
            .is_ok()
        );
        let doc = a.openapi("board");
        assert!(doc["paths"]["/api/posts/{id}"]["delete"].is_object());
        assert_eq!(
            doc["components"]["schemas"]["posts"]["properties"]["id"]["type"],
            "integer"
        );
    }
}
