//! The reverse proxy: upstream pools, load balancing, health, retries and
//! failover, queues with backpressure (the book's 로드 밸런서, 이중화, 큐).
//!
//! A request for a pool first takes a slot (`max_active` in flight); when
//! none is free it waits in a bounded queue, and when the queue is full or
//! the wait too long it is answered 503 with `Retry-After`, so overload
//! degrades service instead of collapsing it. The balancer then picks an
//! available server; a connection failure, or a failure of an idempotent
//! request, is retried on another server within the retry budget. A
//! request whose body may have reached a server is retried only if its
//! method is idempotent. Request bodies are read in full before the first
//! attempt (nginx's request buffering), which is what makes retries safe.

mod balance;
mod conn;
mod headers;
mod health;

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::Semaphore;

pub use balance::{Balancer, Candidate, hash};
pub use conn::{InFlight, Upstream, UpstreamBody, set_worker};

/// The upstream side of an upgraded (101) exchange, to be spliced to the
/// client's connection once the HTTP/1.1 machinery lets go of it.
pub type Upgraded = (hyper::upgrade::OnUpgrade, InFlight);
pub use headers::{Client, REQUEST_ID, strip_hop_by_hop};
pub use health::{Cause, Change};

use crate::body::Body;
use crate::config::{Balance, PoolConfig, UpstreamUrl};

/// Weight scale, so slow start can hand out fractions of a weight.
const WEIGHT_SCALE: u32 = 16;

/// A named group of interchangeable upstream servers.
pub struct Pool {
    /// Its name in the configuration.
    pub name: String,
    /// Its settings.
    pub config: PoolConfig,
    /// Its servers.
    pub servers: Vec<Arc<Upstream>>,
    balancer: Balancer,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    budget_milli: AtomicI64,
    /// Requests forwarded (first attempts).
    pub requests: AtomicU64,
    /// Extra attempts made.
    pub retries: AtomicU64,
    /// Requests turned away because the queue was full.
    pub queue_full: AtomicU64,
    /// Requests that waited too long in the queue.
    pub queue_timeouts: AtomicU64,
    /// Requests that found no available server.
    pub no_upstream: AtomicU64,
}

/// The outcome of forwarding, for the access log.
pub struct Forwarded {
    /// The response for the client.
    pub response: Response<Body>,
    /// The server that answered last, if any was tried.
    pub upstream: Option<String>,
    /// How long the last attempt took to produce a response head.
    pub upstream_time: Option<Duration>,
    /// Attempts made.
    pub attempts: u32,
    /// The upstream agreed to switch protocols (101).
    pub upgraded: Option<Upgraded>,
}

enum AttemptError {
    /// Nothing was sent: always safe to retry.
    NotSent(String),
    /// The request may have reached the server.
    Sent(String),
    /// No response head in time (the request was sent).
    Timeout,
}

const BUDGET_CAP: i64 = 10_000;

impl Pool {
    /// Builds a pool from its settings (checked by `Config::validate`).
    pub fn new(name: &str, config: PoolConfig) -> Result<Arc<Pool>, String> {
        let epoch = Instant::now();
        let mut servers = Vec::new();
        for s in &config.servers {
            let url = UpstreamUrl::parse(s.url())?;
            servers.push(Arc::new(Upstream::new(
                url.authority,
                s.weight(),
                epoch,
                config.max_idle,
                config.idle_timeout,
            )));
        }
        let kind = Balance::parse(&config.balance)?;
        let names: Vec<String> = servers.iter().map(|s| s.authority.clone()).collect();
        let weights: Vec<u32> = servers.iter().map(|s| s.weight).collect();
        Ok(Arc::new(Pool {
            name: name.to_string(),
            balancer: Balancer::new(kind, &names, &weights),
            slots: Arc::new(Semaphore::new(config.max_active)),
            servers,
            waiting: AtomicUsize::new(0),
            budget_milli: AtomicI64::new(BUDGET_CAP),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            queue_full: AtomicU64::new(0),
            queue_timeouts: AtomicU64::new(0),
            no_upstream: AtomicU64::new(0),
            config,
        }))
    }

    /// Starts the active health probes (if a health path is set). They stop
    /// by themselves when the pool is dropped, e.g. after a reload.
    pub fn start_health_checks(self: &Arc<Self>) {
        if self.config.health_path.is_empty() {
            return;
        }
        for i in 0..self.servers.len() {
            tokio::spawn(probe_loop(Arc::downgrade(self), i));
        }
    }

