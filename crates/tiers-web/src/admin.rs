//! The web tier's admin report: `/health`, `/metrics` and `/status`.
//!
//! Health is bad when a pool has no server available (every request for it
//! would get 503). Status shows each upstream's state and which kind of
//! check, passive or active, last changed it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;
use tiers_telemetry::{Admin, Health, Prometheus};

use crate::server::Shared;

/// The report of one running web tier.
pub struct WebAdmin {
    shared: Arc<Shared>,
}

impl WebAdmin {
    pub(crate) fn new(shared: Arc<Shared>) -> WebAdmin {
        WebAdmin { shared }
    }
}

fn load(a: &std::sync::atomic::AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

impl Admin for WebAdmin {
    fn health(&self) -> Health {
        let state = self.shared.state();
        let dead: Vec<&str> = state
            .pools
            .values()
            .filter(|p| !p.servers.iter().any(|s| s.health.available()))
            .map(|p| p.name.as_str())
            .collect();
        if dead.is_empty() {
            Health {
                ok: true,
                detail: format!(
                    "{} connections, {} pools",
                    self.shared.metrics.connections_open.load(Ordering::Relaxed),
                    state.pools.len()
                ),
            }
        } else {
            Health {
                ok: false,
                detail: format!("no server available in pool(s) {}", dead.join(", ")),
            }
        }
    }

    fn metrics(&self) -> String {
        let m = &self.shared.metrics;
        let state = self.shared.state();
        let mut p = Prometheus::new("tiers_web");
        let statuses: Vec<(String, f64)> = m
            .statuses()
            .into_iter()
            .map(|(s, n)| (s.to_string(), n as f64))
            .collect();
        p.labelled(
            "requests_total",
            "Responses sent, by status code.",
            "counter",
            "code",
            &statuses,
        )
        .histogram(
            "request_duration_seconds",
            "From request head to the last body byte.",
            &m.latency,
        )
        .gauge(
            "connections_open",
            "Client connections open.",
            m.connections_open.load(Ordering::Relaxed) as f64,
        )
        .gauge(
            "connections_active",
            "Client connections with a request in flight.",
            m.connections_active.load(Ordering::Relaxed) as f64,
        )
        .gauge(
            "connections_idle",
            "Client connections waiting for their next request.",
            m.connections_open
                .load(Ordering::Relaxed)
                .saturating_sub(m.connections_active.load(Ordering::Relaxed)) as f64,
        )
        .counter(
            "connections_accepted_total",
            "Client connections accepted.",
            load(&m.connections_accepted),
        )
        .counter(
            "connections_refused_total",
            "Connections refused by max_connections or the per-IP limit.",
            load(&m.connections_refused),
        )
        .counter(
            "tls_failures_total",
            "Failed TLS handshakes.",
            load(&m.tls_failures),
        )
        .counter(
            "sent_bytes_total",
            "Response body bytes sent.",
            load(&m.bytes_out),
        )
        .counter(
            "received_bytes_total",
            "Request body bytes received.",
            load(&m.bytes_in),
        )
        .counter(
            "static_responses_total",
            "Responses served from files.",
            load(&m.static_responses),
        )
        .counter(
            "proxied_responses_total",
            "Responses for requests forwarded to pools.",
            load(&m.proxied_responses),
        )
        .counter(
            "file_cache_hits_total",
            "File lookups answered from the cache.",
            load(&state.files.hits),
        )
        .counter(
            "file_cache_misses_total",
            "File lookups that went to the disk.",
            load(&state.files.misses),
        )
        .gauge(
            "buffered_body_bytes",
            "Request body bytes buffered now, all connections together.",
            m.buffered_body_bytes.load(Ordering::Relaxed) as f64,
        )
        .counter(
            "body_budget_refusals_total",
            "Requests refused (503) because the request body budget was used up.",
            load(&m.body_budget_refusals),
        )
        .counter(
            "send_timeouts_total",
            "Connections closed because the client stopped reading (send_timeout).",
            load(&m.send_timeouts),
        )
        .counter(
            "compressions_total",
            "Files compressed on the fly (once per file and coding).",
            load(&state.files.compressions),
        )
        .gauge(
            "file_cache_bytes",
            "File contents held in memory.",
            state.files.content_bytes() as f64,
        )
        .counter("reloads_total", "Configuration reloads.", load(&m.reloads));
        let per_pool = |f: &dyn Fn(&crate::proxy::Pool) -> f64| -> Vec<(String, f64)> {
            state
                .pools
                .values()
                .map(|p| (p.name.clone(), f(p)))
                .collect()
        };
        p.labelled(
            "pool_queue_length",
            "Requests waiting for a pool slot.",
            "gauge",
            "pool",
            &per_pool(&|p| p.queue_len() as f64),
        )
        .labelled(
            "pool_in_flight",
            "Requests holding a pool slot.",
            "gauge",
            "pool",
            &per_pool(&|p| p.in_flight() as f64),
        )
        .labelled(
            "pool_requests_total",
            "Requests forwarded to the pool.",
            "counter",
            "pool",
            &per_pool(&|p| load(&p.requests)),
        )
        .labelled(
            "pool_retries_total",
            "Attempts retried on another server.",
            "counter",
            "pool",
            &per_pool(&|p| load(&p.retries)),
        )
        .labelled(
            "pool_rejected_total",
            "Requests answered 503 because the queue was full or too slow.",
            "counter",
            "pool",
            &per_pool(&|p| load(&p.queue_full) + load(&p.queue_timeouts)),
        );
        let per_server = |f: &dyn Fn(&crate::proxy::Upstream) -> f64| -> Vec<(String, f64)> {
            state
                .pools
                .values()
                .flat_map(|p| {
                    p.servers
                        .iter()
                        .map(move |s| (format!("{}/{}", p.name, s.authority), f(s)))
                })
                .collect()
        };
        p.labelled(
            "upstream_up",
            "1 when the server gets requests, 0 when health checks took it out.",
            "gauge",
            "server",
            &per_server(&|s| f64::from(u8::from(s.health.available()))),
        )
        .labelled(
            "upstream_active",
            "Requests in flight to the server.",
            "gauge",
            "server",
            &per_server(&|s| s.active.load(Ordering::Relaxed) as f64),
        )
        .labelled(
            "upstream_idle_connections",
            "Keep-alive connections to the server waiting for reuse.",
            "gauge",
            "server",
            &per_server(&|s| s.idle_count() as f64),
        )
        .labelled(
            "upstream_requests_total",
            "Attempts sent to the server.",
            "counter",
            "server",
            &per_server(&|s| load(&s.requests)),
        )
        .labelled(
            "upstream_failures_total",
            "Attempts that failed (connect, timeout, 502-504).",
            "counter",
            "server",
            &per_server(&|s| load(&s.health.failures_total)),
        )
        .labelled(
            "upstream_connects_total",
            "Connections opened to the server.",
            "counter",
            "server",
            &per_server(&|s| load(&s.connects)),
        );
        p.finish()
    }

    fn status(&self) -> serde_json::Value {
        let m = &self.shared.metrics;
        let state = self.shared.state();
        let pools: serde_json::Map<String, serde_json::Value> = state
            .pools
            .values()
            .map(|p| {
                let servers: Vec<serde_json::Value> = p
                    .servers
                    .iter()
                    .map(|s| {
                        let change = s.health.last_change().map(|c| {
                            json!({
                                "up": c.up,
                                "by": c.cause.name(),
                                "at": httpdate::fmt_http_date(c.at),
                                "detail": c.detail,
                            })
                        });
                        json!({
                            "server": s.authority,
                            "weight": s.weight,
                            "state": if s.health.available() { "up" } else { "down" },
                            "active_check_down": s.health.active_down(),
                            "passive_down_ms": s.health.passive_remaining().as_millis() as u64,
                            "warmth": s.health.warmth(p.config.slow_start),
                            "last_change": change,
                            "active": s.active.load(Ordering::Relaxed),
                            "idle_connections": s.idle_count(),
                            "requests": s.requests.load(Ordering::Relaxed),
                            "failures": s.health.failures_total.load(Ordering::Relaxed),
                            "probes": s.health.probes.load(Ordering::Relaxed),
                            "probes_failed": s.health.probes_failed.load(Ordering::Relaxed),
                        })
                    })
                    .collect();
                (
                    p.name.clone(),
                    json!({
                        "balance": p.config.balance,
                        "queue_length": p.queue_len(),
                        "in_flight": p.in_flight(),
                        "requests": p.requests.load(Ordering::Relaxed),
                        "retries": p.retries.load(Ordering::Relaxed),
                        "queue_full": p.queue_full.load(Ordering::Relaxed),
                        "queue_timeouts": p.queue_timeouts.load(Ordering::Relaxed),
                        "no_upstream": p.no_upstream.load(Ordering::Relaxed),
                        "servers": servers,
                    }),
                )
            })
            .collect();
        let statuses: serde_json::Map<String, serde_json::Value> = m
            .statuses()
            .into_iter()
            .map(|(s, n)| (s.to_string(), json!(n)))
            .collect();
        json!({
            "tier": "web",
            "version": env!("CARGO_PKG_VERSION"),
            "listen": state.config.listen.to_string(),
            "uptime_s": self.shared.started.elapsed().as_secs(),
            "requests": m.requests(),
            "by_status": statuses,
            "latency_p50_ms": m.latency.quantile(0.5).map(|s| s * 1000.0),
            "latency_p99_ms": m.latency.quantile(0.99).map(|s| s * 1000.0),
            "connections": {
                "open": m.connections_open.load(Ordering::Relaxed),
                "active": m.connections_active.load(Ordering::Relaxed),
                "parked": m.connections_parked.load(Ordering::Relaxed),
                "accepted": m.connections_accepted.load(Ordering::Relaxed),
                "refused": m.connections_refused.load(Ordering::Relaxed),
            },
            "bytes": { "sent": m.bytes_out.load(Ordering::Relaxed), "received": m.bytes_in.load(Ordering::Relaxed) },
            "file_cache": {
                "entries": state.files.entries(),
                "bytes": state.files.content_bytes(),
                "hits": state.files.hits.load(Ordering::Relaxed),
                "misses": state.files.misses.load(Ordering::Relaxed),
            },
            "reloads": m.reloads.load(Ordering::Relaxed),
            "pools": pools,
        })
    }
}
