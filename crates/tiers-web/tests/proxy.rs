//! The reverse proxy against real upstream servers: forwarding, every
//! balancing method, passive and active health, failover under load,
//! retries, queues, WebSocket upgrades and reloads.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Backend, Web, get, parse, raw, send};
use tiers_web::Config;
use tiers_web::config::{PoolConfig, RouteConfig, ServerSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pool(servers: &[&Backend]) -> PoolConfig {
    PoolConfig {
        servers: servers.iter().map(|b| ServerSpec::Url(b.url())).collect(),
        ..PoolConfig::default()
    }
}

fn with_pool(p: PoolConfig) -> Config {
    Config {
        pools: BTreeMap::from([("default".to_string(), p)]),
        ..Config::default()
    }
}

fn server_state(web: &Web, authority: SocketAddr) -> serde_json::Value {
    let status = web.status();
    status["pools"]["default"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == authority.to_string())
        .unwrap()
        .clone()
}

/// Waits until `check` holds, for at most `limit`; returns how long it took.
async fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn forwards_with_client_and_trace_headers() {
    let b = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("here.txt"), "static").unwrap();
    let mut c = with_pool(pool(&[&b]));
    c.root = Some(dir.path().to_path_buf());
    let web = Web::start(c).await;

    // try_files: the file is served from disk, the rest goes upstream.
    assert_eq!(get(web.addr, "/here.txt", "").await.text(), "static");
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);
    let r = get(
        web.addr,
        "/api/items?x=1&y=%20",
        "X-Custom: kept\r\nKeep-Alive: timeout=5\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-backend"), Some("a"));
    let text = r.text();
    assert!(text.contains("GET /api/items?x=1&y=%20"), "{text}");
    assert!(text.contains("x-forwarded-for: 127.0.0.1"), "{text}");
    assert!(text.contains("x-forwarded-proto: http"), "{text}");
    assert!(text.contains("x-forwarded-host: test"), "{text}");
    assert!(
        text.contains("forwarded: for=127.0.0.1;proto=http;host=\"test\""),
        "{text}"
    );
    assert!(text.contains("host: test"), "{text}");
    assert!(text.contains("x-custom: kept"), "{text}");
    assert!(
        !text.contains("keep-alive: timeout"),
        "hop-by-hop headers stay here: {text}"
    );
    assert!(text.contains("traceparent: 00-"), "{text}");
    let rid = r.header("x-request-id").unwrap();
    assert!(text.contains(&format!("x-request-id: {rid}")), "{text}");

    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = get(
        web.addr,
        "/t",
        &format!("traceparent: {trace}\r\nX-Request-Id: req-7\r\n"),
    )
    .await;
    assert!(
        r.text()
            .contains("traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-")
    );
    assert_eq!(r.header("x-request-id"), Some("req-7"));

    let r = send(web.addr, "POST", "/form", "name=tiers").await;
    assert!(r.text().contains("body=name=tiers"), "{}", r.text());
    // A file path with a POST goes to the application.
    let r = send(web.addr, "POST", "/here.txt", "x").await;
    assert_eq!(r.header("x-backend"), Some("a"));
    web.stop().await;
}

#[tokio::test]
async fn routes_map_prefixes_to_roots_and_pools() {
    let api = Backend::start("api").await;
    let app = Backend::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.css"), "css").unwrap();
    let mut c = with_pool(pool(&[&app]));
    c.pools.insert("api".into(), pool(&[&api]));
    c.routes = vec![
        RouteConfig {
            prefix: "/api/".into(),
            root: None,
            pool: Some("api".into()),
        },
        RouteConfig {
            prefix: "/static/".into(),
            root: Some(dir.path().to_path_buf()),
            pool: None,
        },
    ];
    let web = Web::start(c).await;
    assert_eq!(
        get(web.addr, "/api/x", "").await.header("x-backend"),
        Some("api")
    );
    assert_eq!(
        get(web.addr, "/api", "").await.header("x-backend"),
        Some("api")
    );
    assert_eq!(
        get(web.addr, "/apix", "").await.header("x-backend"),
        Some("app")
    );
    assert_eq!(get(web.addr, "/static/app.css", "").await.text(), "css");
    assert_eq!(get(web.addr, "/static/none.css", "").await.status, 404);
    assert_eq!(
        get(web.addr, "/page", "").await.header("x-backend"),
        Some("app")
    );
    web.stop().await;
}

