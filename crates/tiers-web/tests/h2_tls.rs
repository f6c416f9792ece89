//! HTTP/2 (h2c by prior knowledge, and h2 over TLS by ALPN), HTTP/1.1 over
//! TLS, and proxying from an HTTP/2 client to an HTTP/1.1 upstream.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use common::{Backend, Web};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tiers_web::Config;
use tiers_web::config::ServerSpec;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
        .join("tests/fixtures")
        .join(name)
}

async fn site_and_backend() -> (tempfile::TempDir, Backend, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello over h2").unwrap();
    let b = Backend::start("b").await;
    let c = Config {
        root: Some(dir.path().to_path_buf()),
        upstreams: vec![b.url()],
        ..Config::default()
    };
    (dir, b, c)
}

async fn h2_get<I>(io: I, authority: &str, paths: &[&str]) -> Vec<(u16, String, Option<String>)>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut out = Vec::new();
    // Several streams on one connection, concurrently.
    let mut pending = Vec::new();
    for p in paths {
        let req = Request::builder()
            .uri(format!("https://{authority}{p}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        pending.push(sender.send_request(req));
    }
    for f in pending {
        let resp = f.await.unwrap();
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        let status = resp.status().as_u16();
        let backend = resp
            .headers()
            .get("x-backend")
            .map(|v| v.to_str().unwrap().to_string());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        out.push((status, String::from_utf8_lossy(&body).into_owned(), backend));
    }
    out
}

#[tokio::test]
async fn h2c_with_prior_knowledge() {
    let (_dir, b, c) = site_and_backend().await;
    let web = Web::start(c).await;
    let io = TcpStream::connect(web.addr).await.unwrap();
    let got = h2_get(io, "test", &["/hello.txt", "/dynamic", "/missing.txt"]).await;
    assert_eq!(got[0].0, 200);
    assert_eq!(got[0].1, "hello over h2");
    assert_eq!(
        got[1].2.as_deref(),
        Some("b"),
        "proxied to the HTTP/1.1 upstream"
    );
    assert!(got[1].1.contains("GET /dynamic"), "{}", got[1].1);
    assert!(
        got[1].1.contains("host: test"),
        "authority becomes Host: {}",
        got[1].1
    );
    assert_eq!(got[2].2.as_deref(), Some("b"));
    drop(b);
    web.stop().await;
}

fn client_config(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(fixture("cert.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

#[tokio::test]
async fn tls_offers_h2_and_http11_by_alpn() {
    let (_dir, _b, mut c) = site_and_backend().await;
    c.tls_cert = Some(fixture("cert.pem"));
    c.tls_key = Some(fixture("key.pem"));
    let web = Web::start(c).await;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();

    let tcp = TcpStream::connect(web.addr).await.unwrap();
    let tls = TlsConnector::from(client_config(&[b"h2", b"http/1.1"]))
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let got = h2_get(tls, "localhost", &["/hello.txt", "/api"]).await;
    assert_eq!((got[0].0, got[0].1.as_str()), (200, "hello over h2"));
    assert!(
        got[1].1.contains("x-forwarded-proto: https"),
        "{}",
        got[1].1
    );

    let tcp = TcpStream::connect(web.addr).await.unwrap();
    let tls = TlsConnector::from(client_config(&[b"http/1.1"]))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = Request::builder()
            .uri("/hello.txt")
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.version(), hyper::Version::HTTP_11);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello over h2");
    }

    // Plain HTTP to a TLS port fails the handshake and is counted.
    let r = common::raw(web.addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").await;
    assert!(!String::from_utf8_lossy(&r).contains("hello"));
    assert!(web.status()["connections"]["accepted"].as_u64().unwrap() >= 3);
    web.stop().await;
}

#[tokio::test]
async fn weighted_servers_parse_from_config() {
    let (_dir, b, mut c) = site_and_backend().await;
    c.upstreams.clear();
    c.pools.insert(
        "default".into(),
        tiers_web::config::PoolConfig {
            servers: vec![ServerSpec::Weighted {
                url: b.url(),
                weight: 5,
            }],
            ..Default::default()
        },
    );
    let web = Web::start(c).await;
    assert_eq!(web.status()["pools"]["default"]["servers"][0]["weight"], 5);
    web.stop().await;
}

#[tokio::test]
async fn an_idle_h2_connection_gets_goaway_after_the_keep_alive_time() {
    let (_dir, b, mut c) = site_and_backend().await;
    c.limits.header_timeout = std::time::Duration::from_millis(400);
    let web = Web::start(c).await;
    let io = TcpStream::connect(web.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let get = |sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>| {
        let req = Request::builder()
            .uri("http://test/hello.txt")
            .body(Empty::<Bytes>::new())
            .unwrap();
        sender.send_request(req)
    };
    // Busy for twice the keep-alive time: a request every 100 ms keeps it open.
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(800) {
        let resp = get(&mut sender).await.expect("open while in use");
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Then quiet: the server says GOAWAY and the connection ends cleanly.
    let quiet = std::time::Instant::now();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(5), conn)
        .await
        .expect("an idle HTTP/2 connection is closed by the server");
    assert!(ended.unwrap().is_ok(), "a graceful GOAWAY, not an error");
    let after = quiet.elapsed();
    assert!(
        after >= std::time::Duration::from_millis(300) && after < std::time::Duration::from_secs(2),
        "closed after {after:?} of quiet"
    );
    assert!(
        get(&mut sender).await.is_err(),
        "no new streams after GOAWAY"
    );
    drop(b);
    web.stop().await;
}
