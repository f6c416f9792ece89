//! Static files over real sockets: types, index files, conditional
//! requests, ranges, content codings, and paths that try to leave the root.

mod common;

use std::io::Read;
use std::path::Path;

use common::{Web, get, parse, raw, send};
use tiers_web::Config;

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("site");
    std::fs::create_dir_all(root.join("docs/sub")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(root.join("docs/index.html"), "<h1>docs</h1>").unwrap();
    std::fs::write(root.join("docs/sub/plain.txt"), "just text").unwrap();
    std::fs::write(root.join("app.js"), "console.log(1);\n".repeat(200)).unwrap();
    std::fs::write(root.join("style.css"), "body { margin: 0 }\n".repeat(200)).unwrap();
    std::fs::write(
        root.join("logo.png"),
        [0x89u8, b'P', b'N', b'G'].repeat(600),
    )
    .unwrap();
    std::fs::write(root.join("digits.txt"), "0123456789".repeat(10)).unwrap();
    // A precompressed sibling that differs from what we would make, so the
    // test can tell it was used.
    std::fs::write(root.join("big.json"), format!("[{}0]", "1,".repeat(2000))).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(1));
    std::io::Write::write_all(&mut gz, b"[\"from the .gz sibling\"]").unwrap();
    std::fs::write(root.join("big.json.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(root.join(".env"), "SECRET=1").unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/config"), "[core]").unwrap();
    std::fs::create_dir_all(root.join(".well-known")).unwrap();
    std::fs::write(root.join(".well-known/security.txt"), "Contact: x").unwrap();
    std::fs::write(root.join("café.txt"), "unicode name").unwrap();
    // Outside the root, and links pointing at it.
    std::fs::write(dir.path().join("secret.txt"), "TOP SECRET").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
    std::os::unix::fs::symlink(root.join("digits.txt"), root.join("inside-link.txt")).unwrap();
    dir
}

fn config(dir: &Path) -> Config {
    Config {
        root: Some(dir.join("site")),
        ..Config::default()
    }
}