async fn spread(web: &Web, n: usize, extra: impl Fn(usize) -> String) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for i in 0..n {
        let r = get(web.addr, "/", &extra(i)).await;
        assert_eq!(r.status, 200);
        *counts
            .entry(r.header("x-backend").unwrap().to_string())
            .or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn weighted_round_robin_splits_by_weight() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut p = pool(&[]);
    p.servers = vec![
        ServerSpec::Weighted {
            url: a.url(),
            weight: 3,
        },
        ServerSpec::Url(b.url()),
    ];
    let web = Web::start(with_pool(p)).await;
    let counts = spread(&web, 200, |_| String::new()).await;
    assert_eq!(counts["a"], 150, "{counts:?}");
    assert_eq!(counts["b"], 50, "{counts:?}");
    web.stop().await;
}

#[tokio::test]
async fn least_connections_avoids_the_busy_server() {
    let slow = Backend::start("slow").await;
    let fast = Backend::start("fast").await;
    slow.delay_ms.store(300, Ordering::SeqCst);
    let mut p = pool(&[&slow, &fast]);
    p.balance = "least_conn".into();
    let web = Web::start(with_pool(p)).await;
    let addr = web.addr;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut names = Vec::new();
            for _ in 0..5 {
                names.push(
                    get(addr, "/", "")
                        .await
                        .header("x-backend")
                        .unwrap()
                        .to_string(),
                );
            }
            names
        }));
    }
    let mut counts = BTreeMap::new();
    for t in tasks {
        for n in t.await.unwrap() {
            *counts.entry(n).or_insert(0usize) += 1;
        }
    }
    assert!(
        counts["fast"] >= 3 * counts.get("slow").copied().unwrap_or(0),
        "least_conn should send most requests to the idle server: {counts:?}"
    );
    web.stop().await;
}

#[tokio::test]
async fn consistent_hashing_is_sticky() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let c = Backend::start("c").await;
    for balance in ["hash_header:X-User", "hash_cookie:sid"] {
        let mut p = pool(&[&a, &b, &c]);
        p.balance = balance.into();
        let web = Web::start(with_pool(p)).await;
        let header = |i: usize| {
            if balance.starts_with("hash_header") {
                format!("X-User: user{i}\r\n")
            } else {
                format!("Cookie: theme=dark; sid=s{i}\r\n")
            }
        };
        let mut first = Vec::new();
        for i in 0..60 {
            first.push(
                get(web.addr, "/", &header(i))
                    .await
                    .header("x-backend")
                    .unwrap()
                    .to_string(),
            );
        }
        for (i, was) in first.iter().enumerate() {
            let again = get(web.addr, "/", &header(i)).await;
            assert_eq!(
                again.header("x-backend").unwrap(),
                was,
                "{balance}: key {i} moved"
            );
        }
        let distinct: std::collections::BTreeSet<_> = first.iter().collect();
        assert_eq!(
            distinct.len(),
            3,
            "{balance}: keys spread over every server"
        );
        web.stop().await;
    }
    let mut p = pool(&[&a, &b, &c]);
    p.balance = "hash_ip".into();
    let web = Web::start(with_pool(p)).await;
    let counts = spread(&web, 20, |_| String::new()).await;
    assert_eq!(counts.len(), 1, "one client IP, one server: {counts:?}");
    web.stop().await;
}

