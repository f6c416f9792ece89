//! Real PostgreSQL clients against a live `tiers db` server on loopback.

#[path = "support/server.rs"]
mod server;

use server::{connect, simple_rows, start, start_serving, start_with};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_postgres_simple_and_prepared_queries() {
    let (_dir, addr, _stop) = start().await;
    let client = connect(addr).await;
    client
        .batch_execute(
            "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance BIGINT DEFAULT 0);
             INSERT INTO accounts (id, owner, balance) VALUES (1, 'kim', 100), (2, 'lee', 50);",
        )
        .await
        .unwrap();
    // Prepared statement with typed parameters and binary results.
    let stmt = client
        .prepare("SELECT owner, balance FROM accounts WHERE id = $1")
        .await
        .unwrap();
    let row = client.query_one(&stmt, &[&1i32]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "kim");
    assert_eq!(row.get::<_, i64>(1), 100);
    let n = client
        .execute(
            "UPDATE accounts SET balance = balance + $1 WHERE owner = $2",
            &[&25i64, &"lee"],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let inserted = client
        .query_one(
            "INSERT INTO accounts (id, owner) VALUES ($1, $2) RETURNING id, balance",
            &[&3i32, &"park"],
        )
        .await
        .unwrap();
    assert_eq!(
        (inserted.get::<_, i32>(0), inserted.get::<_, i64>(1)),
        (3, 0)
    );
    let rows = client
        .query("SELECT id FROM accounts ORDER BY balance DESC", &[])
        .await
        .unwrap();
    let ids: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    // Simple-protocol results come back as text.
    let simple = client
        .simple_query("SELECT count(*) FROM accounts")
        .await
        .unwrap();
    let text = simple.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(text.as_deref(), Some("3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_sqlstates_and_transactions_work() {
    let (_dir, addr, _stop) = start().await;
    let client = connect(addr).await;
    client
        .batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    client
        .execute("INSERT INTO t VALUES (1, 'a')", &[])
        .await
        .unwrap();
    let e = client
        .execute("INSERT INTO t VALUES (1, 'b')", &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::UNIQUE_VIOLATION));
    let e = client
        .query("SELECT * FROM missing", &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::UNDEFINED_TABLE));
    let e = client.batch_execute("SELEC 1").await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::SYNTAX_ERROR));
    // The connection keeps working after errors.
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute("INSERT INTO t VALUES (2, 'b')", &[])
        .await
        .unwrap();
    client.batch_execute("ROLLBACK").await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    let mut client = client;
    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO t VALUES (3, 'c')", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    // A failed transaction refuses statements until ROLLBACK.
    client.batch_execute("BEGIN").await.unwrap();
    assert!(
        client
            .batch_execute("INSERT INTO t VALUES (1, 'dup')")
            .await
            .is_err()
    );
    let e = client.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    client.batch_execute("ROLLBACK").await.unwrap();
    // Another connection sees committed data.
    let other = connect(addr).await;
    let n: i64 = other
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_end_only_their_own_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_dir, addr, _stop) = start().await;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..40 {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let len = (next() % 300) as usize;
        let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 4 == 0 {
            // A plausible startup length followed by junk.
            junk.splice(0..0, [0, 0, 0, 40, 0, 3, 0, 0]);
        }
        let _ = socket.write_all(&junk).await;
        let _ = socket.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            socket.read_to_end(&mut sink),
        )
        .await;
    }
    // The server still answers real clients.
    let client = connect(addr).await;
    let n: i32 = client.query_one("SELECT 1 + 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 2);
}

/// A query that would run for hours: counts a huge series.
const ENDLESS: &str = "SELECT count(*) FROM generate_series(1, 100000000000)";

