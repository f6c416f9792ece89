//! Test helpers: a web tier on a loopback port, small upstream servers that
//! can be stopped and restarted, and a raw HTTP/1.1 client that sends
//! exactly the bytes it is given.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tiers_web::{Config, Handle, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running web tier.
pub struct Web {
    pub addr: SocketAddr,
    pub handle: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Web {
    pub async fn start(mut config: Config) -> Web {
        config.listen = "127.0.0.1:0".parse().unwrap();
        let server = Server::bind(config).await.expect("web tier starts");
        let addr = server.local_addr();
        let handle = server.handle();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        Web {
            addr,
            handle,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn status(&self) -> serde_json::Value {
        self.handle.admin().status()
    }

    pub fn metrics(&self) -> String {
        self.handle.admin().metrics()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.task.take().unwrap().await;
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` as is and reads until the server closes (or 10 s).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    out
}

/// Parses one HTTP/1.1 response (Content-Length, chunked or to the end).
pub fn parse(bytes: &[u8]) -> Reply {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = HashMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let rest = &bytes[end + 4..];
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        let mut body = Vec::new();
        let mut r = rest;
        loop {
            let nl = r.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(String::from_utf8_lossy(&r[..nl]).trim(), 16).unwrap();
            r = &r[nl + 2..];
            if size == 0 {
                break;
            }
            body.extend_from_slice(&r[..size]);
            r = &r[size + 2..];
        }
        body
    } else if let Some(len) = headers.get("content-length") {
        let len: usize = len.parse().unwrap();
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A GET with extra header lines (each ending in \r\n).
pub async fn get(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n");
    parse(&raw(addr, req.as_bytes()).await)
}

/// A request with a method and body.
pub async fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    parse(&raw(addr, req.as_bytes()).await)
}

/// A small upstream: answers `name` (and echoes what it saw), can be made
/// slow, unhealthy, or stopped and started again on the same port.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicU64>,
    pub active: Arc<AtomicUsize>,
    pub healthy: Arc<AtomicBool>,
    pub delay_ms: Arc<AtomicU64>,
    task: Option<JoinHandle<()>>,
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut b = Backend {
            name: name.into(),
            addr,
            hits: Arc::new(AtomicU64::new(0)),
            active: Arc::new(AtomicUsize::new(0)),
            healthy: Arc::new(AtomicBool::new(true)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            task: None,
        };
        b.task = Some(tokio::spawn(b.serve(listener)));
        b
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&self, listener: TcpListener) -> impl std::future::Future<Output = ()> + use<> {
        let name = self.name.clone();
        let hits = self.hits.clone();
        let active = self.active.clone();
        let healthy = self.healthy.clone();
        let delay = self.delay_ms.clone();
        async move {
            // Dropping the set (when this task is aborted) aborts every
            // connection: a crashed server.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                while conns.try_join_next().is_some() {}
                let (name, hits, active, healthy, delay) = (
                    name.clone(),
                    hits.clone(),
                    active.clone(),
                    healthy.clone(),
                    delay.clone(),
                );
                conns.spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let (name, hits, active, healthy, delay) = (
                            name.clone(),
                            hits.clone(),
                            active.clone(),
                            healthy.clone(),
                            delay.clone(),
                        );
                        async move {
                            Ok::<_, Infallible>(
                                answer(req, &name, &hits, &active, &healthy, &delay).await,
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        }
    }

    /// Stops listening and closes every connection (a crashed server).
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.task = Some(tokio::spawn(self.serve(listener)));
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn answer(
    mut req: Request<Incoming>,
    name: &str,
    hits: &AtomicU64,
    active: &AtomicUsize,
    healthy: &AtomicBool,
    delay: &AtomicU64,
) -> Response<Full<Bytes>> {
    if req.headers().get("upgrade").is_some_and(|v| v == "echo") {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(io) = upgrade.await {
                let mut io = TokioIo::new(io);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut().insert("upgrade", "echo".parse().unwrap());
        r.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        return r;
    }
    if req.uri().path() == "/health" {
        let ok = healthy.load(Ordering::SeqCst);
        let mut r = Response::new(Full::new(Bytes::from(if ok { "ok" } else { "sick" })));
        if !ok {
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        return r;
    }
    hits.fetch_add(1, Ordering::SeqCst);
    active.fetch_add(1, Ordering::SeqCst);
    let d = delay.load(Ordering::SeqCst);
    if d > 0 {
        tokio::time::sleep(Duration::from_millis(d)).await;
    }
    let mut seen = String::new();
    for (k, v) in req.headers() {
        seen.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
    }
    let method = req.method().to_string();
    let target = req.uri().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    active.fetch_sub(1, Ordering::SeqCst);
    let text = format!(
        "{name}\n{method} {target}\nbody={}\n{seen}",
        String::from_utf8_lossy(&body)
    );
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut().insert("x-backend", name.parse().unwrap());
    r
}
