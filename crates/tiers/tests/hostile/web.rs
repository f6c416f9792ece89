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
    let mut up = Up::start(&[]);
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