#[tokio::test]
async fn passive_checks_take_a_dead_server_out_and_back() {
    let mut a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut p = pool(&[&a, &b]);
    p.max_fails = 1;
    p.fail_timeout = Duration::from_millis(500);
    let web = Web::start(with_pool(p)).await;
    a.stop().await;
    // Every request still succeeds: a refused connection is retried on b.
    for _ in 0..10 {
        let r = get(web.addr, "/", "").await;
        assert_eq!((r.status, r.header("x-backend")), (200, Some("b")));
    }
    let s = server_state(&web, a.addr);
    assert_eq!(s["state"], "down", "{s}");
    assert_eq!(s["last_change"]["by"], "passive", "{s}");
    assert_eq!(s["failures"], 1, "marked down after the first failure: {s}");
    a.restart().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let counts = spread(&web, 10, |_| String::new()).await;
    assert!(
        counts.get("a").copied().unwrap_or(0) >= 4,
        "a is back: {counts:?}"
    );
    let s = server_state(&web, a.addr);
    assert_eq!(
        (s["state"].as_str(), s["last_change"]["up"].as_bool()),
        (Some("up"), Some(true))
    );
    web.stop().await;
}

#[tokio::test]
async fn active_checks_follow_rise_and_fall() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut p = pool(&[&a, &b]);
    p.health_path = "/health".into();
    p.health_interval = Duration::from_millis(50);
    p.fall = 2;
    p.rise = 3;
    let web = Web::start(with_pool(p)).await;
    a.healthy.store(false, Ordering::SeqCst);
    let took = within(Duration::from_secs(2), || {
        server_state(&web, a.addr)["state"] == "down"
    })
    .await;
    let took = took.expect("marked down by probes");
    // fall=2 probes 50 ms apart: well under a second.
    assert!(took < Duration::from_millis(800), "{took:?}");
    let s = server_state(&web, a.addr);
    assert_eq!(s["last_change"]["by"], "active", "{s}");
    let before = a.hits.load(Ordering::SeqCst);
    let counts = spread(&web, 10, |_| String::new()).await;
    assert_eq!(counts.get("b"), Some(&10));
    assert_eq!(
        a.hits.load(Ordering::SeqCst),
        before,
        "no traffic to a down server"
    );
    a.healthy.store(true, Ordering::SeqCst);
    let took = within(Duration::from_secs(2), || {
        server_state(&web, a.addr)["state"] == "up"
    })
    .await;
    assert!(took.expect("marked up by probes") < Duration::from_millis(800));
    let s = server_state(&web, a.addr);
    assert_eq!(
        (
            s["last_change"]["by"].as_str(),
            s["last_change"]["up"].as_bool()
        ),
        (Some("active"), Some(true))
    );
    assert!(
        web.metrics()
            .contains("tiers_web_upstream_up{server=\"default/")
    );
    web.stop().await;
}

#[tokio::test]
async fn slow_start_ramps_a_recovered_server() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut p = pool(&[&a, &b]);
    p.health_path = "/health".into();
    p.health_interval = Duration::from_millis(30);
    p.fall = 1;
    p.rise = 1;
    p.slow_start = Duration::from_secs(30);
    let web = Web::start(with_pool(p)).await;
    a.healthy.store(false, Ordering::SeqCst);
    within(Duration::from_secs(2), || {
        server_state(&web, a.addr)["state"] == "down"
    })
    .await
    .unwrap();
    a.healthy.store(true, Ordering::SeqCst);
    within(Duration::from_secs(2), || {
        server_state(&web, a.addr)["state"] == "up"
    })
    .await
    .unwrap();
    let counts = spread(&web, 40, |_| String::new()).await;
    assert!(
        counts.get("a").copied().unwrap_or(0) <= 4,
        "warming up: {counts:?}"
    );
    web.stop().await;
}

