//! `tiers db` as a real process: clients connect over TCP, SIGTERM stops it
//! cleanly, SIGKILL loses no acknowledged commit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &std::path::Path, port: u16) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiers"))
        .args(["db", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .args(["--admin", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");
    child
}

async fn client(port: u16) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={port} user=u dbname=d");
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

async fn count(port: u16) -> i64 {
    client(port)
        .await
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_graceful_and_sigkill_loses_no_acknowledged_commit() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(dir.path(), port);
    let c = client(port).await;
    c.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    for i in 0..50i64 {
        c.execute("INSERT INTO t VALUES ($1, 'x')", &[&i])
            .await
            .unwrap();
    }
    // SIGTERM: the server stops, with a final checkpoint, and exits 0.
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let status = server.wait().unwrap();
    assert!(status.success(), "{status}");

    let port = free_port();
    let mut server = start(dir.path(), port);
    assert_eq!(count(port).await, 50);
    let c = client(port).await;
    for i in 50..120i64 {
        c.execute("INSERT INTO t VALUES ($1, 'y')", &[&i])
            .await
            .unwrap();
    }
    // SIGKILL right after the acknowledgements: recovery replays the journal.
    server.kill().unwrap();
    server.wait().unwrap();
    let port = free_port();
    let mut server = start(dir.path(), port);
    assert_eq!(count(port).await, 120);
    server.kill().unwrap();
    server.wait().unwrap();
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoint_reports_health_metrics_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let mut server = Command::new(env!("CARGO_BIN_EXE_tiers"))
        .args(["db", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin", &format!("127.0.0.1:{admin}"), "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains(&format!("http://127.0.0.1:{admin}/status")),
        "{line}"
    );
    let c = client(port).await;
    c.batch_execute("CREATE TABLE t (id BIGINT PRIMARY KEY); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let health = http_get(admin, "/health");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let metrics = http_get(admin, "/metrics");
    for name in [
        "tiers_db_connections 1",
        "tiers_db_statements_total",
        "tiers_db_statement_seconds_bucket{le=\"+Inf\"}",
        "tiers_db_lock_waits_total 0",
        "tiers_db_storage_commits",
        "tiers_db_storage_pool_hits",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let status = http_get(admin, "/status");
    assert!(status.contains("\"tier\": \"db\""), "{status}");
    assert!(status.contains("\"connections\": 1"), "{status}");
    drop(c);
    let _ = server.kill();
    let _ = server.wait();
}
