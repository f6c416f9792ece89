//! The AP server: HTTP/1.1 in, routes to SQL over a connection pool, JSON
//! out (the book's AP server taking a request from the web server, taking
//! a connection from the pool, querying, and answering).
//!
//! On start it loads the application folder and applies its migrations.
//! Pool exhaustion and a lost database are `503 Retry-After: 1`, never a
//! hang; the pool reconnects by itself when the database is back.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

mod reply;
mod rest;

use reply::{cached_response, db_error, error, json_response, read_body};
use rest::api_request;

use crate::app::App;
use crate::cache::{Cached, ResponseCache};
use crate::guard::{self, BodyKind};
use crate::migrate;
use crate::query::{CollectError, MAX_RESPONSE_BYTES, collect_json};
use crate::routes::{Respond, Route, parse_form};

/// How to run the AP tier.
#[derive(Debug, Clone)]
pub struct ApConfig {
    /// HTTP address.
    pub listen: SocketAddr,
    /// The application folder.
    pub app: PathBuf,
    /// `postgres://host:port/db` (or key=value) of `tiers db` or PostgreSQL.
    pub db: String,
}

/// Why the AP tier cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ApError {
    /// The application folder.
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    /// A route in `app.toml`.
    #[error("{app}: route {index} ({pattern}): {problem}")]
    Route {
        /// `app.toml`'s path.
        app: String,
        /// Its position, from 0.
        index: usize,
        /// Its path pattern.
        pattern: String,
        /// What to fix.
        problem: String,
    },
    /// The database URL or connection.
    #[error("database {url}: {problem}")]
    Db {
        /// The URL as given.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// Migrations.
    #[error(transparent)]
    Migrate(#[from] migrate::MigrateError),
    /// The `[api]` section.
    #[error("{app}: {problem}")]
    Api {
        /// `app.toml`'s path.
        app: String,
        /// What to fix.
        problem: String,
    },
    /// The listen address.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

struct Shared {
    /// Prepared statements a pooled connection keeps at most.
    max_cached_statements: usize,
    routes: Vec<Route>,
    pool: Pool,
    templates: minijinja::Environment<'static>,
    name: String,
    metrics: Metrics,
    cache: ResponseCache,
    api: crate::api::Api,
    /// Other sites whose pages may write (`trusted_origins`).
    trusted_origins: Vec<String>,
}

/// What the AP tier counts.
#[derive(Default)]
struct Metrics {
    requests: AtomicU64,
    errors_4xx: AtomicU64,
    errors_5xx: AtomicU64,
    in_flight: AtomicUsize,
    db_round_trips: AtomicU64,
    pool_timeouts: AtomicU64,
    serialization_retries: AtomicU64,
    /// Requests retried on a fresh connection because the database node
    /// refused a write as a follower (its leader changed), or because a
    /// read-only GET lost its connection.
    leader_retries: AtomicU64,
    /// Pooled connections dropped because their node is no longer the leader.
    stale_connections_dropped: AtomicU64,
    /// Times a connection's statement cache was full and started over.
    statement_cache_resets: AtomicU64,
    /// Writes refused as cross-site (403).
    cross_site_refusals: AtomicU64,
    /// Results refused for exceeding the response bound.
    responses_too_large: AtomicU64,
    latency: tiers_telemetry::Histogram,
}

/// Keeps a pooled connection's prepared-statement cache within its bound:
/// when full, it starts over (dropping the statements closes them on the
/// DB). Without this, every distinct query shape (REST filters, selects,
/// orders) stays prepared on both tiers for the connection's life.
fn bound_statement_cache(shared: &Shared, client: &deadpool_postgres::Client) {
    if client.statement_cache.size() >= shared.max_cached_statements {
        client.statement_cache.clear();
        shared
            .metrics
            .statement_cache_resets
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// The AP tier's admin report.
struct ApAdmin(Arc<Shared>);

fn load(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

impl tiers_telemetry::Admin for ApAdmin {
    fn health(&self) -> tiers_telemetry::Health {
        let s = self.0.pool.status();
        tiers_telemetry::Health {
            ok: true,
            detail: format!(
                "app {}: {} of {} connections in use",
                self.0.name,
                s.size - s.available,
                s.max_size
            ),
        }
    }

    fn metrics(&self) -> String {
        let m = &self.0.metrics;
        let s = self.0.pool.status();
        let mut p = tiers_telemetry::Prometheus::new("tiers_ap");
        p.counter("requests_total", "Requests answered.", load(&m.requests))
            .counter(
                "client_errors_total",
                "Responses 400-499.",
                load(&m.errors_4xx),
            )
            .counter(
                "server_errors_total",
                "Responses 500-599.",
                load(&m.errors_5xx),
            )
            .histogram("request_duration_seconds", "Request latency.", &m.latency)
            .gauge(
                "requests_in_flight",
                "Requests being handled (the request queue).",
                m.in_flight.load(Ordering::Relaxed) as f64,
            )
            .counter(
                "db_round_trips_total",
                "Statements sent to the database.",
                load(&m.db_round_trips),
            )
            .gauge(
                "pool_in_use",
                "Database connections lent out.",
                (s.size - s.available) as f64,
            )
            .gauge("pool_size", "Database connections open.", s.size as f64)
            .gauge(
                "pool_waiting",
                "Requests waiting for a connection.",
                s.waiting as f64,
            )
            .counter(
                "pool_timeouts_total",
                "Requests that got no connection in time (503).",
                load(&m.pool_timeouts),
            )
            .counter(
                "serialization_retries_total",
                "Transactions retried after a serialization failure.",
                load(&m.serialization_retries),
            )
            .counter(
                "leader_retries_total",
                "Requests retried on a fresh connection: a write a follower refused (25006), or a read-only GET whose connection was lost.",
                load(&m.leader_retries),
            )
            .counter(
                "stale_connections_dropped_total",
                "Pooled connections dropped because their database node was no longer the leader.",
                load(&m.stale_connections_dropped),
            )
            .counter(
                "statement_cache_resets_total",
                "Times a pooled connection's prepared-statement cache was full and started over.",
                load(&m.statement_cache_resets),
            )
            .counter(
                "cross_site_refusals_total",
                "Writes refused because a page of another site sent them (403).",
                load(&m.cross_site_refusals),
            )
            .counter(
                "responses_too_large_total",
                "Results refused for exceeding the response bound.",
                load(&m.responses_too_large),
            )
            .counter(
                "cache_hits_total",
                "Responses served from the cache.",
                load(&self.0.cache.hits),
            )
            .counter(
                "cache_misses_total",
                "Cacheable requests that went to the database.",
                load(&self.0.cache.misses),
            );
        p.finish()
    }

    fn status(&self) -> Value {
        let m = &self.0.metrics;
        let s = self.0.pool.status();
        let requests = m.requests.load(Ordering::Relaxed);
        let trips = m.db_round_trips.load(Ordering::Relaxed);
        json!({
            "tier": "ap",
            "app": self.0.name,
            "routes": self.0.routes.len(),
            "requests": requests,
            "in_flight": m.in_flight.load(Ordering::Relaxed),
            "client_errors": m.errors_4xx.load(Ordering::Relaxed),
            "server_errors": m.errors_5xx.load(Ordering::Relaxed),
            "db_round_trips": trips,
            "db_round_trips_per_request": if requests == 0 { 0.0 } else { trips as f64 / requests as f64 },
            "latency_p99_ms": m.latency.quantile(0.99).map(|s| s * 1000.0),
            "pool": { "max": s.max_size, "open": s.size, "in_use": s.size - s.available, "waiting": s.waiting },
            "pool_timeouts": m.pool_timeouts.load(Ordering::Relaxed),
            "serialization_retries": m.serialization_retries.load(Ordering::Relaxed),
            "leader_retries": m.leader_retries.load(Ordering::Relaxed),
            "stale_connections_dropped": m.stale_connections_dropped.load(Ordering::Relaxed),
            "statement_cache_resets": m.statement_cache_resets.load(Ordering::Relaxed),
            "cache": { "hits": self.0.cache.hits.load(Ordering::Relaxed), "misses": self.0.cache.misses.load(Ordering::Relaxed) },
        })
    }
}

/// A started AP server.
pub struct ApServer {
    shared: Arc<Shared>,
    listener: TcpListener,
}

impl ApServer {
    /// Loads the application, applies its migrations, opens the pool and
    /// binds.
    pub async fn start(config: ApConfig) -> Result<ApServer, ApError> {
        let app = App::load(&config.app)?;
        let mut routes = Vec::new();
        for (index, r) in app.manifest.routes.iter().enumerate() {
            routes.push(Route::compile(r).map_err(|problem| ApError::Route {
                app: app.dir.join("app.toml").display().to_string(),
                index,
                pattern: r.path.clone(),
                problem,
            })?);
        }
        let templates = crate::templates::load(&app.dir.join("templates"))?;
        let ttls: Vec<u64> = routes
            .iter()
            .map(|r| if r.method == "GET" { r.cache_ttl_s } else { 0 })
            .collect();
        let writes: Vec<_> = routes.iter().map(|r| r.writes.clone()).collect();
        let cache = ResponseCache::new(
            &ttls,
            routes.iter().map(|r| r.reads.clone()).collect(),
            &writes,
        );
        for (index, r) in routes.iter().enumerate() {
            if let Respond::Template(name) = &r.respond
                && templates.get_template(name).is_err()
            {
                return Err(ApError::Route {
                    app: app.dir.join("app.toml").display().to_string(),
                    index,
                    pattern: r.pattern.clone(),
                    problem: format!("no template {name:?} in templates/"),
                });
            }
        }
        let db_err = |problem: String| ApError::Db {
            url: config.db.clone(),
            problem,
        };
        let pg: tokio_postgres::Config = config.db.parse().map_err(|e| db_err(format!("{e}")))?;
        let (mut client, conn) = pg
            .connect(NoTls)
            .await
            .map_err(|e| db_err(format!("cannot connect: {e}")))?;
        let conn_task = tokio::spawn(conn);
        migrate::apply(&mut client, &app.migrations).await?;
        let api = crate::api::Api::load(&client, &app.manifest.api)
            .await
            .map_err(|problem| ApError::Api {
                app: app.dir.join("app.toml").display().to_string(),
                problem,
            })?;
        drop(client);
        let _ = conn_task.await;
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let wait = Duration::from_millis(app.manifest.pool.acquire_timeout_ms);
        let statement_timeout = app.manifest.pool.statement_timeout_ms;
        let pool = Pool::builder(manager)
            .post_create(deadpool_postgres::Hook::async_fn(move |client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(&format!("SET statement_timeout = {statement_timeout}"))
                        .await
                        .map_err(deadpool_postgres::HookError::Backend)
                })
            }))
            .max_size(app.manifest.pool.size.max(1))
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| db_err(e.to_string()))?;
        let listener =
            tiers_telemetry::net::listen(config.listen).map_err(|source| ApError::Bind {
                addr: config.listen,
                source,
            })?;
        Ok(ApServer {
            shared: Arc::new(Shared {
                max_cached_statements: app.manifest.pool.max_cached_statements.max(1),
                routes,
                pool,
                templates,
                name: app.manifest.name.clone(),
                metrics: Metrics::default(),
                cache,
                api,
                trusted_origins: app.manifest.trusted_origins.clone(),
            }),
            listener,
        })
    }

    /// The admin report (`/health`, `/metrics`, `/status`).
    pub fn admin(&self) -> Arc<dyn tiers_telemetry::Admin> {
        Arc::new(ApAdmin(self.shared.clone()))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` completes.
    ///
    /// Bounded against clients that connect and stall: at most
    /// [`MAX_CONNECTIONS`] at once (more are closed at accept), each with
    /// [`HEADER_TIMEOUT`] to send a request head (hyper's timeout needs
    /// its timer set, which it was not before).
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (stream, _) = tokio::select! {
                a = tiers_telemetry::net::accept(&self.listener, "AP tier") => a,
                () = &mut shutdown => return,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                continue; // Full: the connection closes as it drops.
            };
            let _ = stream.set_nodelay(true);
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(counted(&shared, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
                drop(slot);
            });
        }
    }
}

/// Client connections the AP tier serves at once.
pub const MAX_CONNECTIONS: usize = 10_000;

/// A client must send a whole request head within this time; it also
/// bounds how long an idle keep-alive connection waits for the next one.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

async fn counted(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let m = &shared.metrics;
    let started = std::time::Instant::now();
    m.in_flight.fetch_add(1, Ordering::Relaxed);
    let response = handle(shared, req).await;
    m.in_flight.fetch_sub(1, Ordering::Relaxed);
    m.requests.fetch_add(1, Ordering::Relaxed);
    m.latency.observe(started.elapsed());
    match response.status().as_u16() {
        400..=499 => m.errors_4xx.fetch_add(1, Ordering::Relaxed),
        500..=599 => m.errors_5xx.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
    response
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    if path == "/health" && method == "GET" {
        return match shared.pool.get().await {
            Ok(_) => json_response(StatusCode::OK, &json!({ "ok": true })),
            Err(e) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("database: {e}"),
                None,
            ),
        };
    }
    if !guard::is_safe(&method)
        && let Err(why) = guard::check_origin(req.headers(), &shared.trusted_origins)
    {
        shared
            .metrics
            .cross_site_refusals
            .fetch_add(1, Ordering::Relaxed);
        return error(StatusCode::FORBIDDEN, &why, None);
    }
    let mut allowed = Vec::new();
    let mut found = None;
    for (i, r) in shared.routes.iter().enumerate() {
        if let Some(p) = r.matches(&path) {
            if r.method == method {
                found = Some((i, r, p));
                break;
            }
            allowed.push(r.method.clone());
        }
    }
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some((index, route, path_values)) = found else {
        if allowed.is_empty()
            && let Some(rest) = path.strip_prefix("/api/")
            && !shared.api.tables.is_empty()
        {
            let rest = rest.to_string();
            return api_request(shared, req, &method, &rest).await;
        }
        if allowed.is_empty() {
            return error(StatusCode::NOT_FOUND, "no route for this path", None);
        }
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed here",
            None,
        );
        if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
            r.headers_mut().insert(header::ALLOW, v);
        }
        return r;
    };
    // Values: query string, then body, then path (later ones win).
    let mut values: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(q) = req.uri().query() {
        match parse_form(q) {
            Some(v) => values.extend(v),
            None => return error(StatusCode::BAD_REQUEST, "malformed query string", None),
        }
    }
    let content_type = req.headers().get(header::CONTENT_TYPE).cloned();
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match guard::body_kind(content_type.as_ref(), body.len()) {
        Ok(BodyKind::Empty) => {}
        Ok(BodyKind::Json) => match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => values.extend(m),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "the body must be a JSON object",
                    None,
                );
            }
        },
        Ok(BodyKind::Form) => match std::str::from_utf8(&body).ok().and_then(parse_form) {
            Some(v) => values.extend(v),
            None => return error(StatusCode::BAD_REQUEST, "malformed form body", None),
        },
        Err(why) => return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &why, None),
    }
    values.extend(path_values.into_iter().map(|(k, v)| (k, Value::String(v))));
    let params = match route.bind(&values) {
        Ok(p) => p,
        Err((field, problem)) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("{field} {problem}"),
                Some(&field),
            );
        }
    };
    let cache = &shared.cache;
    let cacheable = route.method == "GET" && cache.enabled(index);
    let key = if cacheable {
        serde_json::to_string(&values).unwrap_or_default()
    } else {
        String::new()
    };
    if cacheable && let Some(hit) = cache.get(index, &key) {
        return cached_response(&hit, if_none_match.as_deref());
    }
    let snapshot = if cacheable {
        cache.snapshot(index)
    } else {
        Vec::new()
    };
    // A serialization failure is retried once, then reported as 503. So is
    // a write a follower refused (25006: nothing ran; the connection was
    // dropped, and a fresh one finds the leader), and a read-only GET whose
    // connection was lost. A COMMIT whose outcome is unknown (08007) never
    // is: repeating it could apply the write twice.
    let mut outcome = run(shared, route, &params).await;
    let idempotent = route.method == "GET" && route.writes.is_empty();
    let retry = match &outcome {
        Err(Failure::Db(e)) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {
            Some(&shared.metrics.serialization_retries)
        }
        Err(Failure::Db(e)) if e.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION) => {
            Some(&shared.metrics.leader_retries)
        }
        Err(Failure::Db(e)) if idempotent && e.as_db_error().is_none() => {
            Some(&shared.metrics.leader_retries)
        }
        _ => None,
    };
    if let Some(counter) = retry {
        counter.fetch_add(1, Ordering::Relaxed);
        outcome = run(shared, route, &params).await;
    }
    let rows = match outcome {
        Ok(rows) => rows,
        Err(Failure::Pool(e)) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("no database connection: {e}"),
                None,
            );
        }
        Err(Failure::Db(e)) => return db_error(&e),
        Err(Failure::TooLarge { rows }) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "the route's result exceeds {} MiB after {rows} rows: its SQL needs a LIMIT",
                    MAX_RESPONSE_BYTES >> 20
                ),
                None,
            );
        }
    };
    if !route.writes.is_empty() {
        cache.written(&route.writes);
    }
    let body = |content_type: &'static str, body: Bytes| {
        let reply = Cached {
            status: 200,
            content_type,
            etag: format!("\"{:08x}-{:x}\"", crc32c::crc32c(&body), body.len()),
            body,
        };
        if cacheable {
            cache.put(index, key.clone(), &snapshot, reply.clone());
        }
        cached_response(&reply, if_none_match.as_deref())
    };
    match &route.respond {
        Respond::Json => body(
            "application/json",
            Bytes::from(Value::Array(rows).to_string()),
        ),
        Respond::JsonOne => match rows.into_iter().next() {
            Some(row) => body("application/json", Bytes::from(row.to_string())),
            None => error(StatusCode::NOT_FOUND, "not found", None),
        },
        Respond::Template(name) => {
            let ctx = json!({
                "app": shared.name,
                "row": rows.first(),
                "rows": rows,
                "params": values,
            });
            match shared
                .templates
                .get_template(name)
                .and_then(|t| t.render(ctx))
            {
                Ok(html) => body("text/html; charset=utf-8", Bytes::from(html)),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("template {name}: {e}"),
                    None,
                ),
            }
        }
        Respond::Status(code) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::from_u16(*code).unwrap_or(StatusCode::OK);
            r
        }
        Respond::Redirect(to) => {
            // `{name}` from the first returned row, else the request's values.
            let first = rows.first();
            let location = fill(to, |name| {
                first
                    .and_then(|r| r.get(name))
                    .or_else(|| values.get(name))
                    .map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default()
            });
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
    }
}

/// `/posts/{id}` with each `{name}` replaced by its (encoded) value.
fn fill(template: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                out.push_str(&encode_segment(&value(&after[..end])));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

enum Failure {
    Pool(PoolError),
    Db(tokio_postgres::Error),
    /// The result exceeded [`MAX_RESPONSE_BYTES`] after `rows` rows.
    TooLarge {
        rows: usize,
    },
}

/// Runs the route's statements (several in one transaction); returns the
/// last one's rows as JSON objects.
async fn run(
    shared: &Shared,
    route: &Route,
    params: &[Vec<crate::query::Param>],
) -> Result<Vec<Value>, Failure> {
    let mut client = shared.pool.get().await.map_err(|e| {
        if matches!(e, PoolError::Timeout(_)) {
            shared.metrics.pool_timeouts.fetch_add(1, Ordering::Relaxed);
        }
        Failure::Pool(e)
    })?;
    let result = run_on(shared, &mut client, route, params).await;
    if let Err(Failure::Db(e)) = &result {
        drop_if_stale(shared, client, e);
    }
    result
}

/// A pooled connection to a node that refused a write as a follower, or
/// that reported the leader changed mid-commit, is dropped instead of going
/// back to the pool: every later write on it would be refused too, and a
/// new connection (`target_session_attrs=read-write`) finds the leader.
fn drop_if_stale(shared: &Shared, client: deadpool_postgres::Object, e: &tokio_postgres::Error) {
    if matches!(
        e.code().map(SqlState::code),
        Some("25006" | "08007" | "57P01")
    ) {
        shared
            .metrics
            .stale_connections_dropped
            .fetch_add(1, Ordering::Relaxed);
        drop(deadpool_postgres::Object::take(client));
    }
}

async fn run_on(
    shared: &Shared,
    client: &mut deadpool_postgres::Object,
    route: &Route,
    params: &[Vec<crate::query::Param>],
) -> Result<Vec<Value>, Failure> {
    shared
        .metrics
        .db_round_trips
        .fetch_add(route.statements.len() as u64, Ordering::Relaxed);
    let collected = |r: Result<Vec<Value>, CollectError>| {
        r.map_err(|e| match e {
            CollectError::Db(e) => Failure::Db(e),
            CollectError::TooLarge { rows } => {
                shared
                    .metrics
                    .responses_too_large
                    .fetch_add(1, Ordering::Relaxed);
                Failure::TooLarge { rows }
            }
        })
    };
    if route.statements.len() == 1 {
        let stmt = client
            .prepare_cached(&route.statements[0].text)
            .await
            .map_err(Failure::Db)?;
        let rows = client
            .query_raw(&stmt, params[0].iter())
            .await
            .map_err(Failure::Db)?;
        return collected(collect_json(rows, MAX_RESPONSE_BYTES).await);
    }
    let tx = client.transaction().await.map_err(Failure::Db)?;
    let mut last = Vec::new();
    for (s, p) in route.statements.iter().zip(params) {
        let stmt = tx.prepare_cached(&s.text).await.map_err(Failure::Db)?;
        let rows = tx.query_raw(&stmt, p.iter()).await.map_err(Failure::Db)?;
        // A failed bound rolls back: nothing half-done is committed.
        last = collected(collect_json(rows, MAX_RESPONSE_BYTES).await)?;
    }
    tx.commit().await.map_err(Failure::Db)?;
    Ok(last)
}
