//! Real PostgreSQL clients against a live `tiers db` server on loopback.

use tiers_db::{Server, ServerConfig};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

async fn start() -> (
    tempfile::TempDir,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bind(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        storage: tiers_storage::Config::default(),
    })
    .await
    .unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    (dir, addr, stop)
}

async fn connect(addr: std::net::SocketAddr) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={} user=app dbname=tiers", addr.port());
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

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
