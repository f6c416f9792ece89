//! The automatic REST API's requests (`/api/...`): planned by
//! [`crate::api`], run over the pool, rows bounded by
//! [`MAX_RESPONSE_BYTES`], answered as JSON.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use deadpool_postgres::PoolError;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::Value;

use super::reply::{db_error, error, json_response, read_body};
use super::{Shared, bound_statement_cache, drop_if_stale, encode_segment};
use crate::guard::{self, BodyKind};
use crate::query::{CollectError, MAX_RESPONSE_BYTES, collect_json};

/// A request to the automatic REST API (`/api/...`).
pub(super) async fn api_request(
    shared: &Shared,
    req: Request<Incoming>,
    method: &str,
    rest: &str,
) -> Response<Full<Bytes>> {
    use crate::api::Shape;
    if rest == "openapi.json" && method == "GET" {
        return json_response(StatusCode::OK, &shared.api.openapi(&shared.name));
    }
    let query = req.uri().query().map(str::to_string);
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match guard::body_kind(content_type.as_ref(), body.len()) {
        Ok(BodyKind::Empty | BodyKind::Json) => {}
        Ok(BodyKind::Form) => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the REST API takes JSON: send the body with Content-Type: application/json",
                None,
            );
        }
        Err(why) => return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &why, None),
    }
    let plan = match shared.api.plan(method, rest, query.as_deref(), &body) {
        Ok(p) => p,
        Err((status, message)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            return error(status, &message, None);
        }
    };
    let client = match shared.pool.get().await {
        Ok(c) => c,
        Err(e) => {
            if matches!(e, PoolError::Timeout(_)) {
                shared.metrics.pool_timeouts.fetch_add(1, Ordering::Relaxed);
            }
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("no database connection: {e}"),
                None,
            );
        }
    };
    shared
        .metrics
        .db_round_trips
        .fetch_add(1, Ordering::Relaxed);
    bound_statement_cache(shared, &client);
    let queried = match client.prepare_cached(&plan.sql).await {
        Ok(stmt) => client.query_raw(&stmt, plan.params.iter()).await,
        Err(e) => Err(e),
    };
    let rows = match queried {
        Ok(r) => collect_json(r, MAX_RESPONSE_BYTES).await,
        Err(e) => {
            let reply = db_error(&e);
            drop_if_stale(shared, client, &e);
            return reply;
        }
    };
    drop(client);
    if let Some(t) = &plan.writes {
        shared.cache.written(&std::iter::once(t.clone()).collect());
    }
    let rows = match rows {
        Ok(r) => r,
        Err(CollectError::Db(e)) => return db_error(&e),
        Err(CollectError::TooLarge { rows }) => {
            shared
                .metrics
                .responses_too_large
                .fetch_add(1, Ordering::Relaxed);
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the result exceeds {} MiB after {rows} rows: ask for fewer rows (limit=) \
                     or columns (select=), or filter",
                    MAX_RESPONSE_BYTES >> 20
                ),
                None,
            );
        }
    };
    match plan.shape {
        Shape::Many => json_response(StatusCode::OK, &Value::Array(rows)),
        Shape::One => match rows.into_iter().next() {
            Some(r) => json_response(StatusCode::OK, &r),
            None => error(StatusCode::NOT_FOUND, "not found", None),
        },
        Shape::Created => {
            let row = rows.into_iter().next().unwrap_or(Value::Null);
            let table = rest.split('/').next().unwrap_or("");
            let key = shared
                .api
                .tables
                .get(table)
                .map(|t| t.key.as_str())
                .unwrap_or("id");
            let mut r = json_response(StatusCode::CREATED, &row);
            let id = match &row[key] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&format!("/api/{table}/{}", encode_segment(&id))) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Shape::Deleted => {
            if rows.is_empty() {
                error(StatusCode::NOT_FOUND, "not found", None)
            } else {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
        }
    }
}
