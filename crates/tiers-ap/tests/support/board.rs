//! The board scenario, driven over HTTP against an AP tier serving
//! `apps/board`, whatever database is behind it (shared by the `tiers db`
//! and PostgreSQL runs, included with `#[path]`), and the HTTP helpers it
//! uses.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn http(addr: SocketAddr, request: String) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (status, head.to_lowercase(), body.to_string())
}

pub async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// A request with a body of content type `ct`.
pub async fn post(addr: SocketAddr, path: &str, ct: &str, body: &str) -> (u16, String, String) {
    http(
        addr,
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await
}

async fn form(addr: SocketAddr, path: &str, body: &str) -> (u16, String, String) {
    post(addr, path, "application/x-www-form-urlencoded", body).await
}

fn location(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap()
        .trim()
        .to_string()
}

/// Posts, comments, validation, search, paging and the REST API.
pub async fn drive(addr: SocketAddr) {
    let (status, _, body) = get(addr, "/").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Welcome to the board"), "{body}");
    assert!(
        body.contains("1 comment") || body.contains("0 comments"),
        "{body}"
    );

    let (status, head, body) = form(
        addr,
        "/posts",
        "title=Hello+%3Cthere%3E&author=kim&body=first+words",
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let post = location(&head);
    let (status, _, body) = get(addr, &post).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Hello &lt;there&gt;"), "escaped: {body}");
    assert!(body.contains("No comments yet"), "{body}");
    let (status, head, _) = form(
        addr,
        &format!("{post}/comments"),
        "author=lee&body=nice+post",
    )
    .await;
    assert_eq!((status, location(&head)), (303, post.clone()));
    let (_, _, body) = get(addr, &post).await;
    assert!(body.contains("nice post") && body.contains("lee"), "{body}");
    let (status, _, body) = form(addr, "/posts", "title=&author=kim&body=x").await;
    assert_eq!(status, 400, "empty title refused: {body}");
    assert_eq!(
        get(addr, "/posts/999").await.0,
        200,
        "a friendly not-found page"
    );
    assert!(get(addr, "/posts/999").await.2.contains("No such post"));

    let (_, _, body) = get(addr, "/search?q=Hello").await;
    assert!(
        body.contains("Hello &lt;there&gt;") && !body.contains("Welcome"),
        "{body}"
    );
    let (_, _, body) = get(addr, "/search?author=tiers").await;
    assert!(
        body.contains("Welcome") && !body.contains("Hello"),
        "{body}"
    );

    // Paging: 25 more posts make two pages.
    for i in 0..25 {
        form(
            addr,
            "/posts",
            &format!("title=post+{i}&author=bulk&body=x"),
        )
        .await;
    }
    let (_, _, first) = get(addr, "/").await;
    assert!(
        first.contains("post 24") && first.contains("Older"),
        "{first}"
    );
    let (_, _, second) = get(addr, "/?page=2").await;
    assert!(
        second.contains("Welcome") && second.contains("Newer"),
        "{second}"
    );
    assert_eq!(get(addr, "/?page=0").await.0, 400);

    let (status, _, body) = get(addr, "/api/posts?author=eq.kim&select=title").await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"[{"title":"Hello <there>"}]"#)
    );
    let (status, _, body) = get(addr, "/api/comments?order=id").await;
    assert_eq!(status, 200);
    assert!(body.contains("nice post"), "{body}");

    // The board's REST API reads only: writes go through the forms, whose
    // length limits apply.
    let (status, _, body) = self::post(
        addr,
        "/api/posts",
        "application/json",
        r#"{"id": 1, "title": "again", "body": "b", "author": "dup"}"#,
    )
    .await;
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("read-only"), "{body}");
    let (_, _, body) = get(addr, "/api/posts?author=eq.dup").await;
    assert_eq!(body, "[]");
}