/// Sends cancel requests every 100 ms until the returned sender is dropped
/// (a cancel that arrives before the statement starts is ignored, as in
/// PostgreSQL, so one request could be lost to scheduling).
fn keep_cancelling(token: tokio_postgres::CancelToken) -> tokio::sync::oneshot::Sender<()> {
    let (done, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                    let _ = token.cancel_query(NoTls).await;
                }
            }
        }
    });
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_requests_and_statement_timeout_stop_a_running_query() {
    let (_dir, addr, _stop) = start().await;
    let client = connect(addr).await;
    // A backstop, so a lost cancel cannot hang the test.
    client
        .batch_execute("SET statement_timeout = '60s'")
        .await
        .unwrap();
    let canceller = keep_cancelling(client.cancel_token());
    let started = std::time::Instant::now();
    let e = client.simple_query(ENDLESS).await.unwrap_err();
    drop(canceller);
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e}");
    let message = e.as_db_error().map(|d| d.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("user request")),
        "{message:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // The session is usable afterwards.
    let rows = client.simple_query("SELECT 1").await.unwrap();
    assert_eq!(rows.len(), 3);

    client
        .batch_execute("SET statement_timeout = 200")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let e = client.simple_query(ENDLESS).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED));
    let message = e.as_db_error().map(|d| d.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("statement timeout")),
        "{message:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A timed-out statement inside a transaction fails the transaction only.
    client.batch_execute("BEGIN").await.unwrap();
    assert!(client.simple_query(ENDLESS).await.is_err());
    let e = client.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        client
            .batch_execute("SET statement_timeout = 'soon'")
            .await
            .unwrap_err()
            .code(),
        Some(&SqlState::INVALID_PARAMETER_VALUE)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_query_does_not_stall_the_connections_sharing_its_thread() {
    let (_dir, addr, _stop) = start_with(|c| c.connection_loops = 2).await;
    // Connections are dealt to the two threads in turn: the first and the
    // third share one.
    let long = connect(addr).await;
    let _other_thread = connect(addr).await;
    let neighbour = connect(addr).await;
    neighbour
        .batch_execute("CREATE TABLE t (k INT PRIMARY KEY, v INT); INSERT INTO t VALUES (1, 0)")
        .await
        .unwrap();
    // Inside a transaction, the way a statement there is run differs.
    long.batch_execute("SET statement_timeout = '60s'; BEGIN")
        .await
        .unwrap();
    let token = long.cancel_token();
    let running = tokio::spawn(async move { long.simple_query(ENDLESS).await.map(|_| ()) });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let neighbour_work = async {
        for i in 1..=20 {
            let read = neighbour
                .query_one("SELECT v FROM t WHERE k = $1", &[&1i32])
                .await
                .unwrap();
            assert_eq!(read.get::<_, i32>(0), i - 1);
            neighbour
                .execute("UPDATE t SET v = v + 1 WHERE k = $1", &[&1i32])
                .await
                .unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), neighbour_work)
        .await
        .expect("the neighbour's statements finish while the long query runs");
    assert!(!running.is_finished(), "the long query is still running");
    let canceller = keep_cancelling(token);
    let e = running.await.unwrap().unwrap_err();
    drop(canceller);
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_are_refused_with_53300() {
    let (_dir, addr, _stop) = start_with(|c| c.max_connections = 2).await;
    let a = connect(addr).await;
    let _b = connect(addr).await;
    let conn = format!("host=127.0.0.1 port={} user=app dbname=tiers", addr.port());
    let e = tokio_postgres::connect(&conn, NoTls)
        .await
        .err()
        .expect("refused");
    assert_eq!(e.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e}");
    // The admitted sessions keep working; a closed one frees its slot.
    a.simple_query("SELECT 1").await.unwrap();
    drop(a);
    let mut admitted = false;
    for _ in 0..50 {
        if tokio_postgres::connect(&conn, NoTls).await.is_ok() {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(admitted, "a slot frees when a client disconnects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_statements_are_refused_with_54000() {
    let (_dir, addr, _stop) = start_with(|c| c.max_statement_bytes = 1000).await;
    let client = connect(addr).await;
    let long = format!("SELECT '{}'", "x".repeat(2000));
    let e = client.simple_query(&long).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::PROGRAM_LIMIT_EXCEEDED));
    let e = client.prepare(&long).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::PROGRAM_LIMIT_EXCEEDED));
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_in_transaction_sessions_are_ended_and_rolled_back() {
    let (_dir, addr, _stop) = start().await;
    let client = connect(addr).await;
    client
        .batch_execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER);
             INSERT INTO t VALUES (1, 0);
             SET idle_in_transaction_session_timeout = 300;
             BEGIN;
             UPDATE t SET v = 1 WHERE id = 1;",
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(
        client.simple_query("COMMIT").await.is_err(),
        "the idle session was ended"
    );
    // Its row lock went with it: another session updates the row at once.
    let other = connect(addr).await;
    let started = std::time::Instant::now();
    other
        .batch_execute("UPDATE t SET v = 2 WHERE id = 1")
        .await
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let row = other.query_one("SELECT v FROM t", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_plans_are_reused_and_replanned_after_ddl() {
    let (_dir, addr, _stop) = start().await;
    let client = connect(addr).await;
    client
        .batch_execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, tag TEXT);
             INSERT INTO t SELECT g, 'tag' || (g % 10) FROM generate_series(1, 200) g;",
        )
        .await
        .unwrap();
    let by_tag = client
        .prepare("SELECT count(*) FROM t WHERE tag = $1")
        .await
        .unwrap();
    for _ in 0..3 {
        let n: i64 = client.query_one(&by_tag, &[&"tag3"]).await.unwrap().get(0);
        assert_eq!(n, 20);
    }
    // A new index (DDL) makes the next execution plan again, and use it.
    client
        .batch_execute("CREATE INDEX t_tag ON t USING hash (tag)")
        .await
        .unwrap();
    let n: i64 = client.query_one(&by_tag, &[&"tag3"]).await.unwrap().get(0);
    assert_eq!(n, 20);
    let plan = client
        .simple_query("EXPLAIN SELECT count(*) FROM t WHERE tag = 'tag3'")
        .await
        .unwrap();
    let text: Vec<String> = plan
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert!(
        text.iter()
            .any(|l| l.contains("Hash Index Scan using t_tag")),
        "{text:?}"
    );
    // A changed row shape is refused, as PostgreSQL does; preparing again works.
    let all = client
        .prepare("SELECT * FROM t WHERE id = $1")
        .await
        .unwrap();
    assert_eq!(client.query_one(&all, &[&1i32]).await.unwrap().len(), 2);
    client
        .batch_execute("ALTER TABLE t ADD COLUMN extra INTEGER")
        .await
        .unwrap();
    let e = client.query_one(&all, &[&1i32]).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED), "{e}");
    let all = client
        .prepare("SELECT * FROM t WHERE id = $1")
        .await
        .unwrap();
    assert_eq!(client.query_one(&all, &[&1i32]).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_from_stdin_and_to_stdout_in_text_and_csv() {
    use futures::{SinkExt, StreamExt};
    let (_dir, addr, _stop) = start().await;
    let client = connect(addr).await;
    client
        .batch_execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price DOUBLE PRECISION)",
        )
        .await
        .unwrap();
    // Text format, through the COPY sub-protocol.
    let sink = client.copy_in("COPY items FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    let mut data = String::new();
    for i in 1..=1000 {
        data.push_str(&format!("{i}\titem\\t{i}\t{}.5\n", i % 7));
    }
    data.push_str("1001\t\\N\t\\N\n");
    sink.send(bytes::Bytes::from(data)).await.unwrap();
    let n = sink.finish().await.unwrap();
    assert_eq!(n, 1001);
    let row = client
        .query_one("SELECT name, price FROM items WHERE id = 8", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "item\t8");
    assert_eq!(row.get::<_, f64>(1), 1.5);
    // CSV with a header, some columns.
    let sink = client
        .copy_in("COPY items (id, name) FROM STDIN WITH (FORMAT csv, HEADER true)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        b"id,name\n2000,\"a, quoted \"\"name\"\"\"\n2001,\n",
    ))
    .await
    .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    let row = client
        .query_one("SELECT name, name IS NULL FROM items WHERE id = 2001", &[])
        .await
        .unwrap();
    assert!(row.get::<_, Option<String>>(0).is_none());
    // Bad data rolls the whole COPY back.
    let sink = client.copy_in("COPY items FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        b"3000\tok\t1\n3001\tbad\tnot-a-number\n",
    ))
    .await
    .unwrap();
    let e = sink.finish().await.unwrap_err();
    assert!(e.code().is_some(), "{e}");
    let n: i64 = client
        .query_one("SELECT count(*) FROM items WHERE id >= 3000", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // A bad row after several batches of good ones: the error names it,
    // and none of the rows before it remain.
    let sink = client.copy_in("COPY items FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    let mut data = String::new();
    for i in 10_000..20_000 {
        data.push_str(&format!(
            "{i}	bulk	1
"
        ));
    }
    data.push_str(
        "20000	too few fields
",
    );
    sink.send(bytes::Bytes::from(data)).await.unwrap();
    let e = sink.finish().await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::BAD_COPY_FILE_FORMAT), "{e}");
    let message = e.as_db_error().map(|d| d.message().to_string());
    assert!(
        message.as_deref().is_some_and(|m| m.contains("row 10001")),
        "{message:?}"
    );
    let n: i64 = client
        .query_one("SELECT count(*) FROM items WHERE id >= 3000", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // Out, in both formats.
    let stream = client
        .copy_out(
            "COPY (SELECT id, name FROM items WHERE id IN (1, 2000, 1001) ORDER BY id) TO STDOUT",
        )
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = stream.map(|c| c.unwrap()).collect().await;
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect();
    assert_eq!(text, "1\titem\\t1\n1001\t\\N\n2000\ta, quoted \"name\"\n");
    let stream = client
        .copy_out("COPY items (id, name) TO STDOUT WITH (FORMAT csv, HEADER)")
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = stream.map(|c| c.unwrap()).collect().await;
    let csv: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).to_string())
        .collect();
    assert!(csv.starts_with("id,name\n1,item\t1\n"), "{csv}");
    assert!(csv.contains("2000,\"a, quoted \"\"name\"\"\"\n"), "{csv}");
    // The session goes on normally.
    let n: i64 = client
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1003);
}

