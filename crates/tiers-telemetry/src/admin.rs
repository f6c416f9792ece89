//! The admin HTTP endpoint: `GET /health`, `/metrics`, `/status`.
//!
//! It is deliberately small (HTTP/1.1, GET only) and separate from the
//! tier's own traffic, so monitoring keeps working while the tier is
//! saturated. `/health` answers 200 or 503 with a one-line reason.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// Whether the tier can do its work.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Healthy.
    pub ok: bool,
    /// One line for humans.
    pub detail: String,
}

/// What a tier reports.
pub trait Admin: Send + Sync + 'static {
    /// `/health`.
    fn health(&self) -> Health;
    /// `/metrics`: Prometheus text.
    fn metrics(&self) -> String;
    /// `/status`: a JSON document.
    fn status(&self) -> serde_json::Value;
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    headers.insert(CONTENT_TYPE, content_type.parse().expect("valid header"));
    headers.insert(CACHE_CONTROL, "no-store".parse().expect("valid header"));
    r
}

fn route(admin: &dyn Admin, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".into(),
        );
    }
    match req.uri().path() {
        "/health" => {
            let h = admin.health();
            let status = if h.ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let word = if h.ok { "ok" } else { "unhealthy" };
            reply(
                status,
                "text/plain; charset=utf-8",
                format!("{word}: {}\n", h.detail),
            )
        }
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            admin.metrics(),
        ),
        "/status" => reply(
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&admin.status()).unwrap_or_default() + "\n",
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: try /health, /metrics or /status\n".into(),
        ),
    }
}

/// Admin connections served at once; more are closed at accept.
pub const MAX_ADMIN_CONNECTIONS: usize = 64;

/// A client must send its request head within this time.
pub const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// No admin connection lives longer than this (a slow reader included).
pub const ADMIN_CONNECTION_LIMIT: Duration = Duration::from_secs(60);

/// Serves the admin endpoint on `listener` until `shutdown` completes.
///
/// Bounded like the tiers themselves: at most [`MAX_ADMIN_CONNECTIONS`] at
/// once, each with [`ADMIN_HEADER_TIMEOUT`] to send its head and
/// [`ADMIN_CONNECTION_LIMIT`] in all, so a scraper that hangs (or a client
/// that trickles bytes) cannot pile up tasks.
pub async fn serve_admin(
    listener: TcpListener,
    admin: Arc<dyn Admin>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_ADMIN_CONNECTIONS));
    loop {
        let (stream, _) = tokio::select! {
            accepted = crate::net::accept(&listener, "admin endpoint") => accepted,
            () = &mut shutdown => return Ok(()),
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue; // Full: the connection closes as it drops.
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(route(&*admin, &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(ADMIN_HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(ADMIN_CONNECTION_LIMIT, conn).await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Fixed;

    impl Admin for Fixed {
        fn health(&self) -> Health {
            Health {
                ok: false,
                detail: "disk full".into(),
            }
        }
        fn metrics(&self) -> String {
            "tiers_x_up 1\n".into()
        }
        fn status(&self) -> serde_json::Value {
            serde_json::json!({"role": "test"})
        }
    }

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_the_three_pages() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_admin(listener, Arc::new(Fixed), async {
            let _ = stopped.await;
        }));
        let health = get(addr, "/health").await;
        assert!(health.starts_with("HTTP/1.1 503"), "{health}");
        assert!(health.contains("unhealthy: disk full"));
        let metrics = get(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200") && metrics.contains("tiers_x_up 1"));
        let status = get(addr, "/status").await;
        assert!(status.contains("application/json") && status.contains("\"role\": \"test\""));
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
        let _ = stop.send(());
    }
}