#[tokio::test]
async fn files_types_and_index() {
    let dir = site();
    let web = Web::start(config(dir.path())).await;
    let r = get(web.addr, "/", "").await;
    assert_eq!((r.status, r.text().as_str()), (200, "<h1>home</h1>"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("server"), Some("tiers"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    let r = get(web.addr, "/docs/", "").await;
    assert_eq!(r.text(), "<h1>docs</h1>");
    let r = get(web.addr, "/docs?x=1", "").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs/?x=1"));
    // `//host/dir` must not become a redirect to another site
    // (`Location: //host/dir/` is protocol-relative).
    for evil in ["//docs", "///docs", "/\\docs"] {
        let r = get(web.addr, evil, "").await;
        if r.status == 301 {
            assert_eq!(r.header("location"), Some("/docs/"), "{evil}");
        }
    }
    let r = get(web.addr, "/docs/sub/", "").await;
    assert_eq!(r.status, 404, "no index, no listing");
    assert_eq!(
        get(web.addr, "/app.js", "").await.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        get(web.addr, "/logo.png", "").await.header("content-type"),
        Some("image/png")
    );
    assert_eq!(
        get(web.addr, "/caf%C3%A9.txt", "").await.text(),
        "unicode name"
    );
    assert_eq!(get(web.addr, "/nope.html", "").await.status, 404);
    assert_eq!(
        get(web.addr, "/inside-link.txt", "").await.status,
        200,
        "links within the root are fine"
    );
    assert_eq!(
        get(web.addr, "/.well-known/security.txt", "").await.status,
        200
    );

    let head = parse(
        &raw(
            web.addr,
            b"HEAD /digits.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("100"));
    assert!(head.body.is_empty());
    let post = send(web.addr, "POST", "/digits.txt", "x").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    web.stop().await;
}

#[tokio::test]
async fn conditional_requests() {
    let dir = site();
    let web = Web::start(config(dir.path())).await;
    let r = get(web.addr, "/digits.txt", "").await;
    let etag = r.header("etag").unwrap().to_string();
    let modified = r.header("last-modified").unwrap().to_string();
    assert!(etag.starts_with('"'));
    let r = get(
        web.addr,
        "/digits.txt",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = get(
        web.addr,
        "/digits.txt",
        &format!("If-None-Match: \"other\", W/{etag}\r\n"),
    )
    .await;
    assert_eq!(r.status, 304, "weak comparison for If-None-Match");
    let r = get(web.addr, "/digits.txt", "If-None-Match: \"other\"\r\n").await;
    assert_eq!(r.status, 200);
    let r = get(
        web.addr,
        "/digits.txt",
        &format!("If-Modified-Since: {modified}\r\n"),
    )
    .await;
    assert_eq!(r.status, 304);
    let r = get(
        web.addr,
        "/digits.txt",
        "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(
        web.addr,
        "/digits.txt",
        &format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {modified}\r\n"),
    )
    .await;
    assert_eq!(r.status, 200, "If-None-Match wins over If-Modified-Since");
    let r = get(web.addr, "/digits.txt", "If-Match: \"nope\"\r\n").await;
    assert_eq!(r.status, 412);
    web.stop().await;
}

#[tokio::test]
async fn ranges() {
    let dir = site();
    let web = Web::start(config(dir.path())).await;
    let r = get(web.addr, "/digits.txt", "Range: bytes=10-14\r\n").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.text(), "01234");
    assert_eq!(r.header("content-range"), Some("bytes 10-14/100"));
    let r = get(web.addr, "/digits.txt", "Range: bytes=-3\r\n").await;
    assert_eq!((r.status, r.text().as_str()), (206, "789"));
    let r = get(web.addr, "/digits.txt", "Range: bytes=95-\r\n").await;
    assert_eq!((r.status, r.text().as_str()), (206, "56789"));
    let r = get(web.addr, "/digits.txt", "Range: bytes=100-200\r\n").await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */100"));
    let r = get(web.addr, "/digits.txt", "Range: bytes=0-1,5-6\r\n").await;
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap();
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let text = r.text();
    assert!(
        text.contains("Content-Range: bytes 0-1/100\r\n\r\n01"),
        "{text}"
    );
    assert!(
        text.contains("Content-Range: bytes 5-6/100\r\n\r\n56"),
        "{text}"
    );
    let r = get(web.addr, "/digits.txt", "Range: lines=1-2\r\n").await;
    assert_eq!(
        (r.status, r.body.len()),
        (200, 100),
        "unknown units are ignored"
    );
    let etag = get(web.addr, "/digits.txt", "")
        .await
        .header("etag")
        .unwrap()
        .to_string();
    let r = get(
        web.addr,
        "/digits.txt",
        &format!("Range: bytes=0-0\r\nIf-Range: {etag}\r\n"),
    )
    .await;
    assert_eq!(r.status, 206);
    let r = get(
        web.addr,
        "/digits.txt",
        "Range: bytes=0-0\r\nIf-Range: \"stale\"\r\n",
    )
    .await;
    assert_eq!(r.status, 200, "a stale If-Range gets the whole file");
    web.stop().await;
}

#[tokio::test]
async fn large_files_stream_from_disk_with_ranges() {
    let dir = site();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("site/blob.bin"), &data).unwrap();
    let web = Web::start(config(dir.path())).await;
    let r = get(web.addr, "/blob.bin", "").await;
    assert_eq!(r.status, 200);
    assert!(r.body == data, "3 MB file intact");
    let r = get(web.addr, "/blob.bin", "Range: bytes=1000000-1000999\r\n").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[1_000_000..1_001_000]);
    web.stop().await;
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn compression_is_negotiated() {
    let dir = site();
    let web = Web::start(config(dir.path())).await;
    let original = std::fs::read(dir.path().join("site/style.css")).unwrap();
    let r = get(web.addr, "/style.css", "Accept-Encoding: gzip\r\n").await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert!(r.body.len() < original.len() / 4);
    assert_eq!(gunzip(&r.body), original);
    let gz_etag = r.header("etag").unwrap().to_string();

    let r = get(
        web.addr,
        "/style.css",
        "Accept-Encoding: gzip, deflate, br, zstd\r\n",
    )
    .await;
    assert_eq!(r.header("content-encoding"), Some("br"));
    let mut out = Vec::new();
    brotli::Decompressor::new(&r.body[..], 4096)
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, original);
    assert_ne!(
        r.header("etag").unwrap(),
        gz_etag,
        "each coding has its own validator"
    );

    let r = get(
        web.addr,
        "/style.css",
        "Accept-Encoding: zstd, gzip;q=0.5\r\n",
    )
    .await;
    assert_eq!(r.header("content-encoding"), Some("zstd"));
    assert_eq!(zstd::bulk::decompress(&r.body, 1 << 20).unwrap(), original);

    let r = get(web.addr, "/style.css", "Accept-Encoding: identity\r\n").await;
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, original);
    let r = get(
        web.addr,
        "/style.css",
        &format!("Accept-Encoding: gzip\r\nIf-None-Match: {gz_etag}\r\n"),
    )
    .await;
    assert_eq!(r.status, 304);

    // Not for images, nor for small files, nor with ranges.
    let r = get(web.addr, "/logo.png", "Accept-Encoding: gzip\r\n").await;
    assert_eq!(r.header("content-encoding"), None);
    let r = get(web.addr, "/docs/sub/plain.txt", "Accept-Encoding: gzip\r\n").await;
    assert_eq!(r.header("content-encoding"), None);
    let r = get(
        web.addr,
        "/style.css",
        "Accept-Encoding: gzip\r\nRange: bytes=0-3\r\n",
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (206, "body"));

    // A precompressed sibling is preferred to compressing.
    let r = get(web.addr, "/big.json", "Accept-Encoding: gzip\r\n").await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&r.body), b"[\"from the .gz sibling\"]");
    assert_eq!(r.header("content-type"), Some("application/json"));
    web.stop().await;
}

