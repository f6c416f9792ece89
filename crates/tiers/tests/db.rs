//! `tiers db` as a real process: clients connect over TCP, SIGTERM stops it
//! cleanly, SIGKILL loses no acknowledged commit.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use tiers_testkit::free_port;

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

/// One money transfer in its own transaction; Ok(true) once COMMIT is
/// acknowledged, Ok(false) when the server refused it (deadlock, conflict).
async fn transfer(
    c: &tokio_postgres::Client,
    id: i64,
    from: i32,
    to: i32,
    amount: i64,
) -> Result<bool, tokio_postgres::Error> {
    let body = async {
        c.batch_execute("BEGIN").await?;
        c.execute(
            "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
            &[&amount, &from],
        )
        .await?;
        c.execute(
            "UPDATE accounts SET balance = balance + $1 WHERE id = $2",
            &[&amount, &to],
        )
        .await?;
        c.execute(
            "INSERT INTO transfers VALUES ($1, $2, $3, $4)",
            &[&id, &from, &to, &amount],
        )
        .await?;
        c.batch_execute("COMMIT").await
    };
    match body.await {
        Ok(()) => Ok(true),
        Err(e) if e.as_db_error().is_some() => {
            let _ = c.batch_execute("ROLLBACK").await;
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Concurrent money transfers; SIGKILL the server in the middle; restart.
/// The total is unchanged, every acknowledged transfer is there, and every
/// balance agrees with the transfers recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_concurrent_transfers_loses_no_acknowledged_commit() {
    const ACCOUNTS: i32 = 20;
    const START: i64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(dir.path(), port);
    client(port)
        .await
        .batch_execute(&format!(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL);
             CREATE TABLE transfers (id BIGINT PRIMARY KEY, src INTEGER, dst INTEGER, amount BIGINT);
             INSERT INTO accounts SELECT g, {START} FROM generate_series(1, {ACCOUNTS}) g;"
        ))
        .await
        .unwrap();
    let mut acknowledged: Vec<i64> = Vec::new();
    let mut next_id = 0i64;
    for cycle in 0..3u64 {
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut workers = Vec::new();
        for w in 0..4i64 {
            let acked = acked.clone();
            let first_id = next_id + w * 1_000_000;
            workers.push(tokio::spawn(async move {
                let c = client(port).await;
                let mut rng = (cycle * 131 + w as u64 + 7).wrapping_mul(6_364_136_223_846_793_005);
                for i in 0..1_000_000i64 {
                    rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let from = (rng >> 33) as i32 % ACCOUNTS + 1;
                    let to = (rng >> 45) as i32 % ACCOUNTS + 1;
                    let amount = (rng >> 20) as i64 % 50 + 1;
                    match transfer(&c, first_id + i, from, to, amount).await {
                        Ok(true) => acked.lock().unwrap().push(first_id + i),
                        Ok(false) => {}
                        Err(_) => return, // The server is gone.
                    }
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        server.kill().unwrap();
        server.wait().unwrap();
        for w in workers {
            w.await.unwrap();
        }
        next_id += 4_000_000;
        acknowledged.extend(acked.lock().unwrap().iter());
        assert!(
            !acked.lock().unwrap().is_empty(),
            "cycle {cycle} made progress"
        );

        let port2 = free_port();
        server = start(dir.path(), port2);
        let c = client(port2).await;
        let total: i64 = c
            .query_one("SELECT sum(balance)::bigint FROM accounts", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            total,
            START * ACCOUNTS as i64,
            "cycle {cycle}: money was created or lost"
        );
        let ids: std::collections::HashSet<i64> = c
            .query("SELECT id FROM transfers", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for id in &acknowledged {
            assert!(
                ids.contains(id),
                "cycle {cycle}: acknowledged transfer {id} is missing"
            );
        }
        // Each balance equals the start plus what the recorded transfers moved.
        let rows = c
            .query(
                "SELECT a.id, a.balance, \
                   coalesce((SELECT sum(amount) FROM transfers WHERE dst = a.id), 0) \
                 - coalesce((SELECT sum(amount) FROM transfers WHERE src = a.id), 0) \
                 FROM accounts a",
                &[],
            )
            .await
            .unwrap();
        for r in rows {
            let (id, balance, net): (i32, i64, i64) = (r.get(0), r.get(1), r.get(2));
            assert_eq!(
                balance,
                START + net,
                "cycle {cycle}: account {id} disagrees with its transfers"
            );
        }
        drop(c);
        // The next cycle runs against the restarted server.
        server.kill().unwrap();
        server.wait().unwrap();
        server = start(dir.path(), port);
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