    /// Requests waiting for a slot.
    pub fn queue_len(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Requests holding a slot.
    pub fn in_flight(&self) -> usize {
        self.config.max_active - self.slots.available_permits()
    }

    fn candidates(&self, tried: &[usize]) -> Vec<Candidate> {
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.health.note_passive_expiry();
                let warmth = s.health.warmth(self.config.slow_start);
                let full = s.weight * WEIGHT_SCALE;
                Candidate {
                    eligible: s.health.available() && !tried.contains(&i),
                    weight: ((f64::from(full) * warmth) as u32).max(1),
                    active: s.active.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    fn hash_key(&self, parts: &Parts, client: &Client) -> Option<Vec<u8>> {
        match self.balancer.kind() {
            Balance::HashIp => Some(client.ip.to_canonical().to_string().into_bytes()),
            Balance::HashHeader(h) => parts.headers.get(h.as_str()).map(|v| v.as_bytes().to_vec()),
            Balance::HashCookie(name) => parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|c| c.trim().split_once('='))
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_bytes().to_vec()),
            _ => None,
        }
    }

    fn take_retry_token(&self) -> bool {
        self.budget_milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b >= 1000).then_some(b - 1000)
            })
            .is_ok()
    }

    fn deposit(&self) {
        let add = (self.config.retry_budget * 1000.0) as i64;
        let _ = self
            .budget_milli
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((b + add).min(BUDGET_CAP))
            });
    }

    /// Forwards a request (its body already read) and returns the response.
    pub async fn forward(
        self: &Arc<Self>,
        mut parts: Parts,
        body: Bytes,
        client: Client,
        upgrade: bool,
    ) -> Forwarded {
        let mut out = Forwarded {
            response: error_response(StatusCode::BAD_GATEWAY, "bad gateway\n"),
            upstream: None,
            upstream_time: None,
            attempts: 0,
            upgraded: None,
        };
        // Backpressure: a slot, or a bounded wait for one.
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.config.queue {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    self.queue_full.fetch_add(1, Ordering::Relaxed);
                    out.response = unavailable("queue full\n");
                    return out;
                }
                let waited = tokio::time::timeout(
                    self.config.queue_timeout,
                    self.slots.clone().acquire_owned(),
                )
                .await;
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                match waited {
                    Ok(Ok(p)) => p,
                    _ => {
                        self.queue_timeouts.fetch_add(1, Ordering::Relaxed);
                        out.response = unavailable("queue timeout\n");
                        return out;
                    }
                }
            }
        };
        let mut slot = Some(slot);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.deposit();

        let upgrade = if upgrade {
            parts.headers.get(header::UPGRADE).cloned()
        } else {
            None
        };
        if !parts.headers.contains_key(header::HOST)
            && let Some(a) = parts.uri.authority()
            && let Ok(v) = HeaderValue::from_str(a.as_str())
        {
            parts.headers.insert(header::HOST, v);
        }
        let key = self.hash_key(&parts, &client);
        let mut headers = parts.headers.clone();
        let request_id = headers::to_upstream(&mut headers, client, upgrade.as_ref());
        headers.remove(header::CONTENT_LENGTH);
        if !body.is_empty() || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let idempotent = matches!(
            parts.method,
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::TRACE
                | Method::PUT
                | Method::DELETE
        );

        let mut tried: Vec<usize> = Vec::new();
        loop {
            let Some(i) = self.balancer.pick(&self.candidates(&tried), key.as_deref()) else {
                if tried.is_empty() {
                    self.no_upstream.fetch_add(1, Ordering::Relaxed);
                    out.response = unavailable("no upstream server available\n");
                }
                return with_request_id(out, &request_id);
            };
            tried.push(i);
            if out.attempts > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
            }
            out.attempts += 1;
            let up = self.servers[i].clone();
            out.upstream = Some(up.authority.clone());
            let mut request = Request::new(Body::bytes(body.clone()));
            *request.method_mut() = parts.method.clone();
            *request.uri_mut() = target.parse().unwrap_or_default();
            *request.headers_mut() = headers.clone();
            let in_flight = InFlight::new(up.clone(), None);
            let started = Instant::now();
            let result = self.attempt(&up, request).await;
            out.upstream_time = Some(started.elapsed());
            let may_retry = |pool: &Pool, tried: &[usize], idempotent_only: bool| {
                (!idempotent_only || idempotent)
                    && tried.len() <= pool.config.retries as usize
                    && tried.len() < pool.servers.len()
                    && pool.take_retry_token()
            };
            match result {
                Ok((mut resp, sender)) => {
                    let status = resp.status();
                    if matches!(
                        status,
                        StatusCode::BAD_GATEWAY
                            | StatusCode::SERVICE_UNAVAILABLE
                            | StatusCode::GATEWAY_TIMEOUT
                    ) {
                        up.health.record_failure(&self.config, status.as_str());
                        if may_retry(self, &tried, true) {
                            continue;
                        }
                    }
                    if status == StatusCode::SWITCHING_PROTOCOLS && upgrade.is_some() {
                        out.upgraded = Some((hyper::upgrade::on(&mut resp), in_flight));
                        let (mut head, _) = resp.into_parts();
                        strip_hop_by_hop(&mut head.headers, true);
                        head.headers
                            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                        out.response = Response::from_parts(head, Body::empty());
                        return with_request_id(out, &request_id);
                    }
                    let (mut head, incoming) = resp.into_parts();
                    strip_hop_by_hop(&mut head.headers, false);
                    let mut in_flight = in_flight;
                    in_flight.hold(slot.take());
                    let body = UpstreamBody::new(
                        incoming,
                        Some(sender),
                        in_flight,
                        self.config.body_timeout,
                    );
                    out.response = Response::from_parts(head, Body::upstream(body));
                    return with_request_id(out, &request_id);
                }
                Err(e) => {
                    let (retry, response, failure) = match &e {
                        AttemptError::NotSent(what) => (
                            may_retry(self, &tried, false),
                            error_response(StatusCode::BAD_GATEWAY, "bad gateway\n"),
                            Some(what.clone()),
                        ),
                        AttemptError::Sent(what) => (
                            may_retry(self, &tried, true),
                            error_response(StatusCode::BAD_GATEWAY, "bad gateway\n"),
                            Some(what.clone()),
                        ),
                        AttemptError::Timeout => (
                            may_retry(self, &tried, true),
                            error_response(StatusCode::GATEWAY_TIMEOUT, "gateway timeout\n"),
                            Some("response timeout".to_string()),
                        ),
                    };
                    if let Some(what) = failure {
                        up.health.record_failure(&self.config, &what);
                        up.drop_idle();
                    }
                    out.response = response;
                    if !retry {
                        return with_request_id(out, &request_id);
                    }
                }
            }
        }
    }

    /// One try on one server: a pooled or new connection, the request, the
    /// response head.
    async fn attempt(
        &self,
        up: &Arc<Upstream>,
        request: Request<Body>,
    ) -> Result<(Response<hyper::body::Incoming>, SendRequest<Body>), AttemptError> {
        let mut sender = None;
        while let Some(mut s) = up.take_idle() {
            if s.ready().await.is_ok() {
                up.reuses.fetch_add(1, Ordering::Relaxed);
                sender = Some(s);
                break;
            }
        }
        let mut sender = match sender {
            Some(s) => s,
            None => {
                let s = up
                    .connect(self.config.connect_timeout)
                    .await
                    .map_err(|e| AttemptError::NotSent(e.to_string()))?;
                let mut s = s;
                s.ready()
                    .await
                    .map_err(|e| AttemptError::NotSent(e.to_string()))?;
                s
            }
        };
        match tokio::time::timeout(self.config.response_timeout, sender.send_request(request)).await
        {
            Err(_) => Err(AttemptError::Timeout),
            Ok(Err(e)) if e.is_canceled() => Err(AttemptError::NotSent(e.to_string())),
            Ok(Err(e)) => Err(AttemptError::Sent(e.to_string())),
            Ok(Ok(resp)) => Ok((resp, sender)),
        }
    }
}