#[tokio::test]
async fn failover_under_load_loses_no_idempotent_request() {
    let mut a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut p = pool(&[&a, &b]);
    p.max_fails = 2;
    p.fail_timeout = Duration::from_secs(30);
    p.health_path = "/health".into();
    p.health_interval = Duration::from_millis(100);
    p.fall = 2;
    p.rise = 2;
    let web = Web::start(with_pool(p)).await;
    let addr = web.addr;
    let errors = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut clients = Vec::new();
    for _ in 0..6 {
        let (errors, done) = (errors.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            // Bounded in count and time.
            for _ in 0..2000 {
                if Instant::now() > deadline {
                    break;
                }
                let r = get(addr, "/load", "").await;
                if r.status != 200 {
                    errors.fetch_add(1, Ordering::SeqCst);
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        a.hits.load(Ordering::SeqCst) > 20,
        "a served its share before the kill"
    );
    a.stop().await;
    let marked = within(Duration::from_secs(2), || {
        server_state(&web, a.addr)["state"] == "down"
    })
    .await;
    let marked = marked.expect("the dead server is marked down");
    for c in clients {
        c.await.unwrap();
    }
    let total = done.load(Ordering::SeqCst);
    assert!(total > 200, "load ran: {total}");
    assert_eq!(
        errors.load(Ordering::SeqCst),
        0,
        "no errors in {total} GETs"
    );
    let s = server_state(&web, a.addr);
    assert!(
        marked < Duration::from_millis(500),
        "marked down {marked:?} after the kill"
    );
    assert!(
        matches!(s["last_change"]["by"].as_str(), Some("passive" | "active")),
        "{s}"
    );
    // Bring it back: active checks mark it up again.
    a.restart().await;
    let back = within(Duration::from_secs(3), || {
        server_state(&web, a.addr)["state"] == "up"
    })
    .await;
    assert!(back.is_some(), "marked up after it returned");
    web.stop().await;
}

/// An upstream that reads a request and hangs up without answering, like
/// a server that crashed while handling it.
async fn black_hole() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                s.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn only_idempotent_requests_are_retried_after_sending() {
    let (hole, seen) = black_hole().await;
    let b = Backend::start("b").await;
    let mut p = pool(&[&b]);
    p.servers
        .insert(0, ServerSpec::Url(format!("http://{hole}")));
    p.max_fails = 0; // keep the hole in rotation
    let web = Web::start(with_pool(p)).await;
    // Round robin starts at the hole: the GET is retried on b.
    let r = get(web.addr, "/", "").await;
    assert_eq!((r.status, r.header("x-backend")), (200, Some("b")));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    // The next request goes to b, the one after to the hole again.
    assert_eq!(get(web.addr, "/", "").await.status, 200);
    let before = b.hits.load(Ordering::SeqCst);
    let r = send(web.addr, "POST", "/orders", "buy=1").await;
    assert_eq!(
        r.status, 502,
        "a POST that may have arrived is never replayed"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    assert_eq!(
        b.hits.load(Ordering::SeqCst),
        before,
        "b never saw the POST"
    );
    web.stop().await;
}

#[tokio::test]
async fn refused_connections_are_retried_for_any_method() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let b = Backend::start("b").await;
    let mut p = pool(&[&b]);
    p.servers
        .insert(0, ServerSpec::Url(format!("http://{dead_addr}")));
    p.max_fails = 0;
    let web = Web::start(with_pool(p)).await;
    for _ in 0..4 {
        let r = send(web.addr, "POST", "/orders", "buy=1").await;
        assert_eq!(
            (r.status, r.header("x-backend")),
            (200, Some("b")),
            "nothing was sent, so retry"
        );
    }
    assert_eq!(
        b.hits.load(Ordering::SeqCst),
        4,
        "each POST reached b exactly once"
    );
    web.stop().await;
}

#[tokio::test]
async fn timeouts_answer_504() {
    let b = Backend::start("b").await;
    b.delay_ms.store(1000, Ordering::SeqCst);
    let mut p = pool(&[&b]);
    p.response_timeout = Duration::from_millis(100);
    p.retries = 0;
    let web = Web::start(with_pool(p)).await;
    let started = Instant::now();
    let r = get(web.addr, "/", "").await;
    assert_eq!(r.status, 504);
    assert!(started.elapsed() < Duration::from_millis(900));
    web.stop().await;
}

#[tokio::test]
async fn a_full_queue_answers_503_and_recovers() {
    let b = Backend::start("b").await;
    b.delay_ms.store(400, Ordering::SeqCst);
    let mut p = pool(&[&b]);
    p.max_active = 1;
    p.queue = 1;
    let web = Web::start(with_pool(p)).await;
    let addr = web.addr;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        tasks.push(tokio::spawn(async move { get(addr, "/", "").await }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ok = 0;
    let mut rejected = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => ok += 1,
            503 => {
                assert_eq!(r.header("retry-after"), Some("1"));
                rejected += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(
        (ok, rejected),
        (2, 3),
        "one in flight, one queued, the rest turned away"
    );
    let status = web.status();
    assert_eq!(status["pools"]["default"]["queue_full"], 3);
    assert!(
        web.metrics()
            .contains("tiers_web_pool_queue_length{pool=\"default\"} 0")
    );
    b.delay_ms.store(0, Ordering::SeqCst);
    assert_eq!(get(web.addr, "/", "").await.status, 200, "recovers");
    web.stop().await;
}

#[tokio::test]
async fn no_server_available_is_503() {
    let mut a = Backend::start("a").await;
    let mut p = pool(&[&a]);
    p.max_fails = 1;
    p.fail_timeout = Duration::from_secs(30);
    let web = Web::start(with_pool(p)).await;
    a.stop().await;
    assert_eq!(get(web.addr, "/", "").await.status, 502);
    let r = get(web.addr, "/", "").await;
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
    let admin = web.handle.admin();
    assert!(!admin.health().ok);
    web.stop().await;
}

#[tokio::test]
async fn websocket_upgrades_pass_through() {
    let b = Backend::start("b").await;
    let web = Web::start(with_pool(pool(&[&b]))).await;
    let mut s = tokio::net::TcpStream::connect(web.addr).await.unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: echo"),
        "{head}"
    );
    for msg in [&b"ping"[..], b"second message"] {
        s.write_all(msg).await.unwrap();
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(back, msg);
    }
    // An upgraded connection counts as open: a graceful stop would wait
    // for it (up to the drain timeout).
    assert_eq!(web.status()["connections"]["open"], 1);
    drop(s);
    web.stop().await;
}

#[tokio::test]
async fn reload_switches_pools_without_dropping_connections() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let web = Web::start(with_pool(pool(&[&a]))).await;
    let mut s = tokio::net::TcpStream::connect(web.addr).await.unwrap();
    let req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    s.write_all(req).await.unwrap();
    let first = read_response(&mut s).await;
    assert!(first.contains("x-backend: a"), "{first}");
    let mut next = with_pool(pool(&[&b]));
    next.listen = web.status()["listen"].as_str().unwrap().parse().unwrap();
    web.handle.reload(next).unwrap();
    // The same keep-alive connection now reaches b.
    s.write_all(req).await.unwrap();
    let second = read_response(&mut s).await;
    assert!(second.contains("x-backend: b"), "{second}");
    let mut bad = with_pool(pool(&[&b]));
    bad.listen = "127.0.0.1:1".parse().unwrap();
    assert!(
        web.handle
            .reload(bad)
            .unwrap_err()
            .to_string()
            .contains("restart")
    );
    let mut broken = with_pool(pool(&[&b]));
    broken.listen = web.status()["listen"].as_str().unwrap().parse().unwrap();
    broken.pools.get_mut("default").unwrap().balance = "random".into();
    assert!(
        web.handle.reload(broken).is_err(),
        "a bad config is refused, the old one stays"
    );
    assert_eq!(get(web.addr, "/", "").await.header("x-backend"), Some("b"));
    web.stop().await;
}

/// Reads one response with a Content-Length body from a kept-alive stream.
async fn read_response(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let reply = parse(&buf);
            let len: usize = reply.header("content-length").unwrap().parse().unwrap();
            if buf.len() >= end + 4 + len {
                return String::from_utf8_lossy(&buf).to_lowercase();
            }
        }
    }
}

#[tokio::test]
async fn proxied_bodies_are_limited() {
    let b = Backend::start("b").await;
    let mut c = with_pool(pool(&[&b]));
    c.limits.max_body_bytes = 100;
    let web = Web::start(c).await;
    let r = send(web.addr, "POST", "/", &"x".repeat(101)).await;
    assert_eq!(r.status, 413);
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        150,
        "y".repeat(150)
    );
    let r = parse(&raw(web.addr, chunked.as_bytes()).await);
    assert_eq!(r.status, 413, "chunked bodies are counted too");
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);
    assert_eq!(send(web.addr, "POST", "/", "small").await.status, 200);
    web.stop().await;
}

