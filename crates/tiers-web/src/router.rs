//! Per request: pick the route, serve the file or forward to the pool (the
//! book's web server deciding between static and dynamic content), enforce
//! the body limits, and count and log what was sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};

use crate::accesslog::Entry;
use crate::body::Body;
use crate::files::{self, Root, Served};
use crate::metrics::BodyReservation;
use crate::path::{Refusal, sanitize};
use crate::proxy::{self, Client, Pool, REQUEST_ID, Upgraded};
use crate::server::{Shared, State};

/// A path prefix and what serves it.
pub struct Route {
    /// Prefix, starting with `/`.
    pub prefix: String,
    /// Static files.
    pub root: Option<Root>,
    /// Upstream pool.
    pub pool: Option<Arc<Pool>>,
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        let p = self.prefix.trim_end_matches('/');
        p.is_empty()
            || path == p
            || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
    }
}

/// One client connection, as requests see it.
pub struct ConnCtx {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether it is TLS.
    pub tls: bool,
    /// Requests in flight on it (HTTP/2 may have many).
    pub in_flight: AtomicUsize,
    /// An upgraded exchange waiting for the client's side of the socket.
    pub upgrade: Mutex<Option<Upgraded>>,
    /// Responses finished on it.
    pub completed: AtomicU64,
    /// Set when it speaks HTTP/2: its responses waiting on the client.
    pub stalls: std::sync::OnceLock<Arc<crate::stalls::Stalls>>,
}

/// Handles one request.
pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = Instant::now();
    if conn.in_flight.fetch_add(1, Ordering::Relaxed) == 0 {
        shared
            .metrics
            .connections_active
            .fetch_add(1, Ordering::Relaxed);
    }
    let state = shared.state();
    let method = req.method().clone();
    let version = req.version();
    let logging = state.log.is_some();
    let target = if logging {
        req.uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string())
    } else {
        String::new()
    };
    let (referer, user_agent) = if logging {
        let h = |n| {
            req.headers()
                .get(n)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        (h(header::REFERER), h(header::USER_AGENT))
    } else {
        (String::new(), String::new())
    };

    let (mut response, upstream, upstream_time) = dispatch(&shared, &state, &conn, req).await;
    response
        .headers_mut()
        .insert(header::SERVER, HeaderValue::from_static("tiers"));
    let status = response.status().as_u16();
    let request_id = if logging {
        response
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    } else {
        String::new()
    };
    let shared2 = shared.clone();
    let (parts, mut body) = response.into_parts();
    if let Some(stalls) = conn.stalls.get() {
        body = body.watch_stalls(stalls);
    }
    let body = body.on_done(Box::new(move |sent| {
        let m = &shared2.metrics;
        m.count_status(status);
        m.bytes_out.fetch_add(sent, Ordering::Relaxed);
        let elapsed = started.elapsed();
        m.latency.observe(elapsed);
        conn.completed.fetch_add(1, Ordering::Relaxed);
        if conn.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            m.connections_active.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(log) = &state.log {
            log.log(&Entry {
                client: conn.peer.ip(),
                method: method.as_str(),
                target: &target,
                version: version_name(version),
                status,
                bytes: sent,
                referer: &referer,
                user_agent: &user_agent,
                duration: elapsed,
                upstream: upstream.as_deref(),
                upstream_time,
                request_id: &request_id,
            });
        }
    }));
    Response::from_parts(parts, body)
}

fn version_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

type Dispatched = (Response<Body>, Option<String>, Option<Duration>);

