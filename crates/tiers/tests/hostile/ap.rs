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

fn post(up: &Up, path: &str, headers: &str, content_type: &str, body: &str) -> String {
    up.http(
        up.ap,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: board.test\r\n{headers}Content-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Issue 15: a page on any other site could make a visitor's browser post
/// to the board (a form with `action="http://board/posts"`), and the post
/// was stored. Now a write whose `Origin`, `Referer` or `Sec-Fetch-Site`
/// names another site is 403 and stores nothing; the board's own pages and
/// non-browser clients (no such headers) still post.
#[test]
fn cross_site_form_posts_are_refused() {
    let mut up = Up::start(&[]);
    let form = "title=forged&body=b&author=mallory";
    let form_ct = "application/x-www-form-urlencoded";
    for forged in [
        "Origin: https://evil.test\r\n",
        "Origin: null\r\n",
        "Referer: https://evil.test/board.test/\r\n",
        "Sec-Fetch-Site: cross-site\r\n",
    ] {
        let reply = post(&up, "/posts", forged, form_ct, form);
        assert!(reply.starts_with("HTTP/1.1 403"), "{forged}: {reply}");
        assert!(
            reply.contains("cross-site") || reply.contains("null"),
            "{reply}"
        );
    }
    // A form that smuggles JSON as text/plain (which a cross-site page may
    // send without a preflight) is refused for its type.
    let reply = post(&up, "/posts", "", "text/plain", form);
    assert!(reply.starts_with("HTTP/1.1 415"), "{reply}");
    let (_, stored) = KeepAlive::connect(up.ap).get("/api/posts?author=eq.mallory");
    assert_eq!(stored, "[]", "nothing forged was stored");
    // Same site and non-browser clients post as before.
    let same = post(
        &up,
        "/posts",
        "Origin: http://board.test\r\n",
        form_ct,
        "title=a&body=b&author=kim",
    );
    assert!(same.starts_with("HTTP/1.1 303"), "{same}");
    let curl = post(&up, "/posts", "", form_ct, "title=c&body=d&author=kim");
    assert!(curl.starts_with("HTTP/1.1 303"), "{curl}");
    up.assert_alive();
}

/// Issue 15: the board's REST API took writes, and a POST or PATCH could
/// set any column (`id`, `created_at`) and skip the forms' `max_len`.
/// Now its tables are read-only in the API; writes go through the forms,
/// whose limits hold.
#[test]
fn the_board_api_is_read_only_and_forms_keep_their_limits() {
    let mut up = Up::start(&[]);
    let json = "application/json";
    let big = format!(
        r#"{{"id": 100000, "created_at": "1999-01-01 00:00:00", "title": "{}", "body": "b", "author": "x"}}"#,
        "t".repeat(5000)
    );
    let reply = post(&up, "/api/posts", "", json, &big);
    assert!(reply.starts_with("HTTP/1.1 405"), "{reply}");
    assert!(reply.contains("read-only"), "{reply}");
    let patch = up.http(
        up.ap,
        "PATCH /api/posts/1 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: 17\r\nConnection: close\r\n\r\n{\"id\": 100000000}",
    );
    assert!(patch.starts_with("HTTP/1.1 405"), "{patch}");
    let delete = up.http(
        up.ap,
        "DELETE /api/posts/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(delete.starts_with("HTTP/1.1 405"), "{delete}");
    let long = format!("title={}&body=b&author=x", "t".repeat(201));
    let reply = post(
        &up,
        "/posts",
        "",
        "application/x-www-form-urlencoded",
        &long,
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    let (_, one) = KeepAlive::connect(up.ap).get("/api/posts/1");
    assert!(one.contains("Welcome"), "post 1 is untouched: {one}");
    up.assert_alive();
}

/// Issue 15: a listing read its whole result into memory, as rows and then
/// as JSON, with no bound but the 10,000-row limit: 40 rows of 1 MB made a
/// 40 MB response and well over 100 MB of RSS per request in flight. Now
/// rows are read one at a time and a result over 32 MiB is 400 with the
/// reason; the peak RSS (both tiers, the DB's copy of the result included)
/// grows by under 128 MB.
#[test]
fn a_huge_result_is_refused_not_buffered() {
    use crate::harness::Pg;
    let mut up = Up::start(&[]);
    let mut pg = Pg::connect(up.db);
    let reply = pg
        .query(
            "INSERT INTO posts (title, body, author) \
             SELECT 'big', repeat('x', 1000000), 'bulk' FROM generate_series(1, 40)",
        )
        .unwrap();
    assert!(reply.error.is_none(), "{:?}", reply.error);
    let before = up.peak_rss_kib();
    let mut http = KeepAlive::connect(up.ap);
    for _ in 0..3 {
        let (status, body) = http.get("/api/posts?author=eq.bulk&limit=10000");
        assert_eq!(status, 400, "{}", &body[..body.len().min(200)]);
        assert!(body.contains("exceeds 32 MiB"), "{body}");
    }
    let grown = up.peak_rss_kib().saturating_sub(before);
    eprintln!("a_huge_result: peak RSS grew by {grown} KiB");
    assert!(grown < 128 << 10, "peak RSS grew by {grown} KiB");
    // Fewer columns fit.
    let (status, body) = http.get("/api/posts?author=eq.bulk&select=id,title");
    assert_eq!(status, 200);
    assert_eq!(body.matches("\"big\"").count(), 40);
    up.assert_alive();
}
