//! A 3-member `tiers db` cluster as real processes on loopback: clients
//! find the leader with `target_session_attrs=read-write`, the leader is
//! killed with SIGKILL under concurrent money transfers, and afterwards
//! no money was created or lost, every acknowledged transfer is present on
//! every member, and the killed member rejoins as a follower.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNTS: i32 = 10;
const START: i64 = 1000;

use tiers_testkit::free_port;

struct Member {
    id: u64,
    sql: u16,
    /// The admin endpoint's address, as the member printed it.
    admin: String,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

fn start(m: &mut Member, peers: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tiers"))
        .args(["db", "--node-id", &m.id.to_string(), "--peers", peers])
        .args(["--listen", &format!("127.0.0.1:{}", m.sql), "--data-dir"])
        .arg(&m.dir)
        .args(["--admin", "127.0.0.1:0"])
        // The default timings, spelled out: the flags parse and reach the member.
        .args(["--heartbeat-ms", "50", "--election-timeout-ms", "300-600"])
        .args(["--commit-timeout-ms", "5000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "tiers db exited");
    }
    let at = line.find("http://").expect("admin address") + 7;
    m.admin = line[at..].trim().trim_end_matches("/status").to_string();
    m.child = Some(child);
}

async fn connect(conn: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn one(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=u dbname=d connect_timeout=2")
}

/// Waits for the leader (the member answering read-write) and returns its index.
async fn leader(members: &[Member]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for (i, m) in members.iter().enumerate() {
            if m.child.is_none() {
                continue;
            }
            if let Ok(c) = connect(&one(m.sql)).await
                && let Ok(row) = c.query_one("SHOW transaction_read_only", &[]).await
                && row.get::<_, String>(0) == "off"
            {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One transfer; Ok(true) once COMMIT is acknowledged.
async fn transfer(
    c: &tokio_postgres::Client,
    id: i64,
    from: i32,
    to: i32,
) -> Result<bool, tokio_postgres::Error> {
    let body = async {
        c.batch_execute("BEGIN").await?;
        c.execute(
            "UPDATE accounts SET balance = balance - 1 WHERE id = $1",
            &[&from],
        )
        .await?;
        c.execute(
            "UPDATE accounts SET balance = balance + 1 WHERE id = $1",
            &[&to],
        )
        .await?;
        c.execute("INSERT INTO transfers VALUES ($1)", &[&id])
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_under_transfers_loses_no_acknowledged_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let mut members: Vec<Member> = (1..=3)
        .map(|id| Member {
            id,
            sql: free_port(),
            dir: tmp.path().join(format!("n{id}")),
            admin: String::new(),
            child: None,
        })
        .collect();
    let peers = members
        .iter()
        .map(|m| format!("{}=127.0.0.1:{}/127.0.0.1:{}", m.id, free_port(), m.sql))
        .collect::<Vec<_>>()
        .join(",");
    for m in &mut members {
        start(m, &peers);
    }
    let hosts = ["127.0.0.1"; 3].join(",");
    let ports = members
        .iter()
        .map(|m| m.sql.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let rw = format!(
        "host={hosts} port={ports} user=u dbname=d target_session_attrs=read-write connect_timeout=2"
    );
    let l = leader(&members).await;
    eprintln!("leader: member {}", members[l].id);
    connect(&one(members[l].sql))
        .await
        .unwrap()
        .batch_execute(&format!(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL);
             CREATE TABLE transfers (id BIGINT PRIMARY KEY);
             INSERT INTO accounts SELECT g, {START} FROM generate_series(1, {ACCOUNTS}) g;"
        ))
        .await
        .unwrap();

    eprintln!("schema created");
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop_at = Instant::now() + Duration::from_secs(6);
    let mut workers = Vec::new();
    for w in 0..4i64 {
        let (acked, rw) = (acked.clone(), rw.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = (w as u64 + 11).wrapping_mul(6_364_136_223_846_793_005);
            let mut id = w * 1_000_000;
            while Instant::now() < stop_at {
                let Ok(c) = connect(&rw).await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                while Instant::now() < stop_at {
                    rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let from = (rng >> 33) as i32 % ACCOUNTS + 1;
                    let to = (rng >> 45) as i32 % ACCOUNTS + 1;
                    id += 1;
                    match transfer(&c, id, from, to).await {
                        Ok(true) => acked.lock().unwrap().push(id),
                        Ok(false) => {}
                        Err(_) => break, // the member is gone: reconnect
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before_kill = acked.lock().unwrap().len();
    let killed = l;
    let mut child = members[killed].child.take().unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = Instant::now();
    let l2 = leader(&members).await;
    assert_ne!(l2, killed);
    eprintln!(
        "a new leader answered {:?} after the kill",
        killed_at.elapsed()
    );
    for w in workers {
        w.await.unwrap();
    }
    let acked: Vec<i64> = acked.lock().unwrap().clone();
    eprintln!(
        "{} transfers acknowledged, {before_kill} before the kill",
        acked.len()
    );
    assert!(before_kill > 0, "transfers ran before the kill");
    assert!(
        acked.len() > before_kill,
        "transfers went on after the failover"
    );
    start(&mut members[killed], &peers);

    // Every member converges on the same transfers, all acknowledged ones
    // among them, and the money adds up everywhere.
    let deadline = Instant::now() + Duration::from_secs(20);
    for m in &members {
        loop {
            let c = connect(&one(m.sql)).await.unwrap();
            // A member just restarted may not have applied the schema yet.
            let ids: HashSet<i64> = match c.query("SELECT id FROM transfers", &[]).await {
                Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
                Err(_) => HashSet::new(),
            };
            let missing = acked.iter().filter(|id| !ids.contains(id)).count();
            if missing == 0 {
                let total: i64 = c
                    .query_one("SELECT sum(balance)::bigint FROM accounts", &[])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(total, START * ACCOUNTS as i64, "member {}", m.id);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "member {} lacks {missing} acknowledged transfers",
                m.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let c = connect(&one(members[killed].sql)).await.unwrap();
    let ro: String = c
        .query_one("SHOW transaction_read_only", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ro, "on", "the restarted member follows the new leader");
    let recovering: bool = c
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(recovering, "a follower reports pg_is_in_recovery() = true");
    let leader = connect(&rw).await.unwrap();
    let recovering: bool = leader
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        !recovering,
        "the leader reports pg_is_in_recovery() = false"
    );
    // The admin endpoint shows the roles, in /status and in /metrics.
    let admin_get = |m: &Member, path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&m.admin).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    let status = |m: &Member| admin_get(m, "/status");
    let restarted = status(&members[killed]);
    assert!(restarted.contains("\"role\": \"follower\""), "{restarted}");
    let sql_leader = format!("127.0.0.1:{}", members[l2].sql);
    assert!(
        restarted.contains(&sql_leader),
        "names the leader: {restarted}"
    );
    let lead = status(&members[l2]);
    assert!(lead.contains("\"role\": \"leader\""), "{lead}");
    let metrics = admin_get(&members[l2], "/metrics");
    assert!(
        metrics.contains("\ntiers_db_cluster_leader 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\ntiers_db_cluster_applied_lsn "),
        "{metrics}"
    );
    let metrics = admin_get(&members[killed], "/metrics");
    assert!(
        metrics.contains("\ntiers_db_cluster_leader 0\n"),
        "{metrics}"
    );
    for m in &mut members {
        if let Some(mut c) = m.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
