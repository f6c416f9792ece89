//! Routes: a method and a path pattern mapped to SQL, with declared
//! parameters checked before any SQL runs.
//!
//! ```toml
//! [[routes]]
//! method = "GET"
//! path = "/api/posts/{id}"
//! sql = "SELECT id, title FROM posts WHERE id = :id"
//! response = "json_one"          # json (all rows), json_one (first row or 404),
//!                                # template:post.html, redirect:/posts/{id}, status:204
//! [routes.params.id]
//! type = "int"                   # int, float, bool, text
//! required = true
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::query::{NamedSql, Param, compile};

/// A route as written in `app.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// `/posts/{id}`: literal segments and `{name}` parameters.
    pub path: String,
    /// One statement, or several run in one transaction.
    pub sql: Statements,
    /// What to answer (see the module docs).
    #[serde(default = "default_response")]
    pub response: String,
    /// Declared parameters.
    #[serde(default)]
    pub params: BTreeMap<String, ParamSpec>,
    /// Keep GET responses this many seconds (0: never), until a write to a
    /// table they read.
    #[serde(default)]
    pub cache_ttl_s: u64,
    /// The tables the route reads, when the SQL does not make it plain
    /// (by default they are found in the SQL).
    pub reads: Option<Vec<String>>,
}

fn default_response() -> String {
    "json".into()
}

/// `sql = "..."` or `sql = ["...", "..."]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Statements {
    /// One statement.
    One(String),
    /// Several, in one transaction.
    Many(Vec<String>),
}

/// A declared parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    /// `int`, `float`, `bool` or `text` (the default).
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
    /// Missing is a 400.
    #[serde(default)]
    pub required: bool,
    /// Longest text accepted, in characters.
    pub max_len: Option<usize>,
    /// Smallest number accepted.
    pub min: Option<f64>,
    /// Largest number accepted.
    pub max: Option<f64>,
}

fn default_type() -> String {
    "text".into()
}

/// What a route answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Respond {
    /// Every row of the last statement, as a JSON array.
    Json,
    /// The first row as an object, or 404.
    JsonOne,
    /// `303 See Other` to this path (with `{name}` filled in).
    Redirect(String),
    /// This status and no body.
    Status(u16),
    /// HTML from `templates/NAME` with `rows`, `row` and `params`.
    Template(String),
}

/// A checked, compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    /// The method.
    pub method: String,
    /// Path segments: `Ok(literal)` or `Err(parameter name)`.
    pub segments: Vec<Result<String, String>>,
    /// Compiled statements.
    pub statements: Vec<NamedSql>,
    /// What to answer.
    pub respond: Respond,
    /// Declared parameters.
    pub params: BTreeMap<String, ParamSpec>,
    /// The pattern as written, for messages.
    pub pattern: String,
    /// Cache lifetime in seconds (0: not cached).
    pub cache_ttl_s: u64,
    /// Tables read.
    pub reads: std::collections::BTreeSet<String>,
    /// Tables written.
    pub writes: std::collections::BTreeSet<String>,
}

impl Route {
    /// Checks and compiles a route; errors say what to fix.
    pub fn compile(c: &RouteConfig) -> Result<Route, String> {
        let method = c.method.to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "PATCH" | "DELETE") {
            return Err(format!(
                "method {:?}: use GET, POST, PUT, PATCH or DELETE",
                c.method
            ));
        }
        if !c.path.starts_with('/') {
            return Err(format!("path {:?} must start with /", c.path));
        }
        let segments = c
            .path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Err(name.to_string()),
                    None => Ok(s.to_string()),
                },
            )
            .collect();
        let texts = match &c.sql {
            Statements::One(s) => vec![s.clone()],
            Statements::Many(v) => v.clone(),
        };
        if texts.is_empty() {
            return Err("sql: give at least one statement".into());
        }
        let statements = texts
            .iter()
            .map(|t| compile(t).map_err(|e| format!("sql: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        for (name, spec) in &c.params {
            if !matches!(spec.kind.as_str(), "int" | "float" | "bool" | "text") {
                return Err(format!(
                    "params.{name}: type {:?}: use int, float, bool or text",
                    spec.kind
                ));
            }
        }
        let respond = match c.response.as_str() {
            "json" => Respond::Json,
            "json_one" => Respond::JsonOne,
            r => match r.split_once(':') {
                Some(("redirect", to)) if to.starts_with('/') => Respond::Redirect(to.to_string()),
                Some(("template", name)) if !name.is_empty() => Respond::Template(name.to_string()),
                Some(("status", code)) => Respond::Status(
                    code.parse()
                        .ok()
                        .filter(|c| (200..600).contains(c))
                        .ok_or_else(|| format!("response {r:?}: status must be 200 to 599"))?,
                ),
                _ => {
                    return Err(format!(
                        "response {r:?}: use json, json_one, template:NAME, redirect:/path or status:CODE"
                    ));
                }
            },
        };
        let mut reads = std::collections::BTreeSet::new();
        let mut writes = std::collections::BTreeSet::new();
        for t in &texts {
            let (r, w) = crate::cache::tables(t);
            reads.extend(r);
            writes.extend(w);
        }
        if let Some(declared) = &c.reads {
            reads = declared.iter().map(|t| t.to_lowercase()).collect();
        }
        Ok(Route {
            method,
            segments,
            statements,
            respond,
            params: c.params.clone(),
            pattern: c.path.clone(),
            cache_ttl_s: c.cache_ttl_s,
            reads,
            writes,
        })
    }

    /// The path parameters if `path` matches.
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut found = BTreeMap::new();
        for (seg, part) in self.segments.iter().zip(parts) {
            match seg {
                Ok(lit) if lit == part => {}
                Ok(_) => return None,
                Err(name) => {
                    found.insert(name.clone(), percent_decode(part)?);
                }
            }
        }
        Some(found)
    }

    /// Checks the request's values against the declarations and returns
    /// each statement's parameters in order. The error names the field.
    pub fn bind(
        &self,
        values: &BTreeMap<String, Value>,
    ) -> Result<Vec<Vec<Param>>, (String, String)> {
        for (name, spec) in &self.params {
            let v = values.get(name).filter(|v| !v.is_null());
            let Some(v) = v else {
                if spec.required {
                    return Err((name.clone(), "is required".into()));
                }
                continue;
            };
            check(spec, v).map_err(|e| (name.clone(), e))?;
        }
        Ok(self
            .statements
            .iter()
            .map(|s| {
                s.names
                    .iter()
                    .map(|n| values.get(n).map_or(Param::Null, Param::from_json))
                    .collect()
            })
            .collect())
    }
}

