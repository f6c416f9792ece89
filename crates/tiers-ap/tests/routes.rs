//! An application served by the AP tier against a live `tiers db`: routes
//! to SQL, parameters, JSON, redirects, errors mapped to HTTP, and a lost
//! database answered with 503 until it is back.

use std::net::SocketAddr;
use std::time::Duration;

#[path = "support/board.rs"]
mod board;

use board::{get, http, post};
use tiers_ap::{ApConfig, ApServer};
use tiers_db::{Server, ServerConfig};

async fn start_db(
    dir: &std::path::Path,
    addr: SocketAddr,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let config = ServerConfig::new(addr, dir.to_path_buf());
    let server = loop {
        match Server::bind(config.clone()).await {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = server
            .serve(async {
                let _ = stopped.await;
            })
            .await;
    });
    (addr, stop, task)
}

/// Serves the app in `dir` against the database at `db`; returns its
/// address and admin report.
async fn start_ap(
    dir: &std::path::Path,
    db: SocketAddr,
) -> (SocketAddr, std::sync::Arc<dyn tiers_telemetry::Admin>) {
    let ap = ApServer::start(ApConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        app: dir.to_path_buf(),
        db: format!("postgres://app@127.0.0.1:{}/tiers", db.port()),
    })
    .await
    .unwrap();
    let (addr, admin) = (ap.local_addr(), ap.admin());
    tokio::spawn(ap.serve(std::future::pending()));
    (addr, admin)
}

const APP: &str = r#"
name = "board"
[pool]
size = 4
acquire_timeout_ms = 500

[[routes]]
method = "GET"
path = "/posts"
sql = "SELECT id, title, author FROM posts WHERE (:author IS NULL OR author = :author) ORDER BY id"
cache_ttl_s = 60

[[routes]]
method = "GET"
path = "/posts/{id}"
sql = "SELECT id, title, author FROM posts WHERE id = :id"
response = "json_one"
[routes.params.id]
type = "int"
required = true

[[routes]]
method = "POST"
path = "/posts"
sql = "INSERT INTO posts (title, author) VALUES (:title, :author) RETURNING id"
response = "redirect:/posts/{id}"
[routes.params.title]
required = true
max_len = 20
[routes.params.author]
required = true

[[routes]]
method = "GET"
path = "/p/{id}"
sql = "SELECT id, title FROM posts WHERE id = :id"
response = "template:post.html"

[[routes]]
method = "POST"
path = "/posts/{id}/rename"
sql = ["UPDATE posts SET title = :title WHERE id = :id", "SELECT id, title FROM posts WHERE id = :id"]
response = "json_one"
[routes.params.id]
type = "int"
"#;

