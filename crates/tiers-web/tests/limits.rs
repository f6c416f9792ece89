//! Limits against bad or hostile clients: oversized heads and bodies,
//! slowloris, connection floods, malformed requests and garbage bytes.

mod common;

use std::time::{Duration, Instant};

use common::{Web, get, parse, raw};
use tiers_web::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn site() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "home").unwrap();
    let c = Config {
        root: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    (dir, c)
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let (_dir, mut c) = site();
    c.limits.max_header_bytes = 8192;
    let web = Web::start(c).await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let r = parse(&raw(web.addr, big.as_bytes()).await);
    assert_eq!(r.status, 431);
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = parse(
        &raw(
            web.addr,
            format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes(),
        )
        .await,
    );
    assert!(matches!(r.status, 431 | 400), "{}", r.status);
    assert_eq!(
        get(web.addr, "/", "X-Fine: yes\r\n").await.status,
        200,
        "still serving"
    );
    web.stop().await;
}

#[tokio::test]
async fn slowloris_is_cut_off_by_the_header_timeout() {
    let (_dir, mut c) = site();
    c.limits.header_timeout = Duration::from_millis(300);
    let web = Web::start(c).await;
    let mut s = TcpStream::connect(web.addr).await.unwrap();
    let started = Instant::now();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").await.unwrap();
    // Trickle a header byte at a time, never finishing.
    let mut closed_at = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if s.write_all(b"X").await.is_err() {
            closed_at = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
            closed_at = Some(started.elapsed());
            if n > 0 {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                assert!(
                    text.starts_with("HTTP/1.1 408") || text.is_empty(),
                    "{text}"
                );
            }
            break;
        }
    }
    let closed_at = closed_at.expect("a slow client is disconnected");
    assert!(closed_at < Duration::from_millis(1200), "{closed_at:?}");
    assert!(closed_at >= Duration::from_millis(250), "{closed_at:?}");
    // An idle keep-alive connection is closed by the same timeout.
    let mut idle = TcpStream::connect(web.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(3), idle.read(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(_)) | Ok(Err(_))),
        "idle connection closed"
    );
    assert_eq!(get(web.addr, "/", "").await.status, 200);
    web.stop().await;
}

#[tokio::test]
async fn connection_limits_refuse_with_503() {
    let (_dir, mut c) = site();
    c.limits.max_connections = 3;
    let web = Web::start(c).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(web.addr).await.unwrap();
        // A full exchange proves each is admitted before the next.
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    let r = get(web.addr, "/", "").await;
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
    assert_eq!(web.status()["connections"]["refused"], 1);
    drop(held);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if get(web.addr, "/", "").await.status == 200 {
            ok = true;
            break;
        }
    }
    assert!(ok, "slots come back when connections close");
    web.stop().await;
}

#[tokio::test]
async fn per_ip_limit() {
    let (_dir, mut c) = site();
    c.limits.max_connections_per_ip = 2;
    let web = Web::start(c).await;
    let a = TcpStream::connect(web.addr).await.unwrap();
    let b = TcpStream::connect(web.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(web.addr, "/", "").await.status, 503);
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(web.addr, "/", "").await.status, 200);
    web.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_400_and_garbage_breaks_nothing() {
    let (_dir, c) = site();
    let web = Web::start(c).await;
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
    ] {
        let out = raw(web.addr, bad).await;
        let text = String::from_utf8_lossy(&out);
        assert!(
            out.is_empty() || text.starts_with("HTTP/1.1 400") || text.starts_with("HTTP/1.1 505"),
            "{:?} -> {text}",
            String::from_utf8_lossy(bad)
        );
    }
    // Random bytes, many times: the server must keep serving.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        let len = (seed % 300) as usize + 1;
        let mut bytes = Vec::with_capacity(len);
        for _ in 0..len {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push(seed as u8);
        }
        if seed.is_multiple_of(2) {
            let mut framed = b"GET /".to_vec();
            framed.extend_from_slice(&bytes);
            bytes = framed;
        }
        let _ = raw_quick(web.addr, &bytes).await;
    }
    assert_eq!(get(web.addr, "/", "").await.status, 200);
    web.stop().await;
}

async fn raw_quick(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_millis(500), s.read_to_end(&mut out)).await;
    out
}

/// Reads responses from a kept-alive stream until `n` have arrived.
async fn read_responses(s: &mut TcpStream, n: usize) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while String::from_utf8_lossy(&buf)
        .matches("HTTP/1.1 200")
        .count()
        < n
        || !String::from_utf8_lossy(&buf).ends_with("home")
    {
        let got = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("response in time")
            .unwrap();
        assert!(got > 0, "closed early: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..got]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn idle_keep_alive_connections_park_and_wake() {
    let (_dir, c) = site();
    let web = Web::start(c).await;
    let parked = |web: &Web| web.status()["connections"]["parked"].as_u64().unwrap();
    let mut s = TcpStream::connect(web.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    read_responses(&mut s, 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        parked(&web),
        1,
        "after one request the connection parks at once"
    );
    // Two pipelined requests wake it; both are answered in order.
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /index.html HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let text = read_responses(&mut s, 2).await;
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    // A busy connection (many requests) parks only after a quiet spell.
    for _ in 0..10 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        read_responses(&mut s, 1).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(parked(&web), 0, "busy: not parked between requests");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(parked(&web), 1, "parked after 200 ms of quiet");
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    read_responses(&mut s, 1).await;
    drop(s);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(parked(&web), 0);
    web.stop().await;
}