/// Every one of these must fail to show anything outside the root or any
/// hidden file: each answer is 400, 403 or 404, never the secret.
#[tokio::test]
async fn hostile_paths_never_leave_the_root() {
    let dir = site();
    let web = Web::start(config(dir.path())).await;
    let hostile = [
        "/../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/docs/../../secret.txt",
        "/docs/%2e%2e/%2e%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/%5c..%5csecret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/%c0%af..%c0%afsecret.txt",
        "/%e0%80%ae%e0%80%ae/secret.txt",
        "/%c1%9c..%c1%9csecret.txt",
        "/secret.txt%00.html",
        "/%00/../secret.txt",
        "/leak.txt",
        "/up/secret.txt",
        "/up/site/../secret.txt",
        "/.env",
        "/%2eenv",
        "/.git/config",
        "/docs/../.env",
        "/.git/",
        "/index.html/../../secret.txt",
        "//../secret.txt",
        "/./../secret.txt",
        "/docs/./../../secret.txt",
        "/%2f..%2fsecret.txt",
        "/..;/secret.txt",
        "/....//secret.txt",
    ];
    assert!(hostile.len() >= 30);
    for path in hostile {
        let reply = parse(
            &raw(
                web.addr,
                format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await,
        );
        assert!(
            matches!(reply.status, 400 | 403 | 404),
            "{path}: status {}",
            reply.status
        );
        let text = reply.text();
        assert!(
            !text.contains("TOP SECRET") && !text.contains("SECRET=1") && !text.contains("[core]"),
            "{path} leaked: {text}"
        );
    }
    // Absolute-form targets are judged by their path too.
    let reply = parse(
        &raw(
            web.addr,
            b"GET http://t/../secret.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await,
    );
    assert!(matches!(reply.status, 400 | 403 | 404), "{}", reply.status);
    web.stop().await;
}

#[tokio::test]
async fn hidden_files_can_be_enabled() {
    let dir = site();
    let mut c = config(dir.path());
    c.files.hidden = true;
    let web = Web::start(c).await;
    assert_eq!(get(web.addr, "/.env", "").await.text(), "SECRET=1");
    assert_eq!(
        get(web.addr, "/leak.txt", "").await.status,
        403,
        "links out stay refused"
    );
    web.stop().await;
}

#[tokio::test]
async fn changed_files_are_noticed() {
    let dir = site();
    let mut c = config(dir.path());
    c.files.cache_valid = std::time::Duration::from_millis(50);
    let web = Web::start(c).await;
    assert_eq!(
        get(web.addr, "/docs/sub/plain.txt", "").await.text(),
        "just text"
    );
    std::fs::write(dir.path().join("site/docs/sub/plain.txt"), "new text!").unwrap();
    std::fs::write(dir.path().join("site/fresh.txt"), "fresh").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        get(web.addr, "/docs/sub/plain.txt", "").await.text(),
        "new text!"
    );
    assert_eq!(get(web.addr, "/fresh.txt", "").await.text(), "fresh");
    let status = web.status();
    assert_eq!(
        status["file_cache"]["misses"].as_u64().unwrap(),
        3,
        "each change seen once"
    );
    web.stop().await;
}
