//! Hostile clients against the web tier's resource bounds (issue 15): a
//! body trickled for ever, many bodies at once, a client that stops
//! reading, and a stampede on a file compressed on the fly. Each test
//! failed on the code before its bound existed.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Backend, Web, get, parse};
use tiers_web::Config;
use tiers_web::config::{PoolConfig, ServerSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn proxied(backend: &Backend) -> Config {
    Config {
        pools: BTreeMap::from([(
            "default".to_string(),
            PoolConfig {
                servers: vec![ServerSpec::Url(backend.url())],
                ..PoolConfig::default()
            },
        )]),
        ..Config::default()
    }
}

/// Reads a response head.
async fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    out
}

/// A body sent one byte every 200 ms never trips the 30 s gap between
/// chunks, and before this bound held a connection and a buffer for as
/// long as the client liked. Now the whole body must arrive within
/// `request_timeout`: 408.
#[tokio::test]
async fn a_trickled_body_meets_the_request_timeout() {
    let backend = Backend::start("b").await;
    let mut c = proxied(&backend);
    c.limits.request_timeout = Duration::from_millis(800);
    let web = Web::start(c).await;
    let s = TcpStream::connect(web.addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    wr.write_all(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let write = async {
        for _ in 0..1000 {
            if wr.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let mut answer = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    };
    tokio::select! {
        () = read => {}
        () = write => {}
    }
    let elapsed = started.elapsed();
    assert_eq!(
        parse(&answer).status,
        408,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "answered after {elapsed:?}"
    );
    assert_eq!(get(web.addr, "/x", "").await.status, 200, "still serving");
    web.stop().await;
}

/// Bodies are buffered in full before they are forwarded, each within
/// `max_body_bytes`, but all together had no bound: 20,000 connections
/// could each hold 16 MiB. Now they share `max_buffered_body_bytes`, and
/// the body that would pass it gets 503 with `Retry-After` while the
/// others go through.
#[tokio::test]
async fn request_bodies_share_one_budget() {
    let backend = Backend::start("b").await;
    let mut c = proxied(&backend);
    c.limits.max_body_bytes = 1 << 20;
    c.limits.max_buffered_body_bytes = 1 << 20;
    let web = Web::start(c).await;
    // A: 900 KB of a 1,000,000-byte body, then a pause.
    let mut a = TcpStream::connect(web.addr).await.unwrap();
    a.write_all(b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
        .await
        .unwrap();
    a.write_all(&vec![b'a'; 900_000]).await.unwrap();
    let mut held = false;
    for _ in 0..200 {
        if web
            .metrics()
            .contains("tiers_web_buffered_body_bytes 900000")
        {
            held = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(held, "{}", web.metrics());
    // B: 200 KB more than the budget has left.
    let body = "b".repeat(200_000);
    let r = common::send(web.addr, "POST", "/b", &body).await;
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
    assert!(
        web.metrics()
            .contains("tiers_web_body_budget_refusals_total 1")
    );
    // A finishes and is forwarded; its bytes are given back.
    a.write_all(&vec![b'a'; 100_000]).await.unwrap();
    let answer = read_head(&mut a).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(
        common::send(web.addr, "POST", "/b", &body).await.status,
        200
    );
    assert!(web.metrics().contains("tiers_web_buffered_body_bytes 0"));
    web.stop().await;
}

/// A web tier serving `/big.bin` of `len` bytes, with a 500 ms send timeout.
async fn big_file_with_a_short_send_timeout(len: usize) -> (tempfile::TempDir, Web) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), vec![7u8; len]).unwrap();
    let c = Config {
        root: Some(dir.path().to_path_buf()),
        limits: tiers_web::config::LimitsConfig {
            send_timeout: Duration::from_millis(500),
            ..Default::default()
        },
        ..Config::default()
    };
    (dir, Web::start(c).await)
}

/// A client that asks for a big file and never reads held the connection
/// and the open file for ever. Now a write that makes no progress for
/// `send_timeout` closes the connection.
#[tokio::test]
async fn a_client_that_stops_reading_is_closed() {
    let (_dir, web) = big_file_with_a_short_send_timeout(64 << 20).await;
    // A small receive window, and nothing read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(web.addr).await.unwrap();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut closed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if web.metrics().contains("tiers_web_send_timeouts_total 1") {
            closed = true;
            break;
        }
    }
    assert!(closed, "the stalled connection is closed");
    let mut open = 1;
    for _ in 0..50 {
        open = web.status()["connections"]["open"].as_u64().unwrap();
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open, 0, "its slot is free");
    drop(s);
    web.stop().await;
}

/// Twenty clients asking at once for a file that is compressed on the fly
/// each ran the compression (a few hundred milliseconds of CPU each for
/// brotli on megabytes). Now one runs and the others wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_fly_compression_runs_once_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..200_000)
        .map(|i| format!("line {i} of the log\n"))
        .collect();
    std::fs::write(dir.path().join("big.txt"), &text).unwrap();
    let c = Config {
        root: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    let web = Web::start(c).await;
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let addr = web.addr;
            tokio::spawn(async move { get(addr, "/big.txt", "Accept-Encoding: br\r\n").await })
        })
        .collect();
    for c in clients {
        let r = c.await.unwrap();
        assert_eq!((r.status, r.header("content-encoding")), (200, Some("br")));
    }
    assert!(
        web.metrics().contains("tiers_web_compressions_total 1\n"),
        "{}",
        web.metrics()
    );
    web.stop().await;
}

/// A client that shuts its sending side right after its request (HTTP/1.0
/// tools, `nc -q`) often got nothing: hyper closed the connection on the
/// read EOF before the answer was written. Found by the `http` fuzzer's
/// harness, which sends that way.
#[tokio::test]
async fn a_half_closed_request_is_still_answered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "x".repeat(100_000)).unwrap();
    let c = Config {
        root: Some(dir.path().to_path_buf()),
        ..Config::default()
    };
    let web = Web::start(c).await;
    for round in 0..50 {
        let mut s = TcpStream::connect(web.addr).await.unwrap();
        s.write_all(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        s.shutdown().await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "round {round}: {} bytes",
            out.len()
        );
        assert_eq!(
            out.len() - out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() - 4,
            100_000
        );
    }
    web.stop().await;
}

/// On HTTP/2 a client can stop granting flow-control window for a stream
/// while answering pings: the socket stays writable, so the write timeout
/// never fires, and the stream (with its file or upstream) was held for
/// ever. Now a response that has waited `send_timeout` for the client's
/// window closes the connection.
#[tokio::test]
async fn an_h2_client_that_shuts_its_window_is_closed() {
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let (_dir, web) = big_file_with_a_short_send_timeout(16 << 20).await;
    let io = TcpStream::connect(web.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(65_535)
        .handshake(TokioIo::new(io))
        .await
        .unwrap();
    let connection = tokio::spawn(conn);
    let req = hyper::Request::builder()
        .uri(format!("http://{}/big.bin", web.addr))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    // The head arrives; the body is never read, so the window stays shut.
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
    assert!(ended.is_ok(), "the server closed the stalled connection");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert!(web.metrics().contains("tiers_web_send_timeouts_total 1"));
    drop(response);
    web.stop().await;
}