fn check(spec: &ParamSpec, v: &Value) -> Result<(), String> {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match spec.kind.as_str() {
        "int" => {
            let n: i64 = text
                .trim()
                .parse()
                .map_err(|_| format!("must be an integer, not {text:?}"))?;
            range(spec, n as f64)?;
        }
        "float" => {
            let f: f64 = text
                .trim()
                .parse()
                .map_err(|_| format!("must be a number, not {text:?}"))?;
            if !f.is_finite() {
                return Err("must be a finite number".into());
            }
            range(spec, f)?;
        }
        "bool" if !matches!(text.as_str(), "true" | "false" | "on" | "off" | "1" | "0") => {
            return Err(format!("must be true or false, not {text:?}"));
        }
        _ => {}
    }
    if let Some(max) = spec.max_len
        && text.chars().count() > max
    {
        return Err(format!("must be at most {max} characters"));
    }
    Ok(())
}

fn range(spec: &ParamSpec, n: f64) -> Result<(), String> {
    if let Some(min) = spec.min
        && n < min
    {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = spec.max
        && n > max
    {
        return Err(format!("must be at most {max}"));
    }
    Ok(())
}

/// Decodes `%XX` and (in forms and query strings) `+`; `None` if invalid.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `a=1&b=x+y` → values (later duplicates win).
pub fn parse_form(s: &str) -> Option<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k)?, Value::String(percent_decode(v)?));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(toml_text: &str) -> Result<Route, String> {
        let c: RouteConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        Route::compile(&c)
    }

    #[test]
    fn patterns_match_and_decode() {
        let r = route("method = \"get\"\npath = \"/posts/{id}/comments\"\nsql = \"SELECT :id\"\n")
            .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.matches("/posts/7/comments").unwrap()["id"], "7");
        assert_eq!(r.matches("/posts/a%20b/comments/").unwrap()["id"], "a b");
        assert!(r.matches("/posts/7").is_none());
        assert!(r.matches("/users/7/comments").is_none());
        assert!(r.matches("/posts/%zz/comments").is_none());
    }

    #[test]
    fn declared_parameters_are_checked_by_name() {
        let r = route(
            "method = \"POST\"\npath = \"/posts\"\nsql = [\"INSERT INTO posts (title, n) VALUES (:title, :n)\", \"SELECT :title\"]\n\
             [params.title]\nrequired = true\nmax_len = 5\n[params.n]\ntype = \"int\"\nmin = 1\n",
        )
        .unwrap();
        let vals = |pairs: &[(&str, Value)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect()
        };
        let e = r.bind(&vals(&[])).unwrap_err();
        assert_eq!(e.0, "title");
        let e = r.bind(&vals(&[("title", "toolong".into())])).unwrap_err();
        assert_eq!(e, ("title".into(), "must be at most 5 characters".into()));
        let e = r
            .bind(&vals(&[("title", "ok".into()), ("n", "x".into())]))
            .unwrap_err();
        assert_eq!(e.0, "n");
        let e = r
            .bind(&vals(&[("title", "ok".into()), ("n", Value::from(0))]))
            .unwrap_err();
        assert!(e.1.contains("at least 1"));
        let bound = r
            .bind(&vals(&[("title", "ok".into()), ("n", Value::from(3))]))
            .unwrap();
        assert_eq!(bound.len(), 2);
        assert_eq!(
            bound[0],
            [Param::Text("ok".into()), Param::Text("3".into())]
        );
        assert_eq!(bound[1], [Param::Text("ok".into())]);
    }

    #[test]
    fn bad_routes_say_what_to_fix() {
        for (text, needle) in [
            (
                "method = \"FETCH\"\npath = \"/\"\nsql = \"SELECT 1\"\n",
                "method",
            ),
            (
                "method = \"GET\"\npath = \"x\"\nsql = \"SELECT 1\"\n",
                "start with /",
            ),
            ("method = \"GET\"\npath = \"/\"\nsql = []\n", "at least one"),
            (
                "method = \"GET\"\npath = \"/\"\nsql = \"SELECT 1\"\nresponse = \"xml\"\n",
                "response",
            ),
            (
                "method = \"GET\"\npath = \"/\"\nsql = \"SELECT 1\"\n[params.a]\ntype = \"date\"\n",
                "params.a",
            ),
        ] {
            let e = route(text).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        assert_eq!(parse_form("a=1&b=x+y%21&c").unwrap()["b"], "x y!");
    }
}