/// A TCP forwarder standing in for the network to the database: killing
/// it drops every connection and refuses new ones, like a crashed server.
fn forwarder(listen: SocketAddr, to: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let std_listener = loop {
        match std::net::TcpListener::bind(listen) {
            Ok(l) => break l,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            conns.spawn(async move {
                if let Ok(mut server) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_serve_json_and_map_errors_and_survive_the_database() {
    let db_dir = tempfile::tempdir().unwrap();
    let (db_addr, _stop_db, _db_task) =
        start_db(db_dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let (net_addr, net) = forwarder("127.0.0.1:0".parse().unwrap(), db_addr);
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("app.toml"), APP).unwrap();
    std::fs::create_dir_all(app.path().join("schema")).unwrap();
    std::fs::create_dir_all(app.path().join("templates")).unwrap();
    std::fs::write(
        app.path().join("templates/post.html"),
        "<h1>{{ row.title }}</h1><p>{{ app }} #{{ params.id }}</p>",
    )
    .unwrap();
    std::fs::write(
        app.path().join("schema/001_posts.sql"),
        "CREATE TABLE posts (id SERIAL PRIMARY KEY, title TEXT NOT NULL UNIQUE, author TEXT NOT NULL);",
    )
    .unwrap();
    let (addr, admin) = start_ap(app.path(), net_addr).await;

    let (status, head, _) = post(
        addr,
        "/posts",
        "application/x-www-form-urlencoded",
        "title=Hello+world&author=kim",
    )
    .await;
    assert_eq!(status, 303, "post/redirect/get");
    assert!(head.contains("location: /posts/1"), "{head}");
    let (status, _, body) = post(
        addr,
        "/posts",
        "application/json",
        r#"{"title": "second", "author": "lee"}"#,
    )
    .await;
    assert_eq!(status, 303, "{body}");
    let (status, _, body) = get(addr, "/posts/1").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"id": 1, "title": "Hello world", "author": "kim"})
    );
    let (_, _, body) = get(addr, "/posts?author=lee").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["title"], "second");
    let (_, _, body) = get(addr, "/posts").await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Bad input names the field; constraint violations map to 4xx.
    let (status, _, body) = get(addr, "/posts/abc").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"field\":\"id\""), "{body}");
    let (status, _, body) = post(
        addr,
        "/posts",
        "application/x-www-form-urlencoded",
        "author=x",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("title is required"), "{body}");
    let (status, _, body) = post(
        addr,
        "/posts",
        "application/x-www-form-urlencoded",
        &format!("title={}&author=x", "y".repeat(21)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = post(
        addr,
        "/posts",
        "application/json",
        r#"{"title": "second", "author": "kim"}"#,
    )
    .await;
    assert_eq!(status, 409, "unique violation: {body}");
    let (status, _, _) = get(addr, "/posts/99").await;
    assert_eq!(status, 404);
    let (status, head, _) = http(
        addr,
        "DELETE /posts HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert_eq!(status, 405);
    assert!(head.contains("allow: get, post"), "{head}");
    let (status, _, _) = get(addr, "/nowhere").await;
    assert_eq!(status, 404);
    // Several statements run in one transaction.
    let (status, _, body) = post(
        addr,
        "/posts/1/rename",
        "application/x-www-form-urlencoded",
        "title=renamed",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("renamed"), "{body}");
    // HTML from a template, escaped.
    let (status, head, _) = post(
        addr,
        "/posts",
        "application/json",
        r#"{"title": "<b>bold</b>", "author": "x"}"#,
    )
    .await;
    assert_eq!(status, 303);
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("location: /posts/"))
        .unwrap()
        .trim()
        .to_string();
    let (status, head, body) = get(addr, &format!("/p/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert_eq!(
        body,
        format!("<h1>&lt;b&gt;bold&lt;&#x2f;b&gt;</h1><p>board #{id}</p>")
    );
    // Injection attempts are just values.
    let (status, _, body) = get(addr, "/posts?author=x%27%20OR%20%271%27%3D%271").await;
    assert_eq!((status, body.as_str()), (200, "[]"));

    // The cache: a repeat is a hit, a write to posts empties it, ETags give 304.
    let hits = |a: &std::sync::Arc<dyn tiers_telemetry::Admin>| {
        a.status()["cache"]["hits"].as_u64().unwrap()
    };
    let (_, head, first) = get(addr, "/posts").await;
    let before = hits(&admin);
    let (_, _, again) = get(addr, "/posts").await;
    assert_eq!((again.as_str(), hits(&admin)), (first.as_str(), before + 1));
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .trim()
        .to_string();
    let (status, _, body) = http(
        addr,
        format!(
            "GET /posts HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!((status, body.as_str()), (304, ""));
    let (status, _, _) = post(
        addr,
        "/posts",
        "application/json",
        r#"{"title": "third", "author": "park"}"#,
    )
    .await;
    assert_eq!(status, 303);
    let (_, _, after) = get(addr, "/posts").await;
    assert!(
        after.contains("third"),
        "the write emptied the cache: {after}"
    );
    assert_eq!(
        hits(&admin),
        before + 2,
        "the 304 was a hit too; the read after the write was not"
    );

    let status = admin.status();
    assert!(status["requests"].as_u64().unwrap() >= 15, "{status}");
    assert!(status["client_errors"].as_u64().unwrap() >= 5, "{status}");
    let trips = status["db_round_trips_per_request"].as_f64().unwrap();
    assert!(trips > 0.5 && trips < 2.0, "{status}");
    assert_eq!(status["pool"]["max"], 4);
    let metrics = admin.metrics();
    assert!(
        metrics.contains("tiers_ap_db_round_trips_total"),
        "{metrics}"
    );
    assert!(metrics.contains("tiers_ap_pool_waiting 0"), "{metrics}");

    // The database goes away: 503 with Retry-After, not a hang.
    net.abort();
    let _ = net.await;
    let (status, head, body) = get(addr, "/posts/1").await;
    assert_eq!(status, 503, "{body}");
    assert!(head.contains("retry-after: 1"), "{head}");
    assert_eq!(get(addr, "/health").await.0, 503);
    // It comes back on the same port: service resumes by itself.
    let (_, _net_again) = forwarder(net_addr, db_addr);
    let mut back = false;
    for _ in 0..50 {
        if get(addr, "/posts/1").await.0 == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the AP tier reconnects by itself");
    assert_eq!(get(addr, "/health").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_automatic_rest_api_over_exposed_tables() {
    let db_dir = tempfile::tempdir().unwrap();
    let (db_addr, _stop_db, _db_task) =
        start_db(db_dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("app.toml"),
        "name = \"board\"\n[[routes]]\nmethod = \"GET\"\npath = \"/titles\"\nsql = \"SELECT title FROM posts ORDER BY id\"\ncache_ttl_s = 60\n\
         [api.posts]\naccess = \"read-write\"\nwritable = [\"title\", \"author\", \"score\"]\nmax_len = { title = 20 }\n\
         [api.comments]\naccess = \"read-only\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(app.path().join("schema")).unwrap();
    std::fs::write(
        app.path().join("schema/001_init.sql"),
        "CREATE TABLE posts (id SERIAL PRIMARY KEY, title TEXT NOT NULL, author TEXT NOT NULL, score INTEGER);\n\
         CREATE TABLE comments (id SERIAL PRIMARY KEY, post_id INTEGER NOT NULL, body TEXT);\n\
         CREATE TABLE secrets (id SERIAL PRIMARY KEY, v TEXT);\n\
         INSERT INTO posts (title, author, score) VALUES ('a', 'kim', 3), ('b', 'lee', 5), ('c', 'kim', 1);",
    )
    .unwrap();
    let (addr, _admin) = start_ap(app.path(), db_addr).await;
    let json = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap();

    let (status, _, body) = get(
        addr,
        "/api/posts?author=eq.kim&order=score.desc&select=id,title",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body),
        serde_json::json!([{"id": 1, "title": "a"}, {"id": 3, "title": "c"}])
    );
    let (_, _, body) = get(addr, "/api/posts?score=gte.3&limit=1&offset=1&order=id").await;
    assert_eq!(json(&body)[0]["title"], "b");
    let (_, _, body) = get(addr, "/api/posts?id=in.(1,3)&title=like.*").await;
    assert_eq!(json(&body).as_array().unwrap().len(), 2);
    let (_, _, body) = get(addr, "/api/posts?score=is.null").await;
    assert_eq!(body, "[]");
    let (status, _, body) = get(addr, "/api/posts/2").await;
    assert_eq!((status, json(&body)["author"].as_str()), (200, Some("lee")));
    assert_eq!(get(addr, "/api/posts/99").await.0, 404);
    let (status, _, body) = get(addr, "/api/posts?password=eq.x").await;
    assert_eq!(status, 400);
    assert!(body.contains("no column"), "{body}");
    assert_eq!(
        get(addr, "/api/secrets").await.0,
        404,
        "tables not listed are hidden"
    );

    // Writes, and the cache of a route reading the table is emptied.
    assert_eq!(
        get(addr, "/titles").await.2,
        r#"[{"title":"a"},{"title":"b"},{"title":"c"}]"#
    );
    let (status, head, body) = post(
        addr,
        "/api/posts",
        "application/json",
        r#"{"title": "d", "author": "park"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(head.contains("location: /api/posts/4"), "{head}");
    assert_eq!(json(&body)["score"], serde_json::Value::Null);
    assert!(
        get(addr, "/titles").await.2.contains("\"d\""),
        "the API write emptied the route cache"
    );
    let (status, _, body) = http(addr, "PATCH /api/posts/4 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"score\": 42}".into()).await;
    assert_eq!((status, json(&body)["score"].as_i64()), (200, Some(42)));
    let (status, _, body) =
        post(addr, "/api/posts", "application/json", r#"{"author": "x"}"#).await;
    assert_eq!(status, 400, "not null: {body}");
    // Only the writable columns, within their lengths, as JSON only.
    let (status, _, body) = post(
        addr,
        "/api/posts",
        "application/json",
        r#"{"id": 99, "title": "t", "author": "x"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("posts.id is not writable"), "{body}");
    let long = format!(r#"{{"title": "{}", "author": "x"}}"#, "t".repeat(21));
    let (status, _, body) = post(addr, "/api/posts", "application/json", &long).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("at most 20 characters"), "{body}");
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let (status, _, body) =
            post(addr, "/api/posts", ct, r#"{"title": "t", "author": "x"}"#).await;
        assert_eq!(status, 415, "{ct}: {body}");
    }
    let (status, _, body) = http(addr, "POST /api/posts HTTP/1.1\r\nHost: board.test\r\nOrigin: https://evil.test\r\nContent-Type: application/json\r\nContent-Length: 29\r\nConnection: close\r\n\r\n{\"title\": \"t\", \"author\": \"x\"}".into()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("evil.test"), "{body}");
    let delete = |path: &str| {
        http(
            addr,
            format!("DELETE {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        )
    };
    assert_eq!(delete("/api/posts/4").await.0, 204);
    assert_eq!(delete("/api/posts/4").await.0, 404);
    assert_eq!(
        post(
            addr,
            "/api/comments",
            "application/json",
            r#"{"post_id": 1}"#
        )
        .await
        .0,
        405,
        "read-only"
    );

    let (status, _, body) = get(addr, "/api/openapi.json").await;
    assert_eq!(status, 200);
    let doc = json(&body);
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]["/api/posts/{id}"]["patch"].is_object());
    assert!(doc["paths"]["/api/comments/{id}"]["patch"].is_null());
    assert_eq!(
        doc["components"]["schemas"]["posts"]["required"],
        serde_json::json!(["title", "author"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_exhausted_pool_answers_503_quickly() {
    let db_dir = tempfile::tempdir().unwrap();
    let (db_addr, _stop, _task) = start_db(db_dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("app.toml"),
        "name = \"slow\"\n[pool]\nsize = 1\nacquire_timeout_ms = 200\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/slow\"\nsql = \"SELECT count(*) AS n FROM generate_series(1, 20000000)\"\nresponse = \"json_one\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/fast\"\nsql = \"SELECT 1 AS one\"\nresponse = \"json_one\"\n",
    )
    .unwrap();
    let (addr, admin) = start_ap(app.path(), db_addr).await;
    assert_eq!(get(addr, "/fast").await.0, 200);
    let slow = tokio::spawn(async move { get(addr, "/slow").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let (status, head, body) = get(addr, "/fast").await;
    assert_eq!(status, 503, "the only connection is busy: {body}");
    assert!(head.contains("retry-after: 1"), "{head}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no hang: {:?}",
        started.elapsed()
    );
    assert_eq!(admin.status()["pool_timeouts"], 1);
    assert_eq!(slow.await.unwrap().0, 200);
    assert_eq!(get(addr, "/fast").await.0, 200, "recovers");
}

/// Under REPEATABLE READ, concurrent increments of one row conflict
/// (first committer wins, 40001): the AP tier retries once, then answers
/// 503; no increment is lost or counted twice, and nothing is a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serialization_failures_are_retried_once_then_503() {
    let db_dir = tempfile::tempdir().unwrap();
    let (db_addr, _stop, _task) = start_db(db_dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("app.toml"),
        "name = \"counter\"\n[pool]\nsize = 8\n\
         [[routes]]\nmethod = \"POST\"\npath = \"/bump\"\n\
         sql = [\"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ\", \"UPDATE counter SET n = n + 1 WHERE id = 1 RETURNING n\"]\n\
         response = \"json_one\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/n\"\nsql = \"SELECT n FROM counter WHERE id = 1\"\nresponse = \"json_one\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(app.path().join("schema")).unwrap();
    std::fs::write(
        app.path().join("schema/001_counter.sql"),
        "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0);",
    )
    .unwrap();
    let (addr, admin) = start_ap(app.path(), db_addr).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        tasks.push(tokio::spawn(async move {
            let mut codes = Vec::new();
            for _ in 0..15 {
                codes.push(
                    post(addr, "/bump", "application/x-www-form-urlencoded", "")
                        .await
                        .0,
                );
            }
            codes
        }));
    }
    let mut ok = 0;
    let mut unavailable = 0;
    for t in tasks {
        for code in t.await.unwrap() {
            match code {
                200 => ok += 1,
                503 => unavailable += 1,
                other => panic!("status {other}"),
            }
        }
    }
    let (_, _, body) = get(addr, "/n").await;
    let n: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        n["n"], ok,
        "every 200 is exactly one increment ({unavailable} got 503)"
    );
    let status = admin.status();
    assert!(
        status["serialization_retries"].as_u64().unwrap() > 0,
        "conflicts happened and were retried: {status}"
    );
}

/// A write the database node refuses as read-only (25006: what a cluster
/// follower answers once its leader changed under a pooled connection)
/// changed nothing, so it is retried once on a fresh connection; if that is
/// refused too the client gets 503 with Retry-After and a message that
/// says what happened. Each refused connection is dropped instead of going
/// back to the pool, and the routes that work keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_refused_as_read_only_are_retried_then_503_and_their_connections_dropped() {
    let db_dir = tempfile::tempdir().unwrap();
    let (db_addr, _stop, _task) = start_db(db_dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let app = tempfile::tempdir().unwrap();
    std::fs::write(
        app.path().join("app.toml"),
        "name = \"notes\"\n[pool]\nsize = 2\n\
         [[routes]]\nmethod = \"POST\"\npath = \"/refused\"\n\
         sql = [\"SET TRANSACTION READ ONLY\", \"INSERT INTO notes (body) VALUES (:body) RETURNING id\"]\n\
         response = \"json_one\"\n\
         [[routes]]\nmethod = \"POST\"\npath = \"/notes\"\n\
         sql = \"INSERT INTO notes (body) VALUES (:body) RETURNING id\"\nresponse = \"json_one\"\n\
         [[routes]]\nmethod = \"GET\"\npath = \"/notes\"\nsql = \"SELECT body FROM notes ORDER BY id\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(app.path().join("schema")).unwrap();
    std::fs::write(
        app.path().join("schema/001_notes.sql"),
        "CREATE TABLE notes (id SERIAL PRIMARY KEY, body TEXT NOT NULL);",
    )
    .unwrap();
    let (addr, admin) = start_ap(app.path(), db_addr).await;
    let json = "application/json";
    let (code, head, body) = post(addr, "/refused", json, r#"{"body":"lost"}"#).await;
    assert_eq!(code, 503, "{body}");
    assert!(head.contains("retry-after: 1"), "{head}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["code"], "25006", "{body}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("not the cluster's leader"),
        "the message says what happened: {body}"
    );
    let status = admin.status();
    assert_eq!(status["leader_retries"], 1, "retried once: {status}");
    assert_eq!(
        status["stale_connections_dropped"], 2,
        "both refused connections were dropped: {status}"
    );
    let (code, _, body) = post(addr, "/notes", json, r#"{"body":"kept"}"#).await;
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = get(addr, "/notes").await;
    assert_eq!(code, 200, "{body}");
    let rows: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{ "body": "kept" }]),
        "nothing refused was written"
    );
    assert_eq!(admin.status()["stale_connections_dropped"], 2);
}
