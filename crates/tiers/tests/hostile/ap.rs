//! Attacks on the AP tier's REST API.

use crate::harness::{KeepAlive, Up};

/// Issue 15: `GET /api/posts?offset=N&limit=M` with 20,000 distinct N grew
/// the process by 120 MB, and so on without end: each page was new SQL
/// text, prepared and kept for ever by the AP pool and the DB server.
/// Bound: after a warm-up, 20,000 distinct pages and 2,000 distinct query
/// shapes add under 24 MB of RSS.
#[test]
fn distinct_pages_and_shapes_do_not_grow_memory() {
    let mut up = Up::start(&[]);
    let mut http = KeepAlive::connect(up.ap);
    for n in 0..2_000 {
        let (status, _) = http.get(&format!("/api/posts?offset={n}&limit={}", n % 50 + 1));
        assert_eq!(status, 200);
    }
    let before = up.rss_kib();
    for n in 2_000..22_000 {
        let (status, _) = http.get(&format!("/api/posts?offset={n}&limit={}", n % 50 + 1));
        assert_eq!(status, 200);
    }
    // Distinct shapes: each a statement of its own, which the caches must
    // let go of.
    let columns = ["id", "title", "author", "body", "created_at"];
    let mut shapes = 0;
    'outer: for a in columns {
        for b in columns {
            for c in columns {
                for order in columns {
                    for dir in ["asc", "desc", "asc.nullsfirst", "desc.nullslast"] {
                        for filter in ["", "&id=gt.0", "&author=neq.x", "&title=like.*a*"] {
                            let path = format!(
                                "/api/posts?select={a},{b},{c}&order={order}.{dir}{filter}"
                            );
                            let (status, body) = http.get(&path);
                            assert_eq!(status, 200, "{path}: {body}");
                            shapes += 1;
                            if shapes == 2_000 {
                                break 'outer;
                            }
                        }
                    }
                }
            }
        }
    }
    let grown = up.rss_kib().saturating_sub(before);
    assert!(grown < 24 << 10, "RSS grew by {grown} KiB");
    // The deepest pages are refused with a reason.
    let (status, body) = http.get("/api/posts?offset=1000000");
    assert_eq!(status, 400);
    assert!(body.contains("filtering on the key"), "{body}");
    up.assert_alive();
}

/// The AP listener had no header timeout (hyper's needs its timer set):
/// a client that connected and said nothing held a task for ever. Now
/// each is closed after the 10 s header timeout.
#[test]
fn silent_ap_clients_are_timed_out() {
    use std::io::Read;
    let mut up = Up::start(&[]);
    let started = std::time::Instant::now();
    let mut conns: Vec<std::net::TcpStream> = (0..50)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", up.ap)).unwrap())
        .collect();
    for c in &mut conns {
        c.set_read_timeout(Some(std::time::Duration::from_secs(15)))
            .unwrap();
        let mut buf = [0u8; 256];
        let closed = loop {
            match c.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue, // a 408 before the close is fine
                Err(e) => break e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        };
        assert!(closed, "still open after {:?}", started.elapsed());
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(14));
    assert!(up.get(up.ap, "/health").contains("200"));
    up.assert_alive();
}
