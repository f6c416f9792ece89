//! Attacks on the web tier and the admin endpoints.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::Up;

/// Issue 15: 1,000 connections that each sent `P` (a possible start of
/// the HTTP/2 preface) kept the process at 72% of a core, re-peeking every
/// millisecond. Bound: under 10% of a core over 3 s, and still serving.
#[test]
fn partial_http2_prefaces_cost_no_cpu() {
    // All from one address: lift the per-IP limit this test is not about.
    let mut up = Up::start(&[("web", "[web.limits]\nmax_connections_per_ip = 0")]);
    let conns: Vec<TcpStream> = (0..1000)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", up.web)).unwrap();
            s.write_all(b"P").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = up.cpu();
    std::thread::sleep(Duration::from_secs(3));
    let used = up.cpu() - before;
    assert!(
        used < Duration::from_millis(300),
        "{used:?} of CPU in 3 s for 1,000 idle half-prefaces"
    );
    assert!(up.get(up.web, "/").starts_with("HTTP/1.1 200"));
    drop(conns);
    up.assert_alive();
}

/// The admin endpoint had no header timeout and no connection cap: silent
/// clients held a task each for ever. Now at most 64 are held, each for at
/// most the 5 s header timeout.
#[test]
fn silent_admin_clients_are_capped_and_timed_out() {
    let mut up = Up::start(&[]);
    let mut conns: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", up.web_admin)).unwrap())
        .collect();
    let started = Instant::now();
    let mut closed = 0;
    for c in &mut conns {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        // Every connection ends: the ones over the cap at once, the rest
        // at the header timeout.
        if matches!(c.read(&mut buf), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 100);
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    let health = up.get(up.web_admin, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    up.assert_alive();
}

/// Issue 15: one address could open connections up to the server-wide cap
/// (20,000) and lock every other client out. Now each address may hold 512
/// by default; the rest are answered 503 and closed, and other addresses
/// are served as before.
#[test]
fn one_address_cannot_take_every_connection() {
    let mut up = Up::start(&[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let web: std::net::SocketAddr = ([127, 0, 0, 1], up.web).into();
    let (refused, other) = rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut held = Vec::new();
        let mut refused = 0;
        for _ in 0..600 {
            let mut s = tokio::net::TcpStream::connect(web).await.unwrap();
            // A first byte: an admitted connection waits for the rest of
            // its request; a refused one is answered at once.
            let _ = s.write_all(b"G").await;
            held.push(s);
        }
        for s in &mut held {
            let mut buf = [0u8; 64];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await
                && buf[..n].starts_with(b"HTTP/1.1 503")
            {
                refused += 1;
            }
        }
        // Another address is served while these are held.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(([127, 0, 0, 2], 0).into()).unwrap();
        let mut s = socket.connect(web).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await;
        (refused, answer)
    });
    assert_eq!(refused, 600 - 512, "connections past 512 from one address");
    assert!(
        other.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&other)
    );
    up.assert_alive();
}