fn with_request_id(mut out: Forwarded, id: &str) -> Forwarded {
    if let Ok(v) = HeaderValue::from_str(id) {
        out.response.headers_mut().insert(REQUEST_ID, v);
    }
    out
}

/// A plain-text error from the proxy itself.
pub fn error_response(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::bytes(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// 503 with `Retry-After`: the tier is saturated or has no server.
pub fn unavailable(text: &'static str) -> Response<Body> {
    let mut r = error_response(StatusCode::SERVICE_UNAVAILABLE, text);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

async fn probe_loop(pool: Weak<Pool>, index: usize) {
    // Spread the first probes so servers are not probed in lockstep.
    let stagger = Duration::from_millis(rand::random::<u64>() % 100);
    tokio::time::sleep(stagger).await;
    loop {
        let Some(p) = pool.upgrade() else { return };
        let up = p.servers[index].clone();
        let config = p.config.clone();
        drop(p);
        let (ok, detail) = probe(&up, &config).await;
        up.health.record_probe(&config, ok, &detail);
        if !ok {
            up.drop_idle();
        }
        tokio::time::sleep(config.health_interval).await;
    }
}

/// One health probe on a fresh connection: `GET health_path`, 2xx or 3xx
/// within the health timeout.
async fn probe(up: &Upstream, config: &PoolConfig) -> (bool, String) {
    let attempt = async {
        let mut sender = up
            .connect(config.health_timeout)
            .await
            .map_err(|e| e.to_string())?;
        let request = Request::builder()
            .uri(config.health_path.as_str())
            .header(header::HOST, up.authority.as_str())
            .header(header::USER_AGENT, "tiers-web health check")
            .header(header::CONNECTION, "close")
            .body(Body::empty())
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        if status.is_success() || status.is_redirection() {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    };
    match tokio::time::timeout(config.health_timeout, attempt).await {
        Err(_) => (false, "probe timeout".into()),
        Ok(Err(e)) => (false, e),
        Ok(Ok(())) => (true, String::new()),
    }
}