/// After a proper startup, a client sends well-framed messages of every
/// frontend type with random contents (truncated Parse/Bind fields, bad
/// format codes, parameter counts, portal names, COPY data out of place).
/// Each connection may get errors or be closed; the server keeps serving
/// everyone else and the data stays intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_protocol_messages_after_startup_never_hurt_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_dir, addr, _stop) = start().await;
    let keeper = connect(addr).await;
    keeper
        .batch_execute(
            "CREATE TABLE kept (id INTEGER PRIMARY KEY); INSERT INTO kept VALUES (1), (2)",
        )
        .await
        .unwrap();
    let mut seed = 0xD1B5_4A32_D192_ED03u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let types = b"QPBDESHCXdcfp";
    for _ in 0..60 {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        let body = b"user\0fuzz\0database\0tiers\0\0";
        let mut startup = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        startup.extend_from_slice(&196_608u32.to_be_bytes());
        startup.extend_from_slice(body);
        socket.write_all(&startup).await.unwrap();
        // Read until ReadyForQuery ('Z').
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        while !seen.contains(&b'Z') {
            match tokio::time::timeout(std::time::Duration::from_secs(2), socket.read(&mut buf))
                .await
            {
                Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        for _ in 0..20 {
            let kind = types[(next() % types.len() as u64) as usize];
            let len = (next() % 64) as usize;
            let mut payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if next() % 3 == 0 {
                // Mostly-plausible contents: a short name, NULs, small counts.
                payload = vec![
                    b's', 0, b'S', b'E', b'L', b'E', b'C', b'T', b' ', b'1', 0, 0, 1,
                ];
                payload.extend((0..(next() % 8)).map(|_| next() as u8));
            }
            let mut frame = vec![kind];
            frame.extend_from_slice(&((payload.len() + 4) as u32).to_be_bytes());
            frame.extend_from_slice(&payload);
            if socket.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = socket.shutdown().await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(300),
            socket.read_to_end(&mut sink),
        )
        .await;
    }
    let n: i64 = keeper
        .query_one("SELECT count(*) FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let fresh = connect(addr).await;
    let n: i32 = fresh.query_one("SELECT 40 + 2", &[]).await.unwrap().get(0);
    assert_eq!(n, 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_sha_256_for_configured_users() {
    let (_dir, addr, _stop) = start_with(|c| {
        c.users = vec![("app".into(), "s3cret".into())];
    })
    .await;
    let url = |user: &str, password: &str| {
        format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname=tiers",
            addr.port()
        )
    };
    let (client, connection) = tokio_postgres::connect(&url("app", "s3cret"), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let n: i32 = client.query_one("SELECT 6 * 7", &[]).await.unwrap().get(0);
    assert_eq!(n, 42);
    // Cancel requests still reach SCRAM-authenticated sessions.
    client
        .batch_execute("SET statement_timeout = '60s'")
        .await
        .unwrap();
    let canceller = keep_cancelling(client.cancel_token());
    let e = client.simple_query(ENDLESS).await.unwrap_err();
    drop(canceller);
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED));
    let message = e.as_db_error().map(|d| d.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("user request")),
        "{message:?}"
    );
    let mut messages = Vec::new();
    for (user, password) in [("app", "wrong"), ("nobody", "s3cret")] {
        let e = tokio_postgres::connect(&url(user, password), NoTls)
            .await
            .err()
            .expect("refused");
        assert_eq!(e.code(), Some(&SqlState::INVALID_PASSWORD), "{user}: {e}");
        let db = e.as_db_error().expect("a server error");
        messages.push(db.message().replace(user, "USER"));
    }
    // An unknown user is refused exactly as a wrong password is.
    assert_eq!(messages[0], messages[1]);
    let conn = format!("host=127.0.0.1 port={} user=app dbname=tiers", addr.port());
    assert!(
        tokio_postgres::connect(&conn, NoTls).await.is_err(),
        "a password is required"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_when_certificate_and_key_are_configured() {
    use pgwire::tokio::tokio_rustls::{TlsConnector, rustls};
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fixtures =
        std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo"))
            .join("tests/fixtures");
    let (cert, key) = (fixtures.join("cert.pem"), fixtures.join("key.pem"));
    let (_dir, addr, _stop) = start_with(|c| c.tls = Some((cert.clone(), key.clone()))).await;
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    // SSLRequest: length 8, code 80877103.
    socket
        .write_all(&[0, 0, 0, 8, 4, 210, 22, 47])
        .await
        .unwrap();
    let mut answer = [0u8; 1];
    socket.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"S", "the server offers TLS");
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, socket)
        .await
        .expect("TLS handshake with the configured certificate");
    let body = b"user\0tls\0database\0tiers\0\0";
    let mut startup = ((8 + body.len()) as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(&196_608u32.to_be_bytes());
    startup.extend_from_slice(body);
    tls.write_all(&startup).await.unwrap();
    let mut first = [0u8; 9];
    tls.read_exact(&mut first).await.unwrap();
    assert_eq!(first[0], b'R', "an authentication message arrives over TLS");
    assert_eq!(&first[5..9], &[0, 0, 0, 0], "AuthenticationOk (trust)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_simple_queries_are_served_from_parsed_templates_with_their_own_constants() {
    let (_dir, addr, admin) = start_serving().await;
    let client = connect(addr).await;
    client
        .batch_execute("CREATE TABLE acct (id BIGINT PRIMARY KEY, balance INTEGER, note TEXT, rate NUMERIC(6, 2))")
        .await
        .unwrap();
    // One shape, many constants: negative numbers, quotes, numerics, a
    // 64-bit key; each statement must act on its own values.
    for i in 1..=20i64 {
        let id = i * 1_000_000_007;
        let sql = format!(
            "INSERT INTO acct (id, balance, note, rate) VALUES ({id}, -{i}, 'it''s #{i}', {i}.25)"
        );
        client.batch_execute(&sql).await.unwrap();
        client
            .batch_execute(&format!(
                "UPDATE acct SET balance = balance + -{i} WHERE id = {id}"
            ))
            .await
            .unwrap();
    }
    for i in [1i64, 7, 20] {
        let id = i * 1_000_000_007;
        let rows = simple_rows(
            &client,
            &format!("SELECT balance, note, rate FROM acct WHERE id = {id}"),
        )
        .await;
        assert_eq!(
            rows,
            vec![vec![
                Some((-2 * i).to_string()),
                Some(format!("it's #{i}")),
                Some(format!("{i}.25")),
            ]]
        );
    }
    // Shapes whose constants cannot be lifted still run correctly.
    let rows = simple_rows(
        &client,
        "SELECT count(*) FROM acct WHERE note LIKE 'it''s #1%' ORDER BY 1",
    )
    .await;
    assert_eq!(rows, vec![vec![Some("11".to_string())]]);
    let rows = simple_rows(&client, "SELECT DATE '2024-02-29' + 1").await;
    assert_eq!(rows, vec![vec![Some("2024-03-01".to_string())]]);
    // An error in a cached shape is reported as without the cache.
    let e = client
        .batch_execute(
            "INSERT INTO acct (id, balance, note, rate) VALUES (1000000007, 0, 'dup', 1.25)",
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::UNIQUE_VIOLATION), "{e}");
    let e = client
        .batch_execute(
            "INSERT INTO acct (id, balance, note, rate) VALUES (5, 99999999999, 'big', 1.25)",
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE), "{e}");
    let hits = admin.status()["parse_cache_hits"].as_u64().unwrap();
    // Each shape is parsed twice (seen, then proven); the INSERT and the
    // UPDATE were then served 18 times each.
    assert!(hits >= 36, "{hits} statements served from templates");
    assert!(admin.metrics().contains("tiers_db_parse_cache_hits_total"));
}

/// An Execute's row limit is honoured as PostgreSQL does (a portal fetched in
/// pieces, PortalSuspended between them), whatever its size: a limit of a
/// billion rows once made pgwire reserve 32 GB and abort the server (found
/// by fuzzing), and a statement run with such a limit runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_row_limits_of_any_size_fetch_portals_in_pieces() {
    let (_dir, addr, _stop) = start().await;
    let mut client = connect(addr).await;
    client
        .batch_execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY);
             INSERT INTO t VALUES (1), (2), (3), (4), (5);",
        )
        .await
        .unwrap();
    let ids = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get(0)).collect::<Vec<i32>>();
    let txn = client.transaction().await.unwrap();
    let portal = txn.bind("SELECT id FROM t ORDER BY id", &[]).await.unwrap();
    assert_eq!(ids(txn.query_portal(&portal, 2).await.unwrap()), [1, 2]);
    assert_eq!(
        ids(txn.query_portal(&portal, 1_000_000_000).await.unwrap()),
        [3, 4, 5]
    );
    assert!(txn.query_portal(&portal, 1).await.unwrap().is_empty());
    // A huge first limit on a statement with side effects: it runs once.
    let insert = txn
        .bind("INSERT INTO t VALUES (6), (7) RETURNING id", &[])
        .await
        .unwrap();
    assert_eq!(
        ids(txn.query_portal(&insert, i32::MAX).await.unwrap()),
        [6, 7]
    );
    // A limit below the rows: the statement still runs whole, as in
    // PostgreSQL, and the rest of its rows wait in the portal.
    let insert = txn
        .bind("INSERT INTO t VALUES (8), (9) RETURNING id", &[])
        .await
        .unwrap();
    assert_eq!(ids(txn.query_portal(&insert, 1).await.unwrap()), [8]);
    assert_eq!(ids(txn.query_portal(&insert, 5).await.unwrap()), [9]);
    txn.commit().await.unwrap();
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 9);
}
