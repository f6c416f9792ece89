//! The AP tier's HTTP answers: JSON bodies, errors with a reason, stored
//! responses with their ETag, and database errors mapped to statuses.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::cache::Cached;

/// Largest request body accepted.
pub(super) const MAX_BODY: usize = 1 << 20;

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub(super) fn error(
    status: StatusCode,
    message: &str,
    field: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut body = json!({ "error": message });
    if let Some(f) = field {
        body["field"] = json!(f);
    }
    let mut r = json_response(status, &body);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// The request's body, within [`MAX_BODY`] (413 beyond).
pub(super) async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
            None,
        )),
    }
}

/// A stored or fresh body, or 304 when the client has it already.
pub(super) fn cached_response(c: &Cached, if_none_match: Option<&str>) -> Response<Full<Bytes>> {
    let etag = HeaderValue::from_str(&c.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let fresh = if_none_match.is_some_and(|inm| {
        inm.split(',')
            .any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == c.etag)
    });
    let mut r = if fresh {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Full::new(c.body.clone()));
        *r.status_mut() = StatusCode::from_u16(c.status).unwrap_or(StatusCode::OK);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(c.content_type),
        );
        r
    };
    r.headers_mut().insert(header::ETAG, etag);
    r
}

/// Database errors as HTTP: the client's fault is 4xx, ours 5xx.
pub(super) fn db_error(e: &tokio_postgres::Error) -> Response<Full<Bytes>> {
    let Some(db) = e.as_db_error() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("database connection lost: {e}"),
            None,
        );
    };
    let status = match db.code().code() {
        "23505" => StatusCode::CONFLICT,
        "23502" | "23514" | "23503" | "22P02" | "22001" | "22003" | "22007" | "22008" => {
            StatusCode::BAD_REQUEST
        }
        "40001" | "40P01" | "53300" | "57014" | "25006" | "08007" | "57P01" => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    // What a client should do about a database that is changing leaders.
    let message = match db.code().code() {
        "25006" => format!(
            "{} (the database node reached is not the cluster's leader now; \
             retry in a moment: a new connection finds the leader)",
            db.message()
        ),
        "08007" => format!(
            "{} (the database lost its leader while this write committed, so whether \
             it took effect is unknown: check before repeating it)",
            db.message()
        ),
        _ => db.message().to_string(),
    };
    let mut body = json!({ "error": message, "code": db.code().code() });
    if let Some(c) = db.column() {
        body["field"] = json!(c);
    }
    let mut r = json_response(status, &body);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}