#[tokio::test]
async fn worker_threads_serve_and_balance_too() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let mut c = with_pool(pool(&[&a, &b]));
    c.workers = 2;
    let web = Web::start(c).await;
    let addr = web.addr;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        tasks.push(tokio::spawn(async move {
            let mut n = Vec::new();
            for _ in 0..10 {
                n.push(
                    get(addr, "/", "")
                        .await
                        .header("x-backend")
                        .unwrap()
                        .to_string(),
                );
            }
            n
        }));
    }
    let mut counts = BTreeMap::new();
    for t in tasks {
        for n in t.await.unwrap() {
            *counts.entry(n).or_insert(0usize) += 1;
        }
    }
    assert_eq!((counts["a"], counts["b"]), (20, 20), "{counts:?}");
    let status = web.status();
    assert_eq!(status["connections"]["accepted"], 40);
    web.stop().await;
}

#[tokio::test]
async fn the_access_log_records_requests_in_both_formats() {
    let b = Backend::start("b").await;
    for (format, needle) in [
        (
            tiers_web::config::LogFormat::Combined,
            "\"GET /logged?q=1 HTTP/1.1\" 200 ",
        ),
        (
            tiers_web::config::LogFormat::Json,
            "\"target\":\"/logged?q=1\"",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("access.log");
        let mut c = with_pool(pool(&[&b]));
        c.access_log = log.to_string_lossy().into_owned();
        c.access_log_format = format;
        let web = Web::start(c).await;
        let r = get(web.addr, "/logged?q=1", "User-Agent: probe/1\r\n").await;
        let rid = r.header("x-request-id").unwrap().to_string();
        let mut text = String::new();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            text = std::fs::read_to_string(&log).unwrap_or_default();
            if !text.is_empty() {
                break;
            }
        }
        assert!(text.contains(needle), "{format:?}: {text}");
        assert!(text.contains("probe/1") && text.contains(&rid), "{text}");
        assert!(
            text.contains(&b.addr.to_string()),
            "the upstream is logged: {text}"
        );
        web.stop().await;
    }
}

#[tokio::test]
async fn a_stalled_upstream_body_is_cut_off() {
    // Headers at once, then a body that never comes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let mut p = PoolConfig {
        servers: vec![ServerSpec::Url(format!("http://{addr}"))],
        ..PoolConfig::default()
    };
    p.body_timeout = Duration::from_millis(200);
    let web = Web::start(with_pool(p)).await;
    let started = Instant::now();
    let out = raw(
        web.addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("partial"),
        "the client gets what came, then the connection closes: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    web.stop().await;
}

#[tokio::test]
async fn expect_continue_is_answered_here() {
    let b = Backend::start("b").await;
    let web = Web::start(with_pool(pool(&[&b]))).await;
    let out = raw(
        web.addr,
        b"POST /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("HTTP/1.1 200"), "{text}");
    assert!(text.contains("body=hello"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("expect: 100"),
        "not forwarded: {text}"
    );
    web.stop().await;
}