async fn dispatch(
    shared: &Arc<Shared>,
    state: &Arc<State>,
    conn: &ConnCtx,
    req: Request<Incoming>,
) -> Dispatched {
    let path = req.uri().path().to_string();
    let Some(route) = state.routes.iter().find(|r| r.matches(&path)) else {
        return (not_found(), None, None);
    };
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut hidden = false;
    if let Some(root) = &route.root
        && reading
        && let Some(entry) = state.files.lookup_target(root, &path)
    {
        let r = files::serve_known(&state.files, &entry, req.method(), req.headers()).await;
        shared
            .metrics
            .static_responses
            .fetch_add(1, Ordering::Relaxed);
        return (r, None, None);
    }
    if let Some(root) = &route.root {
        let strip = if route.prefix == "/" {
            ""
        } else {
            route.prefix.as_str()
        };
        match sanitize(&path, strip, state.files.config().hidden) {
            Err(Refusal::BadRequest) => {
                return (
                    error(StatusCode::BAD_REQUEST, "bad request path\n"),
                    None,
                    None,
                );
            }
            Err(Refusal::Hidden) => hidden = true,
            Ok(safe) if reading => {
                let served = files::serve(
                    &state.files,
                    root,
                    &safe,
                    req.method(),
                    req.headers(),
                    &path,
                    req.uri().query(),
                )
                .await;
                if let Served::Response(r) = served {
                    shared
                        .metrics
                        .static_responses
                        .fetch_add(1, Ordering::Relaxed);
                    return (*r, None, None);
                }
            }
            Ok(_) => {}
        }
        if route.pool.is_none() {
            if !reading && !hidden {
                let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
                return (r, None, None);
            }
            return (not_found(), None, None);
        }
    }
    let Some(pool) = &route.pool else {
        return (not_found(), None, None);
    };

    // Dynamic: read the body within the limits, then forward.
    let limits = &state.config.limits;
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limits.max_body_bytes
    {
        return (too_large(), None, None);
    }
    let upgrade = wants_upgrade(&req);
    let (parts, incoming) = req.into_parts();
    let mut reservation = BodyReservation::new(&shared.metrics.buffered_body_bytes);
    let body = match read_body(incoming, limits, &mut reservation).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return (too_large(), None, None),
        Err(BodyError::Timeout) => {
            return (
                error(StatusCode::REQUEST_TIMEOUT, "request body timeout\n"),
                None,
                None,
            );
        }
        Err(BodyError::Broken) => {
            return (
                error(StatusCode::BAD_REQUEST, "broken request body\n"),
                None,
                None,
            );
        }
        Err(BodyError::Busy) => {
            shared
                .metrics
                .body_budget_refusals
                .fetch_add(1, Ordering::Relaxed);
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many request bodies in flight; retry shortly\n",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return (r, None, None);
        }
    };
    shared
        .metrics
        .bytes_in
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let client = Client {
        ip: conn.peer.ip(),
        tls: conn.tls,
    };
    let mut forwarded = pool.forward(parts, body, client, upgrade).await;
    drop(reservation);
    if let Some(u) = forwarded.upgraded.take() {
        *conn.upgrade.lock().expect("upgrade") = Some(u);
    }
    shared
        .metrics
        .proxied_responses
        .fetch_add(1, Ordering::Relaxed);
    (
        forwarded.response,
        forwarded.upstream,
        forwarded.upstream_time,
    )
}

fn wants_upgrade(req: &Request<Incoming>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

enum BodyError {
    TooLarge,
    Timeout,
    Broken,
    /// The server-wide body budget is used up.
    Busy,
}

/// Reads a request body within `max_body_bytes`, a chunk at least every
/// `body_timeout`, the whole within `request_timeout`, each chunk counted
/// against the server-wide `max_buffered_body_bytes` before it is kept.
async fn read_body(
    mut body: Incoming,
    limits: &crate::config::LimitsConfig,
    reservation: &mut BodyReservation<'_>,
) -> Result<Bytes, BodyError> {
    use hyper::body::Body as _;
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    let deadline = tokio::time::Instant::now() + limits.request_timeout;
    let mut buf = BytesMut::new();
    loop {
        let next = (tokio::time::Instant::now() + limits.body_timeout).min(deadline);
        let frame = match tokio::time::timeout_at(next, body.frame()).await {
            Err(_) => return Err(BodyError::Timeout),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() as u64 + data.len() as u64 > limits.max_body_bytes {
                return Err(BodyError::TooLarge);
            }
            if !reservation.grow(data.len() as u64, limits.max_buffered_body_bytes) {
                return Err(BodyError::Busy);
            }
            buf.extend_from_slice(&data);
        }
    }
}

fn error(status: StatusCode, text: &'static str) -> Response<Body> {
    proxy::error_response(status, text)
}

fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "not found\n")
}

fn too_large() -> Response<Body> {
    let mut r = error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
