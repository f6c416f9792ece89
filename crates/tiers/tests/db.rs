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
